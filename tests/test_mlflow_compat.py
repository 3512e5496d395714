"""Route 1: MLflow code runs on lineage with only its import lines changed
(``import lineage as mlflow``), without MLflow installed. The examples are MLflow's
own (tests/mlflow_examples/), run as scripts in a fresh project folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

import lineage
from lineage import fluent
from lineage.cli import cli

EXAMPLES = Path(__file__).parent / "mlflow_examples"
ROOT = Path(__file__).resolve().parents[1]

#: the substitutions docs/tracking.md documents, and nothing else
ROUTE_1 = [
    ("import mlflow\n", "import lineage as mlflow\n"),
    ("from mlflow.models import infer_signature\n", "from lineage.models import infer_signature\n"),
    ("import mlflow.sklearn\n", "import lineage.sklearn\n"),
    ("from mlflow import MlflowClient\n", "from lineage import MlflowClient\n"),
]


def route_1(name: str, folder: Path) -> Path:
    text = (EXAMPLES / name).read_text()
    assert "import mlflow\n" in text
    for old, new in ROUTE_1:
        text = text.replace(old, new)
    script = folder / name
    script.write_text(text)
    return script


def run_script(script: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run([sys.executable, str(script), *args], cwd=script.parent, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_route_1_scripts_never_import_mlflow(tmp_path: Path) -> None:
    # the point of route 1: the scripts need no MLflow (the quick suite's environment
    # has none; where it is installed, the substituted scripts still must not load it)
    script = route_1("sklearn_elasticnet_wine.py", tmp_path)
    lines = [ln.strip() for ln in script.read_text().splitlines()]
    assert not [ln for ln in lines if ln.startswith(("import mlflow", "from mlflow"))]
    assert "import lineage as mlflow" in lines


# ---------------------------------------------------------------------------
# MLflow's own examples, import lines changed


def test_the_elasticnet_example_runs_with_only_its_imports_changed(fluent_project: Path) -> None:
    script = route_1("sklearn_elasticnet_wine.py", fluent_project)
    run_script(script)
    run_script(script, "0.3", "0.2")
    lg = lineage.open(fluent_project / ".lineage" / "lineage.db")
    runs = lg.runs()
    assert len(runs) == 2 and {r.attrs["status"] for r in runs} == {"finished"}
    assert {r.attrs["params"]["alpha"] for r in runs} == {"0.5", "0.3"}
    # the registered model: version 2 is the second run's
    model = lg.get("ElasticnetDiabetesModel@2")
    assert model.kind == "model" and model.attrs["class"].endswith("ElasticNet")
    assert [c["name"] for c in model.attrs["signature"]["inputs"]][:3] == ["age", "sex", "bmi"]
    # trace: the model back to its run, data, code and environment
    counts = lg.trace(model).to_dict()["counts"]
    assert counts["run"] == 1 and counts["dataset"] == 2 and counts["code"] == 1
    # which_data: MLflow's contexts kept, testing data held out
    uses = {u.node.name: (u.role, u.group) for u in lg.which_data(model)}
    assert uses == {"diabetes-train": ("training", "training"), "diabetes-test": ("testing", "held_out")}
    # the audit: training data is the training set only
    report = lg.audit(model)
    report.write(fluent_project / "audit.html")
    doc = report.to_dict()
    assert [(d["name"], d["role"], d["use"]) for d in doc["data"]] == [
        ("diabetes-train", "training", "training"), ("diabetes-test", "testing", "held_out")]
    item = next(c for c in doc["checklist"] if c["key"] == "training_data")
    assert item["status"] == "recorded" and "1 training, 1 testing" in item["summary"]
    assert "diabetes-test" in (fluent_project / "audit.html").read_text()
    assert lg.verify().ok


def test_model_info_and_the_registry_run_with_only_imports_changed(fluent_project: Path) -> None:
    # log_model's ModelInfo (.model_uri, .run_id, .registered_model_version), then the
    # registry: what MLflow's tracking quickstart and registry guides do
    out = run_script(route_1("model_info.py", fluent_project))
    lines = [ln.split() for ln in out.splitlines()]
    versions = [ln for ln in lines if ln[0] == "version"]
    assert [v[1] for v in versions] == ["1", "2"]
    lg = lineage.open(fluent_project / ".lineage" / "lineage.db")
    for v in versions:
        run = lineage.get_run(v[5])
        assert v[3] == f"runs:/{v[5]}/iris_model" and run.data.tags["purpose"] == "quickstart-shaped check"
        model = lg.get(f"iris-classifier@{v[1]}")
        assert [r.id for r in lg.generated_by(model)] == [f"run:{v[5]}"]
        assert model.attrs["artifact_path"] == "iris_model" and "signature" in model.attrs
    champion = next(ln for ln in lines if ln[0] == "champion")
    assert champion[1:3] == ["2", "['champion']"] and champion[3] == versions[1][5]
    assert next(ln for ln in lines if ln[0] == "production") == ["production", "[2]"]
    assert lg.labels("iris-classifier").keys() == {"champion", "production"}
    assert lg.labels("iris-classifier")["production"].id == lg.get("iris-classifier@2").id
    assert lg.verify().ok


def test_the_autolog_example_runs_with_only_its_imports_changed(fluent_project: Path) -> None:
    script = route_1("sklearn_autolog.py", fluent_project)
    out = run_script(script)
    grid_id = out.split("grid ")[1].split()[0]
    pipe_id = out.split("pipeline ")[1].split()[0]
    grid = lineage.get_run(grid_id)
    assert grid.info.status == "FINISHED"
    assert grid.data.params["best_C"] in {"1", "5", "10"} and "best_cv_score" in grid.data.metrics
    children = lineage.search_runs(filter_string=f"tags.mlflow.parentRunId = '{grid_id}'", output_format="list")
    assert len(children) == 5  # max_tuning_runs
    assert all("mean_test_score" in c.data.metrics for c in children)
    pipe = lineage.get_run(pipe_id)
    assert pipe.data.params["lr__fit_intercept"] == "True" and "scaler__with_mean" in pipe.data.params
    assert pipe.data.metrics["training_score"] == pytest.approx(1.0)
    lg = fluent.get_lineage()
    model = lg.get("GridSearchCV")
    uses = lg.which_data(model)
    assert {u.role for u in uses} == {"training"}
    assert any(u.node.attrs.get("columns", [None])[0] == "sepal length (cm)" for u in uses)  # names kept
    assert lg.trace(model).to_dict()["counts"]["dataset"] == 2
    lg.audit(model).write(fluent_project / "audit.html")
    assert "GridSearchCV" in (fluent_project / "audit.html").read_text()


# ---------------------------------------------------------------------------
# runs in MLflow's shape


def test_runs_have_mlflow_shape_and_stay_lineage_runs(fluent_project: Path) -> None:
    with lineage.start_run(run_name="fit", tags={"team": "risk"}) as run:
        assert lineage.active_run().info.run_id == run.info.run_id
        info = run.info
        assert len(info.run_id) == 32 and run.id == f"run:{info.run_id}"
        assert info.run_name == "fit" and info.experiment_id == "0" and info.status == "RUNNING"
        assert isinstance(info.start_time, int) and info.end_time is None and info.lifecycle_stage == "active"
        lineage.log_params({"alpha": 0.5})
        lineage.log_metrics({"rmse": 0.9}, step=0)
        lineage.log_metric("rmse", 0.7, step=1)
        assert run.data.metrics == {"rmse": 0.7} and run.data.params == {"alpha": "0.5"}
        assert run.data.tags["team"] == "risk" and run.data.tags["mlflow.runName"] == "fit"
        assert run.data.tags["mlflow.user"] == "tester"
    got = lineage.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.end_time >= got.info.start_time
    assert lineage.last_active_run().info.run_id == run.info.run_id
    with lineage.start_run(run_name="parent") as parent, lineage.start_run(run_name="child", nested=True) as child:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_a_crashed_or_failed_run_reads_failed(fluent_project: Path) -> None:
    with pytest.raises(RuntimeError), lineage.start_run(run_name="boom") as run:
        raise RuntimeError("boom")
    assert lineage.get_run(run.info.run_id).info.status == "FAILED"


def test_a_killed_run_reads_killed_and_is_found_as_such(fluent_project: Path) -> None:
    """lineage records it as failed (its statuses are DESIGN.md's four), with the
    error text 'killed'; MLflow's views and filters read KILLED, as MLflow wrote it."""
    with lineage.start_run(run_name="stopped") as run:
        lineage.end_run(status="KILLED")
    client = lineage.MlflowClient()
    other = client.create_run(run.info.experiment_id, run_name="client-stopped")
    client.set_terminated(other.info.run_id, status="KILLED")
    assert [lineage.get_run(r.info.run_id).info.status for r in (run, other)] == ["KILLED", "KILLED"]
    found = lineage.search_runs(filter_string="attributes.status = 'KILLED'", output_format="list")
    assert {r.info.run_id for r in found} == {run.info.run_id, other.info.run_id}
    assert not lineage.search_runs(filter_string="attributes.status = 'FAILED'", output_format="list")
    with lineage.open() as lg:
        assert lg.get(f"run:{run.info.run_id}").attrs["status"] == "failed"


def test_an_error_answers_as_mlflows_exception(fluent_project: Path) -> None:
    """``except MlflowException as e: e.error_code`` is how MLflow scripts tell errors apart."""
    from lineage.exceptions import MlflowException

    with lineage.start_run() as run:
        lineage.log_param("p", "1")
    with pytest.raises(MlflowException) as changed:
        lineage.MlflowClient().log_param(run.info.run_id, "p", "2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE" and changed.value.get_http_status_code() == 400
    with pytest.raises(MlflowException) as missing:
        lineage.get_run("0" * 32)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST" and missing.value.message == str(missing.value)


def test_searches_come_in_pages_with_a_token(fluent_project: Path) -> None:
    """MLflow's docs page through results with ``while page.token``: the token was missing."""
    lineage.set_experiment("paging")
    for i in range(5):
        with lineage.start_run(run_name=f"r{i}"):
            lineage.log_metric("score", i)
    client = lineage.MlflowClient()
    exp = client.get_experiment_by_name("paging").experiment_id
    page = client.search_runs([exp], max_results=2, order_by=["metrics.score DESC"])
    names = [r.info.run_name for r in page]
    while page.token:
        page = client.search_runs([exp], max_results=2, order_by=["metrics.score DESC"], page_token=page.token)
        names += [r.info.run_name for r in page]
    assert names == ["r4", "r3", "r2", "r1", "r0"]
    assert client.search_runs([exp], max_results=10).token is None
    with pytest.raises(lineage.InvalidInputError, match="page_token"):
        client.search_runs([exp], page_token="not-a-token")



def test_a_timestamp_of_zero_is_the_epoch_not_now(fluent_project: Path) -> None:
    """MLflow's client takes ``timestamp=0`` as given (1970); a truth test made it "now"."""
    client = lineage.MlflowClient()
    with lineage.start_run(run_name="epoch") as run:
        client.log_metric(run.info.run_id, "a", 1.0, timestamp=0, step=0)
        client.log_batch(run.info.run_id, metrics=[SimpleNamespace(key="b", value=2.0, timestamp=0, step=0)])
    for key in ("a", "b"):
        (point,) = client.get_metric_history(run.info.run_id, key)
        assert point.timestamp == 0, (key, point)


def test_a_metric_history_comes_in_mlflows_order(fluent_project: Path) -> None:
    """MLflow's get_metric_history is by time, then step, then value (its SQL store's
    ORDER BY); steps logged out of order came back by step."""
    client = lineage.MlflowClient()
    with lineage.start_run(run_name="order") as run:
        for value, ts, step in [(3.0, 3000, 1), (1.0, 1000, 5), (2.0, 2000, 5), (0.5, 2000, 5), (9.0, 1000, 2)]:
            client.log_metric(run.info.run_id, "m", value, timestamp=ts, step=step)
    got = [(m.timestamp, m.step, m.value) for m in client.get_metric_history(run.info.run_id, "m")]
    assert got == [(1000, 2, 9.0), (1000, 5, 1.0), (2000, 5, 0.5), (2000, 5, 2.0), (3000, 1, 3.0)]

def test_an_unsupported_call_is_one_clear_error_and_does_not_fail_the_run(fluent_project: Path) -> None:
    assert not hasattr(lineage, "start_span")
    with pytest.raises(lineage.UnsupportedError, match="mlflow.projects") as err:
        lineage.projects
    assert isinstance(err.value, AttributeError) and isinstance(err.value, lineage.LineageError)
    with pytest.raises(lineage.UnsupportedError), lineage.start_run(run_name="traced") as run:
        lineage.log_param("a", 1)
        lineage.trace
    got = fluent.get_lineage().get(run.id)
    assert got.attrs["status"] == "finished" and "does not support" in got.attrs["error"]
    assert not hasattr(lineage.MlflowClient(), "create_prompt")
    # the flavour modules too: saving a custom model to a folder names the call and the way out
    with pytest.raises(lineage.UnsupportedError, match=r"mlflow\.pyfunc\.save_model \(saving a custom model"):
        lineage.pyfunc.save_model
    assert not hasattr(lineage.sklearn, "save_model_to_cloud")
    assert hasattr(lineage.pyfunc, "load_model") and hasattr(lineage.sklearn, "log_model")


def test_mlflows_submodules_name_what_they_lack_and_hand_over_what_scripts_import(fluent_project: Path) -> None:
    for module, name in ((lineage.models, "get_model_info"), (lineage.data, "get_source"),
                         (lineage.entities, "Dataset"), (lineage.exceptions, "RestException")):
        with pytest.raises(lineage.UnsupportedError, match=rf"mlflow\.{module.__name__.split('.')[-1]}\.{name}"):
            getattr(module, name)
    with pytest.raises(lineage.UnsupportedError, match="GenAI/LLM evaluation"):
        lineage.evaluate(lambda d: d, [[1.0]], targets=[1], model_type="question-answering")
    # what MLflow scripts import from them
    from lineage.entities import Metric, Param, RunTag, ViewType

    assert lineage.tracking.MlflowClient is lineage.MlflowClient  # `mlflow.tracking.MlflowClient()`
    with lineage.start_run() as run:
        lineage.MlflowClient().log_batch(run.info.run_id, metrics=[Metric("loss", 0.5, 0, 1)],
                                         params=[Param("alpha", "0.1")], tags=[RunTag("team", "a")])
    got = lineage.get_run(run.info.run_id).data
    assert (got.params, got.metrics["loss"], got.tags["team"]) == ({"alpha": "0.1"}, 0.5, "a")
    assert len(lineage.search_runs(run_view_type=ViewType.ACTIVE_ONLY)) == 1
    # `except MlflowException:` catches lineage's errors
    with pytest.raises(lineage.exceptions.MlflowException, match="no run has that id"):
        lineage.get_run("0" * 32)
    # an experiment name nobody has finds no runs, as in MLflow (not an error)
    assert len(lineage.search_runs(experiment_names=["nobody"])) == 0
    assert [r.info.run_id for r in lineage.search_runs(experiment_names=["nobody", "Default"],
                                                       output_format="list")] == [run.info.run_id]


def test_numpy_params_are_stored_as_mlflow_stores_them(fluent_project: Path) -> None:
    """numpy 2's repr is ``np.float64(0.1)``; MLflow stores ``str(value)``: ``0.1``. A
    sweep over ``np.logspace`` must be findable by the value it logged."""
    import datetime

    import numpy as np

    with lineage.start_run() as run:
        lineage.log_params({"alpha": np.float64(0.1), "n": np.int64(3), "flag": np.bool_(True),
                            "day": datetime.date(2024, 1, 2), "grid": np.array([1, 2]),
                            "password": np.int64(1234)})
    params = lineage.get_run(run.info.run_id).data.params
    assert params == {"alpha": "0.1", "n": "3", "flag": "True", "day": "2024-01-02", "grid": "[1,2]",
                      "password": "***"}
    assert len(lineage.search_runs(filter_string="params.alpha = '0.1'")) == 1


def test_mlflows_environment_variables_choose_the_experiment_and_the_run(
        fluent_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    with lineage.start_run() as first:
        pass
    assert lineage.get_run(first.info.run_id).info.experiment_id == lineage.get_experiment_by_name("from-env").experiment_id
    monkeypatch.setenv("MLFLOW_RUN_ID", first.info.run_id)
    with lineage.start_run() as resumed:  # resumes the run named, once (MLflow pops the variable)
        lineage.log_param("later", 1)
    assert resumed.info.run_id == first.info.run_id and "MLFLOW_RUN_ID" not in os.environ
    assert lineage.get_run(first.info.run_id).data.params == {"later": "1"}
    lineage.set_experiment("chosen")  # set_experiment wins over the environment
    with lineage.start_run() as run:
        pass
    assert lineage.get_run(run.info.run_id).info.experiment_id == lineage.get_experiment_by_name("chosen").experiment_id


def test_a_nan_or_infinite_metric_reads_back_as_mlflow_gives_it(fluent_project: Path) -> None:
    """A diverged loss: SQLite keeps a NaN as NULL; every reader hands it out as NaN
    (MLflow's objects), null (JSON) or a gap, and none fails on it."""
    import math

    runs = []
    for i, loss in enumerate((math.nan, 0.5, math.inf)):
        with lineage.start_run(params={"lr": i}) as run:
            for step, value in enumerate((1.0, math.nan, loss)):
                lineage.log_metric("loss", value, step=step)
            lineage.log_param("config", "x" * 10_000)
        runs.append(run.info.run_id)
    client = lineage.MlflowClient()
    assert math.isnan(client.get_run(runs[0]).data.metrics["loss"])
    assert client.get_run(runs[2]).data.metrics["loss"] == math.inf
    history = [(m.step, m.value) for m in client.get_metric_history(runs[2], "loss")]
    assert history[0] == (0, 1.0) and math.isnan(history[1][1]) and history[2] == (2, math.inf)
    frame = lineage.search_runs(order_by=["metrics.loss ASC"])
    assert frame["metrics.loss"].tolist()[:2] == [0.5, math.inf] and math.isnan(frame["metrics.loss"].tolist()[2])
    assert [r.info.run_id for r in lineage.search_runs(filter_string="metrics.loss < 1", output_format="list")] == [runs[1]]
    lg = fluent.get_lineage()
    assert lg.metric_history(f"run:{runs[2]}", "loss").sparkline() == "▁ █"
    assert lg.metric_history(f"run:{runs[0]}", "loss").to_dict()["items"][2]["value"] is None  # JSON: null
    with pytest.raises(lineage.InvalidInputError, match="finite number; found 1"):
        lg.insights("loss")
    result = CliRunner().invoke(cli, ["runs"], terminal_width=400)
    assert result.exit_code == 0 and "loss=nan" in result.output and "loss=inf" in result.output
    assert "x" * 41 not in result.output and "x" * 39 + "…" in result.output  # a long param, cut
    # --json is a JSON document any parser reads: no bare Infinity/NaN tokens
    def strict(text: str) -> Any:
        return json.loads(text, parse_constant=lambda token: pytest.fail(f"not JSON: {token}"))

    items = strict(CliRunner().invoke(cli, ["runs", "--json"]).output)["items"]
    assert sorted(str(i["attrs"]["metrics"]["loss"]) for i in items) == ["0.5", "Infinity", "None"]
    with lineage.start_run() as run:
        lineage.log_metric("loss", -math.inf)
        from sklearn.dummy import DummyClassifier

        model = lineage.sklearn.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), name="diverged")
    report = lg.audit(model.id)
    path = report.write(fluent_project / "audit.json")
    doc = strict(Path(path).read_text())
    assert "-Infinity" in [m["value"] for m in doc["metrics"]]
    from importlib import resources

    import jsonschema

    schema = json.loads(resources.files("lineage.audit").joinpath("schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(doc, schema)
    assert lg.verify().ok


def test_experiments(fluent_project: Path) -> None:
    exp_id = lineage.create_experiment("wine")
    assert isinstance(exp_id, str) and exp_id != "0"
    assert lineage.get_experiment_by_name("wine").experiment_id == exp_id
    assert lineage.get_experiment_by_name("Default").experiment_id == "0"
    assert lineage.get_experiment_by_name("nope") is None
    with pytest.raises(lineage.WriteRefusedError):
        lineage.create_experiment("wine")
    exp = lineage.set_experiment("wine")
    assert exp.name == "wine" and exp.experiment_id == exp_id
    with lineage.start_run() as run:
        assert run.info.experiment_id == exp_id
    with lineage.start_run(experiment_id="0") as other:
        assert other.info.experiment_id == "0"
    assert [e.name for e in lineage.search_experiments()] == ["Default", "wine"]
    assert [e.name for e in lineage.search_experiments(filter_string="name LIKE 'w%'")] == ["wine"]
    with pytest.raises(lineage.NodeNotFoundError):
        lineage.start_run(experiment_id="12345")
    assert lineage.get_run(run.info.run_id).info.experiment_id == exp_id


def test_delete_run_hides_the_run_from_searches_and_keeps_its_record(fluent_project: Path) -> None:
    """MLflow's soft delete: out of active searches, readable as deleted, restorable;
    the run, its params and who deleted it stay in the store (append-only)."""
    from lineage import MlflowClient
    from lineage.entities import ViewType

    with lineage.start_run() as kept:
        lineage.log_param("alpha", 1)
    with lineage.start_run() as dropped:
        lineage.log_param("alpha", 2)
    run_id = dropped.info.run_id
    lineage.delete_run(run_id)

    view = lineage.get_run(run_id)
    assert view.info.lifecycle_stage == "deleted"
    assert view.data.params == {"alpha": "2"}  # the record stays
    assert "mlflow.lifecycleStage" not in view.data.tags  # a state of the run, not one of its tags
    ids = lambda **kw: {r.info.run_id for r in lineage.search_runs(output_format="list", **kw)}  # noqa: E731
    assert ids() == {kept.info.run_id}  # MLflow's default: active runs only
    assert ids(run_view_type=ViewType.DELETED_ONLY) == {run_id}
    assert ids(run_view_type=ViewType.ALL) == {kept.info.run_id, run_id}
    assert ids(run_view_type="ALL", filter_string="attributes.lifecycle_stage = 'deleted'") == {run_id}
    client = MlflowClient()
    assert [r.info.run_id for r in client.search_runs(["0"])] == [kept.info.run_id]
    with pytest.raises(lineage.InvalidInputError, match="run_view_type"):
        lineage.search_runs(run_view_type=7)

    client.restore_run(run_id)
    assert lineage.get_run(run_id).info.lifecycle_stage == "active"
    assert ids() == {kept.info.run_id, run_id}
    with pytest.raises(lineage.WriteRefusedError, match="not deleted"):
        client.restore_run(run_id)
    # both changes are ledger events of the run, and the ledger still verifies
    lg = fluent.get_lineage()
    history = [e.payload["keys"] for e in lg.store.events() if e.type == "tags"]
    assert history[-2:] == [["mlflow.lifecycleStage"], ["mlflow.lifecycleStage"]]
    assert lg.verify().ok


def test_the_audit_says_who_deleted_the_training_run(fluent_project: Path) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X, y = np.random.default_rng(0).random((40, 3)), np.arange(40) % 2
    with lineage.start_run(run_name="train") as run:
        info = lineage.sklearn.log_model(LogisticRegression().fit(X, y), name="clf")
    lineage.delete_run(run.info.run_id)
    doc = fluent.get_lineage().audit(info.id).to_dict()
    steps = [s for s in doc["accountability"] if "deleted" in s["step"]]
    assert [s["step"] for s in steps] == ["training run train marked deleted in MLflow"]
    assert steps[0]["who"] and steps[0]["at"] and steps[0]["event"]


def test_tracking_uri(tmp_path: Path, fluent_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere"
    lineage.set_tracking_uri(f"lineage://{other}")
    assert lineage.get_tracking_uri() == f"lineage://{other}"
    with lineage.start_run():
        pass
    assert (other / ".lineage" / "lineage.db").is_file()
    lineage.set_tracking_uri(f"sqlite:///{tmp_path / 'x.db'}")
    assert lineage.get_tracking_uri() == f"sqlite:///{tmp_path / 'x.db'}"
    # MLflow's file store: the folder it would keep runs in holds the store
    lineage.set_tracking_uri(f"file://{tmp_path / 'mlruns'}")
    with lineage.start_run():
        pass
    assert (tmp_path / "mlruns" / "lineage.db").is_file()
    monkeypatch.chdir(tmp_path)
    lineage.set_tracking_uri("file:./local-runs")
    with lineage.start_run() as run:
        pass
    assert lineage.open(tmp_path / "local-runs" / "lineage.db").get(run.id).kind == "run"
    assert not list(tmp_path.glob("file:*"))
    with pytest.raises(lineage.InvalidInputError, match="a file URI names a local folder"):
        lineage.set_tracking_uri("file://server/share/mlruns")


# ---------------------------------------------------------------------------
# search_runs


def _three_runs() -> list[Any]:
    out = []
    for alpha, rmse, team in ((0.5, 0.7, "a"), (0.1, 0.9, "b"), (0.5, 0.95, "b")):
        with lineage.start_run(params={"alpha": alpha}, tags={"team": team}) as run:
            lineage.log_metric("rmse", rmse)
        out.append(run.info.run_id)
    return out


def test_search_runs_speaks_mlflows_filter_and_columns(fluent_project: Path) -> None:
    ids = _three_runs()
    df = lineage.search_runs(filter_string="metrics.rmse < 0.93 and params.alpha = '0.5' and tags.team = 'a'")
    assert list(df["run_id"]) == [ids[0]]
    for col in ("run_id", "experiment_id", "status", "start_time", "params.alpha", "metrics.rmse", "tags.team"):
        assert col in df.columns
    assert str(df["start_time"].dtype).startswith("datetime64")
    df = lineage.search_runs(order_by=["metrics.rmse DESC"])
    assert list(df["run_id"]) == [ids[2], ids[1], ids[0]]
    assert len(lineage.search_runs(max_results=2)) == 2
    assert len(lineage.search_runs(filter_string="attributes.status = 'FINISHED'")) == 3
    assert len(lineage.search_runs(filter_string="attributes.status = 'RUNNING'")) == 0
    assert len(lineage.search_runs(filter_string="tags.team LIKE 'b%'")) == 2
    assert len(lineage.search_runs(filter_string="params.alpha IN ('0.1', '0.3')")) == 1
    runs = lineage.search_runs(experiment_names=["Default"], output_format="list")
    assert {r.info.run_id for r in runs} == set(ids)
    assert len(lineage.search_runs(experiment_ids=["0"], filter_string=f"attributes.run_id = '{ids[1]}'")) == 1


@pytest.mark.parametrize("bad, pos", [
    ("metrics.rmse <", 14),
    ("metrics.rmse < 1 or params.a = 'x'", 17),
    ("foo.rmse < 1", 0),
    ("metrics.rmse < 0.5 and params.a = 'x", 34),
])
def test_a_malformed_filter_names_its_position(fluent_project: Path, bad: str, pos: int) -> None:
    with pytest.raises(lineage.FilterSyntaxError) as err:
        lineage.search_runs(filter_string=bad)
    assert err.value.position == pos and f"position {pos}" in str(err.value)


def test_unknown_ids_are_clear_errors_and_record_nothing(fluent_project: Path) -> None:
    lg = fluent.get_lineage()
    before = lg.store.head()
    with pytest.raises(lineage.NodeNotFoundError, match="no run has that id"):
        lineage.get_run("0" * 32)
    with pytest.raises(lineage.NodeNotFoundError):
        lineage.start_run(run_id="f" * 32)
    with pytest.raises(lineage.NodeNotFoundError):
        lineage.search_runs(experiment_ids=["999"])
    with pytest.raises(lineage.NodeNotFoundError, match="runs:/"):
        lineage.pyfunc.load_model(f"runs:/{'0' * 32}/model")
    assert lg.store.head() == before


# ---------------------------------------------------------------------------
# datasets, models, artifacts


def test_datasets_models_and_loading_back(fluent_project: Path) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    df = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0], "x2": [1.0, 0.0, 1.0, 0.0], "y": [0, 0, 1, 1]})
    ds = lineage.data.from_pandas(df, source="data/train.csv", targets="y", name="train")
    assert ds.name == "train" and len(ds.digest) == 8 and ds.targets == "y" and ds.profile["num_rows"] == 4
    assert ds.schema["mlflow_colspec"][0] == {"name": "x1", "type": "float64"}
    arr = lineage.data.from_numpy(np.eye(4), targets=np.arange(4), name="val")
    clf = LogisticRegression().fit(df[["x1", "x2"]], df["y"])
    with lineage.start_run() as run:
        lineage.log_input(ds, context="training")
        lineage.log_input(arr, context="validation")
        sig = lineage.models.infer_signature(df[["x1", "x2"]], clf.predict(df[["x1", "x2"]]))
        node = lineage.sklearn.log_model(clf, name="model", signature=sig, input_example=df.head(2))
    assert node.attrs["signature"]["inputs"] == [{"type": "double", "name": "x1"}, {"type": "double", "name": "x2"}]
    lg = fluent.get_lineage()
    roles = sorted((u.node.name, u.role) for u in lg.which_data(node))
    assert roles == [("train", "training"), ("val", "validation"), ("val.targets", "validation")]
    assert [d.tags["mlflow.data.context"] for d in lineage.get_run(run.info.run_id).inputs.dataset_inputs] == \
        ["training", "validation", "validation"]
    loaded = lineage.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    assert (loaded.predict(df[["x1", "x2"]]) == clf.predict(df[["x1", "x2"]])).all()
    assert lineage.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(df[["x1", "x2"]]).tolist() == [0, 0, 1, 1]
    with pytest.raises(lineage.NodeNotFoundError, match="logged no model at 'nope'"):
        lineage.pyfunc.load_model(f"runs:/{run.info.run_id}/nope")
    with pytest.raises(lineage.InvalidInputError):
        lineage.data.from_pandas(df, targets="missing")


def test_the_dataset_submodules_import_as_mlflow_s(fluent_project: Path) -> None:
    """``mlflow.data.pandas_dataset.PandasDataset`` (and ``numpy_dataset``) are MLflow
    import paths scripts use (isinstance checks, type hints); ``lineage.data`` was a
    single module, so importing them raised ModuleNotFoundError."""
    import numpy as np
    import pandas as pd

    import lineage as mlflow
    from lineage.data.numpy_dataset import NumpyDataset
    from lineage.data.pandas_dataset import PandasDataset

    assert mlflow.data.pandas_dataset.PandasDataset is PandasDataset
    assert mlflow.data.dataset.Dataset is mlflow.data.Dataset
    df = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]})
    ds = mlflow.data.from_pandas(df, targets="y", name="train")
    assert isinstance(ds, PandasDataset) and isinstance(ds, mlflow.data.Dataset)
    assert mlflow.data.pandas_dataset.from_pandas(df, name="train").full_digest == ds.full_digest
    arr = mlflow.data.numpy_dataset.from_numpy(np.eye(2), targets=np.arange(2))
    assert isinstance(arr, NumpyDataset) and arr.target_data is not None
    with mlflow.start_run():
        mlflow.log_input(ds, context="training")
        mlflow.log_input(arr, context="validation")
    assert sorted(u.role for u in fluent.get_lineage().which_data(mlflow.last_active_run().info.run_id)) == \
        ["training", "validation", "validation"]
    with pytest.raises(AttributeError):  # MLflow names lineage lacks: one clear error, still an AttributeError
        mlflow.data.pandas_dataset.no_such_name
    # the submodules stay light: pandas and numpy load only with the caller's data
    code = "import sys, lineage.data.pandas_dataset, lineage.data.numpy_dataset; print('pandas' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_artifacts_dict_text_table_figure(fluent_project: Path, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("a")
    (tmp_path / "out" / "sub").mkdir()
    (tmp_path / "out" / "sub" / "b.txt").write_text("bb")
    fig = plt.figure()
    with lineage.start_run() as run:
        lineage.log_dict({"C": 1}, "config/params.json")
        lineage.log_text("hello", "notes.txt")
        lineage.log_table({"a": [1, 2], "b": ["x", "y"]}, "table.json")
        lineage.log_figure(fig, "plots/fig.png")
        lineage.log_artifacts(tmp_path / "out", "outputs")
    client = lineage.MlflowClient()
    top = client.list_artifacts(run.info.run_id)
    assert [(f.path, f.is_dir) for f in top] == [("config", True), ("notes.txt", False), ("outputs", True),
                                                 ("plots", True), ("table.json", False)]
    assert [(f.path, f.file_size) for f in client.list_artifacts(run.info.run_id, "outputs/sub")] == [("outputs/sub/b.txt", 2)]
    got = client.download_artifacts(run.info.run_id, "config/params.json", str(tmp_path / "dl"))
    assert json.loads(Path(got).read_text()) == {"C": 1}
    assert json.loads((tmp_path / "dl" / "table.json").read_text() if False else
                      Path(client.download_artifacts(run.info.run_id, "table.json", str(tmp_path / "dl"))).read_text()) == \
        {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}



def test_mlflow_artifacts_reads_back_what_a_run_logged(fluent_project: Path, tmp_path: Path) -> None:
    """``mlflow.artifacts``, as evaluation scripts read a training run's files back:
    by ``runs:/`` URI or run id, a file, a folder or all of them; downloads land in a
    new temporary folder, never over the user's own files in the working directory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (fluent_project / "config.json").write_text("mine")  # a user's file where a naive download would land
    with lineage.start_run() as run:
        lineage.log_dict({"C": 1, "penalty": "l2"}, "config.json")
        lineage.log_dict({"layers": [8, 4]}, "arch.yaml")
        lineage.log_text("hello", "notes/readme.txt")
        lineage.log_figure(plt.figure(figsize=(2, 1), dpi=50), "plots/fig.png")
        stored = lineage.get_artifact_uri("config.json")  # the file:// URI of the stored copy
    rid = run.info.run_id
    art = lineage.artifacts
    assert art.load_dict(f"runs:/{rid}/config.json") == {"C": 1, "penalty": "l2"}
    assert art.load_dict(f"runs:/{rid}/arch.yaml") == {"layers": [8, 4]}
    assert art.load_text(f"runs:/{rid}/notes/readme.txt") == "hello"
    assert art.load_image(f"runs:/{rid}/plots/fig.png").size == (100, 50)
    assert [(f.path, f.is_dir) for f in art.list_artifacts(run_id=rid, artifact_path="notes")] == [("notes/readme.txt", False)]
    assert [f.path for f in art.list_artifacts(f"runs:/{rid}")] == ["arch.yaml", "config.json", "notes", "plots"]
    folder = Path(art.download_artifacts(run_id=rid, artifact_path="notes"))
    assert (folder / "readme.txt").read_text() == "hello" and not folder.is_relative_to(fluent_project)
    everything = Path(art.download_artifacts(f"runs:/{rid}/", dst_path=tmp_path / "all"))
    assert sorted(p.relative_to(everything).as_posix() for p in everything.rglob("*") if p.is_file()) == \
        ["arch.yaml", "config.json", "notes/readme.txt", "plots/fig.png"]
    assert json.loads(Path(lineage.MlflowClient().download_artifacts(rid, "config.json")).read_text())["C"] == 1
    assert (fluent_project / "config.json").read_text() == "mine"
    assert stored.startswith("file://") and art.load_dict(stored) == {"C": 1, "penalty": "l2"}
    for bad, message in ((dict(artifact_uri=f"runs:/{rid}/nope.json"), "no artifact at that path"),
                         (dict(), "either artifact_uri or run_id"),
                         (dict(artifact_uri=f"runs:/{rid}/x", run_id=rid), "either artifact_uri or run_id"),
                         (dict(artifact_uri="s3://bucket/x.json"), "not s3:"),
                         (dict(artifact_uri="models:/m/1"), "pyfunc.load_model")):
        with pytest.raises(lineage.MlflowException, match=message):
            art.download_artifacts(**bad)
    with pytest.raises(lineage.InvalidInputError, match="a folder of artifacts, not one file"):
        art.load_text(f"runs:/{rid}/notes")
    with pytest.raises(lineage.InvalidInputError, match="no readable dict"):
        art.load_dict(f"runs:/{rid}/notes/readme.txt")



def test_the_client_logs_texts_dicts_figures_and_folders_to_its_own_store(fluent_project: Path, tmp_path: Path) -> None:
    """``MlflowClient(uri).log_text(run_id, …)`` and the rest, as scripts that drive
    runs through the client do: they were refused. They write to the client's
    store, which need not be the fluent API's."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    other = tmp_path / "other"
    client = lineage.MlflowClient(f"lineage:///{other}")
    run = client.create_run(client.create_experiment("client-side"))
    rid = run.info.run_id
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("a")
    client.log_text(rid, "hello", "notes/readme.txt")
    client.log_dict(rid, {"C": 1}, "config.yaml")
    client.log_figure(rid, plt.figure(figsize=(1, 1), dpi=20), "plots/fig.png")
    client.log_image(rid, np.zeros((2, 3, 3)), "plots/img.png")
    client.log_artifacts(rid, str(tmp_path / "out"), "outputs")
    client.set_terminated(rid)
    assert [f.path for f in client.list_artifacts(rid)] == ["config.yaml", "notes", "outputs", "plots"]
    assert Path(client.download_artifacts(rid, "config.yaml")).read_text() == "C: 1\n"
    assert lineage.search_runs(output_format="list") == []  # nothing went to the fluent API's store


def test_text_dict_and_figure_artifacts_record_no_temporary_path(fluent_project: Path) -> None:
    """What log_text, log_dict and log_figure keep was never a file of the user's: its
    record names where it sits in the run and what the store keeps, not a temporary
    folder deleted the moment the call returned (which `lineage ls`, `show` and the
    diagrams then printed as the artifact's location)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lg = fluent.get_lineage()
    with lineage.start_run() as run:
        text = lineage.log_text("hello", "notes/readme.txt")
        config = lineage.log_dict({"C": 1}, "config.yaml")
        figure = lineage.log_figure(plt.figure(), "plots/fig.png")
        raw = run.log_bytes(bytearray(b"\x00\x01"), "/blobs/raw")
    for node, name, fmt in ((text, "notes/readme.txt", "txt"), (config, "config.yaml", "yaml"),
                            (figure, "plots/fig.png", "png"), (raw, "blobs/raw", "file")):
        stored = lg.get(node.id)
        kept = (fluent_project / ".lineage" / stored.attrs["artifact"]).read_bytes()
        assert (stored.name, stored.attrs["format"], stored.attrs["size"]) == (name, fmt, len(kept))
        assert "path" not in stored.attrs
    assert (fluent_project / ".lineage" / lg.get(text.id).attrs["artifact"]).read_text() == "hello"
    listed = CliRunner().invoke(cli, ["ls", "--kind", "artifact"], terminal_width=200).output
    assert "notes/readme.txt" in listed and "/tmp" not in listed and str(fluent_project.parent) not in listed
    with lineage.start_run() as again:
        with pytest.raises(lineage.InvalidInputError, match="takes bytes, got str"):
            again.log_bytes("text", "a.txt")  # type: ignore[arg-type]
        with pytest.raises(lineage.InvalidInputError, match="must name a file"):
            again.log_bytes(b"x", "notes/")
    assert lg.verify().ok


# ---------------------------------------------------------------------------
# MlflowClient


def test_the_same_bytes_logged_at_two_paths_keep_both(fluent_project: Path, tmp_path: Path) -> None:
    """Artifacts and models are their content; where each run put them is its own:
    the same text at two paths, the same dict in another run under another name, and a
    deterministic model re-logged by a re-run script under a new name all read back,
    list and load at the paths given, as in MLflow."""
    from sklearn.linear_model import LogisticRegression

    client = lineage.MlflowClient()
    X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    with lineage.start_run() as a:
        lineage.log_dict({"features": ["x", "y"]}, "columns.json")
        lineage.log_text("same", "notes/a.txt")
        lineage.log_text("same", "notes/b.txt")
        lineage.sklearn.log_model(LogisticRegression().fit(X, y), name="model")
    with lineage.start_run() as b:
        lineage.log_dict({"features": ["x", "y"]}, "features.json")
        info = lineage.sklearn.log_model(LogisticRegression().fit(X, y), name="classifier")
    assert [f.path for f in client.list_artifacts(a.info.run_id, "notes")] == ["notes/a.txt", "notes/b.txt"]
    assert [f.path for f in client.list_artifacts(b.info.run_id)] == ["features.json"]
    got = client.download_artifacts(b.info.run_id, "features.json", str(tmp_path / "out"))
    assert json.loads(Path(got).read_text()) == {"features": ["x", "y"]}
    assert info.model_uri == f"runs:/{b.info.run_id}/classifier" and info.artifact_path == "classifier"
    assert lineage.sklearn.load_model(info.model_uri).predict([[3.0]]).tolist() == [1]
    assert lineage.sklearn.load_model(f"runs:/{a.info.run_id}/model").predict([[0.0]]).tolist() == [0]
    with pytest.raises(lineage.NodeNotFoundError, match="its models: model"):
        lineage.sklearn.load_model(f"runs:/{a.info.run_id}/classifier")


def test_a_run_renamed_reads_renamed_and_keeps_its_description(fluent_project: Path) -> None:
    with lineage.start_run(run_name="old", description="my desc") as run:
        lineage.set_tag("mlflow.runName", "renamed")
    got = lineage.get_run(run.info.run_id)
    assert (got.info.run_name, got.data.tags["mlflow.note.content"]) == ("renamed", "my desc")
    lineage.MlflowClient().update_run(run.info.run_id, name="again")
    assert lineage.get_run(run.info.run_id).info.run_name == "again"
    assert len(lineage.search_runs(filter_string="attributes.run_name = 'again'")) == 1
    assert len(lineage.search_runs(filter_string="attributes.run_name = 'old'")) == 0
    assert fluent.get_lineage().get(run.id).name == "old"  # (the node keeps the name it started with)


def test_log_table_appends_and_a_logged_path_has_a_uri_that_exists(fluent_project: Path, tmp_path: Path) -> None:
    from urllib.parse import urlparse

    with lineage.start_run() as run:
        lineage.log_table({"x": [1, 2]}, artifact_file="t.json")
        lineage.log_table({"x": [3], "y": ["a"]}, artifact_file="t.json")
        lineage.log_dict({"a": 1}, "config.json")
        uri = lineage.get_artifact_uri("config.json")
    assert json.loads(Path(urlparse(uri).path).read_text()) == {"a": 1}
    got = lineage.MlflowClient().download_artifacts(run.info.run_id, "t.json", str(tmp_path / "dl"))
    assert json.loads(Path(got).read_text()) == {"columns": ["x", "y"], "data": [[1, None], [2, None], [3, "a"]]}
    assert [f.path for f in lineage.MlflowClient().list_artifacts(run.info.run_id)] == ["config.json", "t.json"]


def test_a_plain_tracking_path_is_a_folder_as_mlflows_mlruns(fluent_project: Path) -> None:
    lineage.set_tracking_uri("./mlruns")
    with lineage.start_run():
        lineage.log_param("a", 1)
    assert (fluent_project / "mlruns" / "lineage.db").is_file()
    lineage.set_tracking_uri(str(fluent_project / "other.sqlite"))
    assert lineage.get_tracking_uri() == f"sqlite:///{fluent_project / 'other.sqlite'}"


def test_a_hand_written_signature_is_recorded_and_applied(fluent_project: Path) -> None:
    """MLflow's docs write signatures by hand too (``mlflow.types``' Schema, ColSpec and
    DataType): recorded with the model as an inferred one is, and applied when loaded."""
    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import Ridge

    import lineage.types.schema
    from lineage.models import ModelSignature
    from lineage.types import ColSpec, DataType, Schema

    assert lineage.types.schema.ColSpec is ColSpec  # (`from mlflow.types.schema import ColSpec`)
    X = pd.DataFrame({"a": [0.0, 1, 2, 3], "b": [1.0, 2, 3, 5]})
    model = Ridge().fit(X, X.a + X.b)
    signature = ModelSignature(inputs=Schema([ColSpec(DataType.double, "a"), ColSpec("double", "b"),
                                              ColSpec("string", "note", required=False)]),
                               outputs=Schema([ColSpec(DataType.double)]))
    with lineage.start_run() as run:
        node = lineage.sklearn.log_model(model, name="m", signature=signature)
    assert node.attrs["signature"]["inputs"] == [{"type": "double", "name": "a"}, {"type": "double", "name": "b"},
                                                 {"type": "string", "name": "note", "required": False}]
    pm = lineage.pyfunc.load_model(f"runs:/{run.info.run_id}/m")
    assert pm.predict(X[["b", "a"]]).tolist() == model.predict(X).tolist()  # the signature's order
    with pytest.raises(lineage.UnsupportedError, match="mlflow.types.TensorSpec"):
        lineage.types.TensorSpec


def test_pyfunc_applies_the_logged_signature_and_saved_models_load_back(fluent_project: Path) -> None:
    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import Ridge

    X = pd.DataFrame({"a": [0.0, 1, 2, 3], "b": [1.0, 2, 3, 5]})
    model = Ridge().fit(X, X.a + X.b)
    with lineage.start_run() as run:
        lineage.sklearn.log_model(model, name="m", signature=lineage.models.infer_signature(X, model.predict(X)))
    pm = lineage.pyfunc.load_model(f"runs:/{run.info.run_id}/m")
    expected = model.predict(X).tolist()
    assert pm.predict(X[["b", "a"]]).tolist() == expected  # put in the signature's order, as MLflow does
    assert pm.predict({"a": 0.0, "b": 1.0}).tolist() == expected[:1]
    with pytest.raises(lineage.InvalidInputError, match="missing column.*'b'"):
        pm.predict(X[["a"]])
    assert pm.metadata.run_id == run.info.run_id and pm.metadata.artifact_path == "m"
    assert pm.metadata.get_input_schema().input_names() == ["a", "b"]
    lineage.sklearn.save_model(model, "saved")
    assert lineage.sklearn.load_model("saved").predict(X).tolist() == expected
    with pytest.raises(lineage.InvalidInputError, match="already exists"):
        lineage.sklearn.save_model(model, "saved")


def test_dataset_inputs_read_as_mlflows(fluent_project: Path, caplog: pytest.LogCaptureFixture) -> None:
    import numpy as np

    ev = lineage.data.from_numpy(np.arange(6).reshape(3, 2), name="eval")
    with lineage.start_run() as run:
        lineage.log_input(ev, context="evaluation", tags={"split": "test"})
    assert "split not recorded" in caplog.text  # said, not silently dropped
    (di,) = lineage.get_run(run.info.run_id).inputs.dataset_inputs
    assert [(t.key, t.value) for t in di.tags] == [("mlflow.data.context", "evaluation")]
    assert di.tags["mlflow.data.context"] == di.tags.get("mlflow.data.context") == "evaluation"
    assert di.dataset.name == "eval" and di.dataset.source_type == "local"


def test_mlflow_client(fluent_project: Path) -> None:
    from sklearn.dummy import DummyClassifier

    client = lineage.MlflowClient()
    exp = client.create_experiment("client-exp")
    assert client.get_experiment_by_name("client-exp").experiment_id == exp
    run = client.create_run(exp, run_name="by-client")
    rid = run.info.run_id
    client.log_param(rid, "alpha", 0.5)
    client.log_metric(rid, "loss", 1.0, step=0)
    client.log_metric(rid, "loss", 0.5, step=1, timestamp=1_700_000_000_000)
    client.log_batch(rid, metrics=[], params=[("beta", 2)], tags=[("team", "x")])
    client.set_tag(rid, "stage", "dev")
    assert lineage.active_run() is None  # a client's run is not the fluent API's
    history = client.get_metric_history(rid, "loss")
    # by time, as MLflow gives it: step 1 was logged with a time in 2023
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (0, 1.0)] and history[0].timestamp == 1_700_000_000_000
    client.set_terminated(rid)
    got = client.get_run(rid)
    assert got.info.status == "FINISHED" and got.data.params == {"alpha": "0.5", "beta": "2"}
    assert got.data.tags["team"] == "x" and got.data.tags["stage"] == "dev"
    assert [r.info.run_id for r in client.search_runs([exp])] == [rid]
    # the registry: versions are NAME@N, aliases promotion labels
    with lineage.start_run() as r1:
        lineage.sklearn.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), name="model")
    with lineage.start_run() as r2:
        lineage.sklearn.log_model(DummyClassifier(strategy="uniform").fit([[0], [1]], [0, 1]), name="model")
    client.create_registered_model("risk")
    v1 = client.create_model_version("risk", f"runs:/{r1.info.run_id}/model", run_id=r1.info.run_id)
    v2 = client.create_model_version("risk", f"runs:/{r2.info.run_id}/model", run_id=r2.info.run_id)
    assert (v1.version, v2.version) == (1, 2) and v2.run_id == r2.info.run_id
    assert client.get_model_version("risk", 1).id == v1.id
    client.set_registered_model_alias("risk", "champion", 1)
    assert client.get_model_version_by_alias("risk", "champion").version == 1
    assert lineage.pyfunc.load_model("models:/risk/2").id == v2.id
    assert lineage.pyfunc.load_model("models:/risk@champion").id == v1.id
    with pytest.raises(lineage.NodeNotFoundError):
        client.get_model_version("risk", 3)
    with pytest.raises(lineage.NodeNotFoundError):
        client.get_model_version_by_alias("risk", "nobody")



def test_mlflow3_quickstart_tags_its_logged_model(fluent_project: Path) -> None:
    """MLflow 3's tracking quickstart tags the model it logged
    (``set_logged_model_tags(model_info.model_id, …)``), and registry scripts tag
    versions (``set_model_version_tag``): both were refused. A version is a model
    here, so both are the model's tags, kept in the ledger, latest value winning."""
    from sklearn.linear_model import LogisticRegression

    X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    assert lineage.last_logged_model() is None
    with lineage.start_run() as run:
        info = lineage.sklearn.log_model(LogisticRegression(C=0.5).fit(X, y), name="iris_model",
                                         registered_model_name="quickstart")
        lineage.set_logged_model_tags(info.model_id, {"Training Info": "Basic LR model", "api_token": "s3cret"})
    got = lineage.get_logged_model(info.model_id)
    assert (got.model_id, got.name, got.source_run_id) == (info.model_id, "iris_model", run.info.run_id)
    assert got.tags == {"Training Info": "Basic LR model", "api_token": "***"}  # masked, as a run's tags
    assert got.params["C"] == "0.5" and got.experiment_id == "0"
    assert lineage.last_logged_model().model_id == info.model_id
    assert lineage.pyfunc.load_model(got.model_uri).predict([[3.0]]).tolist() == [1]
    client = lineage.MlflowClient()
    client.set_model_version_tag("quickstart", 1, "validation_status", "pending")
    client.set_model_version_tag("quickstart", "1", "validation_status", "approved")
    assert client.get_model_version("quickstart", 1).tags == {
        "Training Info": "Basic LR model", "api_token": "***", "validation_status": "approved"}
    assert client.get_logged_model(info.model_id).tags["validation_status"] == "approved"
    assert client.update_model_version("quickstart", 1, description="LR on iris").description == "LR on iris"
    assert client.get_model_version("quickstart", 1).description == "LR on iris"
    lg = fluent.get_lineage()
    history = [v for v, in lg.store.conn.execute("SELECT value FROM tags WHERE run = ? AND key = 'validation_status' "
                                                 "ORDER BY pk", (info.model_id,))]
    assert history == ["pending", "approved"]  # every change kept
    assert lg.verify().ok
    with pytest.raises(lineage.InvalidInputError, match="only a model takes model tags"):
        lg.set_model_tags(run.id, {"a": 1})
    with pytest.raises(lineage.NodeNotFoundError):
        lineage.get_logged_model("models:/model:ffffffff")
    assert [r.info.run_id for r in lineage.search_runs(output_format="list")] == [run.info.run_id]


def test_the_registry_calls_real_scripts_make(fluent_project: Path) -> None:
    """`mlflow.register_model`, aliases read back, MLflow 2's stages as labels, and the
    registry's searches: the calls MLflow's registry tutorials make."""
    from sklearn.dummy import DummyClassifier

    client = lineage.MlflowClient()
    runs = []
    for strategy in ("prior", "uniform"):
        with lineage.start_run() as run:
            lineage.sklearn.log_model(DummyClassifier(strategy=strategy).fit([[0], [1]], [0, 1]), name="model")
        runs.append(run.info.run_id)
    v1 = lineage.register_model(f"runs:/{runs[0]}/model", "risk")
    v2 = lineage.register_model(f"runs:/{runs[1]}/model", "risk")
    assert (v1.version, v2.version, v2.run_id) == (1, 2, runs[1])
    assert lineage.register_model(f"runs:/{runs[1]}/model", "risk").version == 2  # registered once

    # an alias is read back where MLflow shows it
    client.set_registered_model_alias("risk", "champion", 2)
    assert client.get_model_version("risk", 2).aliases == ["champion"]
    assert client.get_model_version("risk", 1).aliases == []
    assert client.get_registered_model("risk").aliases == {"champion": 2}  # an int, as MLflow 3 gives it
    client.delete_registered_model_alias("risk", "champion")
    with pytest.raises(lineage.NodeNotFoundError):
        client.get_model_version_by_alias("risk", "champion")

    # stages: one version holds each of Staging and Production; who moved it is on record
    assert client.transition_model_version_stage("risk", 1, "Production").current_stage == "Production"
    assert client.transition_model_version_stage("risk", 2, "production").current_stage == "Production"
    assert client.get_model_version("risk", 1).current_stage == "None"
    assert lineage.pyfunc.load_model("models:/risk@production").id == v2.id
    assert [v.version for v in client.get_latest_versions("risk", stages=["Production"])] == [2]
    assert {(v.version, v.current_stage) for v in client.get_latest_versions("risk")} == {(1, "None"), (2, "Production")}
    client.transition_model_version_stage("risk", 2, "Archived")
    assert client.get_model_version("risk", 2).current_stage == "None"
    changes = fluent.get_lineage().promotions("risk")
    assert [(c["label"], c["version"], c["action"]) for c in changes] == [
        ("champion", 2, "promote"), ("champion", 2, "unpromote"), ("production", 1, "promote"),
        ("production", 1, "end"), ("production", 2, "promote"), ("production", 2, "unpromote")]
    assert all(c["author"] for c in changes)
    with pytest.raises(lineage.InvalidInputError, match="MLflow's stages are None, Staging, Production, Archived"):
        client.transition_model_version_stage("risk", 1, "Prod")

    # searches
    assert [v.version for v in client.search_model_versions("name = 'risk'")] == [2, 1]
    # (every model name is a registered model here: the name it was logged under too)
    assert [(v.name, v.version) for v in client.search_model_versions(f"run_id = '{runs[0]}'")] == [
        ("model", 1), ("risk", 1)]
    assert [m.name for m in client.search_registered_models("name LIKE 'ri%'")] == ["risk"]
    assert [m.name for m in client.search_registered_models()] == ["model", "risk"]
    assert client.search_registered_models("name = 'nobody'") == []
    with pytest.raises(lineage.InvalidInputError, match="can compare name and run_id only, not tags.team"):
        client.search_model_versions("tags.team = 'a'")

    # the bytes' location; deleting and renaming are refused, saying what to do instead
    uri = client.get_model_version_download_uri("risk", 2)
    assert uri.startswith("file://") and uri.endswith(v2.id.split(":", 1)[1])
    assert Path(uri[len("file://"):]).read_bytes() == fluent.get_lineage().artifact_file(v2.id).read_bytes()
    for call, said in ((lambda: client.delete_model_version("risk", 1), "risk version 1 is not deleted"),
                       (lambda: client.delete_registered_model("risk"), "registered model 'risk' is not deleted"),
                       (lambda: client.rename_registered_model("risk", "credit"), "under 'credit'")):
        with pytest.raises(lineage.WriteRefusedError, match=said):
            call()
    with pytest.raises(lineage.NodeNotFoundError):
        client.delete_model_version("risk", 9)  # an unknown version is said as such, not as a refusal
    assert [v.version for v in client.search_model_versions("name = 'risk'")] == [2, 1]  # nothing went


# ---------------------------------------------------------------------------
# metric step history: API and CLI


def test_metric_history_api_and_cli(fluent_project: Path) -> None:
    with lineage.start_run(run_name="steps") as run:
        for step, loss in enumerate([1.0, 0.6, 0.4, 0.3]):
            lineage.log_metric("loss", loss, step=step)
    lg = fluent.get_lineage()
    history = lg.metric_history(run, "loss")
    assert [(p.step, p.value) for p in history] == [(0, 1.0), (1, 0.6), (2, 0.4), (3, 0.3)]
    assert history.sparkline()[0] == "█" and history.sparkline()[-1] == "▁"
    with pytest.raises(lineage.NodeNotFoundError, match="it logged loss"):
        lg.metric_history(run, "acc")
    db = str(fluent_project / ".lineage" / "lineage.db")
    runner = CliRunner()
    res = runner.invoke(cli, ["--db", db, "show", run.id, "--metric", "loss", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["metric"] == "loss" and [i["value"] for i in doc["items"]] == [1.0, 0.6, 0.4, 0.3]
    res = runner.invoke(cli, ["--db", db, "show", "steps", "--metric", "loss"])
    assert res.exit_code == 0 and "█" in res.output and "last 0.3" in res.output
    res = runner.invoke(cli, ["--db", db, "show", "steps", "--metric", "nope"])
    assert res.exit_code == 1 and "it logged loss" in res.output

    # a diverged loss: MLflow logs NaN, kept as null; the table shows it, never a traceback
    with lineage.start_run(run_name="diverged"):
        for step, loss in enumerate([1.0, float("nan"), float("nan")]):
            lineage.log_metric("loss", loss, step=step)
    res = runner.invoke(cli, ["--db", db, "show", "diverged", "--metric", "loss"])
    assert res.exit_code == 0, res.output
    assert "nan" in res.output and "min 1  max 1  last nan" in res.output


# ---------------------------------------------------------------------------
# the filter: what SQL narrows, MLflow's rules decide; nothing true is ever dropped

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_VALUES = [(0.1, "a", "x"), (0.5, "b", "x"), (0.9, "a", "y"), (0.5, "c", "y"), (0.3, "b", "x"), (1.5, "a", "z")]


@pytest.fixture(scope="module")
def searchable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("search")
    fluent.set_tracking_uri(folder / "lineage.db")
    for m, p, t in _VALUES:
        with lineage.start_run(params={"p": p}, tags={"t": t}):
            lineage.log_metric("m", m)
    fluent.get_lineage().close()
    fluent._default["lg"] = None
    fluent._default["uri"] = None
    return folder


_clause = st.one_of(
    st.tuples(st.just("metrics.m"), st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
              st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9, 1.5, 2.0])),
    st.tuples(st.sampled_from(["params.p", "tags.t"]), st.sampled_from(["=", "!=", "LIKE", "ILIKE"]),
              st.sampled_from(["a", "b", "x", "y", "A", "%", "b%", "_"])),
)


def _brute(m: float, p: str, t: str, clauses: list[tuple[str, str, Any]]) -> bool:
    import re as _re

    for field, op, value in clauses:
        actual: Any = {"metrics.m": m, "params.p": p, "tags.t": t}[field]
        if op in ("LIKE", "ILIKE"):
            rx = "".join(".*" if c == "%" else "." if c == "_" else _re.escape(c) for c in value)
            if not _re.fullmatch(rx, actual, _re.IGNORECASE if op == "ILIKE" else 0):
                return False
        elif not {"=": actual == value, "!=": actual != value, "<": actual < value, "<=": actual <= value,
                  ">": actual > value, ">=": actual >= value}[op]:
            return False
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_clause, min_size=1, max_size=3))
def test_search_runs_agrees_with_mlflows_rules(searchable: Path, clauses: list[tuple[str, str, Any]]) -> None:
    text = " and ".join(f"{f} {op} {v!r}" if isinstance(v, float) else f"{f} {op} '{v}'" for f, op, v in clauses)
    lg = lineage.open(searchable / "lineage.db")
    try:
        got = fluent.search_runs_on(lg, None, text, None, None, "list", True, None, current=None,
                                    module=__import__("lineage.mlflow_filter", fromlist=["x"]))
        want = sum(_brute(m, p, t, clauses) for m, p, t in _VALUES)
        assert len(got) == want, text
    finally:
        lg.close()


def test_a_diverged_trial_does_not_scramble_the_best_run(fluent_project: Path) -> None:
    """A NaN among the values split the sort, and ``max_results=1`` picked the worst run."""
    lineage.set_experiment("order")
    for name, v in [("a", 0.5), ("c", 0.9), ("d", float("nan")), ("e", 0.1)]:
        with lineage.start_run(run_name=name):
            lineage.log_metric("acc", v)
    with lineage.start_run(run_name="none"):
        pass

    def names(order: str, n: int | None = None) -> list[str]:
        found = lineage.search_runs(experiment_names=["order"], order_by=[f"metrics.acc {order}"], output_format="list",
                                    **({"max_results": n} if n else {}))
        return [r.info.run_name for r in found]

    assert names("DESC") == ["c", "a", "e", "d", "none"] and names("DESC", 1) == ["c"]
    assert names("ASC") == ["e", "a", "c", "d", "none"]  # NaN after the numbers both ways, as MLflow


def test_mlflows_model_idioms_read_back(fluent_project: Path) -> None:
    """A data source URL, a stage URI and a logged model's signature, as MLflow's docs use them."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]})
    url = "https://example.org/data/winequality-white.csv?token=s3cr3tvalue1234567890"
    ds = lineage.data.from_pandas(df, source=url, name="wine", targets="y")
    model = LinearRegression().fit(df[["a"]], df["y"])
    with lineage.start_run() as run:
        lineage.log_input(ds, context="training")
        sig = lineage.models.infer_signature(df[["a"]], model.predict(df[["a"]]))
        info = lineage.sklearn.log_model(model, name="model", signature=sig, registered_model_name="lr")
    read = lineage.get_run(run.info.run_id).inputs.dataset_inputs[0].dataset
    assert read.source_type == "https" and read.source.startswith("https://example.org/data/winequality-white.csv")
    assert "s3cr3tvalue" not in read.source  # a credential in the URL is masked, as everywhere
    with lineage.open() as lg:
        assert lg.get("wine").attrs["source"] == read.source  # the data's origin is in the graph
    assert info.signature.inputs.input_names() == ["a"] and info.signature.inputs.input_types() == ["double"]
    outputs = lineage.get_run(run.info.run_id).outputs.model_outputs  # MLflow 3's RunOutputs
    assert [o.model_id for o in outputs] == [info.model_id]
    lineage.MlflowClient().transition_model_version_stage("lr", "1", "Production")
    assert lineage.pyfunc.load_model("models:/lr/Production").predict(pd.DataFrame({"a": [4.0]}))[0] == pytest.approx(8.0)
    with pytest.raises(lineage.NodeNotFoundError):
        lineage.pyfunc.load_model("models:/lr/Staging")


def test_a_client_on_a_store_keeps_its_experiments_and_deletions_there(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # the client's store is not the working directory's, where the fluent API writes
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "elsewhere" / "lineage.db"
    elsewhere.parent.mkdir()
    client = lineage.MlflowClient(tracking_uri=str(elsewhere))
    exp = client.create_experiment("held")
    assert client.get_experiment_by_name("held").experiment_id == exp
    assert [e.name for e in client.search_experiments(filter_string="name = 'held'")] == ["held"]
    run_id = client.create_run(exp).info.run_id
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    assert not (tmp_path / ".lineage").exists()  # nothing went to the fluent API's store


CUSTOM_MODEL = '''
import json, sys
import lineage as mlflow

class Scaler(mlflow.pyfunc.PythonModel):  # defined in __main__, as in a training script
    def load_context(self, context):
        with open(context.artifacts["cfg"]) as f:
            self.scale = json.load(f)["scale"]

    def predict(self, context, model_input, params=None):
        bump = (params or {}).get("bump", 0)
        return (model_input["a"] + model_input["b"]) * self.scale + bump

with mlflow.start_run(run_name="custom"):
    info = mlflow.pyfunc.log_model(name="scaler", python_model=Scaler(), artifacts={"cfg": sys.argv[1]},
                                   registered_model_name="scaler")
print(info.model_uri)
'''


def test_a_custom_python_model_logs_with_its_artifacts_and_loads_in_another_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mlflow.pyfunc.PythonModel` stopped real scripts ("lineage does not support").
    The object is recorded by value with its artifact files; another process (which
    has no `Scaler` class) loads it, and a changed artifact is a new version."""
    import pandas as pd

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LINEAGE_DB", str(tmp_path / ".lineage" / "lineage.db"))
    (tmp_path / "train.py").write_text(CUSTOM_MODEL)
    (tmp_path / "cfg.json").write_text('{"scale": 2}')
    logged = subprocess.run([sys.executable, "train.py", "cfg.json"], capture_output=True, text=True)
    assert logged.returncode == 0, logged.stderr
    (tmp_path / "cfg.json").write_text('{"scale": 10}')  # the recorded bytes are what load, not the file now
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    with lineage.open(tmp_path / ".lineage" / "lineage.db") as lg:
        loaded = lineage.pyfunc.load_model("models:/scaler/1")
        assert loaded.predict(frame).tolist() == [8.0, 12.0]
        assert loaded.predict(frame, params={"bump": 1}).tolist() == [9.0, 13.0]
        assert type(loaded.unwrap_python_model()).__name__ == "Scaler"
        node = lg.get("scaler@1")
        assert node.attrs["class"] == "__main__.Scaler" and node.attrs["artifacts"] == ["cfg"]
        # `lineage predict` hands it a frame, as MLflow's pyfunc does
        frame.to_csv(tmp_path / "batch.csv", index=False)
        scored = CliRunner().invoke(cli, ["predict", "scaler", "batch.csv", "-o", "out.csv"])
        assert scored.exit_code == 0, scored.output
        assert (tmp_path / "out.csv").read_text().split() == ["prediction", "8.0", "12.0"]
    again = subprocess.run([sys.executable, "train.py", "cfg.json"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    with lineage.open(tmp_path / ".lineage" / "lineage.db") as lg:
        assert [len(lg.history("scaler", kind="model"))] == [2]
        assert lineage.pyfunc.load_model("models:/scaler/2").predict(frame).tolist() == [40.0, 60.0]


def test_a_custom_models_bad_arguments_are_one_line_errors(fluent_project: Path) -> None:
    class Echo(lineage.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return model_input

    with lineage.start_run():
        for kwargs, said in (({"python_model": "model_code.py"}, "not models from code"),
                             ({"python_model": Echo(), "artifacts": {"w": "missing.bin"}}, "no such file: missing.bin"),
                             ({"python_model": Echo(), "artifacts": {"w": "s3://b/w.bin"}}, "is not a local file"),
                             ({"python_model": object()}, "must have predict"),
                             ({}, "needs python_model=")):
            with pytest.raises(lineage.InvalidInputError, match=said):
                lineage.pyfunc.log_model(name="m", **kwargs)
        assert lineage.pyfunc.log_model(name="echo", python_model=Echo()).name == "echo"


def test_a_custom_models_artifact_keys_are_names_not_paths(fluent_project: Path) -> None:
    """``artifacts={"data/weights": ..., "..": ...}``: each file is written inside the
    model's own folder when loaded, under its own name, whatever the key says."""

    class Reader(lineage.pyfunc.PythonModel):
        def load_context(self, context: Any) -> None:
            self.paths = dict(context.artifacts)
            self.texts = {k: Path(v).read_text() for k, v in context.artifacts.items()}

        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return [(self.paths if params else self.texts)[k] for k in model_input]

    (fluent_project / "w.txt").write_text("weights")
    (fluent_project / "v.txt").write_text("vocab")
    with lineage.start_run():
        info = lineage.pyfunc.log_model(name="reader", python_model=Reader(),
                                        artifacts={"data/weights": "w.txt", "..": "v.txt"})
    loaded = lineage.pyfunc.load_model(info.model_uri)
    assert loaded.predict(["data/weights", ".."]) == ["weights", "vocab"]
    paths = {k: Path(v) for k, v in zip(["data/weights", ".."], loaded.predict(["data/weights", ".."], params={"p": 1}))}
    root = paths["data/weights"].parent.parent
    assert {p.name for p in paths.values()} == {"w.txt", "v.txt"}
    assert all(p.parent.parent == root and p.is_file() for p in paths.values())


# ---------------------------------------------------------------------------
# mlflow.evaluate: the default evaluator's classic metrics


def test_evaluate_a_logged_classifier_logs_mlflows_metrics_and_records_the_held_out_data(fluent_project: Path) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, log_loss, roc_auc_score

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    y = (X["a"] + 0.5 * rng.normal(size=80) > 0).astype(int)
    clf = LogisticRegression().fit(X[:40], y[:40])
    test = X[40:].assign(label=y[40:])
    with lineage.start_run() as run:
        info = lineage.sklearn.log_model(clf, name="model")
        result = lineage.evaluate(info.model_uri, test, targets="label", model_type="classifier")
    m = result.metrics
    assert list(m)[:6] == ["score", "true_negatives", "false_positives", "false_negatives", "true_positives",
                           "example_count"]
    assert {"accuracy_score", "recall_score", "precision_score", "f1_score", "log_loss", "roc_auc",
            "precision_recall_auc"} <= set(m)
    proba = clf.predict_proba(X[40:])
    assert m["example_count"] == 40
    assert m["f1_score"] == pytest.approx(f1_score(y[40:], clf.predict(X[40:])))
    assert m["log_loss"] == pytest.approx(log_loss(y[40:], proba))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y[40:], proba[:, 1]))
    assert m["true_negatives"] + m["false_positives"] + m["false_negatives"] + m["true_positives"] == 40
    # logged to the active run, which used the data for evaluation and the model
    assert lineage.get_run(run.info.run_id).data.metrics == m
    assert result.run_id == run.info.run_id
    lg = fluent.get_lineage()
    used = {(role, n.kind) for rel, role, n in lg.run_links(lg.get(run.id)) if rel == "used"}
    assert {("evaluation", "dataset"), ("model", "model")} <= used
    assert "confusion_matrix" in result.artifacts
    # the fitted estimator itself is the same recorded model (by its bytes)
    with lineage.start_run() as again:
        lineage.evaluate(clf, test, targets="label", model_type="classifier")
    used = {(role, n.id) for rel, role, n in lg.run_links(lg.get(again.id)) if rel == "used"}
    assert ("model", info.model_id) in used
    assert "confusion_matrix.png" in lineage.MlflowClient().list_artifacts(run.info.run_id)[0].path


def test_evaluate_without_an_active_run_starts_one_and_ends_it(fluent_project: Path) -> None:
    import numpy as np

    X = np.arange(20, dtype=float).reshape(10, 2)
    y = X @ [1.0, 2.0]
    result = lineage.evaluate(lambda d: d @ [1.0, 2.0] + 1.0, X, targets=y, model_type="regressor")
    assert lineage.active_run() is None
    assert result.metrics["mean_absolute_error"] == pytest.approx(1.0)
    assert result.metrics["root_mean_squared_error"] == pytest.approx(1.0)
    assert result.metrics["sum_on_target"] == pytest.approx(float(y.sum()))
    assert "score" not in result.metrics  # a function has no score of its own
    # a function that answers with one column (a DataFrame's or an (n, 1) array) is read as that column
    column = lineage.evaluate(lambda d: (d @ [1.0, 2.0] + 1.0).reshape(-1, 1), X, targets=y, model_type="regressor")
    assert column.metrics["mean_absolute_error"] == pytest.approx(1.0)
    with pytest.raises(lineage.InvalidInputError, match=r"predictions of shape \(10, 2\) for 10 rows"):
        lineage.evaluate(lambda d: d, X, targets=y, model_type="regressor")
    got = lineage.get_run(result.run_id)
    assert got.info.status == "FINISHED" and got.data.metrics["max_error"] == 1.0
    # precomputed predictions, in a column of the data
    import pandas as pd

    frame = pd.DataFrame({"x": [0, 1, 2, 3], "y": [0, 1, 1, 0], "p": [0, 1, 0, 0]})
    m = lineage.evaluate(data=frame, targets="y", predictions="p", model_type="classifier").metrics
    assert (m["accuracy_score"], m["recall_score"], m["precision_score"]) == (0.75, 0.5, 1.0)
    assert "log_loss" not in m


def test_evaluate_mistakes_are_one_line_errors(fluent_project: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": [0, 1], "y": [0, 1]})
    cases = [
        (dict(model=lambda d: d["x"], data=frame, targets="y"), "model_type='classifier' or 'regressor'"),
        (dict(model=lambda d: d["x"], data=frame, targets="z", model_type="classifier"), "'z' is not a column"),
        (dict(data=frame, targets="y", model_type="classifier"), "needs model="),
        (dict(model=lambda d: d["x"], data=frame, model_type="classifier"), "needs targets="),
        (dict(model=42, data=frame, targets="y", model_type="classifier"), "model must be a model URI"),
        (dict(model="runs:/" + "0" * 32 + "/model", data=frame, targets="y", model_type="classifier"),
         "no run has that id"),
    ]
    for kwargs, message in cases:
        with pytest.raises(lineage.LineageError, match=message) as info:
            lineage.evaluate(**kwargs)
        assert "\n" not in str(info.value)
    with pytest.raises(lineage.UnsupportedError, match="only MLflow's 'default' evaluator"):
        lineage.evaluate(lambda d: d["x"], frame, targets="y", model_type="classifier", evaluators=["shap"])
    assert lineage.models.evaluate is lineage.evaluate


def test_the_registry_uri_is_the_tracking_stores_and_the_registry_searches_are_top_level(fluent_project: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    assert lineage.get_registry_uri() == lineage.get_tracking_uri()
    lineage.set_registry_uri(lineage.get_tracking_uri())  # the same store: nothing to change
    lineage.set_registry_uri(str(fluent_project / ".lineage" / "lineage.db"))
    with pytest.raises(lineage.UnsupportedError, match="the model registry is the tracking store here"):
        lineage.set_registry_uri("databricks-uc")
    with pytest.raises(lineage.UnsupportedError, match="registry is the tracking store"):
        lineage.set_registry_uri(f"sqlite:///{fluent_project / 'elsewhere.db'}")
    with lineage.start_run() as run:
        for _ in range(2):
            clf = LogisticRegression(C=_ + 1.0).fit([[0.0], [1.0]], [0, 1])
            lineage.sklearn.log_model(clf, name="model", registered_model_name="churn")
    assert [m.name for m in lineage.search_registered_models(filter_string="name LIKE 'ch%'")] == ["churn"]
    versions = lineage.search_model_versions(filter_string=f"run_id = '{run.info.run_id}' and name = 'churn'")
    assert [int(v.version) for v in versions] == [2, 1]
    assert len(lineage.search_model_versions(max_results=1, filter_string="name = 'churn'")) == 1


def test_load_table_reads_back_what_log_table_wrote(fluent_project: Path) -> None:
    with lineage.start_run() as first:
        lineage.log_table({"q": ["a", "b"], "score": [0.5, 1.0]}, "eval/results.json")
    with lineage.start_run() as second:
        lineage.log_table({"q": ["c"], "score": [0.0]}, "eval/results.json")
    with lineage.start_run():
        lineage.log_text("not a table", "notes.txt")
    both = lineage.load_table("eval/results.json", extra_columns=["run_id"])
    assert both.to_dict("list") == {"q": ["a", "b", "c"], "score": [0.5, 1.0, 0.0],
                                    "run_id": [first.info.run_id] * 2 + [second.info.run_id]}
    one = lineage.load_table("eval/results.json", run_ids=[second.info.run_id])
    assert one.to_dict("list") == {"q": ["c"], "score": [0.0]}
    with pytest.raises(lineage.NodeNotFoundError, match="no run of the current experiment logged a table there"):
        lineage.load_table("notes.txt")
    with pytest.raises(lineage.InvalidInputError, match="'nope' are not run columns"):
        lineage.load_table("eval/results.json", extra_columns=["nope"])
    with pytest.raises(lineage.NodeNotFoundError, match="no run has that id"):
        lineage.load_table("eval/results.json", run_ids=["0" * 32])


def test_search_logged_models_filters_and_orders_mlflow_3s_way(fluent_project: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    lineage.set_experiment("churn")
    with lineage.start_run() as run:
        infos = [lineage.sklearn.log_model(LogisticRegression(C=c).fit([[0.0], [1.0]], [0, 1]), name=n)
                 for c, n in ((1.0, "small"), (2.0, "big"))]
    lineage.set_logged_model_tags(infos[1].model_id, {"release": "v1"})
    lineage.set_experiment("other")
    with lineage.start_run():
        lineage.sklearn.log_model(LogisticRegression(C=3.0).fit([[0.0], [1.0]], [0, 1]), name="elsewhere")
    churn = lineage.get_experiment_by_name("churn").experiment_id
    listed = lineage.search_logged_models(experiment_ids=[churn], output_format="list")
    assert [m.name for m in listed] == ["big", "small"]  # newest first
    client = lineage.MlflowClient()  # the client's: MLflow's PagedList, a page at a time
    page = client.search_logged_models(experiment_ids=[churn], max_results=1)
    assert [m.name for m in page] == ["big"] and page.token
    rest = client.search_logged_models([churn], max_results=1, page_token=page.token)
    assert [m.name for m in rest] == ["small"] and not rest.token
    assert [m.name for m in client.search_logged_models([churn], filter_string="tags.release = 'v1'")] == ["big"]
    assert [m.name for m in lineage.search_logged_models(output_format="list")] == ["elsewhere"]  # current experiment
    found = lineage.search_logged_models(experiment_ids=[churn], filter_string="params.C = '2.0'",
                                         output_format="list")
    assert [m.model_id for m in found] == [infos[1].model_id]
    frame = lineage.search_logged_models(experiment_ids=[churn], filter_string="tags.release IN ('v1', 'v2')")
    assert list(frame["name"]) == ["big"] and frame["source_run_id"][0] == run.info.run_id
    ordered = lineage.search_logged_models(experiment_ids=[churn], order_by=[{"field_name": "name", "ascending": True}],
                                           output_format="list", max_results=1)
    assert [m.name for m in ordered] == ["big"]
    by = [{"field_name": "name", "ascending": False}]
    assert [m.name for m in lineage.search_logged_models(experiment_ids=[churn], order_by=by, output_format="list")] == [
        "small", "big"]
    by = [{"field_name": "tags.release", "ascending": True}]  # a model without the tag comes last, either way
    assert [m.name for m in lineage.search_logged_models(experiment_ids=[churn], order_by=by, output_format="list")] == [
        "big", "small"]
    assert len(lineage.search_logged_models(experiment_ids=[churn], filter_string="name LIKE 's%'")) == 1
    with pytest.raises(lineage.UnsupportedError, match="does not tie metrics to logged models"):
        lineage.search_logged_models(filter_string="metrics.accuracy > 0.9")
    with pytest.raises(lineage.FilterSyntaxError, match="unknown attribute 'colour'"):
        lineage.search_logged_models(filter_string="attributes.colour = 'red'")
    with pytest.raises(lineage.InvalidInputError, match="output_format must be"):
        lineage.search_logged_models(output_format="json")
    # a model tag is not deleted: its history is kept
    with pytest.raises(lineage.WriteRefusedError, match="set the model's tag to another value"):
        lineage.delete_logged_model_tag(infos[1].model_id, "release")
    with pytest.raises(lineage.InvalidInputError, match="has no tag 'nope'"):
        lineage.delete_logged_model_tag(infos[1].model_id, "nope")
    assert lineage.get_logged_model(infos[1].model_id).tags == {"release": "v1"}
    with pytest.raises(lineage.UnsupportedError, match="hyperparameters recorded with it"):
        lineage.log_model_params({"a": "1"}, model_id=infos[0].model_id)


def test_system_metrics_asked_for_are_said_once_and_the_script_goes_on(fluent_project: Path,
                                                                      caplog: pytest.LogCaptureFixture,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow samples CPU and memory into a run when asked (``log_system_metrics=True``,
    ``enable_system_metrics_logging()``, its environment variable); lineage does not,
    and says so once rather than stop the script or drop them without a word."""
    from lineage import fluent

    monkeypatch.setattr(fluent, "_said", set())
    with caplog.at_level("WARNING", logger="lineage"):
        lineage.enable_system_metrics_logging()
        with lineage.start_run(log_system_metrics=True):
            lineage.log_param("a", 1)
        monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
        with lineage.start_run():
            pass
        lineage.disable_system_metrics_logging()
    said = [r.getMessage() for r in caplog.records if "system metrics" in r.getMessage()]
    assert said == ["lineage does not record system metrics (CPU, memory, GPU use); runs are recorded without them"]
    assert lineage.get_run(lineage.last_active_run().info.run_id).info.status == "FINISHED"


def test_a_model_logged_in_two_experiments_is_listed_under_its_newest_runs(fluent_project: Path) -> None:
    """Models are content: the same bytes logged by runs of two experiments are one
    model, listed under its newest run's experiment (the search reads the models of
    the experiments' runs, not every model of the store)."""
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier().fit([[0], [1]], [0, 1])
    first = lineage.create_experiment("first")
    second = lineage.create_experiment("second")
    with lineage.start_run(experiment_id=first):
        lineage.sklearn.log_model(model, name="m")
        lineage.sklearn.log_model(DummyClassifier(strategy="uniform").fit([[0], [1]], [0, 1]), name="only_first")
    with lineage.start_run(experiment_id=second):
        info = lineage.sklearn.log_model(model, name="m")
    assert [m.name for m in lineage.search_logged_models([first], output_format="list")] == ["only_first"]
    assert [m.model_id for m in lineage.search_logged_models([second], output_format="list")] == [info.model_id]
    assert [m.name for m in lineage.search_logged_models([first, second], output_format="list",
                                                         order_by=[{"field_name": "name"}])] == ["m", "only_first"]
    assert lineage.search_logged_models(["0"], output_format="list") == []
