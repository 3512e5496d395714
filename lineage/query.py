"""Reads: provenance traversals by recursive SQL, returned as small networkx graphs,
and the analyses built on them (which data, impact, diff, blame, run search, insights,
staleness).

Every query fetches only the subgraph it needs, so its cost follows the answer, not
the store:

* a walk is one recursive CTE over the indexed ``edges`` table (``UNION``, so a cycle
  in bad data ends the walk instead of hanging it) that returns ids only; the rows of
  the nodes it reached are then fetched by id, and the edges among them by one
  indexed query per chunk of ids;
* predictions live in their own compact table, joined to the graph by an implicit
  ``was_derived_from`` edge from each prediction to ``predictions.model``. A walk
  never drags them through the CTE: upstream, a prediction is resolved to its model
  before the walk starts; downstream, the predictions of the models reached are
  counted per model (``COUNT(*)`` on the ``model`` index) and only listed when asked.
  The rare prediction that something else depends on (a run that used predictions)
  is a *bridge*: the walk is continued from it, so nothing downstream is missed.

The SQL is portable on purpose (one recursive ``SELECT`` per CTE, ``VALUES`` seeds,
no SQLite-only functions except where a comment names the PostgreSQL equivalent).
"""

from __future__ import annotations

import math
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

import networkx as nx

from .errors import FilterSyntaxError, InvalidInputError, NodeNotFoundError
from .model import KINDS, PROVENANCE_RELATIONS, RUN_STATUSES, Edge, Node, is_hex, short_id
from .store import Store

__all__ = [
    "Change",
    "DataUse",
    "Diff",
    "Insights",
    "ParamImportance",
    "Status",
    "Subgraph",
    "Suspect",
    "blame",
    "build_subgraph",
    "common_ancestors",
    "diff",
    "impact",
    "insights",
    "parse_filter",
    "parse_order",
    "path",
    "runs",
    "status",
    "trace",
    "which_data",
]

class Subgraph:
    """A provenance subgraph: a ``networkx.MultiDiGraph`` whose edges point in the stored
    (PROV) direction, from the later thing to what it depends on.

    Each graph node carries its `Node` under the ``"node"`` attribute; each edge has
    ``rel`` (its key too) and ``role``. Nodes of kind ``group`` stand for many folded
    nodes (``{"of": kind, "count": n}``), e.g. the predictions of a model that an
    `impact` counted but did not list.
    """

    def __init__(self, graph: nx.MultiDiGraph, root: str | None, *, direction: str = "upstream",
                 counts: Mapping[str, int] | None = None) -> None:
        self.graph = graph
        self.root = root
        self.direction = direction
        self._counts = dict(counts) if counts is not None else None

    # -- contents -------------------------------------------------------------

    def nodes(self, kind: str | None = None) -> list[Node]:
        """The nodes (folded groups included, as Nodes of kind ``group``), optionally of one kind."""
        out = [d["node"] for _, d in self.graph.nodes(data=True)]
        return [n for n in out if kind is None or n.kind == kind]

    def edges(self) -> list[Edge]:
        return [Edge(u, v, d["rel"], d.get("role")) for u, v, d in self.graph.edges(data=True)]

    @property
    def counts(self) -> dict[str, int]:
        """Nodes per kind, folded groups counted by what they stand for."""
        if self._counts is not None:
            return dict(self._counts)
        counts: dict[str, int] = {}
        for n in self.nodes():
            kind = n.attrs.get("of", n.kind) if n.kind == "group" else n.kind
            counts[kind] = counts.get(kind, 0) + (int(n.attrs.get("count", 1)) if n.kind == "group" else 1)
        return counts

    def to_networkx(self) -> nx.MultiDiGraph:
        return self.graph

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of DESIGN.md §5: ``{"root", "nodes", "edges", "counts"}``."""
        nodes = []
        for n in self.nodes():
            nodes.append(_node_or_group(n))
        return {"root": self.root, "nodes": nodes, "edges": [e.to_dict() for e in self.edges()], "counts": self.counts}

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.graph

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes())

    def __repr__(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return f"<Subgraph {self.direction} of {self.root}: {parts}>"

    # -- views (imported lazily: the render layer sits above this one) ---------

    def __rich__(self) -> Any:
        from .render import to_tree

        return to_tree(self)

    def _repr_svg_(self) -> str | None:
        from .render import to_svg

        try:
            return to_svg(self)
        except Exception:  # no `dot` in this notebook: fall back to the HTML view
            return None

    def _repr_html_(self) -> str:
        from .render import to_html_fragment

        return to_html_fragment(self)


def build_subgraph(nodes: Sequence[Node], edges: Sequence[Edge], root: str | None, *, direction: str,
                   counts: Mapping[str, int] | None = None) -> Subgraph:
    """A Subgraph from nodes and edges (edges whose ends are missing are dropped)."""
    g = nx.MultiDiGraph()
    g.add_nodes_from((n.id, {"node": n}) for n in nodes)  # in bulk: far cheaper than one call each
    present = {n.id for n in nodes}
    g.add_edges_from(
        (e.src, e.dst, e.rel if e.role is None else f"{e.rel}:{e.role}", {"rel": e.rel, "role": e.role})
        for e in edges if e.src in present and e.dst in present
    )
    return Subgraph(g, root, direction=direction, counts=counts)


# ---------------------------------------------------------------------------
# walking the graph

#: at most this many ids per ``IN (...)`` list or ``VALUES`` seed list: far below
#: SQLite's oldest limit of 999 host parameters, and PostgreSQL's 65535
_CHUNK = 500

#: kinds in the order a listing shows them (and blame breaks ties in)
_KIND_ORDER = {k: i for i, k in enumerate(("dataset", "code", "environment", "run", "model", "artifact",
                                           "prediction", "agent", "group"))}

# Walks follow every relation but version history; the SQL below spells that relation
# out ('was_revision_of'), which this keeps in step with the data model.
assert set(PROVENANCE_RELATIONS) == {"used", "was_generated_by", "was_derived_from", "was_associated_with",
                                     "was_attributed_to", "was_informed_by"}

_UP_CTE = (
    "WITH RECURSIVE walk(id) AS ({seeds} UNION "
    "SELECT e.dst FROM edges e JOIN walk w ON e.src = w.id WHERE e.rel <> 'was_revision_of') "
    "SELECT id FROM walk"
)
_DOWN_CTE = (
    "WITH RECURSIVE walk(id) AS ({seeds} UNION "
    "SELECT e.src FROM edges e JOIN walk w ON e.dst = w.id WHERE e.rel <> 'was_revision_of') "
    "SELECT id FROM walk"
)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _is_prediction(node_id: str) -> bool:
    return node_id.startswith("prediction:")


def _models_of(store: Store, prediction_ids: Iterable[str]) -> dict[str, str]:
    """``{prediction id: model id}`` for those of ``prediction_ids`` that exist."""
    ids = [i for i in prediction_ids if _is_prediction(i)]
    out: dict[str, str] = {}
    for chunk in _chunks(ids):
        out.update(store.conn.execute(f"SELECT id, model FROM predictions WHERE id IN ({_marks(len(chunk))})", chunk))
    return out


def _bridges(store: Store) -> dict[str, str]:
    """Predictions that something depends on (an edge points at them), with their models.

    Downstream walks continue from these; there are usually none, and finding that out
    is one range scan of the ``edges (dst, …)`` index.
    """
    sql = ("SELECT p.id, p.model FROM predictions p WHERE p.id IN "
           "(SELECT e.dst FROM edges e WHERE e.dst >= 'prediction:' AND e.dst < 'prediction;' "
           "AND e.rel <> 'was_revision_of')")
    return dict(store.conn.execute(sql))


def _closure(store: Store, seeds: Iterable[str], *, upstream: bool, bridges: Mapping[str, str] | None = None) -> set[str]:
    """Every id reachable from ``seeds`` (included) along provenance edges, upstream
    (towards what things depend on) or downstream, following the implicit
    prediction → model edges too, except to the leaf predictions downstream (see
    `_prediction_counts`). One recursive CTE per round; a second round happens only
    when the walk meets a prediction with something on its far side."""
    sql = _UP_CTE if upstream else _DOWN_CTE
    reached: set[str] = set()
    frontier = list(dict.fromkeys(seeds))
    looked_up: set[str] = set()  # predictions whose model we already followed
    if upstream:
        frontier += [m for m in _models_of(store, frontier).values() if m not in frontier]
        looked_up.update(i for i in frontier if _is_prediction(i))
    elif bridges is None:
        bridges = _bridges(store)
    while frontier:
        new: set[str] = set()
        for chunk in _chunks(frontier):
            seeds_sql = "VALUES " + ", ".join(["(?)"] * len(chunk))
            new.update(r[0] for r in store.conn.execute(sql.format(seeds=seeds_sql), chunk))
        new -= reached
        reached |= new
        if upstream:
            preds = [i for i in new if _is_prediction(i) and i not in looked_up]
            looked_up.update(preds)
            frontier = [m for m in set(_models_of(store, preds).values()) if m not in reached]
        else:
            assert bridges is not None
            frontier = [p for p, m in bridges.items() if m in reached and p not in reached]
    return reached


def _levels(store: Store, seeds: Sequence[str], *, upstream: bool, depth: int,
            bridges: Mapping[str, str] | None = None) -> dict[str, int]:
    """``{id: hops from the nearest seed}`` for everything within ``depth`` hops.

    Walked one level per query rather than by a CTE: a depth-limited CTE must carry
    the depth in its rows, so on a graph with cycles it revisits nodes at every depth
    up to the limit, while a level walk visits each node once.
    """
    dist = {s: 0 for s in seeds}
    frontier = list(dict.fromkeys(seeds))
    if not upstream and bridges is None:
        bridges = _bridges(store)
    by_model: dict[str, list[str]] = {}
    for p, m in (bridges or {}).items():
        by_model.setdefault(m, []).append(p)
    far, near = ("dst", "src") if upstream else ("src", "dst")
    for d in range(1, depth + 1):
        found: set[str] = set()
        for chunk in _chunks(frontier):
            found.update(r[0] for r in store.conn.execute(
                f"SELECT {far} FROM edges WHERE {near} IN ({_marks(len(chunk))}) AND rel <> 'was_revision_of'", chunk))
        if upstream:
            found.update(_models_of(store, frontier).values())
        else:
            for m in frontier:
                found.update(by_model.get(m, ()))
        frontier = [i for i in found if i not in dist]
        if not frontier:
            break
        for i in frontier:
            dist[i] = d
    return dist


def _prediction_counts(store: Store, models: Sequence[str]) -> dict[str, int]:
    """How many predictions each model made (``COUNT(*)`` on the ``model`` index)."""
    out: dict[str, int] = {}
    for chunk in _chunks([m for m in models if m.startswith("model:")]):
        out.update(store.conn.execute(
            f"SELECT model, COUNT(*) FROM predictions WHERE model IN ({_marks(len(chunk))}) GROUP BY model", chunk))
    return out


def _predictions_of(store: Store, models: Sequence[str]) -> list[Node]:
    """Every prediction of ``models``, as nodes (fetched by the ``model`` index)."""
    out: list[Node] = []
    cols = store._PRED_COLS  # the store's own column list and row reader: one definition
    for chunk in _chunks([m for m in models if m.startswith("model:")]):
        rows = store.conn.execute(f"SELECT {cols} FROM predictions WHERE model IN ({_marks(len(chunk))}) ORDER BY pk", chunk)
        out.extend(map(store._prediction_from_row, rows))
    return out


def _edges_among(store: Store, nodes: Mapping[str, Node], *, upstream: bool) -> list[Edge]:
    """The provenance edges between ``nodes``, stored and implicit ones alike.

    Upstream sets are closed under out-edges and downstream sets under in-edges, so
    one indexed query per chunk, on the side that is closed, finds every edge.
    """
    near = "src" if upstream else "dst"
    edges: list[Edge] = []
    for chunk in _chunks(list(nodes)):
        rows = store.conn.execute(
            f"SELECT src, dst, rel, role FROM edges WHERE {near} IN ({_marks(len(chunk))}) "
            "AND rel <> 'was_revision_of' ORDER BY pk", chunk)
        # both ends must be nodes that exist: an edge to a missing node is dropped
        edges.extend(Edge(s, d, r, ro) for s, d, r, ro in rows if (d if upstream else s) in nodes)
    for i, n in nodes.items():
        if n.kind == "prediction" and n.attrs.get("model") in nodes:
            edges.append(Edge(i, n.attrs["model"], "was_derived_from"))
    return edges


def _distances(root_ids: Iterable[str], edges: Iterable[Edge], *, upstream: bool) -> dict[str, int]:
    """Hops from the nearest root, walking ``edges`` in the walk's direction."""
    adj: dict[str, list[str]] = {}
    for e in edges:
        a, b = (e.src, e.dst) if upstream else (e.dst, e.src)
        adj.setdefault(a, []).append(b)
    dist = {r: 0 for r in root_ids}
    queue = deque(dist)
    while queue:
        u = queue.popleft()
        for v in adj.get(u, ()):
            if v not in dist:
                dist[v] = dist[u] + 1
                queue.append(v)
    return dist


def _sort_key(n: Node, dist: Mapping[str, int]) -> tuple[Any, ...]:
    return (dist.get(n.id, 1 << 30), _KIND_ORDER.get(n.kind, 99), n.name or "", n.id)


def _fetch(store: Store, ids: Iterable[str], root: str) -> dict[str, Node]:
    nodes = store.get_nodes(list(ids))
    if root not in nodes:
        raise NodeNotFoundError(root)
    return nodes


def _subgraph(nodes: Mapping[str, Node], edges: list[Edge], root: str, *, direction: str,
              dist: Mapping[str, int] | None = None) -> Subgraph:
    """Nodes nearest the root first; every graph node carries its ``distance`` too."""
    upstream = direction == "upstream"
    d = dict(dist) if dist is not None else _distances([root], edges, upstream=upstream)
    ordered = sorted(nodes.values(), key=lambda n: _sort_key(n, d))
    edges.sort(key=lambda e: (d.get(e.src if upstream else e.dst, 1 << 30), e.src, e.dst, e.rel, e.role or ""))
    sub = build_subgraph(ordered, edges, root, direction=direction)
    nx.set_node_attributes(sub.graph, {i: d.get(i) for i in sub.graph}, "distance")
    return sub


def _check_kinds(kinds: Sequence[str] | None) -> set[str] | None:
    if kinds is None:
        return None
    if isinstance(kinds, str):
        kinds = [kinds]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InvalidInputError(f"unknown kind {unknown[0]!r}; expected some of {', '.join(KINDS)}")
    return set(kinds)


def _check_depth(depth: int | None) -> int | None:
    if depth is None:
        return None
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise InvalidInputError(f"depth must be a whole number of hops (0 or more), got {depth!r}")
    return depth


# the relation a contracted edge gets, by the PROV classes at its ends
def _contracted_rel(src_kind: str, dst_kind: str) -> str:
    s, d = KINDS.get(src_kind, "entity"), KINDS.get(dst_kind, "entity")
    if d == "agent":
        return "was_associated_with" if s == "activity" else "was_attributed_to"
    if s == "activity":
        return "was_informed_by" if d == "activity" else "used"
    return "was_generated_by" if d == "activity" else "was_derived_from"


def _keep_kinds(nodes: dict[str, Node], edges: list[Edge], root: str, keep: set[str]) -> tuple[dict[str, Node], list[Edge]]:
    """Only nodes of the kinds in ``keep`` (and the root). Paths through the nodes left
    out become one edge marked ``role="indirect"``, with the PROV relation that fits
    its ends (entity→entity ``was_derived_from``, run→run ``was_informed_by``, …),
    so the picture stays connected."""
    kept = {i: n for i, n in nodes.items() if n.kind in keep or i == root}
    out_adj: dict[str, list[Edge]] = {}
    for e in edges:
        out_adj.setdefault(e.src, []).append(e)
    result = [e for e in edges if e.src in kept and e.dst in kept]
    direct = {(e.src, e.dst) for e in result}
    for u in kept:
        seen: set[str] = set()
        stack = [e.dst for e in out_adj.get(u, ()) if e.dst not in kept]
        while stack:
            x = stack.pop()
            if x in seen:
                continue
            seen.add(x)
            for e in out_adj.get(x, ()):
                if e.dst in kept:
                    if (u, e.dst) not in direct and e.dst != u:
                        direct.add((u, e.dst))
                        result.append(Edge(u, e.dst, _contracted_rel(kept[u].kind, kept[e.dst].kind), "indirect"))
                elif e.dst not in seen:
                    stack.append(e.dst)
    return kept, result


def trace(store: Store, ref: str, *, depth: int | None = None, kinds: Sequence[str] | None = None) -> Subgraph:
    """Everything upstream of a node, the node itself included.

    A prediction leads to its model, the model to the run that trained it, the run to
    its datasets, code, environment and agent, each dataset to the run that wrote it,
    and so on to the roots. ``was_revision_of`` (version history) is not followed.

    Parameters
    ----------
    store : the store to read.
    ref : a node id (or any reference `Store.resolve` accepts).
    depth : at most this many hops from the node (None: no limit).
    kinds : keep only nodes of these kinds (and the node itself); paths through the
        nodes left out become edges with ``role="indirect"``.

    Returns
    -------
    Subgraph
        Direction ``"upstream"``; edges point the stored (PROV) way.

    Raises
    ------
    NodeNotFoundError, AmbiguousIdError
        When ``ref`` names no node or several.
    """
    root = _root_id(store, ref)
    depth = _check_depth(depth)
    keep = _check_kinds(kinds)
    if depth is None:
        ids = _closure(store, [root], upstream=True)
        dist = None
    else:
        dist = _levels(store, [root], upstream=True, depth=depth)
        ids = set(dist)
    nodes = _fetch(store, ids, root)
    edges = _edges_among(store, nodes, upstream=True)
    if dist is None:
        dist = _distances([root], edges, upstream=True)
    if keep is not None:
        nodes, edges = _keep_kinds(nodes, edges, root, keep)
    return _subgraph(nodes, edges, root, direction="upstream", dist=dist)


def impact(store: Store, ref: str, *, include_predictions: bool = False, depth: int | None = None) -> Subgraph:
    """Everything downstream of a node, the node itself included: for a bad dataset,
    every dataset derived from it, every run that read any of them, every model those
    runs trained, and the predictions of those models.

    Predictions are counted, not fetched: each model's predictions appear as one
    folded ``group`` node (``group:prediction:<n>``, attrs ``{"of": "prediction",
    "count": n}``) with a ``was_derived_from`` edge to the model, and
    ``counts["prediction"]`` is their total. ``include_predictions=True`` lists them
    all instead. ``depth`` limits the hops from the node.

    Raises NodeNotFoundError / AmbiguousIdError when ``ref`` names no node or several.
    """
    root = _root_id(store, ref)
    depth = _check_depth(depth)
    bridges = _bridges(store)
    if depth is None:
        ids = _closure(store, [root], upstream=False, bridges=bridges)
        dist = None
    else:
        dist = _levels(store, [root], upstream=False, depth=depth, bridges=bridges)
        ids = set(dist)
    nodes = _fetch(store, ids, root)
    edges = _edges_among(store, nodes, upstream=False)
    if dist is None:
        dist = _distances([root], edges, upstream=False)
    models = [i for i in nodes if i.startswith("model:") and (depth is None or dist.get(i, depth) < depth)]
    if include_predictions:
        for p in _predictions_of(store, sorted(models)):
            if p.id not in nodes:
                nodes[p.id] = p
                edges.append(Edge(p.id, p.attrs["model"], "was_derived_from"))
                dist[p.id] = dist.get(p.attrs["model"], 0) + 1
    else:
        listed: dict[str, int] = {}
        for i in ids:
            if _is_prediction(i) and i in nodes:
                m = nodes[i].attrs.get("model")
                listed[m] = listed.get(m, 0) + 1
        used_ids: set[str] = set()
        for model, count in sorted(_prediction_counts(store, models).items()):
            n = count - listed.get(model, 0)
            if n <= 0:
                continue
            gid = f"group:prediction:{n}"
            if gid in used_ids:  # two models with as many predictions: tell them apart
                gid = f"{gid}:{model.split(':', 1)[1][:12]}"
            used_ids.add(gid)
            nodes[gid] = Node(gid, "group", f"{n:,} predictions", {"of": "prediction", "count": n, "model": model})
            edges.append(Edge(gid, model, "was_derived_from"))
            dist[gid] = dist.get(model, 0) + 1
    return _subgraph(nodes, edges, root, direction="downstream", dist=dist)


def _root_id(store: Store, ref: Any) -> str:
    """The id of ``ref``: taken as is when it is a full id (the facade resolves
    references first; a missing node is reported once the walk finds no row for it),
    else resolved."""
    if isinstance(ref, Node):
        return ref.id
    text = str(ref)
    kind, sep, rest = text.partition(":")
    if sep and kind in KINDS and len(rest) in (32, 64) and is_hex(rest) and rest == rest.lower():
        return text
    return store.resolve(text).id


def path(store: Store, a: str, b: str) -> list[Node]:
    """A shortest provenance path between two nodes, from ``a`` to ``b``.

    When ``b`` is upstream of ``a`` the path follows edges the stored way (``a``
    depends on … on ``b``); when ``a`` is upstream of ``b``, it runs the other way.
    Empty when neither depends on the other. Walks upstream only, so it never
    touches a node's (possibly huge) downstream.
    """
    a, b = _root_id(store, a), _root_id(store, b)
    if a == b:
        return list(_fetch(store, [a], a).values())
    for start, goal in ((a, b), (b, a)):
        ids = _closure(store, [start], upstream=True)
        if goal not in ids:
            continue
        nodes = _fetch(store, ids, start)
        edges = _edges_among(store, nodes, upstream=True)
        g = nx.DiGraph()
        g.add_edges_from((e.src, e.dst) for e in edges)
        hops = nx.shortest_path(g, start, goal)
        if start != a:
            hops.reverse()
        return [nodes[i] for i in hops]
    return []


def common_ancestors(store: Store, ids: Sequence[str]) -> list[Node]:
    """Nodes upstream of every one of ``ids`` (the nodes themselves left out), the
    nearest first (by the sum of their distances)."""
    roots = list(dict.fromkeys(_root_id(store, i) for i in ids))
    if not roots:
        return []
    common: set[str] | None = None
    total: dict[str, int] = {}
    for r in roots:
        reached = _closure(store, [r], upstream=True)
        nodes = _fetch(store, reached, r)
        dist = _distances([r], _edges_among(store, nodes, upstream=True), upstream=True)
        common = set(reached) if common is None else common & reached
        for i in common:
            total[i] = total.get(i, 0) + dist.get(i, 0)
    assert common is not None
    common -= set(roots)
    found = store.get_nodes(list(common))
    return sorted(found.values(), key=lambda n: (total.get(n.id, 0), _KIND_ORDER.get(n.kind, 99), n.name or "", n.id))


# ---------------------------------------------------------------------------
# result types

def _rich_table(title: str | None, columns: Sequence[str]) -> Any:
    from rich.table import Table

    table = Table(title=_text(title) if title else None, header_style="bold", title_justify="left")
    for c in columns:
        table.add_column(c)
    return table


def _text(value: Any, style: str = "") -> Any:
    """User strings (names, params, paths) as rich Text: data, never markup."""
    from rich.text import Text

    return Text("" if value is None else str(value), style=style)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and ":" in value and len(value) > 40:
        kind = value.split(":", 1)[0]
        if kind in KINDS:
            return short_id(value, 12)
    return str(value)


@dataclass(frozen=True)
class DataUse:
    """A dataset behind a model: its ``role`` (``training``, ``evaluation``, or
    ``upstream`` for sources further back) and ``distance`` in hops from the model."""

    node: Node
    role: str
    distance: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.node.to_dict(), "role": self.role, "distance": self.distance}

    def __rich__(self) -> Any:
        return data_uses_table([self])


def data_uses_table(items: Sequence[DataUse], *, title: str | None = None) -> Any:
    """A rich Table of `which_data`'s answer."""
    table = _rich_table(title, ["role", "hops", "name", "id", "created"])
    for u in items:
        style = {"training": "bold", "evaluation": "cyan"}.get(u.role, "dim")
        table.add_row(_text(u.role, style), str(u.distance), _text(u.node.name), short_id(u.node.id, 12),
                      (u.node.created_at or "")[:19].replace("T", " "))
    return table


@dataclass(frozen=True)
class Change:
    """One difference between two models or runs: ``aspect`` is ``data``, ``code``,
    ``params``, ``environment`` or ``metrics``; ``a`` / ``b`` are the values on each
    side (None where one side has none)."""

    aspect: str
    key: str
    a: Any
    b: Any

    def to_dict(self) -> dict[str, Any]:
        return {"aspect": self.aspect, "key": self.key, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class Diff:
    """How two models (or runs) differ in lineage."""

    a: Node
    b: Node
    changes: list[Change] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def aspect(self, name: str) -> list[Change]:
        """The changes of one aspect (``data``, ``code``, ``params``, …)."""
        return [c for c in self.changes if c.aspect == name]

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a.id, "b": self.b.id, "changes": [c.to_dict() for c in self.changes]}

    def __rich__(self) -> Any:
        title = f"{self.a.label} ({short_id(self.a.id)}) → {self.b.label} ({short_id(self.b.id)})"
        table = _rich_table(title, ["aspect", "key", "a", "b"])
        last = None
        for c in self.changes:
            table.add_row(c.aspect if c.aspect != last else "", _text(c.key), _text(_fmt(c.a)), _text(_fmt(c.b)))
            last = c.aspect
        if not self.changes:
            table.add_row("", "no differences", "", "")
        return table


@dataclass(frozen=True)
class Suspect:
    """An upstream node and how much more often it stands behind the bad predictions:
    ``score`` = share of bad ones behind it − share of good ones behind it (just the
    former without good ones); ``bad`` / ``good`` count them."""

    node: Node
    score: float
    bad: int
    good: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.node.to_dict(), "score": self.score, "bad": self.bad, "good": self.good}


def suspects_table(items: Sequence[Suspect], *, bad: int, good: int, title: str | None = None) -> Any:
    """A rich Table of `blame`'s answer."""
    table = _rich_table(title, ["score", f"bad /{bad}", f"good /{good}", "kind", "name", "id"])
    for s in items:
        table.add_row(f"{s.score:.2f}", str(s.bad), str(s.good), s.node.kind, _text(s.node.name), short_id(s.node.id, 12))
    return table


@dataclass(frozen=True)
class ParamImportance:
    """How much one parameter matters for a metric: ``importance`` is its share of
    the forest's permutation importance (the shares sum to 1), ``correlation`` its
    Spearman rank correlation with the metric (None for non-numeric parameters)."""

    param: str
    importance: float
    correlation: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"param": self.param, "importance": self.importance, "correlation": self.correlation}


@dataclass(frozen=True)
class Insights:
    """Which parameters matter most for ``metric``, across ``runs`` runs: each
    parameter's share of the importance (shares sum to 1, or are all 0 when the
    parameters predict nothing) and its rank correlation with the metric."""

    metric: str
    runs: int
    items: list[ParamImportance] = field(default_factory=list)
    #: the forest's cross-validated R²: how much of the metric the parameters explain
    #: (None when the metric never varies); not part of the JSON shape
    explained: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "runs": self.runs, "items": [i.to_dict() for i in self.items]}

    def __rich__(self) -> Any:
        skill = "" if self.explained is None else \
            f"; the parameters explain {max(self.explained, 0):.0%} of its variance (cross-validated)"
        table = _rich_table(f"what matters for {self.metric} (across {self.runs} runs{skill})",
                            ["param", "importance", "", "rank correlation"])
        for i in self.items:
            bar = "█" * round(i.importance * 30)
            corr = "—" if i.correlation is None else f"{i.correlation:+.2f}"
            table.add_row(_text(i.param), f"{i.importance:.2f}", _text(bar, "green"), corr)
        return table


@dataclass(frozen=True)
class Status:
    """Recorded datasets whose file on disk no longer matches its digest (``changed``)
    and what depends on them (``affected``: datasets, runs and models, each model's
    predictions folded into one ``group`` node)."""

    changed: list[Node] = field(default_factory=list)
    affected: list[Node] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every recorded local dataset still matches its file."""
        return not self.changed

    @property
    def predictions(self) -> int:
        """How many predictions depend on changed data."""
        return sum(int(n.attrs.get("count", 0)) for n in self.affected if n.kind == "group")

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": [{**n.to_dict(), "reason": self.reasons.get(n.id, "modified")} for n in self.changed],
            "affected": [_node_or_group(n) for n in self.affected],
        }

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        if self.ok:
            return Text("ok: every recorded local dataset matches its file", style="green")
        changed = _rich_table("changed on disk", ["dataset", "id", "reason", "path"])
        for n in self.changed:
            changed.add_row(_text(n.name), short_id(n.id, 12), self.reasons.get(n.id, "modified"),
                            _text(n.attrs.get("abspath", "")))
        affected = _rich_table("stale downstream", ["kind", "name", "id"])
        for n in self.affected:
            if n.kind == "group":
                affected.add_row("predictions", _text(n.name), f"of {short_id(n.attrs.get('model', ''), 12)}")
            else:
                affected.add_row(n.kind, _text(n.name), short_id(n.id, 12))
        return Group(changed, affected)


def _node_or_group(n: Node) -> dict[str, Any]:
    """A node's JSON, or a folded group's in exactly DESIGN.md §5's shape (what it
    stands for is told by its edges: a prediction group's edge goes to its model)."""
    if n.kind == "group":
        return {"id": n.id, "kind": "group", "of": n.attrs["of"], "count": n.attrs["count"]}
    return n.to_dict()


# ---------------------------------------------------------------------------
# which data, diff, blame

_DIRECT_ROLES = {"evaluation": "evaluation"}  # any other role of a used edge means training


def which_data(store: Store, ref: str) -> list[DataUse]:
    """The datasets behind a model (or a prediction, run or dataset), each with its
    role and its distance in hops.

    ``training`` and ``evaluation`` are the datasets the run(s) that produced the node
    used, by the role of the ``used`` edge (``input``, from ``lineage run -i``, counts
    as training); ``upstream`` are the sources further back. The farthest sources come
    first, the data the model saw last.
    """
    root = _root_id(store, ref)
    ids = _closure(store, [root], upstream=True)
    nodes = _fetch(store, ids, root)
    edges = _edges_among(store, nodes, upstream=True)
    dist = _distances([root], edges, upstream=True)
    # the first runs met walking up from the node: the ones that produced it
    out_adj: dict[str, list[Edge]] = {}
    for e in edges:
        out_adj.setdefault(e.src, []).append(e)
    first_runs: set[str] = set()
    if nodes[root].kind == "run":
        first_runs.add(root)
    else:
        seen = {root}
        stack = [root]
        while stack:
            u = stack.pop()
            for e in out_adj.get(u, ()):
                if e.dst in seen:
                    continue
                seen.add(e.dst)
                if nodes[e.dst].kind == "run":
                    first_runs.add(e.dst)
                else:
                    stack.append(e.dst)
    roles: dict[str, str] = {}
    for r in first_runs:
        for e in out_adj.get(r, ()):
            if e.rel == "used" and nodes[e.dst].kind == "dataset":
                role = _DIRECT_ROLES.get(e.role or "", "training")
                if roles.get(e.dst) != "training":  # training wins over evaluation
                    roles[e.dst] = role
    rank = {"training": 0, "evaluation": 1, "upstream": 2}
    out = [DataUse(n, roles.get(i, "upstream"), dist.get(i, 0)) for i, n in nodes.items()
           if n.kind == "dataset" and i != root]
    out.sort(key=lambda u: (-u.distance, rank[u.role], u.node.name or "", u.node.id))
    return out


@dataclass
class _Context:
    node: Node
    run: Node | None
    model: Node | None
    code: Node | None
    environment: Node | None
    data: list[DataUse]


def _producing_run(store: Store, node_id: str) -> Node | None:
    row = store.conn.execute(
        "SELECT e.dst FROM edges e JOIN nodes n ON n.id = e.dst WHERE e.src = ? AND e.rel = 'was_generated_by' "
        "AND n.kind = 'run' ORDER BY n.pk DESC LIMIT 1", (node_id,)).fetchone()
    return store.get_node(row[0]) if row else None


def _context(store: Store, node_id: str) -> _Context:
    node = store.get_node(node_id)
    if node is None:
        raise NodeNotFoundError(node_id)
    model = None
    if node.kind == "prediction":
        model = store.get_node(node.attrs["model"])
        run = _producing_run(store, model.id) if model else None
    elif node.kind == "run":
        run = node
    elif node.kind in ("model", "dataset", "artifact"):
        model = node if node.kind == "model" else None
        run = _producing_run(store, node.id)
    else:
        raise InvalidInputError(f"diff compares models or runs; {node.id} is a {node.kind}")
    if node.kind in ("dataset", "artifact") and run is None:
        raise InvalidInputError(f"diff compares models or runs; no run produced {node.id}")
    code = env = None
    if run is not None:
        rows = store.conn.execute(
            "SELECT dst, role FROM edges WHERE src = ? AND rel = 'used' AND role IN ('code', 'environment') ORDER BY pk",
            (run.id,)).fetchall()
        found = store.get_nodes([r[0] for r in rows])
        for dst, role in rows:
            if role == "code":
                code = found.get(dst, code)
            else:
                env = found.get(dst, env)
    data = which_data(store, (model or run or node).id)
    return _Context(node, run, model, code, env, data)


def _dict_changes(aspect: str, a: Mapping[str, Any], b: Mapping[str, Any], *, prefix: str = "") -> list[Change]:
    out = []
    for key in sorted(set(a) | set(b), key=str):
        va, vb = a.get(key), b.get(key)
        if va != vb:
            out.append(Change(aspect, f"{prefix}{key}", va, vb))
    return out


_CODE_FIELDS = ("repo", "branch", "commit", "dirty", "diff_digest", "entry_point", "script_digest")


def diff(store: Store, a: str, b: str) -> Diff:
    """How two models (or runs; a prediction stands for its model) differ in lineage.

    Aspects, in this order: ``data`` (datasets behind each, keyed by name: added,
    removed, changed version, or changed role), ``code`` (commit, diff, entry point),
    ``params`` (the run's parameters, the model's class and hyperparameters as
    ``model.*``), ``environment`` (Python, platform, each package's version) and
    ``metrics`` (each run's latest values).

    Raises InvalidInputError for nodes that are neither models nor runs (nor produced
    by a run).
    """
    ca, cb = _context(store, _root_id(store, a)), _context(store, _root_id(store, b))
    changes: list[Change] = []
    # data, keyed by name (ids for unnamed data)
    def by_name(uses: list[DataUse]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for u in uses:
            out.setdefault(u.node.name or u.node.id, {})[u.node.id] = u.role
        return out

    da, db = by_name(ca.data), by_name(cb.data)
    for key in sorted(set(da) | set(db)):
        ia, ib = da.get(key, {}), db.get(key, {})
        if set(ia) == set(ib):
            for i in sorted(ia):
                if ia[i] != ib[i]:
                    changes.append(Change("data", f"{key} (role)", ia[i], ib[i]))
            continue
        only_a, only_b = sorted(set(ia) - set(ib)), sorted(set(ib) - set(ia))
        if len(only_a) == 1 and len(only_b) == 1:
            changes.append(Change("data", key, only_a[0], only_b[0]))  # another version
        else:
            changes += [Change("data", key, i, None) for i in only_a]
            changes += [Change("data", key, None, i) for i in only_b]
    # code
    if (ca.code and ca.code.id) != (cb.code and cb.code.id):
        attrs_a = dict(ca.code.attrs) if ca.code else {}
        attrs_b = dict(cb.code.attrs) if cb.code else {}
        code_changes = [Change("code", k, attrs_a.get(k), attrs_b.get(k)) for k in _CODE_FIELDS
                        if attrs_a.get(k) != attrs_b.get(k)]
        changes += code_changes or [Change("code", "id", ca.code and ca.code.id, cb.code and cb.code.id)]
    # params: the run's, then the model's own
    pa = dict(ca.run.attrs.get("params", {})) if ca.run else {}
    pb = dict(cb.run.attrs.get("params", {})) if cb.run else {}
    changes += _dict_changes("params", pa, pb)
    if ca.model is not None or cb.model is not None:
        ma = dict(ca.model.attrs) if ca.model else {}
        mb = dict(cb.model.attrs) if cb.model else {}
        if ma.get("class") != mb.get("class"):
            changes.append(Change("params", "model.class", ma.get("class"), mb.get("class")))
        changes += _dict_changes("params", ma.get("params") or {}, mb.get("params") or {}, prefix="model.")
    # environment
    if (ca.environment and ca.environment.id) != (cb.environment and cb.environment.id):
        ea = dict(ca.environment.attrs) if ca.environment else {}
        eb = dict(cb.environment.attrs) if cb.environment else {}
        for k in ("python", "platform"):
            if ea.get(k) != eb.get(k):
                changes.append(Change("environment", k, ea.get(k), eb.get(k)))
        changes += _dict_changes("environment", _packages(ea), _packages(eb))
    # metrics
    changes += _dict_changes("metrics", ca.run.attrs.get("metrics", {}) if ca.run else {},
                             cb.run.attrs.get("metrics", {}) if cb.run else {})
    return Diff(ca.node, cb.node, changes)


def _packages(env_attrs: Mapping[str, Any]) -> dict[str, Any]:
    pk = env_attrs.get("packages") or {}
    if isinstance(pk, Mapping):
        return dict(pk)
    out: dict[str, Any] = {}
    for item in pk:  # a list of "name==version" strings, or of [name, version]
        if isinstance(item, str):
            name, _, version = item.partition("==")
            out[name] = version or None
        elif isinstance(item, (list, tuple)) and item:
            out[str(item[0])] = item[1] if len(item) > 1 else None
    return out


def blame(store: Store, bad: Sequence[str], good: Sequence[str] = ()) -> list[Suspect]:
    """Rank the nodes upstream of flagged predictions by how much more often they stand
    behind the ``bad`` ones than behind the ``good`` ones: where to look first when
    predictions go wrong.

    Returns `Suspect`s with a positive score, highest first; ties go to data, then
    code, environment, runs and models, then to the node behind more bad predictions.
    Any node can be flagged, not just predictions. Predictions of one model share one
    upstream walk, so thousands of flagged predictions cost a few walks.

    Raises InvalidInputError when ``bad`` is empty.
    """
    bad_ids = list(dict.fromkeys(_root_id(store, r) for r in bad))
    good_ids = list(dict.fromkeys(_root_id(store, r) for r in good))
    if not bad_ids:
        raise InvalidInputError("blame needs at least one bad prediction (--bad REF)")
    overlap = set(bad_ids) & set(good_ids)
    if overlap:
        raise InvalidInputError(f"{sorted(overlap)[0]} is flagged both bad and good")
    flagged = bad_ids + good_ids
    # what each flagged node directly depends on: its model, and any stored edges
    parents: dict[str, set[str]] = {i: set() for i in flagged}
    for p, m in _models_of(store, flagged).items():
        parents[p].add(m)
    for chunk in _chunks(flagged):
        for s, d in store.conn.execute(
            f"SELECT src, dst FROM edges WHERE src IN ({_marks(len(chunk))}) AND rel <> 'was_revision_of'", chunk):
            parents[s].add(d)
    missing = [i for i in flagged if not parents[i] and not store.node_exists(i)]
    if missing:
        raise NodeNotFoundError(missing[0])
    walks: dict[frozenset[str], set[str]] = {}

    def upstream_of(i: str) -> set[str]:
        key = frozenset(parents[i])
        if key not in walks:
            walks[key] = _closure(store, sorted(key), upstream=True) if key else set()
        return walks[key]

    counts_bad: dict[str, int] = {}
    counts_good: dict[str, int] = {}
    for ids, counts in ((bad_ids, counts_bad), (good_ids, counts_good)):
        for i in ids:
            for u in upstream_of(i):
                counts[u] = counts.get(u, 0) + 1
    n_bad, n_good = len(bad_ids), len(good_ids)
    flagged_set = set(flagged)
    scores: dict[str, float] = {}
    for u, b in counts_bad.items():
        if u in flagged_set:
            continue
        s = b / n_bad - (counts_good.get(u, 0) / n_good if n_good else 0.0)
        if s > 1e-12:
            scores[u] = round(s, 6)
    found = store.get_nodes(list(scores))
    out = [Suspect(n, scores[i], counts_bad[i], counts_good.get(i, 0)) for i, n in found.items()]
    out.sort(key=lambda s: (-s.score, _KIND_ORDER.get(s.node.kind, 99), -s.bad, s.node.name or "", s.node.id))
    return out


# ---------------------------------------------------------------------------
# run search: a small filter language, parsed, compiled to parameterised SQL
#
#   expr       := or
#   or         := and ("or" and)*
#   and        := not ("and" not)*
#   not        := "not" not | "(" expr ")" | comparison
#   comparison := field op value | field ["not"] "in" "(" value ("," value)* ")"
#   field      := params.KEY | metrics.KEY | tags.KEY | name | experiment | status
#                 | started_at | used            (KEY may be quoted: params."a b")
#   op         := = | == | != | <> | < | <= | > | >= | contains
#   value      := number | 'text' | "text"       (a quote inside is doubled or \-escaped)
#
# User text only ever reaches SQL as a bound parameter; the SQL around it is built
# from fixed fragments chosen by the parser.

_OPS = {"=": "=", "==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_KEYWORDS = {"and", "or", "not", "in", "contains"}
_PLAIN_FIELDS = ("name", "experiment", "status", "started_at", "used")
_FIELD_HELP = "params.KEY, metrics.KEY, tags.KEY, name, experiment, status, started_at or used"


@dataclass(frozen=True)
class _Token:
    kind: str  # field, keyword, op, number, string, lparen, rparen, comma, word, end
    text: str
    pos: int
    value: Any = None


def _tokenize(text: str) -> Iterator[_Token]:
    """Tokens in reading order, made as the parser asks for them: the first problem
    reported is the first one in the text, whether it is a bad character or bad syntax."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "()," :
            yield _Token({"(": "lparen", ")": "rparen", ",": "comma"}[c], c, i)
            i += 1
            continue
        if c in "=!<>":
            two = text[i : i + 2]
            if two in _OPS:
                yield _Token("op", two, i)
                i += 2
            elif c in _OPS:
                yield _Token("op", c, i)
                i += 1
            else:
                raise FilterSyntaxError(f"unexpected {c!r}; comparisons are = != < <= > >= contains", i)
            continue
        if c in "'\"":
            value, end = _read_string(text, i)
            yield _Token("string", text[i:end], i, value)
            i = end
            continue
        if c.isdigit() or (c in "+-." and i + 1 < n and (text[i + 1].isdigit() or text[i + 1] == ".")):
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "._+-") and not (text[j] in "+-" and text[j - 1] not in "eE"):
                j += 1
            word = text[i:j]
            try:
                number = float(word)
            except ValueError:
                raise FilterSyntaxError(f"{word!r} is not a number", i) from None
            if not math.isfinite(number):
                raise FilterSyntaxError(f"{word!r} is not a finite number", i)
            yield _Token("number", word, i, number)
            i = j
            continue
        if c.isalpha() or c == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "_.-/:"):
                j += 1
            word = text[i:j]
            head, dot, key = word.partition(".")
            if dot and head.lower() in ("params", "metrics", "tags"):
                if not key and j < n and text[j] in "'\"`":
                    key, j = _read_string(text, j, quotes="'\"`")
                if not key:
                    raise FilterSyntaxError(f"{head}. needs a key, e.g. {head}.accuracy", i)
                yield _Token("field", text[i:j], i, (head.lower(), key))
            elif word.lower() in _KEYWORDS:
                yield _Token("keyword", word, i, word.lower())
            elif word.lower() in _PLAIN_FIELDS:
                yield _Token("field", word, i, (word.lower(), None))
            else:
                yield _Token("word", word, i)
            i = j
            continue
        raise FilterSyntaxError(f"unexpected {c!r}", i)
    yield _Token("end", "", n)


def _read_string(text: str, start: int, *, quotes: str = "'\"") -> tuple[str, int]:
    """The text of the quoted string at ``start`` and the offset after its closing quote."""
    q = text[start]
    if q not in quotes:
        raise FilterSyntaxError("expected a quote", start)
    out = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == q:
            if text[i + 1 : i + 2] == q:  # a doubled quote, as in SQL
                out.append(q)
                i += 2
                continue
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise FilterSyntaxError("unterminated string (a quote is missing)", start)


@dataclass(frozen=True)
class _Cmp:
    field: str  # params, metrics, tags, name, experiment, status, started_at, used
    key: str | None
    op: str  # SQL operator, or "contains", "in", "not in"
    values: tuple[Any, ...]  # floats for numbers, str for text
    pos: int


@dataclass(frozen=True)
class _Bool:
    op: str  # and, or, not
    args: tuple[Any, ...]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self._tokens = _tokenize(text)
        self.tok = next(self._tokens)  # one token of lookahead
        self.prev = self.tok

    def take(self) -> _Token:
        t = self.tok
        self.prev = t
        if t.kind != "end":
            self.tok = next(self._tokens)
        return t

    def is_kw(self, word: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.value == word

    def parse(self) -> Any:
        if self.tok.kind == "end":
            raise FilterSyntaxError("empty filter", 0)
        expr = self.parse_or()
        if self.tok.kind != "end":
            raise FilterSyntaxError(f"unexpected {self.tok.text!r}; join conditions with and / or", self.tok.pos)
        return expr

    def parse_or(self) -> Any:
        args = [self.parse_and()]
        while self.is_kw("or"):
            self.take()
            args.append(self.parse_and())
        return args[0] if len(args) == 1 else _Bool("or", tuple(args))

    def parse_and(self) -> Any:
        args = [self.parse_not()]
        while self.is_kw("and"):
            self.take()
            args.append(self.parse_not())
        return args[0] if len(args) == 1 else _Bool("and", tuple(args))

    def parse_not(self) -> Any:
        if self.is_kw("not"):
            self.take()
            return _Bool("not", (self.parse_not(),))
        if self.tok.kind == "lparen":
            self.take()
            inner = self.parse_or()
            if self.tok.kind != "rparen":
                raise FilterSyntaxError(f"expected ')' but found {self.tok.text or 'the end'!r}", self.tok.pos)
            self.take()
            return inner
        return self.parse_comparison()

    def parse_comparison(self) -> _Cmp:
        t = self.tok
        if t.kind != "field":
            found = "the end of the filter" if t.kind == "end" else repr(t.text)
            raise FilterSyntaxError(f"expected a field ({_FIELD_HELP}) but found {found}", t.pos)
        self.take()
        fld, key = t.value
        op_tok = self.tok
        if op_tok.kind == "op":
            self.take()
            op = _OPS[op_tok.text]
            values: tuple[Any, ...] = (self.parse_value(),)
        elif op_tok.kind == "keyword" and op_tok.value == "contains":
            self.take()
            op = "contains"
            values = (self.parse_value(),)
            if not isinstance(values[0], str):
                raise FilterSyntaxError("contains needs a quoted string", self.prev.pos)
        elif op_tok.kind == "keyword" and op_tok.value in ("in", "not"):
            self.take()
            op = "in"
            if op_tok.value == "not":
                if not self.is_kw("in"):
                    raise FilterSyntaxError("expected 'in' after 'not'", self.tok.pos)
                self.take()
                op = "not in"
            if self.tok.kind != "lparen":
                raise FilterSyntaxError("expected '(' to start the list", self.tok.pos)
            self.take()
            items = [self.parse_value()]
            while self.tok.kind == "comma":
                self.take()
                items.append(self.parse_value())
            if self.tok.kind != "rparen":
                raise FilterSyntaxError("expected ',' or ')' in the list", self.tok.pos)
            self.take()
            values = tuple(items)
        else:
            found = "the end of the filter" if op_tok.kind == "end" else repr(op_tok.text)
            raise FilterSyntaxError(f"expected a comparison (= != < <= > >= contains in) after {t.text} "
                                    f"but found {found}", op_tok.pos)
        cmp = _Cmp(fld, key, op, values, t.pos)
        _check_comparison(cmp, op_tok.pos)
        return cmp

    def parse_value(self) -> Any:
        t = self.tok
        if t.kind in ("number", "string"):
            self.take()
            return t.value
        if t.kind in ("word", "field", "keyword"):
            raise FilterSyntaxError(f"expected a number or a quoted string but found {t.text!r} "
                                    f"(put text in quotes: '{t.text}')", t.pos)
        found = "the end of the filter" if t.kind == "end" else repr(t.text)
        raise FilterSyntaxError(f"expected a number or a quoted string but found {found}", t.pos)


def _check_comparison(c: _Cmp, pos: int) -> None:
    if c.field == "metrics" and any(isinstance(v, str) for v in c.values):
        raise FilterSyntaxError(f"metrics are numbers; compare metrics.{c.key} with a number", pos)
    if c.field == "metrics" and c.op == "contains":
        raise FilterSyntaxError("contains works on text, not on metrics", pos)
    if c.field == "status":
        for v in c.values:
            if v not in RUN_STATUSES:
                raise FilterSyntaxError(f"unknown status {v!r}; expected one of {', '.join(RUN_STATUSES)}", pos)
    if c.field == "used" and c.op not in ("=", "<>", "in", "not in"):
        raise FilterSyntaxError("used takes = != or in, with a dataset reference", pos)
    if c.field == "used" and any(not isinstance(v, str) for v in c.values):
        raise FilterSyntaxError("used needs a quoted reference, e.g. used = 'train'", pos)


def parse_filter(text: str) -> Any:
    """Parse a ``runs --where`` expression into a small tree (raises FilterSyntaxError
    naming the 0-based position of the problem)."""
    if not isinstance(text, str):
        raise FilterSyntaxError(f"a filter is text, got {type(text).__name__}")
    return _Parser(text).parse()


# Fragments of SQL for each field, given the comparison as a SQL snippet over `v`.
# Params and tags are stored as TEXT; a number in the filter compares numerically with
# the values that look like numbers (GLOB is SQLite's; PostgreSQL would use
# `v ~ '^[-+0-9.eE]+$'`), and text compares as text. Tags and run states change over
# time: the latest row wins. Metrics: the latest value (by step, then order logged)
# of the run-level series (not per-group results).
_NUMERIC_TEXT = "({v} NOT GLOB '*[^0-9.eE+-]*' AND {v} GLOB '*[0-9]*')"
_LATEST_TAG = "t.pk = (SELECT MAX(t2.pk) FROM tags t2 WHERE t2.run = t.run AND t2.key = t.key)"
_LATEST_METRIC = ("NOT EXISTS (SELECT 1 FROM metrics m2 WHERE m2.run = m.run AND m2.key = m.key AND m2.grp IS NULL "
                  "AND (m2.step > m.step OR (m2.step = m.step AND m2.pk > m.pk)))")
_LATEST_STATE = "s.pk = (SELECT MAX(s2.pk) FROM run_states s2 WHERE s2.run = s.run)"


def _like_pattern(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _value_test(column: str, op: str, value: Any, *, numeric_column: bool = False,
                prefix: bool = False) -> tuple[str, list[Any]]:
    """``column op ?`` with the right typing: numeric for number literals (text
    columns compare only their numeric-looking values), text otherwise."""
    if op == "contains":
        return f"{column} LIKE ? ESCAPE '\\'", [_like_pattern(str(value))]
    if isinstance(value, float):
        if numeric_column:
            return f"{column} {op} ?", [value]
        guard = _NUMERIC_TEXT.format(v=column)
        return f"({guard} AND CAST({column} AS REAL) {op} ?)", [value]
    if prefix:
        # started_at '2024-05-01' compares by the day: '<=' takes in the whole day
        text = str(value).replace(" ", "T")
        return f"substr({column}, 1, {len(text)}) {op} ?", [text]
    return f"{column} {op} ?", [value]


def _compile(expr: Any, store: Store) -> tuple[str, list[Any]]:
    """The filter as a condition on one run row ``n``: each comparison is a probe of
    that run's rows through the ``(run, key)`` indexes."""
    if isinstance(expr, _Bool):
        parts = [_compile(a, store) for a in expr.args]
        if expr.op == "not":
            return f"NOT ({parts[0][0]})", parts[0][1]
        sql = f" {expr.op.upper()} ".join(f"({p[0]})" for p in parts)
        return sql, [x for p in parts for x in p[1]]
    c: _Cmp = expr
    if c.op in ("in", "not in"):
        alts = [_compile(_Cmp(c.field, c.key, "=", (v,), c.pos), store) for v in c.values]
        sql = " OR ".join(f"({a[0]})" for a in alts)
        args = [x for a in alts for x in a[1]]
        return (f"NOT ({sql})", args) if c.op == "not in" else (sql, args)
    v = c.values[0]
    if c.field == "params":
        test, args = _value_test("p.value", c.op, v)
        return f"EXISTS (SELECT 1 FROM params p WHERE p.run = n.id AND p.key = ? AND {test})", [c.key, *args]
    if c.field == "tags":
        test, args = _value_test("t.value", c.op, v)
        return f"EXISTS (SELECT 1 FROM tags t WHERE t.run = n.id AND t.key = ? AND {_LATEST_TAG} AND {test})", [c.key, *args]
    # the latest value as a scalar subquery: one probe of the (run, …) index per run
    if c.field == "metrics":
        latest = ("(SELECT m.value FROM metrics m WHERE m.run = n.id AND m.key = ? AND m.grp IS NULL "
                  "ORDER BY m.step DESC, m.pk DESC LIMIT 1)")
        test, args = _value_test(latest, c.op, v, numeric_column=True)
        return test, [c.key, *args]
    if c.field == "status":
        latest = "(SELECT s.status FROM run_states s WHERE s.run = n.id ORDER BY s.pk DESC LIMIT 1)"
        return _value_test(latest, c.op, v)
    if c.field == "name":
        return _value_test("n.name", c.op, v if isinstance(v, str) else _number_text(v))
    if c.field == "experiment":
        # json_extract is SQLite's; PostgreSQL: (n.attrs::jsonb ->> 'experiment')
        return _value_test("json_extract(n.attrs, '$.experiment')", c.op, v if isinstance(v, str) else _number_text(v))
    if c.field == "started_at":
        return _value_test("n.created_at", c.op, v if isinstance(v, str) else _number_text(v), prefix=c.op != "contains")
    if c.field == "used":
        sql = "EXISTS (SELECT 1 FROM edges e WHERE e.src = n.id AND e.dst = ? AND e.rel = 'used')"
        target = store.resolve(v).id
        return (sql, [target]) if c.op == "=" else (f"NOT ({sql})", [target])
    raise FilterSyntaxError(f"unknown field {c.field!r}", c.pos)  # pragma: no cover - the parser allows no other


def _driver(c: _Cmp, store: Store) -> tuple[int, str, list[Any]] | None:
    """For a comparison that every match must satisfy: the ids of the runs that pass
    it, as a subquery over one index (``params (key, run)``, ``edges (dst, …)``, …),
    and a guess at how selective it is (lower: fewer runs). None when no index helps
    (``!=``, ``not in``, experiment, …)."""
    if c.op in ("<>", "not in", "contains") or c.field in ("experiment", "started_at"):
        return None
    if c.op == "in":
        parts = [_driver(_Cmp(c.field, c.key, "=", (v,), c.pos), store) for v in c.values]
        if any(p is None for p in parts):
            return None
        return (max(p[0] for p in parts),  # type: ignore[index]
                " UNION ".join(p[1] for p in parts), [x for p in parts for x in p[2]])  # type: ignore[index]
    v = c.values[0]
    eq = c.op == "="
    if c.field == "used":
        return 0, "SELECT e.src FROM edges e WHERE e.dst = ? AND e.rel = 'used'", [store.resolve(v).id]
    if c.field == "name":
        return (0 if eq else 4), "SELECT x.id FROM nodes x WHERE x.kind = 'run' AND x.name " + c.op + " ?", [
            v if isinstance(v, str) else _number_text(v)]
    if c.field == "params":
        test, args = _value_test("p.value", c.op, v)
        return (1 if eq else 3), f"SELECT p.run FROM params p WHERE p.key = ? AND {test}", [c.key, *args]
    if c.field == "tags":
        test, args = _value_test("t.value", c.op, v)
        return (1 if eq else 3), f"SELECT t.run FROM tags t WHERE t.key = ? AND {_LATEST_TAG} AND {test}", [c.key, *args]
    if c.field == "metrics":
        test, args = _value_test("m.value", c.op, v, numeric_column=True)
        return 2, f"SELECT m.run FROM metrics m WHERE m.key = ? AND m.grp IS NULL AND {test} AND {_LATEST_METRIC}", [
            c.key, *args]
    if c.field == "status":
        # most runs finish: only the other states are worth driving from
        return (5 if v == "finished" or not eq else 1), \
            f"SELECT s.run FROM run_states s WHERE s.status {c.op} ? AND {_LATEST_STATE}", [v]
    return None


def _where(tree: Any, store: Store) -> tuple[list[str], list[Any]]:
    """WHERE terms for `runs`. When the filter's top level is an ``and`` (or one
    comparison), the most selective indexed comparison drives: its matches are
    found through its index and the other comparisons are probed for those runs
    only, so a filter costs what it selects rather than one probe per run per term.
    Otherwise every run is probed."""
    conjuncts = list(tree.args) if isinstance(tree, _Bool) and tree.op == "and" else [tree]
    best: tuple[int, int, tuple[int, str, list[Any]]] | None = None
    for i, c in enumerate(conjuncts):
        if isinstance(c, _Cmp):
            d = _driver(c, store)
            if d is not None and (best is None or d[0] < best[2][0]):
                best = (i, d[0], d)
    terms: list[str] = []
    args: list[Any] = []
    if best is None or best[1] >= 5:
        terms.append("n.kind = 'run'")
    if best is not None and best[1] < 5:
        terms.append(f"n.id IN ({best[2][1]})")
        args += best[2][2]
    for i, c in enumerate(conjuncts):
        if best is not None and best[1] < 5 and i == best[0]:
            continue
        sql, a = _compile(c, store)
        terms.append(f"({sql})")
        args += a
    return terms, args


def _number_text(v: float) -> str:
    return str(int(v)) if v.is_integer() else repr(v)


def parse_order(order_by: str | Sequence[str]) -> list[tuple[str, str | None, bool]]:
    """Sort keys for `runs`: ``"-metrics.accuracy,params.C"`` →
    ``[("metrics", "accuracy", True), ("params", "C", False)]`` (field, key,
    descending). Raises InvalidInputError for a key that cannot be sorted by."""
    keys = [k.strip() for k in order_by.split(",")] if isinstance(order_by, str) else [str(k).strip() for k in order_by]
    out = []
    for raw in keys:
        if not raw:
            continue
        desc = raw.startswith("-")
        body = raw.lstrip("+-").strip()
        if body.lower().endswith(" desc"):
            body, desc = body[:-5].strip(), True
        elif body.lower().endswith(" asc"):
            body = body[:-4].strip()
        head, dot, key = body.partition(".")
        if dot and head.lower() in ("params", "metrics", "tags") and key:
            out.append((head.lower(), key.strip("'\"`"), desc))
        elif body.lower() in ("name", "experiment", "status", "started_at"):
            out.append((body.lower(), None, desc))
        else:
            raise InvalidInputError(f"cannot sort by {raw!r}; use params.KEY, metrics.KEY, tags.KEY, name, "
                                    "experiment, status or started_at (a leading - sorts descending)")
    return out


def _sort_sql(terms: list[tuple[str, str | None, bool]]) -> tuple[list[str], list[Any], list[str]]:
    """Columns to select (with their arguments) and ORDER BY terms; missing values last."""
    cols: list[str] = []
    args: list[Any] = []
    order: list[str] = []
    for i, (fld, key, desc) in enumerate(terms):
        d = " DESC" if desc else ""
        alias = f"s{i}"
        if fld == "metrics":
            cols.append(f"(SELECT m.value FROM metrics m WHERE m.run = n.id AND m.key = ? AND m.grp IS NULL "
                        f"ORDER BY m.step DESC, m.pk DESC LIMIT 1) AS {alias}")
            args.append(key)
            order += [f"{alias} IS NULL", f"{alias}{d}"]
            continue
        if fld in ("params", "tags"):
            table = fld
            cols.append(f"(SELECT x.value FROM {table} x WHERE x.run = n.id AND x.key = ? "
                        f"ORDER BY x.pk DESC LIMIT 1) AS {alias}")
            args.append(key)
            numeric = _NUMERIC_TEXT.format(v=alias)
            # numbers before text, numbers by value, text by text
            order += [f"{alias} IS NULL", f"CASE WHEN {numeric} THEN 0 ELSE 1 END",
                      f"CASE WHEN {numeric} THEN CAST({alias} AS REAL) END{d}", f"{alias}{d}"]
            continue
        expr = {
            "name": "n.name",
            "experiment": "json_extract(n.attrs, '$.experiment')",
            "started_at": "n.created_at",
            "status": "(SELECT s.status FROM run_states s WHERE s.run = n.id ORDER BY s.pk DESC LIMIT 1)",
        }[fld]
        cols.append(f"{expr} AS {alias}")
        order += [f"{alias} IS NULL", f"{alias}{d}"]
    return cols, args, order


def runs(store: Store, where: str | None = None, order_by: str | Sequence[str] | None = None,
         limit: int | None = None) -> list[Node]:
    """Runs across experiments that match a filter, with their status, params, tags
    and latest metrics in ``attrs``; newest first unless ``order_by`` says otherwise.

    ``where`` is the filter language of DESIGN.md §5, e.g.
    ``params.C > 0.5 and metrics.accuracy >= 0.9 and status = 'finished'`` or
    ``used = 'train' and started_at >= '2024-05-01'``. ``order_by``: keys separated
    by commas, ``-`` for descending: ``-metrics.accuracy,params.C``.

    Raises FilterSyntaxError (with the position) for a filter that does not parse,
    InvalidInputError for a bad sort key or limit, NodeNotFoundError when ``used``
    names no node.
    """
    conditions = ["n.kind = 'run'"]
    args: list[Any] = []
    if where is not None and str(where).strip():
        conditions, args = _where(parse_filter(where), store)
    terms = parse_order(order_by) if order_by else []
    cols, sort_args, order = _sort_sql(terms)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidInputError(f"limit must be a whole number (0 or more), got {limit!r}")
    select = ", ".join([f"n.{c.strip()}" for c in store._NODE_COLS.split(",")] + cols + ["n.pk"])
    sql = f"SELECT {select} FROM nodes n WHERE {' AND '.join(conditions)}"
    sql += " ORDER BY " + ", ".join([*order, "n.pk DESC"])
    params = [*sort_args, *args]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    nodes = [store._node_from_row(row[:5]) for row in store.conn.execute(sql, params)]
    return store.with_run_state(nodes)


# ---------------------------------------------------------------------------
# insights: which parameters matter for a metric


def _latest_metric(store: Store, metric: str) -> dict[str, float]:
    sql = (f"SELECT m.run, m.value FROM metrics m WHERE m.key = ? AND m.grp IS NULL AND m.value IS NOT NULL "
           f"AND {_LATEST_METRIC}")
    return {run: float(v) for run, v in store.conn.execute(sql, (metric,))}


def _ranks(x: Any) -> Any:
    """Average ranks (ties share the mean of their positions), as scipy's rankdata."""
    import numpy as np

    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def _spearman(x: Any, y: Any) -> float | None:
    import numpy as np

    rx, ry = _ranks(x), _ranks(y)
    if np.std(rx) == 0 or np.std(ry) == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def _as_number(text: Any) -> float | None:
    try:
        f = float(text)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def insights(store: Store, metric: str, *, seed: int = 0) -> Insights:
    """Which parameters matter most for ``metric`` across the runs that logged it.

    Fits a random forest (scikit-learn) of the metric's latest value on the runs'
    parameters (numbers as numbers; other values as categories, one column each)
    and reports each parameter's share of the permutation importance measured on
    held-out folds (see `_forest_importance`; ``Insights.explained`` is the forest's
    cross-validated R²), plus the Spearman rank correlation for numeric parameters,
    over all the runs. Parameters that never vary are left out. Deterministic for a
    given ``seed``.

    Raises InvalidInputError when fewer than 3 runs logged the metric.
    """
    import numpy as np

    values = _latest_metric(store, metric)
    if len(values) < 3:
        known = [r[0] for r in store.conn.execute(
            "SELECT DISTINCT key FROM metrics WHERE grp IS NULL ORDER BY key LIMIT 20")]
        hint = f" (logged metrics: {', '.join(known)})" if known and metric not in known else ""
        raise InvalidInputError(f"insights need at least 3 runs that logged {metric!r}; found {len(values)}{hint}")
    run_ids = sorted(values)
    params: dict[str, dict[str, str]] = {r: {} for r in run_ids}
    for chunk in _chunks(run_ids):
        for run, key, value in store.conn.execute(
            f"SELECT run, key, value FROM params WHERE run IN ({_marks(len(chunk))}) ORDER BY pk", chunk):
            params[run][key] = value
    keys = sorted({k for p in params.values() for k in p})
    y = np.array([values[r] for r in run_ids], dtype=float)
    columns: list[Any] = []
    names: list[str] = []
    numeric: dict[str, Any] = {}
    for k in keys:
        raw = [params[r].get(k) for r in run_ids]
        nums = [_as_number(v) for v in raw]
        present = [v for v in raw if v is not None]
        if len(set(present)) + (1 if len(present) < len(raw) else 0) < 2:
            continue  # never varies: it cannot explain anything
        if all(n is not None for n, v in zip(nums, raw) if v is not None):
            col = np.array([np.nan if n is None else n for n in nums], dtype=float)
            fill = np.nanmedian(col) if np.isfinite(col).any() else 0.0
            col = np.where(np.isnan(col), fill, col)
            numeric[k] = col
        else:
            cats = {c: i for i, c in enumerate(sorted({str(v) for v in raw}))}
            col = np.array([cats[str(v)] for v in raw], dtype=float)
        columns.append(col)
        names.append(k)
    if not columns:
        return Insights(metric, len(run_ids), [])
    X = np.column_stack(columns)
    importance, explained = _forest_importance(X, y, seed=seed)
    items = []
    for i, k in enumerate(names):
        corr = _spearman(numeric[k], y) if k in numeric else None
        items.append(ParamImportance(k, round(float(importance[i]), 4), None if corr is None else round(corr, 4)))
    items.sort(key=lambda p: (-p.importance, -abs(p.correlation or 0.0), p.param))
    return Insights(metric, len(run_ids), items, explained=explained)


#: the forest sees at most this many runs (a seeded sample): importances settle long before
_INSIGHTS_SAMPLE = 2000


def _forest_importance(X: Any, y: Any, *, seed: int) -> tuple[Any, float | None]:
    """Each column's share of a random forest's held-out permutation importance, and
    the forest's cross-validated R² (None when the metric never varies).

    Importance is measured on folds the forest did not train on (k-fold, k ≤ 5), as
    the rise in squared error when a column is shuffled: a forest that memorised
    noise would otherwise credit every parameter. When the parameters predict
    nothing (R² ≤ 0) every share is 0.
    """
    import numpy as np

    n = len(y)
    if n < 2 or np.ptp(y) == 0:
        return np.zeros(X.shape[1]), None
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import KFold

    if n > _INSIGHTS_SAMPLE:
        pick = np.random.default_rng(seed).choice(n, _INSIGHTS_SAMPLE, replace=False)
        X, y, n = X[pick], y[pick], _INSIGHTS_SAMPLE
    variance = float(np.var(y))
    rise = np.zeros(X.shape[1])
    sse = 0.0
    for train, test in KFold(n_splits=min(5, n), shuffle=True, random_state=seed).split(X):
        forest = RandomForestRegressor(n_estimators=100 if n <= 500 else 50, random_state=seed,
                                       min_samples_leaf=1 if n < 50 else 3)
        forest.fit(X[train], y[train])
        sse += float(((forest.predict(X[test]) - y[test]) ** 2).sum())
        result = permutation_importance(forest, X[test], y[test], scoring="neg_mean_squared_error",
                                        n_repeats=5, random_state=seed)
        rise += result.importances_mean * len(test)
    explained = 1.0 - sse / (n * variance)
    importance = np.clip(rise / n, 0, None)
    if explained <= 0 or importance.sum() <= 0:
        return np.zeros(X.shape[1]), round(explained, 4)
    return importance / importance.sum(), round(explained, 4)


# ---------------------------------------------------------------------------
# staleness: recorded files that changed on disk, and what depends on them


def status(store: Store) -> Status:
    """Recorded local datasets whose file (or directory) no longer matches its digest,
    and everything downstream of them: the datasets derived from them, the runs that
    read them, the models those runs trained, and those models' predictions (folded
    into one group per model). A missing file counts as changed.

    For each path only the newest record is compared (an older version of a file is
    expected to differ from the file now). Unchanged files cost one ``stat`` each,
    thanks to the store's stat cache.
    """
    from . import hashing

    latest: dict[str, tuple[str, str]] = {}
    # json_extract is SQLite's; PostgreSQL: (attrs::jsonb ->> 'abspath')
    for node_id, abspath, fmt in store.conn.execute(
        "SELECT id, json_extract(attrs, '$.abspath'), json_extract(attrs, '$.format') FROM nodes "
        "WHERE kind = 'dataset' AND json_extract(attrs, '$.abspath') IS NOT NULL ORDER BY pk"
    ):
        latest[abspath] = (node_id, fmt)
    cache = store.stat_cache
    reasons: dict[str, str] = {}
    for abspath, (node_id, fmt) in latest.items():
        want = node_id.split(":", 1)[1]
        if not os.path.exists(abspath):
            reasons[node_id] = "missing"
            continue
        try:
            if os.path.isdir(abspath):
                got = hashing.hash_tree(abspath, cache=cache)[0] if fmt == "directory" else None
            else:
                got = hashing.hash_file(abspath, cache=cache).digest if fmt != "directory" else None
        except InvalidInputError:
            reasons[node_id] = "unreadable"
            continue
        if got != want:
            reasons[node_id] = "modified"
    changed_nodes = store.get_nodes(list(reasons))
    changed = sorted(changed_nodes.values(), key=lambda n: (n.name or "", n.id))
    affected: dict[str, Node] = {}
    if changed:
        seeds = [n.id for n in changed]
        ids = _closure(store, seeds, upstream=False)
        nodes = store.get_nodes([i for i in ids if i not in reasons])
        for i, n in nodes.items():
            if n.kind in ("agent",):
                continue
            affected[i] = n
        for model, count in sorted(_prediction_counts(store, [i for i in nodes if i.startswith("model:")]).items()):
            listed = sum(1 for n in nodes.values() if n.kind == "prediction" and n.attrs.get("model") == model)
            n = count - listed
            if n > 0:
                gid = f"group:prediction:{n}"
                if gid in affected:
                    gid = f"{gid}:{model.split(':', 1)[1][:12]}"
                affected[gid] = Node(gid, "group", f"{n:,} predictions", {"of": "prediction", "count": n, "model": model})
    ordered = sorted(affected.values(), key=lambda n: (_KIND_ORDER.get(n.kind, 99), n.name or "", n.id))
    return Status(changed, ordered, reasons)
