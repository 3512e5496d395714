"""A subgraph made ready to draw (`prepare_graph` -> `Prepared`): references to highlight
resolved among the nodes drawn, the subgraph folded and cut, and the highlighted path
worked out (the cheapest path along the data, not through the agent)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx

from ..errors import RenderError
from ..model import KINDS, Node, is_hex, short_id
from ..query import Subgraph
from .folding import fold_siblings, fold_threshold, limit_nodes, node_of
from .labels import short_ids
from .style import MARKS


def _as_ids(refs: Any) -> list[str]:
    if refs is None:
        return []
    if isinstance(refs, (str, Node)):
        refs = [refs]
    return [r.id if isinstance(r, Node) else str(r) for r in refs]


# A highlighted path should follow the data: `was_informed_by` abbreviates run -> entity
# -> run, and a detour through the agent who ran everything says nothing.
_PATH_COST = {"was_informed_by": 2.5, "was_associated_with": 4.0, "was_attributed_to": 4.0}


# Held-out data is not what a model was made from: a path through the evaluation file
# would be drawn bold where the training data should be, so such edges cost more.
_ROLE_COST = {"evaluation": 10.0, "validation": 10.0, "testing": 10.0, "test": 10.0}


def _path_cost(u: str, v: str, edges: Mapping[Any, Mapping[str, Any]]) -> float:
    return min(_PATH_COST.get(str(d.get("rel")), 1.0) * (_ROLE_COST.get(str(d.get("role")), 1.0)
               if d.get("rel") == "used" else 1.0) for d in edges.values())


def _find(sub: Subgraph, ref: str) -> str:
    """The node of ``sub`` a reference names: its id, a unique id prefix, ``kind:name``
    or a name only one node of the subgraph has. The renderer does not ask the store:
    references are resolved among the nodes drawn. Raises RenderError otherwise."""
    g = sub.graph
    if ref in g:
        return ref
    kind, sep, rest = ref.partition(":")
    if sep and kind in KINDS:
        by_prefix = [n for n in g if rest and n.startswith(ref)]
    elif is_hex(ref):  # bare hex: a prefix of any kind's id
        by_prefix = [n for n in g if n.partition(":")[2].startswith(ref.lower())]
    else:
        by_prefix = []
    if len(by_prefix) == 1:
        return by_prefix[0]
    by_name = [n for n in g if node_of(g, n).name == (rest if sep and kind in KINDS else ref)
               and (not sep or kind not in KINDS or node_of(g, n).kind == kind)]
    found = by_prefix or by_name
    if len(found) == 1:
        return found[0]
    if found:
        short = short_ids(sorted(found)[:5], g.nodes)
        shown = ", ".join(short.get(n, n) for n in sorted(found)[:5])
        raise RenderError(f"cannot highlight {ref!r}: it matches {shown} in this diagram; give the id")
    what = short_id(ref, 12) if sep and kind in KINDS and is_hex(rest) else repr(ref)
    raise RenderError(f"cannot highlight {what}: it is not in this diagram "
                      f"(upstream when the diagram is downstream, or the other way round?)")


def _shortest(g: nx.MultiDiGraph, a: str, b: str) -> list[str]:
    """The cheapest path from a to b: along PROV edges, else against them, else either
    way; just ``[b]`` when they are not connected."""
    if a == b:
        return [a]
    for view in (g, g.reverse(copy=False)):
        try:
            return nx.dijkstra_path(view, a, b, weight=_path_cost)
        except nx.NetworkXNoPath:
            pass
    try:
        return nx.dijkstra_path(g.to_undirected(as_view=True), a, b, weight=_path_cost)
    except nx.NetworkXNoPath:
        return [b]


class Prepared:
    """A subgraph ready to draw, with its emphasis worked out."""

    def __init__(self, sub: Subgraph, hl_nodes: set[str], hl_pairs: set[frozenset[str]],
                 marked: Mapping[str, str], all_ids: Iterable[str]) -> None:
        self.sub = sub
        self.g = sub.graph
        self.hl_nodes = hl_nodes
        self.hl_pairs = hl_pairs
        self.marked = {k: v for k, v in marked.items() if k in self.g}
        for n in self.g.nodes:  # folded groups carry their members' mark
            mark = node_of(self.g, n).attrs.get("mark") if n.startswith("group:") else None
            if mark in MARKS:
                self.marked[n] = mark
        self.hidden = int(self.g.graph.get("hidden", 0))
        # short ids tell apart every node of the subgraph, folded ones included
        self.short = short_ids(list(self.g.nodes), all_ids)
        self.max_nodes = self.g.graph.get("max_nodes")

    def edge_highlighted(self, u: str, v: str) -> bool:
        return frozenset((u, v)) in self.hl_pairs


def prepare_graph(subgraph: Subgraph, *, highlight: Any = (), marked: Mapping[str, str] | None = None,
                  max_nodes: int | None = None, fold: bool | int = True) -> Prepared:
    """The graph every view draws: folded, cut to ``max_nodes``, with the highlighted path
    and the marks worked out. Raises RenderError for a non-Subgraph, a bad ``max_nodes``
    or mark, or a highlight that is not in the subgraph."""
    if not isinstance(subgraph, Subgraph):
        raise RenderError(f"expected a Subgraph (from lg.trace / lg.impact), got {type(subgraph).__name__}")
    if max_nodes is not None and int(max_nodes) < 1:
        raise RenderError(f"max_nodes must be at least 1, got {max_nodes}")
    marked = dict(marked or {})
    unknown = sorted({m for m in marked.values() if m not in MARKS or m == "highlight"})
    if unknown:
        raise RenderError(f"unknown mark {unknown[0]!r}; expected stale or tampered")
    g = subgraph.graph
    targets = [_find(subgraph, ref) for ref in _as_ids(highlight)]
    marked = {k: v for k, v in marked.items() if k in g}
    protect = set(targets) | ({subgraph.root} if subgraph.root else set())
    # marked nodes fold with their like (10,000 stale predictions: one stale group)
    folded = fold_siblings(subgraph, fold_threshold(fold), protect, marked)
    # the path: from the root to each target; without a root, through the targets in order
    paths: list[list[str]] = []
    fg = folded.graph
    if targets:
        if folded.root is not None and folded.root in fg:
            paths = [_shortest(fg, folded.root, t) for t in targets]
        elif len(targets) == 1:
            paths = [targets]
        else:
            paths = [_shortest(fg, a, b) for a, b in zip(targets, targets[1:])]
    hl_nodes = {n for p in paths for n in p}
    pairs = {frozenset((a, b)) for p in paths for a, b in zip(p, p[1:])}
    limited = limit_nodes(folded, int(max_nodes) if max_nodes is not None else None,
                          [*(n for p in paths for n in p), *targets], marked)
    return Prepared(limited, hl_nodes, pairs, marked, subgraph.graph.nodes)
