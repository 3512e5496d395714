"""The row codec: what a row and an event commit to (digests, canonical encoding,
coercion to what SQLite hands back), one implementation for writes, bulk writes
and verify."""

from __future__ import annotations

import gc
import hashlib
import itertools
import math
import operator
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from json.encoder import encode_basestring as _json_str  # the string encoder of canonical_json
from typing import Any, NamedTuple

from ..errors import (
    InvalidInputError,
)
from ..model import canonical_json
from ..model import clean_text as _clean_text
from .rowdigest import Piece, chunk_digests
from .schema import INT_COLUMNS, KIND_INT, KIND_REAL, KIND_TEXT, REAL_COLUMNS, RECORD_TABLES


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for a bulk write, then restored as it was.

    Millions of short-lived tuples make it run full collections over every object
    of the process again and again (more than doubling the cost of a million rows);
    encoded rows hold no cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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


def as_bytes(value: Any) -> bytes:
    """Stored text as UTF-8 (a forged BLOB or number as whatever bytes it has)."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    return str(value).encode()



_FLOAT_REPR = float.__repr__
_INT_REPR = int.__repr__
_INF = float("inf")
#: ``digest_of(h)`` is ``h.digest()``, a hash object's bytes: a C-level function for ``map``
digest_of = operator.methodcaller("digest")


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
    """One value as `as_stored` stores it, and its canonical JSON text."""
    if v is None:
        return None, "null"
    if kind == KIND_TEXT:
        v = _to_text(v)
        return v, _json_str(v)
    if kind == KIND_REAL:
        f = _to_real(v)
        if f is None:  # SQLite stores NaN as NULL
            return None, "null"
        return f, (_FLOAT_REPR(f) if -_INF < f < _INF else ("Infinity" if f > 0 else "-Infinity"))
    i = _to_int(v)
    return i, _INT_REPR(i)


def _column_piece(kind: int, col: Sequence[Any]) -> tuple[Sequence[Any], Piece]:
    """A varying column of a batch as stored, and how its values are written in the
    rows' canonical JSON (a `rowdigest.Piece`).

    The common columns (all finite floats, all ints) are passed on as they are, to be
    written by C-level ``map`` calls; anything else is coerced value by value through
    `_coerce_one`, which also gives its JSON text.
    """
    types = set(map(type, col))
    if kind == KIND_REAL and types == {float} and all(map(math.isfinite, col)) and 0.0 not in col:
        # (0.0 in col: a -0.0 may be among them, which SQLite hands back as 0.0)
        return col, ("f", col)
    if kind == KIND_INT and types == {int} and _INT64[0] <= min(col) and max(col) <= _INT64[1]:
        return col, ("i", col)
    pairs = [_coerce_one(kind, v) for v in col]
    return [p[0] for p in pairs], ("j", [p[1] for p in pairs])


class EncodedChunk(NamedTuple):
    """A chunk of rows of one table, encoded (`_encode_chunk`)."""

    #: the values as stored, column by column (`as_stored`)
    columns: list[Sequence[Any]]
    #: how many rows
    n: int
    #: the concatenation of the rows' 32-byte digests (`row_digest` of each, in order);
    #: None when left to the caller (`rowdigest.chunk_digests` of ``pieces``)
    digests: bytes | None
    #: the rows as given, when every value is stored as given (no need to rebuild
    #: them, if they are tuples: checked by `rows`, which few callers need)
    given: list[Sequence[Any]] | None
    #: the value of each column that holds one value throughout (a model id, a time,
    #: NULL), by column index: a loader may write it once instead of once per row
    constant: dict[int, Any]
    #: the columns as stored without those (what SQLite's loader binds: fewer values
    #: per row), zipped into rows as ``executemany`` binds them: zip reuses one tuple
    #: when the previous row is done with, so no tuple per row is built and kept
    #: (lineage/store/bulk.py)
    narrow: list[Sequence[Any]]
    #: what every row's canonical JSON is made of (`rowdigest.chunk_lines`): the
    #: digests can be computed from this alone, in another process
    pieces: list[Piece]

    def rows(self) -> list[Sequence[Any]]:
        """The rows as stored, ready for ``executemany``."""
        if self.given is not None and all(type(r) is tuple for r in self.given):
            return self.given
        return list(zip(*self.columns))


def encode_batch(table: str, kinds: Sequence[int], batch: Sequence[Sequence[Any]]) -> tuple[list[Sequence[Any]], bytes]:
    """Rows of one table as stored (`as_stored`), ready for ``executemany``, and the
    concatenation of their row digests (`row_digest` of each, in order)."""
    enc = _encode_chunk(table, kinds, batch)
    assert enc.digests is not None
    return enc.rows(), enc.digests


def _valid_texts(col: Sequence[str]) -> Sequence[str]:
    """``col`` itself when every text can be written as UTF-8 (one check over the
    joined column), else each text as `clean_text` makes it."""
    joined = "".join(col)
    return col if _clean_text(joined) is joined else tuple(map(_clean_text, col))


def _encode_chunk(table: str, kinds: Sequence[int], batch: Sequence[Sequence[Any]], *,
                  digests: bool = True) -> EncodedChunk:
    """Rows of one table encoded: as stored (`as_stored`), and digested (``digests=False``:
    left to the caller, who has ``pieces`` to compute them from).

    Works column by column, so the per-row cost is a few C calls instead of
    json.dumps: this is what makes `write_bulk` keep up with raw ``executemany``.
    A column with one value throughout (a model id, a time) is written into the
    rows' JSON template once (`rowdigest.chunk_lines`), so the only per-row work left
    is one ``str.format``, one encode and one SHA-256. tests/test_store.py checks it
    against `as_stored` and `row_digest` on random rows.
    """
    columns = list(zip(*batch))
    if len(columns) != len(kinds):
        raise InvalidInputError(f"rows of {table} need {len(kinds)} values each")
    values: list[Sequence[Any]] = []
    pieces: list[Piece] = [_json_str(table)]
    constant: dict[int, Any] = {}
    for i, (k, c) in enumerate(zip(kinds, columns)):
        first = c[0]
        if type(first) is str and k == KIND_TEXT and c.count(first) == len(c):
            # one value throughout: its JSON text goes into the template itself
            v = _clean_text(first)
            values.append(c if v is first else (v,) * len(c))
            constant[i] = v
            pieces.append(_json_str(v))
            continue
        if first is None and c.count(None) == len(c):
            values.append(c)
            constant[i] = None
            pieces.append("null")
            continue
        if k == KIND_TEXT and set(map(type, c)) == {str}:
            texts = _valid_texts(c)
            values.append(texts)
            pieces.append(("s", texts))
            continue
        stored, piece = _column_piece(k, c)
        values.append(stored)
        pieces.append(piece)
    n = len(batch)
    given = list(batch) if all(v is c for v, c in zip(values, columns)) else None
    if len(constant) == len(values):  # (every column constant: rows of nothing)
        constant.pop(0)
    narrow = [v for i, v in enumerate(values) if i not in constant]
    return EncodedChunk(values, n, chunk_digests(pieces, n) if digests else None, given, constant, narrow, pieces)


def stored_column_piece(col: Sequence[Any]) -> Piece:
    """A column of values as SQLite returned them (verify) as one item of its rows'
    JSON (`rowdigest.Piece`), the same texts ``canonical_json`` makes of each value:
    a value the same throughout (a run id, a key, NULL) as its JSON text once, to be
    written into the rows' template; uniform columns for C-level maps; anything else
    (a forged type) value by value."""
    types = set(map(type, col))
    if types == {str}:
        first = col[0]
        return _json_str(first) if col.count(first) == len(col) else ("s", col)
    if types == {type(None)}:
        return "null"
    if types == {int}:
        return ("i", col)
    if types == {float} and all(map(math.isfinite, col)):
        return ("f", col)
    return ("j", [canonical_json(v) for v in col])


# ---------------------------------------------------------------------------
# one event's rows and payload, encoded without json.dumps (issue 16: `Store.write`)

_ROW_KINDS: dict[str, tuple[int, ...]] = {}


def encode_row(table: str, values: Sequence[Any]) -> tuple[tuple[Any, ...], bytes]:
    """One row of ``table`` as stored and its digest: exactly ``(_coerce(table,
    columns, values), row_digest(table, that))``, in one pass. Each value's canonical
    JSON comes from `_coerce_one` with its stored form, so the row's text is joined,
    not dumped (tests/test_write_path.py compares the two on random rows)."""
    kinds = _ROW_KINDS.get(table)
    if kinds is None:
        kinds = _ROW_KINDS[table] = tuple(KIND_REAL if (table, c) in REAL_COLUMNS else KIND_INT if (table, c) in INT_COLUMNS
                                          else KIND_TEXT for c in RECORD_TABLES[table])
    stored: list[Any] = []
    texts = [_json_str(table)]
    for kind, v in zip(kinds, values):
        if kind == KIND_TEXT and type(v) is str and v.isascii():
            # (most values of most rows: ids, names, times; stored as given, as
            # `_coerce_one` would, without its three calls)
            stored.append(v)
            texts.append(_json_str(v))
            continue
        value, text = _coerce_one(kind, v)
        stored.append(value)
        texts.append(text)
    return tuple(stored), _sha(("[" + ",".join(texts) + "]").encode())


class _NotFlat(Exception):
    """A payload `payload_text` leaves to `canonical_json`."""


def payload_text(body: Mapping[str, Any]) -> str:
    """An event's payload as stored: exactly ``clean_text(canonical_json(body))``.

    The payloads of single writes are flat (text, ints, None, lists of text): those
    are joined here, keys sorted, each value through the same C string encoder
    ``json`` uses; anything else (floats, nested objects, text that is not valid
    Unicode) goes through `canonical_json`. tests/test_write_path.py compares the
    two on random payloads."""
    try:
        parts = []
        for key in sorted(body):
            if type(key) is not str:
                raise _NotFlat
            v = body[key]
            t = type(v)
            if t is str:
                text = _json_str(v)
            elif t is int:
                text = _INT_REPR(v)
            elif v is None:
                text = "null"
            elif t is list and all(type(x) is str for x in v):
                text = "[" + ",".join(map(_json_str, v)) + "]"
            else:
                raise _NotFlat
            parts.append(_json_str(key) + ":" + text)
        out = "{" + ",".join(parts) + "}"
        if not out.isascii():
            out.encode()  # lone surrogates: canonical_json writes them cleaned
        return out
    except (_NotFlat, TypeError, UnicodeEncodeError):
        return _clean_text(canonical_json(body))


def as_stored(table: str, columns: Sequence[str], values: Sequence[Any]) -> tuple[Any, ...]:
    """Values as SQLite will return them, so digests agree between write and verify."""
    out: list[Any] = []
    for col, v in zip(columns, values):
        if v is None:
            out.append(None)
        elif (table, col) in REAL_COLUMNS:
            out.append(_to_real(v))  # NaN as NULL, -0.0 as 0.0: as SQLite stores them
        elif (table, col) in INT_COLUMNS:
            out.append(_to_int(v))
        else:
            out.append(_to_text(v))
    return tuple(out)


class encode_chunks:  # (lower case: used like a generator function)
    """Rows in encoded chunks (`_encode_chunk`, without digests unless ``digests``) of
    ``size`` rows; the caller may change ``size`` between chunks (bulk writes size
    them to a time budget).

    Encoded in the caller's thread: a thread encoding a chunk ahead while SQLite
    inserted the previous one was measured slower (0.56× raw ``executemany`` against
    0.68× inline, same run): ``executemany`` takes Python's GIL back after every row,
    and the encoding thread holds it through whole C-level passes over a column, so
    the two mostly took turns. The digests, the larger part, can go to another
    process instead (lineage/store/rowdigest.py), which has its own GIL.
    """

    def __init__(self, table: str, kinds: Sequence[int], rows: Iterator[Sequence[Any]], size: int, *,
                 digests: bool = True) -> None:
        self.table, self.kinds, self.rows, self.size, self.digests = table, kinds, rows, size, digests

    def __iter__(self) -> Iterator[EncodedChunk]:
        while batch := list(itertools.islice(self.rows, max(int(self.size), 1))):
            yield _encode_chunk(self.table, self.kinds, batch, digests=self.digests)


#: the rows digest of an event that wrote no rows (SHA-256 of nothing)
EMPTY_ROWS_DIGEST = hashlib.sha256(b"").hexdigest()
#: ``first_item(t)`` is ``t[0]``: a C-level sort or group key
first_item = operator.itemgetter(0)
