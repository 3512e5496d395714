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
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _json_str  # the string encoder of canonical_json
from pathlib import Path
from typing import Any

from .errors import (
    AmbiguousIdError,
    InvalidInputError,
    LineageError,
    NodeNotFoundError,
    NoStoreError,
    SchemaVersionError,
    StoreCorruptError,
    WriteRefusedError,
)
from .model import KINDS, Edge, Node, canonical_json, now_iso, parse_ref
from .model import clean_text as _clean_text

SCHEMA_VERSION = 5
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
}

# Column types, so a row's digest is computed over exactly what SQLite will hand back.
_REAL_COLUMNS = {("metrics", "value"), ("predictions", "score")}
_INT_COLUMNS = {("metrics", "step"), ("run_states", "exit_code"), ("redactions", "row_pk")}

# What erasure blanks, per table: the columns that can carry personal data. Ids, kinds,
# times and the links between nodes stay, so the graph keeps its shape.
_ERASED_COLUMNS: dict[str, dict[str, Any]] = {
    "nodes": {"name": None, "attrs": canonical_json({"redacted": True})},
    "aliases": {"name": ""},
    "predictions": {"input_digest": None, "output": None, "score": None, "request_id": None},
    "annotations": {"text": None},
}


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


def _committed_digest(actual: bytes, erasure: tuple[bytes, bytes] | None) -> bytes:
    """The digest a row's event committed to: its own, or, for an erased row that is
    exactly as erasure left it, the one recorded before erasure. An erased row edited
    since keeps its own digest, so its event fails verification."""
    if erasure is not None and actual == erasure[1]:
        return erasure[0]
    return actual


def _coerce(table: str, columns: Sequence[str], values: Sequence[Any]) -> tuple[Any, ...]:
    """Values as SQLite will return them, so digests agree between write and verify."""
    out = []
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
            return f"ok: {self.events} events verified{scope}, head {self.head}"
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
# the store

class Store:
    """A lineage store on one SQLite file. Writes go through `write`; reads are plain."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True, actor: Callable[[], str] | str | None = None) -> None:
        self.path = Path(path).expanduser().resolve()
        if not create and not self.path.is_file():
            raise NoStoreError(f"no lineage store at {self.path} (run `lineage init`)")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _ignore_in_git(self.path.parent)
        self.dir = self.path.parent
        self.artifacts_dir = self.dir / "artifacts"
        self.locks_dir = self.dir / "locks"
        self._actor = actor
        self._lock = threading.RLock()
        self._depth = 0
        self._savepoint = itertools.count()
        self._conn_pid = os.getpid()
        self._inherited: list[Any] = []
        try:
            self._conn = self._connect()
            self._configure()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreCorruptError(f"{self.path} is not a readable lineage store ({exc})") from None
        self._db: Any = None

    # -- connection -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0, check_same_thread=False)

    @property
    def conn(self) -> sqlite3.Connection:
        """The SQLite connection of this process.

        SQLite forbids using a connection carried across ``fork()`` (multiprocessing,
        joblib and data-loader workers all fork): a child that touches the store gets
        a connection of its own. The inherited one is kept, unused and unclosed, since
        closing it in the child could disturb the parent's use of it.
        """
        if self._conn_pid != os.getpid():
            self._after_fork()
        return self._conn

    def _after_fork(self) -> None:
        self._conn_pid = os.getpid()
        if isinstance(self._conn, _ClosedConnection):
            return
        self._inherited.append(self._conn)
        self._lock = threading.RLock()  # one held by another thread at fork time never frees here
        self._depth = 0
        self._db = None
        self._conn = self._connect()
        self._configure()

    def _configure(self) -> None:
        c = self.conn
        c.execute("PRAGMA busy_timeout = 30000")
        mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # e.g. a read-only file system; say nothing, work anyway
            pass
        durability = os.environ.get("LINEAGE_DURABILITY", "normal").lower()
        c.execute("PRAGMA synchronous = FULL" if durability == "full" else "PRAGMA synchronous = NORMAL")
        c.execute("PRAGMA foreign_keys = ON")
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
        """Close the connection; any later use is a one-line LineageError. Idempotent."""
        if isinstance(self._conn, _ClosedConnection):
            return
        self.conn.close()
        self._conn = _ClosedConnection(self.path)  # type: ignore[assignment]
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
        """One transaction; nested calls become savepoints, so a failed inner write
        rolls back alone and a failed outer one rolls back whole."""
        with self._lock:
            if self._depth == 0:
                self.conn.execute("BEGIN IMMEDIATE")
                self._depth = 1
                try:
                    yield
                except BaseException:
                    if self.conn.in_transaction:  # SQLite may have rolled back already
                        self.conn.execute("ROLLBACK")
                    raise
                else:
                    try:
                        self.conn.execute("COMMIT")
                    except sqlite3.Error:  # disk full, a deferred constraint: nothing half-kept
                        if self.conn.in_transaction:
                            self.conn.execute("ROLLBACK")
                        raise
                finally:
                    self._depth = 0
            else:
                name = f"sp{next(self._savepoint)}"
                self.conn.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield
                except BaseException:
                    if self.conn.in_transaction:  # else SQLite already undid it all
                        self.conn.execute(f"ROLLBACK TO {name}")
                        self.conn.execute(f"RELEASE {name}")
                    raise
                else:
                    self.conn.execute(f"RELEASE {name}")
                finally:
                    self._depth -= 1

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

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
        """One event for many rows of one table, inserted in chunks (predictions, imports).

        The same commitment as `write`, built incrementally so memory stays flat.
        """
        columns = RECORD_TABLES[table]
        marks = ", ".join("?" * len(columns))
        with self.transaction():
            seq, prev = self.head()
            seq += 1
            # the event number is one int of ours for every row: a literal, not a binding
            sql = f"INSERT INTO {table} ({', '.join(columns)}, event) VALUES ({marks}, {int(seq)})"
            rows_hash = hashlib.sha256()
            update = rows_hash.update
            kinds = _column_kinds(table, columns)
            n = 0
            it = iter(rows)
            # Millions of short-lived tuples make the cyclic garbage collector run
            # full collections over every object of the process again and again:
            # that more than doubled the cost of a million rows. Rows hold no
            # cycles, so collection is paused for the loop (and restored after).
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                while True:
                    batch = list(itertools.islice(it, chunk))
                    if not batch:
                        break
                    out, digests = _encode_batch(table, kinds, batch)
                    update(digests)  # SHA-256 over the row digests, as if fed one by one
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
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if name is not None:
            name = _clean_text(name)  # names are stored cleaned (see `clean_text`)
            where.append("(name = ? OR id IN (SELECT node FROM aliases WHERE name = ?))")
            args += [name, name]
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
        if r.name is not None:
            named = "(name = ? OR id IN (SELECT node FROM aliases WHERE name = ?))"
            args: list[Any] = [r.name, r.name]
            if r.kind:
                named += " AND kind = ?"
                args.append(r.kind)
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
        return h.hexdigest() == rows_digest

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
        with self.transaction():
            targets: list[tuple[str, int, tuple[Any, ...]]] = []
            if node_id.startswith("prediction:"):
                targets += self._rows("predictions", "id = ?", node_id)
            else:
                targets += self._rows("nodes", "id = ?", node_id)
                targets += self._rows("aliases", "node = ?", node_id)
            if not targets:
                raise NodeNotFoundError(node_id)
            targets += self._rows("annotations", "node = ?", node_id)
            records, updates = [], []
            for table, pk, values in targets:
                if self._erased_rows(table, [pk]):
                    continue
                columns = RECORD_TABLES[table]
                blank = _ERASED_COLUMNS[table]
                erased = tuple(blank.get(c, v) if c in blank else v for c, v in zip(columns, values))
                records.append((table, pk, row_digest(table, values).hex(), row_digest(table, erased).hex(), reason))
                updates.append((table, pk, erased))
            if not records:
                raise WriteRefusedError(f"{node_id} is already erased")
            seq = self.write("redact", {"node": node_id, "reason": reason, "rows": len(records)}, {"redactions": records})
            for table, pk, erased in updates:
                columns = RECORD_TABLES[table]
                sets = ", ".join(f"{c} = ?" for c in columns)
                self.conn.execute(f"UPDATE {table} SET {sets} WHERE pk = ?", (*erased, pk))
            return seq

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
        """
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
        if want_head is not None and (len(want_head) < 12 or not all(c in "0123456789abcdef" for c in want_head)):
            # a short prefix would match some event of almost any history
            raise InvalidInputError(f"--head takes the hex head hash `lineage verify` printed (at least 12 digits), not {head!r}")
        found_head = False
        if want_head and start > 1:  # a head in the prefix the checkpoint vouches for
            found_head = any(str(h).startswith(want_head) for (h,) in self.conn.execute(
                "SELECT hash FROM events WHERE seq < ? AND hash >= ? AND hash < ?", (start, want_head, want_head + "g")))

        row_groups = self._row_groups(start - 1)
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
        elif record:
            self.write("checkpoint", {"verified_through": report.events, "head": report.head, "from": report.checked_from})
        return report

    def _row_groups(self, after: int) -> Iterator[tuple[int, str]]:
        """``(event, rows digest)`` for every event that has rows, in event order,
        merged across tables so memory stays bounded by one event's rows."""

        erased = self._erased_rows()

        def stream(table: str, columns: tuple[str, ...], order: int) -> Iterator[tuple[Any, int, bytes]]:
            # '["table",{},…]': the row digest of `row_digest`, batch by batch and
            # column by column (json.dumps per row was most of verify's time)
            template = canonical_json([table])[:-1].replace("{", "{{").replace("}", "}}") + ",{}" * len(columns) + "]"
            mine = erased.get(table)
            sql = f"SELECT event, pk, {', '.join(columns)} FROM {table} WHERE event > ? ORDER BY event, pk"
            cur = self.conn.execute(sql, (after,))
            while True:
                rows = cur.fetchmany(2000)
                if not rows:
                    return
                events, pks, *cols = zip(*rows)
                if set(map(type, events)) != {int}:
                    # a forged non-numeric event number: sort it first, where verify
                    # reports it as naming no event (instead of failing to compare)
                    events = tuple(e if isinstance(e, (int, float)) else -1 for e in events)
                texts = [_stored_column_json(c) for c in cols]
                digests = map(_DIGEST, map(hashlib.sha256, map(str.encode, map(template.format, *texts))))
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
        row = self.conn.execute("SELECT size, mtime_ns, inode, digest, lines FROM stat_cache WHERE path = ?", (_clean_text(key.path),)).fetchone()
        if row and (row[0], row[1], row[2]) == (key.size, key.mtime_ns, key.inode):
            return row[3], row[4]
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

        Written to a temporary name and renamed, so a crash never leaves half a file
        under a digest's name.
        """
        target = self.artifacts_dir / digest[:2] / digest
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{digest}.{os.getpid()}.tmp")
        if data is not None:
            tmp.write_bytes(data)
        elif source is not None:
            import shutil

            shutil.copyfile(source, tmp)
        else:
            raise InvalidInputError("put_artifact needs data or a source file")
        os.replace(tmp, target)
        return target

    def artifact_path(self, digest: str) -> Path:
        return self.artifacts_dir / digest[:2] / digest

    # -- run locks: a live run holds an flock; a free lock on a `running` run means it died

    def run_lock(self, run_id: str) -> RunLock:
        return RunLock(self.locks_dir / (run_id.split(":", 1)[1] + ".lock"))

    def running_runs(self) -> list[str]:
        """Ids of runs whose latest state is `running` (from `open_runs`: its cost
        follows the runs still open, not every run ever started)."""
        return [r[0] for r in self.conn.execute("SELECT run FROM open_runs ORDER BY run")]

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
        return groups, edges  # type: ignore[return-value]


_EMPTY_ROWS = hashlib.sha256(b"").hexdigest()


class _ClosedConnection:
    """What a closed store's ``conn`` becomes: every use says so in one line, instead
    of sqlite3's ProgrammingError traceback."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __getattr__(self, name: str) -> Any:
        raise LineageError(f"the lineage store {self._path} is closed; open it again with lineage.open()")


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
        try:
            self.store.stat_put(key, digest, lines)
        except sqlite3.Error:
            pass


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
            try:
                os.unlink(self.path)
            except OSError:
                pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


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
