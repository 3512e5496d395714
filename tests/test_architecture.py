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


def test_the_layer_table_agrees_with_the_layer_order_the_tests_check() -> None:
    # the prose table of ranks is hand-written: it must say what tests/test_layers.py enforces
    import re

    from test_layers import LAYERS

    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    placed: dict[str, tuple[int, int]] = {}
    for rank, names, what in re.findall(r"^\| (\d+(?:–\d+)?) \| ([^|]+) \| ([^|]+) \|", text, re.MULTILINE):
        lo, _, hi = rank.partition("–")
        for name in re.findall(r"`([^`]+)`", names):
            placed["__init__" if name == "lineage" else name] = (int(lo), int(hi or lo))
        for name in re.findall(r"`([^`]+)`", what):  # modules named in a layer's description
            if name in LAYERS:
                placed.setdefault(name, (int(lo), int(hi or lo)))
    assert placed, "docs/architecture.md has no layer table"
    wrong = {name: (LAYERS.get(name), span) for name, span in placed.items()
             if name not in LAYERS or not span[0] <= LAYERS[name] <= span[1]}
    assert not wrong, f"docs/architecture.md places these at other ranks than tests/test_layers.py: {wrong}"
    assert set(LAYERS) <= set(placed), f"missing from the table: {sorted(set(LAYERS) - set(placed))}"
