"""Full-text search over names, aliases, annotations, params and tags: an index, not
evidence.

On SQLite the index is FTS5, managed through sqlite-utils: `Table.enable_fts` makes
one external-content FTS5 table per source table (``nodes_fts``, …), backfills it,
and adds the three triggers that keep it in step with every insert, update and
delete. Triggers, not calls in the write path: every way a row arrives (a write, a
bulk publish, an import, a push, an erasure's in-place update) passes through them,
so the index cannot miss a write. Being external-content, the FTS tables hold no
copy of the text, only the inverted index; erasure removes an erased row's terms
(`after_erasure`) before the store is vacuumed.

The FTS tables are outside RECORD_TABLES and the ledger: nothing is hashed, and a
stale or damaged index is rebuilt from the evidence (`rebuild`), never trusted.

PostgreSQL: no trigger and no extra table, a GIN index over
``to_tsvector('simple', …)`` of the same columns (`POSTGRES_DDL`), which PostgreSQL
maintains itself, created by the same migration step (`migrate` reads the store's
``dialect``); the query is lineage/query/search.py's `search_sql` for
``"postgresql"``. Both are run on a real server by tests/test_search_postgres.py and
by the search tests on both backends.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from ..errors import LineageError

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
        for stmt in POSTGRES_DDL.split(";"):
            if stmt.strip():
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
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%\\_fts' ESCAPE '\\'")}
    return all(fts_table(t) in found for t in SOURCES)


def rebuild(store: Store) -> None:
    """Rebuild every FTS table from its source table (a stale or damaged index)."""
    if store.dialect != "sqlite":
        return  # PostgreSQL's expression indexes are never stale
    with store.transaction():
        for table in SOURCES:
            t = fts_table(table)
            store.conn.execute(f"INSERT INTO {t} ({t}) VALUES ('rebuild')")


def check(store: Store) -> list[str]:
    """The FTS tables whose index does not match their source rows (FTS5's
    ``integrity-check`` against the content table), as names; empty when sound."""
    if store.dialect != "sqlite" or not installed(store):
        return []
    bad = []
    for table in SOURCES:
        t = fts_table(table)
        try:
            store.conn.execute(f"INSERT INTO {t} ({t}, rank) VALUES ('integrity-check', 1)")
        except (sqlite3.Error, LineageError):  # the check failed: "rebuild it"
            bad.append(t)
    return bad


def after_erasure(store: Store) -> None:
    """Drop erased terms from the index for good. An FTS5 delete only adds a
    tombstone in a newer segment; the old segment still holds the term until the
    segments are merged. ``optimize`` merges them all into one, so the erased
    words leave the index's pages (which the caller's VACUUM then zeroes)."""
    if store.dialect != "sqlite" or not installed(store):
        return
    for table in SOURCES:
        t = fts_table(table)
        store.conn.execute(f"INSERT INTO {t} ({t}) VALUES ('optimize')")


# ---------------------------------------------------------------------------
# PostgreSQL: this migration's step there (see `migrate`).
# 'simple': no stemming and no stop words, as FTS5's unicode61 tokenizer (names and
# param values are identifiers, not prose). Expression indexes need no trigger: the
# query in lineage/query/search.py repeats each expression exactly, so it uses them.

POSTGRES_DDL = """
CREATE INDEX IF NOT EXISTS nodes_fts ON nodes USING GIN (to_tsvector('simple', coalesce(name, '')));
CREATE INDEX IF NOT EXISTS aliases_fts ON aliases USING GIN (to_tsvector('simple', coalesce(name, '')));
CREATE INDEX IF NOT EXISTS annotations_fts ON annotations
    USING GIN (to_tsvector('simple', coalesce(field, '') || ' ' || coalesce(text, '')));
CREATE INDEX IF NOT EXISTS params_fts ON params
    USING GIN (to_tsvector('simple', coalesce(key, '') || ' ' || coalesce(value, '')));
CREATE INDEX IF NOT EXISTS tags_fts ON tags
    USING GIN (to_tsvector('simple', coalesce(key, '') || ' ' || coalesce(value, '')))
"""
