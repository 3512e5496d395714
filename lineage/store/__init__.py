"""The store: one SQLite file holding the recorded graph and its hash-chained ledger.

A package split by concern (issue 10):

* `schema`: tables, indexes, MIGRATIONS, SCHEMA_VERSION, RECORD_TABLES, column kinds;
* `codec`: row digests, canonical encoding, coercion, the chain hash (one implementation
  for writes, bulk writes and verify);
* `ledger`: appending events, verify, checkpoints, event reads;
* `erasure`: redact and scrub;
* `bulk`: bulk writes loaded in short transactions, invisible until published;
* `files`: artifacts, run locks, the stat cache, the ``.gitignore`` of ``.lineage/``;
* `sqlite`: connections, pragmas, the busy wait, backend errors translated in one place;
* `locate`: finding a store;
* `fulltext`: the full-text index behind `lineage search` (an index, not evidence);
* `publish`: `push`/`pull`, a store's history copied into another and linked to its head;
* `core`: the `Store` class, which delegates to the modules above.

SQL is kept portable (standard SQL, no SQLite-only syntax in queries) so the same schema
can later live in PostgreSQL. sqlite-utils is imported lazily: it costs ~0.25 s to import.
Everything imported from ``lineage.store`` before the split is re-exported here.
"""

from __future__ import annotations

from .bulk import event_numbers
from .codec import as_stored, chain_hash, encode_batch, row_digest
from .core import Store
from .erasure import ERASURE_LIMITS
from .files import RunLock, StatCache
from .ledger import Event, VerifyReport
from .locate import default_location, find_store, locate
from .schema import (
    BATCHED_TABLES,
    DB_NAME,
    GENESIS,
    MIGRATIONS,
    RECORD_TABLES,
    SCHEMA_VERSION,
    STORE_DIR,
    column_kinds,
    node_name,
    published,
)
from .sqlite import chunked, fork_gate, map_errors

__all__ = [
    "BATCHED_TABLES",
    "DB_NAME",
    "ERASURE_LIMITS",
    "GENESIS",
    "MIGRATIONS",
    "RECORD_TABLES",
    "SCHEMA_VERSION",
    "STORE_DIR",
    "Event",
    "RunLock",
    "StatCache",
    "Store",
    "VerifyReport",
    "as_stored",
    "chain_hash",
    "chunked",
    "column_kinds",
    "default_location",
    "encode_batch",
    "event_numbers",
    "find_store",
    "fork_gate",
    "locate",
    "map_errors",
    "node_name",
    "published",
    "row_digest",
]
