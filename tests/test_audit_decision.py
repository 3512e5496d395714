"""Decision records: kept inputs, the decision rule, and reasons checked against a
linear model's exact contributions; `lineage explain`; erasure of kept inputs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

import lineage
from lineage.cli import cli
from lineage.query import rows as query_rows

FEATURES = ["income", "debt", "age"]


def _data(n: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [20.0, 5.0, 10.0] + [50.0, 10.0, 40.0]
    y = ((X[:, 0] - 2 * X[:, 1] + rng.normal(size=n) * 5) > 30).astype(int)
    return X, y


def _csv(path: Path, X: np.ndarray, y: np.ndarray) -> Path:
    lines = [",".join([*FEATURES, "target"])] + [",".join([*(repr(float(v)) for v in r), str(t)]) for r, t in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def credit(lg: lineage.Lineage, tmp_path: Path) -> dict[str, Any]:
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    train = lg.log_dataset(_csv(tmp_path / "applications.csv", X, y), name="applications")
    frame = pd.DataFrame(X, columns=FEATURES)
    lr = LogisticRegression(max_iter=1000).fit(frame, y)
    rf = RandomForestClassifier(n_estimators=20, random_state=0).fit(frame, y)
    with lg.start_run("fit") as run:
        run.log_input(train)
        m_lr = run.log_model(lr, "credit_lr")
        m_rf = run.log_model(rf, "credit_rf")
    new = frame.iloc[:5]
    rule = {"threshold": 0.3, "positive": "refer", "negative": "approve"}
    lg.log_predictions(m_lr, new, lr.predict(new).tolist(), scores=lr.predict_proba(new)[:, 1].tolist(),
                       request_ids=[f"lr-{i}" for i in range(5)], keep_inputs=True, decision=rule)
    lg.log_predictions(m_rf, new, rf.predict(new).tolist(), scores=rf.predict_proba(new)[:, 1].tolist(),
                       request_ids=[f"rf-{i}" for i in range(5)], keep_inputs=True, decision=rule)
    lg.log_predictions(m_lr, new, lr.predict(new).tolist(), request_ids=[f"bare-{i}" for i in range(5)])
    return {"lg": lg, "lr": lr, "rf": rf, "X": X, "new": new, "rule": rule}


def test_linear_reasons_are_exact_contributions(credit: dict[str, Any]) -> None:
    lg, lr, X = credit["lg"], credit["lr"], credit["X"]
    doc = lg.audit("request:lr-2").to_dict()
    dec = doc["decision"]
    x = credit["new"].iloc[2].to_numpy()
    expected = lr.coef_[0] * (x - X.mean(axis=0))
    got = {r["feature"]: r["contribution"] for r in dec["reasons"]}
    for j, f in enumerate(FEATURES):
        assert got[f] == pytest.approx(expected[j], rel=1e-6, abs=1e-9)
    assert [r["feature"] for r in dec["reasons"]] == [FEATURES[j] for j in np.argsort(-np.abs(expected))]
    assert all(r["method"] == "exact (linear)" for r in dec["reasons"])
    assert "exact" in dec["method"] and "log-odds" in dec["method"]
    # contributions add up to the score minus the score at the baseline
    assert sum(got.values()) == pytest.approx(lr.decision_function(credit["new"].iloc[[2]])[0] - dec["score_at_baseline"])
    assert dec["inputs"] == dict(zip(FEATURES, map(float, x)))
    assert dec["rule"] == credit["rule"]
    assert dec["outcome"].endswith("refer") or dec["outcome"].endswith("approve")
    assert "training data applications" in dec["baseline_source"]


def test_other_models_use_a_stated_model_agnostic_method(credit: dict[str, Any]) -> None:
    dec = credit["lg"].audit("request:rf-0").to_dict()["decision"]
    assert dec["reasons"] and all(r["method"] == "replacement" for r in dec["reasons"])
    assert "model-agnostic" in dec["method"] and "median" in dec["method"]
    assert "np." not in json.dumps(dec)  # a class reads as its value (1), never numpy 2's np.int64(1)
    assert [abs(r["contribution"]) for r in dec["reasons"]] == sorted((abs(r["contribution"]) for r in dec["reasons"]),
                                                                     reverse=True)


def test_without_kept_inputs_the_record_says_why(credit: dict[str, Any]) -> None:
    dec = credit["lg"].audit("request:bare-0").to_dict()["decision"]
    assert dec["inputs"] is None and dec["reasons"] == []
    assert "keep_inputs=True" in dec["inputs_note"]
    assert dec["rule"] is None and "decision" in dec["rule_note"]


def test_decision_json_validates(credit: dict[str, Any], tmp_path: Path) -> None:
    from lineage.audit import schema

    for ref in ("request:lr-1", "request:rf-1", "request:bare-1"):
        doc = credit["lg"].audit(ref).to_dict()
        jsonschema.Draft202012Validator(schema()).validate(doc)
    model_doc = credit["lg"].audit("credit_lr").to_dict()
    assert model_doc["decision"] is None
    jsonschema.Draft202012Validator(schema()).validate(model_doc)


def test_kept_inputs_are_erased_with_the_prediction(credit: dict[str, Any]) -> None:
    lg = credit["lg"]
    pid = lg.get("request:lr-3").id
    assert query_rows.prediction_inputs(lg.store, pid)[0] is not None
    lg.redact(pid, reason="GDPR request 1")
    assert query_rows.prediction_inputs(lg.store, pid)[0] is None
    assert lg.verify().ok
    dec = lg.audit(pid).to_dict()["decision"]
    assert dec["inputs"] is None and "erased" in dec["inputs_note"]


def test_an_edited_kept_input_fails_verify_and_the_record(credit: dict[str, Any]) -> None:
    lg = credit["lg"]
    pid = lg.get("request:lr-4").id
    path = lg.store.path
    lg.close()
    con = sqlite3.connect(path)
    con.execute("UPDATE prediction_inputs SET inputs = ? WHERE prediction = ?", (json.dumps({"income": 1.0}), pid))
    con.commit()
    con.close()
    with lineage.open(path) as again:
        assert not again.verify().ok
        assert not again.audit(pid).ok


def test_bad_decision_rule_is_refused(credit: dict[str, Any]) -> None:
    lg = credit["lg"]
    with pytest.raises(lineage.InvalidInputError):
        lg.log_predictions("credit_lr", credit["new"], [0] * 5, decision="threshold 0.3")  # type: ignore[arg-type]


def test_cli_explain_prediction(credit: dict[str, Any]) -> None:
    db = str(credit["lg"].store.path)
    res = CliRunner().invoke(cli, ["--db", db, "explain", "request:lr-0"])
    assert res.exit_code == 0, res.output
    assert "exact (linear)" in res.output and "income" in res.output
    res = CliRunner().invoke(cli, ["--db", db, "explain", "request:lr-0", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert [r["feature"] for r in doc["reasons"]] == [r["feature"] for r in credit["lg"].explain("request:lr-0")["reasons"]]
    # a prediction logged without a score says nothing of one (not "score None")
    res = CliRunner().invoke(cli, ["--db", db, "explain", "request:bare-0"])
    assert res.exit_code == 0, res.output
    assert "output " in res.output and "score" not in res.output.splitlines()[1]


def test_cli_explain_model_shows_feature_importance(credit: dict[str, Any]) -> None:
    db = str(credit["lg"].store.path)
    res = CliRunner().invoke(cli, ["--db", db, "explain", "credit_rf", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert {i["feature"] for i in doc["importance"]} == set(FEATURES)
    res = CliRunner().invoke(cli, ["--db", db, "explain", "applications"])
    assert res.exit_code == 1 and "model or a prediction" in res.output


def test_decision_record_html(credit: dict[str, Any], tmp_path: Path) -> None:
    html = credit["lg"].audit("request:lr-0").to_html()
    assert "Decision record" in html and "Annex IV technical documentation" not in html.split("<body>")[0]
    for part in ("Inputs", "Reasons", "Decision rule", "income", "exact (linear)"):
        assert part in html
