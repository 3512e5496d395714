"""Experiments and registered models as records of their own (lineage/names.py,
migration 15): created, tagged and described in the ledger, so what one script
creates the next one finds, with its tags; and searched as MLflow searches them
(filters on attributes and tags, MLflow's order)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lineage
from lineage import fluent

ROOT = Path(__file__).resolve().parents[1]

#: MLflow's "getting started" way: a client creates the experiment with tags (the
#: note is MLflow's description tag), and a later process searches by a tag
CREATE = textwrap.dedent("""
    import lineage as mlflow
    from lineage import MlflowClient

    client = MlflowClient()
    tags = {"project_name": "grocery-forecasting", "mlflow.note.content": "Forecasts for the stores",
            "hf_token": "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"}
    print(client.create_experiment(name="Apple_Models", tags=tags))
    mlflow.set_experiment("scratch")  # created when new, as MLflow does; holds no run
    mlflow.set_experiment_tag("owner_team", "forecasting")
""")


def _run(code: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LINEAGE_DB": str(cwd / ".lineage" / "lineage.db")}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_an_experiment_created_in_one_process_is_found_with_its_tags_in_the_next(tmp_path: Path) -> None:
    experiment_id = _run(CREATE, tmp_path).strip()
    client = lineage.MlflowClient(tracking_uri=str(tmp_path / ".lineage" / "lineage.db"))
    found = client.get_experiment_by_name("Apple_Models")
    assert found is not None and found.experiment_id == experiment_id
    assert found.tags["project_name"] == "grocery-forecasting"
    assert found.tags["mlflow.note.content"] == "Forecasts for the stores"
    assert found.tags["hf_token"] == "***"  # through the secret detector, as a run's tags
    assert found.creation_time is not None and found.creation_time == found.last_update_time
    by_tag = client.search_experiments(filter_string="tags.`project_name` = 'grocery-forecasting'")
    assert [e.name for e in by_tag] == ["Apple_Models"]
    scratch = client.get_experiment_by_name("scratch")
    assert scratch is not None and scratch.tags == {"owner_team": "forecasting"}
    assert client.get_experiment(experiment_id).name == "Apple_Models"
    with lineage.open(tmp_path / ".lineage" / "lineage.db") as lg:
        assert {e["name"]: (e["runs"], e["tags"].get("owner_team")) for e in lg.experiments()} == {
            "Apple_Models": (0, None), "scratch": (0, "forecasting")}
        assert lg.verify().ok


def test_creating_an_existing_experiment_is_refused_whoever_made_it(fluent_project: Path) -> None:
    lineage.create_experiment("wine", tags={"a": "1"})
    with lineage.start_run(experiment_id=lineage.get_experiment_by_name("wine").experiment_id):
        pass
    with lineage.start_run(run_name="x") as run:  # an experiment named only by its runs (an older store's)
        pass
    lg = fluent.get_lineage()
    with lg.start_run("y", experiment="by-runs"):
        pass
    before = lg.store.head()
    for name in ("wine", "by-runs", "Default"):
        with pytest.raises(lineage.MlflowException, match="already exists") as raised:
            lineage.create_experiment(name)
        assert raised.value.error_code == "RESOURCE_ALREADY_EXISTS"  # what scripts test to go on
        assert isinstance(raised.value, lineage.WriteRefusedError)
    with pytest.raises(lineage.InvalidInputError, match="needs a name"):
        lineage.create_experiment("  ")
    assert lg.store.head() == before  # nothing recorded by a refused call
    assert run.info.experiment_id == "0"


def test_experiment_tags_keep_their_history_and_the_newest_value_holds(fluent_project: Path) -> None:
    lg = fluent.get_lineage()
    exp = lineage.set_experiment("churn")
    lineage.set_experiment_tag("stage", "dev")
    lineage.set_experiment_tags({"stage": "review", "team": "risk"})
    head = lg.store.head()
    lineage.set_experiment_tags({"stage": "review"})  # the value it holds: nothing to record
    assert lg.store.head() == head
    got = lineage.get_experiment(exp.experiment_id)
    assert got.tags == {"stage": "review", "team": "risk"}
    assert got.last_update_time >= got.creation_time
    rows = lg.store.name_rows("experiment", "churn")
    assert [(k, v) for _, k, v, _ in rows] == [(None, None), ("stage", "dev"), ("stage", "review"), ("team", "risk")]
    # the active run's experiment is the one tagged, as in MLflow
    with lineage.start_run(experiment_id=lineage.create_experiment("other")):
        lineage.set_experiment_tag("in_run", "yes")
    assert lineage.get_experiment_by_name("other").tags == {"in_run": "yes"}
    assert lineage.get_experiment_by_name("churn").tags == {"stage": "review", "team": "risk"}
    # the default experiment takes tags too
    client = lineage.MlflowClient()
    client.set_experiment_tag("0", "shared", "true")
    assert lineage.get_experiment("0").tags == {"shared": "true"}
    with pytest.raises(lineage.NodeNotFoundError, match="no experiment has that id"):
        client.set_experiment_tag("12345", "a", "b")
    with pytest.raises(lineage.NodeNotFoundError, match="no experiment has that name"):
        lg.set_experiment_tags("typo", {"a": "b"})
    with pytest.raises(lineage.WriteRefusedError, match="append-only"):
        client.delete_experiment_tag(exp.experiment_id, "stage")
    with pytest.raises(lineage.UnsupportedError, match="its name is its identity"):
        client.rename_experiment(exp.experiment_id, "new")
    assert lg.verify().ok


def test_search_experiments_filters_and_orders_as_mlflow_does(fluent_project: Path) -> None:
    for name, team in (("b-exp", "risk"), ("a-exp", "fraud"), ("c-exp", "risk")):
        lineage.create_experiment(name, tags={"team": team})
    # MLflow's default order: newest created first (the default experiment, never
    # created here, last); then by id
    assert [e.name for e in lineage.search_experiments()] == ["c-exp", "a-exp", "b-exp", "Default"]
    assert [e.name for e in lineage.search_experiments(order_by=["name"])] == ["Default", "a-exp", "b-exp", "c-exp"]
    assert [e.name for e in lineage.search_experiments(order_by=["name DESC"], max_results=2)] == ["c-exp", "b-exp"]
    ids = [e.experiment_id for e in lineage.search_experiments(order_by=["experiment_id ASC"])]
    assert ids == sorted(ids, key=int) and ids[0] == "0"
    risk = lineage.search_experiments(filter_string="tags.team = 'risk'", order_by=["name"])
    assert [e.name for e in risk] == ["b-exp", "c-exp"]
    assert [e.name for e in lineage.search_experiments(filter_string="tags.team LIKE 'fr%' AND name != 'x'")] == ["a-exp"]
    b = lineage.get_experiment_by_name("b-exp")
    later = lineage.search_experiments(filter_string=f"creation_time > {b.creation_time}", order_by=["name"])
    assert [e.name for e in later] == ["a-exp", "c-exp"]
    client = lineage.MlflowClient()
    page = client.search_experiments(max_results=2, order_by=["name"])
    assert [e.name for e in page] == ["Default", "a-exp"]
    assert [e.name for e in client.search_experiments(page_token=page.token, order_by=["name"])] == ["b-exp", "c-exp"]
    with pytest.raises(lineage.InvalidInputError, match="not params.x"):
        lineage.search_experiments(filter_string="params.x = '1'")
    with pytest.raises(lineage.FilterSyntaxError, match="unknown attribute 'colour'"):
        lineage.search_experiments(order_by=["attributes.colour"])


def test_a_changed_experiment_tag_fails_verify(tmp_path: Path) -> None:
    db = tmp_path / "lineage.db"
    with lineage.open(db) as lg:
        lg.create_experiment("churn", tags={"team": "risk"})
        assert lg.verify().ok
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE names SET value = 'fraud' WHERE key = 'team'")
    with lineage.open(db) as lg:
        report = lg.verify()
        assert not report.ok
        assert [e["tags"] for e in lg.experiments()] == [{"team": "fraud"}]  # (what verify is for)


def test_a_store_from_before_experiment_records_upgrades_and_keeps_its_experiments(tmp_path: Path) -> None:
    from lineage.store import SCHEMA_VERSION

    db = tmp_path / "lineage.db"
    with lineage.open(db) as lg:
        with lg.start_run("fit", experiment="churn"):
            pass
    with sqlite3.connect(db) as conn:  # as version 14 left it
        conn.execute("DROP TABLE names")
        conn.execute("UPDATE meta SET value = '14' WHERE key = 'schema_version'")
    with lineage.open(db) as lg:
        assert lg.store.schema_version() == SCHEMA_VERSION
        assert [(e["name"], e["runs"], e["created_at"]) for e in lg.experiments()] == [("churn", 1, None)]
        lg.set_experiment_tags("churn", {"team": "risk"})  # named by runs: recorded with its tags
        assert [(e["runs"], e["tags"]) for e in lg.experiments()] == [(1, {"team": "risk"})]
        assert lg.verify().ok


def test_an_import_from_mlflow_adds_only_what_changed(tmp_path: Path) -> None:
    from lineage.interop.mlflow_import import _add_experiments

    class Exp:  # what MLflow's client hands the import: name, times (ms) and tags
        def __init__(self, name: str, tags: dict[str, str]) -> None:
            self.name, self.tags = name, tags
            self.creation_time, self.last_update_time = 1_767_225_600_000, 1_767_225_601_000

    from lineage.interop.bulk import ImportBatch

    with lineage.open(tmp_path / "lineage.db") as lg:
        for tags, expected in (({"team": "risk"}, {"experiments": 1}), ({"team": "risk"}, {}),
                               ({"team": "fraud", "x": "1"}, {"experiments": 1})):
            batch = ImportBatch(lg.store, tool="mlflow", source="test", details={})
            _add_experiments(batch, lg.store, [Exp("churn", tags)])
            result = batch.commit()
            assert {k: v for k, v in result.counts.items() if k == "experiments"} == expected
        rows = lg.store.name_rows("experiment", "churn")
        assert rows[0][1:] == (None, None, "2026-01-01T00:00:00.000000Z")  # MLflow's creation time
        assert {e["name"]: e["tags"] for e in lg.experiments()}["churn"] == {"team": "fraud", "x": "1"}
        assert lg.verify().ok


REGISTRY = textwrap.dedent("""
    from lineage import MlflowClient

    client = MlflowClient()
    client.create_registered_model("churn", tags={"owner": "risk-team"}, description="Scores churn monthly")
    client.update_registered_model("churn", description="Scores churn weekly")
    client.set_registered_model_tag("churn", "db_password", "hunter2hunter2")
""")


def test_a_registered_model_created_in_one_process_is_found_described_in_the_next(tmp_path: Path) -> None:
    from sklearn.dummy import DummyClassifier

    _run(REGISTRY, tmp_path)
    db = tmp_path / ".lineage" / "lineage.db"
    client = lineage.MlflowClient(tracking_uri=str(db))
    rm = client.get_registered_model("churn")
    assert (rm.name, rm.description, rm.latest_versions) == ("churn", "Scores churn weekly", [])
    assert rm.tags == {"owner": "risk-team", "db_password": "***"}  # the description is not a tag here
    assert rm.creation_timestamp is not None and rm.last_updated_timestamp >= rm.creation_timestamp
    assert [m.name for m in client.search_registered_models(filter_string="tags.owner = 'risk-team'")] == ["churn"]
    assert [m.name for m in client.search_registered_models(filter_string="name LIKE 'ch%'")] == ["churn"]
    with pytest.raises(lineage.AlreadyExistsError, match="already exists") as raised:
        client.create_registered_model("churn")
    assert raised.value.error_code == "RESOURCE_ALREADY_EXISTS"
    # its versions join it; it keeps its record
    with lineage.open(db) as lg:
        with lg.start_run("fit") as run:
            model = run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "clf")
        lg.register_model(model, "churn")
        rows = lg.store.name_rows("registered_model", "churn")
        assert [k for _, k, _, _ in rows] == [None, "owner", "mlflow.note.content", "mlflow.note.content", "db_password"]
        with pytest.raises(lineage.WriteRefusedError, match="already exists"):
            lg.create_registered_model("clf")  # a name holding versions exists
        assert lg.verify().ok
    rm = client.get_registered_model("churn")
    assert [v.version for v in rm.latest_versions] == [1] and rm.description == "Scores churn weekly"
    client.set_registered_model_tag("clf", "owner", "ml")  # a name known by its versions takes tags too
    assert client.get_registered_model("clf").tags == {"owner": "ml"}
    with pytest.raises(lineage.NodeNotFoundError, match="no registered model has that name"):
        client.get_registered_model("nope")
    with pytest.raises(lineage.NodeNotFoundError, match="no registered model has that name"):
        client.set_registered_model_tag("nope", "a", "b")
    with pytest.raises(lineage.WriteRefusedError, match="append-only"):
        client.delete_registered_model_tag("churn", "owner")
    with pytest.raises(lineage.WriteRefusedError, match="append-only"):
        client.delete_model_version_tag("churn", 1, "owner")
    with pytest.raises(lineage.InvalidInputError, match="name and tags.X only"):
        client.search_registered_models(filter_string="params.a = '1'")


def test_registry_descriptions_reach_the_audit_as_a_lead_not_a_statement(tmp_path: Path) -> None:
    """An auditor reading "intended purpose: none recorded" should still see what the
    team wrote in the registry, marked as what it is, and checked like every fact."""
    from sklearn.dummy import DummyClassifier

    from lineage.audit.checklist import MISSING, RECORDED

    db = tmp_path / "lineage.db"
    with lineage.open(db) as lg:
        with lg.start_run("fit") as run:
            model = run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "clf")
    client = lineage.MlflowClient(tracking_uri=str(db))
    client.create_registered_model("churn", description="Scores monthly churn <b>risk</b>")
    client.create_model_version("churn", model.id)
    client.update_model_version("churn", 1, description="First candidate")
    with lineage.open(db) as lg:
        report = lg.audit(model.id)
        doc = report.to_dict()
        item = report.item("intended_use")
        assert item["status"] == MISSING  # a registry's text is no person's statement
        assert "“First candidate” (the version)" in item["summary"]
        assert "“Scores monthly churn <b>risk</b>” (registered model churn)" in item["summary"]
        # (a command the reader can run as written: annotate takes the field and the text)
        assert f"lineage annotate {model.id} --field intended_use --text" in item["summary"]
        described = {d["of"]: d for d in doc["model"]["described"]}
        names_event = described["registered model"]["event"]
        assert report.ok and names_event in doc["integrity"]["facts"]["events"]
        for suffix in (".html", ".md"):  # in the item itself, escaped as every user string
            text = report.write(tmp_path / f"a{suffix}").read_text()
            item_text = text[text.index("intended_use"):]
            assert "“Scores monthly churn &lt;b&gt;risk&lt;/b&gt;” (registered model churn" in item_text
            assert "“First candidate” (the version" in item_text
            assert "What the model registry says it is for" in item_text
        lg.annotate(model.id, "intended_use", "Monthly churn scoring for retention offers", author="ann")
        assert lg.audit(model.id).item("intended_use")["status"] == RECORDED
    with sqlite3.connect(db) as conn:  # the registry's text changed behind the ledger's back
        conn.execute("UPDATE names SET value = 'Scores anything' WHERE key = 'mlflow.note.content'")
    with lineage.open(db) as lg:
        report = lg.audit(model.id)
        assert not report.ok and names_event in report.to_dict()["integrity"]["facts"]["failed"]


def test_lineage_experiments_lists_them_with_runs_and_tags(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from lineage.cli import cli

    db = tmp_path / "lineage.db"
    runner = CliRunner()
    with lineage.open(db) as lg:
        empty = runner.invoke(cli, ["--db", str(db), "experiments"])
        assert empty.exit_code == 0 and "no experiments yet" in empty.output
        lg.create_experiment("churn", tags={"team": "risk\x1b[31m"})  # a tag is data, never terminal control
        with lg.start_run("fit", experiment="by-runs"):
            pass
    table = runner.invoke(cli, ["--db", str(db), "experiments"])
    assert table.exit_code == 0, table.output
    assert "churn" in table.output and "by-runs" in table.output and "\x1b" not in table.output
    doc = json.loads(runner.invoke(cli, ["--db", str(db), "experiments", "--json"]).output)
    assert [(e["name"], e["runs"], e["tags"]) for e in doc["items"]] == [
        ("by-runs", 1, {}), ("churn", 0, {"team": "risk\x1b[31m"})]
