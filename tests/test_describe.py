"""Any scikit-learn estimator described truthfully, feature importance for every model,
feature-level lineage to source columns, and sensitive columns (issue 13).

Real scikit-learn Pipelines on pandas DataFrames, real stores on files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import lineage
from lineage import describe
from lineage.cli import cli
from lineage.errors import InvalidInputError
from lineage.model import Node, make_id


def _frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"age": rng.integers(18, 80, n), "income": rng.normal(50, 10, n).round(2),
                       "sex": rng.choice(["f", "m"], n), "region": rng.choice(["n", "s", "e"], n)})
    df["y"] = ((df.age > 45) ^ (df.sex == "f") & (rng.random(n) < 0.3)).astype(int)
    return df


def _pre() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer([("num", StandardScaler(), ["age", "income"]), ("cat", OneHotEncoder(), ["sex", "region"])])


def _logreg(C: float = 0.5) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    return Pipeline([("pre", _pre()), ("clf", LogisticRegression(C=C, solver="liblinear"))])


FEATURES_OUT = ["num__age", "num__income", "cat__sex_f", "cat__sex_m", "cat__region_e", "cat__region_n", "cat__region_s"]


# ---------------------------------------------------------------------------
# description


def test_a_pipeline_is_described_by_its_steps_and_final_estimator() -> None:
    df = _frame()
    model = _logreg().fit(df.drop(columns="y"), df.y)
    a = describe.describe_model(model)
    assert a["class"] == "sklearn.pipeline.Pipeline"
    assert a["final_estimator"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert a["params"]["C"] == 0.5 and a["params"]["solver"] == "liblinear"
    assert not {"memory", "steps", "transform_input"} & set(a["params"])  # the Pipeline's own say nothing
    assert [s["step"] for s in a["steps"]] == ["Pipeline", "pre", "pre/num", "pre/cat", "clf"]
    assert next(s for s in a["steps"] if s["step"] == "pre/cat")["columns"] == ["sex", "region"]
    assert next(s for s in a["steps"] if s["step"] == "clf")["params"]["C"] == 0.5
    assert a["feature_names"] == ["age", "income", "sex", "region"] and a["n_features"] == 4
    assert a["features_out"] == FEATURES_OUT and a["n_features_out"] == 7
    assert a["feature_sources"]["cat__sex_f"] == ["sex"] and a["feature_sources"]["num__age"] == ["age"]
    assert a["classes"] == [0, 1]
    # native importance over the features the final estimator sees, and per source column
    assert a["importance_source"] == "coef_" and set(a["feature_importance"]) == set(FEATURES_OUT)
    entry = a["importance"]["coef_"]
    assert entry["level"] == "feature"
    by_source = entry["by_source"]
    assert set(by_source) == {"age", "income", "sex", "region"}
    assert by_source["sex"] == pytest.approx(a["feature_importance"]["cat__sex_f"] + a["feature_importance"]["cat__sex_m"], abs=1e-5)


def test_meta_estimators_are_unwrapped() -> None:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier, StackingClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    df = _frame()
    X, y = df.drop(columns="y"), df.y
    search = GridSearchCV(_logreg(), {"clf__C": [0.1, 2.0]}, cv=2).fit(X, y)
    a = describe.describe_model(search)
    assert a["params"]["C"] == search.best_params_["clf__C"]
    assert a["wrappers"][0]["role"] == "search" and a["wrappers"][0]["best_params"] == search.best_params_
    assert a["features_out"] == FEATURES_OUT and a["importance_source"] == "coef_"

    calibrated = CalibratedClassifierCV(_logreg(), cv=2).fit(X, y)
    a = describe.describe_model(calibrated)
    assert a["wrappers"][0]["role"] == "calibration" and a["wrappers"][0]["folds"] == 2
    assert a["params"]["solver"] == "liblinear" and a["features_out"] == FEATURES_OUT
    assert a["importance_source"] == "coef_"  # averaged over the calibration's folds

    Xn = df[["age", "income"]]
    stack = StackingClassifier([("lr", LogisticRegression()), ("rf", RandomForestClassifier(n_estimators=5))],
                               final_estimator=LogisticRegression(), cv=2).fit(Xn, y)
    a = describe.describe_model(stack)
    assert {"lr", "rf", "final_estimator"} <= {s["step"] for s in a["steps"]}
    assert "feature_importance" not in a  # no native importance: permutation is for log_model(evaluation=)
    vote = VotingClassifier([("lr", LogisticRegression()), ("rf", RandomForestClassifier(n_estimators=5))]).fit(Xn, y)
    assert {"lr", "rf"} <= {s["step"] for s in describe.describe_model(vote)["steps"]}

    union = Pipeline([("u", FeatureUnion([("std", StandardScaler()), ("mm", MinMaxScaler())])),
                      ("clf", LogisticRegression())]).fit(Xn, y)
    a = describe.describe_model(union)
    assert a["features_out"] == ["std__age", "std__income", "mm__age", "mm__income"]
    assert a["feature_sources"]["mm__income"] == ["income"]

    plain = RandomForestClassifier(n_estimators=5, random_state=0).fit(Xn, y)
    a = describe.describe_model(plain)
    assert a["params"]["n_estimators"] == 5 and "steps" not in a
    assert a["features_out"] == ["age", "income"] and a["importance_source"] == "feature_importances_"


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from(["a_1", "a_2", "b", "c"]), st.floats(0, 1), min_size=1))
def test_importance_by_source_keeps_the_total(values: dict[str, float]) -> None:
    sources = {"a_1": ["a"], "a_2": ["a"], "b": ["b", "c"]}
    summed = describe.by_source(values, sources)
    assert sum(summed.values()) == pytest.approx(sum(values.values()), abs=1e-4)


# ---------------------------------------------------------------------------
# logging: description, permutation importance, later importance


@pytest.fixture
def project(lg: lineage.Lineage, tmp_path: Path) -> dict[str, Any]:
    """raw@1 -> prep run (drops rows, keeps column names) -> applications@2 -> model;
    a held-out test set recorded as a dataset."""
    df = _frame(300)
    (tmp_path / "raw.csv").write_text(df.to_csv(index=False))
    raw = lg.log_dataset(tmp_path / "raw.csv", name="raw")
    df.iloc[:10].to_csv(tmp_path / "applications.csv", index=False)
    lg.log_dataset(tmp_path / "applications.csv", name="applications")  # applications@1
    with lg.start_run("prep") as run:
        run.log_input(raw)
        clean = df[df.income > 0].iloc[:240]
        clean.to_csv(tmp_path / "applications.csv", index=False)
        apps = run.log_output(tmp_path / "applications.csv", name="applications")  # @2
    df.iloc[240:].to_csv(tmp_path / "test.csv", index=False)
    test = lg.log_dataset(tmp_path / "test.csv", name="test")
    return {"raw": raw, "apps": apps, "test": test, "train": clean, "holdout": df.iloc[240:]}


def test_log_model_records_the_description_and_native_importance(lg: lineage.Lineage, project: dict[str, Any]) -> None:
    train = project["train"]
    with lg.start_run("fit") as run:
        run.log_input(project["apps"])
        node = run.log_model(_logreg().fit(train.drop(columns="y"), train.y), "risk")
    a = lg.get("risk").attrs
    assert a["params"]["C"] == 0.5 and a["features_out"] == FEATURES_OUT and a["size"] > 0
    doc = json.loads(CliRunner().invoke(cli, ["--db", str(lg.db_path), "show", "risk", "--json"]).stdout)
    assert doc["attrs"]["feature_sources"]["cat__sex_f"] == ["sex"]
    # the audit's hyperparameters are the final estimator's, and features have names
    report = lg.audit(node).to_dict()
    assert report["hyperparameters"]["model"]["C"] == 0.5
    assert {f["feature"] for f in report["feature_importance"]} == set(FEATURES_OUT)


def test_permutation_importance_at_log_model(lg: lineage.Lineage, project: dict[str, Any]) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    train, holdout = project["train"], project["holdout"]
    hgb = Pipeline([("pre", _pre()), ("clf", HistGradientBoostingClassifier(max_iter=20))])
    hgb.fit(train.drop(columns="y"), train.y)
    assert "feature_importance" not in describe.describe_model(hgb)  # no native importance
    with lg.start_run("fit") as run:
        run.log_input(project["apps"])
        by_xy = run.log_model(hgb, "hgb", evaluation=(holdout.drop(columns="y"), holdout.y))
        by_ref = run.log_model(_logreg(2.0).fit(train.drop(columns="y"), train.y), "lr", evaluation="test", target="y")
    perm = by_xy.attrs["importance"]["permutation"]
    assert perm["level"] == "input" and perm["rows"] == 60 and perm["n_repeats"] == 5
    assert set(perm["values"]) == {"age", "income", "sex", "region"}
    assert by_xy.attrs["importance_source"] == "permutation"
    assert max(perm["values"], key=perm["values"].get) == "age"
    # with a dataset reference: both methods, each under its name, and the data recorded
    imp = by_ref.attrs["importance"]
    assert set(imp) == {"coef_", "permutation"} and imp["permutation"]["dataset"] == project["test"].id
    assert imp["permutation"]["target"] == "y"
    uses = {(u.node.name, u.role) for u in lg.which_data(by_ref)}
    assert ("test", "evaluation") in uses and ("applications", "training") in uses
    fl = lg.feature_lineage("lr").to_dict()
    age = next(r for r in fl["inputs"] if r["column"] == "age")
    assert set(age["importance"]) == {"coef_", "permutation"}
    assert lg.verify().ok


def test_bad_evaluation_data_records_nothing(lg: lineage.Lineage, project: dict[str, Any]) -> None:
    train = project["train"]
    model = _logreg().fit(train.drop(columns="y"), train.y)
    with lg.start_run("fit") as run:
        before = lg.store.head()
        with pytest.raises(InvalidInputError, match="no column 'label'"):
            run.log_model(model, "risk", evaluation="test", target="label")
        with pytest.raises(InvalidInputError, match="needs target=COLUMN"):
            run.log_model(model, "risk", evaluation="test")
        with pytest.raises(InvalidInputError, match="cannot compute permutation importance"):
            run.log_model(model, "risk", evaluation=(train[["age"]], train.y))
        assert lg.store.head() == before
    assert lg.nodes(kind="model") == []


def test_compute_importance_later_is_recorded_with_its_method(lg: lineage.Lineage, project: dict[str, Any]) -> None:
    train = project["train"]
    with lg.start_run("fit") as run:
        run.log_input(project["apps"])
        run.log_model(_logreg().fit(train.drop(columns="y"), train.y), "risk")
    result = lg.compute_importance("risk", data="test", target="y")
    assert result["method"] == "permutation" and result["dataset"] == project["test"].id and result["rows"] == 60
    assert set(result["values"]) == {"age", "income", "sex", "region"}
    rows = lg.store.conn.execute("SELECT method, level, dataset, target FROM importances").fetchall()
    assert len(rows) == 4 and set(rows) == {("permutation", "input", project["test"].id, "y")}
    fl = lg.feature_lineage("risk")
    assert fl.methods == ["coef_", "permutation"]
    assert next(r for r in fl.inputs if r["column"] == "age")["importance"]["permutation"] == result["values"]["age"]
    # a frame works too (recorded as a dataset first); a bad target records nothing
    again = lg.compute_importance("risk", data=project["holdout"], target="y")
    assert lg.get(again["dataset"]).kind == "dataset"
    before = lg.store.head()
    with pytest.raises(InvalidInputError, match="no column 'nope'"):
        lg.compute_importance("risk", data="test", target="nope")
    with pytest.raises(InvalidInputError, match="not a model"):
        lg.compute_importance("test", data="test", target="y")
    assert lg.store.head() == before
    assert lg.verify().ok


def test_explain_model_with_data_computes_and_records_permutation_importance(lg: lineage.Lineage,
                                                                            project: dict[str, Any]) -> None:
    train = project["train"]
    with lg.start_run("fit") as run:
        run.log_input(project["apps"])
        run.log_model(_logreg().fit(train.drop(columns="y"), train.y), "risk")
    db = str(lg.db_path)
    runner = CliRunner()
    out = runner.invoke(cli, ["--db", db, "explain", "risk", "--data", "test", "--target", "y", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["method"] == "permutation" and set(doc["values"]) == {"age", "income", "sex", "region"}
    assert lg.store.conn.execute("SELECT COUNT(*) FROM importances").fetchone()[0] == 4
    table = runner.invoke(cli, ["--db", db, "explain", "risk", "--data", "test", "--target", "y"])
    assert table.exit_code == 0 and "permutation importance on test" in table.output
    half = runner.invoke(cli, ["--db", db, "explain", "risk", "--data", "test"])
    assert half.exit_code == 2 and "go together" in half.output


# ---------------------------------------------------------------------------
# feature-level lineage and sensitive columns


@pytest.fixture
def fitted(lg: lineage.Lineage, project: dict[str, Any]) -> Node:
    train = project["train"]
    with lg.start_run("fit") as run:
        run.log_input(project["apps"])
        node = run.log_model(_logreg().fit(train.drop(columns="y"), train.y), "risk")
    lg.promote(node, "production")
    return node


def test_features_map_to_source_columns_through_preparation(lg: lineage.Lineage, fitted: Node) -> None:
    fl = lg.feature_lineage("risk@production")
    sex_f = next(i for i in fl.items if i["feature"] == "cat__sex_f")
    assert sex_f["inputs"] == ["sex"] and sex_f["sources"] == ["applications@2.sex"]
    age = next(r for r in fl.inputs if r["column"] == "age")
    assert [s["ref"] for s in age["sources"]] == ["applications@2.age"]
    assert age["origins"] == ["raw@1.age"]  # through the prep run, whose output kept the name
    assert age["chains"][0][1]["via_run"].startswith("run:")
    assert age["importance"]["coef_"] > 0.5
    assert [i["feature"] for i in fl.items] == FEATURES_OUT
    runner = CliRunner(env={"COLUMNS": "200"})
    out = runner.invoke(cli, ["--db", str(lg.db_path), "features", "risk@production"])
    assert out.exit_code == 0 and "applications@2.sex" in out.output and "cat__sex_f" in out.output
    doc = json.loads(runner.invoke(cli, ["--db", str(lg.db_path), "features", "risk", "--json"]).stdout)
    assert doc["check"] == {"ok": True, "violations": []}
    assert {i["feature"]: i["sources"] for i in doc["items"]}["num__income"] == ["applications@2.income"]



def test_features_of_unnamed_data_show_a_short_reference(lg: lineage.Lineage) -> None:
    """Autolog records a fit's DataFrame unnamed: the table names its columns by the
    dataset's short id (still a reference), not all 64 hex digits twice a row; the
    JSON keeps the full id."""
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"age": [20.0, 30.0, 40.0, 50.0], "income": [1.0, 3.0, 2.0, 4.0]})
    with lg.start_run("fit") as run:
        data = run.log_input(X)
        run.log_model(LogisticRegression().fit(X, [0, 0, 1, 1]), "m")
    assert data.name is None
    out = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["--db", str(lg.db_path), "features", "m"])
    assert out.exit_code == 0 and f"{data.id[:len('dataset:') + 12]}.age" in out.output
    assert data.id not in out.output
    doc = json.loads(CliRunner().invoke(cli, ["--db", str(lg.db_path), "features", "m", "--json"]).stdout)
    assert {r["column"]: r["origins"] for r in doc["inputs"]}["age"] == [f"{data.id}.age"]
    # the audit report's input columns, on paper as in the terminal
    report = lg.audit("m")
    short = f"{data.id[:len('dataset:') + 12]}.age"
    assert f"| `age` | {short} | {short} |" in report.to_markdown()
    assert f'<td class="mono small">{short}</td><td class="mono small">{short}</td>' in report.to_html()
    assert f"{data.id}.age" not in report.to_html()


def test_a_sensitive_column_reaching_a_model_fails_the_check(lg: lineage.Lineage, fitted: Node, tmp_path: Path) -> None:
    db = str(lg.db_path)
    runner = CliRunner(env={"COLUMNS": "200"})
    assert runner.invoke(cli, ["--db", db, "check", "sensitive", "risk"]).exit_code == 0
    marked = runner.invoke(cli, ["--db", db, "annotate", "raw", "--sensitive", "sex,age"])
    assert marked.exit_code == 0 and "sex, age" in marked.output
    bad = runner.invoke(cli, ["--db", db, "annotate", "raw", "--sensitive", "gender"])
    assert bad.exit_code == 1 and "has no column 'gender'" in bad.output
    check = runner.invoke(cli, ["--db", db, "check", "sensitive", "risk@production"])
    assert check.exit_code == 1
    assert "sensitive column(s) age, sex reach risk@1 with no allowance" in check.output
    doc = json.loads(runner.invoke(cli, ["--db", db, "check", "sensitive", "risk", "--json"]).stdout)
    assert doc["ok"] is False and doc["violations"] == ["age", "sex"]
    sex = next(s for s in doc["sensitive"] if s["column"] == "sex")
    assert sex["marked_in"] == ["raw@1.sex"] and sex["features"] == ["cat__sex_f", "cat__sex_m"]
    features = runner.invoke(cli, ["--db", db, "features", "risk"])
    assert "reaches the model with no allowance" in features.output
    # a fact in the audit report: JSON and HTML
    report = lg.audit("risk")
    facts = report.to_dict()["model"]["features"]
    assert facts["sensitive_ok"] is False and [s["column"] for s in facts["sensitive"]] == ["age", "sex"]
    html = report.to_html()
    assert "Sensitive columns reaching the model" in html and "raw@1.sex" in html
    # an allowance for one column: the other still fails; then both pass
    runner.invoke(cli, ["--db", db, "annotate", "risk", "--allow-sensitive", "age", "--text", "rating factor, legal 2026-03"])
    assert [v["column"] for v in lg.check_sensitive("risk").violations] == ["sex"]
    lg.allow_sensitive("risk", ["sex"], "fairness testing only, approved by MRM")
    ok = runner.invoke(cli, ["--db", db, "check", "sensitive", "risk"])
    assert ok.exit_code == 0, ok.output
    assert "allowed" in ok.output
    assert lg.verify().ok


def test_a_model_fitted_on_an_array_cannot_pass_the_sensitive_check_unallowed(
        lg: lineage.Lineage, project: dict[str, Any], tmp_path: Path) -> None:
    """Fitted on `.to_numpy()`, the model records no column names: which columns of
    its training data it read is unknown, so a sensitive one there may reach it. The
    gate said "ok" exactly where it could not know."""
    from sklearn.linear_model import LogisticRegression

    train = project["train"]
    with lg.start_run("fit-array") as run:
        run.log_input(project["apps"])
        run.log_model(LogisticRegression(max_iter=500).fit(train[["age", "income"]].to_numpy(), train.y), "blind")
    db, runner = str(lg.db_path), CliRunner(env={"COLUMNS": "200"})
    assert runner.invoke(cli, ["--db", db, "check", "sensitive", "blind"]).exit_code == 0  # nothing marked yet
    lg.mark_sensitive("raw", ["sex"])  # upstream of the training data, carried by the column chain
    check = runner.invoke(cli, ["--db", db, "check", "sensitive", "blind"])
    assert check.exit_code == 1
    assert "sex: sensitive (raw@1.sex), may reach it (the model records no input column names)" in check.output
    assert "sensitive column(s) sex may reach blind@1 with no allowance" in check.output
    doc = json.loads(runner.invoke(cli, ["--db", db, "check", "sensitive", "blind", "--json"]).stdout)
    assert doc["violations"] == ["sex"] and doc["sensitive"][0]["confirmed"] is False
    assert "may reach it: the model records no input column names" in lg.audit("blind").to_html()
    lg.allow_sensitive("blind", ["sex"], "not read: the script takes age and income only (reviewed)")
    assert runner.invoke(cli, ["--db", db, "check", "sensitive", "blind"]).exit_code == 0


def test_a_model_whose_pickle_cannot_load_is_one_line_exit_1(lg: lineage.Lineage, tmp_path: Path) -> None:
    # a scikit-learn model recorded before features were described, whose artifact is damaged
    hex_id = "ab" * 32
    node = Node(make_id("model", hex_id), "model", "old", {"class": "sklearn.linear_model.LogisticRegression",
                                                           "flavor": "sklearn"})
    lg.store.add_node(node, event_type="model")
    lg.store.put_artifact(hex_id, b"not a pickle")
    before = lg.store.head()
    result = CliRunner().invoke(cli, ["--db", str(lg.db_path), "features", "old"])
    assert result.exit_code == 1
    assert "cannot load model:abab" in result.output and "for description" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert lg.store.head() == before


def test_the_fluent_api_passes_evaluation_data_on(lg: lineage.Lineage, project: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from lineage import fluent

    monkeypatch.setitem(fluent._default, "lg", None)  # a fluent default store of this test's own
    monkeypatch.setenv("LINEAGE_DB", str(lg.db_path))
    train, holdout = project["train"], project["holdout"]
    with lineage.start_run(run_name="fluent"):
        node = lineage.log_model(_logreg().fit(train.drop(columns="y"), train.y), "fluent_model",
                                 evaluation=(holdout.drop(columns="y"), holdout.y))
    fluent._default["lg"].close()
    assert set(node.attrs["importance"]) == {"coef_", "permutation"}
