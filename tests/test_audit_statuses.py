"""Honest statuses and figures: a field is "recorded" only when its content meets the
field's rule; per-group metrics carry n, a named interval and the ratio to the best
group; comparisons name each metric's dataset at 4 significant digits; the integrity
result is one plain sentence; standards views differ where the standards differ."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import lineage
from lineage.audit import checklist
from lineage.audit.facts import sig4, wilson
from lineage.cli import cli


def _csv(path: Path, rows: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 2))
    y = (X[:, 0] > 0).astype(int)
    path.write_text("a,b,y\n" + "\n".join(f"{a:.4f},{b:.4f},{t}" for (a, b), t in zip(X, y)) + "\n")
    return path


@pytest.fixture
def store(lg: lineage.Lineage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("LINEAGE_USER", "dev")
    train = lg.log_dataset(_csv(tmp_path / "train.csv", 200, 0), name="train")
    test = lg.log_dataset(_csv(tmp_path / "test.csv", 100, 1), name="test")
    other = lg.log_dataset(_csv(tmp_path / "other.csv", 100, 2), name="other")
    X = np.random.default_rng(0).normal(size=(50, 2))
    y = (X[:, 0] > 0).astype(int)
    models = []
    for version, (auc_test, auc_other) in enumerate([(0.7234557932983448, 0.61), (0.75123456, 0.61)]):
        with lg.start_run("fit", params={"C": 1.0 + version}) as run:
            run.log_input(train)
            run.log_metric("roc_auc", auc_test, dataset=test, n=100)
            run.log_metric("roc_auc", auc_other, dataset=other, n=100)
            run.log_metric("accuracy", 0.9, dataset=test, group="young", n=100)
            run.log_metric("accuracy", 0.72, dataset=test, group="old", n=25)
            models.append(run.log_model(LogisticRegression(C=1.0 + version).fit(X, y), "risk"))
    return {"lg": lg, "models": models}


def test_wilson_interval_and_rounding() -> None:
    lo, hi = wilson(0.9, 100)
    assert (round(lo, 4), round(hi, 4)) == (0.8256, 0.9448)  # the textbook figures
    assert sig4(0.7234557932983448) == 0.7235 and sig4(123456.0) == 123500.0 and sig4(None) is None


def test_per_group_metrics_carry_n_interval_and_ratio(store: dict[str, Any]) -> None:
    doc = store["lg"].audit(store["models"][1]).to_dict()
    groups = {m["group"]: m for m in doc["metrics"] if m["group"]}
    assert groups["young"]["n"] == 100 and groups["old"]["n"] == 25
    assert groups["young"]["ci"]["method"].startswith("Wilson")
    assert groups["old"]["ci"]["high"] - groups["old"]["ci"]["low"] > groups["young"]["ci"]["high"] - groups["young"]["ci"]["low"]
    assert groups["young"]["ratio_to_best"] == 1.0 and groups["old"]["ratio_to_best"] == 0.8
    html = store["lg"].audit(store["models"][1]).to_html()
    assert "Ratio to best group" in html and "n=25" in html


def test_comparison_names_each_metrics_dataset_at_4_digits(store: dict[str, Any]) -> None:
    doc = store["lg"].audit(store["models"][1]).to_dict()
    metric_changes = [c for c in doc["changes"]["items"] if c["aspect"] == "metrics"]
    assert {"key": "roc_auc on test@1", "a": 0.7235, "b": 0.7512, "aspect": "metrics"} in metric_changes
    assert not any("other" in c["key"] for c in metric_changes)  # unchanged on the other dataset
    assert "0.7234557932983448" not in store["lg"].audit(store["models"][1]).to_html()


def test_comparison_says_when_the_evaluation_data_changed(store: dict[str, Any], tmp_path: Path) -> None:
    """Scored on test@2 against the previous version's test@1: a row "roc_auc on
    test@2: 0.72 → 0.61" read as a like-for-like regression of the model."""
    from sklearn.linear_model import LogisticRegression

    lg, previous = store["lg"], store["models"][1]
    test2 = lg.log_dataset(_csv(tmp_path / "test.csv", 120, 7), name="test")
    with lg.start_run("fit") as run:
        run.log_metric("roc_auc", 0.61, dataset=test2, n=120)
        model = run.log_model(LogisticRegression(C=9.0).fit([[0, 0], [1, 1]], [0, 1]), "risk")
    changes = [c for c in lg.audit(model).to_dict()["changes"]["items"] if c["aspect"] == "metrics"]
    assert {"key": "roc_auc on test (evaluation data changed: @1 → @2)", "a": 0.7512, "b": 0.61,
            "aspect": "metrics"} in changes
    assert lg.audit(model).to_dict()["changes"]["previous"]["id"] == previous.id


def test_comparison_takes_each_versions_value_by_mlflows_rule(store: dict[str, Any]) -> None:
    """A value logged for an earlier step after the final one is history, not the
    model's figure (`latest`: the greatest step wins, as in MLflow's run.data.metrics)."""
    from sklearn.linear_model import LogisticRegression

    lg, previous = store["lg"], store["models"][1]
    test = next(lg.get(m["dataset"]["id"]) for m in lg.audit(previous).to_dict()["metrics"]
                if m["key"] == "roc_auc" and m["dataset"]["name"] == "test")
    with lg.start_run("fit") as run:
        run.log_metric("roc_auc", 0.8, 5, dataset=test, n=100)  # the final step
        run.log_metric("roc_auc", 0.5, 1, dataset=test, n=100)  # an early step, logged late
        model = run.log_model(LogisticRegression(C=7.0).fit([[0, 0], [1, 1]], [0, 1]), "risk")
    changes = [c for c in lg.audit(model).to_dict()["changes"]["items"] if c["aspect"] == "metrics"]
    assert {"key": "roc_auc on test@1", "a": 0.7512, "b": 0.8, "aspect": "metrics"} in changes
    assert lg.audit(model).to_dict()["changes"]["previous"]["id"] == previous.id


def test_comparison_picks_the_previous_versions_value_across_all_its_runs(store: dict[str, Any]) -> None:
    """The same model logged by two runs is one version with two generating runs:
    its value is picked by MLflow's rule across both (the greatest step here, in
    the first run), as this version's own values are, not the last run's."""
    from sklearn.linear_model import LogisticRegression

    lg = store["lg"]
    X, y = [[0, 0], [1, 1], [0, 1], [1, 0]], [0, 1, 1, 0]
    versions = []
    for C, steps in ((3.0, [(0.91, 5)]), (3.0, [(0.55, 1)]), (4.0, [(0.93, 5)])):
        with lg.start_run("fit") as run:
            for value, step in steps:
                run.log_metric("recall", value, step)
            versions.append(run.log_model(LogisticRegression(C=C).fit(X, y), "twice"))
    assert versions[0] == versions[1]  # the same content: one version, generated by both runs
    changes = [c for c in lg.audit(versions[2]).to_dict()["changes"]["items"] if c["aspect"] == "metrics"]
    assert {"key": "recall on no dataset recorded", "a": 0.91, "b": 0.93, "aspect": "metrics"} in changes


def test_retention_needs_a_stated_period(store: dict[str, Any]) -> None:
    lg, model = store["lg"], store["models"][1]
    assert lg.audit(model).item("retention")["status"] == "needs a person"
    lg.annotate(model, "retention", "kept for ever")
    assert lg.audit(model).item("retention")["status"] == "needs a person"
    lg.annotate(model, "retention", "Prediction logs 6 months, documentation 10 years")
    item = lg.audit(model).item("retention")
    assert item["status"] == "recorded" and "10 years" in item["summary"]


def test_validation_needs_someone_other_than_the_author(store: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    lg, model = store["lg"], store["models"][1]
    assert lg.audit(model).item("identity")["status"] == "needs a person"
    lg.annotate_card(model, {"validation": {"validator": "dev", "date": "2026-12-01", "scope": "all",
                                            "findings": "fine", "outcome": "approved"}})
    doc = lg.audit(model).to_dict()
    assert doc["model"]["validation"]["independent"] is False
    assert lg.audit(model).item("identity")["status"] == "needs a person"
    card = {"validation": {"validator": "Vera Validator", "date": "2026-12-01", "scope": "holdout",
                           "findings": "no gap between groups", "outcome": "approved"}}
    # another name, typed from the author's own account, proves nothing
    lg.annotate_card(model, card, author="Vera Validator")
    v = lg.audit(model).to_dict()["model"]["validation"]
    assert v["validator"] == "Vera Validator" and v["self_recorded"] and v["independent"] is False
    assert lg.audit(model).item("identity")["status"] == "needs a person"
    assert "author's own account" in lg.audit(model, standard="sr11-7").to_html()
    # another login name alone, the author's git name and e-mail kept: still the author
    monkeypatch.setenv("LINEAGE_USER", "vera")
    with lineage.open(lg.db_path) as posing:
        posing.annotate_card(model, card)
    v = lg.audit(model).to_dict()["model"]["validation"]
    assert v["self_recorded"] and v["independent"] is False
    monkeypatch.setenv("LINEAGE_NAME", "Vera Validator")  # Vera, from her own login and identity
    monkeypatch.setenv("LINEAGE_EMAIL", "vera@example.com")
    with lineage.open(lg.db_path) as vera:
        vera.annotate_card(model, card)
    doc = lg.audit(model, standard="sr11-7").to_dict()
    v = doc["model"]["validation"]
    assert v["independent"] and v["complete"] and v["validator"] == "Vera Validator"
    assert lg.audit(model).item("identity")["status"] == "recorded"
    html = lg.audit(model, standard="sr11-7").to_html()
    assert "Independent validation" in html and "Vera Validator" in html and "no gap between groups" in html


def test_standards_differ_and_number_in_reading_order() -> None:
    mc = {s[1]: s[2] for s in checklist.STANDARDS["model-card"]["sections"]}
    assert mc["Quantitative Analyses"] == ("evaluation",) and "monitoring" not in mc["Quantitative Analyses"]
    assert list(mc)[:9] == ["Model Details", "Intended Use", "Factors", "Metrics", "Evaluation Data", "Training Data",
                            "Quantitative Analyses", "Ethical Considerations", "Caveats and Recommendations"]
    sr = [s[1] for s in checklist.STANDARDS["sr11-7"]["sections"]]
    assert "Independent validation" in sr
    for standard in checklist.STANDARDS:
        order = checklist.reading_order(standard)
        shown = [order[k] for sec in checklist.STANDARDS[standard]["sections"] for k in sec[2]]
        assert shown == list(range(1, 23))


def test_integrity_sentence_and_failed_status(store: dict[str, Any]) -> None:
    lg, model = store["lg"], store["models"][1]
    doc = lg.audit(model).to_dict()
    events = doc["integrity"]["facts"]["events_checked"]
    assert doc["integrity"]["summary"].startswith(f"Every record behind this report was checked: {events} records")
    assert "no changes found" in doc["integrity"]["summary"]
    path = lg.store.path
    lg.close()
    con = sqlite3.connect(path)
    con.execute("UPDATE metrics SET value = 0.5 WHERE pk = (SELECT MAX(pk) FROM metrics WHERE grp = 'old')")
    con.commit()
    con.close()
    with lineage.open(path) as again:
        report = again.audit(model.id)
        doc = report.to_dict()
        assert doc["integrity"]["summary"].startswith("Do not rely on this report as it stands: 1 record")
        assert report.item("integrity")["status"] == "failed" and doc["completeness"]["failed"] == 1
        html = report.to_html()
        assert 'class="altered">0.5<' in html  # the altered value, marked where it appears
        assert ">missing<" not in html.split('id="field-integrity"')[1].split("</article>")[0]


def test_cli_audit_request_writes_decision_reasons(lg: lineage.Lineage, tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    y = [0, 0, 1, 1]
    clf = LogisticRegression().fit(X, y)
    with lg.start_run("fit") as run:
        model = run.log_model(clf, "tiny")
    lg.log_predictions(model, X, clf.predict(X).tolist(), scores=clf.predict_proba(X)[:, 1].tolist(),
                       request_ids=["r1", "r2", "r3", "r4"], keep_inputs=True, decision={"threshold": 0.5})
    out = tmp_path / "d.json"
    res = CliRunner().invoke(cli, ["--db", str(lg.store.path), "audit", "request:r3", "-o", str(out)])
    assert res.exit_code == 0, res.output
    reasons = json.loads(out.read_text())["decision"]["reasons"]
    assert [set(r) >= {"feature", "contribution", "method"} for r in reasons] == [True, True]
    assert abs(reasons[0]["contribution"]) >= abs(reasons[1]["contribution"])


def test_markdown_carries_what_the_html_states(store: dict[str, Any]) -> None:
    """docs/audit.md: Markdown is the same content without the pictures. It had no
    sensitive-column statement, an empty "Evaluation Data" section in the Model Card
    and no validation status in SR 11-7's "Independent validation"."""
    lg, model = store["lg"], store["models"][1]
    lg.mark_sensitive("train", ["a"])
    card = lg.audit(model, standard="model-card").to_markdown()
    assert "Sensitive columns reaching the model" in card and "**no allowance**" in card
    evaluation = card.split("## Evaluation Data", 1)[1].split("\n## ", 1)[0]
    assert "| test@1 of 1 | evaluation" in evaluation and "| train" not in evaluation
    sr = lg.audit(model, standard="sr11-7").to_markdown()
    section = sr.split("## Independent validation", 1)[1].split("\n## ", 1)[0]
    assert "**No independent validation recorded.**" in section
    lg.annotate_card(model, {"validation": {"validator": "dev", "date": "2026-12-01", "scope": "all",
                                            "findings": "fine", "outcome": "approved"}})
    section = lg.audit(model, standard="sr11-7").to_markdown().split("## Independent validation", 1)[1]
    assert "Status: **incomplete**" in section and "not independent" in section


def test_a_model_fitted_on_an_array_and_scored_on_it_is_not_said_evaluated(lg: lineage.Lineage) -> None:
    """Its data has no location, size or columns, and its only score is in-sample:
    the report claimed "each with location, digest, size", "composition (rows,
    columns)" and a recorded evaluation."""
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    with lg.start_run("fit") as run:
        data = run.log_input(X)
        clf = LogisticRegression().fit(X, y)
        run.log_metric("accuracy", clf.score(X, y), dataset=data)
        model = run.log_model(clf, "np_model")
    report = lg.audit(model)
    training = report.item("training_data")
    assert training["status"] == "recorded" and "no location or size" in training["summary"]
    assert "location, digest, size" not in training["summary"]
    assert "composition (rows)" in report.item("representativeness")["summary"]
    evaluation = report.item("evaluation")
    assert evaluation["status"] == "missing" and "in-sample" in evaluation["summary"]
    with lg.start_run("score") as run:  # a held-out score as well: evaluated, the in-sample one said so
        held_out = run.log_input(X[:10] + 1, role="evaluation")
        run.log_metric("accuracy", 0.8, dataset=held_out)
        run.log_metric("accuracy", clf.score(X, y), dataset=data)
        model2 = run.log_model(LogisticRegression(C=2.0).fit(X, y), "np_model")
        run.log_input(data)
    evaluation = lg.audit(model2).item("evaluation")
    assert evaluation["status"] == "recorded" and "1 on the training data itself" in evaluation["summary"]
