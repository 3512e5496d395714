"""Graphviz: the DOT text of a prepared subgraph (`to_dot`), and running ``dot`` for SVG,
PNG and PDF (`to_svg`), with the size limit Graphviz needs and a RenderError that
says how to install it."""

from __future__ import annotations

import html
import math
import re
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

import networkx as nx

from ..errors import RenderError
from ..model import Node
from ..query import Subgraph
from . import style
from .folding import count_of, kind_of, node_of
from .labels import edge_text, fact_lines, node_facts, node_title, plural, short_id_line
from .prepare import Prepared, prepare_graph
from .style import DOT_TIMEOUT, FONT, INSTALL_HINT, MARKS, RANKDIR, STYLE


def _quote(value: Any) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, one line."""
    s = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\r\n]+", " ", s) + '"'


class _Html(str):
    """A DOT HTML-like label, written between angle brackets instead of quotes."""


def _attrs(attrs: Mapping[str, Any]) -> str:
    parts = []
    for k, v in attrs.items():
        if v is None:
            continue
        if isinstance(v, _Html):
            parts.append(f"{k}=<{v}>")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            parts.append(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}")
        else:
            parts.append(f"{k}={_quote(v)}")
    return ", ".join(parts)


def _esc(text: str) -> str:
    """Text for an HTML-like label: XML-escaped (dot writes it back escaped in SVG), and
    backslashes doubled - graphviz expands ``\\N``, ``\\G`` and ``\\\\`` even in HTML
    labels."""
    return html.escape(text, quote=True).replace("\\", "\\\\")


def _node_label(node: Node, g: nx.MultiDiGraph, mark: str | None, short: Mapping[str, str]) -> _Html:
    lines = [f"<B>{_esc(node_title(node))}</B>"]
    for fact in fact_lines(node_facts(node, g)):
        lines.append(f'<FONT POINT-SIZE="10">{_esc(fact)}</FONT>')
    id_line = short_id_line(node, short)
    if id_line:
        lines.append(f'<FONT POINT-SIZE="9" COLOR="#475569">{_esc(id_line)}</FONT>')
    if mark:
        lines.append(f'<FONT POINT-SIZE="10" COLOR="{MARKS[mark]["color"]}"><B>{_esc(MARKS[mark]["tag"])}</B></FONT>')
    return _Html("<BR/>".join(lines))


def _node_style(node: Node, *, root: bool, highlighted: bool, mark: str | None) -> dict[str, Any]:
    kind = kind_of(node)
    base = STYLE.get(kind, STYLE["group"])
    style = {"shape": base["shape"], "style": base.get("style", "filled"), "fillcolor": base["fillcolor"],
             "color": base["color"], "penwidth": 1.2}
    if node.kind == "group" and count_of(node) > 1:
        style["peripheries"] = STYLE["group"]["peripheries"]
    if node.kind == "group" and node.attrs.get("overflow"):
        style["style"] += ",dashed"
    if root:
        style["penwidth"] = 2.4
    if mark:
        m = MARKS[mark]
        style["color"] = m["color"]
        style["penwidth"] = m["penwidth"]
        if "fillcolor" in m:
            style["fillcolor"] = m["fillcolor"]
        if "style" in m:
            style["style"] += "," + m["style"]
    if highlighted:
        style["color"] = MARKS["highlight"]["color"] if not mark else style["color"]
        style["penwidth"] = max(style["penwidth"], MARKS["highlight"]["penwidth"])
    return style


def _tooltip(node: Node) -> str:
    if node.kind == "group":
        return f"{count_of(node):,} {plural(kind_of(node), count_of(node))}"
    return node.id


_AGENT_RELATIONS = ("was_associated_with", "was_attributed_to")
_FEW_AGENT_EDGES = 8


def dot_source(p: Prepared, rankdir: str, *, dpi: int | None = None) -> str:
    """The DOT text of a prepared graph. Raises RenderError for an unknown ``rankdir``."""
    g = p.g
    direction = RANKDIR.get(str(rankdir).upper())
    if direction is None:
        raise RenderError(f"unknown rankdir {rankdir!r}; expected LR (left to right) or TB (top to bottom)")
    graph_attrs: dict[str, Any] = {"rankdir": direction, "fontname": FONT, "fontsize": 10, "bgcolor": "white",
                                   "pad": 0.2, "nodesep": 0.2, "ranksep": 0.3, "newrank": "true"}
    if dpi:
        graph_attrs["dpi"] = dpi
    lines = [
        "digraph lineage {",
        f"  graph [{_attrs(graph_attrs)}];",
        f"  node [{_attrs({'fontname': FONT, 'fontsize': 11, 'margin': '0.14,0.05', 'fontcolor': '#111827'})}];",
        f"  edge [{_attrs({'fontname': FONT, 'fontsize': 9, 'color': '#64748b', 'fontcolor': '#475569', 'arrowsize': 0.7})}];",
    ]
    ids: dict[str, str] = {}
    for i, n in enumerate(g.nodes):
        ids[n] = f"n{i}"
        node = node_of(g, n)
        mark = p.marked.get(n)
        attrs: dict[str, Any] = _node_style(node, root=n == p.sub.root, highlighted=n in p.hl_nodes, mark=mark)
        attrs["label"] = _node_label(node, g, mark, p.short)
        attrs["tooltip"] = _tooltip(node)
        lines.append(f"  n{i} [{_attrs(attrs)}];")
    if p.hidden:
        limit = f" (max_nodes={p.max_nodes})" if p.max_nodes else ""
        note = STYLE["note"]
        lines.append(f"  n{len(ids)} [{_attrs({'shape': note['shape'], 'style': 'filled', 'fillcolor': note['fillcolor'], 'color': note['color'], 'fontcolor': note['fontcolor'], 'label': _Html(_esc(f'… {p.hidden:,} more nodes not shown{limit}')), 'tooltip': 'left out to keep the diagram readable'})}];")
    agent_edges = sum(1 for _, _, d in g.edges(data=True) if d.get("rel") in _AGENT_RELATIONS)
    implied = _implied_informed_by(g)
    fan_in = _fan_in(g)
    labelled: set[tuple[str, str, Any]] = set()
    for u, v, d in g.edges(data=True):
        if (u, v) in implied and d.get("rel") == "was_informed_by" and not p.edge_highlighted(u, v):
            continue  # run -> run over the data it passed on: already drawn through that data
        attrs = {"label": _Html(_esc(edge_text(d)))}
        group_key = (v, d.get("rel"), d.get("role"))
        if fan_in.get(group_key, 0) >= _FAN_IN_LABEL_ONCE:
            # many edges of one relation into one node: label one of them with the count,
            # not a stack of identical labels
            attrs["label"] = (_Html(_esc(f"{edge_text(d)} ×{fan_in[group_key]:,}")) if group_key not in labelled
                              else None)
            labelled.add(group_key)
        if p.edge_highlighted(u, v):
            attrs.update(color=MARKS["highlight"]["color"], fontcolor=MARKS["highlight"]["color"],
                         penwidth=MARKS["highlight"]["penwidth"], arrowsize=0.9)
        else:
            if d.get("count", 1) > 1:
                attrs["penwidth"] = round(min(1 + math.log10(d["count"]), 4.0), 2)
            if d.get("role") == "indirect":  # a path through nodes a kinds= filter left out
                attrs["style"] = "dotted"
            if d.get("rel") in _AGENT_RELATIONS:
                # who did it matters, but it is not the flow of data: drawn light. A few
                # stay out of the ranking, so the agent does not stretch the layout;
                # many (an overview) rank normally, unlabelled, the relation in the tooltip
                attrs.update(style="dashed", color="#cbd5e1", fontcolor="#94a3b8", fontsize=8, penwidth=0.9,
                             arrowsize=0.5)
                if agent_edges <= _FEW_AGENT_EDGES:
                    attrs["constraint"] = "false"
                else:
                    attrs["tooltip"] = edge_text(d)
                    del attrs["label"]
        lines.append(f"  {ids[u]} -> {ids[v]} [{_attrs(attrs)}];")
    lines += _legend(p, agent_edges, omitted=len(implied))
    lines.append("}")
    return "\n".join(lines) + "\n"


#: this many edges of one relation and role into one node get a single label with the count
_FAN_IN_LABEL_ONCE = 4


def _implied_informed_by(g: nx.MultiDiGraph) -> set[tuple[str, str]]:
    """``was_informed_by`` pairs (run, earlier run) also joined through an entity drawn
    in the diagram (the run used what the earlier one generated): long arcs that say
    nothing the data path does not."""
    out = set()
    for u, v, d in g.edges(data=True):
        if d.get("rel") != "was_informed_by":
            continue
        used = {w for _, w, e in g.out_edges(u, data=True) if e.get("rel") == "used"}
        if any(e.get("rel") == "was_generated_by" and x in used for x, _, e in g.in_edges(v, data=True)):
            out.add((u, v))
    return out


def _fan_in(g: nx.MultiDiGraph) -> dict[tuple[str, Any, Any], int]:
    counts: dict[tuple[str, Any, Any], int] = {}
    for _, v, d in g.edges(data=True):
        if d.get("rel") not in _AGENT_RELATIONS:
            key = (v, d.get("rel"), d.get("role"))
            counts[key] = counts.get(key, 0) + 1
    return counts


def _legend(p: Prepared, agent_edges: int, *, omitted: int = 0) -> list[str]:
    """A legend node (kinds drawn, edge styles, marks) in its own cluster, so every
    drawing explains itself, standalone SVG files included."""
    from .style import KIND_ORDER

    g = p.g
    kinds = {kind_of(node_of(g, n)) for n in g.nodes}
    rows = []
    for kind in KIND_ORDER:
        if kind in kinds and kind in STYLE and kind != "group":
            st = STYLE[kind]
            shape = {"ellipse": "oval", "box": "box", "house": "house"}.get(st["shape"], st["shape"])
            rows.append(f'<TR><TD BGCOLOR="{st["fillcolor"]}" BORDER="1" COLOR="{st["color"]}" WIDTH="22"> </TD>'
                        f'<TD ALIGN="LEFT">{_esc(kind)} ({shape})</TD></TR>')
    if any(node_of(g, n).kind == "group" for n in g.nodes):
        rows.append('<TR><TD BORDER="1" COLOR="#64748b">×N</TD><TD ALIGN="LEFT">folded group (double outline)</TD></TR>')
    rows.append('<TR><TD>→</TD><TD ALIGN="LEFT">depends on (PROV direction)</TD></TR>')
    if p.hl_pairs or p.hl_nodes:
        rows.append(f'<TR><TD><FONT COLOR="{MARKS["highlight"]["color"]}"><B>━</B></FONT></TD>'
                    f'<TD ALIGN="LEFT">highlighted path</TD></TR>')
    if agent_edges:
        rows.append('<TR><TD><FONT COLOR="#94a3b8">╌</FONT></TD><TD ALIGN="LEFT">who did it (dashed)</TD></TR>')
    if any(d.get("role") == "indirect" for _, _, d in g.edges(data=True)):
        rows.append('<TR><TD>┈</TD><TD ALIGN="LEFT">indirect (dotted)</TD></TR>')
    if omitted:
        rows.append(f'<TR><TD COLSPAN="2" ALIGN="LEFT">{omitted:,} run-to-run was_informed_by arc{"s" if omitted != 1 else ""} '
                    f'not drawn: the data between the runs shows it</TD></TR>')
    for mark in sorted(set(p.marked.values())):
        m = MARKS[mark]
        rows.append(f'<TR><TD><FONT COLOR="{m["color"]}"><B>{_esc(m["tag"])}</B></FONT></TD>'
                    f'<TD ALIGN="LEFT">{"file changed on disk" if mark == "stale" else "record altered"}</TD></TR>')
    table = (f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1">'
             f'<TR><TD COLSPAN="2" ALIGN="LEFT"><B>Legend</B></TD></TR>{"".join(rows)}</TABLE>')
    return ["  subgraph cluster_legend {",
            f"    graph [{_attrs({'label': '', 'color': '#cbd5e1', 'style': 'rounded', 'margin': 6})}];",
            f"    legend [{_attrs({'shape': 'plaintext', 'fontsize': 10, 'label': _Html(table), 'tooltip': 'legend'})}];",
            "  }"]


def to_dot(subgraph: Subgraph, *, highlight: Any = (), marked: Mapping[str, str] | None = None,
           max_nodes: int | None = None, fold: bool | int = True, rankdir: str = "LR") -> str:
    """The diagram as Graphviz DOT text.

    ``highlight``: nodes (ids, Nodes, or a name, ``kind:name`` or id prefix that names
    one node of the subgraph); the path from the root to each is drawn bold (without
    a root: the path through them in order). ``marked``: node id ->
    ``"stale"`` or ``"tampered"``. ``max_nodes``, ``fold``: see `fold`. ``rankdir``: the
    direction data flows, ``"LR"`` (left to right, the default) or ``"TB"``.

    Raises RenderError for a highlighted node that is not in the subgraph, an unknown
    mark or rankdir.
    """
    p = prepare_graph(subgraph, highlight=highlight, marked=marked, max_nodes=max_nodes, fold=fold)
    return dot_source(p, rankdir)


# ---------------------------------------------------------------------------
# running dot


def dot_program() -> str:
    """The path of Graphviz's ``dot``. Raises RenderError, with how to install it, when missing."""
    found = shutil.which("dot")
    if found is None:
        raise RenderError(f"drawing SVG, PNG or PDF needs Graphviz's `dot` program, which is not installed; "
                          f"{INSTALL_HINT} (.dot and .mmd work without it)")
    return found


def run_dot(source: str, fmt: str) -> bytes:
    """What ``dot -T<fmt>`` makes of ``source``. Raises RenderError when dot is missing, fails or times out."""
    program = dot_program()
    try:
        proc = subprocess.run([program, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True,
                              timeout=DOT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"dot took longer than {DOT_TIMEOUT} s; draw fewer nodes (max_nodes=100)") from None
    except OSError as exc:
        raise RenderError(f"could not run {program}: {exc.strerror}") from None
    if proc.returncode != 0 or not proc.stdout:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"dot failed: {msg[0] if msg else f'exit code {proc.returncode}'}")
    return proc.stdout


def laid_out(subgraph: Subgraph, options: Mapping[str, Any], *, auto_limit: bool = False) -> Prepared:
    """The prepared graph for a format `dot` lays out. Graphviz takes minutes on
    thousands of nodes, so past `DOT_MAX_NODES` (after folding) it is refused unless
    the caller chose ``max_nodes``; with ``auto_limit`` (notebooks, reports) the
    nearest `AUTO_MAX_NODES` are drawn instead, with the usual note."""
    opts = {k: v for k, v in options.items() if k != "rankdir"}
    p = prepare_graph(subgraph, **opts)
    if opts.get("max_nodes") is None and len(p.g) > style.DOT_MAX_NODES:
        if auto_limit:
            return prepare_graph(subgraph, **{**opts, "max_nodes": style.AUTO_MAX_NODES})
        raise RenderError(f"{len(p.g):,} nodes even after folding: more than Graphviz lays out in reasonable time; "
                          f"pass max_nodes (say 200; `lineage dag --max-nodes 200`) to draw the ones nearest the "
                          f"root, or write .dot or .mmd")
    return p


def to_svg(subgraph: Subgraph, **options: Any) -> str:
    """The diagram as SVG text, drawn by Graphviz's ``dot`` (options as `to_dot`).

    Raises RenderError, with how to install Graphviz, when ``dot`` is not installed,
    and when more than `DOT_MAX_NODES` nodes are left after folding and no
    ``max_nodes`` was given.
    """
    dot_program()
    p = laid_out(subgraph, options)
    return run_dot(dot_source(p, options.get("rankdir", "LR")), "svg").decode("utf-8")
