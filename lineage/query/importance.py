"""Insights: which parameters matter for a metric, by a random forest's held-out
permutation importance (scikit-learn and numpy are imported inside the functions)."""

from __future__ import annotations

import math
from typing import Any

from .. import internal
from ..errors import InvalidInputError
from ..store import Store, latest, published
from .closure import chunks, placeholders
from .results import Insights, ParamImportance

#: each run's value of the run-level metric ``?`` (``run, key, value``)
_METRIC_VALUES = latest.values("key = ?")


def _latest_metric(store: Store, metric: str) -> dict[str, float]:
    """Each run's latest value of ``metric``, when it is a finite number (a NaN is
    kept as NULL; an infinity, a diverged loss, says nothing a forest can fit)."""
    return {run: float(v) for run, _, v in store.conn.execute(_METRIC_VALUES, (metric,))
            if v is not None and math.isfinite(v)}


def average_ranks(x: Any) -> Any:
    """Average ranks (ties share the mean of their positions), as scipy's rankdata."""
    import numpy as np

    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def _spearman(x: Any, y: Any) -> float | None:
    import numpy as np

    rx, ry = average_ranks(x), average_ranks(y)
    if np.std(rx) == 0 or np.std(ry) == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def _as_number(text: Any) -> float | None:
    try:
        f = float(text)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def insights(store: Store, metric: str, *, seed: int = 0) -> Insights:
    """Which parameters matter most for ``metric`` across the runs that logged it.

    Fits a random forest (scikit-learn) of the metric's latest value on the runs'
    parameters (numbers as numbers; other values as categories, one column each)
    and reports each parameter's share of the permutation importance measured on
    held-out folds (``Insights.explained`` is the forest's cross-validated R²), plus
    the Spearman rank correlation for numeric parameters, over all the runs.
    Parameters that never vary are left out.

    Parameters
    ----------
    store : Store
        The store to read.
    metric : str
        The metric's key.
    seed : int, default 0
        The forest's seed: the same seed gives the same answer.

    Returns
    -------
    Insights

    Raises
    ------
    InvalidInputError
        When fewer than 3 runs logged the metric.

    Examples
    --------
    >>> from lineage import query
    >>> found = query.insights(store, "accuracy")
    >>> found.runs, [(i.param, i.correlation) for i in found.items]
    (3, [('C', 1.0)])
    """
    import numpy as np

    values = _latest_metric(store, metric)
    if len(values) < 3:
        known = [r[0] for r in store.conn.execute(
            f"SELECT DISTINCT key FROM metrics WHERE grp IS NULL AND {published()} ORDER BY key LIMIT 20")]
        hint = f" (logged metrics: {', '.join(known)})" if known and metric not in known else ""
        raise InvalidInputError(f"insights need at least 3 runs whose latest {metric!r} is a finite number; "
                                f"found {len(values)}{hint}")
    run_ids = sorted(values)
    params: dict[str, dict[str, str]] = {r: {} for r in run_ids}
    for chunk in chunks(run_ids):
        for run, key, value in store.conn.execute(
            f"SELECT run, key, value FROM params WHERE run IN ({placeholders(len(chunk))}) AND {published()} ORDER BY pk",
                chunk):
            params[run][key] = value
    keys = sorted({k for p in params.values() for k in p})
    y = np.array([values[r] for r in run_ids], dtype=float)
    columns: list[Any] = []
    names: list[str] = []
    numeric: dict[str, Any] = {}
    for k in keys:
        raw = [params[r].get(k) for r in run_ids]
        nums = [_as_number(v) for v in raw]
        present = [v for v in raw if v is not None]
        if len(set(present)) + (1 if len(present) < len(raw) else 0) < 2:
            continue  # never varies: it cannot explain anything
        if all(n is not None for n, v in zip(nums, raw) if v is not None):
            col = np.array([np.nan if n is None else n for n in nums], dtype=float)
            fill = np.nanmedian(col) if np.isfinite(col).any() else 0.0
            col = np.where(np.isnan(col), fill, col)
            numeric[k] = col
        else:
            cats = {c: i for i, c in enumerate(sorted({str(v) for v in raw}))}
            col = np.array([cats[str(v)] for v in raw], dtype=float)
        columns.append(col)
        names.append(k)
    if not columns:
        return Insights(metric, len(run_ids), [])
    X = np.column_stack(columns)
    importance, explained = _forest_importance(X, y, seed=seed)
    items = []
    for i, k in enumerate(names):
        corr = _spearman(numeric[k], y) if k in numeric else None
        items.append(ParamImportance(k, round(float(importance[i]), 4), None if corr is None else round(corr, 4)))
    items.sort(key=lambda p: (-p.importance, -abs(p.correlation or 0.0), p.param))
    return Insights(metric, len(run_ids), items, explained=explained)


#: the forest sees at most this many runs (a seeded sample): importances settle long before
_INSIGHTS_SAMPLE = 2000


def _forest_importance(X: Any, y: Any, *, seed: int) -> tuple[Any, float | None]:
    """Each column's share of a random forest's held-out permutation importance, and
    the forest's cross-validated R² (None when the metric never varies).

    Importance is measured on folds the forest did not train on (k-fold, k ≤ 5), as
    the rise in squared error when a column is shuffled: a forest that memorised
    noise would otherwise credit every parameter. When the parameters predict
    nothing (R² ≤ 0) every share is 0.
    """
    import numpy as np

    n = len(y)
    if n < 2 or np.ptp(y) == 0:
        return np.zeros(X.shape[1]), None
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import KFold

    if n > _INSIGHTS_SAMPLE:
        pick = np.random.default_rng(seed).choice(n, _INSIGHTS_SAMPLE, replace=False)
        X, y, n = X[pick], y[pick], _INSIGHTS_SAMPLE
    variance = float(np.var(y))
    rise = np.zeros(X.shape[1])
    sse = 0.0
    for train, test in KFold(n_splits=min(5, n), shuffle=True, random_state=seed).split(X):
        forest = RandomForestRegressor(n_estimators=100 if n <= 500 else 50, random_state=seed,
                                       min_samples_leaf=1 if n < 50 else 3)
        with internal.unrecorded():  # a query's own forest: autolog must not make it a run (a read writes nothing)
            forest.fit(X[train], y[train])
            sse += float(((forest.predict(X[test]) - y[test]) ** 2).sum())
            result = permutation_importance(forest, X[test], y[test], scoring="neg_mean_squared_error",
                                            n_repeats=5, random_state=seed)
        rise += result.importances_mean * len(test)
    explained = 1.0 - sse / (n * variance)
    importance = np.clip(rise / n, 0, None)
    if explained <= 0 or importance.sum() <= 0:
        return np.zeros(X.shape[1]), round(explained, 4)
    return importance / importance.sum(), round(explained, 4)
