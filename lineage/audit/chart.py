"""Feature importance as an inline SVG bar chart (matplotlib, Agg-free SVG backend).

The SVG keeps text as text (``svg.fonttype = none``): no embedded glyphs, no external
font, and feature names stay selectable and are XML-escaped by matplotlib's writer.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

TOP = 12


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
    height = 0.8 + 0.21 * len(items)
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
                    va="center", fontsize=9, color="#486581")
        if title:
            ax.set_title(title, loc="left", fontsize=10)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return inline_svg(buf.getvalue())


def inline_svg(svg: str) -> str:
    """Strip the XML prolog, DOCTYPE and metadata so the SVG can sit inside HTML."""
    svg = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    return svg.strip()


def group_svg(metrics: Sequence[dict[str, Any]], *, top: int = 4) -> str | None:
    """Per-slice results: one panel per metric (up to ``top``), one bar per group with
    its 95 % interval when known, as an ``<svg>`` element; None without per-group metrics."""
    panels: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for m in metrics:
        if m.get("group") and isinstance(m.get("value"), (int, float)):
            ds = (m.get("dataset") or {}).get("name") or "no dataset"
            panels.setdefault((str(m["key"]), str(ds)), []).append(m)
    if not panels:
        return None
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    chosen = list(panels.items())[:top]
    rows = sum(len(ms) for _, ms in chosen)
    rc = {"svg.fonttype": "none", "svg.hashsalt": "lineage-audit", "font.family": "sans-serif", "font.size": 9,
          "text.parse_math": False, "axes.edgecolor": "#9aa5b1", "xtick.color": "#486581", "ytick.color": "#243b53"}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(7.0, 0.7 * len(chosen) + 0.3 * rows + 0.3), dpi=96)
        FigureCanvasSVG(fig)
        axes = fig.subplots(len(chosen), 1, squeeze=False,
                            gridspec_kw={"height_ratios": [max(1, len(ms)) for _, ms in chosen]})
        for ax, ((key, ds), ms) in zip(axes[:, 0], chosen):
            labels = [f"{m['group']}" + (f" (n={m['n']:,})" if m.get("n") else "") for m in ms][::-1]
            vals = [float(m["value"]) for m in ms][::-1]
            ax.barh(range(len(vals)), vals, color="#2f6fb0", height=0.6)
            for i, m in enumerate(ms[::-1]):
                ci = m.get("ci")
                if ci:
                    ax.plot([ci["low"], ci["high"]], [i, i], color="#102a43", linewidth=1.4)
                ax.text(float(m["value"]), i + 0.36, f" {float(m['value']):.4g}", fontsize=9, color="#243b53", va="center")
            ax.set_yticks(range(len(labels)), labels=labels)
            ax.set_title(f"{key} on {ds}", loc="left", fontsize=10)
            hi = max([*vals, *[(m.get("ci") or {}).get("high", 0) for m in ms]]) or 1.0
            ax.set_xlim(0, hi * 1.12)
            ax.spines["top"].set_visible(False)
            ax.spines["right"].set_visible(False)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return inline_svg(buf.getvalue())
