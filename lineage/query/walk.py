"""The traversals: `trace` (upstream), `impact` (downstream), `path` and
`common_ancestors`, each a few recursive CTEs (see `closure`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx

from ..errors import InvalidInputError
from ..model import KINDS, Edge, Node
from ..store import Store
from .closure import (
    KIND_RANK,
    as_subgraph,
    bfs_distances,
    count_predictions,
    edges_among,
    fetch_nodes,
    find_bridges,
    is_prediction,
    prediction_spans,
    predictions_in,
    predictions_of,
    reachable_ids,
    resolve_root,
    scored_batches,
    upstream_subgraph,
    walk_levels,
    walk_upstream,
)
from .subgraph import Subgraph


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
    return _whole_number(depth, "depth", " of hops")


def _whole_number(value: int | None, name: str, unit: str = "") -> int | None:
    """``value`` when None or a whole number (0 or more); else InvalidInputError."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidInputError(f"{name} must be a whole number{unit} (0 or more), got {value!r}")
    return value


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

    A prediction leads to its model (and to the run that scored it, when a run did:
    `lineage predict`), the model to the run that trained it, the run to
    its datasets, code, environment and agent, each dataset to the run that wrote it,
    and so on to the roots. ``was_revision_of`` (version history) is not followed.

    Parameters
    ----------
    store : Store
        The store to read.
    ref : str
        A node id (or any reference `Store.resolve` accepts).
    depth : int, optional
        At most this many hops from the node (None: no limit).
    kinds : sequence of str, optional
        Keep only nodes of these kinds (and the node itself); paths through the
        nodes left out become edges with ``role="indirect"``.

    Returns
    -------
    Subgraph
        Direction ``"upstream"``; edges point the stored (PROV) way.

    Raises
    ------
    NodeNotFoundError, AmbiguousIdError
        When ``ref`` names no node or several.

    Examples
    --------
    >>> from lineage import query
    >>> sub = query.trace(store, "clf")
    >>> sorted(n.name for n in sub.nodes(kind="dataset"))
    ['raw', 'test', 'train']
    >>> query.trace(store, "clf", kinds=["dataset", "model"]).counts
    {'model': 1, 'dataset': 3}
    """
    root = resolve_root(store, ref)
    depth = _check_depth(depth)
    keep = _check_kinds(kinds)
    walked: tuple[dict[str, Node], list[Edge]] | None = None
    if depth is None and keep is None:
        sub = upstream_subgraph(store, root)  # the common case: one statement, one pass
        if sub is not None:
            return sub
        # (None: a prediction mid-walk; walk_upstream would say the same)
    elif depth is None:
        walked = walk_upstream(store, root)
    if walked is not None:  # kinds asked for: the same one statement
        nodes, edges = walked
        dist = None
    else:
        if depth is None:
            ids = reachable_ids(store, [root], upstream=True)
            dist = None
        else:
            dist = walk_levels(store, [root], upstream=True, depth=depth)
            ids = set(dist)
        nodes = fetch_nodes(store, ids, root)
        edges = edges_among(store, nodes, upstream=True)
    if dist is None:
        dist = bfs_distances([root], edges, upstream=True)
    if keep is not None:
        nodes, edges = _keep_kinds(nodes, edges, root, keep)
    return as_subgraph(nodes, edges, root, direction="upstream", dist=dist)


def impact(store: Store, ref: str, *, include_predictions: bool = False, depth: int | None = None,
           max_predictions: int | None = None) -> Subgraph:
    """Everything downstream of a node, the node itself included: for a bad dataset,
    every dataset derived from it, every run that read any of them, every model those
    runs trained, and the predictions of those models.

    Predictions are counted, not fetched: each model's predictions appear as one
    folded ``group`` node (``group:prediction:<n>``, attrs ``{"of": "prediction",
    "count": n}``) with a ``was_derived_from`` edge to the model, and
    ``counts["prediction"]`` is their total.

    Parameters
    ----------
    store : Store
        The store to read.
    ref : str
        A node id (or any reference `Store.resolve` accepts).
    include_predictions : bool, default False
        List every prediction instead of one group per model.
    depth : int, optional
        At most this many hops from the node.
    max_predictions : int, optional
        With ``include_predictions``, list at most this many of each model's
        predictions (its first), the rest counted in its group: a view that shows
        only so many nodes need not build a million.

    Returns
    -------
    Subgraph
        Direction ``"downstream"``.

    Raises
    ------
    NodeNotFoundError, AmbiguousIdError
        When ``ref`` names no node or several.

    Examples
    --------
    >>> from lineage import query
    >>> query.impact(store, "raw").counts
    {'dataset': 3, 'run': 4, 'model': 3, 'prediction': 3}
    """
    root = resolve_root(store, ref)
    depth = _check_depth(depth)
    _whole_number(max_predictions, "max_predictions")
    bridges = find_bridges(store)
    if depth is None:
        ids = reachable_ids(store, [root], upstream=False, bridges=bridges)
        dist = None
    else:
        dist = walk_levels(store, [root], upstream=False, depth=depth, bridges=bridges)
        ids = set(dist)
    nodes = fetch_nodes(store, ids, root)
    edges = edges_among(store, nodes, upstream=False)
    if dist is None:
        dist = bfs_distances([root], edges, upstream=False)
    models = [i for i in nodes if i.startswith("model:") and (depth is None or dist.get(i, depth) < depth)]
    if include_predictions:
        for p in predictions_of(store, sorted(models), limit=max_predictions):
            if p.id not in nodes:
                nodes[p.id] = p
                edges.append(Edge(p.id, p.attrs["model"], "was_derived_from"))
                dist[p.id] = dist.get(p.attrs["model"], 0) + 1
    if not include_predictions or max_predictions is not None:  # the rest counted, one group a model
        listed: dict[str, int] = {}
        for i, node in nodes.items():
            if is_prediction(i):
                m = node.attrs.get("model")
                if m is not None:
                    listed[m] = listed.get(m, 0) + 1
        counts = count_predictions(store, models)
        spans = prediction_spans(store, [m for m, count in counts.items() if count > listed.get(m, 0)])
        for model, count in sorted(counts.items()):
            n = count - listed.get(model, 0)
            if n <= 0:
                continue
            first, last = spans.get(model, (None, None))  # the folded group's date range
            _fold(nodes, edges, dist, n, (model, "was_derived_from", None), {"model": model, "first": first, "last": last})
    _add_scored(store, nodes, edges, dist, set(models), include_predictions and max_predictions is None)
    return as_subgraph(nodes, edges, root, direction="downstream", dist=dist)


def _add_scored(store: Store, nodes: dict[str, Node], edges: list[Edge], dist: dict[str, int],
                models: set[str], listed: bool) -> None:
    """The predictions runs of the walk made (`lineage predict` of a downstream file):
    listed, or one group per run. Those of a model in the walk are counted with it."""
    runs = [i for i, n in nodes.items() if n.kind == "run"]
    batches = [b for b in scored_batches(store, runs) if b[1] not in models]
    if not batches:
        return
    if listed:
        run_of = {event: run for run, _, _, event in batches}
        for event, p in predictions_in(store, list(run_of)):
            if p.id not in nodes:
                nodes[p.id] = p
                run = run_of[event]
                edges.append(Edge(p.id, run, "was_generated_by", "predictions"))
                dist[p.id] = dist.get(run, 0) + 1
        return
    per_run: dict[str, tuple[int, str]] = {}
    for run, model, count, _ in batches:
        n, _ = per_run.get(run, (0, model))
        per_run[run] = (n + count, model)
    for run, (n, model) in sorted(per_run.items()):
        _fold(nodes, edges, dist, n, (run, "was_generated_by", "predictions"), {"model": model, "run": run})


def _fold(nodes: dict[str, Node], edges: list[Edge], dist: dict[str, int], n: int,
          link: tuple[str, str, str | None], attrs: dict[str, Any]) -> None:
    """One ``group`` node standing for ``n`` predictions (``group:prediction:<n>``,
    attrs ``{"of", "count", **attrs}``), with an edge ``link`` = (end, relation,
    role) to the node they hang from, one hop past it."""
    end, rel, role = link
    gid = f"group:prediction:{n}"
    if gid in nodes:  # two groups of as many predictions: tell them apart
        gid = f"{gid}:{end.split(':', 1)[1][:12]}"
    nodes[gid] = Node(gid, "group", f"{n:,} predictions", {"of": "prediction", "count": n, **attrs})
    edges.append(Edge(gid, end, rel, role))
    dist[gid] = dist.get(end, 0) + 1


def path(store: Store, a: str, b: str) -> list[Node]:
    """A shortest provenance path between two nodes, from ``a`` to ``b``.

    When ``b`` is upstream of ``a`` the path follows edges the stored way (``a``
    depends on … on ``b``); when ``a`` is upstream of ``b``, it runs the other way.
    Walks upstream only, so it never touches a node's (possibly huge) downstream.

    Parameters
    ----------
    store : Store
        The store to read.
    a, b : str
        Node ids (or references `Store.resolve` accepts).

    Returns
    -------
    list of Node
        From ``a`` to ``b``, both included; empty when neither depends on the other.

    Raises
    ------
    NodeNotFoundError
        When either names no node.

    Examples
    --------
    >>> from lineage import query
    >>> [n.name for n in query.path(store, "clf", "raw")]
    ['clf', 'fit', 'prepare', 'raw']
    """
    a, b = resolve_root(store, a), resolve_root(store, b)
    if a == b:
        return list(fetch_nodes(store, [a], a).values())
    for start, goal in ((a, b), (b, a)):
        ids = reachable_ids(store, [start], upstream=True)
        if goal not in ids:
            continue
        nodes = fetch_nodes(store, ids, start)
        edges = edges_among(store, nodes, upstream=True)
        g = nx.DiGraph()
        g.add_edges_from((e.src, e.dst) for e in edges)
        hops = nx.shortest_path(g, start, goal)
        if start != a:
            hops.reverse()
        return [nodes[i] for i in hops]
    return []


def common_ancestors(store: Store, ids: Sequence[str]) -> list[Node]:
    """Nodes upstream of every one of ``ids`` (the nodes themselves left out), the
    nearest first (by the sum of their distances).

    Parameters
    ----------
    store : Store
        The store to read.
    ids : sequence of str
        Node ids (or references `Store.resolve` accepts).

    Returns
    -------
    list of Node

    Raises
    ------
    NodeNotFoundError
        When one names no node.

    Examples
    --------
    >>> from lineage import query
    >>> shared = query.common_ancestors(store, ["clf@1", "clf@3"])
    >>> sorted(n.name for n in shared if n.kind == "dataset")
    ['raw', 'test', 'train']
    """
    roots = list(dict.fromkeys(resolve_root(store, i) for i in ids))
    if not roots:
        return []
    common: set[str] | None = None
    total: dict[str, int] = {}
    for r in roots:
        reached = reachable_ids(store, [r], upstream=True)
        nodes = fetch_nodes(store, reached, r)
        dist = bfs_distances([r], edges_among(store, nodes, upstream=True), upstream=True)
        common = set(reached) if common is None else common & reached
        for i in common:
            total[i] = total.get(i, 0) + dist.get(i, 0)
    assert common is not None
    common -= set(roots)
    found = store.get_nodes(list(common))
    return sorted(found.values(), key=lambda n: (total.get(n.id, 0), KIND_RANK.get(n.kind, 99), n.name or "", n.id))
