"""The tracking API: datasets, runs, params, metrics, models, predictions, annotations,
the MLflow-style fluent API, concurrency and crashes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import lineage
from lineage.cli import cli
from lineage.errors import InvalidInputError, WriteRefusedError

BACKENDS = ("sqlite", "postgres")  # conftest runs the store fixtures on both


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    p = tmp_path / "data" / "train.csv"
    p.parent.mkdir()
    p.write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0\n")
    return p


@pytest.fixture
def fitted():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] + X[:, 2] > 0).astype(int)
    return X, y, RandomForestClassifier(n_estimators=8, random_state=0).fit(X, y), LogisticRegression().fit(X, y)


# ---------------------------------------------------------------------------
# datasets

def test_a_file_is_content_addressed_and_described(lg: lineage.Lineage, csv_file: Path) -> None:
    node = lg.log_dataset(csv_file, name="train")
    assert node.id == f"dataset:{sha(csv_file)}"
    assert node.attrs["rows"] == 3 and node.attrs["columns"] == ["a", "b", "label"]
    assert node.attrs["size"] == csv_file.stat().st_size


def test_logging_unchanged_data_twice_adds_nothing(lg: lineage.Lineage, csv_file: Path) -> None:
    first = lg.log_dataset(csv_file, name="train")
    events = lg.store.head()[0]
    again = lg.log_dataset(csv_file, name="train")
    assert again.id == first.id and lg.store.head()[0] == events


def test_changed_data_is_a_new_version_of_the_same_name(lg: lineage.Lineage, csv_file: Path) -> None:
    v1 = lg.log_dataset(csv_file, name="train")
    csv_file.write_text("a,b,label\n1,2,0\n")
    v2 = lg.log_dataset(csv_file, name="train")
    assert v2.id != v1.id
    assert [n.id for n in lg.history("train")] == [v1.id, v2.id]
    assert lg.get("train@1").id == v1.id and lg.get("train").id == v2.id
    revisions = lg.store.conn.execute("SELECT src, dst FROM edges WHERE rel = 'was_revision_of'").fetchall()
    assert revisions == [(v2.id, v1.id)]


def test_default_name_is_the_path_inside_the_project(lg: lineage.Lineage, csv_file: Path) -> None:
    assert lg.log_dataset(csv_file).name == "data/train.csv"


def test_directories_arrays_and_frames(lg: lineage.Lineage, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "b.txt").write_text("bb")
    tree = lg.log_dataset(folder, name="images")
    assert tree.attrs["files"] == 2 and tree.attrs["format"] == "directory"
    arr = lg.log_dataset(np.arange(12.0).reshape(3, 4), name="features")
    assert arr.attrs["rows"] == 3
    assert lg.log_dataset(np.arange(12.0).reshape(3, 4)).id == arr.id
    assert lg.log_dataset(np.arange(12.0).reshape(4, 3)).id != arr.id
    pd = pytest.importorskip("pandas")
    frame = lg.log_dataset(pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}), name="frame")
    assert frame.kind == "dataset" and frame.attrs["rows"] == 2


def test_remote_data_by_uri_keeps_no_credentials(lg: lineage.Lineage) -> None:
    node = lg.log_dataset(uri="https://bob:hunter2@example.com/data/train.parquet", digest="md5:" + "9b2c" * 8, name="remote")
    assert "hunter2" not in json.dumps(node.to_dict())
    assert node.attrs["uri"] == "https://example.com/data/train.parquet"
    with pytest.raises(InvalidInputError, match="digest"):
        lg.log_dataset(uri="s3://bucket/x")


def test_missing_file_is_a_clear_error_and_writes_nothing(lg: lineage.Lineage, tmp_path: Path) -> None:
    before = lg.store.head()
    with pytest.raises(InvalidInputError, match="no such file"):
        lg.log_dataset(tmp_path / "nope.csv")
    assert lg.store.head() == before


# ---------------------------------------------------------------------------
# runs

def test_a_run_records_params_tags_metrics_inputs_and_outputs(lg: lineage.Lineage, csv_file: Path, tmp_path: Path) -> None:
    test_file = tmp_path / "data" / "test.csv"
    test_file.write_text("a,b,label\n7,8,1\n")
    with lg.start_run("fit", params={"C": 1.0, "api_token": "s3cret"}, tags={"team": "risk"}) as run:
        train = run.log_input(csv_file)
        run.log_param("penalty", "l2")
        run.log_metric("accuracy", 0.93, dataset=str(test_file))
        run.log_metric("accuracy", 0.91, dataset=str(test_file), group="age>60")
        out = tmp_path / "data" / "clean.csv"
        out.write_text("a\n1\n")
        clean = run.log_output(out)
    node = lg.get(run.id)
    assert node.attrs["status"] == "finished"
    assert node.attrs["params"] == {"C": "1.0", "api_token": "***", "penalty": "l2"}
    assert node.attrs["tags"] == {"team": "risk"}
    assert node.attrs["metrics"] == {"accuracy": 0.93}  # per-group results are kept apart
    edges = set(lg.store.conn.execute("SELECT src, dst, rel, role FROM edges").fetchall())
    test_id = f"dataset:{sha(test_file)}"
    assert (run.id, train.id, "used", "training") in edges
    assert (run.id, test_id, "used", "evaluation") in edges
    assert (clean.id, run.id, "was_generated_by", None) in edges
    kinds = {lg.get(dst).kind for src, dst, rel, role in edges if src == run.id}
    assert {"agent", "code", "environment", "dataset"} <= kinds
    groups = lg.store.conn.execute("SELECT grp, value FROM metrics WHERE run = ? ORDER BY pk", (run.id,)).fetchall()
    assert groups == [(None, 0.93), ("age>60", 0.91)]
    if lg.store.dialect == "sqlite":  # (on PostgreSQL the masked value is all there is to read)
        assert "s3cret" not in lg.db_path.read_bytes().decode("latin-1")
    assert "s3cret" not in str(lg.store.conn.execute("SELECT * FROM params").fetchall())
    assert lg.verify().ok


def test_a_run_that_raises_ends_failed_with_the_message(lg: lineage.Lineage) -> None:
    with pytest.raises(ZeroDivisionError):
        with lg.start_run("boom") as run:
            run.log_param("x", 1)
            1 / 0
    node = lg.get(run.id)
    assert node.attrs["status"] == "failed" and "ZeroDivisionError" in node.attrs["error"]
    assert node.attrs["params"] == {"x": "1"}  # what it logged is kept


def test_params_are_immutable_and_writes_after_end_are_refused(lg: lineage.Lineage) -> None:
    with lg.start_run("r", params={"C": 1}) as run:
        run.log_param("C", 1)  # same value: fine
        with pytest.raises(WriteRefusedError, match="already"):
            run.log_param("C", 2)
    with pytest.raises(WriteRefusedError, match="ended"):
        run.log_metric("x", 1.0)


def test_the_running_status_and_the_lock_while_a_run_lives(lg: lineage.Lineage) -> None:
    run = lg.start_run("live")
    assert lg.get(run.id).attrs["status"] == "running"
    assert lg.reap() == []  # its lock is held by this process
    run.end()
    assert lg.get(run.id).attrs["status"] == "finished"


def test_log_model_saves_the_artifact_and_describes_it(lg: lineage.Lineage, fitted) -> None:
    X, y, forest, logreg = fitted
    with lg.start_run("train") as run:
        rf = run.log_model(forest, "random_forest")
        lr = run.log_model(logreg, "logistic_regression")
    artifact = lg.store.dir / rf.attrs["artifact"]
    assert artifact.is_file() and rf.id == f"model:{sha(artifact)}"
    assert rf.attrs["class"] == "sklearn.ensemble._forest.RandomForestClassifier"
    assert rf.attrs["params"]["n_estimators"] == 8
    assert rf.attrs["importance_source"] == "feature_importances_"
    assert sum(rf.attrs["feature_importance"].values()) == pytest.approx(1.0, abs=1e-3)
    assert lr.attrs["importance_source"] == "coef_" and len(lr.attrs["feature_importance"]) == 4
    import pickle

    assert (pickle.loads(artifact.read_bytes()).predict(X) == forest.predict(X)).all()


def test_log_model_of_a_path_says_how_to_record_a_model_file(lg: lineage.Lineage, tmp_path: Path) -> None:
    """``run.log_model("model.pkl", "m")`` pickled the path's text as the model (class
    ``builtins.str``), for a file that need not exist."""
    with lg.start_run("train") as run:
        for path in ("model.pkl", tmp_path / "model.pkl"):
            with pytest.raises(lineage.InvalidInputError, match="not a path.*log_model_file"):
                run.log_model(path, "m")
    assert lg.nodes(kind="model") == []


def test_predictions_are_logged_in_bulk_and_findable(lg: lineage.Lineage, fitted) -> None:
    X, y, forest, _ = fitted
    with lg.start_run("train") as run:
        model = run.log_model(forest, "random_forest")
    events = lg.store.head()[0]
    ids = lg.log_predictions(model, X, forest.predict(X), request_ids=[f"r{i}" for i in range(len(X))],
                             scores=forest.predict_proba(X)[:, 1])
    assert lg.store.head()[0] == events + 1  # one ledger event for the lot
    assert len(ids) == len(X) and ids == sorted(ids) and all(i.startswith("prediction:") for i in ids)
    p = lg.get("request:r5")
    assert p.id == ids[5] and p.attrs["model"] == model.id and p.attrs["output"] == int(forest.predict(X[5:6])[0])
    assert lg.get(ids[5][:30]).id == ids[5]
    assert lg.log_predictions(forest, X[:2], forest.predict(X[:2]))  # the fitted object finds its node
    with pytest.raises(InvalidInputError, match="must match"):
        lg.log_predictions(model, X[:3], [1, 0])
    assert lg.verify().ok


def test_sparse_predictions_are_recorded_as_their_dense_rows(lg: lineage.Lineage, fitted) -> None:
    """``log_predictions`` refused a scipy.sparse input ("cannot split … into rows"):
    TF-IDF and one-hot features are sparse. A row's digest is its dense row's, and
    the kept inputs are plain JSON."""
    import scipy.sparse as sp

    from lineage.query.rows import prediction_inputs

    X, y, _, lr = fitted
    X = np.where(np.abs(X) > 0.5, X, 0.0)  # (zeros: a sparse matrix worth the name)
    lr = type(lr)().fit(sp.csr_matrix(X), y)
    with lg.start_run("train") as run:
        model = run.log_model(lr, "lr")
    dense_ids = lg.log_predictions(model, X[:4], lr.predict(X[:4]))
    for sparse in (sp.csr_matrix(X[:4]), sp.csc_matrix(X[:4]), sp.coo_array(X[:4])):
        ids = lg.log_predictions(model, sparse, lr.predict(sparse), keep_inputs=True)
        for dense_id, sparse_id in zip(dense_ids, ids):
            assert lg.get(sparse_id).attrs["input_digest"] == lg.get(dense_id).attrs["input_digest"]
        kept = prediction_inputs(lg.store, ids[1])
        assert kept is not None and kept[0] is not None
        assert json.loads(kept[0]) == {f"x{j}": float(v) for j, v in enumerate(X[1])}
    assert lg.verify().ok


def test_wide_sparse_predictions_keep_only_their_words(lg: lineage.Lineage) -> None:
    """Past SPARSE_DENSE_WIDTH columns a row is digested and kept by its non-zero
    entries: a million-word vocabulary is not densified per prediction."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    from lineage.hashing import SPARSE_DENSE_WIDTH, row_digests
    from lineage.query.rows import prediction_inputs

    width = SPARSE_DENSE_WIDTH + 1
    X = sp.random(30, width, density=0.002, format="csr", random_state=0)
    y = np.arange(30) % 2
    lr = LogisticRegression().fit(X, y)
    with lg.start_run("train") as run:
        model = run.log_model(lr, "lr")
    ids = lg.log_predictions(model, X[:3], lr.predict(X[:3]), keep_inputs=True)
    assert [lg.get(i).attrs["input_digest"] for i in ids] == row_digests(X[:3].tocsc())
    assert lg.get(ids[2]).attrs["input_digest"] == row_digests(X[2])[0]  # one row looked up alone
    kept = prediction_inputs(lg.store, ids[0])
    assert kept is not None and kept[0] is not None
    row = X[0].tocoo()
    assert json.loads(kept[0]) == {f"x{j}": float(v) for j, v in zip(row.col, row.data)}


def test_annotations_are_ledger_events_with_author(lg: lineage.Lineage, csv_file: Path) -> None:
    node = lg.log_dataset(csv_file, name="train")
    seq = lg.annotate(node, "intended_use", "Demo only")
    assert lg.store.event(seq).type == "annotation"
    notes = lg.annotations("train")
    assert notes["intended_use"]["text"] == "Demo only" and notes["intended_use"]["author"] == "tester"
    with pytest.raises(InvalidInputError, match="unknown field") as refused:
        lg.annotate(node, "favourite_colour", "blue")
    assert "did you mean" not in str(refused.value)  # nothing near: only the list
    with pytest.raises(InvalidInputError, match="unknown field 'intended_usee'; did you mean 'intended_use'\\?"):
        lg.annotate(node, "intended_usee", "Demo only")



def test_model_tags_are_ledger_events_and_go_with_the_model(lg: lineage.Lineage) -> None:
    from sklearn.linear_model import LogisticRegression

    with lg.start_run("fit") as run:
        run.set_tag("team", "risk")
        model = run.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "clf")
    seq = lg.set_model_tags(model, {"validation": "pending", "owner": "ann"})
    assert seq is not None and lg.store.event(seq).type == "model_tags"
    lg.set_model_tags("clf", {"validation": "approved"})
    assert lg.set_model_tags("clf", {}) is None
    assert lg.model_tags("clf") == {"validation": "approved", "owner": "ann"}
    assert lg.model_tags(run.id) == {"team": "risk"}  # a run's tags are its own
    shown = CliRunner().invoke(cli, ["--db", str(lg.db_path), "show", "clf", "--json"])
    assert json.loads(shown.stdout)["attrs"]["tags"] == {"validation": "approved", "owner": "ann"}
    assert lg.verify().ok
    lg.redact(model.id, reason="GDPR request")
    assert "ann" not in lg.model_tags(model.id).values() and lg.verify().ok


def test_annotate_card_from_yaml(lg: lineage.Lineage, csv_file: Path, tmp_path: Path) -> None:
    node = lg.log_dataset(csv_file, name="train")
    card = tmp_path / "card.yaml"
    card.write_text("intended_use: Screening\nlimitations:\n  - small sample\nsign_off: Jane Doe, CRO\n")
    assert len(lg.annotate_card(node, card)) == 3
    assert lg.annotations(node)["limitations"]["text"] == "- small sample"
    card.write_text("colour: blue\n")
    before = lg.store.head()
    with pytest.raises(InvalidInputError, match="unknown card key"):
        lg.annotate_card(node, card)
    assert lg.store.head() == before


# ---------------------------------------------------------------------------
# MLflow-style code, with only the import changed

MLFLOW_STYLE = """
import numpy as np
import lineage as mlflow
import lineage
from sklearn.linear_model import LogisticRegression

mlflow.set_experiment("exp1")
X = np.random.default_rng(0).normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)
with mlflow.start_run(run_name="outer") as outer:
    mlflow.log_param("C", 0.5)
    mlflow.log_params({"penalty": "l2"})
    with mlflow.start_run(run_name="inner", nested=True) as inner:
        mlflow.log_metric("loss", 0.3, step=1)
        mlflow.log_metrics({"loss": 0.2}, step=2)
        mlflow.set_tag("stage", "dev")
        clf = LogisticRegression(C=0.5).fit(X, y)
        lineage.sklearn.log_model(clf, "model")
    assert mlflow.active_run().id == outer.id
print(outer.id, inner.id)
"""


def test_mlflow_style_code_runs_with_only_the_import_changed(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(MLFLOW_STYLE)
    env = {**os.environ, "LINEAGE_DB": str(tmp_path / "store" / "lineage.db")}
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    outer_id, inner_id = out.stdout.split()
    lg = lineage.open(tmp_path / "store" / "lineage.db")
    outer, inner = lg.get(outer_id), lg.get(inner_id)
    assert outer.attrs["experiment"] == "exp1" and outer.attrs["status"] == "finished"
    assert outer.attrs["params"] == {"C": "0.5", "penalty": "l2"}
    assert inner.attrs["parent_run"] == outer.id and inner.attrs["metrics"] == {"loss": 0.2}
    assert inner.attrs["tags"] == {"stage": "dev"}
    assert [n.name for n in lg.nodes(kind="model")] == ["model"]
    assert lg.verify().ok


def test_a_second_active_run_needs_nested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAGE_DB", str(tmp_path / "s" / "lineage.db"))
    from lineage import fluent

    monkeypatch.setitem(fluent._default, "lg", None)
    run = lineage.start_run(run_name="one")
    try:
        with pytest.raises(WriteRefusedError, match="nested=True"):
            lineage.start_run(run_name="two")
    finally:
        lineage.end_run()
    assert lineage.active_run() is None
    assert lineage.get_lineage().get(run.id).attrs["status"] == "finished"
    fluent._default["lg"].close()


# ---------------------------------------------------------------------------
# processes: concurrency and crashes

WRITER = """
import sys, lineage
lg = lineage.open(sys.argv[1])
for i in range(int(sys.argv[2])):
    with lg.start_run(f"w{sys.argv[3]}-{i}", params={"i": i}) as run:
        run.log_metric("m", i)
"""


def test_four_processes_logging_runs_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "shared" / "lineage.db"
    lineage.open(db).close()
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    per = 200
    procs = [subprocess.Popen([sys.executable, str(script), str(db), str(per), str(k)], stderr=subprocess.PIPE, text=True)
             for k in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    lg = lineage.open(db)
    runs = lg.nodes(kind="run")
    assert len(runs) == 4 * per
    assert all(r.attrs["status"] == "finished" for r in runs)
    assert lg.store.conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 4 * per
    assert lg.verify().ok


CRASHER = """
import sys, time, lineage
lg = lineage.open(sys.argv[1])
run = lg.start_run("doomed", params={"lr": 0.1})
run.log_metric("loss", 0.5)
print(run.id, flush=True)
time.sleep(60)
"""


def test_a_run_killed_with_sigkill_is_later_shown_crashed(tmp_path: Path) -> None:
    db = tmp_path / "s" / "lineage.db"
    script = tmp_path / "crash.py"
    script.write_text(CRASHER)
    proc = subprocess.Popen([sys.executable, str(script), str(db)], stdout=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip()
    lg = lineage.open(db)
    assert lg.get(run_id).attrs["status"] == "running"  # alive: not reaped
    lg.close()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    lg = lineage.open(db)  # the first process to notice records it
    node = lg.get(run_id)
    assert node.attrs["status"] == "crashed"
    assert node.attrs["params"] == {"lr": "0.1"} and node.attrs["metrics"] == {"loss": 0.5}
    crash = [e for e in lg.store.events() if e.type == "run_crashed"]
    assert len(crash) == 1 and crash[0].payload["actor"].startswith("agent:")
    assert lg.verify().ok
    # every later query, SQL included, sees it
    status = lg.store.conn.execute("SELECT status FROM run_states WHERE run = ? ORDER BY pk DESC LIMIT 1", (run_id,)).fetchone()
    assert status == ("crashed",)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.floats(), max_size=2)))
def test_prediction_outputs_are_stored_as_canonical_json(value) -> None:
    from lineage.model import canonical_json
    from lineage.tracking import output_json

    assert output_json(value) == canonical_json(value)


def test_files_are_hashed_before_the_write_lock_is_taken(lg: lineage.Lineage, csv_file: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashing a big file takes seconds; other processes must not wait for it."""
    from lineage import hashing

    real = hashing.hash_file
    seen: list[bool] = []

    def spy(*args, **kwargs):
        seen.append(lg.store.in_transaction)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashing, "hash_file", spy)
    out = tmp_path / "out.csv"
    out.write_text("a\n1\n")
    with lg.start_run("fit") as run:
        run.log_input(csv_file)
        run.log_output(out)
        run.log_metric("accuracy", 0.9, dataset=csv_file)
    assert seen and not any(seen)


def test_default_names_are_relative_to_a_store_outside_dot_lineage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.csv").write_text("a\n1\n")
    with lineage.open(tmp_path / "team.db") as lg:
        assert lg.log_dataset("d/x.csv").name == "d/x.csv"


def test_the_code_of_a_wrapped_command_is_its_script_not_the_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lineage.tracking import command_entry_point

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "prep").write_text("#!/bin/sh\necho\n")
    (tmp_path / "a.csv").write_text("x\n")
    assert command_entry_point([sys.executable, "train.py"]) == "train.py"
    assert command_entry_point([sys.executable, "-u", "train.py", "--lr", "1"]) == "train.py"
    assert command_entry_point(["./prep", "a.csv"]) == "./prep"
    assert command_entry_point(["cp", "a.csv", "b.csv"]) == "cp"
    python = Path(sys.executable).name
    assert command_entry_point([sys.executable, "-m", "pkg.train"]) == f"{python} -m pkg.train"
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "train.py").write_text("print(2)\n")
    (tmp_path / "tool").mkdir()
    (tmp_path / "tool" / "__main__.py").write_text("print(3)\n")
    assert command_entry_point([sys.executable, "-m", "pkg.train", "--lr", "1"]) == "pkg/train.py"
    assert command_entry_point([sys.executable, "-u", "-m", "tool"]) == "tool/__main__.py"
    assert command_entry_point([]) is None


def test_an_inline_program_is_the_code_of_a_wrapped_command() -> None:
    from lineage.tracking import command_entry_point, command_inline_code

    python = Path(sys.executable).name
    assert command_inline_code([sys.executable, "-c", "print(1)"]) == "print(1)"
    assert command_inline_code([sys.executable, "-u", "-c", "print(1)", "x"]) == "print(1)"
    assert command_entry_point([sys.executable, "-u", "-c", "print(1)"]) == f"{python} -c"
    assert command_inline_code(["/bin/bash", "-c", "make all"]) == "make all"
    assert command_inline_code(["sh", "-c", "echo"]) == "echo"
    # a script's own -c option, a module's, a program that is no interpreter: none
    assert command_inline_code([sys.executable, "train.py", "-c", "cfg.yaml"]) is None
    assert command_inline_code([sys.executable, "-m", "tool", "-c", "x"]) is None
    assert command_inline_code(["ssh", "-c", "aes128-ctr", "host"]) is None
    assert command_inline_code(["gcc", "-c", "a.c"]) is None
    assert command_inline_code([sys.executable, "-c"]) is None


def test_a_script_started_from_elsewhere_records_its_own_repository(tmp_path: Path) -> None:
    repo = tmp_path / "project"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "train.py").write_text(
        "import sys, lineage\n"
        "lg = lineage.open(sys.argv[1])\n"
        "with lg.start_run('fit') as run:\n"
        "    print(run.id)\n"
    )
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    db = tmp_path / "s" / "lineage.db"
    out = subprocess.run([sys.executable, str(repo / "train.py"), str(db)], cwd=elsewhere,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lg = lineage.open(db)
    code = lg.trace(out.stdout.strip()).nodes("code")
    assert len(code) == 1 and code[0].attrs["commit"] == commit and code[0].attrs["dirty"] is False


def test_a_nested_run_names_its_parent_by_run_node_or_reference(lg: lineage.Lineage) -> None:
    with lg.start_run("sweep") as parent:
        with lg.start_run("trial", parent=parent) as by_run:
            pass
        with lg.start_run("trial2", parent="sweep") as by_name:
            pass
    assert lg.get(by_run.id).attrs["parent_run"] == lg.get(by_name.id).attrs["parent_run"] == parent.id
    n = lg.verify().events
    with pytest.raises(lineage.NodeNotFoundError):
        lg.start_run("orphan", parent="no-such-run")
    train = lg.log_dataset([[1, 2]], name="train")
    with pytest.raises(lineage.InvalidInputError, match="parent must be a run"):
        lg.start_run("odd", parent=train)
    assert lg.verify().events == n + 1  # (the dataset's event only: no run was started)


def test_a_frame_read_from_a_recorded_file_carries_that_files_sensitive_columns(lg: lineage.Lineage, tmp_path: Path) -> None:
    """A DataFrame read from a recorded CSV was a dataset of its own, unrelated to the
    file: ``sex``, marked sensitive on the file, reached the model unseen and the
    sensitive-column check passed. The frame is derived from the file its source names."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    csv = tmp_path / "applications.csv"
    csv.write_text("age,sex,income,label\n" + "".join(f"{20 + i},{i % 2},{1000 + 37 * i},{(i // 3) % 2}\n" for i in range(30)))
    file_node = lg.log_dataset(csv, name="applications")
    lg.annotate(file_node, "sensitive_columns", json.dumps(["sex"]), author="dpo")
    frame = pd.read_csv(csv)
    with lg.start_run("fit") as run:
        used = run.log_input(frame[["age", "sex", "income"]], source=str(csv))
        run.log_input(frame[["label"]], source="s3://bucket/labels.csv")  # not a local file: no origin
        model = run.log_model(LogisticRegression().fit(frame[["age", "sex", "income"]], frame["label"]), "scorer")
    assert used.id != file_node.id
    assert lg.store.derived_from(used.id) == [file_node.id]
    sensitive = lg.feature_lineage(model).sensitive
    assert [(s["column"], s["marked_in"], s["allowed"]) for s in sensitive] == [("sex", ["applications@1.sex"], False)]
    # impact of the file now reaches the model, and the trace of the model the file
    assert model.id in {n.id for n in lg.impact(file_node).nodes()}
    assert file_node.id in {n.id for n in lg.trace(model).nodes()}
