"""Mermaid: the diagram as a flowchart that renders on GitHub and in Markdown viewers
(`to_mermaid`), every user string as numeric entity codes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import RenderError
from ..query import Subgraph
from .folding import kind_of, node_of
from .labels import edge_text, fact_lines, node_facts, node_title, short_id_line
from .prepare import prepare_graph
from .style import MARKS, RANKDIR, STYLE

_MERMAID_SAFE = re.compile(r"[A-Za-z0-9 _.,()+\-=@/'%…·×→⚠✗]")


def _mm(text: str) -> str:
    """Text for a quoted Mermaid label: anything beyond a conservative set of characters
    becomes a numeric entity code (``#34;``), which Mermaid turns into ``&#34;`` - so
    quotes, ``<``, ``#``, backticks and ``:`` are data, never syntax or markup."""
    return "".join(ch if _MERMAID_SAFE.match(ch) or (ord(ch) > 127 and ch.isalnum()) else f"#{ord(ch)};"
                   for ch in text)


#: Mermaid's default limits (its `maxEdges` and `maxTextSize` settings): past them a
#: viewer shows an error instead of the diagram
MERMAID_MAX_EDGES = 500
MERMAID_MAX_TEXT = 50_000


def _over_limits(text: str) -> bool:
    return len(text) > MERMAID_MAX_TEXT or text.count(" -->|") > MERMAID_MAX_EDGES


def to_mermaid(subgraph: Subgraph, *, highlight: Any = (), marked: Mapping[str, str] | None = None,
               max_nodes: int | None = None, fold: bool | int = True, rankdir: str = "LR") -> str:
    """The diagram as a Mermaid flowchart (renders on GitHub and in Markdown viewers).

    Options as `to_dot`. A flowchart over Mermaid's default limits (500 edges, 50,000
    characters) would not render: without ``max_nodes`` the nearest nodes are kept
    until it fits (a comment says so); with it, or when nothing fits, RenderError
    says what to do instead.
    """
    text = _mermaid(subgraph, highlight=highlight, marked=marked, max_nodes=max_nodes, fold=fold, rankdir=rankdir)
    if not _over_limits(text):
        return text
    if max_nodes is None:
        for limit in (200, 120, 60, 30):
            cut = _mermaid(subgraph, highlight=highlight, marked=marked, max_nodes=limit, fold=fold, rankdir=rankdir)
            if not _over_limits(cut):
                return (f"%% folded to the {limit} nodes nearest the root: the whole diagram is over Mermaid's "
                        f"default limits ({MERMAID_MAX_EDGES} edges, {MERMAID_MAX_TEXT:,} characters)\n" + cut)
    raise RenderError(f"this Mermaid diagram is over Mermaid's default limits ({MERMAID_MAX_EDGES} edges, "
                      f"{MERMAID_MAX_TEXT:,} characters) and would not render; pass a smaller max_nodes "
                      f"(say 100) or write .svg / .html instead")


def _mermaid(subgraph: Subgraph, *, highlight: Any, marked: Mapping[str, str] | None, max_nodes: int | None,
             fold: bool | int, rankdir: str) -> str:
    p = prepare_graph(subgraph, highlight=highlight, marked=marked, max_nodes=max_nodes, fold=fold)
    g = p.g
    direction = RANKDIR.get(str(rankdir).upper())
    if direction is None:
        raise RenderError(f"unknown rankdir {rankdir!r}; expected LR (left to right) or TB (top to bottom)")
    lines = [f"flowchart {direction}"]
    ids: dict[str, str] = {}
    classes: dict[str, list[str]] = {}
    for i, n in enumerate(g.nodes):
        ids[n] = f"n{i}"
        node = node_of(g, n)
        kind = kind_of(node)
        mark = p.marked.get(n)
        parts = [node_title(node), *fact_lines(node_facts(node, g))]
        if short_id_line(node, p.short):
            parts.append(short_id_line(node, p.short))
        if mark:
            parts.append(MARKS[mark]["tag"])
        label = "<br>".join(_mm(x) for x in parts)
        opening, closing = STYLE["group"]["mermaid"] if node.kind == "group" else STYLE.get(kind, STYLE["group"])["mermaid"]
        lines.append(f'  n{i}{opening}"{label}"{closing}')
        classes.setdefault(kind if kind in STYLE else "group", []).append(f"n{i}")
        if mark:
            classes.setdefault(mark, []).append(f"n{i}")
        if n in p.hl_nodes:
            classes.setdefault("highlight", []).append(f"n{i}")
        if n == p.sub.root:
            classes.setdefault("root", []).append(f"n{i}")
    if p.hidden:
        limit = f" (max_nodes={p.max_nodes})" if p.max_nodes else ""
        lines.append(f'  n{len(ids)}>"{_mm(f"… {p.hidden:,} more nodes not shown{limit}")}"]')
        classes.setdefault("note", []).append(f"n{len(ids)}")
    bold = []
    for i, (u, v, d) in enumerate(g.edges(data=True)):
        lines.append(f'  {ids[u]} -->|"{_mm(edge_text(d))}"| {ids[v]}')
        if p.edge_highlighted(u, v):
            bold.append(str(i))
    for name, members in classes.items():
        s: dict[str, Any] = (MARKS.get(name) if name in MARKS else STYLE.get(name)) or {}
        if name == "root":
            lines.append("  classDef root stroke-width:3px")
        elif name in MARKS:
            css = f"stroke:{s['color']},stroke-width:{int(s['penwidth'])}px"
            if "fillcolor" in s:
                css = f"fill:{s['fillcolor']}," + css
            if s.get("style") == "dashed":
                css += ",stroke-dasharray:6 3"
            lines.append(f"  classDef {name} {css}")
        else:
            lines.append(f"  classDef {name} fill:{s['fillcolor']},stroke:{s['color']},color:#111827")
        lines.append(f"  class {','.join(members)} {name}")
    if bold:
        hl = MARKS["highlight"]
        lines.append(f"  linkStyle {','.join(bold)} stroke:{hl['color']},stroke-width:{int(hl['penwidth'])}px")
    # the legend: the kinds drawn, in their own shapes and colours, and what arrows mean
    kinds = [k for k in classes if k in STYLE and k not in ("group", "note")]
    if kinds:
        lines.append('  subgraph legend["Legend: arrows point to what a thing depends on (PROV)"]')
        for k in kinds:
            opening, closing = STYLE[k]["mermaid"]
            lines.append(f'    legend_{k}{opening}"{_mm(k)}"{closing}')
            lines.append(f"    class legend_{k} {k}")
        lines.append("  end")
    return "\n".join(lines) + "\n"
