"""Interop: bring other tools' history in (MLflow, DVC, OpenLineage, W3C PROV) and hand
the graph out (OpenLineage events, PROV documents, GraphML / JSON).

One module per format: `mlflow_import`, `dvc`, `openlineage`, `prov`, `graph`, and
`bulk` (what every import shares: one all-or-nothing write, idempotent). Each
integration's heavy client is an optional extra; `require` imports it or says which
extra to install. The MLflow tracking-store plugin (route 2 of docs/tracking.md) is `mlflow_plugin` (the
entry points) and `mlflow_store` (the stores).
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import InvalidInputError


class MissingExtraError(InvalidInputError):
    """Raised when an integration's client library is not installed; names the extra."""


def require(module: str, extra: str) -> Any:
    """Import ``module`` (a client library) and return it.

    Raises MissingExtraError saying ``pip install 'lineage-ml[EXTRA]'`` when it is
    missing (or broken: an ImportError inside it counts the same).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"this needs the {module.split('.')[0]} package ({exc}); install it with: pip install 'lineage-ml[{extra}]'"
        ) from None
