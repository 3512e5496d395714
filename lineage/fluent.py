"""MLflow's fluent API on the default store and the active run.

Tracking code written for MLflow runs after changing ``import mlflow`` to
``import lineage as mlflow``: the names, argument names and defaults match, and the
objects handed back have MLflow's shape (``run.info.run_id``, ``run.data.metrics``,
``experiment.experiment_id``) while staying lineage's own (``run.id``).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .api import Lineage
from .api import open as _open
from .entities import (
    ActiveRun,
    Experiment,
    LoggedModel,
    ModelInfo,
    RunView,
    experiment_id_of,
    experiment_name_for_id,
    experiment_view,
    from_ms,
    in_view,
    known_experiments,
    logged_model,
    model_info,
    remember_experiment,
    resolve_run,
    run_artifacts,
    run_hex,
    run_view,
    stored_name,
)
from .errors import AlreadyExistsError, InvalidInputError, WriteRefusedError, log
from .model import Node, version_number
from .registry import ModelVersion
from .store.asyncwrite import RunOperations, drain_all
from .store.asyncwrite import wanted as wanted_async  # (MLflow's `synchronous` rule)
from .tracking import DEFAULT_EXPERIMENT, LIFECYCLE_TAG, NOTE_TAG, OPENED_RUNS, Run

_state = threading.local()
_lock = threading.Lock()
_default: dict[str, Any] = {"lg": None, "experiment": None, "uri": None, "last_model": None}


class _Stack:
    """The active runs of this thread, innermost last."""

    def __init__(self) -> None:
        self.runs: list[Run] = []

    def _forget(self, run: Run) -> None:
        if run in self.runs:
            self.runs.remove(run)
        _default["last"] = run  # what last_active_run() answers, however the run ended


def run_stack() -> _Stack:
    """This thread's stack of active runs (the innermost last), made on first use."""
    s = getattr(_state, "stack", None)
    if s is None:
        s = _state.stack = _Stack()
    return s


def store_path(uri: str) -> str:
    """The store file a tracking URI names: ``lineage:///DIR`` (the project folder whose
    ``.lineage/lineage.db`` is used, or a path ending in ``.db``), ``sqlite:///x.db``,
    MLflow's file store ``file:///DIR`` or ``file:./DIR`` (the folder MLflow would keep
    its runs in: ``DIR/lineage.db``), or a plain path: a database file (an existing
    file, or a name ending in ``.db``, ``.sqlite`` or ``.sqlite3``), else, as MLflow
    reads ``./mlruns``, a folder (``DIR/lineage.db``)."""
    text = os.fspath(uri)
    for prefix in ("lineage://", "lineage:", "sqlite:///", "file:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
            if prefix.startswith("lineage"):
                if text.startswith("//"):
                    text = text[1:]
                if not text.endswith(".db"):
                    text = os.path.join(text or ".", ".lineage", "lineage.db")
            elif prefix == "file:":
                # file:///abs, file:/abs and file:./rel (no host: file://host/… is not local)
                if text.startswith("//"):
                    if not text.startswith("///"):
                        raise InvalidInputError(f"tracking URI {uri!r}: a file URI names a local folder "
                                                "(file:///ABS/DIR or file:./DIR)")
                    text = text[2:]
                if not text.endswith(".db"):
                    text = os.path.join(text or ".", "lineage.db")
            break
    else:
        if "://" in text:
            raise InvalidInputError(f"tracking URI {uri!r}: lineage reads lineage:///DIR, sqlite:///FILE.db, "
                                    "file:///DIR or a path")
        if os.path.isdir(text) or not (os.path.isfile(text) or text.endswith((".db", ".sqlite", ".sqlite3"))):
            text = os.path.join(text, "lineage.db")
    return text


def get_lineage() -> Lineage:
    """The default store (``LINEAGE_DB``, ``MLFLOW_TRACKING_URI=lineage:///DIR``, or the
    nearest ``.lineage``), opened once."""
    with _lock:
        if _default["lg"] is None:
            env = os.environ.get("MLFLOW_TRACKING_URI", "")
            if not os.environ.get("LINEAGE_DB") and env.startswith("lineage:"):
                _default["lg"] = _open(store_path(env))
            else:
                _default["lg"] = _open()
        return _default["lg"]


def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Use another store for the fluent API (MLflow's ``set_tracking_uri``): a path,
    ``sqlite:///path.db`` or ``lineage:///PROJECT_DIR``."""
    with _lock:
        text = os.fspath(uri)
        _default["lg"] = _open(store_path(text))
        _default["uri"] = text
        _default["last_model"] = None  # (logged to the store left behind)


def get_tracking_uri() -> str:
    """The store the fluent API writes to, as a URI (``sqlite:///…/lineage.db``)."""
    if _default["uri"] and str(_default["uri"]).startswith("lineage:"):
        return str(_default["uri"])
    return f"sqlite:///{get_lineage().db_path}"


def get_registry_uri() -> str:
    """The model registry's URI: the tracking store's (`get_tracking_uri`), because
    lineage's registry is the tracking store itself (a registered version is a
    recorded model, ``NAME@N``)."""
    return get_tracking_uri()


def set_registry_uri(uri: str) -> None:
    """Accepted when ``uri`` names the tracking store (the registry is that store, so
    nothing changes). Raises UnsupportedError for another store (a registry kept apart
    from the runs, ``databricks-uc``): its versions could not name the runs and data
    recorded here; `set_tracking_uri` moves both."""
    from .errors import UnsupportedError

    try:
        same = os.path.abspath(store_path(os.fspath(uri))) == os.path.abspath(str(get_lineage().db_path))
    except InvalidInputError:
        same = False
    if not same:
        raise UnsupportedError(f"set_registry_uri({os.fspath(uri)!r})",
                               "the model registry is the tracking store here; set_tracking_uri moves both")


def is_tracking_uri_set() -> bool:
    """True once `set_tracking_uri` was called."""
    return _default["uri"] is not None


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """Where the store keeps artifacts (content-addressed, next to the database); for
    a path the active run logged, the ``file://`` URI of its stored copy (named by its
    digest, not its path: it exists and holds what was logged)."""
    lg = get_lineage()
    run = active_run()
    found = run_artifacts(lg, run.id).get(artifact_path.strip("/")) if artifact_path and run is not None else None
    if found is not None:
        return lg.artifact_file(found).resolve().as_uri()
    base = lg.artifacts_uri()
    return f"{base}/{artifact_path}" if artifact_path else base


# ---------------------------------------------------------------------------
# experiments


def _current_experiment() -> str | None:
    """The experiment new runs join: `set_experiment`'s, else MLflow's environment
    variables' (``MLFLOW_EXPERIMENT_NAME``, created when new, as MLflow does; or
    ``MLFLOW_EXPERIMENT_ID``), else None (the default experiment)."""
    if _default["experiment"] is not None:
        return str(_default["experiment"])
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if name:
        stored = stored_name(name)
        remember_experiment(get_lineage(), stored)
        return stored
    experiment_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
    return experiment_name_for_id(get_lineage(), experiment_id) if experiment_id else None


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Runs started after this belong to the experiment (created when new); returns it.

    Raises InvalidInputError without a name or id, NodeNotFoundError for an unknown id."""
    lg = get_lineage()
    if experiment_name:
        name = stored_name(str(experiment_name))
        remember_experiment(lg, name)
    elif experiment_id is not None:
        name = experiment_name_for_id(lg, experiment_id)
    else:
        raise InvalidInputError("set_experiment needs experiment_name or experiment_id")
    _default["experiment"] = name
    return experiment_view(lg, name)


def create_experiment(name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None) -> str:
    """Create an experiment; returns its id (a string). Raises WriteRefusedError when one
    of that name exists, as MLflow does."""
    return create_experiment_on(get_lineage(), name, tags)


def create_experiment_on(lg: Lineage, name: str, tags: Mapping[str, Any] | None = None) -> str:
    """`create_experiment` in ``lg`` (a client's own store, not the fluent API's)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("an experiment needs a name")
    stored = stored_name(name)
    if stored in known_experiments(lg):
        raise AlreadyExistsError(f"experiment {name!r} already exists (id {experiment_id_of(stored)})")
    lg.create_experiment(stored, tags)
    return experiment_id_of(stored)


def get_experiment(experiment_id: str) -> Experiment:
    """The experiment with an id. Raises NodeNotFoundError for an unknown id."""
    lg = get_lineage()
    return experiment_view(lg, experiment_name_for_id(lg, experiment_id))


def get_experiment_by_name(name: str) -> Experiment | None:
    """The experiment of that name, or None."""
    lg = get_lineage()
    stored = stored_name(str(name))
    info = known_experiments(lg).get(stored)
    return experiment_view(lg, stored, info) if info is not None else None


def set_experiment_tag(key: str, value: Any) -> None:
    """Set a tag on the current experiment (the active run's, else `set_experiment`'s,
    else the default one); every change is kept in the ledger."""
    set_experiment_tags({key: value})


def set_experiment_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags on the current experiment (`set_experiment_tag`), in one event."""
    run = active_run()
    lg = get_lineage()
    lg.set_experiment_tags(run.experiment if run is not None else (_current_experiment() or DEFAULT_EXPERIMENT), tags)


def search_experiments(view_type: Any = None, max_results: int | None = None, filter_string: str | None = None,
                       order_by: Sequence[str] | None = None) -> list[Experiment]:
    """Every experiment, those recorded and those that hold runs, in MLflow's order
    (newest created first, unless ``order_by``: ``name``, ``experiment_id``,
    ``creation_time``, ``last_update_time``, each ``ASC`` or ``DESC``);
    ``filter_string`` compares those attributes and ``tags.X`` (``name LIKE 'w%'``,
    ``tags.team = 'risk'``)."""
    return search_experiments_on(get_lineage(), max_results, filter_string, order_by)


#: what `search_experiments` filters and orders by, besides ``tags.X`` (MLflow's)
_EXPERIMENT_ATTRIBUTES = frozenset({"name", "experiment_id", "creation_time", "last_update_time"})


def _experiment_value(e: Experiment, entity: str, key: str) -> Any:
    """An experiment's value of ``entity.key`` in a filter or an order."""
    if entity == "tags":
        return e.tags.get(key)
    if entity != "attributes":
        raise InvalidInputError(f"search_experiments compares name, experiment_id, creation_time, last_update_time "
                                f"and tags.X, not {entity}.{key}")
    k = key.lower()
    return int(e.experiment_id) if k == "experiment_id" else getattr(e, k)


def search_experiments_on(lg: Lineage, max_results: int | None, filter_string: str | None,
                          order_by: Sequence[str] | None = None) -> list[Experiment]:
    """`search_experiments` in ``lg`` (a client's own store, not the fluent API's)."""
    from . import mlflow_filter

    clauses = mlflow_filter.parse(filter_string, attributes=_EXPERIMENT_ATTRIBUTES)
    order = mlflow_filter.parse_order(order_by or ["creation_time DESC"], attributes=_EXPERIMENT_ATTRIBUTES)
    out = [experiment_view(lg, n, info) for n, info in known_experiments(lg).items()]
    for c in clauses:
        out = [e for e in out if mlflow_filter.compare(_experiment_value(e, c.entity, c.key), c.op, c.value)]
    out.sort(key=lambda e: int(e.experiment_id))  # (MLflow's tie-breaker)
    out = mlflow_filter.sort_by_fields(out, order, _experiment_value)
    return out[:max_results] if max_results else out


def delete_experiment(experiment_id: str) -> None:
    """Refused: lineage's records are append-only."""
    raise WriteRefusedError("lineage's records are append-only: experiments are not deleted")


# ---------------------------------------------------------------------------
# system metrics: MLflow samples CPU, memory and GPU use into a run; lineage does not

#: MLflow's switch for system metrics in every run
SYSTEM_METRICS_ENV = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"
_said: set[str] = set()


def enable_system_metrics_logging() -> None:
    """Accepted, and said once: lineage records no system metrics (CPU, memory, GPU
    use over time); a run records its environment (Python, platform, packages)."""
    _no_system_metrics()


def disable_system_metrics_logging() -> None:
    """Accepted: lineage records no system metrics."""


def _no_system_metrics() -> None:
    """Say once per process that system metrics asked for are not recorded (rather
    than stop the script, or drop them without a word)."""
    if "system_metrics" not in _said:
        _said.add("system_metrics")
        log.warning("lineage does not record system metrics (CPU, memory, GPU use); "
                    "runs are recorded without them")


# ---------------------------------------------------------------------------
# runs


def start_run(run_id: str | None = None, experiment_id: str | None = None, run_name: str | None = None,
              nested: bool = False, parent_run_id: str | None = None, tags: Mapping[str, Any] | None = None,
              description: str | None = None, log_system_metrics: bool | None = None, *,
              params: Mapping[str, Any] | None = None) -> ActiveRun:
    """Start a run (or resume ``run_id``) and make it the active run; returns it, usable
    as a context manager, with MLflow's ``.info`` and ``.data``.

    As in MLflow, a second run while one is active needs ``nested=True``; it then
    records its parent. Raises NodeNotFoundError for an unknown ``run_id`` or
    ``experiment_id``."""
    if log_system_metrics or (log_system_metrics is None and
                              os.environ.get(SYSTEM_METRICS_ENV, "").strip().lower() in ("1", "true")):
        _no_system_metrics()
    stack = run_stack()
    if stack.runs and not nested and run_id is None:
        raise WriteRefusedError(
            f"run {run_hex(stack.runs[-1].id)} is already active; end it with lineage.end_run() "
            "or start a nested run with nested=True"
        )
    lg = get_lineage()
    if run_id is None and os.environ.get("MLFLOW_RUN_ID"):
        # (MLflow's: a run handed to this process to resume, used once)
        run_id = os.environ.pop("MLFLOW_RUN_ID")
    if run_id is not None:
        node = resolve_run(lg, run_id)
        run = lg.open_run(ActiveRun, run_id=node.id, owner=stack)
    else:
        experiment = experiment_name_for_id(lg, experiment_id) if experiment_id is not None else _current_experiment()
        user_tags = dict(tags or {})
        run_name = run_name or user_tags.pop("mlflow.runName", None)
        parent_tag = user_tags.pop("mlflow.parentRunId", None)
        description = description or user_tags.pop(NOTE_TAG, None)
        parent = parent_run_id or parent_tag or (stack.runs[-1].id if (nested and stack.runs) else None)
        if parent is not None:
            parent = resolve_run(lg, parent).id
        run = lg.open_run(ActiveRun, run_name, params=params, tags=user_tags or None, experiment=experiment,
                          description=description, parent=parent, owner=stack)
    run.lineage = lg  # its MLflow view reads through the facade
    stack.runs.append(run)
    return run


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread, or None: one started here, else the
    newest run this thread opened with `Lineage.start_run` on the same store and has
    not ended. Inside ``with lg.start_run("x"):``, ``lineage.log_metric`` and autolog
    had each started a run of their own (one left running), splitting the work."""
    runs = run_stack().runs
    if runs:
        return runs[-1]  # type: ignore[return-value]
    return _opened_run()


def _opened_run() -> ActiveRun | None:
    """The newest open run of `tracking.OPENED_RUNS` on the fluent API's store (any
    store before that one is opened), as an `ActiveRun`: MLflow's face of the same
    object, sharing its state (its end, its lock, the params it knows), so ending
    either ends both."""
    opened = [r for r in OPENED_RUNS.runs if not r._ended]
    if not opened:
        return None
    run = opened[-1]
    lg = _default["lg"]
    if lg is not None and not lg.holds(run):
        return None  # (a run of another store: the fluent API writes to its own)
    if isinstance(run, ActiveRun):
        return run
    view = run.__dict__.get("_mlflow_view")
    if view is None:
        view = object.__new__(ActiveRun)
        view.__dict__ = run.__dict__  # (one state, two faces: not a copy that could drift)
        run.__dict__["_mlflow_view"] = view
    return view


def last_active_run() -> RunView | None:
    """The run most recently ended with `end_run` (or the active one), as MLflow's
    ``last_active_run`` returns it; None when there is none."""
    run = active_run() or _default.get("last")
    return run.view() if isinstance(run, ActiveRun) else run_view(get_lineage(), run.node) if run is not None else None


def end_run(status: str = "FINISHED") -> None:
    """End the active run (``FINISHED``, ``FAILED`` or ``KILLED``, as in MLflow)."""
    run = active_run()
    if run is not None:
        _default["last"] = run
        run.end(str(status).lower())


def get_run(run_id: str) -> RunView:
    """A recorded run in MLflow's shape. Raises NodeNotFoundError for an unknown id."""
    lg = get_lineage()
    return run_view(lg, resolve_run(lg, run_id))


def get_parent_run(run_id: str) -> RunView | None:
    """The parent of a nested run, or None."""
    lg = get_lineage()
    parent = resolve_run(lg, run_id).attrs.get("parent_run")
    return run_view(lg, resolve_run(lg, parent)) if parent else None


def delete_run(run_id: str) -> None:
    """Mark a run deleted, as MLflow's ``delete_run`` does: it leaves ``search_runs``
    (unless ``run_view_type`` asks for deleted runs) and reads ``lifecycle_stage
    "deleted"``; `restore_run` brings it back. Records are append-only: the run stays
    in the graph, and who deleted it and when is a ledger event (a tag, `LIFECYCLE_TAG`).
    Raises NodeNotFoundError for an unknown run."""
    set_lifecycle(get_lineage(), run_id, "deleted")


def restore_run(run_id: str) -> None:
    """Undo `delete_run`. Raises WriteRefusedError for a run that is not deleted, as MLflow does."""
    set_lifecycle(get_lineage(), run_id, "active")


def set_lifecycle(lg: Lineage, run_id: str, stage: str) -> None:
    """Mark a run of ``lg`` ``deleted`` or ``active`` (`delete_run`, `restore_run`)."""
    from .client import live_run

    node = resolve_run(lg, run_id)
    if stage == "active" and run_view(lg, node).info.lifecycle_stage != "deleted":
        raise WriteRefusedError(f"run {run_hex(node.id)} is not deleted: nothing to restore")
    live_run(lg, node.id).set_tag(LIFECYCLE_TAG, stage)


def search_runs(experiment_ids: Sequence[str] | None = None, filter_string: str = "", run_view_type: Any = None,
                max_results: int = 100000, order_by: Sequence[str] | None = None, output_format: str = "pandas",
                search_all_experiments: bool = False, experiment_names: Sequence[str] | None = None) -> Any:
    """Runs matching MLflow's filter syntax, as a pandas DataFrame with MLflow's columns
    (``run_id``, ``experiment_id``, ``status``, ``start_time``, ``metrics.rmse``,
    ``params.alpha``, ``tags.x``, …) or, with ``output_format="list"`` or without
    pandas, a list of runs.

    Raises FilterSyntaxError (naming the position) for a malformed filter,
    NodeNotFoundError for an unknown experiment id or name."""
    from . import mlflow_filter

    lg = get_lineage()
    return search_runs_on(lg, experiment_ids, filter_string, max_results, order_by, output_format,
                          search_all_experiments, experiment_names, current=_current_experiment(), module=mlflow_filter,
                          view_type=run_view_type)


def search_runs_on(lg: Lineage, experiment_ids: Sequence[str] | None, filter_string: str | None, max_results: int | None,
                   order_by: Sequence[str] | None, output_format: str, search_all: bool,
                   experiment_names: Sequence[str] | None, *, current: str | None, module: Any,
                   view_type: Any = None) -> Any:
    """`search_runs` on ``lg``: the runs of the experiments matching MLflow's filter and
    ``view_type`` (`in_view`), ordered and cut, as a DataFrame or a list (``output_format``)."""
    if output_format not in ("pandas", "list"):
        raise InvalidInputError(f"output_format must be 'pandas' or 'list', got {output_format!r}")
    clauses = module.parse(filter_string)
    order = module.parse_order(order_by)
    if isinstance(experiment_ids, (str, int)):
        experiment_ids = [str(experiment_ids)]
    names: list[str] | None = None
    if experiment_ids or experiment_names:
        names = [experiment_name_for_id(lg, i) for i in experiment_ids or ()]
        # (a name no experiment has is passed over, as MLflow does: none known, no runs)
        known = known_experiments(lg) if experiment_names else ()
        names += [stored for stored in (stored_name(str(n)) for n in experiment_names or ()) if stored in known]
    elif not search_all:
        names = [current or "default"]
    where = module.to_where(clauses)
    if names is not None:
        exp = "(" + " or ".join("experiment = '" + n.replace("'", "''") + "'" for n in names) + ")"
        where = f"{exp} and ({where})" if where else exp
    nodes = lg.runs(where=where) if names != [] else []
    views = [v for v in (run_view(lg, n) for n in nodes) if in_view(v, view_type) and module.matches(v, clauses)]
    views = module.sort_views(views, order)
    if max_results is not None:
        views = views[: int(max_results)]
    if output_format == "list":
        return views
    try:
        import pandas as pd
    except ImportError:
        return views
    return _frame(pd, views)


def _frame(pd: Any, views: list[RunView]) -> Any:
    import numpy as np

    base = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    metric_keys = sorted({k for v in views for k in v.data.metrics})
    param_keys = sorted({k for v in views for k in v.data.params})
    tag_keys = sorted({k for v in views for k in v.data.tags})
    rows = []
    for v in views:
        row: dict[str, Any] = {"run_id": v.info.run_id, "experiment_id": v.info.experiment_id, "status": v.info.status,
                               "artifact_uri": v.info.artifact_uri, "start_time": v.info.start_time,
                               "end_time": v.info.end_time}
        row.update({f"metrics.{k}": v.data.metrics.get(k, np.nan) for k in metric_keys})
        row.update({f"params.{k}": v.data.params.get(k) for k in param_keys})
        row.update({f"tags.{k}": v.data.tags.get(k) for k in tag_keys})
        rows.append(row)
    columns = base + [f"metrics.{k}" for k in metric_keys] + [f"params.{k}" for k in param_keys] + [f"tags.{k}" for k in tag_keys]
    df = pd.DataFrame(rows, columns=columns)
    for col in ("start_time", "end_time"):
        df[col] = pd.to_datetime(df[col], unit="ms", utc=True)
    return df


def _run() -> Run:
    """The active run, started on demand as MLflow does."""
    return active_run() or start_run()


def _run_for(run_id: str | Run | None) -> Run:
    """The live run ``run_id`` names (or the active one; a `Run` is itself: the
    client's calls hand over the run of their own store)."""
    if isinstance(run_id, Run):
        return run_id
    if run_id is None:
        return _run()
    from .client import live_run

    return live_run(get_lineage(), run_id)


# ---------------------------------------------------------------------------
# params, metrics, tags


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Record a parameter on the active run (started if none is); returns ``value``,
    or with ``synchronous=False`` (or ``MLFLOW_ENABLE_ASYNC_LOGGING=true``) a
    `RunOperations` whose ``wait()`` reports the write. Params are immutable: logging
    a different value for a key is refused."""
    run = _run()
    if not wanted_async(synchronous):  # (written now: `perform` without its closure, issue 16)
        run.log_param(key, value)
        return value
    return run.queue(lambda: run.log_param(key, value))


def log_params(params: Mapping[str, Any], synchronous: bool | None = None,
               run_id: str | None = None) -> RunOperations | None:
    """Record several parameters on the active run, in one ledger event."""
    run = _run_for(run_id)
    copy = dict(params)  # (queued, the caller may change its dict before the write)
    return run.perform(lambda: run.log_params(copy), synchronous)


def _timestamp(ts: Any) -> str | None:
    return None if ts is None else from_ms(ts)


def log_metric(key: str, value: float, step: int | None = None, synchronous: bool | None = None,
               timestamp: int | None = None, run_id: str | None = None, model_id: str | None = None, *,
               dataset: Any = None, group: str | None = None, **_: Any) -> RunOperations | None:
    """Record a metric on the active run; ``step`` keeps a history (`metric_history`),
    ``timestamp`` is MLflow's milliseconds; ``dataset`` records that the run used it
    for evaluation, ``group`` marks a per-group result (``"age>60"``)."""
    run = _run_for(run_id)
    data, at = _dataset_data(dataset), _timestamp(timestamp)
    # (a queued metric with a dataset is written at once: the dataset is hashed
    # before its write transaction begins, never inside the writer's batch, which
    # would hold the store's lock for the whole hash)
    return run.perform(lambda: run.log_metric(key, value, step, dataset=data, group=group, timestamp=at),
                       synchronous, at_once=data is not None)


def log_metrics(metrics: Mapping[str, float], step: int | None = None, synchronous: bool | None = None,
                run_id: str | None = None, timestamp: int | None = None, model_id: str | None = None, *,
                dataset: Any = None, **_: Any) -> RunOperations | None:
    """Record several metrics on the active run (one transaction)."""
    run = _run_for(run_id)
    at = _timestamp(timestamp)
    data = _dataset_data(dataset)
    values = dict(metrics)

    def write() -> None:
        with run.batch():
            for k, v in values.items():
                run.log_metric(k, v, step, dataset=data, timestamp=at)

    return run.perform(write, synchronous, at_once=data is not None)  # (as in `log_metric`)


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> RunOperations | None:
    """Set a tag on the active run (tags may change; every change is kept in the ledger)."""
    run = _run()
    return run.perform(lambda: run.set_tag(key, value), synchronous)


def set_tags(tags: Mapping[str, Any], synchronous: bool | None = None) -> RunOperations | None:
    """Set several tags on the active run."""
    run = _run()
    copy = dict(tags)
    return run.perform(lambda: run.set_tags(copy), synchronous)


def delete_tag(key: str) -> None:
    """Refused: a tag's history is kept; set it to another value instead."""
    raise WriteRefusedError("lineage's records are append-only: set the tag to another value instead of deleting it")


# ---------------------------------------------------------------------------
# inputs, outputs, artifacts, models


def _dataset_data(dataset: Any) -> Any:
    if dataset is None:  # (most metrics: no import statement run per logged value)
        return None
    from .data import Dataset

    return dataset.data if isinstance(dataset, Dataset) else dataset


def log_input(dataset: Any, context: str | None = None, tags: Mapping[str, Any] | None = None, model: Any = None, *,
              role: str | None = None, name: str | None = None) -> Node:
    """Record that the active run read ``dataset`` (a `lineage.data` dataset, a path, an
    array, a DataFrame or a recorded node); MLflow's ``context`` (``training``,
    ``validation``, ``testing``, ``evaluation`` or any word) is kept as its role."""
    from .data import Dataset

    run = _run()
    use = role or context or "training"
    dropped = sorted(str(k) for k in (tags or {}) if k != "mlflow.data.context")
    if dropped:  # (said, not silently lost: the context is the one tag an input keeps, as its role)
        log.warning("lineage keeps a dataset input's context, not its tags: %s not recorded", ", ".join(dropped))
    if isinstance(dataset, Dataset):
        with run.batch():
            node = run.log_input(dataset.data, role=use, name=name or dataset.name, source=dataset.source)
            if dataset.target_data is not None:
                run.log_input(dataset.target_data, role=use, name=f"{name or dataset.name}.targets")
            return node
    if dataset is None:
        raise InvalidInputError("log_input needs a dataset")
    return run.log_input(dataset, role=use, name=name)


def log_inputs(datasets: Sequence[Any] | None = None, contexts: Sequence[str | None] | None = None,
               tags_list: Sequence[Any] | None = None, models: Any = None) -> None:
    """Record several inputs of the active run, each with its context."""
    datasets = list(datasets or [])
    contexts = list(contexts or [None] * len(datasets))
    if len(contexts) != len(datasets):
        raise InvalidInputError("datasets and contexts must have the same length")
    with _run().batch():
        for d, c in zip(datasets, contexts):
            log_input(d, c)


def log_output(data: Any, *, name: str | None = None) -> Node:
    """Record a dataset the active run wrote; returns its node."""
    return _run().log_output(data, name=name)


def log_model(model: Any, name: str | None = None, artifact_path: str | None = None, *, signature: Any = None,
              input_example: Any = None, registered_model_name: str | None = None, evaluation: Any = None,
              target: str | None = None, attrs: Mapping[str, Any] | None = None, **kwargs: Any) -> ModelInfo:
    """Log a fitted model to the active run (``name`` or MLflow's ``artifact_path``,
    default ``model``); ``signature`` and ``input_example`` are recorded with it;
    ``registered_model_name`` names the model, so ``NAME@N`` is its N-th version;
    ``evaluation=`` / ``target=`` compute permutation importance (see `Run.log_model`);
    ``attrs``: facts to record beside (a custom model's own class).
    Returns the model's node as MLflow's `entities.ModelInfo` (``.model_uri``)."""
    from .models import signature_attrs

    path = name or artifact_path or "model"
    attrs = {**(attrs or {}), "artifact_path": path, **signature_attrs(signature, input_example)}
    run = _run()
    node = run.log_model(model, registered_model_name or path, attrs=attrs, evaluation=evaluation, target=target)
    version = (version_number(get_lineage().history(registered_model_name, kind="model"), node.id)
               if registered_model_name else None)
    _default["last_model"] = node.id
    return model_info(node, run_hex(run.id), version, path)


def set_logged_model_tags(model_id: str, tags: Mapping[str, Any]) -> None:
    """Tag a logged model (MLflow 3): the latest value of a key wins; every change is
    kept in the ledger (`Lineage.set_model_tags`)."""
    from .models import resolve_model_uri

    lg = get_lineage()
    lg.set_model_tags(resolve_model_uri(lg, model_id), tags)


def delete_logged_model_tag(model_id: str, key: str) -> None:
    """Refused, as `delete_tag` is for a run: a model's tags keep their history (set
    the tag to another value). Raises NodeNotFoundError for an unknown model first."""
    from .models import resolve_model_uri

    lg = get_lineage()
    node = resolve_model_uri(lg, model_id)
    if key not in lg.model_tags(node):
        raise InvalidInputError(f"model {node.id} has no tag {key!r}")
    raise WriteRefusedError("lineage's records are append-only: set the model's tag to another value instead of "
                            "deleting it")


def get_logged_model(model_id: str) -> LoggedModel:
    """A logged model (by its id, ``models:/<id>`` or ``runs:/<run_id>/<path>``) in
    MLflow 3's shape, with its tags. Raises NodeNotFoundError for an unknown model."""
    return logged_model(get_lineage(), model_id)


def last_logged_model() -> LoggedModel | None:
    """The model this process logged last with `log_model` (None before any)."""
    last = _default["last_model"]
    return None if last is None else logged_model(get_lineage(), last)


#: what a logged model's filter and order compare besides its params and tags (MLflow 3's names)
_MODEL_ATTRIBUTES = frozenset({"name", "model_id", "source_run_id", "status", "experiment_id", "creation_time",
                               "creation_timestamp", "last_updated_timestamp"})


def _model_value(m: LoggedModel, entity: str, key: str) -> Any:
    if entity == "params":
        return m.params.get(key)
    if entity == "tags":
        return m.tags.get(key)
    k = key.lower()
    return m.creation_timestamp if k in ("creation_time", "last_updated_timestamp") else getattr(m, k, None)


def search_logged_models(experiment_ids: Sequence[str] | None = None, filter_string: str | None = None,
                         datasets: Sequence[Mapping[str, str]] | None = None, max_results: int | None = None,
                         order_by: Sequence[Mapping[str, Any]] | None = None, output_format: str = "pandas") -> Any:
    """The logged models of ``experiment_ids`` (default: the current experiment) that
    match ``filter_string`` (MLflow 3's syntax on ``name``, ``model_id``,
    ``source_run_id``, ``status``, ``creation_time``, ``params.X`` and ``tags.X``),
    newest first unless ``order_by`` (``[{"field_name": "name", "ascending": True}]``)
    says otherwise; a pandas DataFrame (one row a model: ``model_id``,
    ``experiment_id``, ``name``, ``source_run_id``, ``status``, ``creation_timestamp``,
    ``tags``, ``params``) or, with ``output_format="list"``, `LoggedModel` objects.

    Raises FilterSyntaxError for a malformed filter; UnsupportedError for a filter
    or order on ``metrics.`` and for ``datasets``: lineage does not tie a metric to a
    logged model (`log_metric`'s ``model_id`` is not kept); InvalidInputError for
    another output format."""
    if output_format not in ("pandas", "list"):
        raise InvalidInputError(f"output_format must be 'pandas' or 'list', got {output_format!r}")
    lg = get_lineage()
    found = search_logged_models_on(lg, experiment_ids or [experiment_id_of(_current_experiment())], filter_string,
                                    datasets, order_by)
    if max_results is not None:
        found = found[:max_results]
    if output_format == "list":
        return found
    import pandas as pd

    columns = ["model_id", "experiment_id", "name", "source_run_id", "status", "creation_timestamp",
               "last_updated_timestamp", "tags", "params"]
    return pd.DataFrame([{c: getattr(m, c) for c in columns} for m in found], columns=columns)


def search_logged_models_on(lg: Lineage, experiment_ids: Sequence[str], filter_string: str | None,
                            datasets: Sequence[Mapping[str, str]] | None,
                            order_by: Sequence[Mapping[str, Any]] | None) -> list[LoggedModel]:
    """`search_logged_models` in ``lg`` (a client's own store, not the fluent API's),
    every match, as `LoggedModel` objects."""
    from . import mlflow_filter
    from .errors import UnsupportedError

    clauses = mlflow_filter.parse(filter_string, attributes=_MODEL_ATTRIBUTES)
    order = [(str(o.get("field_name", "")), bool(o.get("ascending", True))) for o in order_by or []]
    if datasets or any(c.entity in ("metrics", "datasets") for c in clauses) or any(
            f.startswith("metrics.") for f, _ in order):
        raise UnsupportedError("search_logged_models on metrics or datasets",
                               "lineage does not tie metrics to logged models; search_runs filters runs on them")
    fields = []
    for name, ascending in order:
        entity, _, key = name.partition(".") if name.startswith(("params.", "tags.")) else ("attributes", "", name)
        if entity == "attributes" and key.lower() not in _MODEL_ATTRIBUTES:
            raise InvalidInputError(f"order_by: unknown field {name!r}; use {', '.join(sorted(_MODEL_ATTRIBUTES))}, "
                                    "params.NAME or tags.NAME")
        fields.append((entity, key, not ascending))
    names = {experiment_name_for_id(lg, e) for e in experiment_ids}
    wanted = {experiment_id_of(n) for n in names}
    # (the models its runs generated: a model is listed under its newest run's
    # experiment, which `logged_model` finds, so those of another experiment drop out)
    models = [logged_model(lg, n) for n in lg.experiment_models(sorted(names))]
    found = [m for m in models if m.experiment_id in wanted and all(
        mlflow_filter.compare(_model_value(m, c.entity, c.key), c.op, c.value) for c in clauses)]
    found.sort(key=lambda m: (m.creation_timestamp or 0, m.model_id), reverse=True)
    found = mlflow_filter.sort_by_fields(found, fields, _model_value)  # (missing values last)
    return found


def register_model(model_uri: Any, name: str, await_registration_for: int = 300, *,
                   tags: Mapping[str, Any] | None = None) -> ModelVersion:
    """Register the model at ``model_uri`` (``runs:/<run_id>/model``, ``models:/…`` or a
    lineage reference) as the next version of ``name`` (MLflow's ``register_model``);
    returns its `registry.ModelVersion`. ``NAME@N`` then names it."""
    from .client import MlflowClient

    return MlflowClient().create_model_version(name, model_uri, tags=tags)


#: a page size that is every item (MLflow's fluent searches page through them all)
_ALL = 2**62


def search_registered_models(max_results: int | None = None, filter_string: str | None = None,
                             order_by: Sequence[str] | None = None) -> list[Any]:
    """Registered models matching ``filter_string`` (on ``name``), every one unless
    ``max_results``; see `MlflowClient.search_registered_models`."""
    from .client import MlflowClient

    return list(MlflowClient().search_registered_models(filter_string, _ALL if max_results is None else max_results,
                                                        order_by))


def search_model_versions(max_results: int | None = None, filter_string: str | None = None,
                          order_by: Sequence[str] | None = None) -> list[ModelVersion]:
    """Model versions matching ``filter_string`` (on ``name`` and ``run_id``), every
    one unless ``max_results``; see `MlflowClient.search_model_versions`."""
    from .client import MlflowClient

    return list(MlflowClient().search_model_versions(filter_string, _ALL if max_results is None else max_results,
                                                     order_by))


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None) -> Node:
    """Keep a copy of a file the active run wrote (plot, report) under
    ``artifact_path/<file name>``; returns its node."""
    p = Path(local_path)
    name = f"{artifact_path.strip('/')}/{p.name}" if artifact_path else p.name
    return _run_for(run_id).log_artifact(p, name)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None,
                  run_id: str | Run | None = None) -> list[Node]:
    """Keep a copy of every file under a folder, paths kept relative to it."""
    root = Path(local_dir)
    if not root.is_dir():
        raise InvalidInputError(f"no such folder: {local_dir}")
    run = _run_for(run_id)
    out = []
    with run.batch():
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = f.relative_to(root).as_posix()
            out.append(run.log_artifact(f, f"{artifact_path.strip('/')}/{rel}" if artifact_path else rel))
    return out


def _log_bytes(data: bytes, artifact_file: str, run_id: str | Run | None = None) -> Node:
    """``data`` kept as the artifact ``artifact_file`` of the run (`Run.log_bytes`,
    which refuses a name that is not a file's)."""
    return _run_for(run_id).log_bytes(data, artifact_file)


def log_text(text: str, artifact_file: str, run_id: str | Run | None = None) -> Node:
    """Keep a text as an artifact of the active run."""
    return _log_bytes(str(text).encode("utf-8"), artifact_file, run_id)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | Run | None = None) -> Node:
    """Keep a dict as a JSON (or YAML, by the file's suffix) artifact of the active run."""
    if artifact_file.endswith((".yaml", ".yml")):
        import yaml

        text = yaml.safe_dump(dictionary, sort_keys=False)
    else:
        import json

        text = json.dumps(dictionary, indent=2, default=str)
    return _log_bytes(text.encode("utf-8"), artifact_file, run_id)


def log_figure(figure: Any, artifact_file: str, *, save_kwargs: Mapping[str, Any] | None = None,
               run_id: str | Run | None = None) -> Node:
    """Keep a matplotlib (or plotly) figure as an image artifact of the active run."""
    import io

    buf = io.BytesIO()
    if hasattr(figure, "savefig"):
        figure.savefig(buf, format=Path(artifact_file).suffix.lstrip(".") or "png", **dict(save_kwargs or {}))
        data = buf.getvalue()
    elif hasattr(figure, "to_html"):
        data = figure.to_html().encode("utf-8")
    else:
        raise InvalidInputError(f"log_figure needs a matplotlib or plotly figure, got {type(figure).__name__}")
    return _log_bytes(data, artifact_file, run_id)


def log_image(image: Any, artifact_file: str | None = None, key: str | None = None, step: int | None = None,
              run_id: str | Run | None = None, **_: Any) -> Node:
    """Keep an image (a numpy array or PIL image) as a PNG artifact of the active run."""
    import io

    import matplotlib.image

    buf = io.BytesIO()
    if hasattr(image, "save"):
        image.save(buf, format="PNG")
    else:
        matplotlib.image.imsave(buf, image, format="png")
    return _log_bytes(buf.getvalue(), artifact_file or f"images/{key or 'image'}_{step or 0}.png", run_id)


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> Node:
    """Keep a table (a dict of columns or a DataFrame) as a JSON artifact, in MLflow's
    ``{"columns": [...], "data": [[...]]}`` layout."""
    import json

    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        table = {"columns": [str(c) for c in data.columns], "data": data.astype(object).values.tolist()}
    elif isinstance(data, Mapping):
        cols = [str(c) for c in data]
        values = [list(v) for v in data.values()]
        if len({len(v) for v in values}) > 1:
            raise InvalidInputError("every column of a table needs the same number of values")
        table = {"columns": cols, "data": [list(r) for r in zip(*values)]}
    else:
        raise InvalidInputError(f"log_table needs a dict of columns or a DataFrame, got {type(data).__name__}")
    earlier = _logged_table(_run_for(run_id), artifact_file.strip("/"))
    if earlier is not None:  # as MLflow: a table logged again at its path gets the new rows appended
        columns = list(dict.fromkeys([*earlier["columns"], *table["columns"]]))
        rows = [dict(zip(t["columns"], r)) for t in (earlier, table) for r in t["data"]]
        table = {"columns": columns, "data": [[r.get(c) for c in columns] for r in rows]}
    return _log_bytes(json.dumps(table, default=str).encode("utf-8"), artifact_file, run_id)


def _logged_table(run: Run, path: str) -> dict[str, Any] | None:
    """The table ``run`` last logged at ``path`` (MLflow's layout), or None."""
    lg = get_lineage()
    found = run_artifacts(lg, run.id).get(path)
    return None if found is None else _table_file(lg, found)


def _table_file(lg: Lineage, found: Node) -> dict[str, Any] | None:
    """The table in a logged artifact (MLflow's layout), or None for another file."""
    import json

    try:
        table = json.loads(Path(lg.artifact_file(found)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(table, dict) and isinstance(table.get("columns"), list) and isinstance(table.get("data"), list)
    return table if ok else None


def load_table(artifact_file: str, run_ids: Sequence[str] | None = None,
               extra_columns: Sequence[str] | None = None) -> Any:
    """The tables `log_table` wrote at ``artifact_file`` in ``run_ids`` (default: every
    run of the current experiment that logged one), as one pandas DataFrame, in run
    order; ``extra_columns`` adds a run column of `search_runs` (``run_id``,
    ``status``, …) to each row (``NAME_`` when the table has a column ``NAME``).

    Raises NodeNotFoundError when a run named has no table there, or no run has;
    InvalidInputError for an unknown extra column."""
    import pandas as pd

    from .errors import NodeNotFoundError

    path = str(artifact_file).strip("/")
    lg = get_lineage()
    if run_ids:
        frames = search_runs(search_all_experiments=True, output_format="pandas",
                             filter_string="attributes.run_id IN ({})".format(", ".join(f"'{r}'" for r in run_ids)))
        missing = sorted(set(run_ids) - set(frames["run_id"]))
        if missing:
            raise NodeNotFoundError(missing[0], "no run has that id")
    else:
        frames = search_runs(output_format="pandas")
    unknown = [c for c in extra_columns or [] if c not in frames.columns]
    if unknown:
        raise InvalidInputError(f"load_table: extra column(s) {', '.join(map(repr, unknown))} are not run columns "
                                f"(e.g. run_id, experiment_id, status, start_time, tags.NAME)")
    tables = []
    for _, row in frames.iloc[::-1].iterrows():  # (search_runs lists the newest first)
        found = run_artifacts(lg, f"run:{row['run_id']}").get(path)
        table = _table_file(lg, found) if found is not None else None
        if table is None:
            if run_ids:
                raise NodeNotFoundError(path, f"run {row['run_id']} logged no table there")
            continue
        frame = pd.DataFrame(table["data"], columns=table["columns"])
        for column in extra_columns or []:
            frame[f"{column}_" if column in frame.columns else column] = row[column]
        tables.append(frame)
    if not tables:
        raise NodeNotFoundError(path, "no run of the current experiment logged a table there")
    return pd.concat(tables, ignore_index=True)


def log_dataset(data: Any = None, *, name: str | None = None, uri: str | None = None, digest: str | None = None) -> Node:
    """Record a dataset version in the default store; see `Lineage.log_dataset`."""
    return get_lineage().log_dataset(data, name=name, uri=uri, digest=digest)


def log_predictions(model: Any, inputs: Any, outputs: Any, *, request_ids: Any = None, scores: Any = None) -> list[str]:
    """Record predictions in bulk in the default store; returns their ids."""
    return get_lineage().log_predictions(model, inputs, outputs, request_ids=request_ids, scores=scores)


def flush_async_logging() -> None:
    """Wait until what is written in the background is written: the calls made with
    ``synchronous=False`` and the predictions autolog records."""
    from . import autologging

    drain_all()
    autologging.flush()


def autolog(disable: bool = False, log_predictions: bool = False, **kwargs: Any) -> None:
    """Record every scikit-learn ``fit`` (MLflow's ``autolog``); see `lineage.autolog`."""
    from . import autologging as _autolog

    _autolog.autolog(disable=disable, log_predictions=log_predictions, **kwargs)


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
        except Exception:  # boundary 2 of 5: the interpreter is exiting; one run's failure must not keep the others open
            logging.getLogger("lineage").debug("could not end run %s at exit", getattr(run, "id", "?"), exc_info=True)
