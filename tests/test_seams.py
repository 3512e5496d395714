"""Modules share through public, documented names: no module of `lineage` imports
another module's underscore name (``from .labels import _facts``, ``closure._fetch``).

A name a sibling needs gets a public name in the module that owns it (or lives in a
private *module*, httpx style, whose functions are public within it). What is listed
in ALLOWED below is a deliberate exception or known debt, each with its reason; the
test also fails when an entry is no longer needed, so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from lineage.model import Node

PACKAGE = Path(__file__).resolve().parent.parent / "lineage"

# (importing module, owning module, name): why it is allowed. Empty: the store's modules
# and the MLflow-shaped ones (fluent, client, mlflow_filter) now share public names.
ALLOWED: dict[tuple[str, str, str], str] = {}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, root: Path) -> bool:
    rel = Path(*name.split("."))
    return (root / rel).with_suffix(".py").exists() or (root / rel / "__init__.py").exists()


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def borrowed_names(package: Path = PACKAGE) -> set[tuple[str, str, str]]:
    """``(importing module, owning module, name)`` for every underscore name a module
    of lineage takes from another: ``from X import _n`` (absolute or relative) and
    ``alias._n`` where ``alias`` is bound to a lineage module by an import."""
    found: set[tuple[str, str, str]] = set()
    root = package.parent
    for path in sorted(package.rglob("*.py")):
        mod = _module_name(path, root)
        here = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules: dict[str, str] = {}  # local name -> lineage module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.split(".")[0] != package.name:
                    continue
                for alias in node.names:
                    if _is_module(f"{source}.{alias.name}", root):
                        modules[alias.asname or alias.name] = f"{source}.{alias.name}"
                    elif _private(alias.name) and source != mod:
                        found.add((mod, source, alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == package.name and alias.asname:
                        modules[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                    and node.value.id in modules and modules[node.value.id] != mod):
                found.add((mod, modules[node.value.id], node.attr))
    return found


def test_no_module_imports_another_modules_underscore_names() -> None:
    borrowed = borrowed_names()
    new = sorted(borrowed - ALLOWED.keys())
    assert not new, ("give these a public, documented name in the module that owns them "
                     "(or list them in ALLOWED with a reason):\n" + "\n".join(f"{a} takes {c} from {b}" for a, b, c in new))
    stale = sorted(ALLOWED.keys() - borrowed)
    assert not stale, "no longer needed; remove from ALLOWED:\n" + "\n".join(map(str, stale))


def test_the_checker_sees_every_spelling(tmp_path: Path) -> None:
    pkg = tmp_path / "lineage"
    (pkg / "render").mkdir(parents=True)
    for name in ("__init__.py", "model.py", "render/__init__.py", "render/closure.py"):
        (pkg / name).write_text("")
    (pkg / "render" / "labels.py").write_text("def _facts(): ...\n_own = _facts\n")
    (pkg / "render" / "dot.py").write_text(
        "from .labels import _facts, public\nfrom . import closure\nimport lineage.model as m\n"
        "from lineage.render import labels\nclosure._fetch(); m._private(); labels.__doc__\n")
    assert borrowed_names(pkg) == {("lineage.render.dot", "lineage.render.labels", "_facts"),
                                   ("lineage.render.dot", "lineage.render.closure", "_fetch"),
                                   ("lineage.render.dot", "lineage.model", "_private")}


def test_render_and_query_packages_have_no_split_era_shims() -> None:
    import lineage.query
    import lineage.render

    assert not [n for n in vars(lineage.query) if _private(n) and not n.startswith("__")]
    assert not [n for n in vars(lineage.render) if _private(n) and not n.startswith("__")]
    for path in (PACKAGE / "render").glob("*.py"):  # a renderer reads its own modules, not its package
        assert "from .. import render" not in path.read_text(encoding="utf-8"), path.name


# ---------------------------------------------------------------------------
# one definition for each idea


def _run_node(seconds: float) -> Node:
    return Node("run:" + "0" * 31 + "1", "run", "fit", {"status": "finished", "duration_s": seconds, "experiment": "churn"})


def test_a_table_and_a_diagram_say_the_same_facts_about_a_node() -> None:
    from rich.console import Console

    from lineage.query import build_subgraph
    from lineage.render import to_dot
    from lineage.render.labels import node_facts, node_summary
    from lineage.render.tables import nodes_table

    run = _run_node(1.24)
    assert node_facts(run) == ["finished · 1.2 s", "exp churn"]  # one spelling of a duration: "1.2 s"
    assert node_summary(run) == "finished · 1.2 s, exp churn"
    out = Console(width=200, color_system=None, record=True)
    out.print(nodes_table([run]))
    assert "finished · 1.2 s, exp churn" in out.export_text()
    assert "1.2 s" in to_dot(build_subgraph([run], [], run.id, direction="upstream"))
    data = Node("dataset:" + "a" * 64, "dataset", "train", {"rows": 1000, "size": 2048, "path": "data/train.csv"})
    assert node_summary(data) == ", ".join([*node_facts(data), "data/train.csv"])  # a table adds where it is


def test_kinds_and_statuses_are_spelled_once() -> None:
    from lineage.model import ENDED_STATUSES, KINDS, LISTING_ORDER, RUN_STATUSES
    from lineage.query.closure import KIND_RANK
    from lineage.render.style import KIND_ORDER

    assert sorted(LISTING_ORDER) == sorted(KINDS)
    assert sorted(KIND_ORDER) == sorted([*KINDS, "group"]) == sorted(KIND_RANK)
    assert set(ENDED_STATUSES) == set(RUN_STATUSES) - {"running"}
    # the lists the code once spelled out by hand now come from model
    for path in (PACKAGE / "cli.py", PACKAGE / "tracking.py", PACKAGE / "interop" / "openlineage.py",
                 PACKAGE / "interop" / "prov.py", PACKAGE / "query" / "closure.py"):
        source = path.read_text(encoding="utf-8")
        assert '"dataset", "code", "model", "prediction"' not in source, path.name
        assert '"dataset", "code", "environment", "run"' not in source, path.name
        assert '"finished", "failed", "crashed"' not in source, path.name


def test_a_run_ends_with_any_status_the_model_names(tmp_path: Path) -> None:
    import lineage
    from lineage.errors import InvalidInputError
    from lineage.model import ENDED_STATUSES

    lg = lineage.open(tmp_path / "lineage.db")
    try:
        for status in ENDED_STATUSES:
            run = lg.start_run(f"r-{status}")
            run.end(status)
            assert lg.get(run.id).attrs["status"] == status
        with pytest.raises(InvalidInputError, match="unknown run status"):
            lg.start_run("bad").end("paused")
    finally:
        lg.close()


def test_the_query_layer_and_the_cli_draw_no_tables() -> None:
    # presentation is render's: a result's __rich__ and every command call lineage.render.tables
    for path in [*(PACKAGE / "query").glob("*.py"), PACKAGE / "cli.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in imported if m.startswith("rich.table")}, path.name
        built = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and getattr(n.func, "id", getattr(n.func, "attr", None)) == "Table"]
        assert not built, f"{path.name} builds rich tables at lines {built}"
