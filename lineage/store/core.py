"""The `Store`: one SQLite file, its per-thread connections and transactions, the
write path, and the reads that writes and references need. The ledger, erasure,
files and SQLite specifics live in their own modules; `Store` delegates to them."""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import (
    AmbiguousIdError,
    InvalidInputError,
    LineageError,
    NodeNotFoundError,
    NoStoreError,
    SchemaVersionError,
    StoreCorruptError,
    WriteRefusedError,
)
from ..model import (
    ERASED_PERSON,
    KINDS,
    MLFLOW_ID_PREFIX,
    Edge,
    Node,
    canonical_json,
    now_iso,
    parse_ref,
    relation_problem,
    version_number,
)
from ..model import clean_text as _clean_text
from . import bulk as _bulk
from . import erasure as _erasure
from . import files as _files
from . import latest as _latest
from . import ledger as _ledger
from . import sqlite as _sqlite
from .asyncwrite import AsyncWriter, RunOperations
from .codec import as_stored, encode_batch, encode_row, gc_paused
from .files import INLINE_ARTIFACT_BYTES, RUN_ID_PATTERN, ByteLock, RunLock, StatCache, ignore_in_git
from .ledger import Event, VerifyReport
from .schema import MIGRATIONS, RECORD_TABLES, SCHEMA_VERSION, column_kinds, node_name
from .sqlite import begin_immediate, busy_error, chunked, map_errors

_INSERTS: dict[str, str] = {}

# How many times this process is a forked child of the one that imported this module
# (os.fork and multiprocessing run the hook): `Store.conn` compares it, an int, where
# it called os.getpid(), a system call, on every statement's connection (issue 16:
# 230 per recorded pipeline, slow when every system call waits for a core).
_FORKED = [0]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _FORKED.__setitem__(0, _FORKED[0] + 1))


def _digest_order(rows: Mapping[str, Any]) -> Iterable[str]:
    """The tables of one write's ``rows`` in RECORD_TABLES order, which its rows digest
    follows. Most writes have one table: it is taken as it is, not found by a scan of
    all twelve (issue 16)."""
    if len(rows) <= 1:
        return rows  # (a table that is not recorded fails at its first row: `encode_row`)
    ordered = [table for table in RECORD_TABLES if table in rows]
    if len(ordered) < len(rows):  # a bug of the caller: never dropped silently
        raise KeyError(f"not recorded tables: {sorted(set(rows) - set(ordered))}")
    return ordered


def _insert_sql(table: str) -> str:
    """The INSERT of one recorded row of ``table`` (its content columns and event), made
    once: the same string each time, so SQLite's prepared statement is reused."""
    sql = _INSERTS.get(table)
    if sql is None:
        columns = RECORD_TABLES[table]
        sql = _INSERTS[table] = (f"INSERT INTO {table} ({', '.join(columns)}, event) "
                                 f"VALUES ({', '.join('?' * (len(columns) + 1))})")
    return sql


# The value of each run-level metric of the runs ``{marks}`` (MLflow's rule:
# `latest`), chosen in SQL: one row per (run, key) leaves the database, not the history.
_LATEST_METRICS = _latest.values("run IN ({marks})")

# `Store.with_run_state`'s four reads as one statement, for a server (PostgreSQL):
# rows tagged by table (0 params, 1 tags, 2 metrics, 3 states), each table's in the
# order its rows apply; every read of a run table leaves out rows of an unpublished
# bulk batch (`bulk.published`).
_RUN_STATE_UNION = (
    "SELECT 0, run, key, value, CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS TEXT), CAST(NULL AS INTEGER), "
    "CAST(NULL AS TEXT), 0, pk FROM params WHERE run IN ({marks}) AND " + _bulk.published() + " "
    "UNION ALL SELECT 1, run, key, value, NULL, NULL, NULL, NULL, 0, pk FROM tags "
    "WHERE run IN ({marks}) AND " + _bulk.published() + " "
    "UNION ALL SELECT 2, run, key, NULL, value, NULL, NULL, NULL, 0, 0 FROM (" + _LATEST_METRICS + ") lm "
    "UNION ALL SELECT 3, run, status, NULL, NULL, at, exit_code, error, 0, pk FROM run_states "
    "WHERE run IN ({marks}) AND " + _bulk.published() + " "
    "ORDER BY 1, 9, 10"
)


def _file_identity(path: str | Path) -> tuple[int, int] | None:
    """The device and inode of a file (None when it is gone): the same while the file
    is the one opened, whatever is written to it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


@functools.lru_cache(maxsize=4096)
def _parsed_output(text: str) -> Any:
    return json.loads(text)


def _output_value(text: str) -> Any:
    """A prediction's stored output, parsed. A model's outputs repeat (a classifier's
    few classes): parsing each row's text again was two thirds of reading a
    model's predictions; a list or object is parsed afresh, as it is not shared."""
    value = _parsed_output(text)
    return json.loads(text) if isinstance(value, (list, dict)) else value


class _Outermost:
    """A write transaction begun at the outermost level (`Store._transaction`), written
    as a class: every logged value enters one, and as a generator context manager with
    its helpers (`map_errors`, the connection looked up again) an empty one cost 76,000
    instructions against this class's 66,000 and plain sqlite3's 35,000 (issue 16).
    Anything raised between BEGIN and the body (a Ctrl-C) rolls back too."""

    __slots__ = ("local", "store", "unit")

    def __init__(self, store: Store, local: threading.local, unit: bool) -> None:
        self.store, self.local, self.unit = store, local, unit

    def __enter__(self) -> None:
        store, local = self.store, self.local
        try:
            if store._async.pending:
                store._async.drain()  # what was queued before this write is written before it
            # Threads of this process queue here, asleep, rather than all polling
            # SQLite's lock (and fighting for the GIL while one of them holds it)
            # (a free lock taken without a timeout first: the timed acquire costs
            # three times as much, paid by every logged value)
            writer = store._writer
            if not writer.acquire(False) and not writer.acquire(timeout=_sqlite.BUSY_SECONDS):
                raise busy_error(store.path)
            try:
                store._begin_tx(local.conn)
            except BaseException:
                store._writer.release()
                raise
            local.depth = 1
            local.unit = self.unit
            local.writing = True
            local.moment = {}
            try:
                store._check_others()
            except BaseException as exc:
                self._undo(exc)
                raise
        except sqlite3.Error as exc:
            _sqlite.raise_translated(exc, store.path)

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        store, local = self.store, self.local
        try:
            if exc is not None:
                self._undo(exc)
            elif local.failed is not None:  # a write inside failed part-way (`_guarded`)
                refused = _failed_part_way(local.failed, ending=True)
                self._undo(refused)
                raise refused
            else:
                try:
                    store._commit_tx(local.conn)
                except BaseException as err:  # disk full, a deferred constraint, a lost server: nothing half-kept
                    self._undo(err, committing=True)
                    raise
                self._end()
        except sqlite3.Error as err:
            _sqlite.raise_translated(err, store.path)
        if isinstance(exc, sqlite3.Error):  # (else it propagates as it is)
            _sqlite.raise_translated(exc, store.path)

    def _undo(self, exc: BaseException, *, committing: bool = False) -> None:
        """Roll back after ``exc``; the caller re-raises it."""
        try:
            self.store._forget()  # what it remembered may be undone
            self.store._rollback_tx(self.local.conn, exc, committing=committing)
        finally:
            self._end()

    def _end(self) -> None:
        local = self.local
        local.depth = 0
        local.unit = False
        local.writing = False
        local.moment = None
        local.failed = None
        self.store._writer.release()


class Store:
    """A lineage store on one SQLite file. Writes go through `write`; reads are plain."""

    #: the SQL dialect of the backend ("sqlite"; "postgresql" for `postgres.PostgresStore`)
    dialect = "sqlite"

    def __new__(cls, path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Store:
        # a postgresql:// URL selects the PostgreSQL backend (lineage/store/postgres.py)
        if cls is Store and isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
            from .postgres import PostgresStore

            return super().__new__(PostgresStore)
        return super().__new__(cls)

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True, actor: Callable[[], str] | str | None = None) -> None:
        self._init_location(path, create)
        self.artifacts_dir = self.dir / "artifacts"
        self.locks_dir = self.dir / "locks"
        self._actor = actor
        self._create = create
        self._closed = False
        self._conn_pid = os.getpid()
        self._forked = _FORKED[0]
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
        self._checkpointer = _sqlite.Checkpointer(self.path)
        self._async = AsyncWriter(self)  # MLflow's async logging (its thread starts on first use)
        self._file: tuple[int, int] | None = None  # the file opened (`_check_file`), once made
        try:
            with map_errors(self.path):
                self._connect_here()
                self._open_check(create)
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreCorruptError(f"{self.path} is not a readable lineage store ({exc})") from None
        self._db: Any = None
        self._file = _file_identity(self.path)  # see `_check_file`
        self._file_name = str(self.path)  # (`os.stat` of a Path converts it first: 0.5 µs a write)

    def _init_location(self, path: str | os.PathLike[str], create: bool) -> None:
        """Set ``path`` and ``dir`` (where artifacts and caches live) for the database
        at ``path``; raises NoStoreError or StoreCorruptError for a missing or empty file."""
        self.path = Path(path).expanduser().resolve()
        if not create and not self.path.is_file():
            raise NoStoreError(f"no lineage store at {self.path} (run `lineage init`)")
        if not create and self.path.stat().st_size == 0:
            # SQLite would take an empty file for a new database, and the migration
            # would silently turn it into an empty store that verifies "ok"
            raise StoreCorruptError(f"{self.path} is empty (zero bytes): not a lineage store; "
                                    "restore it from a backup, or remove it and run `lineage init`")
        # what this open creates (missing folders, their .gitignore, the database),
        # so that `discard_if_new` can take it back
        self._made = [p for p in (*reversed(self.path.parents), self.path.parent / ".gitignore", self.path)
                      if create and not p.exists()]
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            ignore_in_git(self.path.parent)
        self.dir = self.path.parent

    def _open_check(self, create: bool) -> None:
        """Refuse, on a read (``create`` false), a database that holds no store yet."""
        if not create and self.schema_version() == 0:
            raise StoreCorruptError(f"{self.path} is an empty SQLite database, not a lineage store; "
                                    "run `lineage init` to make it one")

    # -- connection -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """See `sqlite.connect`."""
        return _sqlite.connect(self)

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's SQLite connection (one per thread and per process).

        SQLite forbids using a connection carried across ``fork()`` (multiprocessing,
        joblib and data-loader workers all fork): a child that touches the store gets
        a connection of its own. The inherited ones are kept, unused and unclosed, since
        closing them in the child could disturb the parent's use of them.
        """
        # (`_FORKED` counts every fork, so it alone tells a child: the pid compare,
        # one call per statement, said nothing more; issue 16)
        if self._forked != _FORKED[0]:
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
            self._local.unit = False  # the innermost transaction level is an `atomic()` one
            self._local.writing = False  # inside a write transaction begun here (BEGIN IMMEDIATE)
            self._local.head = None  # (seq, hash) of the ledger's head, while trusted
            self._local.version = None  # PRAGMA data_version when that was checked
            self._local.params = {}  # run id -> all its params, while known (`known_params`)
            self._local.edges = {}  # run id -> all edges from or to it, while known (`known_edges`)
            self._local.moment = None  # `transaction_memo`'s dict, inside a write transaction
            self._local.failed = None  # why a write inside this transaction failed part-way (`_guarded`)
        return conn

    def _connect_here(self) -> None:
        """Make sure this thread has its connection (and so its transaction depth)."""
        if self.conn is None:  # never: `conn` always returns one or raises
            raise LineageError("no connection")

    def _after_fork(self) -> None:
        self._conn_pid = os.getpid()
        self._forked = _FORKED[0]
        self._inherited.extend(self._conns)
        self._conns = weakref.WeakSet()
        self._conns_lock = threading.Lock()
        self._writer = threading.Lock()  # one held by another thread at fork time never frees here
        self._local = threading.local()
        self._db = None
        # (`_async` stays: the fork itself emptied it, `asyncwrite._after_fork_in_child`)

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
        self._async.close()  # what was queued is written first, while the store is open
        self._closed = True
        if self._conn_pid != os.getpid():
            self._after_fork()
        self._checkpointer.close()
        with self._conns_lock:
            conns, self._conns = list(self._conns), weakref.WeakSet()
        for c in conns:
            with suppress(sqlite3.Error):
                c.close()
        self._local = threading.local()
        self._db = None

    def discard_if_new(self) -> bool:
        """Close the store, and remove it when this object created it and nothing was
        written to it since (no ledger event): a command that failed, such as an import
        of bad input, leaves no empty store behind. True when it was removed."""
        new = self.path in getattr(self, "_made", ()) and not self._closed and self.head()[0] == 0
        self.close()
        if not new:
            return False
        for suffix in ("-wal", "-shm", "-journal", ""):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        for p in reversed(self._made[:-1]):  # its .gitignore, then the folders it made, deepest first
            with suppress(OSError):  # (one that holds something else now stays)
                p.unlink() if p.name == ".gitignore" else p.rmdir()
        return True

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
                step = MIGRATIONS[v]
                if callable(step):  # a migration written as code (schema.MigrationStep)
                    step(self)
                # statement by statement: executescript() would COMMIT our transaction
                for stmt in step.split(";") if isinstance(step, str) else ():
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

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction of this thread; nested calls become savepoints, so a
        failed inner write rolls back alone and a failed outer one rolls back whole.

        Raises StoreBusyError when another writer holds the lock past the busy wait
        (`BUSY_SECONDS`), StoreFullError when the disk is full.
        """
        return self._transaction(False)

    def submit(self, call: Callable[[], Any]) -> RunOperations:
        """Queue ``call`` (a function writing through this store's calls) for the
        store's background writer, which commits many queued calls at a time; returns
        the handle whose ``wait`` reports the outcome. Every later write of this
        process waits for it first (see `asyncwrite`)."""
        return self._async.submit(call)

    def atomic(self) -> AbstractContextManager[None]:
        """One logical write of the store's own code (`write`, `add_node`, the tracking
        calls): a transaction at the outermost level; directly inside a caller's
        `transaction()` (``lg.batch()``), a guarded unit, not a savepoint (`_guarded`:
        a call refused before it wrote anything leaves the batch as it was, one that
        fails after it began writing fails the whole batch); and nothing at all
        directly inside another `atomic()` block: that block rolls back whole when this
        one fails (nothing between them catches the error), so a savepoint there only
        cost two statements (issue 16: 29 pairs per pipeline).
        """
        local = self._local_state()
        if local.depth > 0:
            return nullcontext() if local.unit else self._guarded(local)
        return _Outermost(self, local, True)

    def transaction_memo(self) -> dict[str, Any] | None:
        """A dict that lives exactly as long as this thread's outermost write
        transaction, or None outside one. The tracking layer keeps there what it
        captures once per transaction, as one moment: who records (the agent), in
        which environment, with which code. A batch of writes is one unit of work,
        so its nodes name the same agent and environment, looked up once, not once
        per node (14 lookups per group of the MLMD pipeline, issue 16)."""
        local = self._local_state()
        return local.moment if local.depth > 0 else None

    def _local_state(self) -> threading.local:
        """This thread's connection state (made with the connection)."""
        local = self._local
        # (a thread with its connection, in the process that made it: the state as it
        # is; three of these per logged value, issue 16)
        if self._forked == _FORKED[0] and getattr(local, "conn", None) is not None:
            return local
        self._connect_here()
        return self._local

    def _transaction(self, unit: bool) -> AbstractContextManager[None]:
        """A write transaction at the outermost level (`_Outermost`), a savepoint inside one."""
        local = self._local_state()
        return _Outermost(self, local, unit) if local.depth == 0 else self._savepoint(local, unit)

    @contextmanager
    def _savepoint(self, local: threading.local, unit: bool) -> Iterator[None]:
        """A savepoint inside this thread's write transaction (`transaction` nested)."""
        conn = local.conn
        outer_unit = local.unit
        with map_errors(self.path):
            if local.failed is not None:
                raise _failed_part_way(local.failed)
            # named by depth, so each level's statements are the same text every
            # time (prepared once, from the connection's statement cache): a name
            # met again refers to the newest savepoint of that name, this level's
            name = f"sp{local.depth}"
            conn.execute(f"SAVEPOINT {name}")
            local.depth += 1
            local.unit = unit
            try:
                yield
            except BaseException:
                self._forget()  # what the savepoint remembered may be undone
                if conn.in_transaction:  # else the backend already undid it all
                    with suppress(LineageError):  # (a lost connection: the whole transaction fails anyway)
                        conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                        conn.execute(f"RELEASE SAVEPOINT {name}")
                        local.failed = None  # (a write that failed part-way inside is undone with it)
                raise
            else:
                conn.execute(f"RELEASE SAVEPOINT {name}")
            finally:
                local.depth -= 1
                local.unit = outer_unit

    @contextmanager
    def _guarded(self, local: threading.local) -> Iterator[None]:
        """One `atomic()` unit directly inside a caller's transaction, without a
        savepoint. A savepoint per call of a batch cost two statements (on SQLite also
        a copy of every page the call changed into the savepoint's journal): 7-9% of
        a batched pipeline group on SQLite, 16-21% on PostgreSQL (issue 16, the two
        alternating in one process).

        The calls check their input before they write, so a refused or invalid call
        fails having changed no row: the transaction is as it was, and the caller may
        catch the error and go on. A unit that fails after it changed rows (a full
        disk, an interrupt, a bug), or whose transaction the backend broke (a
        statement error on PostgreSQL), cannot be undone alone: the whole transaction
        is marked failed, every later write in it is refused, and it rolls back whole
        at its end, raising, so nothing half-written is ever committed.
        """
        if local.failed is not None:
            raise _failed_part_way(local.failed)
        before = self._changes()
        local.unit = True
        try:
            yield
        except BaseException as exc:
            self._forget()  # (what it remembered may name rows that will not be kept)
            if self._changes() != before or self._transaction_broken():
                local.failed = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise
        finally:
            local.unit = False

    def _changes(self) -> int:
        """Rows changed by this thread's connection so far (SQLite's ``total_changes``,
        triggers' included): a guarded unit that moved it cannot be undone alone."""
        return self.conn.total_changes

    def _transaction_broken(self) -> bool:
        """Whether this thread's write transaction is gone (SQLite rolls one back
        itself after some errors: a full disk, an I/O error)."""
        return not self.conn.in_transaction

    # The three steps of a write transaction that differ by backend (postgres.py
    # overrides them): SQLite's begin waits fairly for the file's write lock.

    def _begin_tx(self, conn: Any) -> None:
        """Begin a write transaction holding the store's write lock."""
        self._check_file()
        begin_immediate(conn, self.path)

    def _check_file(self) -> None:
        """Refuse to write when the store's file was deleted (or replaced) since it was
        opened. SQLite goes on writing to an open file that has no name any more, so
        every later write "succeeded" and was lost when the process ended: a notebook
        whose store folder was removed while its kernel lived. One `stat` per write
        transaction (about 1 µs; a logged param costs about 100)."""
        if self._file is not None and _file_identity(self._file_name) != self._file:
            raise NoStoreError(f"the lineage store {self.path} was deleted or replaced while this process had it "
                               "open; nothing more is written to it: open it again with lineage.open()")

    def _commit_tx(self, conn: Any) -> None:
        conn.execute("COMMIT")
        self._checkpointer.committed(conn)

    def _rollback_tx(self, conn: Any, exc: BaseException, *, committing: bool = False) -> None:
        """Undo the transaction after ``exc`` (raised by its body, or by the commit
        when ``committing``); the caller re-raises ``exc``."""
        if conn.in_transaction:  # SQLite may have rolled back already
            conn.execute("ROLLBACK")

    # -- what a connection remembers between its transactions (issue 16) ----------
    #
    # The ledger's head and the nodes known to be recorded (`known_node`) are kept in
    # memory per thread, as connections are. They stay true while no other
    # connection commits: SQLite's PRAGMA data_version changes exactly then (never
    # for this connection's own commits). It is read once per write transaction,
    # right after BEGIN IMMEDIATE, when this connection holds the write lock and
    # sees the newest data: if it moved, everything remembered is dropped and read
    # again. Every rollback (of a transaction or a savepoint) drops it too.

    def _check_others(self) -> None:
        """Drop what this connection remembers when another one has committed since."""
        local = self._local
        version = self._data_version()
        if version is None or version != getattr(local, "version", None):
            local.head = None
            self._forget_known()
            local.version = version

    def _forget(self) -> None:
        """Drop the remembered head, known nodes and params (after a rollback, an erasure)."""
        self._forget_known()
        self._local.head = None

    def _forget_known(self) -> None:
        """Drop the known nodes and runs' params and edges (`known_node`, `known_params`)."""
        self._known.clear()
        self._local.params = {}
        self._local.edges = {}

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
        with map_errors(self.path):
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
        """See `ledger.head`. Inside a write transaction, the head this connection
        remembers when no other connection has committed since it was read or written
        (checked at the transaction's start: `_check_others`); else read."""
        local = self._local_state()
        if local.writing:
            if local.head is None:
                local.head = _ledger.head(self)
            return local.head
        return _ledger.head(self)

    def _advance_head(self, seq: int, hash_: str) -> None:
        """The ledger's one append (`ledger.append_event`) moved the head."""
        local = self._local
        local.head = (seq, hash_) if local.writing else None

    def write(self, type_: str, payload: Mapping[str, Any], rows: Mapping[str, Iterable[Sequence[Any]]] | None = None) -> int:
        """Append one ledger event and the rows it records, atomically; returns its number.

        ``rows`` maps a recorded table to tuples of its content columns
        (RECORD_TABLES order). The event's payload gets ``at`` and ``actor`` added.
        """
        local = self._local_state()
        if local.unit and local.depth > 0:  # (inside another `atomic()` block: `atomic` would add nothing)
            return self._append(local, type_, payload, rows or {})
        with self.atomic():
            return self._append(local, type_, payload, rows or {})

    def _append(self, local: threading.local, type_: str, payload: Mapping[str, Any],
                rows: Mapping[str, Iterable[Sequence[Any]]]) -> int:
        """`write`'s work, inside its transaction."""
        seq, prev = local.head or self.head()
        seq += 1
        rows_hash = hashlib.sha256()
        # every row encoded and checked before the first is written: a refused call
        # inside a batch changes nothing (`_guarded`)
        tables: list[tuple[str, list[tuple[Any, ...]]]] = []
        for table in _digest_order(rows):
            coerced = []
            for r in rows[table]:
                values, digest = encode_row(table, r)  # (= _coerce and row_digest, in one pass)
                coerced.append(values)
                rows_hash.update(digest)
            if not coerced:
                continue
            if table == "edges":  # every writer's edges, checked against RELATIONS in this one place
                bad = next(filter(None, (relation_problem(*r[:3]) for r in coerced)), None)
                if bad:
                    raise WriteRefusedError(f"refused: {bad}")
            tables.append((table, coerced))
        body = {"at": now_iso(), "actor": self.actor, **payload}
        sending = self._sending()
        if sending is None:
            return self._send(local, seq, prev, type_, body, tables, rows_hash.hexdigest())
        with sending:  # (nothing inside reads: a server gets it all in one round trip)
            return self._send(local, seq, prev, type_, body, tables, rows_hash.hexdigest())

    def _send(self, local: threading.local, seq: int, prev: str, type_: str, body: Mapping[str, Any],
              tables: list[tuple[str, list[tuple[Any, ...]]]], rows_digest: str) -> int:
        """`_append`'s statements: the rows ``tables`` (as stored), then event ``seq``."""
        conn = local.conn
        for table, coerced in tables:
            conn.executemany(_insert_sql(table), [(*v, seq) for v in coerced])
            if table == "params" and local.params:
                self._note_params(coerced)
            if table == "edges" and local.edges:
                self._note_edges(coerced)
            if table == "run_states":
                self._track_open_runs(coerced)
        return _ledger.append_event(self, seq, prev, type_, body, rows_digest)

    def _sending(self) -> AbstractContextManager[None] | None:
        """Around a write's statements, none of which reads: on a server the
        statements go out together and their outcome comes back once (PostgreSQL's
        pipeline). None for an in-process SQLite, which runs each as it comes (and
        so pays for no context manager: two Python calls of every logged value)."""
        return None

    def _note_params(self, rows: Iterable[Sequence[Any]]) -> None:
        """Params rows ``(run, key, value)`` as stored, written in this transaction:
        added to the runs' params this connection knows all of (`known_params`)."""
        memo = self._local.params
        for run, key, value in rows:
            known = memo.get(run)
            if known is not None:
                known[key] = value

    def _note_edges(self, rows: Iterable[Sequence[Any]]) -> None:
        """Edges rows ``(src, dst, rel, role)`` as stored, written in this transaction:
        added to the edges of the runs this connection knows all of (`known_edges`)."""
        memo = self._local.edges
        for row in rows:
            for end in (row[0], row[1]):
                known = memo.get(end)
                if known is not None:
                    known.add(tuple(row))

    def _track_open_runs(self, states: Iterable[Sequence[Any]]) -> None:
        """Keep `open_runs` in step with run_states rows ``(run, status, …)`` being
        written, in the same transaction (the one place every run state passes)."""
        for state in states:
            if state[1] == "running":
                self.conn.execute("INSERT INTO open_runs (run) VALUES (?) ON CONFLICT (run) DO NOTHING", (state[0],))
            else:
                self.conn.execute("DELETE FROM open_runs WHERE run = ?", (state[0],))
                # (an ended run's params are no longer worth remembering: the memory
                # stays as small as the runs open in this process)
                self._local.params.pop(state[0], None)
                self._local.edges.pop(state[0], None)

    def write_bulk(self, type_: str, payload: Mapping[str, Any], table: str, rows: Iterable[Sequence[Any]], *, chunk: int = 50_000) -> int:
        """One event for many rows of one table (predictions, imports); returns its number.

        The same commitment as `write`, built incrementally so memory stays flat. For
        predictions and kept inputs (`bulk.BATCHED_TABLES`), outside a transaction, the
        rows are loaded straight into ``table`` in short transactions (~50 ms, at most
        ``chunk`` rows), as a batch no read can see, and a short publish step appends the event
        that makes them visible all at once (`bulk.write_batched`): other writers
        never wait long, and a writer killed half-way leaves nothing visible. Inside
        an open transaction (``lg.batch()``), or for another table, or for 2,000 rows
        or fewer (`bulk.SMALL_ROWS`), the rows go straight into ``table`` in one
        transaction, with their event number. (Imports load their run tables'
        rows as batches through `bulk.staged`, published with the import's event.)
        """
        if not self.in_transaction and table in _bulk.BATCHED_TABLES:
            with map_errors(self.path):
                return _bulk.write_batched(self, type_, payload, table, rows, chunk=chunk)
        return self._write_bulk_direct(type_, payload, table, rows, chunk=chunk)

    def write_bulks(self, writes: Sequence[tuple[str, Mapping[str, Any], str, Iterable[Sequence[Any]]]]) -> list[int]:
        """Several `write_bulk` calls ``(type, payload, table, rows)`` whose rows appear
        together or not at all (predictions and their kept inputs); returns their
        events' numbers. Outside a transaction, for `bulk.BATCHED_TABLES`, each is
        loaded as an invisible batch and one short transaction publishes them all;
        otherwise they share one transaction."""
        if not self.in_transaction and all(w[2] in _bulk.BATCHED_TABLES for w in writes):
            with map_errors(self.path):
                return _bulk.write_batched_many(self, writes)
        with self.transaction():
            return [self.write_bulk(t, p, table, rows) for t, p, table, rows in writes]

    def _write_bulk_direct(self, type_: str, payload: Mapping[str, Any], table: str, rows: Iterable[Sequence[Any]],
                           *, chunk: int) -> int:
        """`write_bulk` inside the caller's transaction: rows straight into ``table``."""
        columns = RECORD_TABLES[table]
        marks = ", ".join("?" * len(columns))
        with self.atomic():  # (a savepoint inside a caller's transaction(), as every write)
            if table in ("params", "edges"):
                self._forget_known()  # (rows written here are not noted: see `known_params`)
            seq, prev = self.head()
            seq += 1
            # the event number is one int of ours for every row: a literal, not a binding
            sql = f"INSERT INTO {table} ({', '.join(columns)}, event) VALUES ({marks}, {int(seq)})"
            rows_hash = hashlib.sha256()
            kinds = column_kinds(table, columns)
            n = 0
            it = iter(rows)
            with gc_paused():
                while True:
                    batch = list(itertools.islice(it, chunk))
                    if not batch:
                        break
                    out, digests = encode_batch(table, kinds, batch)
                    rows_hash.update(digests)
                    self.conn.executemany(sql, out)
                    if table == "run_states":
                        self._track_open_runs(out)
                    n += len(batch)
            body = {"at": now_iso(), "actor": self.actor, "table": table, "rows": n, **payload}
            return _ledger.append_event(self, seq, prev, type_, body, rows_hash.hexdigest())

    # -- node writes --------------------------------------------------------

    def node_exists(self, node_id: str) -> bool:
        if node_id.startswith("prediction:"):
            sql = f"SELECT 1 FROM predictions WHERE id = ? AND {_bulk.published()}"
            return self.conn.execute(sql, (node_id,)).fetchone() is not None
        return self.conn.execute("SELECT 1 FROM nodes WHERE id = ?", (node_id,)).fetchone() is not None

    def edge_exists(self, edge: Edge) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM edges WHERE src = ? AND dst = ? AND rel = ? AND role IS ?",
            (edge.src, edge.dst, edge.rel, edge.role),
        ).fetchone() is not None

    def existing_edges(self, edges: Sequence[Edge]) -> set[Edge]:
        """Which of ``edges`` are recorded already: one statement for up to 200 of them
        (each an exact lookup on ``edges_src``), not one per edge."""
        found: set[Edge] = set()
        unique = list(dict.fromkeys(edges))
        memo = self.known_edges()
        if memo:  # edges of a run whose edges this connection all knows: answered here
            unknown = []
            for e in unique:
                known = memo.get(e.src)
                if known is None:
                    known = memo.get(e.dst)
                if known is None:
                    unknown.append(e)
                elif as_stored("edges", RECORD_TABLES["edges"], (e.src, e.dst, e.rel, e.role)) in known:
                    found.add(e)
            unique = unknown
        for chunk in chunked(unique, 200):
            if len(chunk) == 1:
                if self.edge_exists(chunk[0]):
                    found.add(chunk[0])
                continue
            where = " OR ".join(["(src = ? AND dst = ? AND rel = ? AND role IS ?)"] * len(chunk))
            args = [v for e in chunk for v in (e.src, e.dst, e.rel, e.role)]
            # rows come back as stored (text): match them to the edges asked about in
            # the stored form, as the SQL comparison did
            asked = {as_stored("edges", RECORD_TABLES["edges"], (e.src, e.dst, e.rel, e.role)): e for e in chunk}
            for row in self.conn.execute(f"SELECT src, dst, rel, role FROM edges WHERE {where}", args):
                edge = asked.get(tuple(row))
                if edge is not None:
                    found.add(edge)
        return found

    def add_node(
        self,
        node: Node,
        *,
        edges: Sequence[Edge] = (),
        event_type: str = "node",
        alias: bool = True,
        extra: Mapping[str, Iterable[Sequence[Any]]] | None = None,
        new: bool = False,
        absent: bool = False,
    ) -> tuple[Node, bool]:
        """Record ``node`` (and ``edges``) unless a node with its id exists already.

        Returns ``(the stored node, created?)``. For an existing node, new edges are still
        recorded, and a new ``name`` becomes an alias (same bytes, second name), each in
        one event; nothing is written when there is nothing new.

        ``new=True`` is the caller's word that the id was generated just now (a UUIDv7
        run id), so nothing can be recorded under it or from it yet: nothing is looked
        up, and the node returned is the one written (a run without its state).
        ``absent=True`` is the caller's word that it found no node with this id inside
        the caller's open `atomic()` block: the node is not looked up again (its edges
        still are).
        """
        with self.atomic():
            existing = None if new or absent else self.get_node(node.id)
            unique = list(dict.fromkeys(edges))
            known = set() if new else self.existing_edges(unique)
            new_edges = [e for e in unique if e not in known]
            rows: dict[str, list[Sequence[Any]]] = {k: list(v) for k, v in (extra or {}).items()}
            written: tuple[Any, ...] | None = None
            if existing is None:
                written = as_stored("nodes", RECORD_TABLES["nodes"],
                                    (node.id, node.kind, node.name, canonical_json(dict(node.attrs)), node.created_at or now_iso()))
                rows["nodes"] = [written]
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
            if written is None:
                # an alias or edges added: the node's own row (and a run's state) is as read
                assert existing is not None
                if existing.name is None and "aliases" in rows:
                    # the first name for bytes recorded unnamed is the one it is shown by
                    # (`schema.node_name`): returned as a read from now on gives it
                    return replace(existing, name=node.name), False
                return existing, False
            # The node as a read would give it back (the coerced row, its JSON parsed),
            # without reading it: issue 16 counted a read before and after every add.
            stored = self._node_from_row(written)
            if stored.kind == "run" and not new:
                stored = self.with_run_state([stored])[0]
            return stored, True

    def add_edges(self, edges: Sequence[Edge], *, event_type: str = "link") -> int:
        """Record the edges not recorded yet; returns how many were new."""
        with self.atomic():
            unique = list(dict.fromkeys(edges))
            known = self.existing_edges(unique)
            new = [e for e in unique if e not in known]
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
        if self._forked != _FORKED[0]:
            self._forget_known()
            return None
        local = self._local
        if not local.writing:  # (inside a write transaction it was checked at its start)
            version = self._data_version()
            if version is None or version != local.version:
                self._forget()
                local.version = version
                return None
        node, names = entry
        return node if name is None or name in names else None

    def remember_node(self, node: Node, name: str | None = None) -> None:
        """Note that ``node`` (as stored) is recorded, also under ``name`` (an alias)."""
        if self._local_state().version is None:
            return  # no write transaction of this connection has checked the others yet
        names = self._known.setdefault(node.id, (node, set()))[1]
        names.update(n for n in (node.name, name) if n is not None)

    def known_params(self, run_id: str) -> dict[str, str] | None:
        """Every param of ``run_id`` (stored text by key) when this connection knows
        them all, else None: it started the run in this transaction or one before,
        has seen every param of it written since (`write` notes them), and nothing
        was rolled back, erased, bulk-loaded or committed by another connection
        meanwhile (the rule `known_node` follows). Only inside a write transaction,
        where the others' commits were checked at its start: a logged param is then
        checked against memory, not read back (issue 16)."""
        local = self._local_state()
        if not local.writing or self._forked != _FORKED[0] or local.version is None:
            return None
        return local.params.get(run_id)

    def known_edges(self) -> dict[str, set[tuple[Any, ...]]]:
        """Run id -> every edge from or to that run, as stored ``(src, dst, rel, role)``,
        for the runs whose edges this connection knows all of (the rule of
        `known_params`); empty where nothing may be trusted (outside a write
        transaction, in a forked child). `existing_edges` answers from it, not with a
        query (issue 16)."""
        local = self._local_state()
        if not local.writing or self._forked != _FORKED[0] or local.version is None:
            return {}
        return local.edges

    def know_new_run(self, run_id: str) -> None:
        """Note that ``run_id`` (made just now) has no params and no edges but those this
        connection writes from now on: see `known_params` and `known_edges`."""
        local = self._local_state()
        if local.writing and local.version is not None:
            local.params[run_id] = {}
            local.edges[run_id] = set()

    def _data_version(self) -> int | None:
        """A number that changes whenever another connection commits (SQLite's PRAGMA
        data_version; never for this connection's own commits). A backend without such
        a number returns None: nothing remembered is trusted outside a write
        transaction, and its `_check_others` says what is inside one (PostgreSQL: the
        ledger's head)."""
        return int(self._local_state().conn.execute("PRAGMA data_version").fetchone()[0])

    # -- reads that writes and references need -----------------------------

    def _node_from_row(self, row: Sequence[Any]) -> Node:
        node_id, kind, name, attrs, created_at = row
        return Node(node_id, kind, name, json.loads(attrs), created_at)

    def _prediction_from_row(self, row: Sequence[Any]) -> Node:
        pid, model, input_digest, output, score, request_id, created_at = row
        attrs = {
            "model": model,
            "input_digest": input_digest,
            "output": _output_value(output) if output is not None else None,
            "score": score,
            "request_id": request_id,
        }
        return Node(pid, "prediction", None, attrs, created_at)

    # (the name as shown: `node_name`, a later name for bytes first recorded unnamed)
    _NODE_COLS = f"id, kind, {node_name()}, attrs, created_at"

    @staticmethod
    def node_columns(alias: str) -> str:
        """`_NODE_COLS` for a query that names the nodes table ``alias``."""
        return f"{alias}.id, {alias}.kind, {node_name(alias)}, {alias}.attrs, {alias}.created_at"
    _PRED_COLS = "id, model, input_digest, output, score, request_id, created_at"

    def get_node(self, node_id: str) -> Node | None:
        """The node with exactly this id (run nodes with their params, status, …), or None."""
        if node_id.startswith("prediction:"):
            row = self.conn.execute(f"SELECT {self._PRED_COLS} FROM predictions WHERE id = ? AND {_bulk.published()}",
                                    (node_id,)).fetchone()
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
        for chunk in chunked(others, 500):
            marks = ", ".join("?" * len(chunk))
            for row in self.conn.execute(f"SELECT {self._NODE_COLS} FROM nodes WHERE id IN ({marks})", chunk):
                out[row[0]] = self._node_from_row(row)
        for chunk in chunked(preds, 500):
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT {self._PRED_COLS} FROM predictions WHERE id IN ({marks}) AND {_bulk.published()}"
            for row in self.conn.execute(sql, chunk):
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
        for chunk in chunked(ids, 250):
            marks = ", ".join("?" * len(chunk))
            if self.dialect != "sqlite":
                self._apply_run_state_rows(extra, chunk, marks)  # (one round trip, not four)
                continue
            # params are immutable (a changed value is refused), so their order is moot
            # (every read of a run table leaves out rows of an unpublished bulk batch)
            for run, key, value in self.conn.execute(
                    f"SELECT run, key, value FROM params WHERE run IN ({marks}) AND {_bulk.published()}", chunk):
                extra[run]["params"][key] = value
            for run, key, value in self.conn.execute(
                    f"SELECT run, key, value FROM tags WHERE run IN ({marks}) AND {_bulk.published()} ORDER BY pk", chunk):
                extra[run]["tags"][key] = value
            for run, key, value in self.conn.execute(_LATEST_METRICS.format(marks=marks), chunk):
                extra[run]["metrics"][key] = value
            for run, status, at, exit_code, error in self.conn.execute(
                f"SELECT run, status, at, exit_code, error FROM run_states WHERE run IN ({marks}) AND {_bulk.published()} "
                "ORDER BY pk", chunk
            ):
                apply_run_state(extra[run], status, at, exit_code, error)
        out = []
        for r in runs:
            attrs = dict(r.attrs)
            attrs.update(extra[r.id])
            out.append(Node(r.id, r.kind, r.name, with_duration(attrs), r.created_at))
        return out

    def _apply_run_state_rows(self, extra: dict[str, dict[str, Any]], runs: Sequence[str], marks: str) -> None:
        """`with_run_state`'s four reads as one statement, their union (`_RUN_STATE_UNION`):
        one round trip to a server instead of four (which_data on PostgreSQL: 7
        statements to 4). SQLite's calls are in-process, where the four are cheaper
        than sorting their union."""
        rows = self.conn.execute(_RUN_STATE_UNION.format(marks=marks), list(runs) * 4)
        for kind, run, key, text, number, at, exit_code, error, _, _ in rows:
            if kind == 0:
                extra[run]["params"][key] = text
            elif kind == 1:  # tags: the latest wins
                extra[run]["tags"][key] = text
            elif kind == 2:  # metrics: one row each, the value (`latest`)
                extra[run]["metrics"][key] = number
            else:  # run states, oldest first (`key` is the status)
                apply_run_state(extra[run], key, at, exit_code, error)

    def params_of(self, run_id: str, keys: Sequence[str] | None = None) -> dict[str, str]:
        """A run's params; only those named in ``keys`` when given (an indexed lookup,
        so logging one param costs the same however many the run has already)."""
        if keys is None:
            sql = f"SELECT key, value FROM params WHERE run = ? AND {_bulk.published()} ORDER BY pk"
            return {k: v for k, v in self.conn.execute(sql, (run_id,))}
        out: dict[str, str] = {}
        for chunk in chunked(list(keys), 500):
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT key, value FROM params WHERE run = ? AND key IN ({marks}) AND {_bulk.published()} ORDER BY pk"
            out.update({k: v for k, v in self.conn.execute(sql, (run_id, *chunk))})
        return out

    def generators(self, node_id: str) -> list[str]:
        """The runs recorded as having generated ``node_id``."""
        return [r[0] for r in self.conn.execute(
            "SELECT dst FROM edges WHERE src = ? AND rel = 'was_generated_by' ORDER BY pk", (node_id,))]

    def derived_from(self, node_id: str) -> list[str]:
        """The entities ``node_id`` was recorded as derived from (a frame from the file
        it was read from)."""
        return [r[0] for r in self.conn.execute(
            "SELECT dst FROM edges WHERE src = ? AND rel = 'was_derived_from' ORDER BY pk", (node_id,))]

    def generated_paths(self, run_id: str) -> set[str]:
        """Where a run put what it generated (the roles of its `was_generated_by`
        edges: artifact paths in the run), for a writer that must not record one twice."""
        return {r[0] for r in self.conn.execute(
            "SELECT role FROM edges WHERE dst = ? AND rel = 'was_generated_by' AND role IS NOT NULL", (run_id,))}

    def annotations(self, node_id: str) -> dict[str, dict[str, Any]]:
        """The latest annotation of each field on a node: ``{field: {text, author, at, event}}``;
        an author erased with their person reads `ERASED_PERSON`."""
        out: dict[str, dict[str, Any]] = {}
        for field_, text, author, at, event in self.conn.execute(
            "SELECT field, text, author, at, event FROM annotations WHERE node = ? ORDER BY pk", (node_id,)
        ):
            out[field_] = {"text": text, "author": ERASED_PERSON if author is None else author, "at": at, "event": event}
        return out

    def aliases(self, node_id: str) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM aliases WHERE node = ? ORDER BY pk", (node_id,))]

    def alias_names(self, node_ids: Sequence[str]) -> set[str]:
        """Every alias of any of ``node_ids``: one query per 500 ids, on ``aliases_node``."""
        names: set[str] = set()
        for chunk in chunked(list(node_ids), 500):
            marks = ", ".join("?" * len(chunk))
            names.update(r[0] for r in self.conn.execute(f"SELECT DISTINCT name FROM aliases WHERE node IN ({marks})", chunk))
        return names

    def model_names(self) -> list[str]:
        """Every name a model version was recorded or registered under, sorted; not the
        aliases that hold MLflow's own ids (``mlflow:m-…``: `is_mlflow_id`)."""
        return [r[0] for r in self.conn.execute(
            "SELECT name FROM nodes WHERE kind = 'model' AND name IS NOT NULL"
            " UNION SELECT a.name FROM aliases a JOIN nodes n ON n.id = a.node WHERE n.kind = 'model'"
            f" AND substr(a.name, 1, {len(MLFLOW_ID_PREFIX)}) <> ?"
            " ORDER BY 1", (MLFLOW_ID_PREFIX,))]

    def nodes(self, kind: str | None = None, name: str | None = None, limit: int | None = None) -> list[Node]:
        """Nodes, newest first, optionally of one kind and/or name (aliases count as names)."""
        if kind is not None and kind not in KINDS:
            raise InvalidInputError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        lim = f" LIMIT {int(limit)}" if limit else ""
        if kind == "prediction":
            rows = self.conn.execute(f"SELECT {self._PRED_COLS} FROM predictions WHERE {_bulk.published()} "
                                     f"ORDER BY pk DESC{lim}").fetchall()
            return [self._prediction_from_row(r) for r in rows]
        where: list[str] = []
        args: list[Any] = []
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

    def count_nodes(self, kind: str | None = None, name: str | None = None) -> int:
        """How many nodes `nodes` would list without a limit (one COUNT, on the kind or
        name index; predictions: on their own table), so a cut listing can say how
        many it left out."""
        if kind is not None and kind not in KINDS:
            raise InvalidInputError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        if kind == "prediction":
            return int(self.conn.execute(f"SELECT COUNT(*) FROM predictions WHERE {_bulk.published()}").fetchone()[0])
        where: list[str] = []
        args: list[Any] = []
        if name is not None:
            named, args = _named(_clean_text(name), kind)
            where.append(named)
        elif kind:
            where.append("kind = ?")
            args.append(kind)
        sql = "SELECT COUNT(*) FROM nodes" + (" WHERE " + " AND ".join(where) if where else "")
        return int(self.conn.execute(sql, args).fetchone()[0])

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
        return self._resolve(ref, paths=True)

    def _resolve(self, ref: str, *, paths: bool) -> Node:
        """`resolve`; ``paths``: also try a reference that reads as a file path as
        its path from the project root (once: the retry itself does not)."""
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
                f"SELECT {self._PRED_COLS} FROM predictions WHERE request_id = ? AND {_bulk.published()} "
                "ORDER BY pk DESC LIMIT 2", (r.request,)
            ).fetchall()
            if not rows:
                raise NodeNotFoundError(r.text, "no prediction has that request id")
            if len(rows) > 1:
                # a retried request logged twice: which answer is meant is the caller's
                # to say, not the newest's by default
                ids = [row[0] for row in self.conn.execute(
                    f"SELECT id FROM predictions WHERE request_id = ? AND {_bulk.published()} "
                    "ORDER BY pk LIMIT 9", (r.request,))]
                total = self.conn.execute(
                    f"SELECT count(*) FROM predictions WHERE request_id = ? AND {_bulk.published()}",
                    (r.request,)).fetchone()[0]
                raise AmbiguousIdError(r.text, ids, total=total, hint="name the prediction by its id")
            return self._prediction_from_row(rows[0])
        if r.prefix is not None:
            # hex that is also a node's name (`d`, `bad`, `2024`) never resolves to
            # another node unsaid: under `MIN_PREFIX` digits it is the name (no one
            # abbreviates an id that far; git asks for 4), and a longer prefix that fits
            # one id while another node has that name is ambiguous (a whole id, 32 or
            # 64 digits, is no one's name: not looked up as one)
            named = self._newest_named(r.name, r.kind) if r.name is not None and len(r.prefix) < 32 else None
            found = self._by_prefix(r.prefix, r.kind) if named is None or len(r.prefix) >= MIN_PREFIX else []
            if found and named is not None and found != [named]:
                raise AmbiguousIdError(r.text, [named, *(i for i in found if i != named)],
                                       total=self._prefix_count(r.prefix, r.kind) + (named not in found),
                                       hint="it is both an id's prefix and a name: give more of the id you mean")
            if len(found) == 1:
                node = self.get_node(found[0])
                assert node is not None
                return node
            if len(found) > 1:
                raise AmbiguousIdError(r.text, found, total=self._prefix_count(r.prefix, r.kind))
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
                    node_id = self._newest_named(r.name, r.kind)
                else:
                    row = self.conn.execute(f"SELECT id FROM nodes WHERE {named} ORDER BY pk LIMIT 1 OFFSET ?",
                                            [*args, max(r.version - 1, 0)]).fetchone()
                    node_id = row[0] if row is not None and r.version >= 1 else None
                if node_id is None:
                    count = self.conn.execute(f"SELECT COUNT(*) FROM nodes WHERE {named}", args).fetchone()[0]
                    raise NodeNotFoundError(r.text, f"{r.name!r} has versions 1 to {count}")
                node = self.get_node(node_id)
                assert node is not None
                return node
        if paths and r.name and r.label is None and r.version is None:
            # a file recorded under another name (`add f.csv --name train`) is still
            # that file: its bytes name it, as its id is their digest
            by_content = self._by_content(r.name, r.kind)
            if by_content is not None:
                return by_content
        path = self._as_project_path(r.name) if paths and r.name and r.label is None else None
        if path is not None:
            # `add` and `run` name a file by its path from the project root, so
            # `./model.pkl`, an absolute path or `clean.csv` typed inside data/ are
            # looked up in that form (only after the text as given matched nothing)
            as_path = (f"{r.kind}:" if r.kind else "") + path + (f"@{r.version}" if r.version is not None else "")
            try:
                return self._resolve(as_path, paths=False)
            except NodeNotFoundError:
                near = self._near_names(path, r.kind)
                hint = f"nothing is recorded as {path!r}, its path from the project root {_files.project_root(self)}"
                raise NodeNotFoundError(r.text, hint + (f"; did you mean {', '.join(near)}?" if near else "")) from None
        near = self._near_names(r.name, r.kind) if r.name else []
        raise NodeNotFoundError(r.text, f"did you mean {', '.join(near)}?" if near else "")

    def _by_content(self, name: str, kind: str | None) -> Node | None:
        """The recorded dataset, model or artifact whose id is the digest of the file
        ``name`` names, when it is one (hashed through the stat cache); else None."""
        if not os.path.isfile(name):
            return None
        from ..hashing import hash_file

        try:
            digest = hash_file(name, cache=self.stat_cache).digest
        except (LineageError, OSError):
            return None
        ids = [f"{k}:{digest}" for k in ("dataset", "model", "artifact") if kind in (None, k)]
        found = self.get_nodes(ids)
        return next((found[i] for i in ids if i in found), None)

    def _as_project_path(self, name: str) -> str | None:
        """``name`` as the project-relative path a file is recorded under (see
        `files.project_path`) when it reads as a path: it starts with ``./``, ``../``,
        ``/`` or ``~``, or names a file that exists from the working directory. None
        otherwise, or when that form is the text itself (nothing new to try)."""
        looks_like_path = name.startswith(("./", "../", "/", "~")) or os.path.exists(name)
        if not looks_like_path:
            return None
        try:
            path = _files.project_path(self, name)
        except (OSError, RuntimeError):  # an unresolvable path (a symlink loop): not a file reference
            return None
        return path if path != name else None

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
        versions = self.history(r.name, kind="model")  # (its registered versions too: an error path)
        if labels:
            held = ", ".join(f"{k} (on @{version_number(versions, v) or v})" for k, v in sorted(labels.items()))
            hint = f"no version of {r.name!r} holds the label {r.label!r}; its labels: {held}"
        elif versions:
            hint = f"no version of {r.name!r} holds the label {r.label!r} (put one there with `lineage promote`)"
        else:
            hint = f"no model is named {r.name!r} (see `lineage ls --kind model`)"
        raise NodeNotFoundError(r.text, hint)

    def label_holder(self, name: str, label: str) -> str | None:
        """The id of the model version that holds ``label`` under ``name`` now, or None.
        One indexed lookup: the newest row of (name, label) decides."""
        row = self.conn.execute(
            "SELECT model, action FROM promotions WHERE name = ? AND label = ? ORDER BY pk DESC LIMIT 1",
            (_clean_text(name), label)).fetchone()
        return row[0] if row and row[1] == "promote" else None

    def labels_of(self, name: str) -> dict[str, str]:
        """``{label: model id}`` for every label a model name holds now."""
        rows = self.conn.execute(
            "SELECT name, label, model, action FROM promotions WHERE name = ? ORDER BY pk", (_clean_text(name),))
        return {label: model for (_, label), model in _held_labels(rows).items()}

    def labelled_models(self) -> set[str]:
        """The model versions holding a promotion label now (any name, any label)."""
        rows = self.conn.execute("SELECT name, label, model, action FROM promotions ORDER BY pk")
        return set(_held_labels(rows).values())

    def name_rows(self, kind: str, name: str | None = None) -> list[tuple[str, str | None, str | None, str]]:
        """What is recorded of the experiments or registered models (``kind``), or of
        one by ``name``, oldest first: ``(name, key, value, at)``; a row without a key
        records a creation, one with a key sets that tag (lineage/names.py). They are
        few: every row of the kind is read when no name is given."""
        if name is None:
            return list(self.conn.execute("SELECT name, key, value, at FROM names WHERE kind = ? ORDER BY pk", (kind,)))
        return list(self.conn.execute("SELECT name, key, value, at FROM names WHERE kind = ? AND name = ? ORDER BY pk",
                                      (kind, _clean_text(name))))

    def experiment_has_runs(self, name: str) -> bool:
        """Whether a run names ``name`` as its experiment (the run nodes, by the kind index)."""
        return self.conn.execute("SELECT 1 FROM nodes WHERE kind = 'run' AND json_extract(attrs, '$.experiment') = ? "
                                 "LIMIT 1", (_clean_text(name),)).fetchone() is not None

    def promotion_rows(self, name: str, label: str | None = None) -> list[dict[str, Any]]:
        """Every recorded change of a name's labels (or of one label), oldest first:
        ``{name, label, model, action, reason, author, at, event}``; an author erased with
        their person reads `ERASED_PERSON`."""
        sql = "SELECT name, label, model, action, reason, author, at, event FROM promotions WHERE name = ?"
        args: list[Any] = [_clean_text(name)]
        if label is not None:
            sql += " AND label = ?"
            args.append(label)
        cols = ("name", "label", "model", "action", "reason", "author", "at", "event")
        rows = [dict(zip(cols, r)) for r in self.conn.execute(sql + " ORDER BY pk", args)]
        for r in rows:
            if r["author"] is None:  # (only erasure leaves one without: `erasure._person_rows`)
                r["author"] = ERASED_PERSON
        return rows

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

    def erasure_of(self, node_id: str) -> dict[str, Any] | None:
        """How a node's own row was erased (`redact`): ``{"event", "reason", "actor",
        "at"}`` from its redaction record and that event; None when it was not.
        Indexed lookups (``redactions_row``, the event by number)."""
        row = self.conn.execute(
            "SELECT r.event, r.reason FROM redactions r JOIN nodes n ON r.tbl = 'nodes' AND r.row_pk = n.pk "
            "WHERE n.id = ? ORDER BY r.pk DESC LIMIT 1", (node_id,)).fetchone()
        if row is None:
            return None
        ev = self.event(row[0])
        payload = (ev.payload if ev is not None else None) or {}
        return {"event": row[0], "reason": row[1], "actor": payload.get("actor"), "at": payload.get("at")}

    def alias_targets(self, names: Sequence[str]) -> dict[str, str]:
        """``{alias: node id}`` for those of ``names`` recorded as an alias (the first
        node each names); one query per 500 names, on the ``aliases_name`` index."""
        out: dict[str, str] = {}
        for chunk in chunked(list(dict.fromkeys(names)), 500):
            rows = self.conn.execute(
                f"SELECT name, node FROM aliases WHERE name IN ({', '.join('?' * len(chunk))}) ORDER BY pk DESC", chunk)
            out.update(rows)  # (newest first: the oldest of a name is written last, and kept)
        return out

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

    def _newest_named(self, name: str, kind: str | None) -> str | None:
        """The id of the newest node called ``name`` (as name or alias; of ``kind`` when
        given), or None."""
        named, args = _named(name, kind)
        row = self.conn.execute(f"SELECT id FROM nodes WHERE {named} ORDER BY pk DESC LIMIT 1", args).fetchone()
        return row[0] if row else None

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
            table, also = ("predictions", f" AND {_bulk.published()}") if k == "prediction" else ("nodes", "")
            found += [r[0] for r in self.conn.execute(
                f"SELECT id FROM {table} WHERE id >= ? AND id < ?{also} ORDER BY id LIMIT 9", (lo, hi))]
        return found

    def _prefix_count(self, prefix: str, kind: str | None) -> int:
        """How many ids start with ``kind:prefix``, counted up to just past
        `AmbiguousIdError.COUNT_CAP` per kind: millions of predictions can share a
        prefix. A range scan of the unique index, as `_by_prefix`; only on the error
        path, so an ambiguous reference says how many it matched."""
        total = 0
        for k in [kind] if kind else list(KINDS):
            lo = f"{k}:{prefix}"
            table, also = ("predictions", f" AND {_bulk.published()}") if k == "prediction" else ("nodes", "")
            total += self.conn.execute(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE id >= ? AND id < ?{also} LIMIT ?) AS hits",
                (lo, lo + "\uffff", AmbiguousIdError.COUNT_CAP + 1)).fetchone()[0]
        return total

    # -- the ledger -----------------------------------------------------------

    def events(self, start: int = 1, end: int | None = None) -> Iterator[Event]:
        """See `ledger.events`."""
        return _ledger.events(self, start, end)

    def event(self, seq: int) -> Event | None:
        """See `ledger.event`."""
        return _ledger.event(self, seq)

    def event_of(self, node_id: str) -> int | None:
        """The number of the event that recorded a node."""
        if node_id.startswith("prediction:"):
            row = self.conn.execute(f"SELECT event FROM predictions WHERE id = ? AND {_bulk.published()}",
                                    (node_id,)).fetchone()
            return _bulk.event_numbers(self, [row[0]])[row[0]] if row else None
        row = self.conn.execute("SELECT event FROM nodes WHERE id = ?", (node_id,)).fetchone()
        return row[0] if row else None

    def check_event_rows(self, seq: int) -> bool:
        """See `ledger.check_event_rows`."""
        return _ledger.check_event_rows(self, seq)

    # -- erasure ---------------------------------------------------------------

    def redact(self, node_id: str, *, reason: str) -> int:
        """See `erasure.redact`."""
        return _erasure.redact(self, node_id, reason=reason)

    def scrub(self) -> bool:
        """See `erasure.scrub`."""
        return _erasure.scrub(self)

    def last_checkpoint(self) -> Event | None:
        """See `ledger.last_checkpoint`."""
        return _ledger.last_checkpoint(self)

    def verify(self, *, head: str | None = None, record: bool = False, since_checkpoint: bool = False,
               progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """See `ledger.verify`."""
        return _ledger.verify(self, head=head, record=record, since_checkpoint=since_checkpoint, progress=progress)

    # -- the stat cache (not evidence: outside the chain) ----------------------

    def stat_get(self, key: Any) -> tuple[str, int | None] | None:
        """See `files.stat_get`."""
        return _files.stat_get(self, key)

    def stat_put(self, key: Any, digest: str, lines: int | None) -> None:
        """See `files.stat_put`."""
        return _files.stat_put(self, key, digest, lines)

    @property
    def stat_cache(self) -> StatCache:
        """The stat cache in the shape `hashing` takes (``cache=store.stat_cache``)."""
        return StatCache(self)

    # -- artifacts ---------------------------------------------------------

    def put_artifact(self, digest: str, data: bytes | None = None, *, source: str | os.PathLike[str] | None = None) -> Path:
        """See `files.put_artifact`.

        Bytes up to `INLINE_ARTIFACT_BYTES` (a model's pickle, mostly) are kept in
        the database too (``artifact_blobs``), by the caller's transaction (or one
        of their own): as durable as the record that names them, at whatever
        ``LINEAGE_DURABILITY``, so their file is not synced; `artifact_path` writes
        it again if a power cut lost it. Larger bytes, and files, are synced.
        """
        if _files.kept_inline(data):
            with self.atomic():
                self.conn.execute("INSERT INTO artifact_blobs (digest, data) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING",
                                  (digest, data))
                return _files.put_artifact(self, digest, data, synced=False)
        return _files.put_artifact(self, digest, data, source=source)

    def has_artifact(self, digest: str) -> bool:
        """Whether this store keeps the bytes of ``digest`` (here: its file)."""
        return _files.artifact_path(self, digest).is_file()

    def artifact_path(self, digest: str) -> Path:
        """See `files.artifact_path`. When the database keeps the artifact's bytes
        (`put_artifact`), a file that is missing or holds other bytes (a small
        artifact's file is not synced: a power cut can lose it or cut it short) is
        written again from there first (synced, and only if those bytes hash to
        ``digest``). A small artifact's file is compared byte for byte; a larger one
        (on PostgreSQL, every artifact's bytes are kept) only for its size."""
        path = _files.artifact_path(self, digest)
        # (best effort: a store that cannot be written, or a server that went away,
        # leaves the file as it is, and reading it says what is wrong)
        with suppress(LineageError, sqlite3.Error, OSError):
            # (a small copy comes with its size, in one lookup; a large one only when
            # the file does not have its size)
            row = self.conn.execute("SELECT length(data), CASE WHEN length(data) <= ? THEN data END "
                                    "FROM artifact_blobs WHERE digest = ?", (INLINE_ARTIFACT_BYTES, digest)).fetchone()
            if row is None:
                return path
            size, copy = int(row[0]), row[1]
            if copy is None:  # (a large one)
                if _files.size_of(path) == size:
                    return path
                kept = self.conn.execute("SELECT data FROM artifact_blobs WHERE digest = ?", (digest,)).fetchone()
                copy = kept[0] if kept is not None else b""
            data = bytes(copy)
            if hashlib.sha256(data).hexdigest() == digest:
                _files.put_artifact(self, digest, data)  # (writes it only if the file is not those bytes)
        return path

    # -- run locks: a live run holds an flock; a free lock on a `running` run means it died

    def run_lock(self, run_id: str) -> RunLock | ByteLock:
        """See `files.run_lock`."""
        return _files.run_lock(self, run_id)

    def running_runs(self) -> list[str]:
        """Ids of runs whose latest state is `running`.

        Read from `open_runs` (its cost follows the runs still open, not every run ever
        started), which is a cache: each entry is checked against the evidence (a
        well-formed run id whose latest recorded state is `running`) before it is
        believed, and the cache is rebuilt when an entry is not.
        """
        out, stale = [], False
        for (run,) in self.conn.execute("SELECT run FROM open_runs ORDER BY run").fetchall():
            if isinstance(run, str) and RUN_ID_PATTERN.fullmatch(run) and self._latest_status(run) == "running":
                out.append(run)
            else:
                stale = True
        if stale:
            self._rebuild_open_runs()
        return out

    def _latest_status(self, run_id: str) -> str | None:
        row = self.conn.execute(f"SELECT status FROM run_states WHERE run = ? AND {_bulk.published()} ORDER BY pk DESC LIMIT 1",
                                (run_id,)).fetchone()
        return row[0] if row else None

    _OPEN_RUNS_SQL = (f"SELECT s.run FROM run_states s WHERE s.status = 'running' AND {_bulk.published('s')} "
                      f"AND s.pk = (SELECT MAX(t.pk) FROM run_states t WHERE t.run = s.run AND {_bulk.published('t')})")

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

    # -- signed checkpoints ------------------------------------------------------

    def checkpoints(self) -> list[Event]:
        """See `ledger.checkpoints`."""
        return _ledger.checkpoints(self)

    def event_with_hash(self, prefix: str) -> int | None:
        """See `ledger.event_with_hash`."""
        return _ledger.event_with_hash(self, prefix)

    # (the reads that serve reports, audits and the API rather than writes live in
    # the query layer: lineage/query/rows.py, issue 10)


def _failed_part_way(why: str, *, ending: bool = False) -> WriteRefusedError:
    """The error of a write transaction in which a write failed after it began writing
    (`Store._guarded`): at its end (``ending``), or at a later write inside it."""
    if ending:
        return WriteRefusedError(f"nothing of this batch was recorded: a write in it failed part-way ({why}) "
                                 "and was caught, and a write that has begun is undone only with its whole batch")
    return WriteRefusedError(f"refused: a write earlier in this batch failed part-way ({why}); the batch will be "
                             "rolled back whole, so nothing more can be recorded in it")


#: the fewest hex digits read as an id's prefix before a name (`Store.resolve`)
MIN_PREFIX = 4


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



def apply_run_state(state: dict[str, Any], status: str, at: str, exit_code: int | None, error: str | None) -> None:
    """Fold one ``run_states`` row (read in pk order) into a run's ``state``: its
    status, when it started (the first ``running``) and how it ended."""
    state["status"] = status
    if status == "running":
        state.setdefault("started_at", at)
    else:
        state["ended_at"] = at
        state["exit_code"] = exit_code
        state["error"] = error


def with_duration(attrs: dict[str, Any]) -> dict[str, Any]:
    """A run's ``attrs`` with ``duration_s`` added once it has started and ended."""
    started, ended = attrs.get("started_at"), attrs.get("ended_at")
    if started and ended:
        attrs["duration_s"] = seconds_between(started, ended)
    return attrs


def seconds_between(a: str, b: str) -> float | None:
    """Seconds from ISO time ``a`` to ``b`` (a run's duration), or None when either
    is not an ISO time."""
    from datetime import datetime

    try:
        fa = datetime.fromisoformat(a.replace("Z", "+00:00"))
        fb = datetime.fromisoformat(b.replace("Z", "+00:00"))
    except ValueError:
        return None
    return round((fb - fa).total_seconds(), 3)


def _held_labels(rows: Iterable[tuple[str, str, str, str]]) -> dict[tuple[str, str], str]:
    """``{(name, label): model id}`` held after replaying promotion rows, oldest first:
    a promote moves the label, a demote of its holder removes it."""
    held: dict[tuple[str, str], str] = {}
    for name, label, model, action in rows:
        if action == "promote":
            held[(name, label)] = model
        elif held.get((name, label)) == model:
            del held[(name, label)]
    return held
