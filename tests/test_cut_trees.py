"""A tree cut by --max-nodes says, under each node, what is hidden below THAT node
(FINDINGS #8: under a run that made one model the tree said "generated 2,895 more
models", the store-wide count of hidden models), and its footer totals the rest."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lineage
from lineage.cli import cli

RUNS = 8
PREDICTIONS = 3  # per model


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """One dataset every run trains on; each run makes one model with 3 predictions."""
    from sklearn.dummy import DummyClassifier

    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw.csv").write_text("a,b\n1,2\n3,4\n")
    db = tmp_path / "lineage.db"
    lg = lineage.open(db)
    raw = lg.log_dataset(tmp_path / "raw.csv", name="raw")
    for i in range(RUNS):
        with lg.start_run(f"train-{i}") as run:
            run.log_input(raw)
            model = run.log_model(DummyClassifier(strategy="constant", constant=i).fit([[0], [1]], [i, i]), f"clf{i}")
        lg.log_predictions(model, np.zeros((PREDICTIONS, 1)), [i] * PREDICTIONS)
    lg.close()
    return str(db)


def tree(db: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--db", db, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("args", [("impact", "raw"), ("dag", "raw", "--downstream")])
@pytest.mark.parametrize("max_nodes", [4, 8, 12])
def test_each_more_line_counts_what_is_hidden_below_its_own_node(hub: str, args: tuple[str, ...], max_nodes: int) -> None:
    out = tree(hub, *args, "--max-nodes", str(max_nodes))
    # each run generated one model: no line under a run may claim more
    generated = [int(n.replace(",", "")) for n in re.findall(r"generated ([\d,]+) more model", out)]
    assert set(generated) <= {1}, out
    if max_nodes > 4:  # (with 4 no run is kept: "8 more runs" under raw)
        assert generated, out
    # and each model's hidden predictions are its own three
    derived = [int(n.replace(",", "")) for n in re.findall(r"derived into ([\d,]+) more prediction", out)]
    assert set(derived) <= {PREDICTIONS}, out
    # the footer keeps the totals right: shown + hidden = everything downstream of raw
    foot = re.search(r"… ([\d,]+) more nodes not shown \(max_nodes=\d+\): (.*)", out)
    assert foot, out
    hidden = int(foot.group(1).replace(",", ""))
    per_kind = {kind: int(n.replace(",", "")) for n, kind in re.findall(r"(\d[\d,]*) ([a-z]+)", foot.group(2))}
    assert sum(per_kind.values()) == hidden
    shown_runs = len(re.findall(r"\brun:[0-9a-f]{12}", out))
    shown_models = len(set(re.findall(r"\bmodel:[0-9a-f]{8}", out)))
    assert shown_runs + per_kind.get("runs", per_kind.get("run", 0)) == RUNS
    # (the root's own id is printed twice: the tree's top line and the summary line)
    assert shown_models + per_kind.get("models", per_kind.get("model", 0)) == RUNS
    # the drawing stays small: one line per kept node, and a leaf per hidden neighbour
    assert len(out.splitlines()) <= 3 * max_nodes + 4
