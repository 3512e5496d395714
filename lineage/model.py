"""The data model: node kinds, relations, the Node and Edge value types, ids and references.

This module imports nothing else of lineage's, so every layer may use it.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

# kind -> W3C PROV class (DESIGN.md §1)
KINDS: dict[str, str] = {
    "dataset": "entity",
    "code": "entity",
    "model": "entity",
    "prediction": "entity",
    "artifact": "entity",
    "environment": "entity",
    "run": "activity",
    "agent": "agent",
}

# relation -> (kinds allowed at the source, kinds allowed at the destination).
# Stored in PROV's direction: from the later thing to what it depends on.
ENTITY_KINDS = frozenset(k for k, c in KINDS.items() if c == "entity")
RELATIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "used": (frozenset({"run"}), ENTITY_KINDS),
    "was_generated_by": (ENTITY_KINDS, frozenset({"run"})),
    "was_derived_from": (ENTITY_KINDS, ENTITY_KINDS),
    "was_associated_with": (frozenset({"run"}), frozenset({"agent"})),
    "was_attributed_to": (ENTITY_KINDS, frozenset({"agent"})),
    "was_informed_by": (frozenset({"run"}), frozenset({"run"})),
    "was_revision_of": (frozenset({"dataset"}), frozenset({"dataset"})),
}



def relation_problem(src: str, dst: str, rel: str) -> str | None:
    """Why the edge ``src --rel--> dst`` breaks `RELATIONS` (DESIGN.md §1: a `used`
    edge goes from a run to an entity, never the other way), in one line; None when
    it fits. The kinds are read from the ids (``kind:hex``)."""
    allowed = RELATIONS.get(rel)
    if allowed is None:
        return f"unknown relation {rel!r} (expected one of {', '.join(RELATIONS)})"
    src_kind, dst_kind = str(src).partition(":")[0], str(dst).partition(":")[0]
    if src_kind in allowed[0] and dst_kind in allowed[1]:
        return None
    return (f"a {rel!r} edge goes from {'/'.join(sorted(allowed[0]))} to {'/'.join(sorted(allowed[1]))}, "
            f"not from {src} to {dst}")


#: relations a provenance walk follows; version history is not provenance.
PROVENANCE_RELATIONS: tuple[str, ...] = tuple(r for r in RELATIONS if r != "was_revision_of")

#: a run's status (DESIGN §1), and those it can end with
RUN_STATUSES = ("running", "finished", "failed", "crashed")
ENDED_STATUSES = tuple(s for s in RUN_STATUSES if s != "running")
#: the role of the data a model scored (`lineage predict`'s input file): what the
#: predictions were made from, never what the model learned from
SCORED_ROLE = "scored"

#: the kinds in the order listings show them and blame breaks ties in: where things
#: come from (data, code, environment), what was done with them (run, model,
#: artifact, prediction), then who. The same kinds as `KINDS`, in another order.
LISTING_ORDER: tuple[str, ...] = ("dataset", "code", "environment", "run", "model", "artifact", "prediction", "agent")

#: PROV-JSON names of our relations
PROV_NAMES = {
    "used": "used",
    "was_generated_by": "wasGeneratedBy",
    "was_derived_from": "wasDerivedFrom",
    "was_associated_with": "wasAssociatedWith",
    "was_attributed_to": "wasAttributedTo",
    "was_informed_by": "wasInformedBy",
    "was_revision_of": "wasRevisionOf",
}

_HEX = re.compile(r"^[0-9a-f]+$")


def is_hex(text: str) -> bool:
    """True when ``text`` is non-empty lowercase-or-uppercase hexadecimal."""
    return bool(text) and _HEX.match(text.lower()) is not None


#: the alias prefix of MLflow's own run and model ids (``mlflow:RUN_ID``, ``mlflow:m-…``):
#: a way to find a node again, not a name a person gave it
MLFLOW_ID_PREFIX = "mlflow:"


def is_mlflow_id(name: str) -> bool:
    """True for an alias holding MLflow's own id (`MLFLOW_ID_PREFIX`), not a name."""
    return name.startswith(MLFLOW_ID_PREFIX)


def make_id(kind: str, hex_digest: str) -> str:
    """``kind:hex``; raises ValueError for an unknown kind or non-hex identity."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if not is_hex(hex_digest):
        raise ValueError(f"node identity must be hex, got {hex_digest!r}")
    return f"{kind}:{hex_digest.lower()}"


def split_id(node_id: str) -> tuple[str, str]:
    """``("dataset", "3f2a…")`` for ``"dataset:3f2a…"``; raises ValueError otherwise."""
    kind, sep, rest = node_id.partition(":")
    if not sep or kind not in KINDS or not is_hex(rest):
        raise ValueError(f"not a lineage id: {node_id!r}")
    return kind, rest


def version_number(versions: Sequence[Node], node_id: str) -> int | None:
    """N of ``NAME@N``: the place (from 1) of ``node_id`` among a name's versions,
    oldest first (as `Store.history` lists them); None when it is not one of them."""
    return next((i for i, v in enumerate(versions, 1) if v.id == node_id), None)


def short_id(node_id: str, n: int = 8) -> str:
    """The id cut to ``n`` hex digits, for labels: ``dataset:3f2a9c41``. A
    time-ordered id with a zero time field (a DVC stage's run, whose id must not
    depend on when it was seen) keeps 8 digits past it: the zeros alone name every
    such run, and a label should work as a reference.

    A prediction's id is never cut: a batch's ids share their leading (time)
    digits and differ only further on (`uuid7_batch`), and two batches logged in
    the same millisecond by two processes differ only in random digits, so no fixed
    prefix names one prediction in the store; the full id always does.

    A run's id (a UUIDv7) keeps at least 16 digits: its first 12 are the millisecond
    it started, which runs started together share (a sweep in one ``lg.batch()``, an
    import); the next 4 are the version digit and the counter that tells apart the
    runs one process starts in one millisecond (`new_uuid7_hex`)."""
    kind, _, rest = node_id.partition(":")
    if kind == "prediction":
        return node_id
    if rest.startswith("000000000000"):
        n = max(n, 20)
    elif kind == "run" and n >= 12 and len(rest) == 32:
        n = max(n, 16)
    return f"{kind}:{rest[:n]}"


# ---------------------------------------------------------------------------
# settings read on every write

# os.environ keeps its names and values encoded in a plain dict (`_data`), which
# `os.environ.get` reaches through ``__getitem__``: an unset name raises and catches
# a KeyError inside, about 2 µs against 0.3 for the dict's own ``get`` (issue 16:
# every logged value reads two settings that are almost never set). The dict is the
# live one that ``os.environ[...] = ...`` and ``del`` change, so nothing is cached.
_ENVIRON = os.environ
_ENVIRON_DATA: dict[Any, Any] | None = getattr(_ENVIRON, "_data", None)


def env(name: str, default: str = "") -> str:
    """``os.environ.get(name, default)``, without the exception of an unset name."""
    data = _ENVIRON_DATA
    if data is None:  # (another Python's os.environ)
        return _ENVIRON.get(name, default)
    key = _env_keys.get(name)
    if key is None:
        key = _env_keys[name] = _ENVIRON.encodekey(name)
    value = data.get(key)
    return default if value is None else _ENVIRON.decodevalue(value)


_env_keys: dict[str, Any] = {}  # (a few names, each encoded once)


# ---------------------------------------------------------------------------
# time and generated ids

def now_iso() -> str:
    """The current time as ISO-8601 UTC with microseconds: ``2026-11-26T05:00:33.123456Z``.

    The text up to the second is formatted once per second (issue 16: ``strftime``
    was 7 µs of every ledger event); the microseconds are the system clock's,
    floored, as ``datetime.now`` gives them."""
    sec, us = divmod(time.time_ns() // 1000, 1_000_000)
    last = _second[0]
    if last[0] != sec:
        last = _second[0] = (sec, _iso_second(sec))
    return f"{last[1]}.{us:06d}Z"


_second: list[tuple[int, str]] = [(-1, "")]


def iso_of_us(us: int) -> str:
    """Microseconds since the epoch as `now_iso`'s text (``2026-01-01T00:00:00.123000Z``):
    an imported time, a file's modification time. Formatted by hand, the text up to the
    second remembered (`_iso_second`): an import formats one per metric value."""
    sec, frac = divmod(us, 1_000_000)
    return f"{_iso_second(sec)}.{frac:06d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_second(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


_uuid_lock = threading.Lock()
_uuid_last = [0, 0]  # last millisecond, last 12-bit sequence


def new_uuid7_hex() -> str:
    """A UUIDv7 as 32 lowercase hex digits: time-sortable, monotonic within a process.

    Within one millisecond the 12-bit ``rand_a`` field is a counter, so ids made in
    a tight loop still sort in creation order (RFC 9562, method 1).
    """
    with _uuid_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _uuid_last[0]:
            ms = _uuid_last[0]
            seq = _uuid_last[1] + 1
            if seq > 0xFFF:  # counter exhausted: borrow the next millisecond
                ms, seq = ms + 1, 0
        else:
            seq = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count up
        _uuid_last[0], _uuid_last[1] = ms, seq
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand_b
    return f"{value:032x}"


_SEQ_HEX = [f"{s:03x}" for s in range(4096)]


def uuid7_batch(n: int, prefix: str = "") -> list[str]:
    """``n`` UUIDv7 hex ids in increasing order, cheaper than ``n`` calls for bulk
    writes; each after ``prefix`` (``"prediction:"``: the node ids themselves).

    Id ``i`` is ``(ms + i // 4096) << 80 | 0x7 << 76 | (i % 4096) << 64 | 0b10 << 62 |
    base | i`` (``base``: 30 random bits above the low 32), written as 32 hex digits.
    The hex is assembled from fixed-width parts rather than formatted from a 128-bit
    integer per id: within a block of 4096 ids everything but ``i % 4096`` is the
    same, and that is both the 3 hex digits of ``rand_a`` and the last 3 of the low
    32 bits, so an id is four joined texts (a third of the cost of formatting each
    id's counter and adding the prefix after, for 100,000 predictions).
    """
    with _uuid_lock:
        ms = max(time.time_ns() // 1_000_000, _uuid_last[0] + 1)
        _uuid_last[0], _uuid_last[1] = ms + n // 4096, 0xFFF
    base = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1) & ~0xFFFFFFFF
    variant_and_rand = f"{((0b10 << 62) | base) >> 32:08x}"  # bits 63..32 of the low half
    out: list[str] = []
    for block in range(0, n, 4096):
        head = f"{prefix}{ms + block // 4096:012x}7"
        # the low 32 bits, i = block + j: the block's 5 hex digits, then j's 3
        middle = f"{variant_and_rand}{(block & 0xFFFFFFFF) >> 12:05x}"
        out += [head + seq + middle + seq for seq in _SEQ_HEX[: min(4096, n - block)]]
    return out


def uuid7_time(hex_id: str) -> datetime:
    """The creation time a UUIDv7 hex id carries."""
    ms = int(hex_id[:12], 16)
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


# ---------------------------------------------------------------------------
# canonical JSON: the one encoding that digests and the ledger are computed over

#: How a person whose agent was erased reads where their name stood (an author, who
#: recorded a statement): the fact stays, and says that its person was erased.
ERASED_PERSON = "[erased]"


def agent_label(attrs: Mapping[str, Any]) -> str:
    """How an agent reads in a record: ``"Ada Lovelace <ada@example.com> (ada@gpu-1)"``,
    or ``"ada@gpu-1"`` when git names no one. (Here, below the store, because erasure
    must find the very text a record was written with.)"""
    account = f"{attrs.get('user') or 'unknown'}@{attrs.get('host') or 'unknown'}"
    person = " ".join(p for p in (attrs.get("name"), f"<{attrs['email']}>" if attrs.get("email") else None) if p)
    return f"{person} ({account})" if person else account


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: equal values give equal text.

    Strings that are not valid Unicode (lone surrogates: how Python hands over file
    names and arguments that are not UTF-8) cannot be written as UTF-8, so no digest
    could be taken over them; they are written as `clean_text` makes them. Any other
    value gives exactly ``json.dumps``'s text.
    """
    if _ENCODE is None:
        text = _CANONICAL.encode(value)
    else:
        try:
            text = "".join(_ENCODE(value, 0))
        except RecursionError:  # a value that holds itself: the encoder says so, as before
            text = _CANONICAL.encode(value)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            text = _CANONICAL.encode(_cleaned(value))
    return text


def _json_mapped(value: Any, leaf: Callable[[Any], Any], key: Callable[[Any], Any] = lambda k: k) -> Any:
    """``value`` as the plain JSON values it is written as (`_json_default` for the
    rest), with ``leaf`` applied to each scalar and ``key`` to each object key."""
    if isinstance(value, dict):
        return {key(k): _json_mapped(v, leaf, key) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_mapped(v, leaf, key) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return leaf(value)
    return _json_mapped(_json_default(value), leaf, key)


def _clean_scalar(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


def _cleaned(value: Any) -> Any:
    """``value`` with every string in it (keys too) passed through `clean_text`."""
    return _json_mapped(value, _clean_scalar, _clean_scalar)


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays, sets, paths: the things ML code hands us most often
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def clean_text(v: str) -> str:
    """``v`` as text SQLite (and UTF-8) can hold: lone surrogates, which is how Python
    hands over bytes that are not UTF-8 (file names, argv), become ``\\xNN`` escapes.
    Unchanged for any valid string (the common case costs one ``isascii``)."""
    if v.isascii():
        return v
    try:
        v.encode()
        return v
    except UnicodeEncodeError:
        try:
            return v.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a surrogate that no byte escape produced
            return v.encode("utf-8", "backslashreplace").decode()


# Built once: json.dumps with non-default options builds a new encoder on every call,
# which was a third of the cost of hashing a short row. Same options, same text.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)
# The C encoder `_CANONICAL.encode` builds on every call, built once (issue 16: for a
# node's few attrs, building it was half the cost). Same options and string encoder,
# so the same text; without the encoder's table of objects being written (it would be
# shared between threads), a value that holds itself ends in RecursionError, and is
# then handed to `_CANONICAL` for its usual ValueError.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_ENCODE: Callable[[Any, int], Any] | None = None if _c_make_encoder is None else _c_make_encoder(
    None, _json_default, json.encoder.encode_basestring, None, ":", ",", True, False, True)


def json_document(value: Any, *, indent: int | None = 2) -> str:
    """``value`` as a JSON document any parser reads (the ``--json`` outputs, report
    files): an infinite metric, which ``json`` would write as the bare token
    ``Infinity`` (not JSON; jq and browsers refuse it), is the string
    ``"Infinity"``/``"-Infinity"``, and a NaN ``"NaN"``, as protobuf's JSON mapping
    writes them (and MLflow's REST API with it)."""
    try:
        return json.dumps(value, indent=indent, ensure_ascii=False, default=_json_default, allow_nan=False)
    except ValueError:  # (only then is the document walked)
        return json.dumps(_json_mapped(value, _finite), indent=indent, ensure_ascii=False)


# json_document's options on one line, built once (json.dumps with options builds an
# encoder per call: a tenth of writing a prediction's line)
_LINE = json.JSONEncoder(ensure_ascii=False, default=_json_default, allow_nan=False)


def json_line(value: Any) -> str:
    """``value`` as `json_document` writes it, on one line."""
    try:
        return _LINE.encode(value)
    except ValueError:  # a non-finite float: as json_document maps it
        return json_document(value, indent=None)


def _finite(value: Any) -> Any:
    """A non-finite float as protobuf's JSON string for it; any other scalar as it is."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


#: an audit report's file suffix -> its format (`audit.report` writes by it; the CLI
#: refuses any other as bad usage, before any work)
REPORT_SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json"}


def local_path(uri: str) -> Path | None:
    """The local path a ``file:`` URI (``file:///abs``, ``file:./rel``; percent-escapes
    decoded) or a plain path names; None for another scheme (``s3://``, ``runs:/``,
    ``models:/``). A one-letter scheme is a Windows drive: a path."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or len(parsed.scheme) == 1:
        return Path(uri)
    return None


def human_size(n: Any, *, missing: str = "") -> str:
    """A byte count for people: ``"81.4 KB"``, ``"12 B"``; ``missing`` for a non-number."""
    try:
        f = float(n)
    except (TypeError, ValueError):
        return missing
    for unit in ("B", "KB", "MB", "GB"):
        if f < 1024:
            return f"{f:.0f} {unit}" if unit == "B" else f"{f:.1f} {unit}"
        f /= 1024
    return f"{f:.1f} TB"


# ---------------------------------------------------------------------------
# value types

_FLAT = frozenset({str, int, float, bool, type(None)})


def _flat_copy(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """``attrs`` as the JSON round trip ``json.loads(canonical_json(attrs))`` gives them,
    when they are flat (every key ASCII text, every value a plain scalar, its text
    ASCII, so nothing is converted or cleaned): then a shallow copy is that, at a
    twentieth of the cost (a prediction's attrs: `Subgraph.to_dict` of 300,000 of them
    took 6.6 s). None otherwise."""
    for key, value in attrs.items():
        kind = type(value)
        if kind not in _FLAT or type(key) is not str or not key.isascii() or (kind is str and not value.isascii()):
            return None
    return dict(attrs)


@dataclass(frozen=True)
class Node:
    """One node of the provenance graph."""

    id: str
    kind: str
    name: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    created_at: str | None = None

    @classmethod
    def from_row(cls, node_id: str, kind: str, name: str | None, attrs_json: str, created_at: str | None,
                 finish: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None) -> Node:
        """The node of a stored row whose ``attrs`` are still the row's JSON text: they
        are parsed on first use of `attrs` (then passed through ``finish``, when given,
        to add what other rows say: a run's state), and kept.

        A walk builds far more nodes than its caller reads the attrs of (a trace's
        tree shows names and ids), and parsing every row's JSON was a fifth of a
        trace's time (issue 16). The node is a `Node` like any other: ``attrs`` is
        the same plain dict once read, and equality, ``repr``, ``dataclasses.replace``
        and ``asdict``, copying and pickling all read it through the attribute.
        ``finish`` must not depend on anything that changes later.
        """
        node = object.__new__(cls)
        # frozen: the fields go straight into the instance dict, as unpickling does
        state = node.__dict__
        state["id"] = node_id
        state["kind"] = kind
        state["name"] = name
        state["created_at"] = created_at
        state["_attrs_json"] = attrs_json
        if finish is not None:
            state["_attrs_finish"] = finish
        return node

    if not TYPE_CHECKING:  # (hidden from mypy, which would otherwise accept any attribute name)

        def __getattr__(self, name: str) -> Any:
            # Only called when `name` is not in the instance dict: for `attrs`, that is a
            # node made by `from_row` whose JSON is not parsed yet (the dataclass keeps no
            # class attribute for a field with a default factory, so nothing shadows this).
            if name == "attrs":
                state = self.__dict__
                if "_attrs_json" in state:
                    attrs = json.loads(state["_attrs_json"])
                    finish = state.get("_attrs_finish")
                    if finish is not None:
                        attrs = finish(attrs)
                    # setdefault: two threads parsing at once still share one dict
                    return state.setdefault("attrs", attrs)
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> dict[str, Any]:
        # a pickled or copied node carries its parsed attrs, as any other node does
        state = dict(self.__dict__)
        if "_attrs_json" in state:
            state.setdefault("attrs", self.attrs)
            del state["_attrs_json"]
            state.pop("_attrs_finish", None)
        return state

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of DESIGN.md §5: ``{"id","kind","name","created_at","attrs"}``."""
        state = self.__dict__
        attrs: dict[str, Any] | None = None
        if "attrs" not in state and "_attrs_finish" not in state and "_attrs_json" in state:
            # A row's JSON not read yet, as the store writes it (canonical): its parse
            # is then what the round trip below gives, so one parse is saved. (Only
            # when its text is canonical; then the parse is a fresh copy, as required.)
            parsed = json.loads(state["_attrs_json"])
            if isinstance(parsed, dict) and canonical_json(parsed) == state["_attrs_json"]:
                attrs = parsed
        if attrs is None:
            attrs = _flat_copy(self.attrs)
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "created_at": self.created_at,
            "attrs": attrs if attrs is not None else json.loads(canonical_json(dict(self.attrs))),
        }

    @property
    def label(self) -> str:
        """A human label: the name when there is one, else the short id."""
        return self.name or short_id(self.id)

    def __str__(self) -> str:
        return f"{self.id} ({self.name})" if self.name else self.id


@dataclass(frozen=True, init=False)
class Edge:
    """A relation in PROV's direction: ``src`` depends on ``dst``."""

    src: str
    dst: str
    rel: str
    role: str | None = None

    def __init__(self, src: str, dst: str, rel: str, role: str | None = None) -> None:
        # The dataclass's own __init__ for a frozen class sets each field through
        # object.__setattr__: twice the cost of this, and a walk makes an Edge per row
        # (issue 16). The same fields, the same signature.
        state = self.__dict__
        state["src"] = src
        state["dst"] = dst
        state["rel"] = rel
        state["role"] = role

    def to_dict(self) -> dict[str, Any]:
        return {"src": self.src, "dst": self.dst, "rel": self.rel, "role": self.role}


# ---------------------------------------------------------------------------
# references (DESIGN.md §1): parsed here, resolved against the store in store/core.py

@dataclass(frozen=True)
class Ref:
    """A parsed reference. Exactly one of the forms applies.

    - ``kind`` + ``prefix``: ``dataset:3f2a`` (a hex prefix within a kind)
    - ``prefix`` alone: ``3f2a9c`` (bare hex; also tried as a name when nothing matches)
    - ``kind`` + ``name``: ``model:random_forest``
    - ``name`` (+ ``version``): ``random_forest`` or ``train@2``
    - ``request``: ``request:abc-123``
    - ``name`` + ``label``: ``risk@production`` (the model version holding a promotion label)
    """

    text: str
    kind: str | None = None
    prefix: str | None = None
    name: str | None = None
    version: int | None = None
    request: str | None = None
    label: str | None = None


_VERSION = re.compile(r"^(?P<name>.+)@(?P<n>[0-9]+)$")
#: a promotion label: a word that is not a version number (``production``, ``champion``)
LABEL_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_LABEL = re.compile(r"^(?P<name>.+)@(?P<label>[A-Za-z_][A-Za-z0-9_.-]{0,63})$")


def parse_ref(text: str) -> Ref:
    """Parse a reference string; raises ValueError on an empty one."""
    text = text.strip()
    if not text:
        raise ValueError("empty reference")
    head, sep, rest = text.partition(":")
    if sep and head == "request":
        return Ref(text, request=rest)
    kind = None
    body = text
    if sep and head in KINDS:
        kind, body = head, rest
        if is_hex(body):
            return Ref(text, kind=kind, prefix=body.lower(), name=body)
    elif is_hex(text):
        return Ref(text, prefix=text.lower(), name=text)
    m = _VERSION.match(body)
    if m:
        return Ref(text, kind=kind, name=m.group("name"), version=int(m.group("n")))
    m = _LABEL.match(body)
    if m:
        return Ref(text, kind=kind, name=m.group("name"), label=m.group("label"))
    return Ref(text, kind=kind, name=body)


# ---------------------------------------------------------------------------
# secrets (DESIGN.md §6): what a masked secret reads as. The detector itself is
# lineage.secrets (one place for the idea).

SECRET_MASK = "***"


# ---------------------------------------------------------------------------
# annotation fields: the keys of COMPLIANCE.md's checklist, plus the sign-off

ANNOTATION_FIELDS: tuple[str, ...] = (
    "identity", "intended_use", "training_data", "personal_data_origin", "data_preparation",
    "representativeness", "code_version", "third_party_components", "hyperparameters",
    "environment", "evaluation", "metric_rationale", "accountability", "changes",
    "limitations", "risk_management", "prediction_log", "retention", "integrity",
    "monitoring", "impact", "conformity", "sign_off", "validation",
)

#: annotation fields that are not checklist keys: statements about sensitive columns
#: (on a dataset: which columns are sensitive; on a model: which it may read, and why)
SENSITIVE_FIELDS: tuple[str, ...] = ("sensitive_columns", "sensitive_use")
