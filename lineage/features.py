"""Feature-level lineage: which columns of which dataset versions feed a model, what
each becomes inside it, how much each matters, and which of them are sensitive.

For a model: each input column (``feature_names_in_``) is matched by name to a column
of the datasets its training run used (role ``training`` or ``input``); when such a
dataset was written by a recorded run that read a dataset with a column of the same
name, the column is followed back through that run, and so on to its origin. Each
feature the final estimator sees (``cat__sex_f``) lists the input columns it derives
from, so it inherits their sources and their sensitivity.

Cost: a handful of indexed queries per training dataset and preparation hop; nothing
grows with the number of features beyond a dictionary lookup each (the model's own
description, recorded at `log_model`, carries the feature map).

A module of the query layer's rank outside the `query` package, on purpose: its reads
are a few `Store` methods, and not importing the package keeps networkx out of
`lineage features` (a command meant to answer in well under half a second).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidInputError
from .model import Node
from .store import Store

#: roles of `used` edges that count as training data (DESIGN.md §1)
TRAINING_ROLES = (None, "training", "input")
#: dataset annotation listing its sensitive columns; model annotation allowing some
SENSITIVE_FIELD = "sensitive_columns"
ALLOW_FIELD = "sensitive_use"
MAX_HOPS = 32


def _columns_of_text(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return [c.strip() for c in text.split(":", 1)[0].split(",") if c.strip()]
    if isinstance(value, dict):
        value = value.get("columns", [])
    return [str(c) for c in value] if isinstance(value, list) else []


def _reason_of_text(text: str | None) -> str | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text.split(":", 1)[1].strip() if ":" in text else text
    return str(value.get("reason")) if isinstance(value, dict) and value.get("reason") else None


@dataclass
class FeatureLineage:
    """The answer of `feature_lineage`: ``items`` (one per feature the final estimator
    sees), ``inputs`` (one per input column, with its source dataset columns),
    ``sensitive`` (the sensitive columns reaching the model) and importance methods."""

    model: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    sensitive: list[dict[str, Any]] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    note: str | None = None

    @property
    def ok(self) -> bool:
        """True when no sensitive column reaches the model without an allowance."""
        return not self.violations

    @property
    def violations(self) -> list[dict[str, Any]]:
        return [s for s in self.sensitive if not s["allowed"]]

    def to_dict(self) -> dict[str, Any]:
        return {"model": dict(self.model), "items": list(self.items), "inputs": list(self.inputs),
                "sensitive": list(self.sensitive), "methods": list(self.methods), "note": self.note,
                "check": {"ok": self.ok, "violations": [v["column"] for v in self.violations]}}

    def __rich__(self) -> Any:
        return features_view(self)


def recorded_importance(store: Store, model_id: str) -> dict[str, dict[str, Any]]:
    """Importances computed after logging (`compute_importance`), the latest
    computation per method: ``{method: {"level", "values", "std", "dataset", "target",
    "at", "event"}}``."""
    rows = store.importance_rows(model_id)
    out: dict[str, dict[str, Any]] = {}
    for method, feature, level, value, std, dataset, target, at, event in rows:
        entry = out.get(method)
        if entry is None or entry["event"] != event:  # a later computation replaces an earlier one
            entry = out[method] = {"level": level, "values": {}, "std": {}, "dataset": dataset, "target": target,
                                   "at": at, "event": event}
        entry["values"][feature] = value
        entry["std"][feature] = std
    return out


def shown_ref(ref: str) -> str:
    """A column's reference as a table shows it (here and in the audit report): an
    unnamed dataset's id cut to 12 hex digits (``dataset:78d82a6a1b92.age``, still a
    reference), not all 64 of it; the JSON keeps the full one."""
    kind, sep, rest = ref.partition(":")
    if sep and len(rest) > 65 and rest[64] == "." and all(c in "0123456789abcdef" for c in rest[:64]):
        return f"{kind}:{rest[:12]}{rest[64:]}"
    return ref


def _version_ref(store: Store, node: Node, cache: dict[str, list[str]]) -> tuple[int | None, str]:
    if not node.name:
        return None, node.id
    ids = cache.get(node.name)
    if ids is None:
        ids = cache[node.name] = store.version_ids(node.name, "dataset")
    number = ids.index(node.id) + 1 if node.id in ids else None
    return number, f"{node.name}@{number}" if number else node.name


def _used(store: Store, run_ids: Iterable[str]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for run in run_ids:
        out += store.used_by(run)
    return out


def _sensitive_columns(store: Store, node: Node, cache: dict[str, set[str]]) -> set[str]:
    """Columns marked sensitive on this dataset or any version of its name."""
    key = node.name or node.id
    if key in cache:
        return cache[key]
    if node.name:
        ids = store.version_ids(node.name, "dataset")
    else:
        ids = [node.id]
    cols: set[str] = set()
    for i in ids:
        cols.update(_columns_of_text((store.annotations(i).get(SENSITIVE_FIELD) or {}).get("text")))
    cache[key] = cols
    return cols


def _has_column(node: Node, column: str) -> bool | None:
    cols = node.attrs.get("columns")
    if isinstance(cols, list):
        return column in cols
    return None  # unknown schema (an array, a remote file)


def feature_lineage(store: Store, model_id: str, *, attrs: dict[str, Any] | None = None) -> FeatureLineage:
    """Feature-level lineage of a model (see the module docstring). ``attrs`` overrides
    the node's recorded description (for models logged before features were
    described). Raises InvalidInputError when ``model_id`` is not a model."""
    node = store.get_node(model_id)
    if node is None or node.kind != "model":
        raise InvalidInputError(f"{model_id} is not a model; feature lineage is about a model's inputs")
    a = dict(attrs if attrs is not None else node.attrs)
    versions = store.version_ids(node.name, "model") if node.name else [node.id]
    result = FeatureLineage(model={"id": node.id, "name": node.name,
                                   "version": versions.index(node.id) + 1 if node.id in versions else None,
                                   "class": a.get("class"), "final_estimator": a.get("final_estimator")})
    inputs: list[str] = [str(c) for c in (a.get("feature_names") or [])]
    outs: list[str] = [str(c) for c in (a.get("features_out") or inputs)]
    sources_map: dict[str, list[str]] = {str(k): [str(x) for x in v] for k, v in (a.get("feature_sources") or {}).items()}
    if not inputs and not outs:
        result.note = "the model records no feature names (it was not fitted on named columns)"
    # importance: recorded with the model, then computed later (newer wins per method)
    importance: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (a.get("importance") or {}).items()}
    if not importance and a.get("feature_importance"):
        importance[str(a.get("importance_source") or "recorded")] = {"level": "feature", "values": a["feature_importance"]}
    importance.update(recorded_importance(store, model_id))
    result.methods = sorted(importance)

    # the datasets the training run used, and the chain of each column back through prep runs
    dataset_cache: dict[str, Node | None] = {}

    def dataset(i: str) -> Node | None:
        if i not in dataset_cache:
            n = store.get_node(i)
            dataset_cache[i] = n if n is not None and n.kind == "dataset" else None
        return dataset_cache[i]

    training = [d for d, role in _used(store, store.generators(model_id)) if role in TRAINING_ROLES]
    training = [d for d in dict.fromkeys(training) if dataset(d) is not None]
    versions_cache: dict[str, list[str]] = {}
    sensitive_cache: dict[str, set[str]] = {}

    def hop(ds: Node, column: str, depth: int, seen: set[str]) -> list[dict[str, Any]]:
        """The column's chain from ``ds`` back: this dataset, then its origins."""
        _, ref = _version_ref(store, ds, versions_cache)
        # kept small: a 200-feature model's answer is printed as JSON in well under 0.5 s
        # (name, version and column are all in the ref: `applications@2.sex`)
        here = {"dataset": ds.id, "ref": f"{ref}.{column}",
                "sensitive": column in _sensitive_columns(store, ds, sensitive_cache)}
        chain = [here]
        if depth >= MAX_HOPS:
            return chain
        # its origins: what the runs that made it read, and what it was read from (a
        # frame's file: `Run.log_input(source=)`)
        origins: list[tuple[str, str | None, str | None]] = [(up, role, run) for run in store.generators(ds.id) for up, role in _used(store, [run])]
        origins += [(up, None, None) for up in store.derived_from(ds.id)]
        for up, role, run in origins:
            up_node = dataset(up)
            if up_node is None or up in seen or role in ("code", "environment"):
                continue
            if _has_column(up_node, column):
                seen.add(up)
                tail = hop(up_node, column, depth + 1, seen)
                if run is not None:
                    tail[0]["via_run"] = run
                chain += tail
        return chain

    input_rows: list[dict[str, Any]] = []
    for col in inputs:
        chains = []
        for d in training:
            node_d = dataset(d)
            assert node_d is not None
            has = _has_column(node_d, col)
            if has is False:
                continue
            chain = hop(node_d, col, 0, {d})
            if has is None:
                chain[0]["confirmed"] = False  # the dataset's columns are not recorded
            chains.append(chain)
        input_rows.append({"column": col, "sources": [c[0] for c in chains],
                           "origins": [c[-1]["ref"] for c in chains], "chains": chains,
                           "sensitive": any(h["sensitive"] for c in chains for h in c)})
    # importance per input column: permutation directly, native summed over its features
    for method, entry in importance.items():
        values = entry.get("values") or {}
        if entry.get("level") == "input":
            per_input = {str(k): float(v) for k, v in values.items() if v is not None}
        else:
            per_input = {}
            for feature, v in values.items():
                if v is None:
                    continue
                srcs = sources_map.get(str(feature)) or [str(feature)]
                for s in srcs:
                    per_input[s] = per_input.get(s, 0.0) + float(v) / len(srcs)
        for row in input_rows:
            if row["column"] in per_input:
                row.setdefault("importance", {})[method] = round(per_input[row["column"]], 6)
    by_input = {r["column"]: r for r in input_rows}
    items: list[dict[str, Any]] = []
    for f in outs:
        srcs = sources_map.get(f) or ([f] if f in by_input else [])
        imp = {m: e["values"][f] for m, e in importance.items()
               if e.get("level") != "input" and f in (e.get("values") or {})}
        items.append({"feature": f, "inputs": srcs,
                      "sources": [s["ref"] for c in srcs for s in (by_input[c]["sources"] if c in by_input else [])],
                      "importance": imp,
                      "sensitive": any(by_input[c]["sensitive"] for c in srcs if c in by_input)})
    result.items = items
    result.inputs = input_rows
    # sensitive columns reaching the model, and whether a person allowed each
    allow = store.annotations(model_id).get(ALLOW_FIELD) or {}
    allowed = set(_columns_of_text(allow.get("text")))
    reaching = [(row["column"], [h["ref"] for c in row["chains"] for h in c if h["sensitive"]], True,
                 [i["feature"] for i in items if row["column"] in i["inputs"]]) for row in input_rows if row["sensitive"]]
    if not inputs:
        # the model records no input columns (fitted on an array): which columns of its
        # training data it read is unknown, so a sensitive one among them may reach it,
        # unconfirmed. A check that cannot tell must not pass.
        marks: dict[str, list[str]] = {}
        for d in training:
            node_d = dataset(d)
            assert node_d is not None
            columns = node_d.attrs.get("columns")
            for col in (columns if isinstance(columns, list) else sorted(_sensitive_columns(store, node_d, sensitive_cache))):
                for h in hop(node_d, str(col), 0, {d}):
                    if h["sensitive"]:
                        marks.setdefault(str(col), []).append(h["ref"])
        reaching += [(col, refs, False, []) for col, refs in sorted(marks.items())]
    for column, marked, confirmed, features in reaching:
        ok = column in allowed
        entry = {"column": column, "marked_in": marked, "allowed": ok, "features": features,
                 "allowance": {"reason": _reason_of_text(allow.get("text")), "author": allow.get("author"),
                               "at": allow.get("at"), "event": allow.get("event")} if ok else None}
        if not confirmed:
            entry["confirmed"] = False
        result.sensitive.append(entry)
    return result


def features_view(fl: FeatureLineage) -> Any:
    """The terminal view: input columns with sources, importance and sensitivity, then
    the features the final estimator sees."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    m = fl.model
    head = Text()
    head.append(f"{m['name'] or m['id']}", style="bold cyan")
    head.append(f" @{m['version']}  " if m.get("version") else "  ")
    head.append(str(m.get("final_estimator") or m.get("class") or ""), style="dim")
    parts: list[Any] = [head]
    if fl.note:
        parts.append(Text(fl.note, style="yellow"))
    methods = fl.methods
    t = Table(title="input columns", header_style="bold", title_justify="left")
    t.add_column("column", no_wrap=True)
    t.add_column("from")
    t.add_column("origin")
    for meth in methods:
        t.add_column(meth, justify="right")
    t.add_column("sensitive")
    order = sorted(fl.inputs, key=lambda r: -max((r.get("importance") or {}).values(), default=0.0))
    for r in order:
        sens = Text("")
        if r["sensitive"]:
            allowed = next((s["allowed"] for s in fl.sensitive if s["column"] == r["column"]), False)
            sens = Text("yes (allowed)", style="yellow") if allowed else Text("YES", style="bold red")
        t.add_row(Text(r["column"]), Text(", ".join(shown_ref(s["ref"]) for s in r["sources"]) or "—"),
                  Text(", ".join(dict.fromkeys(map(shown_ref, r["origins"]))) or "—"),
                  *(Text(f"{r['importance'][meth]:.4g}" if meth in (r.get("importance") or {}) else "—") for meth in methods),
                  sens)
    parts.append(t)
    if fl.items and [i["feature"] for i in fl.items] != [r["column"] for r in fl.inputs]:
        f = Table(title=f"features the final estimator sees ({len(fl.items)})", header_style="bold", title_justify="left")
        f.add_column("feature", no_wrap=True)
        f.add_column("from input")
        feat_methods = sorted({k for i in fl.items for k in i["importance"]})
        for meth in feat_methods:
            f.add_column(meth, justify="right")
        for i in fl.items:
            f.add_row(Text(i["feature"], style="bold red" if i["sensitive"] else ""), Text(", ".join(i["inputs"])),
                      *(Text(f"{i['importance'][meth]:.4g}" if meth in i["importance"] else "—") for meth in feat_methods))
        parts.append(f)
    if fl.sensitive:
        s = Text()
        for v in fl.sensitive:
            if v["allowed"]:
                s.append(f"sensitive column {v['column']} ({', '.join(v['marked_in'])}) reaches the model; allowed: "
                         f"{(v['allowance'] or {}).get('reason')}\n", style="yellow")
            else:
                s.append(f"sensitive column {v['column']} ({', '.join(v['marked_in'])}) reaches the model "
                         f"with no allowance\n", style="bold red")
        parts.append(s)
    return Group(*parts)
