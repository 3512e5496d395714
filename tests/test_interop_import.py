"""OpenLineage import from hand-written events; bad input is one line and writes
nothing; without a client library the command names the extra to install."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import lineage
from lineage.cli import cli
from lineage.interop import openlineage

RUN_A = "01890a5d-ac96-774b-bcce-b302099a8057"
RUN_B = "01890a5d-ac96-774b-bcce-b302099a8058"


def _event(run: str, kind: str, t: str, job: str, inputs: list[dict[str, Any]] = (), outputs: list[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"eventType": kind, "eventTime": t, "producer": "https://github.com/apache/airflow", "schemaURL": openlineage.RUN_EVENT_SCHEMA,
            "run": {"runId": run}, "job": {"namespace": "airflow", "name": job}, "inputs": list(inputs), "outputs": list(outputs)}


def _write(path: Path, events: list[Any]) -> Path:
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events))
    return path


@pytest.fixture
def airflow_events(tmp_path: Path) -> Path:
    raw = {"namespace": "s3://lake", "name": "raw/customers"}
    clean = {"namespace": "file", "name": str(tmp_path / "clean.csv")}
    return _write(tmp_path / "events.jsonl", [
        _event(RUN_A, "START", "2026-01-01T00:00:00Z", "etl.extract", [raw]),
        _event(RUN_A, "COMPLETE", "2026-01-01T00:01:00Z", "etl.extract", [raw], [clean]),
        _event(RUN_B, "START", "2026-01-01T00:02:00Z", "etl.still_running", [clean]),
    ])


def test_openlineage_import_joins_the_ml_lineage(lg: lineage.Lineage, airflow_events: Path, tmp_path: Path) -> None:
    result = lg.import_openlineage(airflow_events)
    assert result.counts["run"] == 1  # the run with only a START waits for a later import
    run = lg.get("run:" + RUN_A.replace("-", ""))
    assert run.name == "etl.extract" and run.attrs["status"] == "finished"
    assert run.attrs["started_at"] == "2026-01-01T00:00:00.000000Z"  # (in lineage's form: UTC, microseconds)
    # the pipeline's output, hashed later by an ML run reading the same file: one node by name
    clean = tmp_path / "clean.csv"
    clean.write_text("a\n1\n")
    imported = [n for n in lg.nodes(kind="dataset") if n.attrs.get("openlineage", {}).get("name") == str(clean)]
    assert len(imported) == 1
    with lg.start_run("train") as r:
        r.log_input(imported[0])
    assert run.id in {n.id for n in lg.trace(r.id).nodes()}
    again = lg.import_openlineage(airflow_events)
    assert not again.changed  # idempotent
    assert lg.verify().ok


def test_our_own_export_imports_as_nothing_new(lg: lineage.Lineage, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("x\n1\n")
    with lg.start_run("fit") as r:
        r.log_input(str(data))
    lg.export("openlineage", None, tmp_path / "e.jsonl")
    assert not lg.import_openlineage(tmp_path / "e.jsonl").changed


@pytest.fixture
def credit(lg: lineage.Lineage, tmp_path: Path) -> dict[str, str]:
    """Two CSVs, a run in experiment `credit` that logs a Pipeline and a forest,
    predictions of the Pipeline and a promotion: what a user exports."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = [[0, 1], [1, 0], [2, 1], [3, 0]], [0, 0, 1, 1]
    (tmp_path / "train.csv").write_text("a,b,y\n0,1,0\n1,0,0\n2,1,1\n3,0,1\n")
    (tmp_path / "test.csv").write_text("a,b,y\n1,1,0\n")
    train = lg.log_dataset(str(tmp_path / "train.csv"), name="train")
    test = lg.log_dataset(str(tmp_path / "test.csv"), name="test")
    with lg.start_run("fit", params={"C": 1.0}, experiment="credit") as run:
        run.log_input(train)
        run.log_metric("accuracy", 0.9, dataset=test)
        pipe = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression())]).fit(X, y)
        model = run.log_model(pipe, "pipe_model")
        run.log_model(RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y), "forest")
    lg.log_predictions(model, X[:2], [0, 0], request_ids=["r1", "r2"])
    lg.promote(model, "production", reason="first")
    lg.export("openlineage", None, tmp_path / "all.openlineage")
    return {"model": model.id, "run": run.id, "train": train.id, "test": test.id, "events": str(tmp_path / "all.openlineage")}


def test_our_own_export_into_the_same_store_adds_nothing(lg: lineage.Lineage, credit: dict[str, str]) -> None:
    before = {n.id for n in lg.nodes()}
    result = lg.import_openlineage(credit["events"])
    assert not result.changed, result.counts
    assert {n.id for n in lg.nodes()} == before
    assert lg.get("pipe_model").id == credit["model"]  # one node by that name, not a dataset twin too


def test_our_own_export_into_a_fresh_store_keeps_models_and_experiments(credit: dict[str, str], tmp_path: Path) -> None:
    other = lineage.open(tmp_path / "other" / "lineage.db")
    try:
        result = other.import_openlineage(credit["events"])
        assert result.counts["model"] == 2 and "prediction" not in result.counts
        model = other.get("pipe_model")
        assert (model.id, model.kind) == (credit["model"], "model")
        assert model.attrs["class"] == "sklearn.pipeline.Pipeline" and model.attrs["params"]
        run = other.get(credit["run"])
        assert (run.name, run.attrs["experiment"], run.attrs["status"]) == ("fit", "credit", "finished")
        assert run.attrs["params"] == {"C": "1.0"} and run.attrs["metrics"] == {"accuracy": 0.9}
        assert other.store.generators(model.id) == [run.id]
        # what each input was for comes back too: held-out data read back as plain
        # input counted as training data
        roles = {u.node.id: u.role for u in other.which_data(model.id)}
        assert (roles[credit["train"]], roles[credit["test"]]) == ("training", "evaluation")
        assert not other.import_openlineage(credit["events"]).changed
        assert other.verify().ok
    finally:
        other.close()


def test_a_dataset_with_a_sha256_version_is_our_content_node(lg: lineage.Lineage, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("x\n1\n")
    node = lg.log_dataset(str(data))
    ds = {"namespace": "file", "name": "/elsewhere/d.csv",
          "facets": {"version": {"_producer": "https://x", "_schemaURL": openlineage.FACET_SCHEMAS["version"],
                                 "datasetVersion": node.id.split(":")[1]}}}
    path = _write(tmp_path / "e.jsonl", [_event(RUN_A, "START", "2026-01-01T00:00:00Z", "j"),
                                        _event(RUN_A, "COMPLETE", "2026-01-01T00:00:01Z", "j", outputs=[ds])])
    lg.import_openlineage(path)
    assert lg.store.generators(node.id) == ["run:" + RUN_A.replace("-", "")]


@pytest.mark.parametrize("bad, problem", [
    ('{"eventType": "START", "eventTime": "2026-01-01T00:00:00Z", "run": {"runId"', ":2: not valid JSON"),
    (json.dumps(_event("not-a-uuid", "START", "2026-01-01T00:00:00Z", "j")), ":2: event fails the OpenLineage 2-0-2 schema"),
    (json.dumps({**_event(RUN_B, "START", "2026-01-01T00:00:00Z", "j"), "job": {"namespace": "n"}}), "'name' is a required property"),
    (json.dumps(_event(RUN_B, "START", "yesterday", "j")), ":2: eventTime 'yesterday' is not a date-time"),
])
def test_bad_lines_name_file_and_line_and_write_nothing(lg: lineage.Lineage, tmp_path: Path, bad: str, problem: str) -> None:
    good = _event(RUN_A, "COMPLETE", "2026-01-01T00:00:00Z", "j")
    path = _write(tmp_path / "bad.jsonl", [good, bad])
    before = lg.store.head()
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "import", "openlineage", str(path)])
    assert res.exit_code == 1
    assert f"{path}{problem}" in res.output or (problem in res.output and str(path) in res.output), res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert lg.store.head() == before



@pytest.mark.parametrize("tool, name, text, problem", [
    ("openlineage", "empty.jsonl", "", "holds no OpenLineage events"),
    ("openlineage", "blank.jsonl", "\n\n", "holds no OpenLineage events"),
    ("prov", "empty.json", "{}", "holds no PROV records"),
])
def test_a_source_with_no_records_is_an_error_not_nothing_new(lg: lineage.Lineage, tmp_path: Path, tool: str, name: str,
                                                                text: str, problem: str) -> None:
    """An empty events file (a wrong path, a producer that wrote nothing) said
    "nothing new to import", exit 0, as if everything in it were already here."""
    path = tmp_path / name
    path.write_text(text)
    before = lg.store.head()
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "import", tool, str(path)])
    assert res.exit_code == 1 and problem in res.output and "nothing new" not in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert lg.store.head() == before


def test_event_times_with_an_offset_sort_as_the_moments_they_are(lg: lineage.Lineage, tmp_path: Path) -> None:
    """A producer writing local offsets: 03:00+02:00 is 01:00Z, before 02:00Z. The
    times were kept as written and compared as text, so runs sorted and filtered by
    the clock face, and a re-export failed the spec for a time with no zone."""
    later, earlier = "01890a5d-ac96-774b-bcce-b30209900001", "01890a5d-ac96-774b-bcce-b30209900002"
    lg.import_openlineage(_write(tmp_path / "tz.jsonl", [
        _event(later, "START", "2024-05-01T02:00:00Z", "later"), _event(later, "COMPLETE", "2024-05-01T02:10:00Z", "later"),
        _event(earlier, "START", "2024-05-01T03:00:00+02:00", "earlier"),
        _event(earlier, "COMPLETE", "2024-05-01T03:05:00.5+02:00", "earlier")]))
    runs = lg.runs(where='started_at < "2024-05-01T01:30:00Z"')
    assert [r.name for r in runs] == ["earlier"]
    assert (runs[0].attrs["started_at"], runs[0].attrs["ended_at"]) == ("2024-05-01T01:00:00.000000Z",
                                                                        "2024-05-01T01:05:00.500000Z")
    lg.export("openlineage", path=tmp_path / "out.jsonl")
    times = [json.loads(line)["eventTime"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert "2024-05-01T01:00:00.000000Z" in times and all(t.endswith("Z") for t in times)


def test_facets_of_an_older_schema_in_unexpected_shapes_import_without_a_traceback(lg: lineage.Lineage, tmp_path: Path) -> None:
    """Facets whose schema version is not shipped are checked only for their base
    shape: a parent facet whose run is a string, a schema field without a name. The
    import stopped with an AttributeError or TypeError."""
    old = "https://openlineage.io/spec/facets/0-0-1/"
    parent = {**_event(RUN_A, "COMPLETE", "2026-01-01T00:00:00Z", "child")}
    parent["run"] = {"runId": RUN_A, "facets": {"parent": {"_producer": "https://x", "_schemaURL": old + "ParentRunFacet.json",
                                                           "run": "abc", "job": {"namespace": "n", "name": "p"}}}}
    out = {"namespace": "file", "name": str(tmp_path / "x.csv"), "facets": {"schema": {
        "_producer": "https://x", "_schemaURL": old + "SchemaDatasetFacet.json", "fields": [{"type": "int"}, {"name": "a", "type": "int"}]}}}
    fields = _event(RUN_B, "COMPLETE", "2026-01-01T00:00:00Z", "writer", outputs=[out])
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "import", "openlineage", str(_write(tmp_path / "o.jsonl", [parent, fields]))])
    assert res.exit_code == 0, res.output
    assert "parent_run" not in lg.get("child").attrs
    assert lg.get("x.csv").attrs["columns"] == ["a"] and lg.verify().ok


def test_stdin(lg: lineage.Lineage, airflow_events: Path) -> None:
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "import", "openlineage", "-", "--json"],
                             input=airflow_events.read_text())
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["counts"]["run"] == 1


@pytest.mark.parametrize("argv, extra, module", [
    (["import", "mlflow", "--tracking-uri", "sqlite:///x.db"], "mlflow", "mlflow"),
    (["import", "dvc", "."], "dvc", "dvc"),
])
def test_without_the_client_the_command_names_the_extra(lg: lineage.Lineage, argv: list[str], extra: str, module: str) -> None:
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), *argv])
    assert res.exit_code == 1
    assert f"pip install 'lineage-ml[{extra}]'" in res.output


def test_import_mlflow_without_a_store_says_how_to_name_one(lg: lineage.Lineage,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = lg.store.head()
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "import", "mlflow"])
    assert res.exit_code == 2 and "lineage import mlflow sqlite:///mlflow.db" in res.output
    assert lg.store.head() == before


def test_import_summaries_count_in_words() -> None:
    from lineage.cli import _import_counts

    counts = {"run": 3, "model": 1, "code": 2, "edges": 1, "metrics": 8, "promotions": 1, "registry_changes": 2,
              "runs_deleted": 2}
    assert _import_counts(counts, "mlflow") == ("3 runs (2 deleted in MLflow), 1 model, 2 code versions, 1 edge, "
                                                "8 metrics, 1 promotion, 2 registry changes")


def test_mlflow_reference_of_an_unknown_run(lg: lineage.Lineage) -> None:
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "show", "mlflow:0123abcd"])
    assert res.exit_code == 1 and "lineage import mlflow" in res.output


def test_foreign_ids_are_stable() -> None:
    from lineage.interop.bulk import foreign_dataset_id, foreign_run_hex

    assert foreign_dataset_id("md5", "ABC") == foreign_dataset_id("MD5", "abc")
    assert foreign_dataset_id("md5", "abc") != foreign_dataset_id("mlflow", "abc")
    a = foreign_run_hex("mlflow", "r1", 1_700_000_000_000)
    assert a == foreign_run_hex("mlflow", "r1", 1_700_000_000_000) and len(a) == 32 and a[12] == "7"
    assert a < foreign_run_hex("mlflow", "r0", 1_700_000_000_001)  # sorts by start time


def test_mlflow_reference_of_a_mirrored_run(lg: lineage.Lineage) -> None:
    # a run recorded with MLflow's id as its own (the MLflow plugin's mirror) resolves too
    with lg.start_run("fit") as r:
        pass
    assert lg.get("mlflow:" + r.id.split(":")[1]).id == r.id


def test_a_failure_while_writing_leaves_nothing(lg: lineage.Lineage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lineage.store import Store

    ml = {"_producer": "https://x", "_schemaURL": openlineage.ML_FACET_SCHEMA, "lineageId": "run:" + "1" * 32,
          "params": {f"p{i}": str(i) for i in range(1500)}, "metrics": {}}
    end = _event(RUN_A, "COMPLETE", "2026-01-01T00:01:00Z", "big")
    end["run"]["facets"] = {"lineage_ml": ml}
    path = _write(tmp_path / "e.jsonl", [_event(RUN_A, "START", "2026-01-01T00:00:00Z", "big"), end])
    before = lg.store.head()

    def broken(*args: Any, **kwargs: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Store, "write_bulk", broken)  # the params (1,500 rows) go through write_bulk
    with pytest.raises(OSError):
        lg.import_openlineage(path)
    assert lg.store.head() == before
    assert not lg.store.node_exists("run:" + RUN_A.replace("-", ""))
    monkeypatch.undo()
    assert lg.import_openlineage(path).counts["params"] == 1500
    assert lg.verify().ok


@pytest.fixture
def foreign_prov(tmp_path: Path) -> Path:
    """Another producer's PROV-JSON: `ex:cleaned` and `ex:alice` are named only by
    relations, never declared (PROV-DM allows it); the activity has its times."""
    doc = {"prefix": {"ex": "http://example.org/"},
           "entity": {"ex:raw": {"prov:label": "raw"}},
           "activity": {"ex:clean": {"prov:startTime": "2024-01-01T00:00:00Z", "prov:endTime": "2024-01-01T01:00:00Z"}},
           "used": {"_:u1": {"prov:activity": "ex:clean", "prov:entity": "ex:raw"}},
           "wasGeneratedBy": {"_:g1": {"prov:entity": "ex:cleaned", "prov:activity": "ex:clean"}},
           "wasDerivedFrom": {"_:d1": {"prov:generatedEntity": "ex:cleaned", "prov:usedEntity": "ex:raw"}},
           "wasAssociatedWith": {"_:a1": {"prov:activity": "ex:clean", "prov:agent": "ex:alice"}}}
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(doc))
    return path


def test_prov_elements_only_relations_name_are_kept_with_their_relations(lg: lineage.Lineage, foreign_prov: Path) -> None:
    result = lg.import_prov(foreign_prov)
    assert result.counts["dataset"] == 2 and result.counts["agent"] >= 1
    cleaned, clean, raw = lg.get("cleaned"), lg.get("clean"), lg.get("raw")
    assert cleaned.kind == "dataset" and clean.kind == "run"
    assert lg.store.generators(cleaned.id) == [clean.id]
    edges = {(e["src"], e["dst"], e["rel"]) for e in lg.trace(cleaned.id).to_dict()["edges"]}
    assert (cleaned.id, raw.id, "was_derived_from") in edges
    assert lg.get("alice").kind == "agent"
    assert (clean.id, lg.get("alice").id, "was_associated_with") in edges
    assert not lg.import_prov(foreign_prov).changed  # the undeclared ends have stable ids too


def test_a_foreign_prov_activity_keeps_its_times(lg: lineage.Lineage, foreign_prov: Path) -> None:
    lg.import_prov(foreign_prov)
    [run] = [r for r in lg.runs() if r.name == "clean"]
    assert run.attrs["started_at"] == "2024-01-01T00:00:00.000000Z"
    assert run.attrs["ended_at"] == "2024-01-01T01:00:00.000000Z"
    assert run.attrs["status"] == "finished" and run.attrs["experiment"] == "default"
    assert run.attrs["imported_from"] == str(foreign_prov.resolve())


def test_a_failed_import_into_a_new_store_leaves_no_store(lg: lineage.Lineage, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"eventType": "START", "run": {"runId": "0189\n')  # cut off inside a string
    for db in (tmp_path / "new.db", tmp_path / "a" / "b" / "new.db"):
        res = CliRunner().invoke(cli, ["--db", str(db), "import", "openlineage", str(bad)])
        assert res.exit_code == 1
        assert res.output.strip().startswith(f"Error: {bad}:1: not valid JSON (Unterminated string starting at: column ")
        assert len(res.output.strip().splitlines()) == 1
        assert not db.exists() and not db.with_name("new.db-wal").exists()
    assert not (tmp_path / "a").exists()  # nor the folders made for it
    # a store that was there before (even one with nothing in it) stays
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "import", "openlineage", str(bad)])
    assert res.exit_code == 1 and lg.db_path.exists() and lg.verify().ok

    # an import with nothing in it (an error, said in one line) leaves no new store either
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    db = tmp_path / "c" / "new.db"
    res = CliRunner().invoke(cli, ["--db", str(db), "import", "openlineage", str(empty)])
    assert res.exit_code == 1 and "holds no OpenLineage events" in res.output, res.output
    assert not db.exists() and not (tmp_path / "c").exists()
