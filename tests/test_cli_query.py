"""The query commands through click's CliRunner: trace, impact, which-data, diff, blame,
runs, insights and status, their --json shapes (DESIGN.md §5) and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import lineage
from lineage.cli import cli

BACKENDS = ("sqlite", "postgres")  # conftest runs the store fixtures on both

NODE_KEYS = {"id", "kind", "name", "created_at", "attrs"}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_path: Any) -> dict[str, Any]:
    """A store with raw -> prep -> clean -> fit (x2) -> models -> predictions."""
    from sklearn.dummy import DummyClassifier

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "raw.csv").write_text("a,b\n1,2\n3,4\n")
    (data / "test.csv").write_text("a,b\n5,6\n")
    db = store_path  # a file, or a PostgreSQL URL
    lg = lineage.open(db)
    raw = lg.log_dataset(data / "raw.csv", name="raw")
    test = lg.log_dataset(data / "test.csv", name="test")
    with lg.start_run("prep") as run:
        run.log_input(raw)
        (data / "clean.csv").write_text("a,b\n1,2\n")
        clean = run.log_output(data / "clean.csv", name="clean")
    models, preds = [], []
    for i, c in enumerate((1.0, 0.1, 0.5)):
        with lg.start_run("fit", params={"C": c, "penalty": "l2"}, tags={"team": "risk"}) as run:
            run.log_input(clean)
            run.log_metric("accuracy", 0.8 + c / 10, dataset=test)
            model = run.log_model(DummyClassifier(strategy="constant", constant=i).fit([[0], [1]], [i, i]), "clf")
        models.append(model)
        preds.append(lg.log_predictions(model, np.zeros((2, 1)), [i, i], request_ids=[f"r{i}-a", f"r{i}-b"]))
    lg.close()
    return {"db": str(db), "data": data, "raw": raw.id, "clean": clean.id, "test": test.id, "models": [m.id for m in models],
            "preds": preds}


def run_cli(project: dict[str, Any], *args: str) -> Any:
    return CliRunner().invoke(cli, ["--db", project["db"], *args], catch_exceptions=False)


def run_json(project: dict[str, Any], *args: str) -> Any:
    result = run_cli(project, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def check_subgraph_shape(doc: dict[str, Any]) -> None:
    assert set(doc) == {"root", "nodes", "edges", "counts"}
    for n in doc["nodes"]:
        if n["kind"] == "group":
            assert {"id", "kind", "of", "count"} <= set(n) and n["id"].startswith(f"group:{n['of']}:")
        else:
            assert set(n) == NODE_KEYS
    for e in doc["edges"]:
        assert set(e) == {"src", "dst", "rel", "role"}
    ids = {n["id"] for n in doc["nodes"]}
    assert doc["root"] in ids
    assert all(e["src"] in ids and e["dst"] in ids for e in doc["edges"])


def test_trace_json(project: dict[str, Any]) -> None:
    doc = run_json(project, "trace", "request:r0-a")
    check_subgraph_shape(doc)
    assert doc["root"] == project["preds"][0][0]
    kinds = {n["kind"] for n in doc["nodes"]}
    assert kinds == {"prediction", "model", "run", "dataset", "code", "environment", "agent"}
    assert {n["name"] for n in doc["nodes"] if n["kind"] == "dataset"} == {"raw", "clean", "test"}
    assert doc["counts"]["run"] == 2 and doc["counts"]["prediction"] == 1


def test_trace_options_and_tree(project: dict[str, Any]) -> None:
    doc = run_json(project, "trace", project["models"][0], "--depth", "1")
    assert {n["kind"] for n in doc["nodes"]} == {"model", "run", "agent"}
    doc = run_json(project, "trace", project["models"][0], "--kind", "dataset")
    assert {n["kind"] for n in doc["nodes"]} == {"model", "dataset"}
    result = run_cli(project, "trace", "clf")
    assert result.exit_code == 0
    assert "clean" in result.output and "raw" in result.output and "upstream of model:" in result.output


def test_impact_json_counts_and_lists_predictions(project: dict[str, Any]) -> None:
    doc = run_json(project, "impact", "raw")
    check_subgraph_shape(doc)
    groups = [n for n in doc["nodes"] if n["kind"] == "group"]
    assert len(groups) == 3 and all(g["of"] == "prediction" and g["count"] == 2 for g in groups)
    assert len({g["id"] for g in groups}) == 3
    assert doc["counts"]["prediction"] == 6 and doc["counts"]["model"] == 3
    assert not any(n["kind"] == "prediction" for n in doc["nodes"])
    full = run_json(project, "impact", "raw", "--predictions")
    check_subgraph_shape(full)
    assert sum(1 for n in full["nodes"] if n["kind"] == "prediction") == 6
    result = run_cli(project, "impact", "raw")
    text = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 0 and "affected" in text and "3 models, 6 predictions" in text


def test_impact_predictions_tree_lists_no_more_than_it_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`impact --predictions` in a terminal built all 300,000 predictions (11 s) for a
    tree of 100 nodes: it now lists at most --max-nodes a model, and the tree reads
    as before, the listed ones and the rest one line ("×40 40 predictions")."""
    from sklearn.dummy import DummyClassifier

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.csv").write_text("a,y\n1,0\n2,1\n")
    with lineage.open(tmp_path / "s.db") as lg:
        data = lg.log_dataset(tmp_path / "train.csv", name="train")
        with lg.start_run("fit") as run:
            run.log_input(data)
            model = run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "clf")
        lg.log_predictions(model, np.zeros((40, 1)), [0] * 40)

    def tree(*args: str) -> list[str]:
        result = CliRunner().invoke(cli, ["--db", str(tmp_path / "s.db"), "impact", "train", *args])
        assert result.exit_code == 0, result.output
        return [" ".join(line.split()) for line in result.output.splitlines()]

    asked: list[Any] = []
    impact = lineage.Lineage.impact
    monkeypatch.setattr(lineage.Lineage, "impact",
                        lambda self, *a, **k: asked.append(k.get("max_predictions")) or impact(self, *a, **k))
    cut, whole = tree("--predictions", "--max-nodes", "10"), tree("--predictions", "--max-nodes", "1000")
    assert asked == [10, 1000]
    assert cut == whole
    assert any(line.endswith("derived into ×40 40 predictions " + line.split()[-1]) for line in cut), cut


def test_a_big_json_answer_is_the_same_document_one_item_a_line(project: dict[str, Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Past `BIG_JSON_ITEMS` items, --json writes each item on its own line with json's C
    encoder (indenting 300,000 predictions field by field took most of 19 s): the same
    document, and still one a person can read and grep."""
    import lineage.cli as cli_module

    small = run_json(project, "impact", "raw", "--predictions")
    monkeypatch.setattr(cli_module, "BIG_JSON_ITEMS", 3)
    result = run_cli(project, "impact", "raw", "--predictions", "--json")
    assert json.loads(result.output) == small
    lines = result.output.splitlines()
    assert len(lines) == len(small) + 2 + sum(len(v) + 1 for v in small.values() if isinstance(v, list) and v)
    assert all(json.loads(line.strip().rstrip(",")) in small["nodes"] + small["edges"]
               for line in lines if line.startswith("    "))


def test_which_data_json(project: dict[str, Any]) -> None:
    doc = run_json(project, "which-data", project["models"][1])
    assert set(doc) == {"items"}
    got = [(i["name"], i["role"], i["distance"]) for i in doc["items"]]
    assert got == [("raw", "upstream", 3), ("clean", "training", 2), ("test", "evaluation", 2)]
    assert all(set(i) == NODE_KEYS | {"role", "distance"} for i in doc["items"])
    assert "training" in run_cli(project, "which-data", project["models"][1]).output


def test_diff_json(project: dict[str, Any]) -> None:
    a, b = project["models"][:2]
    doc = run_json(project, "diff", a, b)
    assert set(doc) == {"a", "b", "changes"} and doc["a"] == a and doc["b"] == b
    assert all(set(c) == {"aspect", "key", "a", "b"} for c in doc["changes"])
    assert {"aspect": "params", "key": "C", "a": "1.0", "b": "0.1"} in doc["changes"]
    assert {c["aspect"] for c in doc["changes"]} == {"params", "metrics"}
    assert run_cli(project, "diff", "clf@1", "clf@2").exit_code == 0


def test_diff_of_two_versions_of_a_dataset(project: dict[str, Any], tmp_path: Path) -> None:
    raw = tmp_path / "data" / "raw.csv"
    assert run_cli(project, "add", str(raw), "--name", "raw").exit_code == 0
    same = run_cli(project, "diff", "raw@1", "raw")  # one version so far: both name it
    assert same.exit_code == 0 and "the same version: nothing to compare" in same.output
    raw.write_text("a,b,c\n1,2,3\n")
    assert run_cli(project, "add", str(raw), "--name", "raw").exit_code == 0
    doc = run_json(project, "diff", "raw@1", "raw")
    assert set(doc) == {"a", "b", "changes"} and doc["a"] != doc["b"]
    assert {"aspect": "data", "key": "columns added", "a": None, "b": ["c"]} in doc["changes"]
    assert {"aspect": "data", "key": "rows", "a": 2, "b": 1} in doc["changes"]
    shown = run_cli(project, "diff", "raw@1", "raw").output
    assert "columns added" in shown and "rows" in shown and "['c']" not in shown


def test_blame_json_with_several_refs_after_one_flag(project: dict[str, Any], tmp_path: Path) -> None:
    bad = project["preds"][1]
    good = project["preds"][0] + project["preds"][2]
    doc = run_json(project, "blame", "--bad", *bad, "--good", *good)
    assert set(doc) == {"items"}
    top = doc["items"][0]
    assert set(top) == NODE_KEYS | {"score", "bad", "good"}
    assert top["score"] == 1.0 and top["bad"] == 2 and top["good"] == 0
    assert project["models"][1] in {i["id"] for i in doc["items"]}
    assert project["clean"] not in {i["id"] for i in doc["items"]}  # behind the good ones too
    flagged = tmp_path / "bad.txt"
    flagged.write_text("\n".join(bad) + "\n")
    assert run_json(project, "blame", "--bad", f"@{flagged}", "--good", *good) == doc
    assert run_json(project, "blame", "--bad", "request:r1-a", "--bad", "request:r1-b", "--good", *good) == doc
    assert len(run_json(project, "blame", "--bad", *bad, "--limit", "1")["items"]) == 1
    assert "score" in run_cli(project, "blame", "--bad", *bad).output


def test_runs_json_filter_sort_limit(project: dict[str, Any]) -> None:
    doc = run_json(project, "runs", "--where", "params.C >= 0.5 and status = 'finished'", "--sort", "-params.C")
    assert set(doc) == {"items"}
    assert [i["attrs"]["params"]["C"] for i in doc["items"]] == ["1.0", "0.5"]
    assert all(set(i) == NODE_KEYS for i in doc["items"])
    doc = run_json(project, "runs", "--where", f"used = '{project['clean'][:16]}'", "--sort", "metrics.accuracy",
                   "--limit", "2")
    assert [i["attrs"]["metrics"]["accuracy"] for i in doc["items"]] == pytest.approx([0.81, 0.85])
    assert len(run_json(project, "runs")["items"]) == 4
    assert "fit" in run_cli(project, "runs", "--where", "name = 'fit'").output


def test_runs_syntax_error_exits_2_and_names_the_position(project: dict[str, Any]) -> None:
    result = CliRunner().invoke(cli, ["--db", project["db"], "runs", "--where", "params.C > and"])
    assert result.exit_code == 2
    assert "position 11" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["--db", project["db"], "runs", "--where", "'; DROP TABLE nodes; --"])
    assert result.exit_code == 2
    assert len(run_json(project, "runs")["items"]) == 4  # the store is intact
    result = CliRunner().invoke(cli, ["--db", project["db"], "runs", "--sort", "bogus"])
    assert result.exit_code == 2 and "cannot sort" in result.output


def test_runs_started_at_takes_only_an_iso_time(project: dict[str, Any]) -> None:
    for bad in ("yesterday", "2026-13-01", "last week"):
        result = run_cli(project, "runs", "--where", f"started_at > '{bad}'")
        assert result.exit_code == 2 and "ISO date or time" in result.output and repr(bad) in result.output
    assert len(run_json(project, "runs", "--where", "started_at > '2000-01-01'")["items"]) == 4
    assert len(run_json(project, "runs", "--where", "started_at >= 2000")["items"]) == 4
    assert run_json(project, "runs", "--where", "started_at < '2000-01-01T10:00:00Z'")["items"] == []
    assert len(run_json(project, "runs", "--where", "started_at contains '-'")["items"]) == 4  # text: any


def test_runs_used_contains_matches_a_used_dataset_name(project: dict[str, Any]) -> None:
    names = sorted(i["name"] for i in run_json(project, "runs", "--where", "used contains 'lea'")["items"])
    assert names == ["fit", "fit", "fit"]  # they used `clean`
    assert [i["name"] for i in run_json(project, "runs", "--where", "used contains 'ra'")["items"]] == ["prep"]
    assert len(run_json(project, "runs", "--where", "not used contains 'ra'")["items"]) == 3
    assert run_json(project, "runs", "--where", "used contains 'nothing'")["items"] == []
    result = run_cli(project, "runs", "--where", "used > 'raw'")
    assert result.exit_code == 2 and "used takes = != in" in result.output


def test_insights_json(project: dict[str, Any]) -> None:
    doc = run_json(project, "insights", "accuracy")
    assert set(doc) == {"metric", "runs", "items"} and doc["metric"] == "accuracy" and doc["runs"] == 3
    assert [i["param"] for i in doc["items"]] == ["C"]  # penalty never varies
    assert set(doc["items"][0]) == {"param", "importance", "correlation"}
    assert doc["items"][0]["correlation"] == pytest.approx(1.0)
    result = CliRunner().invoke(cli, ["--db", project["db"], "insights", "loss"])
    assert result.exit_code == 1 and "at least 3 runs" in result.output


def test_status_and_check(project: dict[str, Any]) -> None:
    assert run_json(project, "status") == {"changed": [], "affected": []}
    assert run_cli(project, "status", "--check").exit_code == 0
    (project["data"] / "clean.csv").write_text("a,b\n7,7\n")
    doc = CliRunner().invoke(cli, ["--db", project["db"], "status", "--json"])
    assert doc.exit_code == 0
    parsed = json.loads(doc.output)
    assert set(parsed) == {"changed", "affected"}
    assert [c["id"] for c in parsed["changed"]] == [project["clean"]]
    assert {a["id"] for a in parsed["affected"] if a["kind"] == "model"} == set(project["models"])
    assert sum(a["count"] for a in parsed["affected"] if a["kind"] == "group") == 6
    result = CliRunner().invoke(cli, ["--db", project["db"], "status", "--check"])
    assert result.exit_code == 1 and "clean" in result.output
    result = CliRunner().invoke(cli, ["--db", project["db"], "status", "--check", "--json"])
    assert result.exit_code == 1 and json.loads(result.output)["changed"]
    shown = run_cli(project, "status").output
    assert "stale downstream" in shown and "changed on disk" in shown


def test_status_of_a_changed_file_nothing_depends_on_shows_no_empty_table(project: dict[str, Any]) -> None:
    extra = project["data"] / "extra.csv"
    extra.write_text("a\n1\n")
    assert run_cli(project, "add", str(extra)).exit_code == 0
    extra.write_text("a\n2\n")
    shown = run_cli(project, "status").output
    assert "changed on disk" in shown and "extra" in shown
    assert "stale downstream" not in shown.replace("0 stale downstream", "")


@pytest.mark.parametrize("args", [["trace", "nope"], ["impact", "dataset:ffff"], ["which-data", "nope"],
                                  ["diff", "clf", "nope"], ["blame", "--bad", "nope"]])
def test_unknown_references_exit_1_with_one_line(project: dict[str, Any], args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["--db", project["db"], *args])
    assert result.exit_code == 1
    assert "no node matches" in result.output and "Traceback" not in result.output


def test_user_strings_are_not_rich_markup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / ".lineage" / "lineage.db"
    with lineage.open(db) as lg:
        data = lg.log_dataset(np.arange(4), name="[red]evil[/red]")
        for i in range(3):
            with lg.start_run("[bold]r[/bold]", params={"[x]": i}) as run:
                run.log_input(data)
                run.log_metric("acc", i / 10)
    for args in (["which-data", "run:"], ["runs"], ["insights", "acc"], ["impact", "dataset:"]):
        if args[-1].endswith(":"):
            kind = args[-1][:-1]
            args = [args[0], lineage.open(db).nodes(kind=kind)[0].id]
        result = CliRunner().invoke(cli, ["--db", str(db), *args])
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())
        assert any(s in text for s in ("[red]evil[/red]", "[bold]r[/bold]", "[x]")), (args, text)


@pytest.mark.parametrize("command", ["trace", "impact", "which-data", "diff", "blame", "runs", "insights", "status"])
def test_every_query_command_has_help_with_an_example(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "--json" in result.output
