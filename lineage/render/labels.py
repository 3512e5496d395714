"""What a node's label says: a human name, the short id, and the one or two facts that
matter for its kind; the text of an edge. Plain strings: each view escapes them for
its own language."""

from __future__ import annotations

import bisect
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import networkx as nx

from ..model import ENTITY_KINDS, Node, human_size, short_id
from .folding import count_of, kind_of, node_of
from .style import NAME_MAX, STYLE


def clean_line(text: Any, limit: int | None = NAME_MAX) -> str:
    """User text on one line: control characters dropped (a terminal's escape
    sequences, direction overrides), newlines as spaces, cut to ``limit`` characters
    with an ellipsis (None: never cut)."""
    s = str(text)
    s = re.sub(r"[\r\n\t\v\f]+", " ", s)
    s = "".join(ch for ch in s if ch.isprintable())
    return s if limit is None or len(s) <= limit else s[: limit - 1] + "…"


def _num(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return clean_line(v, 16)
    if math.isnan(f) or math.isinf(f):
        return str(f)
    if f == int(f) and abs(f) < 1e15:
        return f"{int(f):,}"
    a = abs(f)
    if a >= 1000:
        return f"{f:,.0f}"
    if a >= 100:
        return f"{f:.1f}"
    return f"{f:.3g}" if a >= 0.001 else f"{f:.2e}"


def _duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return ""
    if s < 0.1:
        return "< 0.1 s"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


_METRIC_PREFERENCE = ("accuracy", "f1", "roc_auc", "auc", "r2", "rmse", "mae", "mse", "log_loss", "loss",
                      "precision", "recall")


def _main_metric(metrics: Any) -> tuple[str, Any] | None:
    if not isinstance(metrics, Mapping) or not metrics:
        return None
    for key in _METRIC_PREFERENCE:
        if metrics.get(key) is not None:
            return key, metrics[key]
    key = sorted(metrics)[0]
    return key, metrics[key]


def _model_metric(node: Node, g: nx.MultiDiGraph | None) -> tuple[str, Any] | None:
    """The model's main metric: its own attrs first, else those of the run in this
    subgraph that generated it (render never asks the store)."""
    found = _main_metric(node.attrs.get("metrics"))
    if found or g is None or node.id not in g:
        return found
    for _, run_id, d in g.out_edges(node.id, data=True):
        if d.get("rel") == "was_generated_by":
            found = _main_metric(node_of(g, run_id).attrs.get("metrics"))
            if found:
                return found
    return None


def plural(kind: str, count: int) -> str:
    """The word for ``count`` nodes of ``kind`` (``run``, ``runs``, ``code version``)."""
    if count == 1:
        return {"code": "code version"}.get(kind, kind)
    return STYLE.get(kind, {}).get("plural", kind + "s")


def node_title(node: Node) -> str:
    """The first line: a human name."""
    a = node.attrs
    if node.kind == "group":
        kind = kind_of(node)
        count = count_of(node)
        if a.get("overflow"):
            return f"{count:,} more {plural(kind, count)}"
        if a.get("names"):
            return f"{count:,} other {plural(kind, count)}"
        if node.name and kind != "prediction":
            return clean_line(node.name)
        return f"{count:,} {plural(kind, count)}"
    if node.kind == "prediction":
        rid = a.get("request_id")
        return f"request {clean_line(rid, 30)}" if rid else "prediction"
    if node.kind == "code" and a.get("commit") and not a.get("script_digest"):
        # a commit's runs share its node, named after the first one's script: a trace
        # of `predict.py`'s run said `train.py`. The repository is what the node is.
        where = str(a.get("root") or a.get("repo") or "").rstrip("/").rsplit("/", 1)[-1]
        return clean_line(where.removesuffix(".git")) if where else "git repository"
    return clean_line(node.name) if node.name else node.kind


def node_facts(node: Node, g: nx.MultiDiGraph | None = None) -> list[str]:
    """The one or two facts that matter about a node, as short strings: what every
    view (diagram labels, the terminal tree, tables through `node_summary`) says
    about it. ``g``, the subgraph drawn, lets a model show its training run's metric."""
    a = node.attrs
    k = node.kind
    out: list[str] = []
    if k == "group":
        kind = kind_of(node)
        count = count_of(node)
        if a.get("names"):  # an overview's "other names" group
            out.append(f"under {int(a['names']):,} names" if kind != "prediction"
                       else f"of {int(a['names']):,} models")
        elif a.get("overview") and node.name:
            if kind == "prediction":  # named after their model
                out.append(f"of {clean_line(node.name)}")
            elif count > 1:
                word = "versions" if kind in ENTITY_KINDS and kind != "prediction" else plural(kind, count)
                out.append(f"{count:,} {word}")
        elif node.name and kind != "prediction" and f"{count:,}" not in node.name:
            out.append(f"{count:,} {plural(kind, count)}")
        if a.get("first") and a.get("last"):
            first, last = str(a["first"])[:10], str(a["last"])[:10]
            out.append(first if first == last else f"{first} … {last}")
    elif k == "dataset":
        if a.get("rows") is not None:
            out.append(f"{_num(a['rows'])} {'row' if a['rows'] == 1 else 'rows'}")
        if a.get("remote") or a.get("uri"):
            out.append(clean_line(str(a.get("uri", "")).split("://", 1)[0] + " remote", 24))
        elif a.get("size") is not None:
            out.append(human_size(a["size"]))
    elif k == "run":
        status = str(a.get("status") or "")
        bits = [clean_line(status, 12)] if status else []
        if a.get("duration_s") is not None:
            bits.append(_duration(a["duration_s"]))
        if status in ("failed", "crashed") and a.get("exit_code") not in (None, 0):
            bits.append(f"exit {clean_line(a['exit_code'], 6)}")
        if bits:
            out.append(" · ".join(bits))
        if a.get("experiment") and a.get("experiment") != "default":
            out.append(f"exp {clean_line(a['experiment'], 24)}")
    elif k == "model":
        metric = _model_metric(node, g)
        if metric:
            out.append(f"{clean_line(metric[0], 16)} {_num(metric[1])}")
        cls = str(a.get("class") or "").rsplit(".", 1)[-1]
        if cls and cls != node.name:
            out.append(clean_line(cls, 28))
    elif k == "prediction":
        bits = []
        if "output" in a:
            bits.append("→ " + clean_line(json.dumps(a.get("output"), ensure_ascii=False, default=str), 20))
        if a.get("score") is not None:
            bits.append(f"score {_num(a['score'])}")
        if bits:
            out.append(" · ".join(bits))
    elif k == "code":
        if a.get("commit"):
            out.append(f"git {clean_line(a['commit'], 40)[:8]}{' (dirty)' if a.get('dirty') else ''}")
        elif a.get("entry_point") and a.get("entry_point") != node.name:
            out.append(clean_line(a["entry_point"]))
        else:
            out.append("not in git")
    elif k == "environment":
        bits = []
        packages = a.get("packages")
        if isinstance(packages, Mapping):
            bits.append(f"{len(packages)} packages")
        if a.get("platform"):
            bits.append(clean_line(str(a["platform"]).split("-", 1)[0], 12))
        if bits:
            out.append(" · ".join(bits))
    elif k == "agent":
        where = a.get("email") or a.get("host")  # who answers for it, else where it ran
        if where:
            out.append(clean_line(where, 30))
    elif k == "artifact":
        bits = [clean_line(a["format"], 10)] if a.get("format") else []
        if a.get("size") is not None:
            bits.append(human_size(a["size"]))
        if bits:
            out.append(" · ".join(bits))
    return [f for f in out if f][:2]


def node_summary(node: Node, g: nx.MultiDiGraph | None = None) -> str:
    """`node_facts` on one line, for tables, followed by where the thing is, which a
    table has room for: a dataset's URI or path, an artifact's path, a prediction's
    request id."""
    a = node.attrs
    facts = node_facts(node, g)
    if node.kind in ("dataset", "artifact") and (a.get("uri") or a.get("path")):
        facts.append(str(a.get("uri") or a.get("path")))
    elif node.kind == "prediction" and a.get("request_id"):
        facts.append(f"request {a['request_id']}")
    return ", ".join(facts)


def fact_lines(facts: Sequence[str]) -> list[str]:
    """Two short facts share a line; long ones get a line each."""
    if len(facts) == 2 and len(facts[0]) + len(facts[1]) <= 26:
        return [f"{facts[0]} · {facts[1]}"]
    return list(facts)


# Generated ids (UUIDv7) start with a millisecond timestamp: their first 12 hex digits
# are the same for everything logged in the same millisecond, 8 for the same minute;
# a run shows 16, as everywhere (`short_id`). (A prediction's id is shown in full.)
_MIN_SHORT = {"run": 16}


def short_ids(drawn: Iterable[str], universe: Iterable[str] = ()) -> dict[str, str]:
    """``kind:prefix`` for each drawn id: the shortest prefix that tells it apart from
    every other id of its kind in ``drawn`` and ``universe`` (as git abbreviates
    commits), at least 8 hex digits (16 for a run's time-ordered id). Unique within the
    subgraph, folded nodes included, so it works as a reference; a prediction's id
    is whole (`short_id`), as only the whole id is unique in the store."""
    by_kind: dict[str, list[str]] = {}
    for node_id in itertools.chain(drawn, universe):
        kind, sep, rest = node_id.partition(":")
        if sep and kind != "group":
            by_kind.setdefault(kind, []).append(rest)
    sorted_hex = {kind: sorted(set(hexes)) for kind, hexes in by_kind.items()}
    out: dict[str, str] = {}
    for node_id in drawn:
        kind, sep, h = node_id.partition(":")
        if not sep or kind == "group":
            continue
        hexes = sorted_hex[kind]
        i = bisect.bisect_left(hexes, h)
        need = _MIN_SHORT.get(kind, 8)
        for j in (i - 1, i + 1):
            if 0 <= j < len(hexes):
                need = max(need, len(os.path.commonprefix([h, hexes[j]])) + 1)  # noqa: RUF071 - hex ids: a character prefix is the point
        out[node_id] = short_id(node_id, need)
    return out


def short_id_line(node: Node, short: Mapping[str, str]) -> str:
    """The short id shown under a node's title (empty for a folded group)."""
    if node.kind == "group":
        return ""
    return short.get(node.id) or short_id(node.id, _MIN_SHORT.get(node.kind, 8))


def edge_text(d: Mapping[str, Any]) -> str:
    """An edge's label: its relation, its role in brackets, ``×N`` when folded."""
    rel = str(d.get("rel") or "")
    role = d.get("role")
    text = f"{rel} ({clean_line(role, 16)})" if role else rel
    if d.get("count", 1) > 1:
        text += f" ×{int(d['count']):,}"
    return clean_line(text, 48)
