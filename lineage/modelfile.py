"""Models that arrive as files: a pickled or joblib estimator written by any program.

A model file is content-addressed by its bytes (``model:<sha256 of the file>``), so a
file that a later step reads is recognised as the model it is, never as a new
dataset. Recognising a model never runs code: the pickle's opcodes are scanned for
the class it names (`sniff_model_class`). *Describing* it (parameters, features,
importance) needs the object, and unpickling runs code from the file, so
`load_model_file` is only called for files the user named (``lineage run -o``/
``--model``, ``lineage add --model``, ``lineage predict``), and ``load=False``
(``--no-load``) refuses it.
"""

from __future__ import annotations

import io
import os
import pickletools
from pathlib import Path
from typing import Any

from . import hashing
from .errors import InvalidInputError, foreign
from .model import Edge, Node, clean_text, make_id
from .store import Store
from .tracking import describe_model, ensure_agent, project_path

#: top-level packages whose classes are models when a pickle names them first
MODEL_LIBRARIES = ("sklearn", "xgboost", "lightgbm", "catboost", "imblearn", "statsmodels")

#: suffixes worth sniffing (anything else is read only when declared with --model)
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".pck")

#: pickles name their top-level class within the first few opcodes; never scan a
#: whole multi-gigabyte file to find out it is something else
_SCAN_OPCODES = 200

_NOT_CLASSES = ("copyreg", "builtins", "__builtin__", "copy_reg", "_codecs", "collections", "numpy",
                "joblib", "pandas")


def sniff_model_class(path: str | os.PathLike[str]) -> str | None:
    """The ``module.Class`` a pickle (or an uncompressed joblib file) holds at its top,
    when that class comes from a model library (`MODEL_LIBRARIES`); else None.

    Reads opcodes only (`pickletools.genops`), so no code from the file runs. Returns
    None for anything that is not a readable pickle.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            if not head or head[0] != 0x80:  # PROTO: every pickle of protocol >= 2
                return None
            f.seek(0)
            data = io.BytesIO(f.read(1 << 20))
    except OSError:
        return None
    strings: list[str] = []
    memo: dict[int, str] = {}
    try:
        for i, (op, arg, _) in enumerate(pickletools.genops(data)):
            if i > _SCAN_OPCODES:
                return None
            name = op.name
            if name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(str(arg))
            elif name in ("BINPUT", "LONG_BINPUT", "PUT") and strings:
                memo[int(str(arg))] = strings[-1]
            elif name == "MEMOIZE" and strings:
                memo[len(memo)] = strings[-1]
            elif name in ("BINGET", "LONG_BINGET", "GET") and int(str(arg)) in memo:
                strings.append(memo[int(str(arg))])
            elif name in ("GLOBAL", "STACK_GLOBAL", "INST"):
                if name == "STACK_GLOBAL":
                    if len(strings) < 2:
                        return None
                    module, qualname = strings[-2], strings[-1]
                else:
                    module, _, qualname = str(arg).partition(" ")
                top = module.split(".", 1)[0]
                if top in _NOT_CLASSES:
                    continue
                return f"{module}.{qualname}" if top in MODEL_LIBRARIES else None
    except (ValueError, EOFError, IndexError, KeyError, UnicodeDecodeError):  # not a (whole) pickle
        return None
    return None


def load_model_file(path: str | os.PathLike[str]) -> Any:
    """Unpickle a model file (joblib's loader when installed: it reads plain pickles
    too). This RUNS CODE from the file: call it only for files the user named.

    Raises InvalidInputError when the file cannot be loaded.
    """
    try:
        import joblib
    except ImportError:
        joblib = None
    # unpickling runs whatever the pickled classes do, and raises whatever they raise
    # (joblib's own words for a file that is no pickle, "pop from empty list", name
    # nothing the user can act on: the question they answer comes first)
    with foreign(f"cannot load {path} as a model: is it a pickle or joblib file? ({{type}}: {{reason}}; "
                 "or pass --no-load)"):
        if joblib is not None:
            return joblib.load(path)
        import pickle

        with open(path, "rb") as f:
            return pickle.load(f)


def model_file_node(store: Store, path: str | os.PathLike[str], *, name: str | None = None, load: bool = True,
                    obj: Any = None) -> Node:
    """A (not yet stored) model node for a file: content-addressed by the file's bytes.

    With ``load`` the file is unpickled and described as `describe_model` describes a
    logged estimator; without, the class comes from the pickle's opcodes alone.
    Raises InvalidInputError for a missing file, or one that cannot be loaded.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidInputError(f"no such file: {path}")
    fd = hashing.hash_file(p, cache=store.stat_cache)
    if obj is None and load:
        obj = load_model_file(p)
    if obj is not None:
        attrs = describe_model(obj)
    else:
        cls = sniff_model_class(p)
        attrs = {"class": cls or "unknown", "flavor": (cls or "python").split(".", 1)[0], "described": False}
    attrs.update({
        "artifact": f"artifacts/{fd.digest[:2]}/{fd.digest}",
        "size": fd.size,
        "serializer": "joblib" if p.suffix.lower() == ".joblib" else "pickle",
        "path": project_path(store, p),
        "abspath": str(p.resolve()),
    })
    return Node(make_id("model", fd.digest), "model", clean_text(name or project_path(store, p)), attrs)


def record_model_file(store: Store, path: str | os.PathLike[str], *, name: str | None = None, load: bool = True,
                      generated_by: str | None = None, obj: Any = None) -> Node:
    """Record a model file (a copy kept under ``artifacts/``); returns its stored node.

    ``generated_by`` is the run that wrote it. The same bytes give the same node.
    """
    node = model_file_node(store, path, name=name, load=load, obj=obj)
    store.put_artifact(node.id.split(":", 1)[1], source=path)
    with store.transaction():
        agent = ensure_agent(store)
        edges = [Edge(node.id, agent.id, "was_attributed_to")]
        if generated_by is not None:
            edges.insert(0, Edge(node.id, generated_by, "was_generated_by"))
        return store.add_node(node, edges=edges, event_type="model")[0]


def recorded_model(store: Store, path: str | os.PathLike[str]) -> Node | None:
    """The recorded model whose bytes are this file's, or None (content addressing)."""
    fd = hashing.hash_file(path, cache=store.stat_cache)
    node_id = make_id("model", fd.digest)
    return store.get_node(node_id) if store.node_exists(node_id) else None


def looks_like_model(path: str | os.PathLike[str]) -> bool:
    """A file worth recording as a model: a pickle-like suffix and a model class in its opcodes."""
    return str(path).lower().endswith(PICKLE_SUFFIXES) and sniff_model_class(path) is not None
