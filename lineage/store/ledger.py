"""The ledger: the append, verification, checkpoints and event reads (functions over a store).

Everything recorded lives in append-only tables whose every row names the ledger
event that wrote it (`event`). Each event commits to

* the digest of its canonical JSON payload (who, when, what; erasable later), and
* ``rows_digest``: SHA-256 over the digests of the rows it wrote, in (table, pk) order,
  where a row's digest is SHA-256 of ``canonical_json([table, *columns])``;

and the chain links them: ``h_n = H(h_{n-1} ‖ type ‖ H(payload) ‖ rows_digest)``.
`verify` recomputes all of it, so an edited, inserted, deleted or reordered row of any
recorded table, or of the ledger itself, names the first bad event. The stat cache of
file digests is a cache, not evidence, and sits outside the chain."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _json_str  # canonical_json's string encoder
from typing import TYPE_CHECKING, Any

from ..errors import BadArgumentError, StoreCorruptError
from .codec import EMPTY_ROWS_DIGEST, as_bytes, chain_hash, digest_of, first_item, payload_text, row_digest, stored_column_piece
from .erasure import PAYLOAD_RECORDS, committed_digest, erased_rows, in_erased_form, unvouched_payloads
from .rowdigest import chunk_lines
from .schema import BATCHED_TABLES, GENESIS, RECORD_TABLES

if TYPE_CHECKING:
    from .core import Store


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
    #: caches (outside the chain) found stale and rebuilt: not tampering with evidence
    repaired: list[str] = field(default_factory=list)
    #: with a trusted key (`Lineage.verify(key=...)`): the checkpoints that key signed
    #: which hold and vouch for a head of this ledger; None when no key was given
    trusted_checkpoints: list[int] | None = None

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
            fixed = "".join(f"\n  repaired: {r}" for r in self.repaired)
            return f"ok: {self.events} events verified{scope}, head {self.head}{fixed}"
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


#: the newest event's number and hash (`head`; PostgreSQL reads it with its BEGIN)
HEAD_SQL = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"


def head(store: Store) -> tuple[int, str]:
    """``(event count, head hash)``; ``(0, GENESIS)`` for an empty ledger."""
    return head_of(store.conn.execute(HEAD_SQL).fetchone())


def head_of(row: Sequence[Any] | None) -> tuple[int, str]:
    """The head `HEAD_SQL`'s row says (None: an empty ledger)."""
    return (row[0], row[1]) if row else (0, GENESIS)


def append_event(store: Store, seq: int, prev: str, type_: str, body: Mapping[str, Any], rows_digest: str) -> int:
    """Append event ``seq`` after the head hash ``prev``, committing to ``body`` (its
    payload, stored as cleaned canonical JSON) and ``rows_digest``; returns ``seq``.

    The one append of the ledger: `Store.write`, bulk writes and their publish step all
    end here, inside the caller's write transaction (which has read ``head`` in it).
    """
    text = payload_text(body)  # (= clean_text(canonical_json(body)), joined without json.dumps)
    payload_digest = hashlib.sha256(text.encode()).hexdigest()
    h = chain_hash(prev, type_, payload_digest, rows_digest)
    store.conn.execute(
        "INSERT INTO events (seq, type, payload, payload_digest, rows_digest, hash) VALUES (?, ?, ?, ?, ?, ?)",
        (seq, type_, text, payload_digest, rows_digest, h),
    )
    store._advance_head(seq, h)
    return seq


def events(store: Store, start: int = 1, end: int | None = None) -> Iterator[Event]:
    """Ledger events from ``start`` (1-based) through ``end``, in order."""
    sql = "SELECT seq, type, payload, payload_digest, rows_digest, hash FROM events WHERE seq >= ?"
    args: list[Any] = [start]
    if end is not None:
        sql += " AND seq <= ?"
        args.append(end)
    for seq, type_, payload, pd, rd, h in store.conn.execute(sql + " ORDER BY seq", args):
        yield Event(seq, type_, json.loads(payload) if payload is not None else None, pd, rd, h)


def event(store: Store, seq: int) -> Event | None:
    return next(store.events(seq, seq), None)


def check_event_rows(store: Store, seq: int) -> bool:
    """True when the rows carrying event ``seq`` still hash to what it committed to,
    and its payload to its payload digest. Cheap: a few indexed lookups."""
    ev = store.conn.execute("SELECT payload, payload_digest, rows_digest FROM events WHERE seq = ?", (seq,)).fetchone()
    if ev is None:
        return False
    payload, payload_digest, rows_digest = ev
    if payload is not None and hashlib.sha256(as_bytes(payload)).hexdigest() != payload_digest:
        return False
    h = hashlib.sha256()
    for table, columns in RECORD_TABLES.items():
        rows = store.conn.execute(f"SELECT pk, {', '.join(columns)} FROM {table} WHERE event = ? ORDER BY pk", (seq,)).fetchall()
        batch = _batch_of(store, table, seq) if table in BATCHED_TABLES else None
        if batch is not None:  # a bulk write: its rows carry -batch (lineage/store/bulk.py)
            if rows:
                return False  # rows claiming a bulk event's number besides its batch: inserted
            rows = store.conn.execute(f"SELECT pk, {', '.join(columns)} FROM {table} WHERE event = ? ORDER BY pk",
                                      (-batch,)).fetchall()
            if not _in_span(store, table, batch, payload):
                return False
        mine = erased_rows(store, table, [r[0] for r in rows]).get(table, {}) if rows else {}
        for pk, *values in rows:
            erasure = mine.get(pk) if in_erased_form(table, values) else None
            h.update(committed_digest(row_digest(table, values), erasure))
        if rows and batch is None and not rows_in_place(store, table, seq, rows[0][0], rows[-1][0]):
            return False
    return h.hexdigest() == rows_digest


def _in_span(store: Store, table: str, batch: int, payload: Any) -> bool:
    """True when every row of a published bulk batch lies within the pk span its
    event's payload committed to (``pks``; an erased payload cannot be checked)."""
    try:
        lo, hi = json.loads(payload)["pks"]
    except (TypeError, ValueError, KeyError, AttributeError):
        return True  # no span recorded (no rows, an erased payload): the digests decide
    # (through the batch's rows by the event index: PostgreSQL answered a bare MIN/MAX
    # by walking the primary key from one end, filtering on event, a scan of the
    # table per batch; a materialized CTE is read whole, by the index)
    first, last = store.conn.execute(
        f"WITH batch_rows AS MATERIALIZED (SELECT pk FROM {table} WHERE event = ?) "
        "SELECT MIN(pk), MAX(pk) FROM batch_rows", (-batch,)).fetchone()
    try:
        return first is None or (lo <= first and last <= hi)
    except TypeError:  # a forged span
        return False


def _batch_of(store: Store, table: str, seq: int) -> int | None:
    """The bulk batch that event ``seq`` published into ``table``, or None."""
    row = store.conn.execute("SELECT batch FROM bulk_batches WHERE event = ? AND tbl = ?", (seq, table)).fetchone()
    return row[0] if row and isinstance(row[0], int) else None


def rows_in_place(store: Store, table: str, seq: int, lo: int, hi: int) -> bool:
    """The order rule around one event's rows ``lo..hi`` (pks) of ``table``: no row
    of another event among them, none of a later event before them, none of an
    earlier event after them. Index and rowid-range lookups only."""
    c = store.conn
    # (rows of bulk batches, event < 0, interleave with others by pk: their place in
    # history is their publishing event's, see lineage/store/bulk.py)
    bulk = " AND NOT event < 0" if table in BATCHED_TABLES else ""
    if c.execute(f"SELECT 1 FROM {table} WHERE pk BETWEEN ? AND ? AND event IS NOT ?{bulk} LIMIT 1", (lo, hi, seq)).fetchone():
        return False
    before = c.execute(f"SELECT event FROM {table} WHERE pk < ?{bulk} ORDER BY pk DESC LIMIT 1", (lo,)).fetchone()
    after = c.execute(f"SELECT event FROM {table} WHERE pk > ?{bulk} ORDER BY pk LIMIT 1", (hi,)).fetchone()
    try:
        return (before is None or before[0] <= seq) and (after is None or after[0] >= seq)
    except TypeError:  # a forged non-numeric event number next to it
        return False


def last_checkpoint(store: Store) -> Event | None:
    row = store.conn.execute("SELECT seq FROM events WHERE type = 'checkpoint' ORDER BY seq DESC LIMIT 1").fetchone()
    return store.event(row[0]) if row else None


def verify(store: Store, *, head: str | None = None, record: bool = False, since_checkpoint: bool = False,
           progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Replay the ledger and every recorded table (see the module docstring).

    ``head``: a hash remembered from earlier that must still be in this history.
    ``record``: append the result as a ``checkpoint`` event (only when it passed).
    ``since_checkpoint``: start from the last checkpoint instead of event 1 (the
    prefix before it was verified when the checkpoint was recorded).

    Everything is read from one snapshot (`snapshot`), so writers appending
    meanwhile are simply not seen: no false alarm. Derived caches (``open_runs``)
    are checked against the evidence and repaired; that is reported in
    ``.repaired``, never as tampering.
    """
    # `head is not None`, not `if head`: an empty --head (a failed `HEAD=$(…)` in a script)
    # is a malformed head, never a silent plain verify
    want_head = head.lower() if head is not None else None
    if want_head is not None and (len(want_head) < 12 or not all(c in "0123456789abcdef" for c in want_head)):
        # a short prefix would match some event of almost any history
        raise BadArgumentError(f"--head takes the hex head hash `lineage verify` printed (at least 12 digits), not {head!r}")
    outer = store.in_transaction  # inside a caller's snapshot or batch: repair nothing
    with store.snapshot():
        report = check_chain(store, head, since_checkpoint, progress)
        # (a full check reads every run state anyway; an incremental one stays cheap)
        stale = store._stale_open_runs() if report.checked_from == 0 else set()
        from .bulk import leftover_rows  # (bulk writes append through this module)

        left = leftover_rows(store)
    if left[0] and not outer:
        from .bulk import clean_leftovers

        removed = clean_leftovers(store)
        report.repaired.append(f"bulk write leftovers: {removed[0]} unpublished batch{'es' if removed[0] != 1 else ''} "
                               f"({removed[1]:,} rows) of killed bulk writers, never visible and not evidence: removed")
    elif left[0]:
        report.repaired.append(f"bulk write leftovers: {left[0]} unpublished batch{'es' if left[0] != 1 else ''} "
                               f"({left[1]:,} rows) of killed bulk writers, never visible and not evidence")
    if stale and not outer:
        report.repaired.append(f"open_runs cache: {len(stale)} entr{'y' if len(stale) == 1 else 'ies'} did not match "
                               "the recorded run states (a cache, not evidence): rebuilt")
        store._rebuild_open_runs()
    if report.ok and record:
        store.write("checkpoint", {"verified_through": report.events, "head": report.head, "from": report.checked_from})
    return report


def check_chain(store: Store, head: str | None, since_checkpoint: bool,
                progress: Callable[[int, int], None] | None) -> VerifyReport:
    """The VerifyReport of replaying the chain and every event's rows from event 1 (or the last
    checkpoint), with ``head`` looked for; reads only (`verify` adds repairs and checkpoints)."""
    total, _ = store.head()
    start, prev = 1, GENESIS
    if since_checkpoint:
        cp = last_checkpoint(store)
        if cp is not None and cp.payload is not None:
            through = cp.payload.get("verified_through")
            # Trust only a checkpoint that lies after what it vouches for, so the
            # checkpoint event itself (payload, chain link) is among what is checked:
            # an edited one pointing at itself or past it would otherwise skip every
            # check. Anything else (a forged non-number) means a full check.
            if type(through) is int and 0 < through < cp.seq:
                base = store.event(through)
                if base is not None and base.hash == cp.payload.get("head"):
                    start, prev = through + 1, base.hash
    report = VerifyReport(ok=True, events=0, head=prev, checked_from=start - 1)
    problems: list[tuple[int, str]] = []
    want_head = head.lower() if head else None
    found_head = False
    if want_head and start > 1:  # a head in the prefix the checkpoint vouches for
        found_head = any(str(h).startswith(want_head) for (h,) in store.conn.execute(
            "SELECT hash FROM events WHERE seq < ? AND hash >= ? AND hash < ?", (start, want_head, want_head + "g")))

    row_groups = event_row_digests(store, start - 1, problems)
    pending = next(row_groups, None)
    expected = start
    sha, fromhex = hashlib.sha256, bytes.fromhex
    erased: list[int] = []  # events whose payload is gone, each to be found in an erasure record
    records: list[tuple[int, str, str | None]] = []  # the erasure records (`erasure.PAYLOAD_RECORDS`)
    for seq, type_, payload, pd, rd, h in store.conn.execute(
        "SELECT seq, type, payload, payload_digest, rows_digest, hash FROM events WHERE seq >= ? ORDER BY seq", (start,)
    ):
        if seq != expected:
            problems.append((expected, f"events {expected}..{seq - 1} are missing from the ledger"))
            expected = seq
        if payload is None:
            erased.append(seq)
        elif sha(as_bytes(payload)).hexdigest() != pd:
            problems.append((seq, f"event {seq} ({type_}): payload does not match its digest"))
        if type_ in PAYLOAD_RECORDS:
            records.append((seq, type_, payload))
        # rows belonging to events that do not exist (inserted rows)
        while pending is not None and pending[0] < seq:
            problems.append((pending[0], f"rows claim event {pending[0]}, which is not in the ledger"))
            pending = next(row_groups, None)
        actual = EMPTY_ROWS_DIGEST
        if pending is not None and pending[0] == seq:
            actual = pending[1]
            pending = next(row_groups, None)
        if actual != rd:
            problems.append((seq, f"event {seq} ({type_}): recorded rows were edited, inserted or deleted"
                                  f" ({_rows_now(store, seq)})"))
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
    if start == 1:  # bulk rows naming no batch at all were inserted (lineage/store/bulk.py)
        for table in BATCHED_TABLES:
            orphan = store.conn.execute(f"SELECT event FROM {table} WHERE event < 0 AND event NOT IN "
                                        "(SELECT -batch FROM bulk_batches) LIMIT 1").fetchone()
            if orphan is not None:
                problems.append((expected, f"{table}: rows claim bulk batch {-orphan[0]}, which does not exist "
                                           "(inserted rows)"))
    # the events copied from another store (`lineage push`) replay to its head
    from .publish import check_pushes

    problems += check_pushes(store, start)
    if erased:  # (an erasure record always comes after what it erased: within what was replayed)
        problems += unvouched_payloads(store, erased, records)
    report.events = expected - 1
    report.head = prev
    # a remembered head found nowhere names no bad event of this ledger (first_bad
    # stays an event number or None): it is said apart, after the events' problems
    lost_head: list[str] = []
    if want_head is not None:
        report.head_found = found_head
        if not found_head:
            lost_head.append(f"the remembered head {head} matches no event of this ledger ({report.events} events): "
                             "it was truncated or rewritten since, or the head is from another store")
    if problems or lost_head:
        problems.sort(key=lambda p: p[0])
        report.ok = False
        report.first_bad = problems[0][0] if problems else None
        report.problems = [p[1] for p in problems] + lost_head
    return report


def _rows_now(store: Store, seq: int) -> str:
    """Where an event's rows are now, for a rows-digest problem: ``rows now: params 1``.
    The digest covers all of an event's rows at once, so it cannot say which row
    changed; the tables holding them are where an auditor looks (read only on a
    failure, through each table's event index)."""
    counts = []
    for table in RECORD_TABLES:
        n = store.conn.execute(f"SELECT count(*) FROM {table} WHERE event = ?", (seq,)).fetchone()[0]
        if table in BATCHED_TABLES:
            n += store.conn.execute(f"SELECT count(*) FROM {table} WHERE event IN "
                                    "(SELECT -batch FROM bulk_batches WHERE tbl = ? AND event = ?)",
                                    (table, seq)).fetchone()[0]
        if n:
            counts.append(f"{table} {n:,}")
    return "rows now: " + (", ".join(counts) if counts else "none")


def event_row_digests(store: Store, after: int, problems: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """``(event, rows digest)`` for every event that has rows, in event order,
    merged across tables (`by_event`) so memory stays bounded by a chunk of rows
    per table.

    Also checks the order rule (docs/integrity.md): in every table, rows sorted by
    ``pk`` are sorted by event. Read in (event, pk) order, pks must only grow; a pk
    at or below the largest seen so far is a row placed before rows of an earlier
    event (a swapped pk, a row moved between events), which would change what
    "latest" means. The earliest event involved is appended to ``problems``.
    """

    erased = erased_rows(store)
    # The bulk batches published after `after`, per batched table, read once: their
    # rows are merged in at their events' places (`batches`), and no row of the table
    # names one of those events directly (its rows carry -batch: lineage/store/bulk.py).
    # A row that does was moved out of its batch into its event: the same rows in
    # another form, which the digests alone saw only when the merge below happened to
    # order it as before.
    published_batches = {t: store.conn.execute(
        "SELECT b.batch, b.event, e.payload FROM bulk_batches b LEFT JOIN events e ON e.seq = b.event "
        "WHERE b.tbl = ? AND b.event > ? ORDER BY b.event", (t, after)).fetchall() for t in BATCHED_TABLES}
    claimed = {t: {event for _, event, _ in rows} for t, rows in published_batches.items()}

    def stream(table: str, cur: Iterator[Any] | None = None,
               check_order: bool = True) -> Iterator[tuple[Sequence[Any], Sequence[bytes]]]:
        # (events, row digests) chunk by chunk: the digest of `row_digest`, column by
        # column (json.dumps per row was most of verify's time), a value the same
        # throughout the chunk written into the rows' template once (`chunk_lines`)
        columns = RECORD_TABLES[table]
        name = _json_str(table)
        mine = erased.get(table)
        published = claimed.get(table) if cur is None else None  # (the direct rows of a batched table)
        if cur is None:
            sql = f"SELECT event, pk, {', '.join(columns)} FROM {table} WHERE event > ? ORDER BY event, pk"
            cur = store.conn.execute(sql, (after,))
        top_pk: int | None = -1 if check_order else None
        top_event, first = 0, True
        while True:
            rows = list(itertools.islice(cur, 2000))
            if not rows:
                return
            events, pks, *cols = zip(*rows)
            if set(map(type, events)) - {int, float}:
                # a forged event number that is no number (SQLite sorts it after every
                # number): reported here, and left out of the order of the rest
                bad = next(e for e in events if not isinstance(e, (int, float)))
                problems.append((-1, f"{table}: a row names the event {bad!r}, which is no event number (an edited row)"))
                rows = [r for r in rows if isinstance(r[0], (int, float))]
                if not rows:
                    return
                events, pks, *cols = zip(*rows)
            if published and not published.isdisjoint(events):
                moved = min(published.intersection(events))
                problems.append((moved, f"event {moved} ({table}): a row names the event directly, but the event "
                                        "published a bulk batch: a row was moved out of its batch"))
                published = None  # one report per table
            if top_pk is not None:
                if first and after > 0:
                    # rows of checkpointed events placed after the new ones
                    old = store.conn.execute(f"SELECT event, pk FROM {table} WHERE pk > ? AND event <= ? ORDER BY pk LIMIT 1",
                                            (pks[0], after)).fetchone()
                    if old is not None:
                        problems.append((after + 1, _order_problem(table, old[0], old[1], events[0], pks[0])))
                first = False
                if top_pk >= pks[0] or any(map(operator.ge, pks, pks[1:])):
                    for e, pk in zip(events, pks):
                        if pk <= top_pk:
                            problems.append((max(top_event, 0), _order_problem(table, top_event, top_pk, e, pk)))
                            top_pk = None  # one report per table: the earliest event involved
                            break
                        top_pk, top_event = pk, e
                else:
                    top_pk, top_event = pks[-1], events[-1]
            lines = chunk_lines([name, *map(stored_column_piece, cols)], len(rows))
            digests = list(map(digest_of, map(hashlib.sha256, map(str.encode, lines))))
            if mine:  # erased rows count as what their event committed to
                digests = [committed_digest(d, mine.get(pk)) if pk in mine and in_erased_form(table, r[2:]) else d
                           for d, pk, r in zip(digests, pks, rows)]
            yield events, digests

    def batches(table: str) -> Iterator[Any]:
        # rows of bulk writes published after `after`, each batch at its event's place,
        # in pk order within it (the order its event committed to; lineage/store/bulk.py)
        columns = RECORD_TABLES[table]
        for batch, event, payload in published_batches[table]:
            if isinstance(batch, int) and isinstance(event, int):
                if not _in_span(store, table, batch, payload):
                    problems.append((event, f"event {event} ({table}): a row lies outside the span of rows its "
                                            "event committed to: rows were reordered or moved between events"))
                yield from store.conn.execute(f"SELECT {event}, pk, {', '.join(columns)} FROM {table} WHERE event = ? ORDER BY pk",
                                              (-batch,))

    # A table's direct rows come before its batches' (an event's rows of one table
    # are all direct or all of its batch: `claimed` above), so an event's rows are
    # hashed in (table order, pk) order
    streams = []
    for t in RECORD_TABLES:
        streams.append(stream(t))
        if t in BATCHED_TABLES:
            streams.append(stream(t, batches(t), check_order=False))
    return by_event(streams)


def by_event(streams: Sequence[Iterator[tuple[Sequence[Any], Sequence[bytes]]]]) -> Iterator[tuple[Any, str]]:
    """``(event, rows digest)`` in event order, from ``streams`` of row chunks
    ``(events, row digests)``, each stream in event order: the SHA-256 over an
    event's row digests, stream by stream in the given order, each stream's rows in
    its own order. The same as merging the rows one at a time and hashing each
    event's group (how verify did it: a Python step per row, a third of its time),
    here in slices that C-level sorts and maps take whole; memory stays bounded by a
    chunk per stream, however many rows one event has.

    An event cut by a chunk's end is finished apart (`_finish_event`). A stream out
    of event order (SQLite's answer to ``ORDER BY event``: a damaged index) raises
    StoreCorruptError rather than hash rows under the wrong events.
    """
    buffers = [b for b in map(_Buffer, streams) if b.pull()]
    while buffers:
        live = [b for b in buffers if b.chunks is not None]
        # every row of an event before `horizon` has been read, from every stream
        horizon = min(b.events[-1] for b in live) if live else None
        parts = [p for p in (b.take_before(horizon) for b in buffers) if p is not None]
        if parts:
            yield from _digests_by_event(parts)
        if horizon is None:
            return
        yield horizon, _finish_event(horizon, buffers)
        buffers = [b for b in buffers if b.chunks is not None or b.start < len(b.events)]


class _Buffer:
    """The rows of one stream read and not yet hashed: ``events[start:]``,
    ``digests[start:]``; ``chunks`` is None once the stream is exhausted."""

    __slots__ = ("chunks", "digests", "events", "start")

    def __init__(self, chunks: Iterator[tuple[Sequence[Any], Sequence[bytes]]]) -> None:
        self.chunks: Iterator[tuple[Sequence[Any], Sequence[bytes]]] | None = chunks
        self.events: Sequence[Any] = ()
        self.digests: Sequence[bytes] = ()
        self.start = 0

    def pull(self) -> bool:
        """Read the stream's next non-empty chunk in place of the rows taken (marking
        the stream exhausted when there is none); whether rows are left to take."""
        if self.chunks is not None:
            for events, digests in self.chunks:
                if events:
                    # (`events` keeps the last chunk's events even once all are taken)
                    if not all(map(operator.le, events, events[1:])) or (self.events and events[0] < self.events[-1]):
                        raise StoreCorruptError("the store returned rows out of event order: its indexes are "
                                                "damaged (`sqlite3 lineage.db 'REINDEX'`, then verify again)")
                    self.events = [*self.events[self.start:], *events]
                    self.digests = [*self.digests[self.start:], *digests]
                    self.start = 0
                    return True
            self.chunks = None
        return self.start < len(self.events)

    def take_before(self, horizon: Any) -> tuple[Sequence[Any], Sequence[bytes]] | None:
        """``(events, digests)`` of the rows before event ``horizon`` (all rows
        when None), taken from the buffer."""
        start = self.start
        end = len(self.events) if horizon is None else bisect.bisect_left(self.events, horizon, start)
        if end <= start:
            return None
        self.start = end
        return self.events[start:end], self.digests[start:end]


def _digests_by_event(parts: Sequence[tuple[Sequence[Any], Sequence[bytes]]]) -> Iterator[tuple[Any, str]]:
    """``(event, rows digest)`` of rows taken from the buffers (`_Buffer.take_before`),
    in stream order, every row of each of their events among them."""
    if len(parts) == 1:
        events, digests = parts[0]
    else:  # a stable sort: an event's rows stay in stream order, and in order within each
        rows = sorted(itertools.chain.from_iterable(zip(e, d) for e, d in parts), key=first_item)
        events, digests = [r[0] for r in rows], [r[1] for r in rows]
    if len(set(events)) == len(events):  # one row per event (a metric, a param): all in C
        return zip(events, map(_HEX, map(hashlib.sha256, digests)))
    return ((event, hashlib.sha256(b"".join(map(_SECOND, group))).hexdigest())
            for event, group in itertools.groupby(zip(events, digests), key=first_item))


def _finish_event(event: Any, buffers: Sequence[_Buffer]) -> str:
    """The rows digest of ``event``, every stream's earlier rows already taken, the
    streams that have more of its rows read on chunk by chunk and hashed as they come."""
    h = hashlib.sha256()
    for b in buffers:  # (in stream order)
        while True:
            end = bisect.bisect_right(b.events, event, b.start)
            h.update(b"".join(b.digests[b.start:end]))
            b.start = end
            if end < len(b.events) or not b.pull():
                break
    return h.hexdigest()


_SECOND = operator.itemgetter(1)
_HEX = operator.methodcaller("hexdigest")


def checkpoints(store: Store) -> list[Event]:
    """Every checkpoint event, oldest first (found through the events_checkpoint index)."""
    seqs = [r[0] for r in store.conn.execute("SELECT seq FROM events WHERE type = 'checkpoint' ORDER BY seq")]
    return [e for e in (store.event(s) for s in seqs) if e is not None]


def event_with_hash(store: Store, prefix: str) -> int | None:
    """The number of the first event whose stored hash starts with the hex ``prefix``
    (a head remembered elsewhere), or None."""
    want = prefix.lower()
    # (hex text sorts as its digits: the prefix's range, compared in SQL, not row by row in Python)
    row = store.conn.execute("SELECT min(seq) FROM events WHERE hash >= ? AND hash < ?", (want, want + "g")).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def _order_problem(table: str, early_event: Any, early_pk: Any, late_event: Any, late_pk: Any) -> str:
    return (f"event {early_event} ({table}): its row {early_pk} is placed after row {late_pk} of the later event "
            f"{late_event}: rows were reordered or moved between events (this changes which value is the latest)")
