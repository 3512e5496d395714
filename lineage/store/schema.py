"""The schema: tables, indexes, migrations, the recorded tables and their column kinds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import fulltext

SCHEMA_VERSION = 15
STORE_DIR = ".lineage"
DB_NAME = "lineage.db"
GENESIS = "0" * 64

# Recorded tables and their content columns, in the order the rows digest visits them.
# `pk` (row order within an event) and `event` are not part of a row's content.
RECORD_TABLES: dict[str, tuple[str, ...]] = {
    "nodes": ("id", "kind", "name", "attrs", "created_at"),
    "aliases": ("node", "name"),
    "edges": ("src", "dst", "rel", "role"),
    "params": ("run", "key", "value"),
    "tags": ("run", "key", "value"),
    "metrics": ("run", "key", "value", "step", "at", "dataset", "grp"),
    "run_states": ("run", "status", "at", "exit_code", "error", "noticed_by"),
    "predictions": ("id", "model", "input_digest", "output", "score", "request_id", "created_at"),
    "annotations": ("node", "field", "text", "author", "at"),
    # appended last: the order is part of every event's rows digest
    "redactions": ("tbl", "row_pk", "row_digest", "erased_digest", "reason"),
    # migration 6 (appended after redactions: the order is part of every rows digest).
    # promotions: a label put on (`promote`), moved off (`end`) or taken off
    # (`unpromote`) a model version; the newest row of a (name, label) says who holds it.
    "promotions": ("name", "label", "model", "action", "reason", "author", "at"),
    # importances computed after a model was logged (`lg.compute_importance`), one row
    # per feature, each with its method and the data it was measured on
    "importances": ("model", "method", "feature", "level", "value", "std", "dataset", "target", "at"),
    # the input values of a prediction kept for its decision record (keep_inputs=True):
    # erased with the prediction
    "prediction_inputs": ("prediction", "inputs"),
    # migration 15: things known only by a name, as records (lineage/names.py): an
    # experiment, a registered model. A row with no key records that the name was
    # created; a row with a key sets that tag (the newest row of a (kind, name, key)
    # holds its value, as a run's tags do).
    "names": ("kind", "name", "key", "value", "at"),
}

#: tables a bulk write loads in batches, invisible until published (lineage/store/bulk.py):
#: predictions and their kept inputs, and the run tables an import fills in bulk
#: (metric histories, params, tags, run states: lineage/interop/bulk.py)
BATCHED_TABLES = ("predictions", "prediction_inputs", "params", "tags", "metrics", "run_states")


def published(alias: str = "") -> str:
    """An SQL condition, true for a row of a `BATCHED_TABLES` table that every reader
    may see: written with its event, or of a published batch. ``alias``: the table's
    alias in the query, if any. It excludes only rows of an unpublished batch (in
    flight, or left over by a killed writer); the set it tests against is the handful
    of unpublished batches, found through ``bulk_batches``' event index."""
    col = f"{alias}.event" if alias else "event"
    return f"{col} NOT IN (SELECT -batch FROM bulk_batches WHERE event IS NULL)"


def node_name(alias: str = "") -> str:
    """An SQL expression: the name a node is shown by. Its own ``name``; for a node
    recorded without one (data autolog saw first), the first name given to the same
    bytes since, from ``aliases`` — node rows are never rewritten (the ledger), so the
    name a person gave later is found there. Machine aliases (``mlflow:ID``) and
    erased names are no names. ``alias``: the nodes table's alias in the query, if any.
    The lookup runs only for a node without a name (COALESCE stops at the first value)."""
    t = f"{alias}." if alias else "nodes."
    return (f"COALESCE({t}name, (SELECT x.name FROM aliases x WHERE x.node = {t}id AND x.name <> '' "
            f"AND substr(x.name, 1, 7) <> 'mlflow:' ORDER BY x.pk LIMIT 1))")


_DDL_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    payload TEXT,
    payload_digest TEXT NOT NULL,
    rows_digest TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE nodes (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    name TEXT,
    attrs TEXT NOT NULL,
    created_at TEXT NOT NULL,
    event INTEGER NOT NULL
);
CREATE INDEX nodes_name ON nodes (name, kind);
CREATE INDEX nodes_kind ON nodes (kind, created_at);
CREATE INDEX nodes_event ON nodes (event);
CREATE TABLE aliases (
    pk INTEGER PRIMARY KEY,
    node TEXT NOT NULL,
    name TEXT NOT NULL,
    event INTEGER NOT NULL
);
CREATE INDEX aliases_name ON aliases (name);
CREATE INDEX aliases_node ON aliases (node);
CREATE INDEX aliases_event ON aliases (event);
CREATE TABLE edges (
    pk INTEGER PRIMARY KEY,
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    rel TEXT NOT NULL,
    role TEXT,
    event INTEGER NOT NULL
);
CREATE INDEX edges_src ON edges (src, dst, rel, role);
CREATE INDEX edges_dst ON edges (dst, src, rel);
CREATE INDEX edges_event ON edges (event);
CREATE TABLE params (
    pk INTEGER PRIMARY KEY,
    run TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    event INTEGER NOT NULL
);
CREATE INDEX params_run ON params (run, key);
CREATE INDEX params_key ON params (key, run);
CREATE INDEX params_event ON params (event);
CREATE TABLE tags (
    pk INTEGER PRIMARY KEY,
    run TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    event INTEGER NOT NULL
);
CREATE INDEX tags_run ON tags (run, key);
CREATE INDEX tags_key ON tags (key, run);
CREATE INDEX tags_event ON tags (event);
CREATE TABLE metrics (
    pk INTEGER PRIMARY KEY,
    run TEXT NOT NULL,
    key TEXT NOT NULL,
    value REAL,
    step INTEGER NOT NULL,
    at TEXT NOT NULL,
    dataset TEXT,
    grp TEXT,
    event INTEGER NOT NULL
);
CREATE INDEX metrics_run ON metrics (run, key);
CREATE INDEX metrics_key ON metrics (key, run);
CREATE INDEX metrics_event ON metrics (event);
CREATE TABLE run_states (
    pk INTEGER PRIMARY KEY,
    run TEXT NOT NULL,
    status TEXT NOT NULL,
    at TEXT NOT NULL,
    exit_code INTEGER,
    error TEXT,
    noticed_by TEXT,
    event INTEGER NOT NULL
);
CREATE INDEX run_states_run ON run_states (run, pk);
CREATE INDEX run_states_status ON run_states (status);
CREATE INDEX run_states_event ON run_states (event);
CREATE TABLE predictions (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    input_digest TEXT,
    output TEXT,
    score REAL,
    request_id TEXT,
    created_at TEXT NOT NULL,
    event INTEGER NOT NULL
);
CREATE INDEX predictions_model ON predictions (model);
CREATE INDEX predictions_request ON predictions (request_id);
CREATE INDEX predictions_event ON predictions (event);
CREATE TABLE annotations (
    pk INTEGER PRIMARY KEY,
    node TEXT NOT NULL,
    field TEXT NOT NULL,
    text TEXT,
    author TEXT,
    at TEXT NOT NULL,
    event INTEGER NOT NULL
);
CREATE INDEX annotations_node ON annotations (node, field);
CREATE INDEX annotations_event ON annotations (event);
CREATE TABLE stat_cache (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    digest TEXT NOT NULL,
    lines INTEGER
);
"""

#: a migration written as code: called with the store inside the migration's transaction
MigrationStep = Callable[[Any], None]

# version -> DDL that upgrades a store from version-1 to version. Append, never edit.
# (A step that is not one SQL script per backend is a `MigrationStep`.)
MIGRATIONS: dict[int, str | MigrationStep] = {
    1: _DDL_V1,
    # 2: find the last checkpoint (audits start there) without scanning the ledger
    2: "CREATE INDEX events_type ON events (type, seq)",
    # 3: erasure (GDPR): which row was erased, the digest its event committed to, and
    # the digest of the row as erased (so an edit after erasure is still caught)
    3: """
CREATE TABLE redactions (
    pk INTEGER PRIMARY KEY,
    tbl TEXT NOT NULL,
    row_pk INTEGER NOT NULL,
    row_digest TEXT NOT NULL,
    erased_digest TEXT NOT NULL,
    reason TEXT,
    event INTEGER NOT NULL
);
CREATE INDEX redactions_row ON redactions (tbl, row_pk);
CREATE INDEX redactions_event ON redactions (event)
""",
    # 4: most predictions carry no request id; index only those that do (5-8% faster
    # bulk inserts, and no million NULL entries). `request_id = ?` still uses it.
    4: """
DROP INDEX predictions_request;
CREATE INDEX predictions_request ON predictions (request_id) WHERE request_id IS NOT NULL
""",
    # 5: the runs whose latest state is `running`, kept by the write path. Every open
    # looks for dead runs; finding them from run_states read a row of every run ever
    # started (5 ms at 10k runs, growing with history). A cache, not evidence: it is
    # outside the chain, like stat_cache, and rebuilt here from run_states.
    5: """
CREATE TABLE open_runs (run TEXT PRIMARY KEY);
INSERT INTO open_runs (run)
    SELECT s.run FROM run_states s WHERE s.status = 'running'
    AND s.pk = (SELECT MAX(t.pk) FROM run_states t WHERE t.run = s.run)
""",
    # 6: promotion labels (`production`, `staging`, any word) on model versions, and
    # feature importances computed after logging. Both append-only and in the chain.
    # (IF NOT EXISTS: self-contained, so the lead may renumber it at merge.)
    6: """
CREATE TABLE IF NOT EXISTS promotions (
    pk INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    model TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT,
    author TEXT,
    at TEXT NOT NULL,
    event INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS promotions_label ON promotions (name, label, pk);
CREATE INDEX IF NOT EXISTS promotions_model ON promotions (model);
CREATE INDEX IF NOT EXISTS promotions_event ON promotions (event);
CREATE TABLE IF NOT EXISTS importances (
    pk INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    method TEXT NOT NULL,
    feature TEXT NOT NULL,
    level TEXT NOT NULL,
    value REAL,
    std REAL,
    dataset TEXT,
    target TEXT,
    at TEXT NOT NULL,
    event INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS importances_model ON importances (model, pk);
CREATE INDEX IF NOT EXISTS importances_event ON importances (event)
""",
    # 7: the input values of predictions logged with keep_inputs=True (JSON object of
    # feature -> value), so a decision can be reconstructed and explained; evidence,
    # in the chain, and blanked by erasure of the prediction
    7: """
CREATE TABLE prediction_inputs (
    pk INTEGER PRIMARY KEY,
    prediction TEXT NOT NULL,
    inputs TEXT,
    event INTEGER NOT NULL
);
CREATE INDEX prediction_inputs_prediction ON prediction_inputs (prediction);
CREATE INDEX prediction_inputs_event ON prediction_inputs (event)
""",
    # 8: full-text search (`lineage search`) over names, aliases, annotations, params
    # and tags: an index, not evidence (outside RECORD_TABLES and the ledger), created
    # and backfilled through sqlite-utils' enable_fts, kept in step by its triggers.
    # Code, not SQL text: trigger bodies hold semicolons, and PostgreSQL takes a GIN
    # index instead (lineage/store/fulltext.py). Self-contained (replace=True), so the
    # lead may renumber it at merge.
    8: fulltext.migrate,
    # 9: bulk writes load their rows straight into their table in short transactions
    # (issue 8: no writer waits on a long one), stored with ``event = -batch`` and
    # invisible until their one ledger event publishes the batch (``event`` set here).
    # Not a recorded table: which event a batch belongs to is committed by that
    # event's rows digest (see lineage/store/bulk.py and docs/integrity.md).
    # (IF NOT EXISTS: self-contained, so the lead may renumber it at merge.)
    9: """
CREATE TABLE IF NOT EXISTS bulk_batches (
    batch INTEGER PRIMARY KEY AUTOINCREMENT,
    tbl TEXT NOT NULL,
    event INTEGER UNIQUE,
    started_at TEXT NOT NULL
)
""",
    # 10: the full-text index stops being written inside every INSERT (migration 8's
    # triggers cost a logged param as much as the rest of the call, issue 16) and
    # catches up when searched instead, from a high-water mark per table
    # (``fts_marks``, a cache outside the chain; lineage/store/fulltext.py). Code:
    # it drops the triggers by what they write, and does nothing on PostgreSQL.
    # Self-contained, so the lead may renumber it at merge.
    10: fulltext.drop_triggers,
    # 11: migration 2's index on every event's type is one more page written by
    # every commit (7.4 -> 6.3 WAL pages a logged param, ~10% of its time; 10 of the
    # 124 pages of the MLMD benchmark's group, issue 16), for the two types ever
    # looked up by type: the last checkpoint (audits start there) and the pushes a
    # store received. Partial indexes hold just those events; `type = 'checkpoint'`
    # implies its index's condition, so the same queries use them.
    11: """
DROP INDEX IF EXISTS events_type;
CREATE INDEX IF NOT EXISTS events_checkpoint ON events (type, seq) WHERE type = 'checkpoint';
CREATE INDEX IF NOT EXISTS events_push ON events (type, seq) WHERE type = 'push'
""",
    # 12: the bytes of small artifacts (a logged model's pickle: `Store.put_artifact`),
    # written by the transaction that records them, so they are exactly as durable
    # as their record and their file beside the database needs no sync of its own
    # (its ~0.2 ms wait was a tenth of a pipeline's recording, issue 16); a file a
    # power cut lost or cut short is written again from here (`Store.artifact_path`).
    # A copy, not evidence: content-addressed (checked against its digest when
    # used) and outside the chain, like stat_cache. PostgreSQL stores had the table
    # already, for a team's other machines. (IF NOT EXISTS: self-contained.)
    12: "CREATE TABLE IF NOT EXISTS artifact_blobs (digest TEXT PRIMARY KEY, data BLOB NOT NULL)",
    # 13: PostgreSQL's full-text indexes split words where FTS5 does, at punctuation
    # (`lineage search train` found no `train.csv` on a team store, nor `0.1` a param
    # of 0.1). Code: it rebuilds the GIN indexes there, and does nothing on SQLite.
    13: fulltext.split_words,
    # 14: the predictions a run made (`lineage predict`, `lineage run --predictions`)
    # are found from the run by its id in their event's payload (`impact` of the
    # file it scored): a partial index holds just those events, one entry per write.
    14: "CREATE INDEX IF NOT EXISTS events_scored_by ON events (json_extract(payload, '$.run')) "
        "WHERE type = 'predictions'",
    # 15: experiments and registered models recorded in their own right (RECORD_TABLES'
    # `names`): one created without a run or version, and their tags and
    # descriptions, had lived only in the creating process, so a script's
    # `create_experiment(tags=...)` was gone for the next one. (IF NOT EXISTS:
    # self-contained.)
    15: """
CREATE TABLE IF NOT EXISTS names (
    pk INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    key TEXT,
    value TEXT,
    at TEXT NOT NULL,
    event INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS names_name ON names (kind, name, key);
CREATE INDEX IF NOT EXISTS names_event ON names (event)
""",
}

# Column types, so a row's digest is computed over exactly what SQLite will hand back.
REAL_COLUMNS = {("metrics", "value"), ("predictions", "score"), ("importances", "value"), ("importances", "std")}
INT_COLUMNS = {("metrics", "step"), ("run_states", "exit_code"), ("redactions", "row_pk")}

#: a column's kind, as `column_kinds` gives it for the row codec (lineage/store/codec.py)
KIND_TEXT, KIND_REAL, KIND_INT = 0, 1, 2


def column_kinds(table: str, columns: Sequence[str]) -> tuple[int, ...]:
    """The kind (`KIND_TEXT`, `KIND_REAL` or `KIND_INT`) of each of ``columns`` of ``table``."""
    return tuple(KIND_REAL if (table, c) in REAL_COLUMNS else KIND_INT if (table, c) in INT_COLUMNS else KIND_TEXT for c in columns)
