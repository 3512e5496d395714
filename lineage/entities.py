"""MLflow-shaped views of what lineage records (``mlflow.entities``' names).

Code written for MLflow reads ``run.info.run_id``, ``run.data.metrics``,
``experiment.experiment_id``, ``model_version.version``; these classes give it that
shape over lineage's nodes. `ActiveRun` is still lineage's own `Run` (``run.id`` is
the lineage id), so a run object works with both APIs.

Conventions kept from MLflow 3: run ids are 32 hex digits (our run id without its
``run:`` kind), times are milliseconds since the epoch, statuses are ``RUNNING``,
``FINISHED``, ``FAILED`` (a crashed run reads ``FAILED``), ``KILLED``; experiment ids
are strings and the default experiment is ``"0"`` named ``Default``.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .errors import InvalidInputError, NodeNotFoundError, UnsupportedError, WriteRefusedError
from .model import Node
from .tracking import DEFAULT_EXPERIMENT, KILLED, LIFECYCLE_TAG, NOTE_TAG, Run

if TYPE_CHECKING:
    from .api import Lineage

#: lineage's run status -> MLflow's RunStatus name
STATUS = {"running": "RUNNING", "finished": "FINISHED", "failed": "FAILED", "crashed": "FAILED", "killed": "KILLED"}
DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"

# experiments created in this process that hold no run yet (a run records its
# experiment), by the store they were created in: another store does not have them
_created: dict[str, dict[str, dict[str, Any]]] = {}
_created_lock = threading.Lock()


def to_ms(iso: str | None) -> int | None:
    """Milliseconds since the epoch of an ISO-8601 time, or None."""
    if not iso:
        return None
    try:
        dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def from_ms(ms: Any) -> str | None:
    """The ISO-8601 UTC time of milliseconds since the epoch (MLflow's timestamps)."""
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError, OSError):
        raise InvalidInputError(f"timestamp must be milliseconds since the epoch, got {ms!r}") from None


def experiment_id_of(name: str | None) -> str:
    """The MLflow experiment id of an experiment name: ``"0"`` for the default one, else a
    stable number derived from the name (so every process agrees without a registry)."""
    if not name or name in (DEFAULT_EXPERIMENT, DEFAULT_EXPERIMENT_NAME):
        return DEFAULT_EXPERIMENT_ID
    return str(int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:15], 16))


def display_name(name: str | None) -> str:
    """MLflow's name of an experiment: ours is ``default``, MLflow's ``Default``."""
    return DEFAULT_EXPERIMENT_NAME if not name or name == DEFAULT_EXPERIMENT else name


def stored_name(name: str) -> str:
    """Our name of an experiment MLflow code names (``Default`` is ``default``)."""
    return DEFAULT_EXPERIMENT if name == DEFAULT_EXPERIMENT_NAME else name


def known_experiments(lg: Lineage) -> dict[str, dict[str, Any]]:
    """Every experiment by stored name (`Lineage.experiments`: those recorded and those
    that hold runs), with those noted in this process on a read-only store."""
    out: dict[str, dict[str, Any]] = {DEFAULT_EXPERIMENT: {"name": DEFAULT_EXPERIMENT, "runs": 0}}
    with _created_lock:
        for name, info in _created.get(str(lg.db_path), {}).items():
            out[name] = dict(info)
    for row in lg.experiments():
        out[row["name"]] = {**out.get(row["name"], {}), **row}
    return out


def experiment_name_for_id(lg: Lineage, experiment_id: Any) -> str:
    """The stored name of an experiment id (the name itself is accepted too).

    Raises NodeNotFoundError for an id no experiment has."""
    ident = str(experiment_id)
    known = known_experiments(lg)
    for name in known:
        if experiment_id_of(name) == ident or name == ident:
            return name
    if ident == DEFAULT_EXPERIMENT_NAME:
        return DEFAULT_EXPERIMENT
    raise NodeNotFoundError(f"experiment {ident}", "no experiment has that id; see lineage.search_experiments()")


def remember_experiment(lg: Lineage, name: str) -> None:
    """Make sure the experiment ``name`` exists (MLflow's ``set_experiment`` creates
    one that does not): recorded in the store, or on a read-only store noted for
    this process."""
    try:
        lg.create_experiment(name, exist_ok=True)
        return
    except WriteRefusedError:  # (a read-only store)
        pass
    with _created_lock:
        _created.setdefault(str(lg.db_path), {}).setdefault(name, {"name": name, "runs": 0, "tags": {}})


# ---------------------------------------------------------------------------
# value objects


@dataclass
class Experiment:
    """MLflow's ``Experiment``."""

    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = "active"
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int | None = None
    last_update_time: int | None = None


def experiment_view(lg: Lineage, name: str, info: Mapping[str, Any] | None = None) -> Experiment:
    """MLflow's view of the experiment ``name`` (``info``: its `known_experiments`
    entry, when the caller has it). Created: when it was recorded or its first run
    started, whichever came first; updated: the latest of its last run and tag."""
    if info is None:
        info = known_experiments(lg).get(name, {})
    times = [t for t in (info.get("created_at"), info.get("first_at")) if t]
    updated = [t for t in (info.get("updated_at"), info.get("last_at"), *times) if t]
    return Experiment(experiment_id_of(name), display_name(name), lg.artifacts_uri(),
                      tags=dict(info.get("tags") or {}), creation_time=to_ms(min(times)) if times else None,
                      last_update_time=to_ms(max(updated)) if updated else None)


@dataclass
class RunInfo:
    """MLflow's ``RunInfo``."""

    run_id: str
    run_name: str | None
    experiment_id: str
    user_id: str | None
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str = "active"

    @property
    def run_uuid(self) -> str:
        return self.run_id


@dataclass
class RunData:
    """MLflow's ``RunData``: params, the latest value of each metric, tags."""

    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


@dataclass
class InputTag:
    """A tag of a dataset input (MLflow's ``InputTag``)."""

    key: str
    value: str


class InputTags(list[InputTag]):
    """A dataset input's tags: MLflow's list of `InputTag` (``for t in di.tags:
    t.key``), also read by key (``di.tags["mlflow.data.context"]``, ``.get``)."""

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, str):
            found = self.get(item)
            if found is None:
                raise KeyError(item)
            return found
        return super().__getitem__(item)

    def get(self, key: str, default: Any = None) -> Any:
        return next((t.value for t in self if t.key == key), default)


@dataclass
class DatasetInput:
    """One dataset a run used: MLflow's ``DatasetInput`` in short (``.dataset.name``,
    ``.dataset.digest``, ``.dataset.source_type``, ``.tags`` with
    ``mlflow.data.context``)."""

    dataset: Any
    tags: InputTags


@dataclass
class RunInputs:
    dataset_inputs: list[DatasetInput]


@dataclass
class LoggedModelOutput:
    """A model a run logged (MLflow 3's ``LoggedModelOutput``); ``model_id`` is the
    lineage model id, which ``pyfunc.load_model`` and every reference take."""

    model_id: str
    step: int = 0


@dataclass
class RunOutputs:
    """What a run produced, in MLflow 3's shape: ``model_outputs``."""

    model_outputs: list[LoggedModelOutput] = field(default_factory=list)


@dataclass
class _DatasetView:
    name: str | None
    digest: str
    source: str | None
    id: str

    @property
    def source_type(self) -> str:
        """Where it came from, as MLflow names it: ``local`` for a file, else the
        URI's scheme (``s3``, ``http``, …)."""
        scheme, sep, _ = str(self.source or "").partition("://")
        return scheme if sep and scheme != "file" else "local"


@dataclass
class RunView:
    """A recorded run in MLflow's shape (what ``mlflow.get_run`` returns); ``.id`` is
    its lineage id."""

    info: RunInfo
    data: RunData
    inputs: RunInputs
    id: str
    outputs: RunOutputs = field(default_factory=RunOutputs)

    def to_dictionary(self) -> dict[str, Any]:
        return {"info": dict(vars(self.info)), "data": {"params": self.data.params, "metrics": self.data.metrics,
                                                         "tags": self.data.tags}}


@dataclass
class Metric:
    """One value of a metric (MLflow's ``Metric``); ``timestamp`` in milliseconds."""

    key: str
    value: float
    timestamp: int | None
    step: int


@dataclass
class Param:
    """A parameter (MLflow's ``Param``), as `MlflowClient.log_batch` takes it."""

    key: str
    value: str


@dataclass
class RunTag:
    """A tag (MLflow's ``RunTag``), as `MlflowClient.log_batch` takes it."""

    key: str
    value: str


class ViewType:
    """MLflow's ``ViewType`` for ``search_runs(run_view_type=…)`` (runs marked deleted
    with `delete_run` are left out of ``ACTIVE_ONLY``, the default) and
    ``search_experiments`` (no experiment is deleted: every view is every one)."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3


_VIEW_TYPES = {"ACTIVE_ONLY": ViewType.ACTIVE_ONLY, "DELETED_ONLY": ViewType.DELETED_ONLY, "ALL": ViewType.ALL}


def in_view(view: RunView, view_type: Any) -> bool:
    """Whether a run belongs in a ``search_runs`` of MLflow's ``run_view_type`` (a
    `ViewType` number or MLflow's own enum; None: active only, MLflow's default)."""
    wanted = _VIEW_TYPES.get(str(view_type).upper(), view_type) if view_type is not None else ViewType.ACTIVE_ONLY
    if wanted not in (ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL):
        raise InvalidInputError(f"run_view_type must be ViewType.ACTIVE_ONLY, DELETED_ONLY or ALL, got {view_type!r}")
    if wanted == ViewType.ALL:
        return True
    return (view.info.lifecycle_stage == "deleted") == (wanted == ViewType.DELETED_ONLY)


@dataclass
class FileInfo:
    """An artifact of a run (MLflow's ``FileInfo``)."""

    path: str
    is_dir: bool
    file_size: int | None


class ModelInfo(Node):
    """What ``log_model`` returns: the model's `Node`, usable wherever one is, with the
    fields of MLflow 3's ``ModelInfo`` that code reads. ``model_uri`` is
    ``runs:/<run_id>/<artifact_path>``, which ``pyfunc.load_model`` and
    ``sklearn.load_model`` take; ``registered_model_version`` is N of ``NAME@N`` when
    the model was logged with ``registered_model_name``. It equals the plain node."""

    # (not dataclass fields: set by `model_info`, so equality stays the node's)
    run_id: str | None = None
    registered_model_version: int | None = None
    logged_path: str | None = None  # where this call logged it (the node names the first path)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Node):
            return NotImplemented
        return (self.id, self.kind, self.name, self.attrs, self.created_at) == \
            (other.id, other.kind, other.name, other.attrs, other.created_at)

    __hash__ = None  # type: ignore[assignment]  # (as a Node: its attrs are a dict)

    @property
    def artifact_path(self) -> str:
        return self.logged_path or artifact_path_of(self)

    @property
    def model_uri(self) -> str:
        return model_source(self, self.run_id, self.artifact_path)

    @property
    def signature(self) -> Any:
        """The recorded signature as MLflow's ``ModelSignature`` (None without one)."""
        from .models import ModelSignature

        return ModelSignature.from_recorded(self.attrs.get("signature"))

    @property
    def model_id(self) -> str:
        return self.id

    @property
    def utc_time_created(self) -> str | None:
        return self.created_at


@dataclass
class LoggedModel:
    """A logged model in MLflow 3's shape (``get_logged_model``, ``last_logged_model``):
    ``model_id`` is the lineage model id; ``name`` the name it was logged under;
    ``tags`` its tags now (`Lineage.model_tags`); ``params`` the hyperparameters
    recorded with it; ``model_uri`` (``models:/<model_id>``) loads it."""

    model_id: str
    name: str
    experiment_id: str
    source_run_id: str | None
    tags: dict[str, str]
    params: dict[str, str]
    creation_timestamp: int | None
    status: str = "READY"

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_id}"

    @property
    def last_updated_timestamp(self) -> int | None:
        return self.creation_timestamp


def logged_model(lg: Lineage, ref: Any) -> LoggedModel:
    """The model ``ref`` names (a model id, ``models:/…``, ``runs:/…``, a reference) as
    MLflow 3's `LoggedModel`. Raises NodeNotFoundError when it names no model."""
    from .models import resolve_model_uri

    node = resolve_model_uri(lg, ref)
    runs = lg.generated_by(node)
    run = runs[-1] if runs else None
    recorded = node.attrs.get("params")
    params: Mapping[str, Any] = recorded if isinstance(recorded, dict) else {}
    return LoggedModel(node.id, artifact_path_of(node),
                       experiment_id_of(run.attrs.get("experiment") if run is not None else None),
                       run_hex(run.id) if run is not None else None, lg.model_tags(node),
                       {str(k): "None" if v is None else str(v) for k, v in params.items()}, to_ms(node.created_at))


def artifact_path_of(node: Node) -> str:
    """Where in its run a model was logged (MLflow's ``artifact_path``; ``model`` by default)."""
    return str(node.attrs.get("artifact_path") or "model")


def model_source(node: Node, run_id: str | None, artifact_path: str | None = None) -> str:
    """The URI MLflow names a logged model by, ``runs:/<run_id>/<artifact_path>``
    (``pyfunc.load_model`` takes it; the path the node was first logged at unless
    ``artifact_path`` says another); the lineage id when no run is known."""
    return f"runs:/{run_id}/{artifact_path or artifact_path_of(node)}" if run_id else node.id


def model_info(node: Node, run_id: str | None, registered_model_version: int | None = None,
               logged_path: str | None = None) -> ModelInfo:
    """``node`` as the `ModelInfo` of a model the run ``run_id`` (MLflow's hex id) logged
    at ``logged_path``."""
    info = ModelInfo(node.id, node.kind, node.name, node.attrs, node.created_at)
    info.__dict__.update(run_id=run_id, registered_model_version=registered_model_version,  # (frozen: no setattr)
                         logged_path=logged_path)
    return info


def metric_value(value: Any) -> float:
    """A recorded metric value as MLflow hands it out: a NaN, which SQLite keeps as
    NULL (and lineage's JSON as null), is NaN again."""
    return math.nan if value is None else float(value)


def run_hex(node_id: str) -> str:
    return node_id.split(":", 1)[1] if node_id.startswith("run:") else node_id


def resolve_run(lg: Lineage, run_id: Any) -> Node:
    """The run node an MLflow run id names (32 hex, ``run:…``, a prefix or ``mlflow:<id>``).

    Raises NodeNotFoundError for an unknown id, InvalidInputError for something not a run."""
    return find_run(lg.get, run_id)


def find_run(lookup: Callable[[str], Node], run_id: Any) -> Node:
    """`resolve_run` with ``lookup`` (a reference to its node: `Lineage.get`, or a
    store's ``resolve`` where no facade is at hand) resolving the reference.

    Raises NodeNotFoundError for an unknown id, InvalidInputError for something not a run."""
    if isinstance(run_id, Run):
        run_id = run_id.id
    if isinstance(run_id, RunView):
        run_id = run_id.id
    text = str(run_id or "").strip()
    if not text:
        raise InvalidInputError("a run id is needed")
    ref = text if text.startswith(("run:", "mlflow:")) else f"run:{text}"
    try:
        node = lookup(ref)
    except NodeNotFoundError:
        raise NodeNotFoundError(text, "no run has that id; see lineage.search_runs()") from None
    if node.kind != "run":
        raise InvalidInputError(f"{text!r} is a {node.kind}, not a run")
    return node


def run_artifacts(lg: Lineage, run: Any) -> dict[str, Node]:
    """Path in the run -> the artifact the run last logged there, in the order the
    paths were first logged: the path is the role of the artifact's generation (the
    node, its content, may be named after where it was logged first); older records
    have none, and their node's name is it."""
    return {str(role or n.name or ""): n for rel, role, n in lg.run_links(run)
            if rel == "was_generated_by" and n.kind == "artifact"}


class PagedList(list[Any]):
    """MLflow's ``PagedList``: one page of a search, and ``token``, the
    ``page_token`` that asks for the next page (None on the last)."""

    def __init__(self, items: Sequence[Any], token: str | None) -> None:
        super().__init__(items)
        self.token = token


def paged(items: Sequence[Any], max_results: int | None, page_token: Any) -> PagedList:
    """The page of ``items`` (the whole answer, in order) that ``page_token`` asks
    for, ``max_results`` long: the ``while page.token:`` loop of MLflow's docs walks
    them all. A token is the offset, opaque as MLflow's are."""
    import base64
    import json

    start = 0
    if page_token:
        try:
            start = int(json.loads(base64.urlsafe_b64decode(str(page_token).encode()))["offset"])
        except (ValueError, KeyError, TypeError):
            raise InvalidInputError(f"invalid page_token {page_token!r}: pass the token of a previous page") from None
    end = len(items) if max_results is None else start + int(max_results)
    token = (base64.urlsafe_b64encode(json.dumps({"offset": end}).encode()).decode()
             if end < len(items) else None)
    return PagedList(list(items[start:end]), token)


def mlflow_status(attrs: Mapping[str, Any]) -> str:
    """MLflow's status of a run: a failed run whose error text says it was killed
    (`end_run(status="KILLED")`, an imported KILLED run) reads ``KILLED``."""
    if attrs.get("status") == "failed" and str(attrs.get("error") or "").startswith(KILLED):
        return "KILLED"
    return STATUS.get(str(attrs.get("status")), "RUNNING")


def run_view(lg: Lineage, node: Node) -> RunView:
    """The MLflow-shaped view of a run node (its state, params, tags and metrics read now)."""
    if "status" not in node.attrs:
        node = lg.run_states([node])[0]
    a = node.attrs
    links = lg.run_links(node)
    tags = {str(k): str(v) for k, v in (a.get("tags") or {}).items()}
    # (deleted is a state of the run in MLflow's views, not one of its tags)
    lifecycle = "deleted" if tags.pop(LIFECYCLE_TAG, None) == "deleted" else "active"
    # (a run renamed with the mlflow.runName tag, as MLflow renames one, reads renamed:
    # its node keeps the name it started with)
    tags.setdefault("mlflow.runName", node.name or "")
    tags.setdefault("mlflow.source.type", "LOCAL")
    if a.get("description"):
        tags.setdefault(NOTE_TAG, str(a["description"]))
    if a.get("entry_point"):  # the run's own script (its code node may name another run's)
        tags.setdefault("mlflow.source.name", str(a["entry_point"]))
    user = None
    inputs: list[DatasetInput] = []
    for rel, role, other in links:
        if rel != "used":
            continue
        if role == "code":
            entry = other.attrs.get("entry_point")
            if entry:
                tags.setdefault("mlflow.source.name", str(entry))
            if other.attrs.get("commit"):
                tags.setdefault("mlflow.source.git.commit", str(other.attrs["commit"]))
        elif other.kind == "dataset":
            hexd = other.id.split(":", 1)[1]
            ds = _DatasetView(other.name, hexd[:8], other.attrs.get("uri") or other.attrs.get("path")
                              or other.attrs.get("source"), other.id)
            inputs.append(DatasetInput(ds, InputTags([InputTag("mlflow.data.context", role or "training")])))
    user = lg.run_user(node)
    if user:
        tags.setdefault("mlflow.user", user)
    if a.get("parent_run"):
        tags.setdefault("mlflow.parentRunId", run_hex(str(a["parent_run"])))
    info = RunInfo(
        run_id=run_hex(node.id), run_name=tags["mlflow.runName"], experiment_id=experiment_id_of(a.get("experiment")),
        user_id=user, status=mlflow_status(a), start_time=to_ms(a.get("started_at") or node.created_at),
        end_time=to_ms(a.get("ended_at")) if a.get("status") != "running" else None,
        artifact_uri=lg.artifacts_uri(), lifecycle_stage=lifecycle,
    )
    metrics = {str(k): metric_value(v) for k, v in (a.get("metrics") or {}).items()}
    params = {str(k): str(v) for k, v in (a.get("params") or {}).items()}
    outputs = RunOutputs([LoggedModelOutput(other.id) for rel, _, other in links
                          if rel == "was_generated_by" and other.kind == "model"])
    return RunView(info, RunData(params, metrics, tags), RunInputs(inputs), node.id, outputs)


class ActiveRun(Run):
    """A run in progress, as ``mlflow.start_run`` hands it out: lineage's `Run` (use it
    as a context manager; ``.id`` is the lineage id) with MLflow's ``.info`` and ``.data``."""

    @property
    def info(self) -> RunInfo:  # type: ignore[override]
        return self.view().info

    @property
    def data(self) -> RunData:
        return self.view().data

    @property
    def inputs(self) -> RunInputs:
        return self.view().inputs

    #: the facade it was opened through (set by whoever opens it: fluent, the client)
    lineage: Lineage | None = None

    def view(self) -> RunView:
        """The MLflow-shaped view of this run, read now (through `lineage`, the facade
        it was opened through; the default store when none was set)."""
        if self.lineage is None:
            from .fluent import get_lineage

            return run_view(get_lineage(), self.node)
        return run_view(self.lineage, self.node)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        # A script stopped by a call lineage does not provide did not fail at its own
        # work: the run ends finished, with the reason kept.
        if isinstance(exc, UnsupportedError) and not self._ended and os.getpid() == self._pid:
            self.end("finished", error=f"stopped at a call lineage does not support: {exc}"[:2000])
            return
        super().__exit__(exc_type, exc, tb)


def as_view(lg: Lineage, runs: Sequence[Node]) -> list[RunView]:
    return [run_view(lg, n) for n in lg.run_states(list(runs))]


# ---------------------------------------------------------------------------
# MLflow calls lineage leaves to MLflow (tracing, GenAI, projects, deployments)

UNSUPPORTED: dict[str, str] = {
    **dict.fromkeys(("trace", "start_span", "get_trace", "search_traces", "get_current_active_span",
                     "update_current_trace", "log_trace", "tracing", "get_last_active_trace_id",
                     "set_trace_tag", "delete_trace_tag", "log_feedback", "log_expectation", "genai",
                     "openai", "langchain", "llama_index", "anthropic", "register_prompt",
                     "load_prompt", "dspy", "transformers", "set_active_model", "log_assessment"),
                    "tracing and GenAI"),
    **dict.fromkeys(("MlflowClient.rename_experiment", "MlflowClient.update_experiment"),
                    "renaming an experiment: its name is its identity here (the id is derived from it, and "
                    "every run records it); start new runs under the new name"),
    "log_model_params": ("a logged model's params are the hyperparameters recorded with it when logged; "
                         "log extra values on the run (log_params) or as model tags (set_logged_model_tags)"),
    **dict.fromkeys(("projects", "run", "deployments", "gateway", "server", "pyfunc_serve"),
                    "projects and deployments"),
    **dict.fromkeys(("pyfunc.save_model",),
                    "saving a custom model to a folder; log it with mlflow.pyfunc.log_model, which records it"),
    **dict.fromkeys(("pytorch", "tensorflow", "keras", "xgboost", "lightgbm", "catboost", "spark",
                     "statsmodels", "prophet", "onnx", "h2o", "fastai"),
                    "only the scikit-learn flavour is provided; log other models with lineage.log_model"),
}


def unsupported(name: str) -> UnsupportedError:
    """The error for an MLflow name lineage does not provide."""
    return UnsupportedError(name, UNSUPPORTED.get(name, "not part of the MLflow surface lineage provides"))


def missing_names(prefix: str = "") -> Callable[[str], Any]:
    """A module's ``__getattr__`` for the MLflow names it does not provide (``mlflow.``
    + ``prefix`` + the name): one clear error that is also an AttributeError, so
    ``hasattr`` still answers False."""

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise unsupported(prefix + name)

    return __getattr__


__getattr__ = missing_names("entities.")
