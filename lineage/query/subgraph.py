"""The result of a walk: `Subgraph`, a small networkx graph of provenance, and
`build_subgraph`, which makes one from nodes and edges."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import networkx as nx

from ..model import Edge, Node


class Subgraph:
    """A provenance subgraph: a ``networkx.MultiDiGraph`` whose edges point in the stored
    (PROV) direction, from the later thing to what it depends on.

    Each graph node carries its `Node` under the ``"node"`` attribute; each edge has
    ``rel`` (its key too) and ``role``. Nodes of kind ``group`` stand for many folded
    nodes (``{"of": kind, "count": n}``), e.g. the predictions of a model that an
    `impact` counted but did not list.
    """

    def __init__(self, graph: nx.MultiDiGraph, root: str | None, *, direction: str = "upstream",
                 counts: Mapping[str, int] | None = None) -> None:
        self.graph = graph
        self.root = root
        self.direction = direction
        self._counts = dict(counts) if counts is not None else None

    # -- contents -------------------------------------------------------------

    def nodes(self, kind: str | None = None) -> list[Node]:
        """The nodes (folded groups included, as Nodes of kind ``group``), optionally of one kind."""
        out = [d["node"] for _, d in self.graph.nodes(data=True)]
        return [n for n in out if kind is None or n.kind == kind]

    def edges(self) -> list[Edge]:
        return [Edge(u, v, d["rel"], d.get("role")) for u, v, d in self.graph.edges(data=True)]

    @property
    def counts(self) -> dict[str, int]:
        """Nodes per kind, folded groups counted by what they stand for."""
        if self._counts is not None:
            return dict(self._counts)
        counts: dict[str, int] = {}
        for n in self.nodes():
            kind = n.attrs.get("of", n.kind) if n.kind == "group" else n.kind
            counts[kind] = counts.get(kind, 0) + (int(n.attrs.get("count", 1)) if n.kind == "group" else 1)
        return counts

    def to_networkx(self) -> nx.MultiDiGraph:
        return self.graph

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of DESIGN.md §5: ``{"root", "nodes", "edges", "counts"}``."""
        nodes = []
        for n in self.nodes():
            nodes.append(_node_or_group(n))
        return {"root": self.root, "nodes": nodes, "edges": [e.to_dict() for e in self.edges()], "counts": self.counts}

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.graph

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes())

    def __repr__(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return f"<Subgraph {self.direction} of {self.root}: {parts}>"

    # -- views (imported lazily: the render layer sits above this one) ---------

    def __str__(self) -> str:
        """The readable tree ``lineage trace`` prints, as plain text (``print(lg.trace(ref))``)."""
        import io
        import shutil

        from rich.console import Console

        from ..render import to_tree

        out = io.StringIO()
        width = max(100, shutil.get_terminal_size((120, 24)).columns)
        Console(file=out, width=width, color_system=None, highlight=False, soft_wrap=True).print(to_tree(self))
        return out.getvalue().rstrip("\n")

    def __rich__(self) -> Any:
        from ..render import to_tree

        return to_tree(self)

    def _repr_svg_(self) -> str | None:
        from ..render import to_svg

        try:
            return to_svg(self)
        except Exception:  # no `dot` in this notebook: fall back to the HTML view
            return None

    def _repr_html_(self) -> str:
        from ..render import to_html_fragment

        return to_html_fragment(self)


def build_subgraph(nodes: Sequence[Node], edges: Sequence[Edge], root: str | None, *, direction: str,
                   counts: Mapping[str, int] | None = None) -> Subgraph:
    """A Subgraph from nodes and edges (edges whose ends are missing are dropped)."""
    g = nx.MultiDiGraph()
    g.add_nodes_from((n.id, {"node": n}) for n in nodes)  # in bulk: far cheaper than one call each
    present = {n.id for n in nodes}
    g.add_edges_from(
        (e.src, e.dst, e.rel if e.role is None else f"{e.rel}:{e.role}", {"rel": e.rel, "role": e.role})
        for e in edges if e.src in present and e.dst in present
    )
    return Subgraph(g, root, direction=direction, counts=counts)


def _node_or_group(n: Node) -> dict[str, Any]:
    """A node's JSON, or a folded group's in exactly DESIGN.md §5's shape (what it
    stands for is told by its edges: a prediction group's edge goes to its model)."""
    if n.kind == "group":
        return {"id": n.id, "kind": "group", "of": n.attrs["of"], "count": n.attrs["count"]}
    return n.to_dict()
