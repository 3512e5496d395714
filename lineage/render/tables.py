"""Terminal tables (rich) of the query layer's answers and of node listings.

Presentation lives here, not in the result types: a result's ``__rich__`` and the CLI
both call these functions, so a table looks the same wherever it is printed. rich is
imported inside each function (it costs ~50 ms that ``import lineage`` need not pay).
Every user string (a name, a param, a path) goes in as a rich `Text`, so it is data,
never markup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..model import KINDS, Node, short_id
from .labels import node_summary

if TYPE_CHECKING:
    from ..query.results import DataUse, Diff, Insights, Status, Suspect


def text(value: Any, style: str = "") -> Any:
    """``value`` as a rich `Text` (None as empty): user strings are data, never markup."""
    from rich.text import Text

    return Text("" if value is None else str(value), style=style)


def table(title: str | None, columns: Sequence[str]) -> Any:
    """An empty rich `Table` with bold headers, a left-aligned title and ``columns``."""
    from rich.table import Table

    out = Table(title=text(title) if title else None, header_style="bold", title_justify="left")
    for c in columns:
        out.add_column(c)
    return out


def _created(node: Node) -> str:
    return (node.created_at or "")[:19].replace("T", " ")


def _value(value: Any) -> str:
    """A value of a diff: — for none, 4 significant digits, long ids shortened."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and ":" in value and len(value) > 40:
        kind = value.split(":", 1)[0]
        if kind in KINDS:
            return short_id(value, 12)
    return str(value)


def nodes_table(nodes: Iterable[Node], *, title: str | None = None,
                extra: Sequence[tuple[str, Callable[[Node], str]]] = ()) -> Any:
    """A rich Table of nodes (``lineage ls``, ``history``): short id, kind, name, the
    ``extra`` columns (header, function of the node), created, and `node_summary`."""
    from rich.table import Table

    out = Table(title=text(title) if title else None, show_lines=False, header_style="bold")
    out.add_column("id", style="cyan", no_wrap=True)
    out.add_column("kind")
    out.add_column("name", style="bold")
    for header, _ in extra:
        out.add_column(header)
    out.add_column("created", no_wrap=True)
    out.add_column("summary")
    for n in nodes:
        out.add_row(short_id(n.id, 12), n.kind, text(n.name or ""), *(text(f(n)) for _, f in extra),
                    _created(n), text(node_summary(n)))
    return out


def runs_table(nodes: Iterable[Node]) -> Any:
    """A rich Table of `runs`' answer: id, name, experiment, status, start, and the
    first four params and metrics of each run (``+N`` says how many more)."""
    from rich.table import Table

    def brief(d: Any, n: int = 4) -> str:
        items = list((d or {}).items())
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in items[:n])
        return shown + (f", +{len(items) - n}" if len(items) > n else "")

    out = Table(header_style="bold")
    for col in ("id", "name", "experiment", "status", "started", "params", "metrics"):
        out.add_column(col, no_wrap=col in ("id", "started"))
    for n in nodes:
        a = n.attrs
        out.add_row(short_id(n.id, 12), text(n.name or ""), text(str(a.get("experiment", ""))), a.get("status", ""),
                    _created(n), text(brief(a.get("params"))), text(brief(a.get("metrics"))))
    return out


def metric_history_view(points: Any) -> Any:
    """`Lineage.metric_history`'s answer (a ``MetricHistory``, typed loosely: it lives in
    the facade, above this layer): a table of the steps, then, for more than one
    overall value, its sparkline with the min, max and last value."""
    from rich.console import Group
    from rich.table import Table

    out = Table(title=text(f"{points.key} of {points.run}"))
    for col in ("step", "value", "at", "group"):
        out.add_column(col, justify="right" if col in ("step", "value") else "left")
    for p in points:
        out.add_row(str(p.step), f"{p.value:.6g}", text(p.at or ""), text(p.group or ""))
    values = [p.value for p in points if p.group is None]
    if len(values) <= 1:
        return out
    return Group(out, text(f"{points.sparkline()}  min {min(values):.6g}  max {max(values):.6g}  last {values[-1]:.6g}"))


def data_uses_table(items: Sequence[DataUse], *, title: str | None = None) -> Any:
    """A rich Table of `which_data`'s answer: training data bold, held-out cyan."""
    out = table(title, ["role", "hops", "name", "id", "created"])
    for u in items:
        style = {"training": "bold", "held_out": "cyan"}.get(u.group, "dim")
        out.add_row(text(u.role, style), str(u.distance), text(u.node.name), short_id(u.node.id, 12), _created(u.node))
    return out


def diff_table(diff: Diff) -> Any:
    """A rich Table of `diff`'s answer, one row per change, grouped by aspect."""
    a, b = diff.a, diff.b
    out = table(f"{a.label} ({short_id(a.id)}) → {b.label} ({short_id(b.id)})", ["aspect", "key", "a", "b"])
    last = None
    for c in diff.changes:
        out.add_row(c.aspect if c.aspect != last else "", text(c.key), text(_value(c.a)), text(_value(c.b)))
        last = c.aspect
    if not diff.changes:
        out.add_row("", "no differences", "", "")
    return out


def suspects_table(items: Sequence[Suspect], *, bad: int, good: int, title: str | None = None) -> Any:
    """A rich Table of `blame`'s answer (``bad`` and ``good``: how many of each were given)."""
    out = table(title, ["score", f"bad /{bad}", f"good /{good}", "kind", "name", "id"])
    for s in items:
        out.add_row(f"{s.score:.2f}", str(s.bad), str(s.good), s.node.kind, text(s.node.name), short_id(s.node.id, 12))
    return out


def insights_table(insights: Insights) -> Any:
    """A rich Table of `insights`' answer, each parameter's share drawn as a bar."""
    skill = "" if insights.explained is None else \
        f"; the parameters explain {max(insights.explained, 0):.0%} of its variance (cross-validated)"
    out = table(f"what matters for {insights.metric} (across {insights.runs} runs{skill})",
                ["param", "importance", "", "rank correlation"])
    for i in insights.items:
        bar = "█" * round(i.importance * 30)
        corr = "—" if i.correlation is None else f"{i.correlation:+.2f}"
        out.add_row(text(i.param), f"{i.importance:.2f}", text(bar, "green"), corr)
    return out


def status_view(status: Status) -> Any:
    """`status`'s answer: ``ok`` in green, else the changed datasets and what is stale."""
    from rich.console import Group
    from rich.text import Text

    if status.ok:
        return Text("ok: every recorded local dataset matches its file", style="green")
    changed = table("changed on disk", ["dataset", "id", "reason", "path"])
    for n in status.changed:
        changed.add_row(text(n.name), short_id(n.id, 12), status.reasons.get(n.id, "modified"),
                        text(n.attrs.get("path") or n.attrs.get("abspath", "")))
    affected = table("stale downstream", ["kind", "name", "id", "why"])
    for n in status.affected:
        why = status.stale.get(n.id, "upstream changed")
        if n.kind == "group":
            affected.add_row("predictions", text(n.name), f"of {short_id(n.attrs.get('model', ''), 12)}", why)
        else:
            affected.add_row(n.kind, text(n.name), short_id(n.id, 12), why)
    return Group(*([changed] if status.changed else []), affected)
