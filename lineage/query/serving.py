"""Serving state: which version of a model name holds which label, how its labels
changed, what each version has predicted, and which label a version held when a
prediction was made.

All of it is indexed lookups: the promotions of one name (``promotions_label``), the
predictions of given model ids grouped by model (``predictions_model``), never a scan
of the prediction log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import InvalidInputError
from ..model import Node, is_mlflow_id, parse_ref, version_number
from ..store import Store, event_numbers, published
from .closure import chunks


def prediction_counts(store: Store, model_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{model id: {"count", "first_at", "last_at"}}`` for the given model versions
    (those with no predictions are left out). One grouped query per 500 ids, on the
    ``model`` index."""
    out: dict[str, dict[str, Any]] = {}
    for chunk in chunks(list(dict.fromkeys(model_ids)), 500):
        marks = ", ".join("?" * len(chunk))
        sql = (f"SELECT model, COUNT(*), MIN(created_at), MAX(created_at) FROM predictions "
               f"WHERE model IN ({marks}) AND {published()} GROUP BY model")
        for model, n, first, last in store.conn.execute(sql, chunk):
            out[model] = {"count": n, "first_at": first, "last_at": last}
    return out


def _holders(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """``{label: model}`` after replaying promotion rows in order."""
    held: dict[str, str] = {}
    for r in rows:
        if r["action"] == "promote":
            held[r["label"]] = r["model"]
        elif held.get(r["label"]) == r["model"]:
            del held[r["label"]]
    return held


def _holding(rows: Sequence[dict[str, Any]]) -> set[str]:
    """The model versions holding some label after replaying promotion rows in order,
    of one name or of several (each name's labels are its own: ``production`` of one
    name is not moved by ``production`` of another)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_name.setdefault(r["name"], []).append(r)
    return {m for named in by_name.values() for m in _holders(named).values()}


def version_names(store: Store, node: Node, asked: str | None = None) -> list[str]:
    """The names a model version is recorded under: its own, then each name it was
    registered under besides (the same fitted model logged twice, by autolog and by
    ``log_model(registered_model_name=...)``, is one version with two names), MLflow's
    own ids left out; ``asked`` first when it is one of them."""
    names = [n for n in dict.fromkeys((node.name, *store.aliases(node.id))) if n and not is_mlflow_id(n)]
    if asked in names:
        names.remove(asked)
        names.insert(0, asked)
    return names


def name_asked(store: Store, ref: str, node: Node) -> str | None:
    """The name reference text ``ref`` gives the model version ``node`` when the
    version has that name (`version_names`: its own or one it was registered under),
    else None: ``churn`` and ``churn@2`` give ``churn``, an id none. Hex text is a
    name only when it found the model by that name (`bad`, `2024`)."""
    if node.kind != "model":
        return None
    try:
        r = parse_ref(ref)
    except ValueError:
        return None
    if r.name is None or r.request is not None:
        return None
    return r.name if r.name in version_names(store, node) else None


def labels_held(store: Store, node: Node, names: Sequence[str]) -> list[str]:
    """The labels model version ``node`` holds now under each of its ``names``
    (`version_names`): as they are under the first, ``NAME@label`` under the others."""
    held: list[str] = []
    for i, name in enumerate(names):
        held += sorted(k if i == 0 else f"{name}@{k}" for k, v in store.labels_of(name).items() if v == node.id)
    return held


def _not_after(at: str | None, made: str | None) -> bool:
    """Whether a label change recorded at ``at`` took effect by ``made``, a
    prediction's own time. A change whose time cannot be read counts (event order
    alone then decides)."""
    if not at or not made:
        return True
    if len(at) == len(made) and at.endswith("Z") and made.endswith("Z"):  # both now_iso(): text orders as time
        return at <= made
    try:
        return datetime.fromisoformat(at.replace("Z", "+00:00")) <= datetime.fromisoformat(made.replace("Z", "+00:00"))
    except (TypeError, ValueError):  # (unreadable, or one naive and one aware)
        return True


def _in_effect(rows: Sequence[dict[str, Any]], event: int, made: str | None) -> list[dict[str, Any]]:
    """The label changes in effect for a prediction recorded by ledger event ``event``
    at its own time ``made``: recorded before it, and not made after it. A prediction
    logger writes up to ``max_delay`` seconds after the prediction was made, so a
    label moved in that window is recorded first yet came later."""
    return [r for r in rows if r["event"] < event and _not_after(r["at"], made)]


def labels_at_prediction(store: Store, prediction_id: str) -> list[str]:
    """The labels the prediction's model version held when the prediction was made
    (label changes recorded by earlier ledger events than the prediction's, and not
    made after the prediction's own time).
    Raises InvalidInputError when ``prediction_id`` is not a prediction."""
    row = store.conn.execute(f"SELECT model, event, created_at FROM predictions WHERE id = ? AND {published()}",
                             (prediction_id,)).fetchone()
    if row is None:
        raise InvalidInputError(f"{prediction_id} is not a recorded prediction")
    model_id, event = row[0], event_numbers(store, [row[1]])[row[1]]  # a bulk row: its publishing event
    node = store.get_node(model_id)
    names = version_names(store, node) if node is not None else []
    held = []
    for i, name in enumerate(names):  # (a label held under another name the version has: ``NAME@label``)
        before = _in_effect(store.promotion_rows(name), event, row[2])
        held += sorted(label if i == 0 else f"{name}@{label}" for label, holder in _holders(before).items()
                       if holder == model_id)
    return held


#: a model version's predictions written by one write: (``event`` as stored, the first
#: ``created_at``, how many)
PredictionGroup = tuple[Any, "str | None", int]


def prediction_groups(store: Store, model_ids: Sequence[str]) -> dict[str, list[PredictionGroup]]:
    """``{model id: [PredictionGroup]}``: the given versions' predictions grouped by
    the write that recorded them (versions with none left out). One grouped query
    per 500 ids, on the ``model`` index: for the versions of a name at once, where a
    query per version was 10,000 statements in an inventory of 50 names."""
    out: dict[str, list[PredictionGroup]] = {}
    for chunk in chunks(list(dict.fromkeys(model_ids)), 500):
        marks = ", ".join("?" * len(chunk))
        sql = (f"SELECT model, event, MIN(created_at), COUNT(*) FROM predictions "
               f"WHERE model IN ({marks}) AND {published()} GROUP BY model, event")
        for model, event, first, n in store.conn.execute(sql, chunk):
            out.setdefault(model, []).append((event, first, n))
    return out


def unlabelled_predictions(store: Store, model_id: str, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Predictions a model version made while it held no label: ``{"count", "last_event"}``.

    ``rows`` are its name's promotion rows (`Store.promotion_rows`); see `unlabelled_of`."""
    return unlabelled_of(store, prediction_groups(store, [model_id]), rows).get(model_id, {"count": 0, "last_event": None})


def unlabelled_of(store: Store, groups: Mapping[str, Sequence[PredictionGroup]],
                  rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`unlabelled_predictions` of each model of ``groups`` (`prediction_groups` of
    versions of one name, whose promotion rows ``rows`` are, with those of the other
    names a version holds labels under). A version that never
    held a label made all of its predictions without one: `prediction_counts` answers
    for it without grouping its rows by write.

    Each write's predictions are placed against the label changes before it, by event
    number: exact, where timestamps within one millisecond would not be. Only a write
    some of whose predictions were made before a change it follows (a logger's delayed
    write) is split by the predictions' own times. The bulk writes' events are looked
    up once for all the models."""
    seqs = event_numbers(store, {g[0] for gs in groups.values() for g in gs})  # a bulk write's rows: its publishing event
    out: dict[str, dict[str, Any]] = {}
    for model_id, grouped in groups.items():
        changes = [r for r in rows if r["model"] == model_id]
        count, last = 0, None
        for event, raw, first, n in sorted((seqs[e], e, t, n) for e, t, n in grouped if seqs[e] is not None):
            if not changes:
                unheld = n
            else:
                prior = [r for r in rows if r["event"] < event]
                if all(_not_after(r["at"], first) for r in prior):
                    by_time = [(first, n)]
                else:  # a delayed write: place each prediction time on its own
                    by_time = store.conn.execute(
                        "SELECT created_at, COUNT(*) FROM predictions WHERE event = ? AND model = ? GROUP BY created_at",
                        (raw, model_id)).fetchall()
                unheld = sum(k for made, k in by_time if model_id not in _holding(_in_effect(prior, event, made)))
            if unheld:
                count += unheld
                last = event
        out[model_id] = {"count": count, "last_event": last}
    return out


@dataclass
class ModelHistory:
    """The versions of a model name beside the changes of its labels.

    ``versions``: the nodes, oldest first; ``labels``: ``{label: version number}`` held
    now; ``promotions``: every label change, oldest first, with version numbers."""

    name: str
    versions: list[Node]
    promotions: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def version_labels(self, node_id: str) -> list[str]:
        number = self.number(node_id)
        return sorted(k for k, v in self.labels.items() if v == number)

    def number(self, node_id: str) -> int | None:
        return version_number(self.versions, node_id)

    def to_dict(self) -> dict[str, Any]:
        """``{"items": [node + version, labels, predictions], "promotions": [...],
        "labels": {label: version}}`` (DESIGN.md §5's history shape, plus labels)."""
        items = []
        for i, n in enumerate(self.versions, 1):
            d = n.to_dict()
            d["version"] = i
            if n.kind == "model":
                d["labels"] = self.version_labels(n.id)
                d["predictions"] = self.predictions.get(n.id, {"count": 0, "first_at": None, "last_at": None})
            items.append(d)
        return {"items": items, "promotions": list(self.promotions), "labels": dict(self.labels)}


def model_history(store: Store, versions: Sequence[Node], name: str | None = None) -> ModelHistory:
    """`ModelHistory` of recorded versions (as `Store.history` returns them) under
    ``name``: the name they were looked up by, which for a registered name (an
    alias) is not the versions' own (default: the first version's name)."""
    name = name or (versions[0].name if versions else "")
    hist = ModelHistory(name or "", list(versions))
    if not versions or versions[0].kind != "model" or not name:
        return hist
    number = {n.id: i for i, n in enumerate(versions, 1)}
    rows = store.promotion_rows(name)
    hist.promotions = [{**r, "version": number.get(r["model"])} for r in rows]
    hist.labels = {label: number[m] for label, m in _holders(rows).items() if m in number}
    hist.predictions = prediction_counts(store, [n.id for n in versions])
    return hist
