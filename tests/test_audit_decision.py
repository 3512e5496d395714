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


def test_lineage_predict_keep_inputs_lets_explain_say_why(credit: dict[str, Any], tmp_path: Path) -> None:
    """Batch scoring with the CLI recorded each prediction's digest only, and had no
    way to keep its inputs: `explain` of its predictions never gave a reason."""
    db = str(credit["lg"].store.path)
    new = credit["new"]
    rows = [",".join(["id", *FEATURES])] + [",".join([f"b-{i}", *(repr(float(v)) for v in r)])
                                             for i, r in enumerate(new.to_numpy())]
    (tmp_path / "batch.csv").write_text("\n".join(rows) + "\n")
    runner = CliRunner()
    res = runner.invoke(cli, ["--db", db, "predict", "credit_lr", str(tmp_path / "batch.csv"), "-o",
                              str(tmp_path / "out.csv"), "--id-column", "id", "--keep-inputs"])
    assert res.exit_code == 0, res.output
    got = credit["lg"].explain("request:b-0")
    want = credit["lg"].explain("request:lr-0")  # the same row, logged through the API with its inputs
    assert [r["feature"] for r in got["reasons"]] == [r["feature"] for r in want["reasons"]]
    assert [r["contribution"] for r in got["reasons"]] == pytest.approx([r["contribution"] for r in want["reasons"]])
    (tmp_path / "plain.csv").write_text((tmp_path / "batch.csv").read_text().replace("b-", "c-"))
    res = runner.invoke(cli, ["--db", db, "predict", "credit_lr", str(tmp_path / "plain.csv"), "-o",
                              str(tmp_path / "out2.csv"), "--id-column", "id"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["--db", db, "explain", "request:c-0"])
    assert res.exit_code == 0 and "not kept" in res.output and "--keep-inputs" in res.output


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


# ---------------------------------------------------------------------------
# wide sparse rows (TF-IDF): kept as their non-zero features, rebuilt as CSR rows


@pytest.fixture
def wide(lg: lineage.Lineage) -> dict[str, Any]:
    """A LogisticRegression and a MultinomialNB fit on a real scipy.sparse matrix wider
    than SPARSE_DENSE_WIDTH, their predictions on sparse rows logged with kept inputs."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB

    from lineage.hashing import SPARSE_DENSE_WIDTH

    width = 5000
    assert width > SPARSE_DENSE_WIDTH
    X = sp.random(200, width, density=0.002, format="csr", random_state=0)
    y = (np.asarray(X[:, :2500].sum(axis=1)).ravel() > np.asarray(X[:, 2500:].sum(axis=1)).ravel()).astype(int)
    lr = LogisticRegression(C=10.0, max_iter=1000).fit(X, y)
    nb = MultinomialNB().fit(X, y)
    with lg.start_run("fit-tfidf") as run:
        m_lr = run.log_model(lr, "tfidf_lr")
        m_nb = run.log_model(nb, "tfidf_nb")
    new = X[:6]
    rule = {"threshold": 0.5, "positive": "spam", "negative": "ham"}
    lg.log_predictions(m_lr, new, lr.predict(new).tolist(), scores=lr.predict_proba(new)[:, 1].tolist(),
                       request_ids=[f"wlr-{i}" for i in range(6)], keep_inputs=True, decision=rule)
    lg.log_predictions(m_nb, new, nb.predict(new).tolist(), scores=nb.predict_proba(new)[:, 1].tolist(),
                       request_ids=[f"wnb-{i}" for i in range(6)], keep_inputs=True, decision=rule)
    return {"lg": lg, "lr": lr, "nb": nb, "X": X, "new": new, "width": width}


def _nonzero(row: Any) -> dict[str, float]:
    coo = row.tocoo()
    return {f"x{j}": float(v) for j, v in zip(coo.col, coo.data)}


def test_a_kept_wide_sparse_row_is_rebuilt_as_a_csr_row(wide: dict[str, Any]) -> None:
    """A kept row of a model wider than SPARSE_DENSE_WIDTH names its non-zero features;
    the others are 0 (not NaN), and the row goes to the model as a 1 × width CSR row,
    which re-scores to the recorded output."""
    import scipy.sparse as sp

    from lineage.audit import decision

    lg, lr, nb = wide["lg"], wide["lr"], wide["nb"]
    for i in range(6):
        for prefix, model in (("wlr", lr), ("wnb", nb)):
            pid = lg.get(f"request:{prefix}-{i}").id
            inputs, note, _ = decision.kept_inputs(lg.store, pid)
            assert inputs == _nonzero(wide["new"][i]) and not note
            x = decision.sparse_rows(decision.model_features(model, {}), [inputs])
            assert sp.issparse(x) and x.format == "csr" and x.shape == (1, wide["width"]) and x.nnz == len(inputs)
            assert (x != wide["new"][i]).nnz == 0
            doc = lg.explain(pid)
            assert model.predict(x).tolist() == [doc["output"]]
            assert model.predict_proba(x)[0, 1] == pytest.approx(doc["score"], rel=1e-12)


def test_wide_sparse_linear_reasons_are_exact_over_the_non_zero_features(wide: dict[str, Any]) -> None:
    lg, lr = wide["lg"], wide["lr"]
    row = wide["new"][1]
    doc = lg.explain("request:wlr-1")
    assert doc["note"] is None, doc["note"]
    assert doc["inputs"] == _nonzero(row)
    got = {r["feature"]: r["contribution"] for r in doc["reasons"]}
    # the row's non-zero features, each coefficient × value (the baseline is the empty row)
    assert set(got) == set(_nonzero(row)) and 0 < len(got) < 100
    for f, v in _nonzero(row).items():
        assert got[f] == pytest.approx(lr.coef_[0][int(f[1:])] * v, rel=1e-9, abs=1e-12)
    assert all(r["method"] == "exact (linear)" and r["baseline"] == 0 for r in doc["reasons"])
    assert [abs(c) for c in got.values()] == sorted(map(abs, got.values()), reverse=True)
    assert "exact" in doc["method"] and "0" in doc["baseline_source"]
    # re-scoring: the contributions add up to the recorded score's log-odds minus the empty row's
    dec = lg.audit("request:wlr-1").to_dict()["decision"]
    assert dec["score_at_baseline"] == pytest.approx(float(lr.intercept_[0]))
    logit = float(np.log(dec["score"] / (1 - dec["score"])))
    assert sum(got.values()) + dec["score_at_baseline"] == pytest.approx(logit, rel=1e-6)
    assert dec["baseline"] == {f: 0.0 for f in got}  # not 5,000 zeros


def test_wide_sparse_replacement_reasons_name_the_non_zero_features(wide: dict[str, Any]) -> None:
    import scipy.sparse as sp

    lg, nb = wide["lg"], wide["nb"]
    row = wide["new"][2]
    doc = lg.explain("request:wnb-2")
    assert doc["note"] is None, doc["note"]
    assert {r["feature"] for r in doc["reasons"]} == set(_nonzero(row))
    assert "replacement" in doc["method"] and "model-agnostic" in doc["method"]
    k = list(nb.classes_).index(doc["output"])
    full = nb.predict_proba(row)[0, k]
    for r in doc["reasons"]:
        j = int(r["feature"][1:])
        zeroed = sp.lil_matrix(row)
        zeroed[0, j] = 0
        assert r["contribution"] == pytest.approx(full - nb.predict_proba(zeroed.tocsr())[0, k], rel=1e-9, abs=1e-12)


def test_wide_sparse_decision_in_the_audit_report_and_cli(wide: dict[str, Any], tmp_path: Path) -> None:
    from lineage.audit import schema

    lg = wide["lg"]
    db = str(lg.store.path)
    for ref in ("request:wlr-0", "request:wnb-0"):
        doc = lg.audit(ref).to_dict()
        jsonschema.Draft202012Validator(schema()).validate(doc)
        dec = doc["decision"]
        assert dec["reasons"] and dec["reasons_note"] is None and dec["outcome"]
        out = tmp_path / f"{ref.split(':')[1]}.json"
        res = CliRunner().invoke(cli, ["--db", db, "audit", ref, "-o", str(out)])
        assert res.exit_code == 0, res.output
        assert json.loads(out.read_text())["decision"]["reasons"] == dec["reasons"]
        res = CliRunner().invoke(cli, ["--db", db, "explain", ref, "--json"])
        assert res.exit_code == 0, res.output
        got = json.loads(res.output)
        assert got["reasons"] == dec["reasons"] and got["note"] is None
        res = CliRunner().invoke(cli, ["--db", db, "explain", ref])
        assert res.exit_code == 0 and "x" in res.output and "no reasons" not in res.output
        html = lg.audit(ref).to_html()
        assert "Reasons" in html and "no reasons" not in html


def test_a_narrow_row_missing_a_feature_is_not_a_sparse_row(lg: lineage.Lineage) -> None:
    """Only past SPARSE_DENSE_WIDTH does a missing feature mean 0: a narrow model's
    dict row without one of its features still has no reasons, saying which."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    frame = pd.DataFrame(X, columns=FEATURES)
    lr = LogisticRegression(max_iter=1000).fit(frame, y)
    with lg.start_run("fit") as run:
        model = run.log_model(lr, "narrow")
    lg.log_predictions(model, [{"income": 50.0, "debt": 10.0}], [1], request_ids=["short"], keep_inputs=True)
    doc = lg.explain("request:short")
    assert doc["reasons"] == [] and "lack feature(s) age" in doc["note"]


def test_a_live_services_decisions_are_explained_as_a_batchs(credit: dict[str, Any]) -> None:
    """`prediction_logger` took neither keep_inputs nor decision, so a prediction a
    live service logged (examples/serve.py's way) could never be explained: "input
    values were not kept", "no decision rule was recorded"."""
    lg, lr, new = credit["lg"], credit["lr"], credit["new"]
    scores = lr.predict_proba(new)[:, 1].tolist()
    with lg.prediction_logger("credit_lr", keep_inputs=True, decision=credit["rule"]) as log:
        log.log(new.iloc[:2], lr.predict(new.iloc[:2]).tolist(), request_ids=["live-0", "live-1"], scores=scores[:2])
        for i in (2, 3):  # one request at a time, as a service logs them: plain lists
            log.log([new.iloc[i].tolist()], [int(lr.predict(new.iloc[[i]])[0])], request_ids=[f"live-{i}"],
                    scores=[scores[i]])
    for i in range(4):
        live = lg.audit(f"request:live-{i}").to_dict()["decision"]
        batch = lg.audit(f"request:lr-{i}").to_dict()["decision"]
        assert live["rule"] == credit["rule"] and live["reasons"] == batch["reasons"]
    with pytest.raises(lineage.InvalidInputError, match="decision must be a mapping"):
        lg.prediction_logger("credit_lr", decision="threshold 0.5")  # type: ignore[arg-type]
    assert lg.verify().ok
