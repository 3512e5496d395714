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


_NUMBER = r"-?\d+(?:\.\d+)?"


def _subject_at(svg: str, dot_id: str) -> tuple[float, float] | None:
    """Where the centre of node ``dot_id`` lies in dot's SVG, as fractions of the
    picture's width and height; None when it cannot be found."""
    box = re.search(r'viewBox="([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)"', svg)
    shift = re.search(rf'class="graph" transform="scale\(1 1\) rotate\(0\) translate\(({_NUMBER}) ({_NUMBER})\)"', svg)
    # the node's group runs to the next group dot writes (comments are stripped inline)
    node = re.search(rf'<g id="node\d+" class="node">\s*<title>{re.escape(dot_id)}</title>(.*?)(?=<g id="(?:node|edge|clust)\d+"|</svg>)',
                     svg, flags=re.S)
    if not (box and shift and node):
        return None
    xs: list[float] = []
    ys: list[float] = []
    for cx, cy, rx, ry in re.findall(rf'<ellipse[^>]* cx="({_NUMBER})" cy="({_NUMBER})" rx="({_NUMBER})" ry="({_NUMBER})"', node.group(1)):
        xs += [float(cx) - float(rx), float(cx) + float(rx)]
        ys += [float(cy) - float(ry), float(cy) + float(ry)]
    for points in re.findall(r'<(?:polygon|polyline)[^>]* points="([^"]+)"', node.group(1)):
        for x, y in re.findall(rf"({_NUMBER}),({_NUMBER})", points):
            xs.append(float(x))
            ys.append(float(y))
    for d in re.findall(r'<path[^>]* d="([^"]+)"', node.group(1)):
        for x, y in re.findall(rf"({_NUMBER}),({_NUMBER})", d):
            xs.append(float(x))
            ys.append(float(y))
    width, height = float(box.group(3)), float(box.group(4))
    if not xs or width <= 0 or height <= 0:
        return None
    x = (min(xs) + max(xs)) / 2 + float(shift.group(1))
    y = (min(ys) + max(ys)) / 2 + float(shift.group(2))
    return min(max(x / width, 0.0), 1.0), min(max(y / height, 0.0), 1.0)


#: the page's own style. On screen the diagram keeps its natural size (labels as
#: drawn, 11 pt), so browser zoom and scrolling work as on any page; on paper it is
#: fitted to one A4 landscape page
_PAGE_CSS = (
    "body{margin:24px;font-family:Helvetica,Arial,sans-serif}h1{font-size:18px;font-weight:600}"
    ".lineage-diagram{text-align:center}"
    ".lineage-canvas{position:relative;display:inline-block;text-align:left}"
    ".lineage-diagram svg{max-width:none!important;height:auto;display:block}"
    # the subject's place: an empty anchor the page scrolls to when it opens, with a
    # margin of half the window on every side, so the subject lands in the middle
    ".lineage-subject{position:absolute;width:0;height:0;scroll-margin:50vh 50vw}"
    ".lineage-room{display:inline-block}"
    "@page{size:A4 landscape;margin:10mm}"
    "@media print{body{margin:0}.lineage-room{display:block;padding:0!important}.lineage-canvas{display:block}"
    ".lineage-diagram svg{max-width:100%!important;max-height:170mm;width:auto;height:auto;margin:0 auto}}"
)


def _page_body(subgraph: Subgraph, options: dict[str, Any]) -> tuple[str, bool]:
    """The diagram of the page and whether it carries the subject's anchor: dot's SVG
    with an anchor at the root's node, or the table view without Graphviz."""
    p = laid_out(subgraph, options, auto_limit=True)
    if not shutil.which("dot"):
        return _html_table(p), False
    svg = _inline_svg(run_dot(dot_source(p, options.get("rankdir", "LR")), "svg").decode("utf-8"))
    root = subgraph.root
    at = _subject_at(svg, f"n{list(p.g.nodes).index(root)}") if root is not None and root in p.g else None
    size = re.search(rf'<svg width="({_NUMBER})pt" height="({_NUMBER})pt"', svg)
    if at is None or size is None:
        return f'<div class="lineage-canvas">{svg}</div>', False
    anchor = (f'<a id="lineage-subject" class="lineage-subject" aria-hidden="true" '
              f'style="left:{at[0] * 100:.3f}%;top:{at[1] * 100:.3f}%"></a>')
    # room around the picture, so that a subject near its edge can still be scrolled
    # to the middle of the window: half a window past the subject on each side, less
    # what the picture already has there (1 pt = 4/3 CSS px)
    w, h = float(size.group(1)) * 4 / 3, float(size.group(2)) * 4 / 3
    left, right, top, bottom = at[0] * w, (1 - at[0]) * w, at[1] * h, (1 - at[1]) * h
    room = " ".join(f"max(0px, calc(50v{axis} - {d:.0f}px))"
                    for axis, d in (("h", top), ("w", right), ("h", bottom), ("w", left)))
    return (f'<div class="lineage-room" style="padding:{room}"><div class="lineage-canvas">{svg}{anchor}</div></div>',
            True)


def html_page(subgraph: Subgraph, **options: Any) -> str:
    """A standalone ``.html`` page of the diagram (options as `to_dot`), opening on
    its subject."""
    root = subgraph.root
    if root and root in subgraph.graph:
        node = node_of(subgraph.graph, root)
        what = "Upstream" if subgraph.direction != "downstream" else "Downstream"
        title = f"{what} lineage of {node_title(node)} ({short_id_line(node, short_ids([root], subgraph.graph.nodes))})"
    else:
        title = "Lineage overview"
    body, anchored = _page_body(subgraph, options)
    # no script on the page: a refresh to the subject's anchor is what scrolls to it
    # when the page opens (a same-page jump, so it happens once and nothing reloads)
    refresh = '<meta http-equiv="refresh" content="0;url=#lineage-subject">' if anchored else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">" + refresh
        + f"<title>{html.escape(title)}</title>"
        f"<style>{_PAGE_CSS}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>\n"
        f'<div class="lineage-diagram"><style>{_CSS.strip()}</style>{_legend(subgraph)}{body}</div>'
        + '\n<p class="hint" style="font-family:Helvetica,Arial,sans-serif;color:#6b7280;font-size:12px">'
        "Arrows point from a thing to what it depends on (W3C PROV). Hover a node for its full id.</p>"
        "\n</body></html>\n"
    )
