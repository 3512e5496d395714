"""HTML: a self-contained ``<div>`` for notebooks and the audit report
(`to_html_fragment`: dot's SVG inline, or an escaped table without Graphviz), and the
one-page ``.html`` file with a legend."""

from __future__ import annotations

import html
import re
import shutil
from typing import Any

from ..query import Subgraph
from .dot import dot_source, laid_out, run_dot
from .folding import kind_of, node_of
from .labels import edge_text, node_facts, node_title, short_id_line, short_ids
from .prepare import Prepared
from .style import INSTALL_HINT, KIND_ORDER, MARKS, STYLE

_CSS = """
.lineage-diagram{font-family:Helvetica,Arial,sans-serif;color:#111827}
.lineage-diagram svg{max-width:100%;height:auto}
.lineage-diagram table{border-collapse:collapse;font-size:13px}
.lineage-diagram th,.lineage-diagram td{border:1px solid #e5e7eb;padding:3px 8px;text-align:left;vertical-align:top}
.lineage-diagram code{font-size:12px}
.lineage-diagram .hint{color:#6b7280;font-size:12px}
.lineage-diagram .swatch{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px;border:1px solid}
.lineage-diagram .mark{font-weight:bold}
"""


def _inline_svg(svg: str) -> str:
    """dot's SVG for embedding in HTML: no XML prolog, doctype or comments, and scaled
    to the page (the viewBox keeps its proportions)."""
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    return svg.strip()


def _html_table(p: Prepared) -> str:
    """The no-Graphviz view: nodes and edges as escaped HTML tables."""
    g = p.g
    rows = []
    for n in g.nodes:
        node = node_of(g, n)
        kind = kind_of(node)
        s = STYLE.get(kind, STYLE["group"])
        mark = p.marked.get(n)
        mark_html = f' <span class="mark" style="color:{MARKS[mark]["color"]}">{html.escape(MARKS[mark]["tag"])}</span>' if mark else ""
        name = html.escape(node_title(node))
        if n in p.hl_nodes or n == p.sub.root:
            name = f"<b>{name}</b>"
        rows.append(
            f'<tr><td><span class="swatch" style="background:{s["fillcolor"]};border-color:{s["color"]}"></span>'
            f'{html.escape(kind)}</td><td>{name}{mark_html}</td><td><code>{html.escape(short_id_line(node, p.short))}</code></td>'
            f"<td>{html.escape(' · '.join(node_facts(node, g)))}</td></tr>"
        )
    edges = []
    for u, v, d in g.edges(data=True):
        a, b = node_of(g, u), node_of(g, v)
        style = ' style="font-weight:bold"' if p.edge_highlighted(u, v) else ""
        edges.append(f"<tr{style}><td>{html.escape(node_title(a))}</td><td>{html.escape(edge_text(d))}</td>"
                     f"<td>{html.escape(node_title(b))}</td></tr>")
    hidden = f'<p class="hint">… {p.hidden:,} more nodes not shown</p>' if p.hidden else ""
    return (
        '<p class="hint">Graphviz is not installed, so this is the table view; for the diagram, '
        f"{html.escape(INSTALL_HINT)}.</p>"
        "<table><thead><tr><th>kind</th><th>name</th><th>id</th><th>facts</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>" + hidden
        + "<p></p><table><thead><tr><th>from</th><th>relation</th><th>to</th></tr></thead><tbody>"
        + "".join(edges) + "</tbody></table>"
    )


def to_html_fragment(subgraph: Subgraph, **options: Any) -> str:
    """An HTML ``<div>`` showing the diagram: the SVG inline when ``dot`` is installed,
    else an escaped table of nodes and edges. Self-contained (inline CSS, no external
    references), for notebooks and the audit report. Options as `to_dot`."""
    # past DOT_MAX_NODES nodes (and no max_nodes) the nearest AUTO_MAX_NODES are shown
    p = laid_out(subgraph, options, auto_limit=True)
    if shutil.which("dot"):
        body = _inline_svg(run_dot(dot_source(p, options.get("rankdir", "LR")), "svg").decode("utf-8"))
    else:
        body = _html_table(p)
    return f'<div class="lineage-diagram"><style>{_CSS.strip()}</style>{body}</div>'


def _legend(sub: Subgraph) -> str:
    kinds = []
    for n in sub.graph.nodes:
        k = kind_of(node_of(sub.graph, n))
        if k in STYLE and k not in kinds:
            kinds.append(k)
    kinds.sort(key=lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else 99)
    items = "".join(
        f'<span style="margin-right:12px"><span class="swatch" style="background:{STYLE[k]["fillcolor"]};'
        f'border-color:{STYLE[k]["color"]}"></span>{html.escape(k)}</span>' for k in kinds)
    return f'<p class="hint">{items}</p>'


def html_page(subgraph: Subgraph, **options: Any) -> str:
    """A standalone ``.html`` page of the diagram (options as `to_dot`)."""
    root = subgraph.root
    if root and root in subgraph.graph:
        node = node_of(subgraph.graph, root)
        what = "Upstream" if subgraph.direction != "downstream" else "Downstream"
        title = f"{what} lineage of {node_title(node)} ({short_id_line(node, short_ids([root], subgraph.graph.nodes))})"
    else:
        title = "Lineage overview"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title>"
        # a page of its own: the whole diagram fitted to the window (so the subject is on
        # screen when it opens, centred), and to the paper when printed
        "<style>body{margin:24px;font-family:Helvetica,Arial,sans-serif}h1{font-size:18px;font-weight:600}"
        ".lineage-diagram{text-align:center}"
        ".lineage-diagram svg{max-width:100%!important;max-height:calc(100vh - 140px);height:auto;width:auto}"
        "@page{size:A4 landscape;margin:10mm}"
        "@media print{body{margin:0}.lineage-diagram svg{max-height:170mm}}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>\n"
        + to_html_fragment(subgraph, **options).replace('<div class="lineage-diagram">',
                                                         f'<div class="lineage-diagram">{_legend(subgraph)}', 1)
        + '\n<p class="hint" style="font-family:Helvetica,Arial,sans-serif;color:#6b7280;font-size:12px">'
        "Arrows point from a thing to what it depends on (W3C PROV). Hover a node for its full id.</p>"
        "\n</body></html>\n"
    )
