"""``MlflowClient``: MLflow's low-level client over a lineage store.

    from lineage import MlflowClient
    client = MlflowClient()
    exp = client.create_experiment("wine")
    run = client.create_run(exp)
    client.log_param(run.info.run_id, "alpha", 0.5)
    client.log_metric(run.info.run_id, "rmse", 0.7, step=1)
    client.set_terminated(run.info.run_id)

Runs are addressed by MLflow's run id (``run.info.run_id``, the 32 hex digits of the
lineage id). Registered model versions are lineage's model versions (``NAME@N``);
an alias is a promotion label (``NAME@LABEL``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .api import Lineage
from .entities import (
    ActiveRun,
    Experiment,
    FileInfo,
    Metric,
    RunView,
    experiment_name_for_id,
    metric_value,
    resolve_run,
    run_artifacts,
    run_hex,
    run_view,
    stored_name,
    to_ms,
)
from .errors import NodeNotFoundError, WriteRefusedError
from .model import Node
from .registry import ModelRegistry
from .store.asyncwrite import RunOperations
from .tracking import NO_LOCK, Run

_live: dict[str, Run] = {}  # runs created by a client in this process, by lineage id
_live_lock = threading.Lock()


def live_run(lg: Lineage, run_id: Any) -> Run:
    """A `Run` to log to: the live one of this process when there is one (the active
    fluent run, a client's run), else a handle that appends to the recorded run (MLflow
    lets code log to a run after it ended; each value is its own ledger event).

    Raises NodeNotFoundError for an unknown run id."""
    from . import fluent

    node = resolve_run(lg, run_id)
    for run in fluent.run_stack().runs:
        if run.id == node.id:
            return run
    with _live_lock:
        if node.id in _live and not _live[node.id]._ended:
            return _live[node.id]
    return lg.run_handle(node)


class MlflowClient(ModelRegistry):
    """MLflow's ``MlflowClient`` on a lineage store (``tracking_uri``: a path,
    ``sqlite:///x.db`` or ``lineage:///DIR``; default: the fluent API's store); the
    model registry's calls are `registry.ModelRegistry`'s."""

    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        from . import fluent

        if tracking_uri is None:
            self._lg = fluent.get_lineage()
        else:
            from .api import open as _open

            self._lg = _open(fluent.store_path(tracking_uri))
        self.tracking_uri = tracking_uri or fluent.get_tracking_uri()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        from .entities import unsupported

        raise unsupported(f"MlflowClient.{name}")

    # -- experiments -----------------------------------------------------------

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: Mapping[str, Any] | None = None) -> str:
        """Create an experiment; returns its id. Raises WriteRefusedError when it exists."""
        from . import fluent

        return fluent.create_experiment_on(self._lg, name, tags)  # (in this client's store)

    def get_experiment(self, experiment_id: str) -> Experiment:
        from .entities import experiment_view

        return experiment_view(self._lg, experiment_name_for_id(self._lg, experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        from .entities import experiment_view, known_experiments

        stored = stored_name(str(name))
        info = known_experiments(self._lg).get(stored)
        return experiment_view(self._lg, stored, info) if info is not None else None

    def search_experiments(self, view_type: Any = None, max_results: int | None = None, filter_string: str | None = None,
                           order_by: Sequence[str] | None = None, page_token: Any = None) -> list[Experiment]:
        """Experiments in MLflow's order and filters (`lineage.search_experiments`), paged."""
        from . import fluent
        from .entities import paged

        return paged(fluent.search_experiments_on(self._lg, None, filter_string, order_by), max_results, page_token)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        """Set a tag on an experiment; every change is kept in the ledger. Raises
        NodeNotFoundError for an unknown id."""
        self._lg.set_experiment_tags(experiment_name_for_id(self._lg, experiment_id), {key: value})

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Refused: a tag's history is kept; set it to another value instead."""
        raise WriteRefusedError("lineage's records are append-only: set the experiment tag to another value "
                                "instead of deleting it")

    def delete_experiment(self, experiment_id: str) -> None:
        """Refused: records are append-only."""
        raise WriteRefusedError("lineage's records are append-only: experiments are not deleted")

    # -- runs ------------------------------------------------------------------

    def create_run(self, experiment_id: str, start_time: int | None = None, tags: Mapping[str, Any] | None = None,
                   run_name: str | None = None) -> RunView:
        """Start a run in an experiment (not the fluent API's active run); returns its view.
        Raises NodeNotFoundError for an unknown experiment id."""
        experiment = experiment_name_for_id(self._lg, experiment_id)
        user_tags = dict(tags or {})
        run_name = run_name or user_tags.pop("mlflow.runName", None)
        parent = user_tags.pop("mlflow.parentRunId", None)
        parent_id = resolve_run(self._lg, parent).id if parent else None
        run = self._lg.open_run(ActiveRun, run_name, tags=user_tags or None, experiment=experiment, parent=parent_id)
        run.lineage = self._lg  # its MLflow view reads through the facade
        with _live_lock:
            _live[run.id] = run
        return run_view(self._lg, run.node)

    def get_run(self, run_id: str) -> RunView:
        """A run in MLflow's shape. Raises NodeNotFoundError for an unknown id."""
        return run_view(self._lg, resolve_run(self._lg, run_id))

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> None:
        """End a run (``FINISHED`` unless said otherwise)."""
        node = resolve_run(self._lg, run_id)
        with _live_lock:
            run = _live.pop(node.id, None)
        if run is None:
            run = live_run(self._lg, run_id)
            if run.__dict__.get("_lock") is NO_LOCK and node.attrs.get("status") != "running":
                raise WriteRefusedError(f"run {run_hex(node.id)} has already ended")
        run.end((status or "FINISHED").lower())

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        """Rename a run (the ``mlflow.runName`` tag, as MLflow keeps a run's name: a
        ledger event; the run's node keeps the name it started with) and/or end it."""
        if name is not None:
            self.set_tag(run_id, "mlflow.runName", name)
        if status and status.upper() != "RUNNING":
            self.set_terminated(run_id, status)

    def delete_run(self, run_id: str) -> None:
        """Mark a run deleted (see `fluent.delete_run`: the record stays)."""
        from . import fluent

        fluent.set_lifecycle(self._lg, run_id, "deleted")

    def restore_run(self, run_id: str) -> None:
        """Undo `delete_run`."""
        from . import fluent

        fluent.set_lifecycle(self._lg, run_id, "active")

    def search_runs(self, experiment_ids: Sequence[str] | str, filter_string: str = "", run_view_type: Any = None,
                    max_results: int = 1000, order_by: Sequence[str] | None = None, page_token: Any = None) -> list[RunView]:
        """Runs of the experiments matching MLflow's filter syntax: a page of
        ``max_results``, with ``.token`` for the next (MLflow's ``PagedList``)."""
        from . import fluent, mlflow_filter
        from .entities import paged

        found = fluent.search_runs_on(self._lg, [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids),
                                      filter_string, None, order_by, "list", False, None, current=None,
                                      module=mlflow_filter, view_type=run_view_type)
        return paged(found, max_results, page_token)

    def search_logged_models(self, experiment_ids: Sequence[str] | str, filter_string: str | None = None,
                             datasets: Sequence[Mapping[str, str]] | None = None, max_results: int | None = None,
                             order_by: Sequence[Mapping[str, Any]] | None = None, page_token: Any = None) -> Any:
        """The logged models of the experiments that match MLflow 3's filter
        (`lineage.search_logged_models`), a page of ``max_results`` with ``.token``
        for the next (MLflow's ``PagedList`` of ``LoggedModel``)."""
        from . import fluent
        from .entities import paged

        ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
        return paged(fluent.search_logged_models_on(self._lg, ids, filter_string, datasets, order_by), max_results,
                     page_token)

    # -- params, metrics, tags -------------------------------------------------------

    # (``synchronous=False``, or MLFLOW_ENABLE_ASYNC_LOGGING=true: queued, a RunOperations
    # returned, as MLflow's client does; see `Run.perform`)

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        run = live_run(self._lg, run_id)
        queued = run.perform(lambda: run.log_param(key, value), synchronous)
        return value if queued is None else queued

    def log_metric(self, run_id: str, key: str, value: float, timestamp: int | None = None, step: int | None = None,
                   synchronous: bool | None = None, dataset_name: str | None = None, dataset_digest: str | None = None,
                   model_id: str | None = None) -> RunOperations | None:
        from .entities import from_ms

        run = live_run(self._lg, run_id)
        at = from_ms(timestamp) if timestamp is not None else None  # (0 is 1970, as in MLflow, not "now")
        return run.perform(lambda: run.log_metric(key, value, step, timestamp=at), synchronous)

    def log_batch(self, run_id: str, metrics: Sequence[Any] = (), params: Sequence[Any] = (), tags: Sequence[Any] = (),
                  synchronous: bool | None = None) -> RunOperations | None:
        """Params, metrics and tags in one transaction (MLflow's entities or ``(key, value)`` pairs)."""
        from .entities import from_ms

        run = live_run(self._lg, run_id)
        params_ = {_key(p): _value(p) for p in params}
        tags_ = {_key(t): _value(t) for t in tags}
        points = [(_key(m), _value(m), getattr(m, "step", None), getattr(m, "timestamp", None)) for m in metrics]

        def write() -> None:
            with self._lg.batch():
                if params_:
                    run.log_params(params_)
                if tags_:
                    run.set_tags(tags_)
                for key, value, step, ts in points:
                    run.log_metric(key, value, step, timestamp=from_ms(ts) if ts is not None else None)

        return run.perform(write, synchronous)

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> RunOperations | None:
        run = live_run(self._lg, run_id)
        return run.perform(lambda: run.set_tag(key, value), synchronous)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value of a metric in MLflow's order (``get_metric_history``: by time,
        then step, then value, a NaN as 0); lineage's own `Lineage.metric_history` is by step."""
        node = resolve_run(self._lg, run_id)
        try:
            points = self._lg.metric_history(node, key)
        except NodeNotFoundError:  # the run is known (above): it logged no such metric, and MLflow answers []
            return []
        out = [Metric(key, metric_value(p.value), to_ms(p.at), int(p.step)) for p in points if p.group is None]
        return sorted(out, key=lambda m: (m.timestamp, m.step, 0.0 if m.value != m.value else m.value))

    # -- inputs and artifacts --------------------------------------------------------

    def log_inputs(self, run_id: str, datasets: Sequence[Any] | None = None, models: Any = None) -> None:
        run = live_run(self._lg, run_id)
        from .data import Dataset

        for d in datasets or ():
            ds, context = (d, None) if isinstance(d, Dataset) else (getattr(d, "dataset", d), None)
            run.log_input(ds.data if isinstance(ds, Dataset) else ds, role=context or "training",
                          name=getattr(ds, "name", None))

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        p = Path(local_path)
        live_run(self._lg, run_id).log_artifact(p, f"{artifact_path.strip('/')}/{p.name}" if artifact_path else p.name)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        """Keep a copy of every file under a folder, paths kept relative to it."""
        from . import fluent

        fluent.log_artifacts(local_dir, artifact_path, run_id=live_run(self._lg, run_id))

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        from . import fluent

        fluent.log_text(text, artifact_file, run_id=live_run(self._lg, run_id))

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """A dict as a JSON (or, for a .yaml name, YAML) artifact of the run."""
        from . import fluent

        fluent.log_dict(dictionary, artifact_file, run_id=live_run(self._lg, run_id))

    def log_figure(self, run_id: str, figure: Any, artifact_file: str, *,
                   save_kwargs: Mapping[str, Any] | None = None) -> None:
        from . import fluent

        fluent.log_figure(figure, artifact_file, save_kwargs=save_kwargs, run_id=live_run(self._lg, run_id))

    def log_image(self, run_id: str, image: Any, artifact_file: str | None = None, key: str | None = None,
                  step: int | None = None, **_: Any) -> None:
        from . import fluent

        fluent.log_image(image, artifact_file, key=key, step=step, run_id=live_run(self._lg, run_id))

    def _artifacts(self, run_id: str) -> dict[str, Node]:
        return run_artifacts(self._lg, resolve_run(self._lg, run_id))

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The files (and folders) directly under ``path`` of a run's artifacts."""
        prefix = (path or "").strip("/")
        files: dict[str, FileInfo] = {}
        for name, n in self._artifacts(run_id).items():
            if prefix and not name.startswith(prefix + "/"):
                continue
            rest = name[len(prefix) + 1:] if prefix else name
            head, sep, _ = rest.partition("/")
            full = f"{prefix}/{head}" if prefix else head
            if sep:
                files.setdefault(full, FileInfo(full, True, None))
            else:
                files[full] = FileInfo(full, False, n.attrs.get("size"))
        return sorted(files.values(), key=lambda f: f.path)

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        """Copy a run's artifact (a file or a folder; all of them for an empty path) out
        of the store to ``dst_path`` (default: a new temporary folder, as MLflow's:
        never over a file of the working directory); returns the local path. Raises
        NodeNotFoundError when the run has no such artifact."""
        import shutil
        import tempfile

        want = path.strip("/")
        hits = [(name, n) for name, n in self._artifacts(run_id).items()
                if not want or name == want or name.startswith(want + "/")]  # (no path: all of them)
        if not hits:
            raise NodeNotFoundError(f"runs:/{run_hex(resolve_run(self._lg, run_id).id)}/{want}",
                                    "the run has no artifact at that path")
        dst = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="lineage-artifacts-"))
        for name, n in hits:
            target = dst / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._lg.artifact_file(n), target)
        return str(dst / want) if want else str(dst)


def _key(entity: Any) -> str:
    return str(entity[0] if isinstance(entity, (tuple, list)) else entity.key)


def _value(entity: Any) -> Any:
    return entity[1] if isinstance(entity, (tuple, list)) else entity.value
