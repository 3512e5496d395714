"""The terminal view: the subgraph as a `rich.tree.Tree` (`to_tree`), walked upstream or
downstream from the root. rich is imported inside the functions that draw."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import networkx as nx

from ..model import Node
from ..query import Subgraph
from .folding import count_of, kind_of, node_of, sort_key
from .labels import edge_text, node_facts, node_title, short_id_line
from .prepare import prepare_graph
from .style import MARKS, STYLE

if TYPE_CHECKING:  # pragma: no cover
    from rich.tree import Tree


# trees expand the data path first: shortcuts and agents come after
_REL_ORDER = {"used": 0, "was_generated_by": 0, "was_derived_from": 0, "was_informed_by": 1, "was_revision_of": 1,
              "was_associated_with": 2, "was_attributed_to": 2}
_ROLE_ORDER = {"training": 0, "input": 1, "evaluation": 2, "code": 3, "environment": 4}

# how an edge reads from its far end, for trees that walk downstream
_INVERSE = {"used": "used by", "was_generated_by": "generated", "was_derived_from": "derived into",
            "was_associated_with": "ran", "was_attributed_to": "responsible for", "was_informed_by": "informed",
            "was_revision_of": "revised by"}


def _tree_edge_text(d: Mapping[str, Any], downstream: bool) -> str:
    if not downstream:
        return edge_text(d)
    return edge_text({**d, "rel": _INVERSE.get(str(d.get("rel")), str(d.get("rel")))})


def _tree_label(node: Node, g: nx.MultiDiGraph, short: Mapping[str, str], *, rel: str | None,
                highlighted: bool, mark: str | None, seen: bool) -> Any:
    from rich.text import Text

    kind = kind_of(node)
    colour = STYLE.get(kind, STYLE["group"])["rich"]
    text = Text()
    if rel:
        text.append(f"{rel} ", style="dim")
    name_style = f"bold {colour}"
    if highlighted:
        name_style += " underline"
    text.append(node_title(node), style=name_style)
    id_line = short_id_line(node, short)
    if id_line:
        text.append(f"  {id_line}", style="dim cyan")
    facts = node_facts(node, g)
    if facts and not seen:
        text.append("  " + " · ".join(facts))
    if mark:
        text.append(f"  {MARKS[mark]['tag']}", style=MARKS[mark]["rich"])
    if seen:
        text.append("  (see above)", style="dim italic")
    return text


def to_tree(subgraph: Subgraph, *, highlight: Any = (), marked: Mapping[str, str] | None = None,
            max_nodes: int | None = None, fold: bool | int = True) -> Tree:
    """The subgraph as a `rich.tree.Tree` for the terminal.

    Upstream (a trace): the root at the top, each node's children are what it depends
    on. Downstream (an impact): children are what depends on it. A node reached a
    second time (shared, or a cycle) is shown once more as "(see above)"; folded groups
    are one line ("10,000 predictions"). Options as `to_dot`.
    """
    from rich.text import Text
    from rich.tree import Tree

    p = prepare_graph(subgraph, highlight=highlight, marked=marked, max_nodes=max_nodes, fold=fold)
    g = p.g
    downstream = p.sub.direction == "downstream"

    def children(n: str) -> list[tuple[str, Mapping[str, Any]]]:
        pairs = ([(u, d) for u, _, d in g.in_edges(n, data=True)] if downstream
                 else [(v, d) for _, v, d in g.out_edges(n, data=True)])
        return sorted(pairs, key=lambda pair: (_REL_ORDER.get(str(pair[1].get("rel")), 1),
                                               _ROLE_ORDER.get(str(pair[1].get("role")), 9),
                                               sort_key(g, pair[0]), edge_text(pair[1])))

    def label(n: str, rel: str | None, highlighted: bool, again: bool) -> Any:
        return _tree_label(node_of(g, n), g, p.short, rel=rel, highlighted=highlighted, mark=p.marked.get(n),
                           seen=again)

    root = p.sub.root if p.sub.root in g else None
    if root is not None:
        tree = Tree(label(root, None, root in p.hl_nodes, False), guide_style="dim")
        tops: list[tuple[str, Any]] = [(root, tree)]
    else:  # an overview: start from what nothing else depends on
        n_nodes = sum(count_of(node_of(g, n)) for n in g.nodes)
        tree = Tree(Text(f"lineage overview: {n_nodes:,} nodes", style="bold"), guide_style="dim")
        heads = [n for n in g.nodes if (g.out_degree(n) if downstream else g.in_degree(n)) == 0]
        heads.sort(key=lambda n: sort_key(g, n))
        tops = [(n, None) for n in heads]
    expanded: set[str] = set()
    for top, branch in tops:
        if top in expanded:
            continue
        if branch is None:
            branch = tree.add(label(top, None, top in p.hl_nodes, False))
        expanded.add(top)
        # preorder depth-first with an explicit stack (deep chains do not hit the
        # recursion limit); a node is expanded where it first appears, so every later
        # "(see above)" points up
        stack = [(branch, top, iter(children(top)))]
        while stack:
            parent_branch, n, it = stack[-1]
            step = next(it, None)
            if step is None:
                stack.pop()
                continue
            child, d = step
            if _overflow(g, child):
                parent_branch.add(_overflow_label(node_of(g, child), d, downstream))
                continue
            again = child in expanded
            lit = p.edge_highlighted(n, child) or (child in p.hl_nodes and not p.hl_pairs)
            child_branch = parent_branch.add(label(child, _tree_edge_text(d, downstream), lit, again))
            if not again:
                expanded.add(child)
                stack.append((child_branch, child, iter(children(child))))
    seen = expanded
    # nodes not reachable from the root in this direction (a subgraph built by hand)
    if root is not None:
        for n in sorted((m for m in g.nodes if m not in seen and not _overflow(g, m)), key=lambda m: sort_key(g, m)):
            tree.add(_tree_label(node_of(g, n), g, p.short, rel="(not connected)", highlighted=False,
                                 mark=p.marked.get(n), seen=False))
    if p.hidden:
        tree.add(_hidden_note(g, p.hidden, p.max_nodes))
    return tree


def _overflow(g: nx.MultiDiGraph, n: str) -> bool:
    """Whether ``n`` is the group `limit_nodes` made of every node past the cut of a kind."""
    node = node_of(g, n)
    return node.kind == "group" and bool(node.attrs.get("overflow"))


def _overflow_label(group: Node, d: Mapping[str, Any], downstream: bool) -> Any:
    """A leaf for what the cut hid next to ONE node: the edge's ``hidden`` count (set by
    `limit_nodes`: that node's own hidden neighbours), never the group's, which counts
    every hidden node of the kind under every parent ("generated 2,895 more models"
    under a run that made one). The leaf is not expanded: what lies below hidden nodes is hidden too, and the footer
    (`_hidden_note`) counts it."""
    from rich.text import Text

    from .labels import plural

    kind = kind_of(group)
    count = int(d.get("hidden", d.get("count", 1)))
    text = Text()
    text.append(f"{_tree_edge_text({**d, 'count': 1}, downstream)} ", style="dim")
    text.append(f"{count:,} more {plural(kind, count)} (not shown)", style=f"{STYLE.get(kind, STYLE['group'])['rich']}")
    return text


def _hidden_note(g: nx.MultiDiGraph, hidden: int, max_nodes: int | None) -> Any:
    """The footer of a cut tree: how many nodes are not shown in all, and of which
    kinds (a tampered or stale one among them is named: it must not vanish unremarked)."""
    from rich.text import Text

    from .labels import plural

    per_kind: dict[str, tuple[int, str | None]] = {}
    for n in g.nodes:
        if _overflow(g, n):
            group = node_of(g, n)
            per_kind[kind_of(group)] = (count_of(group), group.attrs.get("mark"))
    note = Text(f"… {hidden:,} more nodes not shown (max_nodes={max_nodes})", style="dim")
    if per_kind:
        note.append(": " + ", ".join(f"{count:,} {plural(kind, count)}" for kind, (count, _) in per_kind.items()),
                    style="dim")
    for kind, (_, mark) in per_kind.items():
        if mark:
            note.append(f"  {MARKS[mark]['tag']} among the {plural(kind, 2)}", style=MARKS[mark]["rich"])
    return note
