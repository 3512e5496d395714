"""``mlflow.artifacts`` for ``import lineage as mlflow``: a run's logged files read
back by URI, as evaluation and reporting scripts do::

    config = mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json")
    folder = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="plots")

A URI is ``runs:/<run_id>/<path>`` (the run's files as it logged them), or the
``file://`` URI or local path of a file (what `get_artifact_uri` returns for a
logged path). The bytes come from the store's content-addressed copies, so what is
read back is what was logged. Nothing is ever written into the working directory
unless asked: without ``dst_path`` a download goes to a new temporary folder, as
MLflow's does.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .entities import FileInfo, missing_names
from .errors import InvalidInputError, NodeNotFoundError
from .model import local_path


def _client(tracking_uri: str | None) -> Any:
    from .client import MlflowClient

    return MlflowClient(tracking_uri)


def _run_uri(artifact_uri: str) -> tuple[str, str] | None:
    """``(run id, path in the run)`` of a ``runs:/<run_id>/<path>`` URI, else None."""
    if not artifact_uri.startswith("runs:"):
        return None
    run_id, _, path = artifact_uri[len("runs:"):].lstrip("/").partition("/")
    if not run_id:
        raise InvalidInputError(f"{artifact_uri!r} names no run: write runs:/<run_id>/<path>")
    return run_id, path.strip("/")


def _local_file(artifact_uri: str) -> Path:
    """The file a ``file://`` URI or a plain path names."""
    if artifact_uri.startswith("models:"):
        raise InvalidInputError(f"{artifact_uri}: a registered model is read with lineage.pyfunc.load_model "
                                "(or sklearn.load_model), not as files")
    path = local_path(artifact_uri)
    if path is None:
        raise InvalidInputError(f"{artifact_uri}: only runs:/ and file:// artifact URIs (or local paths) are "
                                f"read here, not {urlparse(artifact_uri).scheme}:")
    if not path.exists():
        raise NodeNotFoundError(artifact_uri, "no such file")
    return path


def _where(artifact_uri: str | None, run_id: str | None, artifact_path: str | None) -> tuple[str, str] | Path:
    """What the arguments name: a run's path ``(run id, path)``, or a local file."""
    if (artifact_uri is None) == (run_id is None):
        raise InvalidInputError("give either artifact_uri or run_id (with artifact_path), not both and not neither")
    if artifact_uri is None:
        return str(run_id), (artifact_path or "").strip("/")
    if artifact_path is not None:
        raise InvalidInputError("artifact_path goes with run_id; an artifact_uri names its path itself")
    return _run_uri(str(artifact_uri)) or _local_file(str(artifact_uri))


def download_artifacts(artifact_uri: str | None = None, run_id: str | None = None, artifact_path: str | None = None,
                       dst_path: str | os.PathLike[str] | None = None, tracking_uri: str | None = None) -> str:
    """Copy a run's artifact (a file or a folder; its whole output when the path is
    empty) to ``dst_path`` (default: a new temporary folder); returns the local path.
    Raises NodeNotFoundError when the run logged nothing there."""
    where = _where(artifact_uri, run_id, artifact_path)
    dst = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="lineage-artifacts-"))
    if isinstance(where, Path):
        dst.mkdir(parents=True, exist_ok=True)
        target = dst / where.name
        if where.is_dir():
            shutil.copytree(where, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(where, target)
        return str(target)
    return str(_client(tracking_uri).download_artifacts(where[0], where[1], str(dst)))


def list_artifacts(artifact_uri: str | None = None, run_id: str | None = None, artifact_path: str | None = None,
                   tracking_uri: str | None = None) -> list[FileInfo]:
    """The files and folders directly under a run's path (``FileInfo``: ``.path``,
    ``.is_dir``, ``.file_size``)."""
    where = _where(artifact_uri, run_id, artifact_path)
    if isinstance(where, Path):
        raise InvalidInputError(f"{artifact_uri}: list a run's artifacts with runs:/<run_id>/<path> or run_id=")
    return list(_client(tracking_uri).list_artifacts(where[0], where[1] or None))


def _read(artifact_uri: str) -> bytes:
    """The bytes of the one file ``artifact_uri`` names."""
    with tempfile.TemporaryDirectory(prefix="lineage-artifacts-") as tmp:
        got = Path(download_artifacts(artifact_uri, dst_path=tmp))
        if got.is_dir():
            raise InvalidInputError(f"{artifact_uri} is a folder of artifacts, not one file")
        return got.read_bytes()


def load_text(artifact_uri: str) -> str:
    """The text of a logged file (``log_text``'s, say)."""
    return _read(artifact_uri).decode("utf-8")


def load_dict(artifact_uri: str) -> dict[str, Any]:
    """A logged JSON file (``log_dict``'s) as a dict; a ``.yaml``/``.yml`` one too,
    as ``log_dict`` writes those names in YAML."""
    import yaml

    text = _read(artifact_uri).decode("utf-8")
    try:
        yaml_named = artifact_uri.lower().endswith((".yaml", ".yml"))
        loaded = yaml.safe_load(text) if yaml_named else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"{artifact_uri} holds no readable dict: {' '.join(str(exc).split())}") from None
    if not isinstance(loaded, dict):
        raise InvalidInputError(f"{artifact_uri} holds a {type(loaded).__name__}, not a dict")
    return loaded


def load_image(artifact_uri: str) -> Any:
    """A logged image (``log_image``'s, ``log_figure``'s) as a ``PIL.Image``."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(_read(artifact_uri)))
    image.load()
    return image


__getattr__ = missing_names("artifacts.")

__all__ = ["download_artifacts", "list_artifacts", "load_dict", "load_image", "load_text"]
