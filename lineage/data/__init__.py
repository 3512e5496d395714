"""``lineage.data``: MLflow's ``mlflow.data`` dataset objects, content-hashed.

    ds = lineage.data.from_pandas(df, source="data/wine.csv", targets="quality", name="wine")
    lineage.log_input(ds, context="training")

A dataset object carries ``name``, ``digest`` (the first 8 hex digits of lineage's
SHA-256 of the content), ``source``, ``targets``, ``schema`` and ``profile``, as
MLflow's do; `log_input` records the full content hash, so the same rows give the same
dataset node whoever logs them. Importing this module imports neither numpy nor pandas.
"""

from __future__ import annotations

# The submodules are MLflow's too (``mlflow.data.pandas_dataset.PandasDataset``), so
# ``import lineage.data.pandas_dataset`` works where a script imports them by path.
from ..entities import missing_names
from . import dataset, numpy_dataset, pandas_dataset
from .dataset import Dataset
from .numpy_dataset import NumpyDataset, from_numpy
from .pandas_dataset import PandasDataset, from_pandas

__all__ = ["Dataset", "NumpyDataset", "PandasDataset", "dataset", "from_numpy", "from_pandas", "numpy_dataset",
           "pandas_dataset"]


__getattr__ = missing_names("data.")
