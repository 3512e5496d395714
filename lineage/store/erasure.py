"""Erasure (GDPR): blanking a node's personal content in place, through a `redact`
event that keeps the chain verifiable, and scrubbing old copies from the files."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (
    InvalidInputError,
    LineageError,
    NodeNotFoundError,
    WriteRefusedError,
    log,
)
from ..model import agent_label, canonical_json
from ..model import clean_text as _clean_text
from . import fulltext as _fulltext
from .codec import row_digest
from .schema import BATCHED_TABLES, RECORD_TABLES, published
from .sqlite import BUSY_SECONDS, chunked

if TYPE_CHECKING:
    from .core import Store


# What erasure blanks, per table: the columns that can carry personal data. Ids, kinds,
# times and the links between nodes stay, so the graph keeps its shape.
_ERASED_COLUMNS: dict[str, dict[str, Any]] = {
    "nodes": {"name": None, "attrs": canonical_json({"redacted": True})},
    "aliases": {"name": ""},
    "predictions": {"input_digest": None, "output": None, "score": None, "request_id": None},
    "annotations": {"text": None},
    # a run's params, tags and error text (issue 8: a redacted run kept them). Keys,
    # statuses, times and exit codes stay: they are the run's shape, not its content.
    "params": {"value": None},
    "tags": {"value": None},
    "run_states": {"error": None},
    "prediction_inputs": {"inputs": None},
    # who changed a label, as typed or as the recording account ("Eve <eve@x> (eve@vm)"):
    # erased with that person (`_person_rows`); the label, version, reason and time stay
    "promotions": {"author": None},
}

# Other forms a row may be erased to, beside `_ERASED_COLUMNS` (the whole node's
# content): an annotation about another node loses only its author when that author
# is an erased person, as the statement itself is the node's fact, not the person's.
# Like every erased form, it bounds what a redaction record can vouch for: the row's
# personal column is blank. It cannot prove the other columns unchanged (a row is
# committed to as one digest), which holds of the whole-node forms too (a node's id
# and kind, an annotation's author): what the record vouches for is a blanking.
_PERSON_FORMS: dict[str, dict[str, Any]] = {"annotations": {"author": None}}

#: tables whose rows can be erased twice, in two forms (a person's, then a node's)
PARTLY_ERASABLE = frozenset(_PERSON_FORMS)

#: How often `scrub` asks for the WAL to be emptied, 0.1 s apart, while readers hold it.
SCRUB_TRIES = 50

#: What an erasure cannot reach; `redact`'s output and docs/integrity.md say so.
ERASURE_LIMITS = ("copies made before the erasure are outside the store's reach: backups, exported files "
                  "and audit reports already written, and (on PostgreSQL) the server's WAL (until its segments "
                  "are recycled), WAL archive, replicas and base backups; and a person is found by their agent's "
                  "name, email and login, not in free text (a statement's words, a reason, an error) nor in the "
                  "paths of data and code nodes (docs/integrity.md, Erasure)")


def in_erased_form(table: str, values: Sequence[Any]) -> bool:
    """True when a row of ``table`` holds exactly what erasure leaves in its erasable
    columns. A redaction record counts only for such a row: otherwise a well-chained
    `redact` event appended later could vouch for any rewrite of any fact (a metric's
    value, a node's name), not only for an erasure."""
    forms = [f for f in (_ERASED_COLUMNS.get(table), _PERSON_FORMS.get(table)) if f is not None]
    if not forms:
        return False  # not an erasable table: nothing in it is ever erased
    return any(all(values[i] == blank[c] and type(values[i]) is type(blank[c])
                   for i, c in enumerate(RECORD_TABLES[table]) if c in blank) for blank in forms)



def committed_digest(actual: bytes, erasure: tuple[bytes, bytes] | None) -> bytes:
    """The digest a row's event committed to: its own, or, for an erased row that is
    exactly as erasure left it, the one recorded before erasure. An erased row edited
    since keeps its own digest, so its event fails verification."""
    if erasure is not None and actual == erasure[1]:
        return erasure[0]
    return actual


def erased_rows(store: Store, table: str | None = None, pks: Sequence[int] = ()) -> dict[str, dict[int, tuple[bytes, bytes]]]:
    """``{table: {pk: (digest committed to, digest as erased)}}`` of erased rows:
    all of them, or only those of ``table`` among ``pks``."""
    base = "SELECT tbl, row_pk, row_digest, erased_digest, event FROM redactions"
    if table is None:
        queries: Iterable[tuple[str, list[Any]]] = [(base, [])]
    else:  # in chunks: a bulk event's rows outnumber SQLite's bound-variable limit
        queries = ((f"{base} WHERE tbl = ? AND row_pk IN ({', '.join('?' * len(c))})", [table, *c])
                   for c in chunked(list(pks), 500))
    out: dict[str, dict[int, tuple[bytes, bytes]]] = {}
    # redaction rows of events copied from another store (`lineage push`) name that
    # store's row numbers: the push event re-records them with ours (store/publish.py)
    # (looked up only when there are redaction rows to sort out: most calls, from a
    # write path asking whether a row was erased, find none)
    from .publish import copied_ranges, in_ranges

    copied: list[tuple[int, int]] | None = None
    for sql, args in queries:
        for tbl, row_pk, committed, erased, event in store.conn.execute(sql + " ORDER BY pk", args):
            if copied is None:
                copied = copied_ranges(store)
            if copied and in_ranges(copied, event):
                continue
            try:
                out.setdefault(str(tbl), {})[row_pk] = (bytes.fromhex(committed), bytes.fromhex(erased))
            except (TypeError, ValueError):  # a forged record: leave the row to fail verify
                continue
    return out


#: The events that record erasures (`redact`) and copies (`push`): the ones whose
#: ``payloads`` list vouches for the payloads erased in this store.
PAYLOAD_RECORDS = frozenset({"redact", "push"})


def vouched_payloads(store: Store, records: Iterable[tuple[int, str, str | None]]
                     ) -> tuple[set[int], list[tuple[int, int]]]:
    """What the erasure records ``(seq, type, payload)`` (events of `PAYLOAD_RECORDS`
    types) vouch for: the events whose payloads they list as erased (``payloads``),
    and the ranges of events copied by a push recorded before pushes listed them,
    whose blank payloads keep the rule of their day (any was taken as erased). A
    record copied from another store (`lineage push`) numbers that store's events,
    not ours, and is left out: the push event that copied it lists what it brought
    here erased."""
    from .publish import copied_ranges, in_ranges  # (publish builds on this module)

    copied: list[tuple[int, int]] | None = None
    listed: set[int] = set()
    ranges: list[tuple[int, int]] = []
    for seq, type_, payload in records:
        if not isinstance(payload, str):
            continue
        if copied is None:
            copied = copied_ranges(store)
        if in_ranges(copied, seq):
            continue
        with suppress(TypeError, ValueError, AttributeError):  # (an edited payload: its digest check reports it)
            body = json.loads(payload)
            if isinstance(body.get("payloads"), list):
                listed.update(s for s in body["payloads"] if type(s) is int)
            elif type_ == "push" and type(body.get("first")) is int and type(body.get("copies")) is int:
                ranges.append((body["first"], body["first"] + body["copies"] - 1))
    return listed, sorted(ranges)


def unvouched_payloads(store: Store, erased: Sequence[int], records: Iterable[tuple[int, str, str | None]]
                       ) -> list[tuple[int, str]]:
    """Problems ``(event, message)`` for events whose payload is gone (NULL) with no
    erasure record listing it. Erasure blanks a payload whole, and says so in its
    `redact` event (a push, in its `push` event): a payload blanked any other way is
    evidence removed, which the chain alone cannot see, as it commits to the
    payload's digest, not its text."""
    from .publish import in_ranges

    listed, ranges = vouched_payloads(store, records)
    return [(seq, f"event {seq}: its payload is gone, and no erasure record (redact or push event) lists it: "
                  "deleted outside lineage") for seq in erased if seq not in listed and not in_ranges(ranges, seq)]


def redact(store: Store, node_id: str, *, reason: str) -> int:
    """Erase the personal content of one node (GDPR erasure); returns the event number.

    A prediction loses its input digest, output, score and request id; any other
    node its name, aliases and attributes; annotations on it lose their text. An
    agent (a person) also loses what names them elsewhere (`_person_rows`): the
    author of a label change or of a statement, a run's or another agent record's
    content, and the payloads of events that carry their name. Ids, kinds, times and
    edges stay, so the graph keeps its shape. The rows are changed in place through
    one `redact` event that records, for each, the digest its original event
    committed to: the chain still verifies, and the erased rows are themselves
    checked against the digests of their erased form.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInputError("erasure needs a reason as text (e.g. 'GDPR request 2026-114')")
    store._forget_known()  # an erased node's name and attrs are no longer what was seen
    with store.transaction():
        found: list[tuple[str, int, tuple[Any, ...]]] = []
        if node_id.startswith("prediction:"):
            found += rows_where(store, "predictions", "id = ?", node_id)
            found += rows_where(store, "prediction_inputs", "prediction = ?", node_id)
        else:
            found += rows_where(store, "nodes", "id = ?", node_id)
            found += rows_where(store, "aliases", "node = ?", node_id)
        if not found:
            raise NodeNotFoundError(node_id)
        node_attrs: dict[str, Any] = {}
        payloads: list[int] = []
        person: list[tuple[str, int, tuple[Any, ...], Mapping[str, Any]]] = []
        if found[0][0] == "nodes":
            with suppress(TypeError, ValueError):
                node_attrs = json.loads(found[0][2][3]) or {}
            if found[0][2][1] == "run":
                for table in ("params", "tags", "run_states"):
                    found += rows_where(store, table, "run = ?", node_id)
            elif found[0][2][1] == "model":  # (a model's tags: `tracking.set_model_tags`)
                found += rows_where(store, "tags", "run = ?", node_id)
            elif found[0][2][1] == "agent":
                person, payloads = _person_rows(store, node_id, node_attrs)
        found += rows_where(store, "annotations", "node = ?", node_id)
        # one blank per row: the node's own rows in full, the person's rows elsewhere
        # in their person form (both, for a statement on the node by the person)
        targets: dict[tuple[str, int], tuple[tuple[Any, ...], dict[str, Any]]] = {}
        for table, pk, values, blank in [*((t, p, v, _ERASED_COLUMNS[t]) for t, p, v in found), *person]:
            targets.setdefault((table, pk), (values, {}))[1].update(blank)
        records, updates = [], []
        for (table, pk), (values, blank) in targets.items():
            before = erased_rows(store, table, [pk]).get(table, {}).get(pk)
            erased = tuple(blank.get(c, v) for c, v in zip(RECORD_TABLES[table], values))
            if erased == tuple(values) and (before is not None or table not in ("nodes", "predictions")):
                continue  # already so (erased before), or nothing personal in it (a state without error text)
            # erased before in another form (a statement that lost its author, now its
            # text): the new record still names the digest the row's event committed to
            committed = before[0].hex() if before is not None else row_digest(table, values).hex()
            records.append((table, pk, committed, row_digest(table, erased).hex(), reason))
            updates.append((table, pk, erased))
        if not records and not payloads:
            raise WriteRefusedError(f"{node_id} is already erased")
        body: dict[str, Any] = {"node": node_id, "reason": reason, "rows": len(records)}
        if payloads:  # a payload erased says so, where the chain keeps it: else it reads as lost
            # (an erasure record among them takes its list along: erased, it no longer vouches)
            kinds = ", ".join(f"'{t}'" for t in sorted(PAYLOAD_RECORDS))
            held = [row for chunk in chunked(payloads, 500) for row in store.conn.execute(
                f"SELECT seq, type, payload FROM events WHERE type IN ({kinds}) AND seq IN ({', '.join('?' * len(chunk))})",
                chunk)]
            carried, ranges = vouched_payloads(store, held)
            for lo, hi in ranges:  # (an older push's blank copies, vouched by its range: listed from now on)
                carried.update(s for (s,) in store.conn.execute(
                    "SELECT seq FROM events WHERE seq >= ? AND seq <= ? AND payload IS NULL", (lo, hi)))
            body["payloads"] = sorted(set(payloads) | carried)
        seq = store.write("redact", body, {"redactions": records})
        # freed cells and pages are zeroed whatever the build's default (or a
        # connection's setting): the old values must not stay in free space
        store.conn.execute("PRAGMA secure_delete = ON")
        for table, pk, erased in updates:
            columns = RECORD_TABLES[table]
            sets = ", ".join(f"{c} = ?" for c in columns)
            store.conn.execute(f"UPDATE {table} SET {sets} WHERE pk = ?", (*erased, pk))
        for chunk in chunked(payloads, 500):
            # the chain commits to a payload's digest, not its text (ledger.py): a payload
            # can go whole, never in part, so an event naming the person loses all of it
            store.conn.execute(f"UPDATE events SET payload = NULL WHERE seq IN ({', '.join('?' * len(chunk))})", chunk)
        forget_paths(store, node_attrs)
        # the search index's triggers removed the erased terms; merge its segments so
        # no old segment keeps them (the VACUUM below then zeroes the freed pages)
        _fulltext.after_erasure(store)
    changed = {t for t, _, _ in updates} | {"stat_cache"} | ({"events"} if payloads else set())
    if not scrub(store, tables=sorted(changed)):
        # the erasure stands (and verifies); only the files' old bytes outlive it
        # for now, and the person asking for it must be told, not assured
        log.warning("erased %s, but %s", node_id, _unscrubbed(store))
    return seq


# ---------------------------------------------------------------------------
# a person's data outside their own node
#
# An agent node is one person (or one account); their name, email and login are
# also copied, as text, into records about other things: who changed a label
# (`promotions.author`, by default the whole "Name <email> (login@host)"), who made
# a statement (`annotations.author`, by default the name or login) and who recorded
# it (the annotation event's payload, `recorded_by`), a run's captured environment
# (``LINEAGE_USER``, ``LINEAGE_EMAIL``, in runs recorded before these were left to
# the agent: `capture.IDENTITY_ENV`), an import's ``mlflow.user`` tag, and other
# agent nodes of the same person (the same email from another login or host).
# Erasing the person reaches each of these by its text, because that is what holds
# the person (the ids are pseudonyms that no longer resolve to anyone).
#
# What identifies the person: their email and their full label anywhere in a value;
# their name, login or login@host as a whole value. A name or login that another
# recorded person (a different email) also has is left out: on a shared account
# ("ml@gpu-1") or with a common name, the text names the other person as much, and
# erasing it would take their record too. What is blanked is only the personal
# column (an author) or, where one column mixes the person with the fact (a run's
# attrs, an event's payload: digests commit to the whole value), the whole value;
# the fact's shape stays: the label, version and time of a promotion, the text of a
# statement, a run's params, metrics, states and edges, every id and time.
# Free text is not searched for the person (a statement's or reason's words, a
# param's value naming them in passing, an error text): see ERASURE_LIMITS.

#: node kinds whose content is a person's activity: a run's attrs, another agent
#: record. Data, code and model nodes describe files (their paths may hold a login):
#: erasing them is a decision about that node, not a side effect of a person's.
_PERSON_NODE_KINDS = ("run", "agent")


class _Person:
    """The texts that identify one erased person, case-folded."""

    def __init__(self, whole: set[str], within: set[str], spelled: set[str]) -> None:
        self.whole, self.within = whole, within
        # as written, beside case-folded: SQLite's LIKE ignores only ASCII case
        self.spelled = spelled | whole | within

    def named_in(self, value: Any) -> bool:
        """True when ``value`` (a text, or JSON-like data) names the person."""
        if isinstance(value, str):
            v = value.strip().casefold()
            return v in self.whole or any(w in v for w in self.within)
        if isinstance(value, Mapping):
            return any(self.named_in(v) for v in value.values())
        if isinstance(value, list):
            return any(self.named_in(v) for v in value)
        return False

    def prefilter(self, column: str) -> tuple[str, list[str]]:
        """An SQL condition true for every row whose ``column`` might name the person
        (case-insensitive LIKE; JSON text may escape characters, so each text is also
        looked for as JSON spells it): the exact test is `named_in`'s."""
        texts = sorted(self.spelled)
        pats = []
        for t in texts:
            for spelled in dict.fromkeys((t, json.dumps(t)[1:-1])):
                pats.append("%" + spelled.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        return "(" + " OR ".join([f"{column} LIKE ? ESCAPE '\\'"] * len(pats)) + ")", pats


def _identity_texts(attrs: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """``(whole, within)``: the person's texts as whole values, and those that name
    them wherever they appear (email, full label); as written."""
    name, email, user, host = (str(attrs.get(k) or "").strip() for k in ("name", "email", "user", "host"))
    account = f"{user}@{host}" if user and host else ""
    label = agent_label(attrs) if (name or email or user) else ""
    return {t for t in (name, email, user, account, label) if t}, {t for t in (email, label) if t}


def _person(store: Store, agent_id: str, attrs: Mapping[str, Any]) -> _Person | None:
    """The erased person's identifying texts, less those another recorded person shares."""
    whole, within = _identity_texts(attrs)
    email = str(attrs.get("email") or "").strip().casefold()
    shared: set[str] = set()
    for (other_raw,) in store.conn.execute("SELECT attrs FROM nodes WHERE kind = 'agent' AND id <> ?", (agent_id,)):
        try:
            other = json.loads(other_raw) or {}
        except (TypeError, ValueError):
            continue
        if not isinstance(other, Mapping) or other.get("redacted"):
            continue
        if email and str(other.get("email") or "").strip().casefold() == email:
            continue  # the same person from another login or host: theirs to erase too
        o_whole, o_within = _identity_texts(other)
        shared |= {t.casefold() for t in o_whole | o_within}
    whole = {t for t in whole if t.casefold() not in shared}
    within = {t for t in within if t.casefold() not in shared}
    if not whole and not within:
        return None
    return _Person({t.casefold() for t in whole}, {t.casefold() for t in within}, whole | within)


def _person_rows(store: Store, agent_id: str, attrs: Mapping[str, Any]
                 ) -> tuple[list[tuple[str, int, tuple[Any, ...], Mapping[str, Any]]], list[int]]:
    """The rows outside an agent's own that name its person, each with the blank it
    gets, and the events whose payloads name them (to erase whole)."""
    person = _person(store, agent_id, attrs)
    if person is None:
        return [], []
    out: list[tuple[str, int, tuple[Any, ...], Mapping[str, Any]]] = []
    cond, pats = person.prefilter("author")
    for table, form in (("promotions", _ERASED_COLUMNS["promotions"]), ("annotations", _PERSON_FORMS["annotations"])):
        i = RECORD_TABLES[table].index("author")
        out += [(t, pk, v, form) for t, pk, v in rows_where(store, table, cond, *pats) if person.named_in(v[i])]
    cond, pats = person.prefilter("attrs")
    kinds = ", ".join(f"'{k}'" for k in _PERSON_NODE_KINDS)
    for t, pk, v in rows_where(store, "nodes", f"kind IN ({kinds}) AND id <> ? AND {cond}", agent_id, *pats):
        with suppress(TypeError, ValueError):
            if person.named_in(json.loads(v[3])) or person.named_in(v[2]):
                out.append((t, pk, v, _ERASED_COLUMNS["nodes"]))
                out += [(a, apk, av, _ERASED_COLUMNS["aliases"]) for a, apk, av in rows_where(store, "aliases", "node = ?", v[0])]
    for table in ("params", "tags"):  # an import's `mlflow.user`, a `user` param
        cond, pats = person.prefilter("value")
        out += [(t, pk, v, _ERASED_COLUMNS[table]) for t, pk, v in rows_where(store, table, cond, *pats)
                if person.named_in(v[2])]
    cond, pats = person.prefilter("payload")
    payloads = []
    for seq, payload in store.conn.execute(f"SELECT seq, payload FROM events WHERE payload IS NOT NULL AND {cond} "
                                           "ORDER BY seq", pats):
        with suppress(TypeError, ValueError):
            if person.named_in(json.loads(payload)):
                payloads.append(int(seq))
    return out, payloads


def _unscrubbed(store: Store) -> str:
    """What a failed `scrub` left, and how to finish it, in one line."""
    if store.dialect == "sqlite":
        wal = f"{store.path}-wal"
        return (f"another process held the store open, so {wal} may keep old copies of the erased content "
                f"until a checkpoint with no reader: once it closes, run sqlite3 {store.path} "
                "'PRAGMA wal_checkpoint(TRUNCATE)'")
    return ("a table's lock could not be had for VACUUM FULL, so its files may keep old copies of the "
            "erased content: run VACUUM FULL on the changed tables when the store is idle")


def forget_paths(store: Store, attrs: Mapping[str, Any]) -> None:
    """Drop stat cache entries for the paths an erased node recorded (a file, or
    every file under a directory): the cache keys are the paths themselves."""
    for key in ("path", "abspath", "uri"):
        value = attrs.get(key)
        if not isinstance(value, str) or not value:
            continue
        candidates = {value, _clean_text(os.path.abspath(value))}
        with suppress(OSError, ValueError):
            candidates.add(_clean_text(str(Path(value).resolve())))
        for p in candidates:
            base = p.rstrip("/")
            store.conn.execute("DELETE FROM stat_cache WHERE path = ? OR (path >= ? AND path < ?)",
                              (p, base + "/", base + "0"))


def scrub(store: Store, *, tables: Sequence[str] = ()) -> bool:
    """Leave no old copy of erased content in the store's files: rewrite the
    database (``VACUUM``: free pages and the unused space inside pages can hold old
    row images written by a build or connection without ``secure_delete``), then
    copy everything into the file and empty the WAL (``wal_checkpoint(TRUNCATE)``).

    On PostgreSQL: rewrite ``tables`` (those the erasure changed; default every
    recorded table) and their indexes with ``VACUUM (FULL)``, one table at a time,
    so no old row version stays in the table's files (plain ``VACUUM`` leaves the
    dead versions' bytes in place until reused); see lineage/store/postgres.py's
    `_vacuum_full`. The server's WAL, archive, replicas and backups are out of reach
    (`ERASURE_LIMITS`).

    Returns False when a reader's open snapshot kept the checkpoint from finishing
    (retried for a few seconds first), or on PostgreSQL a table's lock could not be
    had for the rewrite. Does nothing inside a transaction. The rewrite takes time
    in proportion to the store (about a second per 100 MB here) and holds the write
    lock meanwhile: erasure is rare, correctness first.
    """
    if store.in_transaction or store.read_only:
        return False
    if store.dialect != "sqlite":
        names = [t for t in (tables or (*RECORD_TABLES, "stat_cache")) if t in RECORD_TABLES or t in ("events", "stat_cache")]
        return bool(store.conn.execute(f"VACUUM FULL {', '.join(names)}").fetchone()[0])
    store.conn.execute("PRAGMA secure_delete = ON")
    store.conn.execute("PRAGMA temp_store = FILE")  # (VACUUM's copy of the whole store: not in memory)
    try:
        store.conn.execute("VACUUM")
    finally:
        store.conn.execute("PRAGMA temp_store = MEMORY")
    # A TRUNCATE checkpoint waits through the busy handler for readers to move on: at
    # the store's 30 s a try, one reader holding a snapshot kept `redact` waiting 25
    # minutes. Each try waits 0.1 s instead, so a reader costs at most SCRUB_TRIES * 0.2 s.
    store.conn.execute("PRAGMA busy_timeout = 100")
    try:
        for _ in range(SCRUB_TRIES):
            with suppress(LineageError):
                busy, _, _ = store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy:
                    return True
            time.sleep(0.1)
        return False
    finally:
        store.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")


def rows_where(store: Store, table: str, where: str, *args: Any) -> list[tuple[str, int, tuple[Any, ...]]]:
    """``(table, pk, values)`` of each published row of ``table`` matching ``where`` (its ``?``
    bound to ``args``), in pk order."""
    columns = RECORD_TABLES[table]
    if table in BATCHED_TABLES:  # an unpublished bulk write is no one's yet
        where += f" AND {published()}"
    sql = f"SELECT pk, {', '.join(columns)} FROM {table} WHERE {where} ORDER BY pk"
    return [(table, row[0], tuple(row[1:])) for row in store.conn.execute(sql, args)]
