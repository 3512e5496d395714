"""The issue-2 commands through click's CliRunner, on real stores in tmp_path: init,
add, run (real subprocesses), ls, show, history, verify; their --json shapes
(DESIGN.md §5), references, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import committed_repo, git, needs_git, raw_connect

import lineage
from lineage.cli import cli

BACKENDS = ("sqlite", "postgres")  # conftest runs the store fixtures on both

NODE_KEYS = {"id", "kind", "name", "created_at", "attrs"}
VERIFY_KEYS = {"ok", "events", "head", "first_bad", "problems"}


def invoke(*args: str, db: Path | str | None = None) -> Result:
    argv = ["--db", str(db), *args] if db is not None else list(args)
    return CliRunner().invoke(cli, argv, catch_exceptions=False)


def as_json(*args: str, db: Path | str | None = None) -> Any:
    result = invoke(*args, "--json", db=db)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_one_line_error(result: Result, code: int = 1, *, contains: str = "") -> str:
    """The error contract: an exit code, one line on stderr, no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert contains in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder (the working directory) with a data file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("a,b\n1,2\n3,4\n")
    return tmp_path


@pytest.fixture
def db(project: Path, backend: str, request: pytest.FixtureRequest) -> Any:
    """A store at the project root, created through `lineage init` (on PostgreSQL:
    `lineage --db URL init` on a fresh schema)."""
    if backend == "postgres":
        url = request.getfixturevalue("store_path")
        request.getfixturevalue("monkeypatch").setenv("LINEAGE_DB", url)  # as a team would set it
        result = invoke("init", db=url)
        assert result.exit_code == 0, result.output
        return url
    result = invoke("init")
    assert result.exit_code == 0, result.output
    return project / ".lineage" / "lineage.db"


def events(db: Path) -> int:
    with lineage.open(db, create=False) as lg:
        return lg.store.head()[0]


def edges(db: Path) -> set[tuple[str, str, str, str | None]]:
    with lineage.open(db, create=False) as lg:
        return {tuple(r) for r in lg.store.conn.execute("SELECT src, dst, rel, role FROM edges")}  # type: ignore[misc]


# ---------------------------------------------------------------------------
# init


def test_init_creates_the_store_at_the_git_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo" / "src" / "deep")
    result = invoke("init")
    assert result.exit_code == 0, result.output
    store = tmp_path / "repo" / ".lineage" / "lineage.db"
    assert store.is_file()
    assert result.stdout.strip() == f"Initialized lineage store at {store}"
    again = invoke("init")
    assert again.exit_code == 0 and again.stdout.startswith("Found existing lineage store at")
    # reads from anywhere below find it by walking up
    assert invoke("ls", "--json").exit_code == 0


def test_init_outside_git_creates_the_store_here(project: Path) -> None:
    result = invoke("init")
    assert result.exit_code == 0, result.output
    assert (project / ".lineage" / "lineage.db").is_file()


def test_init_at_a_path_and_with_db(project: Path) -> None:
    assert invoke("init", "elsewhere").exit_code == 0
    assert (project / "elsewhere" / ".lineage" / "lineage.db").is_file()
    result = invoke("init", db=project / "team" / "shared.db")
    assert result.exit_code == 0 and (project / "team" / "shared.db").is_file()
    assert invoke("init", db=project / "team" / "shared.db").stdout.startswith("Found existing")
    assert not (project / ".lineage").exists()


def test_lineage_db_environment_variable_selects_the_store(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = project / "env.db"
    monkeypatch.setenv("LINEAGE_DB", str(target))
    assert invoke("add", "data/train.csv").exit_code == 0
    assert target.is_file() and not (project / ".lineage").exists()


# ---------------------------------------------------------------------------
# add


def test_add_the_same_file_twice_records_one_node(db: Path) -> None:
    first = as_json("add", "data/train.csv", "--name", "train")
    n = events(db)
    second = as_json("add", "data/train.csv", "--name", "train")
    assert first == second
    assert events(db) == n  # nothing new: no event at all
    assert len(as_json("ls", "--kind", "dataset")["items"]) == 1


def test_add_json_shape(db: Path) -> None:
    doc = as_json("add", "data/train.csv", "--name", "train")
    assert set(doc) == {"items"} and len(doc["items"]) == 1
    node = doc["items"][0]
    assert set(node) == NODE_KEYS
    assert node["kind"] == "dataset" and node["name"] == "train"
    assert node["id"].startswith("dataset:") and len(node["id"]) == len("dataset:") + 64
    assert node["attrs"]["rows"] == 2 and node["attrs"]["columns"] == ["a", "b"]


def test_add_a_changed_file_is_a_new_version(project: Path, db: Path) -> None:
    v1 = as_json("add", "data/train.csv", "--name", "train")["items"][0]
    (project / "data" / "train.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    v2 = as_json("add", "data/train.csv", "--name", "train")["items"][0]
    assert v1["id"] != v2["id"]
    assert (v2["id"], v1["id"], "was_revision_of", None) in edges(db)
    hist = as_json("history", "train")
    assert [n["id"] for n in hist["items"]] == [v1["id"], v2["id"]]  # oldest first
    assert as_json("show", "train")["id"] == v2["id"]
    assert as_json("show", "train@1")["id"] == v1["id"]
    assert as_json("show", "train@2")["id"] == v2["id"]


def test_add_without_name_uses_the_path_in_the_project(db: Path) -> None:
    node = as_json("add", "data/train.csv")["items"][0]
    assert node["name"] == "data/train.csv"


def test_add_several_paths_and_a_directory(project: Path, db: Path) -> None:
    (project / "data" / "test.csv").write_text("a,b\n9,9\n")
    doc = as_json("add", "data/train.csv", "data/test.csv")
    assert [n["name"] for n in doc["items"]] == ["data/train.csv", "data/test.csv"]
    tree = as_json("add", "data")["items"][0]
    assert tree["attrs"]["format"] == "directory" and tree["attrs"]["files"] == 2


def test_add_records_every_path_or_none(project: Path, db: Path) -> None:
    """A later path that fails (a CSV given to --model) left the earlier ones recorded
    while the command exited 1; a missing path was already checked first."""
    import pickle

    from sklearn.dummy import DummyClassifier

    (project / "good.pkl").write_bytes(pickle.dumps(DummyClassifier().fit([[0], [1]], [0, 1])))
    n = events(db)
    result = invoke("add", "--model", "good.pkl", "data/train.csv")
    line = assert_one_line_error(result, 1, contains="data/train.csv")
    assert "is it a pickle or joblib file?" in line
    assert events(db) == n  # good.pkl is not recorded either
    assert invoke("add", "--model", "good.pkl").exit_code == 0 and events(db) > n


def test_a_path_with_a_newline_or_an_escape_is_one_line_that_cannot_drive_the_terminal(project: Path, db: Path) -> None:
    """A key file named by a script (``$(ls)`` with a newline in it), a path with a
    terminal escape: the error quoted them raw, two lines, the second in red."""
    invoke("add", "data/train.csv")
    line = assert_one_line_error(invoke("verify", "--key", "keys/aud\nitor.pub"), 1, contains="keys/aud\\nitor.pub")
    line = assert_one_line_error(invoke("add", "data/\x1b[31mred.csv"), 1, contains="\\x1b[31mred")
    assert "\x1b" not in line
    line = assert_one_line_error(invoke("add", "data/\u202evsc.exe"), 1, contains="\\u202evsc")  # (shown as "exe.csv")
    assert "\u202e" not in line


def test_text_that_is_not_utf8_is_one_line_not_a_traceback(project: Path, db: Path) -> None:
    """A Latin-1 card file, a references file, a search typed in a Latin-1 terminal."""
    invoke("add", "data/train.csv")
    (project / "card.yaml").write_bytes(b"intended_use: caf\xe9\n")
    assert_one_line_error(invoke("annotate", "data/train.csv", "--card", "card.yaml"), 1, contains="not UTF-8")
    (project / "refs").write_bytes(b"x\xff\n")
    assert_one_line_error(invoke("blame", "--bad", "@refs"), 1, contains="not UTF-8")
    search = invoke("search", "caf\udce9")  # (how Python hands over the byte 0xe9 of a command line)
    assert search.exit_code == 2 and "Traceback" not in search.output and "not UTF-8" in search.stderr


def test_options_given_wrong_are_named_as_given(project: Path, tmp_path: Path) -> None:
    """-t named as -p; ls --limit -5 listed everything; --db sqlite:///x.db made a
    folder named 'sqlite:' and a store in it."""
    tag = invoke("run", "-t", "novalue", "--", "true")
    assert tag.exit_code == 2 and "-t" in tag.stderr and "-p" not in tag.stderr
    for bad in ("-5", "0"):
        assert invoke("ls", "--limit", bad).exit_code == 2
    for url in ("sqlite:///x.db", "mysql://u@h/db"):
        assert_one_line_error(invoke("init", db=url), 1, contains="unsupported store URL")
    assert not (project / "sqlite:").exists() and not (project / "mysql:").exists()
    # a name cannot drive the terminal when `add` echoes it (ls and show already clean it)
    added = invoke("add", "data/train.csv", "--name", "a\x1b]0;PWNED\x07b")
    assert added.exit_code == 0 and "\x1b" not in added.output and "\x07" not in added.output


def test_a_file_added_under_another_name_is_found_by_its_path(project: Path, db: Path) -> None:
    """`add f.csv --name train`: `show f.csv` said nothing was recorded there."""
    (project / "f.csv").write_text("a,b\n7,7\n")
    added = as_json("add", "f.csv", "--name", "train")["items"][0]
    assert as_json("show", "f.csv")["id"] == added["id"]
    assert as_json("trace", "f.csv")["nodes"][0]["id"] == added["id"]


def test_add_a_missing_file_records_nothing(project: Path, db: Path) -> None:
    n = events(db)
    result = invoke("add", "data/train.csv", "data/nope.csv")
    assert_one_line_error(result, 1, contains="data/nope.csv")
    assert events(db) == n  # all or nothing


def test_add_name_with_several_paths_is_bad_usage(db: Path) -> None:
    result = invoke("add", "data/train.csv", "data/train.csv", "--name", "x")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_add_remote_data_by_uri(db: Path) -> None:
    node = as_json("add", "--uri", "s3://key:secret@bucket/train.parquet", "--digest", "md5:" + "abc1" * 8)["items"][0]
    assert node["attrs"]["uri"] == "s3://bucket/train.parquet"
    assert "secret" not in json.dumps(node)
    assert_one_line_error(invoke("add", "--uri", "s3://bucket/x"), 1, contains="digest")


def test_add_creates_a_store_when_there_is_none(project: Path) -> None:
    assert invoke("add", "data/train.csv").exit_code == 0
    assert (project / ".lineage" / "lineage.db").is_file()


# ---------------------------------------------------------------------------
# run: real subprocesses

SCRIPT = textwrap.dedent(
    """
    import sys
    src, dst, *rest = sys.argv[1:]
    with open(src) as f, open(dst, "w") as g:
        g.write(f.read().upper())
        g.write(" ".join(rest))
    """
)


@pytest.fixture
def script(project: Path) -> Path:
    p = project / "prep.py"
    p.write_text(SCRIPT)
    return p


def latest_run(db: Path) -> dict[str, Any]:
    items = as_json("ls", "--kind", "run", "--limit", "1", db=db)["items"]
    assert items
    return items[0]


def test_run_records_inputs_outputs_params_code_and_environment(project: Path, db: Path, script: Path) -> None:
    result = invoke("run", "-i", "data/train.csv", "-o", "data/out.csv", "-p", "lr=0.1", "-p", "api_key=s3cr3t",
                    "--", sys.executable, "prep.py", "data/train.csv", "data/out.csv", "--flag", "--password", "hunter2")
    assert result.exit_code == 0, result.output
    out = project / "data" / "out.csv"
    # the command got exactly its arguments: `--` and lineage's options are not passed on
    assert out.read_text().endswith("--flag --password hunter2")
    run = latest_run(db)
    a = run["attrs"]
    assert a["status"] == "finished" and a["exit_code"] == 0
    assert run["name"] == "prep"  # the script's stem: the code node is `prep.py`
    assert a["params"] == {"lr": "0.1", "api_key": "***"}
    assert a["command"] == [sys.executable, "prep.py", "data/train.csv", "data/out.csv", "--flag", "--password", "***"]
    assert isinstance(a["duration_s"], float) and a["duration_s"] >= 0
    train = as_json("show", "data/train.csv")
    output = as_json("show", "data/out.csv")
    e = edges(db)
    assert (run["id"], train["id"], "used", "input") in e
    assert (output["id"], run["id"], "was_generated_by", None) in e
    rels = {(rel, role) for src, _, rel, role in e if src == run["id"]}
    assert {("used", "code"), ("used", "environment"), ("was_associated_with", None)} <= rels
    code = [dst for src, dst, rel, role in e if src == run["id"] and role == "code"][0]
    assert as_json("show", code)["name"] == "prep.py"
    assert as_json("show", "prep.py")["id"] == code and as_json("show", "prep")["id"] == run["id"]  # no clash
    # secrets never reach the file, in any table or the ledger
    if isinstance(db, Path):
        raw = b"".join(p.read_bytes() for p in db.parent.glob("lineage.db*"))
        assert b"hunter2" not in raw and b"s3cr3t" not in raw


def test_run_propagates_the_exit_code_and_records_failure(db: Path) -> None:
    result = invoke("run", "--", sys.executable, "-c", "import sys; sys.exit(3)")
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    run = latest_run(db)
    assert run["attrs"]["status"] == "failed" and run["attrs"]["exit_code"] == 3


def test_a_csv_whose_header_csv_refuses_is_still_recorded_with_the_run(project: Path, db: Path) -> None:
    """A bare carriage return in a CSV header (old Mac line ends, or bytes that are no
    CSV) made the csv module raise while describing the output: a command that exited
    0 was recorded as failed, "interrupted", its output dropped, with a traceback."""
    result = invoke("run", "-o", "out.csv", "--", sys.executable, "-c",
                    "open('out.csv', 'wb').write(b'a\\rb,c\\n1,2\\n')")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    run = latest_run(db)
    assert run["attrs"]["status"] == "finished" and run["attrs"]["exit_code"] == 0
    added = invoke("add", "out.csv", "--json")
    assert added.exit_code == 0 and "Traceback" not in added.output


def test_run_of_a_missing_program_exits_127_with_one_line(db: Path) -> None:
    result = invoke("run", "--", "no-such-program-anywhere", "x")
    line = assert_one_line_error(result, 127, contains="no-such-program-anywhere")
    assert "could not start" in line
    run = latest_run(db)
    assert run["attrs"]["status"] == "failed" and run["attrs"]["exit_code"] == 127


def test_run_killed_by_a_signal_exits_128_plus_n(db: Path) -> None:
    result = invoke("run", "--", sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert result.exit_code == 128 + 15
    run = latest_run(db)
    assert run["attrs"]["status"] == "failed" and run["attrs"]["exit_code"] == 143
    assert "SIGTERM" in run["attrs"]["error"]


def test_run_without_double_dash_passes_everything_after_the_program_on(project: Path, db: Path, script: Path) -> None:
    # after the first argument that is not an option, nothing is lineage's: `-o` is the script's
    result = invoke("run", "-i", "data/train.csv", sys.executable, "prep.py", "data/train.csv", "data/o2.csv", "-o", "x")
    assert result.exit_code == 0, result.output
    assert (project / "data" / "o2.csv").read_text().endswith("-o x")
    assert latest_run(db)["attrs"]["command"][-2:] == ["-o", "x"]


def test_run_with_a_declared_output_not_written_fails(db: Path) -> None:
    result = invoke("run", "-o", "never.csv", "--", sys.executable, "-c", "pass")
    assert result.exit_code == 1
    run = latest_run(db)
    assert run["attrs"]["status"] == "failed" and "never.csv" in run["attrs"]["error"]


def test_run_with_a_missing_input_is_refused_before_running(project: Path, db: Path) -> None:
    n = events(db)
    result = invoke("run", "-i", "nope.csv", "--", sys.executable, "-c", "open('ran', 'w')")
    assert_one_line_error(result, 1, contains="nope.csv")
    assert not (project / "ran").exists() and events(db) == n


def test_run_bad_param_is_bad_usage(db: Path) -> None:
    result = invoke("run", "-p", "novalue", "--", sys.executable, "-c", "pass")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_run_needs_a_command(db: Path) -> None:
    assert invoke("run").exit_code == 2
    assert invoke("run", "--").exit_code == 2


def test_run_output_consumed_by_a_later_run_links_the_runs(project: Path, db: Path, script: Path) -> None:
    assert invoke("run", "-i", "data/train.csv", "-o", "data/a.csv", "--", sys.executable, "prep.py",
                  "data/train.csv", "data/a.csv").exit_code == 0
    first = latest_run(db)
    assert invoke("run", "-i", "data/a.csv", "-o", "data/b.csv", "--", sys.executable, "prep.py",
                  "data/a.csv", "data/b.csv").exit_code == 0
    second = latest_run(db)
    assert (second["id"], first["id"], "was_informed_by", None) in edges(db)


# ---------------------------------------------------------------------------
# ls, show, history: JSON shapes and references


@pytest.fixture
def filled(project: Path, db: Path) -> dict[str, Any]:
    """Two versions of `train`, a run that made a model `clf`, a dataset also named
    `clf` (a name shared by two kinds), and predictions with request ids."""
    import numpy as np
    from sklearn.dummy import DummyClassifier

    with lineage.open(db) as lg:
        v1 = lg.log_dataset("data/train.csv", name="train")
        (project / "data" / "train.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
        v2 = lg.log_dataset("data/train.csv", name="train")
        with lg.start_run("fit", params={"C": 1.0}) as run:
            run.log_input(v2)
            model = run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "clf")
        (project / "data" / "other.csv").write_text("x\n1\n")
        other = lg.log_dataset("data/other.csv", name="clf")
        preds = lg.log_predictions(model, np.zeros((2, 1)), [0, 1], request_ids=["req-1", "req-2"])
        return {"v1": v1.id, "v2": v2.id, "run": run.id, "model": model.id, "other": other.id, "preds": preds}


def test_ls_json_shape_and_filters(filled: dict[str, Any], db: Path) -> None:
    doc = as_json("ls")
    assert set(doc) == {"items"}
    assert all(set(n) == NODE_KEYS for n in doc["items"])
    ids = [n["id"] for n in doc["items"]]
    assert filled["v1"] in ids and filled["model"] in ids
    datasets = as_json("ls", "--kind", "dataset")["items"]
    assert {n["kind"] for n in datasets} == {"dataset"} and len(datasets) == 3
    assert [n["id"] for n in datasets][:2] == [filled["other"], filled["v2"]]  # newest first
    assert [n["id"] for n in as_json("ls", "--name", "train")["items"]] == [filled["v2"], filled["v1"]]
    preds = as_json("ls", "--kind", "prediction")["items"]
    assert {n["id"] for n in preds} == set(filled["preds"]) and all(set(n) == NODE_KEYS for n in preds)


def test_ls_as_a_table(filled: dict[str, Any]) -> None:
    result = invoke("ls")
    assert result.exit_code == 0 and "dataset" in result.stdout and "train" in result.stdout


def test_names_never_reach_the_terminal_as_control_characters(project: Path, db: Path) -> None:
    """A name is data (DESIGN.md §6): its escape sequences (colour, a window title),
    a right-to-left override or a newline must not act on the terminal of whoever
    lists the store; the JSON keeps the name as recorded."""
    hostile = "\x1b[31mred\x1b[0m\u202eevil\nline2\x1b]0;pwned\x07"
    with lineage.open(create=False) as lg:
        lg.log_dataset(str(project / "data" / "train.csv"), name=hostile)
    for args in (["ls"], ["show", hostile]):
        out = invoke(*args).stdout
        assert "red" in out and "evil line2" in out, out
        assert not any(ch in out for ch in "\x1b\x07\u202e"), repr(out)
    assert as_json("show", hostile)["name"] == hostile


def test_show_json_is_one_node(filled: dict[str, Any]) -> None:
    node = as_json("show", filled["run"])
    assert set(node) == NODE_KEYS
    assert node["kind"] == "run" and node["attrs"]["status"] == "finished" and node["attrs"]["params"] == {"C": "1.0"}


@pytest.mark.parametrize("form", ["full id", "prefix", "bare hex", "name", "kind:name", "name@1", "request"])
def test_show_resolves_every_reference_form(filled: dict[str, Any], form: str) -> None:
    v1, v2, model = filled["v1"], filled["v2"], filled["model"]
    ref, expected = {
        "full id": (v1, v1),
        "prefix": (v2[: len("dataset:") + 10], v2),
        "bare hex": (model.split(":")[1][:12], model),
        "name": ("train", v2),
        "kind:name": ("model:clf", model),
        "name@1": ("train@1", v1),
        "request": ("request:req-2", filled["preds"][1]),
    }[form]
    assert as_json("show", ref)["id"] == expected


def test_output_to_a_pipe_has_no_trailing_spaces(filled: dict[str, Any]) -> None:
    # a long fact (the command) makes the table wide: the short rows were padded to it
    for args in (["show", filled["run"]], ["ls"], ["trace", filled["model"]], ["history", "train"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        padded = [line for line in result.stdout.splitlines() if line != line.rstrip()]
        assert padded == [], (args, padded[:2])


def test_show_metric_that_a_run_did_not_log_names_the_metric(filled: dict[str, Any]) -> None:
    with lineage.open(create=False) as lg:
        with lg.start_run("scored") as run:
            run.log_metric("accuracy", 0.9)
            run.log_metric("loss", 0.2)
    line = assert_one_line_error(invoke("show", run.id, "--metric", "nosuch"), 1)
    assert line == f"Error: {run.id} has no metric named 'nosuch'; it logged accuracy, loss"
    line = assert_one_line_error(invoke("show", filled["run"], "--metric", "nosuch"), 1)
    assert "no node matches" not in line and line.endswith("it logged no metrics")


def test_show_as_a_table_prints_the_full_id(filled: dict[str, Any]) -> None:
    result = invoke("show", filled["v1"])
    assert result.exit_code == 0
    assert filled["v1"].split(":")[1][-12:] in result.stdout.replace("\n", "").replace(" ", "")


def test_unknown_reference_is_one_line(filled: dict[str, Any]) -> None:
    assert_one_line_error(invoke("show", "no_such_thing"), 1, contains="no_such_thing")
    assert_one_line_error(invoke("show", "train@9"), 1, contains="versions 1 to 2")
    assert_one_line_error(invoke("show", "dataset:ffffffffffff"), 1)


def test_a_path_reference_resolves_as_the_project_relative_path(project: Path, db: Path) -> None:
    # `add` names the file by its path from the project root: data/train.csv
    added = json.loads(invoke("add", "data/train.csv", "--json").stdout)["items"][0]["id"]
    for ref in ("./data/train.csv", str(project / "data" / "train.csv"), "dataset:./data/train.csv",
                "./data/train.csv@1"):
        assert as_json("show", ref)["id"] == added, ref
    # an unknown path is still one line, naming the path it looked for and a near one
    line = assert_one_line_error(invoke("show", "./data/trian.csv"), 1, contains="'./data/trian.csv'")
    assert "'data/trian.csv'" in line and "did you mean data/train.csv" in line


@pytest.mark.sqlite_only  # (a PostgreSQL store's project root is the git root or the working directory)
def test_a_path_typed_in_a_subfolder_resolves_from_the_project_root(project: Path, db: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    added = json.loads(invoke("add", "data/train.csv", "--json").stdout)["items"][0]["id"]
    monkeypatch.chdir(project / "data")  # relative to the working directory, below the root
    assert as_json("show", "train.csv")["id"] == added
    assert as_json("show", "../data/train.csv")["id"] == added
    line = assert_one_line_error(invoke("show", "./trian.csv"), 1, contains="'./trian.csv'")
    assert "'data/trian.csv'" in line and "did you mean data/train.csv" in line


def test_ambiguous_reference_lists_the_candidates(filled: dict[str, Any]) -> None:
    line = assert_one_line_error(invoke("show", "clf"), 1, contains="ambiguous")
    assert "dataset:clf" in line and "model:clf" in line
    # a short prefix shared by several ids lists them
    with lineage.open(create=False) as lg:
        with lg.start_run("a"):
            pass
        with lg.start_run("b"):
            pass
        runs = [n.id for n in lg.nodes(kind="run")]
    common = os.path.commonprefix(runs)
    line = assert_one_line_error(invoke("show", common), 1, contains="ambiguous")
    assert all(r in line for r in runs[:3])


def test_ambiguous_prefix_counts_every_match(filled: dict[str, Any]) -> None:
    with lineage.open(create=False) as lg:
        with lg.batch():
            for i in range(30):
                with lg.start_run(f"r{i}"):
                    pass
        runs = [n.id for n in lg.nodes(kind="run")]
    common = os.path.commonprefix(runs)
    assert len(runs) == 31 and len(common) > len("run:")
    line = assert_one_line_error(invoke("show", common), 1, contains="ambiguous")
    assert "and 23 more;" in line  # 31 runs, 8 shown: the count is not the shortlist's


def test_history_json_oldest_first(filled: dict[str, Any]) -> None:
    doc = as_json("history", "train")
    assert set(doc) == {"items"} and all(set(n) == NODE_KEYS for n in doc["items"])
    assert [n["id"] for n in doc["items"]] == [filled["v1"], filled["v2"]]
    assert [n["id"] for n in as_json("history", "dataset:clf")["items"]] == [filled["other"]]
    table = invoke("history", "train")
    assert table.exit_code == 0 and "@1" in table.stdout and "@2" in table.stdout


def test_history_of_an_unknown_or_shared_name(filled: dict[str, Any]) -> None:
    assert_one_line_error(invoke("history", "nothing"), 1, contains="nothing")
    assert_one_line_error(invoke("history", "nothing", "--json"), 1, contains="nothing")
    assert_one_line_error(invoke("history", "clf"), 1, contains="ambiguous")


def test_user_strings_are_not_markup(project: Path, db: Path) -> None:
    assert invoke("add", "data/train.csv", "--name", "[red]x[/]").exit_code == 0
    for args in (["ls"], ["show", "[red]x[/]"], ["history", "[red]x[/]"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert "[red]x[/]" in result.stdout


# ---------------------------------------------------------------------------
# verify


def test_verify_json_shape(filled: dict[str, Any], db: Path) -> None:
    doc = as_json("verify")
    assert set(doc) == VERIFY_KEYS  # exactly DESIGN.md's shape
    assert doc["ok"] is True and doc["first_bad"] is None and doc["problems"] == []
    assert doc["events"] == events(db) and len(doc["head"]) == 64
    text = invoke("verify")
    assert text.exit_code == 0 and doc["head"] in text.stdout and f"{doc['events']} events" in text.stdout


def test_verify_writes_nothing(filled: dict[str, Any], db: Path) -> None:
    before = events(db)
    as_json("verify")
    assert events(db) == before


def test_a_tampered_store_fails_verify_naming_the_first_bad_event(filled: dict[str, Any], db: Path) -> None:
    conn = raw_connect(db)
    event = conn.execute("SELECT event FROM params WHERE key = 'C'").fetchone()[0]
    conn.execute("UPDATE params SET value = '100.0' WHERE key = 'C'")
    conn.commit()
    conn.close()
    result = invoke("verify", "--json")
    assert result.exit_code == 1 and "Traceback" not in result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["first_bad"] == event and doc["problems"]
    text = invoke("verify")
    assert text.exit_code == 1 and f"first bad event {event}" in text.stderr
    assert re.search(r"rows now: [^)]*params \d", text.stderr)  # where to look: the digest cannot name the row
    assert "not a head to remember" in text.stderr  # the recomputed head is no reference


def test_verify_head_catches_a_truncated_ledger(filled: dict[str, Any], db: Path) -> None:
    remembered = as_json("verify")
    assert invoke("verify", "--head", remembered["head"]).exit_code == 0
    assert invoke("add", "data/other.csv", "--name", "more").exit_code == 0  # history grows: still a prefix
    assert invoke("verify", "--head", remembered["head"][:16]).exit_code == 0
    # cut the ledger back to before the remembered head (rows of the cut events too)
    keep = remembered["events"] - 2
    conn = raw_connect(db)
    for table in ("events",):
        conn.execute(f"DELETE FROM {table} WHERE seq > ?", (keep,))
    for table in ("nodes", "aliases", "edges", "params", "tags", "metrics", "run_states", "predictions", "annotations"):
        conn.execute(f"DELETE FROM {table} WHERE event > ?", (keep,))
    # a bulk write's publish cut off too: its batch is unpublished again (a leftover)
    conn.execute("UPDATE bulk_batches SET event = NULL WHERE event > ?", (keep,))
    conn.commit()
    conn.close()
    assert invoke("verify").exit_code == 0  # on its own, a clean truncation looks honest
    result = invoke("verify", "--head", remembered["head"], "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and any("truncated" in p for p in doc["problems"])


def test_verify_head_that_is_not_a_hash_is_bad_usage(filled: dict[str, Any]) -> None:
    for bad in ("deadbeef", "z" * 64):
        assert_one_line_error(invoke("verify", "--head", bad), 2, contains="--head takes the hex head hash")


def test_verify_head_of_no_event_names_no_bad_event(filled: dict[str, Any], db: Path) -> None:
    # well-formed but from nowhere: a failed check (exit 1), not an event past the end
    result = invoke("verify", "--head", "a" * 64, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["first_bad"] is None and doc["events"] == events(db)
    assert len(doc["problems"]) == 1 and "matches no event of this ledger" in doc["problems"][0]
    text = invoke("verify", "--head", "a" * 64)
    assert text.exit_code == 1 and "first bad event" not in text.stderr
    assert "matches no event of this ledger" in text.stderr and "Traceback" not in text.output


def test_verify_record_appends_a_checkpoint(filled: dict[str, Any], db: Path) -> None:
    # (with none yet, --since-checkpoint says it replayed everything, not as if it had skipped)
    assert "no usable checkpoint: the whole ledger was replayed" in invoke("verify", "--since-checkpoint").stdout
    before = events(db)
    result = invoke("verify", "--record")
    assert result.exit_code == 0 and "checkpoint" in result.stdout
    assert events(db) == before + 1
    with lineage.open(db, create=False) as lg:
        last = lg.store.event(before + 1)
        assert last is not None and last.type == "checkpoint"
        assert last.payload is not None and last.payload["verified_through"] == before
    doc = as_json("verify", "--since-checkpoint")
    assert doc["ok"] and doc["events"] == before + 1
    text = invoke("verify", "--since-checkpoint")
    assert f"since checkpoint at event {before}" in text.stdout


# ---------------------------------------------------------------------------
# errors


def test_no_store_is_one_line(project: Path) -> None:
    for args in (["ls"], ["show", "x"], ["history", "x"], ["verify"]):
        line = assert_one_line_error(invoke(*args), 1)
        assert line == "Error: no lineage store here (run `lineage init`)"
    assert not (project / ".lineage").exists()  # reads create nothing
    assert_one_line_error(invoke("ls", db=project / "missing.db"), 1, contains="lineage init")


def test_a_file_that_is_not_a_store_is_one_line(project: Path) -> None:
    junk = project / "junk.db"
    junk.write_bytes(os.urandom(4096))
    assert_one_line_error(invoke("ls", db=junk), 1, contains="not a readable lineage store")
    other = project / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    assert_one_line_error(invoke("verify", db=other), 1, contains="not a lineage store")


@pytest.mark.sqlite_only
def test_a_newer_schema_is_one_line(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    for args in (["ls"], ["add", "data/train.csv"], ["verify"]):
        assert_one_line_error(invoke(*args), 1, contains="newer than this lineage understands")


@pytest.mark.sqlite_only
def test_a_damaged_page_found_mid_command_is_one_line(project: Path, db: Path) -> None:
    with lineage.open(db) as lg:
        with lg.batch():
            for i in range(300):
                (project / f"f{i}.txt").write_text(f"{i}" * 200)
                lg.log_dataset(project / f"f{i}.txt")
        lg.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 12 * page
    data[6 * page : len(data) - 2 * page] = os.urandom(len(data) - 8 * page)
    db.write_bytes(bytes(data))
    result = invoke("ls", "--json")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_command_and_option_are_bad_usage(db: Path) -> None:
    assert invoke("frobnicate").exit_code == 2
    assert invoke("ls", "--kind", "spaceship").exit_code == 2


# ---------------------------------------------------------------------------
# the two ways in: `python -m lineage` and the console script


def test_python_dash_m_lineage_version() -> None:
    out = subprocess.run([sys.executable, "-m", "lineage", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"lineage, version {lineage.__version__}"


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("lineage")
    if not script.exists():
        pytest.skip("the lineage console script is not installed next to this interpreter")
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"lineage, version {lineage.__version__}"
    env = {**os.environ, "LINEAGE_DB": str(tmp_path / "s.db")}
    missing = subprocess.run([str(script), "ls"], capture_output=True, text=True, env=env)
    assert missing.returncode == 1 and missing.stderr.startswith("Error: no lineage store at")
    assert "Traceback" not in missing.stderr


def test_add_one_uri_at_a_time(db: Path) -> None:
    result = invoke("add", "--uri", "s3://b/x", "s3://b/y", "--digest", "abc")
    assert result.exit_code == 2 and "Traceback" not in result.output


# ---------------------------------------------------------------------------
# annotate


def test_annotate_records_a_statement(filled: dict[str, Any], db: Path, tmp_path: Path) -> None:
    before = events(db)
    result = invoke("annotate", filled["model"][:16], "--field", "intended_use", "--text", "Credit pre-screening")
    assert result.exit_code == 0, result.output
    assert events(db) == before + 1
    card = tmp_path / "card.yaml"
    card.write_text("limitations: Not for people under 18\nsign_off: approved by risk\n")
    result = invoke("annotate", "model:clf", "--card", str(card))
    assert result.exit_code == 0 and "2 annotation" in result.stdout
    with lineage.open(db, create=False) as lg:
        notes = lg.annotations(filled["model"])
    assert notes["intended_use"]["text"] == "Credit pre-screening" and notes["intended_use"]["author"] == "tester"
    assert set(notes) == {"intended_use", "limitations", "sign_off"}
    assert as_json("verify")["ok"]


def test_annotate_errors(filled: dict[str, Any], db: Path) -> None:
    assert_one_line_error(invoke("annotate", "model:clf", "--field", "favourite_colour", "--text", "blue"), 1,
                          contains="unknown field")
    assert_one_line_error(invoke("annotate", "nothing", "--field", "intended_use", "--text", "x"), 1)
    assert invoke("annotate", "model:clf", "--field", "intended_use").exit_code == 2


# ---------------------------------------------------------------------------
# redact


def test_redact_erases_a_prediction_and_verify_still_passes(filled: dict[str, Any], db: Path) -> None:
    result = invoke("redact", "request:req-1", "--reason", "GDPR request 7", "--yes")
    assert result.exit_code == 0, result.output
    assert filled["preds"][0] in result.stdout
    node = as_json("show", filled["preds"][0])
    assert node["attrs"]["output"] is None and node["attrs"]["request_id"] is None
    assert as_json("verify")["ok"] is True
    assert_one_line_error(invoke("show", "request:req-1"), contains="req-1")
    again = invoke("redact", filled["preds"][0], "--reason", "again", "--yes")
    assert_one_line_error(again, contains="already erased")


def test_redact_asks_first_and_needs_a_reason(filled: dict[str, Any], db: Path) -> None:
    before = events(db)
    declined = CliRunner().invoke(cli, ["--db", str(db), "redact", "request:req-2", "--reason", "x"], input="n\n")
    assert declined.exit_code == 1 and events(db) == before
    assert invoke("redact", "request:req-2").exit_code == 2  # --reason is required


# ---------------------------------------------------------------------------
# `python -c`: the inline program is the code


def _run_code(db: Path | str, program: str) -> dict[str, Any]:
    """Run ``python -c program`` through `lineage run`; the code node its run used."""
    result = invoke("run", "--", sys.executable, "-c", program, db=db)
    assert result.exit_code == 0, result.output
    run = latest_run(db)
    code = [dst for src, dst, rel, role in edges(db) if src == run["id"] and role == "code"]
    assert len(code) == 1
    node: dict[str, Any] = as_json("show", code[0], db=db)
    return node


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_inline_programs_are_code_versions_of_their_own(project: Path, db: Path) -> None:
    """`lineage run -- python -c "print(1)"` and `... "print(2)"` used to share one
    code node (the identity of the command name `python`): two different programs
    looked like the same code. Outside git the code is the program text itself,
    digested as a script file is (``printf %s 'print(1)' | sha256sum``)."""
    one = _run_code(db, "print(1)")
    two = _run_code(db, "print(2)")
    again = _run_code(db, "print(1)")
    assert one["id"] != two["id"]
    assert again["id"] == one["id"]  # the same program is the same code
    assert one["id"] == f"code:{_sha('print(1)')}"
    assert one["attrs"]["script_digest"] == _sha("print(1)") and two["attrs"]["script_digest"] == _sha("print(2)")
    assert one["attrs"]["entry_point"] == f"{os.path.basename(sys.executable)} -c"


@needs_git
@pytest.mark.sqlite_only
def test_inline_programs_in_a_git_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a work tree the code is the commit (and its diff) with the program: two
    inline programs at one commit are two code versions, each naming the commit."""
    repo = committed_repo(tmp_path)
    monkeypatch.chdir(repo)
    db = repo / ".lineage" / "lineage.db"
    assert invoke("init").exit_code == 0
    one = _run_code(db, "print(1)")
    two = _run_code(db, "print(2)")
    commit = git(repo, "rev-parse", "HEAD")
    assert one["id"] != two["id"]
    assert one["attrs"]["commit"] == two["attrs"]["commit"] == commit and one["attrs"]["git"] is True
    assert one["attrs"]["script_digest"] == _sha("print(1)")
    assert _run_code(db, "print(1)")["id"] == one["id"]
    # a script of the repository is still the commit's code, not an inline program's
    script = invoke("run", "--", sys.executable, "train.py", db=db)
    assert script.exit_code == 0, script.output
    code = [dst for src, dst, rel, role in edges(db) if src == latest_run(db)["id"] and role == "code"]
    assert code[0] not in (one["id"], two["id"])
    assert "script_digest" not in as_json("show", code[0], db=db)["attrs"]
