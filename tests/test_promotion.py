"""Which model is live: promotion labels, NAME@LABEL, serving state in the inventory and
`audit NAME`, labels at prediction time, bad input, and the migration that adds them.

The store is the one of issue 13: a 15-run sweep, a signed-off `logistic_regression@3`
promoted to production and serving 5,000 predictions, and a retrained `@5` awaiting review.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import lineage
from lineage.cli import cli
from lineage.store import Store

BACKENDS = ("sqlite", "postgres")  # conftest runs the store fixtures on both

NAME = "logistic_regression"


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"age": rng.integers(18, 80, n), "income": rng.normal(50, 10, n).round(2),
                       "sex": rng.choice(["f", "m"], n), "region": rng.choice(["n", "s", "e"], n)})
    df["default"] = ((df.age > 45) ^ (rng.random(n) < 0.1)).astype(int)
    return df


def _pipeline(C: float) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer([("num", StandardScaler(), ["age", "income"]), ("cat", OneHotEncoder(), ["sex", "region"])])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(C=C, max_iter=200))])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Issue 13's store: 15-run sweep (versions 1-4 logged in it), @3 signed off,
    promoted and serving 5,000 predictions, @5 retrained later."""
    root = tmp_path_factory.mktemp("served")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("LINEAGE_USER", "tester")
    mp.setenv("LINEAGE_NAME", "tester")  # not the developer's git user.name
    df = _frame(300, 0)
    df.to_csv(root / "applications.csv", index=False)
    db = root / ".lineage" / "lineage.db"
    lg = lineage.open(db)
    data = lg.log_dataset(root / "applications.csv", name="applications")
    X, y = df.drop(columns="default"), df["default"]
    models, fitted = [], []
    for i, C in enumerate(np.logspace(-2, 2, 15)):
        with lg.start_run("sweep", params={"C": float(C)}) as run:
            run.log_input(data)
            if i < 4:  # the sweep's first four runs kept their model (fitting all 15 only costs time)
                fitted.append(_pipeline(float(C)).fit(X, y))
                run.log_metric("accuracy", float(fitted[-1].score(X, y)))
                models.append(run.log_model(fitted[-1], NAME))
            else:
                run.log_metric("accuracy", 0.8 - i / 100)
    lg.annotate(models[2], "sign_off", "validated by model risk, MRM-114")
    promo = lg.promote(f"{NAME}@3", "production", reason="MRM-114")
    Xp = _frame(5000, 1).drop(columns="default")
    lg.log_predictions(models[2], Xp, fitted[2].predict(Xp), request_ids=[f"req-{i}" for i in range(5000)])
    with lg.start_run("retrain", params={"C": 1.0}) as run:
        run.log_input(data)
        run.log_metric("accuracy", 0.5)
        models.append(run.log_model(_pipeline(1.0).fit(X.iloc[:200], y.iloc[:200]), NAME))
    lg.close()
    yield {"db": db, "models": [m.id for m in models], "promotion": promo, "root": root}
    mp.undo()


def _open(served: dict[str, Any]) -> lineage.Lineage:
    return lineage.open(served["db"])


def _cli(served: dict[str, Any], *args: str) -> Any:
    return CliRunner().invoke(cli, ["--db", str(served["db"]), *args], env={"COLUMNS": "250"})


def test_name_at_label_is_the_promoted_version(served: dict[str, Any]) -> None:
    with _open(served) as lg:
        assert lg.get(f"{NAME}@production").id == served["models"][2]
        assert lg.get(f"model:{NAME}@production").id == served["models"][2]
        assert lg.get(NAME).id == served["models"][4]  # everywhere else a bare name is the newest
        assert {k: v.id for k, v in lg.labels(NAME).items()} == {"production": served["models"][2]}
    p = served["promotion"]
    assert (p.name, p.label, p.version, p.reason) == (NAME, "production", 3, "MRM-114")
    # the person and the account promoting: the name alone is the checkout's git user
    assert p.author.startswith("tester") and p.author.endswith(f"(tester@{socket.gethostname()})")


@pytest.mark.parametrize("command", [["show"], ["trace"], ["audit"], ["features"], ["which-data"]])
def test_name_at_label_resolves_in_every_command(served: dict[str, Any], command: list[str]) -> None:
    result = _cli(served, *command, f"{NAME}@production", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    model3 = served["models"][2]
    if command == ["show"]:
        assert doc["id"] == model3 and doc["attrs"]["labels"] == ["production"]
    elif command == ["trace"]:
        assert doc["root"] == model3
    elif command == ["audit"]:
        assert doc["model"]["id"] == model3 and doc["model"]["labels"] == ["production"]
    elif command == ["features"]:
        assert doc["model"]["id"] == model3 and doc["model"]["version"] == 3
    else:
        assert [d["name"] for d in doc["items"]] == ["applications"]


def test_inventory_lists_the_promoted_version_with_serving_state(served: dict[str, Any]) -> None:
    result = _cli(served, "audit", "--inventory", "--json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)["items"]
    assert len(items) == 1
    item = items[0]
    assert (item["name"], item["version"], item["newest"], item["labels"]) == (NAME, 3, 5, {"production": 3})
    assert item["id"] == served["models"][2]
    assert item["predictions"] == 5000 and item["signed_off"]["author"] == "tester"
    assert "labelled production" in item["selected"]
    per_version = {r["version"]: r for r in item["serving"]}
    assert per_version[3]["predictions"] == 5000 and per_version[3]["labels"] == ["production"]
    assert per_version[5]["predictions"] == 0 and per_version[5]["labels"] == []
    assert item["flags"] == []  # every prediction was made under a label
    assert item["headline_metric"]["key"] == "accuracy"
    text = _cli(served, "audit", "--inventory")
    assert "production @3" in text.output and "newest @5" in text.output
    html = served["root"] / "inventory.html"
    assert _cli(served, "audit", "--inventory", "-o", str(html)).exit_code == 0
    assert "production → v3" in html.read_text()


def test_audit_name_audits_production_and_says_so(served: dict[str, Any]) -> None:
    with _open(served) as lg:
        doc = lg.audit(NAME).to_dict()
    assert doc["model"]["id"] == served["models"][2] and doc["model"]["version"] == 3
    assert doc["model"]["selection"].startswith(f"{NAME} resolved to @3, the version labelled production")
    assert doc["model"]["selection"] in doc["report"]["notes"]
    result = _cli(served, "audit", NAME)
    assert result.exit_code == 0 and "resolved to @3" in result.output
    html = served["root"] / "audit.html"
    assert _cli(served, "audit", NAME, "-o", str(html)).exit_code == 0
    assert "labelled production" in html.read_text()


def test_audit_without_production_says_which_version_it_chose(tmp_path: Path, lg: lineage.Lineage) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    with lg.start_run("fit") as run:
        run.log_model(LogisticRegression().fit(X, y), "m")
        run.log_model(LogisticRegression(C=2.0).fit(X, y), "m")
    lg.promote("m@1", "staging")
    doc = lg.audit("m").to_dict()
    assert doc["model"]["version"] == 2
    assert doc["model"]["selection"] == "no version of m is promoted to production; this is the newest, @2 of 2"
    assert "selection" not in lg.audit("m@2").to_dict()["model"]  # an explicit version needs no note
    inv = lg.inventory().to_dict()["items"][0]
    assert (inv["version"], inv["labels"]) == (2, {"staging": 1})
    assert "no version is labelled production" in inv["selected"]


def test_a_model_named_in_hex_is_audited_at_production_as_any_name(lg: lineage.Lineage) -> None:
    """`bad`, `cafe`, `2024` are hex: read as an id's prefix, they skipped the rule that
    a bare model name means its production version (and `bad` could find another node)."""
    from sklearn.linear_model import LogisticRegression

    X, y = np.random.default_rng(1).normal(size=(40, 3)), np.arange(40) % 2
    with lg.start_run("fit") as run:
        first = run.log_model(LogisticRegression().fit(X, y), "bad")
        run.log_model(LogisticRegression(C=3.0).fit(X, y), "bad")
    lg.promote("bad@1", "production")
    doc = lg.audit("bad").to_dict()
    assert doc["model"]["id"] == first.id and doc["model"]["version"] == 1
    assert doc["model"]["selection"].startswith("bad resolved to @1, the version labelled production")


def test_a_version_registered_under_a_second_name_is_audited_with_that_names_labels(lg: lineage.Lineage,
                                                                                     store_path: Any) -> None:
    """autolog logs the fitted model under its class name, then the script's
    `log_model(registered_model_name=...)` logs the same bytes: one version with two
    names. Its labels under the registered name were missing from `audit NAME`, the
    inventory and its predictions' reports, and its predictions were flagged as made
    without a label."""
    from sklearn.linear_model import LogisticRegression

    X, y = np.random.default_rng(2).normal(size=(40, 3)), np.arange(40) % 2
    clf = LogisticRegression().fit(X, y)
    with lg.start_run("fit") as run:
        first = run.log_model(clf, "LogisticRegression")
        assert run.log_model(clf, "LogisticRegression").id == first.id
    lg.register_model(first, "credit-risk")
    # (the alias the MLflow plugin writes for its own model id: a handle, not a name)
    lg.store.write("alias", {"node": first.id}, {"aliases": [(first.id, "mlflow:m-0123")]})
    assert lg.model_names() == ["LogisticRegression", "credit-risk"]
    lg.promote("credit-risk@1", "production")  # under the name it gives, not the version's own
    assert lg.get("credit-risk@production").id == first.id
    assert lg.store.labels_of("LogisticRegression") == {}
    with pytest.raises(lineage.NodeNotFoundError, match="no version of 'credit-risk' holds the label 'staging'; "
                                                        r"its labels: production \(on @1\)"):
        lg.get("credit-risk@staging")
    lg.log_predictions(first, X[:3].tolist(), clf.predict(X[:3]).tolist(), request_ids=["a", "b", "c"])

    asked = lg.audit("credit-risk").to_dict()["model"]
    assert (asked["id"], asked["name"], asked["version"], asked["labels"]) == (first.id, "credit-risk", 1, ["production"])
    assert asked["selection"].startswith("credit-risk resolved to @1, the version labelled production")
    assert asked["other_names"] == [{"name": "LogisticRegression", "version": 1, "versions": 1, "labels": []}]
    assert asked["unlabelled_serving"] == []
    own = lg.audit("LogisticRegression").to_dict()["model"]
    assert (own["name"], own["labels"]) == ("LogisticRegression", [])
    assert own["other_names"] == [{"name": "credit-risk", "version": 1, "versions": 1, "labels": ["production"]}]
    assert own["unlabelled_serving"] == []  # it held a label, under its other name
    assert lg.audit(first.id).to_dict()["model"]["name"] == "LogisticRegression"  # by id: its own name
    assert lg.labels_at("request:a") == ["credit-risk@production"]
    for ref, labels in (("credit-risk", ["production"]), ("LogisticRegression", ["credit-risk@production"])):
        shown = CliRunner().invoke(cli, ["--db", str(store_path), "show", ref, "--json"])
        assert shown.exit_code == 0 and json.loads(shown.output)["attrs"]["labels"] == labels, shown.output
    report = lg.audit("LogisticRegression")
    assert "| Also recorded as | **credit-risk** version 1 of 1: production |" in report.to_markdown()
    assert "<dt>Also recorded as</dt><dd><strong>credit-risk</strong> version 1 of 1: production</dd>" in report.to_html()

    items = {i["name"]: i for i in lg.inventory().to_dict()["items"]}
    assert set(items) == {"LogisticRegression", "credit-risk"}
    assert items["credit-risk"]["labels"] == {"production": 1} and "labelled production" in items["credit-risk"]["selected"]
    assert all(not i["flags"] for i in items.values())


def test_moving_a_label_ends_it_on_the_previous_version(tmp_path: Path, served: dict[str, Any]) -> None:
    import shutil

    # a copy: this test moves the label the other tests rely on
    copy = tmp_path / "copy"
    shutil.copytree(served["db"].parent, copy)
    db = copy / "lineage.db"
    runner = CliRunner(env={"COLUMNS": "250"})
    moved = runner.invoke(cli, ["--db", str(db), "promote", f"{NAME}@5", "production", "--reason", "retrained"])
    assert moved.exit_code == 0, moved.output
    assert "is now @5" in moved.output and "moved from" in moved.output
    hist = json.loads(runner.invoke(cli, ["--db", str(db), "history", NAME, "--json"]).stdout)
    assert [(p["action"], p["version"], p["label"]) for p in hist["promotions"]] == [
        ("promote", 3, "production"), ("end", 3, "production"), ("promote", 5, "production")]
    assert hist["promotions"][-1]["reason"] == "retrained"
    assert hist["labels"] == {"production": 5}
    assert [i["labels"] for i in hist["items"]] == [[], [], [], [], ["production"]]
    assert hist["items"][2]["predictions"]["count"] == 5000
    text = runner.invoke(cli, ["--db", str(db), "history", NAME])
    assert "label changes" in text.output and "retrained" in text.output
    with lineage.open(db) as lg:
        assert lg.get(f"{NAME}@production").id == served["models"][4]
        # the prediction was made while @3 held production, and still says so
        pred = lg.get("request:req-7")
        assert lg.labels_at(pred) == ["production"]
        show = json.loads(runner.invoke(cli, ["--db", str(db), "show", "request:req-7", "--json"]).stdout)
        assert show["attrs"]["labels_at_prediction"] == ["production"]
        # and its decision record says so, after the label moved on
        record = lg.audit("request:req-7").write(tmp_path / "decision.html").read_text()
        assert "labels it held when this prediction was made: production" in record
        # @3 now serves with no label: the inventory flags new predictions it makes
        lg.log_predictions(served["models"][2], _frame(10, 3).drop(columns="default"), [0] * 10)
        item = lg.inventory().to_dict()["items"][0]
        assert item["version"] == 5
        assert item["flags"] == [{"version": 3, "id": served["models"][2], "flag": "serves predictions without a label",
                                  "predictions": 10, "last_prediction_at": item["flags"][0]["last_prediction_at"]}]
        assert lg.labels_at(lg.nodes(kind="prediction", limit=1)[0]) == []
        # and so does the audit of the production version (the one an auditor is
        # given), in every format, and @3's own: the served model is not the audited one
        report = lg.audit(NAME)
        served_unlabelled = report.to_dict()["model"]["unlabelled_serving"]
        assert [(u["version"], u["predictions"], u["this"]) for u in served_unlabelled] == [(3, 10, False)]
        html = report.write(tmp_path / "prod.html").read_text()
        assert "version 3 of logistic_regression made 10 predictions while holding no label" in html
        md = report.write(tmp_path / "prod.md").read_text()
        assert "**version 3 of logistic\\_regression made 10 predictions while holding no label**" in md
        own = lg.audit(f"{NAME}@3").write(tmp_path / "v3.md").read_text()
        assert "**this version made 10 predictions while holding no label**" in own
        # unpromote: the label names nothing, and saying so is one line, exit 1
        lg.unpromote(NAME, "production", reason="incident 7")
        assert lg.labels(NAME) == {}
        assert lg.verify().ok
    gone = runner.invoke(cli, ["--db", str(db), "show", f"{NAME}@production"])
    assert gone.exit_code == 1
    assert "no version of 'logistic_regression' holds the label 'production'" in gone.output
    assert len(gone.output.strip().splitlines()) == 1
    again = runner.invoke(cli, ["--db", str(db), "unpromote", NAME, "production"])
    assert again.exit_code == 1 and len(again.output.strip().splitlines()) == 1


def test_promoting_the_holder_again_records_nothing(lg: lineage.Lineage) -> None:
    from sklearn.linear_model import LogisticRegression

    with lg.start_run("fit") as run:
        run.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "m")
    first = lg.promote("m", "champion")
    events = lg.store.head()[0]
    again = lg.promote("m@1", "champion")
    assert lg.store.head()[0] == events
    assert (again.event, again.version) == (first.event, 1)


@pytest.mark.parametrize("args, message", [
    (["promote", "applications", "production"], "only a model version can be promoted"),
    (["promote", "no_such_model", "production"], "no node matches 'no_such_model'"),
    (["promote", f"{NAME}@3", "123"], "a label is a word"),
    (["promote", f"{NAME}@3", "bad label"], "a label is a word"),
    (["promote", f"{NAME}@staging", "production"], "holds the label 'staging'"),
    (["unpromote", NAME, "staging"], "no version of 'logistic_regression' holds the label 'staging'"),
    (["unpromote", f"{NAME}@staging", "production"], f"give the model name and one label: {NAME} production"),
    (["audit", f"{NAME}@canary"], "holds the label 'canary'"),
])
def test_bad_promotions_are_one_line_exit_1_and_record_nothing(served: dict[str, Any], args: list[str], message: str) -> None:
    with _open(served) as lg:
        before = lg.store.head()
    result = _cli(served, *args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    with _open(served) as lg:
        assert lg.store.head() == before


def test_unpromote_takes_name_at_label_for_the_name(lg: lineage.Lineage) -> None:
    from sklearn.linear_model import LogisticRegression

    with lg.start_run("fit") as run:
        run.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "m")
        run.log_model(LogisticRegression(C=2.0).fit([[0.0], [1.0]], [0, 1]), "ops@prod")  # a name with '@'
    lg.promote("m", "production")
    lg.promote("ops@prod", "prod")
    # `m@production` where the name goes: the reference names the same label
    assert lg.unpromote("m@production", "production").name == "m" and lg.labels("m") == {}
    assert lg.unpromote("ops@prod", "prod").name == "ops@prod"  # a model really named so keeps its name


def test_an_edited_promotion_fails_verify(tmp_path: Path, lg: lineage.Lineage) -> None:
    from sklearn.linear_model import LogisticRegression

    with lg.start_run("fit") as run:
        run.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "m")
        run.log_model(LogisticRegression(C=3.0).fit([[0.0], [1.0]], [0, 1]), "m")
    lg.promote("m@1", "production")
    seq = lg.promote("m@2", "production").event
    assert lg.verify().ok
    lg.store.conn.execute("UPDATE promotions SET model = (SELECT model FROM promotions WHERE pk = 1) WHERE pk = 3")
    report = lg.verify()
    assert not report.ok and report.first_bad == seq


@pytest.mark.sqlite_only  # edits the file with sqlite3
def test_a_store_without_promotions_upgrades_and_still_verifies(store_path: Path) -> None:
    from lineage import store as store_module

    old = Store(store_path, actor="agent:" + "0" * 64)
    old.close()
    conn = sqlite3.connect(store_path)
    conn.execute("DROP TABLE promotions")
    conn.execute("DROP TABLE importances")
    conn.execute("DROP TABLE prediction_inputs")  # (migration 7, after this test's 6)
    conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    lg = lineage.open(store_path)
    assert lg.store.schema_version() == store_module.SCHEMA_VERSION
    from sklearn.linear_model import LogisticRegression

    with lg.start_run("fit") as run:
        run.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "m")
    lg.promote("m", "production")
    assert lg.get("m@production").kind == "model"
    assert lg.verify(record=True).ok and lg.verify().ok
    plan = " ".join(r[-1] for r in lg.store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT model, action FROM promotions WHERE name = ? AND label = ? ORDER BY pk DESC LIMIT 1",
        ("m", "production")))
    assert "promotions_label" in plan  # NAME@LABEL is one indexed lookup
    lg.close()


def test_a_name_containing_at_still_resolves_as_a_name(lg: lineage.Lineage, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    node = lg.log_dataset(tmp_path / "a.csv", name="alice@host")
    assert lg.get("alice@host").id == node.id


def test_label_references_parse() -> None:
    from lineage.model import parse_ref

    assert (parse_ref("risk@production").name, parse_ref("risk@production").label) == ("risk", "production")
    assert parse_ref("model:risk@staging").kind == "model" and parse_ref("model:risk@staging").label == "staging"
    assert parse_ref("train@2").version == 2 and parse_ref("train@2").label is None


def test_labels_follow_any_sequence_of_changes() -> None:
    """Property: after any sequence of promote/unpromote, each label is held by the
    version the last change put it on (or none), history replays to the same, and the
    store verifies."""
    import tempfile

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from sklearn.linear_model import LogisticRegression

    ops = st.lists(st.tuples(st.sampled_from(["promote", "unpromote"]), st.integers(1, 3), st.sampled_from(["a", "b"])),
                   max_size=8)

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(ops)
    def check(sequence: list[tuple[str, int, str]]) -> None:
        with tempfile.TemporaryDirectory() as tmp, lineage.open(Path(tmp) / "l.db") as lg:
            with lg.start_run("fit") as run:
                versions = [run.log_model(LogisticRegression(C=c).fit([[0.0], [1.0]], [0, 1]), "m").id for c in (1.0, 2.0, 3.0)]
            expected: dict[str, str] = {}
            for action, v, label in sequence:
                if action == "promote":
                    lg.promote(f"m@{v}", label)
                    expected[label] = versions[v - 1]
                elif label in expected:
                    lg.unpromote("m", label)
                    del expected[label]
                else:
                    with pytest.raises(lineage.NodeNotFoundError):
                        lg.unpromote("m", label)
            assert {k: n.id for k, n in lg.labels("m").items()} == expected
            replay = lg.model_history("m").labels
            assert replay == {k: versions.index(v) + 1 for k, v in expected.items()}
            for label, holder in expected.items():
                assert lg.get(f"m@{label}").id == holder
            assert lg.verify().ok

    check()


def test_the_headline_metric_is_the_value_mlflows_rule_picks() -> None:
    from types import SimpleNamespace

    from lineage.audit.serving import headline_metric

    t = "2024-05-01T10:00:00"
    rows = [{"key": "auc", "value": 0.9, "step": 5, "at": t + "Z", "dataset": None, "group": None},
            {"key": "auc", "value": 0.6, "step": 1, "at": t + ".5Z", "dataset": None, "group": None},  # early step, late
            {"key": "auc", "value": 0.1, "step": 9, "at": t + "Z", "dataset": None, "group": "old"},  # per group: not it
            {"key": "loss", "value": 0.3, "step": 9, "at": t + "Z", "dataset": None, "group": None}]
    assert headline_metric(SimpleNamespace(metrics=rows)) == {"key": "auc", "value": 0.9, "dataset": None}
