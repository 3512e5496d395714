"""Whole-store reads for export (`lineage export` without a REF): every edge, in the
order it was recorded. The nodes come from `Store.nodes`."""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Edge
from ..store import Store


def all_edges(store: Store) -> Iterator[Edge]:
    """Every recorded edge, oldest first (streamed: memory follows the caller)."""
    cur = store.conn.execute("SELECT src, dst, rel, role FROM edges ORDER BY pk")
    while True:
        rows = cur.fetchmany(10_000)
        if not rows:
            return
        for src, dst, rel, role in rows:
            yield Edge(src, dst, rel, role)
