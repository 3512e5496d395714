"""Models and predictions from any pipeline and any live service: `lineage run` with
models and prediction files, `lineage add --model`, `lineage predict`, the
prediction logger, and the supervision of `lg.run_command` (signals, reasons)."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import child_status

import lineage
from lineage.cli import cli
from lineage.errors import InvalidInputError, WriteRefusedError

BACKENDS = ("sqlite", "postgres")  # conftest runs the store fixtures on both

CLEAN = textwrap.dedent("""\
    import csv, sys
    rows = list(csv.DictReader(open(sys.argv[1])))
    with open(sys.argv[2], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["age", "income", "label"])
        w.writeheader()
        for r in rows:
            if r["age"]:
                w.writerow({k: r[k] for k in ("age", "income", "label")})
    """)

TRAIN = textwrap.dedent("""\
    import pickle, sys
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    df = pd.read_csv(sys.argv[1])
    clf = LogisticRegression().fit(df[["age", "income"]], df["label"])
    pickle.dump(clf, open(sys.argv[2], "wb"))
    """)

PREDICT = textwrap.dedent("""\
    import csv, pickle, sys
    import pandas as pd
    clf = pickle.load(open(sys.argv[1], "rb"))
    df = pd.read_csv(sys.argv[2])
    df["y"] = clf.predict(df[["age", "income"]])
    df[["request_id", "y"]].to_csv(sys.argv[3], index=False)
    """)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def as_json(*args: str) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LINEAGE_DB", raising=False)
    monkeypatch.setenv("LINEAGE_USER", "tester")
    (tmp_path / "clean.py").write_text(CLEAN)
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "predict.py").write_text(PREDICT)
    rows = ["age,income,label,note"] + [f"{20 + i},{1000 + 37 * i},{i % 2},x" for i in range(30)] + [",5,1,missing age"]
    (tmp_path / "raw.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "new.csv").write_text("request_id,age,income\nreq-1,25,1200\nreq-2,44,1900\nreq-3,31,1100\n")
    assert invoke("init").exit_code == 0
    return tmp_path


def pipeline(predictions: bool = True) -> None:
    py = sys.executable
    assert invoke("run", "-i", "raw.csv", "-o", "clean.csv", "--", py, "clean.py", "raw.csv", "clean.csv").exit_code == 0
    assert invoke("run", "-i", "clean.csv", "--model", "model.pkl", "--", py, "train.py", "clean.csv", "model.pkl").exit_code == 0
    if predictions:
        result = invoke("run", "-i", "model.pkl", "-i", "new.csv", "--predictions", "preds.csv", "--id-column", "request_id",
                        "--", py, "predict.py", "model.pkl", "new.csv", "preds.csv")
        assert result.exit_code == 0, result.output


def test_a_cli_only_pipeline_gets_models_predictions_and_an_audit(project: Path) -> None:
    pipeline()
    model = as_json("show", "model.pkl")
    assert model["kind"] == "model"
    a = model["attrs"]
    assert a["class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert a["feature_names"] == ["age", "income"] and set(a["feature_importance"]) == {"age", "income"}
    assert a["predictions"]["count"] == 3 and a["predictions"]["first"] <= a["predictions"]["last"]
    # the model read by predict.py is the model train.py wrote (content addressing), not a dataset
    assert not [n for n in as_json("ls", "--kind", "dataset")["items"] if n["name"] == "model.pkl"]
    trace = as_json("trace", "request:req-2")
    names = {n["name"] for n in trace["nodes"]}
    assert {"model.pkl", "clean.csv", "raw.csv", "train", "clean"} <= names
    out = invoke("audit", "model.pkl", "-o", "audit.json")
    assert out.exit_code == 0, out.output
    assert json.loads((project / "audit.json").read_text())["subject"]["kind"] == "model"
    inventory = as_json("audit", "--inventory")["items"]
    assert [i["name"] for i in inventory] == ["model.pkl"]
    assert invoke("redact", "request:req-1", "--reason", "GDPR 1", "--yes").exit_code == 0
    assert invoke("verify").exit_code == 0


def test_lineage_run_keep_inputs_lets_explain_say_why_from_the_scored_file(project: Path) -> None:
    """`lineage run --predictions` recorded the digest of the predictions file's
    other columns: `explain request:ID` had no input values and no reasons. With
    --keep-inputs each row's features are found by its id in the -i CSV it was
    scored from (the model's features, in its order), and kept."""
    pipeline(predictions=False)
    py = sys.executable
    argv = ["run", "-i", "model.pkl", "-i", "new.csv", "--predictions", "preds.csv", "--id-column", "request_id"]
    (project / "settings.bin").write_bytes(b"\xff\xfe\x00binary")  # (an input that is no CSV: passed over)
    result = invoke(*argv, "-i", "settings.bin", "--keep-inputs", "--", py, "predict.py", "model.pkl", "new.csv",
                    "preds.csv")
    assert result.exit_code == 0, result.output
    why = as_json("explain", "request:req-2")
    assert why["inputs"] == {"age": 44, "income": 1900}
    assert {r["feature"] for r in why["reasons"]} == {"age", "income"}
    # the baseline is the data train.py read (`lineage run -i clean.csv`), not the kept inputs
    assert why["baseline_source"] == "mean of training data clean.csv"
    # rewritten since (a later clean.py run): its mean is not the data the model learned from
    clean = (project / "clean.csv").read_text().splitlines()
    (project / "clean.csv").write_text("\n".join(clean[:1] + clean[1:][::-1][:5]) + "\n")
    assert as_json("explain", "request:req-2")["baseline_source"] == \
        "mean of the 3 kept inputs of this model's predictions (clean.csv has changed since it was recorded)"
    # the options are checked before the command runs: nothing is recorded then
    n = as_json("verify")["events"]
    for bad in (["run", "-i", "model.pkl", "-i", "new.csv", "--predictions", "p2.csv", "--keep-inputs"],
                ["run", "-i", "model.pkl", "--predictions", "p2.csv", "--id-column", "request_id", "--keep-inputs"],
                ["run", "--keep-inputs"]):
        out = invoke(*bad, "--", py, "-c", "open('ran', 'w')")
        assert out.exit_code != 0 and "--keep-inputs" in out.output and not (project / "ran").exists(), out.output
    assert as_json("verify")["events"] == n
    # an id the inputs do not have: said in one line, the run recorded as failed with it
    (project / "other.csv").write_text("request_id,age,income\nzzz,1,2\n")
    out = invoke("run", "-i", "model.pkl", "-i", "other.csv", "--predictions", "preds.csv", "--id-column", "request_id",
                 "--keep-inputs", "--", py, "predict.py", "model.pkl", "new.csv", "preds.csv")
    assert out.exit_code == 1 and "'req-1' of preds.csv is in no input" in out.output


def test_a_pickled_model_among_outputs_is_recognised_unless_no_detect(project: Path) -> None:
    py = sys.executable
    invoke("run", "-i", "raw.csv", "-o", "clean.csv", "--", py, "clean.py", "raw.csv", "clean.csv")
    assert invoke("run", "-i", "clean.csv", "-o", "m1.pkl", "--", py, "train.py", "clean.csv", "m1.pkl").exit_code == 0
    assert as_json("show", "m1.pkl")["kind"] == "model"
    assert invoke("run", "--no-detect", "-i", "clean.csv", "-o", "m2.pkl", "--", py, "train.py", "clean.csv",
                  "m2.pkl").exit_code == 0
    assert as_json("show", "m2.pkl")["kind"] == "dataset"


def test_no_load_never_unpickles_and_still_names_the_class(project: Path) -> None:
    # a pickle whose loading would leave a mark: --no-load must not run it
    (project / "evil.py").write_text(textwrap.dedent("""\
        import pickle, sys
        from sklearn.dummy import DummyClassifier
        class Boom:
            def __reduce__(self):
                return (open, ("pwned", "w"))
        clf = DummyClassifier().fit([[0], [1]], [0, 1])
        clf.boom = Boom()
        pickle.dump(clf, open(sys.argv[1], "wb"))
        """))
    result = invoke("run", "--no-load", "--model", "m.pkl", "--", sys.executable, "evil.py", "m.pkl")
    assert result.exit_code == 0, result.output
    assert not (project / "pwned").exists()
    node = as_json("show", "m.pkl")
    assert node["kind"] == "model" and node["attrs"]["class"] == "sklearn.dummy.DummyClassifier"
    assert node["attrs"]["described"] is False


def test_add_model_records_a_model_made_elsewhere(project: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    clf = DecisionTreeClassifier(max_depth=2).fit([[0, 1], [1, 0], [2, 2]], [0, 1, 1])
    with open("tree.pkl", "wb") as f:
        pickle.dump(clf, f)
    node = as_json("add", "tree.pkl", "--model")["items"][0]
    assert node["kind"] == "model" and node["attrs"]["params"]["max_depth"] == 2
    assert set(node["attrs"]["feature_importance"]) == {"x0", "x1"}
    result = invoke("add", "raw.csv", "--no-load")
    assert result.exit_code == 2 and "--model" in result.output


def test_predict_runs_a_recorded_model_on_a_csv_and_records_every_row(project: Path) -> None:
    pipeline(predictions=False)
    # columns in another order and an extra one: features go by the model's names
    (project / "batch.csv").write_text("income,extra,request_id,age\n1200,9,b-1,25\n1900,9,b-2,44\n")
    doc = as_json("predict", "model.pkl", "batch.csv", "-o", "out.csv", "--id-column", "request_id")
    assert doc["count"] == 2 and doc["features"] == ["age", "income"]
    lines = (project / "out.csv").read_text().splitlines()
    assert lines[0] == "request_id,prediction" and lines[1].startswith("b-1,")
    pred = as_json("show", "request:b-2")
    assert pred["kind"] == "prediction"
    names = {n["name"] for n in as_json("trace", "request:b-2")["nodes"]}
    assert {"model.pkl", "clean.csv", "raw.csv"} <= names
    assert as_json("show", "model.pkl")["attrs"]["predictions"]["count"] == 2
    # without feature names: every column but the id column, in file order
    import numpy as np
    from sklearn.linear_model import LinearRegression

    with open("lin.pkl", "wb") as f:
        pickle.dump(LinearRegression().fit(np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]), [1.0, 2.0, 4.0]), f)
    invoke("add", "lin.pkl", "--model")
    (project / "plain.csv").write_text("a,b,id\n1,1,p-1\n")
    assert as_json("predict", "lin.pkl", "plain.csv", "-o", "p.csv", "--id-column", "id")["features"] == ["a", "b"]
    bad = invoke("predict", "model.pkl", "plain.csv", "-o", "x.csv")
    assert bad.exit_code == 1 and "age" in bad.output and "Traceback" not in bad.output
    # request ids are text as written (007 is not 7), and the input is never overwritten
    (project / "ids.csv").write_text("a,b,id\n1,1,007\n2,2,1e3\n")
    invoke("predict", "lin.pkl", "ids.csv", "-o", "ids_out.csv", "--id-column", "id")
    assert as_json("show", "request:007")["attrs"]["request_id"] == "007"
    assert [ln.split(",")[0] for ln in (project / "ids_out.csv").read_text().splitlines()] == ["id", "007", "1e3"]
    same = invoke("predict", "lin.pkl", "ids.csv", "-o", "ids.csv", "--id-column", "id")
    assert same.exit_code == 1 and "input file" in same.output
    assert (project / "ids.csv").read_text() == "a,b,id\n1,1,007\n2,2,1e3\n"
    # nor is recorded data (a slip of -o onto the raw file), while a re-run may
    # write over the predictions an earlier predict wrote
    raw = (project / "raw.csv").read_bytes()
    clobber = invoke("predict", "lin.pkl", "plain.csv", "-o", "raw.csv", "--id-column", "id")
    assert clobber.exit_code == 1 and "holds recorded data" in clobber.output and "Traceback" not in clobber.output
    assert (project / "raw.csv").read_bytes() == raw
    assert invoke("predict", "lin.pkl", "ids.csv", "-o", "ids_out.csv", "--id-column", "id").exit_code == 0


def test_a_scored_files_predictions_lead_to_their_run_and_input(project: Path) -> None:
    """A prediction of a batch scoring traced only to its model; impact of the scored
    file missed the predictions computed from it."""
    pipeline()  # `lineage run --predictions` scores new.csv
    (project / "batch.csv").write_text("request_id,age,income\nb-1,25,1200\nb-2,44,1900\n")
    invoke("predict", "model.pkl", "batch.csv", "-o", "out.csv", "--id-column", "request_id")
    for request, scored in (("req-1", "new.csv"), ("b-2", "batch.csv")):
        doc = as_json("trace", f"request:{request}")
        names = {n["name"] for n in doc["nodes"]}
        assert {scored, "model.pkl", "clean.csv"} <= names, names
        runs = [e["dst"] for e in doc["edges"] if e["src"] == doc["root"] and e["rel"] == "was_generated_by"]
        assert len(runs) == 1 and any(n["id"] == runs[0] and n["kind"] == "run" for n in doc["nodes"])
        # the same through the level walk
        assert scored in {n["name"] for n in as_json("trace", f"request:{request}", "--depth", "2")["nodes"]}
    impact = as_json("impact", "batch.csv")
    assert impact["counts"]["prediction"] == 2
    group = next(n for n in impact["nodes"] if n["kind"] == "group")
    assert group["count"] == 2
    assert [e["dst"][:4] for e in impact["edges"] if e["src"] == group["id"]] == ["run:"]
    listed = as_json("impact", "new.csv", "--predictions")
    assert sorted(n["attrs"]["request_id"] for n in listed["nodes"] if n["kind"] == "prediction") == ["req-1", "req-2", "req-3"]
    # a model in the walk counts its predictions once, with itself
    assert as_json("impact", "raw.csv")["counts"]["prediction"] == 5


def test_the_data_behind_a_scored_batch_is_the_batch_and_the_models_training_data(project: Path) -> None:
    """which-data of a `lineage predict` prediction called the scored file training
    data, and put the model's own training data upstream, as if never learned from."""
    pipeline(predictions=False)
    (project / "batch.csv").write_text("request_id,age,income\nb-1,25,1200\nb-2,44,1900\n")
    assert invoke("predict", "model.pkl", "batch.csv", "-o", "out.csv", "--id-column", "request_id").exit_code == 0
    for ref in ("request:b-1", "out.csv"):
        uses = {i["name"]: i["role"] for i in as_json("which-data", ref)["items"]}
        assert uses == {"raw.csv": "upstream", "clean.csv": "input", "batch.csv": "scored"}, (ref, uses)
    with pytest.raises(TypeError, match=r"lineage.open\('.lineage/lineage.db'\)"):
        lineage.Lineage(".lineage/lineage.db")  # type: ignore[arg-type]
    lg = lineage.open(".lineage/lineage.db")
    groups = {u.node.name: u.group for u in lg.which_data(lg.get("request:b-1"))}
    assert groups == {"raw.csv": "upstream", "clean.csv": "training", "batch.csv": "other"}
    # the model's own answer is unchanged: the scoring is downstream of it
    assert {i["name"]: i["role"] for i in as_json("which-data", "model.pkl")["items"]} == {
        "raw.csv": "upstream", "clean.csv": "input"}
    # a store from before the role: `lineage predict` recorded its file as `input`
    (project / "old.csv").write_text("request_id,age,income\no-1,30,1500\n")
    (project / "old_out.csv").write_text("request_id,prediction\no-1,1\n")
    with lg.start_run("predict", command=["lineage", "predict", "model.pkl", "old.csv", "-o", "old_out.csv"]) as old:
        old.log_input("old.csv", role="input")
        old.log_input(lg.get("model.pkl"), role="model")
        old.log_output("old_out.csv")
    uses = {i["name"]: i["role"] for i in as_json("which-data", "old_out.csv")["items"]}
    assert uses == {"raw.csv": "upstream", "clean.csv": "input", "old.csv": "scored"}, uses


def test_predict_reads_csv_without_pandas(project: Path) -> None:
    from sklearn.linear_model import LinearRegression

    with open("lin.pkl", "wb") as f:
        pickle.dump(LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0]), f)
    (project / "x.csv").write_text("x\n3\n")
    code = "import sys; sys.modules['pandas'] = None\nfrom lineage.cli import main\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-m", "lineage", "add", "lin.pkl", "--model"], check=True, env=env, capture_output=True)
    out = subprocess.run([sys.executable, "-c", code + "main(['predict', 'lin.pkl', 'x.csv', '-o', 'y.csv'])"],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert abs(float((project / "y.csv").read_text().splitlines()[1]) - 6.0) < 1e-9


def test_predictions_options_are_checked_before_running(project: Path) -> None:
    result = invoke("run", "--id-column", "x", "--", sys.executable, "-c", "open('ran', 'w')")
    assert result.exit_code == 2 and not (project / "ran").exists()
    result = invoke("run", "--predictions", "p.csv", "--", sys.executable, "-c", "open('ran', 'w')")
    assert result.exit_code == 1 and "--of" in result.output and not (project / "ran").exists()


def test_a_missing_declared_output_says_why_on_the_summary_line(project: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "-o", "never.csv", "--", sys.executable, "-c", "pass"])
    assert result.exit_code == 1
    assert "declared output not written: never.csv" in result.output


def test_a_declared_output_left_from_before_is_not_credited_to_the_run(project: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A step that exits 0 without writing its output (a crash it swallowed) must not
    be recorded as the maker of the file an earlier run left there."""
    from lineage import supervise

    monkeypatch.setattr(supervise, "FRESH_NS", 0)  # (the file was just made: judge it anyway)
    Path("model.txt").write_text("from an earlier run\n")
    result = CliRunner().invoke(cli, ["run", "-n", "train", "-o", "model.txt", "--", sys.executable, "-c", "pass"])
    assert result.exit_code == 1
    assert "declared output not written: model.txt (left as it was)" in result.output
    with lineage.open() as lg:
        run = lg.get("train")
        assert run.attrs["status"] == "failed"
        made = lg.store.conn.execute("SELECT COUNT(*) FROM edges WHERE rel = 'was_generated_by' AND dst = ?",
                                     (run.id,)).fetchone()[0]
        assert made == 0
    # rewritten with the same bytes, or with its old time put back (cp -p): written
    rewrite = "import os, sys; s = os.stat(sys.argv[1]); open(sys.argv[1], 'w').write(open(sys.argv[1]).read() or 'x'); " \
              "os.utime(sys.argv[1], ns=(s.st_atime_ns, s.st_mtime_ns))"
    result = CliRunner().invoke(cli, ["run", "-n", "again", "-o", "model.txt", "--", sys.executable, "-c", rewrite, "model.txt"])
    assert result.exit_code == 0, result.output
    with lineage.open() as lg:
        assert lg.store.generators(lg.get("model.txt").id) == [lg.get("again").id]


def test_runs_a_wrapped_command_starts_nest_in_the_wrapping_run(project: Path) -> None:
    """A script that logs its own run, or a nested `lineage run`, under `lineage run`:
    the inner runs had no link to the outer one."""
    script = "import lineage; lg = lineage.open(); run = lg.start_run('inner'); run.end('finished')"
    lineage_cli = [sys.executable, "-m", "lineage"]
    result = CliRunner().invoke(cli, ["run", "-n", "outer", "--", "sh", "-c",
                                      f"{sys.executable} -c \"{script}\" && "
                                      f"{' '.join(lineage_cli)} run -n nested -- true"])
    assert result.exit_code == 0, result.output
    with lineage.open() as lg:
        outer = lg.get("outer").id
        assert lg.get("inner").attrs["parent_run"] == outer
        assert lg.get("nested").attrs["parent_run"] == outer
        # a run started outside any `lineage run` nests in nothing
        alone = lg.start_run("alone")
        alone.end("finished")
        assert "parent_run" not in lg.get("alone").attrs



def test_a_model_a_wrapped_script_logs_traces_back_to_the_commands_inputs(project: Path) -> None:
    """`lineage run -i raw.csv -- python train.py`, where train.py logs its own run and
    model: the model's trace and `which-data` stopped at the script's run, without
    the data the command was declared to read."""
    script = ("import lineage; from sklearn.linear_model import LogisticRegression; lg = lineage.open(); "
              "run = lg.start_run('inner'); run.log_model(LogisticRegression().fit([[0], [1]], [0, 1]), 'clf'); "
              "run.end('finished')")
    result = CliRunner().invoke(cli, ["run", "-n", "outer", "-i", "raw.csv", "--", sys.executable, "-c", script])
    assert result.exit_code == 0, result.output
    with lineage.open() as lg:
        raw = lg.get("raw.csv").id
        assert [(u.node.id, u.role) for u in lg.which_data("clf")] == [(raw, "input")]
        assert raw in lg.trace("clf").to_networkx()
        assert lg.get("clf").id in lg.impact("raw.csv").to_networkx()
        # a run outside `lineage run` inherits nothing
        alone = lg.start_run("alone")
        alone.end("finished")
        assert [role for _, role in lg.store.used_by(lg.get("alone").id)] == ["code", "environment"]


def test_run_command_is_the_python_equivalent(project: Path) -> None:
    with lineage.open() as lg:
        result = lg.run_command([sys.executable, "clean.py", "raw.csv", "clean.csv"], inputs=["raw.csv"],
                                outputs=["clean.csv"], params={"dropna": True}, name="clean", tags={"team": "risk"})
        assert result.ok and result.exit_code == 0 and result.run.attrs["status"] == "finished"
        assert result.run.attrs["params"] == {"dropna": "True"}
        assert [n.name for n in result.outputs] == ["clean.csv"]
        failed = lg.run_command([sys.executable, "-c", "import sys; sys.exit(4)"])
        assert failed.exit_code == 4 and failed.status == "failed" and failed.error == "exit code 4"
        with pytest.raises(InvalidInputError, match="nope.csv"):
            lg.run_command([sys.executable, "-c", "pass"], inputs=["nope.csv"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_reach_the_commands_process_group_and_fail_the_run(project: Path, sig: signal.Signals) -> None:
    # a shell whose child writes its pid: the grandchild must die with the group
    (project / "job.sh").write_text("#!/bin/sh\nsleep 60 &\necho $! > child.pid\nwait\n")
    os.chmod(project / "job.sh", 0o755)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    (project / "job.py").write_text("import os, time\nopen('child.pid', 'w').write(str(os.getpid()))\ntime.sleep(60)\n")
    # sh starts `cmd &` ignoring SIGINT (POSIX) and waits on: Ctrl-C is tried on Python directly
    argv = ["./job.sh"] if sig != signal.SIGINT else [sys.executable, "job.py"]
    proc = subprocess.Popen([sys.executable, "-m", "lineage", "run", "--", *argv], env=env,
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not (project / "child.pid").exists() or not (project / "child.pid").read_text().strip():
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    child = int((project / "child.pid").read_text())
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 128 + sig  # (Python ends an uncaught KeyboardInterrupt by SIGINT itself)
    assert f"stopped by {sig.name}" in err
    assert _gone(child)
    run = as_json("ls", "--kind", "run", "--limit", "1")["items"][0]
    assert run["attrs"]["status"] == "failed" and sig.name in run["attrs"]["error"]


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaps in a container counts as gone)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_digests_must_be_digests(project: Path) -> None:
    bad = invoke("add", "--uri", "s3://bucket/x.parquet", "--digest", "9b2c...")
    assert bad.exit_code == 1 and "not a digest" in bad.output
    for good in ("md5:" + "a" * 32, "sha256:" + "b" * 64, "c" * 64, "crc32c:AAAAAA=="):
        assert invoke("add", "--uri", f"s3://bucket/{good[:5]}", "--digest", good).exit_code == 0, good
    with lineage.open() as lg:
        node = lg.log_dataset(uri="s3://b/y", digest="SHA256:" + "D" * 64)
        assert node.id == "dataset:" + "d" * 64


# ---------------------------------------------------------------------------
# the prediction logger


@pytest.fixture
def served(tmp_path: Path) -> Any:
    from sklearn.dummy import DummyClassifier

    lg = lineage.open(tmp_path / ".lineage" / "lineage.db")
    with lg.start_run("fit") as run:
        model = run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "clf")
    yield lg, model
    lg.close()


def test_the_logger_writes_everything_in_bulk_from_a_thread(served: Any) -> None:
    lg, model = served
    logger = lg.prediction_logger(model, max_batch=50, max_delay=0.05)
    before = lg.store.head()[0]
    for i in range(500):
        logger.log([[i]], [i % 2], request_ids=[f"r{i}"])
    assert logger.flush() == 500
    assert lg.get("request:r499").attrs["output"] == 1
    events = lg.store.head()[0] - before
    assert 1 <= events <= 500 // 10  # batched, not one event per call
    logger.close()
    with pytest.raises(WriteRefusedError):
        logger.log([[1]], [1])
    assert lg.describe(model).attrs["predictions"]["count"] == 500
    assert lg.verify().ok


def test_the_logger_rejects_mismatched_lengths_at_once(served: Any) -> None:
    lg, model = served
    with lg.prediction_logger(model) as logger, pytest.raises(InvalidInputError, match="match"):
        logger.log([[1], [2]], [1])
    with lg.prediction_logger(model) as logger, pytest.raises(InvalidInputError, match="1 scores for 2"):
        logger.log([[1], [2]], [1, 0], scores=[0.5])


def test_the_logger_takes_sparse_rows_as_their_dense_ones(served: Any) -> None:
    """A service scoring TF-IDF features logs a scipy.sparse matrix: ``log`` refused it
    (a sparse matrix has no len()), though its rows are rows like an array's."""
    import numpy as np
    import scipy.sparse as sp

    lg, model = served
    dense = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0]])
    with lg.prediction_logger(model, max_delay=0.01) as logger:
        logger.log(sp.csr_matrix(dense), [1, 0], request_ids=["sp-0", "sp-1"])
        logger.log(dense, [1, 0], request_ids=["d-0", "d-1"])
        assert logger.flush() == 4 and logger.rejected == 0
    for i in range(2):
        assert lg.get(f"request:sp-{i}").attrs["input_digest"] == lg.get(f"request:d-{i}").attrs["input_digest"]


def test_the_logger_keeps_the_rows_as_they_were_when_logged(served: Any) -> None:
    """log() returns before the rows are written: a service reusing its input buffer
    must not change what it logged (every prediction got the last row's digest)."""
    import numpy as np

    lg, model = served
    buf = np.zeros((1, 1))
    with lg.prediction_logger(model, max_delay=5) as logger:
        for i in range(3):
            buf[0, 0] = i
            logger.log(buf, [0], request_ids=[f"buf{i}"])
    digests = [lg.get(f"request:buf{i}").attrs["input_digest"] for i in range(3)]
    ids = lg.log_predictions(model, np.array([[0.0], [1.0], [2.0]]), [0, 0, 0])
    assert digests == [lg.get(i).attrs["input_digest"] for i in ids]


def test_a_request_id_logged_twice_is_ambiguous_not_the_newest(served: Any) -> None:
    """A retried request is logged twice with one request id. `request:ID` must not
    quietly pick the newest answer: an auditor asking why it was answered so would
    read one of two decisions as the only one."""
    lg, model = served
    first = lg.log_predictions(model, [[0]], [0], request_ids=["retried"])[0]
    second = lg.log_predictions(model, [[1]], [1], request_ids=["retried"])[0]
    with pytest.raises(lineage.AmbiguousIdError) as err:
        lg.get("request:retried")
    assert err.value.candidates == [first, second]
    assert "name the prediction by its id" in str(err.value)
    assert lg.get(first).attrs["output"] == 0  # each stays reachable by its own id
    result = CliRunner().invoke(cli, ["--db", str(lg.store.path), "show", "request:retried"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert first in result.output


def test_a_label_moved_while_the_logger_waits_is_not_credited_to_earlier_predictions(served: Any) -> None:
    """The logger writes up to ``max_delay`` after a prediction is made: a promotion
    in that window is recorded first, yet the prediction was made before it, with no
    label. The decision record and the inventory must say so."""
    lg, model = served
    with lg.prediction_logger(model, max_delay=60) as logger:
        logger.log([[0]], [0], request_ids=["before-promotion"])
        time.sleep(0.002)  # (the times are microseconds apart at least)
        lg.promote(model, "production")
        logger.log([[1]], [1], request_ids=["after-promotion"])
    before, after = lg.get("request:before-promotion"), lg.get("request:after-promotion")
    events = {e for (e,) in lg.store.conn.execute("SELECT DISTINCT event FROM predictions")}
    assert len(events) == 1  # one delayed write holds both, after the promotion's event
    assert lg.labels_at(before) == [] and lg.labels_at(after) == ["production"]
    item = lg.inventory().to_dict()["items"][0]
    assert [(s["predictions"], s["unlabelled_predictions"]) for s in item["serving"]] == [(2, 1)]
    assert item["flags"][0]["flag"] == "serves predictions without a label"
    # and a prediction logged at once, after the promotion, holds it
    lg.log_predictions(model, [[2]], [0], request_ids=["direct"])
    assert lg.labels_at("request:direct") == ["production"]


def test_a_full_queue_blocks_by_default_and_loses_nothing(served: Any) -> None:
    lg, model = served
    logger = lg.prediction_logger(model, max_batch=10, max_delay=10, max_queue=20)

    def produce() -> None:
        for i in range(300):
            logger.log([[i]], [0], request_ids=[f"b{i}"])

    threads = [threading.Thread(target=produce) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    logger.close()
    assert logger.dropped == 0 and logger.written == 900
    assert lg.describe(model).attrs["predictions"]["count"] == 900


def test_drops_are_counted_and_recorded_never_silent(served: Any) -> None:
    lg, model = served
    logger = lg.prediction_logger(model, max_batch=10, max_delay=60, max_queue=10, on_full="drop")
    with lg.batch():  # hold the write lock: the writer cannot empty the queue meanwhile
        for i in range(50):
            logger.log([[i]], [0])
        time.sleep(0.1)
    logger.close()
    assert logger.dropped > 0 and logger.written + logger.dropped == 50
    payloads = [e.payload for e in lg.store.events() if e.type == "predictions_dropped"]
    assert sum(p["dropped"] for p in payloads) == logger.dropped
    assert lg.verify().ok


def _logging_service(db: Path, then: str = "") -> str:
    """A script that logs 1,000 predictions through a logger that would not write
    them for an hour, then runs ``then``."""
    return textwrap.dedent(f"""\
        import sys, time
        import lineage
        from sklearn.dummy import DummyClassifier
        lg = lineage.open({str(db)!r})
        with lg.start_run("fit") as run:
            model = run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "clf")
        logger = lg.prediction_logger(model, max_batch=100000, max_delay=3600)
        for i in range(1000):
            logger.log([[i]], [1], request_ids=[str(i)])
        """) + textwrap.dedent(then)


def _all_predictions_written(db: Path) -> None:
    with lineage.open(db, create=False) as lg:
        assert lg.describe("clf").attrs["predictions"]["count"] == 1000
        assert lg.verify().ok


def test_the_logger_flushes_at_exit(tmp_path: Path) -> None:
    db = tmp_path / "s" / "lineage.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", _logging_service(db)], check=True, env=env, timeout=60)
    _all_predictions_written(db)


def test_sigterm_writes_the_queue_and_the_process_still_ends_by_sigterm(tmp_path: Path) -> None:
    """A service stopped by its supervisor gets SIGTERM, whose default ends Python
    without ``atexit``: the queued predictions were lost."""
    db = tmp_path / "s" / "lineage.db"
    code = _logging_service(db, then="""\
        print("serving", flush=True)
        time.sleep(60)
        """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "serving\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    _all_predictions_written(db)


# ---------------------------------------------------------------------------
# what a new user hit


def test_a_services_own_sigterm_handler_is_kept(served: Any) -> None:
    lg, model = served
    previous = signal.getsignal(signal.SIGTERM)

    def mine(signum: int, frame: Any) -> None:
        """the service's own"""

    signal.signal(signal.SIGTERM, mine)
    try:
        with lg.prediction_logger(model):
            assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_partial_rerun_leaves_what_was_not_rebuilt_superseded(project: Path) -> None:
    pipeline()
    rows = (project / "raw.csv").read_text().splitlines()
    (project / "raw.csv").write_text("\n".join(rows + ["99,9999,1,late"]) + "\n")
    assert invoke("add", "raw.csv").exit_code == 0
    py = sys.executable
    assert invoke("run", "-i", "raw.csv", "-o", "clean.csv", "--", py, "clean.py", "raw.csv", "clean.csv").exit_code == 0
    assert invoke("run", "-i", "clean.csv", "--model", "model.pkl", "--", py, "train.py", "clean.csv", "model.pkl").exit_code == 0
    doc = as_json("status")
    assert doc["changed"] == []
    stale = {(n["name"], n["reason"]) for n in doc["affected"] if n["kind"] != "group"}
    assert ("preds.csv", "superseded") in stale
    assert not {name for name, _ in stale} & {"clean.csv", "model.pkl", "raw.csv"}  # rebuilt: current
    assert invoke("status", "--check").exit_code == 1
    result = invoke("run", "-i", "model.pkl", "-i", "new.csv", "--predictions", "preds.csv", "--id-column", "request_id",
                    "--", py, "predict.py", "model.pkl", "new.csv", "preds.csv")
    assert result.exit_code == 0
    assert as_json("status")["affected"] == [], as_json("status")["affected"]



def test_what_the_production_model_scores_is_current_beside_a_newer_candidate(project: Path) -> None:
    """`status --check` failed CI for a batch scored by model@production because a
    newer, unpromoted candidate existed: the version in use on purpose is current."""
    pipeline(predictions=False)
    assert invoke("promote", "model.pkl", "production").exit_code == 0
    rows = (project / "raw.csv").read_text().splitlines()
    (project / "raw.csv").write_text("\n".join(rows + ["99,9999,1,late"]) + "\n")
    py = sys.executable
    assert invoke("run", "-i", "raw.csv", "-o", "clean.csv", "--", py, "clean.py", "raw.csv", "clean.csv").exit_code == 0
    assert invoke("run", "-i", "clean.csv", "--model", "model.pkl", "--", py, "train.py", "clean.csv", "model.pkl").exit_code == 0
    scored = invoke("predict", "model.pkl@production", "new.csv", "-o", "scored.csv", "--id-column", "request_id")
    assert scored.exit_code == 0, scored.output
    assert not [n for n in as_json("status")["affected"] if n["name"] == "scored.csv"]
    assert invoke("status", "--check").exit_code == 0
    # without its label the older version is history, and what it made is superseded
    assert invoke("unpromote", "model.pkl", "production").exit_code == 0
    stale = {(n["name"], n["reason"]) for n in as_json("status")["affected"] if n["kind"] != "group"}
    assert ("scored.csv", "superseded") in stale
    assert invoke("status", "--check").exit_code == 1


def test_a_copied_project_checks_its_own_files(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    import shutil

    invoke("add", "raw.csv")
    assert invoke("status", "--check").exit_code == 0
    copy = tmp_path_factory.mktemp("elsewhere") / "proj"
    shutil.copytree(project, copy)
    os.chdir(copy)
    assert invoke("status", "--check").exit_code == 0
    (copy / "raw.csv").write_text("age\n1\n")  # the copy's file, not the original's
    doc = as_json("status")
    assert [(n["name"], n["reason"]) for n in doc["changed"]] == [("raw.csv", "modified")]
    os.chdir(project)
    assert invoke("status", "--check").exit_code == 0  # the original is untouched


def test_a_copied_projects_audit_checks_its_own_files(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    import shutil

    pipeline(predictions=False)
    copy = tmp_path_factory.mktemp("elsewhere") / "proj"
    shutil.copytree(project, copy)
    os.chdir(copy)
    (copy / "clean.csv").write_text("age,income,y\n1,2,0\n")  # the copy's file, not the original's
    with lineage.open() as lg:
        files = {f["name"]: f for f in lg.audit("model.pkl").to_dict()["integrity"]["files"]}
    assert files["clean.csv"]["status"] == "changed" and files["raw.csv"]["status"] == "intact"
    os.chdir(project)
    with lineage.open() as lg:
        files = {f["name"]: f for f in lg.audit("model.pkl").to_dict()["integrity"]["files"]}
    assert files["clean.csv"]["status"] == "intact"  # the original is untouched


def test_an_old_store_with_cwd_relative_paths_still_checks_its_files(project: Path) -> None:
    (project / "sub").mkdir()
    (project / "sub" / "d.csv").write_text("a\n1\n")
    with lineage.open() as lg:
        node = lg.log_dataset(project / "sub" / "d.csv")
        from lineage.tracking import local_file

        # as older versions recorded it: the path as typed from a subfolder
        assert local_file(lg.store, {**node.attrs, "path": "d.csv"}) == str(project / "sub" / "d.csv")
        assert node.attrs["path"] == "sub/d.csv" and node.attrs["abspath"] == str(project / "sub" / "d.csv")


def test_the_store_does_not_dirty_the_tree_it_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LINEAGE_DB", raising=False)
    env = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    subprocess.run(["git", "init", "-q"], check=True)
    (tmp_path / "step.py").write_text("open('out.csv', 'w').write('a\\n1\\n')\n")
    subprocess.run(["git", "add", "step.py"], check=True)
    subprocess.run(["git", "commit", "-qm", "step"], check=True)
    assert invoke("init").exit_code == 0
    assert (tmp_path / ".lineage" / ".gitignore").read_text().strip().endswith("*")
    for _ in range(2):
        assert invoke("run", "-o", "out.csv", "--", sys.executable, "step.py").exit_code == 0
    codes = as_json("ls", "--kind", "code")["items"]
    assert len(codes) == 1 and codes[0]["attrs"]["dirty"] is False
    assert subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True).stdout.strip() == "?? out.csv"


def test_a_commits_code_node_is_named_for_its_repository_not_its_first_script(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of one commit share its code node, whose name is the first run's script:
    the trace of `predict.py`'s output said its code was `train.py`."""
    import shutil

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "churn-model"
    repo.mkdir()
    monkeypatch.chdir(repo)
    monkeypatch.delenv("LINEAGE_DB", raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    for k in ("GIT_AUTHOR", "GIT_COMMITTER"):
        monkeypatch.setenv(f"{k}_NAME", "a")
        monkeypatch.setenv(f"{k}_EMAIL", "a@b")
    (repo / "train.py").write_text("open('model.bin', 'w').write('m')\n")
    (repo / "predict.py").write_text("open('preds.csv', 'w').write('p\\n1\\n')\n")
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(["git", "add", "train.py", "predict.py"], check=True)
    subprocess.run(["git", "commit", "-qm", "scripts"], check=True)
    assert invoke("run", "-o", "model.bin", "--", sys.executable, "train.py").exit_code == 0
    assert invoke("run", "-i", "model.bin", "-o", "preds.csv", "--", sys.executable, "predict.py").exit_code == 0
    code_line = next(ln for ln in invoke("trace", "preds.csv", "--depth", "2").output.splitlines() if "used (code)" in ln)
    assert "churn-model" in code_line and "train.py" not in code_line, code_line
    # each run keeps its own entry point, and the node its data
    runs = as_json("runs")["items"]
    assert sorted(r["attrs"]["entry_point"] for r in runs) == ["predict.py", "train.py"]


def test_print_of_a_trace_is_the_readable_tree(project: Path) -> None:
    invoke("add", "raw.csv")
    with lineage.open() as lg:
        text = str(lg.trace("raw.csv"))
    assert text.startswith("dataset") or "raw.csv" in text.splitlines()[0]
    assert "<Subgraph" not in text and "raw.csv" in text


def test_tables_piped_are_full_width(project: Path) -> None:
    name = "a-very-long-folder-name-for-data/" + "predictions-of-the-quarterly-risk-model-v2.csv"
    (project / name).parent.mkdir()
    (project / name).write_text("a\n1\n")
    invoke("add", name)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("COLUMNS", None)
    out = subprocess.run([sys.executable, "-m", "lineage", "ls"], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and name in out.stdout  # whole, on one line: `lineage ls | grep` finds it


def test_dag_refuses_a_missing_folder_in_one_line(project: Path) -> None:
    invoke("add", "raw.csv")
    result = CliRunner().invoke(cli, ["dag", "raw.csv", "-o", "no/such/dir/a.html"])
    assert result.exit_code == 1 and "no folder" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (project / "no").exists()


# ---------------------------------------------------------------------------
# the example service


def test_the_example_service_records_every_answer(tmp_path: Path) -> None:
    import http.client

    root = Path(__file__).resolve().parents[1]
    db = tmp_path / ".lineage" / "lineage.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "LINEAGE_USER": "service"}
    n = 60
    proc = subprocess.Popen([sys.executable, str(root / "examples" / "serve.py"), "--db", str(db), "--port", "0",
                             "--max-requests", str(n)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        answers = []
        for i in range(n):
            body = json.dumps({"features": {"age": 20 + i, "income": 30_000 + 1000 * i}})
            conn.request("POST", "/predict", body, {"X-Request-ID": f"svc-{i}", "Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 200
            answers.append(json.loads(resp.read()))
        conn.close()
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and f"served {n} requests, recorded {n} predictions" in out
    with lineage.open(db, create=False) as lg:
        assert lg.describe("service_model").attrs["predictions"]["count"] == n
        assert lg.get("request:svc-7").attrs["output"] == answers[7]["prediction"]
        assert lg.verify().ok
    result = CliRunner().invoke(cli, ["--db", str(db), "trace", "request:svc-42", "--json"])
    assert result.exit_code == 0, result.output
    names = {node["name"] for node in json.loads(result.output)["nodes"]}
    assert {"service_model", "applications", "train_service_model"} <= names
    # and why: the request's inputs and the service's threshold were kept with it
    why = json.loads(CliRunner().invoke(cli, ["--db", str(db), "audit", "request:svc-42", "--json"]).stdout)["decision"]
    assert why["inputs"] == {"age": 62.0, "income": 72_000.0} and why["rule"]["threshold"] == 0.5 and why["reasons"]


def test_a_forked_worker_logs_through_its_own_writer(served: Any) -> None:
    lg, model = served
    logger = lg.prediction_logger(model, max_batch=10, max_delay=0.05)
    logger.log([[0]], [0], request_ids=["parent-0"])
    pid = os.fork()
    if pid == 0:  # the worker: log, close, exit without running the parent's atexit
        code = 1
        try:
            for i in range(20):
                logger.log([[i]], [1], request_ids=[f"child-{i}"])
            logger.close()
            code = 0 if logger.written == 20 else 2
        finally:
            os._exit(code)
    status = child_status(pid)
    assert os.waitstatus_to_exitcode(status) == 0
    logger.close()
    assert lg.describe(model).attrs["predictions"]["count"] == 21  # the parent's row once, the child's 20
    assert lg.get("request:child-19").kind == "prediction" and lg.verify().ok


def test_workers_forked_while_the_parents_logger_writes_can_log(served: Any) -> None:
    """gunicorn's preload forks workers from a parent whose logger may be writing at
    that moment: a fork copied a SQLite mutex the writer thread held, and the
    worker's first write waited forever. The fork now waits for that write."""
    lg, model = served
    logger = lg.prediction_logger(model, max_batch=1, max_delay=0)
    for round_ in range(30):
        logger.log([[round_]], [0], request_ids=[f"parent-{round_}"])  # its writer starts at once
        time.sleep(round_ % 10 / 10_000)  # forks land at different points of its write
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                logger.log([[round_]], [1], request_ids=[f"worker-{round_}"])
                logger.close()
                code = 0 if logger.written == 1 else 2
            finally:
                os._exit(code)
        assert os.waitstatus_to_exitcode(child_status(pid, seconds=20)) == 0, f"the worker of fork {round_}"
    logger.close()
    assert lg.describe(model).attrs["predictions"]["count"] == 60
    assert lg.verify().ok


def test_predictions_of_a_named_model_with_an_output_column(project: Path) -> None:
    import joblib
    from sklearn.dummy import DummyClassifier

    joblib.dump(DummyClassifier().fit([[0], [1]], [0, 1]), "m.joblib")
    model = as_json("add", "m.joblib", "--model")["items"][0]
    assert model["kind"] == "model" and model["attrs"]["serializer"] == "joblib"
    script = "open('p.csv', 'w').write('id,score,label\\nq-1,0.2,no\\nq-2,0.9,yes\\n')"
    with lineage.open() as lg:
        with pytest.raises(InvalidInputError, match="--output-column"):
            lg.run_command([sys.executable, "-c", script], predictions="p.csv", id_column="id", of="m.joblib")
        result = lg.run_command([sys.executable, "-c", script], predictions="p.csv", id_column="id",
                                output_column="label", of="m.joblib")
        assert result.ok and result.predictions == 2
        assert lg.get("request:q-2").attrs["output"] == "yes"
        assert lg.describe("m.joblib").attrs["predictions"]["count"] == 2


def test_many_flagged_versions_read_as_one_line_in_the_inventory(lg: lineage.Lineage, tmp_path: Path) -> None:
    """200 versions of a name serving unlabelled predictions made a 10,000-character
    cell ("@1 … @200 serves predictions without a label", one per version) in the
    inventory's table and page; the JSON keeps one flag per version."""
    from click.testing import CliRunner
    from sklearn.dummy import DummyClassifier

    from lineage.cli import cli

    with lg.start_run("fit") as run:
        models = [run.log_model(DummyClassifier(constant=i, strategy="constant").fit([[0], [1]], [i, i]), "m")
                  for i in range(5)]
    for m in models:
        lg.log_predictions(m, [[0], [1]], [0, 1])
    doc = lg.inventory().to_dict()
    assert [f["version"] for f in doc["items"][0]["flags"]] == [1, 2, 3, 4, 5]
    line = "serves predictions without a label: 5 versions, @1 … @5 (10)"
    table = CliRunner().invoke(cli, ["--db", str(lg.db_path), "audit", "--inventory"], terminal_width=400)
    assert line in table.output and "@2 serves" not in table.output
    page = lg.inventory().write(tmp_path / "inventory.html").read_text()
    assert line in page and "@2 serves" not in page


def test_the_inventory_reads_a_names_predictions_once_and_each_event_once(lg: lineage.Lineage, tmp_path: Path) -> None:
    """The inventory asked for each version's unlabelled predictions on its own (10,000
    statements for 50 names at 1M predictions) and re-checked the events the models
    share once per model; its Markdown left the flags out."""
    import re
    from collections import Counter

    if lg.store.dialect != "sqlite":
        pytest.skip("counts statements through SQLite's trace callback; the query is the same on PostgreSQL")

    from sklearn.dummy import DummyClassifier

    made: list[Any] = []

    def versions(n: int) -> None:
        with lg.start_run("fit") as run:
            fitted = [run.log_model(DummyClassifier(constant=k, strategy="constant").fit([[0], [1]], [k, k]), name)
                      for i in range(len(made), len(made) + n) for k, name in ((2 * i, "m"), (2 * i + 1, "n"))]
        if not made:  # (a version that holds a label: its writes are placed one by one)
            lg.promote(fitted[0], "staging")
        made.extend(fitted)
        with lg.batch():
            for m in fitted:
                lg.log_predictions(m, [[0], [1]], [0, 1])

    def inventory() -> tuple[list[str], dict[str, Any]]:
        statements: list[str] = []
        lg.store.conn.set_trace_callback(statements.append)
        try:
            doc = lg.inventory().to_dict()
        finally:
            lg.store.conn.set_trace_callback(None)
        return statements, doc

    versions(3)
    few, _ = inventory()
    versions(9)
    many, doc = inventory()
    reads = [s for s in many if "FROM predictions" in s]
    assert len(reads) == len([s for s in few if "FROM predictions" in s])  # the same, whatever the versions
    lg.verify(record=True)  # (events after a checkpoint are replayed by the chain check, not checked one by one)
    checked = Counter(s for s in inventory()[0] if s.startswith("SELECT payload, payload_digest, rows_digest FROM events"))
    assert checked and max(checked.values()) == 1
    flagged = {i["name"]: [f["version"] for f in i["flags"]] for i in doc["items"]}
    assert flagged == {"m": [v for v in range(1, 13) if v != 1], "n": list(range(1, 13))}
    markdown = lg.inventory().to_markdown()
    assert "serves predictions without a label: 11 versions, @2 … @12 (22)" in markdown
    from click.testing import CliRunner

    from lineage.cli import cli

    table = CliRunner().invoke(cli, ["--db", str(lg.db_path), "audit", "--inventory"], terminal_width=400).output
    assert "serves predictions without a label: 12 versions" in table
    assert not re.search(r"│\s*;", table)  # a name with no label began its cell with a stray "; "
