"""``mlflow.exceptions`` for ``import lineage as mlflow``: scripts catch
``MlflowException`` around tracking calls, and every error lineage raises for a
foreseeable mistake is a `LineageError`, so catching one catches them all."""

from __future__ import annotations

from .entities import missing_names
from .errors import LineageError

#: what MLflow's calls raise, as lineage's (``except MlflowException:`` keeps working)
MlflowException = LineageError

__getattr__ = missing_names("exceptions.")
