"""Full-text search over names, aliases, annotations, params and tags: an index, not
evidence.

On SQLite the index is FTS5, created through sqlite-utils: `Table.enable_fts` makes
one external-content FTS5 table per source table (``nodes_fts``, …) and backfills
it (migration 8). Being external-content, the FTS tables hold no copy of the text,
only the inverted index.

The index catches up when it is searched, not when a row is written (issue 16).
Migration 8 also added sqlite-utils' triggers, which indexed every row inside the
INSERT that wrote it: about 0.1 ms per params row, as much as the rest of a
`log_param`. Migration 10 (`drop_triggers`) drops them and keeps a high-water mark
per source table instead (``fts_marks``: the last pk the index holds); `catch_up`,
run by every search and by `check`, indexes the rows past it in one statement per
table. Every way a row arrives (a write, a bulk publish, an import, a push) appends
it with a pk above the mark, so none is missed. Rows change in place only through
an erasure, and `after_erasure` rebuilds the index from the erased rows and merges
its segments, so erased words leave the index's pages (which the caller's VACUUM
then zeroes). A store that cannot be written here (a read-only directory or file)
is searched through a copy of the index in this connection's TEMP schema, which
shadows the file's index for this connection only (`_catch_up_here`).

The FTS tables and the marks are outside RECORD_TABLES and the ledger: nothing is
hashed, and a stale or damaged index is rebuilt from the evidence (`rebuild`),
never trusted.

PostgreSQL: no trigger and no extra table, a GIN index over
``to_tsvector('simple', …)`` of the same columns (`POSTGRES_DDL`), which PostgreSQL
maintains itself (with its pending list, a cheap append per row), created by the
same migration step (`migrate` reads the store's ``dialect``); the query is
lineage/query/search.py's `search_sql` for ``"postgresql"``. Both are run on a real
server by tests/test_search_postgres.py and by the search tests on both backends.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from ..errors import LineageError, StoreBusyError, WriteRefusedError

if TYPE_CHECKING:
    from .core import Store

#: table -> the columns indexed for `lineage search` (the order the query layer reads them)
SOURCES: dict[str, tuple[str, ...]] = {
    "nodes": ("name",),
    "aliases": ("name",),
    "annotations": ("field", "text"),
    "params": ("key", "value"),
    "tags": ("key", "value"),
}


def fts_table(table: str) -> str:
    """The FTS5 table that indexes ``table`` (sqlite-utils' naming: ``<table>_fts``)."""
    return f"{table}_fts"


def _database(store: Store) -> Any:
    """A sqlite-utils Database on the store's connection that changes nothing about it:
    no ``recursive_triggers`` pragma, no plugins. sqlite-utils 4 runs its statements
    inside an open transaction instead of committing it, so this works inside a
    migration's transaction."""
    import sqlite_utils

    return sqlite_utils.Database(store.conn, recursive_triggers=False, execute_plugins=False)


def migrate(store: Store) -> None:
    """The migration step: create the index and backfill it from the rows already
    recorded. Called inside the migration's transaction.

    On PostgreSQL it runs `POSTGRES_DDL` instead.
    """
    if store.dialect != "sqlite":
        for stmt in POSTGRES_DDL:
            store.conn.execute(stmt)
        return
    db = _database(store)
    for table, columns in SOURCES.items():
        db[table].enable_fts(list(columns), create_triggers=True, replace=True)


def installed(store: Store) -> bool:
    """True when this store has its full-text index (it is created by a migration)."""
    if store.dialect != "sqlite":
        return True
    found = {r[0] for r in store.conn.execute(
        "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name LIKE '%\\_fts' ESCAPE '\\'")}
    return all(fts_table(t) in found for t in SOURCES)


def rebuild(store: Store) -> None:
    """Rebuild every FTS table from its source table (a stale or damaged index, an
    erasure), and move the marks to the rows it now holds."""
    if store.dialect != "sqlite":
        return  # PostgreSQL's expression indexes are never stale
    with store.transaction():
        for table in SOURCES:
            t = fts_table(table)
            store.conn.execute(f"INSERT INTO main.{t} ({t}) VALUES ('rebuild')")
            _set_mark(store, table, None)


def check(store: Store) -> list[str]:
    """The FTS tables whose index does not match their source rows (FTS5's
    ``integrity-check`` against the content table), as names; empty when sound.
    The index catches up first (`catch_up`): rows not indexed yet are not damage."""
    if store.dialect != "sqlite" or not installed(store):
        return []
    catch_up(store)
    bad = []
    for table in SOURCES:
        t = fts_table(table)
        try:
            store.conn.execute(f"INSERT INTO main.{t} ({t}, rank) VALUES ('integrity-check', 1)")
        except (sqlite3.Error, LineageError):  # the check failed: "rebuild it"
            bad.append(t)
    return bad


def after_erasure(store: Store) -> None:
    """Drop erased terms from the index for good, after rows were erased in place.

    No trigger saw the erasure's UPDATEs, so the index is rebuilt from the rows as
    they are now (`rebuild`); then ``optimize`` merges its segments into one, so no
    old segment keeps an erased word (the caller's VACUUM then zeroes the freed
    pages). Costs time in proportion to the indexed rows, as the VACUUM does."""
    if store.dialect != "sqlite" or not installed(store):
        return
    _drop_here(store)
    with store.transaction():
        rebuild(store)
        for table in SOURCES:
            t = fts_table(table)
            store.conn.execute(f"INSERT INTO main.{t} ({t}) VALUES ('optimize')")


# ---------------------------------------------------------------------------
# the index catches up when searched (migration 10; see the module docstring)

#: the high-water marks: the last pk of each source table that its index holds
MARKS_DDL = "CREATE TABLE IF NOT EXISTS fts_marks (tbl TEXT PRIMARY KEY, pk INTEGER NOT NULL)"

# one statement for every table's mark and newest pk: ``(mark, top)`` per table
_BEHIND_SQL = "SELECT " + ", ".join(
    f"(SELECT pk FROM main.fts_marks WHERE tbl = '{t}'), (SELECT MAX(pk) FROM main.{t})" for t in SOURCES)


def drop_triggers(store: Store) -> None:
    """Migration 10: the index stops being written with every row (its triggers are
    dropped) and catches up when searched instead; the marks start where the
    triggers left the index, complete. Self-contained (IF EXISTS / IF NOT EXISTS),
    so the lead may renumber it; nothing to do on PostgreSQL."""
    if store.dialect != "sqlite":
        return
    triggers = store.conn.execute("SELECT name, tbl_name, sql FROM main.sqlite_master WHERE type = 'trigger'").fetchall()
    for name, table, sql in triggers:
        if table in SOURCES and fts_table(table) in (sql or ""):
            store.conn.execute(f'DROP TRIGGER IF EXISTS "{name}"')
    store.conn.execute(MARKS_DDL)
    if installed(store):
        for table in SOURCES:
            _set_mark(store, table, None)


def _set_mark(store: Store, table: str, pk: int | None) -> None:
    """Record that ``table``'s index holds its rows through ``pk`` (None: all rows)."""
    value = f"COALESCE(MAX(pk), 0) FROM main.{table}" if pk is None else "?"
    # (WHERE true: SQLite's parser needs it between a SELECT and its ON CONFLICT)
    store.conn.execute(f"INSERT INTO main.fts_marks (tbl, pk) SELECT '{table}', {value} WHERE true "
                       "ON CONFLICT (tbl) DO UPDATE SET pk = excluded.pk", () if pk is None else (pk,))


def _behind(store: Store) -> dict[str, tuple[int, int]]:
    """``{table: (mark, newest pk)}`` for the tables with rows their index lacks."""
    row = store.conn.execute(_BEHIND_SQL).fetchone()
    out = {}
    for i, table in enumerate(SOURCES):
        mark, top = row[2 * i] or 0, row[2 * i + 1] or 0
        if top > mark:
            out[table] = (mark, top)
    return out


def unindex(store: Store, table: str, pks: list[int]) -> None:
    """Take the rows ``pks`` of ``table`` out of its index before they are deleted
    (a left-over bulk batch's rows: `bulk._remove_batch`). Only rows at or below the
    high-water mark are in the index; an external-content FTS5 table must be told
    the old values. Then `settle_mark`, after the rows are gone."""
    if store.dialect != "sqlite" or table not in SOURCES or not pks or not installed(store):
        return
    row = store.conn.execute("SELECT pk FROM main.fts_marks WHERE tbl = ?", (table,)).fetchone()
    mark = row[0] if row and row[0] is not None else 0
    indexed = [pk for pk in pks if pk <= mark]
    if not indexed:
        return
    columns = ", ".join(SOURCES[table])
    t = fts_table(table)
    for start in range(0, len(indexed), 500):
        part = indexed[start:start + 500]
        marks = ", ".join("?" * len(part))
        store.conn.execute(f"INSERT INTO main.{t} ({t}, rowid, {columns}) SELECT 'delete', pk, {columns} "
                           f"FROM main.{table} WHERE pk IN ({marks})", part)


def settle_mark(store: Store, table: str) -> None:
    """After rows of ``table`` were deleted (`unindex` first): bring its high-water
    mark down to the newest pk left, so that the pks the deleted rows free, which
    SQLite hands to the next inserts, are indexed when they are reused."""
    if store.dialect != "sqlite" or table not in SOURCES or not installed(store):
        return
    store.conn.execute(f"UPDATE main.fts_marks SET pk = (SELECT COALESCE(MAX(pk), 0) FROM main.{table}) "
                       f"WHERE tbl = ? AND pk > (SELECT COALESCE(MAX(pk), 0) FROM main.{table})", (table,))


def catch_up(store: Store) -> None:
    """Index the rows written since the index last caught up; returns when the
    index holds every row. One cheap statement when nothing is new; else a short
    write transaction (one INSERT … SELECT per table behind).

    A store this process cannot write, or not now (another writer held its lock
    past the busy wait, or the caller reads an older snapshot), is indexed in this
    connection's TEMP schema instead (`_catch_up_here`).
    """
    if store.dialect != "sqlite" or not installed(store):
        return
    if not store.read_only and not getattr(store.conn, "lineage_fts_here", False):
        if not _behind(store):
            return
        try:
            with store.transaction():
                for table, (mark, top) in _behind(store).items():  # again, under the write lock
                    columns = ", ".join(SOURCES[table])
                    t = fts_table(table)
                    store.conn.execute(f"INSERT INTO main.{t} (rowid, {columns}) SELECT pk, {columns} FROM main.{table} "
                                       "WHERE pk > ? AND pk <= ? ORDER BY pk", (mark, top))
                    _set_mark(store, table, top)
            return
        except (WriteRefusedError, StoreBusyError):
            pass  # this file cannot be written here (or not now): index in memory instead
    _catch_up_here(store)


def _drop_here(store: Store) -> None:
    """Drop this connection's TEMP copy of the index (`_catch_up_here`), which still
    holds the words an erasure just took out of the rows."""
    conn = store.conn
    if getattr(conn, "lineage_fts_here", False):
        for table in SOURCES:
            conn.execute(f"DROP TABLE IF EXISTS temp.{fts_table(table)}")
        conn.lineage_fts_here = False  # type: ignore[attr-defined]


def _catch_up_here(store: Store) -> None:
    """The index of a store this connection cannot write: a full copy of each FTS
    table in the connection's TEMP schema, where a search's unqualified ``nodes_fts``
    finds it before the file's (SQLite looks in TEMP first). Built on the first search
    of the connection, extended with the new rows on later ones."""
    conn = store.conn
    conn.lineage_fts_here = True  # type: ignore[attr-defined]  # (this connection searches its own copy from now on)
    for table, columns in SOURCES.items():
        t = fts_table(table)
        cols = ", ".join(columns)
        if conn.execute("SELECT 1 FROM temp.sqlite_master WHERE name = ?", (t,)).fetchone() is None:
            conn.execute(f"CREATE VIRTUAL TABLE temp.{t} USING fts5({cols})")
        done = conn.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM temp.{t}").fetchone()[0]
        conn.execute(f"INSERT INTO temp.{t} (rowid, {cols}) SELECT pk, {cols} FROM main.{table} WHERE pk > ? ORDER BY pk",
                     (done,))


# ---------------------------------------------------------------------------
# PostgreSQL: this migration's step there (see `migrate`).
# 'simple': no stemming and no stop words, as FTS5's unicode61 tokenizer (names and
# param values are identifiers, not prose). Expression indexes need no trigger: the
# query in lineage/query/search.py repeats each expression (`words`) exactly, so it
# uses them.

#: ASCII punctuation: FTS5's unicode61 separates words at each, while PostgreSQL's
#: parser keeps ``train.csv``, ``data/x.csv``, ``0.1`` and ``1e-05`` whole (a file,
#: a path, numbers) and makes ``model-8`` into ``model`` and ``-8``, so on a team
#: store `lineage search train` found no ``train.csv`` (migration 13).
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def words(expression: str) -> str:
    """The tsvector of a text ``expression``, split into words where FTS5 splits."""
    table = PUNCTUATION.replace("'", "''")
    return f"to_tsvector('simple', translate({expression}, '{table}', '{' ' * len(PUNCTUATION)}'))"


def _columns(table: str) -> str:
    """The text indexed for ``table``: its `SOURCES` columns joined by a space."""
    return " || ' ' || ".join(f"coalesce({c}, '')" for c in SOURCES[table])


#: one statement each (the punctuation holds a semicolon: never split on one)
POSTGRES_DDL = tuple(f"CREATE INDEX IF NOT EXISTS {table}_fts ON {table} USING GIN ({words(_columns(table))})"
                     for table in SOURCES)


def split_words(store: Store) -> None:
    """Migration 13: PostgreSQL's indexes rebuilt over words split as FTS5 splits them
    (`PUNCTUATION`). Nothing on SQLite."""
    if store.dialect == "sqlite":
        return
    for table in SOURCES:
        store.conn.execute(f"DROP INDEX IF EXISTS {table}_fts")
    for stmt in POSTGRES_DDL:
        store.conn.execute(stmt)
