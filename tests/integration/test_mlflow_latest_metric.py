"""The value of a run's metric, lineage against MLflow 3 itself: the same calls on
MLflow's own SQLite store, on lineage's MlflowClient, and through the ``lineage://``
plugin (read back from lineage's mirror) give the same ``run.data.metrics``, the same
``search_runs`` matches and the same ``order_by`` (lineage/store/latest.py).

Run by `make integration` (.venv-integration has MLflow)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import require_module

import lineage

T = 1_700_000_000_000  # ms

# (label, [(value, timestamp ms, step)] in the order logged)
SEQUENCES: list[tuple[str, list[tuple[float, int, int]]]] = [
    ("max-step-first", [(1.0, T, 5), (2.0, T + 10, 3)]),
    ("later-time-first", [(1.0, T + 10, 2), (2.0, T, 2)]),
    ("larger-value-first", [(1.0, T, 2), (0.5, T, 2)]),
    ("larger-value-last", [(0.5, T, 2), (1.0, T, 2)]),
    ("nan-over-minus-one", [(-1.0, T, 2), (math.nan, T, 2)]),
    ("one-over-nan", [(math.nan, T, 2), (1.0, T, 2)]),
    ("nan-then-zero", [(math.nan, T, 2), (0.0, T, 2)]),
    ("zero-then-nan", [(0.0, T, 2), (math.nan, T, 2)]),
    ("same-step-twice", [(1.0, T, 0), (2.0, T, 0), (1.0, T, 0)]),
    ("whole-second", [(3.0, T - 1, 1), (2.0, T, 1)]),
    ("negative-step", [(3.0, T, -1), (2.0, T, 0)]),
    ("plain", [(0.25, T, 0)]),
]
FILTERS = ["metrics.m > 0", "metrics.m != 1", "metrics.m = 0", "metrics.m < 100", "metrics.m >= -1", "metrics.m = 1"]
ORDERS = [["metrics.m ASC"], ["metrics.m DESC"]]


@pytest.fixture(autouse=True)
def _mlflow() -> Any:
    return require_module("mlflow")


def _same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def _play(client: Any, experiment_id: str) -> dict[str, str]:
    """The sequences on ``client``, a run each (named by its label): ``{label: run id}``."""
    ids = {}
    for label, points in SEQUENCES:
        run_id = client.create_run(experiment_id, run_name=label).info.run_id
        for value, ts, step in points:
            client.log_metric(run_id, "m", value, timestamp=ts, step=step)
        client.set_terminated(run_id)
        ids[label] = run_id
    client.create_run(experiment_id, run_name="no-metric")  # sorts after every value, NaN included
    return ids


def _answers(client: Any, experiment_id: str, ids: dict[str, str]) -> dict[str, Any]:
    label = {v: k for k, v in ids.items()}

    def names(runs: Any) -> list[str]:
        return [label.get(r.info.run_id, "no-metric") for r in runs]

    values = {k: client.get_run(v).data.metrics.get("m") for k, v in ids.items()}
    found = {f: sorted(names(client.search_runs([experiment_id], f))) for f in FILTERS}
    # (runs of equal value, NaN included, come in start-time order, which each store sets
    # its own way: `_agree` compares the values in order, not the names)
    ordered = {o[0]: names(client.search_runs([experiment_id], "", order_by=o)) for o in ORDERS}
    return {"values": values, "found": found, "ordered": ordered}


def _agree(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert mine["values"].keys() == theirs["values"].keys()
    for k in theirs["values"]:
        assert _same(mine["values"][k], theirs["values"][k]), (k, mine["values"][k], theirs["values"][k])
    assert mine["found"] == theirs["found"]
    for o in theirs["ordered"]:
        # the numbers in order, then the NaNs, then the run without the metric; runs of
        # equal value are in start-time order, which the two stores set apart (two
        # sequences here end at 1.0, two at 2.0: their order flipped between CI runs)
        def key(names: list[str]) -> list[Any]:
            vals = [theirs["values"].get(n) for n in names]
            return ["NaN" if isinstance(v, float) and math.isnan(v) else "missing" if v is None else v for v in vals]
        assert key(mine["ordered"][o]) == key(theirs["ordered"][o]), o
        assert sorted(mine["ordered"][o]) == sorted(theirs["ordered"][o]), o


def _mlflow_answers(mlflow: Any, tmp_path: Path) -> dict[str, Any]:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        exp = client.create_experiment("latest", artifact_location=str(tmp_path / "mlflow-artifacts"))
        ids = _play(client, exp)
        return _answers(client, exp, ids)
    finally:
        mlflow.set_tracking_uri(None)


def test_lineages_client_keeps_the_value_mlflow_keeps(_mlflow: Any, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = _mlflow_answers(_mlflow, tmp_path / "m")
    client = lineage.MlflowClient(tracking_uri=str(tmp_path / "l" / "lineage.db"))
    exp = client.create_experiment("latest")
    mine = _answers(client, exp, _play(client, exp))
    _agree(mine, theirs)


def test_the_plugins_mirror_keeps_the_value_mlflow_keeps(_mlflow: Any, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = _mlflow_answers(_mlflow, tmp_path / "m")
        project = tmp_path / "p"
        _mlflow.set_tracking_uri(f"lineage://{project}")
        try:
            client = _mlflow.MlflowClient()
            exp = client.create_experiment("latest")
            ids = _play(client, exp)
            through_plugin = _answers(client, exp, ids)  # MLflow's own store underneath
        finally:
            _mlflow.set_tracking_uri(None)
    _agree(through_plugin, theirs)
    # lineage's mirror of those runs, read with lineage's client: the same answers
    lg = lineage.open(project / ".lineage" / "lineage.db")
    mirror = lineage.MlflowClient(tracking_uri=str(lg.db_path))
    mirrored = {k: run_id for k, run_id in ((k, lg.get(f"mlflow:{v}").id.split(":", 1)[1]) for k, v in ids.items())}
    mine = _answers(mirror, mirror.get_experiment_by_name("latest").experiment_id, mirrored)
    _agree(mine, theirs)


def test_a_metric_relogged_for_a_model_is_mirrored_once_nan_too(_mlflow: Any, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # MLflow 3 logs a run's metrics again with the logged model's id; the mirror keeps
    # the history MLflow keeps (a NaN, kept as NULL, is recognised as the same value)
    sklearn = require_module("sklearn.linear_model")
    import mlflow.sklearn

    # an earlier test's set_experiment() is remembered by this process's MLflow (its
    # experiment id, in another store: "No Experiment with id=1"); a fresh script has none
    monkeypatch.setattr(_mlflow.tracking.fluent, "_active_experiment_id", None)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)

    project = tmp_path / "p"
    _mlflow.set_tracking_uri(f"lineage://{project}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with _mlflow.start_run() as run:
                _mlflow.log_metric("n", math.nan)
                _mlflow.log_metric("a", 0.5)
                mlflow.sklearn.log_model(sklearn.LinearRegression().fit([[0], [1]], [0, 1]), name="m")
        theirs = {k: len(_mlflow.MlflowClient().get_metric_history(run.info.run_id, k)) for k in ("n", "a")}
    finally:
        _mlflow.set_tracking_uri(None)
    lg = lineage.open(project / ".lineage" / "lineage.db")
    node = lg.get(f"mlflow:{run.info.run_id}")
    assert {k: len(lg.metric_history(node, k)) for k in ("n", "a")} == theirs == {"n": 1, "a": 1}
