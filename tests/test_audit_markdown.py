"""The Markdown report states the facts the HTML report states (docs/audit.md: the same
content without the pictures). A reviewer reading only `-o report.md` found no dataset
versions, no per-group n or intervals and no input-column table in a model's report, no
model version or labels-at-the-time in a decision record, and no labels or serving
table in the inventory. Each test reads the facts from the JSON document the three
formats share and looks for every one of them in the Markdown, so a fact added to the
JSON later without a Markdown rendering shows up here rather than in an audit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import lineage
from lineage.audit.html import num
from lineage.audit.markdown import cell, code
from lineage.cli import cli


def _applications(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(40_000, 10_000, n).round(-2)
    debt = rng.gamma(2.0, 6_000, n).round(-2)
    frame = pd.DataFrame({"age": rng.integers(18, 80, n), "sex": rng.choice(["f", "m"], n),
                          "income": income, "debt": debt})
    frame["default"] = (rng.random(n) < 1 / (1 + np.exp(-(3 * debt / income - 1)))).astype(int)
    return frame


def _pipeline() -> Pipeline:
    pre = ColumnTransformer([("num", StandardScaler(), ["age", "income", "debt"]), ("cat", OneHotEncoder(), ["sex"])])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=500))])


@pytest.fixture
def credit(tmp_path: Path) -> dict[str, Any]:
    """The credit-risk story in small (examples/credit_risk.py): raw data cleaned into
    two versions of `applications`, a model `risk` trained on each and evaluated on
    `test` per group with group sizes, v1 serving while unlabelled and later labelled
    staging, v2 in production serving requests."""
    data = tmp_path / "data"
    data.mkdir()
    db = tmp_path / ".lineage" / "lineage.db"
    lg = lineage.open(db)
    _applications(120, seed=1).to_csv(data / "test.csv", index=False)
    test = lg.log_dataset(data / "test.csv", name="test")
    held = pd.read_csv(data / "test.csv")
    X_test, y_test = held.drop(columns="default"), held["default"]
    raw = pd.DataFrame()
    models = []
    for seed in (2, 3):  # a second batch: raw@2, applications@2, risk@2
        raw = pd.concat([raw, _applications(150, seed=seed)], ignore_index=True)
        raw.to_csv(data / "raw.csv", index=False)
        raw_node = lg.log_dataset(data / "raw.csv", name="raw")
        lg.mark_sensitive(raw_node, ["sex"])
        with lg.start_run("prepare") as run:
            run.log_input(raw_node)
            raw[raw["income"] >= 10_000].to_csv(data / "applications.csv", index=False)
            apps = run.log_output(data / "applications.csv", name="applications")
        train = pd.read_csv(data / "applications.csv")
        with lg.start_run("train_risk") as run:
            run.log_input(apps)
            clf = _pipeline().fit(train.drop(columns="default"), train["default"])
            run.log_metric("accuracy", clf.score(X_test, y_test), dataset=test)
            for sex in ("f", "m"):
                mask = (X_test["sex"] == sex).to_numpy()
                run.log_metric("accuracy", clf.score(X_test[mask], y_test[mask]), dataset=test, group=f"sex={sex}",
                               n=int(mask.sum()))
            run.log_metric("recall", 0.5, dataset=test, group="age>60")  # no n: no interval, said so
            models.append((clf, run.log_model(clf, "risk")))
    new = _applications(6, seed=4).drop(columns="default")
    (clf1, v1), (clf2, v2) = models
    lg.log_predictions(v1, new[:2], clf1.predict(new[:2]), request_ids=["early-0", "early-1"])  # no label yet
    lg.promote(v1, "staging")
    lg.promote(v2, "production", reason="approved")
    lg.log_predictions(v2, new, clf2.predict(new), scores=clf2.predict_proba(new)[:, 1],
                       request_ids=[f"req-{i}" for i in range(len(new))], keep_inputs=True, decision={"threshold": 0.5})
    with lg.start_run("monitor", tags={"team": "risk"}) as run:  # a later run that used the production model
        run.log_input(v2)
    return {"lg": lg, "db": db, "v1": v1, "v2": v2, "tmp": tmp_path}


def _version(ds: dict[str, Any]) -> str:
    return f"{cell(ds['name'])}@{ds['version']} of {ds['versions']}"


def _abbrev(node_id: str) -> str:
    """An id as the report abbreviates it: ``kind:`` and the first 12 hex digits."""
    kind, _, digits = node_id.partition(":")
    return f"{kind}:{digits[:12]}"


def _lines_with(md: str, *parts: str) -> list[str]:
    return [line for line in md.splitlines() if all(p in line for p in parts)]


def _model_report(credit: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`lineage audit risk -o report.md` (the production version), and the JSON
    document of the same report."""
    out = credit["tmp"] / "report.md"
    res = CliRunner().invoke(cli, ["--db", str(credit["db"]), "audit", "risk", "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out.read_text(encoding="utf-8"), credit["lg"].audit(credit["v2"]).to_dict()


def test_a_model_report_in_markdown_says_which_version_of_each_dataset_it_used(credit: dict[str, Any]) -> None:
    md, d = _model_report(credit)
    assert any(x["versions"] > 1 for x in d["data"])  # (else "@1 of 1" would prove little)
    for ds in d["data"]:  # every dataset: which version of its name, and its digest, on one row
        assert _lines_with(md, _version(ds), code(ds["digest"])), ds["name"]
    for x in d["metrics"]:  # every metric: the dataset version it was computed on
        assert _lines_with(md, cell(x["key"]), num(x["value"]), _version(x["dataset"]), code(x["dataset"]["digest"])), x


def test_a_model_report_in_markdown_gives_each_group_result_its_n_and_interval(credit: dict[str, Any]) -> None:
    md, d = _model_report(credit)
    withci = [x for x in d["metrics"] if x.get("ci")]
    assert withci and any(x.get("group") and not x.get("n") for x in d["metrics"])
    for x in d["metrics"]:  # the evaluation table: value, group and n, interval
        row = [f"{num(x['value'])}", f"{cell(x['group'])}, n={num(x['n'])}" if x.get("n") else cell(x["group"] or "all")]
        row += [f"({num(x['ci']['low'])}–{num(x['ci']['high'])})"] if x.get("ci") else []
        assert _lines_with(md, cell(x["key"]), *row), x
    groups = md.split("Per-group results:", 1)[1].split("\n\n", 2)[1]
    for x in (x for x in d["metrics"] if x.get("group")):  # the per-group table: n, interval, ratio to the best group
        interval = f"{num(x['ci']['low'])}–{num(x['ci']['high'])}" if x.get("ci") else "n not recorded"
        assert _lines_with(groups, f"| {cell(x['group'])} | {num(x['n']) if x.get('n') else '—'} | {num(x['value'])} | "
                                   f"{interval} | {num(x['ratio_to_best'])} |"), x
    assert withci[0]["ci"]["method"] in md


def test_a_model_report_in_markdown_lists_the_input_columns_with_source_origin_and_importance(
        credit: dict[str, Any]) -> None:
    md, d = _model_report(credit)
    f = d["model"]["features"]
    assert f["inputs"] and f["methods"]
    assert f"importance by {cell(', '.join(f['methods']))}" in md
    for r in f["inputs"]:  # the input-column table: source column, origin, importance by each method
        assert _lines_with(md, code(r["column"]), cell(", ".join(r["sources"])), cell(", ".join(dict.fromkeys(r["origins"]))),
                           *(f"{r['importance'][m]:.4f}" for m in f["methods"])), r


def test_a_decision_record_in_markdown_names_the_model_version_and_the_labels_held_then(credit: dict[str, Any]) -> None:
    lg, tmp = credit["lg"], credit["tmp"]
    for request in ("req-0", "early-0"):
        out = tmp / f"{request}.md"
        res = CliRunner().invoke(cli, ["--db", str(credit["db"]), "audit", f"request:{request}", "-o", str(out)])
        assert res.exit_code == 0, res.output
        decision = out.read_text(encoding="utf-8").split("## The decision", 1)[1].split("\n## ", 1)[0]
        d = lg.audit(f"request:{request}").to_dict()
        m, held = d["model"], d["prediction"]["labels_at_prediction"]
        assert f"**{cell(m['name'])}** version {m['version']} of {m['versions']}" in decision
        assert code("sha256:" + m["digest"]) in decision
        assert held is not None
        said = _lines_with(decision, "labels it held when this prediction was made")
        assert said and all(cell(label) in said[0] for label in held)
        assert held or "**none**" in said[0]
    # the two predictions differ in what they show: v2 in production, v1 before any label
    assert lg.audit("request:req-0").to_dict()["prediction"]["labels_at_prediction"] == ["production"]
    assert lg.audit("request:early-0").to_dict()["prediction"]["labels_at_prediction"] == []


def test_the_inventory_in_markdown_states_labels_serving_and_flags(credit: dict[str, Any]) -> None:
    lg, tmp = credit["lg"], credit["tmp"]
    out = tmp / "inv.md"
    res = CliRunner().invoke(cli, ["--db", str(credit["db"]), "audit", "--inventory", "-o", str(out)])
    assert res.exit_code == 0, res.output
    md = out.read_text(encoding="utf-8")
    d = lg.inventory().to_dict()
    (item,) = d["items"]
    assert item["labels"] and item["flags"] and item["serving"]
    for label, version in item["labels"].items():
        assert f"{cell(label)} → v{version}" in md
    assert cell(item["selected"]) in md
    from lineage.render.tables import flag_lines

    for line in flag_lines(item["flags"]):
        assert f"**{cell(line)}**" in md
    serving = md.split("## Serving", 1)[1]
    for r in item["serving"]:
        if r["labels"] or r["predictions"]:
            assert _lines_with(serving, f"| v{r['version']} |", code(r["id"][:len("model:") + 16]),
                               f"| {cell(', '.join(r['labels'])) or 'none'} |", f"| {num(r['predictions'])} |"), r
            if r["unlabelled_predictions"]:
                assert _lines_with(serving, f"| v{r['version']} |", f"**{num(r['unlabelled_predictions'])}**")
    assert "hold no label and served no prediction" not in md  # both versions served: none left out


def test_a_model_report_in_markdown_states_runs_code_prediction_batches_and_later_runs(credit: dict[str, Any]) -> None:
    """The rest of what the HTML states about how the model came to be and what used
    it: each run's experiment, command and duration; each code version's users; who
    logged each batch of predictions; the runs that used the model afterwards."""
    md, d = _model_report(credit)
    assert d["later_runs"] and d["predictions"]["loggers"] and d["code"]
    for r in d["preparation"] + d["training_runs"]:
        (head,) = _lines_with(md, f"{code(r['id'])}, {cell(r['status'])}")
        assert f"({num(r['duration_s'])} s)" in head
        block = md.split(head, 1)[1].split("\n- ", 1)[0]
        assert f"experiment: {cell(r['experiment'])}" in block and f"command: {cell(' '.join(r['command']))}" in block
    for c in d["code"]:
        (row,) = _lines_with(md, code(c["id"]), "|")
        assert all(code(_abbrev(u)) in row for u in c["used_by"])
    for x in d["predictions"]["loggers"]:
        assert f"event {x['event']} by {cell(x['who'])}" in md
    for r in d["later_runs"]:
        assert _lines_with(md, cell(r["name"]), code(_abbrev(r["id"]))), r


def test_a_decision_record_in_markdown_gives_each_reason_its_baseline(credit: dict[str, Any]) -> None:
    lg, tmp = credit["lg"], credit["tmp"]
    md = lg.audit("request:req-1").write(tmp / "d.md").read_text(encoding="utf-8")
    d = lg.audit("request:req-1").to_dict()
    dec = d["decision"]
    assert dec["reasons"] and dec["inputs"]
    assert f"(score there {num(dec['score_at_baseline'])})" in md
    for r in dec["reasons"][:10]:
        assert _lines_with(md, code(r["feature"]), f"| {num(r['baseline'])} |", f"{r['contribution']:+.4g}"), r
    assert f"Input digest (SHA-256): {code(d['prediction']['input_digest'])}; values kept in ledger event " \
           f"{dec['inputs_event']}" in md


def test_a_model_report_in_markdown_shows_every_parameter_value_as_the_html_does_and_names_its_store(
        credit: dict[str, Any]) -> None:
    """A parameter set to None read "—", this report's mark for "not recorded"; the
    HTML says null. And the HTML's masthead names the store the report was read from."""
    md, d = _model_report(credit)
    hp = d["hyperparameters"]
    assert any(v is None for v in hp["model"].values())
    for source, params in (("final estimator", hp["model"]), ("run", hp["run"])):
        for k, v in params.items():
            shown = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
            assert _lines_with(md, f"| {cell(k)} | {source}", f"| {cell(shown)} |"), (k, v)
    assert f"from {code(d['report']['store'])}" in md.split("\n## ", 1)[0]
