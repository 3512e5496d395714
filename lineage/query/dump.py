"""Whole-store reads for export (`lineage export` without a REF): every node with its
run state, every edge, in the order they were recorded.

Whole tables in one pass each, not the per-node lookups of `Store.get_nodes` /
`Store.with_run_state` (lists of ids 500 at a time): an export reads everything, so a
scan in storage order is the cheapest way to read it and its cost grows with the store
only, never with a query per node.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from ..model import Edge, Node
from ..store import Store, latest, published
from ..store.core import apply_run_state, with_duration


def all_edges(store: Store, rels: Sequence[str] | None = None) -> Iterator[Edge]:
    """Every recorded edge (of the relations ``rels`` when given), oldest first
    (streamed: memory follows the caller)."""
    if rels is None:
        cur = store.conn.execute("SELECT src, dst, rel, role FROM edges ORDER BY pk")
    else:
        marks = ", ".join("?" * len(rels))
        cur = store.conn.execute(f"SELECT src, dst, rel, role FROM edges WHERE rel IN ({marks}) ORDER BY pk", list(rels))
    while True:
        rows = cur.fetchmany(10_000)
        if not rows:
            return
        for src, dst, rel, role in rows:
            yield Edge(src, dst, rel, role)


def run_states(store: Store) -> dict[str, dict[str, Any]]:
    """``{run id: state}`` for every run, as `Store.with_run_state` adds it to a run's
    attrs (``params``, ``tags``, latest ``metrics``, ``status``, ``started_at``,
    ``ended_at``, ``exit_code``, ``error``), from one scan of each table."""
    out: dict[str, dict[str, Any]] = {}

    def state(run: str) -> dict[str, Any]:
        e = out.get(run)
        if e is None:
            e = out[run] = {"params": {}, "tags": {}, "metrics": {}}
        return e

    conn = store.conn
    # (rows of an unpublished bulk batch are no one's yet: `published`)
    for run, key, value in conn.execute(f"SELECT run, key, value FROM params WHERE {published()}"):
        state(run)["params"][key] = value
    for run, key, value in conn.execute(f"SELECT run, key, value FROM tags WHERE {published()} ORDER BY pk"):
        state(run)["tags"][key] = value
    # the value of each metric (MLflow's rule, `latest.rank`, as with_run_state picks
    # it), chosen in one pass rather than a sort
    best: dict[tuple[str, str], tuple[Any, ...]] = {}
    for pk, run, key, value, step, at in conn.execute(
            f"SELECT pk, run, key, value, step, at FROM metrics WHERE grp IS NULL AND {published()} ORDER BY pk"):
        k = (run, key)
        r = latest.rank(step, at, value, pk)
        b = best.get(k)
        if b is None or r > b:
            best[k] = r
            state(run)["metrics"][key] = value
    for run, status, at, exit_code, error in conn.execute(
            f"SELECT run, status, at, exit_code, error FROM run_states WHERE {published()} ORDER BY pk"):
        apply_run_state(state(run), status, at, exit_code, error)
    return out


def all_nodes(store: Store) -> list[Node]:
    """Every node of the nodes table, oldest first, runs with their state as
    `Store.nodes` gives them (predictions live in their own table: not read here)."""
    with store.snapshot():
        states = run_states(store)
        out = []
        for node_id, kind, name, attrs, created_at in store.conn.execute(
                "SELECT id, kind, name, attrs, created_at FROM nodes ORDER BY pk"):
            a = json.loads(attrs)
            if kind == "run":
                a.update(states.get(node_id) or {"params": {}, "tags": {}, "metrics": {}})
                with_duration(a)
            out.append(Node(node_id, kind, name, a, created_at))
    return out
