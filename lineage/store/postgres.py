"""What is PostgreSQL's: the URL, connections (psycopg 3, a pool), the SQLite dialect
of the rest of the package rewritten once per statement, per-backend DDL, the append
lock, snapshots, run liveness without lock files, bulk loads through ``COPY``, and
backend errors translated into lineage's error tree (in one place: `_translate`).

The rest of the store, the ledger and the query layer write one dialect (SQLite's,
kept close to standard SQL); `translate` turns it into PostgreSQL's: ``?`` becomes
``%s``, ``json_extract(x, '$.k')`` becomes ``(x::jsonb ->> 'k')``, ``IS ?`` becomes
``IS NOT DISTINCT FROM %s``, GLOB tests become regular expressions, ``LIKE`` becomes
``ILIKE`` (SQLite's LIKE ignores ASCII case), PRAGMAs become no-ops or their
equivalents. Text columns use the "C" collation, so ordering and the range scans on
ids (``id >= ? AND id < ?``) behave as on SQLite, byte by byte.

One chain under many writers: every write transaction starts by taking a transaction
advisory lock keyed by the store's schema (`_LOCK_CLASS`), so appends are serialized
across processes and machines, and it is released by COMMIT or ROLLBACK, or by the
server when a writer's connection dies. A live run holds a session advisory lock
keyed by its id on its process's lock session for the store (`PgRunLock`, one
connection a process, not one a run): the server drops it when the process dies,
however it dies, which is how a run killed on another machine is found crashed.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, cast
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ..errors import (
    DiskFullError,
    InvalidInputError,
    LineageError,
    NoStoreError,
    StoreBusyError,
    StoreCorruptError,
    StoreUnavailableError,
    WriteRefusedError,
)
from ..model import now_iso
from . import files as _files
from . import ledger as _ledger
from .codec import encode_batch, gc_paused
from .core import Store
from .schema import RECORD_TABLES, column_kinds

#: URL schemes that select this backend
SCHEMES = ("postgresql://", "postgres://")

#: how long a write waits for the append lock (another writer's transaction)
BUSY_SECONDS = 30.0

#: tries of an operation that is safe to repeat (connecting, a read outside a
#: transaction, the start of a write transaction) when the server cannot be reached,
#: with the pause before each retry: about 10 s in all, the time a restart takes
_RETRY_PAUSES = (0.1, 0.3, 0.6, 1.0, 2.0, 3.0, 3.0)

#: after the server (re)starts, runs get this long to reconnect and take their locks
#: again before a reaper may judge them dead
_RESTART_GRACE_SECONDS = 30.0

#: the first key of every advisory lock lineage takes (with the schema's key: the
#: append lock; with a run's key: that run's liveness lock)
_LOCK_CLASS = 0x4C494E  # "LIN"


def is_url(location: Any) -> bool:
    """True when ``location`` names a PostgreSQL store (a ``postgresql://`` URL)."""
    return isinstance(location, str) and location.startswith(SCHEMES)


class PgUrl(str):
    """A store URL as shown (password removed: it goes into reports and messages),
    carrying the full URL to connect with in `.secret`."""

    secret: str

    def __new__(cls, url: str) -> PgUrl:
        parts = urlsplit(url)
        shown = parts.netloc.rsplit("@", 1)
        netloc = parts.netloc
        if len(shown) == 2 and ":" in shown[0]:
            netloc = shown[0].split(":", 1)[0] + ":***@" + shown[1]
        self = super().__new__(cls, urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))
        self.secret = url.secret if isinstance(url, PgUrl) else url
        return self

    def is_file(self) -> bool:
        """Whether a lineage store exists at this URL (what ``Path.is_file`` says of a
        database file): its schema holds the ``meta`` table."""
        try:
            import psycopg
        except ImportError:
            return False  # (opening it says which extra to install)
        try:
            conninfo, schema = _split_url(self.secret)
            with psycopg.connect(conninfo, connect_timeout=10) as c:
                row = c.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'meta'",
                                (schema,)).fetchone()
                return row is not None
        except (psycopg.Error, ValueError, OSError):  # "no store we can see"; opening it says why
            return False


def _split_url(url: str) -> tuple[str, str]:
    """``(libpq conninfo URL, schema)``: lineage's own ``schema=`` query parameter
    (default ``public``) is taken out of the URL, which libpq would refuse."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), "public")
    rest = [(k, v) for k, v in query if k != "schema"]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", schema):
        raise InvalidInputError(f"schema={schema!r} in the store URL is not a plain identifier (letters, digits, _)")
    scheme = "postgresql" if parts.scheme in ("postgresql", "postgres") else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest, quote_via=quote), parts.fragment)), schema


def _key(text: str) -> int:
    """A stable 31-bit key for an advisory lock (non-zero)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF or 1


# ---------------------------------------------------------------------------
# the dialect: SQLite's text rewritten once per statement

_PLACEHOLDER_SPLIT = re.compile(r"('(?:[^']|'')*')")
_JSON_EXTRACT = re.compile(r"json_extract\(\s*([\w.]+)\s*,\s*'\$\.(\w+)'\s*\)")
#: `_NUMERIC_TEXT` of the query layer: a value that looks like a number. PostgreSQL's
#: CAST refuses what SQLite's takes leniently ('1e', '+'), so the test is strict here.
_NUMBER_RE = r"'^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$'"
_GLOBS = (
    (re.compile(r"(\w+(?:\.\w+)?) NOT GLOB '\*\[\^0-9\.eE\+-\]\*'"), r"\1 ~ " + _NUMBER_RE.replace("\\", "\\\\")),
    (re.compile(r"(\w+(?:\.\w+)?) GLOB '\*\[0-9\]\*'"), r"\1 ~ '[0-9]'"),
)
_DDL_TYPES = (
    (re.compile(r"\bpk INTEGER PRIMARY KEY\b"), "pk BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\b(\w+) INTEGER PRIMARY KEY AUTOINCREMENT\b"), r"\1 BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'),
)


@functools.lru_cache(maxsize=4096)
def translate(sql: str, with_params: bool = True) -> str:
    """``sql`` (SQLite's dialect, as the package writes it) in PostgreSQL's.

    Only outside string literals: ``?`` becomes ``%s`` and ``%`` becomes ``%%`` (when
    parameters are passed, psycopg reads ``%``). Cached: the package's statements are a
    few hundred distinct strings.
    """
    head = sql.lstrip()[:12].upper()
    if head.startswith("CREATE TABLE"):
        for pattern, repl in _DDL_TYPES:
            sql = pattern.sub(repl, sql)
    sql = _JSON_EXTRACT.sub(r"(\1::jsonb ->> '\2')", sql)
    for pattern, repl in _GLOBS:
        sql = pattern.sub(repl, sql)
    sql = sql.replace(" AS REAL)", " AS DOUBLE PRECISION)")
    sql = sql.replace(" IS NOT ?", " IS DISTINCT FROM ?").replace(" IS ?", " IS NOT DISTINCT FROM ?")
    sql = sql.replace(" LIKE ? ESCAPE", " ILIKE ? ESCAPE")
    sql = sql.replace(" temp.", " pg_temp.")
    if sql.startswith("WITH RECURSIVE"):
        # the seeds of a walk take the collation of the columns it unions with
        sql = sql.replace("(?)", '(CAST(? AS TEXT) COLLATE "C")').replace("SELECT ? UNION", 'SELECT CAST(? AS TEXT) COLLATE "C" UNION')
    if "INSERT OR IGNORE INTO" in sql:
        sql = sql.replace("INSERT OR IGNORE INTO", "INSERT INTO") + " ON CONFLICT DO NOTHING"
    if not with_params:
        return sql
    pieces = _PLACEHOLDER_SPLIT.split(sql)
    for i in range(0, len(pieces), 2):  # even pieces are outside literals
        pieces[i] = pieces[i].replace("%", "%%").replace("?", "%s")
    for i in range(1, len(pieces), 2):
        pieces[i] = pieces[i].replace("%", "%%")
    return "".join(pieces)


# ---------------------------------------------------------------------------
# backend errors, translated in one place


#: what the server says when it refuses a login for good (retrying will not help)
_REFUSALS = ("does not exist", "authentication failed", "no pg_hba.conf entry", "permission denied",
             "password", "SSL", "certificate")


def _is_disconnect(exc: BaseException) -> bool:
    """True for a connection that failed or was lost for a reason that may pass (the
    server down, restarting, the backend terminated): worth a retry."""
    import psycopg

    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        if _refused(exc):
            return False
        sqlstate = getattr(exc, "sqlstate", None)
        # 57P0x: the server is shutting down / the backend was terminated; 08xxx:
        # connection exceptions; no sqlstate: the socket itself failed
        return sqlstate is None or sqlstate.startswith(("57P", "08"))
    return False


def _refused(exc: BaseException) -> bool:
    text = str(exc)
    return "FATAL" in text and any(r in text for r in _REFUSALS)


def _translate(exc: BaseException, where: str) -> LineageError | None:
    """The lineage error a psycopg error means, or None for a bug of ours (a
    constraint failure, bad SQL), which is let through as it is."""
    import psycopg
    from psycopg import errors as e

    if isinstance(exc, LineageError):
        return exc
    if _refused(exc):
        reason = _first_line(exc).split("FATAL:", 1)[-1].strip()
        if "database" in reason and "does not exist" in reason:
            return NoStoreError(f"no lineage store at {where}: {reason} (create it with createdb)")
        return StoreUnavailableError(f"the server of {where} refused the connection: {reason}")
    if _is_disconnect(exc):
        return StoreUnavailableError(f"the lineage store {where} cannot be reached ({_first_line(exc)}); "
                                     "retry when the server is back")
    if isinstance(exc, (e.LockNotAvailable, e.DeadlockDetected, e.QueryCanceled, e.SerializationFailure)):
        return StoreBusyError(f"the lineage store {where} is busy: another writer held its append lock for more than "
                              f"{BUSY_SECONDS:.0f} s; try again")
    if isinstance(exc, (e.DiskFull, e.OutOfMemory, e.InsufficientResources)):
        return DiskFullError(f"the server holding {where} is out of space: nothing of this write was kept; "
                             "free some space and retry")
    if isinstance(exc, (e.ReadOnlySqlTransaction, e.InsufficientPrivilege)):
        return WriteRefusedError(f"the lineage store {where} refuses this: {_first_line(exc)}")
    if isinstance(exc, (e.UntranslatableCharacter, e.CharacterNotInRepertoire)) or (
            isinstance(exc, psycopg.DataError) and "0x00" in str(exc)):
        return InvalidInputError(f"text with a NUL character cannot be stored in PostgreSQL ({_first_line(exc)})")
    if isinstance(exc, e.InvalidCatalogName):
        return NoStoreError(f"no database for the lineage store {where} ({_first_line(exc)}); create it with createdb")
    if isinstance(exc, (e.InvalidAuthorizationSpecification, e.InvalidPassword)):
        return StoreUnavailableError(f"the server of {where} refused the login: {_first_line(exc)}")
    if isinstance(exc, (e.UndefinedTable, e.UndefinedColumn)):  # a table dropped or altered by hand
        return StoreCorruptError(f"{where} is not a complete lineage store ({_first_line(exc)}; see `lineage verify`)")
    if isinstance(exc, e.ProgramLimitExceeded):  # (class 54: a statement of ours too big for the server)
        return LineageError(f"a query of lineage's went past a limit of PostgreSQL ({_first_line(exc)}): a bug in "
                            f"lineage, not damage to the store {where}; please report it")
    if isinstance(exc, (e.DataCorrupted, e.IndexCorrupted)):
        return StoreCorruptError(f"{where}: the server reports damaged data ({_first_line(exc)})")
    return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@functools.cache
def _pipeline_supported() -> bool:
    """Whether psycopg's libpq has pipeline mode (libpq 14 and later; the binary
    wheels bundle one that has)."""
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


@contextmanager
def map_errors(where: str) -> Iterator[None]:
    """psycopg errors raised inside become lineage errors (see `_translate`)."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        mapped = _translate(exc, where)
        if mapped is None:
            raise
        raise mapped from None


# ---------------------------------------------------------------------------
# connections


class _NoRows:
    """The result of a statement that is a no-op here (a PRAGMA with no equivalent)."""

    def __init__(self, rows: Sequence[tuple[Any, ...]] = ()) -> None:
        self._rows = list(rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows, []
        return rows

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())


#: statements whose results can be very large (verify's scans): read through a
#: server-side cursor inside a transaction, so memory stays flat
_STREAMED = ("ORDER BY event, pk", "FROM events WHERE seq >= ? ORDER BY seq", "FROM edges ORDER BY pk")


class PgConnection:
    """One thread's connection, with the small sqlite3-like surface the package uses
    (``execute``, ``executemany``, ``in_transaction``, ``close``).

    Statements are rewritten by `translate`; errors become lineage errors. Outside a
    transaction a lost connection is replaced (from the pool) and the statement
    retried, a bounded number of times: a server restart needs no repair. Inside one,
    the transaction is lost whole and the error says so.
    """

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._raw: Any = None
        self._streams = itertools.count()
        self._pid = os.getpid()
        #: statements sent that may change rows (all but SELECTs), for `PostgresStore._changes`
        self.writes = 0

    # -- the raw psycopg connection -------------------------------------------

    @property
    def raw(self) -> Any:
        """The psycopg connection (taken from the pool, replaced when broken)."""
        raw = self._raw
        if raw is not None and (raw.closed or raw.broken):
            self._give_back()
            raw = None
        if raw is None:
            raw = self._raw = self._store._getconn()
        return raw

    def _give_back(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            self._store._putconn(raw)

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        raw = self._raw
        # (a broken connection's transaction is gone: the server rolled it back)
        return (raw is not None and not raw.closed and not raw.broken
                and raw.info.transaction_status != TransactionStatus.IDLE)

    def close(self) -> None:
        with suppress(Exception):
            if self.in_transaction:
                self._raw.rollback()
        with suppress(Exception):
            self._give_back()

    def __del__(self) -> None:  # a thread ended: its connection goes back to the pool
        with suppress(Exception):
            if self._raw is not None and self._pid == os.getpid():
                self.close()

    # -- statements --------------------------------------------------------------

    def execute(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] | None = (), /) -> Any:
        head = sql.lstrip()[:7].upper()
        if head.startswith(("PRAGMA", "VACUUM")):
            return self._pragma(sql)
        if not head.startswith("SELECT"):
            self.writes += 1
        params = tuple(parameters) if parameters else None
        text = translate(sql, params is not None)
        return self._run(lambda raw: self._exec(raw, sql, text, params), retry=not self.in_transaction)

    def _exec(self, raw: Any, sql: str, text: str, params: tuple[Any, ...] | None) -> Any:
        if self.in_transaction and any(m in sql for m in _STREAMED):
            cur = raw.cursor(name=f"lineage_stream_{next(self._streams)}")
            cur.itersize = 5000
            cur.execute(text, params)
            return cur
        return raw.execute(text, params, prepare=None)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Any:
        self.writes += 1
        text = translate(sql, True)
        rows = [tuple(p) for p in seq_of_parameters]

        def run(raw: Any) -> Any:
            cur = raw.cursor()
            if rows:
                cur.executemany(text, rows)
            return cur

        return self._run(run, retry=False)

    def copy_rows(self, sql: str, rows: Iterable[Sequence[Any]], types: Sequence[str] | None = None) -> None:
        """``COPY … FROM STDIN`` of ``rows`` (psycopg's ``copy``); binary when the
        columns' ``types`` are given (``text``, ``float8``, ``int8``)."""
        self.writes += 1

        def run(raw: Any) -> None:
            with raw.cursor() as cur, cur.copy(sql) as copy:
                if types is not None:
                    copy.set_types(list(types))
                write = copy.write_row
                for row in rows:
                    write(row)

        self._run(run, retry=False)

    def _run(self, fn: Callable[[Any], Any], *, retry: bool) -> Any:
        import psycopg

        where = str(self._store.path)
        pauses = iter(_RETRY_PAUSES if retry else ())
        while True:
            try:
                return fn(self.raw)
            except psycopg.Error as exc:
                if retry and _is_disconnect(exc):
                    pause = next(pauses, None)
                    if pause is not None:
                        self._give_back()
                        time.sleep(pause)
                        continue
                mapped = _translate(exc, where)
                if mapped is None:
                    raise
                raise mapped from None

    def _pragma(self, sql: str) -> Any:
        """SQLite's PRAGMAs and VACUUM, as far as they mean something here."""
        text = " ".join(sql.split()).lower()
        if text.startswith("vacuum full"):
            # erasure's scrub of the tables it changed (`erasure.scrub`): one row,
            # (every table rewritten?,)
            if self.in_transaction:
                return _NoRows([(False,)])
            names = [t.strip() for t in text[len("vacuum full"):].split(",") if t.strip()]
            tables = [t for t in names if t in RECORD_TABLES or t in ("events", "stat_cache")]  # (never a forged name)
            return _NoRows([(all([self._run(functools.partial(_vacuum_full, table=t), retry=True) for t in tables]),)])
        if text.startswith("vacuum"):
            # dead row versions are removed (VACUUM cannot run in a transaction; the
            # connection is in autocommit mode outside one)
            if not self.in_transaction:
                for table in (*RECORD_TABLES, "stat_cache"):
                    self._run(functools.partial(_vacuum, table=table), retry=True)
            return _NoRows()
        if text.startswith("pragma wal_checkpoint"):
            return _NoRows([(0, 0, 0)])
        if text.startswith("pragma query_only"):
            on = text.rstrip(";").endswith(("on", "1", "true"))
            self._run(lambda raw: raw.execute(f"SET default_transaction_read_only = {'on' if on else 'off'}"), retry=False)
            return _NoRows()
        return _NoRows()  # secure_delete, synchronous, cache_size, …: nothing to do here


def _detach(raw: Any) -> None:
    """In a forked child: point the child's copy of a parent's connection socket at
    /dev/null, so that nothing the child does (or its exit, which ends libpq
    connections) can write to the parent's session on the server."""
    if raw is None:
        return
    with suppress(Exception):
        fd = raw.pgconn.socket
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, fd)
        os.close(null)


def _vacuum(raw: Any, *, table: str) -> None:
    raw.execute(f"VACUUM {table}")


#: how long erasure's rewrite of one table waits for the table's lock (readers and
#: writers of that table queue behind a waiting VACUUM FULL, so the wait is short)
_SCRUB_LOCK_SECONDS = float(os.environ.get("LINEAGE_PG_SCRUB_LOCK_SECONDS", "5"))


def _vacuum_full(raw: Any, *, table: str) -> bool:
    """Rewrite ``table`` and its indexes (``VACUUM (FULL)``): the old row versions,
    erased content included, are not copied into the new files, and the old files
    are removed. It holds the table's exclusive lock while it runs (in proportion to
    the table: measured in docs/postgres.md); when the lock cannot be had within
    `_SCRUB_LOCK_SECONDS` (a long reader), a plain ``VACUUM`` runs instead, which
    marks the dead versions free without erasing their bytes, and False is
    returned."""
    import psycopg

    raw.execute(f"SET lock_timeout = '{int(_SCRUB_LOCK_SECONDS * 1000)}ms'")
    try:
        raw.execute(f"VACUUM (FULL) {table}")
        return True
    except psycopg.errors.LockNotAvailable:
        raw.execute(f"VACUUM {table}")
        return False
    finally:
        raw.execute("RESET lock_timeout")


# ---------------------------------------------------------------------------
# the store on PostgreSQL


class PostgresStore(Store):
    """A lineage store in a PostgreSQL database (a schema of it: ``?schema=NAME``,
    default ``public``). Same schema, ledger, queries and reports as on SQLite;
    see the module docstring for what differs."""

    dialect = "postgresql"

    def _init_location(self, path: Any, create: bool) -> None:
        url = path if isinstance(path, PgUrl) else PgUrl(str(path))
        self.path = url  # type: ignore[assignment]
        self._url = url
        self._conninfo, self.schema = _split_url(url.secret)
        self._lock_key = _key(f"{urlsplit(self._conninfo).path}/{self.schema}")
        self._pool: Any = None
        self._pool_pid = os.getpid()
        self._pool_lock = threading.Lock()
        self._has_events = False  # (until `_migrate` has made sure of the ledger's table)
        # the files beside a store (artifacts, the environment cache) live in the
        # project's own .lineage/ folder: the git root, or here
        from .locate import default_location

        self.dir = default_location().parent

    def _open_check(self, create: bool) -> None:
        if not create and self.schema_version() == 0:
            raise NoStoreError(f"no lineage store at {self.path} (run `lineage --db URL init`)")
        if create and not self.conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = ?", (self.schema,)).fetchone():
            import psycopg

            # (IF NOT EXISTS is not safe against another process creating it meanwhile)
            with suppress(psycopg.errors.UniqueViolation):
                self.conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')

    # -- connections ---------------------------------------------------------

    def _getconn(self) -> Any:
        if self._pool_pid != os.getpid():
            self._after_fork()
        pool = self._pool
        if pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = self._make_pool()
                pool = self._pool
        try:
            return pool.getconn(timeout=10.0)
        except Exception as exc:
            import psycopg_pool

            if isinstance(exc, (psycopg_pool.PoolTimeout, psycopg_pool.TooManyRequests)) or _is_disconnect(exc):
                raise StoreUnavailableError(f"the lineage store {self.path} cannot be reached "
                                            f"({_first_line(exc) or 'no connection'}); retry when the server is back") from None
            mapped = _translate(exc, str(self.path))
            if mapped is None:
                raise
            raise mapped from None

    def _putconn(self, raw: Any) -> None:
        pool = self._pool
        if pool is None or self._pool_pid != os.getpid():
            return
        with suppress(Exception):
            pool.putconn(raw)

    def _make_pool(self) -> Any:
        import psycopg
        from psycopg_pool import ConnectionPool

        # One connection first, to say at once why the server cannot be used (down,
        # a refused login, no such database) rather than after the pool's wait.
        pauses = iter(_RETRY_PAUSES)
        while True:
            try:
                psycopg.connect(self._conninfo, connect_timeout=10).close()
                break
            except psycopg.Error as exc:
                pause = next(pauses, None) if _is_disconnect(exc) else None
                if pause is None:
                    mapped = _translate(exc, str(self.path))
                    if mapped is None:
                        raise
                    raise mapped from None
                time.sleep(pause)

        schema = self.schema
        app = f"lineage:{schema}"[:63]

        def configure(conn: Any) -> None:
            conn.autocommit = True
            conn.execute(f'SET search_path TO "{schema}"')
            conn.execute(f"SET lock_timeout = '{int(BUSY_SECONDS * 1000)}ms'")
            # a dead client machine is noticed within a minute (its locks freed)
            conn.execute("SET tcp_keepalives_idle = 20")
            conn.execute("SET tcp_keepalives_interval = 5")
            # (LINEAGE_DURABILITY: a commit here is durable once the server has it;
            # synchronous_commit stays as the server's administrator set it)

        return ConnectionPool(self._conninfo, min_size=1, max_size=int(os.environ.get("LINEAGE_PG_POOL", "16")),
                              kwargs={"application_name": app, "connect_timeout": 10},
                              configure=configure, open=True, max_idle=60, reconnect_timeout=10,
                              check=ConnectionPool.check_connection, name=app)

    def _connect(self) -> Any:
        return PgConnection(self)

    @property
    def _pgconn(self) -> PgConnection:
        """This thread's connection, as its own type (`conn` is typed as sqlite3's)."""
        return cast(PgConnection, self.conn)

    def _after_fork(self) -> None:
        # the parent's pool and connections are the parent's: kept, never used or
        # closed here (closing would end the parent's sessions on the server)
        raws = [c._raw for c in list(self._conns) if isinstance(c, PgConnection)]  # type: ignore[attr-defined]
        raws += list(getattr(self._pool, "_pool", ()) or ())  # the pool's idle connections
        for raw in raws:
            _detach(raw)
        self._inherited.append(self._pool)
        self._pool = None
        self._pool_pid = os.getpid()
        self._pool_lock = threading.Lock()
        super()._after_fork()

    def close(self) -> None:
        if self._closed:
            return
        super().close()
        pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            with suppress(Exception):
                pool.close(timeout=5)

    @property
    def db(self) -> Any:
        raise LineageError("sqlite-utils works on SQLite stores only; this store is on PostgreSQL")

    # -- schema -------------------------------------------------------------

    def schema_version(self) -> int:
        tables = {r[0] for r in self.conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", (self.schema,))}
        if "meta" not in tables:
            if tables & set(RECORD_TABLES):
                raise StoreCorruptError(f"{self.path} holds tables but not a lineage store (no `meta` table)")
            return 0
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        # (artifacts' bytes, `artifact_blobs`, were this backend's own table before
        # migration 12 made it every store's: IF NOT EXISTS there keeps it as it is)
        super()._migrate()
        self._has_events = True
        by_model = self.conn.execute("SELECT 1 FROM pg_indexes WHERE schemaname = ? AND indexname = 'predictions_model_pk'",
                                     (self.schema,)).fetchone()
        if not by_model:
            self._index_predictions_by_model()

    def _index_predictions_by_model(self) -> None:
        """A model's predictions in row order (``WHERE model = ? ORDER BY pk``: the
        first and last of a model, its predictions listed): SQLite's index on
        ``model`` carries the rowid and serves it; PostgreSQL's does not, and its
        planner then walks the whole table in pk order looking for the model (17 ms a
        lookup at 100k predictions, 23 s for the impact of a dataset). Not a migration:
        the index is PostgreSQL's only. Built once, on first open (a large table takes
        a while; writers wait meanwhile)."""
        import psycopg

        with suppress(LineageError, psycopg.errors.UniqueViolation), self.transaction():
            self.conn.execute("CREATE INDEX IF NOT EXISTS predictions_model_pk ON predictions (model, pk)")

    # -- artifacts: a local copy in the project's .lineage/, the bytes on the server --

    def put_artifact(self, digest: str, data: bytes | None = None, *, source: str | os.PathLike[str] | None = None) -> Any:
        """As on SQLite (a file under ``artifacts/``; small bytes in ``artifact_blobs``
        too), and every artifact's bytes kept on the server, so that the team's other
        machines can fetch them (`Store.artifact_path` writes a missing file from there)."""
        path = super().put_artifact(digest, data, source=source)
        if _files.kept_inline(data):
            return path  # (kept by the Store's own put, in the caller's transaction)
        # best effort (a savepoint inside a caller's transaction): the local file is
        # the artifact; without the table (a read-only login) it is not shared
        with suppress(LineageError), self.transaction():
            if not self.conn.execute("SELECT 1 FROM artifact_blobs WHERE digest = ?", (digest,)).fetchone():
                self.conn.execute("INSERT INTO artifact_blobs (digest, data) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING",
                                  (digest, data if data is not None else path.read_bytes()))
        return path

    def has_artifact(self, digest: str) -> bool:
        """Whether the server keeps the bytes of ``digest`` (a local copy alone does not
        share them with the team)."""
        return self.conn.execute("SELECT 1 FROM artifact_blobs WHERE digest = ?", (digest,)).fetchone() is not None

    # -- transactions ---------------------------------------------------------

    def _begin_write(self, conn: PgConnection) -> None:
        """BEGIN and take the append lock: safe to retry on a lost connection,
        since nothing of the transaction has happened yet."""
        import psycopg

        where = str(self.path)
        self._local.begun_head = None
        if conn.in_transaction:
            if not getattr(self._local, "bulk_publish", False):
                # (a write from inside a bulk write's rows, on its connection: it would
                # commit the half-loaded batch with it)
                raise WriteRefusedError(f"{where}: a write from inside the rows of a bulk write, in the same thread, "
                                        "cannot be recorded before that write ends; write it before or after")
            # a bulk load's transaction (`bulk_load_many`): its rows are in, unseen;
            # the lock is taken now, for the final append only
            with map_errors(where):
                conn.raw.execute(f"SELECT pg_advisory_xact_lock({_LOCK_CLASS}, {int(self._lock_key)})")
            return
        pauses = iter(_RETRY_PAUSES)
        while True:
            try:
                # One round trip: the statements in one simple query (the keys are ours).
                # The head is read once the lock is held, by a statement of its own, so
                # (READ COMMITTED) it sees every append committed before; not while the
                # store is being made, when there is no ledger yet.
                lock = f"BEGIN; SELECT pg_advisory_xact_lock({_LOCK_CLASS}, {int(self._lock_key)})"
                if not self._has_events:
                    conn.raw.execute(lock)
                    return
                cur = conn.raw.execute(f"{lock}; {_ledger.HEAD_SQL}")
                cur.nextset()
                cur.nextset()
                self._local.begun_head = _ledger.head_of(cur.fetchone())
                return
            except psycopg.Error as exc:
                with suppress(Exception):
                    if conn.in_transaction:
                        conn.raw.execute("ROLLBACK")
                pause = next(pauses, None) if _is_disconnect(exc) else None
                if pause is None:
                    mapped = _translate(exc, where)
                    if mapped is None:
                        raise
                    raise mapped from None
                conn._give_back()
                time.sleep(pause)

    def _begin_tx(self, conn: Any) -> None:
        self._begin_write(conn)

    def _check_others(self) -> None:
        """What this connection remembers (`known_node`, a run's params and edges) is
        kept when nobody else has written since its last commit: PostgreSQL has no
        PRAGMA data_version, but every change to the recorded tables appends to the
        ledger, so a head that has not moved since then says so. `_begin_write`
        read the head with the BEGIN, under the append lock: no round trip here.
        ``version`` (SQLite's data_version there) is the head the memory was last
        checked against: this one, then the one this transaction's commit leaves."""
        local = self._local
        begun = local.begun_head
        if begun is None or begun != local.version:
            self._forget_known()
        local.head = local.version = begun

    @contextmanager
    def _sending(self) -> Iterator[None]:
        """A write's statements in psycopg's pipeline: sent without waiting for each
        one's answer, their outcome read once at the end (the first error raised
        there, the transaction then failed whole): the row inserts and the ledger's
        append cost one round trip, not one each."""
        if not _pipeline_supported():  # (a libpq before 14: each statement waits, as it did)
            yield
            return
        with map_errors(str(self.path)), self._pgconn.raw.pipeline():
            yield

    def _changes(self) -> int:
        """The statements this thread's connection sent that may change rows (every
        one but a SELECT): coarser than SQLite's count of rows, so a call that sent
        one and failed fails its batch, as one that changed rows does (`Store._guarded`)."""
        return self._pgconn.writes

    def _transaction_broken(self) -> bool:
        """Also when a statement failed: PostgreSQL then aborts the whole transaction
        (only a savepoint could have kept it), and every statement after fails."""
        from psycopg.pq import TransactionStatus

        conn = self._pgconn
        return not conn.in_transaction or conn.raw.info.transaction_status == TransactionStatus.INERROR

    def _commit_tx(self, conn: Any) -> None:
        with map_errors(str(self.path)):
            conn.raw.execute("COMMIT")
        self._local.version = self._local.head  # the head this commit leaves (`_check_others`)

    def _rollback_tx(self, conn: Any, exc: BaseException, *, committing: bool = False) -> None:
        """As on SQLite, and a lost connection says what became of the write: nothing
        of it was kept, or (lost while committing) it may or may not be recorded."""
        with suppress(Exception):  # (the connection may be gone: then so is the transaction)
            if conn.in_transaction:
                conn.raw.execute("ROLLBACK")
        where = str(self.path)
        if not isinstance(exc, StoreUnavailableError):
            return
        if committing:
            raise StoreUnavailableError(
                f"the connection to {where} was lost while committing: the write may or may not "
                "be recorded; check with `lineage verify` and `lineage ls` before retrying") from None
        if "cannot be reached" in str(exc) and "nothing of" not in str(exc):
            raise StoreUnavailableError(
                str(exc).replace("; retry when", "; nothing of the interrupted write was kept: retry when")) from None

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Everything read inside sees one snapshot (REPEATABLE READ), whoever
        commits meanwhile; inside a write transaction it is that transaction."""
        conn = self._pgconn
        local = self._local
        if local.depth > 0 or conn.in_transaction:
            yield
            return
        with map_errors(str(self.path)):
            conn.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        local.depth = 1
        try:
            yield
        finally:
            local.depth = 0
            with suppress(Exception):
                if conn.in_transaction:
                    conn.raw.execute("ROLLBACK")

    def _data_version(self) -> None:
        """None: PostgreSQL has no number that changes only with other connections'
        commits (PRAGMA data_version is SQLite's), so outside a write transaction
        nothing remembered is trusted. Inside one, the head read with its BEGIN
        tells whether anybody else wrote since this connection's last commit
        (`_check_others`)."""
        return None

    # -- bulk writes through COPY ------------------------------------------------

    def write_bulk(self, type_: str, payload: Mapping[str, Any], table: str, rows: Iterable[Sequence[Any]], *,
                   chunk: int = 5000) -> int:
        """One event for many rows of one table, loaded through ``COPY``: see `bulk_load`."""
        if self.in_transaction:
            return self._write_bulk_direct(type_, payload, table, rows, chunk=chunk)
        return bulk_load(self, type_, payload, table, rows, chunk=max(int(chunk), 1000))

    def write_bulks(self, writes: Sequence[tuple[str, Mapping[str, Any], str, Iterable[Sequence[Any]]]]) -> list[int]:
        """Several `write_bulk` calls whose rows appear together or not at all: loaded
        in one transaction that takes the append lock only to append their events
        (`bulk_load_many`); inside the caller's transaction, straight into it."""
        if self.in_transaction:
            with self.transaction():
                return [self._write_bulk_direct(t, p, table, rows, chunk=5000) for t, p, table, rows in writes]
        return bulk_load_many(self, writes)

    # -- run liveness: session advisory locks, no lock files -----------------------

    def run_lock(self, run_id: str) -> Any:
        from .files import RUN_ID_PATTERN

        if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
            raise InvalidInputError(f"{run_id!r} is not a run id (run:<32 hex digits>)")
        return PgRunLock(self, run_id)

    def reap_dead_runs(self, *, noticed_by: str | None = None) -> list[str]:
        """As on SQLite; except that for a while after the server (re)started,
        runs may still be reconnecting to take their locks again: none is judged
        dead meanwhile."""
        if not self.running_runs():
            return []
        row = self.conn.execute("SELECT EXTRACT(EPOCH FROM (now() - pg_postmaster_start_time()))").fetchone()
        grace = float(os.environ.get("LINEAGE_PG_RESTART_GRACE", _RESTART_GRACE_SECONDS))
        if row is not None and float(row[0]) < grace:
            return []
        return super().reap_dead_runs(noticed_by=noticed_by)


# ---------------------------------------------------------------------------
# bulk load


_PG_TYPES = {0: 'TEXT COLLATE "C"', 1: "DOUBLE PRECISION", 2: "BIGINT"}
_COPY_TYPES = {0: "text", 1: "float8", 2: "int8"}
_staging = itertools.count()


#: a bulk write of up to this many rows (a prediction logger's flush) goes in one short
#: transaction with its event, its rows sent by COPY under the append lock, as any
#: write: a batch would cost it four more statements for a lock held a few ms anyway
SMALL_ROWS = 2_000

#: a bulk batch's rows are encoded (no COPY open) and held in memory up to this many,
#: then sent by one COPY
_COPY_ROWS = int(os.environ.get("LINEAGE_PG_COPY_ROWS", "100000"))

#: a bulk write of another table (imports' params, metrics) of up to this many rows
#: is held in memory, then copied straight into its table under the append lock; a
#: larger one is staged in a TEMP table first (those rows need their event number)
_DIRECT_ROWS = int(os.environ.get("LINEAGE_PG_DIRECT_ROWS", "200000"))


def _encoded_chunks(table: str, kinds: Sequence[int], rows: Iterator[Sequence[Any]],
                    size: int) -> Iterator[tuple[list[Sequence[Any]], bytes]]:
    """Chunks of ``rows`` encoded (`encode_batch`), in this thread: a thread ahead
    lost to inline encoding in the bulk benchmark (the GIL is taken back per row)."""
    while batch := list(itertools.islice(rows, size)):
        yield encode_batch(table, kinds, batch)


class _Batch:
    """A bulk batch loaded in this session's open transaction (`_load_batch`): what
    its event will commit to."""

    def __init__(self, table: str, batch: int) -> None:
        self.table, self.batch = table, batch
        self.rows = 0
        self.digest = hashlib.sha256().hexdigest()
        self.pks: tuple[int, int] | None = None


def bulk_load(store: Any, type_: str, payload: Mapping[str, Any], table: str, rows: Iterable[Sequence[Any]], *,
              chunk: int = 5000) -> int:
    """Many rows of ``table`` as one event; returns its number. See `bulk_load_many`."""
    return bulk_load_many(store, [(type_, payload, table, rows)], chunk=chunk)[0]


def bulk_load_many(store: Any, writes: Sequence[tuple[str, Mapping[str, Any], str, Iterable[Sequence[Any]]]], *,
                   chunk: int = 5000) -> list[int]:
    """Several bulk writes ``(type, payload, table, rows)`` whose rows appear together
    or not at all (predictions and their kept inputs); returns their events' numbers.

    Rows of `BATCHED_TABLES` (predictions, their kept inputs) are encoded and sent by
    binary ``COPY`` straight into their table (one COPY per `_COPY_ROWS` rows), in one
    transaction that holds **no** append lock: they are stored as a bulk batch (``event = -batch``, a
    ``bulk_batches`` row, as SQLite's batches in lineage/store/bulk.py) and nobody
    else sees them, since they are not committed. Only then does the transaction take
    the append lock, append the events and point each batch at its event: the lock is
    held for a few statements, whatever the number of rows, so other writers are not
    held up by a large load. A writer killed half-way leaves nothing: its transaction
    is rolled back by the server, batch row and rows alike.

    Writes of `SMALL_ROWS` rows or fewer each go in one short transaction with their
    events, as any write. Rows of another table (imports' params and metrics) are
    encoded with no lock held, then copied in under the lock (from memory, or from a
    TEMP table past `_DIRECT_ROWS`), since their rows carry their event number.
    """
    from .schema import BATCHED_TABLES

    peeked: list[tuple[str, Mapping[str, Any], str, Iterable[Sequence[Any]]]] = []
    for type_, payload, table, rows in writes:
        it = iter(rows)
        head = list(itertools.islice(it, SMALL_ROWS + 1))
        peeked.append((type_, payload, table, head if len(head) <= SMALL_ROWS else itertools.chain(head, it)))
    if all(isinstance(w[3], list) for w in peeked):
        # encoded first, with no lock held; then one short transaction, a COPY each
        encoded = []
        for type_, payload, table, rows in peeked:
            kinds = column_kinds(table, RECORD_TABLES[table])
            held, digests = encode_batch(table, kinds, list(rows)) if rows else ([], b"")
            encoded.append((type_, payload, table, [held], len(held), hashlib.sha256(digests).hexdigest()))
        with store.transaction():
            return [_publish(store, t, p, table, None, held, n, digest) for t, p, table, held, n, digest in encoded]
    if not all(w[2] in BATCHED_TABLES for w in peeked):
        with store.transaction():  # (not a pairing this package makes: one transaction, under the lock)
            if len(peeked) > 1:
                return [store._write_bulk_direct(t, p, table, rows, chunk=chunk) for t, p, table, rows in peeked]
        return [_bulk_load_other(store, *peeked[0], chunk=chunk)]
    conn: PgConnection = store._pgconn
    with gc_paused(), _whole_or_nothing(store, conn):
        conn.execute("BEGIN")  # the load: no append lock (`_begin_write` takes it later, in this transaction)
        loaded = [_load_batch(conn, table, rows, chunk) for _, _, table, rows in peeked]
        with _publishing(store), store.transaction():  # takes the append lock: a few statements, whatever the rows
            return [_publish_batch(store, type_, payload, done) for (type_, payload, _, _), done in zip(peeked, loaded)]


def _load_batch(conn: PgConnection, table: str, rows: Iterable[Sequence[Any]], chunk: int) -> _Batch:
    """Open a batch of ``table`` and COPY ``rows`` into it, in the open transaction
    (no lock taken); returns what its event will commit to.

    The span of the rows' pks (recorded in the event's payload, as for SQLite's
    batches) is bounded without reading the rows back: a value drawn from the pk's
    sequence before the first row, and the sequence's last value in this session after
    the last (a sequence only grows, whoever draws from it meanwhile)."""
    columns = RECORD_TABLES[table]
    kinds = column_kinds(table, columns)
    types = [*(_COPY_TYPES[k] for k in kinds), "int8"]
    row = conn.execute("INSERT INTO bulk_batches (tbl, started_at) VALUES (?, ?) RETURNING batch",
                       (table, now_iso())).fetchone()
    done = _Batch(table, int(row[0]))
    seq_name = f"pg_get_serial_sequence('{table}', 'pk')"
    lo = int(conn.execute(f"SELECT nextval({seq_name})").fetchone()[0])
    sql = f"COPY {table} ({', '.join(columns)}, event) FROM STDIN (FORMAT BINARY)"
    rows_hash = hashlib.sha256()
    tag = -done.batch
    held: list[list[Sequence[Any]]] = []
    n_held = 0

    def flush() -> None:
        # One COPY for many chunks: a COPY per chunk waited for the server to finish
        # each (half the time of the write). The rows' iterator is never advanced
        # while a COPY is open: it may read the store on this connection.
        conn.copy_rows(sql, ((*r, tag) for part in held for r in part), types)
        held.clear()

    for out, digests in _encoded_chunks(table, kinds, iter(rows), max(int(chunk), 1000)):
        rows_hash.update(digests)  # SHA-256 over the row digests in pk order, as the event commits to
        done.rows += len(out)
        held.append(out)
        n_held += len(out)
        if n_held >= _COPY_ROWS:
            flush()
            n_held = 0
    if held:
        flush()
    done.digest = rows_hash.hexdigest()
    if done.rows:
        done.pks = (lo, int(conn.execute(f"SELECT currval({seq_name})").fetchone()[0]))
    return done


def _publish_batch(store: Any, type_: str, payload: Mapping[str, Any], done: _Batch) -> int:
    """Under the append lock (the caller's transaction): the batch's event, and the
    batch pointed at it; returns the event's number."""
    seq, prev = store.head()
    seq += 1
    store.conn.execute("UPDATE bulk_batches SET event = ? WHERE batch = ?", (seq, done.batch))
    body: dict[str, Any] = {"at": now_iso(), "actor": store.actor, "table": done.table, "rows": done.rows, **payload}
    if done.pks is not None:
        body["pks"] = list(done.pks)
    return int(_ledger.append_event(store, seq, prev, type_, body, done.digest))


@contextmanager
def _whole_or_nothing(store: Any, conn: PgConnection) -> Iterator[None]:
    """A bulk write's guard: if it fails part-way, what it sent is rolled back (none
    of it was committed), and a lost connection's error says that nothing was kept."""
    try:
        yield
    except BaseException as exc:
        with suppress(Exception):
            if conn.in_transaction and store._local.depth == 0:
                conn.raw.execute("ROLLBACK")
        if isinstance(exc, StoreUnavailableError) and "nothing of" not in str(exc):
            raise StoreUnavailableError(
                str(exc).replace("; retry when", "; nothing of the interrupted write was kept: retry when")) from None
        raise


@contextmanager
def _publishing(store: Any) -> Iterator[None]:
    """Let a write transaction join this thread's open bulk-load transaction and take
    the append lock in it (`_begin_write` refuses that to any other write)."""
    store._local.bulk_publish = True
    try:
        yield
    finally:
        store._local.bulk_publish = False


def _bulk_load_other(store: Any, type_: str, payload: Mapping[str, Any], table: str, rows: Iterable[Sequence[Any]], *,
                     chunk: int = 5000) -> int:
    """A bulk write of a table outside `BATCHED_TABLES`: the rows are encoded first,
    with no lock held, however slowly they come; up to `_DIRECT_ROWS` rows are kept
    in memory and then sent by binary ``COPY`` into ``table`` in the one transaction
    that takes the append lock and appends their event; more are streamed by ``COPY``
    into a TEMP table of this session as they come (no lock, nobody else can see it),
    and then copied into ``table`` in that transaction. Either way the rows become
    visible all at once, with their event, and a writer killed half-way leaves
    nothing (a TEMP table ends with its session)."""
    columns = RECORD_TABLES[table]
    kinds = column_kinds(table, columns)
    types = [_COPY_TYPES[k] for k in kinds]
    conn: PgConnection = store._pgconn
    staged: str | None = None
    cols = ", ".join(f"c{i + 1}" for i in range(len(columns)))
    rows_hash = hashlib.sha256()
    n = 0
    held: list[list[Sequence[Any]]] = []
    try:
        with gc_paused(), _whole_or_nothing(store, conn):
            for out, digests in _encoded_chunks(table, kinds, iter(rows), max(int(chunk), 1000)):
                rows_hash.update(digests)
                n += len(out)
                held.append(out)
                if n > _DIRECT_ROWS:
                    if staged is None:
                        staged = _stage(conn, kinds)
                    for part in held:
                        conn.copy_rows(f"COPY pg_temp.{staged} ({cols}) FROM STDIN (FORMAT BINARY)", part, types)
                    held = []
            if staged is not None:
                conn.execute("COMMIT")  # (the staging transaction: the TEMP table's rows)
            return _publish(store, type_, payload, table, staged, held, n, rows_hash.hexdigest())
    finally:
        if staged is not None:
            with suppress(Exception):
                conn.execute(f"DROP TABLE IF EXISTS pg_temp.{staged}")


@contextmanager
def staged(store: Any, writes: Sequence[tuple[str, Mapping[str, Any], str, Iterable[Sequence[Any]]]],
           *, chunk: int = 5000) -> Iterator[Callable[[], list[int]]]:
    """PostgreSQL's `bulk.staged` (an import's bulk rows): each write's rows sent by
    ``COPY`` straight into its table as a bulk batch (``event = -batch``, as
    `bulk_load_many` does), in one transaction that takes no append lock; then
    ``publish``, called in the caller's write transaction (the same transaction,
    which takes the append lock only then, `_begin_write`), points each batch at its
    event: a few statements, however many the rows. The rows become visible with
    that commit. A writer killed half-way, or a caller that gives up before
    publishing, leaves nothing: the transaction rolls back."""
    if store.in_transaction:
        raise LineageError("staged bulk writes need to start outside a transaction")
    conn: PgConnection = store._pgconn
    with _whole_or_nothing(store, conn):
        conn.execute("BEGIN")  # the load: no append lock
        loaded = []
        for type_, payload, table, rows in writes:
            states = list(rows) if table == "run_states" else None  # (open runs are tracked at publish)
            loaded.append((type_, payload, states, _load_batch(conn, table, rows if states is None else states, chunk)))

        def publish() -> list[int]:
            if not store.in_transaction:
                raise LineageError("publish the staged bulk writes inside a write transaction")
            out = []
            for type_, payload, states, done in loaded:
                if states is not None:
                    store._track_open_runs(states)
                out.append(_publish_batch(store, type_, payload, done))
            return out

        with _publishing(store):
            yield publish
        if conn.in_transaction and store._local.depth == 0:
            conn.raw.execute("ROLLBACK")  # never published: the batches go with the transaction


def _stage(conn: PgConnection, kinds: Sequence[int]) -> str:
    """A new TEMP table for staged rows (columns c1…), in an open transaction; its name."""
    staged = f"lineage_staged_{os.getpid()}_{next(_staging)}"
    defs = ", ".join(f"c{i + 1} {_PG_TYPES[k]}" for i, k in enumerate(kinds))
    # (a TEMP table is private to this session and not WAL-logged; a sequential
    # scan of it returns rows in the order they were written: nobody else reads it)
    conn.execute(f"CREATE TEMP TABLE {staged} ({defs})")
    conn.execute("BEGIN")
    return staged


def _publish(store: Any, type_: str, payload: Mapping[str, Any], table: str, staged: str | None,
             held: list[list[Sequence[Any]]], n: int, rows_digest: str) -> int:
    """Under the append lock: the rows into ``table`` (from the staging table, or
    ``held`` in memory by COPY) and their event, in one transaction."""
    columns = RECORD_TABLES[table]
    kinds = column_kinds(table, columns)
    cols = ", ".join(f"c{i + 1}" for i in range(len(columns)))
    conn: PgConnection = store._pgconn
    with store.transaction():
        seq, prev = store.head()
        seq += 1
        if staged is not None:
            conn.execute(f"INSERT INTO {table} ({', '.join(columns)}, event) "
                         f"SELECT {cols}, {int(seq)} FROM pg_temp.{staged}")
        else:
            sql = f"COPY {table} ({', '.join(columns)}, event) FROM STDIN (FORMAT BINARY)"
            conn.copy_rows(sql, ((*r, seq) for part in held for r in part), [*(_COPY_TYPES[k] for k in kinds), "int8"])
        if table == "run_states":
            states = conn.execute(f"SELECT {cols} FROM pg_temp.{staged}").fetchall() if staged else \
                [r for part in held for r in part]
            store._track_open_runs(states)
        body = {"at": now_iso(), "actor": store.actor, "table": table, "rows": n, **payload}
        return int(_ledger.append_event(store, seq, prev, type_, body, rows_digest))


# ---------------------------------------------------------------------------
# run liveness


class _LockSession:
    """The session that holds the liveness locks of one process's runs on one store
    (a server's schema): a single connection, not one per run. Connecting cost
    3-5 ms of every run's start here, half of an empty run (issue 16), and a sweep
    of parallel runs opened as many sessions and keeper threads as it had runs.

    A session advisory lock is re-entrant within its session, so the keys held
    here are also kept in `keys`, and a key already in it is refused: two runs of
    one process can no more hold one lock than two processes can. A keeper thread,
    alive while a key is held, checks the connection every two seconds; after a
    lost connection (a server restart) it connects again and takes every key
    again, retrying those another session took meanwhile. The lock is held only
    around each step, never while waiting, so runs start and end meanwhile.
    """

    def __init__(self, store: Any) -> None:
        self.conninfo = store._conninfo
        self.app = f"lineage-run:{store.schema}"[:63]
        self.lock = threading.Lock()
        self.conn: Any = None
        self.keys: set[int] = set()
        #: keys held before a lost connection and not yet taken again
        self.missing: set[int] = set()
        self.keeper: threading.Thread | None = None

    def _connect(self) -> Any:
        import psycopg

        conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10, application_name=self.app)
        conn.execute("SET tcp_keepalives_idle = 20")
        conn.execute("SET tcp_keepalives_interval = 5")
        return conn

    def take(self, key: int) -> bool:
        """Take ``key``'s lock; False when a session (this one included) holds it.
        Raises psycopg.Error when the server cannot be reached."""
        with self.lock:
            if key in self.keys:
                return False
            if self.conn is None or self.conn.closed or self.conn.broken:
                self._reconnect()
            if not _try_lock(self.conn, key):
                return False
            self.keys.add(key)
            if self.keeper is None or not self.keeper.is_alive():
                self.keeper = threading.Thread(target=self._keep, name="lineage-runlocks", daemon=True)
                self.keeper.start()
            return True

    def give_back(self, key: int) -> None:
        with self.lock:
            if key not in self.keys:
                return
            self.keys.discard(key)
            if key in self.missing:
                self.missing.discard(key)
                return
            with suppress(Exception):  # (a lost session has freed it already)
                self.conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_LOCK_CLASS, key))

    def _reconnect(self) -> None:
        """A fresh connection, holding again every key held (under ``lock``)."""
        old, self.conn = self.conn, None
        if old is not None:
            with suppress(Exception):
                old.close()
        self.conn = self._connect()
        self.missing = set(self.keys)
        self._retake()

    def _retake(self) -> None:
        for key in list(self.missing):
            with suppress(Exception):
                if _try_lock(self.conn, key):
                    self.missing.discard(key)

    def _keep(self) -> None:
        import psycopg

        while True:
            time.sleep(2.0)
            with self.lock:
                if not self.keys:
                    self.keeper = None
                    return  # (the next run's lock starts another)
                conn = self.conn
            try:  # (psycopg serializes the threads that share a connection)
                conn.execute("SELECT 1")
            except (psycopg.Error, AttributeError):  # lost (a server restart; no connection): again, outside the lock
                try:
                    fresh = self._connect()
                except psycopg.Error:
                    time.sleep(random.uniform(0.5, 1.5))  # the server is still away: again soon
                    continue
                with self.lock:
                    old, self.conn = self.conn, fresh
                    with suppress(Exception):
                        old.close()
                    self.missing = set(self.keys)
            if self.missing:
                with self.lock:
                    self._retake()


#: this process's lock sessions, by (connection string, schema); a forked child finds
#: none of its parent's (keyed by process id too) and never touches them
_SESSIONS: dict[tuple[str, str, int], _LockSession] = {}
_SESSIONS_LOCK = threading.Lock()


def _lock_session(store: Any) -> _LockSession:
    key = (store._conninfo, store.schema, os.getpid())
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            session = _SESSIONS[key] = _LockSession(store)
        return session


def _try_lock(conn: Any, key: int) -> bool:
    return bool(conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (_LOCK_CLASS, key)).fetchone()[0])


def _detach_lock_sessions() -> None:
    """In a forked child: its copies of the parent's lock sessions pointed at
    /dev/null, so nothing the child does (or its exit) ends the parent's sessions."""
    for session in list(_SESSIONS.values()):
        _detach(session.conn)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_detach_lock_sessions)


class PgRunLock:
    """A run's liveness lock: a session advisory lock keyed by the run id, held on
    this process's lock session for the store (`_LockSession`) while the run lives
    here. The server frees it when that session ends, however the process ends
    (SIGKILL, a lost machine: TCP keepalives notice within a minute); after a server
    restart the session takes it again (reapers wait `_RESTART_GRACE_SECONDS` after
    one)."""

    def __init__(self, store: Any, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.path = f"{store.path} (advisory lock of {run_id})"
        self.key = _key(f"{store.schema}/{run_id}")
        self._session: _LockSession | None = None
        self._pid = os.getpid()

    def try_acquire(self) -> bool:
        """True when the lock is now held here; False when its run is alive elsewhere."""
        import psycopg

        try:
            held = self.store.conn.execute(
                "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = ? AND objid = ? "
                "AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                (_LOCK_CLASS, self.key)).fetchone()
            if held:
                return False
            session = _lock_session(self.store)
            if not session.take(self.key):
                return False
        except psycopg.Error as exc:
            mapped = _translate(exc, str(self.store.path))
            if mapped is None:
                raise
            raise mapped from None
        self._session = session
        self._pid = os.getpid()
        return True

    def release(self, *, remove: bool = False) -> None:
        session, self._session = self._session, None
        if session is None or self._pid != os.getpid():
            return  # (in a forked child: the parent's lock, left alone)
        session.give_back(self.key)


__all__ = ["SCHEMES", "PgConnection", "PgRunLock", "PgUrl", "PostgresStore", "bulk_load", "is_url", "staged", "translate"]
