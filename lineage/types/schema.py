"""``lineage.types.schema``: MLflow's ``mlflow.types.schema`` (`ColSpec`, `DataType`, `Schema`)."""

from __future__ import annotations

from ..entities import missing_names
from ..models import ColSpec, DataType, Schema

__all__ = ["ColSpec", "DataType", "Schema"]

__getattr__ = missing_names("types.schema.")
