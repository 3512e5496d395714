"""`lineage import mlflow` on a real MLflow store written by MLflow itself in the test:
runs with params, step metrics, `log_input` datasets, a logged and registered
scikit-learn model with an alias, a failed run and a nested one. What lineage shows
afterwards is compared with what MLflow reports through its own client."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import require_module

import lineage
from lineage.cli import cli
from lineage.interop.bulk import ms_to_iso
from lineage.query import rows as query_rows


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    mlflow = require_module("mlflow")
    pd = require_module("pandas")
    from sklearn.linear_model import LogisticRegression

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("risk")
    mlflow.set_experiment_tags({"owner": "risk-team", "mlflow.note.content": "Loan scoring"})
    df = pd.DataFrame({"age": [30, 40, 50, 60], "label": [0, 1, 0, 1]})
    with mlflow.start_run(run_name="fit", tags={"mlflow.source.git.commit": "a" * 40, "team": "risk"}) as run:
        mlflow.log_params({"C": 0.5, "penalty": "l2", "api_key": "s3cr3t"})
        for step in range(4):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("accuracy", 0.9)
        mlflow.log_input(mlflow.data.from_pandas(df, source="data/train.csv", name="train", targets="label"), context="training")
        mlflow.log_input(mlflow.data.from_pandas(df.head(2), source="data/test.csv", name="test"), context="testing")
        clf = LogisticRegression(C=0.5).fit(df[["age"]], df["label"])
        info = mlflow.sklearn.log_model(clf, name="model", registered_model_name="risk_model")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_param("fold", 1)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("risk_model", "champion", "1")
    client.update_registered_model("risk_model", description="Scores loan applications")
    client.set_registered_model_tag("risk_model", "owner", "risk-team")
    client.update_model_version("risk_model", "1", description="First candidate, reviewed by Ann")
    client.set_model_version_tag("risk_model", "1", "validation_status", "approved")
    client.set_model_version_tag("risk_model", "1", "deploy_token", "hunter2hunter2")
    failed = client.create_run(client.get_experiment_by_name("risk").experiment_id, run_name="broken")
    client.set_terminated(failed.info.run_id, "FAILED")
    yield {"uri": uri, "client": client, "run": run.info.run_id, "child": child.info.run_id,
           "failed": failed.info.run_id, "model": info, "mlflow": mlflow}
    mlflow.set_tracking_uri(None)


def test_import_matches_what_mlflow_reports(lg: lineage.Lineage, mlflow_store: dict[str, Any]) -> None:
    client = mlflow_store["client"]
    result = lg.import_mlflow(mlflow_store["uri"])
    assert result.counts["run"] == 3 and result.counts["model"] == 1
    activity = lg.get(result.activity)
    assert activity.attrs["import"]["source"] == mlflow_store["uri"] and activity.attrs["status"] == "finished"
    exp = client.get_experiment_by_name("risk")
    # the experiment as a record: MLflow's creation time and tags
    ours = {e["name"]: e for e in lg.experiments()}["risk"]
    assert ours["created_at"] == ms_to_iso(exp.creation_time) and ours["tags"] == exp.tags
    for r in client.search_runs([exp.experiment_id]):
        node = lg.get(f"mlflow:{r.info.run_id}")
        a = node.attrs
        assert node.name == r.info.run_name and a["experiment"] == "risk"
        assert a["status"] == {"FINISHED": "finished", "FAILED": "failed"}[r.info.status]
        assert a["started_at"] == ms_to_iso(r.info.start_time) and a["ended_at"] == ms_to_iso(r.info.end_time)
        expected_params = {k: ("***" if "key" in k else v) for k, v in r.data.params.items()}
        assert a["params"] == expected_params
        assert a["metrics"] == r.data.metrics
        for key in r.data.metrics:
            ours = [(m["step"], m["value"]) for m in query_rows.metrics_of(lg.store, node.id) if m["key"] == key]
            theirs = [(m.step, m.value) for m in client.get_metric_history(r.info.run_id, key)]
            assert sorted(ours) == sorted(theirs)
        for k, v in r.data.tags.items():
            assert a["tags"][k] == v
    fit = lg.get(f"mlflow:{mlflow_store['run']}")
    child = lg.get(f"mlflow:{mlflow_store['child']}")
    assert child.attrs["parent_run"] == fit.id
    # datasets, by MLflow's digest, with the context as role
    run = client.get_run(mlflow_store["run"])
    roles = {e.role: e.dst for e in lg.trace(fit.id, depth=1).edges() if e.src == fit.id and e.rel == "used"}
    for di in run.inputs.dataset_inputs:
        context = next(t.value for t in di.tags if t.key == "mlflow.data.context")
        ds = lg.get(roles[context])
        assert ds.attrs["digests"] == {"mlflow": di.dataset.digest} and ds.name == di.dataset.name
    assert lg.get(roles["code"]).attrs["commit"] == "a" * 40
    # the model: its artifact files' digest, named and versioned by the registry
    model_node = lg.get("risk_model")
    assert model_node.kind == "model" and lg.store.generators(model_node.id) == [fit.id]
    reg = model_node.attrs["registered"][0]
    mv = client.get_model_version("risk_model", "1")
    assert (reg["name"], reg["version"], reg["aliases"]) == ("risk_model", int(mv.version), ["champion"])
    # what people wrote in the registry is kept with the version, secrets masked
    assert reg["description"] == mv.description == "First candidate, reviewed by Ann"
    assert reg["tags"] == {"validation_status": "approved", "deploy_token": "***"}
    assert (reg["model_description"], reg["model_tags"]) == ("Scores loan applications", {"owner": "risk-team"})
    # and the registered model's own record, read as MLflow's client reads it
    record = lg.registered_models("risk_model")[0]
    assert (record["description"], record["tags"]) == ("Scores loan applications", {"owner": "risk-team"})
    assert record["created_at"] == ms_to_iso(client.get_registered_model("risk_model").creation_timestamp)
    # both descriptions reach the audit, beside the intended purpose
    said = {(x["of"], x["text"]) for x in lg.audit(model_node.id).to_dict()["model"]["described"]}
    assert said == {("version", "First candidate, reviewed by Ann"), ("registered model", "Scores loan applications")}
    assert model_node.attrs["mlflow"]["model_id"] == mlflow_store["model"].model_id
    assert lg.get(f"mlflow:{mlflow_store['model'].model_id}").id == model_node.id  # as the plugin names it
    assert {d.node.id for d in lg.which_data(model_node)} >= {roles["training"]}
    assert lg.verify().ok


def test_import_is_idempotent_and_incremental(lg: lineage.Lineage, mlflow_store: dict[str, Any]) -> None:
    lg.import_mlflow(mlflow_store["uri"])
    head = lg.store.head()
    assert not lg.import_mlflow(mlflow_store["uri"]).changed
    assert lg.store.head() == head
    mlflow = mlflow_store["mlflow"]
    with mlflow.start_run(run_name="again") as r:
        mlflow.log_metric("accuracy", 0.7)
    result = lg.import_mlflow(mlflow_store["uri"])
    assert result.counts.get("run") == 1 and "model" not in result.counts
    assert lg.get(f"mlflow:{r.info.run_id}").name == "again"
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "show", f"mlflow:{r.info.run_id}", "--json"])
    assert res.exit_code == 0 and '"again"' in res.output


def test_experiment_filter(lg: lineage.Lineage, mlflow_store: dict[str, Any]) -> None:
    assert not lg.import_mlflow(mlflow_store["uri"], experiments=["Default"]).changed
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "import", "mlflow", "--tracking-uri", mlflow_store["uri"],
                                   "--experiment", "nope"])
    assert res.exit_code == 1 and "no MLflow experiment named 'nope'" in res.output


def test_unreachable_tracking_uri_is_one_line(lg: lineage.Lineage, tmp_path: Path) -> None:
    require_module("mlflow")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = lg.store.head()
    for uri in (f"http://127.0.0.1:{port}", f"sqlite:///{tmp_path / 'missing.db'}"):
        res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "import", "mlflow", "--tracking-uri", uri])
        assert res.exit_code == 1, res.output
        assert uri in res.output and len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert lg.store.head() == before


def test_the_sql_fast_path_and_mlflows_calls_agree(lg: lineage.Lineage, mlflow_store: dict[str, Any], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from lineage.interop import mlflow_import

    lg.import_mlflow(mlflow_store["uri"])
    slow = lineage.open(tmp_path / "slow" / "lineage.db")
    monkeypatch.setattr(mlflow_import, "_sql_runs", lambda *a: None)  # search_runs, as for a tracking server
    monkeypatch.setattr(mlflow_import, "_sql_histories", lambda *a: None)  # get_metric_history_bulk
    slow.import_mlflow(mlflow_store["uri"])
    for run_id in (mlflow_store["run"], mlflow_store["child"], mlflow_store["failed"]):
        a, b = lg.get(f"mlflow:{run_id}"), slow.get(f"mlflow:{run_id}")
        assert (a.id, a.name, dict(a.attrs)) == (b.id, b.name, dict(b.attrs))
        assert [(m["key"], m["step"], m["value"], m["at"]) for m in query_rows.metrics_of(lg.store, a.id)] == \
            [(m["key"], m["step"], m["value"], m["at"]) for m in query_rows.metrics_of(slow.store, b.id)]
        assert set(lg.trace(a.id, depth=1).edges()) == set(slow.trace(b.id, depth=1).edges())
    slow.close()


def test_registry_changes_are_read_on_the_next_import(lg: lineage.Lineage, mlflow_store: dict[str, Any]) -> None:
    import warnings

    from sklearn.linear_model import LogisticRegression

    from lineage.errors import NodeNotFoundError

    mlflow, client = mlflow_store["mlflow"], mlflow_store["client"]
    client.set_registered_model_alias("risk_model", "shadow", "1")
    lg.import_mlflow(mlflow_store["uri"])
    v1 = lg.get("risk_model")
    assert lg.get("risk_model@champion").id == v1.id and lg.get("risk_model@shadow").id == v1.id
    # in MLflow: a second version, the alias moved, another deleted, a stage, and a
    # third version registered from the first version's logged model
    with mlflow.start_run(run_name="refit") as refit:
        clf = LogisticRegression(C=2.0).fit([[30], [40], [50], [60]], [0, 1, 1, 1])
        info2 = mlflow.sklearn.log_model(clf, name="model", registered_model_name="risk_model")
    client.set_registered_model_alias("risk_model", "champion", "2")
    client.delete_registered_model_alias("risk_model", "shadow")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stages are deprecated in MLflow 3, still written
        client.transition_model_version_stage("risk_model", "1", "Production")
    first = mlflow_store["model"]
    client.create_model_version("risk_model", source=f"models:/{first.model_id}", run_id=mlflow_store["run"],
                                model_id=first.model_id)
    result = lg.import_mlflow(mlflow_store["uri"])
    assert result.counts.get("run") == 1 and result.counts.get("model") == 1 and result.counts["promotions"] >= 3
    v2 = lg.get("risk_model@champion")
    assert v2.id != v1.id and v2.attrs["mlflow"]["model_id"] == info2.model_id
    assert [(r["name"], r["version"]) for r in v2.attrs["registered"]] == [("risk_model", 2)]
    assert lg.store.generators(v2.id) == [lg.get(f"mlflow:{refit.info.run_id}").id]
    assert lg.get("risk_model@production").id == v1.id
    with pytest.raises(NodeNotFoundError):
        lg.get("risk_model@shadow")
    shadow = lg.store.promotion_rows("risk_model", "shadow")
    assert [r["action"] for r in shadow] == ["promote", "unpromote"] and shadow[-1]["model"] == v1.id
    moved = lg.store.promotion_rows("risk_model", "champion")
    assert [(r["action"], r["model"]) for r in moved] == [("promote", v1.id), ("end", v1.id), ("promote", v2.id)]
    # each change is recorded by the import activity, the new version of v1 too
    changes = lg.get(result.activity).attrs["import"]["registry"]
    assert {"change": "version", "model": v1.id, "name": "risk_model", "version": 3} in [
        {k: c[k] for k in ("change", "model", "name", "version")} for c in changes if c["change"] == "version"]
    assert {(c["change"], c["label"]) for c in changes if c["change"].startswith("label")} == {
        ("label", "champion"), ("label removed", "shadow"), ("label", "production")}
    # a label set here by a person is left alone while MLflow does not change it
    lg.promote(v2.id, "production")
    assert not lg.import_mlflow(mlflow_store["uri"]).changed
    assert lg.get("risk_model@production").id == v2.id
    assert lg.verify().ok


def test_a_model_without_a_logged_model_entity(lg: lineage.Lineage, mlflow_store: dict[str, Any], tmp_path: Path) -> None:
    """MLflow 2's shape: the model is only files under the run's artifacts (an MLmodel
    file), registered from ``runs:/RUN/model``; MLflow 3 still writes it."""
    from sklearn.linear_model import LogisticRegression

    from lineage import hashing

    mlflow, client = mlflow_store["mlflow"], mlflow_store["client"]
    with mlflow.start_run(run_name="old-style") as run:
        clf = LogisticRegression(C=3.0).fit([[0], [1], [2], [3]], [0, 0, 1, 1])
        mlflow.sklearn.save_model(clf, str(tmp_path / "saved"))
        mlflow.log_artifacts(str(tmp_path / "saved"), "model")
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", "legacy_model")
    client.set_registered_model_alias("legacy_model", "prod", mv.version)
    assert getattr(mv, "model_id", None) is None  # no logged-model entity behind it
    # and one never registered, known only by the history tag MLflow 2's log_model wrote
    with mlflow.start_run(run_name="old-unregistered") as other:
        clf2 = LogisticRegression(C=4.0).fit([[0], [1], [2], [3]], [0, 1, 1, 1])
        mlflow.sklearn.save_model(clf2, str(tmp_path / "saved2"))
        mlflow.log_artifacts(str(tmp_path / "saved2"), "clf")
        mlflow.set_tag("mlflow.log-model.history", json.dumps([{
            "run_id": other.info.run_id, "artifact_path": "clf", "utc_time_created": "2024-05-01 10:00:00.000000",
            "flavors": {"sklearn": {}}}]))
    result = lg.import_mlflow(mlflow_store["uri"])
    assert result.counts["model"] == 3  # risk_model's logged model and these two
    unregistered = lg.get("clf")
    assert unregistered.kind == "model" and lg.store.generators(unregistered.id) == [lg.get(f"mlflow:{other.info.run_id}").id]
    assert unregistered.created_at == "2024-05-01T10:00:00.000000Z" and "registered" not in unregistered.attrs
    node = lg.get("legacy_model")
    digest, _ = hashing.hash_tree(client.get_model_version("legacy_model", mv.version).source)
    assert node.kind == "model" and node.id == f"model:{digest}"
    assert node.attrs["flavor"] == "sklearn" and node.attrs["format"] == "mlflow-model"
    assert node.attrs["registered"][0]["version"] == int(mv.version)
    assert lg.store.generators(node.id) == [lg.get(f"mlflow:{run.info.run_id}").id]
    assert lg.get("legacy_model@prod").id == node.id
    assert not lg.import_mlflow(mlflow_store["uri"]).changed


@contextlib.contextmanager
def _mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Iterator[tuple[Any, str]]:
    """MLflow writing to a SQLite store of its own in ``tmp_path``, in experiment
    ``name`` (MLflow keeps the last experiment across stores); afterwards any run
    left open is ended there (MLflow would end it in ./mlflow.db at exit) and the
    tracking URI reset."""
    mlflow = require_module("mlflow")
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / (name + '.db')}"
    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment(name)
        yield mlflow, uri
    finally:
        mlflow.end_run()
        mlflow.set_tracking_uri(None)


def test_registered_versions_keep_mlflows_order_and_survive_lost_files(lg: lineage.Lineage, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow lists logged models newest first: `risk@1` was MLflow's version 2, and a
    bare `risk` the oldest. And a registered version whose files were deleted vanished
    with its label, under a warning that said it was recorded without them."""
    import shutil

    from sklearn.linear_model import LogisticRegression

    with _mlflow_store(tmp_path, monkeypatch, "order") as (mlflow, uri):
        infos = []
        for c in (0.5, 1.0, 2.0):
            with mlflow.start_run(run_name=f"C={c}"):
                model = LogisticRegression(C=c).fit([[0.0], [1.0]], [0, 1])
                infos.append(mlflow.sklearn.log_model(model, name="model", registered_model_name="risk"))
        client = mlflow.MlflowClient()
        client.set_registered_model_alias("risk", "production", "1")
        gone = Path(client.get_logged_model(infos[0].model_id).artifact_location.removeprefix("file://"))
        shutil.rmtree(gone)
    lg.import_mlflow(uri)
    for n in (1, 2, 3):
        assert lg.get(f"risk@{n}").attrs["registered"][0]["version"] == n
    assert lg.get("risk").attrs["registered"][0]["version"] == 3  # a bare name: the newest
    lost = lg.get("risk@production")
    assert lost.attrs["registered"][0]["version"] == 1 and lost.attrs["files_missing"] is True
    assert lg.store.generators(lost.id)  # its run is kept
    before = lg.store.head()
    lg.import_mlflow(uri)  # and the same on the next import
    assert lg.store.head() == before  # nothing new
    assert lg.verify().ok


def _write_file_store(script: str) -> None:
    """Run ``script`` (MLflow calls on ``./mlruns``) in a process of its own, with the
    file store allowed, as an older MLflow wrote one (this process's MLflow would
    remember the store it opened, allowed)."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"})


def test_a_file_store_imports_though_mlflow_3_refuses_to_open_one(lg: lineage.Lineage, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Most existing history is in ``./mlruns``; MLflow 3 opens a file store only when
    allowed, and the one-line error was cut off before saying how."""
    require_module("mlflow")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    _write_file_store("import mlflow; from sklearn.linear_model import LogisticRegression\n"
                      "mlflow.set_tracking_uri('./mlruns')\n"
                      "with mlflow.start_run(run_name='old-history'):\n"
                      "    mlflow.log_param('alpha', 0.1)\n"
                      "    for step in range(3): mlflow.log_metric('loss', 1.0 / (step + 1), step=step)\n"
                      "    mlflow.sklearn.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), name='model')\n")
    result = lg.import_mlflow("./mlruns")
    assert result.counts["run"] == 1 and lg.get("old-history").attrs["params"]["alpha"] == "0.1"
    # the file store writes a metric logged before the model once more: one point each
    assert [p.step for p in lg.metric_history("old-history", "loss")] == [0, 1, 2]
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # only while importing


def test_a_malformed_experiment_folder_is_one_line_not_mlflows_traceback(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's file store logs a folder it cannot read with its traceback, through
    the root logger: `lineage import mlflow ./mlruns` printed 20 lines of MLflow's
    frames. It is one line naming the store, and the readable runs still import."""
    import subprocess
    import sys

    require_module("mlflow")
    monkeypatch.chdir(tmp_path)
    _write_file_store("import mlflow\n"
                      "mlflow.set_tracking_uri('./mlruns')\n"
                      "with mlflow.start_run(run_name='kept'):\n"
                      "    mlflow.log_param('alpha', 0.1)\n")
    (tmp_path / "mlruns" / "7").mkdir()  # an experiment folder without its meta.yaml
    done = subprocess.run([sys.executable, "-m", "lineage", "--db", str(tmp_path / "l.db"), "import", "mlflow", "./mlruns"],
                          capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                                               if k != "MLFLOW_ALLOW_FILE_STORE"})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    warned = [line for line in done.stderr.splitlines() if "Malformed experiment '7'" in line]
    assert len(warned) == 1 and warned[0].startswith("./mlruns: MLflow: "), done.stderr
    assert "1 run" in done.stdout


def test_a_running_runs_model_waits_for_its_run(lg: lineage.Lineage, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A run still running is left for a later import, and its model was not: it came
    in pointing at a run not recorded yet, so `trace` found nothing upstream."""
    from sklearn.linear_model import LogisticRegression

    with _mlflow_store(tmp_path, monkeypatch, "long-training") as (mlflow, uri):
        run = mlflow.start_run(run_name="long")
        mlflow.sklearn.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), name="model",
                                 registered_model_name="risk")
        result = lg.import_mlflow(uri)
    assert "model" not in result.counts and "run" not in result.counts
    lg.import_mlflow(uri)
    model = lg.get("risk")
    assert lg.store.generators(model.id) == [lg.get(f"mlflow:{run.info.run_id}").id]
    assert lg.verify().ok


def _deleted_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """An MLflow store where someone clicked delete: an active run, a deleted run that
    logged and registered the model in production, and a deleted experiment with a run."""
    from sklearn.linear_model import LogisticRegression

    with _mlflow_store(tmp_path, monkeypatch, "credit") as (mlflow, uri):
        client = mlflow.MlflowClient()
        with mlflow.start_run(run_name="kept") as kept:
            mlflow.log_param("C", 1.0)
        with mlflow.start_run(run_name="trained-prod") as prod:
            mlflow.log_param("C", 0.5)
            mlflow.log_metric("auc", 0.8)
            info = mlflow.sklearn.log_model(LogisticRegression(C=0.5).fit([[0.0], [1.0]], [0, 1]), name="model",
                                            registered_model_name="credit_model")
        client.set_registered_model_alias("credit_model", "production", "1")
        client.delete_run(prod.info.run_id)
        mlflow.set_experiment("scratch")
        with mlflow.start_run(run_name="tried") as tried:
            mlflow.log_metric("auc", 0.6)
        client.delete_experiment(client.get_experiment_by_name("scratch").experiment_id)
        mlflow.set_experiment("credit")
        yield {"uri": uri, "client": client, "mlflow": mlflow, "kept": kept.info.run_id, "prod": prod.info.run_id,
               "tried": tried.info.run_id, "model": info}


@pytest.fixture
def deleted_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    yield from _deleted_history(tmp_path, monkeypatch)


def _stage_of(lg: lineage.Lineage, mlflow_id: str) -> str | None:
    return lg.get(f"mlflow:{mlflow_id}").attrs["tags"].get("mlflow.lifecycleStage")


@pytest.mark.parametrize("path", ["sql", "search_runs"])
def test_deleted_runs_are_imported_and_marked(lg: lineage.Lineage, deleted_history: dict[str, Any], path: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's delete is a soft delete: the run that trained the production model,
    deleted there, was left out with its model, so its provenance hung on nobody
    having clicked delete. Read through MLflow's tables and through `search_runs`
    (a tracking server's path) alike."""
    from lineage.interop import mlflow_import

    if path == "search_runs":
        monkeypatch.setattr(mlflow_import, "_sql_runs", lambda *a: None)
    h = deleted_history
    # (the store as the argument, as `lineage import dvc REPO` takes its repo)
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "import", "mlflow", h["uri"]])
    assert res.exit_code == 0, res.output
    assert "3 runs (2 deleted in MLflow)" in res.output
    assert _stage_of(lg, h["kept"]) is None
    assert _stage_of(lg, h["prod"]) == _stage_of(lg, h["tried"]) == "deleted"
    prod = lg.get(f"mlflow:{h['prod']}")
    assert prod.attrs["params"] == {"C": "0.5"} and prod.attrs["metrics"] == {"auc": 0.8}
    # the deleted experiment's run keeps the experiment's name
    assert lg.get(f"mlflow:{h['tried']}").attrs["experiment"] == "scratch"
    # the production model, registered from the deleted run, is here and linked to it
    model = lg.get("credit_model@production")
    assert model.attrs["mlflow"]["model_id"] == h["model"].model_id and lg.store.generators(model.id) == [prod.id]
    # lineage's MLflow surface hides deleted runs as MLflow did
    from lineage.entities import ViewType

    client = lineage.MlflowClient(tracking_uri=str(lg.db_path))
    credit = client.get_experiment_by_name("credit").experiment_id
    assert [r.info.run_name for r in client.search_runs([credit])] == ["kept"]
    every = client.search_runs([credit], run_view_type=ViewType.ALL)
    assert {r.info.run_name for r in every} == {"kept", "trained-prod"}
    assert [r.info.lifecycle_stage for r in client.search_runs([credit], run_view_type=ViewType.DELETED_ONLY)] == ["deleted"]
    head = lg.store.head()
    assert not lg.import_mlflow(h["uri"]).changed and lg.store.head() == head
    assert lg.verify().ok


def test_deletions_and_restorations_since_are_recorded(lg: lineage.Lineage, deleted_history: dict[str, Any]) -> None:
    from lineage.query import rows as query_rows

    h, client = deleted_history, deleted_history["client"]
    lg.import_mlflow(h["uri"])
    client.restore_run(h["prod"])
    client.delete_run(h["kept"])
    result = lg.import_mlflow(h["uri"])
    assert result.counts == {"tags": 2, "runs_marked_deleted": 1, "runs_restored": 1}
    assert _stage_of(lg, h["prod"]) == "active" and _stage_of(lg, h["kept"]) == "deleted"
    changes = query_rows.tag_changes_of(lg.store, lg.get(f"mlflow:{h['prod']}").id, "mlflow.lifecycleStage")
    assert [c["value"] for c in changes] == ["deleted", "active"] and changes[-1]["event"] == result.event
    head = lg.store.head()
    assert not lg.import_mlflow(h["uri"]).changed and lg.store.head() == head
    # the audit's accountability step names the restoration of the model's run
    from lineage.audit import facts

    steps = facts._lifecycle(lg.store, lg.get(f"mlflow:{h['prod']}").id, facts.Agents(lg.store))
    assert [s["what"] for s in steps] == ["marked deleted in MLflow", "restored in MLflow"]
    assert lg.verify().ok


def test_a_deleted_experiment_can_be_named(lg: lineage.Lineage, deleted_history: dict[str, Any]) -> None:
    result = lg.import_mlflow(deleted_history["uri"], experiments=["scratch"])
    assert result.counts["run"] == 1 and result.counts["runs_deleted"] == 1
    assert lg.get(result.activity).attrs["import"]["deleted_experiments"] == ["scratch"]
    assert _stage_of(lg, deleted_history["tried"]) == "deleted"


def test_a_file_stores_deleted_runs_are_imported(lg: lineage.Lineage, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``./mlruns`` deletes differently: a deleted experiment moves to ``.trash`` and
    its runs stay active there; they are marked deleted all the same."""
    require_module("mlflow")
    monkeypatch.chdir(tmp_path)
    _write_file_store("import mlflow\n"
                      "mlflow.set_tracking_uri('./mlruns'); c = mlflow.MlflowClient()\n"
                      "mlflow.set_experiment('keep')\n"
                      "with mlflow.start_run(run_name='gone') as r: mlflow.log_param('a', 1)\n"
                      "c.delete_run(r.info.run_id)\n"
                      "mlflow.set_experiment('trash')\n"
                      "with mlflow.start_run(run_name='in-trash'): mlflow.log_param('a', 2)\n"
                      "c.delete_experiment(c.get_experiment_by_name('trash').experiment_id)\n")
    result = lg.import_mlflow("./mlruns")
    assert result.counts["run"] == result.counts["runs_deleted"] == 2
    for name, exp in (("gone", "keep"), ("in-trash", "trash")):
        node = lg.get(name)
        assert node.attrs["tags"]["mlflow.lifecycleStage"] == "deleted" and node.attrs["experiment"] == exp
    assert not lg.import_mlflow("./mlruns").changed
