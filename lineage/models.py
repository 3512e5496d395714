"""``lineage.models``: MLflow's ``mlflow.models`` in short: `infer_signature`, and the
model URIs (``runs:/<run_id>/model``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``)
that ``load_model`` takes.

A signature logged with a model (``log_model(..., signature=sig)``) is recorded in the
model node's attributes (``signature``: input and output columns and types), where
the audit report and ``lineage show`` read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from .entities import missing_names
from .errors import InvalidInputError, NodeNotFoundError
from .evaluation import EvaluationResult, evaluate
from .promotion import STAGE_LABELS

#: a stage's name in a ``models:/NAME/STAGE`` URI (any case) -> the label that holds it
_STAGE_LABELS = {stage.lower(): label for stage, label in STAGE_LABELS.items()}

if TYPE_CHECKING:  # pragma: no cover
    from .api import Lineage
    from .model import Node

_NUMPY_TYPES = {"f8": "double", "f4": "float", "i8": "long", "i4": "integer", "b1": "boolean", "O": "string",
                "U": "string", "S": "binary"}


def _type_name(dtype: Any) -> str:
    text = str(getattr(dtype, "str", dtype)).lstrip("<>|=")
    if text in _NUMPY_TYPES:
        return _NUMPY_TYPES[text]
    for key, name in (("float64", "double"), ("float32", "float"), ("int64", "long"), ("int32", "integer"),
                      ("bool", "boolean"), ("object", "string"), ("str", "string"), ("datetime", "datetime")):
        if key in str(dtype):
            return name
    return _NUMPY_TYPES.get(text[:1], str(dtype))


class DataType(str, Enum):
    """MLflow's column types (``mlflow.types.DataType``): ``DataType.double`` or the
    text ``"double"`` in a `ColSpec`."""

    boolean = "boolean"
    integer = "integer"
    long = "long"
    float = "float"
    double = "double"
    string = "string"
    binary = "binary"
    datetime = "datetime"


@dataclass
class ColSpec:
    """One column of a schema: its type (text or a `DataType`), name, and whether a
    row may leave it out (MLflow's ``required``; ``optional`` is its older spelling)."""

    type: str
    name: str | None = None
    optional: bool | None = None
    required: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.type, Enum):
            self.type = str(self.type.value)
        if self.optional:
            self.required = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.name is not None:
            out["name"] = self.name
        if not self.required:
            out["required"] = False
        return out


@dataclass
class Schema:
    """The columns (or the tensor) a model takes or returns."""

    inputs: list[ColSpec] = field(default_factory=list)
    shape: list[int] | None = None

    def to_dict(self) -> list[dict[str, Any]]:
        if self.shape is not None and self.inputs:
            return [{"type": "tensor", "tensor-spec": {"dtype": self.inputs[0].type, "shape": self.shape}}]
        return [c.to_dict() for c in self.inputs]

    def input_names(self) -> list[str]:
        return [c.name for c in self.inputs if c.name is not None]

    def required_input_names(self) -> list[str]:
        """The named columns a row must have (MLflow's ``required``)."""
        return [c.name for c in self.inputs if c.name is not None and c.required]

    def input_types(self) -> list[str]:
        return [c.type for c in self.inputs]

    @classmethod
    def from_recorded(cls, specs: Any) -> Schema:
        """The schema as a model node records it (`to_dict`'s list, or its JSON)."""
        if isinstance(specs, str):
            specs = json.loads(specs)
        cols: list[ColSpec] = []
        for s in specs or ():
            if s.get("type") == "tensor":  # one tensor: its dtype and shape
                spec = s.get("tensor-spec") or {}
                return cls([ColSpec(str(spec.get("dtype")))], shape=list(spec.get("shape") or []))
            cols.append(ColSpec(str(s.get("type")), s.get("name"), required=s.get("required", True) is not False))
        return cls(cols)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


@dataclass
class ModelSignature:
    """A model's input and output schema (MLflow's ``ModelSignature``)."""

    inputs: Schema
    outputs: Schema | None = None
    params: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs.to_json(), "outputs": self.outputs.to_json() if self.outputs else None}

    @classmethod
    def from_recorded(cls, recorded: Any) -> ModelSignature | None:
        """The signature a model node records (``attrs["signature"]``), or None."""
        if not isinstance(recorded, dict) or not recorded.get("inputs"):
            return None
        outputs = recorded.get("outputs")
        return cls(Schema.from_recorded(recorded["inputs"]), Schema.from_recorded(outputs) if outputs else None)


def _schema(data: Any) -> Schema:
    if data is None:
        return Schema()
    if hasattr(data, "columns") and hasattr(data, "dtypes"):  # DataFrame
        return Schema([ColSpec(_type_name(t), str(c)) for c, t in zip(data.columns, data.dtypes)])
    if hasattr(data, "dtype") and hasattr(data, "name") and hasattr(data, "to_numpy"):  # Series
        return Schema([ColSpec(_type_name(data.dtype), None if data.name is None else str(data.name))])
    if hasattr(data, "dtype") and hasattr(data, "shape"):  # ndarray
        return Schema([ColSpec(_type_name(data.dtype))], shape=[-1, *[int(d) for d in data.shape[1:]]])
    if isinstance(data, dict):
        return Schema([ColSpec(_type_name(type(v).__name__), str(k)) for k, v in data.items()])
    if isinstance(data, (list, tuple)):
        return Schema([ColSpec("string" if data and isinstance(data[0], str) else "double")])
    raise InvalidInputError(f"cannot infer a schema from {type(data).__name__}; pass a DataFrame or an array")


def infer_signature(model_input: Any = None, model_output: Any = None, params: Any = None) -> ModelSignature:
    """The signature of a model from an example of its input and output (MLflow's
    ``infer_signature``). Raises InvalidInputError for data of an unknown type."""
    return ModelSignature(_schema(model_input), _schema(model_output) if model_output is not None else None, params)


def signature_attrs(signature: Any, input_example: Any = None) -> dict[str, Any]:
    """What a model node records of a signature (ours or MLflow's) and input example."""
    out: dict[str, Any] = {}
    if signature is not None:
        if isinstance(signature, ModelSignature):
            out["signature"] = {"inputs": signature.inputs.to_dict(),
                                "outputs": signature.outputs.to_dict() if signature.outputs else None}
        elif hasattr(signature, "to_dict"):
            d = signature.to_dict()
            out["signature"] = {k: (json.loads(v) if isinstance(v, str) else v) for k, v in d.items() if k in ("inputs", "outputs")}
        else:
            raise InvalidInputError(f"signature must come from infer_signature, got {type(signature).__name__}")
    if input_example is not None:
        out["input_example"] = {"schema": _schema(input_example).to_dict()}
    return out


# ---------------------------------------------------------------------------
# model URIs


def resolve_model_uri(lg: Lineage, model_uri: Any) -> Node:
    """The model node a model URI names in ``lg``'s store: ``runs:/<run_id>/<artifact_path>``,
    ``models:/<name>/<version>``, ``models:/<name>/latest``, ``models:/<name>@<alias>``,
    ``models:/<name>/Production`` (or ``Staging``), or any lineage reference (``model:…``, a name, ``name@N``).

    Raises NodeNotFoundError when nothing matches, InvalidInputError for a URI of
    another shape or a node that is not a model."""
    from .model import Node

    if isinstance(model_uri, Node):
        node = model_uri
    else:
        uri = str(model_uri or "").strip()
        if not uri:
            raise InvalidInputError("a model URI is needed, e.g. runs:/<run_id>/model or models:/<name>/<version>")
        if uri.startswith("runs:/"):
            node = _model_of_run(lg, uri)
        elif uri.startswith("models:/"):
            body = uri[len("models:/"):].strip("/")
            name, _, version = body.partition("/")
            if name.startswith("model:") and not version:
                ref = name  # MLflow 3's models:/<model_id>, the id being lineage's
            elif "@" in name and not version:
                ref = f"model:{name}"  # an alias: a promotion label, NAME@LABEL
            elif not version or version == "latest":
                ref = f"model:{name}"
            elif version.isdigit():
                ref = f"model:{name}@{version}"
            elif version.lower() in _STAGE_LABELS:
                # MLflow 2's stage URIs: the version holding the stage's label
                # (`transition_model_version_stage` puts it)
                ref = f"model:{name}@{_STAGE_LABELS[version.lower()]}"
            else:
                raise InvalidInputError(f"{uri!r}: the version must be a number, 'latest', Staging, Production or @alias")
            try:
                node = lg.get(ref)
            except NodeNotFoundError:
                raise NodeNotFoundError(uri, "no registered model version matches it") from None
        else:
            node = lg.get(uri)
    if node.kind != "model":
        raise InvalidInputError(f"{model_uri!r} names a {node.kind}, not a model")
    return node


def _model_of_run(lg: Lineage, uri: str) -> Node:
    from .entities import find_run

    body = uri[len("runs:/"):].strip("/")
    run_id, _, path = body.partition("/")
    try:
        run = find_run(lg.get, run_id)
    except NodeNotFoundError:
        raise NodeNotFoundError(uri, "no run has that id") from None
    # (where the run logged each: the role of its generation, else, in older records,
    # the path the model node was first logged at, or its name)
    models = [(role or m.attrs.get("artifact_path"), m) for rel, role, m in lg.run_links(run)
              if rel == "was_generated_by" and m.kind == "model"]
    path = path.strip("/")
    for where, m in reversed(models):
        if not path or where == path or m.name == path:
            return m
    names = ", ".join(sorted({str(where or m.name) for where, m in models})) or "none"
    raise NodeNotFoundError(uri, f"run {run_id} logged no model at {path!r} (its models: {names})")


__all__ = ["ColSpec", "EvaluationResult", "ModelSignature", "Schema", "evaluate", "infer_signature", "resolve_model_uri"]


__getattr__ = missing_names("models.")
