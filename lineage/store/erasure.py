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
from ..model import canonical_json
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
}

#: How often `scrub` asks for the WAL to be emptied, 0.1 s apart, while readers hold it.
SCRUB_TRIES = 50

#: What an erasure cannot reach; `redact`'s output and docs/integrity.md say so.
ERASURE_LIMITS = ("copies made before the erasure are outside the store's reach: backups, exported files "
                  "and audit reports already written, and (on PostgreSQL) the server's WAL (until its segments "
                  "are recycled), WAL archive, replicas and base backups")


def in_erased_form(table: str, values: Sequence[Any]) -> bool:
    """True when a row of ``table`` holds exactly what erasure leaves in its erasable
    columns. A redaction record counts only for such a row: otherwise a well-chained
    `redact` event appended later could vouch for any rewrite of any fact (a metric's
    value, a node's name), not only for an erasure."""
    blank = _ERASED_COLUMNS.get(table)
    if blank is None:
        return False  # not an erasable table: nothing in it is ever erased
    return all(values[i] == blank[c] and type(values[i]) is type(blank[c])
               for i, c in enumerate(RECORD_TABLES[table]) if c in blank)



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


def redact(store: Store, node_id: str, *, reason: str) -> int:
    """Erase the personal content of one node (GDPR erasure); returns the event number.

    A prediction loses its input digest, output, score and request id; any other
    node its name, aliases and attributes; annotations on it lose their text. Ids,
    kinds, times and edges stay, so the graph keeps its shape. The rows are changed
    in place through one `redact` event that records, for each, the digest its
    original event committed to: the chain still verifies, and the erased rows are
    themselves checked against the digests of their erased form.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInputError("erasure needs a reason as text (e.g. 'GDPR request 2026-114')")
    store._forget_known()  # an erased node's name and attrs are no longer what was seen
    with store.transaction():
        targets: list[tuple[str, int, tuple[Any, ...]]] = []
        if node_id.startswith("prediction:"):
            targets += rows_where(store, "predictions", "id = ?", node_id)
            targets += rows_where(store, "prediction_inputs", "prediction = ?", node_id)
        else:
            targets += rows_where(store, "nodes", "id = ?", node_id)
            targets += rows_where(store, "aliases", "node = ?", node_id)
        if not targets:
            raise NodeNotFoundError(node_id)
        node_attrs: dict[str, Any] = {}
        if targets[0][0] == "nodes":
            with suppress(TypeError, ValueError):
                node_attrs = json.loads(targets[0][2][3]) or {}
            if targets[0][2][1] == "run":
                for table in ("params", "tags", "run_states"):
                    targets += rows_where(store, table, "run = ?", node_id)
        targets += rows_where(store, "annotations", "node = ?", node_id)
        records, updates = [], []
        for table, pk, values in targets:
            if erased_rows(store, table, [pk]):
                continue
            columns = RECORD_TABLES[table]
            blank = _ERASED_COLUMNS[table]
            erased = tuple(blank.get(c, v) if c in blank else v for c, v in zip(columns, values))
            if erased == tuple(values) and table not in ("nodes", "predictions"):
                continue  # nothing personal in it (a state without error text)
            records.append((table, pk, row_digest(table, values).hex(), row_digest(table, erased).hex(), reason))
            updates.append((table, pk, erased))
        if not records:
            raise WriteRefusedError(f"{node_id} is already erased")
        seq = store.write("redact", {"node": node_id, "reason": reason, "rows": len(records)}, {"redactions": records})
        # freed cells and pages are zeroed whatever the build's default (or a
        # connection's setting): the old values must not stay in free space
        store.conn.execute("PRAGMA secure_delete = ON")
        for table, pk, erased in updates:
            columns = RECORD_TABLES[table]
            sets = ", ".join(f"{c} = ?" for c in columns)
            store.conn.execute(f"UPDATE {table} SET {sets} WHERE pk = ?", (*erased, pk))
        forget_paths(store, node_attrs)
        # the search index's triggers removed the erased terms; merge its segments so
        # no old segment keeps them (the VACUUM below then zeroes the freed pages)
        _fulltext.after_erasure(store)
    if not scrub(store, tables=sorted({t for t, _, _ in updates} | {"stat_cache"})):
        # the erasure stands (and verifies); only the files' old bytes outlive it
        # for now, and the person asking for it must be told, not assured
        log.warning("erased %s, but %s", node_id, _unscrubbed(store))
    return seq


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
        names = [t for t in (tables or (*RECORD_TABLES, "stat_cache")) if t in RECORD_TABLES or t == "stat_cache"]
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


def rows_where(store: Store, table: str, where: str, arg: Any) -> list[tuple[str, int, tuple[Any, ...]]]:
    """``(table, pk, values)`` of each published row of ``table`` matching ``where`` (one ``?``, bound to
    ``arg``), in pk order."""
    columns = RECORD_TABLES[table]
    if table in BATCHED_TABLES:  # an unpublished bulk write is no one's yet
        where += f" AND {published()}"
    sql = f"SELECT pk, {', '.join(columns)} FROM {table} WHERE {where} ORDER BY pk"
    return [(table, row[0], tuple(row[1:])) for row in store.conn.execute(sql, (arg,))]
