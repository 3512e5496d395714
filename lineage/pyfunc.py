"""``lineage.pyfunc``: load a recorded model behind MLflow's generic ``predict``, and
log a custom one (a `PythonModel` with its artifacts).

    model = lineage.pyfunc.load_model("runs:/<run_id>/model")   # or "models:/wine/3"
    y = model.predict(X)
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .entities import ModelInfo, missing_names
from .errors import InvalidInputError
from .model import local_path


class PythonModelContext:
    """What `PythonModel.load_context` and ``predict`` are given: ``artifacts``
    (``{name: local path}`` of the files logged with the model) and ``model_config``."""

    def __init__(self, artifacts: Mapping[str, str], model_config: Mapping[str, Any] | None = None) -> None:
        self._artifacts = dict(artifacts)
        self._model_config = dict(model_config or {})

    @property
    def artifacts(self) -> dict[str, str]:
        return self._artifacts

    @property
    def model_config(self) -> dict[str, Any]:
        return self._model_config


class PythonModel:
    """MLflow's base class for a custom model: override ``predict(context,
    model_input, params=None)``, and ``load_context(context)`` to read the artifacts."""

    def load_context(self, context: PythonModelContext) -> None:
        """Read what ``predict`` needs from ``context.artifacts`` (once, at load)."""

    def predict(self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError("a PythonModel defines predict(context, model_input, params=None)")


class PythonModelBundle:
    """What is recorded for a custom model: the `PythonModel` object, serialized by
    value with cloudpickle where installed (a class defined in the training script
    loads in another process, as MLflow's does), the bytes of each artifact file, and
    the model config. Its digest covers all of them: changing an artifact is a new
    model version. Loaded, ``predict`` writes the artifacts to a private folder,
    calls ``load_context`` once, then the model's ``predict``."""

    #: scorers hand it tabular input as a DataFrame, as MLflow's pyfunc does
    takes_frame = True

    def __init__(self, python_model: Any, artifacts: Mapping[str, tuple[str, bytes]],
                 model_config: Mapping[str, Any] | None = None) -> None:
        self.python_model = python_model
        self.artifacts = dict(sorted(artifacts.items()))
        self.model_config = dict(model_config or {})
        self._context: PythonModelContext | None = None

    def __getstate__(self) -> dict[str, Any]:
        try:
            import cloudpickle
        except ImportError:  # pragma: no cover - scikit-learn's joblib brings it
            by_value = pickle.dumps(self.python_model, protocol=5)
        else:
            by_value = cloudpickle.dumps(self.python_model, protocol=5)
        return {"python_model": by_value, "artifacts": self.artifacts, "model_config": self.model_config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.python_model = pickle.loads(state["python_model"])  # (cloudpickle's output is plain pickle)
        self.artifacts = state["artifacts"]
        self.model_config = state["model_config"]
        self._context = None

    def context(self) -> PythonModelContext:
        """The model's context, its artifacts written out on first use."""
        if self._context is None:
            folder = Path(tempfile.mkdtemp(prefix="lineage-pyfunc-"))
            paths = {}
            for i, (key, (filename, blob)) in enumerate(self.artifacts.items()):
                # a folder per artifact, numbered: a key is a name, not a path ("data/x",
                # "..": the bytes stay inside the folder), and the file keeps its own
                # name (as logged, reduced to a name: a stored bundle is read as data)
                where = folder / str(i)
                where.mkdir()
                base = Path(str(filename)).name
                target = where / (base if base not in ("", ".", "..") else "artifact")
                target.write_bytes(blob)
                paths[key] = str(target)
            self._context = PythonModelContext(paths, self.model_config)
            if hasattr(self.python_model, "load_context"):
                self.python_model.load_context(self._context)
        return self._context

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return self.python_model.predict(self.context(), model_input, params=params)


def _artifact_bytes(artifacts: Mapping[str, Any] | None) -> dict[str, tuple[str, bytes]]:
    """``{name: (file name, bytes)}`` of ``log_model``'s ``artifacts`` (local files)."""
    out = {}
    for key, where in (artifacts or {}).items():
        text = os.fspath(where) if isinstance(where, os.PathLike) else str(where)
        local = local_path(text)
        if local is None:
            raise InvalidInputError(f"artifact {key!r}: {text} is not a local file; download it, then log the file")
        path = local.expanduser()
        if path.is_dir():
            raise InvalidInputError(f"artifact {key!r}: {text} is a folder; pass its files one by one, "
                                    "or a single archive of it")
        if not path.is_file():
            raise InvalidInputError(f"artifact {key!r}: no such file: {text}")
        out[str(key)] = (path.name, path.read_bytes())
    return out


def log_model(artifact_path: str | None = None, *, name: str | None = None, python_model: Any = None,
              artifacts: Mapping[str, Any] | None = None, model_config: Mapping[str, Any] | None = None,
              signature: Any = None, input_example: Any = None, registered_model_name: str | None = None,
              **kwargs: Any) -> ModelInfo:
    """Log a custom model (MLflow's ``pyfunc.log_model(name, python_model=,
    artifacts=)``) to the active run: the `PythonModel` object and its artifact files,
    recorded as one content-addressed model (`PythonModelBundle`);
    ``pyfunc.load_model`` gives it back behind ``predict``. Other MLflow arguments
    (pip requirements, code paths) are accepted and ignored: the environment is
    captured with the run. A model given as code (a path to a ``.py`` file) is
    refused: log the object."""
    from . import fluent

    if python_model is None:
        raise InvalidInputError("pyfunc.log_model needs python_model= (a PythonModel object); "
                                "log scikit-learn estimators with sklearn.log_model")
    if isinstance(python_model, (str, os.PathLike)):
        raise InvalidInputError("lineage records a PythonModel object, not models from code "
                                f"({os.fspath(python_model)!r}): import it and pass the object")
    if not callable(getattr(python_model, "predict", None)):
        raise InvalidInputError(f"python_model must have predict(context, model_input), "
                                f"got {type(python_model).__name__}")
    bundle = PythonModelBundle(python_model, _artifact_bytes(artifacts), model_config)
    cls = type(python_model)
    path = name or artifact_path or "model"
    return fluent.log_model(bundle, name=path, signature=signature, input_example=input_example,
                            registered_model_name=registered_model_name,
                            attrs={"class": f"{cls.__module__}.{cls.__qualname__}", "flavor": "python_function",
                                   "artifacts": sorted(bundle.artifacts)})


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
    from .models import Schema

    if not isinstance(specs, list):
        return None
    return Schema.from_recorded([s for s in specs if isinstance(s, dict)])


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
        if isinstance(self._model, PythonModelBundle):
            return self._model.predict(self._as_signed(data), params)
        return self._model.predict(self._as_signed(data))

    def _as_signed(self, data: Any) -> Any:
        """``data`` as the signature's columns: a dict of columns becomes a DataFrame,
        a DataFrame's columns are put in the signature's order (extra ones dropped, an
        optional one absent left out); a missing required one is refused, naming it."""
        schema = self.metadata.get_input_schema()
        names = schema.input_names() if schema is not None else []
        if isinstance(data, dict):
            import pandas as pd

            # (a scalar per column is one row, as MLflow reads {"a": 0.0, "b": 1.0})
            data = pd.DataFrame({k: _column(v) for k, v in data.items()})
        if names and hasattr(data, "columns") and list(data.columns) != names:
            assert schema is not None  # (names come from it)
            missing = [n for n in schema.required_input_names() if n not in data.columns]
            if missing:
                raise InvalidInputError(f"model input is missing column(s) {', '.join(map(repr, missing))}: "
                                        f"the signature logged with {self.id} takes {', '.join(names)}")
            data = data[[n for n in names if n in data.columns]]
        return data

    def unwrap_python_model(self) -> Any:
        """The underlying fitted object (a custom model's `PythonModel`)."""
        return self._model.python_model if isinstance(self._model, PythonModelBundle) else self._model

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


__all__ = ["ModelMetadata", "PyFuncModel", "PythonModel", "PythonModelBundle", "PythonModelContext", "load_model",
           "log_model"]
