"""Row digests of a chunk of encoded rows: each row's canonical JSON text and its
SHA-256, computed here or, for a bulk write, in a helper process while SQLite
inserts the previous chunk (issue 16).

A chunk arrives as *pieces*: the items of every row's JSON array ``["table", v1, …]``
in order, each either the JSON text of a value that is the same in every row (the
table name, a model id, a time, ``null``) or a column of stored values with how to
write them (`chunk_lines`). The values are already what SQLite stores (lineage's
codec coerced them); only their JSON text and the digests are made here, so the
helper process never decides what is recorded, only hashes it.

Why a process: a bulk write's rows cost SQLite about as much CPU as their encoding
costs Python (canonical JSON, SHA-256: ~0.3 s per 100,000 predictions). A thread
cannot overlap the two: ``executemany`` takes the GIL back for every row, and the
encoding holds it through whole C-level passes over a column. A helper process has
its own interpreter; the rows travel to it marshalled (columns of str/float/int,
about 15 ms per 100,000 rows) and only 32 bytes per row come back.

This module imports the standard library alone: the helper runs it as a script
(``python -I -S rowdigest.py``), which must not import lineage (slow, and the
helper's import path is not the caller's). The helper is the same executable as
the caller, so its JSON and float texts are byte-for-byte the caller's; the caller
still checks the first row of every chunk against the reference `row_digest`.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import operator
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring as _json_str  # the string encoder of canonical_json
from typing import IO, TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["DIGEST_SIZE", "Helper", "HelperError", "Piece", "chunk_digests", "chunk_lines", "start_helper"]

#: bytes of one row digest (SHA-256)
DIGEST_SIZE = 32

#: one item of every row's JSON array: the JSON text of a value that is the same in
#: every row, or ``(how, column)`` for a column of stored values: ``"s"`` texts,
#: ``"f"`` finite floats, ``"i"`` integers (exact types), ``"j"`` JSON texts ready made
Piece: TypeAlias = "str | tuple[str, Sequence[Any]]"

_DIGEST = operator.methodcaller("digest")
_FLOAT_REPR = float.__repr__
_INT_REPR = int.__repr__


def _safe_bare(col: Sequence[str]) -> bool:
    """Whether every text of ``col`` is its own JSON string body (printable ASCII,
    no quote, no backslash: ids, hex digests), checked once over the joined column."""
    joined = "".join(col)
    return joined.isascii() and joined.isprintable() and '"' not in joined and "\\" not in joined


def chunk_lines(pieces: Sequence[Piece], n: int) -> Iterable[str]:
    """Each of the ``n`` rows' canonical JSON (``canonical_json([table, *values])`` of
    the values as stored), in order, from the chunk's ``pieces`` (see `Piece`).

    One ``str.format`` per row: constant items are written into the template once;
    text columns that need no escaping are quoted by the template."""
    template = "["
    cols: list[Iterable[str]] = []
    for i, piece in enumerate(pieces):
        sep = "," if i else ""
        if isinstance(piece, str):
            template += sep + piece.replace("{", "{{").replace("}", "}}")
            continue
        how, col = piece
        if how == "s" and _safe_bare(col):
            template += sep + '"{}"'
            cols.append(col)
            continue
        template += sep + "{}"
        cols.append(map(_json_str, col) if how == "s" else map(_FLOAT_REPR, col) if how == "f"
                    else map(_INT_REPR, col) if how == "i" else col)
    template += "]"
    if not cols:
        return [template.replace("{{", "{").replace("}}", "}")] * n
    return map(template.format, *cols)


def chunk_digests(pieces: Sequence[Piece], n: int) -> bytes:
    """The concatenation of the ``n`` rows' 32-byte SHA-256 digests of their
    canonical JSON (`chunk_lines`) in UTF-8. Raises UnicodeEncodeError for text that
    is not valid Unicode (the codec cleans such text before it gets here)."""
    return b"".join(map(_DIGEST, map(hashlib.sha256, map(str.encode, chunk_lines(pieces, n)))))


# ---------------------------------------------------------------------------
# the helper process

class HelperError(Exception):
    """The helper process is gone or answered something else than digests."""


class Helper:
    """A helper process computing `chunk_digests`, driven from one thread of the
    caller: `submit` sends a chunk and returns at once with a future of its digests
    (one I/O thread does the sending and waits for the answer, holding the GIL only
    to move bytes); `close` ends the process. A future fails with HelperError (or
    OSError) when the process dies: the caller computes that chunk itself."""

    def __init__(self, proc: subprocess.Popen[bytes], pool: ThreadPoolExecutor) -> None:
        self.proc, self.pool = proc, pool

    def submit(self, pieces: Sequence[Piece], n: int) -> Future[bytes]:
        """Send a chunk; returns the future of its digests (`chunk_digests`)."""
        # serialised here, by the caller's thread, so the I/O thread never holds the GIL
        # long; marshal (3x faster than pickle here): both ends are the same interpreter
        msg = marshal.dumps(([_packed(p) for p in pieces], n))
        return self.pool.submit(self._call, msg, n)

    def _call(self, msg: bytes, n: int) -> bytes:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        if stdin is None or stdout is None:
            raise HelperError("the helper process has no pipes")
        stdin.write(len(msg).to_bytes(8, "little"))
        stdin.write(msg)
        stdin.flush()
        want = n * DIGEST_SIZE
        data = stdout.read(want)
        if len(data) != want:
            raise HelperError(f"the helper process answered {len(data)} bytes instead of {want}")
        return data

    def close(self) -> None:
        """End the process and the I/O thread, at once: whatever it still had to do is
        not needed (answers are waited for before, with their futures)."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.proc.kill()  # (an I/O thread still reading or writing then fails at once)
        self.pool.shutdown(wait=True)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):  # (unflushed input of a killed process: nothing to keep)
                    pipe.close()
        self.proc.wait()


def start_helper() -> Helper | None:
    """A new helper process, or None where one would not help or cannot run: a
    single CPU, no Python executable known (an embedding program's own binary is not
    run), or this module not a file on disk."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    script = os.path.abspath(__file__)
    python = os.path.basename(sys.executable or "").lower()
    if cpus < 2 or not python.startswith(("python", "pypy")) or not os.path.isfile(script):
        return None
    from concurrent.futures import ThreadPoolExecutor

    try:
        # -I -S: no site-packages, no PYTHONPATH, no user site: the standard library only.
        # A session of its own: a terminal's Ctrl-C reaches the caller, who ends it.
        proc = subprocess.Popen([sys.executable, "-I", "-S", script, str(sys.hexversion)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except (OSError, ValueError):
        return None
    return Helper(proc, ThreadPoolExecutor(max_workers=1, thread_name_prefix="lineage-rowdigest"))


def _packed(piece: Piece) -> Any:
    """A piece as it travels: a text column without newlines as one text joined by
    them (a fifth of the cost of marshalling each text; ids and digests)."""
    if isinstance(piece, str) or piece[0] != "s":
        return piece
    joined = "\n".join(piece[1])
    return ("s\n", joined) if joined.count("\n") == len(piece[1]) - 1 else piece


def _unpacked(piece: Any) -> Piece:
    """A piece as `_packed` sent it, as it was."""
    if isinstance(piece, str) or piece[0] != "s\n":
        return piece
    return ("s", piece[1].split("\n"))


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """The helper's loop: read a length-prefixed marshalled ``(pieces, n)``, write its
    digests, until the input ends. Any error ends the process (the caller then
    computes what is left itself)."""
    while True:
        head = inp.read(8)
        if len(head) < 8:
            return
        size = int.from_bytes(head, "little")
        msg = inp.read(size)
        if len(msg) < size:
            return
        pieces, n = marshal.loads(msg)  # (from the parent process, which started this one)
        out.write(chunk_digests([_unpacked(p) for p in pieces], n))
        out.flush()


if __name__ == "__main__":
    import gc

    if sys.argv[1:] != [str(sys.hexversion)]:  # (marshal's format is the interpreter's own)
        sys.exit(2)
    gc.disable()  # (chunks of short-lived strings, no cycles: as in the caller's bulk load)
    serve(sys.stdin.buffer, sys.stdout.buffer)
