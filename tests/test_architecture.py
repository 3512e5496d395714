"""docs/architecture.md's diagram is drawn from the package's imports and kept current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _generator():  # docs/ is not a package: load the script by path
    spec = importlib.util.spec_from_file_location("make_architecture", DOCS / "make_architecture.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_architecture_diagram_is_current() -> None:
    gen = _generator()
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    assert gen.render() in text, "docs/architecture.md is out of date with the imports: run `make docs`"


def test_the_diagram_shows_every_layer_and_only_downward_eager_imports() -> None:
    gen = _generator()
    layers, edges = gen.dependencies()
    block = gen.render()
    for layer in layers:
        assert f"<b>{'lineage (package root)' if layer == '__init__' else layer}</b>" in block
    # an eager import upward would be a layering bug (tests/test_layers.py says which)
    assert ("store", "tracking") not in edges and ("model", "store") not in edges
