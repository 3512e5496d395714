"""What a fitted model is, told truthfully: its chain of steps, each step's own
parameters, the features it reads and the features its final estimator sees, which
input column each of those comes from, and how much each matters.

scikit-learn's production forms are unwrapped rather than described by their shell:
a `Pipeline` is its steps (its own ``memory``/``steps``/``verbose`` say nothing about
the model), a `ColumnTransformer` / `FeatureUnion` its transformers and their columns,
a `GridSearchCV` its ``best_estimator_``, a `CalibratedClassifierCV` the estimator it
calibrated. Anything else (xgboost, torch, a plain object) keeps its class and, when it
has ``get_params``, its parameters.

Feature importance is native where the final estimator has it (``coef_`` as normalised
|coefficients|, ``feature_importances_``), over the features the final estimator sees,
and summed onto the input columns those come from; otherwise permutation importance on
held-out data (`permutation_importance`), which is over the input columns directly.
Every value is kept with its method.

This module is at the tracking layer: it imports scikit-learn, numpy and pandas only
inside the functions that need them, and holds no SQL.
"""

from __future__ import annotations

import math
import pickle
import sys
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import internal, secrets
from .errors import InvalidInputError, first_line, foreign, log
from .model import Node

#: the estimator chain is cut at this many steps (a stacking of hundreds of models)
MAX_STEPS = 200
#: permutation importance defaults: repeats per column and the seed (reproducible)
PERMUTATION_REPEATS = 5
PERMUTATION_SEED = 0


def qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def plain(value: Any) -> Any:
    """A JSON-friendly stand-in for a parameter value (estimators become their class name)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return plain(value.item())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "get_params"):
        return f"{type(value).__module__}.{type(value).__qualname__}"
    return repr(value)[:200]


def own_params(obj: Any) -> dict[str, Any]:
    """An estimator's own parameters (``deep=False``), secret-looking names masked;
    nested estimators and the step lists of composites appear as class names."""
    if not hasattr(obj, "get_params"):
        return {}
    try:
        with foreign("{type}: {reason}"):
            params = _shallow_params(obj)
    except InvalidInputError as exc:  # a broken estimator's params are not worth failing the log for
        log.debug("%s.get_params failed: %s", type(obj).__name__, exc)
        return {}
    skip = {"steps", "transformers", "transformer_list", "estimators"}
    return {k: secrets.mask_value(k, plain(v)) for k, v in sorted(params.items()) if k not in skip}


#: per class: the names scikit-learn's own ``get_params`` reads (its ``_get_param_names``,
#: an ``inspect.signature`` of ``__init__``), or None for a class with its own get_params
_param_names: weakref.WeakKeyDictionary[type, list[str] | None] = weakref.WeakKeyDictionary()


def _shallow_params(obj: Any) -> Mapping[str, Any]:
    """``obj.get_params(deep=False)``. For a class that keeps scikit-learn's own
    `BaseEstimator.get_params` and ``_get_param_names``, the same dict built from the
    parameter names found once per class: that introspection of ``__init__`` was
    most of describing a model (issue 16: 0.17 ms of log_model's ~2 ms)."""
    cls = type(obj)
    try:
        names = _param_names[cls]
    except KeyError:
        names = _param_names[cls] = _own_param_names(cls)
    except TypeError:  # (a class that cannot be weakly referenced)
        names = None
    if names is None:
        return obj.get_params(deep=False)
    return {k: getattr(obj, k) for k in names}  # (what get_params(deep=False) does, in its order)


def _own_param_names(cls: type) -> list[str] | None:
    """scikit-learn's ``cls._get_param_names()`` when ``cls`` keeps scikit-learn's own
    ``get_params`` and ``_get_param_names`` (so the names depend on the class alone),
    else None. scikit-learn is not imported for it: a class inheriting its
    estimator base exists only once it is."""
    base = getattr(sys.modules.get("sklearn.base"), "BaseEstimator", None)
    if base is None or getattr(cls, "get_params", None) is not base.get_params:
        return None
    names_of = getattr(cls, "_get_param_names", None)
    if getattr(names_of, "__func__", None) is not base._get_param_names.__func__:
        return None
    return list(names_of())  # type: ignore[misc]


# ---------------------------------------------------------------------------
# the shape of composite estimators


def _module(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]


def _is(obj: Any, *names: str) -> bool:
    """``obj`` is a scikit-learn class of one of these names (or a subclass of one),
    tested by name so scikit-learn is not imported for a torch model."""
    return any(c.__name__ in names and c.__module__.startswith("sklearn") for c in type(obj).__mro__)


def unwrap(obj: Any) -> tuple[Any, list[dict[str, Any]]]:
    """``(the fitted model that does the work, the wrappers peeled off it)``: a search's
    ``best_estimator_``, a calibration's first calibrated estimator."""
    wrappers: list[dict[str, Any]] = []
    for _ in range(10):
        best = getattr(obj, "best_estimator_", None)
        if best is not None and hasattr(obj, "cv_results_"):
            w = {"class": qualname(obj), "params": own_params(obj), "role": "search"}
            if getattr(obj, "best_params_", None) is not None:
                w["best_params"] = plain(obj.best_params_)
            if getattr(obj, "best_score_", None) is not None:
                w["best_score"] = plain(float(obj.best_score_))
            wrappers.append(w)
            obj = best
            continue
        calibrated = getattr(obj, "calibrated_classifiers_", None)
        if calibrated and _is(obj, "CalibratedClassifierCV"):
            wrappers.append({"class": qualname(obj), "params": own_params(obj), "role": "calibration",
                             "folds": len(calibrated)})
            obj = calibrated[0].estimator
            continue
        break
    return obj, wrappers


def final_estimator(obj: Any) -> Any:
    """The last step of a (nested) Pipeline; ``obj`` itself otherwise."""
    while _is(obj, "Pipeline") and getattr(obj, "steps", None):
        last = obj.steps[-1][1]
        if last in (None, "passthrough"):
            break
        obj = last
    return obj


def steps_of(obj: Any, path: str = "", out: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The chain of steps, depth first in the order data flows through them: each
    ``{"step": "preprocess/cat/onehot", "class", "params"}``, a ColumnTransformer's
    children with their ``columns``, ensembles' members, the final estimator last."""
    out = [] if out is None else out
    if len(out) >= MAX_STEPS:
        return out
    name = path or type(obj).__name__
    if obj in (None, "drop", "passthrough"):
        out.append({"step": name, "class": str(obj), "params": {}})
        return out
    entry: dict[str, Any] = {"step": name, "class": qualname(obj), "params": own_params(obj)}
    out.append(entry)
    if _is(obj, "Pipeline"):
        for step_name, step in obj.steps:
            steps_of(step, f"{path}/{step_name}" if path else step_name, out)
    elif _is(obj, "ColumnTransformer"):
        fitted = getattr(obj, "transformers_", None) or obj.transformers
        for t_name, trans, cols in fitted:
            before = len(out)
            steps_of(trans, f"{path}/{t_name}" if path else t_name, out)
            if len(out) > before:
                out[before]["columns"] = _columns_text(obj, t_name, cols)
    elif _is(obj, "FeatureUnion"):
        for t_name, trans in obj.transformer_list:
            steps_of(trans, f"{path}/{t_name}" if path else t_name, out)
    else:
        members = getattr(obj, "named_estimators_", None)
        if members is not None and hasattr(members, "items"):
            for m_name, member in members.items():
                steps_of(member, f"{path}/{m_name}" if path else m_name, out)
            final = getattr(obj, "final_estimator_", None)
            if final is not None:
                steps_of(final, f"{path}/final_estimator" if path else "final_estimator", out)
    return out


def _columns_text(ct: Any, name: str, cols: Any) -> list[str]:
    names = _input_names(ct)
    idx = getattr(ct, "_transformer_to_input_indices", {}).get(name)
    if idx is not None and names is not None:
        return [names[i] for i in idx]
    if isinstance(cols, str):
        return [cols]
    try:
        return [str(c) for c in cols]
    except TypeError:
        return [str(cols)]


def _input_names(est: Any) -> list[str] | None:
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    n = getattr(est, "n_features_in_", None)
    return [f"x{i}" for i in range(int(n))] if n is not None else None


# ---------------------------------------------------------------------------
# feature maps: each feature a step puts out -> the input columns it comes from


def feature_sources(est: Any, inputs: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``[(output feature, [input columns it derives from]), ...]`` for a fitted
    transformer (or Pipeline, ColumnTransformer, FeatureUnion) fed ``inputs``, in the
    order it puts them out. A step it cannot see into maps each output to all inputs."""
    inputs = list(inputs)
    if est in (None, "passthrough"):
        return [(c, [c]) for c in inputs]
    if est == "drop":
        return []
    if _is(est, "Pipeline"):
        current = [(c, [c]) for c in inputs]
        for _, step in est.steps:
            if step in (None, "passthrough"):
                continue
            if not hasattr(step, "transform") and step is est.steps[-1][1]:
                break  # the final estimator consumes the features; it puts none out
            names = [n for n, _ in current]
            origin = dict(current)
            current = [(out, _union(origin.get(i, [i]) for i in srcs)) for out, srcs in feature_sources(step, names)]
        return current
    if _is(est, "ColumnTransformer"):
        return _column_transformer(est, inputs)
    if _is(est, "FeatureUnion"):
        parts: list[tuple[str, list[str]]] = []
        prefixes = []
        for name, trans in est.transformer_list:
            if trans == "drop" or trans is None:
                continue
            sub = feature_sources(trans, inputs)
            parts += sub
            prefixes += [name] * len(sub)
        return _rename(est, parts, prefixes, inputs)
    outs = _names_out(est, inputs)
    if outs is None:
        return [(c, [c]) for c in inputs]
    if _is(est, "OneHotEncoder"):
        return _one_hot(est, inputs, outs)
    if _is(est, "OneToOneFeatureMixin") or (len(outs) == len(inputs) and outs == inputs):
        return list(zip(outs, ([c] for c in inputs)))
    mapped = []
    for out in outs:
        direct = [c for c in inputs if out == c]
        if not direct:  # "age^2", "age sex_f", "missingindicator_age": the names it contains
            tokens = set(out.replace("^", " ").replace("*", " ").split())
            direct = [c for c in inputs if c in tokens] or [c for c in inputs if out.endswith("_" + c)]
        mapped.append((out, direct or list(inputs)))
    return mapped


def _union(groups: Any) -> list[str]:
    return list(dict.fromkeys(c for g in groups for c in g))


def _names_out(est: Any, inputs: Sequence[str]) -> list[str] | None:
    if not hasattr(est, "get_feature_names_out"):
        return None
    # third-party transformers raise anything from get_feature_names_out; a name we
    # cannot get is a name we map to all inputs, never a failed log
    try:
        with foreign("{type}: {reason}"):
            return [str(n) for n in est.get_feature_names_out(list(inputs))]
    except InvalidInputError:
        pass
    try:
        with foreign("{type}: {reason}"):
            return [str(n) for n in est.get_feature_names_out()]
    except InvalidInputError as exc:
        log.debug("%s.get_feature_names_out failed: %s", type(est).__name__, exc)
        return None


def _one_hot(est: Any, inputs: Sequence[str], outs: Sequence[str]) -> list[tuple[str, list[str]]]:
    counts = []
    drop = getattr(est, "drop_idx_", None)
    for i, cats in enumerate(getattr(est, "categories_", [])):
        n = len(cats) - (1 if drop is not None and drop[i] is not None else 0)
        counts.append(n)
    if sum(counts) == len(outs) and len(counts) == len(inputs):
        mapped, k = [], 0
        for col, n in zip(inputs, counts):
            mapped += [(outs[k + j], [col]) for j in range(n)]
            k += n
        return mapped
    # infrequent categories and the like: fall back to the "<column>_" prefix
    return [(o, [max((c for c in inputs if o.startswith(c + "_")), key=len, default=inputs[0])]) for o in outs]


def _column_transformer(ct: Any, inputs: Sequence[str]) -> list[tuple[str, list[str]]]:
    names_in = _input_names(ct) or list(inputs)
    index = getattr(ct, "_transformer_to_input_indices", {})
    parts: list[tuple[str, list[str]]] = []
    prefixes: list[str] = []
    for name, trans, cols in getattr(ct, "transformers_", []):
        if trans == "drop":
            continue
        idx = index.get(name)
        if idx is not None:
            sub_inputs = [names_in[i] for i in idx]
        else:
            sub_inputs = _columns_text(ct, name, cols)
        if not sub_inputs:
            continue
        sub = feature_sources(trans, sub_inputs)
        parts += sub
        prefixes += [name] * len(sub)
    return _rename(ct, parts, prefixes, inputs)


def _rename(est: Any, parts: list[tuple[str, list[str]]], prefixes: list[str],
            inputs: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The composite's own output names (``cat__sex_f`` when it prefixes them) zipped
    with its parts' sources; the parts' names prefixed by hand when it cannot say."""
    outs = _names_out(est, inputs)
    if outs is not None and len(outs) == len(parts):
        return [(o, srcs) for o, (_, srcs) in zip(outs, parts)]
    verbose = getattr(est, "verbose_feature_names_out", True)
    return [(f"{p}__{n}" if verbose else n, srcs) for p, (n, srcs) in zip(prefixes, parts)]


# ---------------------------------------------------------------------------
# importance


def native_importance(final: Any) -> tuple[list[float] | None, str | None]:
    """Native importance of a fitted final estimator: ``feature_importances_`` as given,
    ``coef_`` as |coefficients| (averaged over classes) normalised to sum to 1."""
    fi = getattr(final, "feature_importances_", None)
    if fi is not None:
        try:
            return [float(v) for v in fi], "feature_importances_"
        except (TypeError, ValueError):
            return None, None
    coef = getattr(final, "coef_", None)
    if coef is None:
        return None, None
    import numpy as np

    try:
        a = np.atleast_2d(np.asarray(coef, dtype=float))
        if a.ndim == 2 and a.shape[0] == 1:
            # One row (a binary classifier, a regression): the mean over one row is the
            # row itself, exactly; numpy's mean machinery was half the cost (issue 16).
            row = np.abs(a[0])
            total = float(row.sum()) or 1.0
            return [v / total for v in row.tolist()], "coef_"
        c = np.abs(a).mean(axis=0)
    except (TypeError, ValueError):
        return None, None
    total = float(c.sum()) or 1.0
    return [float(v) / total for v in c], "coef_"  # normalised |coef|, comparable across models


def by_source(values: Mapping[str, float], sources: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Feature importances summed onto the input columns they come from (a feature
    built from several columns shares its value equally among them)."""
    out: dict[str, float] = {}
    for feature, value in values.items():
        srcs = list(sources.get(feature) or [feature])
        for s in srcs:
            out[s] = out.get(s, 0.0) + float(value) / len(srcs)
    return {k: round(v, 6) for k, v in sorted(out.items(), key=lambda kv: (-kv[1], kv[0]))}


def permutation(model: Any, X: Any, y: Any, *, n_repeats: int = PERMUTATION_REPEATS,
                seed: int = PERMUTATION_SEED) -> dict[str, Any]:
    """Permutation importance of ``model`` on held-out ``X``/``y`` (scikit-learn's
    `permutation_importance`, the estimator's default score): ``{"values", "std",
    "rows", "n_repeats", "scoring", "baseline"}``, over X's columns.
    Raises InvalidInputError when the model cannot score the data."""
    from sklearn.inspection import permutation_importance

    names = [str(c) for c in X.columns] if hasattr(X, "columns") else [f"x{i}" for i in range(_width(X))]
    # (internal.unrecorded: scoring the model is lineage's work, not predictions autolog should log)
    with foreign("cannot compute permutation importance on this data: {reason}"), internal.unrecorded():
        baseline = float(model.score(X, y))
        result = permutation_importance(model, X, y, n_repeats=n_repeats, random_state=seed)
    return {
        "values": {n: round(float(v), 6) for n, v in zip(names, result.importances_mean)},
        "std": {n: round(float(v), 6) for n, v in zip(names, result.importances_std)},
        "rows": len(y),
        "n_repeats": n_repeats,
        "scoring": "accuracy" if hasattr(model, "predict_proba") or _is(model, "ClassifierMixin") else "r2",
        "baseline": round(baseline, 6),
    }


def _width(X: Any) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 1:
        return int(shape[1])
    return len(X[0]) if len(X) else 0


# ---------------------------------------------------------------------------
# the description


def describe_model(obj: Any) -> dict[str, Any]:
    """The attributes a model node records about a fitted model: ``class``, ``flavor``,
    ``params`` (the final estimator's own), ``steps`` (the chain, for composites),
    ``wrappers`` (a search or calibration around it), ``feature_names`` (what it reads),
    ``features_out`` and ``feature_sources`` (what the final estimator sees and which
    input columns each comes from), ``n_features``, ``classes``, and native importance
    (``feature_importance``, ``importance_source``, ``importance``). Never raises for
    an odd estimator: what cannot be read is left out."""
    cls = type(obj)
    attrs: dict[str, Any] = {"class": f"{cls.__module__}.{cls.__qualname__}"}
    module = _module(obj)
    attrs["flavor"] = module if module in ("sklearn", "xgboost", "lightgbm", "torch") else "python"
    try:
        # reads a third-party estimator's attributes, which may raise anything
        with foreign("{type}: {reason}"):
            _describe_into(obj, attrs)
    except InvalidInputError as exc:  # a description is a courtesy: an estimator we misread still logs
        log.debug("description of %s left partial: %s", attrs["class"], exc)
        attrs.setdefault("params", own_params(obj))
    return attrs


def _describe_into(obj: Any, attrs: dict[str, Any]) -> None:
    inner, wrappers = unwrap(obj)
    final = final_estimator(inner)
    attrs["params"] = own_params(final)
    if wrappers:
        attrs["wrappers"] = wrappers
    composite = final is not obj or _is(obj, "Pipeline", "ColumnTransformer", "FeatureUnion") or \
        getattr(inner, "named_estimators_", None) is not None
    if composite:
        attrs["final_estimator"] = qualname(final)
        attrs["steps"] = steps_of(inner)
    names = _input_names(obj) if getattr(obj, "feature_names_in_", None) is not None else _input_names(inner)
    if names is not None and getattr(obj, "feature_names_in_", None) is None and getattr(inner, "feature_names_in_", None) is None:
        names = None  # only a count is known: say so with n_features
    n_features = getattr(obj, "n_features_in_", None) or getattr(inner, "n_features_in_", None)
    if names is not None:
        attrs["feature_names"] = names
    if n_features is not None:
        attrs["n_features"] = int(n_features)
    inputs = names or ([f"x{i}" for i in range(int(n_features))] if n_features is not None else None)
    sources: list[tuple[str, list[str]]] | None = None
    if inputs is not None and final is not inner and _is(inner, "Pipeline"):
        sources = feature_sources(inner[:-1], inputs)  # what the last step is fed
    elif inputs is not None:
        sources = [(c, [c]) for c in inputs]
    if sources is not None:
        attrs["features_out"] = [o for o, _ in sources]
        attrs["n_features_out"] = len(sources)
        if any(s != [o] for o, s in sources):
            attrs["feature_sources"] = {o: s for o, s in sources}
    importance, method = native_importance(final)
    if importance is None and wrappers and wrappers[-1]["role"] == "calibration":
        importance, method = _calibrated_importance(obj)
    if importance is not None:
        outs = attrs.get("features_out") or []
        labels = outs if len(outs) == len(importance) else [f"x{i}" for i in range(len(importance))]
        values = {str(k): round(float(v), 6) for k, v in zip(labels, importance)}
        attrs["feature_importance"] = values
        attrs["importance_source"] = method
        entry: dict[str, Any] = {"level": "feature", "values": values}
        if attrs.get("feature_sources"):
            entry["by_source"] = by_source(values, attrs["feature_sources"])
        attrs["importance"] = {str(method): entry}
    classes = getattr(obj, "classes_", None)
    if classes is None:
        classes = getattr(final, "classes_", None)
    if classes is not None:
        attrs["classes"] = [plain(c) for c in list(classes)[:100]]


def _calibrated_importance(obj: Any) -> tuple[list[float] | None, str | None]:
    """Native importance averaged over a calibration's folds."""
    rows, method = [], None
    for cc in getattr(obj, "calibrated_classifiers_", []):
        values, method = native_importance(final_estimator(cc.estimator))
        if values is None:
            return None, None
        rows.append(values)
    if not rows or len({len(r) for r in rows}) != 1:
        return None, None
    return [sum(col) / len(rows) for col in zip(*rows)], method


def with_permutation(attrs: dict[str, Any], result: Mapping[str, Any], *, dataset: str | None,
                     target: str | None) -> dict[str, Any]:
    """``attrs`` with a permutation-importance result added under ``importance``; it
    also becomes ``feature_importance`` when the model has no native importance."""
    out = dict(attrs)
    entry = {"level": "input", **{k: v for k, v in result.items()}, "dataset": dataset, "target": target}
    out["importance"] = {**dict(attrs.get("importance") or {}), "permutation": entry}
    if "feature_importance" not in out:
        out["feature_importance"] = dict(result["values"])
        out["importance_source"] = "permutation"
    return out


# ---------------------------------------------------------------------------
# reading recorded things back: a model's pickle, a dataset's file


def load_model(store: Any, node: Node) -> Any:
    """The fitted object a model node's artifact holds (read through
    ``store.artifact_path``, which restores a file a power cut damaged). Raises
    InvalidInputError (one line) when the file is missing or cannot be unpickled here."""
    path = store.artifact_path(node.id.split(":", 1)[1])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot load {node.id} for description: its artifact {path} is "
                                f"unreadable ({exc.strerror or exc})") from None
    # our own artifact, content-addressed by its digest; unpickling runs whatever classes it names
    with foreign(f"cannot load {node.id} for description: its pickle does not load here ({{reason}})"):
        return pickle.loads(data)


def load_frame(node: Node) -> Any:
    """A recorded dataset's file as a pandas DataFrame (CSV, TSV, Parquet, JSON lines).
    Raises InvalidInputError when it has no local file or an unreadable one."""
    import pandas as pd

    a = node.attrs
    path = a.get("abspath") or a.get("path")
    if not path or not Path(str(path)).is_file():
        raise InvalidInputError(f"{node.id} ({node.name}) has no readable local file to compute on")
    p = Path(str(path))
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        if suffix in (".json", ".jsonl"):
            return pd.read_json(p, lines=suffix == ".jsonl")
        return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",")
    except (ValueError, OSError, ImportError) as exc:
        # pandas' parser errors are ValueErrors (ParserError, EmptyDataError, a bad encoding),
        # a missing parquet engine an ImportError; one line says which
        raise InvalidInputError(f"cannot read {p} as a table: {first_line(exc)}") from None


def split_target(frame: Any, target: str) -> tuple[Any, Any]:
    """``(X, y)``: the frame without ``target``, and that column. Raises
    InvalidInputError naming the columns when there is no such column."""
    if target not in frame.columns:
        cols = ", ".join(map(str, list(frame.columns)[:20]))
        raise InvalidInputError(f"no column {target!r} in the data (columns: {cols})")
    return frame.drop(columns=[target]), frame[target]


# ---------------------------------------------------------------------------
# importance computed after logging (`lineage explain MODEL --data REF --target COL`)


def compute_importance(store: Any, model: Node, data: Any, target: str, *,
                       n_repeats: int = PERMUTATION_REPEATS) -> dict[str, Any]:
    """Permutation importance of a recorded model on held-out data, recorded as one
    ledger event (a row per input column, with method, data and target); returns
    ``{"model", "method", "level", "values", "std", "rows", "dataset", "target",
    "baseline", "event"}``. ``data`` is a dataset reference or Node (its file is
    read), or a DataFrame (recorded as a dataset first). Raises InvalidInputError for
    an unloadable model, unreadable data or a missing target column; nothing is
    recorded then."""
    from .model import now_iso
    from .tracking import log_dataset

    if not isinstance(target, str) or not target:
        raise InvalidInputError("target= names the label column of the data")
    fitted = load_model(store, model)
    if hasattr(data, "columns") and not isinstance(data, Node):
        frame = data
        data_node = None
    else:
        data_node = data if isinstance(data, Node) else store.resolve(str(data))
        if data_node.kind != "dataset":
            raise InvalidInputError(f"{data_node.id} is a {data_node.kind}; importance is computed on a dataset")
        frame = load_frame(data_node)
    X, y = split_target(frame, target)
    result = permutation(fitted, X, y, n_repeats=n_repeats)
    at = now_iso()
    with store.transaction():
        if data_node is None:
            data_node = log_dataset(store, frame)
        rows = [(model.id, "permutation", f, "input", v, result["std"].get(f), data_node.id, target, at)
                for f, v in result["values"].items()]
        seq = store.write("importance", {"model": model.id, "method": "permutation", "dataset": data_node.id,
                                         "target": target, "rows": result["rows"], "n_repeats": n_repeats},
                          {"importances": rows})
    return {"model": model.id, "method": "permutation", "level": "input", **result, "dataset": data_node.id,
            "target": target, "event": seq}
