"""The query layer: traversals against networkx on random graphs (cycles included),
and which_data, diff, blame, runs, insights and status on small stores whose answers
are known."""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lineage
from lineage import query
from lineage.errors import FilterSyntaxError, InvalidInputError, NodeNotFoundError
from lineage.model import Edge, Node, make_id, new_uuid7_hex, now_iso, short_id
from lineage.query.importance import average_ranks
from lineage.query.search import where_terms
from lineage.store import Store

BACKENDS = ("sqlite", "postgres")  # conftest runs the store fixtures on both

ACTOR = "agent:" + "0" * 64


# ---------------------------------------------------------------------------
# building stores by hand


def hexof(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Builder:
    """Writes nodes, edges, runs and predictions straight through the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def node(self, kind: str, name: str | None = None, attrs: dict[str, Any] | None = None, *, key: str | None = None,
             edges: list[tuple[str, str, str | None]] = ()) -> str:
        node_id = make_id(kind, hexof(key or f"{kind}:{name}"))
        es = [Edge(node_id, dst, rel, role) for dst, rel, role in edges]
        self.store.add_node(Node(node_id, kind, name, attrs or {}), edges=es)
        return node_id

    def run(self, name: str, *, params: dict[str, Any] | None = None, metrics: dict[str, float] | None = None,
            tags: dict[str, str] | None = None, status: str = "finished", experiment: str = "default",
            started: str | None = None, uses: list[tuple[str, str | None]] = (), informed_by: list[str] = ()) -> str:
        run_id = make_id("run", new_uuid7_hex())
        at = started or now_iso()
        extra: dict[str, list[Any]] = {"run_states": [(run_id, "running", at, None, None, None)]}
        if status != "running":
            extra["run_states"].append((run_id, status, at, 0 if status == "finished" else 1, None, None))
        extra["params"] = [(run_id, k, str(v)) for k, v in (params or {}).items()]
        extra["tags"] = [(run_id, k, v) for k, v in (tags or {}).items()]
        extra["metrics"] = [(run_id, k, v, 0, at, None, None) for k, v in (metrics or {}).items()]
        edges = [Edge(run_id, d, "used", role) for d, role in uses] + [Edge(run_id, r, "was_informed_by") for r in informed_by]
        node = Node(run_id, "run", name, {"experiment": experiment, "started_at": at}, at)
        self.store.add_node(node, edges=edges, extra=extra)
        return run_id

    def link(self, src: str, dst: str, rel: str, role: str | None = None) -> None:
        self.store.add_edges([Edge(src, dst, rel, role)])

    def predictions(self, model: str, n: int) -> list[str]:
        ids = ["prediction:" + new_uuid7_hex() for _ in range(n)]
        rows = [(i, model, hexof(i), json.dumps(k % 2), None, f"req-{i[-6:]}", now_iso()) for k, i in enumerate(ids)]
        self.store.write_bulk("predictions", {"model": model, "count": n}, "predictions", rows)
        return ids


@pytest.fixture
def b(store: Store) -> Builder:
    return Builder(store)


@pytest.fixture
def ml(b: Builder) -> dict[str, Any]:
    """A small ML project with known answers:

        raw ──(prep)──> clean ──(fit A: C=1)──> model A ──> 3 predictions
        raw@2 (a newer version of raw: revision history, not provenance)
        holdout ── evaluation of fit A and fit B
        other ──(fit B: C=0.1)──> model B ──> 2 predictions   (B also uses clean)
    """
    ids: dict[str, Any] = {}
    ids["agent"] = b.node("agent", "alice", {"user": "alice"})
    ids["code1"] = b.node("code", "train.py", {"commit": "a" * 40, "repo": "r", "entry_point": "train.py"})
    ids["code2"] = b.node("code", "train.py", {"commit": "b" * 40, "repo": "r", "entry_point": "train.py"}, key="code2")
    ids["env1"] = b.node("environment", "python 3.11", {"python": "3.11.7", "packages": {"numpy": "1.26", "scikit-learn": "1.4"}})
    ids["env2"] = b.node("environment", "python 3.11", {"python": "3.11.7", "packages": {"numpy": "2.0", "pandas": "2.2"}},
                         key="env2")
    ids["raw"] = b.node("dataset", "raw", {"rows": 100})
    ids["raw2"] = b.node("dataset", "raw", {"rows": 120}, key="raw v2", edges=[(ids["raw"], "was_revision_of", None)])
    ids["holdout"] = b.node("dataset", "holdout")
    ids["other"] = b.node("dataset", "other")
    ids["prep"] = b.run("prep", uses=[(ids["raw"], "training"), (ids["code1"], "code"), (ids["env1"], "environment")])
    ids["clean"] = b.node("dataset", "clean", edges=[(ids["prep"], "was_generated_by", None)])
    ids["fitA"] = b.run("fit", params={"C": 1.0, "penalty": "l2"}, metrics={"accuracy": 0.9},
                        uses=[(ids["clean"], "training"), (ids["holdout"], "evaluation"), (ids["code1"], "code"),
                              (ids["env1"], "environment")], informed_by=[ids["prep"]])
    ids["fitB"] = b.run("fit", params={"C": 0.1, "penalty": "l2"}, metrics={"accuracy": 0.8},
                        uses=[(ids["clean"], "training"), (ids["other"], "training"), (ids["holdout"], "evaluation"),
                              (ids["code2"], "code"), (ids["env2"], "environment")], informed_by=[ids["prep"]])
    for r in (ids["prep"], ids["fitA"], ids["fitB"]):
        b.link(r, ids["agent"], "was_associated_with")
    ids["A"] = b.node("model", "clf", {"class": "sklearn.LogisticRegression", "params": {"C": 1.0}}, key="A",
                      edges=[(ids["fitA"], "was_generated_by", None), (ids["agent"], "was_attributed_to", None)])
    ids["B"] = b.node("model", "clf", {"class": "sklearn.LogisticRegression", "params": {"C": 0.1}}, key="B",
                      edges=[(ids["fitB"], "was_generated_by", None), (ids["agent"], "was_attributed_to", None)])
    ids["predsA"] = b.predictions(ids["A"], 3)
    ids["predsB"] = b.predictions(ids["B"], 2)
    return ids


def node_ids(sub: query.Subgraph) -> set[str]:
    return {n.id for n in sub.nodes() if n.kind != "group"}


# ---------------------------------------------------------------------------
# the property: recursive SQL walks equal networkx reachability


@st.composite
def graphs(draw: Any) -> tuple[list[tuple[str, str]], dict[str, str], list[tuple[int, int, str]]]:
    """Random directed graphs, cycles and self-loops allowed, over datasets, models and
    predictions (each prediction made by one of the models). Edges carry a relation;
    some are `was_revision_of`, which walks must not follow."""
    n = draw(st.integers(2, 12))
    kinds = draw(st.lists(st.sampled_from(["dataset", "dataset", "model", "prediction"]), min_size=n, max_size=n))
    if "model" not in kinds:
        kinds = ["model" if k == "prediction" else k for k in kinds]
    nodes = [(k, f"{k}:{i}") for i, k in enumerate(kinds)]
    models = [label for k, label in nodes if k == "model"]
    made_by = {label: draw(st.sampled_from(models)) for k, label in nodes if k == "prediction"}
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
    # a relation that fits its ends' kinds (Store.write refuses others): derivation
    # between any of these entities, a revision between two datasets
    edges = [(s, d, draw(st.sampled_from(["was_derived_from", "was_revision_of"] if kinds[s] == kinds[d] == "dataset"
                                         else ["was_derived_from"]))) for s, d in pairs]
    return nodes, made_by, edges


def _load(store: Store, nodes: list[tuple[str, str]], made_by: dict[str, str],
          edges: list[tuple[int, int, str]]) -> tuple[list[str], nx.DiGraph]:
    ids = []
    for kind, label in nodes:
        ids.append(("prediction:" + hexof(label)[:32]) if kind == "prediction" else make_id(kind, hexof(label)))
    by_label = {label: ids[i] for i, (_, label) in enumerate(nodes)}
    g = nx.DiGraph()
    g.add_nodes_from(ids)
    for (kind, label), node_id in zip(nodes, ids):
        if kind != "prediction":
            store.add_node(Node(node_id, kind, label, {}))
    preds = [(by_label[p], by_label[m], None, "0", None, None, now_iso()) for p, m in made_by.items()]
    if preds:
        store.write_bulk("predictions", {"count": len(preds)}, "predictions", preds)
    for p, m in made_by.items():
        g.add_edge(by_label[p], by_label[m])  # the implicit prediction -> model edge
    store.add_edges([Edge(ids[s], ids[d], rel) for s, d, rel in edges])
    for s, d, rel in edges:
        if rel != "was_revision_of":
            g.add_edge(ids[s], ids[d])
    return ids, g


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), st.integers(0, 4))
def test_trace_and_impact_equal_networkx_reachability(graph: Any, depth: int) -> None:
    nodes, made_by, edges = graph
    with tempfile.TemporaryDirectory() as tmp:
        with Store(Path(tmp) / "lineage.db", actor=ACTOR) as store:
            ids, g = _load(store, nodes, made_by, edges)
            for start in ids:
                up = {start} | nx.descendants(g, start)  # edges point at what a node depends on
                down = {start} | nx.ancestors(g, start)
                assert node_ids(query.trace(store, start)) == up
                full = query.impact(store, start, include_predictions=True)
                assert node_ids(full) == down
                folded = query.impact(store, start)
                listed = node_ids(folded)
                assert listed <= down
                assert all(i.startswith("prediction:") for i in down - listed)
                assert folded.counts.get("prediction", 0) == sum(1 for i in down if i.startswith("prediction:"))
                # depth-limited walks: everything within `depth` hops
                near_up = nx.single_source_shortest_path_length(g, start, cutoff=depth)
                assert node_ids(query.trace(store, start, depth=depth)) == set(near_up)
                near_down = nx.single_source_shortest_path_length(g.reverse(), start, cutoff=depth)
                assert node_ids(query.impact(store, start, include_predictions=True, depth=depth)) == set(near_down)


def test_a_cycle_in_bad_data_does_not_hang(b: Builder, store: Store) -> None:
    x = b.node("dataset", "x")
    y = b.node("dataset", "y", edges=[(x, "was_derived_from", None)])
    b.link(x, y, "was_derived_from")  # x <-> y
    b.link(x, x, "was_derived_from")  # and a self-loop
    assert node_ids(query.trace(store, x)) == {x, y}
    assert node_ids(query.impact(store, y)) == {x, y}
    assert [n.id for n in query.path(store, x, y)] == [x, y]


# ---------------------------------------------------------------------------
# trace and impact on a known project


def test_trace_of_a_prediction_reaches_every_root(store: Store, ml: dict[str, Any]) -> None:
    sub = query.trace(store, ml["predsA"][0])
    assert sub.root == ml["predsA"][0] and sub.direction == "upstream"
    assert node_ids(sub) == {ml["predsA"][0], ml["A"], ml["fitA"], ml["clean"], ml["holdout"], ml["prep"], ml["raw"],
                             ml["code1"], ml["env1"], ml["agent"]}
    assert ml["raw2"] not in sub  # a newer version is not where this came from
    edges = {(e.src, e.dst, e.rel, e.role) for e in sub.edges()}
    assert (ml["predsA"][0], ml["A"], "was_derived_from", None) in edges
    assert (ml["fitA"], ml["holdout"], "used", "evaluation") in edges
    assert sub.nodes()[0].id == sub.root  # nearest first
    assert sub.graph.nodes[ml["raw"]]["distance"] == 4  # prediction, model, fit, prep, raw
    assert sub.counts == {"prediction": 1, "model": 1, "run": 2, "dataset": 3, "code": 1, "environment": 1, "agent": 1}


def test_trace_depth_and_kinds(store: Store, ml: dict[str, Any]) -> None:
    assert node_ids(query.trace(store, ml["A"], depth=1)) == {ml["A"], ml["fitA"], ml["agent"]}
    assert node_ids(query.trace(store, ml["A"], depth=0)) == {ml["A"]}
    only_data = query.trace(store, ml["A"], kinds=["dataset"])
    assert node_ids(only_data) == {ml["A"], ml["clean"], ml["holdout"], ml["raw"]}
    indirect = {(e.src, e.dst, e.rel) for e in only_data.edges() if e.role == "indirect"}
    assert (ml["A"], ml["clean"], "was_derived_from") in indirect  # model <- run <- clean, contracted
    with pytest.raises(InvalidInputError, match="unknown kind"):
        query.trace(store, ml["A"], kinds=["datasets"])
    with pytest.raises(InvalidInputError, match="depth"):
        query.trace(store, ml["A"], depth=-1)


def test_impact_asks_for_every_models_predictions_in_a_few_statements(store: Store, b: Builder) -> None:
    """The folded groups' counts and date ranges come from one statement per chunk of
    models, not one or two per model (on PostgreSQL each is a round trip)."""
    data = b.node("dataset", "hub", {"checksum": "1"})
    models = []
    for i in range(12):
        fit = b.run(f"fit{i}", uses=[(data, "training")])
        model = b.node("model", f"m{i}", key=f"m{i}", edges=[(fit, "was_generated_by", None)])
        b.predictions(model, 2 + i % 3)
        models.append(model)
    seen: list[str] = []
    conn = store.conn
    if hasattr(conn, "set_trace_callback"):
        conn.set_trace_callback(seen.append)
    else:  # PostgreSQL's connection: count the statements it is handed
        execute = conn.execute

        def counted(sql: str, *args: Any) -> Any:
            seen.append(sql)
            return execute(sql, *args)

        conn.execute = counted  # type: ignore[method-assign]
    try:
        sub = query.impact(store, data)
    finally:
        if hasattr(conn, "set_trace_callback"):
            conn.set_trace_callback(None)
        else:
            del conn.execute
    groups = {g.attrs["model"]: g for g in sub.nodes("group")}
    assert set(groups) == set(models) and all(g.attrs["first"] and g.attrs["last"] for g in groups.values())
    on_predictions = [s for s in seen if "FROM predictions" in s]
    assert 1 <= len(on_predictions) <= 3, on_predictions


def test_impact_counts_predictions_and_lists_them_only_when_asked(store: Store, ml: dict[str, Any]) -> None:
    sub = query.impact(store, ml["raw"])
    assert node_ids(sub) == {ml["raw"], ml["prep"], ml["clean"], ml["fitA"], ml["fitB"], ml["A"], ml["B"]}
    groups = sub.nodes("group")
    assert sorted(g.attrs["count"] for g in groups) == [2, 3]
    assert {g.id for g in groups} == {"group:prediction:2", "group:prediction:3"}
    # each folded group carries its date range: first and last of that model's predictions
    for g in groups:
        times = sorted(store.get_node(p).created_at for p in ml["predsA" if g.attrs["model"] == ml["A"] else "predsB"])
        assert (g.attrs["first"], g.attrs["last"]) == (times[0], times[-1])
    assert sub.counts["prediction"] == 5 and sub.counts["model"] == 2 and sub.counts["run"] == 3
    doc = sub.to_dict()
    group_docs = [n for n in doc["nodes"] if n["kind"] == "group"]
    assert {k: group_docs[0][k] for k in ("id", "kind", "of", "count")} == \
        {"id": "group:prediction:3", "kind": "group", "of": "prediction", "count": 3} or \
        {k: group_docs[1][k] for k in ("id", "kind", "of", "count")} == \
        {"id": "group:prediction:3", "kind": "group", "of": "prediction", "count": 3}
    assert {(e["src"], e["dst"]) for e in doc["edges"] if e["src"].startswith("group:")} == \
        {("group:prediction:3", ml["A"]), ("group:prediction:2", ml["B"])}
    full = query.impact(store, ml["raw"], include_predictions=True)
    assert node_ids(full) == node_ids(sub) | set(ml["predsA"]) | set(ml["predsB"])
    assert not full.nodes("group") and full.counts["prediction"] == 5
    assert ml["raw2"] not in sub and ml["agent"] not in sub


def test_impact_lists_at_most_max_predictions_a_model_and_counts_the_rest(store: Store, ml: dict[str, Any]) -> None:
    """A view that shows 100 nodes asked for every one of 300,000 predictions (11 s):
    ``max_predictions`` lists each model's first N, the rest stay counted in its group."""
    full = query.impact(store, ml["raw"], include_predictions=True)
    some = query.impact(store, ml["raw"], include_predictions=True, max_predictions=2)
    listed = {n.id for n in some.nodes("prediction")}
    assert listed == set(ml["predsA"][:2]) | set(ml["predsB"][:2])  # each model's first, in order written
    (group,) = some.nodes("group")
    assert group.attrs["model"] == ml["A"] and group.attrs["count"] == len(ml["predsA"]) - 2 == 1
    assert some.counts == full.counts
    assert node_ids(query.impact(store, ml["raw"], include_predictions=True, max_predictions=10)) == node_ids(full)
    none = query.impact(store, ml["raw"], include_predictions=True, max_predictions=0)
    assert not none.nodes("prediction") and sorted(g.attrs["count"] for g in none.nodes("group")) == [2, 3]
    with pytest.raises(InvalidInputError, match="max_predictions"):
        query.impact(store, ml["raw"], include_predictions=True, max_predictions=-1)


def test_equal_prediction_counts_get_distinct_group_ids(b: Builder, store: Store) -> None:
    d = b.node("dataset", "d")
    r = b.run("fit", uses=[(d, "training")])
    m1 = b.node("model", "m1", edges=[(r, "was_generated_by", None)])
    m2 = b.node("model", "m2", edges=[(r, "was_generated_by", None)])
    b.predictions(m1, 4)
    b.predictions(m2, 4)
    groups = query.impact(store, d).nodes("group")
    assert len({g.id for g in groups}) == 2
    assert all(g.id.startswith("group:prediction:4") for g in groups)


def test_something_that_depends_on_predictions_is_downstream_too(b: Builder, store: Store, ml: dict[str, Any]) -> None:
    # a monitoring run reads model A's predictions and writes a report dataset
    monitor = b.run("monitor", uses=[(ml["predsA"][0], "input")])
    report = b.node("dataset", "drift report", edges=[(monitor, "was_generated_by", None)])
    sub = query.impact(store, ml["clean"])
    assert {monitor, report, ml["predsA"][0]} <= node_ids(sub)
    assert sub.counts["prediction"] == 5  # one listed (it bridges to the monitor), four folded
    assert report in node_ids(query.impact(store, ml["raw"], depth=None))
    assert ml["raw"] in node_ids(query.trace(store, report))


def test_unknown_references_fail_cleanly(store: Store, ml: dict[str, Any]) -> None:
    with pytest.raises(NodeNotFoundError):
        query.trace(store, "dataset:" + "f" * 64)
    with pytest.raises(NodeNotFoundError):
        query.impact(store, "no-such-name")


def test_references_resolve_like_everywhere_else(lg: lineage.Lineage) -> None:
    b = Builder(lg.store)
    v1 = b.node("dataset", "train", key="t1")
    v2 = b.node("dataset", "train", key="t2", edges=[(v1, "was_revision_of", None)])
    assert lg.trace("train").root == v2
    assert lg.trace("train@1").root == v1
    assert lg.trace("dataset:train").root == v2
    assert lg.impact(v1[:20]).root == v1  # a unique prefix
    assert lg.impact(v1.split(":")[1][:12]).root == v1  # bare hex


def test_path_and_common_ancestors(store: Store, ml: dict[str, Any]) -> None:
    hops = [n.id for n in query.path(store, ml["predsA"][0], ml["raw"])]
    assert hops[0] == ml["predsA"][0] and hops[-1] == ml["raw"] and len(hops) == 5
    assert [n.id for n in query.path(store, ml["raw"], ml["predsA"][0])] == hops[::-1]
    assert query.path(store, ml["A"], ml["B"]) == []
    common = {n.id for n in query.common_ancestors(store, [ml["A"], ml["B"]])}
    assert common == {ml["clean"], ml["holdout"], ml["prep"], ml["raw"], ml["code1"], ml["env1"], ml["agent"]}


@pytest.mark.sqlite_only  # reads SQLite's query plans
def test_walks_never_scan_whole_tables(store: Store, ml: dict[str, Any]) -> None:
    """Every statement a query runs is answered from indexes: cost follows the answer."""
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        query.trace(store, ml["predsA"][0])
        query.impact(store, ml["raw"])
        query.impact(store, ml["raw"], include_predictions=True)
        query.which_data(store, ml["A"])
        query.diff(store, ml["A"], ml["B"])
        query.blame(store, ml["predsA"], ml["predsB"])
        query.path(store, ml["predsA"][0], ml["raw"])
    finally:
        store.conn.set_trace_callback(None)
    scans = []
    for sql in statements:
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql):
            detail = row[-1]
            if detail.startswith("SCAN") and any(f"SCAN {t}" in detail for t in ("nodes", "edges", "predictions", "params",
                                                                                 "metrics", "tags", "run_states", "e ", "p ")):
                scans.append((detail, sql[:120]))
    assert scans == []


# ---------------------------------------------------------------------------
# which data


def test_which_data_roles_distances_and_order(store: Store, ml: dict[str, Any]) -> None:
    uses = query.which_data(store, ml["A"])
    assert [(u.node.name, u.role, u.distance) for u in uses] == [
        ("raw", "upstream", 3),  # model <- fit <- prep <- raw (fit was informed by prep)
        ("clean", "training", 2),
        ("holdout", "evaluation", 2),
    ]
    assert uses[0].to_dict()["role"] == "upstream" and uses[0].to_dict()["id"] == ml["raw"]
    # from a prediction: one hop further
    assert [(u.node.name, u.distance) for u in query.which_data(store, ml["predsB"][0])] == [
        ("raw", 4), ("clean", 3), ("other", 3), ("holdout", 3)]
    # from a run: what it used directly is its training and evaluation data
    assert {(u.node.name, u.role) for u in query.which_data(store, ml["fitA"])} == {
        ("raw", "upstream"), ("clean", "training"), ("holdout", "evaluation")}


def test_which_data_of_a_model_without_a_run_is_empty(b: Builder, store: Store) -> None:
    m = b.node("model", "orphan")
    assert query.which_data(store, m) == []


# ---------------------------------------------------------------------------
# diff


def test_diff_of_two_models(store: Store, ml: dict[str, Any]) -> None:
    d = query.diff(store, ml["A"], ml["B"])
    got = [(c.aspect, c.key, c.a, c.b) for c in d.changes]
    assert got == [
        ("data", "other", None, ml["other"]),
        ("code", "commit", "a" * 40, "b" * 40),
        ("params", "C", "1.0", "0.1"),
        ("params", "model.C", 1.0, 0.1),
        ("environment", "numpy", "1.26", "2.0"),
        ("environment", "pandas", None, "2.2"),
        ("environment", "scikit-learn", "1.4", None),
        ("metrics", "accuracy", 0.9, 0.8),
    ]
    doc = d.to_dict()
    assert set(doc) == {"a", "b", "changes"} and doc["a"] == ml["A"] and doc["b"] == ml["B"]
    assert doc["changes"][0] == {"aspect": "data", "key": "other", "a": None, "b": ml["other"]}
    # runs compare the same way, predictions stand for their models
    assert [c.key for c in query.diff(store, ml["fitA"], ml["fitB"]).aspect("params")] == ["C"]
    assert len(query.diff(store, ml["predsA"][0], ml["predsB"][0])) == len(d)
    assert not query.diff(store, ml["A"], ml["A"])


def test_diff_sees_a_new_version_of_the_same_dataset(b: Builder, store: Store) -> None:
    v1 = b.node("dataset", "train", key="v1")
    v2 = b.node("dataset", "train", key="v2", edges=[(v1, "was_revision_of", None)])
    r1 = b.run("fit", uses=[(v1, "training")])
    r2 = b.run("fit", uses=[(v2, "training")])
    assert [(c.aspect, c.key, c.a, c.b) for c in query.diff(store, r1, r2)] == [("data", "train", v1, v2)]


def test_diff_refuses_what_is_not_a_model_or_run(store: Store, ml: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError, match="models, runs or two versions of data; .* is an agent"):
        query.diff(store, ml["agent"], ml["A"])
    with pytest.raises(InvalidInputError, match="no run produced .*, and the other side is a model"):
        query.diff(store, ml["raw"], ml["A"])


def test_diff_of_two_versions_of_data_says_what_changed_in_them(lg: lineage.Lineage, tmp_path: Path) -> None:
    """Two versions of a dataset no run produced (`lineage add`, twice) compare by
    their own records: version, rows, size, the columns added and removed, and the
    type of a kept column; a frame's types come from its dtypes."""
    pd = pytest.importorskip("pandas")
    f = tmp_path / "t.csv"
    f.write_text("a,b\n1,2\n")
    v1 = lg.log_dataset(f, name="t")
    f.write_text("a,c,d\n1,2,3\n4,5,6\n")
    v2 = lg.log_dataset(f, name="t")
    got = [(c.aspect, c.key, c.a, c.b) for c in lg.diff("t@1", "t")]
    assert got == [("data", "t", v1.id, v2.id), ("data", "rows", 1, 2), ("data", "size", 8, 18),
                   ("data", "columns removed", ["b"], None), ("data", "columns added", None, ["c", "d"])]
    assert not lg.diff("t@1", "t@1")
    f1 = lg.log_dataset(pd.DataFrame({"x": [1, 2], "y": [0.5, 1.5]}), name="frame")
    f2 = lg.log_dataset(pd.DataFrame({"y": [0.5, 1.5], "x": [1.0, 2.0]}), name="frame")
    got = [(c.key, c.a, c.b) for c in lg.diff(f1, f2)]
    assert got == [("frame", f1.id, f2.id), ("column order", ["x", "y"], ["y", "x"]), ("type of x", "int64", "float64")]


# ---------------------------------------------------------------------------
# blame


def test_blame_points_at_what_only_the_bad_predictions_share(store: Store, ml: dict[str, Any]) -> None:
    suspects = query.blame(store, ml["predsB"], ml["predsA"])
    got = {s.node.id: (s.score, s.bad, s.good) for s in suspects}
    # behind every bad prediction and no good one: B's own lineage
    assert got == {ml["other"]: (1.0, 2, 0), ml["code2"]: (1.0, 2, 0), ml["env2"]: (1.0, 2, 0),
                   ml["fitB"]: (1.0, 2, 0), ml["B"]: (1.0, 2, 0)}
    assert suspects[0].node.id == ml["other"]  # ties go to data first
    assert suspects[0].to_dict()["score"] == 1.0 and suspects[0].to_dict()["bad"] == 2


def test_blame_scores_partial_overlap(b: Builder, store: Store, ml: dict[str, Any]) -> None:
    # two bad predictions from A, one from B; one good from B
    bad = ml["predsA"][:2] + ml["predsB"][:1]
    suspects = query.blame(store, bad, ml["predsB"][1:])
    scores = {s.node.id: s.score for s in suspects}
    assert scores[ml["A"]] == pytest.approx(2 / 3)
    assert scores[ml["holdout"]] == pytest.approx(0.0, abs=1e-9) if ml["holdout"] in scores else True
    assert ml["B"] not in scores  # behind 1/3 of bad, all of good
    assert ml["clean"] not in scores  # behind everything
    assert [s.score for s in suspects] == sorted((s.score for s in suspects), reverse=True)


def test_blame_without_good_ones_and_bad_input(store: Store, ml: dict[str, Any]) -> None:
    suspects = query.blame(store, ml["predsA"][:1])
    assert {s.node.id for s in suspects} == node_ids(query.trace(store, ml["predsA"][0])) - {ml["predsA"][0]}
    with pytest.raises(InvalidInputError, match="at least one"):
        query.blame(store, [])
    with pytest.raises(InvalidInputError, match="both bad and good"):
        query.blame(store, ml["predsA"][:1], ml["predsA"][:1])


# ---------------------------------------------------------------------------
# runs: the filter language


@pytest.fixture
def sweep(b: Builder) -> dict[str, Any]:
    train = b.node("dataset", "train")
    test = b.node("dataset", "test")
    out = {"train": train, "test": test}
    out["r1"] = b.run("lr-1", params={"C": 1.0, "penalty": "l2"}, metrics={"accuracy": 0.91}, tags={"team": "risk"},
                      experiment="churn", started="2026-05-01T10:00:00.000000Z", uses=[(train, "training")])
    out["r2"] = b.run("lr-2", params={"C": 0.1, "penalty": "l1"}, metrics={"accuracy": 0.85}, tags={"team": "growth"},
                      experiment="churn", started="2026-05-02T10:00:00.000000Z", uses=[(test, "training")])
    out["r3"] = b.run("rf-1", params={"C": "auto", "n_estimators": 100}, metrics={"accuracy": 0.95}, status="failed",
                      experiment="fraud", started="2026-05-03T10:00:00.000000Z", uses=[(train, "training")])
    out["r4"] = b.run("lr-3", params={"C": 10, "penalty": "l2"}, experiment="churn",
                      started="2026-05-03T23:59:00.000000Z", status="running")
    return out


def names(found: list[Node]) -> list[str]:
    return [n.name or "" for n in found]


@pytest.mark.parametrize("where, expected", [
    ("params.C > 0.5", ["lr-3", "lr-1"]),  # numbers compare as numbers; 'auto' is not a number
    ("params.C = 1", ["lr-1"]),  # '1.0' equals 1
    ("params.C = 'auto'", ["rf-1"]),
    ("params.penalty != 'l2'", ["lr-2"]),  # a run without the param does not match !=
    ("not params.penalty = 'l2'", ["rf-1", "lr-2"]),
    ("metrics.accuracy >= 0.9", ["rf-1", "lr-1"]),
    ("metrics.accuracy >= 0.9 and status = 'finished'", ["lr-1"]),
    ("status in ('failed', 'running')", ["lr-3", "rf-1"]),
    ("status not in ('finished')", ["lr-3", "rf-1"]),
    ("tags.team = \"risk\" or experiment = 'fraud'", ["rf-1", "lr-1"]),
    ("name contains 'lr'", ["lr-3", "lr-2", "lr-1"]),
    ("experiment = 'churn' and (params.C < 1 or metrics.accuracy > 0.9)", ["lr-2", "lr-1"]),
    ("started_at >= '2026-05-02'", ["lr-3", "rf-1", "lr-2"]),
    ("started_at <= '2026-05-03' and started_at > '2026-05-01'", ["lr-3", "rf-1", "lr-2"]),  # by the day
    ("started_at = '2026-05-03'", ["lr-3", "rf-1"]),
    ("used = 'train'", ["rf-1", "lr-1"]),
    ("used != 'train' and metrics.accuracy > 0", ["lr-2"]),
    ("params.n_estimators >= 1e2", ["rf-1"]),
    ("params.\"penalty\" = 'l1'", ["lr-2"]),
    ("NOT (status = 'finished')", ["lr-3", "rf-1"]),
])
def test_runs_filter(store: Store, sweep: dict[str, Any], where: str, expected: list[str]) -> None:
    assert names(query.runs(store, where=where)) == expected


def test_runs_sort_and_limit(store: Store, sweep: dict[str, Any]) -> None:
    assert names(query.runs(store)) == ["lr-3", "rf-1", "lr-2", "lr-1"]  # newest first
    assert names(query.runs(store, order_by="-metrics.accuracy")) == ["rf-1", "lr-1", "lr-2", "lr-3"]  # missing last
    assert names(query.runs(store, order_by="params.C")) == ["lr-2", "lr-1", "lr-3", "rf-1"]  # numbers, then text
    assert names(query.runs(store, order_by="name", limit=2)) == ["lr-1", "lr-2"]
    assert names(query.runs(store, order_by="-started_at", limit=1)) == ["lr-3"]
    assert names(query.runs(store, order_by="experiment,-name")) == ["lr-3", "lr-2", "lr-1", "rf-1"]
    found = query.runs(store, where="name = 'lr-1'")[0]
    assert found.attrs["status"] == "finished" and found.attrs["params"]["C"] == "1.0"
    assert found.attrs["metrics"] == {"accuracy": 0.91}
    with pytest.raises(InvalidInputError, match="cannot sort"):
        query.runs(store, order_by="accuracy")


def test_the_latest_status_and_tag_win(b: Builder, store: Store, sweep: dict[str, Any]) -> None:
    store.write("run_crashed", {"run": sweep["r4"]}, {"run_states": [(sweep["r4"], "crashed", now_iso(), None, "gone", None)]})
    store.write("tags", {"run": sweep["r1"]}, {"tags": [(sweep["r1"], "team", "ops")]})
    assert names(query.runs(store, where="status = 'crashed'")) == ["lr-3"]
    assert names(query.runs(store, where="status = 'running'")) == []
    assert names(query.runs(store, where="tags.team = 'ops'")) == ["lr-1"]
    assert names(query.runs(store, where="tags.team = 'risk'")) == []


@pytest.mark.parametrize("where, position, words", [
    ("params.C >", 10, "expected a number"),
    ("params.C > 0.5 and", 18, "expected a field"),
    ("(status = 'finished'", 20, "expected ')'"),
    ("status = finished", 9, "quotes"),
    ("status = 'done'", 7, "unknown status"),
    ("metrics.accuracy > 'high'", 17, "metrics are numbers"),
    ("accuracy > 0.9", 0, "expected a field"),
    ("name = 'a' name = 'b'", 11, "unexpected"),
    ("name = 'unterminated", 7, "unterminated"),
    ("name ~ 'x'", 5, "unexpected"),
    ("'; DROP TABLE nodes; --", 0, "unterminated"),
    ("name = 'x'; DROP TABLE nodes; --", 10, "unexpected ';'"),
    ("name = 'x' or 1=1", 14, "expected a field"),
    ("params.C = 1 UNION SELECT * FROM nodes", 13, "unexpected"),
])
def test_filter_syntax_errors_name_the_position(store: Store, sweep: dict[str, Any], where: str, position: int,
                                                words: str) -> None:
    with pytest.raises(FilterSyntaxError, match=re.escape(words)) as info:
        query.runs(store, where=where)
    assert info.value.position == position
    assert f"position {position}" in str(info.value)


@pytest.mark.parametrize("attack", [
    "name = ''; DROP TABLE nodes; --'",
    "name = 'x\\'; DROP TABLE nodes; --'",
    "params.\"C' OR 1=1 --\" = 1",
    "tags.team = 'a'' OR ''1''=''1'",
    "name = \"'); DELETE FROM edges; --\"",
])
def test_injection_is_data_not_sql(store: Store, sweep: dict[str, Any], attack: str) -> None:
    before = {t: store.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("nodes", "edges", "params")}
    try:
        found = query.runs(store, where=attack)
    except FilterSyntaxError:
        found = []
    assert found == []  # the quote-laden text matched nothing: it was compared, not executed
    after = {t: store.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("nodes", "edges", "params")}
    assert after == before
    assert store.verify().ok


def test_the_drop_table_attempt_is_a_parse_error_and_the_store_is_intact(store: Store, sweep: dict[str, Any]) -> None:
    with pytest.raises(FilterSyntaxError):
        query.runs(store, where="'; DROP TABLE nodes; --")
    with pytest.raises(FilterSyntaxError):
        query.runs(store, where="status = 'finished'; DROP TABLE nodes; --")
    assert len(query.runs(store)) == 4 and store.verify().ok


def test_an_empty_filter_matches_everything_but_does_not_parse(store: Store, sweep: dict[str, Any]) -> None:
    assert len(query.runs(store, where="")) == len(query.runs(store, where="  ")) == 4
    with pytest.raises(FilterSyntaxError, match="empty"):
        query.parse_filter("  ")


def test_used_names_an_unknown_dataset(store: Store, sweep: dict[str, Any]) -> None:
    with pytest.raises(NodeNotFoundError):
        query.runs(store, where="used = 'nope'")


# ---------------------------------------------------------------------------
# insights


def test_insights_find_the_parameter_that_matters(b: Builder, store: Store) -> None:
    rng = np.random.default_rng(1)
    for i in range(40):
        lr = float(rng.choice([0.001, 0.01, 0.1, 1.0]))
        seed = int(rng.integers(0, 1000))
        opt = str(rng.choice(["adam", "sgd"]))
        acc = 0.5 + 0.1 * np.log10(lr) * -1 + rng.normal(0, 0.005)  # smaller lr, better
        b.run(f"r{i}", params={"lr": lr, "seed": seed, "optimizer": opt, "constant": 1}, metrics={"accuracy": acc})
    result = query.insights(store, "accuracy")
    assert result.metric == "accuracy" and result.runs == 40
    assert result.items[0].param == "lr"
    assert result.items[0].importance > 0.8
    assert result.items[0].correlation is not None and result.items[0].correlation < -0.9
    by = {i.param: i for i in result.items}
    assert "constant" not in by  # never varies
    assert by["optimizer"].correlation is None  # not a number
    assert sum(i.importance for i in result.items) == pytest.approx(1.0, abs=1e-3)
    doc = result.to_dict()
    assert set(doc) == {"metric", "runs", "items"} and set(doc["items"][0]) == {"param", "importance", "correlation"}


def test_insights_credit_nothing_when_the_metric_is_noise(b: Builder, store: Store) -> None:
    rng = np.random.default_rng(2)
    for i in range(30):
        b.run(f"r{i}", params={"a": int(rng.integers(0, 5)), "b": float(rng.random())}, metrics={"loss": float(rng.random())})
    result = query.insights(store, "loss")
    assert result.explained is not None and result.explained <= 0
    assert [i.importance for i in result.items] == [0.0, 0.0]  # a forest that memorised noise is not evidence


def test_insights_need_three_runs(b: Builder, store: Store) -> None:
    b.run("a", params={"x": 1}, metrics={"loss": 0.1})
    b.run("b", params={"x": 2}, metrics={"loss": 0.2})
    with pytest.raises(InvalidInputError, match="at least 3 runs.*found 2"):
        query.insights(store, "loss")
    with pytest.raises(InvalidInputError, match="found 0.*logged metrics: loss"):
        query.insights(store, "accuracy")


def test_ranks_match_scipy_on_ties() -> None:
    assert list(average_ranks([10, 20, 20, 5])) == [2.0, 3.5, 3.5, 1.0]


# ---------------------------------------------------------------------------
# status: staleness


@pytest.fixture
def project(lg: lineage.Lineage, tmp_path: Path) -> dict[str, Any]:
    from sklearn.dummy import DummyClassifier

    data = tmp_path / "data"
    data.mkdir()
    (data / "raw.csv").write_text("a,b\n1,2\n")
    (data / "test.csv").write_text("a,b\n3,4\n")
    (data / "images").mkdir()
    (data / "images" / "1.txt").write_text("one")
    raw = lg.log_dataset(data / "raw.csv", name="raw")
    test = lg.log_dataset(data / "test.csv", name="test")
    images = lg.log_dataset(data / "images", name="images")
    with lg.start_run("fit") as run:
        run.log_input(raw)
        run.log_input(images)
        run.log_metric("accuracy", 0.9, dataset=test)
        model = run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "clf")
    preds = lg.log_predictions(model, np.zeros((3, 1)), [0, 0, 0])
    return {"data": data, "raw": raw, "test": test, "images": images, "run": run.id, "model": model, "preds": preds}


def test_status_is_clean_when_nothing_changed(lg: lineage.Lineage, project: dict[str, Any]) -> None:
    result = lg.status()
    assert result.ok and result.changed == [] and result.affected == []
    assert result.to_dict() == {"changed": [], "affected": []}


def test_status_finds_changed_files_and_everything_downstream(lg: lineage.Lineage, project: dict[str, Any]) -> None:
    (project["data"] / "raw.csv").write_text("a,b\n1,2\n9,9\n")
    result = lg.status()
    assert [n.id for n in result.changed] == [project["raw"].id]
    assert {n.id for n in result.affected if n.kind != "group"} == {project["run"], project["model"].id}
    assert result.predictions == 3
    doc = result.to_dict()
    assert set(doc) == {"changed", "affected"}
    assert doc["changed"][0]["id"] == project["raw"].id and doc["changed"][0]["reason"] == "modified"
    group = next(a for a in doc["affected"] if a["kind"] == "group")
    assert group["of"] == "prediction" and group["count"] == 3


def test_status_missing_files_and_directories(lg: lineage.Lineage, project: dict[str, Any]) -> None:
    (project["data"] / "test.csv").unlink()
    (project["data"] / "images" / "2.txt").write_text("two")
    result = lg.status()
    assert {n.name: result.reasons[n.id] for n in result.changed} == {"test": "missing", "images": "modified"}


def test_status_compares_only_the_newest_version_of_a_path(lg: lineage.Lineage, project: dict[str, Any]) -> None:
    (project["data"] / "raw.csv").write_text("a,b\n5,5\n")
    lg.log_dataset(project["data"] / "raw.csv", name="raw")  # recorded again: a new version
    result = lg.status()
    assert not result.changed  # the old version's digest is not compared with the file now
    # but what was built from raw@1 and not rebuilt is stale: superseded
    assert result.affected and set(result.stale.values()) == {"superseded"}


def test_status_says_when_a_file_went_back_to_a_recorded_version(lg: lineage.Lineage, project: dict[str, Any]) -> None:
    """Checking out old data is a change from the newest record, but not new bytes:
    the reason names the version it matches, as `git status` cannot."""
    raw = project["data"] / "raw.csv"
    first = raw.read_text()
    raw.write_text("a,b\n5,5\n")
    lg.log_dataset(raw, name="raw")
    raw.write_text(first)
    result = lg.status()
    assert [n.id for n in result.changed] == [lg.get("raw").id]
    assert result.reasons[lg.get("raw").id] == f"modified (back to {short_id(project['raw'].id)}, recorded before)"
    raw.write_text("a,b\n6,6\n")  # bytes never recorded: plainly modified
    assert lg.status().reasons[lg.get("raw").id] == "modified"


def test_status_watches_a_second_path_recorded_with_the_same_bytes(lg: lineage.Lineage, project: dict[str, Any]) -> None:
    """Content addressing makes a copy the same node, its path an alias: the copy was
    never checked, so an edit to it went unseen."""
    copy = project["data"] / "raw_copy.csv"
    copy.write_bytes((project["data"] / "raw.csv").read_bytes())
    node = lg.log_dataset(copy)
    assert node.id == project["raw"].id
    assert lg.status().ok
    copy.write_text("a,b\n7,7\n")
    result = lg.status()
    assert [n.id for n in result.changed] == [project["raw"].id]
    assert result.reasons[project["raw"].id].startswith("modified (as ") and "raw_copy.csv" in result.reasons[project["raw"].id]
    lg.log_dataset(copy)  # recorded again: the copy's newest record is its own version now
    assert not lg.status().changed


@pytest.mark.sqlite_only  # reads SQLite's query plans
def test_a_selective_filter_drives_the_search_through_an_index(store: Store, sweep: dict[str, Any]) -> None:
    """`used = …`, a param's value or a metric range find their runs through an index
    and probe the other conditions for those runs only: no scan of every run."""
    for where in ("used = 'train' and status = 'finished'", "params.penalty = 'l2' and metrics.accuracy > 0.5",
                  "metrics.accuracy > 0.9 and name contains 'lr'"):
        terms, args = where_terms(query.parse_filter(where), store)
        sql = "SELECT n.id FROM nodes n WHERE " + " AND ".join(terms)
        plan = [row[-1] for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql, args)]
        # (a SCAN of a subquery's own rows, a metric's one value per run, is no table scan)
        made = {p.split(" ", 1)[1] for p in plan if p.startswith(("CO-ROUTINE ", "MATERIALIZE "))}
        assert not any((p.startswith("SCAN") and p[5:] not in made) or "nodes_kind" in p for p in plan), (where, plan)
        assert sorted(n.id for n in query.runs(store, where=where)) == sorted(
            r[0] for r in store.conn.execute(sql, args))
    # a top-level `or` (or a filter on unindexed fields) probes every run instead
    terms, _ = where_terms(query.parse_filter("experiment = 'churn' or status = 'failed'"), store)
    assert terms[0] == "n.kind = 'run'"



@pytest.mark.sqlite_only  # counts SQLite's virtual-machine steps
def test_a_metric_filter_costs_what_the_histories_hold(store: Store) -> None:
    """A filter on a metric logged every step costs in proportion to the histories, not
    their square: comparing each row that passed with the rest of its run's history
    took 25 s for 20 runs of 5,000 steps. Counted in SQLite's steps (deterministic):
    four times the history, at most about four times the work."""
    lg = lineage.Lineage(store)
    for r in range(3):
        with lg.start_run(f"r{r}") as run, lg.batch():
            for step in range(600):  # decreasing: nearly every row passes `< 1`
                if step < 150:
                    run.log_metric("short", (150 - step) / 100 + r, step=step)
                run.log_metric("long", (600 - step) / 400 + r, step=step)
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    cost = {}
    for key in ("short", "long"):
        steps[0] = 0
        store.conn.set_progress_handler(count, 100)
        try:
            found = [n.name for n in query.runs(store, where=f"metrics.{key} < 1")]
        finally:
            store.conn.set_progress_handler(None, 0)
        assert found == ["r0"]  # each run's last step is its value: 0.01 / 0.0025 + r
        cost[key] = steps[0]
    assert cost["long"] < 6 * cost["short"], cost


def test_predictions_a_run_scored_trace_to_it_and_are_its_impact(lg: lineage.Lineage, project: dict[str, Any]) -> None:
    """Batch scoring (`lineage predict`) records the run with the predictions: a
    prediction traces to that run and the file it read, the file's impact counts
    them. Both backends: the link is read from the ledger event's payload."""
    from lineage.tracking import log_predictions

    scored = project["data"] / "scored.csv"
    scored.write_text("a,b\n1,2\n3,4\n")
    with lg.start_run("score") as run:
        run.log_input(scored)
    ids = log_predictions(lg.store, project["model"], [[1.0], [3.0]], [0, 1], request_ids=["s-1", "s-2"], run=run.id)
    up = lg.trace("request:s-2")
    assert {n.id for n in up.nodes()} >= {run.id, lg.get(str(scored)).id, project["model"].id}
    assert any(e.src == ids[1] and e.dst == run.id and e.rel == "was_generated_by" for e in up.edges())
    assert run.id in {n.id for n in lg.trace("request:s-2", depth=1).nodes()}
    down = lg.impact(str(scored))
    assert down.counts["prediction"] == 2
    listed = lg.impact(str(scored), include_predictions=True)
    assert {n.id for n in listed.nodes(kind="prediction")} == set(ids)
    assert lg.verify().ok


def test_status_with_more_superseded_versions_than_one_compound_select_holds(lg: lineage.Lineage) -> None:
    """A walk seeded with 500 ids was one VALUES list of 500 rows, past SQLite's 500
    terms of a compound SELECT: `lineage status` failed on any store with 500
    superseded versions ("too many terms in compound SELECT")."""
    import hashlib

    with lg.batch():
        for i in range(620):
            lg.log_dataset(uri=f"s3://b/d/{i}.csv", digest=hashlib.sha256(str(i).encode()).hexdigest(), name="d")
    from sklearn.dummy import DummyClassifier

    with lg.start_run("fit") as run:
        run.log_input(lg.history("d")[0])  # built from the oldest version, never rebuilt
        model = run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "clf")
    assert lg.status().stale == {model.id: "superseded"}


def test_a_query_past_an_sqlite_limit_is_not_reported_as_damage(lg: lineage.Lineage,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A statement of ours past one of SQLite's limits (the 500-row seed list above)
    was reported as "the lineage store failed: ... (see `lineage verify`)", as if the
    store were damaged."""
    if lg.store.dialect != "sqlite":
        pytest.skip("the limit is SQLite's (500 terms of a compound SELECT); PostgreSQL has no such one")
    from click.testing import CliRunner

    import lineage.query.closure as closure
    from lineage.cli import cli

    with lg.batch():
        for i in range(620):
            lg.log_dataset(uri=f"s3://b/d/{i}.csv", digest=hashlib.sha256(str(i).encode()).hexdigest(), name="d")
    monkeypatch.setattr(closure, "_SEEDS", 1000)  # the seed lists' old size: one query past the limit
    result = CliRunner().invoke(cli, ["--db", str(lg.db_path), "status"])
    assert result.exit_code == 1
    assert "too many terms in compound SELECT" in result.stderr and "not damage to the store" in result.stderr
    assert "lineage verify" not in result.stderr and "Traceback" not in result.output
    with pytest.raises(lineage.LineageError, match="a bug in lineage"):
        lg.status()


def test_runs_sort_puts_nan_after_the_numbers_and_before_no_metric(lg: lineage.Lineage) -> None:
    """A diverged trial's NaN is a value the run has: after the numbers either way
    round, but before a run that never logged the metric (MLflow's order too)."""
    for name, value in [("a", 0.5), ("c", 0.9), ("d", float("nan")), ("e", 0.1), ("none", None)]:
        with lg.start_run(name) as run:
            if value is not None:
                run.log_metric("acc", value)
    assert names(lg.runs(order_by="-metrics.acc")) == ["c", "a", "e", "d", "none"]
    assert names(lg.runs(order_by="metrics.acc")) == ["e", "a", "c", "d", "none"]
    assert names(lg.runs(order_by="metrics.acc", limit=4)) == ["e", "a", "c", "d"]
