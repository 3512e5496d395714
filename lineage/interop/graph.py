"""What an export covers, and the graph-tool formats: GraphML and JSON through networkx.

`scope` gathers the nodes and edges of the whole store, or of what a reference's
trace reaches (everything upstream of it, itself included); every exporter reads it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model import Edge, Node, canonical_json, json_document
from ..store import Store


@dataclass
class Scope:
    """Nodes and edges to export; ``root`` is the reference's node id, or None for the store."""

    nodes: list[Node]
    edges: list[Edge]
    root: str | None = None


def scope(store: Store, ref: str | None = None, *, predictions: bool = True,
          rels: Sequence[str] | None = None) -> Scope:
    """The whole store (predictions included, each ``was_derived_from`` its model,
    unless ``predictions`` is false), or the trace of ``ref``; only the edges of the
    relations ``rels`` when given (an exporter that reads no others). Raises
    NodeNotFoundError / AmbiguousIdError for a bad ref."""
    if ref is not None:
        from .. import query

        root = store.resolve(ref).id
        sub = query.trace(store, root)
        return Scope([n for n in sub.nodes() if n.kind != "group"],
                     [e for e in sub.edges() if rels is None or e.rel in rels], root)
    from ..query.dump import all_edges, all_nodes

    nodes = all_nodes(store)  # oldest first: the order things happened
    edges = list(all_edges(store, rels))
    if not predictions:
        return Scope(nodes, edges, None)
    preds = list(reversed(store.nodes(kind="prediction")))
    nodes += preds
    if rels is None or "was_derived_from" in rels:
        edges += [Edge(p.id, p.attrs["model"], "was_derived_from") for p in preds if p.attrs.get("model")]
    return Scope(nodes, edges, None)


def to_networkx(sc: Scope) -> Any:
    """A ``networkx.MultiDiGraph`` in PROV direction; node data ``kind``, ``name``,
    ``created_at`` and ``attrs`` (canonical JSON text, so GraphML can hold it)."""
    import networkx as nx

    g = nx.MultiDiGraph()
    for n in sc.nodes:
        g.add_node(n.id, kind=n.kind, name=n.name or "", created_at=n.created_at or "", attrs=canonical_json(dict(n.attrs)))
    for e in sc.edges:
        if e.src in g and e.dst in g:
            g.add_edge(e.src, e.dst, key=e.rel if e.role is None else f"{e.rel}:{e.role}", rel=e.rel, role=e.role or "")
    return g


def write_graphml(sc: Scope, path: str | os.PathLike[str]) -> int:
    """Write GraphML (networkx's writer); returns the number of nodes."""
    import networkx as nx

    g = to_networkx(sc)
    nx.write_graphml(g, os.fspath(path))
    return int(g.number_of_nodes())


def to_json_doc(sc: Scope) -> dict[str, Any]:
    """The subgraph JSON of DESIGN.md §5: ``{"root", "nodes", "edges", "counts"}``."""
    counts: dict[str, int] = {}
    for n in sc.nodes:
        counts[n.kind] = counts.get(n.kind, 0) + 1
    present = {n.id for n in sc.nodes}
    return {"root": sc.root, "nodes": [n.to_dict() for n in sc.nodes],
            "edges": [e.to_dict() for e in sc.edges if e.src in present and e.dst in present], "counts": counts}


def write_json(sc: Scope, path: str | os.PathLike[str]) -> int:
    """Write the subgraph JSON document; returns the number of nodes."""
    doc = to_json_doc(sc)
    Path(path).write_text(json_document(doc, indent=1), encoding="utf-8")
    return len(doc["nodes"])


