"""``lineage.pyfunc``: load a recorded model behind MLflow's generic ``predict``.

    model = lineage.pyfunc.load_model("runs:/<run_id>/model")   # or "models:/wine/3"
    y = model.predict(X)
"""

from __future__ import annotations

from typing import Any

from .entities import missing_names


class PyFuncModel:
    """A loaded model: ``predict(data)`` calls the estimator's own ``predict``;
    ``.id`` is the lineage model id, ``.metadata`` its recorded attributes."""

    def __init__(self, model: Any, node: Any) -> None:
        self._model = model
        self.id = node.id
        self.metadata = dict(node.attrs)
        self.metadata["model_uuid"] = node.id

    def predict(self, data: Any, params: Any = None) -> Any:
        return self._model.predict(data)

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
    from .models import resolve_model_uri

    lg = fluent.get_lineage()
    node = resolve_model_uri(lg, model_uri)
    return PyFuncModel(lg.load_model(node), node)


# what MLflow's ``mlflow.pyfunc`` has and this module does not
__getattr__ = missing_names("pyfunc.")


__all__ = ["PyFuncModel", "load_model"]
