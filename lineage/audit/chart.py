"""Feature importance as an inline SVG bar chart (matplotlib, Agg-free SVG backend).

The SVG keeps text as text (``svg.fonttype = none``): no embedded glyphs, no external
font, and feature names stay selectable and are XML-escaped by matplotlib's writer.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

TOP = 20


def importance_svg(items: Sequence[dict[str, Any]], *, top: int = TOP, title: str | None = None) -> str | None:
    """A horizontal bar chart of the ``top`` most important features, as an ``<svg>``
    element (no XML prolog, no DOCTYPE); None when there is nothing to draw."""
    items = [i for i in items if i.get("importance") is not None][:top]
    if not items:
        return None
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    names = [str(i["feature"]) for i in items][::-1]
    values = [float(i["importance"]) for i in items][::-1]
    height = 0.9 + 0.26 * len(items)
    rc = {
        "svg.fonttype": "none",
        "svg.hashsalt": "lineage-audit",  # stable ids: the same report twice is the same bytes
        "font.family": "sans-serif",
        "font.size": 9,
        "text.parse_math": False,  # a feature called "$x$" is a name, not TeX
        "axes.edgecolor": "#9aa5b1",
        "axes.labelcolor": "#243b53",
        "xtick.color": "#486581",
        "ytick.color": "#243b53",
    }
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(7.2, height), dpi=96)
        FigureCanvasSVG(fig)
        ax = fig.add_subplot(1, 1, 1)
        bars = ax.barh(range(len(values)), values, color="#2f6fb0", height=0.66)
        ax.set_yticks(range(len(names)), labels=names)
        ax.set_xlabel("importance")
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)
        ax.grid(axis="x", color="#e4e7eb", linewidth=0.8)
        ax.set_axisbelow(True)
        vmax = max(values) or 1.0
        ax.set_xlim(0, vmax * 1.16)
        for bar, v in zip(bars, values):
            ax.text(bar.get_width() + vmax * 0.01, bar.get_y() + bar.get_height() / 2, f"{v:.3f}",
                    va="center", fontsize=8, color="#486581")
        if title:
            ax.set_title(title, loc="left", fontsize=10)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return _inline(buf.getvalue())


def _inline(svg: str) -> str:
    """Strip the XML prolog, DOCTYPE and metadata so the SVG can sit inside HTML."""
    svg = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    return svg.strip()
