"""Views that read the record rather than a given subgraph: `overview` (the whole store
as a diagram-sized subgraph, from aggregate queries) and `find_marks` (which nodes
are stale or tampered)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

import networkx as nx

from ..model import Node
from ..query import Subgraph
from ..query import rows as query_rows
from .folding import edge_key, new_group_id
from .style import KIND_ORDER

if TYPE_CHECKING:  # pragma: no cover
    from ..api import Lineage
    from ..store import Store


def overview(store: Store, *, per_kind: int = 12) -> Subgraph:
    """A diagram-sized summary of the whole store, built from aggregate queries only
    (`Store.overview_counts`), never by loading nodes.

    One group node per (kind, name) with its count - predictions grouped by the name of
    their model - and edges between groups, counted. A kind with more than ``per_kind``
    names shows its ``per_kind`` biggest names that stand for two nodes or more; its
    other names share one group ("10,000 other runs"), so a store where every run has
    its own name still gives a readable picture.

    Group nodes have kind ``group`` and ``attrs={"of", "count", "overview": True}`` (plus
    ``"names"``: how many names an "other" group stands for); ``root`` is None and
    ``direction`` is ``"overview"``.
    """
    groups, edges = query_rows.overview_counts(store)
    by_kind: dict[str, list[tuple[str | None, int]]] = {}
    for kind, name, count in groups:
        by_kind.setdefault(kind, []).append((name, int(count)))
    g = nx.MultiDiGraph()
    ids: dict[tuple[str, str | None], str] = {}
    used_ids: set[str] = set()
    for kind in sorted(by_kind, key=lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else 99):
        items = sorted(by_kind[kind], key=lambda t: (-t[1], t[0] or ""))
        # never "1 other name"; among many names, one that stands for a single node is
        # noise (a store where every run has its own name), so only repeated names show
        shown = items if len(items) <= per_kind + 1 else [it for it in items[:per_kind] if it[1] > 1]
        for name, count in sorted(shown, key=lambda t: t[0] or ""):
            gid = new_group_id(kind, count, used_ids)
            ids[(kind, name)] = gid
            g.add_node(gid, node=Node(gid, "group", name, {"of": kind, "count": count, "overview": True}))
        rest = items[len(shown):]
        if rest:
            total = sum(c for _, c in rest)
            attrs = {"of": kind, "count": total, "overview": True, "names": len(rest)}
            gid = new_group_id(kind, total, used_ids)
            g.add_node(gid, node=Node(gid, "group", None, attrs))
            for name, _ in rest:
                ids[(kind, name)] = gid
    for src_kind, src_name, dst_kind, dst_name, rel, role, count in edges:
        u, v = ids.get((src_kind, src_name)), ids.get((dst_kind, dst_name))
        if u is None or v is None or u == v:
            continue  # version history inside one name is the count itself
        key = edge_key(rel, role)
        if g.has_edge(u, v, key):
            g.edges[u, v, key]["count"] += int(count)
        else:
            g.add_edge(u, v, key=key, rel=rel, role=role, count=int(count))
    for _, _, d in g.edges(data=True):
        if d["count"] == 1:
            del d["count"]
    return Subgraph(g, None, direction="overview")


def find_marks(lg: Lineage, subgraph: Subgraph, *, stale: bool = True, tampered: bool = True) -> dict[str, str]:
    """``{node id: "stale" | "tampered"}`` for the nodes of ``subgraph``.

    Tampered: a ledger event behind the node (its row; a run's params, tags, metrics
    and states; annotations) no longer matches the rows it committed to - a quick
    local check, a few indexed reads per node; `lineage verify` is the full proof, the
    hash chain included. Stale: a dataset whose file changed on disk (`Lineage.status`)
    and everything in the subgraph downstream of one.
    """
    marks: dict[str, str] = {}
    if stale:
        try:
            doc = lg.status().to_dict()
        except (AttributeError, ImportError, NotImplementedError):
            doc = {}
        g = subgraph.graph
        # status's own group ids name its folding, not ours: seed from real nodes only
        seeds = [str(item.get("id")) for key in ("changed", "affected") for item in doc.get(key, []) or []
                 if isinstance(item, Mapping) and not str(item.get("id", "")).startswith("group:")]
        # status folds predictions per model into its own groups: spread "stale" down
        # the subgraph itself, so whatever is listed here is marked too
        queue = deque(s for s in seeds if s in g)
        while queue:
            n = queue.popleft()
            if n in marks:
                continue
            marks[n] = "stale"
            for u, _, d in g.in_edges(n, data=True):
                if d.get("rel") != "was_revision_of" and u not in marks:
                    queue.append(u)
    if tampered:
        store = lg.store
        checked: dict[int, bool] = {}

        def intact(seq: int) -> bool:
            if seq not in checked:
                checked[seq] = store.check_event_rows(seq)
            return checked[seq]

        for node in subgraph.nodes():
            if node.kind == "group":
                continue
            if node.kind == "prediction":  # one bulk event per batch, checked once
                seq = store.event_of(node.id)
                events = {seq} if seq is not None else set()
            else:  # its row, and its params, tags, metrics, states and annotations
                events = set().union(*query_rows.record_events(store, [node.id]).values())
            if not all(intact(seq) for seq in sorted(events)):
                marks[node.id] = "tampered"
    return marks
