"""Shared fixtures: every store is a real SQLite file in a temporary folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import lineage
from lineage.store import Store

IN_CI = bool(os.environ.get("CI"))


def require_program(name: str) -> str:
    """The path of a program a test needs. Outside CI a missing one skips the test
    (saying why); in CI, where .ci/run installs it, it fails."""
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is not installed, but .ci/run should have installed it")
        pytest.skip(f"{name} is not installed here (CI installs it via .ci/run)")
    return path


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's store or identity."""
    monkeypatch.delenv("LINEAGE_DB", raising=False)
    monkeypatch.delenv("LINEAGE_DURABILITY", raising=False)
    monkeypatch.setenv("LINEAGE_USER", "tester")
    monkeypatch.setenv("LINEAGE_EMAIL", "tester@example.com")


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / ".lineage" / "lineage.db"


@pytest.fixture
def store(store_path: Path) -> Store:
    s = Store(store_path, actor="agent:" + "0" * 64)
    yield s
    s.close()


@pytest.fixture
def lg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_path: Path) -> lineage.Lineage:
    """A Lineage on a fresh store, with the working directory in the temp folder."""
    monkeypatch.chdir(tmp_path)
    opened = lineage.open(store_path)
    yield opened
    opened.close()
