"""W3C PROV out and in, through the `prov` package (extra ``[prov]``).

Out: every node becomes a PROV element (datasets, code, models, predictions, artifacts
and environments are entities, runs activities, agents agents) whose identifier is its
lineage id (one PROV namespace per kind, so ``dataset:3f2a…`` reads the same in PROV),
with ``lineage:kind``, ``lineage:name``, ``lineage:created_at`` and ``lineage:attrs``
(the attributes as canonical JSON) and ``prov:label``; runs carry their start and end
times. Relations map to ``used`` (with ``prov:role``), ``wasGeneratedBy``,
``wasDerivedFrom``, ``wasRevisionOf``, ``wasAssociatedWith``, ``wasAttributedTo`` and
``wasInformedBy``. PROV-JSON, PROV-N and PROV-XML are written by `prov` itself.

In: a PROV document written by us is rebuilt exactly (same ids, names, attributes,
relations, run params, tags, metrics and states). Elements of other producers get
ids from their qualified names and the kind their PROV class suggests (an activity
keeps its times); one that only relations name is kept too, with the kind of the end
it is at.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import hashing
from ..errors import InvalidInputError, foreign
from ..model import ENDED_STATUSES, KINDS, PROV_NAMES, Node, canonical_json, is_hex, make_id
from ..store import Store
from . import MissingExtraError, require
from .bulk import ImportBatch, ImportResult
from .graph import Scope

NS = "https://lineage-ml.dev/ns#"
ID_BASE = "https://lineage-ml.dev/id/"
FORMATS = {"prov-json": "json", "prov-n": "provn", "prov-xml": "xml"}
_RUN_STATE_KEYS = ("params", "tags", "metrics", "status", "ended_at", "exit_code", "error", "duration_s")


def to_document(sc: Scope) -> Any:
    """The scope as a ``prov.model.ProvDocument``."""
    require("prov", "prov")
    from prov.model import PROV_LABEL, PROV_ROLE, ProvDocument

    doc = ProvDocument()
    doc.add_namespace("lineage", NS)
    for kind in KINDS:
        doc.add_namespace(kind, f"{ID_BASE}{kind}/")
    present = set()
    for n in sc.nodes:
        if n.kind not in KINDS:
            continue
        present.add(n.id)
        attrs: dict[Any, Any] = {"lineage:kind": n.kind, "lineage:attrs": canonical_json(dict(n.attrs))}
        if n.name is not None:
            attrs["lineage:name"] = n.name
            attrs[PROV_LABEL] = n.name
        if n.created_at:
            attrs["lineage:created_at"] = n.created_at
        cls = KINDS[n.kind]
        if cls == "activity":
            doc.activity(n.id, n.attrs.get("started_at") or n.created_at, n.attrs.get("ended_at"), attrs)
        elif cls == "agent":
            doc.agent(n.id, attrs)
        else:
            doc.entity(n.id, attrs)
    for e in sc.edges:
        if e.src not in present or e.dst not in present:
            continue
        extra: dict[Any, Any] = {}
        if e.role is not None:
            extra[PROV_ROLE if e.rel == "used" else "lineage:role"] = e.role
        relate = PROV_NAMES.get(e.rel)  # the prov package names its methods as PROV does
        if relate is not None:
            getattr(doc, relate)(e.src, e.dst, other_attributes=extra or None)
    return doc


def write(sc: Scope, path: str | os.PathLike[str], fmt: str) -> int:
    """Write the scope as PROV-JSON (`write_json`), PROV-N or PROV-XML (through the
    prov package); returns the number of PROV records written."""
    if fmt == "prov-json":
        return write_json(sc, path)
    doc = to_document(sc)
    serializer = FORMATS[fmt]
    from prov.serializers import DoNotExist

    try:
        text = doc.serialize(format=serializer, **({"indent": 1} if serializer == "json" else {}))
    except DoNotExist:  # PROV-XML needs lxml, an extra of prov's own
        raise MissingExtraError(f"{fmt} needs lxml; install it with: pip install 'lineage-ml[prov]'") from None
    Path(path).write_text(text, encoding="utf-8")
    return len(doc.get_records())


#: the PROV attributes naming the two ends of each relation (as the prov package
#: writes and reads them); a revision is a derivation
_ENDS = {
    "used": ("prov:activity", "prov:entity"),
    "was_generated_by": ("prov:entity", "prov:activity"),
    "was_derived_from": ("prov:generatedEntity", "prov:usedEntity"),
    "was_revision_of": ("prov:generatedEntity", "prov:usedEntity"),
    "was_associated_with": ("prov:activity", "prov:agent"),
    "was_attributed_to": ("prov:entity", "prov:agent"),
    "was_informed_by": ("prov:informed", "prov:informant"),
}
#: PROV-JSON's key for each relation, and its two ends (a revision is written as a
#: wasDerivedFrom of type prov:Revision, as the prov package does)
_JSON_RELATIONS = {rel: ("wasDerivedFrom" if rel == "was_revision_of" else PROV_NAMES[rel], *ends)
                   for rel, ends in _ENDS.items()}
_REVISION = {"$": "prov:Revision", "type": "xsd:QName"}


def _prov_time(text: Any) -> str | None:
    """A time as the prov package writes it back (``+00:00``, not ``Z``)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).isoformat()
    except ValueError:
        return str(text)


def write_json(sc: Scope, path: str | os.PathLike[str]) -> int:
    """Write the scope as PROV-JSON, streamed: each record encoded and written as it is
    reached, one per line, never a whole document in memory; returns the number of
    records. ``prov.read()`` reads it back into a document equal to `to_document`'s
    (the prov package itself spent ~40 µs a record building its objects, then as
    long again serializing them).
    """
    from json.encoder import encode_basestring as q  # a JSON string literal, in C

    prefixes = {"lineage": NS, **{kind: f"{ID_BASE}{kind}/" for kind in KINDS}}
    present = {n.id for n in sc.nodes if n.kind in KINDS}
    count = 0
    buf: list[str] = []
    with open(path, "w", encoding="utf-8") as f:

        def section(name: str, records: Any) -> None:
            # each record's text is assembled from quoted strings: encoding a dict per
            # record through json's encoder was most of the export's time
            nonlocal count, buf
            first = True
            for text in records:
                buf.append(f",\n{q(name)}:{{\n" if first else ",\n")
                buf.append(text)
                first = False
                count += 1
                if len(buf) > 4000:
                    f.write("".join(buf))
                    buf = []
            if not first:
                buf.append("\n}")

        def elements(cls: str) -> Any:
            for n in sc.nodes:
                if KINDS.get(n.kind) != cls:
                    continue
                parts = []
                if cls == "activity":
                    start = _prov_time(n.attrs.get("started_at") or n.created_at)
                    end = _prov_time(n.attrs.get("ended_at"))
                    if start:
                        parts.append(f'"prov:startTime":{q(start)}')
                    if end:
                        parts.append(f'"prov:endTime":{q(end)}')
                parts.append(f'"lineage:kind":{q(n.kind)},"lineage:attrs":{q(canonical_json(dict(n.attrs)))}')
                if n.name is not None:
                    name = q(str(n.name))
                    parts.append(f'"lineage:name":{name},"prov:label":{name}')
                if n.created_at:
                    parts.append(f'"lineage:created_at":{q(str(n.created_at))}')
                yield f"{q(n.id)}:{{{','.join(parts)}}}"

        f.write('{"prefix":' + json.dumps(prefixes, separators=(",", ":")))
        for cls in ("entity", "activity", "agent"):
            section(cls, elements(cls))
        by_key: dict[str, list[Any]] = {}
        for e in sc.edges:
            spec = _JSON_RELATIONS.get(e.rel)
            if spec is not None and e.src in present and e.dst in present:
                by_key.setdefault(spec[0], []).append(e)
        blank = iter(range(1, 1 << 62))
        revision = json.dumps(_REVISION, separators=(",", ":"))

        def relations(edges: list[Any]) -> Any:
            for e in edges:
                _, src, dst = _JSON_RELATIONS[e.rel]
                extra = ""
                if e.role is not None:
                    extra = f',"{"prov:role" if e.rel == "used" else "lineage:role"}":{q(str(e.role))}'
                if e.rel == "was_revision_of":
                    extra += f',"prov:type":{revision}'
                yield f'"_:id{next(blank)}":{{"{src}":{q(e.src)},"{dst}":{q(e.dst)}{extra}}}'

        for key, edges in by_key.items():
            section(key, relations(edges))
        buf.append("\n}\n")
        f.write("".join(buf))
    return count


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".provn", ".pn"):
        return "provn"
    if suffix in (".xml", ".provx"):
        return "xml"
    return "json"


def import_prov(store: Store, path: str | os.PathLike[str]) -> ImportResult:
    """Rebuild the graph a PROV document describes (PROV-JSON, PROV-N by `.provn`, or
    PROV-XML by `.xml`); returns the counts. Raises InvalidInputError for an unreadable
    file, before anything is written."""
    require("prov", "prov")
    import prov
    from prov.model import ProvActivity, ProvAgent, ProvEntity

    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"no such file: {path}")
    fmt = _format_of(p)
    if fmt == "provn":
        raise InvalidInputError(f"{path}: the prov package cannot read PROV-N; export as prov-json or prov-xml to import")
    # prov raises ValueError, KeyError, lxml and json errors alike: one line
    with foreign(f"{path}: not a readable PROV-{fmt.upper()} document ({{reason}})"):
        doc = prov.read(str(p), format=fmt)
    doc = doc.flattened() if doc.has_bundles() else doc
    if not doc.get_records():
        raise InvalidInputError(f"{path} holds no PROV records (no entity, activity, agent or relation)")
    batch = ImportBatch(store, tool="prov", source=str(p.resolve()))
    ids: dict[str, str] = {}
    for rec in doc.get_records():
        if isinstance(rec, (ProvEntity, ProvActivity, ProvAgent)):
            ids[str(rec.identifier)] = _add_element(batch, rec)
    for rec in doc.get_records():
        if rec.is_relation():
            _add_relation(batch, rec, ids)  # (adds the ends it names that no element declares)
    return batch.commit()


def _one(rec: Any, name: str) -> Any:
    values = [v for k, v in rec.attributes if str(k) == name]
    return values[0] if values else None


def _add_element(batch: ImportBatch, rec: Any) -> str:
    from prov.model import ProvActivity, ProvAgent

    qn = str(rec.identifier)
    kind = _one(rec, "lineage:kind")
    kind = str(kind) if kind is not None else ("run" if isinstance(rec, ProvActivity) else "agent" if isinstance(rec, ProvAgent) else "dataset")
    if kind not in KINDS:
        raise InvalidInputError(f"{batch.source}: element {qn} has unknown lineage:kind {kind!r}")
    node_id, local = _node_id(kind, rec.identifier)
    raw = _one(rec, "lineage:attrs")
    try:
        attrs = json.loads(str(raw)) if raw is not None else {}
    except ValueError:
        raise InvalidInputError(f"{batch.source}: element {qn} has lineage:attrs that are not JSON") from None
    if not isinstance(attrs, dict):
        raise InvalidInputError(f"{batch.source}: element {qn} has lineage:attrs that are not a JSON object "
                                f"(a {type(attrs).__name__})")
    if raw is None:  # a foreign element: its attributes as text, an activity's times as a run's
        attrs = {str(k): str(v) for k, v in rec.attributes if not str(k).startswith("prov:")}
        attrs["prov_id"] = rec.identifier.uri
        if isinstance(rec, ProvActivity):
            attrs.setdefault("experiment", "default")  # (DESIGN §1: a run's experiment unless set)
        if isinstance(rec, ProvActivity) and rec.get_startTime() is not None:
            attrs["started_at"] = _utc_iso(rec.get_startTime())
            if rec.get_endTime() is not None:  # (without one, whether it ended is unknown: no status)
                attrs.update(ended_at=_utc_iso(rec.get_endTime()), status="finished")
    name = _one(rec, "lineage:name")
    if name is None:
        name = _one(rec, "prov:label") or (local if raw is None else None)
    created = _one(rec, "lineage:created_at")
    created_at = str(created) if created is not None else attrs.get("started_at")
    if kind == "run":
        _add_run(batch, node_id, None if name is None else str(name), dict(attrs), created_at)
    elif kind == "prediction":
        batch.add_node(Node(node_id, kind, None, attrs, created_at))
    else:
        batch.add_node(Node(node_id, kind, None if name is None else str(name), attrs, created_at))
    return node_id


def _node_id(kind: str, identifier: Any) -> tuple[str, str]:
    """The node id of a PROV element (a ``prov`` QualifiedName) and its local part:
    our own id when we wrote it (``dataset:3f2a…``), else one derived from its URI."""
    head, _, local = str(identifier).partition(":")
    if head == kind and is_hex(local):
        return make_id(kind, local), local
    digest = hashing.hash_text(f"prov:{identifier.uri}")
    return make_id(kind, digest[:32] if kind in ("run", "prediction") else digest), local


def _utc_iso(t: datetime) -> str:
    """A PROV time in lineage's form (UTC, microseconds, ``Z``); xsd:dateTime may omit
    the zone, and such a time is taken as UTC."""
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _add_run(batch: ImportBatch, node_id: str, name: str | None, attrs: dict[str, Any], created_at: str | None) -> None:
    """A run as the store keeps it: params, tags, metrics and states as rows, the rest
    as attributes (an exported run's attrs carry its state, see `Store.with_run_state`).
    Like every imported run it says where it came from (``imported_from``), unless it
    already did (a run another import brought, then exported to PROV)."""
    state = {k: attrs.pop(k) for k in _RUN_STATE_KEYS if k in attrs}
    attrs.setdefault("imported_from", batch.source)
    started = attrs.get("started_at") or created_at
    batch.add_node(Node(node_id, "run", name, attrs, created_at or started))
    if isinstance(state.get("params"), Mapping):
        batch.add_rows("params", [(node_id, k, v) for k, v in state["params"].items()])
    if isinstance(state.get("tags"), Mapping):
        batch.add_rows("tags", [(node_id, k, v) for k, v in state["tags"].items()])
    end = state.get("ended_at") or started
    if isinstance(state.get("metrics"), Mapping):
        batch.add_rows("metrics", [(node_id, k, v, 0, end, None, None) for k, v in state["metrics"].items()])
    status = state.get("status")
    if status in ENDED_STATUSES and started:
        batch.add_rows("run_states", [(node_id, "running", started, None, None, None),
                                      (node_id, status, end, state.get("exit_code"), state.get("error"), None)])


#: the prov package's record classes read back, as our relations and their ends
_RELATIONS = {cls: (rel, *_ENDS[rel]) for cls, rel in {
    "ProvUsage": "used",
    "ProvGeneration": "was_generated_by",
    "ProvDerivation": "was_derived_from",
    "ProvAssociation": "was_associated_with",
    "ProvAttribution": "was_attributed_to",
    "ProvCommunication": "was_informed_by",
}.items()}


#: the kind of an element PROV-DM lets a relation name without declaring it, by the
#: end it is at (as `_add_element` reads a declared entity, activity or agent)
_END_KINDS = {"prov:entity": "dataset", "prov:generatedEntity": "dataset", "prov:usedEntity": "dataset",
              "prov:activity": "run", "prov:informed": "run", "prov:informant": "run", "prov:agent": "agent"}


def _add_relation(batch: ImportBatch, rec: Any, ids: dict[str, str]) -> None:
    spec = _RELATIONS.get(type(rec).__name__)
    if spec is None:
        return  # a PROV relation lineage has no counterpart for (delegation, influence, …)
    rel, src_attr, dst_attr = spec
    src, dst = _one(rec, src_attr), _one(rec, dst_attr)
    if src is None or dst is None:
        return  # (the prov package already refuses a relation without its two ends)
    for end, attr in ((src, src_attr), (dst, dst_attr)):
        if str(end) not in ids:
            ids[str(end)] = _add_undeclared(batch, end, _END_KINDS[attr])
    types = {str(v) for k, v in rec.attributes if str(k) == "prov:type"}
    if rel == "was_derived_from" and "prov:Revision" in types:
        rel = "was_revision_of"
    role = _one(rec, "prov:role") if rel == "used" else _one(rec, "lineage:role")
    batch.add_edge(ids[str(src)], ids[str(dst)], rel, None if role is None else str(role))


def _add_undeclared(batch: ImportBatch, identifier: Any, kind: str) -> str:
    """A node for an element only a relation names (PROV-DM allows it): kept, so its
    relations are, with the kind of the end it is at and its name from its qualified
    name; returns its id."""
    node_id, local = _node_id(kind, identifier)
    if batch.has(node_id):  # (recorded already: left as it is)
        return node_id
    attrs = {"prov_id": identifier.uri, "prov_declared": False}
    if kind == "run":
        _add_run(batch, node_id, local, attrs, None)
    else:
        batch.add_node(Node(node_id, kind, local, attrs))
    return node_id

