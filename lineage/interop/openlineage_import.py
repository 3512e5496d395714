"""`lineage import openlineage`: other producers' RunEvents (Airflow, Spark, dbt, the
Python client's file transport) and our own export's, read back as runs and datasets.

Split from `openlineage` (the names, the export and the schema validation it uses).
What an import records, and why it is faithful to the events, is in docs/interop.md
("OpenLineage"): a failed run is not credited with its outputs, dirty code stays
dirty, a START whose end comes in a later file waits in the import's record, and a
file known only by its path is the same data as its bytes hashed later when it was not
modified since.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from .. import hashing
from ..errors import InvalidInputError
from ..model import Node, is_hex, make_id
from ..store import Store
from .bulk import ImportBatch, ImportResult, foreign_dataset_id, pending_records
from .openlineage import ML_FACET_SCHEMA, dataset_name, validate_event

_STATUS_OF = {"COMPLETE": "finished", "FAIL": "failed", "ABORT": "failed"}
#: the kinds besides datasets an imported export brings back by their `dataset_name`
_ENTITY_KINDS = ("model", "artifact")


def read_events(source: str | os.PathLike[str] | IO[str]) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, event)`` of every non-blank line of a JSON-lines file (``-``:
    stdin). Raises InvalidInputError naming the file, the line and the problem (not
    JSON, truncated, not a valid RunEvent)."""
    if source == "-":
        name = "<stdin>"
    elif isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
    else:
        name = str(getattr(source, "name", None) or "<stream>")
    if source == "-":
        lines: Iterable[str] = sys.stdin
    elif isinstance(source, (str, os.PathLike)):
        try:
            lines = Path(source).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {name}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise InvalidInputError(f"{name}: not UTF-8 text (expected OpenLineage events as JSON lines)") from None
    else:
        lines = source
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{name}:{i}: not valid JSON ({exc.msg}: column {exc.colno}); "
                                    "expected one OpenLineage event per line") from None
        if not isinstance(ev, dict) or "run" not in ev:
            if isinstance(ev, dict) and ("dataset" in ev or "job" in ev) and "eventType" not in ev:
                continue  # a DatasetEvent or JobEvent: static metadata, no run to record
            raise InvalidInputError(f"{name}:{i}: not an OpenLineage RunEvent (no \"run\")")
        problems = validate_event(ev)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise InvalidInputError(f"{name}:{i}: event fails the OpenLineage 2-0-2 schema: {problems[0]}{more}")
        ev["eventTime"] = _utc_time(ev.get("eventTime"), f"{name}:{i}")
        out.append((i, ev))
    return out


def _utc_time(value: Any, where: str) -> str:
    """An event's time in lineage's form (UTC, microseconds, ``Z``), so runs sort and
    filter by when they happened whatever offset the producer wrote (``+02:00``); a
    time without a zone is taken as UTC. The schema's date-time format is not checked
    by jsonschema without optional packages, so it is checked here. Raises
    InvalidInputError for a value that is no ISO 8601 date-time."""
    from datetime import datetime, timezone

    try:
        t = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInputError(f"{where}: eventTime {value!r} is not a date-time "
                                "(ISO 8601, e.g. 2024-05-01T09:30:00Z)") from None
    t = t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _run_hex(run_id: str) -> str:
    h = run_id.replace("-", "").lower()
    if not is_hex(h):
        h = hashing.hash_text(f"openlineage:{run_id}")[:32]
    return h


def import_openlineage(store: Store, source: str | os.PathLike[str] | IO[str]) -> ImportResult:
    """Import OpenLineage RunEvents (JSON lines) as runs and datasets; returns the counts.

    A run is recorded once it has a terminal event (COMPLETE, FAIL, ABORT); a START
    with none is kept pending in the import's record, and the import that brings the
    run's end (a producer that rotates files) takes it from there. Events our own
    export wrote (they carry the ``lineage_ml`` facet) come back as they were: models
    as models, runs in their experiment. Raises InvalidInputError for bad input,
    before anything is written."""
    name = "<stdin>" if source == "-" else os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<stream>"
    evs = read_events(source)
    if not evs:  # (an empty file is a wrong path or a producer that wrote nothing, not "nothing new")
        raise InvalidInputError(f"{name} holds no OpenLineage events")
    runs: dict[str, list[dict[str, Any]]] = {}
    for _, ev in evs:
        runs.setdefault(ev["run"]["runId"], []).append(ev)
    batch = ImportBatch(store, tool="openlineage", source=os.path.abspath(name) if os.path.exists(name) else name)
    kept = _pending_starts(store)
    for run_id, group in runs.items():  # a START an earlier file left pending joins its run
        here = {_key(e) for e in group}
        group[:0] = [ev for ev in kept.get(run_id, ()) if _key(ev) not in here]
    known = _known_datasets(store) if evs else {}
    models = _exported_models(ev for group in runs.values() for ev in group)
    # when each dataset was first named: a file known only by its path is the same
    # data as its bytes hashed later only if it was not modified since (`tracking`)
    seen: dict[tuple[str, str], str] = {}
    for group in runs.values():
        for ev in group:
            for d in [*(ev.get("inputs") or ()), *(ev.get("outputs") or ())]:
                key = (str(d["namespace"]), str(d["name"]))
                seen[key] = min(seen.get(key, ev["eventTime"]), ev["eventTime"])
    generated: dict[str, str] = {}
    plans = []
    for run_id, group in runs.items():
        group.sort(key=lambda e: str(e.get("eventTime", "")))
        final = next((e for e in reversed(group) if e.get("eventType") in _STATUS_OF), None)
        if final is None:
            rid = make_id("run", _run_hex(run_id))
            # not recorded as `running` (its lock is free here: the first process to look
            # would call it crashed); kept pending in this import's record instead, so the
            # file with its COMPLETE finds when it started and what it read
            if not batch.has(rid):
                recorded = {_key(e) for e in kept.get(run_id, ())}
                batch.pending += [_slim(ev) for ev in group if _key(ev) not in recorded]
            continue
        rid = make_id("run", _run_hex(run_id))
        plans.append((rid, run_id, group, final))
        if not _wrote_outputs(final):
            continue
        for ev in group:  # (ids only: a run already recorded adds no node)
            for d in ev.get("outputs") or []:
                generated[_entity(d, known, models, _ml_facet(ev) is not None).id] = rid
    for rid, run_id, group, final in plans:
        if batch.has(rid):
            continue
        _add_ol_run(batch, rid, run_id, group, final, known, models, generated, seen)
    return batch.commit()


def _key(ev: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(ev["run"]["runId"]), str(ev.get("eventType")), str(ev.get("eventTime"))


def _pending_starts(store: Store) -> dict[str, list[dict[str, Any]]]:
    """``OpenLineage run id -> events`` earlier imports kept pending (`_slim`)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for ev in pending_records(store, "openlineage"):
        if isinstance(ev, dict) and isinstance(ev.get("run"), Mapping) and isinstance(ev["run"].get("runId"), str):
            out.setdefault(ev["run"]["runId"], []).append(ev)
    return out


#: what the import reads of a pending event (`_add_ol_run`); other facets (environment
#: variables among them) are not kept
_RUN_FACETS_KEPT = ("parent", "lineage_ml", "errorMessage")
_JOB_FACETS_KEPT = ("sourceCode", "sourceCodeLocation")
_DATASET_FACETS_KEPT = ("version", "schema")


def _slim(ev: Mapping[str, Any]) -> dict[str, Any]:
    """A START kept pending: what `_add_ol_run` reads of it, secret-looking params and
    tags of our facet masked as a run's are."""
    from .. import tracking

    run_facets = {k: v for k, v in ((ev.get("run") or {}).get("facets") or {}).items() if k in _RUN_FACETS_KEPT}
    ml = run_facets.get("lineage_ml")
    if isinstance(ml, Mapping):
        ml = dict(ml)
        for table in ("params", "tags"):
            if isinstance(ml.get(table), Mapping):
                ml[table] = tracking.secret_safe(ml[table], table)
        run_facets["lineage_ml"] = ml
    job = ev.get("job") or {}
    job_facets = {k: v for k, v in (job.get("facets") or {}).items() if k in _JOB_FACETS_KEPT}

    def ds(d: Mapping[str, Any]) -> dict[str, Any]:
        facets = {k: v for k, v in (d.get("facets") or {}).items() if k in _DATASET_FACETS_KEPT}
        return {"namespace": d["namespace"], "name": d["name"], **({"facets": facets} if facets else {})}

    return {"eventType": ev.get("eventType"), "eventTime": ev.get("eventTime"), "producer": ev.get("producer"),
            "run": {"runId": ev["run"]["runId"], "facets": run_facets},
            "job": {"namespace": job.get("namespace"), "name": job.get("name"), "facets": job_facets},
            "inputs": [ds(d) for d in ev.get("inputs") or []], "outputs": [ds(d) for d in ev.get("outputs") or []]}


def _wrote_outputs(final: Mapping[str, Any]) -> bool:
    """True when a run's outputs can be taken as written: it completed, or our own
    export says so (lineage records an output only once written, even by a run that
    then failed). Another producer's FAIL or ABORT lists what the job meant to write
    (a dbt model that failed): the datasets may never have been written."""
    return final.get("eventType") == "COMPLETE" or _ml_facet(final) is not None


def _ml_facet(ev: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Our ``lineage_ml`` run facet when lineage's own export wrote the event, else None."""
    ml = ((ev.get("run") or {}).get("facets") or {}).get("lineage_ml")
    return ml if isinstance(ml, Mapping) and ml.get("_schemaURL") == ML_FACET_SCHEMA else None


def _exported_models(evs: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """``model id -> {id, name, class, hyperparameters}`` of the models our export's
    ``lineage_ml`` facets list: an output whose version is one of these is that model."""
    out: dict[str, Mapping[str, Any]] = {}
    for ev in evs:
        ml = _ml_facet(ev)
        for m in (ml or {}).get("models") or []:
            if isinstance(m, Mapping) and isinstance(m.get("id"), str):
                out[m["id"]] = m
    return out


def _known_datasets(store: Store) -> dict[tuple[str, str], str]:
    """``(namespace, name) -> newest dataset id`` of the datasets already recorded."""
    out: dict[tuple[str, str], str] = {}
    for n in reversed(store.nodes(kind="dataset")):  # oldest first: the newest wins
        out[dataset_name(n)] = n.id
    return out


def _entity(d: Mapping[str, Any], known: Mapping[tuple[str, str], str], models: Mapping[str, Mapping[str, Any]],
            ours: bool) -> Node:
    """The node an OpenLineage dataset stands for (not added): our content node when
    its version is a SHA-256, else the one node of that namespace and name (and
    version). In our own export (``ours``) the version and the name also say the
    kind: a model the ``lineage_ml`` facet lists, or ``lineage`` + ``KIND/NAME``
    (`dataset_name`), and ``ALGO:DIGEST`` is data known by a foreign digest."""
    ns, name = str(d["namespace"]), str(d["name"])
    version = ((d.get("facets") or {}).get("version") or {}).get("datasetVersion")
    sha256 = isinstance(version, str) and len(version) == 64 and is_hex(version)
    kind, short = "dataset", name.rstrip("/").rsplit("/", 1)[-1] or name
    attrs: dict[str, Any] = {"openlineage": {"namespace": ns, "name": name}, "source": "openlineage"}
    if ours and sha256:
        model = models.get(f"model:{version}")
        head, _, rest = name.partition("/")
        if model is not None:
            kind, short = "model", str(model.get("name") or short)
            attrs.update({k: v for k, v in (("class", model.get("class")), ("params", model.get("hyperparameters"))) if v})
        elif ns == "lineage" and head in _ENTITY_KINDS and rest:
            kind, short = head, rest
    if sha256:
        node_id = make_id(kind, str(version))
    elif ours and isinstance(version, str) and ":" in version:  # `_version` of data known by a foreign digest
        algo, digest = version.split(":", 1)
        node_id = foreign_dataset_id(algo, digest)
        attrs.update(digests={algo: digest}, content_hashed=False)
    elif version is None and (ns, name) in known:
        return Node(known[(ns, name)], "dataset")
    else:
        node_id = make_id("dataset", hashing.hash_text(f"openlineage:{ns}:{name}:{version or ''}"))
    if version is not None:
        attrs["version"] = str(version)
    if ns == "file":
        attrs["path"] = name
    elif "://" in ns:
        attrs["uri"] = ns.rstrip("/") + "/" + name.lstrip("/")
    fields = ((d.get("facets") or {}).get("schema") or {}).get("fields")
    if isinstance(fields, list) and fields:
        # (a field without a name, from a schema facet this version does not ship the
        # schema of, names no column)
        named = [f for f in fields if isinstance(f, Mapping) and isinstance(f.get("name"), str)]
        attrs["columns"] = [f["name"] for f in named]
        types = {f["name"]: str(f["type"]) for f in named if f.get("type")}
        if types:
            attrs["schema"] = types
    return Node(node_id, kind, short, attrs)


def _add_entity(batch: ImportBatch, d: Mapping[str, Any], known: dict[tuple[str, str], str],
                models: Mapping[str, Mapping[str, Any]], ours: bool, seen: Mapping[tuple[str, str], str]) -> str:
    """`_entity`, added to the batch unless recorded already; returns its id. A file
    known only by its path keeps ``seen_at``, when the import's events first name it."""
    node = _entity(d, known, models, ours)
    key = (str(d["namespace"]), str(d["name"]))
    if key[0] == "file" and node.kind == "dataset" and "version" not in node.attrs and key in seen \
            and node.attrs.get("source") == "openlineage":
        node = Node(node.id, node.kind, node.name, {**node.attrs, "seen_at": seen[key]}, node.created_at)
    # (a node already recorded is left as it is: not even its name as an alias)
    if node.id not in batch.nodes and not batch.stored([node.id]):
        batch.add_node(node)
    if node.kind == "dataset":
        known.setdefault((str(d["namespace"]), str(d["name"])), node.id)
    return node.id


#: how a version says the tree had uncommitted changes (`git describe --dirty`,
#: setuptools-scm's local version, our own export)
_DIRTY_SUFFIXES = ("-dirty", "+dirty", ".dirty")


def _code_node(loc: Mapping[str, Any], ours: Any, run_id: str) -> Node | None:
    """The code node a ``sourceCodeLocation`` with a version stands for, recorded the
    way capture records its own (`capture.capture_code`): ``dirty`` and
    ``diff_digest``, the id the SHA-256 of ``commit NUL diff digest``. Our export's
    ``lineage_ml`` facet (``ours``) gives the code node's id and state; another
    producer can only say the tree was dirty (a ``-dirty`` version), not what the
    changes were, so that code is a node of its own run: two dirty runs of one commit
    are not claimed to have run the same code. None without a version."""
    version = loc.get("version")
    if not isinstance(version, str) or not version:
        return None
    commit, dirty, diff_digest = version, False, None
    for suffix in _DIRTY_SUFFIXES:
        if version.lower().endswith(suffix) and len(version) > len(suffix):
            commit, dirty = version[:-len(suffix)], True
    state = ours if isinstance(ours, Mapping) else {}
    if state.get("dirty") is True:
        dirty = True
    if dirty and isinstance(state.get("diffDigest"), str) and is_hex(state["diffDigest"]):
        diff_digest = state["diffDigest"]
    code_id = state.get("id")
    if not (isinstance(code_id, str) and code_id.startswith("code:") and is_hex(code_id[5:]) and len(code_id) == 69):
        if dirty and diff_digest is None:
            code_id = make_id("code", hashing.hash_text(f"{commit}\0openlineage-dirty:{run_id}"))
        else:
            code_id = make_id("code", hashing.hash_text(f"{commit}\0{diff_digest or ''}"))
    attrs = {"git": loc.get("type") == "git", "commit": commit, "repo": loc.get("repoUrl") or loc.get("url"),
             "branch": loc.get("branch"), "entry_point": loc.get("path"), "dirty": dirty, "diff_digest": diff_digest,
             "source": "openlineage"}
    return Node(code_id, "code", str(loc.get("path") or commit[:10]), attrs)


def _add_ol_run(batch: ImportBatch, rid: str, run_id: str, group: list[dict[str, Any]], final: dict[str, Any],
                known: dict[tuple[str, str], str], models: Mapping[str, Mapping[str, Any]],
                generated: Mapping[str, str], seen: Mapping[tuple[str, str], str]) -> None:
    job = final["job"]
    start = next((e for e in group if e.get("eventType") == "START"), group[0])
    started, ended = str(start["eventTime"]), str(final["eventTime"])
    facets: dict[str, Any] = {}
    job_facets: dict[str, Any] = {}
    for ev in group:
        facets.update((ev.get("run") or {}).get("facets") or {})
        job_facets.update((ev.get("job") or {}).get("facets") or {})
    ml = facets.get("lineage_ml") or {}
    experiment, run_name = job["namespace"], job["name"]
    if _ml_facet(final) is not None and ml.get("experiment"):  # our export: the job name is EXPERIMENT.NAME outside `default` (`_job`)
        experiment = str(ml["experiment"])
        if experiment != "default" and run_name.startswith(experiment + "."):
            run_name = run_name[len(experiment) + 1:]
    attrs: dict[str, Any] = {"experiment": experiment, "started_at": started, "imported_from": batch.source,
                             "openlineage": {"run_id": run_id, "job_namespace": job["namespace"], "job_name": job["name"],
                                             "producer": final.get("producer")}}
    # (the parent facet's shape is checked only when its schema version is one shipped:
    # an older one may hold anything)
    parent_facet = facets.get("parent")
    parent_run = parent_facet.get("run") if isinstance(parent_facet, Mapping) else None
    parent = parent_run.get("runId") if isinstance(parent_run, Mapping) else None
    if isinstance(parent, str) and parent:
        attrs["parent_run"] = make_id("run", _run_hex(parent))
    if not _wrote_outputs(final):
        # what a failed run meant to write, kept visible but not as generated: `trace`
        # and `impact` would treat a dataset that may never have been written as made
        declared = [{"namespace": str(d["namespace"]), "name": str(d["name"])} for ev in group for d in ev.get("outputs") or []]
        if declared:
            attrs["declared_outputs"] = list({(d["namespace"], d["name"]): d for d in declared}.values())
    source_code = job_facets.get("sourceCode") or {}
    if source_code.get("sourceCode"):
        attrs["command"] = [str(source_code["sourceCode"])]
    batch.add_node(Node(rid, "run", run_name, attrs, started))
    from .. import tracking

    for table in ("params", "tags"):
        raw = ml.get(table)
        if isinstance(raw, Mapping) and raw:
            batch.add_rows(table, [(rid, k, v) for k, v in tracking.secret_safe(raw, table).items()])
    raw_metrics = ml.get("metrics")
    metrics: Mapping[str, Any] = raw_metrics if isinstance(raw_metrics, Mapping) else {}
    batch.add_rows("metrics", [(rid, k, v, 0, ended, None, None) for k, v in metrics.items() if v is not None])
    status = _STATUS_OF[final["eventType"]]
    if status == "failed" and ml.get("status") == "crashed":  # (both are a FAIL event; our facet tells them apart)
        status = "crashed"
    error = (facets.get("errorMessage") or {}).get("message") if status != "finished" else None
    batch.add_rows("run_states", [(rid, "running", started, None, None, None), (rid, status, ended, None, error, None)])
    code_node = _code_node(job_facets.get("sourceCodeLocation") or {}, ml.get("code") if _ml_facet(final) else None, run_id)
    if code_node is not None:
        batch.add_node(code_node)
        batch.add_edge(rid, code_node.id, "used", "code")
    for ev in group:
        facet = _ml_facet(ev)
        ours = facet is not None
        inputs = ev.get("inputs") or []
        # our own export says what each input was for (`_plans`); other producers do not
        roles = facet.get("inputRoles") if facet is not None else None
        if not (isinstance(roles, list) and len(roles) == len(inputs) and all(isinstance(r, str) and r for r in roles)):
            roles = ["input"] * len(inputs)
        for d, role in zip(inputs, roles):
            ds = _add_entity(batch, d, known, models, ours, seen)
            batch.add_edge(rid, ds, "used", role)
            producer = generated.get(ds) or next(iter(batch.store.generators(ds)), None)
            if producer and producer != rid:
                batch.add_edge(rid, producer, "was_informed_by")
        if _wrote_outputs(final):
            for d in ev.get("outputs") or []:
                batch.add_edge(_add_entity(batch, d, known, models, ours, seen), rid, "was_generated_by")
