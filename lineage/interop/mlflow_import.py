"""`lineage import mlflow`: an MLflow tracking store's history, read through MLflow's own
client, as lineage nodes and relations.

What becomes what:

* an MLflow run (finished, failed or killed) -> a ``run`` node whose id is derived from
  the MLflow run id (`foreign_run_hex`), with the alias ``mlflow:<run_id>`` (so
  ``lineage show mlflow:<run_id>`` resolves), its status and times as run states, its
  params, tags and every step of every metric;
* ``mlflow.user`` -> an ``agent`` (``was_associated_with``); ``mlflow.source.git.commit``
  -> the ``code`` node lineage's own capture gives a clean checkout of that commit
  (``used``, role ``code``); ``mlflow.parentRunId`` -> the run's ``parent_run``;
* a ``log_input`` dataset -> a ``dataset`` known by MLflow's digest
  (`foreign_dataset_id`, ``attrs["digests"] = {"mlflow": …}``), ``used`` with the
  dataset's context as role (``training`` when none);
* a logged model -> a ``model`` node identified by the SHA-256 of its artifact files
  (``was_generated_by`` its run, alias ``mlflow:<model_id>``); so is a model with no
  logged-model entity (MLflow 2's shape: an ``MLmodel`` folder under a run's artifacts,
  registered from ``runs:/…`` or named by the run's log-model history tag); a
  registered model version names it and records its version;
* the registry, re-read on every import: aliases and the Staging/Production stages are
  promotion labels under the registered name, moved or taken off as MLflow moved or
  dropped them since the last import (`ImportBatch.set_labels`); versions registered
  since for a model already here are recorded by the import activity.

Runs deleted in MLflow are imported too, as are the runs of a deleted experiment:
MLflow's delete is a soft delete (``lifecycle_stage = "deleted"``, restorable until
``mlflow gc``), and provenance must not depend on someone having clicked it. Each is
marked with the tag ``mlflow.lifecycleStage = "deleted"`` (`tracking.LIFECYCLE_TAG`),
so lineage's MLflow views hide it as MLflow did; a run deleted or restored in MLflow
since it was imported gets that tag (``deleted`` / ``active``) on the next import.

Runs still running in MLflow are left for a later import (they would otherwise look
crashed here), with the models they logged. Runs already imported are skipped
whole, so a second import of the same store writes nothing and an import after new
runs adds only those.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .. import capture, hashing, names
from ..errors import InvalidInputError, foreign, log
from ..model import LABEL_PATTERN, Node, local_path, make_id, now_iso
from ..store import Store
from ..tracking import DEFAULT_EXPERIMENT, LIFECYCLE_TAG, NOTE_TAG, secret_safe
from . import require
from .bulk import ImportBatch, ImportResult, foreign_dataset_id, foreign_run_hex, ms_to_iso, ms_to_iso_cached

_STATUS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "failed"}
_PAGE = 1000


def mlflow_run_id(run_id: str, started_ms: int | None) -> str:
    """Our ``run:`` id for an MLflow run (the same on every import)."""
    return make_id("run", foreign_run_hex("mlflow", run_id, started_ms))


@contextlib.contextmanager
def _quick_failure() -> Iterator[None]:
    """MLflow retries an unreachable server for minutes by default; an import should say
    so at once. And MLflow 3 refuses to open a file store (``./mlruns``, where most
    existing history is) unless allowed: importing only reads it. Only this process's
    environment, only while importing, and never over a value the user set."""
    keys = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "20", "MLFLOW_ALLOW_FILE_STORE": "true"}
    saved = {k: os.environ.get(k) for k in keys}
    for k, v in keys.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


class _OneLineWarnings(logging.Handler):
    """Where logging is not configured (the CLI, a plain script), warnings print as
    Python's last-resort handler prints them, but another library's come as one line
    naming the store, without the traceback MLflow attaches."""

    def __init__(self, uri: str) -> None:
        super().__init__(logging.WARNING)
        self.uri = uri

    def emit(self, record: logging.LogRecord) -> None:
        if not (record.name == log.name or record.name.startswith(log.name + ".")):
            text = " ".join(record.getMessage().split("\n", 1)[0].split())
            record = logging.makeLogRecord({"name": log.name, "levelno": record.levelno, "levelname": record.levelname,
                                            "msg": f"{self.uri}: MLflow: {text}"})
        if logging.lastResort is not None:
            logging.lastResort.handle(record)


@contextlib.contextmanager
def _mlflow_warnings_in_one_line(uri: str) -> Iterator[None]:
    """MLflow's file store warns through the root logger with its traceback attached
    (a malformed experiment folder: 20 lines of MLflow's frames), and that first call
    gives root `logging.basicConfig`'s handler for good. While importing, such a
    warning is one line (`_OneLineWarnings`); the import goes on past what MLflow
    skipped. A program that configured logging keeps its own handlers' say."""
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    handler = _OneLineWarnings(uri)
    root.addHandler(handler)  # (a root with a handler is not given basicConfig's by logging.warning)
    try:
        yield
    finally:
        root.removeHandler(handler)


def _check_local(uri: str) -> None:
    """A local store that does not exist would be created empty by MLflow: refuse."""
    parsed = urlparse(uri)
    path = None
    if parsed.scheme == "sqlite":
        path = uri.split(":///", 1)[1] if ":///" in uri else None
        if path is not None and not path.startswith("/"):
            path = os.path.abspath(path)
        elif path is not None and uri.startswith("sqlite:////"):
            path = "/" + path.lstrip("/")
    elif parsed.scheme == "file":
        path = parsed.path
    elif parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        path = uri
    if path is not None and path not in (":memory:", "") and not os.path.exists(path):
        raise InvalidInputError(f"{uri}: no MLflow tracking store there (check --tracking-uri)")


def import_mlflow(store: Store, tracking_uri: str, *, experiments: Sequence[str] = (),
                  registry_uri: str | None = None, models: bool = True) -> ImportResult:
    """Import an MLflow tracking store's runs, datasets and models; returns the counts.

    ``experiments`` limits the import to those experiment names (all when empty; a
    deleted experiment's name imports it, its runs marked deleted).
    Raises MissingExtraError without mlflow, InvalidInputError when the store cannot
    be read (the message names the URI and MLflow's reason); writes nothing then.
    """
    require("mlflow", "mlflow")
    from mlflow import MlflowClient

    _check_local(tracking_uri)
    shown_uri = capture.strip_url_credentials(tracking_uri)
    # MLflow raises many types (MlflowException, requests', SQLAlchemy's): one line
    with _quick_failure(), _mlflow_warnings_in_one_line(shown_uri), \
            foreign(f"{shown_uri}: cannot read the MLflow store: {{reason}}"):
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
        batch = _read(client, store, shown_uri, experiments, models=models)
    return batch.commit()


def _pages(fetch: Any) -> Iterator[Any]:
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def _read(client: Any, store: Store, uri: str, chosen: Sequence[str], *, models: bool) -> ImportBatch:
    from mlflow.entities import ViewType

    # deleted experiments too: their runs are history, marked deleted (`_stage`)
    exps = list(_pages(lambda t: client.search_experiments(view_type=ViewType.ALL, page_token=t)))
    if chosen:
        by_name = {e.name: e for e in exps}
        unknown = [n for n in chosen if n not in by_name]
        if unknown:
            raise InvalidInputError(f"{uri}: no MLflow experiment named {unknown[0]!r} "
                                    f"(there are: {', '.join(sorted(by_name)) or 'none'})")
        exps = [by_name[n] for n in chosen]
    exp_names = {e.experiment_id: e.name for e in exps}
    gone = {e.experiment_id for e in exps if e.lifecycle_stage == "deleted"}
    details: dict[str, Any] = {"experiments": sorted(exp_names.values())}
    if gone:
        details["deleted_experiments"] = sorted(exp_names[e] for e in gone)
    batch = ImportBatch(store, tool="mlflow", source=uri, details=details)
    if not exps:
        return batch
    _add_experiments(batch, store, exps)
    exp_ids = list(exp_names)
    tracking_store = getattr(getattr(client, "_tracking_client", None), "store", None)
    runs = _sql_runs(tracking_store, exp_ids)
    if runs is None:
        runs = list(_pages(lambda t: client.search_runs(exp_ids, run_view_type=ViewType.ALL, max_results=_PAGE,
                                                        page_token=t)))
    ids = {r.info.run_id: mlflow_run_id(r.info.run_id, r.info.start_time) for r in runs}
    ids.update(_runs_named(store, list(ids)))  # recorded here already: by the plugin, under its own id
    present = batch.stored(ids.values())
    new_runs = [r for r in runs if ids[r.info.run_id] not in present and r.info.status in _STATUS]
    history = _metric_histories(client, new_runs)
    for r in new_runs:
        _add_run(batch, r, ids, exp_names, history, uri, _stage(r, gone))
    for r in runs:
        if ids[r.info.run_id] in present:  # deleted or restored in MLflow since it was recorded here?
            batch.tag_now(ids[r.info.run_id], LIFECYCLE_TAG, _stage(r, gone), absent="active")
    if models:
        # a model's run must be here: one still running is left, with its models, for
        # a later import (else its model would point at a run not recorded yet)
        done = {k: v for k, v in ids.items() if v in present}
        done.update((r.info.run_id, ids[r.info.run_id]) for r in new_runs)
        _add_models(client, batch, exp_ids, done, {r.info.run_id: r.info.artifact_uri for r in runs if r.info.artifact_uri},
                    [m for r in runs for m in _logged_history(r)])
    return batch


def _add_experiments(batch: ImportBatch, store: Store, exps: Sequence[Any]) -> None:
    """The experiments as records (lineage/names.py), created at MLflow's creation
    time (`_name_rows`). The default experiment exists everywhere: recorded only to
    hold tags."""
    for e in exps:
        name = DEFAULT_EXPERIMENT if e.name == "Default" else e.name
        _name_rows(batch, store, names.EXPERIMENT, name, dict(e.tags or {}), getattr(e, "creation_time", None),
                   getattr(e, "last_update_time", None), needs_tags=name == DEFAULT_EXPERIMENT)


def _name_rows(batch: ImportBatch, store: Store, kind: str, name: str, tags: Mapping[str, Any],
               created_ms: Any, updated_ms: Any, *, needs_tags: bool = False) -> None:
    """Rows of an experiment's or a registered model's record (``kind``): its creation
    when not recorded here (unless ``needs_tags`` and it has none), and each tag whose
    value is not the one held here, so an import again adds only what changed in
    MLflow. Values go through the secret detector, as every imported tag's do."""
    now = names.recorded(store, kind, name).get(name)
    created = ms_to_iso(created_ms) or now_iso()
    updated = ms_to_iso(updated_ms) or created
    safe = secret_safe(tags, f"{kind} tags")
    rows: list[names.Row] = [(kind, name, k, v, updated) for k, v in safe.items()
                             if (now.tags if now else {}).get(k) != v]
    if (now is None or now.created_at is None) and (rows or not needs_tags):
        rows.insert(0, (kind, name, None, None, created))
    if rows:
        batch.add_rows("names", rows)


def _stage(run: Any, deleted_experiments: set[str]) -> str:
    """``deleted`` for a run MLflow deleted, or one of a deleted experiment (MLflow's
    SQL store marks those runs deleted too, its file store does not: both hide them),
    else ``active``: the run's `LIFECYCLE_TAG` here."""
    deleted = run.info.lifecycle_stage == "deleted" or run.info.experiment_id in deleted_experiments
    return "deleted" if deleted else "active"


def _metric_histories(client: Any, runs: Sequence[Any]) -> dict[str, list[tuple[str, Any, int, int]]]:
    """Every step of every metric of ``runs``: ``{run_id: [(key, value, timestamp_ms,
    step), ...]}``, each run's values ordered by time, step and key.

    SQL-backed stores are read directly (`_sql_histories`: one query per 500 runs);
    others answer one ``get_metric_history_bulk`` call per metric key for many runs, or
    are asked run by run, key by key.
    """
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    fast = _sql_histories(store, [r.info.run_id for r in runs if r.data.metrics])
    if fast is not None:
        return fast
    out: dict[str, list[tuple[str, Any, int, int]]] = {}
    bulk = getattr(store, "get_metric_history_bulk", None)
    by_key: dict[str, list[str]] = {}
    for r in runs:
        for key in r.data.metrics:
            by_key.setdefault(key, []).append(r.info.run_id)
    for key, run_ids in by_key.items():
        if bulk is not None:
            for i in range(0, len(run_ids), 500):
                for m in bulk(run_ids[i:i + 500], key, 2**31 - 1):  # a Metric with its run_id
                    out.setdefault(m.run_id, []).append((key, m.value, m.timestamp, m.step))
        else:
            for rid in run_ids:
                out.setdefault(rid, []).extend((key, m.value, m.timestamp, m.step)
                                               for m in client.get_metric_history(rid, key))
    for values in out.values():
        values.sort(key=lambda v: (v[2], v[3], v[0]))
    return out


def _raw_rows(session: Any, query: Any) -> list[tuple[Any, ...]]:
    """The rows of a SQLAlchemy ``query`` as the database driver returns them (plain
    tuples). SQLAlchemy's result rows cost a few microseconds each, which at forty
    thousand metric values was a fifth of an import; the statement is still built from
    MLflow's own table models, so it follows MLflow's schema."""
    conn = session.connection()
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    if compiled.positional:
        params: Any = tuple(compiled.params[k] for k in compiled.positiontup or ())
    else:
        params = compiled.params
    cur = conn.connection.driver_connection.cursor()
    try:
        cur.execute(str(compiled), params)
        return list(cur.fetchall())
    finally:
        cur.close()


def _sql_histories(store: Any, run_ids: Sequence[str]) -> dict[str, list[tuple[str, Any, int, int]]] | None:
    """Every metric value of ``run_ids`` from a SQL-backed MLflow store, in one query
    per 500 runs through MLflow's own table model (``SqlMetric``), as `_metric_histories`
    returns them.

    MLflow's ``get_metric_history_bulk`` builds an ORM object per value: at 200 values
    a run that was 80% of the import. None when the store is not SQL-backed (or its
    model differs from what this reads), so the caller uses the client's calls.
    """
    maker = getattr(store, "ManagedSessionMaker", None)
    if maker is None or not run_ids:
        return None
    try:
        from mlflow.store.tracking.dbmodels.models import SqlMetric
        from sqlalchemy import select

        cols = (SqlMetric.run_uuid, SqlMetric.key, SqlMetric.value, SqlMetric.timestamp, SqlMetric.step, SqlMetric.is_nan)
        out: dict[str, list[tuple[str, Any, int, int]]] = {}
        nan = float("nan")
        with maker() as session:
            for i in range(0, len(run_ids), 500):
                query = select(*cols).where(SqlMetric.run_uuid.in_(list(run_ids[i:i + 500])))
                query = query.order_by(SqlMetric.run_uuid, SqlMetric.timestamp, SqlMetric.step, SqlMetric.key)
                run, values = None, None
                for run_uuid, key, value, ts, step, is_nan in _raw_rows(session, query):
                    if run_uuid != run:
                        run, values = run_uuid, out.setdefault(run_uuid, [])
                    values.append((key, nan if is_nan else value, ts, step))  # type: ignore[union-attr]
        return out
    except _schema_errors() as exc:  # another MLflow's schema: fall back to its public calls
        log.debug("MLflow import: reading its tables failed (%s); using its client calls", exc)
        return None


def _schema_errors() -> tuple[type[BaseException], ...]:
    """What reading an MLflow's tables directly raises when they are not the ones this
    reads: a module moved (ImportError), a column renamed (AttributeError), a table or
    column missing in the database (SQLAlchemy's errors)."""
    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:
        return (ImportError, AttributeError, ValueError)
    return (ImportError, AttributeError, ValueError, SQLAlchemyError)


def _sql_runs(store: Any, exp_ids: Sequence[str]) -> list[Any] | None:
    """The runs of ``exp_ids`` (deleted ones too) with params, tags, latest metrics and dataset
    inputs, from a SQL-backed MLflow store, read as column tuples through MLflow's own
    table models (a handful of queries per 500 runs).

    Shaped like MLflow's ``Run`` as far as the import reads it (``.info``, ``.data``,
    ``.inputs.dataset_inputs``). ``search_runs`` builds an ORM object per param, tag
    and metric: it was most of an import's time. None when the store is not SQL-backed
    or its tables are not what this reads; the caller then uses ``search_runs``.
    """
    maker = getattr(store, "ManagedSessionMaker", None)
    if maker is None:
        return None
    from types import SimpleNamespace as NS

    try:
        from mlflow.store.tracking.dbmodels import models as m
        from sqlalchemy import select

        runs: dict[str, Any] = {}
        with maker() as session:
            q = select(m.SqlRun.run_uuid, m.SqlRun.name, m.SqlRun.status, m.SqlRun.start_time, m.SqlRun.end_time,
                       m.SqlRun.user_id, m.SqlRun.experiment_id, m.SqlRun.artifact_uri, m.SqlRun.lifecycle_stage).where(
                m.SqlRun.experiment_id.in_([int(e) for e in exp_ids]))
            for rid, name, status, start, end, user, exp, art, stage in session.execute(q):
                runs[rid] = NS(info=NS(run_id=rid, run_name=name, status=status, start_time=start, end_time=end, user_id=user,
                                       experiment_id=str(exp), artifact_uri=art, lifecycle_stage=stage),
                               data=NS(params={}, tags={}, metrics={}), inputs=NS(dataset_inputs=[]))
            ids = list(runs)
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                for rid, key, value in _raw_rows(session, select(m.SqlParam.run_uuid, m.SqlParam.key, m.SqlParam.value)
                                                 .where(m.SqlParam.run_uuid.in_(chunk))):
                    runs[rid].data.params[key] = value
                for rid, key, value in _raw_rows(session, select(m.SqlTag.run_uuid, m.SqlTag.key, m.SqlTag.value)
                                                 .where(m.SqlTag.run_uuid.in_(chunk))):
                    runs[rid].data.tags[key] = value
                lm = m.SqlLatestMetric
                for rid, key, value, is_nan in _raw_rows(session, select(lm.run_uuid, lm.key, lm.value, lm.is_nan)
                                                         .where(lm.run_uuid.in_(chunk))):
                    runs[rid].data.metrics[key] = float("nan") if is_nan else value
                q = (select(m.SqlInput.destination_id, m.SqlInput.input_uuid, m.SqlDataset.name, m.SqlDataset.digest,
                            m.SqlDataset.dataset_source_type, m.SqlDataset.dataset_source, m.SqlDataset.dataset_schema,
                            m.SqlDataset.dataset_profile)
                     .join(m.SqlDataset, m.SqlDataset.dataset_uuid == m.SqlInput.source_id)
                     .where(m.SqlInput.source_type == "DATASET", m.SqlInput.destination_type == "RUN",
                            m.SqlInput.destination_id.in_(chunk)))
                inputs: dict[str, Any] = {}
                for rid, input_uuid, name, digest, stype, source, schema, profile in session.execute(q):
                    di = NS(dataset=NS(name=name, digest=digest, source_type=stype, source=source, schema=schema,
                                       profile=profile), tags=[])
                    inputs[input_uuid] = di
                    runs[rid].inputs.dataset_inputs.append(di)
                uuids = list(inputs)
                for j in range(0, len(uuids), 500):
                    for input_uuid, key, value in session.execute(
                            select(m.SqlInputTag.input_uuid, m.SqlInputTag.name, m.SqlInputTag.value)
                            .where(m.SqlInputTag.input_uuid.in_(uuids[j:j + 500]))):
                        inputs[input_uuid].tags.append(NS(key=key, value=value))
        for r in runs.values():  # as RunInfo does: the run name is also the mlflow.runName tag
            r.info.run_name = r.info.run_name or r.data.tags.get("mlflow.runName")
        return list(runs.values())
    except _schema_errors() as exc:  # another MLflow's schema: fall back to its public calls
        log.debug("MLflow import: reading its tables failed (%s); using its client calls", exc)
        return None


#: a short number as text (MLflow keeps every param as text): no secret detector finds
#: anything in it, so under a name that keeps numbers it is kept without asking again
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?")


@functools.lru_cache(maxsize=8192)
def _numbers_kept(key: str) -> bool:
    """Whether a number under ``key`` is recorded as given (not a secret name)."""
    from .. import tracking

    return tracking.secret_safe({key: "12345"}) == {key: "12345"}


@functools.lru_cache(maxsize=65536)
def _safe_value(key: str, value: Any) -> str:
    from .. import tracking

    return tracking.secret_safe({key: value})[key]


def _secret_safe(values: Any, what: str = "params") -> dict[str, str]:
    """`tracking.secret_safe` for an import's many params and tags: the detector is
    asked once per (name, value), and once per name for short numbers (the params of a
    sweep differ run to run only in their numbers); the detector was a third of an
    import's own time."""
    out: dict[str, str] = {}
    for k, v in dict(values).items():
        key = str(k)
        if isinstance(v, str) and len(v) < 16 and _NUMBER.fullmatch(v) and _numbers_kept(key):
            out[key] = v
        else:
            out[key] = _safe_value(key, v if isinstance(v, (str, int, float, bool)) or v is None else str(v))
    return out


def _agent(batch: ImportBatch, user: str) -> str:
    """The agent for an MLflow user. MLflow records no host, so the identity is
    ``sha256("USER@")`` (lineage's own is ``USER@HOST``)."""
    node = Node(make_id("agent", hashing.hash_text(f"{user}@")), "agent", user, {"user": user, "host": None, "email": None,
                                                                               "source": "mlflow"})
    batch.add_node(node)
    return node.id


def _code(batch: ImportBatch, tags: dict[str, str]) -> str | None:
    commit = tags.get("mlflow.source.git.commit")
    if not commit:
        return None
    repo = tags.get("mlflow.source.git.repoURL")
    attrs = {"git": True, "commit": commit, "repo": capture.strip_url_credentials(repo) if repo else None,
             "branch": tags.get("mlflow.source.git.branch"), "dirty": False, "diff_digest": None,
             "entry_point": tags.get("mlflow.source.name"), "source": "mlflow"}
    # the identity lineage's capture gives a clean checkout of this commit (capture_code)
    entry = tags.get("mlflow.source.name")
    node = Node(make_id("code", hashing.hash_text(f"{commit}\0")), "code", entry or commit[:10], attrs)
    batch.add_node(node)
    return node.id


def _add_run(batch: ImportBatch, r: Any, ids: dict[str, str], exp_names: dict[str, str],
             history: dict[str, list[tuple[str, Any, int, int]]], uri: str, stage: str = "active") -> None:
    info = r.info
    rid = ids[info.run_id]
    tags = dict(r.data.tags)
    if stage == "deleted":  # hidden from lineage's MLflow views as from MLflow's (an active run needs no tag)
        tags[LIFECYCLE_TAG] = "deleted"
    else:
        tags.pop(LIFECYCLE_TAG, None)  # (MLflow keeps no such tag: one set by hand would not say deleted)
    started = ms_to_iso(info.start_time) or ms_to_iso(0)
    ended = ms_to_iso(info.end_time) or started
    attrs: dict[str, Any] = {
        "experiment": exp_names.get(info.experiment_id, info.experiment_id),
        "started_at": started,
        "mlflow": {"run_id": info.run_id, "experiment_id": info.experiment_id, "tracking_uri": uri,
                   "artifact_uri": capture.strip_url_credentials(info.artifact_uri or "")},
        "imported_from": uri,
    }
    if tags.get("mlflow.source.name"):
        attrs["command"] = [tags["mlflow.source.name"]]
    if tags.get(NOTE_TAG):
        attrs["description"] = tags[NOTE_TAG]
    parent = tags.get("mlflow.parentRunId")
    if parent:
        attrs["parent_run"] = ids.get(parent) or f"mlflow:{parent}"
    name = info.run_name or tags.get("mlflow.runName") or info.run_id[:8]
    batch.add_node(Node(rid, "run", name, attrs, started), aliases=[f"mlflow:{info.run_id}"])
    user = info.user_id or tags.get("mlflow.user")
    if user:
        batch.add_edge(rid, _agent(batch, user), "was_associated_with")
    code = _code(batch, tags)
    if code:
        batch.add_edge(rid, code, "used", "code")
    batch.add_rows("params", [(rid, k, v) for k, v in _secret_safe(r.data.params).items()])
    batch.add_rows("tags", [(rid, k, v) for k, v in _secret_safe(tags, "tags").items()])
    iso = ms_to_iso_cached
    # (MLflow 3's file store writes a metric logged with a model once more, same value,
    # step and time: one point, as its SQL store and the plugin keep it)
    batch.add_rows("metrics", [(rid, key, value, step, iso(ts), None, None)
                               for key, value, ts, step in dict.fromkeys(history.get(info.run_id, ()))])
    status = _STATUS[info.status]
    batch.add_rows("run_states", [(rid, "running", started, None, None, None),
                                  (rid, status, ended, None, "killed in MLflow" if info.status == "KILLED" else None, None)])
    for di in r.inputs.dataset_inputs if r.inputs else ():
        ds = di.dataset
        context = next((t.value for t in di.tags if t.key == "mlflow.data.context"), None)
        node = _dataset(ds)
        batch.add_node(node)
        batch.add_edge(rid, node.id, "used", context or "training")


def _dataset(ds: Any) -> Node:
    import json

    attrs: dict[str, Any] = {"digests": {"mlflow": ds.digest}, "content_hashed": False, "source": "mlflow",
                             "source_type": ds.source_type}
    try:
        src = json.loads(ds.source) if ds.source else {}
    except ValueError:
        src = {"raw": ds.source}
    uri = src.get("uri") or src.get("url") or src.get("path") if isinstance(src, dict) else None
    if uri:
        attrs["uri"] = capture.strip_url_credentials(str(uri))
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        schema = json.loads(ds.schema) if ds.schema else {}
        cols = schema.get("mlflow_colspec") or []
        if cols:
            attrs["columns"] = [c.get("name") for c in cols]
            attrs["schema"] = {c.get("name"): c.get("type") for c in cols}
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        profile = json.loads(ds.profile) if ds.profile else {}
        if "num_rows" in profile:
            attrs["rows"] = profile["num_rows"]
    return Node(foreign_dataset_id("mlflow", ds.digest), "dataset", ds.name, attrs)


#: the owner word of the promotion labels an MLflow import puts on model versions (the
#: start of their reason): labels MLflow no longer sets are taken off only when it put them
LABEL_OWNER = "mlflow"
#: MLflow's (deprecated, still written) stages that are labels here, as lowercase labels
_STAGES = ("Staging", "Production")


def _registry(client: Any) -> list[dict[str, Any]]:
    """Every version of every registered model: name, version, aliases, stage, run,
    source and logged-model id; empty for a tracking server without a registry."""
    try:
        with foreign("{type}: {reason}"):
            rms = list(_pages(lambda t: client.search_registered_models(page_token=t)))
    except InvalidInputError as exc:  # a tracking server without a registry: models stay unregistered
        log.info("MLflow import: no model registry read (%s); models stay unregistered", exc)
        return []
    out = []
    for rm in rms:
        aliases_of: dict[str, list[str]] = {}
        for alias, version in (rm.aliases or {}).items():
            aliases_of.setdefault(str(version), []).append(alias)
        quoted = rm.name.replace("'", "\\'")
        for v in client.search_model_versions(f"name='{quoted}'"):
            stage = getattr(v, "current_stage", None)
            out.append({"name": rm.name, "version": int(v.version), "aliases": sorted(aliases_of.get(str(v.version), [])),
                        "stage": None if stage in (None, "None") else str(stage), "run_id": v.run_id, "source": v.source,
                        "model_id": getattr(v, "model_id", None), "created": getattr(v, "creation_timestamp", None),
                        # what people wrote in the registry: often the only statement of a
                        # version's purpose, so kept rather than dropped
                        "description": _described(getattr(v, "description", None)),
                        "tags": _secret_safe(getattr(v, "tags", None) or {}, "tags"),
                        "model_description": _described(getattr(rm, "description", None)),
                        "model_tags": _secret_safe(getattr(rm, "tags", None) or {}, "tags"),
                        # (the registered model's own times, for its record: `_name_rows`)
                        "model_created": getattr(rm, "creation_timestamp", None),
                        "model_updated": getattr(rm, "last_updated_timestamp", None)})
    return out


def _described(text: str | None) -> str | None:
    """A registry description as it may be kept: secrets masked, None when empty."""
    return _safe_value("description", text) if text else None


def _reg_entry(v: Mapping[str, Any]) -> dict[str, Any]:
    """A registered version as a model node records it (``attrs["registered"]``)."""
    entry = {k: v[k] for k in ("name", "version", "aliases", "run_id", "source")}
    for key in ("stage", "description", "tags", "model_description", "model_tags"):
        if v.get(key):  # left out when empty, as before these were read
            entry[key] = v[key]
    return entry


def _source_location(source: str, run_id: str | None, artifact_uris: Mapping[str, str]) -> str | None:
    """Where a registered version's files are: ``runs:/RUN/PATH`` under that run's
    artifact root, any other URI or path as given; None for ``models:/`` (a logged
    model, read as such) or a run outside the import."""
    if source.startswith("models:/"):
        return None
    if source.startswith("runs:/"):
        rid, _, path = source[len("runs:/"):].partition("/")
        root = artifact_uris.get(rid)
        return None if root is None else f"{root.rstrip('/')}/{path}" if path else root
    return source


def _add_models(client: Any, batch: ImportBatch, exp_ids: list[str], run_ids: dict[str, str],
                artifact_uris: Mapping[str, str] | None = None,
                logged: Sequence[tuple[str, str, str | None]] = ()) -> None:
    """Models of the imported experiments, named by their registered versions, and the
    registry's present state: the labels it puts on versions (aliases, and the stages
    Staging and Production) and versions registered since the last import.

    A model is a logged model (MLflow 3), or, for a registered version without one
    (MLflow 2's ``log_model``, or ``runs:/RUN/PATH`` registered by hand), the folder
    its source names, holding an ``MLmodel`` file; and an unregistered MLflow 2 model,
    named by its run's ``mlflow.log-model.history`` tag (``logged``: run id, artifact
    path, time). Each is identified by the SHA-256 of its files.
    """
    artifact_uris = artifact_uris or {}
    versions = _registry(client)
    by_key: dict[str, list[dict[str, Any]]] = {}  # logged model id or source -> versions
    for v in versions:
        by_key.setdefault(_model_key(v["source"], v["model_id"]), []).append(v)
    node_of: dict[str, str] = {}  # logged model id or source -> model node id
    # (id, attrs, name, created, run, aliases)
    found: list[tuple[str, dict[str, Any], str | None, str | None, str | None, list[str]]] = []

    search = getattr(client, "search_logged_models", None)
    for lm in _pages(lambda t: search(exp_ids, page_token=t)) if search is not None else ():
        # a logged model imported before is known by its alias, not hashed (its files
        # downloaded) again on every import
        if lm.source_run_id and lm.source_run_id not in run_ids:
            continue  # its run is still running, or outside this import
        stored_id = _stored_model(batch.store, lm.model_id)
        if stored_id is None:
            digest, files, size = _hash_model_files(lm.artifact_location)
            model_id = make_id("model", digest) if digest else _unread_model_id(lm.model_id)
        else:
            model_id, files, size, digest = stored_id, 0, 0, None
        node_of[lm.model_id] = model_id
        run = run_ids.get(lm.source_run_id) if lm.source_run_id else None
        attrs: dict[str, Any] = {"format": "mlflow-model", "files": files, "size": size,
                                 "mlflow": {"model_id": lm.model_id, "model_uri": f"models:/{lm.model_id}",
                                            "artifact_location": capture.strip_url_credentials(lm.artifact_location),
                                            "name": lm.name, "source_run_id": lm.source_run_id}}
        if stored_id is None:
            attrs.update(_flavor(lm.artifact_location) if digest else {"files_missing": True})
        found.append((model_id, attrs, lm.name, ms_to_iso(lm.creation_timestamp), run, [f"mlflow:{lm.model_id}"]))
    hashed: dict[str, tuple[str | None, int, int]] = {}
    for key, vs in by_key.items():
        if key in node_of:
            continue
        v = min(vs, key=lambda x: x["version"])
        if v["run_id"] and v["run_id"] not in run_ids:
            continue  # its run is outside this import (another experiment)
        location = _source_location(v["source"], v["run_id"], artifact_uris)
        if location is None:
            continue
        if location not in hashed:
            hashed[location] = _hash_model_files(location)
        digest, files, size = hashed[location]
        model_id = make_id("model", digest) if digest else _unread_model_id(key)
        node_of[key] = model_id
        attrs = {"format": "mlflow-model", "files": files, "size": size,
                 "mlflow": {"source": capture.strip_url_credentials(v["source"]),
                            "artifact_location": capture.strip_url_credentials(location), "source_run_id": v["run_id"]}}
        attrs.update(_flavor(location) if digest else {"files_missing": True})
        found.append((model_id, attrs, None, ms_to_iso(v["created"]) if v["created"] else None,
                      run_ids.get(v["run_id"]) if v["run_id"] else None, []))

    for run_id, path, created in logged or ():
        # MLflow 2's log_model, unregistered: only the run's history tag names the folder
        root = artifact_uris.get(run_id)
        if root is None or run_id not in run_ids:
            continue
        location = f"{root.rstrip('/')}/{path}"
        if location not in hashed:
            hashed[location] = _hash_model_files(location)
        digest, files, size = hashed[location]
        if digest is None or (not _flavor(location) and _local_dir(location) is not None):
            continue  # gone, or not a model folder (no readable MLmodel file)
        model_id = make_id("model", digest)
        attrs = {"format": "mlflow-model", "files": files, "size": size,
                 "mlflow": {"source": f"runs:/{run_id}/{path}", "artifact_location": capture.strip_url_credentials(location),
                            "source_run_id": run_id}}
        attrs.update(_flavor(location))
        found.append((model_id, attrs, path, created, run_ids[run_id], []))

    # versions are numbered in the order nodes are added: oldest first (MLflow lists
    # logged models newest first, which made `risk@1` MLflow's version 2)
    found.sort(key=lambda f: (f[3] is None, f[3] or ""))
    regs_of: dict[str, list[dict[str, Any]]] = {}
    for key, vs in by_key.items():
        if key in node_of:
            regs_of.setdefault(node_of[key], []).extend(vs)
    stored = batch.stored([f[0] for f in found])
    known = _known_versions(batch, stored) if stored else {}
    done: set[str] = set()
    for model_id, attrs, name, created, run, also in found:
        regs = sorted(regs_of.get(model_id, []), key=lambda x: (x["name"], x["version"]))
        if run:
            batch.add_edge(model_id, run, "was_generated_by")
        if model_id in done:  # the same files reached twice (a logged model and its registered source)
            continue
        done.add(model_id)
        if model_id in stored:
            # stored by an earlier import: what the registry added since is recorded
            # by the import activity (and the names as aliases)
            seen = known.get(model_id, set())
            for v in regs:
                if (v["name"], v["version"]) not in seen:
                    batch.aliases[(model_id, v["name"])] = None
                    batch.changes.append({"change": "version", "model": model_id, **_reg_entry(v)})
            continue
        if regs:
            attrs["registered"] = [_reg_entry(v) for v in regs]
        batch.add_node(Node(model_id, "model", regs[-1]["name"] if regs else name, attrs, created),
                       aliases=[r["name"] for r in regs] + also)

    # labels: what MLflow's registry says now, per registered name
    wanted: dict[str, dict[str, tuple[str, str]]] = {}
    for v in sorted(versions, key=lambda x: (x["name"], x["version"])):
        mid = node_of.get(_model_key(v["source"], v["model_id"]))
        if mid is None:
            continue
        labels = wanted.setdefault(v["name"], {})
        if v["stage"] in _STAGES and LABEL_PATTERN.match(v["stage"].lower()):
            labels.setdefault(v["stage"].lower(), (mid, f"stage {v['stage']} of version {v['version']}"))
    for v in versions:
        mid = node_of.get(_model_key(v["source"], v["model_id"]))
        if mid is None:
            continue
        for alias in v["aliases"]:  # an alias named like a stage wins over the stage
            if LABEL_PATTERN.match(alias):
                wanted.setdefault(v["name"], {})[alias] = (mid, f"alias {alias} of version {v['version']}")
    registered = {v["name"]: v for v in versions if node_of.get(_model_key(v["source"], v["model_id"]))}
    for name, v in sorted(registered.items()):
        batch.set_labels(name, wanted.get(name, {}), owner=LABEL_OWNER)
        # the registered model's own record: its tags and description (lineage/names.py)
        tags = {**v["model_tags"], **({NOTE_TAG: v["model_description"]} if v["model_description"] else {})}
        _name_rows(batch, batch.store, names.REGISTERED_MODEL, name, tags, v["model_created"], v["model_updated"])


def _unread_model_id(mlflow_key: str) -> str:
    """The id of a model whose files cannot be read (deleted, an unreachable artifact
    store): its registry versions, labels and run are still history worth keeping.
    Like `foreign_dataset_id`, ``model:`` + SHA-256 of ``"mlflow-model:KEY"`` (MLflow's
    model id, or a version's source), the same on every import and never a content id;
    the node says ``files_missing``."""
    return make_id("model", hashlib.sha256(f"mlflow-model:{mlflow_key}".encode()).hexdigest())


def _runs_named(store: Store, mlflow_run_ids: Sequence[str]) -> dict[str, str]:
    """``{MLflow run id: run node id}`` for the runs this store already knows by the
    alias ``mlflow:<run id>``: the MLflow plugin records a run under an id of its own
    (not `mlflow_run_id`'s), so an import of the MLflow store behind it duplicated
    every run."""
    named = store.alias_targets([f"mlflow:{r}" for r in mlflow_run_ids])
    return {name[len("mlflow:"):]: node for name, node in named.items() if node.startswith("run:")}


def _stored_model(store: Store, mlflow_model_id: str) -> str | None:
    """The id of the model node an earlier import (or the plugin) recorded for an MLflow
    logged model (its alias ``mlflow:<model id>``, as `_runs_named` finds runs), or None."""
    alias = f"mlflow:{mlflow_model_id}"
    node = store.alias_targets([alias]).get(alias)
    return node if node is not None and node.startswith("model:") else None


def _logged_history(r: Any) -> list[tuple[str, str, str | None]]:
    """The models MLflow 2's ``log_model`` recorded in a run's ``mlflow.log-model.history``
    tag: ``(run id, artifact path, time)``; empty when there is none or it is not JSON."""
    import json

    text = r.data.tags.get("mlflow.log-model.history")
    if not text:
        return []
    try:
        entries = json.loads(text)
    except ValueError:
        return []
    out = []
    for e in entries if isinstance(entries, list) else ():
        if isinstance(e, dict) and isinstance(e.get("artifact_path"), str) and e["artifact_path"]:
            when = e.get("utc_time_created")
            created = str(when).replace(" ", "T") + "Z" if when else None
            out.append((r.info.run_id, e["artifact_path"], created))
    return list(dict.fromkeys(out))


def _known_versions(batch: ImportBatch, models: set[str]) -> dict[str, set[tuple[str, int]]]:
    """``{model id: {(registered name, version)}}`` that earlier MLflow imports recorded:
    on the model node (``attrs["registered"]``) or as a change of an import activity."""
    out: dict[str, set[tuple[str, int]]] = {}
    for act in batch.store.nodes(kind="run", name="import mlflow"):
        for c in (act.attrs.get("import") or {}).get("registry") or ():
            if c.get("change") == "version":
                out.setdefault(c["model"], set()).add((c["name"], int(c["version"])))
    for node in batch.store.get_nodes(sorted(models)).values():
        for r in node.attrs.get("registered") or ():
            out.setdefault(node.id, set()).add((r["name"], int(r["version"])))
    return out


def _model_key(source: str, model_id: str | None) -> str:
    if model_id:
        return model_id
    return source[len("models:/"):] if source.startswith("models:/") else source


def _local_dir(location: str) -> Path | None:
    p = local_path(location)
    return p if p is not None and p.is_dir() else None


def _hash_model_files(location: str) -> tuple[str | None, int, int]:
    """SHA-256 of a model's artifact folder (`hashing.hash_tree`), downloading it first
    when it is not local; ``(None, 0, 0)`` when it cannot be read."""
    local = _local_dir(location)
    if local is not None:
        digest, manifest = hashing.hash_tree(local)
        return digest, len(manifest), sum(m[2] for m in manifest)
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        try:
            with foreign("{type}: {reason}"):
                path = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=tmp)
        except InvalidInputError as exc:  # unreachable artifact store: the model is skipped, not the import
            log.warning("MLflow import: the model files at %s cannot be read (%s); the model is recorded "
                        "without them (files_missing)",
                        capture.strip_url_credentials(location), exc)
            return None, 0, 0
        digest, manifest = hashing.hash_tree(path)
        return digest, len(manifest), sum(m[2] for m in manifest)


def _flavor(location: str) -> dict[str, Any]:
    """The model's flavor and class from its MLmodel file, when local and readable."""
    local = _local_dir(location)
    if local is None or not (local / "MLmodel").is_file():
        return {}
    import yaml

    try:
        meta = yaml.safe_load((local / "MLmodel").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    flavors = meta.get("flavors") or {}
    out: dict[str, Any] = {"mlflow_flavors": sorted(flavors)}
    main = next((f for f in flavors if f != "python_function"), None)
    if main:
        out["flavor"] = main
        version = (flavors[main] or {}).get(f"{main}_version")
        if version:
            out[f"{main}_version"] = version
    return out
