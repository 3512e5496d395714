"""Which value of a metric is the run's (lineage/store/latest.py): MLflow 3's rule, the
greatest (step, timestamp, value) with NaN as 0 and the first logged on a tie, read
the same way by every reader. The expected values come from `_mlflow_rule`, the rule
as MLflow's SqlAlchemyStore._update_latest_metrics_if_necessary applies it; the same
sequences against MLflow itself: tests/integration/test_mlflow_latest_metric.py."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lineage
from lineage import fluent, mlflow_filter
from lineage.entities import experiment_id_of, from_ms, run_view
from lineage.query import dump
from lineage.store import latest

BACKENDS = ("sqlite", "postgres")  # (the readers are SQL: both dialects)
T = 1_700_000_000_000  # ms

Point = tuple[float, int, int]  # (value, timestamp in ms, step), in the order logged


def _mlflow_rule(points: Sequence[Point]) -> float:
    """MLflow's kept value: a logged value replaces the kept one only when its
    ``(step, timestamp, value)`` is strictly greater, a NaN compared as 0."""
    kept: tuple[tuple[int, int, float], float] | None = None
    for value, ts, step in points:
        key = (step, ts, 0.0 if math.isnan(value) else value)
        if kept is None or key > kept[0]:
            kept = (key, value)
    assert kept is not None
    return kept[1]


def _same(a: Any, b: float) -> bool:
    return (isinstance(a, float) and math.isnan(a) and math.isnan(b)) or a == b


def _log(lg: lineage.Lineage, points: Sequence[Point]) -> str:
    """A run of experiment ``latest`` that logged ``points`` as MLflowClient.log_metric
    does (its ``timestamp=`` in ms); returns its node id."""
    run = lg.start_run(experiment="latest")
    for value, ts, step in points:
        run.log_metric("m", value, step, timestamp=from_ms(ts))
    return run.id


def _search(lg: lineage.Lineage, filter_string: str = "", order_by: Sequence[str] | None = None) -> list[str]:
    """MLflow's search_runs over experiment ``latest``, as the client runs it: node ids."""
    views = fluent.search_runs_on(lg, [experiment_id_of("latest")], filter_string, None, order_by, "list", False,
                                  None, current=None, module=mlflow_filter)
    return [f"run:{v.info.run_id}" for v in views]


def _readers_agree(lg: lineage.Lineage, run_id: str, expected: float) -> None:
    """Every reader of a run's metric gives ``expected``."""
    node = lg.get(run_id)
    assert _same(run_view(lg, node).data.metrics["m"], expected)  # client/fluent get_run: with_run_state
    dumped = dump.run_states(lg.store)[run_id]["metrics"]["m"]
    assert _same(math.nan if dumped is None else dumped, expected)
    traced = {n.id: n for n in lg.trace(run_id).nodes(kind="run")}[run_id].attrs["metrics"]["m"]
    assert _same(math.nan if traced is None else traced, expected)
    # lg.runs: the driving index probe, the per-run probe (behind another driver) and
    # the probe of every run (under an or), with = and != (a NaN differs from every number)
    tests = [(f"metrics.m != {expected + 1.0!r}", True)] if math.isfinite(expected) else []
    if math.isfinite(expected):
        tests += [(f"metrics.m = {expected!r}", True), (f"metrics.m != {expected!r}", False)]
    elif math.isnan(expected):
        tests += [("metrics.m != 0.5", True), ("metrics.m = 0.5", False), ("metrics.m >= -1e300", False)]
    for where, hit in tests:
        for query in (where, f"experiment = 'latest' and {where}", f"name = 'none' or {where}"):
            assert (run_id in {n.id for n in lg.runs(where=query)}) == hit, (query, expected)
        assert (run_id in _search(lg, where)) == hit, (where, expected)  # MLflow's search_runs


CASES: list[tuple[str, list[Point]]] = [
    ("the highest step wins though logged first", [(1.0, T, 5), (2.0, T + 10, 3)]),
    ("in a step, the later time wins though logged first", [(1.0, T + 10, 2), (2.0, T, 2)]),
    ("at one time, the larger value wins", [(1.0, T, 2), (0.5, T, 2)]),
    ("at one time, the larger value wins (logged last)", [(0.5, T, 2), (1.0, T, 2)]),
    ("NaN counts as 0: above -1", [(-1.0, T, 2), (math.nan, T, 2)]),
    ("NaN counts as 0: below 1", [(1.0, T, 2), (math.nan, T, 2)]),
    ("NaN and 0 tie: the first logged stays", [(math.nan, T, 2), (0.0, T, 2)]),
    ("0 and NaN tie: the first logged stays", [(0.0, T, 2), (math.nan, T, 2)]),
    ("the same step twice", [(1.0, T, 0), (2.0, T, 0), (1.0, T, 0)]),
    ("a time with no milliseconds", [(3.0, T - 1, 1), (2.0, T, 1)]),
    ("negative steps", [(3.0, T, -1), (2.0, T, 0)]),
    ("infinities", [(1.0, T, 1), (math.inf, T, 1), (-math.inf, T + 1, 0)]),
]


def test_each_reader_takes_the_value_mlflow_keeps(lg: lineage.Lineage) -> None:
    for label, points in CASES:
        expected = _mlflow_rule(points)
        run_id = _log(lg, points)
        try:
            _readers_agree(lg, run_id, expected)
        except AssertionError as e:
            raise AssertionError(f"{label}: {points}") from e


def test_order_by_takes_the_same_value(lg: lineage.Lineage) -> None:
    # run a: 5.0 was logged last, but its time is earlier: 1.0 is its value; run b: 3.0
    a = _log(lg, [(1.0, T + 10, 2), (5.0, T, 2)])
    b = _log(lg, [(3.0, T, 0)])
    assert [n.id for n in lg.runs(where="experiment = 'latest'", order_by="-metrics.m")] == [b, a]
    assert _search(lg, order_by=["metrics.m DESC"]) == [b, a]


def test_rank_is_the_sql_order() -> None:
    # the Python twin sorts a time without a fraction as the SQL text does
    assert latest.at_key("2023-11-14T22:13:20Z") < latest.at_key("2023-11-14T22:13:20.001000Z")
    assert latest.rank(1, "2023-11-14T22:13:20Z", None, 7) == (1, "2023-11-14T22:13:20.000000", 0.0, -7)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from([math.nan, -1.0, 0.0, 0.5, 1.0, math.inf]),
                          st.integers(T - 1, T + 1), st.integers(0, 2)), min_size=1, max_size=6))
def test_any_sequence_gives_mlflows_value(lg: lineage.Lineage, points: list[Point]) -> None:
    run_id = _log(lg, points)
    expected = _mlflow_rule(points)
    node = lg.get(run_id)
    assert _same(run_view(lg, node).data.metrics["m"], expected)
    dumped = dump.run_states(lg.store)[run_id]["metrics"]["m"]
    assert _same(math.nan if dumped is None else dumped, expected)
    if math.isfinite(expected):
        assert run_id in {n.id for n in lg.runs(where=f"metrics.m = {expected!r} and experiment = 'latest'")}
