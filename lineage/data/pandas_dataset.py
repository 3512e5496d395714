"""``lineage.data.pandas_dataset``: a DataFrame as a dataset (MLflow's
``mlflow.data.pandas_dataset``). Imports no pandas: a DataFrame that reaches
`from_pandas` means pandas is loaded already."""

from __future__ import annotations

from typing import Any

from ..entities import missing_names
from ..errors import InvalidInputError
from .dataset import Dataset


class PandasDataset(Dataset):
    """A pandas DataFrame to log as a run's input (``df``; ``targets`` names a column)."""

    def __init__(self, df: Any, *, source: Any = None, targets: str | None = None, name: str | None = None,
                 digest: str | None = None, predictions: str | None = None) -> None:
        super().__init__(df, source=source, targets=targets, name=name, digest=digest, predictions=predictions,
                         kind="pandas")


def from_pandas(df: Any, source: Any = None, targets: str | None = None, name: str | None = None,
                digest: str | None = None, predictions: str | None = None) -> PandasDataset:
    """A dataset of a pandas DataFrame (MLflow's ``mlflow.data.from_pandas``).

    Raises InvalidInputError when ``df`` is not a DataFrame or ``targets`` names no column."""
    if not hasattr(df, "columns") or not hasattr(df, "dtypes"):
        raise InvalidInputError(f"from_pandas needs a pandas DataFrame, got {type(df).__name__}")
    for col, what in ((targets, "targets"), (predictions, "predictions")):
        if col is not None and col not in df.columns:
            raise InvalidInputError(f"{what}={col!r} is not a column of the DataFrame")
    return PandasDataset(df, source=source, targets=targets, name=name, digest=digest, predictions=predictions)



__all__ = ["PandasDataset", "from_pandas"]


__getattr__ = missing_names("data.pandas_dataset.")
