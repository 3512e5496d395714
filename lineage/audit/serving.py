"""What reports and the inventory say about serving state and inputs: the labels a
model version holds, how `audit NAME` chose it, its predictions, and the sensitive
columns that reach it (a fact from feature-level lineage, not a free-text claim).

Kept apart from `facts` so the report's core stays as it is: these are additions to
the ``model`` (and ``prediction``) objects of the JSON report, whose schema allows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import LineageError, log
from ..model import is_mlflow_id
from ..store import Store, latest

PRODUCTION = "production"


def unlabelled_counts(store: Store, hist: Any, also: Sequence[dict[str, Any]] = ()) -> dict[str, int]:
    """``{model id: predictions}`` of the versions in ``hist`` (`ModelHistory`) that
    made predictions while holding no label: served outside the promotion record.
    ``also``: label changes of its versions under their other names (a label held
    there is held)."""
    from ..query.serving import prediction_groups, unlabelled_of

    rows = [*hist.promotions, *also]
    # a version that never held a label made all its predictions without one; the
    # others' are read grouped by write, all in one query (a query per version
    # was 10,000 statements in the benchmark's 1M store's inventory)
    held = {r["model"] for r in rows}
    counts = {m: p["count"] for m, p in hist.predictions.items() if m not in held}
    groups = prediction_groups(store, [m for m in hist.predictions if m in held])
    counts.update((m, u["count"]) for m, u in unlabelled_of(store, groups, rows).items())
    return {m: n for m, n in counts.items() if n}


def labels_elsewhere(store: Store, hist: Any) -> list[dict[str, Any]]:
    """The label changes of the versions in ``hist`` (`ModelHistory` of one name) under
    the other names they have (their own, those they are registered under: as
    `version_names`): a version predicting while it held a label there did not serve
    without one."""
    ids = [v.id for v in hist.versions]
    # (the aliases of all versions at once, not a query per version: an inventory lists many names)
    names = {v.name for v in hist.versions if v.name} | store.alias_names(ids)
    held = set(ids)
    return [r for n in sorted(names - {hist.name}) if not is_mlflow_id(n)
            for r in store.promotion_rows(n) if r["model"] in held]


def model_extras(store: Store, model_id: str, name: str | None = None) -> dict[str, Any]:
    """``{"labels", "name_labels", "label_events", "unlabelled_serving", "other_names",
    "features"}`` for a model version, under ``name`` (the name it is audited under,
    default its own): the labels it holds now, ``{label: version}`` of the name, the
    events that changed them, the versions of the name (itself included) that made
    predictions holding no label, each other name it is registered under with its
    version number and labels there, and its inputs with the sensitive columns
    reaching them (``features.sensitive``: column, where it was marked, allowed)."""
    from ..features import feature_lineage
    from ..query.serving import model_history, version_names

    node = store.get_node(model_id)
    if node is None:
        return {}
    out: dict[str, Any] = {"labels": [], "name_labels": {}}
    names = version_names(store, node, name)
    if names:
        hist = model_history(store, store.history(names[0], kind="model"), names[0])
        others = [model_history(store, store.history(n, kind="model"), n) for n in names[1:]]
        out["labels"] = hist.version_labels(model_id)
        out["name_labels"] = dict(hist.labels)
        out["other_names"] = [{"name": h.name, "version": h.number(model_id), "versions": len(h.versions),
                               "labels": h.version_labels(model_id)} for h in others]
        # the events that changed the names' labels, so an altered one is marked where the labels are shown
        out["label_events"] = sorted({int(p["event"]) for h in (hist, *others) for p in h.promotions})
        # the served model may not be the audited one: a version predicting without a
        # label is said in every report of its name, not only in the inventory (the
        # versions' labels under their other names count as held)
        also = labels_elsewhere(store, hist)
        out["unlabelled_serving"] = sorted(
            ({"version": hist.number(m), "id": m, "predictions": n, "this": m == model_id,
              "last_prediction_at": hist.predictions[m]["last_at"]}
             for m, n in unlabelled_counts(store, hist, also).items()),
            key=lambda v: v["version"] or 0)
    try:
        fl = feature_lineage(store, model_id)
    except LineageError as exc:  # a report must not be lost to a feature map it cannot read: shown as a gap
        log.warning("audit of %s: its feature map could not be read: %s", model_id, exc)
        out["features"] = {"error": f"{type(exc).__name__}: {exc}"}
        return out
    out["features"] = {
        "inputs": [{"column": r["column"], "sources": [s["ref"] for s in r["sources"]], "origins": r["origins"],
                    "importance": r.get("importance", {}), "sensitive": r["sensitive"]} for r in fl.inputs],
        "n_inputs": len(fl.inputs),
        "n_features": len(fl.items),
        "methods": fl.methods,
        "sensitive": [{"column": s["column"], "marked_in": s["marked_in"], "allowed": s["allowed"],
                       "features": s["features"], "allowance": s["allowance"],
                       "confirmed": s.get("confirmed", True)} for s in fl.sensitive],
        "sensitive_ok": fl.ok,
    }
    return out


def headline_metric(facts: Any) -> dict[str, Any] | None:
    """The first overall metric the training run logged, with its value (the one
    ``run.data.metrics`` gives: `latest.rank`, MLflow's rule) and the data that value
    was computed on: ``{"key", "value", "dataset"}``, or None."""
    overall = [m for m in facts.metrics if not m.get("group")]
    if not overall:
        return None
    key = overall[0]["key"]
    chosen = latest.values_of((m["key"], m) for m in overall if m["key"] == key)[key]  # (facts.metrics: in the order logged)
    ds = chosen.get("dataset") or {}
    return {"key": chosen["key"], "value": chosen["value"], "dataset": ds.get("name") or ds.get("id")}


def last_verification(store: Store) -> dict[str, Any] | None:
    """The last recorded `verify --record` checkpoint: ``{"event", "at", "actor",
    "verified_through", "head"}``, or None when the store was never verified on record."""
    cp = store.last_checkpoint()
    if cp is None or cp.payload is None:
        return None
    return {"event": cp.seq, "at": cp.payload.get("at"), "actor": cp.payload.get("actor"),
            "verified_through": cp.payload.get("verified_through"), "head": cp.payload.get("head")}
