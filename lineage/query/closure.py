"""Walking the graph: the machinery every query shares. Recursive CTEs that return
the ids upstream or downstream of some seeds (predictions followed through their
model), level-by-level walks for a depth limit, the edges among a set of nodes, hop
distances, and the fetch of the reached rows into a `Subgraph`."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from ..errors import NodeNotFoundError
from ..model import KINDS, LISTING_ORDER, PROVENANCE_RELATIONS, Edge, Node, is_hex
from ..store import Store, latest, node_name, published
from ..store.core import apply_run_state, with_duration
from .subgraph import Subgraph, build_subgraph, deferred_subgraph

#: at most this many ids per ``IN (...)`` list: far below SQLite's oldest limit of 999
#: host parameters, and PostgreSQL's 65535
_CHUNK = 500
#: at most this many rows per ``VALUES`` seed list: SQLite counts each row of one as a
#: term of a compound SELECT, at most 500 (SQLITE_MAX_COMPOUND_SELECT), so 500 seeds
#: failed "too many terms in compound SELECT": `lineage status` on a store with 500
#: superseded versions
_SEEDS = 250

#: kinds in the order a listing shows them (and blame breaks ties in)
KIND_RANK = {k: i for i, k in enumerate((*LISTING_ORDER, "group"))}

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


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    """``items`` in lists of at most ``size``: SQLite caps the parameters of one statement."""
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def placeholders(n: int) -> str:
    """``?, ?, ?`` for ``n`` parameters of an ``IN (...)``."""
    return ", ".join("?" * n)


def is_prediction(node_id: str) -> bool:
    """Whether ``node_id`` names a prediction (they live in their own table, not in ``nodes``)."""
    return node_id.startswith("prediction:")


def models_of(store: Store, prediction_ids: Iterable[str]) -> dict[str, str]:
    """``{prediction id: model id}`` for those of ``prediction_ids`` that exist."""
    ids = [i for i in prediction_ids if is_prediction(i)]
    out: dict[str, str] = {}
    for chunk in chunks(ids):
        out.update(store.conn.execute(
            f"SELECT id, model FROM predictions WHERE id IN ({placeholders(len(chunk))}) AND {published()}", chunk))
    return out


# The run that scored a batch of predictions (`lineage predict`, `lineage run
# --predictions`) is in the payload of the ledger event that recorded them (a bulk
# row's ``event`` is ``-batch``: its publishing event). Read per prediction, by keys.
_SCORED_BY = (
    "SELECT p.id, json_extract(e.payload, '$.run') FROM predictions p JOIN events e ON e.seq = "
    "CASE WHEN p.event < 0 THEN (SELECT b.event FROM bulk_batches b WHERE b.batch = -p.event) ELSE p.event END "
    "WHERE p.id IN ({marks}) AND json_extract(e.payload, '$.run') IS NOT NULL"
)


def scored_by(store: Store, prediction_ids: Iterable[str]) -> dict[str, str]:
    """``{prediction id: run id}`` for those of ``prediction_ids`` a recorded run made
    (the run that read their input file): an implicit ``was_generated_by`` edge."""
    ids = [i for i in prediction_ids if is_prediction(i)]
    out: dict[str, str] = {}
    for chunk in chunks(ids):
        out.update(store.conn.execute(_SCORED_BY.format(marks=placeholders(len(chunk))), chunk))
    return out


def find_bridges(store: Store) -> dict[str, str]:
    """Predictions that something depends on (an edge points at them), with their models.

    Downstream walks continue from these; there are usually none, and finding that out
    is one range scan of the ``edges (dst, …)`` index.
    """
    sql = ("SELECT p.id, p.model FROM predictions p WHERE p.id IN "
           "(SELECT e.dst FROM edges e WHERE e.dst >= 'prediction:' AND e.dst < 'prediction;' "
           f"AND e.rel <> 'was_revision_of') AND {published('p')}")
    return dict(store.conn.execute(sql))


def reachable_ids(store: Store, seeds: Iterable[str], *, upstream: bool, bridges: Mapping[str, str] | None = None) -> set[str]:
    """Every id reachable from ``seeds`` (included) along provenance edges, upstream
    (towards what things depend on) or downstream, following the implicit
    prediction → model edges too, except to the leaf predictions downstream (see
    `count_predictions`). One recursive CTE per round; a second round happens only
    when the walk meets a prediction with something on its far side."""
    sql = _UP_CTE if upstream else _DOWN_CTE
    reached: set[str] = set()
    frontier = list(dict.fromkeys(seeds))
    looked_up: set[str] = set()  # predictions whose model we already followed
    if upstream:
        frontier += [m for m in (*models_of(store, frontier).values(), *scored_by(store, frontier).values())
                     if m not in frontier]
        looked_up.update(i for i in frontier if is_prediction(i))
    elif bridges is None:
        bridges = find_bridges(store)
    while frontier:
        new: set[str] = set()
        for chunk in chunks(frontier, _SEEDS):
            seeds_sql = "VALUES " + ", ".join(["(?)"] * len(chunk))
            new.update(r[0] for r in store.conn.execute(sql.format(seeds=seeds_sql), chunk))
        new -= reached
        reached |= new
        if upstream:
            preds = [i for i in new if is_prediction(i) and i not in looked_up]
            looked_up.update(preds)
            frontier = [m for m in {*models_of(store, preds).values(), *scored_by(store, preds).values()}
                        if m not in reached]
        else:
            assert bridges is not None
            frontier = [p for p, m in bridges.items() if m in reached and p not in reached]
    return reached


# One statement for a whole upstream walk (`walk_upstream`): the ids the walk reaches
# with their node rows (NULL for an id that is no node: a prediction, or a dangling
# edge's end), tagged 0; the provenance edges leaving them, tagged 1; for a prediction
# its own row, tagged 2; and the state of the runs among them (`Store.with_run_state`'s
# params, tags, metrics and run_states rows), tagged 3 to 6, with the pks (and a
# metric's step) to put them in that method's order. SQLite materializes the walk once
# for all its reads. (The run state used to be four more statements after this one:
# with their Python, a quarter of a trace's time, issue 16.)
#
# Columns: tag, five texts, a real, two integers; as few as the rows need, since
# every column of every row costs (half of this statement's time was making its
# rows into Python tuples). Branch 0's NULLs are typed because PostgreSQL settles a
# UNION's column types branch by branch, left to right.
_UP_ROWS = (
    "WITH RECURSIVE walk(id) AS ({seeds} UNION "
    "SELECT e.dst FROM edges e JOIN walk w ON e.src = w.id WHERE e.rel <> 'was_revision_of') "
    "SELECT 0, w.id, n.kind, " + node_name("n") + ", n.attrs, n.created_at, CAST(NULL AS DOUBLE PRECISION), "
    "CAST(NULL AS BIGINT), CAST(NULL AS BIGINT) FROM walk w LEFT JOIN nodes n ON n.id = w.id "
    "UNION ALL "
    "SELECT 1, e.src, e.dst, e.rel, e.role, NULL, NULL, NULL, e.pk FROM walk w CROSS JOIN edges e "
    "WHERE e.src = w.id AND e.rel <> 'was_revision_of' "
    # The range on run ids keeps the four probes below to the runs of the walk. CROSS
    # JOIN holds SQLite to the written order, the walk outside: from the range it could
    # infer one on x.run, and it has chosen to read every run's rows in that range
    # (PostgreSQL reads CROSS JOIN ... WHERE as the inner join it is and plans freely.)
    "UNION ALL SELECT 3, x.run, x.key, x.value, NULL, NULL, NULL, NULL, x.pk "
    "FROM walk w CROSS JOIN params x WHERE x.run = w.id AND w.id >= 'run:' AND w.id < 'run;' "
    "UNION ALL SELECT 4, x.run, x.key, x.value, NULL, NULL, NULL, NULL, x.pk "
    "FROM walk w CROSS JOIN tags x WHERE x.run = w.id AND w.id >= 'run:' AND w.id < 'run;' "
    "UNION ALL SELECT 5, x.run, x.key, x.at, NULL, NULL, x.value, x.step, x.pk "
    "FROM walk w CROSS JOIN metrics x WHERE x.run = w.id AND w.id >= 'run:' AND w.id < 'run;' AND x.grp IS NULL "
    "UNION ALL SELECT 6, x.run, x.status, x.at, x.error, NULL, NULL, x.exit_code, x.pk "
    "FROM walk w CROSS JOIN run_states x WHERE x.run = w.id AND w.id >= 'run:' AND w.id < 'run;'"
)
# A prediction's walk starts from what the prediction points at: its model
# (predictions are not in `edges`) and the ends of any edges stored from it; not from
# the prediction itself, which is no node row (seeding the walk with it cost a fifth
# of the statement: a temporary b-tree for the seeds' UNION, and probes that find
# nothing). Its edges and its own row (the rest of its node: its id is the root) are
# read beside the walk. (A UNION ALL of seeds is enough: the recursive UNION drops a
# repeated row wherever it comes from.)
# (rows of a bulk write not yet published are no one's: `published`)
_PREDICTION_SEEDS = (f"SELECT model FROM predictions WHERE id = ? AND {published()} "
                     "UNION ALL SELECT dst FROM edges WHERE src = ? AND rel <> 'was_revision_of' "
                     "UNION ALL " + _SCORED_BY.format(marks="?").replace("SELECT p.id, ", "SELECT ", 1))
_PREDICTION_ROWS = (" UNION ALL SELECT 1, src, dst, rel, role, NULL, NULL, NULL, pk FROM edges "
                    "WHERE src = ? AND rel <> 'was_revision_of'"
                    " UNION ALL SELECT 2, model, input_digest, output, request_id, created_at, score, NULL, NULL "
                    f"FROM predictions WHERE id = ? AND {published()}"
                    # tag 7: the run that scored it (`scored_by`)
                    " UNION ALL " + _SCORED_BY.format(marks="?").replace(
                        "SELECT p.id, json_extract(e.payload, '$.run')",
                        "SELECT 7, json_extract(e.payload, '$.run'), NULL, NULL, NULL, NULL, NULL, NULL, NULL", 1))
_UP_FROM_PREDICTION = _UP_ROWS.format(seeds=_PREDICTION_SEEDS) + _PREDICTION_ROWS
_UP_FROM_NODE = _UP_ROWS.format(seeds="VALUES (?)")


#: a raw edge row of `_walk_rows`: (pk, src, dst, rel, role)
_RawEdge = tuple[float, str, str, str, "str | None"]


def _walk_rows(store: Store, root: str) -> tuple[dict[str, Node], list[_RawEdge]] | None:
    """`walk_upstream`'s statement, read: ``{id: Node}`` and the edges as rows
    ``(pk, src, dst, rel, role)`` in no order, those to missing nodes included; a
    prediction root's edge to its model comes last, with an infinite pk."""
    root_node: Node | None = None
    args: tuple[str, ...]
    if is_prediction(root):
        sql, args = _UP_FROM_PREDICTION, (root, root, root, root, root, root)
    else:
        sql, args = _UP_FROM_NODE, (root,)
    nodes: dict[str, Node] = {}
    raw_edges: list[_RawEdge] = []
    states: dict[str, list[tuple[Any, ...]]] = {}  # a run's state rows
    runs: list[tuple[str, str | None, str, str | None]] = []
    from_row = Node.from_row  # attrs parsed when read: most callers never read most of them
    returned = False  # the walk came back to its (prediction) root, through a cycle
    scorer: str | None = None  # the run that scored a prediction root
    for row in store.conn.execute(sql, args):
        tag, a, b, c, d, e, number, integer, pk = row
        if tag == 0:
            if b is None:
                if a != root and is_prediction(a):
                    return None  # a prediction mid-walk: its model is a second round
                returned = returned or a == root
            elif b == "run":
                runs.append((a, c, d, e))
            else:
                nodes[a] = from_row(a, b, c, d, e)
        elif tag == 1:
            raw_edges.append((pk, a, b, c, d))
        elif tag == 2:
            root_node = store._prediction_from_row((root, a, b, c, number, d, e))
        elif tag == 7:
            scorer = a
        else:  # (in whatever order the branches' rows come)
            states.setdefault(a, []).append(row)
    if returned:  # then the root's own edges were read twice: from the walk, and beside it
        raw_edges = list({edge[0]: edge for edge in raw_edges}.values())
    for run_id, name, attrs, created_at in runs:
        # the state is folded when the attrs are read, as the JSON is parsed
        nodes[run_id] = from_row(run_id, "run", name, attrs, created_at, partial(_with_state, states.get(run_id, ())))
    if root_node is not None:
        nodes[root] = root_node
        model = root_node.attrs.get("model")
        if model is not None:
            raw_edges.append((_LAST, root, model, "was_derived_from", None))
        if scorer is not None:
            raw_edges.append((_LAST, root, scorer, "was_generated_by", "predictions"))
    elif root not in nodes:
        raise NodeNotFoundError(root)
    return nodes, raw_edges


_LAST = float("inf")  # the pk of an implicit edge: after every stored one, as `edges_among` lists it


def walk_upstream(store: Store, root: str) -> tuple[dict[str, Node], list[Edge]] | None:
    """The nodes upstream of ``root`` (itself included, runs with their state as
    `Store.with_run_state` gives it) and the edges among them, as `reachable_ids`,
    `fetch_nodes` and `edges_among` together find them, in one statement.

    Returns None when the walk meets a prediction other than the root (something
    depends on a prediction: a second round is needed), for the general path to do.
    Raises NodeNotFoundError when ``root`` is no node.
    """
    walked = _walk_rows(store, root)
    if walked is None:
        return None
    nodes, raw_edges = walked
    raw_edges.sort()  # stored order, as `edges_among` reads them
    # both ends must be nodes that exist: an edge to a missing node is dropped
    return nodes, [Edge(s, d, r, ro) for _, s, d, r, ro in raw_edges if d in nodes]


def upstream_subgraph(store: Store, root: str) -> Subgraph | None:
    """``as_subgraph`` of `walk_upstream`'s answer, with distances from ``root``: the
    same Subgraph, put in order (distances, sorts, an Edge per row) in one pass over
    the rows when first read rather than in three passes before it is returned
    (together a third of a trace's time, issue 16). The walk itself is read whole
    now, in its one statement.

    Returns None, and raises, as `walk_upstream` does.
    """
    walked = _walk_rows(store, root)
    if walked is None:
        return None
    nodes, raw_edges = walked
    return deferred_subgraph(nodes, partial(_in_order, nodes, raw_edges, root), root, direction="upstream")


def _in_order(nodes: Mapping[str, Node], raw_edges: Sequence[_RawEdge],
              root: str) -> tuple[list[Node], list[Edge], dict[str, int]]:
    """What `as_subgraph` makes of `walk_upstream`'s answer (``raw_edges`` as
    `_walk_rows` reads them): the nodes in order, the edges in order, the distances."""
    # the edges `walk_upstream` keeps (to a node that exists), and the walk's
    # adjacency for the distances
    kept: list[_RawEdge] = []
    adj: dict[str, list[str]] = {}
    near = adj.get
    for edge in raw_edges:
        if edge[2] in nodes:
            kept.append(edge)
            up = near(edge[1])
            if up is None:
                adj[edge[1]] = [edge[2]]
            else:
                up.append(edge[2])
    dist = {root: 0}
    queue = deque((root,))
    while queue:
        u = queue.popleft()
        for v in near(u, ()):
            if v not in dist:
                dist[v] = dist[u] + 1
                queue.append(v)
    # as `as_subgraph` orders them; the pk last stands for `walk_upstream`'s sort by
    # pk before as_subgraph's stable sort
    far, hops, rank = 1 << 30, dist.get, KIND_RANK.get
    ordered = sorted(nodes.values(), key=lambda n: (hops(n.id, far), rank(n.kind, 99), n.name or "", n.id))
    kept.sort(key=lambda e: (hops(e[1], far), e[1], e[2], e[3], e[4] or "", e[0]))
    return ordered, [Edge(s, d, r, ro) for _, s, d, r, ro in kept], dist


def _state_order(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # `Store.with_run_state`'s orders: each table in pk order, metrics in MLflow's order
    # (`latest.rank`: the value of a metric comes last, so it wins); the tag keeps the
    # tables apart
    if row[0] == 5:
        return (5, *latest.rank(row[7], row[3], row[6], row[8]))
    return (row[0], row[8])


def _with_state(rows: Sequence[tuple[Any, ...]], attrs: dict[str, Any]) -> dict[str, Any]:
    """A run's ``attrs`` with the state its ``rows`` (`walk_upstream`'s rows tagged 3
    to 6) tell, added exactly as `Store.with_run_state` adds it."""
    state: dict[str, Any] = {"params": {}, "tags": {}, "metrics": {}}
    for tag, _, key, value, error, _, number, integer, _ in sorted(rows, key=_state_order):
        if tag == 3:
            state["params"][key] = value
        elif tag == 4:
            state["tags"][key] = value
        elif tag == 5:
            state["metrics"][key] = number
        else:  # run_states: key is the status, value the time
            apply_run_state(state, key, value, integer, error)
    attrs.update(state)
    return with_duration(attrs)


def walk_levels(store: Store, seeds: Sequence[str], *, upstream: bool, depth: int,
                bridges: Mapping[str, str] | None = None) -> dict[str, int]:
    """``{id: hops from the nearest seed}`` for everything within ``depth`` hops.

    Walked one level per query rather than by a CTE: a depth-limited CTE must carry
    the depth in its rows, so on a graph with cycles it revisits nodes at every depth
    up to the limit, while a level walk visits each node once.
    """
    dist = {s: 0 for s in seeds}
    frontier = list(dict.fromkeys(seeds))
    if not upstream and bridges is None:
        bridges = find_bridges(store)
    by_model: dict[str, list[str]] = {}
    for p, m in (bridges or {}).items():
        by_model.setdefault(m, []).append(p)
    far, near = ("dst", "src") if upstream else ("src", "dst")
    for d in range(1, depth + 1):
        found: set[str] = set()
        for chunk in chunks(frontier):
            found.update(r[0] for r in store.conn.execute(
                f"SELECT {far} FROM edges WHERE {near} IN ({placeholders(len(chunk))}) AND rel <> 'was_revision_of'", chunk))
        if upstream:
            found.update(models_of(store, frontier).values())
            found.update(scored_by(store, frontier).values())
        else:
            for m in frontier:
                found.update(by_model.get(m, ()))
        frontier = [i for i in found if i not in dist]
        if not frontier:
            break
        for i in frontier:
            dist[i] = d
    return dist


def count_predictions(store: Store, models: Sequence[str]) -> dict[str, int]:
    """How many predictions each model made (``COUNT(*)`` on the ``model`` index)."""
    out: dict[str, int] = {}
    for chunk in chunks([m for m in models if m.startswith("model:")]):
        out.update(store.conn.execute(
            f"SELECT model, COUNT(*) FROM predictions WHERE model IN ({placeholders(len(chunk))}) AND {published()} "
            "GROUP BY model", chunk))
    return out


def prediction_spans(store: Store, models: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
    """When each model's first and last predictions were recorded: for each model
    two lookups on the ``model`` index in row order (rows are appended in time
    order), not a scan, all in one statement per chunk of models (on PostgreSQL a
    round trip per model was most of an impact's time: 0.37x the raw rate)."""
    out: dict[str, tuple[str | None, str | None]] = {}
    one = f"SELECT p.created_at FROM predictions p WHERE p.model = n.id AND {published('p')} ORDER BY p.pk"
    for chunk in chunks([m for m in models if m.startswith("model:")]):
        for model, first, last in store.conn.execute(
                f"SELECT n.id, ({one} LIMIT 1), ({one} DESC LIMIT 1) FROM nodes n WHERE n.id IN ({placeholders(len(chunk))})",
                chunk):
            out[model] = (first, last)
    return out


def predictions_of(store: Store, models: Sequence[str], *, limit: int | None = None) -> list[Node]:
    """Every prediction of ``models``, as nodes (fetched by the ``model`` index); with
    ``limit``, the first ``limit`` of each model (one statement a model, reading no
    further along its index than that)."""
    out: list[Node] = []
    cols = store._PRED_COLS  # the store's own column list and row reader: one definition
    if limit is not None:
        for model in models:
            if model.startswith("model:"):
                out.extend(map(store._prediction_from_row, store.conn.execute(
                    f"SELECT {cols} FROM predictions WHERE model = ? AND {published()} ORDER BY pk LIMIT ?",
                    (model, limit))))
        return out
    for chunk in chunks([m for m in models if m.startswith("model:")]):
        rows = store.conn.execute(
            f"SELECT {cols} FROM predictions WHERE model IN ({placeholders(len(chunk))}) AND {published()} ORDER BY pk", chunk)
        out.extend(map(store._prediction_from_row, rows))
    return out


def scored_batches(store: Store, run_ids: Sequence[str]) -> list[tuple[str, str, int, int]]:
    """The prediction writes the given runs made (`scored_by`'s other direction):
    ``(run, model, count, event)`` with ``event`` as the predictions table stores it
    (``-batch`` for a bulk write). On the partial index ``events_scored_by``
    (migration 14): no scan of the ledger."""
    found: list[tuple[str, str, int, int]] = []
    for chunk in chunks([r for r in run_ids if r.startswith("run:")]):
        found.extend(store.conn.execute(
            "SELECT json_extract(payload, '$.run'), json_extract(payload, '$.model'), "
            "json_extract(payload, '$.count'), seq FROM events "
            f"WHERE type = 'predictions' AND json_extract(payload, '$.run') IN ({placeholders(len(chunk))})", chunk))
    if not found:
        return []
    batch_of: dict[int, int] = {}
    for chunk in chunks([seq for *_, seq in found]):
        batch_of.update((e, b) for b, e in store.conn.execute(
            f"SELECT batch, event FROM bulk_batches WHERE event IN ({placeholders(len(chunk))})", chunk))
    return [(run, model, int(count or 0), -batch_of[seq] if seq in batch_of else seq) for run, model, count, seq in found]


def predictions_in(store: Store, events: Sequence[int]) -> list[tuple[int, Node]]:
    """The predictions written by the given writes (``event`` as stored), as
    ``(event, node)`` (on the ``predictions_event`` index)."""
    out: list[tuple[int, Node]] = []
    for chunk in chunks(list(events)):
        rows = store.conn.execute(f"SELECT event, {store._PRED_COLS} FROM predictions WHERE event IN "
                                  f"({placeholders(len(chunk))}) AND {published()} ORDER BY pk", chunk)
        out.extend((row[0], store._prediction_from_row(row[1:])) for row in rows)
    return out


def edges_among(store: Store, nodes: Mapping[str, Node], *, upstream: bool) -> list[Edge]:
    """The provenance edges between ``nodes``, stored and implicit ones alike.

    Upstream sets are closed under out-edges and downstream sets under in-edges, so
    one indexed query per chunk, on the side that is closed, finds every edge.
    """
    near = "src" if upstream else "dst"
    edges: list[Edge] = []
    for chunk in chunks(list(nodes)):
        rows = store.conn.execute(
            f"SELECT src, dst, rel, role FROM edges WHERE {near} IN ({placeholders(len(chunk))}) "
            "AND rel <> 'was_revision_of' ORDER BY pk", chunk)
        # both ends must be nodes that exist: an edge to a missing node is dropped
        edges.extend(Edge(s, d, r, ro) for s, d, r, ro in rows if (d if upstream else s) in nodes)
    for i, n in nodes.items():
        if n.kind == "prediction" and n.attrs.get("model") in nodes:
            edges.append(Edge(i, n.attrs["model"], "was_derived_from"))
    for i, run in scored_by(store, [i for i, n in nodes.items() if n.kind == "prediction"]).items():
        if run in nodes:
            edges.append(Edge(i, run, "was_generated_by", "predictions"))
    return edges


def bfs_distances(root_ids: Iterable[str], edges: Iterable[Edge], *, upstream: bool) -> dict[str, int]:
    """Hops from the nearest root, walking ``edges`` in the walk's direction."""
    adj: dict[str, list[str]] = {}
    get = adj.get
    for e in edges:
        a, b = (e.src, e.dst) if upstream else (e.dst, e.src)
        near = get(a)
        if near is None:
            adj[a] = [b]
        else:
            near.append(b)
    dist = {r: 0 for r in root_ids}
    queue = deque(dist)
    while queue:
        u = queue.popleft()
        for v in adj.get(u, ()):
            if v not in dist:
                dist[v] = dist[u] + 1
                queue.append(v)
    return dist


def fetch_nodes(store: Store, ids: Iterable[str], root: str) -> dict[str, Node]:
    """``{id: Node}`` for those of ``ids`` that exist. Raises NodeNotFoundError when ``root`` is not among them."""
    nodes = store.get_nodes(list(ids))
    if root not in nodes:
        raise NodeNotFoundError(root)
    return nodes


def as_subgraph(nodes: Mapping[str, Node], edges: list[Edge], root: str, *, direction: str,
                dist: Mapping[str, int] | None = None) -> Subgraph:
    """Nodes nearest the root first (then by kind, name and id); every graph node
    carries its ``distance`` too. Edges in the order of their near end's distance,
    then by source, target, relation and role."""
    upstream = direction == "upstream"
    d = dict(dist) if dist is not None else bfs_distances([root], edges, upstream=upstream)
    # (the keys written out in the lambdas: a helper function per item was a tenth
    # of the sorting's cost, issue 16)
    far, hops, rank = 1 << 30, d.get, KIND_RANK.get
    ordered = sorted(nodes.values(), key=lambda n: (hops(n.id, far), rank(n.kind, 99), n.name or "", n.id))
    if upstream:
        edges.sort(key=lambda e: (hops(e.src, far), e.src, e.dst, e.rel, e.role or ""))
    else:
        edges.sort(key=lambda e: (hops(e.dst, far), e.src, e.dst, e.rel, e.role or ""))
    return build_subgraph(ordered, edges, root, direction=direction, distances=d)


def resolve_root(store: Store, ref: Any) -> str:
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
