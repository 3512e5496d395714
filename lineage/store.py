"""The store: schema, migrations, the ledger, transactions, writes and the reads writes need.

Everything recorded lives in append-only tables whose every row names the ledger
event that wrote it (`event`). Each event commits to

* the digest of its canonical JSON payload (who, when, what; erasable later), and
* ``rows_digest``: SHA-256 over the digests of the rows it wrote, in (table, pk) order,
  where a row's digest is SHA-256 of ``canonical_json([table, *columns])``;

and the chain links them: ``h_n = H(h_{n-1} ‖ type ‖ H(payload) ‖ rows_digest)``.
`verify` recomputes all of it, so an edited, inserted, deleted or reordered row of any
recorded table, or of the ledger itself, names the first bad event. The stat cache of
file digests is a cache, not evidence, and sits outside the chain.

SQL is kept portable (standard SQL, no SQLite-only syntax in queries) so the same schema
can later live in PostgreSQL. sqlite-utils is imported lazily: it costs ~0.25 s to import.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import hashlib
import heapq
import itertools
import json
import math
import operator
import os
import random
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from json.encoder import encode_basestring as _json_str  # the string encoder of canonical_json
from pathlib import Path
from typing import Any

from .errors import (
    AmbiguousIdError,
    DiskFullError,
    InvalidInputError,
    LineageError,
    NodeNotFoundError,
    NoStoreError,
    SchemaVersionError,
    StoreBusyError,
    StoreCorruptError,
    WriteRefusedError,
)
from .model import KINDS, Edge, Node, canonical_json, now_iso, parse_ref
from .model import clean_text as _clean_text

SCHEMA_VERSION = 7
STORE_DIR = ".lineage"
DB_NAME = "lineage.db"
GENESIS = "0" * 64

# Recorded tables and their content columns, in the order the rows digest visits them.
# `pk` (row order within an event) and `event` are not part of a row's content.
RECORD_TABLES: dict[str, tuple[str, ...]] = {
    "nodes": ("id", "kind", "name", "attrs", "created_at"),
    "aliases": ("node", "name"),
    "edges": ("src", "dst", "rel", "role"),
    "params": ("run", "key", "value"),
    "tags": ("run", "key", "value"),
    "metrics": ("run", "key", "value", "step", "at", "dataset", "grp"),
    "run_states": ("run", "status", "at", "exit_code", "error", "noticed_by"),
    "predictions": ("id", "model", "input_digest", "output", "score", "request_id", "created_at"),
    "annotations": ("node", "field", "text", "author", "at"),
    # appended last: the order is part of every event's rows digest
    "redactions": ("tbl", "row_pk", "row_digest", "erased_digest", "reason"),
    # migration 6 (appended after redactions: the order is part of every rows digest).
    # promotions: a label put on (`promote`), moved off (`end`) or taken off
    # (`unpromote`) a model version; the newest row of a (name, label) says who holds it.
    "promotions": ("name", "label", "model", "action", "reason", "author", "at"),
    # importances computed after a model was logged (`lg.compute_importance`), one row
    # per feature, each with its method and the data it was measured on
    "importances": ("model", "method", "feature", "level", "value", "std", "dataset", "target", "at"),
    # the input values of a prediction kept for its decision record (keep_inputs=True):
    # erased with the prediction
    "prediction_inputs": ("prediction", "inputs"),
}

_DDL_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    payload TEXT,
    payload_digest TEXT NOT NULL,
    rows_digest TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE nodes (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    name TEXT,
    attrs TEXT NOT NULL,
    created_at TEXT NOT NULL,
    event INTEGER NOT NULL
);
CREATE INDEX nodes_name ON nodes (name, kind);
CREATE INDEX nodes_kind ON nodes (kind, created_at);
CREATE INDEX nodes_event ON nodes (event);
CREATE TABLE aliases (
    pk INTEGER PRIMARY KEY,
    node TEXT NOT NULL,
    name TEXT NOT NULL,
    event INTEGER NOT NULL
);
CREATE INDEX aliases_name ON aliases (name);
CREATE INDEX aliases_node ON aliases (node);
CREATE INDEX aliases_event ON aliases (event);
CREATE TABLE edges (
    pk INTEGER PRIMARY KEY,
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    rel TEXT NOT NULL,
    role TEXT,
    event INTEGER NOT NULL
);
CREATE INDEX edges_src ON edges (src, dst, rel, role);
CREATE INDEX edges_dst ON edges (dst, src, rel);
CREATE INDEX edges_event ON edges (event);
CREATE TABLE params (
    pk INTEGER PRIMARY KEY,
    run TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    event INTEGER NOT NULL
);
CREATE INDEX params_run ON params (run, key);
CREATE INDEX params_key ON params (key, run);
CREATE INDEX params_event ON params (event);
CREATE TABLE tags (
    pk INTEGER PRIMARY KEY,
    run TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    event INTEGER NOT NULL
);
CREATE INDEX tags_run ON tags (run, key);
CREATE INDEX tags_key ON tags (key, run);
CREATE INDEX tags_event ON tags (event);
CREATE TABLE metrics (
    pk INTEGER PRIMARY KEY,
    run TEXT NOT NULL,
    key TEXT NOT NULL,
    value REAL,
    step INTEGER NOT NULL,
    at TEXT NOT NULL,
    dataset TEXT,
    grp TEXT,
    event INTEGER NOT NULL
);
CREATE INDEX metrics_run ON metrics (run, key);
CREATE INDEX metrics_key ON metrics (key, run);
CREATE INDEX metrics_event ON metrics (event);
CREATE TABLE run_states (
    pk INTEGER PRIMARY KEY,
    run TEXT NOT NULL,
    status TEXT NOT NULL,
    at TEXT NOT NULL,
    exit_code INTEGER,
    error TEXT,
    noticed_by TEXT,
    event INTEGER NOT NULL
);
CREATE INDEX run_states_run ON run_states (run, pk);
CREATE INDEX run_states_status ON run_states (status);
CREATE INDEX run_states_event ON run_states (event);
CREATE TABLE predictions (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    input_digest TEXT,
    output TEXT,
    score REAL,
    request_id TEXT,
    created_at TEXT NOT NULL,
    event INTEGER NOT NULL
);
CREATE INDEX predictions_model ON predictions (model);
CREATE INDEX predictions_request ON predictions (request_id);
CREATE INDEX predictions_event ON predictions (event);
CREATE TABLE annotations (
    pk INTEGER PRIMARY KEY,
    node TEXT NOT NULL,
    field TEXT NOT NULL,
    text TEXT,
    author TEXT,
    at TEXT NOT NULL,
    event INTEGER NOT NULL
);
CREATE INDEX annotations_node ON annotations (node, field);
CREATE INDEX annotations_event ON annotations (event);
CREATE TABLE stat_cache (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    digest TEXT NOT NULL,
    lines INTEGER
);
"""

# version -> DDL that upgrades a store from version-1 to version. Append, never edit.
MIGRATIONS: dict[int, str] = {
    1: _DDL_V1,
    # 2: find the last checkpoint (audits start there) without scanning the ledger
    2: "CREATE INDEX events_type ON events (type, seq)",
    # 3: erasure (GDPR): which row was erased, the digest its event committed to, and
    # the digest of the row as erased (so an edit after erasure is still caught)
    3: """
CREATE TABLE redactions (
    pk INTEGER PRIMARY KEY,
    tbl TEXT NOT NULL,
    row_pk INTEGER NOT NULL,
    row_digest TEXT NOT NULL,
    erased_digest TEXT NOT NULL,
    reason TEXT,
    event INTEGER NOT NULL
);
CREATE INDEX redactions_row ON redactions (tbl, row_pk);
CREATE INDEX redactions_event ON redactions (event)
""",
    # 4: most predictions carry no request id; index only those that do (5-8% faster
    # bulk inserts, and no million NULL entries). `request_id = ?` still uses it.
    4: """
DROP INDEX predictions_request;
CREATE INDEX predictions_request ON predictions (request_id) WHERE request_id IS NOT NULL
""",
    # 5: the runs whose latest state is `running`, kept by the write path. Every open
    # looks for dead runs; finding them from run_states read a row of every run ever
    # started (5 ms at 10k runs, growing with history). A cache, not evidence: it is
    # outside the chain, like stat_cache, and rebuilt here from run_states.
    5: """
CREATE TABLE open_runs (run TEXT PRIMARY KEY);
INSERT INTO open_runs (run)
    SELECT s.run FROM run_states s WHERE s.status = 'running'
    AND s.pk = (SELECT MAX(t.pk) FROM run_states t WHERE t.run = s.run)
""",
    # 6: promotion labels (`production`, `staging`, any word) on model versions, and
    # feature importances computed after logging. Both append-only and in the chain.
    # (IF NOT EXISTS: self-contained, so the lead may renumber it at merge.)
    6: """
CREATE TABLE IF NOT EXISTS promotions (
    pk INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    model TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT,
    author TEXT,
    at TEXT NOT NULL,
    event INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS promotions_label ON promotions (name, label, pk);
CREATE INDEX IF NOT EXISTS promotions_model ON promotions (model);
CREATE INDEX IF NOT EXISTS promotions_event ON promotions (event);
CREATE TABLE IF NOT EXISTS importances (
    pk INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    method TEXT NOT NULL,
    feature TEXT NOT NULL,
    level TEXT NOT NULL,
    value REAL,
    std REAL,
    dataset TEXT,
    target TEXT,
    at TEXT NOT NULL,
    event INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS importances_model ON importances (model, pk);
CREATE INDEX IF NOT EXISTS importances_event ON importances (event)
""",
    # 7: the input values of predictions logged with keep_inputs=True (JSON object of
    # feature -> value), so a decision can be reconstructed and explained; evidence,
    # in the chain, and blanked by erasure of the prediction
    7: """
CREATE TABLE prediction_inputs (
    pk INTEGER PRIMARY KEY,
    prediction TEXT NOT NULL,
    inputs TEXT,
    event INTEGER NOT NULL
);
CREATE INDEX prediction_inputs_prediction ON prediction_inputs (prediction);
CREATE INDEX prediction_inputs_event ON prediction_inputs (event)
""",
}

# Column types, so a row's digest is computed over exactly what SQLite will hand back.
_REAL_COLUMNS = {("metrics", "value"), ("predictions", "score"), ("importances", "value"), ("importances", "std")}
_INT_COLUMNS = {("metrics", "step"), ("run_states", "exit_code"), ("redactions", "row_pk")}

# What erasure blanks, per table: the columns that can carry personal data. Ids, kinds,
# times and the links between nodes stay, so the graph keeps its shape.
_ERASED_COLUMNS: dict[str, dict[str, Any]] = {
    "nodes": {"name": None, "attrs": canonical_json({"redacted": True})},
    "aliases": {"name": ""},
    "predictions": {"input_digest": None, "output": None, "score": None, "request_id": None},
    "annotations": {"text": None},
    # a run's params, tags and error text (issue 8: a redacted run kept them). Keys,
    # statuses, times and exit codes stay: they are the run's shape, not its content.
    "params": {"value": None},
    "tags": {"value": None},
    "run_states": {"error": None},
    "prediction_inputs": {"inputs": None},
}

#: What an erasure cannot reach; `redact`'s output and docs/integrity.md say so.
ERASURE_LIMITS = ("copies made before the erasure are outside the store's reach: backups, exported files "
                  "and audit reports already written, and (on PostgreSQL) the server's WAL archive and replicas")


# ---------------------------------------------------------------------------
# finding a store

def find_store(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``.lineage/lineage.db`` at or above ``start`` (default: the cwd), or None."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / STORE_DIR / DB_NAME
        if candidate.is_file():
            return candidate
    return None


def default_location(start: str | os.PathLike[str] | None = None) -> Path:
    """Where a new store goes: the root of the enclosing git work tree, else ``start``."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder / STORE_DIR / DB_NAME
    return here / STORE_DIR / DB_NAME


def locate(path: str | os.PathLike[str] | None = None, *, create: bool) -> Path:
    """Resolve the store path: explicit ``path``, then ``LINEAGE_DB``, then a walk up.

    Raises NoStoreError when ``create`` is false and no store exists.
    """
    chosen = path or os.environ.get("LINEAGE_DB") or None
    if chosen:
        p = Path(chosen).expanduser()
        if p.is_dir() or str(chosen).endswith(("/", os.sep)):
            p = p / DB_NAME
        if not create and not p.is_file():
            raise NoStoreError(f"no lineage store at {p} (run `lineage init`)")
        return p
    found = find_store()
    if found:
        return found
    if not create:
        raise NoStoreError("no lineage store here (run `lineage init`)")
    return default_location()


# ---------------------------------------------------------------------------
# digests

def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def row_digest(table: str, values: Sequence[Any]) -> bytes:
    """SHA-256 of ``canonical_json([table, *values])``: what a row commits to."""
    return _sha(canonical_json([table, *values]).encode())


def chain_hash(prev_hex: str, type_: str, payload_digest_hex: str, rows_digest_hex: str) -> str:
    """``H(h_{n-1} ‖ type ‖ 0x00 ‖ H(payload) ‖ rows_digest)`` as hex: SHA-256 over the
    previous hash's 32 bytes, the type's UTF-8 bytes, one zero byte, and the 32 bytes
    of each digest.

    A field that is not hex text can only be a forgery; rather than fail, the hash is
    then taken over the fields' canonical JSON, so the chain stays defined and the
    event does not match.
    """
    try:
        data = bytes.fromhex(prev_hex) + type_.encode() + b"\x00" + bytes.fromhex(payload_digest_hex) + bytes.fromhex(rows_digest_hex)
    except (TypeError, ValueError, AttributeError):
        data = b"forged\x00" + canonical_json([str(prev_hex), str(type_), str(payload_digest_hex), str(rows_digest_hex)]).encode()
    return hashlib.sha256(data).hexdigest()


def _as_bytes(value: Any) -> bytes:
    """Stored text as UTF-8 (a forged BLOB or number as whatever bytes it has)."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    return str(value).encode()


_TEXT, _REAL, _INT = 0, 1, 2
_FLOAT_REPR = float.__repr__
_INT_REPR = int.__repr__
_INF = float("inf")
_DIGEST = operator.methodcaller("digest")


def _column_kinds(table: str, columns: Sequence[str]) -> tuple[int, ...]:
    return tuple(_REAL if (table, c) in _REAL_COLUMNS else _INT if (table, c) in _INT_COLUMNS else _TEXT for c in columns)


_INT64 = (-(1 << 63), (1 << 63) - 1)


def _to_real(v: Any) -> float | None:
    """A value for a REAL column, as SQLite will hand it back: NaN is stored as NULL
    and -0.0 as 0.0 (hashing ``-0.0`` at write time failed verify on an honest store)."""
    try:
        f = float(v) + 0.0  # + 0.0: -0.0 becomes 0.0, every other value is unchanged
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(f"{v!r} is not a number that can be stored (a float)") from None
    return None if f != f else f


def _to_int(v: Any) -> int:
    """A value for an INTEGER column: an integer that fits SQLite's 64 bits."""
    try:
        i = int(v)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(f"{v!r} is not an integer") from None
    if not _INT64[0] <= i <= _INT64[1]:
        raise InvalidInputError(f"{v!r} does not fit in a 64-bit integer")
    return i


def _to_text(v: Any) -> str:
    return _clean_text(v if isinstance(v, str) else canonical_json(v))


def _coerce_one(kind: int, v: Any) -> tuple[Any, str]:
    """One value as `_coerce` stores it, and its canonical JSON text."""
    if v is None:
        return None, "null"
    if kind == _TEXT:
        v = _to_text(v)
        return v, _json_str(v)
    if kind == _REAL:
        f = _to_real(v)
        if f is None:  # SQLite stores NaN as NULL
            return None, "null"
        return f, (_FLOAT_REPR(f) if -_INF < f < _INF else ("Infinity" if f > 0 else "-Infinity"))
    i = _to_int(v)
    return i, _INT_REPR(i)


def _encode_column(kind: int, col: Sequence[Any]) -> tuple[Sequence[Any], Sequence[str]]:
    """A column of a batch as stored, and each value's canonical JSON text.

    The common columns (all text, all finite floats, all ints, all NULL) go through
    C-level ``map`` calls; anything else value by value through `_coerce_one`.
    """
    types = set(map(type, col))
    if kind == _TEXT and types == {str}:
        # (a string that is not valid UTF-8 fails str.encode in `_encode_batch`,
        # which then cleans the batch and comes back here)
        if col.count(col[0]) == len(col):  # one value throughout (a model id, a time)
            return col, [_json_str(col[0])] * len(col)
        return col, list(map(_json_str, col))
    if kind == _REAL and types == {float} and all(map(math.isfinite, col)) and 0.0 not in col:
        # (0.0 in col: a -0.0 may be among them, which SQLite hands back as 0.0)
        return col, list(map(_FLOAT_REPR, col))
    if kind == _INT and types == {int} and _INT64[0] <= min(col) and max(col) <= _INT64[1]:
        return col, list(map(_INT_REPR, col))
    if types == {type(None)}:
        return col, ["null"] * len(col)
    pairs = [_coerce_one(kind, v) for v in col]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _encode_batch(table: str, kinds: Sequence[int], batch: Sequence[Sequence[Any]]) -> tuple[list[tuple[Any, ...]], bytes]:
    """Rows of one table as stored (`_coerce`), ready for ``executemany``, and the
    concatenation of their row digests (`row_digest` of each, in order).

    Works column by column, so the per-row cost is a few C calls instead of
    json.dumps: this is what makes `write_bulk` keep up with raw ``executemany``.
    tests/test_store.py checks it against `_coerce` and `row_digest` on random rows.
    """
    columns = list(zip(*batch))
    if len(columns) != len(kinds):
        raise InvalidInputError(f"rows of {table} need {len(kinds)} values each")
    values, texts = zip(*(_encode_column(k, c) for k, c in zip(kinds, columns)))
    # '["table",{},{},…]': one format call per row builds its canonical JSON
    prefix = canonical_json([table])[:-1].replace("{", "{{").replace("}", "}}")
    template = prefix + ",{}" * len(kinds) + "]"
    lines = map(template.format, *texts)
    digests = map(_DIGEST, map(hashlib.sha256, map(str.encode, lines)))
    try:
        joined = b"".join(digests)
    except UnicodeEncodeError:  # text that is not valid UTF-8: clean it, then as usual
        clean = [tuple(_clean_text(v) if isinstance(v, str) else v for v in row) for row in batch]
        return _encode_batch(table, kinds, clean)
    return list(zip(*values)), joined


def _stored_column_json(col: Sequence[Any]) -> Sequence[str]:
    """``canonical_json(v)`` of each value of a column as SQLite returned it (verify):
    C-level maps for uniform columns, value by value otherwise."""
    types = set(map(type, col))
    if types == {str}:
        return list(map(_json_str, col))
    if types == {int}:
        return list(map(_INT_REPR, col))
    if types == {float} and all(map(math.isfinite, col)):
        return list(map(_FLOAT_REPR, col))
    if types == {type(None)}:
        return ["null"] * len(col)
    return [canonical_json(v) for v in col]


_FIRST = operator.itemgetter(0)


def _erased_form(table: str, values: Sequence[Any]) -> bool:
    """True when a row of ``table`` holds exactly what erasure leaves in its erasable
    columns. A redaction record counts only for such a row: otherwise a well-chained
    `redact` event appended later could vouch for any rewrite of any fact (a metric's
    value, a node's name), not only for an erasure."""
    blank = _ERASED_COLUMNS.get(table)
    if blank is None:
        return False  # not an erasable table: nothing in it is ever erased
    return all(values[i] == blank[c] and type(values[i]) is type(blank[c])
               for i, c in enumerate(RECORD_TABLES[table]) if c in blank)


def _order_problem(table: str, early_event: Any, early_pk: Any, late_event: Any, late_pk: Any) -> str:
    return (f"event {early_event} ({table}): its row {early_pk} is placed after row {late_pk} of the later event "
            f"{late_event}: rows were reordered or moved between events (this changes which value is the latest)")


def _committed_digest(actual: bytes, erasure: tuple[bytes, bytes] | None) -> bytes:
    """The digest a row's event committed to: its own, or, for an erased row that is
    exactly as erasure left it, the one recorded before erasure. An erased row edited
    since keeps its own digest, so its event fails verification."""
    if erasure is not None and actual == erasure[1]:
        return erasure[0]
    return actual


def _coerce(table: str, columns: Sequence[str], values: Sequence[Any]) -> tuple[Any, ...]:
    """Values as SQLite will return them, so digests agree between write and verify."""
    out: list[Any] = []
    for col, v in zip(columns, values):
        if v is None:
            out.append(None)
        elif (table, col) in _REAL_COLUMNS:
            out.append(_to_real(v))  # NaN as NULL, -0.0 as 0.0: as SQLite stores them
        elif (table, col) in _INT_COLUMNS:
            out.append(_to_int(v))
        else:
            out.append(_to_text(v))
    return tuple(out)


#: names of bulk writes' staging tables (TEMP, so per connection; unique per process)
_STAGING = itertools.count()


class _encode_ahead:  # (lower case: used like a generator function)
    """Chunks of rows encoded (`_encode_batch`) one step ahead, in a thread, while the
    caller inserts the previous chunk (SQLite releases the GIL while it writes)."""

    def __init__(self, table: str, kinds: Sequence[int], rows: Iterator[Sequence[Any]], size: int) -> None:
        self.table, self.kinds, self.rows, self.size = table, kinds, rows, size
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lineage-encode")

    def _next(self) -> tuple[list[tuple[Any, ...]], bytes] | None:
        batch = list(itertools.islice(self.rows, self.size))
        return _encode_batch(self.table, self.kinds, batch) if batch else None

    def __iter__(self) -> Iterator[tuple[list[tuple[Any, ...]], bytes]]:
        try:
            pending = self._pool.submit(self._next)
        except RuntimeError:
            # the interpreter is shutting down (a flush at exit): no new threads, so
            # encode in this one; slower, and the rows are still written whole
            self._pool.shutdown(wait=False)
            while (item := self._next()) is not None:
                yield item
            return
        try:
            while True:
                item = pending.result()
                if item is None:
                    return
                pending = self._pool.submit(self._next)
                yield item
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------
# verification results

@dataclass
class VerifyReport:
    """What `verify` found. ``first_bad`` is the first event that fails, or None."""

    ok: bool
    events: int
    head: str
    first_bad: int | None = None
    problems: list[str] = field(default_factory=list)
    checked_from: int = 0
    head_found: bool | None = None
    #: caches (outside the chain) found stale and rebuilt: not tampering with evidence
    repaired: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Exactly DESIGN.md §5's shape. Where an incremental check started is
        ``.checked_from`` (and in the command's text output), not a JSON key."""
        return {
            "ok": self.ok,
            "events": self.events,
            "head": self.head,
            "first_bad": self.first_bad,
            "problems": list(self.problems),
        }

    def __str__(self) -> str:
        if self.ok:
            scope = f" (from checkpoint at event {self.checked_from})" if self.checked_from else ""
            fixed = "".join(f"\n  repaired: {r}" for r in self.repaired)
            return f"ok: {self.events} events verified{scope}, head {self.head}{fixed}"
        return f"FAILED at event {self.first_bad}: {self.problems[0] if self.problems else ''}"


@dataclass(frozen=True)
class Event:
    """One ledger event as stored."""

    seq: int
    type: str
    payload: dict[str, Any] | None
    payload_digest: str
    rows_digest: str
    hash: str


def _ignore_in_git(folder: Path) -> None:
    """Give a ``.lineage/`` folder a ``.gitignore`` of ``*``: a store inside a work tree
    must not make the code it records look changed (untracked files)."""
    if folder.name != STORE_DIR:
        return
    marker = folder / ".gitignore"
    if not marker.exists():
        with contextlib.suppress(OSError):  # a read-only folder: the store still works
            marker.write_text("# lineage's store: kept out of git (it records the code, it is not code)\n*\n")


# ---------------------------------------------------------------------------
# backend errors, translated in one place

#: how long a write waits for another writer's lock before StoreBusyError. Bulk writes
#: hold the lock for short chunks only, so a wait this long means a stuck writer.
_BUSY_SECONDS = 30.0


def _translate(exc: sqlite3.Error, path: Path | str) -> LineageError | None:
    """The lineage error a backend error means, or None to let it through as it is
    (a constraint failure is a bug of ours, not a user's situation)."""
    msg = str(exc).lower()
    code = getattr(exc, "sqlite_errorcode", None)
    if "locked" in msg or "busy" in msg or code in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED
        return _busy(path)
    if "full" in msg or code == 13:  # SQLITE_FULL
        return DiskFullError(f"the disk holding {path} is full: nothing of this write was kept; free some space and retry")
    if "readonly" in msg or "read-only" in msg or code == 8:  # SQLITE_READONLY
        return WriteRefusedError(f"the lineage store {path} is read-only here: it can be read, not written")
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in msg or "malformed" in msg or code in (11, 26)):
        return StoreCorruptError(f"{path} is not a readable lineage store ({exc})")
    return None


def _busy(path: Path | str) -> StoreBusyError:
    return StoreBusyError(f"the lineage store {path} is busy: another process held its write lock for more than "
                          f"{_BUSY_SECONDS:.0f} s; try again")


def _begin_immediate(conn: sqlite3.Connection, path: Path | str) -> None:
    """``BEGIN IMMEDIATE``, waiting up to `_BUSY_SECONDS` for other processes' writes.

    SQLite's own busy handler sleeps longer and longer between tries (up to 100 ms),
    so under steady writing a waiter kept missing the moments the lock was free and
    timed out while others wrote (starvation). Here a waiter retries every 0.5-3 ms,
    with jitter, which takes the lock within a few milliseconds of its release.
    """
    raw = sqlite3.Connection.execute
    deadline = time.monotonic() + _BUSY_SECONDS
    raw(conn, "PRAGMA busy_timeout = 0")  # (the connection's own wait is for reads)
    try:
        while True:
            try:
                raw(conn, "BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if _translate(exc, path).__class__ is not StoreBusyError:
                    raise
                if time.monotonic() > deadline:
                    raise _busy(path) from None
            time.sleep(random.uniform(0.0005, 0.003))
    finally:
        raw(conn, f"PRAGMA busy_timeout = {int(_BUSY_SECONDS * 1000)}")


@contextmanager
def _map_errors(path: Path | str) -> Iterator[None]:
    """Backend errors raised inside become lineage errors (httpx's ``map_exceptions``):
    a busy store is a StoreBusyError, a full disk a DiskFullError, never a raw
    ``sqlite3`` exception reaching the user."""
    try:
        yield
    except sqlite3.Error as exc:
        mapped = _translate(exc, path)
        if mapped is None:
            raise
        raise mapped from exc


class _Connection(sqlite3.Connection):
    """An sqlite3 connection whose statements raise lineage errors for what a user can
    meet (busy, full, read-only, damaged), so the query layer's reads are covered too."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as exc:
            mapped = _translate(exc, self._lineage_path())
            if mapped is None:
                raise
            raise mapped from exc

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.Error as exc:
            mapped = _translate(exc, self._lineage_path())
            if mapped is None:
                raise
            raise mapped from exc

    def _lineage_path(self) -> str:
        return str(getattr(self, "lineage_path", "the store"))


# ---------------------------------------------------------------------------
# the store

class Store:
    """A lineage store on one SQLite file. Writes go through `write`; reads are plain."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True, actor: Callable[[], str] | str | None = None) -> None:
        self.path = Path(path).expanduser().resolve()
        if not create and not self.path.is_file():
            raise NoStoreError(f"no lineage store at {self.path} (run `lineage init`)")
        if not create and self.path.stat().st_size == 0:
            # SQLite would take an empty file for a new database, and the migration
            # would silently turn it into an empty store that verifies "ok"
            raise StoreCorruptError(f"{self.path} is empty (zero bytes): not a lineage store; "
                                    "restore it from a backup, or remove it and run `lineage init`")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _ignore_in_git(self.path.parent)
        self.dir = self.path.parent
        self.artifacts_dir = self.dir / "artifacts"
        self.locks_dir = self.dir / "locks"
        self._actor = actor
        self._create = create
        self._closed = False
        self._savepoint = itertools.count()
        self._conn_pid = os.getpid()
        self._inherited: list[Any] = []
        # One SQLite connection per thread (issue 8, point 7): a transaction is a
        # connection's state, so threads sharing a connection saw each other's
        # uncommitted writes and could read a head that was later rolled back.
        self._local = threading.local()
        # every thread's connection, to close them all; weakly held, so the
        # connection of a thread that ended is closed when it is collected
        self._conns: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
        self._conns_lock = threading.Lock()
        self._writer = threading.Lock()  # this process's threads take turns to write
        self.read_only = False
        try:
            with _map_errors(self.path):
                self._connect_here()
                if not create and self.schema_version() == 0:
                    raise StoreCorruptError(f"{self.path} is an empty SQLite database, not a lineage store; "
                                            "run `lineage init` to make it one")
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreCorruptError(f"{self.path} is not a readable lineage store ({exc})") from None
        self._db: Any = None

    # -- connection -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """A configured connection; a store whose directory cannot be written (no
        ``-shm`` can be made next to it) opens read-only, immutable as a last resort."""
        conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=_BUSY_SECONDS,
                               check_same_thread=False, factory=_Connection)
        conn.lineage_path = str(self.path)  # type: ignore[attr-defined]
        try:
            self._configure(conn)
            return conn
        except (sqlite3.OperationalError, WriteRefusedError, StoreCorruptError):
            conn.close()
            if self._create or os.access(self.dir, os.W_OK):
                raise
        # a read-only directory: SQLite cannot create the WAL index; read what is there
        self.read_only = True
        uri = self.path.as_uri()
        for mode in ("?mode=ro", "?immutable=1"):
            try:
                conn = sqlite3.connect(uri + mode, uri=True, isolation_level=None, timeout=_BUSY_SECONDS,
                                       check_same_thread=False, factory=_Connection)
                conn.lineage_path = str(self.path)  # type: ignore[attr-defined]
                conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_SECONDS * 1000)}")
                return conn
            except (sqlite3.OperationalError, LineageError):
                continue
        raise StoreCorruptError(f"{self.path}: cannot open the store for reading (its directory is read-only)")

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's SQLite connection (one per thread and per process).

        SQLite forbids using a connection carried across ``fork()`` (multiprocessing,
        joblib and data-loader workers all fork): a child that touches the store gets
        a connection of its own. The inherited ones are kept, unused and unclosed, since
        closing them in the child could disturb the parent's use of them.
        """
        if self._conn_pid != os.getpid():
            self._after_fork()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise LineageError(f"the lineage store {self.path} is closed; open it again with lineage.open()")
            conn = self._connect()
            with self._conns_lock:
                self._conns.add(conn)
            self._local.conn = conn
            self._local.depth = 0
        return conn

    def _connect_here(self) -> None:
        """Make sure this thread has its connection (and so its transaction depth)."""
        if self.conn is None:  # never: `conn` always returns one or raises
            raise LineageError("no connection")

    def _after_fork(self) -> None:
        self._conn_pid = os.getpid()
        self._inherited.extend(self._conns)
        self._conns = weakref.WeakSet()
        self._conns_lock = threading.Lock()
        self._writer = threading.Lock()  # one held by another thread at fork time never frees here
        self._local = threading.local()
        self._db = None

    def _configure(self, c: sqlite3.Connection) -> None:
        c.execute(f"PRAGMA busy_timeout = {int(_BUSY_SECONDS * 1000)}")
        mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # e.g. a read-only file system; say nothing, work anyway
            pass
        durability = os.environ.get("LINEAGE_DURABILITY", "normal").lower()
        c.execute("PRAGMA synchronous = FULL" if durability == "full" else "PRAGMA synchronous = NORMAL")
        c.execute("PRAGMA foreign_keys = ON")
        # Freed pages are overwritten with zeros, so erased content (redact) does not
        # linger in free space of the file, whatever the SQLite build's default.
        c.execute("PRAGMA secure_delete = ON")
        # A page cache of up to 64 MiB (SQLite's default is 2 MiB): a ceiling, not an
        # allocation. Repeated queries in one process (a notebook, a service, an audit
        # checking many facts) stop re-reading the same index pages: runs() over 10k runs
        # at 1M nodes went from 23 to 19 ms. mmap_size was measured too and gave nothing.
        c.execute("PRAGMA cache_size = -65536")

    @property
    def db(self) -> Any:
        """A ``sqlite_utils.Database`` on the same connection, for introspection and tools."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def close(self) -> None:
        """Close every thread's connection; any later use is a one-line LineageError.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._conn_pid != os.getpid():
            self._after_fork()
        with self._conns_lock:
            conns, self._conns = list(self._conns), weakref.WeakSet()
        for c in conns:
            with suppress(sqlite3.Error):
                c.close()
        self._local = threading.local()
        self._db = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def actor(self) -> str:
        """Who is writing (an agent id or ``user@host``); recorded in every event."""
        a = self._actor
        if callable(a):
            a = self._actor = a()
        return a or "unknown"

    # -- schema -----------------------------------------------------------

    def schema_version(self) -> int:
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            if tables - {"sqlite_sequence"}:
                raise StoreCorruptError(f"{self.path} is an SQLite file but not a lineage store")
            return 0
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.path} has schema version {version}, newer than this lineage understands "
                f"({SCHEMA_VERSION}); upgrade lineage (pip install -U lineage-ml)"
            )
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            version = self.schema_version()  # another process may have migrated meanwhile
            for v in range(version + 1, SCHEMA_VERSION + 1):
                # statement by statement: executescript() would COMMIT our transaction
                for stmt in MIGRATIONS[v].split(";"):
                    if stmt.strip():
                        self.conn.execute(stmt)
                self.conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(v),),
                )
            if version == 0:
                self.conn.execute("INSERT INTO meta (key, value) VALUES ('created_at', ?)", (now_iso(),))

    # -- transactions -----------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction of this thread; nested calls become savepoints, so a
        failed inner write rolls back alone and a failed outer one rolls back whole.

        Raises StoreBusyError when another writer holds the lock past the busy wait
        (`_BUSY_SECONDS`), StoreFullError when the disk is full.
        """
        conn = self.conn
        local = self._local
        with _map_errors(self.path):
            if local.depth == 0:
                # Threads of this process queue here, asleep, rather than all polling
                # SQLite's lock (and fighting for the GIL while one of them holds it)
                if not self._writer.acquire(timeout=_BUSY_SECONDS):
                    raise _busy(self.path)
                try:
                    _begin_immediate(conn, self.path)
                    local.depth = 1
                    try:
                        yield
                    except BaseException:
                        self._known.clear()  # what it remembered may be undone
                        if conn.in_transaction:  # SQLite may have rolled back already
                            conn.execute("ROLLBACK")
                        raise
                    else:
                        try:
                            conn.execute("COMMIT")
                        except (sqlite3.Error, LineageError):  # disk full, a deferred constraint: nothing half-kept
                            self._known.clear()
                            if conn.in_transaction:
                                conn.execute("ROLLBACK")
                            raise
                    finally:
                        local.depth = 0
                finally:
                    self._writer.release()
            else:
                name = f"sp{next(self._savepoint)}"
                conn.execute(f"SAVEPOINT {name}")
                local.depth += 1
                try:
                    yield
                except BaseException:
                    self._known.clear()  # what the savepoint remembered may be undone
                    if conn.in_transaction:  # else SQLite already undid it all
                        conn.execute(f"ROLLBACK TO {name}")
                        conn.execute(f"RELEASE {name}")
                    raise
                else:
                    conn.execute(f"RELEASE {name}")
                finally:
                    local.depth -= 1

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Read everything inside from one consistent snapshot of the store (one read
        transaction of this thread's connection), however many statements it takes
        and whoever writes meanwhile. Inside a write transaction it is that
        transaction. `verify` and the audit's integrity checks read through this."""
        conn = self.conn
        local = self._local
        if local.depth > 0 or conn.in_transaction:
            yield
            return
        with _map_errors(self.path):
            conn.execute("BEGIN")  # deferred: the snapshot is taken by the first read
            local.depth = 1
            try:
                conn.execute("SELECT COUNT(*) FROM meta").fetchone()
                yield
            finally:
                local.depth = 0
                if conn.in_transaction:
                    conn.execute("COMMIT" if not self.read_only else "ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        """True inside this thread's transaction (or snapshot)."""
        self._connect_here()
        return bool(self._local.depth > 0)

    # -- the one write path -----------------------------------------------

    def head(self) -> tuple[int, str]:
        """``(event count, head hash)``; ``(0, GENESIS)`` for an empty ledger."""
        row = self.conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    def write(self, type_: str, payload: Mapping[str, Any], rows: Mapping[str, Iterable[Sequence[Any]]] | None = None) -> int:
        """Append one ledger event and the rows it records, atomically; returns its number.

        ``rows`` maps a recorded table to tuples of its content columns
        (RECORD_TABLES order). The event's payload gets ``at`` and ``actor`` added.
        """
        with self.transaction():
            seq, prev = self.head()
            seq += 1
            rows_hash = hashlib.sha256()
            n_rows = 0
            for table, columns in RECORD_TABLES.items():
                if not rows or table not in rows:
                    continue
                coerced = [_coerce(table, columns, r) for r in rows[table]]
                if not coerced:
                    continue
                for values in coerced:
                    rows_hash.update(row_digest(table, values))
                n_rows += len(coerced)
                marks = ", ".join("?" * (len(columns) + 1))
                self.conn.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}, event) VALUES ({marks})",
                    [(*v, seq) for v in coerced],
                )
                if table == "run_states":
                    self._track_open_runs(coerced)
            body = {"at": now_iso(), "actor": self.actor, **payload}
            text = _clean_text(canonical_json(body))
            payload_digest = hashlib.sha256(text.encode()).hexdigest()
            rows_digest = rows_hash.hexdigest()
            h = chain_hash(prev, type_, payload_digest, rows_digest)
            self.conn.execute(
                "INSERT INTO events (seq, type, payload, payload_digest, rows_digest, hash) VALUES (?, ?, ?, ?, ?, ?)",
                (seq, type_, text, payload_digest, rows_digest, h),
            )
            return seq

    def _track_open_runs(self, states: Iterable[Sequence[Any]]) -> None:
        """Keep `open_runs` in step with run_states rows ``(run, status, …)`` being
        written, in the same transaction (the one place every run state passes)."""
        for state in states:
            if state[1] == "running":
                self.conn.execute("INSERT INTO open_runs (run) VALUES (?) ON CONFLICT (run) DO NOTHING", (state[0],))
            else:
                self.conn.execute("DELETE FROM open_runs WHERE run = ?", (state[0],))

    def write_bulk(self, type_: str, payload: Mapping[str, Any], table: str, rows: Iterable[Sequence[Any]], *, chunk: int = 5000) -> int:
        """One event for many rows of one table (predictions, imports); returns its number.

        The same commitment as `write`, built incrementally so memory stays flat. The
        rows are first staged, chunk by chunk, in a TEMP table of this connection:
        SQLite keeps it outside the database file (in memory, spilling to a deleted
        temporary file), so staging takes no lock on the store and no other connection,
        read or `verify` can see it. A publish step then copies the rows into
        ``table`` and appends the event in one transaction: the rows become visible all
        at once, with their event. A writer killed half-way leaves nothing anywhere:
        its temporary file disappears with the process. Inside an open transaction
        (``lg.batch()``) the rows go straight into ``table`` within it, as the caller
        asked for one transaction.
        """
        columns = RECORD_TABLES[table]
        kinds = _column_kinds(table, columns)
        if self.in_transaction:
            return self._write_bulk_direct(type_, payload, table, rows, chunk=chunk)
        conn = self.conn
        staged = f"lineage_staged_{next(_STAGING)}"
        stage_cols = ", ".join(f"c{i + 1}" for i in range(len(columns)))
        rows_hash = hashlib.sha256()
        n = 0
        gc_was_enabled = gc.isenabled()
        # Millions of short-lived tuples make the cyclic garbage collector run full
        # collections over every object of the process again and again: that more
        # than doubled the cost of a million rows. Rows hold no cycles, so collection
        # is paused for the loop (and restored after).
        gc.disable()
        try:
            with _map_errors(self.path):
                conn.execute(f"CREATE TEMP TABLE {staged} ({stage_cols})")
                sql = f"INSERT INTO temp.{staged} VALUES ({', '.join('?' * len(columns))})"
                for out, digests in _encode_ahead(table, kinds, iter(rows), max(int(chunk), 100)):
                    rows_hash.update(digests)  # SHA-256 over the row digests, as if fed one by one
                    conn.execute("BEGIN")  # touches only the temp database: no lock on the store
                    try:
                        conn.executemany(sql, out)
                    finally:
                        conn.execute("COMMIT")
                    n += len(out)
            return self._publish(type_, payload, table, staged, n, rows_hash.hexdigest())
        finally:
            if gc_was_enabled:
                gc.enable()
            with suppress(sqlite3.Error, LineageError):
                if conn.in_transaction and self._local.depth == 0:
                    conn.execute("ROLLBACK")
                conn.execute(f"DROP TABLE IF EXISTS temp.{staged}")

    def _publish(self, type_: str, payload: Mapping[str, Any], table: str, staged: str, n: int, rows_digest: str) -> int:
        """Copy staged rows into ``table`` and append their event, in one transaction."""
        columns = RECORD_TABLES[table]
        stage_cols = ", ".join(f"c{i + 1}" for i in range(len(columns)))
        with self.transaction():
            seq, prev = self.head()
            seq += 1
            self.conn.execute(f"INSERT INTO {table} ({', '.join(columns)}, event) "
                              f"SELECT {stage_cols}, {int(seq)} FROM temp.{staged} ORDER BY rowid")
            if table == "run_states":
                self._track_open_runs(self.conn.execute(f"SELECT {stage_cols} FROM temp.{staged} ORDER BY rowid").fetchall())
            body = {"at": now_iso(), "actor": self.actor, "table": table, "rows": n, **payload}
            text = _clean_text(canonical_json(body))
            payload_digest = hashlib.sha256(text.encode()).hexdigest()
            h = chain_hash(prev, type_, payload_digest, rows_digest)
            self.conn.execute(
                "INSERT INTO events (seq, type, payload, payload_digest, rows_digest, hash) VALUES (?, ?, ?, ?, ?, ?)",
                (seq, type_, text, payload_digest, rows_digest, h),
            )
            return seq

    def _write_bulk_direct(self, type_: str, payload: Mapping[str, Any], table: str, rows: Iterable[Sequence[Any]],
                           *, chunk: int) -> int:
        """`write_bulk` inside the caller's transaction: rows straight into ``table``."""
        columns = RECORD_TABLES[table]
        marks = ", ".join("?" * len(columns))
        with self.transaction():
            seq, prev = self.head()
            seq += 1
            # the event number is one int of ours for every row: a literal, not a binding
            sql = f"INSERT INTO {table} ({', '.join(columns)}, event) VALUES ({marks}, {int(seq)})"
            rows_hash = hashlib.sha256()
            kinds = _column_kinds(table, columns)
            n = 0
            it = iter(rows)
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                while True:
                    batch = list(itertools.islice(it, chunk))
                    if not batch:
                        break
                    out, digests = _encode_batch(table, kinds, batch)
                    rows_hash.update(digests)
                    self.conn.executemany(sql, out)
                    if table == "run_states":
                        self._track_open_runs(out)
                    n += len(batch)
            finally:
                if gc_was_enabled:
                    gc.enable()
            body = {"at": now_iso(), "actor": self.actor, "table": table, "rows": n, **payload}
            text = _clean_text(canonical_json(body))
            payload_digest = hashlib.sha256(text.encode()).hexdigest()
            rows_digest = rows_hash.hexdigest()
            h = chain_hash(prev, type_, payload_digest, rows_digest)
            self.conn.execute(
                "INSERT INTO events (seq, type, payload, payload_digest, rows_digest, hash) VALUES (?, ?, ?, ?, ?, ?)",
                (seq, type_, text, payload_digest, rows_digest, h),
            )
            return seq

    # -- node writes --------------------------------------------------------

    def node_exists(self, node_id: str) -> bool:
        table = "predictions" if node_id.startswith("prediction:") else "nodes"
        return self.conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (node_id,)).fetchone() is not None

    def edge_exists(self, edge: Edge) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM edges WHERE src = ? AND dst = ? AND rel = ? AND role IS ?",
            (edge.src, edge.dst, edge.rel, edge.role),
        ).fetchone() is not None

    def add_node(
        self,
        node: Node,
        *,
        edges: Sequence[Edge] = (),
        event_type: str = "node",
        alias: bool = True,
        extra: Mapping[str, Iterable[Sequence[Any]]] | None = None,
    ) -> tuple[Node, bool]:
        """Record ``node`` (and ``edges``) unless a node with its id exists already.

        Returns ``(the stored node, created?)``. For an existing node, new edges are still
        recorded, and a new ``name`` becomes an alias (same bytes, second name), each in
        one event; nothing is written when there is nothing new.
        """
        with self.transaction():
            existing = self.get_node(node.id)
            new_edges = [e for e in dict.fromkeys(edges) if not self.edge_exists(e)]
            rows: dict[str, list[Sequence[Any]]] = {k: list(v) for k, v in (extra or {}).items()}
            if existing is None:
                rows["nodes"] = [(node.id, node.kind, node.name, canonical_json(dict(node.attrs)), node.created_at or now_iso())]
            elif alias and node.name and node.name != existing.name and node.name not in self.aliases(node.id):
                rows["aliases"] = [(node.id, node.name)]
            if new_edges:
                rows["edges"] = [(e.src, e.dst, e.rel, e.role) for e in new_edges]
            if not rows:
                return existing, False  # type: ignore[return-value]
            payload: dict[str, Any] = {"node": node.id}
            if new_edges:
                payload["edges"] = len(new_edges)
            self.write(event_type if existing is None else "link", payload, rows)
            stored = self.get_node(node.id)
            assert stored is not None
            return stored, existing is None

    def add_edges(self, edges: Sequence[Edge], *, event_type: str = "link") -> int:
        """Record the edges not recorded yet; returns how many were new."""
        with self.transaction():
            new = [e for e in dict.fromkeys(edges) if not self.edge_exists(e)]
            if new:
                self.write(event_type, {"edges": len(new)}, {"edges": [(e.src, e.dst, e.rel, e.role) for e in new]})
            return len(new)

    # -- nodes known to be recorded (issue 16: no re-check query per write) ---------
    #
    # Every run start re-records its agent, environment and code nodes, which exist
    # after the first run. `known_node` answers "is this node, under this name,
    # already recorded?" from memory. An entry is added only once the node is in the
    # database as seen by this connection; every rollback (of a transaction or a
    # savepoint: `lg.batch()` included) forgets them all, since the write that
    # recorded one may be among what was undone; so do a fork and an erasure. A
    # commit by another connection (PRAGMA data_version) forgets them too: another
    # process may have erased one.

    # The memory is per thread, as connections and transactions are: a node another
    # thread has written but not committed is not known here.

    @property
    def _known(self) -> dict[str, tuple[Node, set[str]]]:
        known: dict[str, tuple[Node, set[str]]] | None = getattr(self._local, "known", None)
        if known is None:
            known = self._local.known = {}
        return known

    def known_node(self, node_id: str, name: str | None) -> Node | None:
        """The stored node ``node_id`` if this connection has seen it recorded, with
        ``name`` as its name or an alias (so `add_node` would write nothing); else None."""
        entry = self._known.get(node_id)
        if entry is None:
            return None
        if self._conn_pid != os.getpid() or self._data_version() != getattr(self._local, "known_version", None):
            self._known.clear()
            return None
        node, names = entry
        return node if name is None or name in names else None

    def remember_node(self, node: Node, name: str | None = None) -> None:
        """Note that ``node`` (as stored) is recorded, also under ``name`` (an alias)."""
        if not self._known:
            self._local.known_version = self._data_version()
        names = self._known.setdefault(node.id, (node, set()))[1]
        names.update(n for n in (node.name, name) if n is not None)

    def _data_version(self) -> int:
        # changes when another connection commits (SQLite's PRAGMA data_version)
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    # -- reads that writes and references need -----------------------------

    def _node_from_row(self, row: Sequence[Any]) -> Node:
        node_id, kind, name, attrs, created_at = row
        return Node(node_id, kind, name, json.loads(attrs), created_at)

    def _prediction_from_row(self, row: Sequence[Any]) -> Node:
        pid, model, input_digest, output, score, request_id, created_at = row
        attrs = {
            "model": model,
            "input_digest": input_digest,
            "output": json.loads(output) if output is not None else None,
            "score": score,
            "request_id": request_id,
        }
        return Node(pid, "prediction", None, attrs, created_at)

    _NODE_COLS = "id, kind, name, attrs, created_at"
    _PRED_COLS = "id, model, input_digest, output, score, request_id, created_at"

    def get_node(self, node_id: str) -> Node | None:
        """The node with exactly this id (run nodes with their params, status, …), or None."""
        if node_id.startswith("prediction:"):
            row = self.conn.execute(f"SELECT {self._PRED_COLS} FROM predictions WHERE id = ?", (node_id,)).fetchone()
            return self._prediction_from_row(row) if row else None
        row = self.conn.execute(f"SELECT {self._NODE_COLS} FROM nodes WHERE id = ?", (node_id,)).fetchone()
        if row is None:
            return None
        node = self._node_from_row(row)
        if node.kind == "run":
            node = self.with_run_state([node])[0]
        return node

    def get_nodes(self, ids: Sequence[str]) -> dict[str, Node]:
        """Many nodes by exact id in a few queries; unknown ids are left out."""
        out: dict[str, Node] = {}
        preds = [i for i in ids if i.startswith("prediction:")]
        others = [i for i in ids if not i.startswith("prediction:")]
        for chunk in _chunks(others, 500):
            marks = ", ".join("?" * len(chunk))
            for row in self.conn.execute(f"SELECT {self._NODE_COLS} FROM nodes WHERE id IN ({marks})", chunk):
                out[row[0]] = self._node_from_row(row)
        for chunk in _chunks(preds, 500):
            marks = ", ".join("?" * len(chunk))
            for row in self.conn.execute(f"SELECT {self._PRED_COLS} FROM predictions WHERE id IN ({marks})", chunk):
                out[row[0]] = self._prediction_from_row(row)
        runs = [n for n in out.values() if n.kind == "run"]
        for n in self.with_run_state(runs):
            out[n.id] = n
        return out

    def with_run_state(self, runs: Sequence[Node]) -> list[Node]:
        """Run nodes with their current status, params, tags and latest metrics in attrs."""
        if not runs:
            return []
        ids = [r.id for r in runs]
        extra: dict[str, dict[str, Any]] = {i: {"params": {}, "tags": {}, "metrics": {}} for i in ids}
        for chunk in _chunks(ids, 500):
            marks = ", ".join("?" * len(chunk))
            # params are immutable (a changed value is refused), so their order is moot
            for run, key, value in self.conn.execute(f"SELECT run, key, value FROM params WHERE run IN ({marks})", chunk):
                extra[run]["params"][key] = value
            for run, key, value in self.conn.execute(f"SELECT run, key, value FROM tags WHERE run IN ({marks}) ORDER BY pk", chunk):
                extra[run]["tags"][key] = value
            for run, key, value in self.conn.execute(
                f"SELECT run, key, value FROM metrics WHERE run IN ({marks}) AND grp IS NULL ORDER BY step, pk", chunk
            ):
                extra[run]["metrics"][key] = value
            for run, status, at, exit_code, error in self.conn.execute(
                f"SELECT run, status, at, exit_code, error FROM run_states WHERE run IN ({marks}) ORDER BY pk", chunk
            ):
                e = extra[run]
                e["status"] = status
                if status == "running":
                    e.setdefault("started_at", at)
                else:
                    e["ended_at"] = at
                    e["exit_code"] = exit_code
                    e["error"] = error
        out = []
        for r in runs:
            attrs = dict(r.attrs)
            attrs.update(extra[r.id])
            started, ended = attrs.get("started_at"), attrs.get("ended_at")
            if started and ended:
                attrs["duration_s"] = _seconds_between(started, ended)
            out.append(Node(r.id, r.kind, r.name, attrs, r.created_at))
        return out

    def params_of(self, run_id: str, keys: Sequence[str] | None = None) -> dict[str, str]:
        """A run's params; only those named in ``keys`` when given (an indexed lookup,
        so logging one param costs the same however many the run has already)."""
        if keys is None:
            return {k: v for k, v in self.conn.execute("SELECT key, value FROM params WHERE run = ? ORDER BY pk", (run_id,))}
        out: dict[str, str] = {}
        for chunk in _chunks(list(keys), 500):
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT key, value FROM params WHERE run = ? AND key IN ({marks}) ORDER BY pk"
            out.update({k: v for k, v in self.conn.execute(sql, (run_id, *chunk))})
        return out

    def generators(self, node_id: str) -> list[str]:
        """The runs recorded as having generated ``node_id``."""
        return [r[0] for r in self.conn.execute(
            "SELECT dst FROM edges WHERE src = ? AND rel = 'was_generated_by' ORDER BY pk", (node_id,))]

    def annotations(self, node_id: str) -> dict[str, dict[str, Any]]:
        """The latest annotation of each field on a node: ``{field: {text, author, at, event}}``."""
        out: dict[str, dict[str, Any]] = {}
        for field_, text, author, at, event in self.conn.execute(
            "SELECT field, text, author, at, event FROM annotations WHERE node = ? ORDER BY pk", (node_id,)
        ):
            out[field_] = {"text": text, "author": author, "at": at, "event": event}
        return out

    def aliases(self, node_id: str) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM aliases WHERE node = ? ORDER BY pk", (node_id,))]

    def nodes(self, kind: str | None = None, name: str | None = None, limit: int | None = None) -> list[Node]:
        """Nodes, newest first, optionally of one kind and/or name (aliases count as names)."""
        if kind is not None and kind not in KINDS:
            raise InvalidInputError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        lim = f" LIMIT {int(limit)}" if limit else ""
        if kind == "prediction":
            rows = self.conn.execute(f"SELECT {self._PRED_COLS} FROM predictions ORDER BY pk DESC{lim}").fetchall()
            return [self._prediction_from_row(r) for r in rows]
        where, args = [], []
        if name is not None:
            name = _clean_text(name)  # names are stored cleaned (see `clean_text`)
            named, args = _named(name, kind)
            where.append(named)
        elif kind:
            where.append("kind = ?")
            args.append(kind)
        sql = f"SELECT {self._NODE_COLS} FROM nodes"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY pk DESC{lim}"
        nodes = [self._node_from_row(r) for r in self.conn.execute(sql, args)]
        runs = {n.id: n for n in self.with_run_state([n for n in nodes if n.kind == "run"])}
        return [runs.get(n.id, n) for n in nodes]

    def history(self, name: str, kind: str | None = None) -> list[Node]:
        """Every version recorded under ``name`` (as name or alias), oldest first."""
        versions = list(reversed(self.nodes(kind=kind, name=name)))
        if kind is None:
            kinds = {n.kind for n in versions}
            if len(kinds) > 1:
                raise AmbiguousIdError(name, [f"{k}:{name}" for k in sorted(kinds)])
        return versions

    def resolve(self, ref: str) -> Node:
        """The one node a reference names (DESIGN.md §1); raises NodeNotFoundError or
        AmbiguousIdError listing the candidates."""
        if isinstance(ref, Node):
            return ref
        try:
            r = parse_ref(_clean_text(str(ref)))
        except ValueError as exc:
            raise NodeNotFoundError(str(ref), str(exc)) from None
        if r.name is not None and r.name.startswith("mlflow:") and r.kind is None:
            return self._resolve_mlflow(r.name)
        if r.request is not None:
            rows = self.conn.execute(
                f"SELECT {self._PRED_COLS} FROM predictions WHERE request_id = ? ORDER BY pk DESC LIMIT 2", (r.request,)
            ).fetchall()
            if not rows:
                raise NodeNotFoundError(r.text, "no prediction has that request id")
            return self._prediction_from_row(rows[0])
        if r.prefix is not None:
            found = self._by_prefix(r.prefix, r.kind)
            if len(found) == 1:
                node = self.get_node(found[0])
                assert node is not None
                return node
            if len(found) > 1:
                raise AmbiguousIdError(r.text, found)
        if r.label is not None and r.name is not None:
            labelled = self._resolve_label(r)
            if labelled is not None:
                return labelled
            # the whole text is an ordinary name that contains '@' (`user@host`)
            r = replace(r, name=r.text.split(":", 1)[1] if r.kind else r.text, label=None)
        if r.name is not None:
            named, args = _named(r.name, r.kind)
            kinds = [row[0] for row in self.conn.execute(f"SELECT DISTINCT kind FROM nodes WHERE {named}", args)]
            if len(kinds) > 1:
                raise AmbiguousIdError(r.text, [f"{k}:{r.name}" for k in sorted(kinds)])
            if kinds:
                if r.version is None:
                    sql, qargs = f"SELECT id FROM nodes WHERE {named} ORDER BY pk DESC LIMIT 1", args
                else:
                    sql = f"SELECT id FROM nodes WHERE {named} ORDER BY pk LIMIT 1 OFFSET ?"
                    qargs = [*args, max(r.version - 1, 0)]
                row = self.conn.execute(sql, qargs).fetchone()
                if row is None or (r.version is not None and r.version < 1):
                    count = self.conn.execute(f"SELECT COUNT(*) FROM nodes WHERE {named}", args).fetchone()[0]
                    raise NodeNotFoundError(r.text, f"{r.name!r} has versions 1 to {count}")
                node = self.get_node(row[0])
                assert node is not None
                return node
        near = self._near_names(r.name, r.kind) if r.name else []
        raise NodeNotFoundError(r.text, f"did you mean {', '.join(near)}?" if near else "")

    # -- promotion labels (NAME@LABEL) ------------------------------------------

    def _resolve_label(self, r: Any) -> Node | None:
        """The model version holding ``r.label`` under ``r.name``; None when the whole
        text is itself a recorded name (``user@host``); else NodeNotFoundError saying
        which labels the name has."""
        holder = self.label_holder(r.name, r.label)
        if holder is not None and r.kind in (None, "model"):
            node = self.get_node(holder)
            if node is not None:
                return node
        whole = r.text.split(":", 1)[1] if r.kind else r.text
        if self.conn.execute("SELECT 1 FROM nodes WHERE name = ? LIMIT 1", (whole,)).fetchone():
            return None  # an ordinary name that happens to contain '@'
        labels = self.labels_of(r.name)
        if labels:
            held = ", ".join(f"{k} (on @{self._model_version(v)})" for k, v in sorted(labels.items()))
            hint = f"no version of {r.name!r} holds the label {r.label!r}; its labels: {held}"
        elif self.conn.execute("SELECT 1 FROM nodes WHERE name = ? AND kind = 'model' LIMIT 1", (r.name,)).fetchone():
            hint = f"no version of {r.name!r} holds the label {r.label!r} (put one there with `lineage promote`)"
        else:
            hint = f"no model is named {r.name!r} (see `lineage ls --kind model`)"
        raise NodeNotFoundError(r.text, hint)

    def _model_version(self, model_id: str) -> int:
        """A model's version number under its name (its rank among the nodes of that name)."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM nodes n JOIN nodes m ON m.id = ? WHERE n.name = m.name AND n.kind = m.kind "
            "AND n.pk <= m.pk", (model_id,)).fetchone()
        return int(row[0]) if row else 0

    def label_holder(self, name: str, label: str) -> str | None:
        """The id of the model version that holds ``label`` under ``name`` now, or None.
        One indexed lookup: the newest row of (name, label) decides."""
        row = self.conn.execute(
            "SELECT model, action FROM promotions WHERE name = ? AND label = ? ORDER BY pk DESC LIMIT 1",
            (_clean_text(name), label)).fetchone()
        return row[0] if row and row[1] == "promote" else None

    def labels_of(self, name: str) -> dict[str, str]:
        """``{label: model id}`` for every label a model name holds now."""
        out: dict[str, str] = {}
        for label, model, action in self.conn.execute(
                "SELECT label, model, action FROM promotions WHERE name = ? ORDER BY pk", (_clean_text(name),)):
            if action == "promote":
                out[label] = model
            elif out.get(label) == model:
                del out[label]
        return out

    def promotion_rows(self, name: str, label: str | None = None) -> list[dict[str, Any]]:
        """Every recorded change of a name's labels (or of one label), oldest first:
        ``{name, label, model, action, reason, author, at, event}``."""
        sql = "SELECT name, label, model, action, reason, author, at, event FROM promotions WHERE name = ?"
        args: list[Any] = [_clean_text(name)]
        if label is not None:
            sql += " AND label = ?"
            args.append(label)
        cols = ("name", "label", "model", "action", "reason", "author", "at", "event")
        return [dict(zip(cols, r)) for r in self.conn.execute(sql + " ORDER BY pk", args)]

    # -- reads for feature-level lineage (lineage/features.py) ----------------------

    def version_ids(self, name: str, kind: str) -> list[str]:
        """Ids of every version of ``kind`` recorded under ``name`` (or as an alias), oldest first."""
        name = _clean_text(name)
        return [r[0] for r in self.conn.execute(
            "SELECT id FROM nodes WHERE (name = ? OR id IN (SELECT node FROM aliases WHERE name = ?)) "
            "AND kind = ? ORDER BY pk", (name, name, kind))]

    def used_by(self, run_id: str) -> list[tuple[str, str | None]]:
        """``(entity id, role)`` of every `used` edge of a run, in recording order."""
        return [(r[0], r[1]) for r in self.conn.execute(
            "SELECT dst, role FROM edges WHERE src = ? AND rel = 'used' ORDER BY pk", (run_id,))]

    def importance_rows(self, model_id: str) -> list[tuple[Any, ...]]:
        """Importances computed after logging: ``(method, feature, level, value, std,
        dataset, target, at, event)`` rows of a model, in order."""
        return self.conn.execute(
            "SELECT method, feature, level, value, std, dataset, target, at, event FROM importances "
            "WHERE model = ? ORDER BY pk", (model_id,)).fetchall()
    def _resolve_mlflow(self, text: str) -> Node:
        """``mlflow:RUN_ID``: the run imported from MLflow under that id (recorded as
        an alias by `lineage import mlflow`), else a run mirrored with MLflow, whose own
        hex is the MLflow run id."""
        run_id = text.split(":", 1)[1].strip().lower()
        row = self.conn.execute("SELECT node FROM aliases WHERE name = ? ORDER BY pk LIMIT 1", (f"mlflow:{run_id}",)).fetchone()
        if row is not None:
            node = self.get_node(row[0])
            if node is not None:
                return node
        found = self._by_prefix(run_id, "run") if run_id and all(c in "0123456789abcdef" for c in run_id) else []
        if len(found) == 1:
            node = self.get_node(found[0])
            assert node is not None
            return node
        if len(found) > 1:
            raise AmbiguousIdError(text, found)
        raise NodeNotFoundError(text, "no run imported from or mirrored with MLflow has that id; see `lineage import mlflow`")

    def _near_names(self, name: str, kind: str | None) -> list[str]:
        """Recorded names close to a mistyped one (only on the error path: it reads every
        distinct name of non-prediction nodes, tens of thousands at most)."""
        import difflib

        sql, args = "SELECT DISTINCT name FROM nodes WHERE name IS NOT NULL", []
        if kind:
            sql, args = sql + " AND kind = ?", [kind]
        names = [row[0] for row in self.conn.execute(sql, args)]
        near = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
        return [f"{kind}:{n}" if kind else n for n in near]

    def _by_prefix(self, prefix: str, kind: str | None) -> list[str]:
        """Ids starting with ``kind:prefix`` (every kind when None), at most 9.

        A range scan on the unique index: portable, and it uses the index where LIKE
        would not (SQLite's LIKE is case-insensitive by default).
        """
        kinds = [kind] if kind else list(KINDS)
        found: list[str] = []
        for k in kinds:
            lo = f"{k}:{prefix}"
            hi = lo + "\uffff"
            table = "predictions" if k == "prediction" else "nodes"
            found += [r[0] for r in self.conn.execute(f"SELECT id FROM {table} WHERE id >= ? AND id < ? ORDER BY id LIMIT 9", (lo, hi))]
        return found

    # -- the ledger -----------------------------------------------------------

    def events(self, start: int = 1, end: int | None = None) -> Iterator[Event]:
        """Ledger events from ``start`` (1-based) through ``end``, in order."""
        sql = "SELECT seq, type, payload, payload_digest, rows_digest, hash FROM events WHERE seq >= ?"
        args: list[Any] = [start]
        if end is not None:
            sql += " AND seq <= ?"
            args.append(end)
        for seq, type_, payload, pd, rd, h in self.conn.execute(sql + " ORDER BY seq", args):
            yield Event(seq, type_, json.loads(payload) if payload is not None else None, pd, rd, h)

    def event(self, seq: int) -> Event | None:
        return next(self.events(seq, seq), None)

    def event_of(self, node_id: str) -> int | None:
        """The number of the event that recorded a node."""
        table = "predictions" if node_id.startswith("prediction:") else "nodes"
        row = self.conn.execute(f"SELECT event FROM {table} WHERE id = ?", (node_id,)).fetchone()
        return row[0] if row else None

    def check_event_rows(self, seq: int) -> bool:
        """True when the rows carrying event ``seq`` still hash to what it committed to,
        and its payload to its payload digest. Cheap: a few indexed lookups."""
        ev = self.conn.execute("SELECT payload, payload_digest, rows_digest FROM events WHERE seq = ?", (seq,)).fetchone()
        if ev is None:
            return False
        payload, payload_digest, rows_digest = ev
        if payload is not None and hashlib.sha256(_as_bytes(payload)).hexdigest() != payload_digest:
            return False
        h = hashlib.sha256()
        for table, columns in RECORD_TABLES.items():
            rows = self.conn.execute(f"SELECT pk, {', '.join(columns)} FROM {table} WHERE event = ? ORDER BY pk", (seq,)).fetchall()
            mine = self._erased_rows(table, [r[0] for r in rows]).get(table, {}) if rows else {}
            for pk, *values in rows:
                erasure = mine.get(pk) if _erased_form(table, values) else None
                h.update(_committed_digest(row_digest(table, values), erasure))
            if rows and not self._in_place(table, seq, rows[0][0], rows[-1][0]):
                return False
        return h.hexdigest() == rows_digest

    def _in_place(self, table: str, seq: int, lo: int, hi: int) -> bool:
        """The order rule around one event's rows ``lo..hi`` (pks) of ``table``: no row
        of another event among them, none of a later event before them, none of an
        earlier event after them. Index and rowid-range lookups only."""
        c = self.conn
        if c.execute(f"SELECT 1 FROM {table} WHERE pk BETWEEN ? AND ? AND event IS NOT ? LIMIT 1", (lo, hi, seq)).fetchone():
            return False
        before = c.execute(f"SELECT event FROM {table} WHERE pk < ? ORDER BY pk DESC LIMIT 1", (lo,)).fetchone()
        after = c.execute(f"SELECT event FROM {table} WHERE pk > ? ORDER BY pk LIMIT 1", (hi,)).fetchone()
        try:
            return (before is None or before[0] <= seq) and (after is None or after[0] >= seq)
        except TypeError:  # a forged non-numeric event number next to it
            return False

    # -- erasure ---------------------------------------------------------------

    def _erased_rows(self, table: str | None = None, pks: Sequence[int] = ()) -> dict[str, dict[int, tuple[bytes, bytes]]]:
        """``{table: {pk: (digest committed to, digest as erased)}}`` of erased rows:
        all of them, or only those of ``table`` among ``pks``."""
        base = "SELECT tbl, row_pk, row_digest, erased_digest FROM redactions"
        if table is None:
            queries: Iterable[tuple[str, list[Any]]] = [(base, [])]
        else:  # in chunks: a bulk event's rows outnumber SQLite's bound-variable limit
            queries = ((f"{base} WHERE tbl = ? AND row_pk IN ({', '.join('?' * len(c))})", [table, *c])
                       for c in _chunks(list(pks), 500))
        out: dict[str, dict[int, tuple[bytes, bytes]]] = {}
        for sql, args in queries:
            for tbl, row_pk, committed, erased in self.conn.execute(sql + " ORDER BY pk", args):
                try:
                    out.setdefault(str(tbl), {})[row_pk] = (bytes.fromhex(committed), bytes.fromhex(erased))
                except (TypeError, ValueError):  # a forged record: leave the row to fail verify
                    continue
        return out

    def redact(self, node_id: str, *, reason: str) -> int:
        """Erase the personal content of one node (GDPR erasure); returns the event number.

        A prediction loses its input digest, output, score and request id; any other
        node its name, aliases and attributes; annotations on it lose their text. Ids,
        kinds, times and edges stay, so the graph keeps its shape. The rows are changed
        in place through one `redact` event that records, for each, the digest its
        original event committed to: the chain still verifies, and the erased rows are
        themselves checked against the digests of their erased form.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInputError("erasure needs a reason as text (e.g. 'GDPR request 2026-114')")
        self._known.clear()  # an erased node's name and attrs are no longer what was seen
        with self.transaction():
            targets: list[tuple[str, int, tuple[Any, ...]]] = []
            if node_id.startswith("prediction:"):
                targets += self._rows("predictions", "id = ?", node_id)
                targets += self._rows("prediction_inputs", "prediction = ?", node_id)
            else:
                targets += self._rows("nodes", "id = ?", node_id)
                targets += self._rows("aliases", "node = ?", node_id)
            if not targets:
                raise NodeNotFoundError(node_id)
            node_attrs: dict[str, Any] = {}
            if targets[0][0] == "nodes":
                with suppress(TypeError, ValueError):
                    node_attrs = json.loads(targets[0][2][3]) or {}
                if targets[0][2][1] == "run":
                    for table in ("params", "tags", "run_states"):
                        targets += self._rows(table, "run = ?", node_id)
            targets += self._rows("annotations", "node = ?", node_id)
            records, updates = [], []
            for table, pk, values in targets:
                if self._erased_rows(table, [pk]):
                    continue
                columns = RECORD_TABLES[table]
                blank = _ERASED_COLUMNS[table]
                erased = tuple(blank.get(c, v) if c in blank else v for c, v in zip(columns, values))
                if erased == tuple(values) and table not in ("nodes", "predictions"):
                    continue  # nothing personal in it (a state without error text)
                records.append((table, pk, row_digest(table, values).hex(), row_digest(table, erased).hex(), reason))
                updates.append((table, pk, erased))
            if not records:
                raise WriteRefusedError(f"{node_id} is already erased")
            seq = self.write("redact", {"node": node_id, "reason": reason, "rows": len(records)}, {"redactions": records})
            # freed cells and pages are zeroed whatever the build's default (or a
            # connection's setting): the old values must not stay in free space
            self.conn.execute("PRAGMA secure_delete = ON")
            for table, pk, erased in updates:
                columns = RECORD_TABLES[table]
                sets = ", ".join(f"{c} = ?" for c in columns)
                self.conn.execute(f"UPDATE {table} SET {sets} WHERE pk = ?", (*erased, pk))
            self._forget_paths(node_attrs)
        self.scrub()
        return seq

    def _forget_paths(self, attrs: Mapping[str, Any]) -> None:
        """Drop stat cache entries for the paths an erased node recorded (a file, or
        every file under a directory): the cache keys are the paths themselves."""
        for key in ("path", "abspath", "uri"):
            value = attrs.get(key)
            if not isinstance(value, str) or not value:
                continue
            candidates = {value, _clean_text(os.path.abspath(value))}
            with suppress(OSError, ValueError):
                candidates.add(_clean_text(str(Path(value).resolve())))
            for p in candidates:
                base = p.rstrip("/")
                self.conn.execute("DELETE FROM stat_cache WHERE path = ? OR (path >= ? AND path < ?)",
                                  (p, base + "/", base + "0"))

    def scrub(self) -> bool:
        """Leave no old copy of erased content in the store's files: rewrite the
        database (``VACUUM``: free pages and the unused space inside pages can hold old
        row images written by a build or connection without ``secure_delete``), then
        copy everything into the file and empty the WAL (``wal_checkpoint(TRUNCATE)``).

        Returns False when a reader's open snapshot kept the checkpoint from finishing
        (retried for a few seconds first). Does nothing inside a transaction. The
        rewrite takes time in proportion to the store (about a second per 100 MB
        here) and holds the write lock meanwhile: erasure is rare, correctness first.
        """
        if self.in_transaction or self.read_only:
            return False
        self.conn.execute("PRAGMA secure_delete = ON")
        self.conn.execute("VACUUM")
        for _ in range(50):
            with suppress(LineageError):
                busy, _, _ = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy:
                    return True
            time.sleep(0.1)
        return False

    def _rows(self, table: str, where: str, arg: Any) -> list[tuple[str, int, tuple[Any, ...]]]:
        columns = RECORD_TABLES[table]
        sql = f"SELECT pk, {', '.join(columns)} FROM {table} WHERE {where} ORDER BY pk"
        return [(table, row[0], tuple(row[1:])) for row in self.conn.execute(sql, (arg,))]

    def last_checkpoint(self) -> Event | None:
        row = self.conn.execute("SELECT seq FROM events WHERE type = 'checkpoint' ORDER BY seq DESC LIMIT 1").fetchone()
        return self.event(row[0]) if row else None

    def verify(self, *, head: str | None = None, record: bool = False, since_checkpoint: bool = False,
               progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """Replay the ledger and every recorded table (see the module docstring).

        ``head``: a hash remembered from earlier that must still be in this history.
        ``record``: append the result as a ``checkpoint`` event (only when it passed).
        ``since_checkpoint``: start from the last checkpoint instead of event 1 (the
        prefix before it was verified when the checkpoint was recorded).

        Everything is read from one snapshot (`snapshot`), so writers appending
        meanwhile are simply not seen: no false alarm. Derived caches (``open_runs``)
        are checked against the evidence and repaired; that is reported in
        ``.repaired``, never as tampering.
        """
        want_head = head.lower() if head else None
        if want_head is not None and (len(want_head) < 12 or not all(c in "0123456789abcdef" for c in want_head)):
            # a short prefix would match some event of almost any history
            raise InvalidInputError(f"--head takes the hex head hash `lineage verify` printed (at least 12 digits), not {head!r}")
        outer = self.in_transaction  # inside a caller's snapshot or batch: repair nothing
        with self.snapshot():
            report = self._verify(head, since_checkpoint, progress)
            # (a full check reads every run state anyway; an incremental one stays cheap)
            stale = self._stale_open_runs() if report.checked_from == 0 else set()
        if stale and not outer:
            report.repaired.append(f"open_runs cache: {len(stale)} entr{'y' if len(stale) == 1 else 'ies'} did not match "
                                   "the recorded run states (a cache, not evidence): rebuilt")
            self._rebuild_open_runs()
        if report.ok and record:
            self.write("checkpoint", {"verified_through": report.events, "head": report.head, "from": report.checked_from})
        return report

    def _verify(self, head: str | None, since_checkpoint: bool,
                progress: Callable[[int, int], None] | None) -> VerifyReport:
        total, _ = self.head()
        start, prev = 1, GENESIS
        if since_checkpoint:
            cp = self.last_checkpoint()
            if cp is not None and cp.payload is not None:
                through = cp.payload.get("verified_through")
                # Trust only a checkpoint that lies after what it vouches for, so the
                # checkpoint event itself (payload, chain link) is among what is checked:
                # an edited one pointing at itself or past it would otherwise skip every
                # check. Anything else (a forged non-number) means a full check.
                if type(through) is int and 0 < through < cp.seq:
                    base = self.event(through)
                    if base is not None and base.hash == cp.payload.get("head"):
                        start, prev = through + 1, base.hash
        report = VerifyReport(ok=True, events=0, head=prev, checked_from=start - 1)
        problems: list[tuple[int, str]] = []
        want_head = head.lower() if head else None
        found_head = False
        if want_head and start > 1:  # a head in the prefix the checkpoint vouches for
            found_head = any(str(h).startswith(want_head) for (h,) in self.conn.execute(
                "SELECT hash FROM events WHERE seq < ? AND hash >= ? AND hash < ?", (start, want_head, want_head + "g")))

        row_groups = self._row_groups(start - 1, problems)
        pending = next(row_groups, None)
        expected = start
        sha, fromhex = hashlib.sha256, bytes.fromhex
        for seq, type_, payload, pd, rd, h in self.conn.execute(
            "SELECT seq, type, payload, payload_digest, rows_digest, hash FROM events WHERE seq >= ? ORDER BY seq", (start,)
        ):
            if seq != expected:
                problems.append((expected, f"events {expected}..{seq - 1} are missing from the ledger"))
                expected = seq
            if payload is not None and sha(_as_bytes(payload)).hexdigest() != pd:
                problems.append((seq, f"event {seq} ({type_}): payload does not match its digest"))
            # rows belonging to events that do not exist (inserted rows)
            while pending is not None and pending[0] < seq:
                problems.append((pending[0], f"rows claim event {pending[0]}, which is not in the ledger"))
                pending = next(row_groups, None)
            actual = _EMPTY_ROWS
            if pending is not None and pending[0] == seq:
                actual = pending[1]
                pending = next(row_groups, None)
            if actual != rd:
                problems.append((seq, f"event {seq} ({type_}): recorded rows were edited, inserted or deleted"))
            try:  # chain_hash, inlined: it runs once per event
                recomputed = sha(fromhex(prev) + type_.encode() + b"\x00" + fromhex(pd) + fromhex(rd)).hexdigest()
            except (TypeError, ValueError, AttributeError):  # only a forged field is not hex text
                problems.append((seq, f"event {seq}: a digest or its type is not hex text (edited event)"))
                recomputed = chain_hash(prev, type_, pd, rd)
            if recomputed != h:
                problems.append((seq, f"event {seq} ({type_}): hash chain broken (edited, inserted or reordered event)"))
            prev = recomputed
            if want_head and not found_head and recomputed.startswith(want_head):
                found_head = True
            expected = seq + 1
            if progress and seq % 10000 == 0:
                progress(seq, total)
        while pending is not None:
            problems.append((pending[0], f"rows claim event {pending[0]}, which is not in the ledger"))
            pending = next(row_groups, None)
        report.events = expected - 1
        report.head = prev
        if want_head is not None:
            report.head_found = found_head
            if not found_head:
                problems.append((report.events + 1, f"head {head} is not in this history: the ledger was truncated or rewritten"))
        if problems:
            problems.sort(key=lambda p: p[0])
            report.ok = False
            report.first_bad = problems[0][0]
            report.problems = [p[1] for p in problems]
        return report

    def _row_groups(self, after: int, problems: list[tuple[int, str]] | None = None) -> Iterator[tuple[int, str]]:
        """``(event, rows digest)`` for every event that has rows, in event order,
        merged across tables so memory stays bounded by one event's rows.

        Also checks the order rule (docs/integrity.md): in every table, rows sorted by
        ``pk`` are sorted by event. Read in (event, pk) order, pks must only grow; a pk
        at or below the largest seen so far is a row placed before rows of an earlier
        event (a swapped pk, a row moved between events), which would change what
        "latest" means. The earliest event involved is appended to ``problems``.
        """

        erased = self._erased_rows()

        def stream(table: str, columns: tuple[str, ...], order: int) -> Iterator[tuple[Any, int, bytes]]:
            # '["table",{},…]': the row digest of `row_digest`, batch by batch and
            # column by column (json.dumps per row was most of verify's time)
            template = canonical_json([table])[:-1].replace("{", "{{").replace("}", "}}") + ",{}" * len(columns) + "]"
            mine = erased.get(table)
            sql = f"SELECT event, pk, {', '.join(columns)} FROM {table} WHERE event > ? ORDER BY event, pk"
            cur = self.conn.execute(sql, (after,))
            top_pk: int | None = -1
            top_event, first = 0, True
            while True:
                rows = cur.fetchmany(2000)
                if not rows:
                    return
                events, pks, *cols = zip(*rows)
                if set(map(type, events)) != {int}:
                    # a forged non-numeric event number: sort it first, where verify
                    # reports it as naming no event (instead of failing to compare)
                    events = tuple(e if isinstance(e, (int, float)) else -1 for e in events)
                if problems is not None and top_pk is not None:
                    if first and after > 0:
                        # rows of checkpointed events placed after the new ones
                        old = self.conn.execute(f"SELECT event, pk FROM {table} WHERE pk > ? AND event <= ? ORDER BY pk LIMIT 1",
                                                (pks[0], after)).fetchone()
                        if old is not None:
                            problems.append((after + 1, _order_problem(table, old[0], old[1], events[0], pks[0])))
                    first = False
                    if top_pk >= pks[0] or any(map(operator.ge, pks, pks[1:])):
                        for e, pk in zip(events, pks):
                            if pk <= top_pk:
                                problems.append((max(top_event, 0), _order_problem(table, top_event, top_pk, e, pk)))
                                top_pk = None  # one report per table: the earliest event involved
                                break
                            top_pk, top_event = pk, e
                    else:
                        top_pk, top_event = pks[-1], events[-1]
                texts = [_stored_column_json(c) for c in cols]
                digests: Iterable[bytes] = map(_DIGEST, map(hashlib.sha256, map(str.encode, map(template.format, *texts))))
                if mine:  # erased rows count as what their event committed to
                    digests = [_committed_digest(d, mine.get(pk)) if pk in mine and _erased_form(table, r[2:]) else d
                               for d, pk, r in zip(digests, pks, rows)]
                yield from zip(events, itertools.repeat(order), digests)

        streams = [stream(t, c, i) for i, (t, c) in enumerate(RECORD_TABLES.items())]
        # Items compare as (event, table order, digest) tuples; no two streams share a
        # table order, so rows of one event keep (table order, pk) order.
        merged = heapq.merge(*streams)
        for event, group in itertools.groupby(merged, key=_FIRST):
            h = hashlib.sha256()
            for _, _, d in group:
                h.update(d)
            yield event, h.hexdigest()

    # -- the stat cache (not evidence: outside the chain) ----------------------

    def stat_get(self, key: Any) -> tuple[str, int | None] | None:
        """The cached ``(digest, lines)`` of a file whose size, mtime and inode match, or
        None. An entry not shaped as lineage writes them (a digest that is not 64 hex
        digits, a line count that is not a number) is garbage: ignored, so the file
        is read again."""
        row = self.conn.execute("SELECT size, mtime_ns, inode, digest, lines FROM stat_cache WHERE path = ?", (_clean_text(key.path),)).fetchone()
        if row and (row[0], row[1], row[2]) == (key.size, key.mtime_ns, key.inode):
            digest, lines = row[3], row[4]
            if isinstance(digest, str) and _HEX64.fullmatch(digest) and (lines is None or type(lines) is int):
                return digest, lines
        return None

    def stat_put(self, key: Any, digest: str, lines: int | None) -> None:
        # Not a recorded fact: written outside the ledger, and outside any open batch's
        # ledger event (it rides along in the same transaction when there is one).
        sql = (
            "INSERT INTO stat_cache (path, size, mtime_ns, inode, digest, lines) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
            "inode = excluded.inode, digest = excluded.digest, lines = excluded.lines"
        )
        with self.transaction():
            # (a path that is not UTF-8 is kept escaped; size, mtime and inode still
            # have to match, so two names escaping alike cannot share an entry wrongly)
            self.conn.execute(sql, (_clean_text(key.path), key.size, key.mtime_ns, key.inode, digest, lines))

    @property
    def stat_cache(self) -> StatCache:
        """The stat cache in the shape `hashing` takes (``cache=store.stat_cache``)."""
        return StatCache(self)

    # -- artifacts ---------------------------------------------------------

    def put_artifact(self, digest: str, data: bytes | None = None, *, source: str | os.PathLike[str] | None = None) -> Path:
        """Keep bytes (or a file's content) under ``artifacts/ab/<digest>``; returns the path.

        Written to a temporary name, synced and renamed, so a crash never leaves half
        a file under a digest's name; a failed write (a full disk) removes its
        temporary file and raises DiskFullError, or InvalidInputError for another
        OS error, naming the file.
        """
        if data is None and source is None:
            raise InvalidInputError("put_artifact needs data or a source file")
        target = self.artifacts_dir / digest[:2] / digest
        if target.exists():
            return target
        tmp = target.with_name(f".{digest}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                if data is not None:
                    out.write(data)
                else:
                    import shutil

                    with open(source, "rb") as src:  # type: ignore[arg-type]
                        shutil.copyfileobj(src, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())  # a full disk can surface only here (or at close)
            os.replace(tmp, target)
        except OSError as exc:
            with suppress(OSError):
                tmp.unlink()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(f"the disk holding {self.artifacts_dir} is full: the artifact {digest[:12]}… "
                                    "was not kept (nothing partial left); free some space and retry") from None
            raise InvalidInputError(f"cannot write the artifact {target}: {exc.strerror or exc}") from None
        return target

    def artifact_path(self, digest: str) -> Path:
        return self.artifacts_dir / digest[:2] / digest

    # -- run locks: a live run holds an flock; a free lock on a `running` run means it died

    def run_lock(self, run_id: str) -> RunLock:
        """The lock file of a run: only ever ``locks/<32 hex>.lock`` inside the store."""
        if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
            raise InvalidInputError(f"{run_id!r} is not a run id (run:<32 hex digits>)")
        return RunLock(self.locks_dir / (run_id.split(":", 1)[1] + ".lock"))

    def running_runs(self) -> list[str]:
        """Ids of runs whose latest state is `running`.

        Read from `open_runs` (its cost follows the runs still open, not every run ever
        started), which is a cache: each entry is checked against the evidence (a
        well-formed run id whose latest recorded state is `running`) before it is
        believed, and the cache is rebuilt when an entry is not.
        """
        out, stale = [], False
        for (run,) in self.conn.execute("SELECT run FROM open_runs ORDER BY run").fetchall():
            if isinstance(run, str) and _RUN_ID.fullmatch(run) and self._latest_status(run) == "running":
                out.append(run)
            else:
                stale = True
        if stale:
            self._rebuild_open_runs()
        return out

    def _latest_status(self, run_id: str) -> str | None:
        row = self.conn.execute("SELECT status FROM run_states WHERE run = ? ORDER BY pk DESC LIMIT 1", (run_id,)).fetchone()
        return row[0] if row else None

    _OPEN_RUNS_SQL = ("SELECT s.run FROM run_states s WHERE s.status = 'running' "
                      "AND s.pk = (SELECT MAX(t.pk) FROM run_states t WHERE t.run = s.run)")

    def _stale_open_runs(self) -> set[Any]:
        """Entries of `open_runs` that the evidence contradicts, and runs it misses
        (the symmetric difference with what run_states says). Reads every run state."""
        cached = {r[0] for r in self.conn.execute("SELECT run FROM open_runs")}
        actual = {r[0] for r in self.conn.execute(self._OPEN_RUNS_SQL)}
        return cached ^ actual

    def _rebuild_open_runs(self) -> None:
        """Rebuild the `open_runs` cache from run_states; best effort (a read-only or
        busy store keeps the stale cache, which every reader re-checks anyway)."""
        with suppress(sqlite3.Error, LineageError), self.transaction():
            self.conn.execute("DELETE FROM open_runs")
            self.conn.execute(f"INSERT INTO open_runs (run) {self._OPEN_RUNS_SQL}")

    def reap_dead_runs(self, *, noticed_by: str | None = None) -> list[str]:
        """Record as `crashed` every `running` run whose process is gone; returns their ids."""
        reaped = []
        for run_id in self.running_runs():
            lock = self.run_lock(run_id)
            if not lock.try_acquire():
                continue  # its process is alive (or another reaper holds it right now)
            try:
                with self.transaction():
                    if run_id in self.running_runs():  # re-check under the write lock
                        self.write(
                            "run_crashed",
                            {"run": run_id},
                            {"run_states": [(run_id, "crashed", now_iso(), None, "the run's process ended without closing the run", noticed_by or self.actor)]},
                        )
                        reaped.append(run_id)
            finally:
                lock.release(remove=True)
        return reaped

    # -- reads for audit reports: facts and the ledger events that recorded them -----

    def metrics_of(self, run_id: str) -> list[dict[str, Any]]:
        """Every metric value a run logged, in order, with the event that recorded it:
        ``{key, value, step, at, dataset, group, event}``."""
        sql = "SELECT key, value, step, at, dataset, grp, event FROM metrics WHERE run = ? ORDER BY pk"
        return [dict(zip(("key", "value", "step", "at", "dataset", "group", "event"), r))
                for r in self.conn.execute(sql, (run_id,))]

    def run_states_of(self, run_id: str) -> list[dict[str, Any]]:
        """A run's state changes in order: ``{status, at, exit_code, error, noticed_by, event}``."""
        sql = "SELECT status, at, exit_code, error, noticed_by, event FROM run_states WHERE run = ? ORDER BY pk"
        return [dict(zip(("status", "at", "exit_code", "error", "noticed_by", "event"), r))
                for r in self.conn.execute(sql, (run_id,))]

    def record_events(self, node_ids: Sequence[str]) -> dict[str, set[int]]:
        """The ledger events behind what is recorded about ``node_ids``, per table: their
        node rows and aliases, the edges between two of them, the params, tags, metrics
        and states of the runs among them, and their annotations (predictions aside)."""
        ids = sorted({i for i in node_ids if not i.startswith("prediction:")})
        out: dict[str, set[int]] = {t: set() for t in ("nodes", "aliases", "edges", "params", "tags", "metrics", "run_states", "annotations")}
        wanted = set(ids)
        for chunk in _chunks(ids, 500):
            marks = ", ".join("?" * len(chunk))
            for table, column in (("nodes", "id"), ("aliases", "node"), ("params", "run"), ("tags", "run"),
                                  ("metrics", "run"), ("run_states", "run"), ("annotations", "node")):
                out[table].update(r[0] for r in self.conn.execute(f"SELECT event FROM {table} WHERE {column} IN ({marks})", chunk))
            out["edges"].update(r[1] for r in self.conn.execute(f"SELECT dst, event FROM edges WHERE src IN ({marks})", chunk)
                                if r[0] in wanted)
        return out

    def prediction_summary(self, model_id: str) -> dict[str, Any]:
        """How many predictions a model made, when the first and last were recorded, and
        the events that wrote them with their row counts: ``{count, first_at, last_at,
        events: {seq: rows}}``."""
        sql = ("SELECT event, COUNT(*), MIN(created_at), MAX(created_at) FROM predictions "
               "WHERE model = ? GROUP BY event ORDER BY event")
        events: dict[int, int] = {}
        first = last = None
        for event, n, lo, hi in self.conn.execute(sql, (model_id,)):
            events[event] = n
            first = lo if first is None or lo < first else first
            last = hi if last is None or hi > last else last
        return {"count": sum(events.values()), "first_at": first, "last_at": last, "events": events}

    # -- signed checkpoints ------------------------------------------------------

    def checkpoints(self) -> list[Event]:
        """Every checkpoint event, oldest first (found through the events_type index)."""
        seqs = [r[0] for r in self.conn.execute("SELECT seq FROM events WHERE type = 'checkpoint' ORDER BY seq")]
        return [e for e in (self.event(s) for s in seqs) if e is not None]

    # -- decision records: the input values kept with predictions (keep_inputs=True) --

    def prediction_inputs(self, prediction_id: str) -> tuple[str | None, int] | None:
        """``(inputs JSON text, event)`` kept for a prediction (text None once erased),
        or None when its inputs were not kept."""
        row = self.conn.execute("SELECT inputs, event FROM prediction_inputs WHERE prediction = ? ORDER BY pk LIMIT 1",
                                (prediction_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def kept_inputs(self, model_id: str, *, limit: int = 2000) -> list[str]:
        """Up to ``limit`` kept input rows (JSON text) of a model's predictions, newest
        first: the fallback baseline of an explanation when no training data is readable."""
        sql = ("SELECT i.inputs FROM prediction_inputs i JOIN predictions p ON p.id = i.prediction "
               "WHERE p.model = ? AND i.inputs IS NOT NULL ORDER BY i.pk DESC LIMIT ?")
        return [r[0] for r in self.conn.execute(sql, (model_id, int(limit)))]

    # -- aggregates for the whole-store diagram (`lineage dag` without REF) ------------

    def overview_counts(self) -> tuple[list[tuple[str, str | None, int]],
                                       list[tuple[str, str | None, str, str | None, str, str | None, int]]]:
        """The store summarised by aggregate queries, never row by row.

        Returns ``(groups, edges)``: ``groups`` are ``(kind, name, count)`` for the nodes
        grouped by kind and name, predictions grouped by their model's name as
        ``("prediction", model_name, count)``; ``edges`` are ``(src_kind, src_name,
        dst_kind, dst_name, rel, role, count)`` between those groups, the predictions'
        link to their model as ``was_derived_from``.
        """
        groups = [(k, n, c) for k, n, c in self.conn.execute(
            "SELECT kind, name, COUNT(*) FROM nodes GROUP BY kind, name")]
        edges = [tuple(r) for r in self.conn.execute(
            "SELECT s.kind, s.name, d.kind, d.name, e.rel, e.role, COUNT(*) FROM edges e "
            "JOIN nodes s ON s.id = e.src JOIN nodes d ON d.id = e.dst "
            "GROUP BY s.kind, s.name, d.kind, d.name, e.rel, e.role")]
        per_model = self.conn.execute(
            "SELECT m.name, COUNT(*) FROM predictions p JOIN nodes m ON m.id = p.model GROUP BY m.name").fetchall()
        for model_name, count in per_model:
            groups.append(("prediction", model_name, count))
            edges.append(("prediction", model_name, "model", model_name, "was_derived_from", None, count))
        return groups, edges


_EMPTY_ROWS = hashlib.sha256(b"").hexdigest()
_RUN_ID = re.compile(r"run:[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class StatCache:
    """The store's cache of file digests, as `hashing.DigestCache`.

    A cache that cannot be written (a read-only store, a busy lock) is still a correct
    cache, only a slower one, so a failed write is dropped: it must never fail the
    read or the recording it was speeding up.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, key: Any) -> tuple[str, int | None] | None:
        return self.store.stat_get(key)

    def put(self, key: Any, digest: str, lines: int | None) -> None:
        with suppress(sqlite3.Error, LineageError):
            self.store.stat_put(key, digest, lines)


class RunLock:
    """An exclusive ``flock`` on a per-run file, held while the run's process lives.

    The kernel drops it when the process dies, however it dies (SIGKILL included),
    which is what lets another process tell a dead run from a live one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = os.getpid()

    def try_acquire(self) -> bool:
        # A releasing holder (a reaper, a run's end) unlinks the file: a lock taken on
        # a file opened just before that unlink guards nothing, since the next process
        # opens a new file at the path and locks it too (and could mark a live run
        # crashed). So the lock counts only if the path still names the locked file.
        for _ in range(10):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                return False  # read-only store: we cannot judge, so we do not
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return False
                raise
            try:
                st, now = os.fstat(fd), os.stat(self.path)
                same = (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino)
            except OSError:
                same = False  # unlinked under us
            if same:
                self._fd = fd
                self._pid = os.getpid()
                return True
            os.close(fd)  # (closing drops the lock on the orphaned file) and try again
        return False

    def release(self, *, remove: bool = False) -> None:
        if self._fd is None:
            return
        if self._pid != os.getpid():
            # a forked child shares the parent's open file description, and so its
            # lock: unlocking here would unlock the parent's live run. Just let go.
            os.close(self._fd)
            self._fd = None
            return
        if remove:
            with suppress(OSError):
                os.unlink(self.path)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def _named(name: str, kind: str | None) -> tuple[str, list[Any]]:
    """A WHERE condition on ``nodes`` for the nodes called ``name`` (as name or alias),
    of ``kind`` when given, and its arguments.

    Two indexed lookups joined by UNION (``nodes_name``, then ``aliases_name``): the
    plain ``name = ? OR id IN (aliases...)`` made SQLite walk every node of the kind
    in pk order instead, a cost that grew with the store (issue 16).
    """
    if kind:
        union = ("SELECT pk FROM nodes WHERE name = ? AND kind = ? UNION "
                 "SELECT n.pk FROM aliases a JOIN nodes n ON n.id = a.node WHERE a.name = ? AND n.kind = ?")
        return f"pk IN ({union})", [name, kind, name, kind]
    union = "SELECT pk FROM nodes WHERE name = ? UNION SELECT n.pk FROM aliases a JOIN nodes n ON n.id = a.node WHERE a.name = ?"
    return f"pk IN ({union})", [name, name]


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def _seconds_between(a: str, b: str) -> float | None:
    from datetime import datetime

    try:
        fa = datetime.fromisoformat(a.replace("Z", "+00:00"))
        fb = datetime.fromisoformat(b.replace("Z", "+00:00"))
    except ValueError:
        return None
    return round((fb - fa).total_seconds(), 3)
