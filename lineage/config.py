"""MLflow's ``mlflow.config`` for ``import lineage as mlflow``: the async-logging
switch and the tracking URI. System metrics are MLflow's own (a clear error)."""

from __future__ import annotations

import os

from .entities import unsupported
from .fluent import get_tracking_uri, is_tracking_uri_set, set_tracking_uri
from .store.asyncwrite import ASYNC_ENV

__all__ = ["enable_async_logging", "get_tracking_uri", "is_tracking_uri_set", "set_tracking_uri"]


def enable_async_logging(enable: bool = True) -> None:
    """Queue params, metrics and tags for a background writer from now on (or stop):
    MLflow's switch, the same ``MLFLOW_ENABLE_ASYNC_LOGGING`` it sets. The calls then
    return a ``RunOperations``; ``flush_async_logging()``, ``end_run()`` and any other
    write wait for what is queued.

    Example::

        lineage.config.enable_async_logging()
        with lineage.start_run():
            for step in range(1000):
                lineage.log_metric("loss", 1 / (step + 1), step=step)  # one commit per batch
    """
    os.environ[ASYNC_ENV] = "true" if enable else "false"


def __getattr__(name: str) -> object:
    if name.startswith("__"):
        raise AttributeError(name)
    raise unsupported(f"config.{name}")
