"""``lineage.data.numpy_dataset``: arrays as a dataset (MLflow's
``mlflow.data.numpy_dataset``). Imports no numpy: an array that reaches `from_numpy`
means numpy is loaded already."""

from __future__ import annotations

from typing import Any

from ..entities import missing_names
from ..errors import InvalidInputError
from .dataset import Dataset


class NumpyDataset(Dataset):
    """Numpy arrays to log as a run's input: ``features`` and, optionally, ``targets``."""

    def __init__(self, features: Any, *, source: Any = None, targets: Any = None, name: str | None = None,
                 digest: str | None = None) -> None:
        super().__init__(features, source=source, targets=targets, name=name, digest=digest, kind="numpy")


def from_numpy(features: Any, source: Any = None, targets: Any = None, name: str | None = None,
               digest: str | None = None) -> NumpyDataset:
    """A dataset of numpy arrays (MLflow's ``mlflow.data.from_numpy``); the targets, when
    given, are logged as a second dataset next to the features.

    Raises InvalidInputError when ``features`` is not an array."""
    if not hasattr(features, "shape") or not hasattr(features, "dtype"):
        raise InvalidInputError(f"from_numpy needs a numpy array, got {type(features).__name__}")
    if targets is not None and (not hasattr(targets, "shape") or len(targets) != len(features)):
        raise InvalidInputError("targets must be an array with one row per row of features")
    return NumpyDataset(features, source=source, targets=targets, name=name, digest=digest)



__all__ = ["NumpyDataset", "from_numpy"]


__getattr__ = missing_names("data.numpy_dataset.")
