"""OpenLineage (spec 2-0-2): runs as RunEvents out, other producers' events in.

Out (`events`): per run a START event and, once it ended, a COMPLETE or FAIL event,
with the run's UUID (its id's 32 hex digits), job namespace and name, input and output
datasets (``version`` facet: the content digest; ``schema`` facet when columns are
known), the ``sourceCodeLocation`` / ``sourceCode`` job facets, the ``parent`` run
facet, ``errorMessage`` on failure, and ``lineage_ml``, a custom run facet with the
params, latest metrics and models (its schema ships in ``schemas/``). Every event
validates against the spec's JSON Schemas, shipped in ``schemas/openlineage/``
(`validate_event`).

In (`import_openlineage`, in `openlineage_import`): a JSON-lines stream (Airflow, Spark, dbt, the Python
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

from .._version import __version__
from ..errors import InvalidInputError
from ..model import RUN_STATUSES, Node, is_hex
from ..store import Store
from .bulk import IMPORT_EXPERIMENT, ImportResult
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
_IO_KINDS = ("dataset", "model", "artifact", "prediction")


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
            # (a DVC stage's script is a dataset it used in the role `code`: no code state)
            if "lineage_ml" in run_facets and code_node is not None and code_node.kind == "code":
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


def import_openlineage(store: Store, source: str | os.PathLike[str] | IO[str]) -> ImportResult:
    """See `openlineage_import.import_openlineage` (kept here: callers name this module)."""
    from .openlineage_import import import_openlineage as run_import

    return run_import(store, source)
