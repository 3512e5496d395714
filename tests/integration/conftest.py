"""Integration tests against the real MLflow, DVC and OpenLineage clients.

They run in an environment of their own (`make integration` builds `.venv-integration`
with the extras); `make test` leaves this folder out. In CI a missing client fails the
run instead of skipping, since `.ci/run` installs them.
"""

from __future__ import annotations

import importlib

import pytest

import os

IN_CI = bool(os.environ.get("CI"))


def require_module(name: str) -> object:
    """Import a client library the test needs; outside CI a missing one skips (saying how
    to get it), in CI it fails."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if IN_CI:
            pytest.fail(f"{name} is not installed, but `make integration` should have installed it")
        pytest.skip(f"{name} is not installed here (run `make integration`)")
