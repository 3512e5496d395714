"""The architecture, checked: layers only look down (DESIGN.md §3), SQL lives in
the store and query packages, `lineage.__all__` is the public surface, and ``import
lineage`` stays light. Imports are read with `ast`, so nothing here runs the code."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import lineage

PACKAGE = Path(lineage.__file__).parent

# rank of each layer: a module may import (at module level) only ranks <= its own.
# `model` and `errors` import nothing of ours; everything may import them.
LAYERS: dict[str, int] = {
    "_version": 0,  # `__version__`, so no layer imports the package root for it
    "model": 0,
    "signing": 1,
    "errors": 0,
    "fswatch": 0,  # inotify through the C library: imports nothing of ours
    "internal": 0,  # the "lineage's own fit, not recorded" switch: set in query/describe/audit, read by autolog
    "secrets": 1,  # the one secret detector: every layer that stores text uses it
    "hashing": 2,
    "store": 3,
    "capture": 4,
    "capture_cache": 4,
    "tracking": 5,
    "describe": 5,  # model description and feature maps (tracking's level)
    "promotion": 5,  # promotion labels and sensitive-column statements (tracking's level)
    "names": 5,  # experiments and registered models as records: created and tagged (tracking's level)
    # the write paths that grew out of tracking.py (DESIGN.md §3's tracking/ package)
    "modelfile": 5,
    "predfiles": 5,
    "predlog": 5,
    "supervise": 5,
    "query": 6,
    "features": 6,  # feature-level lineage: a query outside the package, so networkx stays unloaded
    "render": 7,
    "audit": 8,
    "interop": 9,
    "api": 10,
    "fluent": 11,
    "sklearn": 11,
    # the MLflow surface (`import lineage as mlflow`): beside the fluent API
    "entities": 11,
    "mlflow_filter": 11,
    "data": 11,
    "types": 11,  # `mlflow.types`: the schema classes of a hand-written signature
    "models": 11,
    "evaluation": 11,  # `mlflow.evaluate`: the default evaluator's classic metrics
    "pyfunc": 11,
    "client": 11,
    "registry": 11,
    "autologging": 11,
    "exceptions": 11,  # `mlflow.exceptions`: MlflowException, as lineage's base error
    "artifacts": 11,  # `mlflow.artifacts`: a run's logged files read back by runs:/ URI
    "config": 11,  # `mlflow.config`: the async-logging switch, the tracking URI
    "__init__": 12,
    "cli": 13,
    "__main__": 14,
}

#: modules that must not import anything of ours at all
LEAVES = {"_version", "model", "errors", "internal"}

#: the imports inside functions that reach UP the layers, each deliberate:
#: (importing module, imported module) -> why. Everything else a function imports
#: obeys the same order as module-level imports (DESIGN.md §3).
LAZY_UP: dict[tuple[str, str], str] = {
    ("lineage.query.subgraph", "lineage.render"):
        "a Subgraph's views (str, __rich__, _repr_svg_, _repr_html_) draw it with the renderer (DESIGN.md §3)",
    ("lineage.query.results", "lineage.render.tables"):
        "query answers print as tables in a terminal or notebook (__rich__); the tables are presentation, in render",
    ("lineage.query.results", "lineage.render.views"):
        "query answers show as those tables in str() and in a notebook (_repr_html_)",
    ("lineage.tracking", "lineage.client"):
        "`import lineage as mlflow` makes tracking `mlflow.tracking`, whose MlflowClient scripts reach for",
}


def modules() -> list[tuple[str, Path]]:
    """``(dotted name, path)`` of every module of the package."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


MODULES = dict(modules())


def layer_of(dotted: str) -> str:
    """``lineage.audit.facts`` -> ``audit``; ``lineage`` -> ``__init__``."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def is_package(dotted: str) -> bool:
    return MODULES.get(dotted, Path()).name == "__init__.py"


def resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The lineage modules an import statement in ``module`` loads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name == "lineage" or a.name.startswith("lineage.")]
    if node.level:
        base = module.split(".") if is_package(module) else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not (target == "lineage" or target.startswith("lineage.")):
        return []
    # `from . import tracking` loads the submodule; `from . import __version__` the package
    found = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
    return found or [target]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports executed when the module is imported: top-level statements, including
    inside top-level ``try``/``if`` blocks, but not ``if TYPE_CHECKING:`` blocks (never
    run) nor function bodies (run lazily, which DESIGN.md §3 allows)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(stmts: list[ast.stmt]) -> None:
        for s in stmts:
            if isinstance(s, (ast.Import, ast.ImportFrom)):
                found.append(s)
            elif isinstance(s, ast.If):
                if not _is_type_checking(s.test):
                    visit(s.body)
                visit(s.orelse)
            elif isinstance(s, ast.Try):
                visit(s.body)
                for h in s.handlers:
                    visit(h.body)
                visit(s.orelse)
                visit(s.finalbody)

    visit(tree.body)
    return found


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_layers_only_look_down(module: str) -> None:
    layer = layer_of(module)
    assert layer in LAYERS, f"{module}: add its layer to LAYERS in {__file__} (and to DESIGN.md §3)"
    rank = LAYERS[layer]
    bad = []
    for node in module_level_imports(parse(MODULES[module])):
        for target in resolve(module, node):
            target_layer = layer_of(target)
            if target_layer == layer:
                continue  # within a layer (audit's own modules)
            if layer in LEAVES:
                bad.append(f"{target} (a leaf module imports nothing of ours)")
            elif LAYERS.get(target_layer, 99) > rank:
                bad.append(f"{target} (layer {target_layer} is above {layer})")
    assert not bad, f"{module} imports at module level: {', '.join(bad)}; import lazily inside the function"


def function_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run only when a function is called: inside a function body, but
    not under ``if TYPE_CHECKING:`` (never run)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for s in child.orelse:
                    visit(s, in_function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)) and in_function:
                found.append(child)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def lazy_upward_imports(module: str) -> list[str]:
    """The modules ``module`` imports inside functions from a layer above its own."""
    layer = layer_of(module)
    out = []
    for node in function_imports(parse(MODULES[module])):
        for target in resolve(module, node):
            target_layer = layer_of(target)
            if target_layer != layer and (layer in LEAVES or LAYERS.get(target_layer, 99) > LAYERS[layer]):
                out.append(target)
    return out


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_inside_functions_look_down_too(module: str) -> None:
    bad = [t for t in lazy_upward_imports(module) if (module, t) not in LAZY_UP]
    assert not bad, (f"{module} imports {', '.join(sorted(set(bad)))} inside a function, from a higher layer; "
                     f"pass what it needs down, or add a deliberate lazy view to LAZY_UP in {__file__} with why")


def test_the_lazy_allow_list_has_no_stale_entries() -> None:
    stale = [pair for pair in LAZY_UP if pair[1] not in lazy_upward_imports(pair[0])]
    assert not stale, f"LAZY_UP allows imports the code no longer makes: {stale}"


def test_function_imports_are_found_at_any_depth() -> None:
    tree = ast.parse(
        "import os\n"
        "if TYPE_CHECKING:\n    from .api import Lineage\n"
        "def f():\n    from . import render\n    if x:\n        import lineage\n"
        "class C:\n    def m(self):\n        from ..query import trace\n"
        "    def v(self):\n        if TYPE_CHECKING:\n            from . import api\n")
    assert [ast.unparse(n) for n in function_imports(tree)] == [
        "from . import render", "import lineage", "from ..query import trace"]


#: what the CLI may import besides the facade (lineage.api): it parses, calls the
#: facade and prints (DESIGN.md §3); the store and the write paths are the facade's
CLI_MAY_IMPORT = {
    "lineage._version": "--version",
    "lineage.api": "the facade",
    "lineage.errors": "one-line errors and exit codes",
    "lineage.model": "short ids, sizes and kinds for printing",
    "lineage.render": "views of the results it prints",
    "lineage.secrets": "SecretWarning, the warning category it turns into a line",
}


def test_the_cli_goes_through_the_facade() -> None:
    reached = {t for node in ast.walk(parse(MODULES["lineage.cli"])) if isinstance(node, (ast.Import, ast.ImportFrom))
               for t in resolve("lineage.cli", node)}
    reached = {t if t in CLI_MAY_IMPORT or t == "lineage" else ".".join(t.split(".")[:2]) for t in reached}
    assert reached - {"lineage"} <= set(CLI_MAY_IMPORT), f"the CLI reaches past the facade: {sorted(reached - set(CLI_MAY_IMPORT) - {'lineage'})}"


#: the MLflow surface: it reads and writes through the facade (`Lineage`), never its `.store`
MLFLOW_SURFACE = ("lineage.fluent", "lineage.client", "lineage.registry", "lineage.entities", "lineage.autologging", "lineage.pyfunc",
                  "lineage.sklearn", "lineage.models", "lineage.data")

#: where it still reaches a `.store`, (module, function) -> why; each entry is work left
#: (none left: the registry calls and pyfunc's loading go through `Lineage.register_model`,
#: `aliases`, `generated_by`, `artifact_file`, `load_model` and `promote(name=)`)
STORE_REACHES: dict[tuple[str, str], str] = {}


def _store_reaches(module: str) -> set[tuple[str, str]]:
    """(module, enclosing function) of every attribute ``store`` read in ``module``."""
    found: set[tuple[str, str]] = set()

    def visit(node: ast.AST, where: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, [*where, child.name])
                continue
            if isinstance(child, ast.Attribute) and child.attr == "store":
                found.add((module, ".".join(where) or "<module>"))
            visit(child, where)

    visit(parse(MODULES[module]), [])
    return found


def test_the_mlflow_surface_goes_through_the_facade() -> None:
    reached = set().union(*(_store_reaches(m) for m in MLFLOW_SURFACE))
    assert reached <= set(STORE_REACHES), f"reaches past the facade into .store: {sorted(reached - set(STORE_REACHES))}"
    assert set(STORE_REACHES) <= reached, f"allowed but gone (drop them): {sorted(set(STORE_REACHES) - reached)}"


def test_nothing_but_main_imports_the_cli() -> None:
    offenders = []
    for module, path in MODULES.items():
        if module in ("lineage.cli", "lineage.__main__"):
            continue
        for node in ast.walk(parse(path)):  # anywhere, lazily or not
            if isinstance(node, (ast.Import, ast.ImportFrom)) and "lineage.cli" in resolve(module, node):
                offenders.append(module)
    assert not offenders, f"the CLI sits on top; imported by {offenders}"


def test_the_resolver_understands_the_import_forms() -> None:
    def imports(module: str, source: str) -> list[str]:
        node = ast.parse(source).body[0]
        assert isinstance(node, (ast.Import, ast.ImportFrom))
        return resolve(module, node)

    assert imports("lineage.api", "from . import tracking") == ["lineage.tracking"]
    assert imports("lineage.cli", "from . import __version__") == ["lineage"]
    assert imports("lineage.audit.facts", "from ..store import Store") == ["lineage.store"]
    assert imports("lineage.audit", "from .report import build_report") == ["lineage.audit.report"]
    assert imports("lineage.store", "import lineage.query") == ["lineage.query"]
    assert imports("lineage.query.walk", "from ..store import Store") == ["lineage.store"]
    assert imports("lineage.query", "from .walk import trace") == ["lineage.query.walk"]
    assert layer_of("lineage.query.walk") == "query"
    assert imports("lineage.render.dot", "from ..query import Subgraph") == ["lineage.query"]
    assert imports("lineage.render", "from .dot import to_dot") == ["lineage.render.dot"]
    assert layer_of("lineage.render.dot") == "render"
    assert imports("lineage.store", "from lineage import api") == ["lineage.api"]
    assert imports("lineage.store", "import numpy") == []


# ---------------------------------------------------------------------------
# SQL lives in the store package (lineage/store/*.py) and the query package (lineage/query/*.py)

SQL_HOMES = {"lineage.store", "lineage.query"}
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE)\b")


def is_sql_home(module: str) -> bool:
    """``lineage.store`` or ``lineage.query``, and the modules of those packages."""
    return module in SQL_HOMES or module.startswith(("lineage.query.", "lineage.store."))


def string_literals(tree: ast.Module) -> list[tuple[int, str]]:
    """Every string constant (f-string parts included) except docstrings."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docstrings.add(id(first.value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not is_sql_home(m)))
def test_sql_only_in_store_and_query(module: str) -> None:
    hits = [f"line {line}: {text.strip()[:60]!r}" for line, text in string_literals(parse(MODULES[module]))
            if SQL_WORDS.search(text)]
    assert not hits, f"{module} holds SQL; move it to lineage/store/ (writes) or lineage/query/ (reads): {hits}"


def test_every_module_of_the_query_package_may_hold_sql() -> None:
    assert is_sql_home("lineage.query.walk") and is_sql_home("lineage.query")
    assert is_sql_home("lineage.store.ledger") and is_sql_home("lineage.store")
    assert not is_sql_home("lineage.storefront")
    assert not is_sql_home("lineage.querying") and not is_sql_home("lineage.render")
    assert not is_sql_home("lineage.render.dot")


def test_the_sql_check_sees_sql() -> None:
    tree = ast.parse('"""SELECT in a docstring is prose."""\nq = f"SELECT id FROM {t}"\n')
    assert [t for _, t in string_literals(tree) if SQL_WORDS.search(t)] == ["SELECT id FROM "]


# ---------------------------------------------------------------------------
# the public surface (as httpx's tests/test_exported_members.py)

#: modules that are part of the API, and the dunder names that are
PUBLIC_MODULES = {"sklearn", "data", "models", "pyfunc", "config", "exceptions", "artifacts", "types"}
PUBLIC_DUNDERS = {"__version__"}


def test_all_names_exist() -> None:
    missing = [name for name in lineage.__all__ if not hasattr(lineage, name)]
    assert not missing


def test_nothing_public_is_missing_from_all() -> None:
    public = {
        name
        for name, value in vars(lineage).items()
        if (not name.startswith("_") or name in PUBLIC_DUNDERS)
        and (not isinstance(value, types.ModuleType) or name in PUBLIC_MODULES)
    }
    assert set(lineage.__all__) == public
    assert len(lineage.__all__) == len(set(lineage.__all__))


def test_exported_classes_and_functions_say_they_are_ours() -> None:
    for name in lineage.__all__:
        value = getattr(lineage, name)
        if isinstance(value, (type, types.FunctionType)):
            assert value.__module__.startswith("lineage"), name
            assert value.__doc__, f"lineage.{name} has no docstring"


# ---------------------------------------------------------------------------
# import cost: the heavy libraries load only where used

HEAVY = ("sqlite_utils", "networkx", "sklearn", "matplotlib", "graphviz", "rich", "jinja2", "numpy", "pandas",
         "yaml", "click")


def loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {m.split(".")[0] for m in json.loads(out.stdout.strip().splitlines()[-1])}


def test_import_lineage_stays_light() -> None:
    heavy = loaded_after("import lineage") & set(HEAVY)
    assert not heavy, f"`import lineage` imports {sorted(heavy)}; import them inside the functions that use them"


def test_the_cli_module_loads_only_click() -> None:
    heavy = loaded_after("import lineage.cli") & set(HEAVY)
    assert heavy <= {"click"}, f"`lineage --version` would import {sorted(heavy - {'click'})}"


def test_lineage_sklearn_does_not_import_scikit_learn() -> None:
    assert "sklearn" not in loaded_after("import lineage.sklearn")
