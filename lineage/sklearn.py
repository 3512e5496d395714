"""``lineage.sklearn.log_model``: MLflow's scikit-learn flavour, on the active run.

Importing this module does not import scikit-learn.
"""

from __future__ import annotations

from typing import Any

from .model import Node


def log_model(sk_model: Any, artifact_path: str | None = None, *, name: str | None = None, **kwargs: Any) -> Node:
    """Save a fitted scikit-learn estimator and record it on the active run (one is
    started if none is active). Extra MLflow arguments (signature, input_example,
    registered_model_name, …) are accepted and ignored."""
    from . import fluent

    return fluent.log_model(sk_model, name=name or artifact_path)
