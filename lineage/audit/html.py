"""HTML views of a report: one self-contained file (inline CSS, inline SVG, no script,
no external URL) that prints well to PDF from a browser.

Jinja2 runs with autoescape on, so every user string is escaped. The two SVGs are
inserted as markup (``|safe``) because we generate them: Graphviz and matplotlib write
labels as escaped XML text (tests check a hostile name inside them stays text).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model import human_size
from .checklist import FAILED, FIELD_BY_KEY, MISSING, NEEDS_PERSON, RECORDED, arrange, description_source
from .steps import short_class, step_tree

if TYPE_CHECKING:  # pragma: no cover
    from .report import AuditReport, Inventory

TEMPLATES = Path(__file__).parent / "templates"
_env: Any = None


def environment() -> Any:
    """The Jinja2 environment (autoescape on, strict undefined), built once."""
    global _env
    if _env is None:
        import jinja2

        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        from ..features import shown_ref
        from ..render.tables import flag_lines  # (the inventory's flags read as in its table)

        env.filters.update(
            when=when, size=size, num=num, short=short, value=value, status_class=status_class, plural=plural,
            days=days, step_tree=step_tree, short_class=short_class, flag_lines=flag_lines,
            described_by=description_source, shown_ref=shown_ref,
        )
        _env = env
    return _env


# ---------------------------------------------------------------------------
# filters


def when(ts: Any) -> str:
    """``2026-11-26T05:10:33.123Z`` -> ``2026-11-26 05:10:33 UTC``."""
    if not ts:
        return "—"
    try:
        dt = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return str(ts)
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def days(n: Any) -> str:
    """A span in days as people say it: ``less than a day``, ``3.5 days``."""
    if n is None:
        return "—"
    return "less than a day" if float(n) < 1 else f"{float(n):,.1f} days"


def size(n: Any) -> str:
    return human_size(n, missing="—")


def num(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.4g}" if abs(x) < 1e6 else f"{x:,.0f}"


def short(node_id: Any, n: int = 12) -> str:
    if not node_id:
        return "—"
    kind, sep, rest = str(node_id).partition(":")
    return f"{kind}:{rest[:n]}" if sep else str(node_id)[:n]


def value(v: Any) -> str:
    """A param value as text: strings as they are, the rest as compact JSON."""
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def status_class(status: str) -> str:
    return {RECORDED: "recorded", NEEDS_PERSON: "person", MISSING: "missing", FAILED: "failed"}.get(status, "missing")


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


# ---------------------------------------------------------------------------
# pages


def _context(report: AuditReport) -> dict[str, Any]:
    d = report.to_dict()
    items = d["checklist"]
    return {
        "d": d,
        "files": {f["id"]: f for f in d["integrity"]["files"]},
        "data_bad": any(f["kind"] == "dataset" and f["status"] in ("changed", "missing", "unreadable")
                        for f in d["integrity"]["files"]),
        "items": {i["key"]: i for i in items},
        "sections": arrange(items, d["report"]["standard"]),
        "fields": FIELD_BY_KEY,
        "diagram": report.diagram,
        "full_diagram": report.full_diagram,
        "slices": report.slices,
        "order": d.get("reading_order") or {i["key"]: i["number"] for i in items},
        "altered": set(d["integrity"]["facts"]["failed"]),
        "diagram_kind": report.diagram_kind,
        "chart": report.chart,
        "statuses": (RECORDED, NEEDS_PERSON, MISSING),
    }


def render_report(report: AuditReport) -> str:
    """The full HTML document of a model or prediction report."""
    # a prediction's report is a decision record: its own title and layout (≤ 2 A4 pages)
    name = "decision.html.j2" if report.subject["kind"] == "prediction" else "model.html.j2"
    return environment().get_template(name).render(**_context(report)).lstrip()


def render_summary(report: AuditReport) -> str:
    """A compact fragment (summary and checklist) for notebooks; styles inline."""
    return environment().get_template("summary.html.j2").render(**_context(report))


def render_inventory(inventory: Inventory, *, fragment: bool = False) -> str:
    return environment().get_template("inventory.html.j2").render(d=inventory.to_dict(), fragment=fragment)
