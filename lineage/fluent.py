"""MLflow's fluent API on the default store and the active run.

Tracking code written for MLflow runs after changing ``import mlflow`` to
``import lineage as mlflow``: the names, argument names and defaults match.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Mapping
from typing import Any

from .api import Lineage
from .api import open as _open
from .errors import InvalidInputError, WriteRefusedError
from .model import Node
from .tracking import Run

_state = threading.local()
_lock = threading.Lock()
_default: dict[str, Any] = {"lg": None, "experiment": None}


class _Stack:
    """The active runs of this thread, innermost last."""

    def __init__(self) -> None:
        self.runs: list[Run] = []

    def _forget(self, run: Run) -> None:
        if run in self.runs:
            self.runs.remove(run)


def _stack() -> _Stack:
    s = getattr(_state, "stack", None)
    if s is None:
        s = _state.stack = _Stack()
    return s


def get_lineage() -> Lineage:
    """The default store (``LINEAGE_DB`` or the nearest ``.lineage``), opened once."""
    with _lock:
        if _default["lg"] is None:
            _default["lg"] = _open()
        return _default["lg"]


def set_tracking_uri(path: str | os.PathLike[str]) -> None:
    """Use another store file for the fluent API (MLflow's ``set_tracking_uri``)."""
    with _lock:
        path = os.fspath(path)
        for prefix in ("sqlite:///", "file://"):
            if path.startswith(prefix):
                path = path[len(prefix):]
        _default["lg"] = _open(path)


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> str:
    """Runs started after this belong to ``experiment_name``; returns it."""
    name = experiment_name or experiment_id
    if not name:
        raise InvalidInputError("set_experiment needs a name")
    _default["experiment"] = name
    return name


def start_run(run_id: str | None = None, experiment_id: str | None = None, run_name: str | None = None,
              nested: bool = False, parent_run_id: str | None = None, tags: Mapping[str, Any] | None = None,
              description: str | None = None, log_system_metrics: bool | None = None, *,
              params: Mapping[str, Any] | None = None) -> Run:
    """Start a run (or resume ``run_id``) and make it the active run.

    As in MLflow, a second run while one is active needs ``nested=True``; it then
    records its parent.
    """
    stack = _stack()
    if stack.runs and not nested and run_id is None:
        raise WriteRefusedError(
            f"run {stack.runs[-1].id} is already active; end it with lineage.end_run() "
            "or start a nested run with nested=True"
        )
    lg = get_lineage()
    if run_id is not None:
        run = Run.resume(lg.store, run_id, owner=stack)
    else:
        parent = parent_run_id or (stack.runs[-1].id if (nested and stack.runs) else None)
        run = Run.start(lg.store, run_name, params=params, tags=tags,
                        experiment=experiment_id or _default["experiment"], description=description,
                        parent=parent, owner=stack)
    stack.runs.append(run)
    return run


def active_run() -> Run | None:
    """The innermost active run of this thread, or None."""
    runs = _stack().runs
    return runs[-1] if runs else None


def last_active_run() -> Run | None:
    """The run most recently ended with `end_run`, or None (MLflow's ``last_active_run``)."""
    return _default.get("last")


def end_run(status: str = "FINISHED") -> None:
    """End the active run (``FINISHED``, ``FAILED`` or ``KILLED``, as in MLflow)."""
    run = active_run()
    if run is not None:
        _default["last"] = run
        run.end(status.lower())


def _run() -> Run:
    """The active run, started on demand as MLflow does."""
    return active_run() or start_run()


def log_param(key: str, value: Any) -> Any:
    """Record a parameter on the active run (started if none is); returns ``value``.
    Params are immutable: logging a different value for a key is refused."""
    _run().log_param(key, value)
    return value


def log_params(params: Mapping[str, Any]) -> None:
    """Record several parameters on the active run, in one ledger event."""
    _run().log_params(params)


def log_metric(key: str, value: float, step: int | None = None, *, dataset: Any = None, group: str | None = None,
               timestamp: Any = None, **_: Any) -> None:
    """Record a metric on the active run; ``dataset`` records that the run used it for
    evaluation, ``group`` marks a per-group result (``"age>60"``)."""
    _run().log_metric(key, value, step, dataset=dataset, group=group)


def log_metrics(metrics: Mapping[str, float], step: int | None = None, *, dataset: Any = None, **_: Any) -> None:
    """Record several metrics on the active run."""
    _run().log_metrics(metrics, step, dataset=dataset)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run (tags may change; every change is kept in the ledger)."""
    _run().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags on the active run."""
    _run().set_tags(tags)


def log_input(dataset: Any, context: str | None = None, tags: Mapping[str, Any] | None = None, *,
              role: str | None = None, name: str | None = None) -> Node:
    """Record that the active run read ``dataset``; MLflow's ``context`` is our ``role``."""
    return _run().log_input(dataset, role=role or context or "training", name=name)


def log_output(data: Any, *, name: str | None = None) -> Node:
    """Record a dataset the active run wrote; returns its node."""
    return _run().log_output(data, name=name)


def log_model(model: Any, name: str | None = None, artifact_path: str | None = None, **kwargs: Any) -> Node:
    """Log a fitted model to the active run (``name`` or MLflow's ``artifact_path``);
    ``evaluation=`` / ``target=`` compute permutation importance (see `Run.log_model`)."""
    return _run().log_model(model, name or artifact_path, evaluation=kwargs.get("evaluation"), target=kwargs.get("target"))


def log_artifact(local_path: str, artifact_path: str | None = None) -> Node:
    """Keep a copy of a file the active run wrote (plot, report); returns its node."""
    return _run().log_artifact(local_path, artifact_path)


def log_dataset(data: Any = None, *, name: str | None = None, uri: str | None = None, digest: str | None = None) -> Node:
    """Record a dataset version in the default store; see `Lineage.log_dataset`."""
    return get_lineage().log_dataset(data, name=name, uri=uri, digest=digest)


def log_predictions(model: Any, inputs: Any, outputs: Any, *, request_ids: Any = None, scores: Any = None) -> list[str]:
    """Record predictions in bulk in the default store; returns their ids."""
    return get_lineage().log_predictions(model, inputs, outputs, request_ids=request_ids, scores=scores)


@atexit.register
def _end_open_runs() -> None:
    # A script that forgets end_run() still leaves a finished run, as MLflow's does;
    # one that died of an uncaught exception (Python sets sys.last_value before
    # atexit runs) leaves a failed run with the error, as a `with` block would.
    import sys

    stack = getattr(_state, "stack", None)
    died = getattr(sys, "last_value", None)
    if hasattr(sys, "ps1") or "IPython" in sys.modules:
        died = None  # interactive: an earlier error in the session did not end it
    for run in reversed(list(stack.runs if stack else [])):
        try:
            if died is not None:
                run.__exit__(type(died), died, None)
            else:
                run.end("finished")
        except Exception:  # the interpreter is going away; the reaper will mark it crashed
            pass
