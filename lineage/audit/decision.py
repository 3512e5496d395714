"""Decision records: one prediction's inputs, the rule applied to its score, and the
reasons for it, each with the method that produced it.

Reasons are per-feature contributions to the model's score, largest absolute effect
first:

- **linear models** (an estimator with ``coef_``, alone): exact, ``coefficient ×
  (value − baseline)`` in the model's decision-function units (log-odds for a
  logistic regression). They add up to the score minus the score of the baseline row.
- **anything else** (trees, ensembles, pipelines): a model-agnostic local method, per
  feature replacement: the change in the score when that one feature is set to its
  baseline value, all others kept. It ignores interactions, and the report says so.
  For a pipeline whose last step is linear and whose preprocessing treats each
  feature separately (scaling, one-hot encoding), replacement in decision-function
  units gives the exact linear contributions too.

The baseline is the training data's mean (linear) or median (replacement), mode for
text columns, read from the training dataset's file when it is readable, else from
the inputs kept with the model's logged predictions (the report names which).

A **wide sparse row** (a model of more than `hashing.SPARSE_DENSE_WIDTH` features, a
TF-IDF vocabulary, whose kept row names fewer: only its non-zero features were kept)
is rebuilt as a 1 × width scipy.sparse CSR row, every feature it does not name 0, and
handed to the model as such; never densified. Its baseline is the empty row (every
feature 0), so the reasons are its non-zero features alone: ``coefficient × value``
for a linear model, the change in the score when that feature is set to 0 otherwise.

The model is loaded from the store's artifact only after its bytes are checked
against the digest that names it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
from pathlib import Path
from typing import Any

from .. import internal
from ..errors import InvalidInputError, foreign, log
from ..query import rows as query_rows
from ..store import Store
from ..tracking import feature_names

EXACT_LINEAR = "exact (linear): coefficient × (value − baseline mean), in {units}"
REPLACEMENT = ("replacement (model-agnostic, local): change in {units} when this feature alone is set to its "
               "baseline ({stat}); interactions between features are not attributed")
EXACT_LINEAR_SPARSE = ("exact (linear): coefficient × value, the row's non-zero features against the empty row "
                       "(every feature 0), in {units}")
#: where a wide sparse row's baseline comes from
SPARSE_BASELINE = "zero: the empty row (a feature a sparse row does not name is 0)"
TOP = 10


def rule_of(store: Store, event: int | None) -> dict[str, Any] | None:
    """The decision rule recorded with the predictions of ``event``, or None."""
    ev = store.event(event) if event else None
    if ev is None or ev.payload is None:
        return None
    rule = ev.payload.get("decision")
    return dict(rule) if isinstance(rule, dict) else None


def kept_inputs(store: Store, prediction_id: str) -> tuple[dict[str, Any] | None, str, int | None]:
    """``(inputs, note, event)``: the input values kept for a prediction, or None with
    the reason why they are not shown."""
    got = query_rows.prediction_inputs(store, prediction_id)
    if got is None:
        return None, "input values were not kept (log the predictions with keep_inputs=True, or --keep-inputs)", None
    text, event = got
    if text is None:
        return None, "input values were erased (a redaction of this prediction)", event
    try:
        value = json.loads(text)
    except ValueError:
        return None, "the kept input values cannot be read", event
    return (value if isinstance(value, dict) else None), "", event


def outcome(rule: dict[str, Any] | None, output: Any, score: Any) -> str | None:
    """The decision the rule gives for ``score``, in words; None without a rule."""
    if not rule:
        return None
    t = rule.get("threshold")
    pos, neg = rule.get("positive"), rule.get("negative")
    if isinstance(t, (int, float)) and isinstance(score, (int, float)):
        hit = score >= t
        label = pos if hit else neg
        verdict = f"{label}" if label is not None else ("positive" if hit else "negative")
        return f"score {score:.4g} {'≥' if hit else '<'} threshold {t:g}: {verdict}"
    return None


# ---------------------------------------------------------------------------
# the model and its baseline


def load_model(store: Store, model: dict[str, Any]) -> tuple[Any | None, str]:
    """``(fitted object, note)``: the artifact unpickled after its digest checked; None
    with the reason when it cannot be."""
    art = model.get("artifact")
    if not art:
        return None, "no model artifact was kept"
    path = Path(store.dir) / art
    try:
        blob = path.read_bytes()
    except OSError:
        return None, f"the model file {art} cannot be read"
    if hashlib.sha256(blob).hexdigest() != model.get("digest"):
        return None, "the model file no longer matches its recorded digest, so it is not loaded"
    try:
        # our own artifact, its digest checked above; unpickling runs the classes it names
        with foreign("the model cannot be loaded here ({type}: {reason})"):
            return pickle.loads(blob), ""
    except InvalidInputError as exc:  # a missing library, a class moved: said in the record, not raised
        log.warning("decision record: %s", exc)
        return None, str(exc)


#: the roles of a model's data that are its training data: what the API's `log_input`
#: calls it, then what a step wrapped by `lineage run -i` read
_TRAINING_ROLES = ("training", "input")

#: the training files a baseline is read from
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def _training_frame(data: list[dict[str, Any]], features: list[str]) -> tuple[Any | None, str, str]:
    """``(frame, name, note)``: the first readable training dataset that still holds
    its recorded bytes and has every feature, as a DataFrame, with its name; else
    None, and why none was used when a file was passed over (it changed since)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas ships with the test deps
        return None, "", ""
    from ..hashing import hash_bytes

    note = ""
    for role in _TRAINING_ROLES:
        for d in data:
            loc = d.get("location") or ""
            p = Path(loc)
            if d.get("role") != role or not loc or not p.is_file() or p.suffix.lower() not in _TABLE_SUFFIXES:
                continue
            name = str(d.get("name") or d.get("id"))
            try:
                # read once: the bytes parsed are the bytes checked against the record
                # (not the stat cache: a baseline from other data would skew every reason)
                raw = p.read_bytes()
                if hash_bytes(raw) != str(d.get("id", "")).partition(":")[2]:
                    note = note or f"{name} has changed since it was recorded"
                    continue
                if p.suffix.lower() in (".parquet", ".pq"):
                    frame = pd.read_parquet(io.BytesIO(raw))
                else:
                    frame = pd.read_csv(io.BytesIO(raw), sep="\t" if p.suffix.lower() == ".tsv" else ",")
            except (OSError, ValueError, ImportError):  # unreadable (parse error, no parquet engine)
                continue
            if all(f in frame.columns for f in features):
                return frame, name, ""
    return None, "", note


def baseline(store: Store, model_id: str, data: list[dict[str, Any]], features: list[str],
             stat: str) -> tuple[dict[str, Any], str]:
    """A baseline value per feature (``stat``: mean or median; mode for text) and where
    it came from."""
    import pandas as pd

    frame: Any
    frame, name, note = _training_frame(data, features)
    source = f"training data {name}"
    if frame is None:
        rows = [json.loads(t) for t in query_rows.kept_inputs(store, model_id)]
        frame = pd.DataFrame([r for r in rows if isinstance(r, dict)])
        source = f"the {len(frame):,} kept inputs of this model's predictions ({note or 'no readable training file'})"
    out: dict[str, Any] = {}
    for f in features:
        col = frame[f] if f in frame.columns else pd.Series([], dtype=float)
        num = pd.to_numeric(col, errors="coerce")
        if len(col) and num.notna().all():
            out[f] = float(num.mean() if stat == "mean" else num.median())
        else:
            mode = col.mode()
            out[f] = mode.iloc[0] if len(mode) else None
    return out, f"{stat} of {source}"


# ---------------------------------------------------------------------------
# reasons


def _score_fn(model: Any, output: Any) -> tuple[Any, str]:
    """A function rows -> one score per row, and its units."""
    import numpy as np

    if hasattr(model, "decision_function") and hasattr(model, "classes_") and len(model.classes_) == 2:
        return (lambda X: np.asarray(model.decision_function(X), dtype=float).ravel()), "log-odds (decision function)"
    if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
        # (numpy's scalars as the plain values they hold: numpy 2 writes np.int64(1))
        classes = [c.item() if hasattr(c, "item") else c for c in model.classes_]
        k = classes.index(output) if output in classes else len(classes) - 1
        return (lambda X: np.asarray(model.predict_proba(X), dtype=float)[:, k]), f"probability of class {classes[k]!r}"
    return (lambda X: np.asarray(model.predict(X), dtype=float).ravel()), "predicted value"


def _frame(model: Any, features: list[str], rows: list[dict[str, Any]]) -> Any:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(rows, columns=features)
    if getattr(model, "feature_names_in_", None) is not None:
        return frame
    return frame.to_numpy(dtype=float) if all(np.issubdtype(t, np.number) for t in frame.dtypes) else frame


def model_features(model: Any, recorded: dict[str, Any]) -> list[str] | None:
    """The model's features in column order, named as `log_predictions` named them when
    it kept a row: ``feature_names_in_``, else the recorded ``feature_names`` when there
    are as many as the model reads, else ``x0``, ``x1``, …; None when the model says
    neither its names nor its width (``recorded``: the audit's model facts)."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    width = getattr(model, "n_features_in_", None) or recorded.get("n_features")
    if not isinstance(width, int) or width <= 0:
        return None
    return feature_names(recorded.get("feature_names"), width)


def is_sparse_row(features: list[str] | None, inputs: dict[str, Any]) -> bool:
    """Whether a kept row is a wide sparse row: the model reads more than
    `hashing.SPARSE_DENSE_WIDTH` features and the row names fewer (the rest are 0)."""
    from ..hashing import SPARSE_DENSE_WIDTH

    return features is not None and len(features) > SPARSE_DENSE_WIDTH and len(inputs) < len(features)


def sparse_rows(features: list[str], rows: list[dict[str, Any]]) -> Any:
    """Kept rows as a scipy.sparse CSR matrix, ``len(rows)`` × ``len(features)``: each
    named feature at its column, every other one 0. Raises InvalidInputError for a
    feature the model does not read or a value that is not a number."""
    import numpy as np
    import scipy.sparse as sp

    column = {f: j for j, f in enumerate(features)}
    indptr, indices, data = [0], [], []
    for r in rows:
        unknown = [f for f in r if f not in column]
        if unknown:
            raise InvalidInputError(f"the kept inputs name feature(s) the model does not read: {', '.join(unknown[:5])}")
        for f, v in sorted(r.items(), key=lambda kv: column[kv[0]]):
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise InvalidInputError(f"the kept input {f}={v!r} of a sparse row is not a number")
            indices.append(column[f])
            data.append(float(v))
        indptr.append(len(indices))
    return sp.csr_matrix((np.asarray(data, dtype=float), np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
                         shape=(len(rows), len(features)))


def _linear_row(model: Any, output: Any, units: str) -> tuple[Any, str]:
    """A linear model's coefficients for ``output`` (its class's row when the model has
    a row per class), and the units its contributions are in."""
    import numpy as np

    coef = np.atleast_2d(np.asarray(model.coef_, dtype=float))
    classes = list(getattr(model, "classes_", []))
    row = coef[0] if coef.shape[0] == 1 else coef[classes.index(output) if output in classes else 0]
    return row, (f"decision function of class {output!r}" if coef.shape[0] > 1 else units)


def _sparse_reasons(model: Any, features: list[str], inputs: dict[str, Any], output: Any,
                    linear: bool) -> tuple[list[dict[str, Any]], str, str, float]:
    """``(reasons, method, units, score_at_baseline)`` of a wide sparse row against the
    empty row: one reason per non-zero feature, the model only ever given CSR rows."""
    import numpy as np
    import scipy.sparse as sp

    score, units = _score_fn(model, output)
    x = sparse_rows(features, [inputs])
    base_score = float(score(sp.csr_matrix((1, len(features)), dtype=float))[0])
    named = [features[j] for j in x.indices.tolist()]
    values = x.data.tolist()
    out: list[dict[str, Any]] = []
    if linear:
        row, units = _linear_row(model, output, units)
        for f, j, v in zip(named, x.indices.tolist(), values):
            out.append({"feature": f, "contribution": float(row[j]) * v, "method": "exact (linear)",
                        "value": inputs[f], "baseline": 0.0})
        return out, EXACT_LINEAR_SPARSE.format(units=units), units, base_score
    full = float(score(x)[0])
    k = len(named)
    if not k:  # the empty row itself: nothing to attribute
        return out, REPLACEMENT.format(units=units, stat="0"), units, base_score
    # row i of the k rows scored: the row without its i-th non-zero feature, a block of
    # rows at a time (k rows of k - 1 entries: a long document's square stays bounded)
    data, indices = np.asarray(x.data), np.asarray(x.indices)
    step = max(1, (1 << 20) // k)
    parts = []
    for start in range(0, k, step):
        m = min(step, k - start)
        keep = np.ones((m, k), dtype=bool)
        keep[np.arange(m), start + np.arange(m)] = False
        block = sp.csr_matrix((np.tile(data, (m, 1))[keep], np.tile(indices, (m, 1))[keep],
                               np.arange(m + 1, dtype=np.int64) * (k - 1)), shape=(m, len(features)))
        parts.append(np.asarray(score(block), dtype=float))
    replaced = np.concatenate(parts)
    for f, s in zip(named, replaced):
        out.append({"feature": f, "contribution": full - float(s), "method": "replacement",
                    "value": inputs[f], "baseline": 0.0})
    return out, REPLACEMENT.format(units=units, stat="0"), units, base_score


def _is_plain_linear(model: Any) -> bool:
    coef = getattr(model, "coef_", None)
    return coef is not None and not hasattr(model, "steps") and getattr(coef, "ndim", 1) in (1, 2)


def reasons(store: Store, facts: Any, inputs: dict[str, Any], output: Any) -> dict[str, Any]:
    """The explanation of one decision: ``{reasons, method, units, baseline, baseline_source,
    score_at_baseline, note}``; ``reasons`` is a list of ``{feature, contribution, method,
    value, baseline}``, largest absolute contribution first."""
    empty: dict[str, Any] = {"reasons": [], "method": None, "units": None, "baseline": None,
                             "baseline_source": None, "score_at_baseline": None, "note": ""}
    model, why = load_model(store, facts.model)
    if model is None:
        return {**empty, "note": why}
    linear = _is_plain_linear(model)
    wide = model_features(model, facts.model)
    if is_sparse_row(wide, inputs):
        assert wide is not None
        try:
            with foreign("the model could not score the kept inputs ({type}: {reason})"), internal.unrecorded():
                found, method, units, base_score = _sparse_reasons(model, wide, inputs, output, linear)
        except InvalidInputError as exc:  # the model refuses the row: said in the record, not raised
            log.warning("decision record: %s", exc)
            return {**empty, "note": str(exc)}
        found = [r for r in found if math.isfinite(r["contribution"])]
        found.sort(key=lambda r: (-abs(r["contribution"]), r["feature"]))
        # the baseline of the features the row names: the rest are 0 too, and a million of them say nothing
        return {"reasons": found, "method": method, "units": units, "baseline": dict.fromkeys(inputs, 0.0),
                "baseline_source": SPARSE_BASELINE, "score_at_baseline": base_score, "note": ""}
    names = getattr(model, "feature_names_in_", None)
    features = [str(n) for n in names] if names is not None else list(inputs)
    missing = [f for f in features if f not in inputs]
    if missing:
        return {**empty, "note": f"the kept inputs lack feature(s) {', '.join(missing[:5])}"}
    stat = "mean" if linear else "median"
    base, source = baseline(store, facts.model["id"], facts.data, features, stat)
    try:
        # the model is the user's: whatever its scoring raises becomes one line in the record
        # (unrecorded: re-scoring for a report is no prediction for autolog to log)
        with foreign("the model could not score the kept inputs ({type}: {reason})"), internal.unrecorded():
            score, units = _score_fn(model, output)
            x_frame = _frame(model, features, [inputs])
            base_score = float(score(_frame(model, features, [base]))[0])
            out: list[dict[str, Any]] = []
            if linear:
                row, units = _linear_row(model, output, units)
                method = EXACT_LINEAR.format(units=units)
                for j, f in enumerate(features):
                    c = float(row[j]) * (float(inputs[f]) - float(base[f]))
                    out.append({"feature": f, "contribution": c, "method": "exact (linear)", "value": inputs[f], "baseline": base[f]})
            else:
                method = REPLACEMENT.format(units=units, stat=stat)
                full = float(score(x_frame)[0])
                rows = []
                for f in features:
                    r = dict(inputs)
                    r[f] = base[f]
                    rows.append(r)
                replaced = score(_frame(model, features, rows))
                for f, s in zip(features, replaced):
                    out.append({"feature": f, "contribution": full - float(s), "method": "replacement",
                                "value": inputs[f], "baseline": base[f]})
    except InvalidInputError as exc:  # the model refuses these inputs: said in the record, not raised
        log.warning("decision record: %s", exc)
        return {**empty, "note": str(exc)}
    out = [r for r in out if math.isfinite(r["contribution"])]
    out.sort(key=lambda r: (-abs(r["contribution"]), r["feature"]))
    return {"reasons": out, "method": method, "units": units, "baseline": base, "baseline_source": source,
            "score_at_baseline": base_score, "note": ""}


def collect(store: Store, facts: Any) -> dict[str, Any]:
    """The ``decision`` section of a prediction's report."""
    p = facts.prediction
    inputs, note, inputs_event = kept_inputs(store, p["id"])
    rule = rule_of(store, p.get("event"))
    doc: dict[str, Any] = {
        "inputs": inputs,
        "inputs_note": note or None,
        "inputs_event": inputs_event,
        "output": p.get("output"),
        "score": p.get("score"),
        "rule": rule,
        "rule_note": None if rule else "no decision rule was recorded with this prediction (log_predictions(decision=...))",
        "outcome": outcome(rule, p.get("output"), p.get("score")),
        "reasons": [], "method": None, "units": None, "baseline": None, "baseline_source": None,
        "score_at_baseline": None, "reasons_note": None,
    }
    if inputs is None:
        doc["reasons_note"] = "no reasons: " + note
        return doc
    ex = reasons(store, facts, inputs, p.get("output"))
    doc.update({k: ex[k] for k in ("reasons", "method", "units", "baseline", "baseline_source", "score_at_baseline")})
    doc["reasons_note"] = ("no reasons: " + ex["note"]) if ex["note"] else None
    return json.loads(json.dumps(doc, default=str))


def explain(store: Store, node_id: str) -> dict[str, Any]:
    """What `lineage explain REF` prints. A prediction: ``{subject, model, inputs,
    output, score, rule, outcome, reasons, method, baseline_source, note}``. A model:
    ``{subject, importance: [{feature, importance}], source}``, its recorded feature
    importance. Raises InvalidInputError for another kind of node."""
    from ..errors import InvalidInputError
    from . import facts as facts_mod

    kind = node_id.split(":", 1)[0]
    if kind == "prediction":
        facts = facts_mod.collect_prediction(store, node_id)
        d = facts.decision or {}
        m = facts.model
        return {
            "subject": {"kind": "prediction", "id": node_id, "request_id": facts.prediction["request_id"] if facts.prediction else None},
            "model": {"id": m["id"], "name": m["name"], "version": m["version"], "versions": m["versions"]},
            "inputs": d.get("inputs"), "output": d.get("output"), "score": d.get("score"), "rule": d.get("rule"),
            "outcome": d.get("outcome"), "reasons": d.get("reasons", []), "method": d.get("method"),
            "units": d.get("units"), "baseline_source": d.get("baseline_source"),
            "note": d.get("reasons_note"),
        }
    if kind == "model":
        node = store.get_node(node_id)
        attrs = node.attrs if node is not None else {}
        fi = attrs.get("feature_importance") or {}
        items = [{"feature": k, "importance": float(v)} for k, v in sorted(fi.items(), key=lambda kv: (-abs(float(kv[1])), kv[0]))]
        source = attrs.get("importance_source")
        return {"subject": {"kind": "model", "id": node_id, "name": node.name if node is not None else None},
                "importance": items,
                "source": {"feature_importances_": "the estimator's own feature_importances_ (impurity-based)",
                           "coef_": "normalised |coefficients| of the estimator"}.get(str(source), source),
                "note": None if items else "no feature importance was recorded for this model"}
    raise InvalidInputError(f"{node_id} is a {kind}; `explain` takes a model or a prediction (request:ID)")
