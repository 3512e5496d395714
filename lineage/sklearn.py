"""``lineage.sklearn``: MLflow's scikit-learn flavour, on the active run.

    lineage.sklearn.log_model(clf, name="model", signature=sig, registered_model_name="wine")
    clf = lineage.sklearn.load_model("runs:/<run_id>/model")
    lineage.sklearn.autolog()

Importing this module does not import scikit-learn.
"""

from __future__ import annotations

from typing import Any

from .entities import ModelInfo, missing_names
from .errors import InvalidInputError


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

    saved = _saved_model_file(model_uri)
    if saved is not None:  # a folder `save_model` (or MLflow's) wrote: read as it is, nothing recorded
        import pickle

        with open(saved, "rb") as f:
            return pickle.load(f)
    lg = fluent.get_lineage()
    return lg.load_model(resolve_model_uri(lg, model_uri))


def save_model(sk_model: Any, path: str, **kwargs: Any) -> None:
    """Write a fitted estimator to a new folder ``path``, as ``path/model.pkl`` (MLflow's
    layout, which `load_model` reads back); nothing is recorded (use `log_model`).
    Raises InvalidInputError when ``path`` exists, as MLflow does."""
    import os
    import pickle

    if os.path.exists(path):
        raise InvalidInputError(f"{path} already exists; save_model writes a new folder")
    os.makedirs(path)
    with open(os.path.join(path, "model.pkl"), "wb") as f:
        pickle.dump(sk_model, f, protocol=5)


def _saved_model_file(model_uri: Any) -> str | None:
    """``DIR/model.pkl`` when ``model_uri`` is a local folder holding one (``file:`` or
    a plain path); None for model URIs and lineage references."""
    from .model import local_path

    folder = local_path(str(model_uri))
    if folder is None or not folder.is_dir():
        return None
    found = folder / "model.pkl"
    return str(found) if found.is_file() else None


def autolog(disable: bool = False, log_predictions: bool = False, max_tuning_runs: int | None = 5,
            **kwargs: Any) -> None:
    """Record every scikit-learn ``fit``; see `lineage.autolog`."""
    from . import autologging as _autolog

    _autolog.autolog(disable=disable, log_predictions=log_predictions, max_tuning_runs=max_tuning_runs, **kwargs)


# what MLflow's ``mlflow.sklearn`` has and this module does not
__getattr__ = missing_names("sklearn.")
