"""Folding a subgraph for drawing: look-alike siblings folded into one group node, the
``max_nodes`` cut (the nearest nodes kept, the rest one group per kind), and the small
accessors every view uses to read a node as drawn (a group as the kind it stands for)."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import networkx as nx

from ..model import KINDS, Node
from ..query import Subgraph
from . import style
from .style import KIND_ORDER


def node_of(graph: nx.MultiDiGraph, node_id: str) -> Node:
    """The `Node` behind a graph node (a stand-in built from the id for a bare networkx graph)."""
    # G._node is the node-attribute dict networkx documents for subclassing; the
    # G.nodes[...] view costs several times more in the per-node loops here
    node = graph._node[node_id].get("node")
    if node is None:  # a bare networkx graph: make do with the id
        kind = node_id.split(":", 1)[0]
        node = Node(node_id, kind if kind in KINDS else "artifact")
    return node


def kind_of(node: Node) -> str:
    """The kind a node is drawn as: a group's ``of`` kind for groups."""
    return str(node.attrs.get("of", "group")) if node.kind == "group" else node.kind


def count_of(node: Node) -> int:
    """How many nodes ``node`` stands for: a folded group's count, else 1."""
    return int(node.attrs.get("count", 1)) if node.kind == "group" else 1


def sort_key(graph: nx.MultiDiGraph, node_id: str) -> tuple[int, str, str]:
    """The order views list nodes in: by kind (`style.KIND_ORDER`), then name, then id."""
    node = node_of(graph, node_id)
    kind = node.kind
    return (KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), (node.name or "").lower(), node_id)


def edge_key(rel: str, role: str | None) -> str:
    """``rel`` or ``rel:role``: what makes two edges alike when siblings fold."""
    return rel if role is None else f"{rel}:{role}"


def fold_threshold(fold: bool | int) -> int:
    """The smallest set of look-alike siblings that folds into one node: `style.FOLD_MIN`
    (read at call time, so ``render.style.FOLD_MIN = ...`` changes it) for True, 0 (no
    folding) for False, else the number given (at least 2)."""
    if fold is True:
        return style.FOLD_MIN
    if fold is False or fold is None:
        return 0
    return max(int(fold), 2)


def fold_siblings(sub: Subgraph, threshold: int, keep: set[str],
                  marks: Mapping[str, str] | None = None) -> Subgraph:
    """Fold nodes of one kind that share exactly the same (neighbour, relation, role,
    direction) set and the same mark, ``threshold`` or more of them, into one group
    node (which carries their mark as ``attrs["mark"]``)."""
    marks = marks or {}
    g = sub.graph
    if not threshold or g.number_of_nodes() < threshold:
        return sub
    buckets: dict[tuple[Any, ...], list[str]] = {}
    # groups the query made (predictions counted, not fetched), by the same signature: a
    # fold of listed look-alikes joins the group of the rest (`impact(max_predictions=)`)
    counted: dict[tuple[Any, ...], str] = {}
    succ, pred = g.succ, g.pred  # adjacency dicts: the views cost more than the work here
    for n, data in g.nodes(data=True):
        node = data.get("node")
        if n in keep or node is None:
            continue
        sig = frozenset(
            [(v, d.get("rel"), d.get("role"), 1) for v, keyed in succ[n].items() for d in keyed.values()]
            + [(u, d.get("rel"), d.get("role"), 0) for u, keyed in pred[n].items() for d in keyed.values()]
        )
        if node.kind != "group":
            buckets.setdefault((node.kind, marks.get(n), sig), []).append(n)
        elif "mark" not in node.attrs:
            counted[(kind_of(node), marks.get(n), sig)] = n
    rep: dict[str, str] = {}
    groups: dict[str, Node] = {}
    weights: dict[str, int] = {}
    used_ids = set(g.nodes)
    for key, members in buckets.items():
        kind, mark, _ = key
        if len(members) < threshold:
            continue
        times = [t for t in (node_of(g, m).created_at for m in members) if t]
        joined = counted.get(key)
        if joined is not None:
            gid, before = joined, node_of(g, joined)
            weights[gid] = count_of(before)  # its edge stands for that many
            attrs: dict[str, Any] = {**before.attrs, "count": count_of(before) + len(members)}
            times += [t for t in (before.attrs.get("first"), before.attrs.get("last")) if t]
        else:
            gid = new_group_id(kind, len(members), used_ids)
            attrs = {"of": kind, "count": len(members)}
        if times:
            attrs["first"], attrs["last"] = min(times), max(times)
        if mark:
            attrs["mark"] = mark
        groups[gid] = Node(gid, "group", None, attrs)
        for m in members:
            rep[m] = gid
    if not groups:
        return sub
    return _rebuild(sub, rep, groups, weights)


def _rebuild(sub: Subgraph, rep: Mapping[str, str], new_nodes: Mapping[str, Node],
             weights: Mapping[str, int] | None = None) -> Subgraph:
    """A copy of ``sub`` with nodes replaced by their representatives (``rep``), parallel
    edges merged and self-loops dropped. A merged edge's ``count`` is the number of
    edges it stands for (a folded group's edge to a shared neighbour: one per member;
    an edge of a node in ``weights``, a counted group others joined: its count)."""
    weights = weights or {}
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
        # between a node and a folded group, one relation is one edge (with a count),
        # whatever roles its members' edges had: 24 stacked "used (...)" labels say less
        to_group = ru in new_nodes or rv in new_nodes
        key = (ru, rv, edge_key(d.get("rel", ""), None if to_group else d.get("role")))
        n = weights.get(u) or weights.get(v) or int(d.get("count", 1))
        if key in merged:
            merged[key]["count"] += n
            if merged[key].get("role") != d.get("role"):
                merged[key]["role"] = "several roles"
        else:
            merged[key] = {**d, "count": n}
    for (ru, rv, _key), attrs in merged.items():
        if attrs["count"] == 1:
            del attrs["count"]
        out.add_edge(ru, rv, key=_key, **attrs)
    root = sub.root if sub.root is None or sub.root in out else rep.get(sub.root)
    return Subgraph(out, root, direction=sub.direction)


#: kinds that are the context of many runs, not the flow of data: reached, never
#: walked through (one agent or environment links every run of a store in two steps)
_CONTEXT_KINDS = frozenset({"agent", "environment", "code"})


def _bfs(g: nx.MultiDiGraph, starts: Sequence[str]) -> Iterator[str]:
    """Every node once, nearest the starts first along the flow of data (edges followed
    both ways, neighbours in a stable order; a context node, `_CONTEXT_KINDS`, is
    reached but not walked through unless it is a start); then the other nodes,
    biggest hubs first. Lazy: a caller that needs the nearest hundred does not pay for
    ordering thirty thousand."""
    keys: dict[str, tuple[int, str, str]] = {}

    def key(n: str) -> tuple[int, str, str]:
        k = keys.get(n)
        if k is None:
            k = keys[n] = sort_key(g, n)
        return k

    succ, pred = g.succ, g.pred
    seen: set[str] = set()

    def walk(start: str) -> Iterator[str]:
        seen.add(start)
        queue = deque([start])
        while queue:
            n = queue.popleft()
            yield n
            if n != start and kind_of(node_of(g, n)) in _CONTEXT_KINDS:
                continue
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
    node = node_of(g, n)
    return node.attrs.get("mark") if node.kind == "group" else (marks or {}).get(n)


def limit_nodes(sub: Subgraph, max_nodes: int | None, force: Sequence[str],
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
    beyond_kinds = {kind_of(node_of(g, n)) for n in beyond}
    # distinct kinds among what is left out when only candidates[:i] are kept, so
    # the overflow groups (one per kind) fit in the budget too
    suffix_kinds = [0] * (len(candidates) + 1)
    seen_kinds = set(beyond_kinds)
    suffix_kinds[len(candidates)] = len(seen_kinds)
    for i in range(len(candidates) - 1, -1, -1):
        seen_kinds.add(kind_of(node_of(g, candidates[i])))
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
        per_kind.setdefault(kind_of(node_of(g, n)), []).append(n)
    rep: dict[str, str] = {}
    groups: dict[str, Node] = {}
    hidden = 0
    used_ids = set(g.nodes)
    for kind, members in per_kind.items():
        count = sum(count_of(node_of(g, m)) for m in members)
        hidden += count
        gid = new_group_id(kind, count, used_ids)
        attrs: dict[str, Any] = {"of": kind, "count": count, "overflow": True}
        # a tampered node must not vanish into "37 more runs" unremarked
        worst = max((_mark_of(g, m, marks) for m in members), key=_SEVERITY.index)
        if worst:
            attrs["mark"] = worst
        groups[gid] = Node(gid, "group", None, attrs)
        for m in members:
            rep[m] = gid
    out = _rebuild(sub, rep, groups)
    # Each edge between a kept node and an overflow group carries ``hidden``: how many
    # nodes of the group are that node's own neighbours by that relation. The group
    # counts every hidden node of its kind, under every parent: a tree that labelled
    # each parent's edge with it said "generated 2,895 more models" under a run that
    # made one. (An edge's ``count`` is no substitute: a member may be a group itself.)
    own: dict[tuple[str, str, str], set[str]] = {}
    for u, v, d in g.edges(data=True):
        ru, rv = rep.get(u, u), rep.get(v, v)
        if (ru in groups) != (rv in groups):
            own.setdefault((ru, rv, edge_key(d.get("rel", ""), None)), set()).add(u if ru in groups else v)
    for (ru, rv, key), theirs in own.items():
        if out.graph.has_edge(ru, rv, key):
            out.graph[ru][rv][key]["hidden"] = sum(count_of(node_of(g, m)) for m in theirs)
    out.graph.graph["hidden"] = hidden + int(g.graph.get("hidden", 0))
    out.graph.graph["max_nodes"] = max_nodes
    return out


def new_group_id(kind: str, count: int, used: set[str]) -> str:
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
    out = fold_siblings(subgraph, fold_threshold(fold), protect, marked)
    return limit_nodes(out, max_nodes, keep, marked)
