"""Diagrams of a provenance subgraph: Graphviz (DOT, SVG, PNG, PDF), Mermaid, HTML and a
terminal tree.

Every view starts from the same prepared graph (`fold`): look-alike siblings folded into
one node, an optional `max_nodes` cut, and the highlighted path worked out. The drawing
conventions are W3C PROV's, kept as data in `STYLE` (one row per kind): entities are
ellipses, each kind its own colour; runs (activities) are boxes; agents are houses.
Arrows point the PROV way, from the later thing to what it depends on
(``run —used→ dataset``); the layout puts sources on the left so data reads left to
right (``rankdir="TB"``: top to bottom).

Every string that comes from a user (names, params, roles) is escaped for the target
language: HTML-like labels in DOT, numeric entity codes in Mermaid, `html.escape` in
HTML, rich `Text` objects in the terminal. DOT node ids are generated (``n0``, ``n1``);
the real id is in the label and the tooltip (graphviz reads ``dataset:ab`` as node
``dataset``, port ``ab``).

``dot`` (Graphviz) is needed for SVG, PNG and PDF only; `.dot` and `.mmd` are text.
"""

from __future__ import annotations

import bisect
import html
import itertools
import json
import math
import os
import re
import shutil
import subprocess
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

import networkx as nx

from .errors import RenderError
from .model import KINDS, Node, human_size, is_hex, short_id
from .query import Subgraph

if TYPE_CHECKING:  # pragma: no cover
    from rich.tree import Tree

    from .api import Lineage
    from .store import Store

__all__ = [
    "AUTO_MAX_NODES",
    "DOT_MAX_NODES",
    "FOLD_MIN",
    "FORMATS",
    "INSTALL_HINT",
    "MARKS",
    "STYLE",
    "demo_diagram",
    "find_marks",
    "fold",
    "overview",
    "render",
    "to_dot",
    "to_html_fragment",
    "to_mermaid",
    "to_svg",
    "to_tree",
]

# ---------------------------------------------------------------------------
# the style table: one row per kind (PROV: entities ellipses, activities boxes,
# agents houses). `mermaid` is the pair of brackets giving the same shape there,
# `rich` the terminal colour, `plural` the word a folded group uses.

FONT = "Helvetica,Arial,sans-serif"

STYLE: dict[str, dict[str, Any]] = {
    "dataset": {"shape": "ellipse", "fillcolor": "#fde68a", "color": "#a16207", "plural": "datasets",
                "mermaid": ("([", "])"), "rich": "yellow"},
    "code": {"shape": "ellipse", "fillcolor": "#ddd6fe", "color": "#6d28d9", "plural": "code versions",
             "mermaid": ("([", "])"), "rich": "magenta"},
    "model": {"shape": "ellipse", "fillcolor": "#fdba74", "color": "#c2410c", "plural": "models",
              "mermaid": ("([", "])"), "rich": "dark_orange"},
    "prediction": {"shape": "ellipse", "fillcolor": "#bbf7d0", "color": "#15803d", "plural": "predictions",
                   "mermaid": ("([", "])"), "rich": "green"},
    "artifact": {"shape": "ellipse", "fillcolor": "#e2e8f0", "color": "#475569", "plural": "artifacts",
                 "mermaid": ("([", "])"), "rich": "grey70"},
    "environment": {"shape": "ellipse", "fillcolor": "#bae6fd", "color": "#0369a1", "plural": "environments",
                    "mermaid": ("([", "])"), "rich": "cyan"},
    "run": {"shape": "box", "style": "filled,rounded", "fillcolor": "#c7d2fe", "color": "#4338ca", "plural": "runs",
            "mermaid": ("[", "]"), "rich": "blue"},
    "agent": {"shape": "house", "fillcolor": "#fecdd3", "color": "#be123c", "plural": "agents",
              "mermaid": ("[/", "\\]"), "rich": "red"},
    # a folded group is drawn in the shape and colours of the kind it stands for,
    # doubled like a stack of cards; these are the fallbacks and the overlay.
    "group": {"shape": "ellipse", "fillcolor": "#f1f5f9", "color": "#64748b", "peripheries": 2, "plural": "groups",
              "mermaid": ("[[", "]]"), "rich": "white"},
    # the "… N more nodes not shown" remark of a max_nodes cut
    "note": {"shape": "note", "fillcolor": "#fffbeb", "color": "#a8a29e", "fontcolor": "#57534e", "plural": "notes",
             "mermaid": (">", "]"), "rich": "dim"},
}

#: overlays for emphasis: the highlighted path and the marks `status`/`verify` give.
MARKS: dict[str, dict[str, Any]] = {
    "highlight": {"color": "#be185d", "penwidth": 3.0, "rich": "bold magenta"},
    "stale": {"color": "#d97706", "penwidth": 2.5, "style": "dashed", "tag": "⚠ stale", "rich": "bold yellow"},
    "tampered": {"color": "#dc2626", "fillcolor": "#fee2e2", "penwidth": 3.0, "tag": "✗ tampered", "rich": "bold red"},
}

#: kinds in the order a diagram lists siblings and a legend shows them
KIND_ORDER = ("prediction", "model", "artifact", "run", "dataset", "code", "environment", "agent", "group")

#: the default folding threshold: this many look-alike siblings (same kind, same
#: neighbours by the same relations) become one node. Five, because up to four
#: siblings still read well side by side and their names are worth showing.
FOLD_MIN = 5

#: suffix -> what writes it
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot", ".mmd": "mermaid",
           ".html": "html", ".htm": "html"}

INSTALL_HINT = ("install Graphviz: apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS), "
                "or see graphviz.org/download")

#: above this many nodes (after folding) `dot` formats need an explicit max_nodes
DOT_MAX_NODES = 1000
#: what notebooks and reports draw of a bigger graph
AUTO_MAX_NODES = 200

_RANKDIR = {"LR": "RL", "RL": "LR", "TB": "BT", "TD": "BT", "BT": "TB"}  # data-flow direction -> graphviz's
_NAME_MAX = 40
_DOT_TIMEOUT = 120


# ---------------------------------------------------------------------------
# preparing a subgraph: folding, the max_nodes cut, the highlighted path


def _node_of(graph: nx.MultiDiGraph, node_id: str) -> Node:
    # G._node is the node-attribute dict networkx documents for subclassing; the
    # G.nodes[...] view costs several times more in the per-node loops here
    node = graph._node[node_id].get("node")
    if node is None:  # a bare networkx graph: make do with the id
        kind = node_id.split(":", 1)[0]
        node = Node(node_id, kind if kind in KINDS else "artifact")
    return node


def _kind_of(node: Node) -> str:
    """The kind a node is drawn as: a group's ``of`` kind for groups."""
    return str(node.attrs.get("of", "group")) if node.kind == "group" else node.kind


def _count_of(node: Node) -> int:
    return int(node.attrs.get("count", 1)) if node.kind == "group" else 1


def _sort_key(graph: nx.MultiDiGraph, node_id: str) -> tuple[int, str, str]:
    node = _node_of(graph, node_id)
    kind = node.kind
    return (KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), (node.name or "").lower(), node_id)


def _edge_key(rel: str, role: str | None) -> str:
    return rel if role is None else f"{rel}:{role}"


def _threshold(fold: bool | int) -> int:
    if fold is True:
        return FOLD_MIN
    if fold is False or fold is None:
        return 0
    return max(int(fold), 2)


def _fold_siblings(sub: Subgraph, threshold: int, keep: set[str],
                   marks: Mapping[str, str] | None = None) -> Subgraph:
    """Fold nodes of one kind that share exactly the same (neighbour, relation, role,
    direction) set and the same mark, ``threshold`` or more of them, into one group
    node (which carries their mark as ``attrs["mark"]``)."""
    marks = marks or {}
    g = sub.graph
    if not threshold or g.number_of_nodes() < threshold:
        return sub
    buckets: dict[tuple[Any, ...], list[str]] = {}
    succ, pred = g.succ, g.pred  # adjacency dicts: the views cost more than the work here
    for n, data in g.nodes(data=True):
        node = data.get("node")
        if n in keep or node is None or node.kind == "group":
            continue
        sig = frozenset(
            [(v, d.get("rel"), d.get("role"), 1) for v, keyed in succ[n].items() for d in keyed.values()]
            + [(u, d.get("rel"), d.get("role"), 0) for u, keyed in pred[n].items() for d in keyed.values()]
        )
        buckets.setdefault((node.kind, marks.get(n), sig), []).append(n)
    rep: dict[str, str] = {}
    groups: dict[str, Node] = {}
    used_ids = set(g.nodes)
    for (kind, mark, _), members in buckets.items():
        if len(members) < threshold:
            continue
        gid = _group_id(kind, len(members), used_ids)
        times = [t for t in (_node_of(g, m).created_at for m in members) if t]
        attrs: dict[str, Any] = {"of": kind, "count": len(members)}
        if times:
            attrs["first"], attrs["last"] = min(times), max(times)
        if mark:
            attrs["mark"] = mark
        groups[gid] = Node(gid, "group", None, attrs)
        for m in members:
            rep[m] = gid
    if not groups:
        return sub
    return _rebuild(sub, rep, groups)


def _rebuild(sub: Subgraph, rep: Mapping[str, str], new_nodes: Mapping[str, Node]) -> Subgraph:
    """A copy of ``sub`` with nodes replaced by their representatives (``rep``), parallel
    edges merged and self-loops dropped. A merged edge's ``count`` is the number of
    edges it stands for (a folded group's edge to a shared neighbour: one per member)."""
    g = sub.graph
    out = nx.MultiDiGraph()
    out.graph.update(g.graph)
    for n, data in g.nodes(data=True):
        r = rep.get(n, n)
        if r not in out:
            if r in new_nodes:
                out.add_node(r, node=new_nodes[r])
            else:
                out.add_node(r, **data)
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for u, v, d in g.edges(data=True):
        ru, rv = rep.get(u, u), rep.get(v, v)
        if ru == rv:
            continue
        key = (ru, rv, _edge_key(d.get("rel", ""), d.get("role")))
        n = int(d.get("count", 1))
        if key in merged:
            merged[key]["count"] += n
        else:
            merged[key] = {**d, "count": n}
    for (ru, rv, key), attrs in merged.items():
        if attrs["count"] == 1:
            del attrs["count"]
        out.add_edge(ru, rv, key=key, **attrs)
    root = sub.root if sub.root is None or sub.root in out else rep.get(sub.root)
    return Subgraph(out, root, direction=sub.direction)


def _bfs(g: nx.MultiDiGraph, starts: Sequence[str]) -> Iterator[str]:
    """Every node once, nearest the starts first (edges followed both ways, neighbours
    in a stable order); then the other components, biggest hubs first. Lazy: a caller
    that needs the nearest hundred does not pay for ordering thirty thousand."""
    keys: dict[str, tuple[int, str, str]] = {}

    def key(n: str) -> tuple[int, str, str]:
        k = keys.get(n)
        if k is None:
            k = keys[n] = _sort_key(g, n)
        return k

    succ, pred = g.succ, g.pred
    seen: set[str] = set()

    def walk(start: str) -> Iterator[str]:
        seen.add(start)
        queue = deque([start])
        while queue:
            n = queue.popleft()
            yield n
            for m in sorted(succ[n].keys() | pred[n].keys(), key=key):
                if m not in seen:
                    seen.add(m)
                    queue.append(m)

    for start in starts:
        if start in g and start not in seen:
            yield from walk(start)
    if len(seen) < g.number_of_nodes():
        for start in sorted(g.nodes, key=lambda n: (-g.degree(n), key(n))):
            if start not in seen:
                yield from walk(start)


_SEVERITY = (None, "stale", "tampered")


def _mark_of(g: nx.MultiDiGraph, n: str, marks: Mapping[str, str] | None) -> str | None:
    node = _node_of(g, n)
    return node.attrs.get("mark") if node.kind == "group" else (marks or {}).get(n)


def _limit(sub: Subgraph, max_nodes: int | None, force: Sequence[str],
           marks: Mapping[str, str] | None = None) -> Subgraph:
    """Keep at most ``max_nodes`` nodes, nearest the root first (and every node of
    ``force``); fold the rest into one group per kind. ``graph.graph["hidden"]`` is the
    number of original nodes left out (groups count what they stand for)."""
    g = sub.graph
    if max_nodes is None or g.number_of_nodes() <= max_nodes:
        return sub
    starts = [n for n in [sub.root, *force] if n is not None and n in g]
    forced = list(dict.fromkeys(starts))
    forced_set = set(forced)
    budget = max(max_nodes - len(forced), 0)
    candidates = list(itertools.islice((n for n in _bfs(g, starts) if n not in forced_set), budget))
    taken = forced_set.union(candidates)
    beyond = [n for n in g.nodes if n not in taken]
    beyond_kinds = {_kind_of(_node_of(g, n)) for n in beyond}
    # distinct kinds among what is left out when only candidates[:i] are kept, so
    # the overflow groups (one per kind) fit in the budget too
    suffix_kinds = [0] * (len(candidates) + 1)
    seen_kinds = set(beyond_kinds)
    suffix_kinds[len(candidates)] = len(seen_kinds)
    for i in range(len(candidates) - 1, -1, -1):
        seen_kinds.add(_kind_of(_node_of(g, candidates[i])))
        suffix_kinds[i] = len(seen_kinds)
    k = len(candidates)
    while k > 0 and len(forced) + k + suffix_kinds[k] > max_nodes:
        k -= 1
    rest = candidates[k:] + beyond
    if not rest:
        return sub
    if not rest:
        return sub
    per_kind: dict[str, list[str]] = {}
    for n in rest:
        per_kind.setdefault(_kind_of(_node_of(g, n)), []).append(n)
    rep: dict[str, str] = {}
    groups: dict[str, Node] = {}
    hidden = 0
    used_ids = set(g.nodes)
    for kind, members in per_kind.items():
        count = sum(_count_of(_node_of(g, m)) for m in members)
        hidden += count
        gid = _group_id(kind, count, used_ids)
        attrs: dict[str, Any] = {"of": kind, "count": count, "overflow": True}
        # a tampered node must not vanish into "37 more runs" unremarked
        worst = max((_mark_of(g, m, marks) for m in members), key=_SEVERITY.index)
        if worst:
            attrs["mark"] = worst
        groups[gid] = Node(gid, "group", None, attrs)
        for m in members:
            rep[m] = gid
    out = _rebuild(sub, rep, groups)
    out.graph.graph["hidden"] = hidden + int(g.graph.get("hidden", 0))
    out.graph.graph["max_nodes"] = max_nodes
    return out


def _group_id(kind: str, count: int, used: set[str]) -> str:
    """The id of a folded group, ``group:<kind>:<count>`` as the JSON contract has it;
    a second group of the same kind and size gets ``:2``, ``:3``… appended. Adds the
    id to ``used``."""
    gid = base = f"group:{kind}:{count}"
    k = 1
    while gid in used:
        k += 1
        gid = f"{base}:{k}"
    used.add(gid)
    return gid


def fold(subgraph: Subgraph, *, fold: bool | int = True, max_nodes: int | None = None,
         keep: Iterable[str] = (), marked: Mapping[str, str] | None = None) -> Subgraph:
    """The subgraph as a diagram draws it: a new `Subgraph` (the input is not changed).

    Folding: nodes of one kind that share exactly the same neighbours by the same
    relations (and roles, and directions), `FOLD_MIN` (5) or more of them, become one
    group node of kind ``group`` with ``{"of": kind, "count": n}`` ("10,000
    predictions"). ``fold=False`` shows every node; ``fold=N`` folds groups of N or more.
    The root and the nodes in ``keep`` are never folded; nodes with different
    ``marked`` marks never fold together (a group carries its members' mark).

    ``max_nodes``: keep the nodes nearest the root (breadth-first, edges followed both
    ways) and fold the rest into one group per kind, so the result has at most
    ``max_nodes`` nodes (more only when ``keep`` alone is bigger).
    ``result.graph.graph["hidden"]`` then counts the nodes left out.
    """
    keep = [k for k in keep if k in subgraph.graph]
    protect = set(keep) | ({subgraph.root} if subgraph.root else set())
    out = _fold_siblings(subgraph, _threshold(fold), protect, marked)
    return _limit(out, max_nodes, keep, marked)


def _as_ids(refs: Any) -> list[str]:
    if refs is None:
        return []
    if isinstance(refs, (str, Node)):
        refs = [refs]
    return [r.id if isinstance(r, Node) else str(r) for r in refs]


# A highlighted path should follow the data: `was_informed_by` abbreviates run -> entity
# -> run, and a detour through the agent who ran everything says nothing.
_PATH_COST = {"was_informed_by": 2.5, "was_associated_with": 4.0, "was_attributed_to": 4.0}


def _path_cost(u: str, v: str, edges: Mapping[Any, Mapping[str, Any]]) -> float:
    return min(_PATH_COST.get(str(d.get("rel")), 1.0) for d in edges.values())


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
    by_name = [n for n in g if _node_of(g, n).name == (rest if sep and kind in KINDS else ref)
               and (not sep or kind not in KINDS or _node_of(g, n).kind == kind)]
    found = by_prefix or by_name
    if len(found) == 1:
        return found[0]
    if found:
        short = _short_ids(sorted(found)[:5], g.nodes)
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


class _Prepared:
    """A subgraph ready to draw, with its emphasis worked out."""

    def __init__(self, sub: Subgraph, hl_nodes: set[str], hl_pairs: set[frozenset[str]],
                 marked: Mapping[str, str], all_ids: Iterable[str]) -> None:
        self.sub = sub
        self.g = sub.graph
        self.hl_nodes = hl_nodes
        self.hl_pairs = hl_pairs
        self.marked = {k: v for k, v in marked.items() if k in self.g}
        for n in self.g.nodes:  # folded groups carry their members' mark
            mark = _node_of(self.g, n).attrs.get("mark") if n.startswith("group:") else None
            if mark in MARKS:
                self.marked[n] = mark
        self.hidden = int(self.g.graph.get("hidden", 0))
        # short ids tell apart every node of the subgraph, folded ones included
        self.short = _short_ids(list(self.g.nodes), all_ids)
        self.max_nodes = self.g.graph.get("max_nodes")

    def edge_highlighted(self, u: str, v: str) -> bool:
        return frozenset((u, v)) in self.hl_pairs


def _prepare(subgraph: Subgraph, *, highlight: Any = (), marked: Mapping[str, str] | None = None,
             max_nodes: int | None = None, fold: bool | int = True) -> _Prepared:
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
    folded = _fold_siblings(subgraph, _threshold(fold), protect, marked)
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
    limited = _limit(folded, int(max_nodes) if max_nodes is not None else None,
                     [*(n for p in paths for n in p), *targets], marked)
    return _Prepared(limited, hl_nodes, pairs, marked, subgraph.graph.nodes)


# ---------------------------------------------------------------------------
# labels: a human name, the short id, and the one or two facts that matter


def _clean(text: Any, limit: int = _NAME_MAX) -> str:
    """User text on one line: control characters dropped, newlines as spaces, cut to
    ``limit`` characters with an ellipsis."""
    s = str(text)
    s = re.sub(r"[\r\n\t\v\f]+", " ", s)
    s = "".join(ch for ch in s if ch.isprintable() or ch == " ")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _num(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return _clean(v, 16)
    if math.isnan(f) or math.isinf(f):
        return str(f)
    if f == int(f) and abs(f) < 1e15:
        return f"{int(f):,}"
    a = abs(f)
    if a >= 1000:
        return f"{f:,.0f}"
    if a >= 100:
        return f"{f:.1f}"
    return f"{f:.3g}" if a >= 0.001 else f"{f:.2e}"


def _duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return ""
    if s < 0.1:
        return "< 0.1 s"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


_METRIC_PREFERENCE = ("accuracy", "f1", "roc_auc", "auc", "r2", "rmse", "mae", "mse", "log_loss", "loss",
                      "precision", "recall")


def _main_metric(metrics: Any) -> tuple[str, Any] | None:
    if not isinstance(metrics, Mapping) or not metrics:
        return None
    for key in _METRIC_PREFERENCE:
        if metrics.get(key) is not None:
            return key, metrics[key]
    key = sorted(metrics)[0]
    return key, metrics[key]


def _model_metric(node: Node, g: nx.MultiDiGraph) -> tuple[str, Any] | None:
    """The model's main metric: its own attrs first, else those of the run in this
    subgraph that generated it (render never asks the store)."""
    found = _main_metric(node.attrs.get("metrics"))
    if found or node.id not in g:
        return found
    for _, run_id, d in g.out_edges(node.id, data=True):
        if d.get("rel") == "was_generated_by":
            found = _main_metric(_node_of(g, run_id).attrs.get("metrics"))
            if found:
                return found
    return None


def _plural(kind: str, count: int) -> str:
    if count == 1:
        return {"code": "code version"}.get(kind, kind)
    return STYLE.get(kind, {}).get("plural", kind + "s")


def _title(node: Node) -> str:
    """The first line: a human name."""
    a = node.attrs
    if node.kind == "group":
        kind = _kind_of(node)
        count = _count_of(node)
        if a.get("overflow"):
            return f"{count:,} more {_plural(kind, count)}"
        if a.get("names"):
            return f"{count:,} other {_plural(kind, count)}"
        if node.name and kind != "prediction":
            return _clean(node.name)
        return f"{count:,} {_plural(kind, count)}"
    if node.kind == "prediction":
        rid = a.get("request_id")
        return f"request {_clean(rid, 30)}" if rid else "prediction"
    return _clean(node.name) if node.name else node.kind


def _facts(node: Node, g: nx.MultiDiGraph) -> list[str]:
    """The one or two facts that matter about a node, as short strings."""
    a = node.attrs
    k = node.kind
    out: list[str] = []
    if k == "group":
        kind = _kind_of(node)
        count = _count_of(node)
        if a.get("names"):  # an overview's "other names" group
            out.append(f"under {int(a['names']):,} names" if kind != "prediction"
                       else f"of {int(a['names']):,} models")
        elif a.get("overview") and node.name:
            if kind == "prediction":  # named after their model
                out.append(f"of {_clean(node.name)}")
            elif count > 1:
                word = "versions" if kind in ("dataset", "model", "code", "environment", "artifact") else _plural(kind, count)
                out.append(f"{count:,} {word}")
        elif node.name and kind != "prediction" and f"{count:,}" not in node.name:
            out.append(f"{count:,} {_plural(kind, count)}")
        if a.get("first") and a.get("last"):
            first, last = str(a["first"])[:10], str(a["last"])[:10]
            out.append(first if first == last else f"{first} … {last}")
    elif k == "dataset":
        if a.get("rows") is not None:
            out.append(f"{_num(a['rows'])} rows")
        if a.get("remote") or a.get("uri"):
            out.append(_clean(str(a.get("uri", "")).split("://", 1)[0] + " remote", 24))
        elif a.get("size") is not None:
            out.append(human_size(a["size"]))
    elif k == "run":
        status = str(a.get("status") or "")
        bits = [_clean(status, 12)] if status else []
        if a.get("duration_s") is not None:
            bits.append(_duration(a["duration_s"]))
        if status in ("failed", "crashed") and a.get("exit_code") not in (None, 0):
            bits.append(f"exit {_clean(a['exit_code'], 6)}")
        if bits:
            out.append(" · ".join(bits))
        if a.get("experiment") and a.get("experiment") != "default":
            out.append(f"exp {_clean(a['experiment'], 24)}")
    elif k == "model":
        metric = _model_metric(node, g)
        if metric:
            out.append(f"{_clean(metric[0], 16)} {_num(metric[1])}")
        cls = str(a.get("class") or "").rsplit(".", 1)[-1]
        if cls and cls != node.name:
            out.append(_clean(cls, 28))
    elif k == "prediction":
        bits = []
        if "output" in a:
            bits.append("→ " + _clean(json.dumps(a.get("output"), ensure_ascii=False, default=str), 20))
        if a.get("score") is not None:
            bits.append(f"score {_num(a['score'])}")
        if bits:
            out.append(" · ".join(bits))
    elif k == "code":
        if a.get("commit"):
            out.append(f"git {_clean(a['commit'], 40)[:8]}{' (dirty)' if a.get('dirty') else ''}")
        elif a.get("entry_point") and a.get("entry_point") != node.name:
            out.append(_clean(a["entry_point"]))
        else:
            out.append("not in git")
    elif k == "environment":
        bits = []
        packages = a.get("packages")
        if isinstance(packages, Mapping):
            bits.append(f"{len(packages)} packages")
        if a.get("platform"):
            bits.append(_clean(str(a["platform"]).split("-", 1)[0], 12))
        if bits:
            out.append(" · ".join(bits))
    elif k == "agent":
        where = a.get("email") or a.get("host")  # who answers for it, else where it ran
        if where:
            out.append(_clean(where, 30))
    elif k == "artifact":
        bits = [_clean(a["format"], 10)] if a.get("format") else []
        if a.get("size") is not None:
            bits.append(human_size(a["size"]))
        if bits:
            out.append(" · ".join(bits))
    return [f for f in out if f][:2]


def _fact_lines(facts: Sequence[str]) -> list[str]:
    """Two short facts share a line; long ones get a line each."""
    if len(facts) == 2 and len(facts[0]) + len(facts[1]) <= 26:
        return [f"{facts[0]} · {facts[1]}"]
    return list(facts)


# Generated ids (UUIDv7) start with a millisecond timestamp: their first 12 hex digits
# are the same for everything logged in the same millisecond, 8 for the same minute.
_MIN_SHORT = {"run": 12, "prediction": 12}


def _short_ids(drawn: Iterable[str], universe: Iterable[str] = ()) -> dict[str, str]:
    """``kind:prefix`` for each drawn id: the shortest prefix that tells it apart from
    every other id of its kind in ``drawn`` and ``universe`` (as git abbreviates
    commits), at least 8 hex digits (12 for time-ordered ids). Unique within the
    subgraph, folded nodes included, so it works as a reference."""
    by_kind: dict[str, list[str]] = {}
    for node_id in itertools.chain(drawn, universe):
        kind, sep, rest = node_id.partition(":")
        if sep and kind != "group":
            by_kind.setdefault(kind, []).append(rest)
    sorted_hex = {kind: sorted(set(hexes)) for kind, hexes in by_kind.items()}
    out: dict[str, str] = {}
    for node_id in drawn:
        kind, sep, h = node_id.partition(":")
        if not sep or kind == "group":
            continue
        hexes = sorted_hex[kind]
        i = bisect.bisect_left(hexes, h)
        need = _MIN_SHORT.get(kind, 8)
        for j in (i - 1, i + 1):
            if 0 <= j < len(hexes):
                need = max(need, len(os.path.commonprefix([h, hexes[j]])) + 1)
        out[node_id] = short_id(node_id, need)
    return out


def _id_line(node: Node, short: Mapping[str, str]) -> str:
    if node.kind == "group":
        return ""
    return short.get(node.id) or short_id(node.id, _MIN_SHORT.get(node.kind, 8))


def _edge_text(d: Mapping[str, Any]) -> str:
    rel = str(d.get("rel") or "")
    role = d.get("role")
    text = f"{rel} ({_clean(role, 16)})" if role else rel
    if d.get("count", 1) > 1:
        text += f" ×{int(d['count']):,}"
    return _clean(text, 48)


# ---------------------------------------------------------------------------
# DOT


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
    lines = [f"<B>{_esc(_title(node))}</B>"]
    for fact in _fact_lines(_facts(node, g)):
        lines.append(f'<FONT POINT-SIZE="10">{_esc(fact)}</FONT>')
    id_line = _id_line(node, short)
    if id_line:
        lines.append(f'<FONT POINT-SIZE="9" COLOR="#475569">{_esc(id_line)}</FONT>')
    if mark:
        lines.append(f'<FONT POINT-SIZE="10" COLOR="{MARKS[mark]["color"]}"><B>{_esc(MARKS[mark]["tag"])}</B></FONT>')
    return _Html("<BR/>".join(lines))


def _node_style(node: Node, *, root: bool, highlighted: bool, mark: str | None) -> dict[str, Any]:
    kind = _kind_of(node)
    base = STYLE.get(kind, STYLE["group"])
    style = {"shape": base["shape"], "style": base.get("style", "filled"), "fillcolor": base["fillcolor"],
             "color": base["color"], "penwidth": 1.2}
    if node.kind == "group" and _count_of(node) > 1:
        style["peripheries"] = STYLE["group"]["peripheries"]
    if node.kind == "group":
        if node.attrs.get("overflow"):
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
        return f"{_count_of(node):,} {_plural(_kind_of(node), _count_of(node))}"
    return node.id


_AGENT_RELATIONS = ("was_associated_with", "was_attributed_to")
_FEW_AGENT_EDGES = 8


def _dot_source(p: _Prepared, rankdir: str, *, dpi: int | None = None) -> str:
    g = p.g
    direction = _RANKDIR.get(str(rankdir).upper())
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
        node = _node_of(g, n)
        mark = p.marked.get(n)
        attrs = _node_style(node, root=n == p.sub.root, highlighted=n in p.hl_nodes, mark=mark)
        attrs["label"] = _node_label(node, g, mark, p.short)
        attrs["tooltip"] = _tooltip(node)
        lines.append(f"  n{i} [{_attrs(attrs)}];")
    if p.hidden:
        limit = f" (max_nodes={p.max_nodes})" if p.max_nodes else ""
        note = STYLE["note"]
        lines.append(f"  n{len(ids)} [{_attrs({'shape': note['shape'], 'style': 'filled', 'fillcolor': note['fillcolor'], 'color': note['color'], 'fontcolor': note['fontcolor'], 'label': _Html(_esc(f'… {p.hidden:,} more nodes not shown{limit}')), 'tooltip': 'left out to keep the diagram readable'})}];")
    agent_edges = sum(1 for _, _, d in g.edges(data=True) if d.get("rel") in _AGENT_RELATIONS)
    for u, v, d in g.edges(data=True):
        attrs: dict[str, Any] = {"label": _Html(_esc(_edge_text(d)))}
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
                    attrs["tooltip"] = _edge_text(d)
                    del attrs["label"]
        lines.append(f"  {ids[u]} -> {ids[v]} [{_attrs(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


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
    p = _prepare(subgraph, highlight=highlight, marked=marked, max_nodes=max_nodes, fold=fold)
    return _dot_source(p, rankdir)


# ---------------------------------------------------------------------------
# running dot


def _dot_program() -> str:
    found = shutil.which("dot")
    if found is None:
        raise RenderError(f"drawing SVG, PNG or PDF needs Graphviz's `dot` program, which is not installed; "
                          f"{INSTALL_HINT} (.dot and .mmd work without it)")
    return found


def _run_dot(source: str, fmt: str) -> bytes:
    program = _dot_program()
    try:
        proc = subprocess.run([program, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True,
                              timeout=_DOT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"dot took longer than {_DOT_TIMEOUT} s; draw fewer nodes (max_nodes=100)") from None
    except OSError as exc:
        raise RenderError(f"could not run {program}: {exc.strerror}") from None
    if proc.returncode != 0 or not proc.stdout:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"dot failed: {msg[0] if msg else f'exit code {proc.returncode}'}")
    return proc.stdout


def _laid_out(subgraph: Subgraph, options: Mapping[str, Any], *, auto_limit: bool = False) -> _Prepared:
    """The prepared graph for a format `dot` lays out. Graphviz takes minutes on
    thousands of nodes, so past `DOT_MAX_NODES` (after folding) it is refused unless
    the caller chose ``max_nodes``; with ``auto_limit`` (notebooks, reports) the
    nearest `AUTO_MAX_NODES` are drawn instead, with the usual note."""
    opts = {k: v for k, v in options.items() if k != "rankdir"}
    p = _prepare(subgraph, **opts)
    if opts.get("max_nodes") is None and len(p.g) > DOT_MAX_NODES:
        if auto_limit:
            return _prepare(subgraph, **{**opts, "max_nodes": AUTO_MAX_NODES})
        raise RenderError(f"{len(p.g):,} nodes even after folding: more than Graphviz lays out in reasonable time; "
                          f"pass max_nodes (say 200) to draw the ones nearest the root, or write .dot or .mmd")
    return p


def to_svg(subgraph: Subgraph, **options: Any) -> str:
    """The diagram as SVG text, drawn by Graphviz's ``dot`` (options as `to_dot`).

    Raises RenderError, with how to install Graphviz, when ``dot`` is not installed,
    and when more than `DOT_MAX_NODES` nodes are left after folding and no
    ``max_nodes`` was given.
    """
    _dot_program()
    p = _laid_out(subgraph, options)
    return _run_dot(_dot_source(p, options.get("rankdir", "LR")), "svg").decode("utf-8")


# ---------------------------------------------------------------------------
# Mermaid

_MERMAID_SAFE = re.compile(r"[A-Za-z0-9 _.,()+\-=@/'%…·×→⚠✗]")


def _mm(text: str) -> str:
    """Text for a quoted Mermaid label: anything beyond a conservative set of characters
    becomes a numeric entity code (``#34;``), which Mermaid turns into ``&#34;`` - so
    quotes, ``<``, ``#``, backticks and ``:`` are data, never syntax or markup."""
    return "".join(ch if _MERMAID_SAFE.match(ch) or (ord(ch) > 127 and ch.isalnum()) else f"#{ord(ch)};"
                   for ch in text)


def to_mermaid(subgraph: Subgraph, *, highlight: Any = (), marked: Mapping[str, str] | None = None,
               max_nodes: int | None = None, fold: bool | int = True, rankdir: str = "LR") -> str:
    """The diagram as a Mermaid flowchart (renders on GitHub and in Markdown viewers).

    Options as `to_dot`. Mermaid's layout gives up around 500 edges; use ``max_nodes``.
    """
    p = _prepare(subgraph, highlight=highlight, marked=marked, max_nodes=max_nodes, fold=fold)
    g = p.g
    direction = _RANKDIR.get(str(rankdir).upper())
    if direction is None:
        raise RenderError(f"unknown rankdir {rankdir!r}; expected LR (left to right) or TB (top to bottom)")
    lines = [f"flowchart {direction}"]
    ids: dict[str, str] = {}
    classes: dict[str, list[str]] = {}
    for i, n in enumerate(g.nodes):
        ids[n] = f"n{i}"
        node = _node_of(g, n)
        kind = _kind_of(node)
        mark = p.marked.get(n)
        parts = [_title(node), *_fact_lines(_facts(node, g))]
        if _id_line(node, p.short):
            parts.append(_id_line(node, p.short))
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
        lines.append(f'  {ids[u]} -->|"{_mm(_edge_text(d))}"| {ids[v]}')
        if p.edge_highlighted(u, v):
            bold.append(str(i))
    for name, members in classes.items():
        s = MARKS.get(name) if name in MARKS else STYLE.get(name)
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
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# HTML

_CSS = """
.lineage-diagram{font-family:Helvetica,Arial,sans-serif;color:#111827}
.lineage-diagram svg{max-width:100%;height:auto}
.lineage-diagram table{border-collapse:collapse;font-size:13px}
.lineage-diagram th,.lineage-diagram td{border:1px solid #e5e7eb;padding:3px 8px;text-align:left;vertical-align:top}
.lineage-diagram code{font-size:12px}
.lineage-diagram .hint{color:#6b7280;font-size:12px}
.lineage-diagram .swatch{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px;border:1px solid}
.lineage-diagram .mark{font-weight:bold}
"""


def _inline_svg(svg: str) -> str:
    """dot's SVG for embedding in HTML: no XML prolog, doctype or comments, and scaled
    to the page (the viewBox keeps its proportions)."""
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    return svg.strip()


def _html_table(p: _Prepared) -> str:
    """The no-Graphviz view: nodes and edges as escaped HTML tables."""
    g = p.g
    rows = []
    for n in g.nodes:
        node = _node_of(g, n)
        kind = _kind_of(node)
        s = STYLE.get(kind, STYLE["group"])
        mark = p.marked.get(n)
        mark_html = f' <span class="mark" style="color:{MARKS[mark]["color"]}">{html.escape(MARKS[mark]["tag"])}</span>' if mark else ""
        name = html.escape(_title(node))
        if n in p.hl_nodes or n == p.sub.root:
            name = f"<b>{name}</b>"
        rows.append(
            f'<tr><td><span class="swatch" style="background:{s["fillcolor"]};border-color:{s["color"]}"></span>'
            f'{html.escape(kind)}</td><td>{name}{mark_html}</td><td><code>{html.escape(_id_line(node, p.short))}</code></td>'
            f"<td>{html.escape(' · '.join(_facts(node, g)))}</td></tr>"
        )
    edges = []
    for u, v, d in g.edges(data=True):
        a, b = _node_of(g, u), _node_of(g, v)
        style = ' style="font-weight:bold"' if p.edge_highlighted(u, v) else ""
        edges.append(f"<tr{style}><td>{html.escape(_title(a))}</td><td>{html.escape(_edge_text(d))}</td>"
                     f"<td>{html.escape(_title(b))}</td></tr>")
    hidden = f'<p class="hint">… {p.hidden:,} more nodes not shown</p>' if p.hidden else ""
    return (
        '<p class="hint">Graphviz is not installed, so this is the table view; for the diagram, '
        f"{html.escape(INSTALL_HINT)}.</p>"
        "<table><thead><tr><th>kind</th><th>name</th><th>id</th><th>facts</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>" + hidden
        + "<p></p><table><thead><tr><th>from</th><th>relation</th><th>to</th></tr></thead><tbody>"
        + "".join(edges) + "</tbody></table>"
    )


def to_html_fragment(subgraph: Subgraph, **options: Any) -> str:
    """An HTML ``<div>`` showing the diagram: the SVG inline when ``dot`` is installed,
    else an escaped table of nodes and edges. Self-contained (inline CSS, no external
    references), for notebooks and the audit report. Options as `to_dot`."""
    # past DOT_MAX_NODES nodes (and no max_nodes) the nearest AUTO_MAX_NODES are shown
    p = _laid_out(subgraph, options, auto_limit=True)
    if shutil.which("dot"):
        body = _inline_svg(_run_dot(_dot_source(p, options.get("rankdir", "LR")), "svg").decode("utf-8"))
    else:
        body = _html_table(p)
    return f'<div class="lineage-diagram"><style>{_CSS.strip()}</style>{body}</div>'


def _legend(sub: Subgraph) -> str:
    kinds = []
    for n in sub.graph.nodes:
        k = _kind_of(_node_of(sub.graph, n))
        if k in STYLE and k not in kinds:
            kinds.append(k)
    kinds.sort(key=lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else 99)
    items = "".join(
        f'<span style="margin-right:12px"><span class="swatch" style="background:{STYLE[k]["fillcolor"]};'
        f'border-color:{STYLE[k]["color"]}"></span>{html.escape(k)}</span>' for k in kinds)
    return f'<p class="hint">{items}</p>'


def _html_page(subgraph: Subgraph, **options: Any) -> str:
    root = subgraph.root
    if root and root in subgraph.graph:
        node = _node_of(subgraph.graph, root)
        what = "Upstream" if subgraph.direction != "downstream" else "Downstream"
        title = f"{what} lineage of {_title(node)} ({_id_line(node, _short_ids([root], subgraph.graph.nodes))})"
    else:
        title = "Lineage overview"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title>"
        # a page of its own: the diagram at its natural size (readable), scrolled when wide
        "<style>body{margin:24px;font-family:Helvetica,Arial,sans-serif}h1{font-size:18px;font-weight:600}"
        ".lineage-diagram{overflow-x:auto}.lineage-diagram svg{max-width:none!important}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>\n"
        + to_html_fragment(subgraph, **options).replace('<div class="lineage-diagram">',
                                                         f'<div class="lineage-diagram">{_legend(subgraph)}', 1)
        + '\n<p class="hint" style="font-family:Helvetica,Arial,sans-serif;color:#6b7280;font-size:12px">'
        "Arrows point from a thing to what it depends on (W3C PROV). Hover a node for its full id.</p>"
        "\n</body></html>\n"
    )


# ---------------------------------------------------------------------------
# files


def render(subgraph: Subgraph, path: str | os.PathLike[str], **options: Any) -> Path:
    """Write the diagram to ``path``; the suffix picks the format: ``.svg``, ``.png``,
    ``.pdf`` (through Graphviz's ``dot``), ``.dot``, ``.mmd`` (Mermaid) or ``.html`` (one
    self-contained page, SVG inline). Options as `to_dot`. Returns the path written.

    Raises RenderError for an unknown suffix (listing the supported ones) and, for
    SVG/PNG/PDF, when ``dot`` is not installed (saying how to install it).
    """
    target = Path(path)
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        supported = " ".join(s for s in FORMATS if s not in (".gv", ".htm"))
        raise RenderError(f"cannot draw {target.name!r}: unknown format {target.suffix or '(no suffix)'}; "
                          f"use one of {supported}")
    if fmt in ("svg", "png", "pdf"):
        _dot_program()  # fail before any work, and before touching the file system
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderError(f"cannot write {target}: {exc.strerror}") from None
    if fmt == "dot":
        data: bytes = to_dot(subgraph, **options).encode("utf-8")
    elif fmt == "mermaid":
        data = to_mermaid(subgraph, **options).encode("utf-8")
    elif fmt == "html":
        data = _html_page(subgraph, **options).encode("utf-8")
    else:
        p = _laid_out(subgraph, options)
        data = _run_dot(_dot_source(p, options.get("rankdir", "LR"), dpi=144 if fmt == "png" else None), fmt)
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise RenderError(f"cannot write {target}: {exc.strerror}") from None
    return target


# ---------------------------------------------------------------------------
# the terminal tree


# trees expand the data path first: shortcuts and agents come after
_REL_ORDER = {"used": 0, "was_generated_by": 0, "was_derived_from": 0, "was_informed_by": 1, "was_revision_of": 1,
              "was_associated_with": 2, "was_attributed_to": 2}
_ROLE_ORDER = {"training": 0, "input": 1, "evaluation": 2, "code": 3, "environment": 4}

# how an edge reads from its far end, for trees that walk downstream
_INVERSE = {"used": "used by", "was_generated_by": "generated", "was_derived_from": "derived into",
            "was_associated_with": "ran", "was_attributed_to": "responsible for", "was_informed_by": "informed",
            "was_revision_of": "revised by"}


def _tree_edge_text(d: Mapping[str, Any], downstream: bool) -> str:
    if not downstream:
        return _edge_text(d)
    return _edge_text({**d, "rel": _INVERSE.get(str(d.get("rel")), str(d.get("rel")))})


def _tree_label(node: Node, g: nx.MultiDiGraph, short: Mapping[str, str], *, rel: str | None,
                highlighted: bool, mark: str | None, seen: bool) -> Any:
    from rich.text import Text

    kind = _kind_of(node)
    colour = STYLE.get(kind, STYLE["group"])["rich"]
    text = Text()
    if rel:
        text.append(f"{rel} ", style="dim")
    name_style = f"bold {colour}"
    if highlighted:
        name_style += " underline"
    text.append(_title(node), style=name_style)
    id_line = _id_line(node, short)
    if id_line:
        text.append(f"  {id_line}", style="dim cyan")
    facts = _facts(node, g)
    if facts and not seen:
        text.append("  " + " · ".join(facts))
    if mark:
        text.append(f"  {MARKS[mark]['tag']}", style=MARKS[mark]["rich"])
    if seen:
        text.append("  (see above)", style="dim italic")
    return text


def to_tree(subgraph: Subgraph, *, highlight: Any = (), marked: Mapping[str, str] | None = None,
            max_nodes: int | None = None, fold: bool | int = True) -> "Tree":
    """The subgraph as a `rich.tree.Tree` for the terminal.

    Upstream (a trace): the root at the top, each node's children are what it depends
    on. Downstream (an impact): children are what depends on it. A node reached a
    second time (shared, or a cycle) is shown once more as "(see above)"; folded groups
    are one line ("10,000 predictions"). Options as `to_dot`.
    """
    from rich.text import Text
    from rich.tree import Tree

    p = _prepare(subgraph, highlight=highlight, marked=marked, max_nodes=max_nodes, fold=fold)
    g = p.g
    downstream = p.sub.direction == "downstream"

    def children(n: str) -> list[tuple[str, Mapping[str, Any]]]:
        pairs = ([(u, d) for u, _, d in g.in_edges(n, data=True)] if downstream
                 else [(v, d) for _, v, d in g.out_edges(n, data=True)])
        return sorted(pairs, key=lambda pair: (_REL_ORDER.get(str(pair[1].get("rel")), 1),
                                               _ROLE_ORDER.get(str(pair[1].get("role")), 9),
                                               _sort_key(g, pair[0]), _edge_text(pair[1])))

    def label(n: str, rel: str | None, highlighted: bool, again: bool) -> Any:
        return _tree_label(_node_of(g, n), g, p.short, rel=rel, highlighted=highlighted, mark=p.marked.get(n),
                           seen=again)

    root = p.sub.root if p.sub.root in g else None
    if root is not None:
        tree = Tree(label(root, None, root in p.hl_nodes, False), guide_style="dim")
        tops: list[tuple[str, Any]] = [(root, tree)]
    else:  # an overview: start from what nothing else depends on
        n_nodes = sum(_count_of(_node_of(g, n)) for n in g.nodes)
        tree = Tree(Text(f"lineage overview: {n_nodes:,} nodes", style="bold"), guide_style="dim")
        heads = [n for n in g.nodes if (g.out_degree(n) if downstream else g.in_degree(n)) == 0]
        heads.sort(key=lambda n: _sort_key(g, n))
        tops = [(n, None) for n in heads]
    expanded: set[str] = set()
    for top, branch in tops:
        if top in expanded:
            continue
        if branch is None:
            branch = tree.add(label(top, None, top in p.hl_nodes, False))
        expanded.add(top)
        # preorder depth-first with an explicit stack (deep chains do not hit the
        # recursion limit); a node is expanded where it first appears, so every later
        # "(see above)" points up
        stack = [(branch, top, iter(children(top)))]
        while stack:
            parent_branch, n, it = stack[-1]
            step = next(it, None)
            if step is None:
                stack.pop()
                continue
            child, d = step
            again = child in expanded
            lit = p.edge_highlighted(n, child) or (child in p.hl_nodes and not p.hl_pairs)
            child_branch = parent_branch.add(label(child, _tree_edge_text(d, downstream), lit, again))
            if not again:
                expanded.add(child)
                stack.append((child_branch, child, iter(children(child))))
    seen = expanded
    # nodes not reachable from the root in this direction (a subgraph built by hand)
    if root is not None:
        for n in sorted((m for m in g.nodes if m not in seen), key=lambda m: _sort_key(g, m)):
            tree.add(_tree_label(_node_of(g, n), g, p.short, rel="(not connected)", highlighted=False,
                                 mark=p.marked.get(n), seen=False))
    if p.hidden:
        tree.add(Text(f"… {p.hidden:,} more nodes not shown (max_nodes={p.max_nodes})", style="dim"))
    return tree


# ---------------------------------------------------------------------------
# the whole store, from aggregates


def overview(store: "Store", *, per_kind: int = 12) -> Subgraph:
    """A diagram-sized summary of the whole store, built from aggregate queries only
    (`Store.overview_counts`), never by loading nodes.

    One group node per (kind, name) with its count - predictions grouped by the name of
    their model - and edges between groups, counted. A kind with more than ``per_kind``
    names shows its ``per_kind`` biggest names that stand for two nodes or more; its
    other names share one group ("10,000 other runs"), so a store where every run has
    its own name still gives a readable picture.

    Group nodes have kind ``group`` and ``attrs={"of", "count", "overview": True}`` (plus
    ``"names"``: how many names an "other" group stands for); ``root`` is None and
    ``direction`` is ``"overview"``.
    """
    groups, edges = store.overview_counts()
    by_kind: dict[str, list[tuple[str | None, int]]] = {}
    for kind, name, count in groups:
        by_kind.setdefault(kind, []).append((name, int(count)))
    g = nx.MultiDiGraph()
    ids: dict[tuple[str, str | None], str] = {}
    used_ids: set[str] = set()
    for kind in sorted(by_kind, key=lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else 99):
        items = sorted(by_kind[kind], key=lambda t: (-t[1], t[0] or ""))
        # never "1 other name"; among many names, one that stands for a single node is
        # noise (a store where every run has its own name), so only repeated names show
        shown = items if len(items) <= per_kind + 1 else [it for it in items[:per_kind] if it[1] > 1]
        for name, count in sorted(shown, key=lambda t: t[0] or ""):
            gid = _group_id(kind, count, used_ids)
            ids[(kind, name)] = gid
            g.add_node(gid, node=Node(gid, "group", name, {"of": kind, "count": count, "overview": True}))
        rest = items[len(shown):]
        if rest:
            attrs = {"of": kind, "count": sum(c for _, c in rest), "overview": True, "names": len(rest)}
            gid = _group_id(kind, attrs["count"], used_ids)
            g.add_node(gid, node=Node(gid, "group", None, attrs))
            for name, _ in rest:
                ids[(kind, name)] = gid
    for src_kind, src_name, dst_kind, dst_name, rel, role, count in edges:
        u, v = ids.get((src_kind, src_name)), ids.get((dst_kind, dst_name))
        if u is None or v is None or u == v:
            continue  # version history inside one name is the count itself
        key = _edge_key(rel, role)
        if g.has_edge(u, v, key):
            g.edges[u, v, key]["count"] += int(count)
        else:
            g.add_edge(u, v, key=key, rel=rel, role=role, count=int(count))
    for _, _, d in g.edges(data=True):
        if d["count"] == 1:
            del d["count"]
    return Subgraph(g, None, direction="overview")


# ---------------------------------------------------------------------------
# marks from the record, and the quickstart's picture


def find_marks(lg: "Lineage", subgraph: Subgraph, *, stale: bool = True, tampered: bool = True) -> dict[str, str]:
    """``{node id: "stale" | "tampered"}`` for the nodes of ``subgraph``.

    Tampered: a ledger event behind the node (its row; a run's params, tags, metrics
    and states; annotations) no longer matches the rows it committed to - a quick
    local check, a few indexed reads per node; `lineage verify` is the full proof, the
    hash chain included. Stale: a dataset whose file changed on disk (`Lineage.status`)
    and everything in the subgraph downstream of one.
    """
    marks: dict[str, str] = {}
    if stale:
        try:
            doc = lg.status().to_dict()
        except (AttributeError, ImportError, NotImplementedError):
            doc = {}
        g = subgraph.graph
        # status's own group ids name its folding, not ours: seed from real nodes only
        seeds = [item.get("id") for key in ("changed", "affected") for item in doc.get(key, []) or []
                 if isinstance(item, Mapping) and not str(item.get("id", "")).startswith("group:")]
        # status folds predictions per model into its own groups: spread "stale" down
        # the subgraph itself, so whatever is listed here is marked too
        queue = deque(s for s in seeds if s in g)
        while queue:
            n = queue.popleft()
            if n in marks:
                continue
            marks[n] = "stale"
            for u, _, d in g.in_edges(n, data=True):
                if d.get("rel") != "was_revision_of" and u not in marks:
                    queue.append(u)
    if tampered:
        store = lg.store
        checked: dict[int, bool] = {}

        def intact(seq: int) -> bool:
            if seq not in checked:
                checked[seq] = store.check_event_rows(seq)
            return checked[seq]

        for node in subgraph.nodes():
            if node.kind == "group":
                continue
            if node.kind == "prediction":  # one bulk event per batch, checked once
                seq = store.event_of(node.id)
                events = {seq} if seq is not None else set()
            else:  # its row, and its params, tags, metrics, states and annotations
                events = set().union(*store.record_events([node.id]).values())
            if not all(intact(seq) for seq in sorted(events)):
                marks[node.id] = "tampered"
    return marks


def _source_dataset(sub: Subgraph) -> str | None:
    """The dataset farthest upstream of the root: where the story starts."""
    g = sub.graph
    if sub.root is None or sub.root not in g:
        return None
    lengths = nx.single_source_shortest_path_length(g if sub.direction != "downstream" else g.reverse(copy=False),
                                                    sub.root)
    datasets = [(d, n) for n, d in lengths.items() if _node_of(g, n).kind == "dataset"]
    return max(datasets, key=lambda t: (t[0], t[1]))[1] if datasets else None


def demo_diagram(lg: "Lineage", subgraph: Subgraph, out_dir: str | os.PathLike[str]) -> str:
    """Draw the quickstart's trace into ``out_dir``: ``lineage.svg`` when Graphviz's
    ``dot`` is installed, else ``lineage.dot`` and ``lineage.mmd``. Top to bottom, with
    the path from the root back to its source dataset highlighted and any stale or
    tampered node marked. Returns one line saying what was written (and, without
    ``dot``, how to get the SVG)."""
    out = Path(out_dir)
    source = _source_dataset(subgraph)
    # top to bottom: the picture goes into pages (README, docs) narrower than a screen
    options: dict[str, Any] = {"highlight": [source] if source else [], "marked": find_marks(lg, subgraph),
                               "rankdir": "TB"}
    if shutil.which("dot"):
        svg = render(subgraph, out / "lineage.svg", **options)
        return f"Lineage diagram: {svg} (open it in a browser; bold: the path back to the source data)"
    dot = render(subgraph, out / "lineage.dot", **options)
    mmd = render(subgraph, out / "lineage.mmd", **options)
    return (f"Lineage diagram: wrote {dot} and {mmd} (Mermaid); for {out / 'lineage.svg'}, {INSTALL_HINT}, "
            f"then run `make demo` again")
