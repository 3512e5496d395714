"""The examples in the docstrings of the facade (`lineage.api.Lineage`) and of the
query layer's public functions run, as doctests, and every one of those has its
numpydoc sections.

Each docstring runs in a fresh copy of one small project, built once per session:

* ``data/raw.csv`` (40 rows) recorded as ``raw``; a run ``prepare`` (experiment
  ``demo``) that read it and wrote ``data/train.csv`` (``train``) and
  ``data/test.csv`` (``test``);
* three runs ``fit`` (``C`` = 1.0, 0.1, 0.01) that each trained a logistic
  regression on ``train``, logged ``accuracy`` on ``test`` and logged the model as
  ``clf`` (so ``clf@1`` … ``clf@3``, ``clf`` being the newest);
* three predictions of ``clf`` with request ids ``req-1`` … ``req-3``.

The names an example may use without defining them: ``lg`` (the `Lineage` on that
store), ``store`` (its `Store`, what query functions take), ``lineage`` and ``Path``;
the working directory is the project's root.
"""

from __future__ import annotations

import doctest
import inspect
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lineage
from lineage import query
from lineage.api import Lineage

#: the modules whose docstrings are run
MODULES = ("lineage.api", "lineage.query.walk", "lineage.query.analysis", "lineage.query.search",
           "lineage.query.filters", "lineage.query.importance", "lineage.query.staleness",
           "lineage.query.subgraph")


def build_project(root: Path) -> None:
    """The small project the examples share (see the module docstring)."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2)).round(3)
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.8, size=40) > 0).astype(int)
    data = root / "data"
    data.mkdir(parents=True)

    def write(name: str, rows: Any, target: Any) -> None:
        lines = ["a,b,target"] + [f"{r[0]},{r[1]},{t}" for r, t in zip(rows, target)]
        (data / name).write_text("\n".join(lines) + "\n")

    write("raw.csv", X, y)
    cwd = Path.cwd()
    os.chdir(root)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("LINEAGE_USER", "tester")
            mp.setenv("LINEAGE_EMAIL", "tester@example.com")
            mp.delenv("LINEAGE_DB", raising=False)
            lg = lineage.open(".lineage/lineage.db")
            with lg:
                raw = lg.log_dataset("data/raw.csv", name="raw")
                with lg.start_run("prepare", experiment="demo") as run:
                    run.log_input(raw)
                    write("train.csv", X[:30], y[:30])
                    write("test.csv", X[30:], y[30:])
                    train = run.log_output("data/train.csv", name="train")
                    test = run.log_output("data/test.csv", name="test")
                tr, te = pd.read_csv("data/train.csv"), pd.read_csv("data/test.csv")
                for c in (1.0, 0.1, 0.01):
                    with lg.start_run("fit", params={"C": c}, experiment="demo") as run:
                        run.log_input(train)
                        model = LogisticRegression(C=c).fit(tr[["a", "b"]], tr["target"])
                        run.log_metric("accuracy", float(model.score(te[["a", "b"]], te["target"])), dataset=test)
                        run.log_model(model, "clf")
                new = tr[["a", "b"]].head(3)
                lg.log_predictions("clf", new, model.predict(new).tolist(), request_ids=["req-1", "req-2", "req-3"])
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("doctest-template") / "project"
    build_project(root)
    return root


def _doctests() -> Iterator[doctest.DocTest]:
    import importlib

    finder = doctest.DocTestFinder(exclude_empty=True)
    for name in MODULES:
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if test.examples:
                yield test


DOCTESTS = {t.name: t for t in _doctests()}


@pytest.mark.parametrize("name", sorted(DOCTESTS))
def test_docstring_examples_run(name: str, template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    shutil.copytree(template, project)
    monkeypatch.chdir(project)
    monkeypatch.setenv("LINEAGE_USER", "tester")
    monkeypatch.setenv("LINEAGE_EMAIL", "tester@example.com")
    monkeypatch.delenv("LINEAGE_DB", raising=False)
    test = DOCTESTS[name]
    lg = lineage.open(project / ".lineage" / "lineage.db")
    try:
        test.globs = {**test.globs, "lg": lg, "store": lg.store, "lineage": lineage, "Path": Path}
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        out: list[str] = []
        result = runner.run(test, out=out.append, clear_globs=False)
    finally:
        lg.close()
    assert result.failed == 0, "".join(out)


def _documented() -> Iterator[tuple[str, Any]]:
    for name, member in vars(Lineage).items():
        if name.startswith("_"):
            continue
        func = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
        if callable(func):
            yield f"Lineage.{name}", func
    for name in query.__all__:
        obj = getattr(query, name)
        if inspect.isfunction(obj):
            yield f"query.{name}", obj


@pytest.mark.parametrize(("name", "func"), list(_documented()), ids=[n for n, _ in _documented()])
def test_public_functions_have_numpydoc_sections_and_an_example(name: str, func: Any) -> None:
    doc = inspect.getdoc(func) or ""
    params = [p for p in inspect.signature(func).parameters if p not in ("self", "cls")]
    wanted = ["Returns", "Examples"] + (["Parameters"] if params else [])
    for section in wanted:
        assert f"\n{section}\n{'-' * len(section)}\n" in doc, f"{name} has no {section} section"
    examples = doc.split("\nExamples\n--------\n", 1)[1]
    assert ">>> " in examples, f"{name}'s Examples section has no example"
    for p in params:
        assert any(f"\n{star}{p}{end}" in doc for star in ("", "*", "**") for end in (" :", ",", "\n")) or f", {p} :" in doc, \
            f"{name} does not describe its parameter {p}"
