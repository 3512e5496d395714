"""``lineage.sklearn``: MLflow's scikit-learn flavour, on the active run.

    lineage.sklearn.log_model(clf, name="model", signature=sig, registered_model_name="wine")
    clf = lineage.sklearn.load_model("runs:/<run_id>/model")
    lineage.sklearn.autolog()

Importing this module does not import scikit-learn.
"""

from __future__ import annotations

from typing import Any

from .entities import ModelInfo, missing_names


def log_model(sk_model: Any, artifact_path: str | None = None, *, name: str | None = None, signature: Any = None,
              input_example: Any = None, registered_model_name: str | None = None, **kwargs: Any) -> ModelInfo:
    """Save a fitted scikit-learn estimator and record it on the active run (one is
    started if none is active); returns its model node, as MLflow's ``ModelInfo``
    (``.model_uri``). ``signature`` and
    ``input_example`` are recorded with it; ``registered_model_name`` names it, so
    ``NAME@N`` is its N-th version. Other MLflow arguments are accepted and ignored."""
    from . import fluent

    return fluent.log_model(sk_model, name=name or artifact_path, signature=signature, input_example=input_example,
                            registered_model_name=registered_model_name)


def load_model(model_uri: Any, dst_path: str | None = None) -> Any:
    """The fitted estimator a model URI names (``runs:/<run_id>/model``,
    ``models:/<name>/<version>``, ``models:/<name>@<alias>`` or a lineage reference),
    read from the store after checking its digest.

    Raises NodeNotFoundError when the URI names no recorded model."""
    from . import fluent
    from .models import resolve_model_uri

    lg = fluent.get_lineage()
    return lg.load_model(resolve_model_uri(lg, model_uri))


def save_model(sk_model: Any, path: str, **kwargs: Any) -> None:
    """Write a fitted estimator to a file with pickle (nothing is recorded; use `log_model`)."""
    import pickle

    with open(path, "wb") as f:
        pickle.dump(sk_model, f, protocol=5)


def autolog(disable: bool = False, log_predictions: bool = False, max_tuning_runs: int | None = 5,
            **kwargs: Any) -> None:
    """Record every scikit-learn ``fit``; see `lineage.autolog`."""
    from . import autologging as _autolog

    _autolog.autolog(disable=disable, log_predictions=log_predictions, max_tuning_runs=max_tuning_runs, **kwargs)


# what MLflow's ``mlflow.sklearn`` has and this module does not
__getattr__ = missing_names("sklearn.")
