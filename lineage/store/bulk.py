"""Bulk writes (predictions, their kept inputs, an import's run rows): loaded in short
transactions, invisible until one short publish step (issue 8: no writer waits on a
long one; issue 16: the rows are written once, with no copy from a staging table).
An import publishes its batches inside its own short transaction, with its event
and nodes (`staged`).

How a bulk write goes:

1. **Open a batch**: a row in ``bulk_batches`` (its number ``b``, the table, no event
   yet), and an exclusive ``flock`` on ``locks/bulk-<b>.lock`` held while the writer
   lives, taken before the batch row is committed.
2. **Load**: the rows go straight into their table, chunk by chunk, each chunk its own
   short transaction (`_load_chunk`, the one step a backend may replace, e.g. by
   PostgreSQL's ``COPY``), stored with ``event = -b``. Every read of these tables
   excludes rows of an unpublished batch (`published`), so nobody sees a part.
   Each chunk is encoded before its transaction starts, so the lock is held for the
   insert alone; the rows per transaction follow a time budget. Its row digests are
   computed by a helper process while SQLite inserts (`_Digests`, issue 16).
3. **Publish**: one short transaction appends the ledger event, whose rows digest
   covers every row of the batch in ``pk`` order, and sets ``bulk_batches.event`` to
   its number: from that commit on, the rows are visible, all at once, with their
   event. Its length does not depend on the number of rows.

A writer killed before 3 leaves an unpublished batch whose lock is free: a
**leftover**. It is invisible to every read and to `verify`, which reports it (not as
tampering) and removes it, as does the next bulk write (`clean_leftovers`). Rows of a
batch are found by ``event = -b`` (the ``<table>_event`` index), so a batch costs
nothing to look up, however large the table.

Order: the rows of one batch are in ``pk`` order (the order the event committed to),
but rows of batches loaded at the same time, and rows written by ordinary events
meanwhile, interleave in ``pk``. So in these tables a row's place in history is
(its event, its ``pk``), and the order rule of docs/integrity.md (rows sorted by
``pk`` are sorted by event) binds the rows written with their event number; for a
batch, its event's payload commits to the span of its pks (``pks``), which every row
of the batch must lie in. (No answer picks "the latest" among predictions of
different writes: a prediction never supersedes another. In the run tables it does,
but every row of a run an import brings is in that import's batch: the runs are
new, and invisible until it publishes, so no other write can touch them meanwhile.)

Writes of `SMALL_ROWS` rows or fewer skip all this: one short transaction with their
event number, as any write.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import LineageError
from ..model import now_iso
from . import fulltext as _fulltext
from . import ledger as _ledger
from . import rowdigest
from .codec import EncodedChunk, encode_chunks, gc_paused, row_digest
from .files import RunLock
from .schema import BATCHED_TABLES, RECORD_TABLES, column_kinds, published

if TYPE_CHECKING:
    from concurrent.futures import Future

    from .core import Store

__all__ = ["BATCHED_TABLES", "CHUNK_ROWS", "clean_leftovers", "event_numbers", "published", "staged",
           "write_batched", "write_batched_many"]

#: the most rows loaded in one transaction
CHUNK_ROWS = 50_000

#: writes of this many rows or fewer skip batching: one short transaction, as `write`
SMALL_ROWS = 2_000

#: how long one loading transaction aims to hold the write lock: the rows per
#: transaction follow the rate measured on the previous one, so a loaded machine
#: gets smaller transactions, not longer waits for other writers (who may wait
#: ~0.5 s at most, issue 8)
TXN_SECONDS = 0.05

#: rows deleted per transaction when a leftover is removed
_DELETE_ROWS = 20_000


def event_numbers(store: Store, raw: Iterable[Any]) -> dict[Any, Any]:
    """The ledger event of each stored ``event`` value of a batched table: itself for
    an event number, the publishing event for ``-batch`` (None when unpublished)."""
    out: dict[Any, Any] = {}
    batches = []
    for e in raw:
        if isinstance(e, int) and e < 0:
            batches.append(-e)
        else:
            out[e] = e
    for i in range(0, len(batches), 500):
        chunk = batches[i:i + 500]
        found = dict(store.conn.execute(
            f"SELECT batch, event FROM bulk_batches WHERE batch IN ({', '.join('?' * len(chunk))})", chunk).fetchall())
        out.update({-b: found.get(b) for b in chunk})
    return out


def _load_chunk(conn: sqlite3.Connection, table: str, columns: Sequence[str], event: int,
                chunk: EncodedChunk) -> tuple[int, int]:
    """Insert an encoded chunk of rows of ``table`` (values of ``columns``) with ``event``;
    returns the first and last ``pk`` they were given (in order, inside the caller's
    write transaction).

    The one step of a bulk write that talks to the database in bulk: a backend with a
    faster loader (PostgreSQL's ``COPY`` of ``chunk.rows()``) replaces this function
    and nothing else.

    SQLite: ``executemany`` binding only the columns that vary; a column with one
    value throughout the chunk (the model, the time, NULL request ids) and the event
    are written into the statement once, as literals (a third fewer bindings per row
    for predictions, about a tenth off the insert).
    (Loading the chunk as one ``INSERT … SELECT FROM json_each(?)`` over the rows'
    JSON ran without the GIL but cost more CPU: slower on a busy machine.)
    """
    picks = []
    for i in range(len(columns)):
        if i not in chunk.constant:
            picks.append("?")
            continue
        v = chunk.constant[i]
        picks.append(_sql_literal(v) if v is None or (isinstance(v, str) and "\x00" not in v) else "?")
    if picks.count("?") != len(columns) - len(chunk.constant):  # (a text with NUL: bound after all)
        _insert_rows(conn, table, columns, event, chunk.rows())
    else:
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}, event) VALUES ({', '.join(picks)}, {int(event)})",
                         zip(*chunk.narrow))
    # (rows of one statement take consecutive pks: the write lock is ours)
    last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
    return last - chunk.n + 1, last


def _sql_literal(value: str | None) -> str:
    """A text (without NUL) or NULL as an SQL literal: quotes doubled, nothing else
    is special inside an SQL string."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _insert_rows(conn: sqlite3.Connection, table: str, columns: Sequence[str], event: int,
                 rows: Sequence[Sequence[Any]]) -> None:
    marks = ", ".join("?" * len(columns))
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}, event) VALUES ({marks}, {int(event)})", rows)


def write_batched(store: Store, type_: str, payload: Mapping[str, Any], table: str, rows: Iterable[Sequence[Any]],
                  *, chunk: int = CHUNK_ROWS) -> int:
    """`Store.write_bulk` outside a transaction, for a table of `BATCHED_TABLES`:
    load, then publish (see the module docstring). Returns the event's number.

    On any error the rows loaded so far are removed (or, if that fails too, left as
    an invisible leftover for the next bulk write or `verify` to remove) and the
    error is raised: nothing of the write is ever visible.
    """
    return write_batched_many(store, [(type_, payload, table, rows)], chunk=chunk)[0]


def write_batched_many(store: Store, writes: Sequence[tuple[str, Mapping[str, Any], str, Iterable[Sequence[Any]]]],
                       *, chunk: int = CHUNK_ROWS) -> list[int]:
    """Several bulk writes ``(type, payload, table, rows)`` loaded one after the other
    and published together, in one short transaction (predictions and their kept
    inputs appear together or not at all); returns their events' numbers, in order.
    Raises as `write_batched`, leaving nothing visible.

    Writes that are all small (`SMALL_ROWS` rows or fewer each: a prediction
    logger's flush, an API call's handful) go in one short transaction with their
    event, as any write: a batch would cost them three transactions and a lock file
    for nothing, since the lock is held for less than a load transaction anyway."""
    peeked = []
    for type_, payload, table, rows in writes:
        it = iter(rows)
        head = list(itertools.islice(it, SMALL_ROWS + 1))
        peeked.append((type_, payload, table, head if len(head) <= SMALL_ROWS else itertools.chain(head, it)))
    if all(isinstance(p[3], list) for p in peeked):
        # (no leftover check here: a small write makes no batch, and the next large
        # one, or `verify`, removes what a killed writer left)
        with store.atomic():  # one transaction, no savepoint per write: all or nothing
            return [store._write_bulk_direct(t, p, table, rows, chunk=SMALL_ROWS) for t, p, table, rows in peeked]
    clean_leftovers(store)
    writes = peeked
    loaded: list[tuple[int, RunLock, _Loaded | None]] = []
    published_ok = False
    try:
        for _, _, table, rows in writes:
            batch, lock = _open_batch(store, table)
            loaded.append((batch, lock, None))
            loaded[-1] = (batch, lock, _load(store, table, batch, rows, chunk))
        # The publish: a few statements, whatever the rows. Its commit would copy the
        # whole load from the WAL into the database file (SQLite's autocheckpoint: a
        # fifth to a third of a 100,000-row write here, its fsyncs included); that copy is the
        # background checkpointer's, on its own thread, as every other commit's is.
        # The commit itself syncs as configured (`full`: the WAL, and the load with it).
        with _no_autocheckpoint(store), store.transaction():
            seqs = [_publish(store, type_, payload, table, batch, done)
                    for (type_, payload, table, _), (batch, _, done) in zip(writes, loaded) if done is not None]
        published_ok = True
        if isinstance(store.conn, sqlite3.Connection):
            store._checkpointer.wake()
        return seqs
    finally:
        for (_, _, table, _), (batch, lock, _) in zip(writes, loaded):
            if not published_ok:
                with suppress(LineageError, sqlite3.Error):
                    _remove_batch(store, batch, table)
            lock.release(remove=True)


@contextmanager
def staged(store: Store, writes: Sequence[tuple[str, Mapping[str, Any], str, Iterable[Sequence[Any]]]],
           *, chunk: int = CHUNK_ROWS) -> Iterator[Callable[[], list[int]]]:
    """Load each write ``(type, payload, table, rows)`` as an invisible batch (short
    transactions, as `write_batched_many`), then yield ``publish``: called inside the
    caller's own write transaction, it appends the writes' events there, in order,
    and publishes their batches, returning the events' numbers. So the rows become
    visible with whatever else that transaction writes (an import's nodes and its
    event), at its commit, or never. Leaving the block with the batches unpublished
    (an error, ``publish`` not called, or its transaction rolled back) removes them,
    or leaves them as invisible leftovers if that fails too.

    For imports (lineage/interop/bulk.py). Raises LineageError inside a transaction
    (the loading transactions could not be short). On PostgreSQL the batches are
    loaded in one transaction without the append lock, which ``publish`` takes in
    that same transaction (`postgres.staged`)."""
    if store.dialect == "postgresql":  # (one transaction, the lock taken last: lineage/store/postgres.py)
        from .postgres import staged as pg_staged

        with pg_staged(store, writes) as pg_publish:
            yield pg_publish
        return
    if store.in_transaction or not isinstance(store.conn, sqlite3.Connection):
        raise LineageError("staged bulk writes need an SQLite store outside a transaction")
    clean_leftovers(store)
    loaded: list[tuple[int, RunLock, _Loaded | None]] = []
    try:
        with _loading(store):  # (the batches' opening commits too: no checkpoint between loads)
            for _, _, table, rows in writes:
                batch, lock = _open_batch(store, table)
                loaded.append((batch, lock, None))
                loaded[-1] = (batch, lock, _load(store, table, batch, rows, chunk))
        # Copy what was loaded from the WAL into the database now, holding no write
        # lock (a passive checkpoint lets writers go on), rather than at the publish
        # commit, whose transaction would hold the lock meanwhile.
        _checkpoint(store)

        def publish() -> list[int]:
            if not store.in_transaction:
                raise LineageError("publish the staged bulk writes inside a write transaction")
            return [_publish(store, type_, payload, table, batch, done)
                    for (type_, payload, table, _), (batch, _, done) in zip(writes, loaded) if done is not None]

        # (the publish commit does not checkpoint either: done after it, lock-free)
        with _no_autocheckpoint(store):
            yield publish
        _checkpoint(store)
    finally:
        for (_, _, table, _), (batch, lock, _) in zip(writes, loaded):
            with suppress(LineageError, sqlite3.Error):
                # (one indexed read when published, the usual case)
                row = store.conn.execute("SELECT event FROM bulk_batches WHERE batch = ?", (batch,)).fetchone()
                if row is not None and row[0] is None:
                    _remove_batch(store, batch, table)
            lock.release(remove=True)


def _checkpoint(store: Store) -> None:
    """A passive WAL checkpoint on SQLite: it takes no write lock (writers go on),
    and copies what no reader still needs; best effort."""
    if isinstance(store.conn, sqlite3.Connection) and not store.in_transaction:
        with suppress(sqlite3.Error, LineageError):
            store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


@contextmanager
def _no_autocheckpoint(store: Store) -> Iterator[None]:
    """No automatic checkpoint at this connection's commits inside (SQLite's
    ``wal_autocheckpoint``, restored after)."""
    conn = store.conn
    was = None
    with suppress(sqlite3.Error, LineageError):
        was = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        conn.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        yield
    finally:
        if was is not None:
            with suppress(sqlite3.Error, LineageError):
                conn.execute(f"PRAGMA wal_autocheckpoint = {int(was)}")


class _Loaded(NamedTuple):
    """What a batch's event commits to: its rows, their digest, the span of their pks."""

    rows: int
    digest: str
    pks: tuple[int, int] | None


def _load(store: Store, table: str, batch: int, rows: Iterable[Sequence[Any]], chunk: int) -> _Loaded:
    """Load ``rows`` into ``table`` as ``batch``, a short transaction per chunk;
    returns what its event will commit to."""
    columns = RECORD_TABLES[table]
    kinds = column_kinds(table, columns)
    with gc_paused():  # (millions of short-lived tuples, no cycles: see codec.gc_paused)
        digests = _Digests(table)
        try:
            n = 0
            lo = hi = 0
            conn = store.conn
            # rows per chunk (one transaction each): from 2,000, then as many as TXN_SECONDS
            # allows at the rate measured (never more than ``chunk``)
            most = max(int(chunk), 100)
            chunks = encode_chunks(table, kinds, iter(rows), min(2_000, most), digests=False)
            with _loading(store):
                for enc in chunks:
                    digests.add(enc)  # (to the helper process, or here when it is busy)
                    with store.transaction():  # short; other writers go in between
                        t0 = time.perf_counter()
                        first, hi = _load_chunk(conn, table, columns, -batch, enc)
                        lo = lo or first
                    took = time.perf_counter() - t0
                    chunks.size = max(200, min(most, int(enc.n * TXN_SECONDS / max(took, 1e-4))))
                    n += enc.n
                    digests.collect()
            return _Loaded(n, digests.hexdigest(), (lo, hi) if n else None)
        finally:
            digests.close()


#: use a helper process for the row digests of bulk writes (`_Digests`)
HELPER = True

#: chunks the helper process may have in hand before the loader computes the next
#: one's digests itself (so the loader never waits for a busy helper)
_HELPER_AHEAD = 2


class _Digests:
    """The rows digest of a bulk write (SHA-256 over the rows' digests, in order),
    with the rows' digests computed by a helper process while SQLite inserts
    (lineage/store/rowdigest.py): the encoding that raw ``executemany`` is handed
    ready-made moves off the loader's core (issue 16).

    Chunks go to the helper while it has fewer than `_HELPER_AHEAD` in hand, and are
    digested here otherwise (a busy machine, a helper still starting): whichever is
    free does the work, and the loader never waits except for the last chunks. The
    helper only hashes values the codec already coerced, and the first row of each
    chunk it answers is checked against the reference `row_digest`; if it dies or
    answers wrong, its chunks are digested here (or the write fails, never records a
    wrong digest)."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.hash = hashlib.sha256()
        self.pending: collections.deque[tuple[EncodedChunk, Future[bytes] | bytes]] = collections.deque()
        self.helper: rowdigest.Helper | None = None
        self.chunks = 0

    def add(self, enc: EncodedChunk) -> None:
        """Digest a chunk: sent to the helper, or here."""
        self.chunks += 1
        if self.chunks == 2 and HELPER:
            # (started with the second chunk: a write of one chunk is over before a
            # helper would be ready; the first is digested here meanwhile)
            self.helper = rowdigest.start_helper()
        if self.helper is not None and sum(not isinstance(d, bytes) and not d.done() for _, d in self.pending) < _HELPER_AHEAD:
            self.pending.append((enc, self.helper.submit(enc.pieces, enc.n)))
        else:
            self.pending.append((enc, rowdigest.chunk_digests(enc.pieces, enc.n)))

    def collect(self, *, wait: bool = False) -> None:
        """Fold the digests of the chunks answered so far, in order (all, waiting, with ``wait``)."""
        while self.pending:
            enc, got = self.pending[0]
            if not isinstance(got, bytes):
                if not (wait or got.done()):
                    return
                got = self._answer(enc, got)
            self.hash.update(got)
            self.pending.popleft()

    def _answer(self, enc: EncodedChunk, future: Future[bytes]) -> bytes:
        from concurrent.futures import CancelledError  # (loaded with the helper)

        try:
            got = future.result()
        except (rowdigest.HelperError, OSError, ValueError, CancelledError):
            self.close()  # gone: this chunk and the rest are digested here
            return rowdigest.chunk_digests(enc.pieces, enc.n)
        if len(got) != enc.n * rowdigest.DIGEST_SIZE or got[:rowdigest.DIGEST_SIZE] != row_digest(
                self.table, [c[0] for c in enc.columns]):
            raise LineageError("bulk write: the row digests of the helper process differ from the reference "
                               "encoding; nothing was recorded")
        return got

    def hexdigest(self) -> str:
        """The rows digest, every chunk folded (waiting for the helper's last answers)."""
        self.collect(wait=True)
        return self.hash.hexdigest()

    def close(self) -> None:
        if self.helper is not None:
            self.helper.close()
            self.helper = None


class _loading:
    """The loading transactions of one bulk write commit like one: without an fsync
    even under ``LINEAGE_DURABILITY=full`` (the publish commit syncs the WAL, and with
    it every chunk before it, the WAL being one file written in order), and without
    checkpointing the WAL at every few commits (each checkpoint syncs the WAL and the
    database: a fifth of the write's time here; nor does this process's background
    checkpointer, which the publish wakes to copy the whole load back once).
    The connection's settings are restored after."""

    def __init__(self, store: Store) -> None:
        self.conn = store.conn
        self.checkpointer = store._checkpointer
        self.was: list[tuple[str, int]] = []

    def __enter__(self) -> None:
        if not isinstance(self.conn, sqlite3.Connection):  # (SQLite's settings only)
            return
        self.checkpointer.pause()
        with suppress(sqlite3.Error, LineageError):
            for pragma, want in (("synchronous", 1), ("wal_autocheckpoint", 0)):
                level = int(self.conn.execute(f"PRAGMA {pragma}").fetchone()[0])
                if level != want:
                    self.conn.execute(f"PRAGMA {pragma} = {want}")
                    self.was.append((pragma, level))

    def __exit__(self, *exc: object) -> None:
        if isinstance(self.conn, sqlite3.Connection):
            self.checkpointer.resume()
        for pragma, level in self.was:
            with suppress(sqlite3.Error, LineageError):
                self.conn.execute(f"PRAGMA {pragma} = {int(level)}")


def _open_batch(store: Store, table: str) -> tuple[int, RunLock]:
    """A new batch of ``table`` and the lock that says its writer is alive. The lock
    is taken before the batch row commits, so no one ever sees the batch unlocked
    while its writer lives."""
    with store.transaction():
        cur = store.conn.execute("INSERT INTO bulk_batches (tbl, started_at) VALUES (?, ?)", (table, now_iso()))
        batch = int(cur.lastrowid or 0)
        lock = RunLock(store.locks_dir / f"bulk-{batch}.lock")
        # (a store whose locks/ cannot be written cannot be judged by anyone either:
        # `clean_leftovers` then leaves the batch alone, which is safe)
        lock.try_acquire()
    return batch, lock


def _publish(store: Store, type_: str, payload: Mapping[str, Any], table: str, batch: int, done: _Loaded) -> int:
    """Append the batch's event and mark it published (in the caller's transaction,
    or one of its own): a few statements, however many rows.

    The payload records the span of the batch's pks (``pks``: first, last): rows of
    other writes loaded meanwhile may lie inside it, but none of the batch's rows
    outside, so `verify` catches a row swapped with or moved to another event's place
    even where the rows digests still match (docs/integrity.md, the order rule)."""
    with store.transaction():
        if table == "params":
            store._forget_known()  # (params published here are not noted: see `Store.known_params`)
        seq, prev = store.head()
        seq += 1
        cur = store.conn.execute("UPDATE bulk_batches SET event = ? WHERE batch = ? AND event IS NULL", (seq, batch))
        if cur.rowcount != 1:  # only an outside edit of the store can do this
            raise LineageError(f"bulk write: its batch {batch} was removed while it was written; nothing was recorded")
        if table == "run_states":  # the `open_runs` cache follows run states as they become visible
            # (only each run's last state of the batch matters: one statement per run)
            last = dict(store.conn.execute("SELECT run, status FROM run_states WHERE event = ? ORDER BY pk", (-batch,)))
            store._track_open_runs(list(last.items()))
        body = {"at": now_iso(), "actor": store.actor, "table": table, "rows": done.rows, **payload}
        if done.pks is not None:
            body["pks"] = list(done.pks)
        return _ledger.append_event(store, seq, prev, type_, body, done.digest)


def _remove_batch(store: Store, batch: int, table: str) -> int:
    """Delete an unpublished batch's rows, a chunk per short transaction, then the
    batch itself; returns the number of rows removed."""
    if table not in BATCHED_TABLES:  # a forged name never reaches the SQL
        return 0
    removed = 0
    while True:
        with store.transaction():
            if store.conn.execute("SELECT 1 FROM bulk_batches WHERE batch = ? AND event IS NULL", (batch,)).fetchone() is None:
                return removed  # published (never for a leftover) or already gone
            pks = [r[0] for r in store.conn.execute(f"SELECT pk FROM {table} WHERE event = ? LIMIT {_DELETE_ROWS}", (-batch,))]
            _fulltext.unindex(store, table, pks)  # (a search may have indexed them; their pks can be reused)
            for start in range(0, len(pks), 500):
                part = pks[start:start + 500]
                cur = store.conn.execute(f"DELETE FROM {table} WHERE pk IN ({', '.join('?' * len(part))})", part)
                removed += max(cur.rowcount, 0)
            _fulltext.settle_mark(store, table)
            if len(pks) < _DELETE_ROWS:
                store.conn.execute("DELETE FROM bulk_batches WHERE batch = ? AND event IS NULL", (batch,))
                return removed


def unpublished(store: Store) -> list[tuple[int, str]]:
    """``(batch, table)`` of every unpublished batch: in flight, or left over."""
    return [(int(b), str(t)) for b, t in store.conn.execute("SELECT batch, tbl FROM bulk_batches WHERE event IS NULL")]


def leftovers(store: Store) -> Iterator[tuple[int, str, RunLock]]:
    """Unpublished batches whose writer is gone (their lock is free), each with its
    lock now held by the caller (release it with ``remove=True`` when done)."""
    for batch, table in unpublished(store):
        lock = RunLock(store.locks_dir / f"bulk-{batch}.lock")
        if lock.try_acquire():
            yield batch, table, lock


def leftover_rows(store: Store) -> tuple[int, int]:
    """``(batches, rows)`` left over by killed bulk writers (their lock is free), read
    only: for `verify`'s report."""
    batches = rows = 0
    for batch, table, lock in leftovers(store):
        lock.release()
        if table in BATCHED_TABLES:
            batches += 1
            rows += store.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE event = ?", (-batch,)).fetchone()[0]
    return batches, rows


def clean_leftovers(store: Store) -> tuple[int, int]:
    """Remove what killed bulk writers left (never a live writer's batch: its lock is
    held); returns ``(batches, rows)`` removed. Nothing to do costs one indexed
    query. A read-only store is left as it is."""
    if store.read_only or store.in_transaction:
        return 0, 0
    batches = rows = 0
    for batch, table, lock in leftovers(store):
        try:
            rows += _remove_batch(store, batch, table)
            batches += 1
        finally:
            lock.release(remove=True)
    return batches, rows
