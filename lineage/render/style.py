"""The drawing conventions as data: `STYLE` (one row per kind), `MARKS` (the overlays
for emphasis), the order kinds are listed in, and the size limits and formats every
view shares."""

from __future__ import annotations

from typing import Any

# the style table: one row per kind (PROV: entities ellipses, activities boxes,
# agents houses). `mermaid` is the pair of brackets giving the same shape there,
# `rich` the terminal colour, `plural` the word a folded group uses.

FONT = "Helvetica,Arial,sans-serif"

STYLE: dict[str, dict[str, Any]] = {
    "dataset": {"shape": "ellipse", "fillcolor": "#fde68a", "color": "#a16207", "plural": "datasets",
                "mermaid": ("([", "])"), "rich": "yellow"},
    "code": {"shape": "ellipse", "fillcolor": "#ddd6fe", "color": "#6d28d9", "plural": "code versions",
             "mermaid": ("([", "])"), "rich": "magenta"},
    "model": {"shape": "ellipse", "fillcolor": "#fdba74", "color": "#c2410c", "plural": "models",
              "mermaid": ("([", "])"), "rich": "dark_orange"},
    "prediction": {"shape": "ellipse", "fillcolor": "#bbf7d0", "color": "#15803d", "plural": "predictions",
                   "mermaid": ("([", "])"), "rich": "green"},
    "artifact": {"shape": "ellipse", "fillcolor": "#e2e8f0", "color": "#475569", "plural": "artifacts",
                 "mermaid": ("([", "])"), "rich": "grey70"},
    "environment": {"shape": "ellipse", "fillcolor": "#bae6fd", "color": "#0369a1", "plural": "environments",
                    "mermaid": ("([", "])"), "rich": "cyan"},
    "run": {"shape": "box", "style": "filled,rounded", "fillcolor": "#c7d2fe", "color": "#4338ca", "plural": "runs",
            "mermaid": ("[", "]"), "rich": "blue"},
    "agent": {"shape": "house", "fillcolor": "#fecdd3", "color": "#be123c", "plural": "agents",
              "mermaid": ("[/", "\\]"), "rich": "red"},
    # a folded group is drawn in the shape and colours of the kind it stands for,
    # doubled like a stack of cards; these are the fallbacks and the overlay.
    "group": {"shape": "ellipse", "fillcolor": "#f1f5f9", "color": "#64748b", "peripheries": 2, "plural": "groups",
              "mermaid": ("[[", "]]"), "rich": "white"},
    # the "… N more nodes not shown" remark of a max_nodes cut
    "note": {"shape": "note", "fillcolor": "#fffbeb", "color": "#a8a29e", "fontcolor": "#57534e", "plural": "notes",
             "mermaid": (">", "]"), "rich": "dim"},
}

#: overlays for emphasis: the highlighted path and the marks `status`/`verify` give.
MARKS: dict[str, dict[str, Any]] = {
    "highlight": {"color": "#be185d", "penwidth": 3.0, "rich": "bold magenta"},
    "stale": {"color": "#d97706", "penwidth": 2.5, "style": "dashed", "tag": "⚠ stale", "rich": "bold yellow"},
    "tampered": {"color": "#dc2626", "fillcolor": "#fee2e2", "penwidth": 3.0, "tag": "✗ tampered", "rich": "bold red"},
}

#: kinds in the order a diagram lists siblings and a legend shows them
KIND_ORDER = ("prediction", "model", "artifact", "run", "dataset", "code", "environment", "agent", "group")

#: the default folding threshold: this many look-alike siblings (same kind, same
#: neighbours by the same relations) become one node. Five, because up to four
#: siblings still read well side by side and their names are worth showing.
FOLD_MIN = 5

#: suffix -> what writes it
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot", ".mmd": "mermaid",
           ".html": "html", ".htm": "html"}

INSTALL_HINT = ("install Graphviz: apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS), "
                "or see graphviz.org/download")

#: above this many nodes (after folding) `dot` formats need an explicit max_nodes.
#: The two limits are read here at call time, so ``render.style.DOT_MAX_NODES = ...``
#: changes them (the package's copies, ``render.DOT_MAX_NODES``, are for reading).
DOT_MAX_NODES = 1000
#: what notebooks and reports draw of a bigger graph
AUTO_MAX_NODES = 200

#: the data-flow direction a caller asks for -> graphviz's ``rankdir`` (arrows point against the flow)
RANKDIR = {"LR": "RL", "RL": "LR", "TB": "BT", "TD": "BT", "BT": "TB"}
#: names longer than this are cut with an ellipsis in labels
NAME_MAX = 40
#: seconds `dot` may take before a diagram is refused
DOT_TIMEOUT = 120
