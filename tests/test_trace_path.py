"""The one-statement upstream walk behind `trace` (issue 16) answers exactly what the
general walk answers, and a Subgraph answers the same before and after its networkx
graph is built."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from test_query import ACTOR, _load, graphs

from lineage import query
from lineage.query import closure
from lineage.store import Store

BACKENDS = ("sqlite", "postgres")  # conftest runs the store fixtures on both


def _general(store: Store, root: str) -> tuple[dict[str, Any], list[Any]]:
    ids = closure.reachable_ids(store, [root], upstream=True)
    nodes = closure.fetch_nodes(store, ids, root)
    return nodes, closure.edges_among(store, nodes, upstream=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_the_one_statement_walk_equals_the_general_walk(graph: Any) -> None:
    nodes, made_by, edges = graph
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "lineage.db", actor=ACTOR) as store:
        ids, _ = _load(store, nodes, made_by, edges)
        for start in ids:
            fast = closure.walk_upstream(store, start)
            nodes_g, edges_g = _general(store, start)
            if fast is None:  # a prediction mid-walk: the general path answers
                assert any(i != start and i.startswith("prediction:") for i in closure.reachable_ids(store, [start], upstream=True))
                continue
            assert fast[0] == nodes_g
            assert fast[1] == edges_g
            sub = query.trace(store, start)
            general = closure.as_subgraph(nodes_g, list(edges_g), start, direction="upstream")
            assert json.dumps(sub.to_dict()) == json.dumps(general.to_dict())
            graph_first = query.trace(store, start).graph  # built before anything else read it
            assert list(graph_first.nodes(data=True)) == list(general.graph.nodes(data=True))
            assert list(graph_first.edges(keys=True, data=True)) == list(general.graph.edges(keys=True, data=True))
            before = json.dumps(sub.to_dict(), sort_keys=False)
            listed = (sub.nodes(), sub.edges(), len(sub), [i in sub for i in ids])
            graph_ = sub.graph  # now built
            assert json.dumps(sub.to_dict(), sort_keys=False) == before
            assert (sub.nodes(), sub.edges(), len(sub), [i in sub for i in ids]) == listed
            assert all("distance" in d for _, d in graph_.nodes(data=True))


def test_a_subgraph_edited_through_its_graph_reads_the_graph() -> None:
    from lineage.model import Edge, Node

    a, b = Node("dataset:" + "a" * 64, "dataset", "a"), Node("dataset:" + "b" * 64, "dataset", "b")
    sub = query.build_subgraph([a, b], [Edge(a.id, b.id, "was_derived_from"), Edge(a.id, "dataset:missing", "used")],
                               a.id, direction="upstream")
    assert len(sub) == 2 and len(sub.edges()) == 1
    sub.graph.remove_node(b.id)
    assert [n.id for n in sub.nodes()] == [a.id] and sub.edges() == []


# ---------------------------------------------------------------------------
# runs in the one statement, attrs read when first used (issue 16)


def _pipeline(lg: Any) -> dict[str, Any]:
    """Two runs, the second informed by the first, with params, tags, metrics logged at
    steps out of order and per group, and a failed run's exit code and error."""
    from sklearn.dummy import DummyClassifier

    raw = lg.log_dataset(uri="s3://lake/raw.parquet", digest="ab" * 32, name="raw")
    with lg.start_run("prep", params={"min_rows": 10}, tags={"team": "risk"}) as prep:
        prep.log_input(raw)
        clean = prep.log_output(lg.log_dataset(uri="s3://lake/clean.parquet", digest="cd" * 32, name="clean"))
    fit = lg.start_run("fit", params={"C": 0.5, "penalty": "l2"}, tags={"team": "risk", "stage": "dev"})
    fit.log_input(clean)
    fit.set_tag("team", "growth")  # a tag set again: the latest value wins
    fit.log_metric("loss", 0.9, step=3)
    fit.log_metric("loss", 0.7, step=1)  # a lower step logged later: step 3 stays latest
    fit.log_metric("loss", 0.8, step=3)  # the same step again: the last one wins
    fit.log_metric("accuracy", 0.1 + 0.2)  # a float that 15 digits would round
    fit.log_metric("accuracy", 0.5, group="age>60")  # per group: not a run's own metric
    model = fit.log_model(DummyClassifier(strategy="constant", constant=1), "clf")
    fit.end("failed", exit_code=3, error="diverged")
    preds = lg.log_predictions(model, [[1.0], [2.0]], [1, 1], request_ids=["r1", "r2"])
    return {"raw": raw.id, "clean": clean.id, "prep": prep.id, "fit": fit.id, "model": model.id, "preds": preds}


def test_a_trace_gives_runs_the_state_get_gives_them(lg: Any) -> None:
    ids = _pipeline(lg)
    for root in (ids["preds"][0], ids["model"], ids["fit"]):
        sub = lg.trace(root)
        runs = {n.id: n for n in sub.nodes(kind="run")}
        assert set(runs) >= {ids["fit"]} and (root == ids["fit"] or ids["prep"] in runs)
        for run_id, node in runs.items():
            assert node == lg.store.get_node(run_id)  # Store.with_run_state's answer, attrs and all
        fit = runs[ids["fit"]].attrs
        assert fit["status"] == "failed" and fit["exit_code"] == 3 and fit["error"] == "diverged"
        assert fit["metrics"] == {"loss": 0.8, "accuracy": 0.1 + 0.2} and fit["tags"]["team"] == "growth"
        assert fit["params"] == {"C": "0.5", "penalty": "l2"} and "duration_s" in fit
        general = query.build_subgraph(*_general_parts(lg.store, root), root, direction="upstream")
        assert sub.to_dict() == general.to_dict()


def _general_parts(store: Store, root: str) -> tuple[list[Any], list[Any]]:
    """The general path's nodes and edges, put in order as `closure.as_subgraph` does."""
    nodes, edges = _general(store, root)
    sub = closure.as_subgraph(nodes, edges, root, direction="upstream")
    return sub.nodes(), sub.edges()


def test_a_deferred_subgraph_answers_as_a_built_one(lg: Any) -> None:
    ids = _pipeline(lg)
    root = ids["preds"][1]
    lazy = lg.trace(root)
    assert len(lazy) == len(lg.trace(root).nodes()) and ids["raw"] in lazy and "dataset:00" not in lazy
    graph = lg.trace(root).graph  # the graph first, before anything put the nodes in order
    assert [d["node"] for _, d in graph.nodes(data=True)] == lazy.nodes()
    assert [(u, v, d["rel"], d["role"]) for u, v, d in graph.edges(data=True)] == [
        (e.src, e.dst, e.rel, e.role) for e in lazy.edges()]
    # prediction -> model -> fit -> prep (fit was informed by it) -> raw
    assert {n: d["distance"] for n, d in graph.nodes(data=True)}[ids["raw"]] == 4


@pytest.mark.sqlite_only  # reads SQLite's query plans
def test_the_trace_statement_probes_each_run_by_its_id(lg: Any) -> None:
    """The walk stays the outer loop of every branch: a run's params, tags, metrics and
    states are found by ``run = ?``, never by reading a range of every run's rows."""
    ids = _pipeline(lg)
    for sql, args in ((closure._UP_FROM_PREDICTION, (ids["preds"][0],) * 6), (closure._UP_FROM_NODE, (ids["model"],))):
        plan = [row[-1] for row in lg.store.conn.execute("EXPLAIN QUERY PLAN " + sql, args)]
        for table in ("params", "tags", "metrics", "run_states"):
            assert f"SEARCH x USING INDEX {table}_run (run=?)" in plan, (table, plan)
        assert not any(p.startswith("SCAN") and not p.startswith(("SCAN w", "SCAN CONSTANT")) for p in plan), plan


def test_a_node_read_from_a_row_is_a_node_like_any_other() -> None:
    import copy
    import dataclasses
    import pickle
    import threading

    from lineage.model import Node

    text = '{"b":[1,2.5,null],"a":{"x":"é"}}'
    eager = Node("dataset:" + "a" * 64, "dataset", "d", json.loads(text), "2026-01-01T00:00:00.000000Z")

    def lazy() -> Node:
        return Node.from_row(eager.id, "dataset", "d", text, eager.created_at)

    assert lazy() == eager and eager == lazy() and repr(lazy()) == repr(eager)
    assert lazy().to_dict() == eager.to_dict() and json.dumps(lazy().to_dict()) == json.dumps(eager.to_dict())
    # text the store would not write (keys out of order, spaces, a lone surrogate's
    # escape): to_dict still gives exactly what it gives for the parsed attrs
    for odd in ('{"b": 1, "a": {"d": 2, "c": [1.0]}}', '{"s":"\\ud800x"}', "{}"):
        shown = Node.from_row(eager.id, "dataset", "d", odd, None).to_dict()
        assert json.dumps(shown) == json.dumps(Node(eager.id, "dataset", "d", json.loads(odd)).to_dict())
    for made in (pickle.loads(pickle.dumps(lazy())), copy.copy(lazy()), copy.deepcopy(lazy())):
        assert made == eager and "_attrs_json" not in vars(made)
    assert dataclasses.asdict(lazy()) == dataclasses.asdict(eager)
    assert dataclasses.replace(lazy(), name="e") == dataclasses.replace(eager, name="e")
    assert dataclasses.replace(lazy(), attrs={}).attrs == {}
    node = lazy()
    node.attrs["added"] = 1  # type: ignore[index]  # the attrs are the node's own dict, as an eager node's are
    assert node.attrs["added"] == 1 and not hasattr(node, "other")
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.name = "x"  # type: ignore[misc]
    calls: list[int] = []

    def finish(attrs: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        return {**attrs, "more": True}

    shared = Node.from_row(eager.id, "run", "r", text, None, finish)
    seen: list[Any] = []
    threads = [threading.Thread(target=lambda: seen.append(shared.attrs)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(s is seen[0] for s in seen) and seen[0]["more"] is True and 1 <= len(calls) <= 8
