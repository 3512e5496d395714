"""Audit reports: the JSON document's structure on the quickstart store (validated
against the shipped schema), the checklist's statuses on stores with known gaps,
annotations and sign-off, the prediction chain, the inventory, tampering (rows, files,
the chain) and hostile names in every format."""

from __future__ import annotations

import ast
import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import build_quickstart, pg_schema, pg_store_url, raw_connect, require_postgres

import lineage
from lineage.audit import FIELDS, STANDARDS, Inventory
from lineage.audit.checklist import FIELD_BY_KEY, MISSING, NEEDS_PERSON, RECORDED
from lineage.cli import cli
from lineage.errors import InvalidInputError
from lineage.model import ANNOTATION_FIELDS

BACKENDS = ("sqlite", "postgres")  # conftest runs the store fixtures on both

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = "<img src=x onerror=alert(1)>"
COMPLIANCE_KEYS = [k for k in ANNOTATION_FIELDS if k not in ("sign_off", "validation")]  # extra keys, not fields


def schema() -> dict[str, Any]:
    return json.loads(resources.files("lineage.audit").joinpath("schema.json").read_text(encoding="utf-8"))


def validate(doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(schema()).validate(doc)


# ---------------------------------------------------------------------------
# stores


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quickstart's output folder (store, data, out/audit.html), built once."""
    return build_quickstart(tmp_path_factory.mktemp("quickstart"))


@pytest.fixture
def qs(quickstart: Path, tmp_path: Path) -> Iterator[lineage.Lineage]:
    """A private copy of the quickstart project, store and data (tests here may tamper
    with it): paths are relative to the project root, so the copy checks its own files,
    which are intact until a test changes them."""
    target = tmp_path / "qs"
    shutil.copytree(quickstart, target)
    lg = lineage.open(target / ".lineage" / "lineage.db")
    yield lg
    lg.close()


@pytest.fixture(scope="module")
def qs_shared(quickstart: Path) -> Iterator[lineage.Lineage]:
    """The quickstart store itself, read-only use."""
    lg = lineage.open(quickstart / ".lineage" / "lineage.db")
    yield lg
    lg.close()


def _xy(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)


def _csv(path: Path, X: np.ndarray, y: np.ndarray, header: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join([*header, "target"])] + [",".join([*(f"{v:.5f}" for v in row), str(t)]) for row, t in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def gap_store(lg: lineage.Lineage, tmp_path: Path) -> tuple[lineage.Lineage, lineage.Node]:
    """A model trained on recorded data, with no metrics, no annotations and no predictions."""
    from sklearn.linear_model import LogisticRegression

    X, y = _xy()
    data = lg.log_dataset(_csv(tmp_path / "train.csv", X, y, ["a", "b", "c"]), name="train")
    with lg.start_run("fit", params={"C": 0.5}) as run:
        run.log_input(data)
        model = run.log_model(LogisticRegression(C=0.5).fit(X, y), "gappy")
    return lg, model


# ---------------------------------------------------------------------------
# the JSON report on the quickstart store

QUICKSTART_FOREST = {
    # identity: no independent validation recorded; retention: no period stated
    "identity": NEEDS_PERSON, "intended_use": MISSING, "training_data": RECORDED, "personal_data_origin": MISSING,
    "data_preparation": RECORDED, "representativeness": NEEDS_PERSON, "code_version": NEEDS_PERSON,
    "third_party_components": NEEDS_PERSON, "hyperparameters": RECORDED, "environment": RECORDED,
    "evaluation": RECORDED, "metric_rationale": MISSING, "accountability": NEEDS_PERSON, "changes": NEEDS_PERSON,
    "limitations": MISSING, "risk_management": MISSING, "prediction_log": RECORDED, "retention": NEEDS_PERSON,
    "integrity": RECORDED, "monitoring": NEEDS_PERSON, "impact": RECORDED, "conformity": MISSING,
}


def test_quickstart_wrote_an_audit_report(quickstart: Path) -> None:
    html = (quickstart / "audit.html").read_text()
    assert "random_forest" in html and "Compliance checklist" in html


def test_json_report_golden_structure(qs_shared: lineage.Lineage) -> None:
    report = qs_shared.audit("random_forest")
    doc = report.to_dict()
    validate(doc)
    assert set(doc) >= {"report", "subject", "summary", "integrity", "completeness", "checklist", "sections", "model",
                        "data", "training_runs", "preparation", "code", "environments", "hyperparameters", "metrics",
                        "feature_importance", "changes", "predictions", "impact", "accountability", "annotations",
                        "retention", "lineage"}
    assert doc["report"]["format"] == "lineage-audit" and doc["report"]["standard"] == "annex-iv"
    assert doc["subject"]["kind"] == "model" and doc["subject"]["name"] == "random_forest"
    # the checklist: exactly COMPLIANCE.md's 22 fields, in order, with citations and fill types
    items = doc["checklist"]
    assert [i["key"] for i in items] == COMPLIANCE_KEYS
    assert [i["number"] for i in items] == list(range(1, 23))
    assert {i["key"]: i["status"] for i in items} == QUICKSTART_FOREST
    by_key = {i["key"]: i for i in items}
    assert by_key["training_data"]["sources"] == ["AIA 10(2)(b)", "IV 2(d)", "DS Composition", "ISO A.7.5", "NIST MAP 2.3"]
    assert by_key["intended_use"]["fill"] == "human" and by_key["representativeness"]["fill"] == "part"
    assert all(i["evidence"] for i in items if i["status"] != MISSING)
    assert report.missing == [k for k, s in QUICKSTART_FOREST.items() if s == MISSING]
    # summary facts
    m = doc["model"]
    assert m["id"].startswith("model:") and m["digest"] == m["id"].split(":")[1]
    assert m["owner"]["label"].startswith("tester@") and m["version"] == 1
    assert doc["summary"]["status"] == "training run finished; not signed off"
    # data: training, evaluation and upstream, each with location, digest, size, rows, columns, capture time
    roles = {d["name"]: d["role"] for d in doc["data"]}
    assert roles == {"train_clean": "training", "test": "evaluation", "train": "upstream"}
    for d in doc["data"]:
        assert d["location"].endswith(".csv") and len(d["digest"]) == 64 and d["size"] > 0
        assert d["rows"] > 0 and d["columns"] > 0 and d["captured_at"] and d["captured_by"]["label"]
    # preparation with its code and parameters; metrics with their dataset; importance; predictions
    assert [r["name"] for r in doc["preparation"]] == ["preprocess"]
    assert doc["preparation"][0]["params"] == {"drop": "worst_perimeter,worst_area,worst_radius"}
    assert doc["preparation"][0]["code"] and doc["code"][0]["commit"]
    assert {(x["key"], x["group"]) for x in doc["metrics"]} == {("accuracy", None), ("f1", None), ("accuracy", "mean_radius>15")}
    assert all(x["dataset"]["name"] == "test" for x in doc["metrics"])
    assert doc["hyperparameters"]["model"]["n_estimators"] == 60 and doc["hyperparameters"]["run"]["max_depth"] == "6"
    assert len(doc["feature_importance"]) == 27
    assert doc["feature_importance"][0]["importance"] >= doc["feature_importance"][-1]["importance"]
    assert doc["predictions"]["count"] == 43 and doc["predictions"]["first_at"]
    assert doc["impact"]["counts"] == {"prediction": 43}
    assert doc["environments"][0]["key_packages"]["scikit-learn"]
    assert doc["changes"]["previous"] is None
    # who ran each step and when
    steps = [s["step"] for s in doc["accountability"]]
    assert "training run train_random_forest" in steps and "preparation run preprocess" in steps
    assert all(s["who"] for s in doc["accountability"])


# ---------------------------------------------------------------------------
# the same quickstart recorded on PostgreSQL: the report, its integrity section and its
# JSON are the same (no feature is SQLite-only)


@pytest.fixture(scope="module")
def qs_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lineage.Lineage]:
    """The quickstart recorded into a fresh schema of the test server (its data files
    in a folder of its own, the working directory meanwhile)."""
    require_postgres()
    folder = tmp_path_factory.mktemp("quickstart_pg")
    with pg_schema() as schema, pytest.MonkeyPatch.context() as mp:
        url = pg_store_url(schema)
        build_quickstart(folder, db=url)
        mp.chdir(folder)  # the datasets' relative paths, as the quickstart recorded them
        lg = lineage.open(url)
        try:
            yield lg
        finally:
            lg.close()


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """What a report says, without what differs between two recordings of the same
    work (ids of runs and events, times, the store's location and head)."""
    return {
        "checklist": {i["key"]: i["status"] for i in doc["checklist"]},
        "data": sorted(((d["name"], d["role"], d["digest"], d["rows"], d["columns"]) for d in doc["data"]), key=repr),
        "metrics": sorted(((m["key"], m["group"], m["value"]) for m in doc["metrics"]), key=repr),
        "hyperparameters": doc["hyperparameters"],
        "feature_importance": [f["importance"] for f in doc["feature_importance"]],
        "predictions": doc["predictions"]["count"], "impact": doc["impact"]["counts"],
        "preparation": [(r["name"], r["params"]) for r in doc["preparation"]],
        "integrity": (doc["integrity"]["ok"], doc["integrity"]["chain"]["ok"], doc["integrity"]["facts"]["ok"]),
    }


def test_the_report_on_postgres_says_what_it_says_on_sqlite(qs_pg: lineage.Lineage, qs_shared: lineage.Lineage) -> None:
    pg = qs_pg.audit("random_forest").to_dict()
    validate(pg)
    assert {i["key"]: i["status"] for i in pg["checklist"]} == QUICKSTART_FOREST
    assert _comparable(pg) == _comparable(qs_shared.audit("random_forest").to_dict())
    for ref in ("logistic_regression", "request:req-0005"):
        validate(qs_pg.audit(ref).to_dict())
    html = qs_pg.audit("random_forest").to_html()
    assert "random_forest" in html and "Compliance checklist" in html


def test_the_integrity_section_on_postgres(qs_pg: lineage.Lineage) -> None:
    doc = qs_pg.audit("random_forest").to_dict()
    i = doc["integrity"]
    assert i["ok"] and not i["problems"]
    events, head = qs_pg.store.head()
    assert i["head"] == {"hash": head, "events": events, "command": f"lineage verify --head {head}"}
    assert i["facts"]["prediction_events_checked"] == i["facts"]["prediction_events_total"] == 1
    assert {f["status"] for f in i["files"]} == {"intact"}
    assert qs_pg.verify().ok


def test_an_edited_row_fails_the_report_on_postgres(qs_pg: lineage.Lineage) -> None:
    model = qs_pg.get("random_forest")
    event = qs_pg.store.event_of(model.id)
    con = raw_connect(str(qs_pg.store.path.secret))  # type: ignore[attr-defined]
    old = con.execute("SELECT attrs FROM nodes WHERE id = ?", (model.id,)).fetchone()[0]
    try:
        con.execute("UPDATE nodes SET attrs = ? WHERE id = ?", (old.replace('"max_depth":6', '"max_depth":60'), model.id))
        report = qs_pg.audit(model.id)
        doc = report.to_dict()
        assert not report.ok and event in doc["integrity"]["facts"]["failed"]
        assert report.item("integrity")["status"] == "failed"
        validate(doc)
    finally:  # (the store is shared by this module's tests)
        con.execute("UPDATE nodes SET attrs = ? WHERE id = ?", (old, model.id))
        con.close()
    assert qs_pg.audit(model.id).ok


def test_integrity_section_states_its_scope(qs_shared: lineage.Lineage) -> None:
    doc = qs_shared.audit("random_forest").to_dict()
    i = doc["integrity"]
    assert i["ok"] and not i["problems"]
    events, head = qs_shared.store.head()
    assert i["head"] == {"hash": head, "events": events, "command": f"lineage verify --head {head}"}
    # the events behind the facts: the model's, its run's, the datasets', the metrics'
    model_event = qs_shared.store.event_of(doc["model"]["id"])
    assert model_event in i["facts"]["events"]
    assert {m["event"] for m in doc["metrics"]} <= set(i["facts"]["events"])
    assert i["facts"]["prediction_events_checked"] == i["facts"]["prediction_events_total"] == 1
    # no checkpoint: the chain was replayed from event 1
    assert i["chain"]["checkpoint"] is None and i["chain"]["verified_from"] == 0 and "event 1" in i["chain"]["scope"]
    assert {f["status"] for f in i["files"]} == {"intact"}
    assert {f["kind"] for f in i["files"]} == {"model", "dataset"}


def test_schema_validates_every_kind_of_report(qs_shared: lineage.Lineage) -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    for ref in ("random_forest", "logistic_regression", "request:req-0005"):
        for standard in STANDARDS:
            validate(qs_shared.audit(ref, standard=standard).to_dict())
    bad = qs_shared.audit("random_forest").to_dict()
    bad["checklist"][0]["status"] = "probably fine"
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)


def test_standards_arrange_the_same_facts(qs_shared: lineage.Lineage) -> None:
    docs = {s: qs_shared.audit("random_forest", standard=s).to_dict() for s in STANDARDS}
    statuses = {s: [(i["key"], i["status"]) for i in d["checklist"]] for s, d in docs.items()}
    assert len({json.dumps(v) for v in statuses.values()}) == 1
    for s, d in docs.items():
        assert d["report"]["standard"] == s
        keys = [k for sec in d["sections"] for k in sec["fields"]]
        assert sorted(keys) == sorted(COMPLIANCE_KEYS)
    assert [s["number"] for s in docs["annex-iv"]["sections"]] == ["1", "2", "3", "4", "5", "6", "7–8", "9"]
    assert docs["model-card"]["sections"][1]["title"] == "Intended Use"
    assert [s["title"] for s in docs["sr11-7"]["sections"]][-1] == "Outcomes analysis"
    assert "Model Card" in docs["model-card"]["report"]["standard_title"]
    html = qs_shared.audit("random_forest", standard="sr11-7").to_html()
    assert "Ongoing monitoring" in html and "SR 11-7" in html
    assert qs_shared.audit("random_forest", standard="SR 11-7").standard == "sr11-7"
    with pytest.raises(InvalidInputError, match="annex-iv, model-card, sr11-7"):
        qs_shared.audit("random_forest", standard="iso-9001")


def _expand_sources(column: str) -> tuple[str, ...]:
    """COMPLIANCE.md's "AIA 9, 14; IV 2(e), 5" as ("AIA 9", "AIA 14", "IV 2(e)", "IV 5"), quotes dropped."""
    out = []
    for part in column.split(";"):
        part = re.sub(r'\s*\("[^"]*"\)', "", part).strip()
        prefix, _, rest = part.partition(" ")
        out += [f"{prefix} {x}" for x in rest.split(", ")] if prefix in ("AIA", "IV") else [part]
    return tuple(out)


def test_fields_match_compliance_md() -> None:
    assert [f.key for f in FIELDS] == COMPLIANCE_KEYS
    text = Path("/work/shared/COMPLIANCE.md")
    if not text.is_file():
        pytest.skip("the shared COMPLIANCE.md is not on this machine")
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \| [^|]+ \| ([^|]+) \| ([^|]+) \|$", text.read_text(), re.M)
    assert [(int(n), k) for n, k, _, _ in rows] == [(f.number, f.key) for f in FIELDS]
    for _, key, sources, fill in rows:
        assert FIELD_BY_KEY[key].sources == _expand_sources(sources), key
        assert FIELD_BY_KEY[key].fill_note == fill.strip(), key


def test_write_by_suffix(qs_shared: lineage.Lineage, tmp_path: Path) -> None:
    report = qs_shared.audit("random_forest")
    html = report.write(tmp_path / "r.html")
    md = report.write(tmp_path / "sub" / "r.md")
    js = report.write(tmp_path / "r.json")
    assert isinstance(html, Path) and html.read_text().startswith("<!DOCTYPE html>")
    assert md.read_text().startswith("# Audit report: model random\\_forest")
    validate(json.loads(js.read_text()))
    with pytest.raises(InvalidInputError, match=r"\.html, \.md or \.json"):
        report.write(tmp_path / "r.pdf")
    assert "Audit report" in report._repr_html_() and "<script" not in report._repr_html_()
    assert "8 recorded" in repr(report)


def test_html_is_self_contained(qs_shared: lineage.Lineage) -> None:
    html = qs_shared.audit("random_forest").to_html()
    assert "<script" not in html.lower()
    refs = re.findall(r"""\b(?:src|href|xlink:href)\s*=\s*["']?([^"'\s>]+)""", html, re.I)
    assert not [r for r in refs if re.match(r"(?:https?:)?//", r, re.I)], refs
    assert "@import" not in html
    assert all(u.startswith("#") for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", html))  # only in-page references
    # the importance chart always; the lineage diagram when Graphviz's `dot` is installed
    assert html.count("<svg") >= (2 if shutil.which("dot") else 1)
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html
    assert "@media print" in html and "@page { size: A4" in html
    assert "lineage verify --head " in html
    assert "not a cryptographic signature" in html


def test_audit_writes_nothing_to_the_ledger(qs: lineage.Lineage) -> None:
    before = qs.store.head()
    qs.audit("random_forest").to_html()
    qs.audit("request:req-0000").to_html()
    qs.inventory()
    assert qs.store.head() == before


def test_only_models_and_predictions(qs_shared: lineage.Lineage) -> None:
    with pytest.raises(InvalidInputError, match="is a dataset"):
        qs_shared.audit("train")


# ---------------------------------------------------------------------------
# gaps, annotations, sign-off


def test_gaps_are_exactly_the_missing_fields(gap_store: tuple[lineage.Lineage, lineage.Node]) -> None:
    lg, model = gap_store
    report = lg.audit(model)
    assert report.missing == ["intended_use", "personal_data_origin", "evaluation", "metric_rationale", "limitations",
                              "risk_management", "prediction_log", "monitoring", "conformity"]
    doc = report.to_dict()
    validate(doc)
    status = {i["key"]: i["status"] for i in doc["checklist"]}
    assert status["training_data"] == RECORDED and status["hyperparameters"] == RECORDED
    assert status["representativeness"] == NEEDS_PERSON  # training data composition is evidence; the judgement is a person's
    assert status["data_preparation"] == RECORDED  # trained straight on recorded data: the graph says so
    assert doc["completeness"]["missing"] == 9
    # gaps are listed, never invented
    html = report.to_html()
    for key in report.missing:
        assert f'id="field-{key}"' in html
    assert html.count("Not recorded.") == 9
    md = report.to_markdown()
    assert md.count("**Not recorded.**") == 9


def test_no_training_data_is_a_gap(lg: lineage.Lineage) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y = _xy()
    with lg.start_run("fit") as run:
        model = run.log_model(DecisionTreeClassifier(max_depth=2).fit(X, y), "bare")
    report = lg.audit(model)
    assert {"training_data", "data_preparation", "representativeness"} <= set(report.missing)
    assert report.item("hyperparameters")["status"] == RECORDED


def test_annotations_fill_human_fields_with_author_and_time(gap_store: tuple[lineage.Lineage, lineage.Node],
                                                            tmp_path: Path) -> None:
    lg, model = gap_store
    event = lg.annotate(model, "intended_use", "Pre-screening of loan applications.\nNot for final decisions.",
                        author="alice")
    card = tmp_path / "card.yaml"
    card.write_text("limitations: Trained on 60 synthetic rows.\n"
                    "representativeness: Groups were not compared.\n"
                    "sign_off: Approved for pilot use.\n")
    lg.annotate_card(model, card, author="bob")
    report = lg.audit(model)
    item = report.item("intended_use")
    assert item["status"] == RECORDED
    assert item["annotation"]["author"] == "alice" and item["annotation"]["event"] == event and item["annotation"]["at"]
    assert report.item("limitations")["status"] == RECORDED
    assert report.item("representativeness")["status"] == RECORDED  # a Part field, once a person judged it
    assert report.item("accountability")["status"] == RECORDED  # signed off
    assert "intended_use" not in report.missing and "limitations" not in report.missing
    doc = report.to_dict()
    assert doc["summary"]["signed_off"]["author"] == "bob"
    assert doc["annotations"]["sign_off"]["text"] == "Approved for pilot use."
    # annotations are facts like any other: their events are checked
    assert event in doc["integrity"]["facts"]["events"]
    html = report.to_html()
    assert "Pre-screening of loan applications.\nNot for final decisions." in html
    assert "Stated by <strong>alice</strong>" in html
    assert "Signed off</strong> by bob" in html and "not a cryptographic signature" in html
    md = report.to_markdown()
    assert "> Pre-screening of loan applications." in md and "alice" in md
    assert "not a cryptographic signature" in md


def test_auto_fields_are_not_overridden_by_annotations(gap_store: tuple[lineage.Lineage, lineage.Node]) -> None:
    lg, model = gap_store
    lg.annotate(model, "evaluation", "Evaluated offline; see the validation memo.", author="carol")
    item = lg.audit(model).item("evaluation")
    assert item["status"] == MISSING and item["annotation"]["author"] == "carol"


def test_changes_from_the_previous_version(lg: lineage.Lineage, tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y = _xy()
    data = lg.log_dataset(_csv(tmp_path / "d.csv", X, y, ["a", "b", "c"]), name="d")
    for depth in (2, 3):
        with lg.start_run("fit", params={"max_depth": depth}) as run:
            run.log_input(data)
            model = run.log_model(DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y), "tree")
    doc = lg.audit(model).to_dict()
    assert doc["model"]["version"] == 2 and doc["model"]["previous"]["name"] == "tree"
    changes = {(c["aspect"], c["key"]): (c["a"], c["b"]) for c in doc["changes"]["items"]}
    assert changes[("params", "max_depth")] == ("2", "3")
    assert doc["checklist"][13]["key"] == "changes" and "difference" in doc["checklist"][13]["summary"]
    assert "max_depth" in lg.audit(model).to_html()
    # the inventory lists a model name once, at its newest version; every version on request
    from lineage.audit import build_inventory

    items = lg.inventory().items
    assert [(i["name"], i["version"], i["versions"]) for i in items] == [("tree", 2, 2)]
    assert len(build_inventory(lg.store, all_versions=True)) == 2
    assert sorted(i["version"] for i in lg.inventory(all_versions=True).items) == [1, 2]
    out = CliRunner().invoke(cli, ["--db", str(lg.db_path), "audit", "--inventory", "--all-versions", "--json"])
    assert out.exit_code == 0, out.output
    assert sorted(i["version"] for i in json.loads(out.output)["items"]) == [1, 2]
    out = CliRunner().invoke(cli, ["--db", str(lg.db_path), "audit", "tree", "--all-versions"])
    assert out.exit_code == 2 and "goes with --inventory" in out.output


# ---------------------------------------------------------------------------
# predictions


def test_prediction_report_shows_the_whole_chain(qs_shared: lineage.Lineage) -> None:
    report = qs_shared.audit("request:req-0007")
    doc = report.to_dict()
    validate(doc)
    p = doc["prediction"]
    assert doc["subject"]["kind"] == "prediction" and p["request_id"] == "req-0007"
    assert len(p["input_digest"]) == 64 and p["output"] in (0, 1) and p["created_at"]
    assert p["model"]["name"] == "random_forest" and p["model"]["digest"] == doc["model"]["digest"]
    assert p["event"] in doc["integrity"]["facts"]["events"]
    assert {d["name"] for d in doc["data"] if d["role"] == "training"} == {"train_clean"}
    assert doc["training_runs"][0]["name"] == "train_random_forest" and doc["code"]
    files = {f["name"]: f["status"] for f in doc["integrity"]["files"]}
    assert files == {"random_forest": "intact", "train_clean": "intact", "test": "intact", "train": "intact"}
    html = report.to_html()
    assert "Data lineage" in html and p["input_digest"] in html and doc["model"]["digest"] in html
    assert "Reasons" in html and "Decision record" in html  # its own layout, not the Annex IV view
    if shutil.which("dot"):  # the diagram needs Graphviz; the report is written without it
        assert "<svg" in html
    md = report.to_markdown()
    assert "## Chain of origin" in md and p["input_digest"] in md


def test_prediction_report_flags_changed_training_data(quickstart: Path, tmp_path: Path) -> None:
    # a private copy of the whole project (store and data: paths are relative to the
    # project root, so the copy checks its own files), then change a training file
    copy = tmp_path / "project"
    shutil.copytree(quickstart, copy)
    with (copy / "data" / "train_clean.csv").open("a") as f:
        f.write("1,2,3\n")
    with lineage.open(copy / ".lineage" / "lineage.db") as lg:
        report = lg.audit("request:req-0001")
        assert not report.ok
        files = {f["name"]: f["status"] for f in report.to_dict()["integrity"]["files"]}
        assert files["train_clean"] == "changed" and files["random_forest"] == "intact"
        assert "train_clean" in report.to_html()


# ---------------------------------------------------------------------------
# tampering


def _alert_before_title(html: str) -> bool:
    alert = html.find('class="alert"')
    return 0 < alert < html.find('class="masthead"')


def test_edited_row_fails_the_report(qs: lineage.Lineage) -> None:
    model = qs.get("random_forest")
    event = qs.store.event_of(model.id)
    con = sqlite3.connect(qs.store.path)
    con.execute("UPDATE nodes SET attrs = replace(attrs, '\"max_depth\":6', '\"max_depth\":60') WHERE id = ?", (model.id,))
    con.commit()
    con.close()
    report = qs.audit(model.id)
    assert not report.ok
    doc = report.to_dict()
    assert event in doc["integrity"]["facts"]["failed"]
    assert doc["integrity"]["chain"]["ok"] is False and doc["integrity"]["chain"]["first_bad"] == event
    assert report.item("integrity")["status"] == "failed"  # never shown as merely missing
    html = report.to_html()
    assert _alert_before_title(html) and "Integrity check failed" in html
    assert "tampered" in html  # the diagram marks the node whose event failed
    md = report.to_markdown()
    assert md.startswith("**INTEGRITY CHECK FAILED")
    validate(doc)


def test_edit_caught_by_the_fact_check_even_before_a_checkpoint(qs: lineage.Lineage) -> None:
    """A checkpoint after the edit would let the chain check skip it; the facts check does not."""
    report = qs.verify(record=True)
    assert report.ok
    run = qs.store.generators(qs.get("random_forest").id)[0]
    con = sqlite3.connect(qs.store.path)
    con.execute("UPDATE metrics SET value = 0.999 WHERE run = ? AND key = 'accuracy' AND grp IS NULL", (run,))
    con.commit()
    con.close()
    doc = qs.audit("random_forest").to_dict()
    i = doc["integrity"]
    assert i["chain"]["ok"] and i["chain"]["checkpoint"]["verified_through"] == report.events
    assert i["chain"]["verified_from"] == report.events
    assert not i["facts"]["ok"] and not i["ok"]


def test_checkpoint_scope_is_reported(qs: lineage.Lineage) -> None:
    first = qs.verify(record=True)
    qs.annotate("random_forest", "intended_use", "Demo.", author="dana")
    doc = qs.audit("random_forest").to_dict()
    cp = doc["integrity"]["chain"]["checkpoint"]
    assert cp["event"] == first.events + 1 and cp["verified_through"] == first.events
    assert cp["by"] and cp["at"] and cp["matches"]
    assert doc["integrity"]["chain"]["verified_from"] == first.events
    assert f"events {first.events + 1} to {first.events + 2}" in doc["integrity"]["chain"]["scope"]
    html = qs.audit("random_forest").to_html()
    assert f"checkpoint event {first.events + 1}" in html


def test_a_report_that_replayed_the_whole_ledger_says_how_to_avoid_it(qs: lineage.Lineage, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a checkpoint a report replays the chain from event 1: seconds on a big
    store, and only the written report said why."""
    import lineage.cli as cli_module

    monkeypatch.setattr(cli_module, "CHECKPOINT_HINT_EVENTS", 10)  # (the quickstart's ledger is small)
    args = ["--db", str(qs.db_path), "audit", "random_forest", "-o", str(tmp_path / "a.md")]
    inventory = ["--db", str(qs.db_path), "audit", "--inventory", "--json"]  # (which replays the chain too)
    for command in (args, inventory):
        before = CliRunner().invoke(cli, command)
        assert before.exit_code == 0 and "lineage verify --record" in before.stderr, command
    qs.verify(record=True)
    for command in (args, inventory):
        after = CliRunner().invoke(cli, command)
        assert after.exit_code == 0 and "verify --record" not in after.stderr


def test_a_checkpoint_that_vouches_for_another_history_fails(qs: lineage.Lineage) -> None:
    events, _ = qs.store.head()
    qs.store.write("checkpoint", {"verified_through": events, "head": "f" * 64, "from": 0})
    doc = qs.audit("random_forest").to_dict()
    i = doc["integrity"]
    assert i["chain"]["ok"] and i["chain"]["verified_from"] == 0  # the replay fell back to event 1
    assert i["chain"]["checkpoint"]["matches"] is False
    assert not i["ok"] and any("rewritten" in p for p in i["problems"])


def test_prediction_events_beyond_the_budget_are_counted_not_hidden(lg: lineage.Lineage,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.tree import DecisionTreeClassifier

    from lineage.audit import integrity

    X, y = _xy()
    with lg.start_run("fit") as run:
        model = run.log_model(DecisionTreeClassifier(max_depth=2).fit(X, y), "m")
    for _ in range(4):
        lg.log_predictions(model, X[:10], y[:10])
    monkeypatch.setattr(integrity, "PREDICTION_ROW_BUDGET", 25)
    doc = lg.audit(model).to_dict()
    f = doc["integrity"]["facts"]
    assert f["prediction_events_total"] == 4 and f["prediction_rows_total"] == 40
    assert f["prediction_events_checked"] == 2 and f["prediction_rows_checked"] == 20
    assert "2 of 4 prediction events" in lg.audit(model).to_html()


def test_missing_model_file_fails_the_report(qs: lineage.Lineage) -> None:
    model = qs.get("random_forest")
    Path(qs.store.dir, model.attrs["artifact"]).unlink()
    report = qs.audit(model)
    assert not report.ok
    files = {f["id"]: f["status"] for f in report.to_dict()["integrity"]["files"]}
    assert files[model.id] == "missing"
    assert _alert_before_title(report.to_html())


def test_cli_exits_1_on_a_tampered_store(qs: lineage.Lineage, tmp_path: Path) -> None:
    con = sqlite3.connect(qs.store.path)
    con.execute("UPDATE params SET value = '7' WHERE key = 'max_depth'")
    con.commit()
    con.close()
    out = tmp_path / "a.html"
    result = CliRunner().invoke(cli, ["--db", str(qs.store.path), "audit", "random_forest", "-o", str(out)])
    assert result.exit_code == 1
    assert "integrity check FAILED" in result.output
    assert _alert_before_title(out.read_text())


# ---------------------------------------------------------------------------
# inventory


def test_inventory(qs_shared: lineage.Lineage, tmp_path: Path) -> None:
    inv = qs_shared.inventory()
    assert isinstance(inv, Inventory) and len(inv) == 2 and inv.ok
    doc = inv.to_dict()
    assert "items" in doc and doc["head"]["events"] == qs_shared.store.head()[0]
    names = {i["name"]: i for i in doc["items"]}
    assert set(names) == {"logistic_regression", "random_forest"}
    rf = names["random_forest"]
    assert rf["owner"].startswith("tester@") and [d["name"] for d in rf["training_data"]] == ["train_clean"]
    assert rf["predictions"] == 43 and rf["completeness"]["total"] == 22 and rf["integrity_ok"]
    assert rf["completeness"]["missing"] == len(rf["missing"]) == 6
    assert names["logistic_regression"]["predictions"] == 0
    assert "prediction_log" in names["logistic_regression"]["missing"]
    html = inv.write(tmp_path / "inv.html").read_text()
    assert "Model inventory" in html and "random_forest" in html and "<script" not in html
    assert "logistic\\_regression" in inv.write(tmp_path / "inv.md").read_text()
    assert json.loads(inv.write(tmp_path / "inv.json").read_text())["items"]


# ---------------------------------------------------------------------------
# hostile names


@pytest.fixture
def hostile(lg: lineage.Lineage, tmp_path: Path) -> tuple[lineage.Lineage, lineage.Node]:
    pd = pytest.importorskip("pandas")
    from sklearn.ensemble import RandomForestClassifier

    X, y = _xy()
    frame = pd.DataFrame(X, columns=[HOSTILE, "b", "c"])
    data = lg.log_dataset(_csv(tmp_path / "h.csv", X, y, [HOSTILE.replace(",", ""), "b", "c"]), name=HOSTILE)
    with lg.start_run(HOSTILE, params={HOSTILE: "<b>bold</b>"}, tags={"team": HOSTILE}) as run:
        run.log_input(data)
        run.log_metric("accuracy", 0.9, dataset=data, group=HOSTILE)
        model = run.log_model(RandomForestClassifier(n_estimators=5, random_state=0).fit(frame, y), HOSTILE)
    lg.annotate(model, "intended_use", f"{HOSTILE} [click](javascript:alert(1)) | pipe", author=HOSTILE)
    lg.annotate(model, "sign_off", HOSTILE, author=HOSTILE)
    lg.log_predictions(model, frame.head(3), y[:3], request_ids=[HOSTILE, "r2", "r3"])
    return lg, model


def test_hostile_names_are_escaped_in_html(hostile: tuple[lineage.Lineage, lineage.Node]) -> None:
    lg, model = hostile
    report = lg.audit(model)
    assert report.to_dict()["model"]["name"] == HOSTILE
    for html in (report.to_html(), report._repr_html_(), lg.audit(f"request:{HOSTILE}").to_html(),
                 lg.inventory().to_html()):
        assert "<img" not in html and "<b>bold" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
    html = report.to_html()
    # inside our own SVG too: the chart's tick label and the diagram's node label are text
    chart = html[html.index('class="figure chart"'):]
    chart = chart[: chart.index("</svg>")]
    assert "&lt;img src=x onerror=alert(1)&gt;" in chart


def test_hostile_names_are_escaped_without_graphviz_too(hostile: tuple[lineage.Lineage, lineage.Node],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from lineage import render
    from lineage.errors import RenderError

    def no_dot(*a: Any, **k: Any) -> str:
        raise RenderError("no dot")

    lg, model = hostile
    monkeypatch.setattr(render, "to_svg", no_dot)
    monkeypatch.setattr(shutil, "which", lambda name: None)  # the `shutil` every render module calls
    report = lg.audit(model)
    assert report.diagram_kind == "html"
    html = report.to_html()
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in report.diagram


def test_hostile_names_are_escaped_in_markdown(hostile: tuple[lineage.Lineage, lineage.Node]) -> None:
    lg, model = hostile
    for md in (lg.audit(model).to_markdown(), lg.audit(f"request:{HOSTILE}").to_markdown(), lg.inventory().to_markdown()):
        assert "<img" not in md and "<b>" not in md
        assert "&lt;img src=x onerror=alert\\(1\\)&gt;" in md or "&lt;img src=x onerror=alert(1)&gt;" in md
        assert not re.search(r"(?<!\\)\]\(", md)  # no link can form: every ] is escaped
    md = lg.audit(model).to_markdown()
    assert "\\[click\\]" in md and "\\| pipe" in md


def test_hostile_names_survive_json(hostile: tuple[lineage.Lineage, lineage.Node]) -> None:
    lg, model = hostile
    doc = lg.audit(model).to_dict()
    validate(doc)
    assert doc["hyperparameters"]["run"][HOSTILE] == "<b>bold</b>"  # data stays data in JSON
    assert any(f["feature"] == HOSTILE for f in doc["feature_importance"])


def test_diagram_falls_back_to_html_without_graphviz(qs_shared: lineage.Lineage, monkeypatch: pytest.MonkeyPatch) -> None:
    from lineage import render
    from lineage.errors import RenderError

    def no_dot(*a: Any, **k: Any) -> str:
        raise RenderError("no dot")

    monkeypatch.setattr(render, "to_svg", no_dot)
    monkeypatch.setattr(shutil, "which", lambda name: None)  # the `shutil` every render module calls
    report = qs_shared.audit("random_forest")
    assert report.diagram_kind == "html" and "lineage-diagram" in report.to_html()


# ---------------------------------------------------------------------------
# command line


def test_cli_audit(quickstart: Path, tmp_path: Path) -> None:
    db = str(quickstart / ".lineage" / "lineage.db")
    runner = CliRunner()
    out = tmp_path / "r.html"
    result = runner.invoke(cli, ["--db", db, "audit", "random_forest", "-o", str(out), "--standard", "model-card"])
    assert result.exit_code == 0, result.output
    assert "wrote the audit report of model random_forest" in result.output and "Model Card" in out.read_text()
    result = runner.invoke(cli, ["--db", db, "audit", "random_forest", "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.output)
    validate(doc)
    result = runner.invoke(cli, ["--db", db, "audit", "random_forest"])
    assert result.exit_code == 0 and "intended_use" in result.output and "missing" in result.output
    result = runner.invoke(cli, ["--db", db, "audit", "--inventory", "-o", str(tmp_path / "inv.md")])
    assert result.exit_code == 0 and (tmp_path / "inv.md").is_file()
    result = runner.invoke(cli, ["--db", db, "audit", "--inventory", "--json"])
    assert json.loads(result.output)["items"]
    assert runner.invoke(cli, ["--db", db, "audit"]).exit_code == 2
    assert runner.invoke(cli, ["--db", db, "audit", "random_forest", "--standard", "x"]).exit_code == 2
    result = runner.invoke(cli, ["--db", db, "audit", "random_forest", "-o", str(tmp_path / "r.pdf")])
    assert result.exit_code == 2 and "use one of .html .md .json" in result.output  # bad usage
    help_text = runner.invoke(cli, ["audit", "--help"]).output
    assert "Example:" in help_text and "Exits 1" in help_text


def test_audit_layering() -> None:
    """audit looks only down: never at the facade or the command line."""
    forbidden = {"..api", "..cli", "lineage.api", "lineage.cli"}
    for path in (ROOT / "lineage" / "audit").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = "." * node.level + (node.module or "")
                names = [base] + [f"{base}{'.' if node.module else ''}{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            assert not forbidden & set(names), (path, names)


def test_import_lineage_does_not_load_jinja_or_matplotlib() -> None:
    import subprocess
    import sys

    code = "import sys, lineage, lineage.audit; print(sorted(m for m in ('jinja2', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_markdown_escaping_keeps_plain_values_readable() -> None:
    from lineage.audit.markdown import cell, esc, quote

    assert esc("1.9.1") == "1.9.1" and esc("a_b") == "a\\_b" and esc(None) == "—"
    assert esc("<b>&") == "&lt;b&gt;&amp;" and esc("[x](y)") == "\\[x\\](y)"
    assert esc("a\n1. b") == "a\n\\1. b"  # a list cannot start inside the text
    assert quote("1. x\n# y") == ["> \\1. x", "> \\# y"]
    assert cell("a|b\nc") == "a\\|b c"


# ---------------------------------------------------------------------------
# what the docs show works on the demo store (issue 11)


def test_the_docs_insights_example_works_on_the_demo_store(qs_shared: lineage.Lineage) -> None:
    result = CliRunner().invoke(cli, ["--db", str(qs_shared.db_path), "insights", "accuracy", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["runs"] >= 3


def test_the_demo_charts_real_column_names(qs_shared: lineage.Lineage) -> None:
    importance = qs_shared.get("random_forest").attrs["feature_importance"]
    assert "mean_radius" in importance and not any(re.fullmatch(r"x\d+", k) for k in importance)


def test_the_shipped_diagram_shows_no_dirty_code() -> None:
    assert "(dirty)" not in (ROOT / "docs" / "lineage.svg").read_text(encoding="utf-8")
