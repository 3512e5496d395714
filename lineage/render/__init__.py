"""Diagrams of a provenance subgraph: Graphviz (DOT, SVG, PNG, PDF), Mermaid, HTML and a
terminal tree.

Every view starts from the same prepared graph (`fold`): look-alike siblings folded into
one node, an optional `max_nodes` cut, and the highlighted path worked out. The drawing
conventions are W3C PROV's, kept as data in `STYLE` (one row per kind): entities are
ellipses, each kind its own colour; runs (activities) are boxes; agents are houses.
Arrows point the PROV way, from the later thing to what it depends on
(``run —used→ dataset``); the layout puts sources on the left so data reads left to
right (``rankdir="TB"``: top to bottom).

Every string that comes from a user (names, params, roles) is escaped for the target
language: HTML-like labels in DOT, numeric entity codes in Mermaid, `html.escape` in
HTML, rich `Text` objects in the terminal. DOT node ids are generated (``n0``, ``n1``);
the real id is in the label and the tooltip (graphviz reads ``dataset:ab`` as node
``dataset``, port ``ab``).

``dot`` (Graphviz) is needed for SVG, PNG and PDF only; `.dot` and `.mmd` are text.

The modules: `style` (the `STYLE` table, `MARKS` and the shared constants), `folding`
(folding and the ``max_nodes`` cut), `prepare` (the highlighted path, and the prepared
graph every view starts from), `labels` (what a node's label says), `dot` (DOT text and
running Graphviz), `mermaid`, `html` (the notebook/report fragment and the ``.html``
page), `tree` (the terminal tree), `tables` (the terminal tables of the query layer's
answers and of node listings), `record` (the store overview and the stale/tampered
marks) and `files` (`render` to a file, and the quickstart's picture). The modules share
through public names (`folding.node_of`, `labels.node_facts`, `prepare.prepare_graph`,
…); what users call is listed in `__all__`.
"""

from .dot import to_dot, to_svg
from .files import demo_diagram, render
from .folding import fold
from .html import to_html_fragment
from .mermaid import to_mermaid
from .record import find_marks, overview
from .style import AUTO_MAX_NODES, DOT_MAX_NODES, FOLD_MIN, FORMATS, INSTALL_HINT, MARKS, STYLE
from .style import FONT as FONT  # public in render.py, though not in __all__
from .style import KIND_ORDER as KIND_ORDER  # public in render.py, though not in __all__
from .tree import to_tree

__all__ = [
    "AUTO_MAX_NODES",
    "DOT_MAX_NODES",
    "FOLD_MIN",
    "FORMATS",
    "INSTALL_HINT",
    "MARKS",
    "STYLE",
    "demo_diagram",
    "find_marks",
    "fold",
    "overview",
    "render",
    "to_dot",
    "to_html_fragment",
    "to_mermaid",
    "to_svg",
    "to_tree",
]
