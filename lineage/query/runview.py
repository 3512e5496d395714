"""Reads behind the MLflow-shaped views of runs: experiments, a run's inputs and
outputs, and a metric's step history."""

from __future__ import annotations

from typing import Any

from ..model import Node
from ..store import Store, published


def experiments(store: Store) -> list[dict[str, Any]]:
    """Every experiment that holds a run: ``{name, runs, first_at, last_at}``, by name."""
    sql = ("SELECT json_extract(attrs, '$.experiment') AS e, COUNT(*), MIN(created_at), MAX(created_at) "
           "FROM nodes WHERE kind = 'run' GROUP BY e ORDER BY e")
    return [{"name": e or "default", "runs": n, "first_at": first, "last_at": last}
            for e, n, first, last in store.conn.execute(sql)]


def run_links(store: Store, run_id: str) -> list[tuple[str, str | None, Node]]:
    """What a run used and what it generated, oldest first: ``(rel, role, node)`` with
    rel ``used`` (role as recorded: training, code, environment, …) or
    ``was_generated_by`` (role: where the run put it, for artifacts and models logged
    at an MLflow artifact path; else None)."""
    rows: list[tuple[int, str, str | None, str]] = []
    for pk, dst, role in store.conn.execute(
            "SELECT pk, dst, role FROM edges WHERE src = ? AND rel = 'used' ORDER BY pk", (run_id,)):
        rows.append((pk, "used", role, dst))
    for pk, src, role in store.conn.execute(
            "SELECT pk, src, role FROM edges WHERE dst = ? AND rel = 'was_generated_by' ORDER BY pk", (run_id,)):
        rows.append((pk, "was_generated_by", role, src))
    rows.sort()
    found = store.get_nodes([r[3] for r in rows])
    return [(rel, role, found[i]) for _, rel, role, i in rows if i in found]


def metric_history(store: Store, run_id: str, key: str) -> list[dict[str, Any]]:
    """Every value of one metric of a run, by step then logging order:
    ``{step, value, at, group, dataset}``. Per-group values carry their group."""
    sql = ("SELECT step, value, at, grp, dataset FROM metrics WHERE run = ? AND key = ? "
           f"AND {published()} ORDER BY step, pk")
    return [dict(zip(("step", "value", "at", "group", "dataset"), r)) for r in store.conn.execute(sql, (run_id, key))]


def has_metric_value(store: Store, run_id: str, key: str, step: int, value: float, at: str | None) -> bool:
    """Whether the run logged exactly this run-level value of ``key`` already (the same
    step, value and time; a NaN, kept as NULL, is the same as a NaN): one probe of the
    ``(run, key)`` index, not a read of the history."""
    nan = value != value
    sql = (f"SELECT 1 FROM metrics WHERE run = ? AND key = ? AND step = ? AND at = ? AND grp IS NULL "
           f"AND {'value IS NULL' if nan else 'value = ?'} AND {published()} LIMIT 1")
    args = (run_id, key, step, at) if nan else (run_id, key, step, at, value)
    return store.conn.execute(sql, args).fetchone() is not None


def metric_keys(store: Store, run_id: str) -> list[str]:
    """The names of the metrics a run logged, sorted."""
    sql = f"SELECT DISTINCT key FROM metrics WHERE run = ? AND {published()} ORDER BY key"
    return [r[0] for r in store.conn.execute(sql, (run_id,))]


def associated_agents(store: Store, run_id: str) -> list[str]:
    """The agents a run was associated with (who ran it), first recorded first."""
    return [r[0] for r in store.conn.execute(
        "SELECT dst FROM edges WHERE src = ? AND rel = 'was_associated_with' ORDER BY pk", (run_id,))]
