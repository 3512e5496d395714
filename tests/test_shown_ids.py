"""Every id a human-readable command prints works as a reference: pasted into
`lineage show` it names exactly that node (FINDINGS #3: a batch of predictions
shares its leading time digits, so a 12-digit cut named the whole batch)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import lineage
from lineage.cli import cli

SHOWN_ID = re.compile(r"\b(prediction|model|run|dataset):[0-9a-f]{8,}")


@pytest.fixture
def batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """One model and 300 predictions logged in one call (one batch: one time prefix)."""
    from sklearn.dummy import DummyClassifier

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.csv").write_text("a,b\n1,2\n3,4\n")
    db = tmp_path / "lineage.db"
    lg = lineage.open(db)
    train = lg.log_dataset(tmp_path / "train.csv", name="train")
    with lg.start_run("fit") as run:
        run.log_input(train)
        model = run.log_model(DummyClassifier(strategy="constant", constant=1).fit([[0], [1]], [1, 1]), "clf")
    ids = lg.log_predictions(model, np.zeros((300, 1)), [1] * 300)
    lg.close()
    return {"db": str(db), "model": model.id, "preds": list(ids)}


def run_cli(batch: dict[str, Any], *args: str) -> str:
    result = CliRunner().invoke(cli, ["--db", batch["db"], *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def shown_ids(text: str) -> list[str]:
    return [m.group(0) for m in SHOWN_ID.finditer(text)]


def resolves_to(batch: dict[str, Any], ref: str) -> str:
    return json.loads(run_cli(batch, "show", ref, "--json"))["id"]


def test_the_batch_shares_its_leading_digits(batch: dict[str, Any]) -> None:
    # (the premise: a fixed 12-digit cut cannot tell these apart)
    assert len({p.split(":", 1)[1][:12] for p in batch["preds"]}) < 5


@pytest.mark.parametrize("args", [
    ("ls", "--kind", "prediction"),
    ("ls", "--kind", "prediction", "--limit", "300"),
    ("dag", "MODEL", "--downstream", "--all"),
    ("dag", "MODEL", "--downstream", "--all", "-o", "tree.mmd"),
])
def test_every_prediction_id_shown_resolves_to_that_prediction(batch: dict[str, Any], args: tuple[str, ...]) -> None:
    out = run_cli(batch, *(batch["model"] if a == "MODEL" else a for a in args))
    if "-o" in args:  # a diagram file: its labels are what a reader copies
        out = Path(args[-1]).read_text().replace("#58;", ":")  # (mermaid's escape of ":")
    shown = [i for i in shown_ids(out) if i.startswith("prediction:")]
    assert len(shown) >= 50, out
    assert len(set(shown)) == len(shown)  # as many distinct ids as predictions listed
    for ref in shown[:: max(1, len(shown) // 25)]:  # (a sample: one `show` each)
        found = resolves_to(batch, ref)
        assert found == ref or found.startswith(ref)
        assert found in batch["preds"]


def test_a_traced_prediction_id_pastes_back(batch: dict[str, Any]) -> None:
    pred = batch["preds"][137]
    out = run_cli(batch, "trace", pred)
    for ref in set(shown_ids(out)):
        found = resolves_to(batch, ref)
        assert found.startswith(ref)
    assert pred in shown_ids(out)


def test_runs_started_in_one_millisecond_show_ids_that_paste_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's id starts with the millisecond it started: a sweep started in one batch
    printed five rows of the same ``run:01a2430662d7`` in `ls` and `runs`."""
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "lineage.db"
    with lineage.open(db) as lg, lg.batch():
        runs = []
        for c in range(20):  # (several start in one millisecond, however busy the machine)
            with lg.start_run(f"sweep-{c}") as run:
                runs.append(run.id)
    target = {"db": str(db)}
    for args in (("ls", "--kind", "run"), ("runs",)):
        shown = [i for i in shown_ids(run_cli(target, *args)) if i.startswith("run:")]
        assert len(shown) == len(set(shown)) == len(runs), shown
        assert sorted(resolves_to(target, ref) for ref in shown) == sorted(runs)
