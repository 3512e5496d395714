"""`AuditReport` and `Inventory`: build them, turn them into JSON, HTML or Markdown.

The JSON document (`to_dict`) is the report; HTML and Markdown are views of it (plus
two pictures drawn from the same facts: the lineage diagram and the importance chart).
Its shape is described by ``schema.json`` next to this file.
"""

from __future__ import annotations

import copy
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import InvalidInputError, RenderError, log
from ..model import REPORT_SUFFIXES, json_document
from ..store import Store
from . import checklist
from .checklist import FAILED, MISSING, NEEDS_PERSON, RECORDED, STANDARDS

REPORT_FORMAT = "lineage-audit"
REPORT_VERSION = 1
SIGN_OFF_NOTE = ("A sign-off is a recorded statement (who and when, kept as a ledger event), "
                 "not a cryptographic signature.")
CITATION_NOTE = ("Articles are cited by number (AIA: Regulation (EU) 2024/1689; IV: its Annex IV; MC: Model Cards; "
                 "DS: Datasheets for Datasets; NIST AI RMF 1.0; SR 11-7; ISO/IEC 42001); the report does not quote them.")


def _version() -> str:
    return __version__


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_STANDARD_NAMES = {**{re.sub(r"[^a-z0-9]", "", k): k for k in STANDARDS}, "annex4": "annex-iv", "modelcards": "model-card"}


def check_standard(standard: str) -> str:
    """``standard`` normalised (``Annex IV``, ``annex_iv``, ``SR 11-7`` are accepted);
    raises InvalidInputError listing the choices."""
    key = _STANDARD_NAMES.get(re.sub(r"[^a-z0-9]", "", str(standard).lower()))
    if key is None:
        raise InvalidInputError(f"unknown standard {standard!r}; expected one of {', '.join(STANDARDS)}")
    return key


# ---------------------------------------------------------------------------
# building


def build_report(store: Store, node_id: str, *, standard: str = "annex-iv", name: str | None = None) -> AuditReport:
    """The audit report of a model or a prediction; a model under ``name`` when it is
    one of its names (the registered name it was asked by), else its own.

    Collects the facts, checks them against the events that recorded them, verifies the
    chain from the last checkpoint, re-hashes the files, and fills the 22-field checklist.
    Raises InvalidInputError for another kind of node or an unknown standard.
    """
    from . import facts as facts_mod
    from . import integrity

    standard = check_standard(standard)
    kind = node_id.split(":", 1)[0]
    if kind == "model":
        facts = facts_mod.collect_model(store, node_id, name)
    elif kind == "prediction":
        facts = facts_mod.collect_prediction(store, node_id)
    else:
        raise InvalidInputError(f"{node_id} is a {kind}; an audit report is about a model or a prediction "
                                f"(for a {kind}, `lineage impact` shows what depends on it)")
    facts.integrity = integrity.check(store, facts)
    items = checklist.evaluate(facts)
    data = _document(store, facts, items, standard)
    _add_serving(store, data)
    full, full_kind = _diagram(store, facts)
    # the page's diagram: the history summarised by role, readable on A4; the full
    # diagram goes to the appendix (screen) and `lineage dag`
    from .diagram import to_svg as role_svg

    integ = facts.integrity
    failed_events = set(integ["facts"]["failed"])
    altered = {x["id"] for x in [*facts.data, *facts.training_runs, *facts.preparation, facts.model]
               if x.get("event") in failed_events}
    stale = {f["id"] for f in integ["files"] if f["status"] in ("changed", "missing", "unreadable")}
    summary = role_svg(data, altered=altered, stale=stale)
    diagram, diagram_kind = (_strip_prolog(summary), "svg") if summary else (full, full_kind)
    from .chart import group_svg, importance_svg

    chart = importance_svg(facts.feature_importance) if facts.subject["kind"] == "model" else None
    slices = group_svg(data["metrics"]) if facts.subject["kind"] == "model" else None
    return AuditReport(data, diagram=diagram, diagram_kind=diagram_kind, chart=chart,
                       full_diagram=full if summary else None, full_diagram_kind=full_kind, slices=slices)


def _document(store: Store, facts: Any, items: list[dict[str, Any]], standard: str) -> dict[str, Any]:
    counts = {s: sum(1 for i in items if i["status"] == s) for s in (RECORDED, NEEDS_PERSON, MISSING, FAILED)}
    sub = facts.subgraph
    lineage = {"root": getattr(sub, "root", None), "nodes": len(sub) if sub is not None else 0,
               "edges": len(sub.edges()) if sub is not None else 0, "counts": dict(sub.counts) if sub is not None else {}}
    m = facts.model
    if facts.subject["kind"] == "model":
        summary = {
            "kind": "model", "id": m["id"], "name": m["name"], "digest": m["digest"], "class": m["class"],
            "created_at": m["created_at"], "created_by": (m.get("owner") or {}).get("label"),
            "version": m["version"], "versions": m["versions"], "status": _status_text(m),
            "training_status": m["training_status"], "signed_off": m["signed_off"],
        }
    else:
        p = facts.prediction
        summary = {
            "kind": "prediction", "id": p["id"], "name": p.get("request_id"), "digest": p.get("input_digest"),
            "class": m["class"], "created_at": p["created_at"], "created_by": p.get("logged_by"),
            "version": m["version"], "versions": m["versions"], "status": _status_text(m),
            "training_status": m["training_status"], "signed_off": m["signed_off"],
        }
    doc: dict[str, Any] = {
        "report": {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "generated_at": _now(),
            "generator": f"lineage {_version()}",
            "standard": standard,
            "standard_title": STANDARDS[standard]["title"],
            "store": str(store.path),
            "notes": [SIGN_OFF_NOTE, CITATION_NOTE],
        },
        "subject": dict(facts.subject),
        "summary": summary,
        "integrity": facts.integrity,
        "completeness": {**counts, "total": len(items), "missing_keys": [i["key"] for i in items if i["status"] == MISSING],
                         "needs_person_keys": [i["key"] for i in items if i["status"] == NEEDS_PERSON]},
        "checklist": items,
        "sections": [{"number": s["number"], "title": s["title"], "fields": [f["key"] for f in s["fields"]]}
                     for s in checklist.arrange(items, standard)],
        "reading_order": checklist.reading_order(standard),
        "model": m,
        "data": facts.data,
        "training_runs": facts.training_runs,
        "preparation": facts.preparation,
        "code": facts.code,
        "environments": facts.environments,
        "hyperparameters": facts.hyperparameters,
        "metrics": facts.metrics,
        "feature_importance": facts.feature_importance,
        "changes": facts.changes,
        "predictions": facts.predictions,
        "later_runs": facts.later_runs,
        "impact": facts.impact,
        "accountability": facts.accountability,
        "annotations": {k: {"text": a["text"], "author": a["author"], "at": a["at"], "event": a["event"],
                            **({"recorded_by": a["recorded_by"]} if a.get("recorded_by") else {})}
                        for k, a in facts.annotations.items()},
        "retention": facts.retention,
        "lineage": lineage,
        "prediction": facts.prediction,
        "decision": facts.decision,
    }
    return json.loads(json.dumps(doc, default=str))  # plain JSON values only (sets, tuples, numpy)


def _add_serving(store: Store, data: dict[str, Any]) -> None:
    """Labels, feature lineage and sensitive columns (`serving`), added to the model
    object; for a prediction, the labels its model held when it was made."""
    from . import serving

    extras = serving.model_extras(store, data["model"]["id"], data["model"]["name"])
    data["model"].update(json.loads(json.dumps(extras, default=str)))
    erased = store.erasure_of(data["model"]["id"])
    if erased is not None:  # an erased model reads "—" everywhere: say why, by whom, when
        data["model"]["erased"] = erased
    if data.get("prediction"):
        from ..query.serving import labels_at_prediction

        data["prediction"]["labels_at_prediction"] = labels_at_prediction(store, data["prediction"]["id"])


def _status_text(m: dict[str, Any]) -> str:
    bits = [f"training run {m['training_status']}" if m.get("training_status") else "no training run recorded"]
    s = m.get("signed_off")
    bits.append(f"signed off by {s['author']} at {checklist.when_text(s['at'])}" if s else "not signed off")
    return "; ".join(bits)


def _diagram(store: Store, facts: Any) -> tuple[str | None, str | None]:
    """The lineage diagram as inline SVG (Graphviz), else the renderer's HTML fallback.

    Bold: the path from the subject to its training data. Marked: nodes whose file
    changed ("stale") or whose recording event failed its check ("tampered").
    """
    sub = facts.subgraph
    if sub is None:
        return None, None
    try:
        from .. import render
    except ImportError as exc:  # a renderer dependency missing here: the report still stands, the log says why
        log.warning("audit report written without its diagram: %s", exc)
        return None, None
    integ = facts.integrity
    marked = {f["id"]: "stale" for f in integ["files"] if f["status"] in ("changed", "missing", "unreadable") and f["id"] in sub}
    failed = set(integ["facts"]["failed"])
    if failed:
        for n in sub.nodes():
            if n.kind != "group" and store.event_of(n.id) in failed:
                marked[n.id] = "tampered"
    highlight = [d["id"] for d in facts.data if d.get("use", d["role"]) == "training" and d["id"] in sub]
    options = {"highlight": highlight, "marked": marked}
    try:
        return _strip_prolog(render.to_svg(sub, **options)), "svg"
    except RenderError as exc:  # no `dot` here: the renderer's HTML view still shows the graph
        log.info("audit diagram drawn as HTML, not SVG: %s", exc)
        try:
            return render.to_html_fragment(sub, **options), "html"
        except RenderError as exc2:  # a report without a diagram beats no report; the log says why
            log.warning("audit report written without its diagram: %s", exc2)
            return None, None


def _strip_prolog(svg: str) -> str:
    from .chart import inline_svg

    return re.sub(r"<!--.*?-->\s*", "", inline_svg(svg), flags=re.S)


# ---------------------------------------------------------------------------
# the report object


class AuditReport:
    """An audit report: ``.to_dict()`` (the JSON document), ``.write(path)`` (``.html``,
    ``.md`` or ``.json`` by suffix), ``.ok`` (integrity) and ``.missing`` (gap keys)."""

    def __init__(self, data: dict[str, Any], *, diagram: str | None = None, diagram_kind: str | None = None,
                 chart: str | None = None, full_diagram: str | None = None, full_diagram_kind: str | None = None,
                 slices: str | None = None) -> None:
        self._data = data
        self.diagram = diagram
        self.diagram_kind = diagram_kind
        self.chart = chart
        self.full_diagram = full_diagram  # every node, for the appendix (None: `diagram` is the full one)
        self.full_diagram_kind = full_diagram_kind
        self.slices = slices  # per-group metrics with their intervals, as SVG

    @property
    def ok(self) -> bool:
        """True when every integrity check passed (facts, chain, files)."""
        return bool(self._data["integrity"]["ok"])

    @property
    def missing(self) -> list[str]:
        """Checklist keys with status ``missing``, in COMPLIANCE.md order."""
        return list(self._data["completeness"]["missing_keys"])

    @property
    def subject(self) -> dict[str, Any]:
        return dict(self._data["subject"])

    @property
    def standard(self) -> str:
        return self._data["report"]["standard"]

    def note_selection(self, text: str) -> None:
        """Say how the audited version was chosen (``audit NAME``: the version labelled
        production, or the newest when none is): ``model.selection`` and a report note."""
        self._data["model"]["selection"] = text
        self._data["report"]["notes"].append(text)

    def item(self, key: str) -> dict[str, Any]:
        """One checklist item by key."""
        for i in self._data["checklist"]:
            if i["key"] == key:
                return copy.deepcopy(i)
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (a deep copy); validates against ``schema.json``."""
        return copy.deepcopy(self._data)

    def to_json(self) -> str:
        return json_document(self._data)

    def to_html(self) -> str:
        from .html import render_report

        return render_report(self)

    def to_markdown(self) -> str:
        from .markdown import render_report

        return render_report(self)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the report; the format comes from the suffix (``.html``, ``.md``, ``.json``).
        Returns the path. Raises InvalidInputError for another suffix."""
        return _write(path, {"html": self.to_html, "md": self.to_markdown, "json": self.to_json}, "report")

    def _repr_html_(self) -> str:
        from .html import render_summary

        return render_summary(self)

    def __repr__(self) -> str:
        c = self._data["completeness"]
        s = self._data["subject"]
        return (f"<AuditReport {s['kind']} {s['name'] or s['id']}: {c['recorded']} recorded, "
                f"{c['needs a person']} need a person, {c['missing']} missing; integrity {'ok' if self.ok else 'FAILED'}>")


def _write(path: str | os.PathLike[str], writers: dict[str, Any], what: str) -> Path:
    p = Path(path).expanduser()
    fmt = REPORT_SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        raise InvalidInputError(f"cannot write a {what} as {p.suffix or 'a file without a suffix'!s}: use .html, .md or .json "
                                f"(for PDF, open the .html in a browser and print it)")
    text = writers[fmt]()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
    except OSError as exc:
        raise InvalidInputError(f"cannot write {p}: {exc.strerror or exc}") from None
    return p


# ---------------------------------------------------------------------------
# the inventory (SR 11-7's model inventory)


def build_inventory(store: Store, *, all_versions: bool = False) -> Inventory:
    """Every model in the store with its owner, data, status and report completeness.

    A model is a name: its newest version is listed, with how many versions the name
    has (``all_versions=True`` lists every version). The chain is verified once (from
    the last checkpoint) for all of them; each listed model's facts are checked
    against their events and its files re-hashed.
    """
    with store.snapshot():  # (one snapshot: the chain verified once holds for every model's check)
        return _build_inventory(store, all_versions=all_versions)


def _build_inventory(store: Store, *, all_versions: bool) -> Inventory:
    from . import facts as facts_mod
    from . import integrity, serving

    chain = store.verify(since_checkpoint=True)
    # (node, the name it is listed under)
    listed: dict[str, tuple[Any, str | None]] = {}
    for node in store.nodes(kind="model"):  # newest first: the first of a name is its latest version
        key = node.id if all_versions or not node.name else node.name
        listed.setdefault(key, (node, node.name))
    histories: dict[str, Any] = {}
    if not all_versions:
        # a registered name is a model too (`register_model` of a version recorded
        # under another name: autolog's, then `log_model(registered_model_name=...)`'s)
        for registered in store.model_names():
            if registered not in listed:
                versions = store.history(registered, kind="model")
                if versions:
                    listed[registered] = (versions[-1], registered)
        # a name means its production version when one is labelled (DESIGN.md §1)
        for key, (node, listed_as) in list(listed.items()):
            holder = store.label_holder(listed_as, serving.PRODUCTION) if listed_as else None
            if holder is not None:
                listed[key] = (store.get_node(holder) or node, listed_as)
    verification = serving.last_verification(store)
    event_checks = integrity.EventChecks(store)  # events the models share are checked once
    items = []
    for node, name in sorted(listed.values(), key=lambda x: (x[1] or "", x[0].created_at or "", x[0].id)):
        facts = facts_mod.collect_model(store, node.id, name)
        facts.integrity = integrity.check(store, facts, chain=chain, checks=event_checks)
        checks = checklist.evaluate(facts)
        m = facts.model
        counts = {s: sum(1 for i in checks if i["status"] == s) for s in (RECORDED, NEEDS_PERSON, MISSING, FAILED)}
        items.append({
            "id": m["id"],
            "name": m["name"],
            "version": m["version"],
            "versions": m["versions"],
            "class": m["class"],
            "created_at": m["created_at"],
            "owner": (m.get("owner") or {}).get("label"),
            "training_data": [{"id": d["id"], "name": d["name"]} for d in facts.data if d.get("use", d["role"]) == "training"],
            "evaluation_data": [{"id": d["id"], "name": d["name"]} for d in facts.data if d.get("use", d["role"]) == "held_out"],
            "training_status": m["training_status"],
            "signed_off": m["signed_off"],
            "status": _status_text(m),
            "predictions": facts.predictions["count"],
            "completeness": {**counts, "total": len(checks)},
            "missing": [i["key"] for i in checks if i["status"] == MISSING],
            "needs_person": [i["key"] for i in checks if i["status"] == NEEDS_PERSON],
            "integrity_ok": facts.integrity["ok"],
            "problems": facts.integrity["problems"],
            **_serving_item(store, node, name, histories, facts, verification, all_versions),
        })
    events, head = store.head()
    doc = {
        "report": {"format": "lineage-inventory", "version": REPORT_VERSION, "generated_at": _now(),
                   "generator": f"lineage {_version()}", "store": str(store.path),
                   "listing": "every version" if all_versions else
                   "of each model name, the version labelled production, else the newest"},
        "chain": {"ok": chain.ok, "verified_from": chain.checked_from, "events": chain.events,
                  "first_bad": chain.first_bad, "problems": list(chain.problems[:10])},
        "head": {"hash": head, "events": events, "command": f"lineage verify --head {head}"},
        "items": items,
    }
    return Inventory(json.loads(json.dumps(doc, default=str)))


def _serving_item(store: Store, node: Any, name: str | None, histories: dict[str, Any], facts: Any,
                  verification: dict[str, Any] | None, all_versions: bool) -> dict[str, Any]:
    """The serving state of ``name`` in the inventory: ``newest`` (version number),
    ``labels`` (label -> version number), ``selected`` (how the listed version was
    chosen), ``serving`` (every version with its predictions and labels; versions
    serving predictions without a label are flagged), the headline metric, and the
    store's last recorded verification."""
    from ..query.serving import model_history
    from . import serving

    if not name:
        return {"newest": 1, "labels": {}, "selected": "newest", "serving": [], "flags": [],
                "headline_metric": serving.headline_metric(facts), "last_verification": verification}
    cached = histories.get(name)
    if cached is None:
        hist = model_history(store, store.history(name, kind="model"), name)
        also = serving.labels_elsewhere(store, hist)
        cached = histories[name] = (hist, serving.unlabelled_counts(store, hist, also))
    hist, unlabelled_by = cached
    number = hist.number(node.id)
    rows, flags = [], []
    for i, v in enumerate(hist.versions, 1):
        p = hist.predictions.get(v.id, {"count": 0, "first_at": None, "last_at": None})
        labels = hist.version_labels(v.id)
        unlabelled = unlabelled_by.get(v.id, 0)
        rows.append({"version": i, "id": v.id, "labels": labels, "predictions": p["count"],
                     "first_prediction_at": p["first_at"], "last_prediction_at": p["last_at"],
                     "unlabelled_predictions": unlabelled})
        if unlabelled:
            flags.append({"version": i, "id": v.id, "flag": "serves predictions without a label",
                          "predictions": unlabelled, "last_prediction_at": p["last_at"]})
    if all_versions:
        selected = f"version {number}"
    elif serving.PRODUCTION in hist.labels:
        selected = f"@{number}, labelled {serving.PRODUCTION}"
    else:
        selected = f"@{number}, the newest: no version is labelled {serving.PRODUCTION}"
    return {"newest": len(hist.versions), "labels": dict(hist.labels), "selected": selected, "serving": rows,
            "flags": flags, "headline_metric": serving.headline_metric(facts), "last_verification": verification}


class Inventory:
    """The model inventory: ``.items`` (one dict per model), ``.to_dict()``
    (``{"items": [...]}`` plus the store's head and chain check) and ``.write(path)``."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    @property
    def items(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._data["items"])

    @property
    def ok(self) -> bool:
        """True when the chain verified and every model's facts and files checked out."""
        return bool(self._data["chain"]["ok"]) and all(i["integrity_ok"] for i in self._data["items"])

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    def to_json(self) -> str:
        return json_document(self._data)

    def to_html(self) -> str:
        from .html import render_inventory

        return render_inventory(self)

    def to_markdown(self) -> str:
        from .inventory_markdown import render_inventory

        return render_inventory(self)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the inventory as ``.html``, ``.md`` or ``.json``; returns the path."""
        return _write(path, {"html": self.to_html, "md": self.to_markdown, "json": self.to_json}, "model inventory")

    def _repr_html_(self) -> str:
        from .html import render_inventory

        return render_inventory(self, fragment=True)

    def __len__(self) -> int:
        return len(self._data["items"])

    def __repr__(self) -> str:
        return f"<Inventory of {len(self)} models; integrity {'ok' if self.ok else 'FAILED'}>"
