"""``lineage.data.dataset``: the base of the dataset objects (MLflow's
``mlflow.data.dataset.Dataset``)."""

from __future__ import annotations

import os
from typing import Any

from ..entities import missing_names
from ..errors import InvalidInputError


class Dataset:
    """Data to log as a run's input: a DataFrame (``from_pandas``) or arrays (``from_numpy``)."""

    def __init__(self, data: Any, *, source: Any = None, targets: Any = None, name: str | None = None,
                 digest: str | None = None, predictions: Any = None, kind: str) -> None:
        self._data = data
        self._source = source
        self._targets = targets
        self._name = name
        self._digest = digest
        self.predictions = predictions
        self._kind = kind
        self._hashed: tuple[str, dict[str, Any]] | None = None

    def _hash(self) -> tuple[str, dict[str, Any]]:
        if self._hashed is None:
            from .. import hashing

            try:
                self._hashed = hashing.hash_data(self._data)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"cannot hash {type(self._data).__name__} as a dataset: {exc}") from None
        return self._hashed

    @property
    def data(self) -> Any:
        """The DataFrame (``from_pandas``) or the features array (``from_numpy``)."""
        return self._data

    @property
    def df(self) -> Any:
        return self._data

    @property
    def features(self) -> Any:
        return self._data

    @property
    def target_data(self) -> Any:
        """The targets array of ``from_numpy`` (``targets`` names a column for ``from_pandas``)."""
        return self._targets if self._kind == "numpy" else None

    @property
    def name(self) -> str:
        return self._name or "dataset"

    @property
    def digest(self) -> str:
        return self._digest or self._hash()[0][:8]

    @property
    def full_digest(self) -> str:
        """The SHA-256 of the content (lineage's dataset identity)."""
        return self._hash()[0]

    @property
    def source(self) -> str | None:
        if self._source is None:
            return None
        return os.fspath(self._source) if isinstance(self._source, os.PathLike) else str(self._source)

    @property
    def targets(self) -> Any:
        return self._targets if self._kind == "pandas" else ("targets" if self._targets is not None else None)

    @property
    def schema(self) -> dict[str, Any]:
        attrs = self._hash()[1]
        if attrs.get("dtypes"):
            return {"mlflow_colspec": [{"name": k, "type": v} for k, v in attrs["dtypes"].items()]}
        return {"mlflow_tensorspec": {"features": {"dtype": attrs.get("dtype"), "shape": attrs.get("shape")}}}

    @property
    def profile(self) -> dict[str, Any]:
        attrs = self._hash()[1]
        shape = attrs.get("shape") or []
        elements = 1
        for d in shape:
            elements *= int(d)
        return {"num_rows": attrs.get("rows"), "num_elements": elements}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": self.digest, "source": self.source, "source_type": "local",
                "schema": self.schema, "profile": self.profile}

    def __repr__(self) -> str:
        return f"<Dataset {self.name!r} digest={self.digest}>"


__all__ = ["Dataset"]


__getattr__ = missing_names("data.dataset.")
