"""The store's files beside the database: artifacts, run locks, the stat cache and
the ``.gitignore`` of a ``.lineage/`` folder."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import sqlite3
import struct
import threading
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def project_root(store: Store) -> Path:
    """The project's root: the folder holding ``.lineage/``, or the database's own
    folder for a store elsewhere (``--db x.db``)."""
    return store.dir.parent if store.dir.name == STORE_DIR else store.dir


def project_path(store: Store, path: str | os.PathLike[str]) -> str:
    """``path`` relative to the project root (``/`` separators) when inside it, else
    absolute: the name `add` and `run` record for a file, and the form a path given as
    a reference is looked up by (`Store.resolve`)."""
    resolved = Path(path).expanduser().resolve()
    try:
        return resolved.relative_to(project_root(store)).as_posix()
    except ValueError:
        return resolved.as_posix()


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


#: artifacts given as bytes up to this size are kept in the database too, by the
#: transaction that records them, and their file is not synced (`Store.put_artifact`);
#: a file of this size or less already under its name is compared byte for byte
#: before it is trusted (`holds`). Past it, the bytes' own write outweighs a sync's
#: fixed ~0.2 ms, and a second copy costs more room than it saves time.
INLINE_ARTIFACT_BYTES = 64 * 1024

#: the call that makes an artifact's bytes durable before it gets its digest's name
#: (``os.fsync``). A documented hook: a test may replace it with one raising
#: ``OSError(errno.ENOSPC, ...)`` to meet a full disk, which no disk here can be made
#: to do on demand.
sync_file: Callable[[int], None] = os.fsync


def put_artifact(store: Store, digest: str, data: bytes | None = None, *, source: str | os.PathLike[str] | None = None,
                 synced: bool = True) -> Path:
    """Keep bytes (or a file's content) under ``artifacts/ab/<digest>``; returns the path.

    Written to a temporary name, synced and renamed, so a crash never leaves half
    a file under a digest's name; a failed write (a full disk) removes its
    temporary file and raises DiskFullError, or InvalidInputError for another
    OS error, naming the file. ``synced=False`` skips the sync, for bytes the
    caller keeps durable elsewhere (the database's copy: `Store.put_artifact`): a
    process that dies still leaves no half file, a power cut may.

    Bytes already under their name are not written again, unless the file there
    holds other bytes (`holds`: a small file not synced, which a power cut can
    leave short or unwritten; a file of another size).
    """
    if data is None and source is None:
        raise InvalidInputError("put_artifact needs data or a source file")
    target = artifact_path(store, digest)
    if holds(target, data):
        return target
    tmp = target.with_name(f".{digest}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        try:
            out = open(tmp, "wb")  # noqa: SIM115 (closed by the with below)
        except FileNotFoundError:  # the first artifact under this two-digit prefix
            # (made only then: a mkdir per artifact was a system call per log_model, issue 16)
            target.parent.mkdir(parents=True, exist_ok=True)
            out = open(tmp, "wb")  # noqa: SIM115
        with out:
            if data is not None:
                out.write(data)
            else:
                import shutil

                with open(source, "rb") as src:  # type: ignore[arg-type]
                    shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            if synced:
                sync_file(out.fileno())  # a full disk can surface only here (or at close)
        os.replace(tmp, target)
    except OSError as exc:
        with suppress(OSError):
            tmp.unlink()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(f"the disk holding {store.artifacts_dir} is full: the artifact {digest[:12]}… "
                                "was not kept (nothing partial left); free some space and retry") from None
        raise InvalidInputError(f"cannot write the artifact {target}: {exc.strerror or exc}") from None
    return target


def artifact_path(store: Store, digest: str) -> Path:
    return store.artifacts_dir / digest[:2] / digest


def size_of(path: Path) -> int | None:
    """The size of the file at ``path``, or None when there is none."""
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def kept_inline(data: bytes | None) -> bool:
    """Whether ``data`` is small enough to be kept in the database too
    (`INLINE_ARTIFACT_BYTES`; `Store.put_artifact`)."""
    return data is not None and len(data) <= INLINE_ARTIFACT_BYTES


def holds(path: Path, data: bytes | None = None) -> bool:
    """Whether a file is at ``path`` holding ``data``, when given: compared byte for
    byte up to `INLINE_ARTIFACT_BYTES`, by size past it (a synced file was whole
    before its rename; reading it all again would cost its whole size)."""
    if data is None:
        return os.path.isfile(path)
    if not kept_inline(data):
        return size_of(path) == len(data)
    try:
        with open(path, "rb") as f:
            return f.read(len(data) + 1) == data
    except OSError:
        return False


def run_lock(store: Store, run_id: str) -> RunLock | ByteLock:
    """The lock of a run: a byte of ``locks/runs.lock`` where the kernel has
    open-file-description locks (Linux), else the file ``locks/<32 hex>.lock``
    (only ever inside the store)."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise InvalidInputError(f"{run_id!r} is not a run id (run:<32 hex digits>)")
    hex_id = run_id.split(":", 1)[1]
    if _OFD_LOCKS:
        return ByteLock(store.locks_dir / RUN_LOCKS_FILE, int(hashlib.sha256(hex_id.encode()).hexdigest()[:15], 16))
    return RunLock(store.locks_dir / (hex_id + ".lock"))


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


#: the file whose bytes are the runs' locks (`ByteLock`)
RUN_LOCKS_FILE = "runs.lock"


def _open_lock_file(path: Path) -> int | None:
    """A read-write descriptor of the lock file ``path`` (made, and ``locks/`` with
    it, on first use), or None where it cannot be opened for writing (a read-only
    store: we cannot judge whether its runs live, so we do not)."""
    try:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # the first lock of a store: no locks/ folder yet
            path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return None


#: what a non-blocking lock attempt raises when another holder has the lock
_HELD_ELSEWHERE = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)

#: open-file-description locks (Linux 3.15+): owned by one ``open``, like ``flock``,
#: so two opens in one process conflict and a fork shares its parent's
_OFD_LOCKS = hasattr(fcntl, "F_OFD_SETLK")


class ByteLock:
    """An exclusive lock on one byte of a shared lock file, held while its process
    lives: the same contract as `RunLock`, without a file per run.

    A run's lock used to be a file of its own, created, ``flock``ed and unlinked
    again at the run's end: two directory updates of the store's file system per run,
    ~25 µs of CPU and, measured by sampling, about 7% of the wall time of a batched
    pipeline (issue 16). Here every run locks its own byte (at an offset drawn from
    its id: 60 bits, so two runs meeting on one byte is a 2^-60 chance) of one file
    that is never unlinked, with an open-file-description lock (``F_OFD_SETLK``).
    Like ``flock`` and unlike POSIX record locks, it belongs to the ``open`` that
    took it: two opens conflict inside one process too (a reaper never takes its
    own process's live run for dead), closing another descriptor of the file does
    not drop it, and the kernel drops it when the holder's process dies.
    """

    def __init__(self, path: Path, offset: int) -> None:
        self.path = path
        self.offset = offset
        self._fd: int | None = None
        self._pid = os.getpid()

    def _set(self, fd: int, kind: int) -> None:
        # struct flock: type, whence, start, length, pid (0 for OFD locks)
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", kind, os.SEEK_SET, self.offset, 1, 0))

    def try_acquire(self) -> bool:
        fd = _open_lock_file(self.path)
        if fd is None:
            return False
        try:
            self._set(fd, fcntl.F_WRLCK)
        except OSError as exc:
            os.close(fd)
            if exc.errno in _HELD_ELSEWHERE:
                return False
            raise
        self._fd = fd
        self._pid = os.getpid()
        return True

    def release(self, *, remove: bool = False) -> None:
        """Unlock (``remove`` is `RunLock`'s: the shared file is never unlinked)."""
        if self._fd is None:
            return
        if self._pid == os.getpid():
            # (a forked child shares the parent's open file description, and so its
            # lock: unlocking there would unlock the parent's live run. Just let go.)
            self._set(self._fd, fcntl.F_UNLCK)
        os.close(self._fd)
        self._fd = None


class RunLock:
    """An exclusive ``flock`` on a file of its own, held while its process lives: a
    bulk batch's, and a run's where the kernel has no `ByteLock`.

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
            fd = _open_lock_file(self.path)
            if fd is None:
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in _HELD_ELSEWHERE:
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
