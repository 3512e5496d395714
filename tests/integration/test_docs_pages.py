"""The docs' examples that need an optional package (`<!-- needs: mlflow -->`, `dvc`)
run here, where the packages are installed: the interop page in order, every block
included (tests/test_docs.py runs the rest of it in the quick suite)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require_module, require_program
from test_docs import DOCS, run_page_in_order


@pytest.mark.parametrize("page", ["interop.md"])
def test_the_page_runs_in_order_with_its_optional_examples(page: str, tmp_path: Path) -> None:
    require_module("mlflow")
    require_module("dvc")
    require_program("git")
    run_page_in_order(DOCS / page, tmp_path, optional=False)
