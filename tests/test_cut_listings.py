"""A listing's table that leaves rows out says how many and how to see them (FINDINGS
#4, #10): `ls` and `runs` show `cli.TABLE_LIMIT` rows by default (their --json still
lists all), `search` its --limit; equal search scores come newest first."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import lineage
from lineage import cli as cli_module
from lineage.cli import cli

RUNS = 8


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """8 runs all named "fit", each reading one dataset and making a model
    with 2 predictions; the tables' default cut lowered to 5 rows."""
    from sklearn.dummy import DummyClassifier

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_module, "TABLE_LIMIT", 5, raising=False)  # (raising: the test must fail on what it checks)
    (tmp_path / "raw.csv").write_text("a,b\n1,2\n3,4\n")
    db = tmp_path / "lineage.db"
    lg = lineage.open(db)
    raw = lg.log_dataset(tmp_path / "raw.csv", name="raw")
    runs = []
    for i in range(RUNS):
        with lg.start_run("fit", params={"i": i}) as run:
            run.log_input(raw)
            model = run.log_model(DummyClassifier(strategy="constant", constant=i).fit([[0], [1]], [i, i]), f"clf{i}")
        runs.append(run.id)
        lg.log_predictions(model, np.zeros((2, 1)), [i, i])
    lg.close()
    return {"db": str(db), "runs": runs}


def invoke(store: dict[str, Any], *args: str) -> str:
    result = CliRunner().invoke(cli, ["--db", store["db"], *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def rows(out: str) -> list[str]:
    return re.findall(r"^│ (\w+:[0-9a-f]+)", out, flags=re.MULTILINE)


def same(shown: list[str], ids: list[str]) -> bool:
    """Whether the table's (short) ids name ``ids``, in that order."""
    return len(shown) == len(ids) and all(i.startswith(s) for s, i in zip(shown, ids))


def footer(out: str) -> tuple[int, int, int] | None:
    m = re.search(r"… ([\d,]+) more not shown \(([\d,]+) of ([\d,]+)\): use --limit N", out)
    return tuple(int(g.replace(",", "")) for g in m.groups()) if m else None  # type: ignore[return-value]


def test_ls_shows_the_default_rows_and_says_how_many_more(store: dict[str, Any]) -> None:
    every = json.loads(invoke(store, "ls", "--json"))["items"]  # --json: all, as before
    assert len(every) > 5 and not any(n["kind"] == "prediction" for n in every)
    out = invoke(store, "ls")
    assert same(rows(out), [n["id"] for n in every[:5]])
    assert footer(out) == (len(every) - 5, 5, len(every))
    assert "or --json for all" in out
    assert f"({2 * RUNS} predictions not listed: lineage ls --kind prediction)" in out


def test_ls_with_a_limit_or_a_kind_counts_what_it_left_out(store: dict[str, Any]) -> None:
    out = invoke(store, "ls", "--kind", "run", "--limit", "3")
    assert same(rows(out), store["runs"][::-1][:3])
    assert footer(out) == (RUNS - 3, 3, RUNS)
    out = invoke(store, "ls", "--kind", "prediction", "--limit", "4")
    assert footer(out) == (2 * RUNS - 4, 4, 2 * RUNS)
    assert "--json for all" not in out  # (--json lists 100 predictions unless --limit)
    assert footer(invoke(store, "ls", "--kind", "dataset")) is None  # nothing cut: no footer
    assert "predictions not listed" not in invoke(store, "ls", "--kind", "model")


def test_runs_shows_the_default_rows_and_counts_the_matches(store: dict[str, Any]) -> None:
    every = json.loads(invoke(store, "runs", "--json"))["items"]
    assert [n["id"] for n in every] == store["runs"][::-1]  # --json: all, as before
    out = invoke(store, "runs")
    assert same(rows(out), store["runs"][::-1][:5])
    assert footer(out) == (RUNS - 5, 5, RUNS)
    out = invoke(store, "runs", "--where", "params.i >= 2", "--limit", "2")
    assert footer(out) == (RUNS - 2 - 2, 2, RUNS - 2)
    assert footer(invoke(store, "runs", "--where", "params.i >= 6")) is None


def test_search_says_how_many_it_left_out_and_lists_equal_scores_newest_first(store: dict[str, Any]) -> None:
    out = invoke(store, "search", "fit", "--kind", "run", "--limit", "3")
    assert footer(out) == (RUNS - 3, 3, RUNS)
    assert same(rows(out), store["runs"][::-1][:3])  # every run is named "fit": newest first
    hits = json.loads(invoke(store, "search", "fit", "--kind", "run", "--json", "--limit", "100"))["items"]
    assert [h["id"] for h in hits] == store["runs"][::-1]
    assert footer(invoke(store, "search", "fit", "--kind", "run")) is None
