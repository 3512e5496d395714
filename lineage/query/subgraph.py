"""The result of a walk: `Subgraph`, a small networkx graph of provenance, and
`build_subgraph`, which makes one from nodes and edges."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import networkx as nx

from ..errors import RenderError, log
from ..model import Edge, Node


class Subgraph:
    """A provenance subgraph: a ``networkx.MultiDiGraph`` whose edges point in the stored
    (PROV) direction, from the later thing to what it depends on.

    Each graph node carries its `Node` under the ``"node"`` attribute; each edge has
    ``rel`` (its key too) and ``role``. Nodes of kind ``group`` stand for many folded
    nodes (``{"of": kind, "count": n}``), e.g. the predictions of a model that an
    `impact` counted but did not list.
    """

    def __init__(self, graph: nx.MultiDiGraph | None, root: str | None, *, direction: str = "upstream",
                 counts: Mapping[str, int] | None = None) -> None:
        self._graph = graph
        self._parts: _Parts | None = None
        self.root = root
        self.direction = direction
        self._counts = dict(counts) if counts is not None else None

    @classmethod
    def _from_parts(cls, nodes: Sequence[Node], edges: Sequence[Edge], root: str | None, *, direction: str,
                    counts: Mapping[str, int] | None = None,
                    distances: Mapping[str, int] | None = None) -> Subgraph:
        """A Subgraph whose networkx graph is built on first use of `graph`.

        A walk's answer is mostly read as lists (``to_dict``, ``nodes``, ``edges``):
        building the MultiDiGraph was a third of a trace's time, so it waits until
        someone asks for it. Every method answers the same either way.
        """
        sub = cls(None, root, direction=direction, counts=counts)
        sub._parts = _Parts(nodes, edges, distances)
        return sub

    @classmethod
    def _later(cls, members: Mapping[str, Node], make: Callable[[], _Contents], root: str | None, *,
               direction: str) -> Subgraph:
        """A Subgraph of the nodes ``members`` (by id, in any order) whose order, edges
        and distances ``make`` returns when first needed (``(nodes in order, edges,
        distances)``, as `build_subgraph` takes them).

        A walk has read everything when it returns; putting it in order (distances,
        two sorts, an Edge per row) was a third of a trace's time (issue 16), and a
        caller who asks only whether a node is in it, or how many, needs none of it.
        ``make`` must give the same answer whenever it is called.
        """
        sub = cls(None, root, direction=direction)
        sub._parts = _Parts.later(members, make)
        return sub

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The ``networkx.MultiDiGraph`` (built now if this Subgraph was made without one)."""
        if self._graph is None:
            assert self._parts is not None
            self._graph = self._parts.build()
            self._parts = None  # from now on the graph is the truth (callers may edit it)
        return self._graph

    @graph.setter
    def graph(self, value: nx.MultiDiGraph) -> None:
        self._graph = value
        self._parts = None

    # -- contents -------------------------------------------------------------

    def nodes(self, kind: str | None = None) -> list[Node]:
        """The nodes (folded groups included, as Nodes of kind ``group``), optionally of one kind."""
        if self._parts is not None:
            out = list(self._parts.nodes.values())
        else:
            out = [d["node"] for _, d in self.graph.nodes(data=True)]
        return [n for n in out if kind is None or n.kind == kind]

    def edges(self) -> list[Edge]:
        if self._parts is not None:
            return self._parts.edges()
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
            nodes.append(node_or_group(n))
        return {"root": self.root, "nodes": nodes, "edges": [e.to_dict() for e in self.edges()], "counts": self.counts}

    def __len__(self) -> int:
        if self._parts is not None:
            return len(self._parts.members)
        return self.graph.number_of_nodes()

    def __contains__(self, node_id: object) -> bool:
        if self._parts is not None:
            return node_id in self._parts.members
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
        # (force_jupyter off: in a notebook rich would display the tree as a side effect
        # and leave the text empty, so `str()`, saved or logged, was "")
        Console(file=out, width=width, color_system=None, highlight=False, soft_wrap=True,
                force_jupyter=False).print(to_tree(self))
        return out.getvalue().rstrip("\n")

    def __rich__(self) -> Any:
        from ..render import to_tree

        return to_tree(self)

    def _repr_svg_(self) -> str | None:
        from ..render import to_svg

        try:
            return to_svg(self)
        except RenderError as exc:  # a notebook display hook: no `dot`, or too many nodes, falls back to the HTML view
            log.debug("no SVG view (%s); the HTML view shows the graph", exc)
            return None

    def _repr_html_(self) -> str:
        from ..render import to_html_fragment

        return to_html_fragment(self)


def build_subgraph(nodes: Sequence[Node], edges: Sequence[Edge], root: str | None, *, direction: str,
                   counts: Mapping[str, int] | None = None, distances: Mapping[str, int] | None = None) -> Subgraph:
    """A Subgraph from nodes and edges you already have (edges whose ends are
    missing are dropped).

    Parameters
    ----------
    nodes : sequence of Node
        The nodes.
    edges : sequence of Edge
        The edges among them.
    root : str or None
        The id the walk started from.
    direction : {"upstream", "downstream"}
        Which way the edges were followed.
    counts : mapping, optional
        ``{kind: count}`` when some nodes are folded (default: counted from ``nodes``).
    distances : mapping, optional
        ``{id: hops}``: every graph node then carries its ``distance`` (None when absent).

    Returns
    -------
    Subgraph

    Examples
    --------
    >>> from lineage import query
    >>> from lineage.model import Edge, Node
    >>> data = Node("dataset:" + "a" * 64, "dataset", "train")
    >>> run = Node("run:" + "0" * 31 + "1", "run", "fit")
    >>> sub = query.build_subgraph([run, data], [Edge(run.id, data.id, "used", "training")], run.id,
    ...                            direction="upstream")
    >>> sub.counts, [e.rel for e in sub.edges()], data.id in sub
    ({'run': 1, 'dataset': 1}, ['used'], True)
    """
    return Subgraph._from_parts(nodes, edges, root, direction=direction, counts=counts, distances=distances)


#: what `Subgraph._later`'s ``make`` returns: the nodes in order, the edges, the distances
_Contents = tuple[Sequence[Node], Sequence[Edge], "Mapping[str, int] | None"]


def deferred_subgraph(members: Mapping[str, Node], make: Callable[[], _Contents], root: str | None, *,
                      direction: str) -> Subgraph:
    """A Subgraph of the nodes ``members`` (``{id: Node}``, in any order) that calls
    ``make`` for its order, edges and distances (``(nodes in order, edges,
    distances)``, what `build_subgraph` takes) when first asked for them; see
    `Subgraph._later`. Returns the Subgraph."""
    return Subgraph._later(members, make, root, direction=direction)


class _Parts:
    """A Subgraph's contents before (or instead of) its networkx graph: the nodes in
    order, and the edges as the MultiDiGraph would hold them (keyed ``rel`` or
    ``rel:role``, a repeated key kept once), iterated in the graph's own order. Made
    from them (`__init__`), or from the node set and a function that orders them
    when first asked (`later`)."""

    def __init__(self, nodes: Sequence[Node], edges: Sequence[Edge], distances: Mapping[str, int] | None) -> None:
        self._make: Callable[[], _Contents] | None = None
        self._set(nodes, edges, distances)
        self.members: Mapping[str, Node] = self._nodes

    @classmethod
    def later(cls, members: Mapping[str, Node], make: Callable[[], _Contents]) -> _Parts:
        parts = cls.__new__(cls)
        parts.members = members
        parts._make = make
        return parts

    def _set(self, nodes: Sequence[Node], edges: Sequence[Edge], distances: Mapping[str, int] | None) -> None:
        self._nodes = {n.id: n for n in nodes}
        self._edges = list(edges)  # a copy: the caller may reuse its list
        self._distances = distances
        self._adj: dict[str, dict[str, dict[str, Edge]]] | None = None

    def _ready(self) -> None:
        make = self._make
        if make is not None:  # (two threads may both make it: the same contents either way)
            self._set(*make())
            self._make = None

    @property
    def nodes(self) -> dict[str, Node]:
        """``{id: Node}`` in order."""
        self._ready()
        return self._nodes

    @property
    def distances(self) -> Mapping[str, int] | None:
        self._ready()
        return self._distances

    @property
    def edge_list(self) -> list[Edge]:
        """The edges whose ends are both nodes here, in the order given."""
        present = self.nodes
        return [e for e in self._edges if e.src in present and e.dst in present]

    @property
    def adj(self) -> dict[str, dict[str, dict[str, Edge]]]:
        """``{src: {dst: {key: Edge}}}`` as the MultiDiGraph would hold them (made on
        first use: many a walk's answer is never asked for its edges)."""
        self._ready()
        if self._adj is None:
            adj: dict[str, dict[str, dict[str, Edge]]] = {}
            for e in self.edge_list:
                key = e.rel if e.role is None else f"{e.rel}:{e.role}"
                adj.setdefault(e.src, {}).setdefault(e.dst, {})[key] = e
            self._adj = adj
        return self._adj

    def edges(self) -> list[Edge]:
        """In networkx's order: by source node in node order, then by target in first
        insertion order, then by key."""
        adj = self.adj
        return [e for src in self.nodes if src in adj for by_key in adj[src].values() for e in by_key.values()]

    def build(self) -> nx.MultiDiGraph:
        g = nx.MultiDiGraph()
        d = self.distances
        if d is None:
            g.add_nodes_from((i, {"node": n}) for i, n in self.nodes.items())  # in bulk: far cheaper than one call each
        else:
            g.add_nodes_from((i, {"node": n, "distance": d.get(i)}) for i, n in self.nodes.items())
        g.add_edges_from(
            (e.src, e.dst, e.rel if e.role is None else f"{e.rel}:{e.role}", {"rel": e.rel, "role": e.role})
            for e in self.edge_list
        )
        return g


def node_or_group(n: Node) -> dict[str, Any]:
    """A node's JSON, or a folded group's in exactly DESIGN.md §5's shape (what it
    stands for is told by its edges: a prediction group's edge goes to its model)."""
    if n.kind == "group":
        return {"id": n.id, "kind": "group", "of": n.attrs["of"], "count": n.attrs["count"]}
    return n.to_dict()
