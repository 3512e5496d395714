"""The entry points MLflow loads for the ``lineage`` scheme (see `mlflow_store`).

MLflow loads plugins while it is still importing itself, so these builders import
MLflow's stores only when MLflow asks for one."""

from __future__ import annotations

from typing import Any


def tracking_store(store_uri: str, artifact_uri: str | None = None) -> Any:
    """MLflow's tracking store for ``lineage:///DIR`` (an `mlflow_store.LineageTrackingStore`)."""
    from .mlflow_store import LineageTrackingStore

    return LineageTrackingStore(store_uri, artifact_uri)


def registry_store(store_uri: str, tracking_uri: str | None = None) -> Any:
    """MLflow's model registry store for ``lineage:///DIR`` (an `mlflow_store.LineageRegistryStore`)."""
    from .mlflow_store import LineageRegistryStore

    return LineageRegistryStore(store_uri, tracking_uri)
