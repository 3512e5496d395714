"""``mlflow.evaluate`` for classic models, lineage against MLflow 3 itself: the same
model on the same data gives the same metric names and values (lineage/evaluation.py
follows MLflow's default evaluator).

Run by `make integration` (.venv-integration has MLflow)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import require_module

import lineage
from lineage import fluent


@pytest.fixture(autouse=True)
def _mlflow(monkeypatch: pytest.MonkeyPatch) -> Any:
    mlflow = require_module("mlflow")
    # an earlier test's set_experiment() is remembered by this process's MLflow (its
    # experiment id, in another store: "No Experiment with id=1"); a fresh script has none
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    for key in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(key, raising=False)
    return mlflow


def _cases() -> list[tuple[str, Any, Any, Any, str, dict[str, Any]]]:
    import numpy as np
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    Xb, yb = load_breast_cancer(return_X_y=True, as_frame=True)
    Xb = Xb.iloc[:, :5]
    Xi, yi = load_iris(return_X_y=True, as_frame=True)
    Xr, yr = load_diabetes(return_X_y=True, as_frame=True)
    yl = np.where(yb == 1, "benign", "malignant")
    return [
        ("binary", LogisticRegression(max_iter=3000).fit(Xb, yb), Xb, yb, "classifier", {}),
        ("binary-pos-label", LogisticRegression(max_iter=3000).fit(Xb, yl), Xb, yl, "classifier",
         {"pos_label": "malignant"}),
        ("multiclass", GaussianNB().fit(Xi, yi), Xi, yi, "classifier", {}),
        ("multiclass-macro", LogisticRegression(max_iter=3000).fit(Xi, yi), Xi, yi, "classifier",
         {"average": "macro"}),
        ("regressor", LinearRegression().fit(Xr, yr), Xr, yr, "regressor", {}),
    ]


@pytest.mark.parametrize("index", range(5))
def test_evaluate_gives_mlflows_metrics(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    import mlflow.sklearn

    label, model, X, y, model_type, config = _cases()[index]
    data = X.assign(target=y)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run():
            uri = mlflow.sklearn.log_model(model, name="model").model_uri
            theirs = mlflow.evaluate(uri, data, targets="target", model_type=model_type,
                                     evaluator_config=config).metrics
    fluent.set_tracking_uri(tmp_path / ".lineage" / "lineage.db")
    try:
        with lineage.start_run():
            uri = lineage.sklearn.log_model(model, name="model").model_uri
            ours = lineage.evaluate(uri, data, targets="target", model_type=model_type,
                                    evaluator_config=config).metrics
    finally:
        fluent.get_lineage().close()
        fluent._default["lg"] = fluent._default["uri"] = None
    assert list(ours) == list(theirs), label
    for name, value in theirs.items():
        assert ours[name] == pytest.approx(float(value), rel=1e-9, abs=1e-12), (label, name)


def test_evaluate_of_precomputed_predictions_and_arrays_gives_mlflows_metrics(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=60), "y": rng.integers(0, 3, size=60), "p": rng.integers(0, 3, size=60)})
    X, y = rng.normal(size=(50, 2)), rng.normal(size=50) + 3.0

    def predict(d: Any) -> Any:
        return np.asarray(d) @ [0.5, -1.0] + 3.0

    def both(module: Any) -> list[dict[str, Any]]:
        return [module.evaluate(data=frame, targets="y", predictions="p", model_type="classifier").metrics,
                module.evaluate(predict, X, targets=y, model_type="regressor").metrics]

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = both(mlflow)
    fluent.set_tracking_uri(tmp_path / ".lineage" / "lineage.db")
    try:
        ours = both(lineage)
    finally:
        fluent.get_lineage().close()
        fluent._default["lg"] = fluent._default["uri"] = None
    for a, b in zip(ours, theirs):
        assert list(a) == list(b)
        for name, value in b.items():
            assert a[name] == pytest.approx(float(value), rel=1e-9, abs=1e-12), name
