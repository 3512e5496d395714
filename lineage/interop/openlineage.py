"""OpenLineage (spec 2-0-2): runs as RunEvents out, other producers' events in.

Out (`events`): per run a START event and, once it ended, a COMPLETE or FAIL event,
with the run's UUID (its id's 32 hex digits), job namespace and name, input and output
datasets (``version`` facet: the content digest; ``schema`` facet when columns are
known), the ``sourceCodeLocation`` / ``sourceCode`` job facets, the ``parent`` run
facet, ``errorMessage`` on failure, and ``lineage_ml``, a custom run facet with the
params, latest metrics and models (its schema ships in ``schemas/``). Every event
validates against the spec's JSON Schemas, shipped in ``schemas/openlineage/``
(`validate_event`).

In (`import_openlineage`): a JSON-lines stream (Airflow, Spark, dbt, the Python
client) becomes runs and datasets. A run keeps its OpenLineage run id as its own id,
so importing twice, or importing our own export, adds nothing; a dataset is one node
per namespace and name (and version, when the producer gave one); a version that is a
SHA-256 is our content id, so the upstream pipeline joins the ML lineage. Our own
events (with the ``lineage_ml`` facet) come back as they were: models as models, runs
in their experiment.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from .. import hashing
from .._version import __version__
from ..errors import InvalidInputError
from ..model import RUN_STATUSES, Node, is_hex, make_id
from ..store import Store
from .bulk import IMPORT_EXPERIMENT, ImportBatch, ImportResult, foreign_dataset_id, pending_records
from .graph import Scope

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_EVENT_SCHEMA = SPEC + "#/$defs/RunEvent"


def _package_version() -> str:
    return __version__


PRODUCER = f"https://pypi.org/project/lineage-ml/{_package_version()}/"
ML_FACET_SCHEMA = ("https://raw.githubusercontent.com/lineage-ml/lineage/main/lineage/interop/schemas/"
                   "LineageMLRunFacet.json#/$defs/LineageMLRunFacet")
_FACETS = "https://openlineage.io/spec/facets/"
FACET_SCHEMAS = {
    "version": _FACETS + "1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
    "schema": _FACETS + "1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "sourceCodeLocation": _FACETS + "1-1-0/SourceCodeLocationJobFacet.json#/$defs/SourceCodeLocationJobFacet",
    "sourceCode": _FACETS + "1-0-1/SourceCodeJobFacet.json#/$defs/SourceCodeJobFacet",
    "parent": _FACETS + "1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    "errorMessage": _FACETS + "1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
}
SCHEMA_DIR = Path(__file__).parent / "schemas"

_END = {"finished": "COMPLETE", "failed": "FAIL", "crashed": "FAIL"}
_STATUS_OF = {"COMPLETE": "finished", "FAIL": "failed", "ABORT": "failed"}
_IO_KINDS = ("dataset", "model", "artifact", "prediction")
#: the kinds besides datasets an imported export brings back by their `dataset_name`
_ENTITY_KINDS = ("model", "artifact")


# ---------------------------------------------------------------------------
# names


def run_uuid(run_id: str) -> str:
    """The UUID of a ``run:`` id (its 32 hex digits, dashed)."""
    h = run_id.split(":", 1)[1]
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def dataset_name(node: Node) -> tuple[str, str]:
    """OpenLineage ``(namespace, name)`` of an entity, following the naming spec:
    ``file`` + absolute path for local files, ``scheme://authority`` + path for remote
    data, ``lineage`` + ``kind/name`` for in-memory data and models."""
    a = node.attrs
    ol = a.get("openlineage")
    if isinstance(ol, Mapping) and ol.get("namespace") and ol.get("name"):
        return str(ol["namespace"]), str(ol["name"])
    uri = a.get("uri")
    if isinstance(uri, str) and "://" in uri:
        p = urlparse(uri)
        return f"{p.scheme}://{p.netloc}", p.path or "/"
    path = a.get("abspath") or a.get("path")
    if node.kind == "dataset" and isinstance(path, str) and path:
        return "file", path
    return "lineage", f"{node.kind}/{node.name or node.id.split(':', 1)[1]}"


def _version(node: Node) -> str:
    digests = node.attrs.get("digests")
    if node.attrs.get("content_hashed") is False and isinstance(digests, Mapping) and digests:
        algo, value = sorted(digests.items())[0]
        return f"{algo}:{value}"
    return node.id.split(":", 1)[1]


def _job(run: Node, namespace: str) -> tuple[str, str]:
    ol = run.attrs.get("openlineage")
    if isinstance(ol, Mapping) and ol.get("job_namespace") and ol.get("job_name"):
        return str(ol["job_namespace"]), str(ol["job_name"])
    exp = run.attrs.get("experiment") or "default"
    name = run.name or run.id.split(":", 1)[1][:8]
    return namespace, name if exp == "default" else f"{exp}.{name}"


# ---------------------------------------------------------------------------
# export


@dataclass(frozen=True)
class _RunPlan:
    """What the two events of one run are made of (shared by `events` and `_event_lines`)."""

    uuid: str
    start_time: str | None
    end: str | None
    end_time: str | None
    run_facets: dict[str, Any]
    end_facets: dict[str, Any]
    job: dict[str, Any]
    inputs: list[str]
    outputs: list[str]
    #: what ``job["facets"]`` is made of (code node, command): runs of one script share it
    job_key: tuple[str, str] = ("", "")


def _plans(sc: Scope, namespace: str) -> tuple[Iterator[_RunPlan], Any]:
    """The per-run plans of ``sc`` and ``ds(node_id) -> dataset dict`` (memoized: a
    dataset many runs read is described once)."""
    nodes = {n.id: n for n in sc.nodes}
    used: dict[str, dict[str, str | None]] = {}  # run -> its inputs, each with its first role
    made: dict[str, list[str]] = {}
    code: dict[str, str] = {}
    for e in sc.edges:
        if e.rel == "used" and e.dst in nodes:
            if e.role == "code":
                code[e.src] = e.dst
            elif nodes[e.dst].kind in _IO_KINDS:
                used.setdefault(e.src, {}).setdefault(e.dst, e.role)
        elif e.rel == "was_generated_by" and e.src in nodes:
            made.setdefault(e.dst, []).append(e.src)
    cache: dict[str, dict[str, Any]] = {}
    job_facets: dict[tuple[str, str], dict[str, Any]] = {}  # the many runs of one script share one

    def ds(node_id: str) -> dict[str, Any]:
        doc = cache.get(node_id)
        if doc is None:
            doc = cache[node_id] = _dataset(nodes[node_id])
        return doc

    def plans() -> Iterator[_RunPlan]:
        for run in sc.nodes:
            if run.kind != "run" or run.attrs.get("experiment") == IMPORT_EXPERIMENT:
                continue
            a = run.attrs
            job_ns, job_name = _job(run, namespace)
            run_facets = _run_facets(run, nodes, made.get(run.id, []), namespace)
            inputs = used.get(run.id, {})
            if "lineage_ml" in run_facets and any(r not in (None, "input") for r in inputs.values()):
                # what each input was for (training, testing, …), in the order of the
                # events' inputs: OpenLineage has no word for it, and held-out data read
                # back as plain input would count as training data
                run_facets["lineage_ml"] = {**run_facets["lineage_ml"], "inputRoles": [r or "input" for r in inputs.values()]}
            end = _END.get(str(a.get("status")))
            end_facets = run_facets
            if end == "FAIL":
                end_facets = {**run_facets, "errorMessage": _facet("errorMessage", message=str(a.get("error") or a.get("status")),
                                                                  programmingLanguage="python")}
            code_node = nodes.get(code.get(run.id, ""))
            if "lineage_ml" in run_facets and code_node is not None:
                # sourceCodeLocation has no word for uncommitted changes: without this a
                # dirty tree reads back as its clean commit
                run_facets["lineage_ml"] = {**run_facets["lineage_ml"], "code": _code_state(code_node)}
            start_time = a.get("started_at") or run.created_at
            command = a.get("command")
            job_key = (code.get(run.id, ""), json.dumps(command) if isinstance(command, list) else "")
            jf = job_facets.get(job_key)
            if jf is None:
                jf = job_facets[job_key] = _job_facets(run, nodes.get(job_key[0]))
            yield _RunPlan(uuid=run_uuid(run.id), start_time=start_time, end=end, end_time=a.get("ended_at") or start_time,
                           run_facets=run_facets, end_facets=end_facets,
                           job={"namespace": job_ns, "name": job_name, "facets": jf},
                           inputs=list(inputs), outputs=list(dict.fromkeys(made.get(run.id, []))),
                           job_key=job_key)

    return plans(), ds


def events(sc: Scope, *, namespace: str = "lineage") -> Iterator[dict[str, Any]]:
    """The RunEvents of every run in ``sc`` (runs recording imports excluded), each
    run's START then its COMPLETE or FAIL; a run still running has only its START."""
    plans, ds = _plans(sc, namespace)
    for p in plans:
        inputs = [ds(i) for i in p.inputs]
        yield {"eventType": "START", "eventTime": p.start_time, "producer": PRODUCER, "schemaURL": RUN_EVENT_SCHEMA,
               "run": {"runId": p.uuid, "facets": p.run_facets}, "job": p.job, "inputs": inputs, "outputs": []}
        if p.end is not None:
            yield {"eventType": p.end, "eventTime": p.end_time, "producer": PRODUCER, "schemaURL": RUN_EVENT_SCHEMA,
                   "run": {"runId": p.uuid, "facets": p.end_facets}, "job": p.job, "inputs": inputs,
                   "outputs": [ds(o) for o in p.outputs]}


def _event_lines(sc: Scope, namespace: str) -> Iterator[str]:
    """`events` as JSON text, the same documents key for key, assembled from pieces
    encoded once: a run's facets and job serve both its events, a dataset every run
    that reads or writes it. Encoding whole events was half the export's time."""
    enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    plans, ds = _plans(sc, namespace)
    cache: dict[str, str] = {}

    def ds_text(node_id: str) -> str:
        t = cache.get(node_id)
        if t is None:
            t = cache[node_id] = enc(ds(node_id))
        return t

    head = ',"producer":' + enc(PRODUCER) + ',"schemaURL":' + enc(RUN_EVENT_SCHEMA) + ',"run":{"runId":'
    facets_text: dict[tuple[str, str], str] = {}
    for p in plans:
        ft = facets_text.get(p.job_key)
        if ft is None:
            ft = facets_text[p.job_key] = enc(p.job["facets"])
        job = f'{{"namespace":{enc(p.job["namespace"])},"name":{enc(p.job["name"])},"facets":{ft}}}'
        uuid = enc(p.uuid)
        run_facets = enc(p.run_facets)
        inputs = ",".join(map(ds_text, p.inputs))
        yield (f'{{"eventType":"START","eventTime":{enc(p.start_time)}{head}{uuid},"facets":{run_facets}}},'
               f'"job":{job},"inputs":[{inputs}],"outputs":[]}}')
        if p.end is not None:
            end_facets = run_facets if p.end_facets is p.run_facets else enc(p.end_facets)
            outputs = ",".join(map(ds_text, p.outputs))
            yield (f'{{"eventType":"{p.end}","eventTime":{enc(p.end_time)}{head}{uuid},"facets":{end_facets}}},'
                   f'"job":{job},"inputs":[{inputs}],"outputs":[{outputs}]}}')


def _facet(kind: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": FACET_SCHEMAS[kind], **fields}


def _dataset(node: Node) -> dict[str, Any]:
    ns, name = dataset_name(node)
    facets: dict[str, Any] = {"version": _facet("version", datasetVersion=_version(node))}
    cols = node.attrs.get("columns")
    if isinstance(cols, list) and cols:
        # (an imported schema's types, else a DataFrame's dtypes: `hashing.describe_frame`)
        schema = node.attrs.get("schema") or node.attrs.get("dtypes")
        types: Mapping[str, Any] = schema if isinstance(schema, Mapping) else {}
        fields = []
        for i, c in enumerate(cols):
            f: dict[str, Any] = {"name": str(c), "ordinal_position": i + 1}
            if types.get(c):
                f["type"] = str(types[c])
            fields.append(f)
        facets["schema"] = _facet("schema", fields=fields)
    return {"namespace": ns, "name": name, "facets": facets}


def _job_facets(run: Node, code: Node | None) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if code is not None:
        c = code.attrs
        repo = c.get("repo")
        url = repo if isinstance(repo, str) and "://" in repo else ("file://" + str(c["root"]) if c.get("root") else None)
        if url:
            loc = {"type": "git" if c.get("git") else "file", "url": url}
            if repo:
                loc["repoUrl"] = str(repo)
            if c.get("entry_point"):
                loc["path"] = str(c["entry_point"])
            if c.get("commit"):
                # (`git describe --dirty`'s form: a consumer must not take it for the commit)
                loc["version"] = str(c["commit"]) + ("-dirty" if c.get("dirty") else "")
            if c.get("branch"):
                loc["branch"] = str(c["branch"])
            facets["sourceCodeLocation"] = _facet("sourceCodeLocation", **loc)
    command = run.attrs.get("command")
    if isinstance(command, list) and command:
        text = " ".join(str(x) for x in command)
        lang = "python" if any(str(x).endswith(".py") for x in command[:3]) else "shell"
        facets["sourceCode"] = _facet("sourceCode", language=lang, sourceCode=text)
    return facets


def _run_facets(run: Node, nodes: Mapping[str, Node], outputs: list[str], namespace: str) -> dict[str, Any]:
    a = run.attrs
    models = []
    for o in outputs:
        m = nodes.get(o)
        if m is not None and m.kind == "model":
            entry: dict[str, Any] = {"id": m.id, "name": m.name}
            if m.attrs.get("class"):
                entry["class"] = str(m.attrs["class"])
            if isinstance(m.attrs.get("params"), Mapping):
                entry["hyperparameters"] = dict(m.attrs["params"])
            models.append(entry)
    ml: dict[str, Any] = {"_producer": PRODUCER, "_schemaURL": ML_FACET_SCHEMA, "lineageId": run.id,
                          "experiment": str(a.get("experiment") or "default"),
                          "params": {str(k): (None if v is None else str(v)) for k, v in (a.get("params") or {}).items()},
                          "metrics": {str(k): _number(v) for k, v in (a.get("metrics") or {}).items()},
                          "tags": {str(k): (None if v is None else str(v)) for k, v in (a.get("tags") or {}).items()},
                          "models": models}
    if a.get("status") in RUN_STATUSES:
        ml["status"] = a["status"]
    facets: dict[str, Any] = {"lineage_ml": ml}
    parent = a.get("parent_run")
    if isinstance(parent, str) and parent.startswith("run:") and is_hex(parent[4:]) and len(parent) == 36:
        pnode = nodes.get(parent)
        pns, pname = _job(pnode, namespace) if pnode is not None else (namespace, parent[4:12])
        facets["parent"] = _facet("parent", run={"runId": run_uuid(parent)}, job={"namespace": pns, "name": pname})
    return facets


def _code_state(code: Node) -> dict[str, Any]:
    """Our facet's ``code``: the code node's id and whether the tree had uncommitted changes."""
    out: dict[str, Any] = {"id": code.id, "dirty": bool(code.attrs.get("dirty"))}
    if code.attrs.get("diff_digest"):
        out["diffDigest"] = str(code.attrs["diff_digest"])
    return out


def _number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None


def write_events(sc: Scope, path: str | os.PathLike[str], *, namespace: str = "lineage") -> int:
    """Write the events as JSON lines (``-`` for stdout); returns how many."""
    n = 0
    out: IO[str] = sys.stdout if os.fspath(path) == "-" else open(path, "w", encoding="utf-8")  # noqa: SIM115
    try:
        lines: list[str] = []
        for line in _event_lines(sc, namespace):
            lines.append(line)
            if len(lines) == 1000:  # one write per thousand events, not two per event
                out.write("\n".join(lines) + "\n")
                n += len(lines)
                lines = []
        if lines:
            out.write("\n".join(lines) + "\n")
            n += len(lines)
    finally:
        if out is not sys.stdout:
            out.close()
    return n


def post_events(evs: Iterable[Mapping[str, Any]], url: str, *, retries: int = 3, timeout: float = 10.0,
                backoff: float = 0.5) -> int:
    """POST each event as JSON to an OpenLineage HTTP endpoint (Marquez's
    ``/api/v1/lineage``), retrying connection failures and 5xx answers; returns how many.

    Raises InvalidInputError naming the URL and the reason when the endpoint refuses
    (a 4xx, or still failing after ``retries``)."""
    if not url.startswith(("http://", "https://")):
        raise InvalidInputError(f"--url must be an http(s) URL, got {url!r}")
    n = 0
    for ev in evs:
        body = json.dumps(ev).encode()
        for attempt in range(retries + 1):
            req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as resp:  # (the user's own URL)
                    resp.read()
                break
            except urllib.error.HTTPError as exc:
                if exc.code < 500 or attempt == retries:
                    detail = exc.read()[:200].decode("utf-8", "replace").strip()
                    raise InvalidInputError(f"{url} refused event {n + 1}: HTTP {exc.code} {exc.reason}"
                                            + (f": {detail}" if detail else "")) from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt == retries:
                    reason = getattr(exc, "reason", exc)
                    raise InvalidInputError(f"cannot post to {url}: {reason} (after {retries + 1} attempts; "
                                            f"{n} event(s) sent)") from None
            time.sleep(backoff * (2 ** attempt))
        n += 1
    return n


# ---------------------------------------------------------------------------
# validation against the shipped schemas


@cache
def _registry() -> Any:
    from referencing import Registry, Resource

    resources = []
    for p in sorted((SCHEMA_DIR / "openlineage").rglob("*.json")) + [SCHEMA_DIR / "LineageMLRunFacet.json"]:
        doc = json.loads(p.read_text(encoding="utf-8"))
        resources.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(resources)


@cache
def _validator(schema_url: str) -> Any:
    import jsonschema

    cls = jsonschema.Draft202012Validator
    return cls({"$ref": schema_url}, registry=_registry(), format_checker=cls.FORMAT_CHECKER)


def known_schema(url: str) -> bool:
    """True when ``url`` (a facet's ``_schemaURL``) is one of the shipped schemas."""
    base = url.split("#", 1)[0]
    try:
        _registry().contents(base)
    except LookupError:
        return False
    return True


def validate_event(event: Any) -> list[str]:
    """Problems of a RunEvent against the spec (and of each facet against its own
    schema when it is a shipped one): ``["at run.runId: 'x' is not a 'uuid'", …]``;
    empty when valid."""
    problems = [_problem(e) for e in _validator(RUN_EVENT_SCHEMA).iter_errors(event)]
    if problems or not isinstance(event, Mapping):
        return problems
    for where, facets in _facets_of(event):
        for name, facet in facets.items():
            url = facet.get("_schemaURL") if isinstance(facet, Mapping) else None
            if isinstance(url, str) and "#" in url and known_schema(url):
                try:
                    v = _validator(url)
                except (LookupError, ValueError):  # a pointer that does not resolve: base checks only
                    continue
                problems += [f"{where}.{name}: {_problem(e)}" for e in v.iter_errors(facet)]
    return problems


def _facets_of(event: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for key in ("run", "job"):
        f = (event.get(key) or {}).get("facets")
        if isinstance(f, Mapping):
            yield f"{key}.facets", f
    for key in ("inputs", "outputs"):
        for i, d in enumerate(event.get(key) or []):
            if isinstance(d, Mapping) and isinstance(d.get("facets"), Mapping):
                yield f"{key}[{i}].facets", d["facets"]


def _problem(err: Any) -> str:
    path = ".".join(str(p) for p in err.absolute_path)
    msg = err.message if len(err.message) < 160 else err.message[:157] + "..."
    return f"{msg}" + (f" (at {path})" if path else "")


# ---------------------------------------------------------------------------
# import


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
    run's end (a producer that rotates files) takes it from there. Events our own export wrote (they carry
    the ``lineage_ml`` facet) come back as they were: models as models, runs in their
    experiment. Raises InvalidInputError for bad input, before anything is written."""
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
        group[:0] = [ev for ev in kept.get(run_id, ()) if _key(ev) not in {_key(e) for e in group}]
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
                batch.pending += [_slim(ev) for ev in group if _key(ev) not in {_key(e) for e in kept.get(run_id, ())}]
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
