"""``lineage.types``: MLflow's ``mlflow.types``, the parts a hand-written signature uses.

    from lineage.models import ModelSignature
    from lineage.types import ColSpec, Schema

    signature = ModelSignature(inputs=Schema([ColSpec("double", "age"), ColSpec("string", "region")]),
                               outputs=Schema([ColSpec("long")]))

The classes are `lineage.models`' own (what `infer_signature` returns), so a signature
written by hand is recorded with the model as an inferred one is. ``schema`` is the
submodule MLflow scripts import from (``from mlflow.types.schema import Schema``).
"""

from __future__ import annotations

from ..entities import missing_names
from ..models import ColSpec, DataType, Schema
from . import schema

__all__ = ["ColSpec", "DataType", "Schema", "schema"]

__getattr__ = missing_names("types.")
