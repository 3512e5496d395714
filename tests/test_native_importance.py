"""`native_importance`'s one-row shortcut (issue 16) gives exactly the numbers the
general path (|coef| averaged over rows, normalised) gives."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.linear_model import LinearRegression, LogisticRegression

from lineage.describe import native_importance


def _general(coef: Any) -> list[float]:
    c = np.abs(np.atleast_2d(np.asarray(coef, dtype=float))).mean(axis=0)
    total = float(c.sum()) or 1.0
    return [float(v) / total for v in c]


class _Fitted:
    def __init__(self, coef: Any) -> None:
        self.coef_ = coef


_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=300, deadline=None)
@given(st.one_of(hnp.arrays(np.float64, st.tuples(st.just(1), st.integers(0, 12)), elements=_floats),
                 hnp.arrays(np.float64, st.integers(0, 12), elements=_floats),
                 hnp.arrays(np.float32, st.tuples(st.just(1), st.integers(1, 5)), elements=st.floats(width=32)),
                 st.lists(st.integers(-5, 5), min_size=1, max_size=6)))
def test_one_row_coefficients_give_the_general_answer(coef: Any) -> None:
    with np.errstate(all="ignore"):  # (huge or infinite coefficients overflow as they always did)
        values, method = native_importance(_Fitted(coef))
        expected = _general(coef)
    assert method == "coef_"
    assert values is not None and len(values) == len(expected)
    assert all((a == b and str(a) == str(b)) or (a != a and b != b) for a, b in zip(values, expected))
    assert all(type(v) is float for v in values)


def test_fitted_models_give_the_general_answer() -> None:
    X = np.arange(40, dtype=float).reshape(20, 2)
    y = np.array([0, 1] * 10)
    for model in (LogisticRegression(C=2.0, max_iter=50).fit(X, y), LinearRegression().fit(X, y.astype(float)),
                  LogisticRegression(max_iter=200).fit(X, np.arange(20) % 3)):
        values, method = native_importance(model)
        assert (values, method) == (_general(model.coef_), "coef_")
