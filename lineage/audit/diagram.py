"""The report's lineage diagram: the model's history summarised by role, laid out top
to bottom for a portrait page, every label at least 9 pt when printed.

The full trace of a real project (a sweep of runs, an agent linked to everything)
shrinks to unreadable type when fitted to A4. The report draws instead one box per
role: source data, preparation, training data, evaluation data, the training run,
the model and its predictions; several things in one role are one box with a count
and the first names. Who did each step is in the accountability table, not drawn as
long arcs to one agent. The full diagram stays available (`lineage dag MODEL`), and
the HTML report carries it in a collapsed appendix.

Sizes: DOT fonts of 10 pt and more, and a drawing at most `MAX_WIDTH_PT` wide, so the
browser never scales it down on an A4 page (182 mm between the margins = 516 pt).
"""

from __future__ import annotations

import html
from typing import Any

#: the printable width of the page; the drawing is laid out to fit it unscaled
MAX_WIDTH_PT = 500
_FONT = "Helvetica,Arial,sans-serif"
_PER_BOX = 3  # names listed in a box before "+ N more"

_COLOURS = {
    "dataset": ("#fde68a", "#a16207"), "run": ("#c7d2fe", "#4338ca"), "model": ("#fdba74", "#c2410c"),
    "prediction": ("#bbf7d0", "#15803d"), "evaluation": ("#fef3c7", "#a16207"),
}


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True).replace("\\", "\\\\")


def _cut(text: Any, n: int = 34) -> str:
    s = str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def _box(node_id: str, kind: str, title: str, lines: list[str], *, bold: bool = False, mark: str | None = None,
         shape: str = "box") -> str:
    fill, colour = _COLOURS.get(kind, ("#f1f5f9", "#64748b"))
    rows = [f'<FONT POINT-SIZE="12"><B>{_esc(_cut(title, 30))}</B></FONT>']
    rows += [f'<FONT POINT-SIZE="10">{_esc(_cut(x))}</FONT>' for x in lines if x]
    if mark:
        rows.append(f'<FONT POINT-SIZE="10" COLOR="#dc2626"><B>{_esc(mark)}</B></FONT>')
        colour = "#dc2626"
    style = "filled,rounded" if shape == "box" else "filled"
    return (f'  {node_id} [shape={shape}, style="{style}", fillcolor="{fill}", color="{colour}", '
            f'penwidth={3 if bold or mark else 1.2}, label=<{"<BR/>".join(rows)}>];')


def _names(items: list[dict[str, Any]], key: str = "name") -> list[str]:
    shown = [_label(x, key) for x in items[:_PER_BOX]]
    if len(items) > _PER_BOX:
        shown.append(f"+ {len(items) - _PER_BOX} more")
    return shown


def _label(x: dict[str, Any], key: str) -> str:
    name = x.get(key) or str(x.get("id", ""))[:20]
    if x.get("version"):
        return f"{name}@{x['version']} of {x.get('versions')}"
    return str(name)


def dot_source(doc: dict[str, Any], *, altered: set[str] | frozenset[str] = frozenset(),
               stale: set[str] | frozenset[str] = frozenset()) -> str:
    """The DOT text of the role diagram of a report's JSON document. ``altered``:
    ids whose records failed their check; ``stale``: ids whose file changed."""
    m = doc["model"]
    data = doc["data"]
    upstream = [d for d in data if d["role"] not in ("training", "evaluation")]
    training = [d for d in data if d["role"] == "training"]
    evaluation = [d for d in data if d["role"] == "evaluation"]
    prep = doc["preparation"]
    runs = doc["training_runs"]
    preds = doc["predictions"]

    def mark_of(items: list[dict[str, Any]]) -> str | None:
        ids = {x["id"] for x in items}
        if ids & set(altered):
            return "✗ record altered"
        if ids & set(stale):
            return "⚠ file changed"
        return None

    lines = ["digraph report {",
             f'  graph [rankdir=BT, fontname="{_FONT}", bgcolor="white", pad=0.05, nodesep=0.25, ranksep=0.22, '
             f'size="{MAX_WIDTH_PT / 72:.2f},20"];',
             f'  node [fontname="{_FONT}", fontsize=10, margin="0.12,0.06"];',
             f'  edge [fontname="{_FONT}", fontsize=10, color="#64748b", fontcolor="#475569", arrowsize=0.7];']
    # source data read by preparation is named in the preparation box: one rank less
    # on a portrait page
    if upstream and not prep:
        title = f"Source data ({len(upstream)})" if len(upstream) > 1 else "Source data"
        lines.append(_box("src", "dataset", title, _names(upstream), mark=mark_of(upstream), shape="ellipse"))
    if prep:
        title = f"Preparation ({len(prep)} runs)" if len(prep) > 1 else f"Preparation: {prep[0]['name'] or 'run'}"
        sub = _names(prep) if len(prep) > 1 else [f"{prep[0]['status'] or ''}, {str(prep[0]['started_at'] or '')[:10]}"]
        if upstream:
            sub.append("read " + ", ".join(_names(upstream)))
        lines.append(_box("prep", "run", title, sub, mark=mark_of(prep + upstream)))
    if training:
        lines.append(_box("train", "dataset", f"Training data ({len(training)})" if len(training) > 1 else "Training data",
                          _names(training), mark=mark_of(training), shape="ellipse"))
    if evaluation:
        lines.append(_box("eval", "evaluation", "Evaluation data" + (f" ({len(evaluation)})" if len(evaluation) > 1 else ""),
                          _names(evaluation), mark=mark_of(evaluation), shape="ellipse"))
    if runs:
        r = runs[-1]
        code = next((c for c in doc["code"] if c["id"] in r.get("code", [])), None)
        env = next((e for e in doc["environments"] if e["id"] in r.get("environment", [])), None)
        sub = [f"{r['status'] or 'status unknown'}, {str(r['started_at'] or '')[:16].replace('T', ' ')}"]
        if code:
            sub.append(f"code {code['commit'][:10]}" if code.get("commit") else f"code {code.get('name') or 'script'}")
        if env:
            sub[-1 if code else 0] += f", Python {env.get('python')}"
        title = f"Training run: {r['name'] or 'run'}" + (f" (+{len(runs) - 1})" if len(runs) > 1 else "")
        lines.append(_box("run", "run", title, sub, mark=mark_of(runs)))
    lines.append(_box("model", "model", f"Model: {m['name']}",
                      [f"version {m['version']} of {m['versions']}", str(m.get("class") or "").rsplit(".", 1)[-1]],
                      bold=True, mark=mark_of([m]), shape="ellipse"))
    if preds.get("count"):
        span = f"{str(preds['first_at'])[:10]} to {str(preds['last_at'])[:10]}"
        lines.append(_box("preds", "prediction", f"{preds['count']:,} predictions", [span], shape="ellipse"))
    # PROV direction: from the later thing to what it depends on
    if training and prep:
        lines.append('  train -> prep [label=" generated by"];')
    elif training and upstream and not prep:
        lines.append('  train -> src [label=" derived from", style=dotted];')
    if runs:
        if training:
            lines.append('  run -> train [label=" used (training)", color="#be185d", fontcolor="#be185d", penwidth=2.2];')
        if evaluation:
            lines.append('  run -> eval [label=" used (evaluation)", style=dashed];')
        lines.append('  model -> run [label=" generated by", color="#be185d", fontcolor="#be185d", penwidth=2.2];')
    if preds.get("count"):  # beside the model, not below it: the page is tall enough
        lines.append('  preds -> model [label=" derived from", constraint=false];')
        lines.append("  { rank=same; model; preds; }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(doc: dict[str, Any], **marks: Any) -> str | None:
    """The role diagram as SVG text, or None when Graphviz is not installed."""
    from ..errors import RenderError
    from ..render.dot import run_dot

    try:
        return run_dot(dot_source(doc, **marks), "svg").decode("utf-8")
    except RenderError:
        return None

