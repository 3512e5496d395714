"""Writing a diagram to a file, the format picked by the suffix (`render`), and the
quickstart's picture (`demo_diagram`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from ..errors import RenderError
from ..query import Subgraph
from .dot import dot_program, dot_source, laid_out, run_dot, to_dot
from .folding import node_of
from .html import html_page
from .mermaid import to_mermaid
from .record import find_marks
from .style import FORMATS, INSTALL_HINT

if TYPE_CHECKING:  # pragma: no cover
    from ..api import Lineage


def render(subgraph: Subgraph, path: str | os.PathLike[str], **options: Any) -> Path:
    """Write the diagram to ``path``; the suffix picks the format: ``.svg``, ``.png``,
    ``.pdf`` (through Graphviz's ``dot``), ``.dot``, ``.mmd`` (Mermaid) or ``.html`` (one
    self-contained page, SVG inline). Options as `to_dot`. Returns the path written.

    Raises RenderError for an unknown suffix (listing the supported ones) and, for
    SVG/PNG/PDF, when ``dot`` is not installed (saying how to install it).
    """
    target = Path(path)
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        supported = " ".join(s for s in FORMATS if s not in (".gv", ".htm"))
        raise RenderError(f"cannot draw {target.name!r}: unknown format {target.suffix or '(no suffix)'}; "
                          f"use one of {supported}")
    if fmt in ("svg", "png", "pdf"):
        dot_program()  # fail before any work, and before touching the file system
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderError(f"cannot write {target}: {exc.strerror}") from None
    if fmt == "dot":
        data: bytes = to_dot(subgraph, **options).encode("utf-8")
    elif fmt == "mermaid":
        data = to_mermaid(subgraph, **options).encode("utf-8")
    elif fmt == "html":
        data = html_page(subgraph, **options).encode("utf-8")
    else:
        p = laid_out(subgraph, options)
        data = run_dot(dot_source(p, options.get("rankdir", "LR"), dpi=144 if fmt == "png" else None), fmt)
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise RenderError(f"cannot write {target}: {exc.strerror}") from None
    return target


def _source_dataset(sub: Subgraph) -> str | None:
    """The dataset farthest upstream of the root: where the story starts."""
    g = sub.graph
    if sub.root is None or sub.root not in g:
        return None
    lengths = nx.single_source_shortest_path_length(g if sub.direction != "downstream" else g.reverse(copy=False),
                                                    sub.root)
    datasets = [(d, n) for n, d in lengths.items() if node_of(g, n).kind == "dataset"]
    return max(datasets, key=lambda t: (t[0], t[1]))[1] if datasets else None


def demo_diagram(lg: Lineage, subgraph: Subgraph, out_dir: str | os.PathLike[str]) -> str:
    """Draw the quickstart's trace into ``out_dir``: ``lineage.svg`` when Graphviz's
    ``dot`` is installed, else ``lineage.dot`` and ``lineage.mmd``. Top to bottom, with
    the path from the root back to its source dataset highlighted and any stale or
    tampered node marked. Returns one line saying what was written (and, without
    ``dot``, how to get the SVG)."""
    out = Path(out_dir)
    source = _source_dataset(subgraph)
    # top to bottom: the picture goes into pages (README, docs) narrower than a screen
    options: dict[str, Any] = {"highlight": [source] if source else [], "marked": find_marks(lg, subgraph),
                               "rankdir": "TB"}
    if shutil.which("dot"):
        svg = render(subgraph, out / "lineage.svg", **options)
        return f"Lineage diagram: {svg} (open it in a browser; bold: the path back to the source data)"
    dot = render(subgraph, out / "lineage.dot", **options)
    mmd = render(subgraph, out / "lineage.mmd", **options)
    return (f"Lineage diagram: wrote {dot} and {mmd} (Mermaid); for {out / 'lineage.svg'}, {INSTALL_HINT}, "
            f"then run `make demo` again")
