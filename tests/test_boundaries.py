"""Errors are caught where they are expected: a handler for ``Exception`` (or
``BaseException``, or a bare ``except:``) that does not re-raise stands only at the
outermost boundaries, at most five in the package, each saying why; what lineage
deliberately swallows is logged on the ``lineage`` logger. Read with `ast`."""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

import pytest

import lineage
from lineage.errors import InvalidInputError, NodeNotFoundError, first_line, foreign

PACKAGE = Path(lineage.__file__).parent
MAX_BOUNDARIES = 5
BROAD = {"Exception", "BaseException"}


def _catches_everything(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(t, ast.Name) and t.id in BROAD for t in types)


def _reraises(handler: ast.ExceptHandler) -> bool:
    """A bare ``raise`` in the handler: it cleans up and lets the error go on."""
    return any(isinstance(n, ast.Raise) and n.exc is None for s in handler.body for n in ast.walk(s))


def broad_handlers() -> list[tuple[str, int, str]]:
    """``(file, line, source line)`` of every catch-all handler that does not re-raise."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if isinstance(node, ast.ExceptHandler) and _catches_everything(node) and not _reraises(node):
                out.append((str(path.relative_to(PACKAGE.parent)), node.lineno, lines[node.lineno - 1]))
    return out


def test_catch_alls_stand_only_at_a_few_boundaries() -> None:
    found = broad_handlers()
    shown = "\n".join(f"{f}:{n}: {src.strip()}" for f, n, src in found)
    assert len(found) <= MAX_BOUNDARIES, (
        f"{len(found)} handlers catch everything without re-raising (at most {MAX_BOUNDARIES}); "
        f"catch the errors the code expects (OSError, ValueError, ...) or go through errors.foreign:\n{shown}")


def test_each_catch_all_says_why() -> None:
    unexplained = [f"{f}:{n}" for f, n, src in broad_handlers() if "#" not in src or "boundary" not in src]
    assert not unexplained, f"a catch-all needs a `# boundary N of {MAX_BOUNDARIES}: why` comment: {unexplained}"


def test_the_counter_sees_what_it_counts() -> None:
    src = (
        "try:\n    pass\nexcept Exception:\n    pass\n"
        "try:\n    pass\nexcept (ValueError, BaseException):\n    x = 1\n"
        "try:\n    pass\nexcept:\n    pass\n"
        "try:\n    pass\nexcept BaseException:\n    cleanup()\n    raise\n"
        "try:\n    pass\nexcept OSError:\n    pass\n"
    )
    handlers = [n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.ExceptHandler)]
    assert [(_catches_everything(h), _reraises(h)) for h in handlers] == [
        (True, False), (True, False), (True, False), (True, True), (False, False)]


# ---------------------------------------------------------------------------
# errors.foreign: the one boundary with code lineage does not own


class _Odd(Exception):
    """An exception type with no relation to anything of ours (as LightGBM's)."""


def test_foreign_errors_become_one_line() -> None:
    with pytest.raises(InvalidInputError) as info, foreign("the model failed: {reason} ({type})"):
        raise _Odd("bad shape\nsecond line of a long message")
    assert str(info.value) == "the model failed: bad shape (_Odd)"
    assert info.value.__cause__ is None


def test_foreign_passes_our_errors_and_interrupts_through() -> None:
    with pytest.raises(NodeNotFoundError), foreign("{reason}"):
        raise NodeNotFoundError("x")
    with pytest.raises(KeyboardInterrupt), foreign("{reason}"):
        raise KeyboardInterrupt
    assert first_line(ValueError()) == "ValueError"
    assert first_line(ValueError("  a\nb")) == "a"


def test_foreign_keeps_braces_of_paths_literal() -> None:
    with pytest.raises(InvalidInputError, match=r"^cannot read /tmp/\{x\}: boom$"), foreign("cannot read /tmp/{x}: {reason}"):
        raise OSError("boom")


class _BrokenParams:
    """An estimator-like object whose get_params raises an unrelated type."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        raise _Odd("params are computed lazily and this one failed")

    def fit(self, X: Any, y: Any) -> _BrokenParams:
        return self

    def predict(self, X: Any) -> list[int]:
        return [0 for _ in X]


def test_a_swallowed_courtesy_leaves_a_log_record(caplog: pytest.LogCaptureFixture) -> None:
    from lineage.describe import describe_model

    with caplog.at_level(logging.DEBUG, logger="lineage"):
        attrs = describe_model(_BrokenParams())
    assert attrs["class"].endswith("_BrokenParams")
    assert any("get_params" in r.getMessage() and "computed lazily" in r.getMessage() for r in caplog.records)


def test_a_model_that_does_not_pickle_is_refused_in_one_line(tmp_path: Path) -> None:
    class Unpicklable:
        def __reduce__(self) -> Any:
            raise _Odd("holds a socket")

    lg = lineage.open(tmp_path / "lineage.db")
    with lg.start_run("fit") as run, pytest.raises(InvalidInputError, match="cannot serialize .*holds a socket"):
        run.log_model(Unpicklable(), "m")
    assert lg.nodes(kind="model") == []
