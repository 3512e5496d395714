"""The contract as docs/DESIGN.md states it: names and shapes a user writes from it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

from lineage.cli import cli


def _model_with_predictions(lg, tmp_path: Path, n: int = 4):
    data = tmp_path / "train.csv"
    data.write_text("a,y\n0,0\n1,1\n2,1\n3,0\n")
    train = lg.log_dataset(str(data), name="train")
    X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 1, 1, 0])
    with lg.start_run("fit", params={"C": 1.0}) as run:
        run.log_input(train)
        run.log_metric("accuracy", 0.9)
        model = run.log_model(LogisticRegression().fit(X, y), "clf")
    Xn = np.arange(n, dtype=float).reshape(-1, 1)
    ids = lg.log_predictions(model, Xn, np.zeros(n, dtype=int), request_ids=[f"r{i}" for i in range(n)])
    return train, model, ids


def test_list_results_have_to_dict_with_items(lg, tmp_path):
    # "Every result type has .to_dict() returning exactly this shape; lists are wrapped
    # as {"items": [...]}" - and they still are lists.
    train, model, ids = _model_with_predictions(lg, tmp_path)
    for result in (lg.runs(), lg.which_data(model), lg.blame(ids[:2]), lg.history("train"),
                   lg.nodes(kind="dataset")):
        assert isinstance(result, list) and result
        doc = result.to_dict()
        assert list(doc) == ["items"] and len(doc["items"]) == len(result)
        assert {"id", "kind", "name", "created_at", "attrs"} <= set(doc["items"][0])
    use = lg.which_data(model).to_dict()["items"][0]
    assert {"role", "distance"} <= set(use)
    suspect = lg.blame(ids[:2]).to_dict()["items"][0]
    assert {"score", "bad", "good"} <= set(suspect)


def test_blame_takes_one_reference_as_well_as_a_list(lg, tmp_path):
    _, _, ids = _model_with_predictions(lg, tmp_path)
    assert [s.node.id for s in lg.blame(ids[0])] == [s.node.id for s in lg.blame([ids[0]])]
    assert lg.blame("request:r0", good="request:r1") == lg.blame(["request:r0"], good=["request:r1"])


def test_folded_group_ids_are_kind_and_count(lg, tmp_path):
    # {"id": "group:<kind>:<n>", "kind": "group", "of": kind, "count": n}, from every
    # view that folds: the query's prediction groups, the diagram's folds, the overview
    from lineage import render

    _, model, _ = _model_with_predictions(lg, tmp_path, n=6)
    folded = render.fold(lg.impact(model, include_predictions=True), fold=True)
    overview = render.overview(lg.store)
    for sub in (lg.impact(model), folded, overview):
        groups = [n for n in sub.to_dict()["nodes"] if n["kind"] == "group"]
        assert groups
        for g in groups:
            assert re.fullmatch(rf"group:{g['of']}:{g['count']}(:\d+)?", g["id"]), g
            assert set(g) == {"id", "kind", "of", "count"}, g  # "exactly this shape"
    ids = [n["id"] for n in overview.to_dict()["nodes"]]
    assert len(ids) == len(set(ids))


def test_cli_impact_include_predictions_and_annotate_positional(lg, tmp_path):
    _, model, _ = _model_with_predictions(lg, tmp_path, n=3)
    db = str(lg.db_path)
    runner = CliRunner()
    res = runner.invoke(cli, ["--db", db, "impact", model.id, "--include-predictions", "--json"])
    assert res.exit_code == 0, res.output
    kinds = [n["kind"] for n in json.loads(res.output)["nodes"]]
    assert kinds.count("prediction") == 3 and "group" not in kinds
    # lg.annotate(ref, field, text) has the same order on the command line
    res = runner.invoke(cli, ["--db", db, "annotate", "clf", "intended_use", "Credit pre-screening"])
    assert res.exit_code == 0, res.output
    assert lg.annotations(model)["intended_use"]["text"] == "Credit pre-screening"
    res = runner.invoke(cli, ["--db", db, "annotate", "clf", "intended_use"])
    assert res.exit_code == 2


def test_runs_where_syntax_error_is_usage_of_runs(lg, tmp_path):
    _model_with_predictions(lg, tmp_path)
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "runs", "--where", "params.C >"])
    assert res.exit_code == 2
    assert "cli runs [OPTIONS]" in res.output and "position 10" in res.output
