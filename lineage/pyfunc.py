"""``lineage.pyfunc``: load a recorded model behind MLflow's generic ``predict``.

    model = lineage.pyfunc.load_model("runs:/<run_id>/model")   # or "models:/wine/3"
    y = model.predict(X)
"""

from __future__ import annotations

from typing import Any

from .entities import missing_names
from .errors import InvalidInputError


class ModelMetadata(dict[str, Any]):
    """What was recorded of a loaded model (MLflow's ``Model``): its attributes as a
    dict, and MLflow's fields as attributes: ``run_id``, ``model_uuid``,
    ``artifact_path``, ``signature``, `get_input_schema`, `get_output_schema`."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def get_input_schema(self) -> Any:
        """The input columns the model was logged with (`models.Schema`), or None."""
        return _schema_of((self.get("signature") or {}).get("inputs"))

    def get_output_schema(self) -> Any:
        return _schema_of((self.get("signature") or {}).get("outputs"))


def _column(values: Any) -> Any:
    """A column's values: a list, tuple or array as it is; a scalar as one row."""
    return values if isinstance(values, (list, tuple)) or getattr(values, "ndim", None) else [values]


def _schema_of(specs: Any) -> Any:
    from .models import ColSpec, Schema

    if not isinstance(specs, list):
        return None
    return Schema([ColSpec(str(s.get("type")), s.get("name")) for s in specs if isinstance(s, dict)])


class PyFuncModel:
    """A loaded model: ``predict(data)`` calls the estimator's own ``predict``, on the
    columns its logged signature names, in that order (as MLflow enforces a
    signature); ``.id`` is the lineage model id, ``.metadata`` what was recorded."""

    def __init__(self, model: Any, node: Any, run_id: str | None = None) -> None:
        self._model = model
        self.id = node.id
        self.metadata = ModelMetadata(node.attrs)
        self.metadata.update(model_uuid=node.id, run_id=run_id,
                             artifact_path=node.attrs.get("artifact_path"), signature=node.attrs.get("signature"))

    def predict(self, data: Any, params: Any = None) -> Any:
        return self._model.predict(self._as_signed(data))

    def _as_signed(self, data: Any) -> Any:
        """``data`` as the signature's columns: a dict of columns becomes a DataFrame,
        a DataFrame's columns are put in the signature's order (extra ones dropped);
        a missing one is refused, naming it."""
        schema = self.metadata.get_input_schema()
        names = schema.input_names() if schema is not None else []
        if isinstance(data, dict):
            import pandas as pd

            # (a scalar per column is one row, as MLflow reads {"a": 0.0, "b": 1.0})
            data = pd.DataFrame({k: _column(v) for k, v in data.items()})
        if names and hasattr(data, "columns") and list(data.columns) != names:
            missing = [n for n in names if n not in data.columns]
            if missing:
                raise InvalidInputError(f"model input is missing column(s) {', '.join(map(repr, missing))}: "
                                        f"the signature logged with {self.id} takes {', '.join(names)}")
            data = data[names]
        return data

    def unwrap_python_model(self) -> Any:
        """The underlying fitted object."""
        return self._model

    def __repr__(self) -> str:
        return f"<PyFuncModel {self.id}>"


def load_model(model_uri: Any, suppress_warnings: bool = False, dst_path: str | None = None) -> PyFuncModel:
    """The model a URI names (``runs:/<run_id>/model``, ``models:/<name>/<version>``,
    ``models:/<name>@<alias>`` or a lineage reference), read from the store after
    checking its digest. Raises NodeNotFoundError when the URI names no recorded model."""
    from . import fluent
    from .entities import run_hex
    from .models import resolve_model_uri

    lg = fluent.get_lineage()
    node = resolve_model_uri(lg, model_uri)
    runs = lg.generated_by(node)
    return PyFuncModel(lg.load_model(node), node, run_hex(runs[-1].id) if runs else None)


# what MLflow's ``mlflow.pyfunc`` has and this module does not
__getattr__ = missing_names("pyfunc.")


__all__ = ["ModelMetadata", "PyFuncModel", "load_model"]
