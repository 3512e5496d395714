"""Lineage's own use of scikit-learn, which autolog must not record.

    with internal.unrecorded():
        forest.fit(X, y)        # insights' forest: not a run, not a model, not the user's data

Queries and reports fit and call estimators of their own (`insights`' forests,
permutation importance, a decision record's scores). With ``lineage.autolog()`` on,
those calls reach autolog's patches like a user's; recorded, a read would write runs,
models and datasets into an append-only store, and into the user's active run. The
switch is here, at the bottom of the layers, because the code that sets it (query,
describe, audit) sits below the autolog that reads it.

Per thread: a user's fit in another thread while lineage works is still recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()


@contextmanager
def unrecorded() -> Iterator[None]:
    """Inside the block, this thread's estimator calls are lineage's own: autolog skips them."""
    depth = getattr(_local, "depth", 0)
    _local.depth = depth + 1  # (nested blocks: the outermost one ends the switch)
    try:
        yield
    finally:
        _local.depth = depth


def recording() -> bool:
    """False inside `unrecorded` on this thread."""
    return getattr(_local, "depth", 0) == 0


__all__ = ["recording", "unrecorded"]
