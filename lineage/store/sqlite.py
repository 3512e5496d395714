"""What is SQLite's: connections and pragmas, the busy wait, and backend errors
translated into lineage's error tree (in one place: `_translate`)."""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from ..errors import (
    DiskFullError,
    LineageError,
    StoreBusyError,
    StoreCorruptError,
    WriteRefusedError,
)

if TYPE_CHECKING:
    from .core import Store


# ---------------------------------------------------------------------------
# backend errors, translated in one place

#: how long a write waits for another writer's lock before StoreBusyError. Bulk writes
#: hold the lock for short chunks only, so a wait this long means a stuck writer.
BUSY_SECONDS = 30.0


#: what SQLite says when one statement of ours goes past one of its compile-time limits
#: (a plain SQLITE_ERROR, as a typo in our SQL would be): a bug of lineage's queries,
#: which the CLI's catch-all for SQLite errors reported as if the store were damaged
#: ("see `lineage verify`": `lineage status` on a store of 500 superseded versions)
_QUERY_LIMITS = ("too many terms in compound select", "too many sql variables", "expression tree is too large",
                 "too many columns", "too many from clause terms", "parser stack overflow",
                 "too many arguments on function")


def _translate(exc: sqlite3.Error, path: Path | str) -> LineageError | None:
    """The lineage error a backend error means, or None to let it through as it is
    (a constraint failure is a bug of ours, not a user's situation)."""
    msg = str(exc).lower()
    code = getattr(exc, "sqlite_errorcode", None)
    if any(limit in msg for limit in _QUERY_LIMITS):
        return LineageError(f"a query of lineage's went past a limit of SQLite ({exc}): a bug in lineage, "
                            f"not damage to the store {path}; please report it")
    if "locked" in msg or "busy" in msg or code in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED
        return busy_error(path)
    if "full" in msg or code == 13:  # SQLITE_FULL
        return DiskFullError(f"the disk holding {path} is full: nothing of this write was kept; free some space and retry")
    if "readonly" in msg or "read-only" in msg or code == 8:  # SQLITE_READONLY
        return WriteRefusedError(f"the lineage store {path} is read-only here: it can be read, not written")
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in msg or "malformed" in msg or code in (11, 26)):
        return StoreCorruptError(f"{path} is not a readable lineage store ({exc})")
    return None


def busy_error(path: Path | str) -> StoreBusyError:
    """The StoreBusyError of a write that waited `BUSY_SECONDS` for the lock of the store at ``path``."""
    return StoreBusyError(f"the lineage store {path} is busy: another process held its write lock for more than "
                          f"{BUSY_SECONDS:.0f} s; try again")


def begin_immediate(conn: sqlite3.Connection, path: Path | str) -> None:
    """``BEGIN IMMEDIATE``, waiting up to `BUSY_SECONDS` for other processes' writes.

    SQLite's own busy handler sleeps longer and longer between tries (up to 100 ms),
    so under steady writing a waiter kept missing the moments the lock was free and
    timed out while others wrote (starvation). Here a waiter retries every 0.5-3 ms,
    with jitter, which takes the lock within a few milliseconds of its release.

    For that the connection's own busy wait is switched off (``busy_timeout = 0``),
    and left off through the transaction and after it: a statement of the write
    transaction never waits for a lock (it holds the write lock, and WAL readers
    never block it), and the connection's next statement outside a transaction
    switches the wait back on first (`_Connection.execute`, for reads). So a run of
    write transactions, one per logged value, pays for neither switch (issue 16:
    two ``PRAGMA`` statements of the seven or eight a logged value cost).
    """
    if not getattr(conn, "lineage_short_wait", False):
        _EXECUTE(conn, "PRAGMA busy_timeout = 0")
        conn.lineage_short_wait = True  # type: ignore[attr-defined]
    deadline = None  # (set at the first busy answer: most writes never meet one)
    while True:
        try:
            _EXECUTE(conn, "BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if _translate(exc, path).__class__ is not StoreBusyError:
                raise
            if deadline is None:
                deadline = time.monotonic() + BUSY_SECONDS
            elif time.monotonic() > deadline:
                raise busy_error(path) from None
        time.sleep(random.uniform(0.0005, 0.003))


def _wait_long(conn: sqlite3.Connection) -> None:
    """Switch the connection's own busy wait back on (`begin_immediate` left it off)."""
    sqlite3.Connection.execute(conn, f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
    conn.lineage_short_wait = False  # type: ignore[attr-defined]


class map_errors:  # (lower case: used as a function, ``with map_errors(path):``)
    """Backend errors raised inside become lineage errors (httpx's ``map_exceptions``):
    a busy store is a StoreBusyError, a full disk a DiskFullError, never a raw
    ``sqlite3`` exception reaching the user.

    (A class, not a generator context manager: every write transaction enters one,
    and a generator's set-up cost a logged param about 1 µs; issue 16.)"""

    __slots__ = ("path",)

    def __init__(self, path: Path | str) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> Literal[False]:
        if isinstance(exc, sqlite3.Error):
            raise_translated(exc, self.path)
        return False


def raise_translated(exc: sqlite3.Error, path: Path | str) -> NoReturn:
    """Raise the lineage error ``exc`` means (`_translate`), or ``exc`` itself."""
    mapped = _translate(exc, path)
    if mapped is None:
        raise exc
    raise mapped from exc


# sqlite3's own statements, called by `_Connection`'s as plain functions: ``super()``
# built a proxy object on each of the four or five statements of every logged value
_EXECUTE = sqlite3.Connection.execute
_EXECUTEMANY = sqlite3.Connection.executemany


class _Connection(sqlite3.Connection):
    """An sqlite3 connection whose statements raise lineage errors for what a user can
    meet (busy, full, read-only, damaged), so the query layer's reads are covered too.

    (The same translation as `map_errors`, written as try/except: a statement is the
    hottest call of the package, and a generator context manager per statement costs.)
    """

    #: the busy wait is off (`begin_immediate`): switched back on before a statement
    #: outside a transaction, which may be a read that has to wait
    lineage_short_wait = False

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if self.lineage_short_wait and not self.in_transaction:
            _wait_long(self)
        try:
            return _EXECUTE(self, sql, parameters)
        except sqlite3.Error as exc:
            mapped = _translate(exc, self._lineage_path())
            if mapped is None:
                raise
            raise mapped from exc

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        if self.lineage_short_wait and not self.in_transaction:
            _wait_long(self)
        try:
            return _EXECUTEMANY(self, sql, parameters)
        except sqlite3.Error as exc:
            mapped = _translate(exc, self._lineage_path())
            if mapped is None:
                raise
            raise mapped from exc

    def _lineage_path(self) -> str:
        return str(getattr(self, "lineage_path", "the store"))


def connect(store: Store) -> sqlite3.Connection:
    """A configured connection; a store whose directory cannot be written (no
    ``-shm`` can be made next to it) opens read-only, immutable as a last resort."""
    conn = sqlite3.connect(str(store.path), isolation_level=None, timeout=BUSY_SECONDS,
                           check_same_thread=False, factory=_Connection)
    conn.lineage_path = str(store.path)  # type: ignore[attr-defined]
    try:
        configure(conn)
        return conn
    except (sqlite3.OperationalError, WriteRefusedError, StoreCorruptError):
        conn.close()
        if store._create or os.access(store.dir, os.W_OK):
            raise
    # a read-only directory: SQLite cannot create the WAL index; read what is there
    store.read_only = True
    uri = store.path.as_uri()
    for mode in ("?mode=ro", "?immutable=1"):
        try:
            conn = sqlite3.connect(uri + mode, uri=True, isolation_level=None, timeout=BUSY_SECONDS,
                                   check_same_thread=False, factory=_Connection)
            conn.lineage_path = str(store.path)  # type: ignore[attr-defined]
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
            return conn
        except (sqlite3.OperationalError, LineageError):
            continue
    raise StoreCorruptError(f"{store.path}: cannot open the store for reading (its directory is read-only)")


#: WAL pages past which a writer's commit checkpoints by itself (see `configure`)
WAL_AUTOCHECKPOINT_PAGES = 10_000


def configure(c: sqlite3.Connection) -> None:
    c.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
    # a file system that cannot hold WAL (read-only) keeps its journal mode: work anyway
    c.execute("PRAGMA journal_mode = WAL")
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
    # Savepoints (every call inside `lg.batch()`) journal the pages they change; past
    # 64 KiB SQLite moved that journal to a file in /var/tmp for the rest of the
    # transaction, so each call of a batched pipeline wrote its pages twice, through
    # about 400 pwrite calls per group of the MLMD benchmark (issue 16). In memory
    # it holds one savepoint's pages at most. (Also where SQLite puts sorts and
    # TEMP tables: the queries are index-driven; `erasure.scrub` switches it back
    # to a file around its VACUUM, which copies the whole database.)
    c.execute("PRAGMA temp_store = MEMORY")
    # The WAL is copied back by the checkpointer thread every 64 commits; this
    # connection's own autocheckpoint is the safety net, at 10,000 pages (40 MiB)
    # instead of SQLite's 1,000. A commit of many writes (a pipeline group inside
    # `lg.batch()` is ~110 pages) took the WAL past 1,000 pages every ~9 commits
    # and copied it back itself: 6-10 ms and two fsyncs inside the caller's write,
    # for pages that the next copy wrote again (issue 16: the MLMD benchmark's
    # commits cost 0.43-0.49 s per 400 groups, now 0.24-0.27 s). The file is removed
    # when the store's last connection closes.
    c.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")


# ---------------------------------------------------------------------------
# checkpoints in the background (issue 16)

#: this process's commits to one store between two background checkpoints: with a
#: few WAL pages per commit, well under SQLite's own threshold (1,000 pages), so
#: the writer's autocheckpoint rarely fires (it stays, as the safety net)
CHECKPOINT_EVERY = 64

#: WAL pages past which the checkpointer, having copied back all but the last few
#: commits, has the next commit copy those few itself, so that the WAL starts again
#: from its first page (SQLite's own checkpoint size)
RESTART_PAGES = 1_000
#: frames left behind by a checkpoint few enough for a commit to copy
RESTART_TAIL = 100

#: a checkpointer thread with nothing to do for this long ends (a store left open
#: but unused keeps no thread); the next commits start another
CHECKPOINT_IDLE_SECONDS = 30.0


class ForkGate:
    """What a fork waits for: the SQLite calls of lineage's own background threads
    (the checkpointer, a prediction logger's writer, autolog's prediction writer).

    SQLite's Unix layer keeps process-wide mutexes (the one guarding its table of
    open files and their locks above all). A fork copies only the forking thread
    but every mutex as it is: one taken while another thread was inside SQLite gave
    a child whose first SQLite call waited forever (seen in CI, about one fork in
    twelve onto a busy checkpointer; gunicorn's preload forks workers the same way).
    Background threads pass through the gate around their SQLite work, many at a
    time; a fork (`os.register_at_fork`) closes it and waits until none is inside,
    so no child starts inside a SQLite call. The wait is a checkpoint or one bulk
    write: milliseconds, unless that write waits for the store's lock.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._inside = 0
        self._forking = False

    @contextmanager
    def passage(self) -> Iterator[None]:
        """Around one stretch of a background thread's SQLite calls."""
        with self._cond:
            while self._forking:
                self._cond.wait()
            self._inside += 1
        try:
            yield
        finally:
            with self._cond:
                self._inside -= 1
                if not self._inside:
                    self._cond.notify_all()

    def before_fork(self) -> None:
        with self._cond:
            self._forking = True
            while self._inside:
                self._cond.wait()

    def after_fork_in_parent(self) -> None:
        with self._cond:
            self._forking = False
            self._cond.notify_all()

    def after_fork_in_child(self) -> None:
        # the child has none of the parent's threads; its copy of the condition's lock
        # may be held (taken by a thread that does not exist here)
        self._cond = threading.Condition(threading.Lock())
        self._inside = 0
        self._forking = False


#: the one gate of this process (see `ForkGate`)
fork_gate = ForkGate()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=fork_gate.before_fork, after_in_parent=fork_gate.after_fork_in_parent,
                        after_in_child=fork_gate.after_fork_in_child)


class Checkpointer:
    """Copies a store's WAL back into its database file from a thread of its own,
    so that no write waits for it.

    SQLite checkpoints inside the COMMIT that takes the WAL past 1,000 pages, and
    with ``synchronous = NORMAL`` a checkpoint syncs the WAL and then the database
    file: two fsyncs, a few milliseconds, charged to one unlucky write. Per commit
    that was ~20-25 µs of a logged param's ~110 (wall time above CPU time, which
    vanished with the checkpoints). Here the same PASSIVE checkpoint runs on its
    own connection in a daemon thread, woken every `CHECKPOINT_EVERY` commits of
    this process; SQLite's autocheckpoint stays on every connection as the net.

    Nothing about durability changes: a commit is synced (``full``) or not
    (``normal``) exactly as before; the same checkpoints happen, from another
    thread. A PASSIVE checkpoint never waits for readers or writers, and one that
    finds another checkpoint running gives way (the next wake retries).

    SQLite starts the WAL again from its first page only at a write that finds it
    all copied back. A writer that never pauses always left a few commits behind a
    checkpoint running beside it, so the WAL grew to the net's 10,000 pages (40
    MiB) within 2,000 logged params, each commit writing pages the file never had
    until one copied it all back itself (issue 16: a logged param took 0.24 ms on
    a VM where a page new to the file cost ~10 µs, 0.07 ms once the WAL started
    again). So once
    the WAL is past `RESTART_PAGES`, the thread copies until the commits made
    during its last copy are few (`RESTART_TAIL` frames), and the next commit of
    this process copies those itself, holding the write lock it already has: a
    pause of about a millisecond (those frames and two syncs) every few hundred
    commits, where the net's own copy took 3-15 ms.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._commits = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False
        #: > 0 while a bulk write loads (`bulk._loading`): its chunks commit like one
        #: transaction, and a checkpoint between them cost a fifth of the write
        self.paused = 0
        #: how many times a commit woke the thread (tests read it)
        self.woken = 0
        #: set by the thread: the WAL is long and all but its last frames are copied
        self.tail_due = False

    def committed(self, conn: sqlite3.Connection) -> None:
        """Count one commit of this process (called right after it, on the writer's
        connection ``conn``, its write lock still held)."""
        self._commits += 1
        if self.tail_due:
            self.tail_due = False
            # (busy: the thread is copying; its next wake sees to the tail. Not the
            # connection's own `execute`, which turns a full disk into a lineage
            # error: the write has committed, whatever becomes of this copy)
            with suppress(sqlite3.Error):
                _EXECUTE(conn, "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if self._commits >= CHECKPOINT_EVERY:
            self.wake()  # (which does nothing while paused)

    def wake(self) -> None:
        """Checkpoint now, on the thread (started if need be): after a commit that
        left many pages in the WAL (a bulk write's publish), and after every
        `CHECKPOINT_EVERY` commits. Does nothing while paused (a bulk write loading:
        its own publish wakes it after)."""
        if self.paused:
            return
        self._commits = 0
        self.woken += 1
        with self._lock:
            if self._closed:
                return
            thread = self._thread
            # (a forked child has no thread, whatever the parent's object says)
            if thread is None or self._pid != os.getpid() or not thread.is_alive():
                self._pid = os.getpid()
                self._wake = threading.Event()
                thread = self._thread = threading.Thread(target=self._run, args=(self._wake,),
                                                         name="lineage-checkpoint", daemon=True)
                thread.start()
            self._wake.set()

    def pause(self) -> None:
        """No wake-ups until `resume` (a bulk write's loading commits; nested calls count)."""
        with self._lock:
            self.paused += 1

    def resume(self) -> None:
        with self._lock:
            self.paused -= 1

    def _run(self, wake: threading.Event) -> None:
        # every SQLite call of this thread passes the fork gate: no fork copies one midway
        try:
            with fork_gate.passage():
                conn = sqlite3.connect(self.path, isolation_level=None, timeout=0, check_same_thread=False)
        except sqlite3.Error:
            return  # (the store is gone or unreadable: its writers' own checkpoints remain)
        try:
            while wake.wait(CHECKPOINT_IDLE_SECONDS) and not self._closed:
                wake.clear()
                # (busy with another checkpoint, or the disk: the next wake retries)
                with fork_gate.passage(), suppress(sqlite3.Error):
                    self._checkpoint(conn)
        finally:
            with fork_gate.passage():
                conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """Copy the WAL back; past `RESTART_PAGES`, all but a tail (see the class)."""

        def copy() -> int:
            """Copy back the frames the WAL has as it starts; how many those are."""
            return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])

        frames = copy()
        if frames < RESTART_PAGES:
            return
        for _ in range(3):  # (each copy shorter than the last while commits are slower than copies)
            last, frames = frames, copy()
            if frames - last <= RESTART_TAIL:
                self.tail_due = True
                return

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running); idempotent."""
        with self._lock:
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
            self._wake.set()
        if thread is not None:
            thread.join(timeout=BUSY_SECONDS)


def chunked(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    """Lists of up to ``size`` consecutive ``items``, in order."""
    for i in range(0, len(items), size):
        yield list(items[i : i + size])
