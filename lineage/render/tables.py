"""Terminal tables (rich) of the query layer's answers and of node listings.

Presentation lives here, not in the result types: a result's ``__rich__`` and the CLI
both call these functions, so a table looks the same wherever it is printed. rich is
imported inside each function (it costs ~50 ms that ``import lineage`` need not pay).
Every user string (a name, a param, a path) goes in as a rich `Text`, so it is data,
never markup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..model import KINDS, Node, short_id
from .labels import clean_line, node_summary

if TYPE_CHECKING:
    from ..query.results import DataUse, Diff, Insights, Status, Suspect


def text(value: Any, style: str = "") -> Any:
    """``value`` as a rich `Text` (None as empty): user strings are data, never markup,
    and never the terminal's: control characters are dropped and line breaks become
    spaces, so a name cannot colour, retitle or reorder the terminal (`clean_line`)."""
    from rich.text import Text

    return Text("" if value is None else clean_line(value, None), style=style)


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
    """A value of a diff: — for none, 4 significant digits, long ids shortened, a
    list of names (columns) joined by commas."""
    if value is None:
        return "—"
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ", ".join(value)
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
        shown = ", ".join(f"{k}={value(v)}" for k, v in items[:n])
        return shown + (f", +{len(items) - n}" if len(items) > n else "")

    def value(v: Any) -> str:
        if v is None:  # a NaN metric (SQLite keeps NaN as NULL)
            return "nan"
        # (a param may be a long text, a whole config: the table shows its start)
        return f"{v:.4g}" if isinstance(v, float) else clean_line(v, 40)

    out = Table(header_style="bold")
    for col in ("id", "name", "experiment", "status", "started", "params", "metrics"):
        out.add_column(col, no_wrap=col in ("id", "started"))
    for n in nodes:
        a = n.attrs
        out.add_row(short_id(n.id, 12), text(n.name or ""), text(str(a.get("experiment", ""))), a.get("status", ""),
                    _created(n), text(brief(a.get("params"))), text(brief(a.get("metrics"))))
    return out


def experiments_table(rows: Iterable[Mapping[str, Any]]) -> Any:
    """A rich Table of `Lineage.experiments`' answer: name, runs, when created (its
    first run's start for one known only by its runs) and last run, and its tags."""
    out = table(None, ["experiment", "runs", "created", "last run", "tags"])

    def when(t: Any) -> str:
        return str(t or "")[:19].replace("T", " ")

    for e in rows:
        tags = ", ".join(f"{k}={clean_line(v, 40)}" for k, v in sorted((e.get("tags") or {}).items()))
        out.add_row(text(e["name"]), str(e["runs"]), when(e.get("created_at") or e.get("first_at")),
                    when(e.get("last_at")) or "—", text(tags))
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
    def shown(v: float | None) -> str:
        return "nan" if v is None else f"{v:.6g}"  # (a NaN is recorded as None: JSON has no NaN)

    for p in points:
        out.add_row(str(p.step), shown(p.value), text(p.at or ""), text(p.group or ""))
    values = [p.value for p in points if p.group is None]
    numbers = [v for v in values if v is not None and v == v]
    if len(values) <= 1:
        return out
    if not numbers:
        return Group(out, text(f"{points.sparkline()}  last {shown(values[-1])}"))
    return Group(out, text(f"{points.sparkline()}  min {min(numbers):.6g}  max {max(numbers):.6g}  last {shown(values[-1])}"))


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
        # (two references to one version: `train@1` and `train` while it has one)
        same = "the same version: nothing to compare" if a.id == b.id else "no differences"
        out.add_row("", same, "", "")
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
    # (an empty "stale downstream" table under a changed file only repeats the count
    # the line after it gives)
    return Group(*([changed] if status.changed else []), *([affected] if status.affected else []))


# -- the CLI's views: `show`, `explain`, `audit`, `inventory`, `history` ---------------
# The command line prints these; they live here so presentation has one home.


def node_facts_table(node: Node) -> Any:
    """`lineage show`'s view of one node: a two-column table of id, kind, name, created
    and every attribute (dicts and lists pretty-printed, ids and digests never cut)."""
    from rich.pretty import Pretty
    from rich.table import Table

    out = Table(show_header=False, box=None, pad_edge=False)
    out.add_column(style="bold", no_wrap=True)
    out.add_column(overflow="fold")  # ids and digests in full, never cut to "…"
    out.add_row("id", text(node.id))
    out.add_row("kind", text(node.kind))
    out.add_row("name", text(node.name or ""))
    out.add_row("created", text(node.created_at or ""))
    for key, value in node.attrs.items():
        out.add_row(text(key), Pretty(value) if isinstance(value, (dict, list)) else text(value))
    return out


def brief_value(x: Any) -> str:
    """A value in an explanation: floats to 4 significant digits, anything else as str."""
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def permutation_importance_table(computed: dict[str, Any], *, data: str, target: str) -> Any:
    """`lineage explain --data --target`'s view of `Lineage.compute_importance`'s answer:
    one row per feature (largest effect first) with its importance and std."""
    from rich.table import Table

    # "table.title": the style rich gives a plain-string title, which this table had
    out = Table(title=text(f"permutation importance on {data} ({computed.get('rows', '?')} rows, target {target})",
                           "table.title"), header_style="bold", title_justify="left")
    out.add_column("feature")
    out.add_column("importance", justify="right")
    out.add_column("std", justify="right")
    for feature, value in sorted(computed["values"].items(), key=lambda kv: -abs(kv[1])):
        out.add_row(text(feature), f"{value:.4g}", f"{computed['std'].get(feature, 0.0):.2g}")
    return out


def feature_importance_table(importance: Sequence[dict[str, Any]]) -> Any:
    """A model's recorded feature importance (``explain``'s ``importance`` list) as a table."""
    from rich.table import Table

    out = Table(header_style="bold")
    out.add_column("feature")
    out.add_column("importance", justify="right")
    for i in importance:
        out.add_row(text(i["feature"]), f"{i['importance']:.4g}")
    return out


def reasons_table(reasons: Sequence[dict[str, Any]], *, limit: int = 15) -> Any:
    """A decision's reasons (``explain``'s ``reasons`` list, the first ``limit``): each
    feature's value, its signed contribution to the score and the method behind it."""
    from rich.table import Table

    out = Table(header_style="bold")
    out.add_column("feature")
    out.add_column("value", justify="right")
    out.add_column("contribution", justify="right")
    out.add_column("method")
    for r in reasons[:limit]:
        out.add_row(text(r["feature"]), text(brief_value(r.get("value"))), f"{r['contribution']:+.4g}", r["method"])
    return out


#: how each checklist status of an audit is coloured
AUDIT_STATUS_STYLE = {"recorded": "green", "needs a person": "yellow", "missing": "bold red",
                      "failed": "bold white on red"}


def audit_summary(doc: dict[str, Any]) -> Any:
    """The terminal view of an audit report (``build_report``'s dict): the integrity
    warning if it failed, the heading, the decision (a decision record), the checklist
    by section, then what the integrity check covered. Returns a rich `Group`."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    integ = doc["integrity"]
    subject = doc["subject"]
    c = doc["completeness"]
    parts: list[Any] = []
    if not integ["ok"]:
        warn = Text("INTEGRITY CHECK FAILED: this record may have been altered\n", style="bold white on red")
        for p in integ["problems"][:8]:
            warn.append(f"  - {p}\n", style="red")
        parts.append(warn)
    head = Text()
    head.append(f"Audit report: {subject['kind']} ", style="bold")
    head.append(str(subject["name"] or subject["id"]), style="bold cyan")
    head.append(f"  {subject['id']}\n", style="dim")
    head.append(f"{'Decision record' if doc.get('decision') else doc['report']['standard_title']}; {doc['summary']['status']}\n")
    head.append(f"{c['recorded']} recorded", style="green")
    head.append(", ")
    head.append(f"{c['needs a person']} need a person", style="yellow")
    head.append(", ")
    head.append(f"{c['missing']} missing", style="red")
    head.append("; integrity ")
    head.append("intact" if integ["ok"] else "FAILED", style="green" if integ["ok"] else "bold red")
    head.append(f"\n{integ.get('summary', '')}", style="dim" if integ["ok"] else "red")
    parts.append(head)
    dec = doc.get("decision")
    if dec:  # a decision record: the decision and its reasons before the model's checklist
        said = Text()
        said.append("Decision: ", style="bold")
        score = "" if dec.get("score") is None else f", score {dec['score']}"
        said.append(str(dec.get("outcome") or f"output {dec.get('output')}{score}") + "\n")
        for r in dec.get("reasons", [])[:5]:
            said.append(f"  {r['contribution']:+.4g}  {r['feature']}\n")
        said.append((f"method: {dec['method']}" if dec.get("reasons") else str(dec.get("reasons_note") or "")), style="dim")
        parts.append(said)
    checklist = Table(show_lines=False, header_style="bold", expand=False)
    checklist.add_column("#", justify="right", style="dim")
    checklist.add_column("field", no_wrap=True)
    checklist.add_column("status", no_wrap=True)
    checklist.add_column("finding (sources in the written report)")
    by_key = {i["key"]: i for i in doc["checklist"]}
    for sec in doc["sections"]:
        checklist.add_row("", "", "", Text(f"{sec['number'] + '. ' if sec['number'] else ''}{sec['title']}",
                                           style="bold blue"))
        for key in sec["fields"]:
            i = by_key[key]
            checklist.add_row(str(i["number"]), text(i["key"]), Text(i["status"], style=AUDIT_STATUS_STYLE[i["status"]]),
                              text(i["summary"]))
    parts.append(checklist)
    f, ch = integ["facts"], integ["chain"]
    foot = Text()
    foot.append(f"facts: {len(f['events'])} events behind them checked"
                + (f", {f['prediction_events_checked']} of {f['prediction_events_total']} prediction events"
                   if f["prediction_events_total"] else "")
                + ("" if f["ok"] else f"; FAILED: {f['failed']}") + "\n")
    foot.append(f"chain: {ch['scope']}" + ("" if ch["ok"] else f"; FAILED at event {ch['first_bad']}") + "\n")
    bad = [x for x in integ["files"] if x["status"] in ("changed", "missing", "unreadable")]
    foot.append(f"files: {len(integ['files'])} checked" + (f", {len(bad)} changed or missing" if bad else ", all intact") + "\n")
    foot.append(f"head: {integ['head']['hash']} ({integ['head']['events']} events); check later with `{integ['head']['command']}`",
                style="dim")
    parts.append(foot)
    return Group(*parts)


def flag_lines(flags: Sequence[Mapping[str, Any]], *, most: int = 3) -> list[str]:
    """The inventory's flags of one model name as short lines: up to ``most`` versions
    each on its own, more as one line per kind of flag. A name with 200 versions
    serving unlabelled predictions made a 10,000-character cell in every view."""
    if len(flags) <= most:
        return [f"@{f['version']} {f['flag']} ({f['predictions']:,})" for f in flags]
    by_flag: dict[str, list[Mapping[str, Any]]] = {}
    for f in flags:
        by_flag.setdefault(str(f["flag"]), []).append(f)
    return [f"{flag}: {len(fs):,} versions, @{fs[0]['version']} … @{fs[-1]['version']} "
            f"({sum(int(f['predictions']) for f in fs):,})" for flag, fs in by_flag.items()]


def inventory_table(doc: dict[str, Any]) -> Any:
    """`lineage inventory`'s view of the model inventory (its ``to_dict()``): one row per
    model version with owner, training data, sign-off, predictions, completeness,
    integrity and labels (with the newest version and any flags)."""
    from rich.table import Table
    from rich.text import Text

    out = Table(title="Model inventory", header_style="bold")
    out.add_column("model", no_wrap=True)
    out.add_column("owner")
    out.add_column("training data")
    out.add_column("run")
    out.add_column("signed off")
    out.add_column("preds", justify="right")
    out.add_column("rec/person/miss", justify="center")
    out.add_column("integrity")
    out.add_column("labels")
    for i in doc["items"]:
        c = i["completeness"]
        signed = i["signed_off"]
        held = ", ".join(f"{k} @{v}" for k, v in sorted((i.get("labels") or {}).items()))
        newest = [f"newest @{i['newest']}"] if i.get("newest") and i["newest"] != i["version"] else []
        # (joined, not appended: a name with no label began its cell with a stray "; ")
        labels = "; ".join([*([held] if held else []), *newest, *flag_lines(i.get("flags") or [])])
        out.add_row(Text(f"{i['name'] or i['id']} v{i['version']}", style="bold"), text(i["owner"] or ""),
                    text(", ".join(d["name"] or d["id"][:20] for d in i["training_data"]) or "-"),
                    text(i["training_status"] or "-"),
                    text(signed["author"]) if signed else Text("no", style="yellow"), f"{i['predictions']:,}",
                    f"{c['recorded']}/{c['needs a person']}/{c['missing']}",
                    Text("intact", style="green") if i["integrity_ok"] else Text("FAILED", style="bold red"),
                    Text(labels or "none", style="" if i.get("labels") else "yellow"))
    return out


def label_changes_table(promotions: Sequence[dict[str, Any]]) -> Any:
    """`lineage history`'s log of label changes (``ModelHistory.promotions``): when,
    label, action (set or moved), version, by whom and why."""
    from rich.table import Table

    out = Table(title=text("label changes", "table.title"), header_style="bold", title_justify="left")
    for col in ("when", "label", "action", "version", "by", "reason"):
        out.add_column(col)
    for p in promotions:
        out.add_row((p["at"] or "")[:19].replace("T", " "), text(p["label"]), p["action"], f"@{p['version']}",
                    text(p["author"] or ""), text(p["reason"] or ""))
    return out
