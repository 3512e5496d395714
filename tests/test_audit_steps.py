"""A composite model's chain of steps in every report (issue 13: "the chain of steps,
each step's own parameters"): a Pipeline's report names each step with its class and
own parameters, the final estimator's included, and a ColumnTransformer's columns, in
HTML, Markdown and JSON and under every standard. A plain estimator has no steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import lineage
from lineage.audit import schema

X = [[0.0, 10.0], [1.0, 11.0], [2.0, 9.0], [3.0, 12.0], [4.0, 8.0], [5.0, 13.0]]
Y = [0, 0, 0, 1, 1, 1]
STANDARDS = ("annex-iv", "model-card", "sr-11-7")


def _log(tmp_path: Path, model: Any, fit_on: Any = None) -> tuple[Path, str]:
    db = tmp_path / ".lineage" / "lineage.db"
    with lineage.open(db) as lg:
        with lg.start_run("fit") as run:
            logged = run.log_model(model.fit(fit_on if fit_on is not None else X, Y), "risk")
    return db, logged.id


def _reports(tmp_path: Path, db: Path, model_id: str, standard: str) -> tuple[dict[str, Any], str, str]:
    with lineage.open(db) as lg:
        report = lg.audit(model_id, standard=standard)
    paths = {ext: tmp_path / f"{standard}.{ext}" for ext in ("json", "html", "md")}
    for p in paths.values():
        report.write(p)
    doc = json.loads(paths["json"].read_text())
    jsonschema.Draft202012Validator(schema()).validate(doc)
    return doc, paths["html"].read_text(), paths["md"].read_text()


@pytest.mark.parametrize("standard", STANDARDS)
def test_a_pipelines_steps_and_their_params_are_in_every_format(tmp_path: Path, standard: str) -> None:
    pipe = Pipeline([("scale", StandardScaler(with_mean=False)), ("clf", LogisticRegression(C=0.37, max_iter=123))])
    db, model_id = _log(tmp_path, pipe)
    doc, html, md = _reports(tmp_path, db, model_id, standard)

    steps = doc["model"]["steps"]
    by_path = {s["step"]: s for s in steps}
    assert [s["step"] for s in steps if s["depth"] == 1] == ["scale", "clf"]  # data-flow order, final last
    assert by_path["scale"]["class"].endswith("StandardScaler")
    assert by_path["scale"]["params"]["with_mean"] is False
    assert by_path["clf"]["params"]["C"] == 0.37 and by_path["clf"]["params"]["max_iter"] == 123
    assert doc["model"]["final_estimator"].endswith("LogisticRegression")

    # HTML: the chain in the summary, each step with its own parameters in the hyperparameters
    assert "StandardScaler" in html and "with_mean=false" in html
    assert "C=0.37" in html and "max_iter=123" in html
    assert '<span class="mono">scale</span> (StandardScaler) → <span class="mono">clf</span> (LogisticRegression)' in html
    assert "Final estimator (LogisticRegression) parameters" in html
    # Markdown: the same facts
    assert "`scale` (StandardScaler) → `clf` (LogisticRegression)" in md
    assert "with\\_mean=false" in md and "C=0.37" in md and "max\\_iter=123" in md
    assert "final estimator (LogisticRegression)" in md


def test_a_column_transformers_columns_are_shown(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame({"age": [20, 30, 40, 50, 60, 70], "sex": ["f", "m", "f", "m", "f", "m"]})
    prep = ColumnTransformer([("num", StandardScaler(), ["age"]),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), ["sex"])])
    pipe = Pipeline([("prep", prep), ("clf", LogisticRegression(C=2.5))])
    db, model_id = _log(tmp_path, pipe, frame)
    doc, html, md = _reports(tmp_path, db, model_id, "annex-iv")

    by_path = {s["step"]: s for s in doc["model"]["steps"]}
    assert by_path["prep/num"]["columns"] == ["age"] and by_path["prep/num"]["depth"] == 2
    assert by_path["prep/cat"]["columns"] == ["sex"]
    assert by_path["prep/cat"]["class"].endswith("OneHotEncoder")
    assert by_path["prep/cat"]["params"]["handle_unknown"] == "ignore"
    assert by_path["clf"]["params"]["C"] == 2.5
    assert "prep/cat" in html and "OneHotEncoder" in html and "handle_unknown=ignore" in html
    assert "columns: sex" in html and "columns: age" in html
    assert "`prep/cat` | OneHotEncoder | sex |" in md and "handle\\_unknown=ignore" in md
    # the branches run side by side, each on its columns, not one after another
    assert ("`prep` (ColumnTransformer) [`num` (StandardScaler) ‖ `cat` (OneHotEncoder)] → `clf` (LogisticRegression)"
            in md)
    assert ('<span class="mono">num</span> (StandardScaler) <span class="muted small">on age</span> ‖ '
            '<span class="mono">cat</span> (OneHotEncoder) <span class="muted small">on sex</span>] → ') in html
    with lineage.open(db) as lg:
        hp = lg.audit(model_id).item("hyperparameters")["summary"]
    assert "ColumnTransformer [num: StandardScaler ‖ cat: OneHotEncoder] → LogisticRegression" in hp


def test_a_hostile_step_name_stays_text(tmp_path: Path) -> None:
    pipe = Pipeline([("<b>x</b>", StandardScaler()), ("clf", LogisticRegression())])
    db, model_id = _log(tmp_path, pipe)
    _, html, md = _reports(tmp_path, db, model_id, "annex-iv")
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<b>x</b>" not in md


def test_a_plain_estimator_has_no_steps(tmp_path: Path) -> None:
    db, model_id = _log(tmp_path, LogisticRegression(C=0.5))
    doc, html, md = _reports(tmp_path, db, model_id, "annex-iv")
    assert doc["model"]["steps"] is None and doc["model"]["final_estimator"] is None
    assert doc["hyperparameters"]["model"]["C"] == 0.5
    assert "Steps and their own parameters" not in html and "Estimator parameters" in html
    assert "Steps and their own parameters" not in md
