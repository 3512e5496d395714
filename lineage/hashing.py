"""SHA-256 digests of everything lineage content-addresses: files, directory trees,
arrays, DataFrames, rows of prediction inputs and serialized models.

Every digest is a lowercase hex string. The formats are written down here so that a
user (or an auditor) can recompute a digest without lineage:

- a file: ``sha256sum FILE``;
- a directory: the ``sha256sum`` of a ``sha256sum``-format manifest, see `hash_tree`;
- an array: SHA-256 of ``f"{dtype.str}|{shape}|"`` followed by its C-order bytes;
- a scipy.sparse matrix: its canonical CSR form's data, indices and row pointers, see `hash_sparse`.

Importing this module is cheap on purpose: numpy is imported only when an array is
hashed, pandas never by us (a DataFrame that reaches us means pandas is loaded already),
and progress reporting is a plain callback so this layer never imports rich.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import pickle
import stat as stat_mod
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from lineage.errors import InvalidInputError, foreign
from lineage.model import canonical_json

if TYPE_CHECKING:  # for annotations only: never imported at run time by this module
    import numpy as np
    import pandas as pd

__all__ = [
    "CHANGE_RETRIES",
    "CHUNK_SIZE",
    "EMPTY_TREE_DIGEST",
    "QUOTED_SUFFIXES",
    "SPARSE_DENSE_WIDTH",
    "TEXT_SUFFIXES",
    "DigestCache",
    "FileDigest",
    "ProgressCallback",
    "StatKey",
    "canonical_csr",
    "dense_row_blocks",
    "describe_file",
    "hash_array",
    "hash_bytes",
    "hash_data",
    "hash_file",
    "hash_frame",
    "hash_model",
    "hash_sparse",
    "hash_text",
    "hash_tree",
    "is_sparse",
    "row_digests",
    "stat_key",
]

#: read size for streamed hashing. 1 MiB amortises the per-call overhead of
#: ``readinto`` and ``update`` to nothing while staying far below any memory concern.
CHUNK_SIZE = 1 << 20

#: how many times a file that changes while it is read is read again before it is
#: refused: a log file being appended to never settles, a file saved once does
CHANGE_RETRIES = 3

#: the digest of an empty directory: not that of empty input (``e3b0c442…``), which
#: is the digest of an empty *file*; an empty folder and an empty file are different
#: datasets. (Every non-empty tree's digest is its manifest's, as ``sha256sum`` gives.)
EMPTY_TREE_DIGEST = hashlib.sha256(b"lineage:empty-directory\0").hexdigest()

#: suffixes whose line count is worth knowing (``rows`` of a CSV); counting newlines
#: costs a memchr pass per chunk, so binary formats do not pay for it by default.
TEXT_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".jsonl", ".ndjson"})

#: suffixes whose records may hold quoted newlines (RFC 4180): a newline there breaks
#: a line only outside double quotes. Not ``.tsv``: tab-separated files as most tools
#: write them do not quote, and one stray ``"`` in a field would then hide every
#: line after it.
QUOTED_SUFFIXES = frozenset({".csv"})


class FileDigest(NamedTuple):
    """What hashing a file yields: hex ``digest``, ``size`` in bytes and, when counted,
    the number of line breaks in ``lines`` (``None`` when not counted): ``\\n`` bytes,
    for a `QUOTED_SUFFIXES` file only those outside double-quoted fields."""

    digest: str
    size: int
    lines: int | None


class StatKey(NamedTuple):
    """The key of the file-digest cache: when none of these changed, the content is
    trusted to be unchanged (the same bet ``make`` and ``git status`` make)."""

    path: str  # absolute, symlinks resolved
    size: int
    mtime_ns: int
    inode: int


class DigestCache(Protocol):
    """The interface `hash_file` and `hash_tree` need from a digest cache (the store's
    stat cache implements it). A cache is a speed-up, not evidence."""

    def get(self, key: StatKey) -> tuple[str, int | None] | None:
        """``(digest, lines)`` stored under ``key``, or ``None``."""
        ...

    def put(self, key: StatKey, digest: str, lines: int | None) -> None:
        """Remember ``digest`` and ``lines`` for ``key``."""
        ...


#: ``progress(bytes_done, total)``, called once per chunk read
ProgressCallback = Callable[[int, int], None]


# ---------------------------------------------------------------------------
# bytes and text


def hash_bytes(b: bytes | bytearray | memoryview) -> str:
    """Return the SHA-256 hex digest of ``b``."""
    return hashlib.sha256(b).hexdigest()


def hash_text(s: str) -> str:
    """Return the SHA-256 hex digest of ``s`` encoded as UTF-8."""
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------
# files


def stat_key(path: str | os.PathLike[str]) -> StatKey:
    """Return the cache key of the file at ``path`` (symlinks followed).

    Raises InvalidInputError when the file does not exist or cannot be stat'ed.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _file_error(path, exc) from None
    return _key_from_stat(os.path.realpath(path), st)


def _key_from_stat(resolved: str, st: os.stat_result) -> StatKey:
    return StatKey(resolved, st.st_size, st.st_mtime_ns, st.st_ino)


def _file_error(path: str | os.PathLike[str], exc: OSError) -> InvalidInputError:
    # One line, naming the path and what to do; never the OSError's traceback.
    shown = os.fspath(path)
    if isinstance(exc, FileNotFoundError):
        return InvalidInputError(f"no such file: {shown}")
    if isinstance(exc, PermissionError):
        return InvalidInputError(f"cannot read {shown}: permission denied")
    if isinstance(exc, IsADirectoryError):
        return InvalidInputError(f"{shown} is a directory, not a file (hash it as a tree)")
    reason = exc.strerror or exc.__class__.__name__
    return InvalidInputError(f"cannot read {shown}: {reason}")


def _wants_lines(path: str | os.PathLike[str]) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in TEXT_SUFFIXES


def _quoted(path: str | os.PathLike[str]) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in QUOTED_SUFFIXES


def hash_file(
    path: str | os.PathLike[str],
    *,
    cache: DigestCache | None = None,
    progress: ProgressCallback | None = None,
    count_lines: bool | None = None,
) -> FileDigest:
    """Hash the file at ``path`` in constant memory.

    Returns a `FileDigest` whose ``digest`` equals ``sha256sum path``. ``lines`` is the
    number of line breaks when ``count_lines`` is true (default: true for
    `TEXT_SUFFIXES`), else ``None``: newline bytes, in a `QUOTED_SUFFIXES` file those
    after an even number of ``"`` bytes (RFC 4180: a quoted field may hold newlines,
    and an escaped quote ``""`` keeps the parity). With a ``cache`` that knows the file's `StatKey`,
    nothing is read: the cost is one ``stat``. ``progress(done, total)`` is called once
    per chunk (once with ``(size, size)`` on a cache hit, so a progress bar completes).

    A file that changes while it is read (its size, mtime, ctime or inode differ
    before and after) is read again, up to `CHANGE_RETRIES` times, so the digest is
    always of one version of the file, never a mix.

    Raises InvalidInputError (one line, naming the path) when the file is missing,
    a directory, unreadable, a special file (FIFO, device, socket: refused at once,
    without opening it, as reading one may never end), or still changing after
    `CHANGE_RETRIES` reads.
    """
    want_lines = _wants_lines(path) if count_lines is None else bool(count_lines)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _file_error(path, exc) from None
    if stat_mod.S_ISDIR(st.st_mode):
        raise _file_error(path, IsADirectoryError())
    if not stat_mod.S_ISREG(st.st_mode):
        raise _special_file_error(path, st.st_mode)
    key = None
    if cache is not None:
        key = _key_from_stat(os.path.realpath(path), st)
    return _hash_file_keyed(path, key, st.st_size, cache, progress, want_lines, 0, st.st_size)


def _hash_file_keyed(
    path: str | os.PathLike[str],
    key: StatKey | None,
    size: int,
    cache: DigestCache | None,
    progress: ProgressCallback | None,
    want_lines: bool,
    done_before: int,
    total: int,
) -> FileDigest:
    """The body of `hash_file`, shared with `hash_tree` (which already holds the stat
    and reports progress over the whole tree: ``done_before`` of ``total``)."""
    if key is not None and cache is not None:
        hit = cache.get(key)
        # A hit without a line count cannot answer a request for one: read again.
        if hit is not None and (hit[1] is not None or not want_lines):
            if progress is not None:
                progress(done_before + size, total)
            return FileDigest(hit[0], size, hit[1] if want_lines else None)

    for _attempt in range(CHANGE_RETRIES):
        result, before, after = _read_once(path, progress, want_lines, size, done_before, total)
        if not _same_version(before, after) or result.size != after.st_size:
            continue  # written to while we read: the digest mixes two versions
        if _racy(after):
            # Changed within the file system's timestamp granularity of our read: a
            # write may have left size and mtime as they were. Read again and trust
            # the digest only if both reads agree (git's "racy clean" problem).
            again, before2, after2 = _read_once(path, None, want_lines, size, done_before, total)
            if again.digest != result.digest or not _same_version(before, before2) or not _same_version(after, after2):
                continue
        if key is not None and cache is not None and _key_from_stat(key.path, after) == key:
            # Cached only under the stat key it was read with: a file replaced between
            # our stat and our open has another inode, so another key.
            cache.put(key, result.digest, result.lines)
        return result
    raise InvalidInputError(
        f"{os.fspath(path)} changed while it was being hashed ({CHANGE_RETRIES} attempts); "
        "hash it again once nothing is writing to it"
    )


def _special_file_error(path: str | os.PathLike[str], mode: int) -> InvalidInputError:
    if stat_mod.S_ISFIFO(mode):
        kind = "a FIFO (named pipe)"
    elif stat_mod.S_ISCHR(mode):
        kind = "a character device"
    elif stat_mod.S_ISBLK(mode):
        kind = "a block device"
    elif stat_mod.S_ISSOCK(mode):
        kind = "a socket"
    else:
        kind = "a special file"
    return InvalidInputError(
        f"{os.fspath(path)} is {kind}, not a regular file: lineage hashes files and directories "
        "(write the data to a file first)"
    )


def _same_version(a: os.stat_result, b: os.stat_result) -> bool:
    """True when two stats of one open file show no write in between."""
    return (a.st_size, a.st_mtime_ns, a.st_ctime_ns, a.st_ino, a.st_dev) == (
        b.st_size, b.st_mtime_ns, b.st_ctime_ns, b.st_ino, b.st_dev)


def _racy(st: os.stat_result) -> bool:
    """True when ``st``'s file changed so recently that a write in the same clock tick
    would not show in its mtime: within 20 ms for file systems with sub-second
    timestamps (the kernel's coarse clock ticks every 1-10 ms), 2 s for whole seconds."""
    window = 2_000_000_000 if st.st_mtime_ns % 1_000_000_000 == 0 else 20_000_000
    now = time.time_ns()
    return now - st.st_mtime_ns < window or now - st.st_ctime_ns < window


def _read_once(
    path: str | os.PathLike[str],
    progress: ProgressCallback | None,
    want_lines: bool,
    size: int,
    done_before: int,
    total: int,
) -> tuple[FileDigest, os.stat_result, os.stat_result]:
    """Read the file once: ``(digest, fstat before the first read, fstat after the
    last)``. Refuses a special file found at the path (swapped in after a stat)."""
    h = hashlib.sha256()
    lines = 0
    done = 0
    # One reusable buffer and readinto: no allocation per chunk, constant memory.
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    big = want_lines and size >= _THREADED_COUNT_MIN
    quoted = _quoted(path)
    fast_count = _numpy_newline_counter(quoted) if big else None
    counter = _LineCounter(_bytes_newline_counter(quoted)) if big and fast_count is None and _CPUS > 1 else None
    count = fast_count or (_bytes_newline_counter(quoted) if want_lines else None)
    try:
        # O_NONBLOCK: should a FIFO have been swapped in since the stat, opening it
        # must not wait for a writer (it has no effect on a regular file).
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with open(fd, "rb", buffering=0) as f:
            before = os.fstat(fd)
            if not stat_mod.S_ISREG(before.st_mode):
                raise _special_file_error(path, before.st_mode)
            # Read what the file held when opened, no more: a file appended to as
            # fast as we read would otherwise keep us reading forever. Growth shows
            # in the size after, and the file is read again.
            remaining = before.st_size
            while remaining > 0:
                n = f.readinto(view[: min(CHUNK_SIZE, remaining)])
                if not n:
                    break
                remaining -= n
                if counter is not None:
                    # bytearray slicing copies, but a short read happens once, at the end
                    counter.submit(buf if n == CHUNK_SIZE else buf[:n])
                    h.update(view[:n])  # releases the GIL: the count runs meanwhile
                    counter.wait()
                else:
                    h.update(view[:n])
                    if count is not None:
                        lines += count(buf, n)
                done += n
                if progress is not None:
                    progress(done_before + done, total)
            if counter is not None:
                lines = counter.lines
            after = os.fstat(fd)
    except OSError as exc:
        raise _file_error(path, exc) from None
    finally:
        if counter is not None:
            counter.close()
    return FileDigest(h.hexdigest(), done, lines if want_lines else None), before, after


#: below this size the helper thread (or importing numpy) costs more than it saves
_THREADED_COUNT_MIN = 8 * CHUNK_SIZE


def _numpy_newline_counter(quoted: bool = False) -> Callable[[bytearray, int], int] | None:
    """A function counting the line breaks in the first ``n`` bytes of a buffer with
    numpy, chunk after chunk of one file, or None when numpy is not installed.
    ``quoted``: only newlines outside double quotes count (see `_bytes_newline_counter`).

    numpy's vectorised compare counts at ~14 GB/s, five times ``bytes.count``, so
    counting inline costs a large CSV about a tenth of SHA-256's time on one core. The
    helper thread's overlap needs a second idle core: on a busy machine it cost a
    third of the throughput (0.62x hashlib measured, against 0.87x inline).
    """
    try:
        import numpy as np  # a dependency; imported only for files this large
    except ImportError:
        return None

    def count(buf: bytearray, n: int) -> int:
        return int(np.count_nonzero(np.frombuffer(buf, np.uint8, n) == 10))

    if not quoted:
        return count
    # A newline breaks a line when the quotes before it are even: a prefix XOR over
    # the quote mask. Bit-parallel, 64 bytes to a word: the masks packed to one bit a
    # byte, each word's prefix XOR by six shift-XORs, words after an odd word flipped.
    # (Quote positions and searchsorted cost twice as much on a CSV quoted throughout:
    # 0.27x hashlib against 0.6x.)
    shifts = [np.uint64(s) for s in (1, 2, 4, 8, 16, 32)]
    top = np.uint64(63)
    popcount = getattr(np, "bitwise_count", None)  # numpy >= 2.0
    odd = 0  # the parity of the quotes so far: 1 inside a quoted field

    def bits(mask: np.ndarray) -> np.ndarray:
        packed = np.packbits(mask, bitorder="little")
        if packed.size % 8:  # a short last chunk: pad to whole words (no quote, no newline)
            packed = np.concatenate((packed, np.zeros(-packed.size % 8, np.uint8)))
        return packed.view("<u8")  # bit k of a word is byte k of its 64

    def count_quoted(buf: bytearray, n: int) -> int:
        nonlocal odd
        # memchr finds a chunk without quotes (most chunks of most CSVs) at memory
        # speed, and then the plain count holds
        if buf.find(b'"', 0, n) < 0:
            return 0 if odd else count(buf, n)
        a = np.frombuffer(buf, np.uint8, n)
        parity = bits(a == 34)
        for shift in shifts:
            parity ^= parity << shift
        # each word's top bit is now its own parity; carry the ones before it
        own = (parity >> top).astype(np.uint8)
        carry = (np.cumsum(own, dtype=np.uint8) - own + odd) & 1  # uint8 wraps: parity stays
        parity ^= np.negative(carry.astype(np.uint64))  # all ones where the carry is odd
        odd = int(carry[-1] ^ own[-1])
        breaks = bits(a == 10) & ~parity
        if popcount is not None:
            return int(popcount(breaks).sum())
        return int(np.count_nonzero(np.unpackbits(breaks.view(np.uint8))))

    return count_quoted


def _bytes_newline_counter(quoted: bool) -> Callable[[bytearray, int], int]:
    """A function counting the line breaks in the first ``n`` bytes of a buffer with
    bytes methods only (no numpy), chunk after chunk of one file.

    ``quoted``: a newline breaks a line only after an even number of ``"`` bytes in
    the file (RFC 4180 quoting; ``""`` inside a quoted field keeps the parity), so
    the parity is carried from chunk to chunk. Splitting a chunk at its quotes puts
    the text outside quotes at every other piece; join and count run in C, so a chunk
    costs no Python loop over its bytes or its quotes.
    """
    if not quoted:
        return lambda buf, n: buf.count(b"\n", 0, n)
    odd = 0

    def count_quoted(buf: bytearray, n: int) -> int:
        nonlocal odd
        if buf.find(b'"', 0, n) < 0:
            return 0 if odd else buf.count(b"\n", 0, n)
        parts = (buf if n == len(buf) else buf[:n]).split(b'"')
        # piece i follows i quotes of this chunk: outside quotes when odd + i is even
        outside = b"".join(parts[odd::2]).count(b"\n")
        odd ^= (len(parts) - 1) & 1
        return outside

    return count_quoted


_CPUS = os.cpu_count() or 1


class _LineCounter:
    """Counts newlines of each chunk in a helper thread while the caller hashes it.

    Why: ``bytearray.count`` runs at ~3 GB/s, SHA-256 at ~1.7 GB/s, so counting inline
    costs a CSV a third of its hashing throughput. ``sha256.update`` releases the GIL
    on large buffers, so the count (which holds the GIL) overlaps it for free on a
    second core. The roles matter: the thread that releases the GIL (hashing) must be
    the caller, or the hasher would wait for the counter to give the GIL back.
    """

    def __init__(self, count: Callable[[bytearray, int], int]) -> None:
        import queue  # only files big enough to be worth a thread pay for this

        self._count = count  # one file's chunks, in order: it may carry state
        self.lines = 0
        self._todo: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="lineage-line-count", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            chunk = self._todo.get()
            if chunk is None:
                return
            self.lines += self._count(chunk, len(chunk))
            self._done.put(None)

    def submit(self, chunk: bytearray) -> None:
        """Start counting ``chunk``; it must not change until `wait` returns."""
        self._todo.put(chunk)

    def wait(self) -> None:
        """Block until the submitted chunk is counted."""
        self._done.get()

    def close(self) -> None:
        """Stop the thread (after any chunk in flight)."""
        self._todo.put(None)
        self._thread.join()


# ---------------------------------------------------------------------------
# directory trees


def hash_tree(
    path: str | os.PathLike[str],
    *,
    cache: DigestCache | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[str, list[tuple[str, str, int]]]:
    """Hash every regular file under the directory ``path``.

    Returns ``(digest, manifest)``. ``manifest`` is a list of ``(relative posix path,
    file digest, size)`` sorted by the path's bytes (``LC_ALL=C sort`` order). ``digest``
    is the SHA-256 of the lines ``f"{file digest}  {relpath}\\n"``, i.e. of
    ``sha256sum``'s own output, so it can be reproduced (for a tree without symlinks,
    and file names without backslashes or newlines, which ``sha256sum`` escapes) with::

        cd DIR && find . -name .git -prune -o -type f -printf '%P\\0' \\
          | LC_ALL=C sort -z | xargs -0r sha256sum | sha256sum

    An empty directory (no file included) has its own digest, `EMPTY_TREE_DIGEST`,
    not the digest of empty input (``e3b0c442…``, which ``sha256sum`` gives and which
    is an empty *file*'s digest): an empty folder and an empty file are different data.

    What is included: regular files, and symlinks to regular files whose target lies
    inside the tree (hashed as the target's content). Skipped: entries named ``.git``
    (a repository's metadata, directory or worktree file), symlinks to directories,
    symlinks leading outside the tree, dangling symlinks, and special files.

    Raises InvalidInputError when ``path`` is not a directory or a directory or file
    inside it cannot be read (silently skipping it would record a digest that lies).
    """
    root = os.fspath(path)
    if not os.path.isdir(root):
        if os.path.exists(root):
            raise InvalidInputError(f"{root} is not a directory")
        raise InvalidInputError(f"no such directory: {root}")
    real_root = os.path.realpath(root)
    entries = _walk_tree(root, real_root)
    # Sort by bytes, so the order matches `LC_ALL=C sort` even for undecodable names.
    entries.sort(key=lambda e: os.fsencode(e[0]))
    total = sum(e[3].st_size for e in entries)

    h = hashlib.sha256()
    manifest: list[tuple[str, str, int]] = []
    done = 0
    for rel, abs_path, resolved, st in entries:
        key = _key_from_stat(resolved, st) if cache is not None else None
        fd = _hash_file_keyed(abs_path, key, st.st_size, cache, progress, False, done, total)
        done += st.st_size
        manifest.append((rel, fd.digest, fd.size))
        h.update(fd.digest.encode("ascii") + b"  " + os.fsencode(rel) + b"\n")
    if not manifest:
        return EMPTY_TREE_DIGEST, manifest
    return h.hexdigest(), manifest


def _walk_tree(root: str, real_root: str) -> list[tuple[str, str, str, os.stat_result]]:
    """``(relpath, path, resolved path, stat)`` of every file `hash_tree` includes."""
    out: list[tuple[str, str, str, os.stat_result]] = []
    prefix = real_root.rstrip(os.sep) + os.sep
    stack: list[tuple[str, str]] = [(root, "")]  # (directory path, its relpath prefix)
    while stack:
        directory, rel_dir = stack.pop()
        try:
            with os.scandir(directory) as it:
                items = list(it)
        except OSError as exc:
            raise InvalidInputError(f"cannot list {directory}: {exc.strerror or exc}") from None
        for entry in items:
            if entry.name == ".git":
                continue  # a repository's metadata (or a submodule's gitlink), not data
            rel = f"{rel_dir}{entry.name}"
            try:
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    # Follow nothing outside the tree, and never a directory link
                    # (which could also loop back into the tree).
                    if not target.startswith(prefix):
                        continue
                    st = os.stat(target)
                    if stat_mod.S_ISREG(st.st_mode):
                        out.append((rel, entry.path, target, st))
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    # A real (non-link) file under the resolved root: its resolved path
                    # is known without another realpath() per file.
                    st = entry.stat(follow_symlinks=False)
                    resolved = os.path.join(real_root, *rel.split("/"))
                    out.append((rel, entry.path, resolved, st))
            except FileNotFoundError:
                continue  # a dangling link, or a file deleted while we walked
            except OSError as exc:
                raise InvalidInputError(f"cannot read {entry.path}: {exc.strerror or exc}") from None
    return out


# ---------------------------------------------------------------------------
# in-memory data


def is_ndarray(obj: Any) -> bool:
    # By class name and module, so the test itself never imports numpy; subclasses
    # (np.memmap, np.matrix) count too.
    return any(c.__name__ == "ndarray" and c.__module__ == "numpy" for c in type(obj).__mro__)


def is_pandas(obj: Any, name: str) -> bool:
    # `type(x).__module__.startswith("pandas")` along the MRO: true for pandas'
    # own classes and for subclasses (geopandas), without importing pandas.
    return any(c.__name__ == name and c.__module__.startswith("pandas") for c in type(obj).__mro__)


def is_sparse(obj: Any) -> bool:
    """A scipy.sparse matrix or array (csr, csc, coo, …), told without importing scipy."""
    return type(obj).__module__.startswith("scipy.sparse") and hasattr(obj, "tocsr") and hasattr(obj, "nnz")


def canonical_csr(mat: Any, failure: str) -> Any:
    """A copy of a scipy.sparse matrix in canonical CSR form: duplicates summed, column
    indices sorted, stored zeros dropped, so equal matrices have equal parts whatever
    their format. ``failure`` begins the one-line error when scipy refuses it."""
    with foreign(f"{failure}: {{reason}}"):
        csr = mat.tocsr(copy=True)
        csr.sum_duplicates()  # (sorts the indices too)
        csr.eliminate_zeros()
    return csr


def dense_row_blocks(csr: Any) -> Iterator[Any]:
    """The rows of a 2-D CSR matrix as dense arrays, in order, `_DENSE_CHUNK` values at
    a time: a narrow sparse input read as the dense rows it stands for, in bounded memory."""
    n, width = (int(d) for d in csr.shape)
    step = max(1, _DENSE_CHUNK // max(width, 1))
    for start in range(0, n, step):
        yield csr[start:start + step].toarray()


def hash_sparse(mat: Any) -> str:
    """Return the SHA-256 hex digest of a scipy.sparse matrix, by value.

    Covers ``f"scipy.sparse|csr|{dtype.str}|{shape}|"`` then, each length-prefixed, the
    data, column indices (int64) and row pointers (int64) of its canonical CSR form:
    duplicates summed, indices sorted, stored zeros dropped — so equal matrices give
    equal digests whatever their format (csr, csc, coo), index width or entry order,
    and the caller's matrix is not changed (the canonical form is a copy).
    """
    import numpy as np

    csr = canonical_csr(mat, f"cannot hash a {type(mat).__qualname__} as a dataset")
    h = hashlib.sha256(b"scipy.sparse|csr|" + _array_header(csr.dtype, tuple(csr.shape)))
    for part in (csr.data, csr.indices.astype(np.int64, copy=False), csr.indptr.astype(np.int64, copy=False)):
        _update_framed(h, _byte_view(np.asarray(part)))
    return h.hexdigest()


def _array_header(dtype: Any, shape: tuple[int, ...]) -> bytes:
    # dtype.str ('<f8', '|b1', '<U5') carries kind, size and byte order. A structured
    # dtype's str is only '|V16', which two different record layouts can share, so
    # those are described by their full field list instead.
    kind = str(dtype.descr) if dtype.fields is not None else dtype.str
    return f"{kind}|{tuple(int(d) for d in shape)}|".encode()


def hash_array(arr: np.ndarray) -> str:
    """Return the SHA-256 hex digest of a numpy array.

    The digest covers ``f"{arr.dtype.str}|{arr.shape}|"`` followed by the array's
    C-order bytes (no copy when the array is already C-contiguous), so equal values
    of a different dtype, byte order or shape give a different digest. Object arrays
    hold pointers, so they are hashed as the header plus canonical JSON of
    ``arr.tolist()`` (objects without a text of their own by state: `_values_json`).
    """
    import numpy as np  # already loaded if the caller holds an array

    a = np.asarray(arr)
    header = _array_header(a.dtype, a.shape)
    h = hashlib.sha256(header)
    if a.dtype.hasobject:
        h.update(_values_json(a.tolist()).encode("utf-8"))
    else:
        h.update(_byte_view(a))
    return h.hexdigest()


def _byte_view(a: np.ndarray) -> memoryview:
    """The C-order bytes of ``a`` as a memoryview, copying only if not contiguous."""
    import numpy as np

    c = np.ascontiguousarray(a)  # no copy for an already C-contiguous array
    # Viewing as uint8 avoids the buffer protocol's refusal of some dtypes
    # (datetime64, e.g.) and of 0-d arrays.
    flat: Any = c.reshape(-1).view(np.uint8)  # an ndarray is a buffer; numpy's stubs do not say so
    return memoryview(flat)


def hash_frame(df: pd.DataFrame) -> str:
    """Return the SHA-256 hex digest of a pandas DataFrame.

    Covers, in order: the shape, the column names and dtypes; the index, unless it is
    the default ``RangeIndex(0..n)`` (which carries no information, so a frame built
    from the same rows hashes equal whatever produced it; a filtered or re-indexed
    frame's index is data and is included); then each column: numeric, bool and
    datetime columns by their numpy bytes, every other column (object, strings,
    categoricals, nullable extension types) by canonical JSON of its values (an
    object whose text would be its address by its class and state: `_values_json`). Each part
    is length-prefixed, so no two different frames can produce the same byte stream.

    Equal frames give equal digests; a different value, row or column order, column
    name or dtype gives a different one. pandas 3's text dtype ``str`` counts as
    ``object``, pandas 2's, so a frame hashes alike under both (`_dtype_name`).
    """
    import numpy as np

    h = hashlib.sha256(b"pandas.DataFrame|")
    columns = list(df.columns)
    meta = {
        "shape": list(df.shape),
        "columns": columns,
        "dtypes": [_dtype_name(t) for t in df.dtypes],
    }
    _update_framed(h, canonical_json(meta).encode("utf-8"))
    if not _is_default_index(df.index):
        _update_framed(h, b"index")
        _update_framed(h, canonical_json(list(df.index.names)).encode("utf-8"))
        _hash_values(h, df.index, np)
    for i in range(df.shape[1]):
        # iloc, not df[name]: column names may repeat
        _hash_values(h, df.iloc[:, i], np)
    return h.hexdigest()


def _dtype_name(dtype: Any) -> str:
    """The name `hash_frame` records for a column's dtype: ``str(dtype)``, except that
    pandas 3's default text dtype, ``str``, is ``"object"``.

    pandas 3 reads text as ``str`` where pandas 2 read it as ``object``, so the same
    frame would otherwise get two digests, and a pandas upgrade would show every
    dataset as changed. ``"object"`` is what pandas 2 recorded, so stores written
    under it keep their digests. A dtype asked for by name (``string``,
    ``string[pyarrow]``) prints alike under both and stays as it is: mapping it too
    would change digests already recorded. Values are hashed as text in every case,
    each missing value (None, NaN, pd.NA) as null (`_json_scalar`)."""
    name = str(dtype)
    return "object" if name == "str" else name


def _update_framed(h: Any, data: bytes | memoryview) -> None:
    # length prefix: makes the concatenation of parts unambiguous
    h.update(f"{data.nbytes if isinstance(data, memoryview) else len(data)}:".encode("ascii"))
    h.update(data)


def _is_default_index(index: Any) -> bool:
    return (
        type(index).__name__ == "RangeIndex"
        and index.start == 0
        and index.step == 1
        and index.name is None
    )


def _hash_values(h: Any, values: Any, np: Any) -> None:
    """Feed one column (a Series or an Index) into ``h``."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and not dtype.hasobject:
        _update_framed(h, _byte_view(values.to_numpy()))
        return
    if type(dtype).__name__ == "CategoricalDtype":
        # The category set and order are part of the type; record them too.
        cats = {"categories": list(dtype.categories), "ordered": bool(dtype.ordered)}
        _update_framed(h, canonical_json(cats).encode("utf-8"))
    _update_framed(h, _values_json([_json_scalar(v) for v in values.tolist()]).encode("utf-8"))


# What `canonical_json` writes for an object with neither __str__ nor __repr__ of its
# own: "<mod.P object at 0x7f…>", an address, different in every process and for
# every re-created value, so the same data got a new digest each time.
_ADDRESS = " at 0x"


def _values_json(values: Any) -> str:
    """Canonical JSON of data values, where every object that would be written as its
    address is written as its class and state instead (`_by_state`).

    Only text that holds an address is redone, so every digest that was reproducible
    before (numbers, strings, dates, …) is unchanged, and the common case costs one
    substring search."""
    text = canonical_json(values)
    if _ADDRESS in text:
        by_state = canonical_json(_by_state(values, ()))
        if by_state != text:  # (a string that merely says " at 0x" changes nothing)
            # marked: no text canonical_json writes starts with NUL, so these byte
            # streams are apart from every one without objects
            return "\x00by-state\x00" + by_state
    return text


def _has_default_repr(cls: type) -> bool:
    own: Any = (cls.__repr__, cls.__str__)  # (Any: typeshed's signatures of the two differ)
    return own[0] is object.__repr__ and own[1] is object.__str__


def _by_state(v: Any, seen: tuple[int, ...]) -> Any:
    """``v`` with each object whose text is its address replaced by
    ``{"__object__": "module.Class", "state": …}`` (its ``__dict__`` and slots, by the
    same rule), inside lists, tuples, dicts and sets too. Anything else is returned as
    it is, so it is written as before."""
    cls = type(v)
    if v is None or cls in (str, int, float, bool):
        return v
    if id(v) in seen:
        raise InvalidInputError(f"cannot hash a {cls.__module__}.{cls.__qualname__} that holds itself as data")
    inner = (*seen, id(v))
    if isinstance(v, (list, tuple)):
        return [_by_state(x, inner) for x in v]
    if isinstance(v, dict):
        return {k: _by_state(x, inner) for k, x in v.items()}
    if isinstance(v, (set, frozenset)):
        if not any(_ADDRESS in str(x) for x in v):
            return sorted(v, key=str)  # as `canonical_json` writes a set: the text it always had
        # (by their text as state: by str, the order would follow the addresses)
        return sorted((_by_state(x, inner) for x in v), key=canonical_json)
    if _has_default_repr(cls):
        state: dict[str, Any] = dict(getattr(v, "__dict__", None) or {})
        for klass in cls.__mro__:
            slots = klass.__dict__.get("__slots__", ())
            for slot in (slots,) if isinstance(slots, str) else slots:
                if slot not in ("__dict__", "__weakref__") and hasattr(v, slot):
                    state[slot] = getattr(v, slot)
        return {"__object__": f"{cls.__module__}.{cls.__qualname__}", "state": _by_state(state, inner)}
    return v


def _json_scalar(v: Any) -> Any:
    """``v`` with every kind of missing value (None, NaN, NaT, pd.NA) turned into None.

    So the same missing data hashes alike whatever the column's backing type.
    """
    if v is None or type(v).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(v, float) or (type(v).__module__ == "numpy" and getattr(v, "ndim", 1) == 0):
        try:
            if bool(v != v):  # NaN (and numpy's NaT) are unequal to themselves
                return None
        except (TypeError, ValueError):
            pass
    return v


def hash_data(obj: Any) -> tuple[str, dict[str, Any]]:
    """Hash an in-memory dataset and describe it.

    Accepts a numpy array, a scipy.sparse matrix, a pandas DataFrame or Series, or a
    list/tuple of rows (lists, tuples or dicts; or scalars). Returns ``(digest, attrs)``
    with attrs ``format`` (``"ndarray"``, ``"sparse"``, ``"dataframe"``, ``"series"`` or
    ``"list"``), ``rows``,
    ``columns`` (the names for a DataFrame, a count otherwise), ``shape``, and ``dtype``
    / ``dtypes`` where known. Lists are hashed as their canonical JSON.

    Raises InvalidInputError for any other type.
    """
    if is_ndarray(obj):
        shape = [int(d) for d in obj.shape]
        attrs: dict[str, Any] = {
            "format": "ndarray",
            "rows": shape[0] if shape else 1,
            "columns": (shape[1] if len(shape) >= 2 else 1),
            "shape": shape,
            "dtype": obj.dtype.str if obj.dtype.fields is None else str(obj.dtype.descr),
        }
        return hash_array(obj), attrs
    if is_sparse(obj):
        shape = [int(d) for d in obj.shape]
        attrs = {
            "format": "sparse",
            "rows": shape[0] if shape else 1,
            "columns": (shape[1] if len(shape) >= 2 else 1),
            "shape": shape,
            "dtype": obj.dtype.str,
            "sparse_format": str(getattr(obj, "format", "")),
            "nnz": int(obj.nnz),  # (as stored: may count duplicates and zeros the digest leaves out)
        }
        return hash_sparse(obj), attrs
    if is_pandas(obj, "DataFrame"):
        attrs = {
            "format": "dataframe",
            "rows": int(obj.shape[0]),
            "columns": [str(c) for c in obj.columns],
            "shape": [int(d) for d in obj.shape],
            "dtypes": {str(c): str(t) for c, t in zip(obj.columns, obj.dtypes)},
        }
        return hash_frame(obj), attrs
    if is_pandas(obj, "Series"):
        # A Series is a one-column frame; its name is the column name.
        attrs = {
            "format": "series",
            "rows": int(obj.shape[0]),
            "columns": [str(obj.name)] if obj.name is not None else 1,
            "shape": [int(obj.shape[0])],
            "dtype": str(obj.dtype),
        }
        return hash_frame(obj.to_frame()), attrs
    if isinstance(obj, (list, tuple)):
        rows = len(obj)
        first: Any = obj[0] if rows else None
        columns: Any
        if isinstance(first, dict):
            columns = [str(k) for k in first]
            shape = [rows, len(columns)]
        elif isinstance(first, (list, tuple)) or is_ndarray(first):
            columns = len(first)
            shape = [rows, columns]
        else:
            columns = 1 if rows else 0
            shape = [rows]
        attrs = {"format": "list", "rows": rows, "columns": columns, "shape": shape}
        return hash_text(_values_json(list(obj))), attrs
    raise InvalidInputError(
        f"cannot hash a {type(obj).__module__}.{type(obj).__qualname__} as a dataset; "
        "pass a file path, a numpy array, a scipy.sparse matrix, a pandas DataFrame or a list of rows"
    )


def row_digests(inputs: Any) -> list[str]:
    """Return one SHA-256 hex digest per row of ``inputs`` (prediction inputs).

    - numpy array: row ``i``'s digest equals ``hash_array(inputs[i])`` (header of the
      row's dtype and shape, then its bytes), so a single input can be looked up by
      hashing it alone. A 1-D array's rows are its elements.
    - DataFrame whose columns all share one numeric numpy dtype: as its ``to_numpy()``.
      Any other DataFrame: each row as canonical JSON of ``{column: value}``, the same
      digest a list of dict rows gives.
    - scipy.sparse matrix: as its dense rows when at most `SPARSE_DENSE_WIDTH`
      columns wide (so the same row dense or sparse has one digest), else by each
      row's non-zero entries, see `_sparse_row_digests`.
    - list/tuple: each element's canonical JSON (a list row, a dict row or a scalar).

    Raises InvalidInputError for any other type.
    """
    if is_pandas(inputs, "DataFrame"):
        dtypes = set(inputs.dtypes)
        import numpy as np

        if len(dtypes) == 1:
            (only,) = dtypes
            if isinstance(only, np.dtype) and only.kind in "biuf":
                return _array_row_digests(inputs.to_numpy())
        names = [str(c) for c in inputs.columns]
        return [
            hash_text(_values_json(dict(zip(names, map(_json_scalar, row)))))
            for row in inputs.itertuples(index=False, name=None)
        ]
    if is_pandas(inputs, "Series"):
        inputs = inputs.to_numpy()
    if is_ndarray(inputs):
        return _array_row_digests(inputs)
    if is_sparse(inputs):
        return _sparse_row_digests(inputs)
    if isinstance(inputs, (list, tuple)):
        return [hash_text(_values_json(row)) for row in inputs]
    raise InvalidInputError(
        f"cannot split a {type(inputs).__module__}.{type(inputs).__qualname__} into rows; "
        "pass a numpy array, a scipy.sparse matrix, a pandas DataFrame or a list of rows"
    )


#: A scipy.sparse row at most this wide is digested as the dense row it stands for
#: (what a user explaining a prediction holds); a wider one by its non-zero entries,
#: as densifying a TF-IDF row of a million columns per prediction would cost more
#: than the prediction. 4096 float64 columns are 32 KiB a row: microseconds to hash.
SPARSE_DENSE_WIDTH = 4096

#: values densified at a time when digesting sparse rows as dense ones (8 MiB of float64)
_DENSE_CHUNK = 1 << 20


def _sparse_row_digests(mat: Any) -> list[str]:
    """One digest per row of a 2-D scipy.sparse matrix or array (`row_digests`).

    A matrix at most `SPARSE_DENSE_WIDTH` columns wide: each row's digest is its dense
    row's (``hash_array(mat.toarray()[i])``), so the same row given dense or sparse is
    the same input. A wider one: SHA-256 of ``b"scipy.sparse.row|"`` and
    ``f"{dtype.str}|({width},)|"``, then, each length-prefixed, the row's non-zero
    values and their column indices (int64, ascending) after summing duplicates and
    dropping stored zeros: equal rows give equal digests whatever the format.
    """
    import numpy as np

    if len(mat.shape) != 2:
        raise InvalidInputError(f"cannot split a {len(mat.shape)}-D sparse array into rows; pass a 2-D one")
    csr = canonical_csr(mat, f"cannot split a {type(mat).__qualname__} into rows")
    n, width = (int(d) for d in csr.shape)
    if width <= SPARSE_DENSE_WIDTH:
        return [d for block in dense_row_blocks(csr) for d in _array_row_digests(block)]
    base = hashlib.sha256(b"scipy.sparse.row|" + _array_header(csr.dtype, (width,)))
    data = np.ascontiguousarray(csr.data)
    indices = csr.indices.astype(np.int64)
    indptr = csr.indptr.tolist()
    digests: list[str] = []
    for i in range(n):
        a, b = indptr[i], indptr[i + 1]
        h = base.copy()
        _update_framed(h, _byte_view(data[a:b]))
        _update_framed(h, _byte_view(indices[a:b]))
        digests.append(h.hexdigest())
    return digests


def _array_row_digests(arr: np.ndarray) -> list[str]:
    import numpy as np

    a = np.asarray(arr)
    if a.ndim == 0:
        return [hash_array(a)]
    n = a.shape[0]
    if a.dtype.hasobject:
        return [hash_array(a[i]) for i in range(n)]
    # Hash the header once and copy the hasher's state per row: the per-row cost is
    # then one copy, one update over the row's bytes and one hexdigest.
    base = hashlib.sha256(_array_header(a.dtype, a.shape[1:]))
    row_size = a.dtype.itemsize
    for d in a.shape[1:]:
        row_size *= int(d)
    if row_size == 0:
        empty = base.hexdigest()
        return [empty] * n
    mv = _byte_view(a)
    copy = base.copy
    out: list[str] = []
    append = out.append
    for off in range(0, n * row_size, row_size):
        h = copy()
        h.update(mv[off : off + row_size])
        append(h.hexdigest())
    return out


# ---------------------------------------------------------------------------
# descriptions and models


def _csv_delimiter(header: str) -> str:
    """A ``.csv`` header's delimiter: ``,`` unless the line has none and has ``;``
    (spreadsheets in locales whose decimal mark is a comma write those) or ``|``."""
    if "," in header:
        return ","
    return next((d for d in (";", "|", "\t") if d in header), ",")


def describe_file(path: str | os.PathLike[str], digest: FileDigest) -> dict[str, Any]:
    """Return the attrs of a dataset file already hashed into ``digest``.

    Always: ``path`` (as given, with ``/`` separators), ``size``, ``format`` (the suffix
    in lowercase without the dot, or ``"file"``). For ``.csv``/``.tsv``: ``columns``
    (the header's names, parsed with the csv module from the first line only, split
    at ``;``, ``|`` or a tab when a ``.csv`` header has no comma) and,
    when ``digest.lines`` was counted, ``rows`` (data records: line breaks, plus one
    for a last line without its newline, minus the header). In a ``.csv`` a newline
    inside a quoted field breaks no record (see `hash_file`), so ``rows`` is what
    ``csv.reader`` yields, less the header; a ``.tsv`` counts lines.

    Reads only the first line and the last byte. Raises InvalidInputError if the file
    cannot be read.
    """
    shown = os.fspath(path).replace(os.sep, "/")
    suffix = os.path.splitext(shown)[1].lower()
    attrs: dict[str, Any] = {"path": shown, "size": digest.size, "format": suffix[1:] if suffix else "file"}
    if suffix not in (".csv", ".tsv") or digest.size == 0:
        if suffix in (".csv", ".tsv"):
            attrs.update(rows=0, columns=[])
        return attrs
    try:
        with open(path, "rb") as f:
            # A header longer than 1 MiB is not a header we can show anyway.
            first = f.readline(CHUNK_SIZE)
            f.seek(-1, os.SEEK_END)
            last = f.read(1)
    except OSError as exc:
        raise _file_error(path, exc) from None
    text = first.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    delimiter = "\t" if suffix == ".tsv" else _csv_delimiter(text)
    # a header the csv module refuses (a bare carriage return: old Mac line ends, or
    # bytes that are no CSV at all) is still data with a digest: only the column
    # names are not known
    with contextlib.suppress(csv.Error):
        attrs["columns"] = next(csv.reader([text], delimiter=delimiter), [])
    if digest.lines is not None:
        lines = digest.lines + (0 if last == b"\n" else 1)
        attrs["rows"] = max(lines - 1, 0)
    return attrs


def hash_model(obj: Any) -> tuple[str, bytes]:
    """Serialize a fitted model with pickle protocol 5.

    Returns ``(digest of the bytes, the bytes)``; the bytes are what gets stored as the
    artifact, so the digest proves the artifact is the model. Pickles of the same model
    are stable within one library version; treat them as such, not across upgrades.

    Raises InvalidInputError when the object cannot be pickled.
    """
    # pickling runs the object's own __reduce__/__getstate__, which may raise anything
    with foreign(f"cannot serialize the {type(obj).__qualname__} model with pickle: {{reason}}"):
        data = pickle.dumps(obj, protocol=5)
    return hashlib.sha256(data).hexdigest(), data
