"""Reads that serve reports, audits and the API rather than writes: a run's metric
values and states with the events that recorded them, the events behind what is
recorded about some nodes, a model's predictions summarised, kept prediction inputs,
importances, the store's overview. Functions over a `Store` (issue 10: reads that
serve queries live in the query layer; the store keeps what writes and references
need).

Every read of a table that bulk writes load in batches (`BATCHED_TABLES`: the run
tables, predictions, kept inputs) excludes rows of an unpublished batch
(`published`), and reports a batch's rows under the event that published it
(`event_numbers`): no read sees a part of a bulk write (issue 8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..store import Store, event_numbers, published
from ..tracking import NOTE_TAG
from .closure import chunks, placeholders

__all__ = ["kept_inputs", "metrics_of", "overview_counts", "param_events", "prediction_inputs",
           "prediction_summary", "record_events", "run_states_of", "serving_events", "tag_changes_of", "tag_values"]


def _with_events(store: Store, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with each ``event`` as the ledger event (a batch's publishing event)."""
    if any(isinstance(r["event"], int) and r["event"] < 0 for r in rows):
        seqs = event_numbers(store, {r["event"] for r in rows})
        for r in rows:
            r["event"] = seqs.get(r["event"], r["event"])
    return rows


def metrics_of(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every metric value a run logged, in order, with the event that recorded it:
    ``{key, value, step, at, dataset, group, event}``."""
    sql = f"SELECT key, value, step, at, dataset, grp, event FROM metrics WHERE run = ? AND {published()} ORDER BY pk"
    return _with_events(store, [dict(zip(("key", "value", "step", "at", "dataset", "group", "event"), r))
                                for r in store.conn.execute(sql, (run_id,))])


def tag_changes_of(store: Store, run_id: str, key: str) -> list[dict[str, Any]]:
    """Every value a run's tag ``key`` was given, in order: ``{value, event}``."""
    sql = f"SELECT value, event FROM tags WHERE run = ? AND key = ? AND {published()} ORDER BY pk"
    return _with_events(store, [dict(zip(("value", "event"), r)) for r in store.conn.execute(sql, (run_id, key))])


def tags_of(store: Store, node_id: str) -> dict[str, str]:
    """The tags of a run or a model as they stand now (the latest value of each key)."""
    sql = f"SELECT key, value FROM tags WHERE run = ? AND {published()} ORDER BY pk"
    return dict(store.conn.execute(sql, (node_id,)).fetchall())


def registry_descriptions(store: Store, model_id: str, attrs: Any, names: Sequence[str]) -> list[dict[str, Any]]:
    """What a model registry says a model version is for, newest value of each
    statement: the version's description (its tag ``mlflow.note.content``, or as an
    MLflow import recorded it), and that of each registered model among ``names``
    (its record's). ``{"of": "version"|"registered model", "name", "text", "table",
    "event"}``: ``table`` and ``event`` say where it is recorded. A statement written in
    a registry, by whoever could write there: not a person's signed statement."""
    out: list[dict[str, Any]] = []
    row = store.conn.execute(f"SELECT value, event FROM tags WHERE run = ? AND key = ? AND {published()} "
                             "ORDER BY pk DESC LIMIT 1", (model_id, NOTE_TAG)).fetchone()
    if row and row[0]:
        event = event_numbers(store, {row[1]}).get(row[1])  # (a bulk import's batch: its publishing event)
        out.append({"of": "version", "name": None, "text": row[0], "table": "tags", "event": event})
    registered = [r for r in (attrs.get("registered") or []) if isinstance(r, dict)]
    if not out:
        out += [{"of": "version", "name": r.get("name"), "text": r["description"], "table": "nodes", "event": None}
                for r in registered[-1:] if r.get("description")]
    for name in dict.fromkeys(names):
        row = store.conn.execute("SELECT value, event FROM names WHERE kind = 'registered_model' AND name = ? "
                                 "AND key = ? ORDER BY pk DESC LIMIT 1", (name, NOTE_TAG)).fetchone()
        if row and row[0]:
            out.append({"of": "registered model", "name": name, "text": row[0], "table": "names", "event": row[1]})
        else:
            out += [{"of": "registered model", "name": name, "text": r["model_description"], "table": "nodes",
                     "event": None} for r in registered[-1:] if r.get("name") == name and r.get("model_description")]
    return out


def tag_values(store: Store, run_ids: Sequence[str], key: str) -> dict[str, str]:
    """The value tag ``key`` of each of ``run_ids`` holds now (the latest given wins),
    for the runs that have one: a statement per 500 runs, where `tag_changes_of`
    asks run by run."""
    out: dict[str, str] = {}
    for chunk in chunks(sorted(set(run_ids)), 500):
        sql = (f"SELECT run, value FROM tags WHERE key = ? AND run IN ({placeholders(len(chunk))}) AND {published()} "
               "ORDER BY pk")
        for run, value in store.conn.execute(sql, (key, *chunk)):
            out[run] = value
    return out


def run_states_of(store: Store, run_id: str) -> list[dict[str, Any]]:
    """A run's state changes in order: ``{status, at, exit_code, error, noticed_by, event}``."""
    sql = (f"SELECT status, at, exit_code, error, noticed_by, event FROM run_states WHERE run = ? AND {published()} "
           "ORDER BY pk")
    return _with_events(store, [dict(zip(("status", "at", "exit_code", "error", "noticed_by", "event"), r))
                                for r in store.conn.execute(sql, (run_id,))])


def record_events(store: Store, node_ids: Sequence[str]) -> dict[str, set[int]]:
    """The ledger events behind what is recorded about ``node_ids``, per table: their
    node rows and aliases, the edges between two of them, the params, tags, metrics
    and states of the runs among them, their annotations, and the erasures of any of
    those rows (predictions aside)."""
    ids = sorted({i for i in node_ids if not i.startswith("prediction:")})
    out: dict[str, set[int]] = {t: set() for t in ("nodes", "aliases", "edges", "params", "tags", "metrics",
                                                   "run_states", "annotations", "redactions")}
    wanted = set(ids)
    for chunk in chunks(ids, 500):
        marks = placeholders(len(chunk))
        for table, column in (("nodes", "id"), ("aliases", "node"), ("params", "run"), ("tags", "run"),
                              ("metrics", "run"), ("run_states", "run"), ("annotations", "node")):
            also = f" AND {published()}" if table in ("params", "tags", "metrics", "run_states") else ""
            found = {r[0] for r in store.conn.execute(
                f"SELECT DISTINCT event FROM {table} WHERE {column} IN ({marks}){also}", chunk)}
            if any(isinstance(e, int) and e < 0 for e in found):  # a batch's rows: its publishing event
                found = set(event_numbers(store, found).values())
            out[table].update(found)
        out["edges"].update(r[1] for r in store.conn.execute(f"SELECT dst, event FROM edges WHERE src IN ({marks})", chunk)
                            if r[0] in wanted)
        # an erased row hashes through its redaction record: a forged one would make an
        # edited row pass as erased, so the event that wrote the redaction is checked too
        for table, column in _ERASABLE:
            out["redactions"].update(r[0] for r in store.conn.execute(
                f"SELECT DISTINCT r.event FROM redactions r JOIN {table} t ON t.pk = r.row_pk "
                f"WHERE r.tbl = '{table}' AND t.{column} IN ({marks})", chunk))
    return out


#: tables whose rows erasure can blank, with the column naming the node each row is about
_ERASABLE = (("nodes", "id"), ("aliases", "node"), ("params", "run"), ("tags", "run"), ("run_states", "run"),
             ("annotations", "node"))


def serving_events(store: Store, model_id: str, names: Sequence[str]) -> dict[str, set[int]]:
    """The ledger events behind a model's serving facts, per table: every change of
    the labels of its ``names`` (the labels a report shows for the version and the
    name come from replaying all of them), the importances computed for it after
    logging, and the erasures of its predictions and their kept inputs (``redactions``)."""
    out: dict[str, set[int]] = {"promotions": set(), "importances": set(), "redactions": set()}
    for name in names:
        out["promotions"] |= {r[0] for r in store.conn.execute("SELECT DISTINCT event FROM promotions WHERE name = ?",
                                                                (name,))}
    out["importances"] = {r[0] for r in store.conn.execute("SELECT DISTINCT event FROM importances WHERE model = ?",
                                                            (model_id,))}
    out["redactions"] = {r[0] for r in store.conn.execute(
        "SELECT DISTINCT r.event FROM redactions r JOIN predictions p ON p.pk = r.row_pk "
        "WHERE r.tbl = 'predictions' AND p.model = ? "
        "UNION SELECT DISTINCT r.event FROM redactions r JOIN prediction_inputs i ON i.pk = r.row_pk "
        "JOIN predictions p ON p.id = i.prediction WHERE r.tbl = 'prediction_inputs' AND p.model = ?",
        (model_id, model_id))}
    return out


def param_events(store: Store, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """``{run: {key: event}}``: the ledger event that wrote each param row of
    ``run_ids`` (a param is written once, so one event per key)."""
    out: dict[str, dict[str, int]] = {r: {} for r in run_ids}
    raw: list[tuple[str, str, Any]] = []
    for chunk in chunks(list(run_ids), 500):
        sql = f"SELECT run, key, event FROM params WHERE run IN ({placeholders(len(chunk))}) AND {published()} ORDER BY pk"
        raw += store.conn.execute(sql, chunk).fetchall()
    seqs = event_numbers(store, {r[2] for r in raw})
    for run, key, event in raw:
        out[run][key] = seqs.get(event, event)
    return out


def prediction_summary(store: Store, model_id: str) -> dict[str, Any]:
    """How many predictions a model made, when the first and last were recorded, and
    the events that wrote them with their row counts: ``{count, first_at, last_at,
    events: {seq: rows}}``."""
    sql = ("SELECT event, COUNT(*), MIN(created_at), MAX(created_at) FROM predictions "
           f"WHERE model = ? AND {published()} GROUP BY event")
    events: dict[int, int] = {}
    first = last = None
    rows = store.conn.execute(sql, (model_id,)).fetchall()
    seqs = event_numbers(store, [r[0] for r in rows])  # a batch's rows count under its event
    for event, n, lo, hi in sorted(rows, key=lambda r: (seqs[r[0]] is None, seqs[r[0]] or 0)):
        events[seqs[event]] = n
        first = lo if first is None or lo < first else first
        last = hi if last is None or hi > last else last
    return {"count": sum(events.values()), "first_at": first, "last_at": last, "events": events}


def prediction_inputs(store: Store, prediction_id: str) -> tuple[str | None, int] | None:
    """``(inputs JSON text, event)`` kept for a prediction (text None once erased),
    or None when its inputs were not kept."""
    row = store.conn.execute(f"SELECT inputs, event FROM prediction_inputs WHERE prediction = ? AND {published()} "
                             "ORDER BY pk LIMIT 1", (prediction_id,)).fetchone()
    return (row[0], event_numbers(store, [row[1]])[row[1]]) if row else None


def kept_inputs(store: Store, model_id: str, *, limit: int = 2000) -> list[str]:
    """Up to ``limit`` kept input rows (JSON text) of a model's predictions, newest
    first: the fallback baseline of an explanation when no training data is readable."""
    sql = ("SELECT i.inputs FROM prediction_inputs i JOIN predictions p ON p.id = i.prediction "
           f"WHERE p.model = ? AND i.inputs IS NOT NULL AND {published('i')} AND {published('p')} "
           "ORDER BY i.pk DESC LIMIT ?")
    return [r[0] for r in store.conn.execute(sql, (model_id, int(limit)))]


def overview_counts(store: Store) -> tuple[list[tuple[str, str | None, int]],
                                           list[tuple[str, str | None, str, str | None, str, str | None, int]]]:
    """The store summarised by aggregate queries, never row by row.

    Returns ``(groups, edges)``: ``groups`` are ``(kind, name, count)`` for the nodes
    grouped by kind and name, predictions grouped by their model's name as
    ``("prediction", model_name, count)``; ``edges`` are ``(src_kind, src_name,
    dst_kind, dst_name, rel, role, count)`` between those groups, the predictions'
    link to their model as ``was_derived_from``.
    """
    groups = [(k, n, c) for k, n, c in store.conn.execute("SELECT kind, name, COUNT(*) FROM nodes GROUP BY kind, name")]
    edges = [tuple(r) for r in store.conn.execute(
        "SELECT s.kind, s.name, d.kind, d.name, e.rel, e.role, COUNT(*) FROM edges e "
        "JOIN nodes s ON s.id = e.src JOIN nodes d ON d.id = e.dst "
        "GROUP BY s.kind, s.name, d.kind, d.name, e.rel, e.role")]
    per_model = store.conn.execute(
        f"SELECT m.name, COUNT(*) FROM predictions p JOIN nodes m ON m.id = p.model WHERE {published('p')} "
        "GROUP BY m.name").fetchall()
    for model_name, count in per_model:
        groups.append(("prediction", model_name, count))
        edges.append(("prediction", model_name, "model", model_name, "was_derived_from", None, count))
    return groups, edges
