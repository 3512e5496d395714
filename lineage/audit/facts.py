"""Collect what a report shows about a model or a prediction, from the store and the
query layer, as plain JSON-ready values, and remember which ledger events recorded it
(so `integrity` can check exactly those).

Nothing here writes to the ledger. Cost follows the model's own lineage (its upstream
trace, its predictions' summary), not the size of the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidInputError, LineageError, log
from ..model import ERASED_PERSON, Node, canonical_json, short_id, version_number
from ..query import rows as query_rows
from ..store import Store, latest
from ..tracking import LIFECYCLE_TAG

#: libraries worth naming in a report when installed (normalised distribution names)
KEY_PACKAGES = (
    "scikit-learn", "numpy", "scipy", "pandas", "polars", "pyarrow", "torch", "tensorflow", "keras", "jax",
    "xgboost", "lightgbm", "catboost", "statsmodels", "transformers", "joblib", "lineage-ml",
)
#: import name of a model's module -> its distribution
MODULE_DISTRIBUTIONS = {"sklearn": "scikit-learn", "torch": "torch", "xgboost": "xgboost", "lightgbm": "lightgbm",
                        "catboost": "catboost", "tensorflow": "tensorflow", "keras": "keras", "statsmodels": "statsmodels"}


@dataclass
class FileTarget:
    """A file whose bytes a recorded digest vouches for."""

    node_id: str
    kind: str
    name: str | None
    path: str | None  # None: nothing on disk to check (remote, or logged from memory)
    expected: str
    note: str = ""


@dataclass
class Facts:
    """Everything a model (or prediction) report shows, JSON-ready, plus what the
    integrity check needs. Built by `collect_model` / `collect_prediction`."""

    subject: dict[str, Any]
    model: dict[str, Any]
    data: list[dict[str, Any]]
    training_runs: list[dict[str, Any]]
    preparation: list[dict[str, Any]]
    code: list[dict[str, Any]]
    environments: list[dict[str, Any]]
    hyperparameters: dict[str, dict[str, Any]]
    metrics: list[dict[str, Any]]
    feature_importance: list[dict[str, Any]]
    changes: dict[str, Any]
    predictions: dict[str, Any]
    later_runs: list[dict[str, Any]]
    impact: dict[str, Any]
    accountability: list[dict[str, Any]]
    annotations: dict[str, dict[str, Any]]
    retention: dict[str, Any]
    subgraph: Any = None
    prediction: dict[str, Any] | None = None
    integrity: dict[str, Any] | None = None
    decision: dict[str, Any] | None = None  # a prediction's decision record (inputs, rule, reasons)
    # for the integrity check: events per table behind the facts, prediction events, files
    fact_events: dict[str, set[int]] = field(default_factory=dict)
    prediction_events: dict[int, int] = field(default_factory=dict)
    files: list[FileTarget] = field(default_factory=list)


def _plain(value: Any) -> Any:
    return json.loads(canonical_json(value))


def _hex(node_id: str) -> str:
    return node_id.split(":", 1)[1]


def _days_between(a: str | None, b: str | None) -> float | None:
    try:
        fa = datetime.fromisoformat(str(a).replace("Z", "+00:00"))
        fb = datetime.fromisoformat(str(b).replace("Z", "+00:00"))
    except ValueError:
        return None
    return round((fb - fa).total_seconds() / 86400, 1)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Agents:
    """Agent ids -> ``user@host`` labels, looked up once each."""

    def __init__(self, store: Store, known: Iterable[Node] = ()) -> None:
        self.store = store
        self.nodes: dict[str, Node] = {n.id: n for n in known if n.kind == "agent"}

    def label(self, agent_id: str | None) -> str | None:
        if not agent_id:
            return None
        node = self.nodes.get(agent_id)
        if node is None and agent_id.startswith("agent:"):
            node = self.store.get_node(agent_id)
            if node is not None:
                self.nodes[agent_id] = node
        if node is None:
            return agent_id
        if node.attrs.get("redacted") and node.name is None:  # erased: the id, said to be of no one now
            return f"{ERASED_PERSON} {agent_id}"
        user, host = node.attrs.get("user"), node.attrs.get("host")
        return f"{user}@{host}" if user and host else (node.name or agent_id)

    def brief(self, agent_id: str | None) -> dict[str, Any] | None:
        if not agent_id:
            return None
        label = self.label(agent_id)
        node = self.nodes.get(agent_id)
        return {"id": agent_id, "label": label, "email": node.attrs.get("email") if node else None}


# ---------------------------------------------------------------------------
# models


def collect_model(store: Store, model_id: str, name: str | None = None) -> Facts:
    """The facts of a model's report, under ``name`` when it is one of the version's
    names (`version_names`: the registered name it was asked by), else its own.
    Raises InvalidInputError when ``model_id`` is not a model."""
    from .. import query
    from ..query.serving import version_names

    node = store.get_node(model_id)
    if node is None or node.kind != "model":
        raise InvalidInputError(f"{model_id} is not a model; audit a model or a prediction")
    names = version_names(store, node, name)
    audited = names[0] if names else None
    sub = query.trace(store, model_id)
    nodes: dict[str, Node] = {n.id: n for n in sub.nodes() if n.kind != "group"}
    edges = sub.edges()
    agents = Agents(store, nodes.values())

    # who is responsible for what, straight from the edges of the trace
    attributed: dict[str, str] = {}
    associated: dict[str, str] = {}
    used: dict[str, list[tuple[str, str | None]]] = {}
    generated_by: dict[str, list[str]] = {}
    for e in edges:
        if e.rel == "was_attributed_to":
            attributed.setdefault(e.src, e.dst)
        elif e.rel == "was_associated_with":
            associated.setdefault(e.src, e.dst)
        elif e.rel == "used":
            used.setdefault(e.src, []).append((e.dst, e.role))
        elif e.rel == "was_generated_by":
            generated_by.setdefault(e.dst, []).append(e.src)

    run_ids = [i for i, n in nodes.items() if n.kind == "run"]
    runs = store.get_nodes(run_ids)  # with status, params, tags and times
    training_ids = [r for r in store.generators(model_id) if r in runs]
    param_events = query_rows.param_events(store, run_ids)  # so an altered param is marked where it is shown

    def run_fact(run_id: str) -> dict[str, Any]:
        r = runs[run_id]
        a = r.attrs
        uses = used.get(run_id, [])
        states = query_rows.run_states_of(store, run_id)
        crash = next((s for s in reversed(states) if s["status"] == "crashed"), None)
        return {
            "id": run_id,
            "name": r.name,
            "experiment": a.get("experiment"),
            "status": a.get("status"),
            "started_at": a.get("started_at"),
            "ended_at": a.get("ended_at"),
            "duration_s": a.get("duration_s"),
            "exit_code": a.get("exit_code"),
            "error": a.get("error"),
            "noticed_by": agents.label(crash["noticed_by"]) if crash and crash.get("noticed_by") else None,
            "agent": agents.brief(associated.get(run_id)),
            "params": _plain(a.get("params", {})),
            "param_events": param_events.get(run_id, {}),
            "tags": _plain(a.get("tags", {})),
            "command": _plain(a.get("command")) if a.get("command") else None,
            "code": [d for d, role in uses if role == "code"],
            "environment": [d for d, role in uses if role == "environment"],
            "inputs": [{"id": d, "name": nodes[d].name if d in nodes else None, "kind": d.split(":", 1)[0], "role": role}
                       for d, role in uses if role not in ("code", "environment")],
            "outputs": [{"id": o, "name": nodes[o].name if o in nodes else None, "kind": o.split(":", 1)[0]}
                        for o in generated_by.get(run_id, [])],
            "states": states,
            "lifecycle": _lifecycle(store, run_id, agents),
            "event": store.event_of(run_id),
        }

    training_runs = [run_fact(r) for r in training_ids]
    # upstream runs, oldest first: the preparation that led to the training data
    preparation = sorted((run_fact(r) for r in run_ids if r not in training_ids),
                         key=lambda r: (r["started_at"] or "", r["id"]))

    data = _data_facts(store, model_id, nodes, attributed, agents)
    code_ids = list(dict.fromkeys(c for r in training_runs + preparation for c in r["code"]))
    code = [_code_fact(nodes[c], [r["id"] for r in training_runs + preparation if c in r["code"]], nodes)
            for c in code_ids if c in nodes]
    env_ids = list(dict.fromkeys(e for r in training_runs + preparation for e in r["environment"]))
    model_dist = MODULE_DISTRIBUTIONS.get(str(node.attrs.get("class", "")).split(".", 1)[0])
    environments = [_env_fact(nodes[e], model_dist) for e in env_ids if e in nodes]

    # metrics of the training runs, each with the dataset it was computed on
    metrics = []
    data_names = {d["id"]: d for d in data}
    for r in training_runs:
        for m in query_rows.metrics_of(store, r["id"]):
            ds = m.pop("dataset")
            m["run"] = r["id"]
            if ds:
                known = data_names.get(ds) or _brief(nodes.get(ds) or store.get_node(ds), ds)
                m["dataset"] = {"id": ds, "name": known.get("name"), "digest": _hex(ds),
                                "version": known.get("version"), "versions": known.get("versions")}
            else:
                m["dataset"] = None
            metrics.append(m)

    _group_statistics(store, metrics)
    a = node.attrs
    fi = a.get("feature_importance") or {}
    feature_importance = [{"feature": k, "importance": float(v)}
                          for k, v in sorted(fi.items(), key=lambda kv: (-float(kv[1]), kv[0]))]

    # versions of the same name, and what changed since the previous one
    versions = store.history(audited, kind="model") if audited else [node]
    index = next((i for i, v in enumerate(versions) if v.id == model_id), len(versions) - 1)
    previous = versions[index - 1] if index > 0 else None
    changes: dict[str, Any] = {"previous": _brief(previous) if previous else None, "items": []}
    if previous is not None:
        try:
            diff = query.diff(store, previous.id, model_id)
            # metrics are compared per (metric, dataset, group) below, not as one latest value per name
            changes["items"] = [{"aspect": c.aspect, "key": c.key, "a": _plain(c.a), "b": _plain(c.b)}
                                for c in diff.changes if c.aspect != "metrics"]
            changes["items"] += _metric_changes(store, previous.id, metrics)
        except LineageError as exc:  # a comparison that fails must not cost the whole report: shown as a gap
            log.warning("audit of %s: the comparison with %s failed: %s", model_id, previous.id, exc)
            changes["error"] = f"{type(exc).__name__}: {exc}"

    predictions = query_rows.prediction_summary(store, model_id)
    pred_events = dict(predictions["events"])
    predictions = {"count": predictions["count"], "first_at": predictions["first_at"], "last_at": predictions["last_at"],
                   "events": sorted(pred_events)}
    predictions["loggers"] = _event_actors(store, sorted(pred_events)[:20], agents)

    impact, later_runs = _impact(store, model_id)

    from ..tracking import read_annotations  # with who recorded each

    annotations = read_annotations(store, model_id)
    owner = agents.brief(attributed.get(model_id))
    note = annotations.get("validation")
    recorder = store.get_node(note["recorded_by_agent"]) if note and note.get("recorded_by_agent") else None
    validation = _validation(note, owner, nodes.get(attributed.get(model_id, "")), recorder)
    training_status = training_runs[-1]["status"] if training_runs else None
    sign = annotations.get("sign_off")
    evaluated = [m["at"] for m in metrics if m.get("at")]
    model = {
        "id": model_id,
        "name": audited,
        "digest": _hex(model_id),
        "class": a.get("class"),
        # a composite (Pipeline, ColumnTransformer, ensemble) as its chain of steps, each
        # with its own parameters: the class alone hides what the model does to its inputs
        "final_estimator": a.get("final_estimator"),
        "steps": _steps(a.get("steps")),
        "flavor": a.get("flavor"),
        "created_at": node.created_at,
        "event": store.event_of(model_id),
        "owner": owner,
        "version": index + 1,
        "versions": len(versions),
        "previous": changes["previous"],
        "artifact": a.get("artifact"),
        "size": a.get("size"),
        "serializer": a.get("serializer"),
        "n_features": a.get("n_features"),
        "feature_names": _plain(a.get("feature_names")) if a.get("feature_names") else None,
        "classes": _plain(a.get("classes")) if a.get("classes") is not None else None,
        "importance_source": a.get("importance_source"),
        "training_status": training_status,
        "evaluated_at": max(evaluated) if evaluated else None,
        "validation": validation,
        "signed_off": {"author": sign["author"], "at": sign["at"], "event": sign["event"]} if sign else None,
        # what a model registry says it is for (MLflow's descriptions): shown beside
        # the intended purpose, which only a person's statement fills
        "described": query_rows.registry_descriptions(store, model_id, a, names),
    }

    hyperparameters = {
        "model": _plain(a.get("params", {})),
        "run": {k: v for r in training_runs for k, v in r["params"].items()},
        # the event that wrote each run parameter shown (the same run wins as in "run")
        "run_events": {k: e for r in training_runs for k, e in r["param_events"].items()},
    }

    accountability = _accountability(data, preparation, training_runs, model, annotations, predictions)
    accountability = sorted(accountability + _label_steps(store, node, names), key=lambda s: (s["at"] or "", s["event"] or 0))
    retention = _retention(store, predictions)

    facts = Facts(
        subject={"kind": "model", "id": model_id, "name": audited},
        model=model, data=data, training_runs=training_runs, preparation=preparation, code=code,
        environments=environments, hyperparameters=hyperparameters, metrics=metrics,
        feature_importance=feature_importance, changes=changes, predictions=predictions, later_runs=later_runs,
        impact=impact, accountability=accountability, annotations=annotations, retention=retention, subgraph=sub,
    )
    # every node whose record the report shows: the trace, the runs that used the model
    # later, and what the comparison with the previous version read
    shown = set(nodes) | {r["id"] for r in later_runs}
    if previous is not None:
        shown |= {n.id for n in query.trace(store, previous.id).nodes() if n.kind != "group"}
    # a column is shown as sensitive when any version of its dataset's name marks it
    shown |= {v for d in data if d["name"] for v in store.version_ids(d["name"], "dataset")}
    facts.fact_events = query_rows.record_events(store, sorted(shown))
    # the labels, importances and erased predictions the report shows (`serving`)
    for table, seqs in query_rows.serving_events(store, model_id, names).items():
        facts.fact_events.setdefault(table, set()).update(seqs)
    for d in model["described"]:  # (the registry's descriptions shown, where they are recorded)
        if d["event"] is not None:
            facts.fact_events.setdefault(d["table"], set()).add(d["event"])
    facts.prediction_events = pred_events
    facts.files = _file_targets(store, node, data, nodes)
    return facts


def _steps(recorded: Any) -> list[dict[str, Any]] | None:
    """A model's recorded chain of steps (`describe.steps_of`) as the report shows it:
    ``{"step", "class", "params", "depth"}`` plus ``columns`` where a ColumnTransformer
    recorded them; None for a plain estimator (its class and parameters say it all)."""
    if not isinstance(recorded, list) or not recorded:
        return None
    out = []
    for s in recorded:
        if not isinstance(s, dict):
            continue
        path = str(s.get("step") or "")
        step: dict[str, Any] = {"step": path, "class": s.get("class"), "params": _plain(s.get("params") or {}),
                                # the pipeline itself is the unnamed root: its steps are depth 1
                                "depth": path.count("/") + (1 if "/" in path or s is not recorded[0] else 0)}
        if s.get("columns") is not None:
            step["columns"] = [str(c) for c in s["columns"]]
        out.append(step)
    return out


def _brief(node: Node | None, fallback_id: str | None = None) -> dict[str, Any]:
    if node is None:
        return {"id": fallback_id, "name": None, "created_at": None}
    return {"id": node.id, "name": node.name, "created_at": node.created_at}


def _data_facts(store: Store, model_id: str, nodes: dict[str, Node], attributed: dict[str, str],
                agents: Agents) -> list[dict[str, Any]]:
    from .. import query

    order = {"training": 0, "held_out": 1, "other": 2, "upstream": 3}
    uses = query.which_data(store, model_id)
    versions: dict[str, list[str]] = {}  # dataset name -> ids, oldest first (`applications@2 of 2`)
    for use in uses:
        name = use.node.name
        if name and name not in versions:
            versions[name] = [v.id for v in store.history(name, kind="dataset")]
    out = []
    for use in sorted(uses, key=lambda u: (order[u.group], u.distance, u.node.name or "", u.node.id)):
        d = use.node
        a = d.attrs
        columns = a.get("columns")
        out.append({
            "id": d.id,
            "name": d.name,
            "role": use.role,
            "use": use.group,  # how the role counts: training, held_out, upstream, other
            "distance": use.distance,
            "digest": _hex(d.id),
            "location": a.get("uri") or a.get("abspath") or a.get("path"),
            "path": a.get("path"),
            "uri": a.get("uri"),
            "format": a.get("format"),
            "size": a.get("size"),
            "rows": a.get("rows"),
            "columns": len(columns) if isinstance(columns, list) else a.get("n_columns"),
            "column_names": _plain(columns) if isinstance(columns, list) else None,
            "captured_at": d.created_at,
            "captured_by": agents.brief(attributed.get(d.id)) if d.id in attributed else None,
            "remote": bool(a.get("remote")),
            "event": store.event_of(d.id),
            "version": (versions[d.name].index(d.id) + 1) if d.name and d.id in versions.get(d.name, []) else None,
            "versions": len(versions[d.name]) if d.name and d.id in versions.get(d.name, []) else None,
        })
    return out


def _code_fact(node: Node, used_by: list[str], nodes: Mapping[str, Node]) -> dict[str, Any]:
    a = node.attrs
    # the scripts its runs started from (each run records its own; the code node, shared
    # by the runs of one commit, names the first one's)
    scripts = list(dict.fromkeys(nodes[r].attrs.get("entry_point") or a.get("entry_point")
                                 for r in used_by if r in nodes))
    return {
        "id": node.id,
        "name": node.name,
        "digest": _hex(node.id),
        "repo": a.get("repo"),
        "branch": a.get("branch"),
        "commit": a.get("commit"),
        "dirty": a.get("dirty"),
        "diff_digest": a.get("diff_digest"),
        "entry_point": ", ".join(filter(None, scripts)) or a.get("entry_point"),
        "git": a.get("git"),
        "created_at": node.created_at,
        "used_by": used_by,
    }


def _env_fact(node: Node, model_dist: str | None) -> dict[str, Any]:
    a = node.attrs
    packages = a.get("packages") or {}
    wanted = ([model_dist] if model_dist else []) + [p for p in KEY_PACKAGES if p != model_dist]
    return {
        "id": node.id,
        "python": a.get("python"),
        "implementation": a.get("implementation"),
        "platform": a.get("platform"),
        "machine": a.get("machine"),
        "packages_total": len(packages),
        "key_packages": {p: packages[p] for p in wanted if p in packages},
    }


def _event_actors(store: Store, seqs: list[int], agents: Agents) -> list[dict[str, Any]]:
    out = []
    for seq in seqs:
        ev = store.event(seq)
        if ev is None or ev.payload is None:
            continue
        out.append({"event": seq, "at": ev.payload.get("at"), "who": agents.label(ev.payload.get("actor")),
                    "agent_id": ev.payload.get("actor"), "rows": ev.payload.get("rows") or ev.payload.get("count")})
    return out


def _impact(store: Store, model_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from .. import query

    try:
        sub = query.impact(store, model_id)
    except LineageError as exc:  # shown as a gap rather than failing the report
        log.warning("audit of %s: its impact could not be walked: %s", model_id, exc)
        return {"counts": {}, "error": f"{type(exc).__name__}: {exc}"}, []
    counts = dict(sub.counts)
    if model_id in sub:
        counts["model"] = counts.get("model", 1) - 1
    counts = {k: v for k, v in counts.items() if v}
    later = [{"id": n.id, "name": n.name, "created_at": n.created_at}
             for n in sub.nodes("run")]
    return {"counts": counts}, sorted(later, key=lambda r: r["created_at"] or "")


def _accountability(data: list[dict[str, Any]], preparation: list[dict[str, Any]], training: list[dict[str, Any]],
                    model: dict[str, Any], annotations: dict[str, dict[str, Any]],
                    predictions: dict[str, Any]) -> list[dict[str, Any]]:
    """Who did each step and when, in time order."""
    steps: list[dict[str, Any]] = []
    for d in data:
        who = d.get("captured_by") or {}
        steps.append({"step": f"dataset {d['name'] or d['id']} recorded", "subject": d["id"], "who": who.get("label"),
                      "agent_id": who.get("id"), "at": d["captured_at"], "ended_at": None, "status": None,
                      "event": d.get("event")})
    for r, what in [(r, "preparation run") for r in preparation] + [(r, "training run") for r in training]:
        who = r.get("agent") or {}
        status = r["status"]
        if r.get("noticed_by"):
            status = f"{status} (noticed by {r['noticed_by']})"
        steps.append({"step": f"{what} {r['name'] or r['id']}", "subject": r["id"], "who": who.get("label"),
                      "agent_id": who.get("id"), "at": r["started_at"], "ended_at": r["ended_at"], "status": status,
                      "event": r.get("event")})
        for change in r["lifecycle"]:
            steps.append({"step": f"{what} {r['name'] or r['id']} {change['what']}", "subject": r["id"],
                          "who": change["who"], "agent_id": change["agent_id"], "at": change["at"], "ended_at": None,
                          "status": None, "event": change["event"]})
    owner = model.get("owner") or {}
    steps.append({"step": f"model {model['name']} recorded", "subject": model["id"], "who": owner.get("label"),
                  "agent_id": owner.get("id"), "at": model["created_at"], "ended_at": None, "status": None,
                  "event": model.get("event")})
    for p in predictions.get("loggers", []):
        steps.append({"step": f"{p['rows'] or ''} predictions logged".strip(), "subject": model["id"], "who": p["who"],
                      "agent_id": p["agent_id"], "at": p["at"], "ended_at": None, "status": None, "event": p["event"]})
    for key, a in annotations.items():
        # the typed author beside the identity that recorded it, when the store has both
        who = a["author"] if not a.get("recorded_by") or a.get("recorded_by") == a["author"] else \
            f"{a['author']} (recorded by {a['recorded_by']})"
        steps.append({"step": "sign-off" if key == "sign_off" else f"annotation {key}", "subject": model["id"],
                      "who": who, "agent_id": None, "at": a["at"], "ended_at": None, "status": None,
                      "event": a["event"]})
    return sorted(steps, key=lambda s: (s["at"] or "", s["event"] or 0))


def _lifecycle(store: Store, run_id: str, agents: Agents) -> list[dict[str, Any]]:
    """A run marked deleted or restored through MLflow (`delete_run`, `restore_run`):
    ``{what, who, agent_id, at, event}`` each time. The run and all it recorded stay
    (records are append-only), but someone judged it not worth keeping in sight, and
    an auditor reading a model trained by it should know who, and when."""
    out = []
    for change in query_rows.tag_changes_of(store, run_id, LIFECYCLE_TAG):
        ev = store.event(int(change["event"]))
        payload = ev.payload if ev is not None and ev.payload else {}
        out.append({"what": "marked deleted in MLflow" if change["value"] == "deleted" else "restored in MLflow",
                    "who": agents.label(payload.get("actor")), "agent_id": payload.get("actor"),
                    "at": payload.get("at"), "event": change["event"]})
    return out


def _label_steps(store: Store, node: Node, names: Sequence[str]) -> list[dict[str, Any]]:
    """The label changes of this version (put on, moved away, taken off) as steps:
    who promoted a model to production, when and why is the accountability an
    auditor asks for first (SR 11-7's approval of use). Under each of its ``names``
    (`version_names`, the audited one first), as a version registered under a
    second name is promoted there."""
    steps = []
    for name in names:
        for r in store.promotion_rows(name):
            if r["model"] != node.id:
                continue
            what = {"promote": f"label {r['label']} put on this version",
                    "end": f"label {r['label']} moved to another version",
                    "unpromote": f"label {r['label']} taken off"}.get(r["action"], f"label {r['label']} {r['action']}")
            if name != names[0]:
                what += f" (as {name})"
            ev = store.event(int(r["event"]))
            actor = ev.payload.get("actor") if ev is not None and ev.payload else None
            steps.append({"step": what, "subject": node.id, "who": r["author"], "agent_id": actor, "at": r["at"],
                          "ended_at": None, "status": r["reason"], "event": r["event"]})
    return steps


def _retention(store: Store, predictions: dict[str, Any]) -> dict[str, Any]:
    first = store.event(1)
    since = first.payload.get("at") if first is not None and first.payload else None
    now = _now()
    store_days = _days_between(since, now) if since else 0.0
    log_days = _days_between(predictions["first_at"], predictions["last_at"]) if predictions["count"] else None
    return {"store_since": since, "store_days": store_days or 0.0, "log_days": log_days, "checked_at": now,
            "policy": "append-only: lineage never deletes a record; a redaction erases a payload, not the event"}


def _file_targets(store: Store, model: Node, data: list[dict[str, Any]], nodes: dict[str, Node]) -> list[FileTarget]:
    targets = []
    art = model.attrs.get("artifact")
    targets.append(FileTarget(model.id, "model", model.name, str(store.dir / art) if art else None, _hex(model.id),
                              "" if art else "no artifact recorded"))
    for n in nodes.values():
        if n.kind == "artifact":
            p = n.attrs.get("artifact")
            targets.append(FileTarget(n.id, "artifact", n.name, str(store.dir / p) if p else None, _hex(n.id),
                                      "" if p else "no copy kept"))
    for d in data:
        node = nodes.get(d["id"])
        attrs = node.attrs if node is not None else {}
        if d.get("remote"):
            targets.append(FileTarget(d["id"], "dataset", d["name"], None, d["digest"],
                                      f"remote ({d.get('uri')}); recorded checksum, not re-read"))
        elif attrs.get("abspath"):
            from ..tracking import local_file  # where the file is now: a copied project checks its own

            targets.append(FileTarget(d["id"], "dataset", d["name"], local_file(store, attrs), d["digest"],
                                      "directory" if attrs.get("format") == "directory" else ""))
        else:
            targets.append(FileTarget(d["id"], "dataset", d["name"], None, d["digest"], "logged from memory: no file"))
    return targets


# ---------------------------------------------------------------------------
# predictions


def collect_prediction(store: Store, prediction_id: str) -> Facts:
    """The facts of a prediction's report: the prediction, and its model's facts."""
    from .. import query

    pred = store.get_node(prediction_id)
    if pred is None or pred.kind != "prediction":
        raise InvalidInputError(f"{prediction_id} is not a prediction")
    model_id = str(pred.attrs.get("model") or "")
    facts = collect_model(store, model_id)
    event = store.event_of(prediction_id)
    ev = store.event(event) if event else None
    actor = ev.payload.get("actor") if ev is not None and ev.payload else None
    agents = Agents(store, facts.subgraph.nodes() if facts.subgraph is not None else ())
    facts.prediction = {
        "id": prediction_id,
        "created_at": pred.created_at,
        "input_digest": pred.attrs.get("input_digest"),
        "output": pred.attrs.get("output"),
        "score": pred.attrs.get("score"),
        "request_id": pred.attrs.get("request_id"),
        "event": event,
        "logged_by": agents.label(actor),
        "batch_rows": ev.payload.get("rows") if ev is not None and ev.payload else None,
        "model": {"id": model_id, "name": facts.model["name"], "digest": facts.model["digest"]},
    }
    facts.subject = {"kind": "prediction", "id": prediction_id, "name": pred.attrs.get("request_id")}
    facts.subgraph = query.trace(store, prediction_id)
    if event:
        facts.fact_events.setdefault("predictions", set()).add(event)
    from . import decision

    facts.decision = decision.collect(store, facts)
    if facts.decision.get("inputs_event"):
        facts.fact_events.setdefault("prediction_inputs", set()).add(facts.decision["inputs_event"])
    return facts


# ---------------------------------------------------------------------------
# honest figures: per-group statistics, metric comparisons, independent validation

#: metric names where lower is better (the ratio to the best group divides the other way)
_LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "rmse", "brier", "logloss", "fpr", "fnr")


def sig4(x: Any) -> Any:
    """A number rounded to 4 significant digits (other values unchanged)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x == 0 or x != x:
        return x
    return float(f"{x:.4g}")


def wilson(p: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) of a proportion ``p`` over ``n`` rows."""
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _group_statistics(store: Store, metrics: list[dict[str, Any]]) -> None:
    """Add ``n`` (rows, from the metric event's payload), ``ci`` (Wilson 95 % for a
    metric between 0 and 1 with a known n) and, for per-group values, ``ratio_to_best``
    (this group's value over the best group's, for the same metric and dataset)."""
    for m in metrics:
        ev = store.event(m["event"]) if m.get("event") else None
        n = ev.payload.get("n") if ev is not None and ev.payload else None
        m["n"] = n if isinstance(n, int) and n > 0 else None
        v = m.get("value")
        if m["n"] and isinstance(v, (int, float)) and 0 <= v <= 1:
            lo, hi = wilson(float(v), m["n"])
            m["ci"] = {"low": sig4(lo), "high": sig4(hi), "level": 0.95,
                       "method": "Wilson score interval, the metric read as a proportion of n rows"}
        else:
            m["ci"] = None
        m["ratio_to_best"] = None
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for m in metrics:
        if m.get("group") and isinstance(m.get("value"), (int, float)):
            groups.setdefault((m["run"], m["key"], (m.get("dataset") or {}).get("id"), m.get("step")), []).append(m)
    for (_, key, _, _), ms in groups.items():
        lower = any(w in key.lower() for w in _LOWER_IS_BETTER)
        values = [float(x["value"]) for x in ms]
        best = min(values) if lower else max(values)
        for x in ms:
            v = float(x["value"])
            ratio = (best / v if v else None) if lower else (v / best if best else None)
            x["ratio_to_best"] = sig4(ratio) if ratio is not None else None


def _metric_label(m: dict[str, Any]) -> str:
    ds = m.get("dataset") or {}
    where = ds.get("name") or (ds.get("id") or "")[:20] or "no dataset recorded"
    if ds.get("version"):
        where = f"{where}@{ds['version']}"
    return f"{m['key']} on {where}" + (f", group {m['group']}" if m.get("group") else "")


def _metric_changes(store: Store, previous_id: str, metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each metric of this version beside the previous version's value for the same
    metric, dataset name and group, rounded to 4 significant digits. Of each, the value
    MLflow's rule picks (`latest.rank`: greatest step, then time, then value), read per
    (metric, dataset, group) rather than per name: a per-group result and a score on
    another dataset are results of their own, not steps of one series."""
    mine = latest.values_of(((m["key"], (m.get("dataset") or {}).get("name"), m.get("group")), m) for m in metrics)
    found = []  # (of every run that generated the previous version: one rule picks across them all, as for `mine`)
    for run_id in store.generators(previous_id):
        for m in query_rows.metrics_of(store, run_id):
            ds_id = m.pop("dataset")
            node = store.get_node(ds_id) if ds_id else None
            m["dataset"] = {"id": ds_id, "name": node.name if node else None} if ds_id else None
            found.append(((m["key"], node.name if node else None, m.get("group")), m))
    theirs = latest.values_of(found)
    out = []
    for k in sorted(set(mine) | set(theirs), key=lambda t: tuple(str(x) for x in t)):
        a, b = theirs.get(k), mine.get(k)
        va, vb = sig4(a["value"]) if a else None, sig4(b["value"]) if b else None
        if va != vb:
            label = _metric_label(b or a or {"key": k[0]})
            ds_a, ds_b = ((x.get("dataset") or {}).get("id") if x else None for x in (a, b))
            if a and b and ds_a != ds_b:
                # the same name, another version: not a like-for-like comparison, and
                # the reader must not take the change for the model's alone
                label = f"{k[0]} on {k[1] or 'no dataset recorded'} (evaluation data changed: " \
                        f"{_version_text(store, ds_a, k[1])} → {_version_text(store, ds_b, k[1])})" + \
                        (f", group {k[2]}" if k[2] else "")
            out.append({"aspect": "metrics", "key": label, "a": va, "b": vb})
    return out


def _version_text(store: Store, dataset_id: str | None, name: str | None) -> str:
    """``@2`` for a dataset version under ``name``, else its short id."""
    if dataset_id is None:
        return "none"
    number = version_number(store.history(name, kind="dataset"), dataset_id) if name else None
    return f"@{number}" if number is not None else short_id(dataset_id)


#: the keys of a `validation` annotation (a YAML mapping, e.g. from a model card file)
VALIDATION_KEYS = ("validator", "date", "scope", "findings", "outcome")


def _validation(note: dict[str, Any] | None, owner: dict[str, Any] | None, owner_node: Node | None,
                recorder: Node | None = None) -> dict[str, Any] | None:
    """The independent validation recorded as a ``validation`` annotation: its fields,
    who recorded it, and whether the validator is someone other than the model's author.

    The validator's name is typed, so it alone proves nothing: a validation recorded
    from the author's own account (the same agent, the same login on the same host, or
    the same git name or e-mail under another login: ``recorder``) is not independent
    whatever name it gives (``self_recorded``)."""
    if note is None:
        return None
    fields: dict[str, Any] = {k: None for k in VALIDATION_KEYS}
    text = note.get("text") or ""
    import yaml

    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:  # free text: kept as the findings
        parsed = None
    if isinstance(parsed, dict):
        for k in VALIDATION_KEYS:
            if parsed.get(k) is not None:
                fields[k] = str(parsed[k])
    else:
        fields["findings"] = text
    fields["validator"] = fields["validator"] or note.get("author")
    author_names = set()
    if owner:
        author_names |= {str(owner.get("label") or "").lower(), str(owner.get("email") or "").lower()}
    if owner_node is not None:
        author_names |= {str(owner_node.attrs.get(k) or "").lower() for k in ("user", "email", "name")}
    author_names.discard("")
    validator = str(fields["validator"] or "").lower()
    self_recorded = False
    if recorder is not None and owner_node is not None:
        account = (recorder.attrs.get("user"), recorder.attrs.get("host"))
        # the same person under another login: the identity git gives both (a changed
        # LINEAGE_USER or a second account on the author's machine keeps the author's
        # git name and e-mail)
        same_person = any(
            str(recorder.attrs.get(k) or "").strip().lower() == str(owner_node.attrs.get(k) or "").strip().lower() != ""
            for k in ("email", "name"))
        self_recorded = recorder.id == owner_node.id or same_person or (
            account[0] is not None and account == (owner_node.attrs.get("user"), owner_node.attrs.get("host")))
    independent = bool(validator) and validator not in author_names and validator.split("@")[0] not in author_names \
        and not self_recorded
    return {**fields, "recorded_by": note.get("recorded_by") or note.get("author"), "at": note.get("at"),
            "event": note.get("event"), "independent": independent, "self_recorded": self_recorded,
            "complete": all(fields[k] for k in VALIDATION_KEYS)}
