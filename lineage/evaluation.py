"""``mlflow.evaluate`` for classic machine learning: MLflow's default evaluator's
metrics (names, averaging and positive-label rules as in MLflow's
``models/evaluation/evaluators``), logged to the active run (or a run started for
the evaluation), with the evaluation data recorded as the run's ``evaluation``
input and the model as what the run ``used``.

    result = mlflow.evaluate("runs:/<run_id>/model", test_df, targets="label", model_type="classifier")
    result.metrics["f1_score"]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidInputError, UnsupportedError, foreign

_log = logging.getLogger("lineage")

#: MLflow's GenAI/LLM model types, which its default evaluator hands to LLM judges
_GENAI_TYPES = {"question-answering", "text-summarization", "text", "retriever", "databricks-agent"}


@dataclass
class EvaluationArtifact:
    """A file the evaluation logged to the run (MLflow's ``EvaluationArtifact``):
    ``uri`` is where it is kept."""

    uri: str


@dataclass
class EvaluationResult:
    """What `evaluate` returns (MLflow's ``EvaluationResult``): ``metrics`` by name,
    ``artifacts`` by name, and the ``run_id`` they were logged to."""

    metrics: dict[str, float]
    artifacts: dict[str, EvaluationArtifact] = field(default_factory=dict)
    run_id: str | None = None


def _refuse_unsupported(model_type: Any, evaluators: Any, extra_metrics: Any, custom_artifacts: Any,
                        env_manager: str) -> str:
    if model_type in _GENAI_TYPES:
        raise UnsupportedError(f"evaluate(model_type={model_type!r})",
                               "GenAI/LLM evaluation: lineage evaluates classifiers and regressors only")
    if model_type not in ("classifier", "regressor"):
        raise InvalidInputError(f"evaluate needs model_type='classifier' or 'regressor', got {model_type!r}")
    names = [evaluators] if isinstance(evaluators, str) else list(evaluators or [])
    if any(n != "default" for n in names):
        raise UnsupportedError("evaluate(evaluators=...)", "only MLflow's 'default' evaluator is provided")
    if extra_metrics:
        raise UnsupportedError("evaluate(extra_metrics=...)", "mlflow.metrics is not provided; compute the metric "
                               "and record it with log_metric(dataset=) naming the evaluation data")
    if custom_artifacts:
        raise UnsupportedError("evaluate(custom_artifacts=...)", "log the files with log_artifact or log_figure")
    if env_manager != "local":
        raise UnsupportedError(f"evaluate(env_manager={env_manager!r})", "models are evaluated in this environment")
    return str(model_type)


def _split(data: Any, targets: Any, predictions: Any, feature_names: Any) -> tuple[Any, Any, Any, Any, str]:
    """``(features, y_true, y_pred or None, the data to record, its name)``."""
    import numpy as np

    from .data import Dataset

    name = "dataset"
    if isinstance(data, Dataset):
        name = data.name
        if data.target_data is not None:  # from_numpy(features, targets=)
            if targets is not None:
                raise InvalidInputError("evaluate: the dataset has its targets; pass targets= only with plain data")
            targets = data.target_data
        elif targets is None:
            targets = getattr(data, "_targets", None)  # from_pandas(df, targets="col")
        predictions = predictions if predictions is not None else data.predictions
        data = data.data
    if data is None:
        raise InvalidInputError("evaluate needs data= (a DataFrame, an array or an mlflow.data dataset)")
    if targets is None:
        raise InvalidInputError("evaluate needs targets= (a column of data, or the labels as an array)")
    if hasattr(data, "columns"):
        cols = list(data.columns)
        for what, col in (("targets", targets), ("predictions", predictions)):
            if col is not None and (not isinstance(col, str) or col not in cols):
                raise InvalidInputError(f"evaluate: {what}={col!r} is not a column of data (columns: "
                                        f"{', '.join(map(str, cols))})")
        y_true = np.asarray(data[targets])
        y_pred = None if predictions is None else np.asarray(data[predictions])
        if feature_names is not None:
            missing = [f for f in feature_names if f not in cols]
            if missing:
                raise InvalidInputError(f"evaluate: feature_names {', '.join(map(repr, missing))} not in data")
            features = data[list(feature_names)]
        else:
            features = data.drop(columns=[c for c in (targets, predictions) if c is not None])
        return features, y_true, y_pred, data, name
    features = np.asarray(data)
    if features.ndim != 2:
        raise InvalidInputError(f"evaluate: data must be 2-dimensional (rows × features), got {features.ndim} dimensions")
    y_true = np.asarray(targets)
    if y_true.ndim != 1 or len(y_true) != len(features):
        raise InvalidInputError(f"evaluate: targets must be one label per row of data ({len(features)}), "
                                f"got shape {y_true.shape}")
    if predictions is not None and (isinstance(predictions, str) or len(predictions) != len(features)):
        raise InvalidInputError("evaluate: with array data, predictions= must be one prediction per row")
    y_pred = None if predictions is None else np.asarray(predictions)
    if feature_names is not None:
        import pandas as pd

        if len(feature_names) != features.shape[1]:
            raise InvalidInputError(f"evaluate: {len(feature_names)} feature_names for {features.shape[1]} columns")
        features = pd.DataFrame(features, columns=list(feature_names))
    return features, y_true, y_pred, data, name


def _predictors(lg: Any, model: Any) -> tuple[Callable[[Any], Any], Any, Any]:
    """``(predict, the fitted estimator or None, the model node or None)`` for a
    model URI, a loaded `PyFuncModel`, a fitted estimator or a function."""
    from .model import Node
    from .models import resolve_model_uri
    from .pyfunc import PyFuncModel, load_model

    if isinstance(model, (str, Node)):
        node = resolve_model_uri(lg, model)
        model = load_model(node)
    if isinstance(model, PyFuncModel):
        return model.predict, model.unwrap_python_model(), lg.get(model.id)
    if hasattr(model, "predict") and hasattr(model, "fit"):
        # (lineage's own: MLflow takes a URI, a PyFuncModel or a function). The
        # estimator is the recorded model when its bytes were logged; else there is
        # no model node to name, and the run records the data and metrics only.
        return model.predict, model, _recorded(lg, model)
    if callable(model):
        return model, None, None
    raise InvalidInputError(f"evaluate: model must be a model URI, a loaded model, a fitted estimator or a "
                            f"function, got {type(model).__name__}")


def _recorded(lg: Any, estimator: Any) -> Any:
    """The model node of a fitted estimator logged before (by its digest), or None."""
    from .errors import NodeNotFoundError
    from .hashing import hash_model
    from .model import make_id

    try:
        return lg.get(make_id("model", hash_model(estimator)[0]))
    except (NodeNotFoundError, InvalidInputError):  # (never logged, or it does not pickle)
        return None


def _classifier_metrics(y_true: Any, y_pred: Any, y_probs: Any, config: Mapping[str, Any]) -> dict[str, float]:
    """MLflow's default evaluator's classifier metrics (evaluators/classifier.py)."""
    import numpy as np
    from sklearn import metrics as skm

    labels = config.get("label_list")
    pos_label = config.get("pos_label")
    weights = config.get("sample_weights")
    if pos_label is not None and labels is not None and pos_label not in labels:
        raise InvalidInputError(f"evaluate: pos_label {pos_label!r} must be in label_list {list(labels)!r}")
    labels = np.unique(np.concatenate([y_true, y_pred])) if labels is None else np.array(labels)
    labels.sort()
    if len(labels) < 2:
        raise InvalidInputError("evaluate: a classifier's data needs at least two labels; "
                                "give evaluator_config={'label_list': [...]} with every class")
    out: dict[str, float] = {}
    if len(labels) == 2:
        # y_probs' columns follow the sorted labels: the positive class's column is
        # found before the positive label is moved last
        pos_index = int(np.where(labels == pos_label)[0][0]) if pos_label in labels else 1
        if pos_label is None:
            pos_label = labels[-1]
        else:
            labels = np.append(np.delete(labels, np.where(labels == pos_label)), pos_label)
        tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=labels).ravel()
        out.update(true_negatives=tn, false_positives=fp, false_negatives=fn, true_positives=tp)
        average: str | None = "binary"
    else:
        average, pos_label = config.get("average", "weighted"), None
    out.update(
        example_count=len(y_true),
        accuracy_score=skm.accuracy_score(y_true, y_pred, sample_weight=weights),
        recall_score=skm.recall_score(y_true, y_pred, average=average, pos_label=pos_label, sample_weight=weights),
        precision_score=skm.precision_score(y_true, y_pred, average=average, pos_label=pos_label,
                                            sample_weight=weights),
        f1_score=skm.f1_score(y_true, y_pred, average=average, pos_label=pos_label, sample_weight=weights),
    )
    if y_probs is None:
        return out
    try:
        out["log_loss"] = skm.log_loss(y_true, y_probs, labels=labels, sample_weight=weights)
        if len(labels) == 2:
            scores = y_probs[:, pos_index]
            out["roc_auc"] = skm.roc_auc_score(np.asarray(y_true) == pos_label, scores, sample_weight=weights)
            out["precision_recall_auc"] = skm.average_precision_score(y_true, scores, pos_label=pos_label,
                                                                      sample_weight=weights)
        elif average in ("macro", "weighted"):
            out["roc_auc"] = skm.roc_auc_score(y_true, y_probs, sample_weight=weights, average=average,
                                               multi_class="ovr")
    except ValueError as exc:  # (one class missing from the data: MLflow leaves these out too)
        _log.warning("evaluate: probability metrics left out: %s", str(exc).splitlines()[0])
    return out


def _regressor_metrics(y_true: Any, y_pred: Any, config: Mapping[str, Any]) -> dict[str, float]:
    """MLflow's default evaluator's regressor metrics (evaluators/regressor.py)."""
    import numpy as np
    from sklearn import metrics as skm

    weights = config.get("sample_weights")
    total = float((np.asarray(y_true) * np.asarray(weights)).sum() if weights is not None else np.sum(y_true))
    mse = skm.mean_squared_error(y_true, y_pred, sample_weight=weights)
    return {
        "example_count": len(y_true),
        "mean_absolute_error": skm.mean_absolute_error(y_true, y_pred, sample_weight=weights),
        "mean_squared_error": mse,
        "root_mean_squared_error": float(np.sqrt(mse)),
        "sum_on_target": total,
        "mean_on_target": total / len(y_true),
        "r2_score": skm.r2_score(y_true, y_pred, sample_weight=weights),
        "max_error": skm.max_error(y_true, y_pred),
        "mean_absolute_percentage_error": skm.mean_absolute_percentage_error(y_true, y_pred, sample_weight=weights),
    }


def _confusion_figure(y_true: Any, y_pred: Any) -> Any:
    """MLflow's confusion-matrix plot, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        from sklearn.metrics import ConfusionMatrixDisplay
    except ImportError:
        return None
    display = ConfusionMatrixDisplay.from_predictions(y_true, y_pred, normalize="true", cmap="Blues")
    display.ax_.set_title("Normalized confusion matrix")
    fig = display.figure_
    plt.close(fig)
    return fig


def evaluate(model: Any = None, data: Any = None, *, model_type: str | None = None, targets: Any = None,
             predictions: Any = None, dataset_path: str | None = None, feature_names: Any = None,
             evaluators: Any = None, evaluator_config: Mapping[str, Any] | None = None, extra_metrics: Any = None,
             custom_artifacts: Any = None, env_manager: str = "local", model_config: Any = None,
             inference_params: Mapping[str, Any] | None = None, model_id: str | None = None) -> EvaluationResult:
    """Evaluate a classifier or a regressor as MLflow's default evaluator does.

    ``model`` is a model URI (``runs:/<run_id>/model``, ``models:/<name>/<version>``),
    a loaded `pyfunc.PyFuncModel`, a fitted scikit-learn estimator (lineage's own;
    MLflow takes a URI) or a function of the features; or None with ``predictions=``
    (a column of ``data``, or an array with array data). ``data`` is a DataFrame
    (``targets`` names its label column), an array (``targets`` is the labels) or a
    ``lineage.data`` dataset. ``evaluator_config`` takes MLflow's ``label_list``,
    ``pos_label``, ``average`` and ``sample_weights``.

    The metrics are logged to the active run, or to a run started for the
    evaluation and ended after it (as MLflow does); the data is recorded as the
    run's ``evaluation`` input (held-out data), the recorded model as what the run
    used (``role="model"``), and a classifier's normalized confusion matrix as
    ``confusion_matrix.png`` when matplotlib is installed. A fitted estimator has a
    ``score`` metric (its own ``score``), as MLflow gives a scikit-learn model.

    Returns an `EvaluationResult`. Raises InvalidInputError for a mistaken argument,
    UnsupportedError for GenAI model types, other evaluators, ``extra_metrics`` and
    ``custom_artifacts``."""
    import numpy as np

    from . import fluent
    from .entities import run_hex

    kind = _refuse_unsupported(model_type, evaluators, extra_metrics, custom_artifacts, env_manager)
    if model is not None and predictions is not None:
        raise InvalidInputError("evaluate: give model= or predictions=, not both")
    if model is None and predictions is None and model_id is None:
        raise InvalidInputError("evaluate needs model= (or predictions= naming precomputed predictions)")
    features, y_true, y_pred, recorded, name = _split(data, targets, predictions, feature_names)
    lg = fluent.get_lineage()
    if model is None and predictions is None:
        model = f"models:/{model_id}"
    config = dict(evaluator_config or {})
    estimator = node = None
    y_probs = None
    if y_pred is None:
        predict, estimator, node = _predictors(lg, model)
        with foreign("evaluate: the model's predict failed on the data: {type}: {reason}"):
            y_pred = np.asarray(predict(features))
            if kind == "classifier" and estimator is not None and hasattr(estimator, "predict_proba"):
                y_probs = np.asarray(estimator.predict_proba(features))
    if y_pred.ndim == 2 and y_pred.shape[1] == 1:  # (one column of predictions, as a function may return)
        y_pred = y_pred.ravel()
    if y_pred.ndim != 1 or len(y_pred) != len(y_true):
        raise InvalidInputError(f"evaluate: the model gave predictions of shape {y_pred.shape} for {len(y_true)} rows")
    metrics: dict[str, float] = {}
    if estimator is not None and hasattr(estimator, "score"):
        try:  # (MLflow, too, warns and goes on when the estimator's own score fails)
            with foreign("evaluate: the model's score failed: {type}: {reason}"):
                metrics["score"] = estimator.score(features, y_true, sample_weight=config.get("sample_weights"))
        except InvalidInputError as exc:
            _log.warning("%s", exc)
    if kind == "classifier":
        metrics.update(_classifier_metrics(y_true, y_pred, y_probs, config))
    else:
        metrics.update(_regressor_metrics(y_true, y_pred, config))
    values = {k: float(v) for k, v in metrics.items()}
    active = fluent.active_run()
    run = active or fluent.start_run()
    try:
        with run.batch():
            data_node = run.log_input(recorded, role="evaluation", name=name)
            if node is not None:
                run.log_input(node, role="model")
            run.log_metrics(values, dataset=data_node)
        artifacts: dict[str, EvaluationArtifact] = {}
        fig = _confusion_figure(y_true, y_pred) if kind == "classifier" else None
        if fig is not None:
            fluent.log_figure(fig, "confusion_matrix.png", run_id=run)
            artifacts["confusion_matrix"] = EvaluationArtifact(fluent.get_artifact_uri("confusion_matrix.png"))
    except BaseException:
        if active is None:
            fluent.end_run("FAILED")
        raise
    if active is None:
        fluent.end_run()
    return EvaluationResult(values, artifacts, run_hex(run.id))


__all__ = ["EvaluationArtifact", "EvaluationResult", "evaluate"]
