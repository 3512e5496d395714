"""Publishing a store's history into another store (`lineage push` / `lineage pull`).

A push copies the source's ledger events that the target does not have yet, each
with the rows it recorded, onto the end of the target's chain, then appends one
``push`` event that links them to the source:

* each copied event keeps its type, its payload (text and digest) and, row for row,
  what it recorded, so its ``rows_digest`` is the source's; it is re-chained on the
  target (``h = H(target's previous hash ‖ type ‖ payload digest ‖ rows digest)``);
* the ``push`` event records the source's store id (the hash of its first event),
  the source range copied (``from``..``to``), the source hash just before it
  (``prev``) and the source head after it (``head``). Replaying the copied events
  from ``prev`` must give ``head``: `check_pushes`, run by ``verify``, does it. So the
  target's verify proves its own chain and that the copies are exactly the source's
  events ``from``..``to``; ``lineage verify --head HEAD`` on the source proves that
  history is still the source's.

Rows that are already there are not copied twice: a node or prediction whose id the
target holds (content addressing: the same dataset or environment logged on two
machines), an identical edge or alias. Such a copied event then commits to fewer rows
than the source's; the push event keeps the source's rows digest for it
(``rows_digests``), so the replay still reaches the source head. Events the source
itself got from the target (a pull earlier) are not sent back: the push event keeps
their ``[type, payload digest, rows digest]`` (``omitted``) for the replay. Nor are
events the target holds already by another path (history that went A → server → B
and then B → A, or B → server → A then B → A): an event is the same event wherever it
was copied to, since a copy keeps its type, its payload (with its time and actor) and
its rows digest (the source's, as the push event kept it where rows were skipped);
an event of the source whose ``(type, payload digest, rows digest)`` the target holds
is omitted the same way, so params, metrics and tags are never recorded twice, by
any path (`_origins`).

Erasure: a row erased in the source is copied in its erased form (the original is gone),
and a row copied earlier and erased in the source since is erased on the target too.
Either way the push event records, in the target's own ``redactions`` rows (target
row numbers), the digest the row's event committed to. The source's ``redact`` events
are copied as they are; their redaction rows name source row numbers, so the target
ignores them (`copied_ranges`).

Everything is one transaction of the target: a push that fails leaves it unchanged.
Artifacts (content-addressed files) are copied before it, which is harmless if the
transaction then fails (unreferenced files under their own digest).
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import IntegrityError, WriteRefusedError
from . import erasure as _erasure
from . import files as _files
from . import fulltext as _fulltext
from .bulk import event_numbers
from .codec import chain_hash, row_digest
from .schema import BATCHED_TABLES, GENESIS, RECORD_TABLES, published

if TYPE_CHECKING:
    from .core import Store

#: tables whose rows are not copied twice, and the columns that make a row "the same"
_UNIQUE: dict[str, tuple[str, ...]] = {
    "nodes": ("id",),
    "predictions": ("id",),
    "edges": ("src", "dst", "rel", "role"),
    "aliases": ("node", "name"),
}


@dataclass
class PushResult:
    """What a push (or pull) did. ``events``: events copied; ``from_seq``..``to_seq``:
    the source range they cover; ``head``: the source head now published;
    ``push_event``: the target's ``push`` event (None when there was nothing new)."""

    source: str | None
    source_location: str
    target_location: str
    events: int = 0
    from_seq: int | None = None
    to_seq: int | None = None
    head: str | None = None
    push_event: int | None = None
    omitted: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    erased: int = 0
    artifacts: int = 0
    artifacts_note: str | None = None

    @property
    def changed(self) -> bool:
        return self.push_event is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "from": self.source_location, "to": self.target_location,
            "events": self.events, "from_seq": self.from_seq, "to_seq": self.to_seq, "head": self.head,
            "push_event": self.push_event, "omitted": self.omitted, "skipped": dict(self.skipped),
            "erased": self.erased, "artifacts": self.artifacts, "artifacts_note": self.artifacts_note,
        }

    def __str__(self) -> str:
        if not self.changed:
            return f"nothing new to publish from {self.source_location} to {self.target_location}"
        extra = []
        if self.skipped:
            extra.append("already there: " + ", ".join(f"{n} {t}" for t, n in sorted(self.skipped.items())))
        if self.erased:
            extra.append(f"{self.erased} erased row(s) kept erased")
        if self.artifacts:
            extra.append(f"{self.artifacts} artifact file(s) copied")
        if self.artifacts_note:
            extra.append(self.artifacts_note)
        tail = f" ({'; '.join(extra)})" if extra else ""
        return (f"published events {self.from_seq}..{self.to_seq} of {self.source_location} "
                f"({self.events} copied) to {self.target_location} as event {self.push_event}, "
                f"source head {self.head}{tail}")


def store_id(store: Store) -> str | None:
    """A store's identity: a random id kept in its ``meta`` table, made on first use
    (a label, not evidence: the push event's ``prev``/``head`` hashes are what tie
    copies to the source's chain). A file copy of a store shares its id, which is how
    pushing a store into its own copy is caught. None for a read-only store that has
    none yet and an empty ledger."""
    row = store.conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
    if row:
        return str(row[0])
    if store.read_only:
        first = store.conn.execute("SELECT hash FROM events WHERE seq = 1").fetchone()
        return f"h1:{first[0]}" if first else None
    import uuid

    with store.transaction():
        store.conn.execute("INSERT INTO meta (key, value) VALUES ('store_id', ?) ON CONFLICT (key) DO NOTHING",
                           (uuid.uuid4().hex,))
        return str(store.conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()[0])


def _push_events(store: Store) -> list[tuple[int, dict[str, Any]]]:
    """``(seq, payload)`` of this store's own ``push`` events, oldest first (through
    the events_push index). A push event copied from another store (it was in the
    history pulled or pushed here) describes that store's numbering and is left out:
    walking newest first, each push event's copies are known before they are met,
    since a push's copies always come just before its own event."""
    found = []
    for seq, payload in store.conn.execute("SELECT seq, payload FROM events WHERE type = 'push' ORDER BY seq DESC"):
        try:
            body = json.loads(payload) if payload is not None else None
        except (TypeError, ValueError):
            continue  # an edited payload: verify reports it
        if isinstance(body, dict):
            found.append((int(seq), body))
    native: list[tuple[int, dict[str, Any]]] = []
    covered: list[tuple[int, int]] = []
    for seq, body in found:
        if any(lo <= seq <= hi for lo, hi in covered):
            continue
        native.append((seq, body))
        first, n = body.get("first"), body.get("copies")
        if type(first) is int and type(n) is int and n > 0:
            covered.append((first, first + n - 1))
    return native[::-1]


def copied_ranges(store: Store) -> list[tuple[int, int]]:
    """``(first, last)`` target event numbers of the events copied by each push, in
    order. Rows of those events that name row numbers (``redactions.row_pk``) name the
    source's rows, not this store's."""
    out = []
    for _, body in _push_events(store):
        first, n = body.get("first"), body.get("copies")
        if type(first) is int and type(n) is int and n > 0:
            out.append((first, first + n - 1))
    return sorted(out)


def in_ranges(ranges: Sequence[tuple[int, int]], seq: int) -> bool:
    """True when ``seq`` lies in one of the sorted ``ranges``."""
    i = bisect.bisect_right(ranges, (seq, float("inf"))) - 1
    return i >= 0 and ranges[i][0] <= seq <= ranges[i][1]


def _from_target(source: Store, target_id: str | None) -> list[tuple[int, int]]:
    """Source event ranges that came from the target (copies and their push events)."""
    if target_id is None:
        return []
    out = []
    for seq, body in _push_events(source):
        if body.get("source") == target_id:
            first, n = body.get("first"), body.get("copies")
            if type(first) is int and type(n) is int and n > 0:
                out.append((first, first + n - 1))
            out.append((seq, seq))
    return sorted(out)


def _pushed_through(target: Store, sid: str) -> tuple[int, str]:
    """How far the target has the source's history: ``(source seq, its hash)``."""
    last, head = 0, GENESIS
    for _, body in _push_events(target):
        to = body.get("to")
        if body.get("source") == sid and type(to) is int and to > last:
            last, head = to, str(body.get("head"))
    return last, head


def _location(store: Store) -> str:
    return str(getattr(store, "location", None) or store.path)


# ---------------------------------------------------------------------------
# the push


def push(source: Store, target: Store, *, source_location: str | None = None,
         target_location: str | None = None) -> PushResult:
    """Copy what ``target`` lacks of ``source``'s history (see the module docstring);
    returns a PushResult. Idempotent: a second push of the same history adds nothing.

    Raises IntegrityError when the source fails verification, WriteRefusedError when
    the target is the source (or a copy of it) or when the source's history no longer
    extends what was pushed before; the target is then unchanged.
    """
    src_loc = source_location or _location(source)
    dst_loc = target_location or _location(target)
    sid = store_id(source)
    result = PushResult(sid, src_loc, dst_loc)
    if sid is None or source.head()[0] == 0:
        return result
    tid = store_id(target)
    if tid == sid:
        raise WriteRefusedError(f"{dst_loc} starts with the same history as {src_loc}: it is the same store "
                                "or a copy of it, so there is nothing to publish there")
    with source.snapshot():
        total, head = source.head()
        done, done_head = _pushed_through(target, sid)
        at_done = source.event(done) if done else None
        if (done == total and (at_done is None or at_done.hash == done_head)
                and not _erasures_since(source, target, sid, done)):
            return result  # nothing new: no need to verify the whole source again
        report = source.verify()
        if not report.ok:
            raise IntegrityError(f"{src_loc} fails verification at event {report.first_bad} "
                                 f"({report.problems[0] if report.problems else ''}): nothing was published", report)
        _copy_artifacts(source, target, result)
        with target.transaction():
            done, done_head = _pushed_through(target, sid)
            if done > total or (done and (source.event(done) is None or source.event(done).hash != done_head)):  # type: ignore[union-attr]
                raise WriteRefusedError(
                    f"{src_loc}'s history no longer extends what {dst_loc} holds of it (event {done}, head "
                    f"{done_head[:16]}…): it was rewritten or is another store; nothing was published")
            later_erasures = _erasures_since(source, target, sid, done)
            if done == total and not later_erasures:
                return result
            _copy(source, target, result, sid, tid, done, total, head, later_erasures)
    if result.erased:
        _fulltext.after_erasure(target)
        _erasure.scrub(target)
    return result


def _rows_digest_overrides(store: Store) -> dict[int, str]:
    """``{event: the rows digest it had in its source}`` for this store's copied events
    that committed to fewer rows than in their source (rows already there were
    skipped: the push event kept the source's digest, ``rows_digests``)."""
    out: dict[int, str] = {}
    for _, body in _push_events(store):
        kept = body.get("rows_digests") or {}
        lo, hi, first = body.get("from"), body.get("to"), body.get("first")
        if not kept or not (type(lo) is int and type(hi) is int and type(first) is int):
            continue
        omitted = set(_omitted_seqs(body))
        seq = first
        for src_seq in range(lo, hi + 1):
            if src_seq in omitted:
                continue
            if str(src_seq) in kept:
                out[seq] = str(kept[str(src_seq)])
            seq += 1
    return out


def _origins(store: Store) -> set[tuple[str, str, str]]:
    """The ``(type, payload digest, rows digest as first recorded)`` of every event of
    ``store``: what an event is, wherever it was copied to (`_copy` omits a source event
    the target holds already). One read of the events' digests."""
    overrides = _rows_digest_overrides(store)
    return {(str(t), str(pd), overrides.get(seq, str(rd)))
            for seq, t, pd, rd in store.conn.execute("SELECT seq, type, payload_digest, rows_digest FROM events")}


def _copy(source: Store, target: Store, result: PushResult, sid: str, tid: str | None, done: int, total: int,
          head: str, later_erasures: list[tuple[Any, ...]]) -> None:
    """The push's one transaction on the target (the caller holds it)."""
    # rows copied straight into the target's tables are not noted in what its
    # connection remembers of its own runs' params and edges: drop that memory
    target._forget_known()
    omit = _from_target(source, tid)
    # Events the target may hold by another path exist only where one side holds
    # copies (push events of its own): otherwise both histories are native, and
    # different stores (their ids differ) share no event
    src_pushes = bool(_push_events(source))
    held = _origins(target) if src_pushes or _push_events(target) else set()
    src_overrides = _rows_digest_overrides(source) if held and src_pushes else {}
    seq, prev = target.head()
    first = seq + 1
    prev_src = source.event(done).hash if done else GENESIS  # type: ignore[union-attr]
    omitted: dict[str, list[str]] = {}
    rows_digests: dict[str, str] = {}
    redactions: list[tuple[Any, ...]] = []
    aliases: list[tuple[Any, ...]] = []
    payloads: list[int] = []  # our events whose payload is erased: copied so, or erased by this push
    copies = 0
    # (most stores have never erased anything: then no row needs the redaction lookup)
    any_erased = source.conn.execute("SELECT 1 FROM redactions LIMIT 1").fetchone() is not None
    # which tables each event has rows in (one index-only scan per table), so an event
    # is read from the two or three tables it wrote, not from all of them
    touched: dict[int, list[str]] = {}
    for table in RECORD_TABLES:
        for (event,) in source.conn.execute(
                f"SELECT DISTINCT event FROM {table} WHERE event > ? AND event <= ?", (done, total)):
            touched.setdefault(event, []).append(table)
    # (rows of bulk writes carry -batch: they belong to the event that published it)
    batches: dict[tuple[int, str], int] = {}
    for batch, event, table in source.conn.execute(
            "SELECT batch, event, tbl FROM bulk_batches WHERE event > ? AND event <= ?", (done, total)).fetchall():
        if table in BATCHED_TABLES:
            batches[(event, table)] = batch
            touched.setdefault(event, []).append(table)
    for ev in source.conn.execute(
            "SELECT seq, type, payload, payload_digest, rows_digest FROM events WHERE seq > ? AND seq <= ? ORDER BY seq",
            (done, total)).fetchall():
        src_seq, type_, payload, pd, rd = ev
        if in_ranges(omit, src_seq) or (held and (type_, pd, src_overrides.get(src_seq, rd)) in held):
            omitted[str(src_seq)] = [type_, pd, rd]
            continue
        seq += 1
        copies += 1
        mine = _copy_rows(source, target, src_seq, seq, rd, result, redactions, aliases, any_erased,
                          touched.get(src_seq, []), batches)
        if mine != rd:
            rows_digests[str(src_seq)] = rd
        if payload is None:
            payloads.append(seq)
        h = chain_hash(prev, type_, pd, mine)
        target.conn.execute(
            "INSERT INTO events (seq, type, payload, payload_digest, rows_digest, hash) VALUES (?, ?, ?, ?, ?, ?)",
            (seq, type_, payload, pd, mine, h))
        target._advance_head(seq, h)  # (the head the target's connection remembers)
        prev = h
    redactions += _apply_later_erasures(target, later_erasures, result)
    payloads += _apply_later_payload_erasures(source, target, sid, done, result)
    if copies == 0 and not redactions and not aliases and not payloads:
        # all of it came from the target in the first place (a pull, then a push):
        # nothing to record, so pushing back and forth adds nothing
        result.omitted = len(omitted)
        return
    body: dict[str, Any] = {
        "source": sid, "location": result.source_location, "from": done + 1, "to": total,
        "prev": prev_src, "head": head, "first": first, "copies": copies,
    }
    if omitted:
        body["omitted"] = omitted
    if rows_digests:
        body["rows_digests"] = rows_digests
    if result.skipped:
        body["skipped"] = dict(result.skipped)
    # as a `redact` event lists the payloads it erased (`erasure.unvouched_payloads`); always
    # there, so a push without it is one recorded before pushes listed them
    body["payloads"] = payloads
    rows: dict[str, list[tuple[Any, ...]]] = {}
    if aliases:
        rows["aliases"] = aliases
    if redactions:
        rows["redactions"] = redactions
    result.push_event = target.write("push", body, rows or None)
    result.events, result.from_seq, result.to_seq, result.head = copies, done + 1, total, head
    result.omitted = len(omitted)


def _copy_rows(source: Store, target: Store, src_seq: int, seq: int, rows_digest: str, result: PushResult,
               redactions: list[tuple[Any, ...]], aliases: list[tuple[Any, ...]], any_erased: bool,
               tables: Sequence[str], batches: dict[tuple[int, str], int]) -> str:
    """Copy the rows of source event ``src_seq`` as target event ``seq``; returns the
    rows digest of what was copied: the source's ``rows_digest`` unless some rows were
    already there (only then are the copied rows hashed again)."""
    kept: list[tuple[str, Sequence[Any], bytes | None]] = []  # (table, values, committed digest of an erased row)
    skipped = False
    for table, columns in RECORD_TABLES.items():
        if table not in tables:
            continue
        # a bulk write's rows: those of the batch its event published (``batches``)
        rows = source.conn.execute(f"SELECT pk, {', '.join(columns)} FROM {table} WHERE event = ? ORDER BY pk",
                                   (-batches.get((src_seq, table), 0) or src_seq,)).fetchall()
        if not rows:
            continue
        erased = _erasure.erased_rows(source, table, [r[0] for r in rows]).get(table, {}) if any_erased else {}
        by_id = table in ("nodes", "predictions")
        present = _present_ids(target, table, rows) if by_id else set()
        insert = (f"INSERT INTO {table} ({', '.join(columns)}, event) "
                  f"VALUES ({', '.join('?' * len(columns))}, {int(seq)})")
        plain: list[tuple[Any, ...]] = []
        for pk, *values in rows:
            if (values[0] in present) if by_id else (table in _UNIQUE and _exists(target, table, columns, values)):
                result.skipped[table] = result.skipped.get(table, 0) + 1
                skipped = True
                if table == "nodes":
                    _alias_for(target, values, aliases)
                continue
            erasure = erased.get(pk) if erased and pk in erased and _erasure.in_erased_form(table, values) else None
            if erasure is not None and row_digest(table, values) == erasure[1]:
                # erased in the source: copied as erased, with a redaction naming our row
                if plain:
                    target.conn.executemany(insert, plain)
                    plain = []
                new_pk = target.conn.execute(insert + " RETURNING pk", values).fetchone()[0]
                reason = _reason(source, table, pk)
                redactions.append((table, new_pk, erasure[0].hex(), erasure[1].hex(), reason))
                result.erased += 1
                kept.append((table, values, erasure[0]))
            else:
                plain.append(tuple(values))
                kept.append((table, values, None))
        if plain:
            target.conn.executemany(insert, plain)
        if table == "run_states":
            target._track_open_runs([tuple(r[1:]) for r in rows])
    if not skipped:
        return rows_digest  # the same rows, each committing to the same digest
    h = hashlib.sha256()
    for table, values, committed in kept:
        h.update(committed if committed is not None else row_digest(table, values))
    return h.hexdigest()


def _alias_for(target: Store, values: Sequence[Any], aliases: list[tuple[Any, ...]]) -> None:
    """A node the target holds already, under another name in the source: the
    source's name becomes an alias there (same bytes, second name: DESIGN.md §1)."""
    node_id, name = values[0], values[2]
    if name is None or (node_id, name) in aliases:
        return
    held = target.conn.execute("SELECT name FROM nodes WHERE id = ?", (node_id,)).fetchone()
    if held is None or held[0] == name:
        return
    if target.conn.execute("SELECT 1 FROM aliases WHERE node = ? AND name = ? LIMIT 1", (node_id, name)).fetchone():
        return
    aliases.append((node_id, name))


def _present_ids(target: Store, table: str, rows: Sequence[Sequence[Any]]) -> set[str]:
    """The ids among ``rows`` (pk first, then id) that ``table`` of the target holds:
    one indexed ``IN`` query per 500 (a bulk event has many thousands)."""
    ids = [r[1] for r in rows]
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        also = f" AND {published()}" if table in BATCHED_TABLES else ""  # (a leftover holds nothing)
        found.update(r[0] for r in target.conn.execute(
            f"SELECT id FROM {table} WHERE id IN ({', '.join('?' * len(chunk))}){also}", chunk))
    return found


def _exists(target: Store, table: str, columns: Sequence[str], values: Sequence[Any]) -> bool:
    keys = _UNIQUE[table]
    vals = [values[columns.index(k)] for k in keys]
    cond = " AND ".join(f"{k} IS ?" for k in keys)
    return target.conn.execute(f"SELECT 1 FROM {table} WHERE {cond} LIMIT 1", vals).fetchone() is not None


def _reason(source: Store, table: str, pk: int) -> str | None:
    row = source.conn.execute("SELECT reason FROM redactions WHERE tbl = ? AND row_pk = ? ORDER BY pk DESC LIMIT 1",
                              (table, pk)).fetchone()
    return row[0] if row else None


def _erasures_since(source: Store, target: Store, sid: str, done: int) -> list[tuple[Any, ...]]:
    """Rows the target got from the source in earlier pushes (events up to ``done``)
    that the source has erased since (a redaction in an event after ``done``) and the
    target has not: ``(table, target pk, committed digest hex, erased digest hex,
    reason, erased values)``. Each is found in the one target event that copied its
    source event, by the digest that event committed to."""
    if done == 0:
        return []
    out = []
    pushes = [(body, _omitted_seqs(body)) for _, body in _push_events(target) if body.get("source") == sid]
    theirs = copied_ranges(source)
    for tbl, row_pk, committed, erased_digest, reason, event in source.conn.execute(
            "SELECT tbl, row_pk, row_digest, erased_digest, reason, event FROM redactions WHERE event > ? ORDER BY pk",
            (done,)).fetchall():
        if tbl not in RECORD_TABLES or in_ranges(theirs, event):
            continue
        columns = RECORD_TABLES[tbl]
        row = source.conn.execute(f"SELECT event, {', '.join(columns)} FROM {tbl} WHERE pk = ?", (row_pk,)).fetchone()
        if row is not None and isinstance(row[0], int) and row[0] < 0:  # a bulk write's row: its publishing event
            row = (event_numbers(source, [row[0]])[row[0]], *row[1:])
        if row is None or row[0] is None or row[0] > done:
            continue  # copied (erased) by this push, not an earlier one (or never published)
        values = tuple(row[1:])
        if row_digest(tbl, values).hex() != erased_digest:
            continue
        copy_event = _target_event(pushes, row[0])
        found = _find_copy(target, tbl, columns, committed, copy_event) if copy_event is not None else None
        if found is not None:
            out.append((tbl, found, committed, erased_digest, reason, values))
    return out


def _omitted_seqs(body: dict[str, Any]) -> list[int]:
    omitted = body.get("omitted") or {}
    return sorted(int(k) for k in omitted if str(k).isdigit())


def _target_event(pushes: Sequence[tuple[dict[str, Any], list[int]]], src_seq: int) -> int | None:
    """The target event that copied source event ``src_seq``: the push whose range
    holds it, its ``first`` copy, plus the copied (not omitted) events before it."""
    for body, omitted in pushes:
        lo, hi, first = body.get("from"), body.get("to"), body.get("first")
        if type(lo) is int and type(hi) is int and type(first) is int and lo <= src_seq <= hi:
            if src_seq in omitted:
                return None
            return first + (src_seq - lo) - bisect.bisect_left(omitted, src_seq)
    return None


def _find_copy(target: Store, table: str, columns: Sequence[str], committed: str, event: int) -> int | None:
    """The row (pk) of target ``event`` in ``table`` whose content has digest
    ``committed`` (so not erased yet), or that the target erased from it in another
    form (a statement that lost its author with a person, now losing its text with
    its node), or None."""
    partly: dict[int, bytes] = {}
    for pk, *values in target.conn.execute(
            f"SELECT pk, {', '.join(columns)} FROM {table} WHERE event = ? ORDER BY pk", (event,)):
        d = row_digest(table, values)
        if d.hex() == committed:
            return int(pk)
        partly[int(pk)] = d
    if not partly or table not in _erasure.PARTLY_ERASABLE:
        return None
    for pk, (was, now) in _erasure.erased_rows(target, table, list(partly)).get(table, {}).items():
        if was.hex() == committed and partly.get(pk) == now:
            return pk
    return None


def _apply_later_erasures(target: Store, found: list[tuple[Any, ...]], result: PushResult) -> list[tuple[Any, ...]]:
    """Erase, on the target, the copies of rows the source erased after they were
    pushed; returns the target's redaction rows for them."""
    out = []
    for tbl, pk, committed, erased_digest, reason, values in found:
        columns = RECORD_TABLES[tbl]
        target.conn.execute(f"UPDATE {tbl} SET {', '.join(f'{c} = ?' for c in columns)} WHERE pk = ?", (*values, pk))
        out.append((tbl, pk, committed, erased_digest, reason))
        result.erased += 1
    if out:
        target._forget_known()
    return out


def _apply_later_payload_erasures(source: Store, target: Store, sid: str, done: int, result: PushResult) -> list[int]:
    """Erase, on the target, the payloads of copied events whose payload the source
    erased after they were pushed (a person's erasure: `erasure._person_rows`); returns
    the target's events erased. A copy keeps its payload's digest, so the chain
    verifies there as here; the payload is erased only where its digest is the
    source's (the same payload, not another)."""
    erased: list[int] = []
    if done == 0:
        return erased
    pushes = [(body, _omitted_seqs(body)) for _, body in _push_events(target) if body.get("source") == sid]
    for src_seq, digest in source.conn.execute(
            "SELECT seq, payload_digest FROM events WHERE payload IS NULL AND seq <= ? ORDER BY seq", (done,)).fetchall():
        mine = _target_event(pushes, int(src_seq))
        if mine is None:
            continue
        held = target.conn.execute("SELECT 1 FROM events WHERE seq = ? AND payload_digest = ? AND payload IS NOT NULL",
                                   (mine, digest)).fetchone()
        if held is not None:
            target.conn.execute("UPDATE events SET payload = NULL WHERE seq = ?", (mine,))
            erased.append(mine)
            result.erased += 1
    return erased


def _copy_artifacts(source: Store, target: Store, result: PushResult) -> None:
    """Copy the bytes of the source's models and artifacts the target lacks
    (content-addressed: the same digest is the same bytes), through the target's own
    `put_artifact` (on PostgreSQL also onto the server, where the team's other
    machines fetch them). Only the digests the source's records name: a PostgreSQL
    store's local folder is shared by every store opened from the project, so its
    other files are not this store's; and a source that keeps its bytes on a server
    hands over those this machine has no copy of (`Store.artifact_path`)."""
    if getattr(source, "artifacts_dir", None) is None:
        return
    digests = sorted({str(node_id).split(":", 1)[1] for (node_id,) in source.conn.execute(
        "SELECT id FROM nodes WHERE kind IN ('model', 'artifact')")})
    if getattr(target, "artifacts_dir", None) is None:
        held = [d for d in digests if _files.artifact_path(source, d).exists()]
        if held:
            result.artifacts_note = (f"the target keeps no files: {len(held)} artifact file(s) stay only in "
                                     f"{result.source_location}; the records still name their digests")
        return
    for digest in digests:
        if target.has_artifact(digest):
            continue
        p = source.artifact_path(digest)
        if not p.is_file():
            continue  # (a record with no bytes kept: an imported model known by its digest only)
        if hashlib.sha256(p.read_bytes()).hexdigest() != digest:
            raise IntegrityError(f"artifact {p} does not match its digest: nothing was published")
        target.put_artifact(digest, source=p)
        result.artifacts += 1


# ---------------------------------------------------------------------------
# verify: the copies reproduce the source chain


def _replay(store: Store, body: dict[str, Any]) -> tuple[dict[int, str], str, bool]:
    """Replay one push event's copies as the source's chain: ``({source seq: its
    hash in the source}, the hash reached, every copy accounted for?)``."""
    first, copies, lo, hi = (int(body[k]) for k in ("first", "copies", "from", "to"))
    omitted = body.get("omitted") or {}
    kept = body.get("rows_digests") or {}
    rows = iter(store.conn.execute(
        "SELECT seq, type, payload_digest, rows_digest FROM events WHERE seq >= ? AND seq < ? ORDER BY seq",
        (first, first + copies)).fetchall())
    h = str(body.get("prev"))
    hashes: dict[int, str] = {}
    for src_seq in range(lo, hi + 1):
        key = str(src_seq)
        if key in omitted:
            t, pd, rd = omitted[key]
        else:
            row = next(rows, None)
            if row is None:
                return hashes, h, False
            _, t, pd, rd = row
            rd = kept.get(key, rd)
        h = chain_hash(h, str(t), str(pd), str(rd))
        hashes[src_seq] = h
    return hashes, h, next(rows, None) is None


def source_hashes(store: Store, push_seq: int) -> dict[int, str]:
    """For the push event ``push_seq`` of this store: each target event it copied,
    mapped to that event's hash in the source's chain (what the copy keeps, proven by
    replay: `check_pushes`). Raises InvalidInputError when ``push_seq`` is not a push
    event of this store."""
    from ..errors import InvalidInputError

    body = next((b for seq, b in _push_events(store) if seq == push_seq), None)
    if body is None or not all(type(body.get(k)) is int for k in ("first", "copies", "from", "to")):
        raise InvalidInputError(f"event {push_seq} is not a push event of this store")
    hashes, _, _ = _replay(store, body)
    omitted = {int(k) for k in (body.get("omitted") or {}) if str(k).isdigit()}
    copied = [s for s in sorted(hashes) if s not in omitted]
    return {int(body["first"]) + i: hashes[s] for i, s in enumerate(copied)}


def check_pushes(store: Store, start: int = 1) -> list[tuple[int, str]]:
    """Problems ``(event, message)`` with the push events from ``start`` on: the
    copied events (with the digests the push event kept for omitted events and
    skipped rows) must replay from the source's ``prev`` hash to its ``head``."""
    problems = []
    for seq, body in _push_events(store):
        if seq < start:
            continue
        if not all(type(body.get(k)) is int for k in ("first", "copies", "from", "to")):
            problems.append((seq, f"event {seq} (push): its payload does not say which events it copied"))
            continue
        _, h, complete = _replay(store, body)
        if not complete or h != body.get("head"):
            first, copies = int(body["first"]), int(body["copies"])
            problems.append((seq, f"event {seq} (push): the copied events {first}..{first + copies - 1} do not "
                                  f"replay to the source head {str(body.get('head'))[:16]}… it recorded"))
    return problems
