"""The store's files beside the database: artifacts, run locks, the stat cache and
the ``.gitignore`` of a ``.lineage/`` folder."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import queue
import re
import sqlite3
import threading
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import (
    DiskFullError,
    InvalidInputError,
    LineageError,
)
from ..model import clean_text as _clean_text
from .schema import STORE_DIR

if TYPE_CHECKING:
    from .core import Store


def ignore_in_git(folder: Path) -> None:
    """Give a ``.lineage/`` folder a ``.gitignore`` of ``*``: a store inside a work tree
    must not make the code it records look changed (untracked files)."""
    if folder.name != STORE_DIR:
        return
    marker = folder / ".gitignore"
    if not marker.exists():
        with contextlib.suppress(OSError):  # a read-only folder: the store still works
            marker.write_text("# lineage's store: kept out of git (it records the code, it is not code)\n*\n")


#: a run's id as lineage makes them: a run lock is named after it, so nothing else may be
RUN_ID_PATTERN = re.compile(r"run:[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def stat_get(store: Store, key: Any) -> tuple[str, int | None] | None:
    """The cached ``(digest, lines)`` of a file whose size, mtime and inode match, or
    None. An entry not shaped as lineage writes them (a digest that is not 64 hex
    digits, a line count that is not a number) is garbage: ignored, so the file
    is read again."""
    row = store.conn.execute("SELECT size, mtime_ns, inode, digest, lines FROM stat_cache WHERE path = ?", (_clean_text(key.path),)).fetchone()
    if row and (row[0], row[1], row[2]) == (key.size, key.mtime_ns, key.inode):
        digest, lines = row[3], row[4]
        if isinstance(digest, str) and _HEX64.fullmatch(digest) and (lines is None or type(lines) is int):
            return digest, lines
    return None


def stat_put(store: Store, key: Any, digest: str, lines: int | None) -> None:
    # Not a recorded fact: written outside the ledger, and outside any open batch's
    # ledger event (it rides along in the same transaction when there is one).
    sql = (
        "INSERT INTO stat_cache (path, size, mtime_ns, inode, digest, lines) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
        "inode = excluded.inode, digest = excluded.digest, lines = excluded.lines"
    )
    with store.transaction():
        # (a path that is not UTF-8 is kept escaped; size, mtime and inode still
        # have to match, so two names escaping alike cannot share an entry wrongly)
        store.conn.execute(sql, (_clean_text(key.path), key.size, key.mtime_ns, key.inode, digest, lines))


def put_artifact(store: Store, digest: str, data: bytes | None = None, *, source: str | os.PathLike[str] | None = None,
                 later: bool = False) -> Path:
    """Keep bytes (or a file's content) under ``artifacts/ab/<digest>``; returns the path.

    Written to a temporary name, synced and renamed, so a crash never leaves half
    a file under a digest's name; a failed write (a full disk) removes its
    temporary file and raises DiskFullError, or InvalidInputError for another
    OS error, naming the file.

    With ``later`` the write (of ``data``; a ``source`` is copied now, so later
    changes to it cannot slip in), the sync and the rename are left to this
    process's artifact worker: the call returns at once, and the calling thread's
    next commit waits for them first (`wait_artifacts`, which raises their
    DiskFullError then, failing that commit whole). Reading the path in this
    process (`artifact_path`) waits for them too.
    """
    if data is None and source is None:
        raise InvalidInputError("put_artifact needs data or a source file")
    target = store.artifacts_dir / digest[:2] / digest
    state = _state
    while True:
        with state.lock:
            job = state.pending.get(target)
        if job is None:
            break
        if later:  # the same bytes are on their way already: this commit waits for them too
            _waits_of(store).append(job)
            return target
        job.done.wait()
        if job.error is None:
            return target
        # (its write failed: try again here, and fail on our own account)
    if target.exists():
        return target
    job = _Pending(target, data, _durable())
    if data is None:
        job.out = _copy_to(job, source, store)  # type: ignore[arg-type]
    if not later:
        _finish(job)
        _raise_for(store, job)
        return target
    with state.lock:
        state.pending[target] = job
        if state.worker is None or not state.worker.is_alive():
            state.worker = threading.Thread(target=_work, args=(state,), name="lineage-artifacts", daemon=True)
            state.worker.start()
    _waits_of(store).append(job)
    state.queue.put(job)
    return target


def artifact_path(store: Store, digest: str) -> Path:
    path = store.artifacts_dir / digest[:2] / digest
    job = _state.pending.get(path)
    if job is not None:  # put with ``later`` and not on disk yet: the bytes are coming
        job.done.wait()
    return path


# ---------------------------------------------------------------------------
# artifacts synced off the caller's path (issue 16)
#
# The fsync of a model's pickle was a quarter of `log_model` (0.4-0.6 ms), on the
# caller's thread. `put_artifact(later=True)` hands the write, the fsync and the
# rename to one worker thread per process and returns; fsync and write release the
# GIL, so they overlap the caller's own work (describing the model, the ledger
# write). The rules that make this sound:
# - the file gets its digest's name only once its bytes are synced (the rename comes
#   last, as before): a crash leaves at most a temporary file, never a partial one
#   under the name, and `put_artifact`'s "the name exists, so the bytes are there"
#   short cut stays true;
# - a thread's commit waits first for every artifact that thread put since its
#   previous commit (`wait_artifacts`, called by Store right before COMMIT, on both
#   backends): no ledger entry can be committed before the bytes it points at are
#   synced and named, and a failed write fails that commit, which rolls back whole;
# - a write that a rolled-back transaction put is still waited for at the thread's
#   next commit (its failure, a full disk, fails that commit too: conservative,
#   never an entry without its bytes);
# - so between a ``later`` put made outside a transaction and the commit that
#   records it, the thread must run no transaction of its own that swallows its
#   errors (a best-effort cache write): that commit would take the failure and
#   drop it. `Run.log_model` and `log_artifact` run none there; PostgreSQL's
#   put_artifact, which writes the blob in such a transaction, defers only inside
#   an open one;
# - in this process, reading an artifact's path waits for its write (`artifact_path`);
# - with ``LINEAGE_DURABILITY=full`` the folder is synced after the rename as well,
#   so the name itself survives a power cut before the commit does;
# - a forked child starts with no worker and no pending writes of its own
#   (`_reset_in_child`): it never waits for the parent's worker, which it has not.

#: the call that makes a file's bytes durable (``os.fsync``). A documented hook: a
#: test may replace it with one raising ``OSError(errno.ENOSPC, ...)`` to simulate a
#: full disk, which no real disk here can be made to do on demand.
sync_file: Callable[[int], None] = os.fsync


class _Pending:
    """One artifact on its way to its name: written (or copied) to ``tmp``, then
    synced and renamed to ``target`` by `_finish`; ``done`` is set when it has been,
    with ``error`` the OSError that stopped it, or None."""

    __slots__ = ("data", "done", "error", "full", "out", "target", "tmp")

    def __init__(self, target: Path, data: bytes | None, full: bool) -> None:
        self.target = target
        self.tmp = target.with_name(f".{target.name}.{os.getpid()}.{next(_tmp_numbers)}.tmp")
        self.data = data
        self.full = full
        self.out: BinaryIO | None = None
        self.done = threading.Event()
        self.error: OSError | None = None


class _State:
    """This process's artifact worker: its queue, its thread, and the writes under way."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[Path, _Pending] = {}
        self.queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self.worker: threading.Thread | None = None
        self.waits = threading.local()  # per thread: {id(store): [_Pending, ...]} to wait at its commit


_state = _State()
_tmp_numbers = itertools.count()


def _reset_in_child() -> None:
    global _state
    _state = _State()  # (the parent's lock may have been held at the fork: a new one)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


def _durable() -> bool:
    """True under ``LINEAGE_DURABILITY=full`` (as `sqlite.configure` reads it)."""
    return os.environ.get("LINEAGE_DURABILITY", "normal").lower() == "full"


def _waits_of(store: Store) -> list[_Pending]:
    waits: dict[int, list[_Pending]] | None = getattr(_state.waits, "by_store", None)
    if waits is None:
        waits = _state.waits.by_store = {}
    return waits.setdefault(id(store), [])


def _open_tmp(tmp: Path) -> BinaryIO:
    try:
        return open(tmp, "wb")
    except FileNotFoundError:  # the first artifact under this two-digit prefix
        tmp.parent.mkdir(parents=True, exist_ok=True)
        return open(tmp, "wb")


def _copy_to(job: _Pending, source: str | os.PathLike[str], store: Store) -> BinaryIO:
    """``source`` copied into the job's temporary file, left open (unsynced) for
    `_finish`. Raises as `put_artifact` does."""
    import shutil

    try:
        out = _open_tmp(job.tmp)
    except OSError as exc:
        raise _write_error(store, job.target.name, job.target, exc) from None
    try:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
    except OSError as exc:
        out.close()
        with suppress(OSError):
            job.tmp.unlink()
        raise _write_error(store, job.target.name, job.target, exc) from None
    return out


def _finish(job: _Pending) -> None:
    """Write (when not copied already), sync and rename one artifact; an OSError is
    kept in ``job.error`` and the temporary file removed."""
    try:
        out = job.out if job.out is not None else _open_tmp(job.tmp)
        with out:
            if job.data is not None:
                out.write(job.data)
            out.flush()
            sync_file(out.fileno())  # a full disk can surface only here (or at close)
        os.replace(job.tmp, job.target)
        if job.full:
            fd = os.open(job.target.parent, os.O_RDONLY)
            try:
                sync_file(fd)
            finally:
                os.close(fd)
    except OSError as exc:
        with suppress(OSError):
            job.tmp.unlink()
        job.error = exc
    finally:
        job.data = None
        job.out = None


def _work(state: _State) -> None:
    while True:
        job = state.queue.get()
        try:
            _finish(job)
        finally:
            with state.lock:
                if state.pending.get(job.target) is job:
                    del state.pending[job.target]
            job.done.set()  # (after leaving `pending`: a waiter that sees it failed writes anew)


def wait_artifacts(store: Store) -> None:
    """Wait until every artifact this thread put with ``later`` (on ``store``) since
    its last call is synced under its name. Called by the store right before each
    COMMIT. Raises DiskFullError (or InvalidInputError for another OS error) for
    one whose write failed: the caller's commit must then roll back."""
    waits: dict[int, list[_Pending]] | None = getattr(_state.waits, "by_store", None)
    if not waits:
        return
    jobs = waits.pop(id(store), None)
    for job in jobs or ():
        job.done.wait()
        if job.error is not None and not job.target.exists():  # (another write of the same bytes may have made it)
            _raise_for(store, job)


def _raise_for(store: Store, job: _Pending) -> None:
    if job.error is not None:
        raise _write_error(store, job.target.name, job.target, job.error)


def _write_error(store: Store, digest: str, target: Path, exc: OSError) -> LineageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"the disk holding {store.artifacts_dir} is full: the artifact {digest[:12]}… "
                             "was not kept (nothing partial left); free some space and retry")
    return InvalidInputError(f"cannot write the artifact {target}: {exc.strerror or exc}")


def run_lock(store: Store, run_id: str) -> RunLock:
    """The lock file of a run: only ever ``locks/<32 hex>.lock`` inside the store."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise InvalidInputError(f"{run_id!r} is not a run id (run:<32 hex digits>)")
    return RunLock(store.locks_dir / (run_id.split(":", 1)[1] + ".lock"))


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
                try:
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                except FileNotFoundError:  # the first run of a store: no locks/ folder yet
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
