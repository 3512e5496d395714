"""Full-text search (`lineage search`, `lg.search`): names, aliases, annotations,
params and tags through the FTS5 index (lineage/store/fulltext.py), brought up to date
when searched (tests/test_search_catchup.py), backfilled by a migration, outside the
ledger, and emptied of erased words."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lineage
from lineage.cli import cli
from lineage.errors import InvalidInputError
from lineage.query.search import fts5_match, parse_text_query, tsquery
from lineage.store import RECORD_TABLES, SCHEMA_VERSION, Store, fulltext

BACKENDS = ("sqlite", "postgres")  # conftest runs the store fixtures on both


def _fill(lg: lineage.Lineage, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "loans.csv").write_text("a,b\n1,2\n")
    data = lg.log_dataset(tmp_path / "loans.csv", name="retail_loans")
    with lg.start_run("random_forest_fit", params={"penalty": "l2", "criterion": "gini"}, tags={"team": "risk"}) as a:
        a.log_input(data)
    with lg.start_run("boosting_fit", params={"penalty": "l1"}, tags={"team": "growth"}) as b:
        pass
    lg.annotate(a.id, "intended_use", "credit scoring for retail customers")
    return {"data": data.id, "forest": a.id, "boost": b.id}


def names(hits: list) -> list[str | None]:
    return [h.node.name for h in hits]


def test_search_finds_names_params_tags_and_annotations(lg: lineage.Lineage, tmp_path: Path) -> None:
    ids = _fill(lg, tmp_path)
    assert names(lg.search("forest")) == ["random_forest_fit"]
    assert names(lg.search("rand")) == ["random_forest_fit"]  # the start of a word
    hit = lg.search("l2")[0]
    assert hit.node.id == ids["forest"] and hit.matches == [{"field": "param:penalty", "text": "l2"}]
    assert names(lg.search("growth")) == ["boosting_fit"]
    assert lg.search("customers")[0].matches == [
        {"field": "annotation:intended_use", "text": "credit scoring for retail customers"}]
    # words match anywhere in what is recorded about one node, not in one row
    assert names(lg.search("forest l2")) == ["random_forest_fit"]
    assert names(lg.search("forest l1")) == []
    assert set(names(lg.search("fit"))) == {"random_forest_fit", "boosting_fit"}


def test_phrases_or_exclusion_kind_and_limit(lg: lineage.Lineage, tmp_path: Path) -> None:
    ids = _fill(lg, tmp_path)
    assert names(lg.search('"credit scoring"')) == ["random_forest_fit"]
    assert names(lg.search('"scoring credit"')) == []  # a phrase keeps its order
    assert set(names(lg.search("growth OR gini"))) == {"random_forest_fit", "boosting_fit"}
    assert names(lg.search("fit -customers")) == ["boosting_fit"]  # excluded by its annotation
    # `retail` is in the dataset's name and in the run's annotation
    assert {h.node.id for h in lg.search("retail")} == {ids["data"], ids["forest"]}
    assert [h.node.id for h in lg.search("retail", kind="dataset")] == [ids["data"]]
    assert len(lg.search("fit", limit=1)) == 1


def test_a_request_id_finds_its_prediction_first(lg: lineage.Lineage, store_path: Path) -> None:
    import numpy as np
    from sklearn.dummy import DummyClassifier

    with lg.start_run("fit") as run:
        model = run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "req_model")
    preds = lg.log_predictions(model, np.zeros((3, 1)), [0, 1, 0], request_ids=["req-0001", "req-0002", "req-0003"])
    hits = lg.search("req-0003")
    assert [h.node.id for h in hits][:1] == [preds[2]]
    assert hits[0].matches == [{"field": "request_id", "text": "req-0003"}]
    assert hits[0].score > max((h.score for h in hits[1:]), default=0.0)
    assert [h.node.id for h in lg.search('"req-0001"', kind="prediction")] == [preds[0]]
    assert lg.search("req-0003", kind="model") == []  # the kind filter holds
    assert [h.node.id for h in lg.search("req-0003", limit=1)] == [preds[2]]
    assert lg.search("req-000", kind="prediction") == []  # exact, not a prefix
    doc = json.loads(CliRunner().invoke(cli, ["--db", str(store_path), "search", "req-0002", "--json"]).stdout)
    assert doc["items"][0]["id"] == preds[1]


def test_a_name_match_ranks_above_a_param_match(lg: lineage.Lineage) -> None:
    with lg.start_run("other", params={"model": "forest"}):
        pass
    with lg.start_run("forest"):
        pass
    for i in range(5):  # enough rows for bm25's document frequencies to mean something
        with lg.start_run(f"filler{i}", params={"x": str(i)}):
            pass
    hits = lg.search("forest")
    assert names(hits) == ["forest", "other"] and hits[0].score > hits[1].score


def test_new_writes_are_searchable_at_once_and_erased_words_leave_the_files(lg: lineage.Lineage, tmp_path: Path) -> None:
    ids = _fill(lg, tmp_path)
    lg.annotate(ids["boost"], "limitations", "zebulonqx the analyst")
    assert names(lg.search("zebulonqx")) == ["boosting_fit"]
    lg.redact(ids["boost"], reason="GDPR request 7")
    assert lg.search("zebulonqx") == [] and lg.search("boosting") == []
    assert lg.verify().ok
    if lg.store.dialect == "sqlite":  # (a server's files are the server's: docs/postgres.md)
        raw = b"".join(p.read_bytes() for p in lg.db_path.parent.glob("lineage.db*"))
        assert b"zebulonqx" not in raw and b"boosting" not in raw
    assert fulltext.check(lg.store) == []


@pytest.mark.sqlite_only  # (SQLite's FTS5 tables; PostgreSQL's index is maintained by the server)
def test_the_index_is_not_evidence(lg: lineage.Lineage, tmp_path: Path) -> None:
    _fill(lg, tmp_path)
    assert not any(t.endswith("_fts") for t in RECORD_TABLES)
    # damaging the index is not tampering with the record: verify still passes
    lg.store.conn.execute("INSERT INTO nodes_fts (rowid, name) VALUES (999, 'ghost')")
    assert lg.verify().ok
    assert fulltext.check(lg.store) == ["nodes_fts"]
    fulltext.rebuild(lg.store)
    assert fulltext.check(lg.store) == [] and lg.search("ghost") == []


@pytest.mark.sqlite_only  # (SQLite's FTS5 tables; PostgreSQL's index is maintained by the server)
def test_an_older_store_gets_its_index_backfilled_and_still_verifies(store_path: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lg = lineage.open(store_path)
    _fill(lg, tmp_path)
    lg.close()
    # what version 7 wrote: no FTS tables, no triggers
    conn = sqlite3.connect(store_path)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    for table in fulltext.SOURCES:
        conn.execute(f"DROP TABLE {table}_fts")
    conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    old = Store(store_path, actor="agent:" + "0" * 64)
    assert old.schema_version() == SCHEMA_VERSION and fulltext.installed(old)
    old.close()
    lg = lineage.open(store_path)
    assert names(lg.search("forest")) == ["random_forest_fit"]  # backfilled
    assert lg.search("customers")[0].node.name == "random_forest_fit"
    assert lg.verify().ok
    with lg.start_run("after_upgrade"):
        pass
    assert names(lg.search("upgrade")) == ["after_upgrade"]  # kept in step since
    assert lg.verify().ok
    lg.close()


@pytest.mark.parametrize("text", ["", "   ", "***", "-forest", "OR forest", "forest OR", "forest OR OR l2", '""'])
def test_a_query_with_nothing_to_look_for_is_one_line(lg: lineage.Lineage, text: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        lg.search(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", ['NEAR(a b)', 'name:forest', '"unbalanced', 'a AND', '^start', 'x*y', "it's", "((forest"])
def test_fts5_syntax_in_the_text_is_searched_for_not_run(lg: lineage.Lineage, tmp_path: Path, text: str) -> None:
    _fill(lg, tmp_path)
    assert isinstance(lg.search(text), list)  # no engine error, whatever FTS5 would make of it


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=0, max_size=40))
def test_any_text_either_searches_or_says_why_not(lg: lineage.Lineage, text: str) -> None:
    try:
        hits = lg.search(text)
    except InvalidInputError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(hits, list)


def test_the_query_compiles_alike_for_both_backends() -> None:
    q = parse_text_query('random_forest "credit scoring" OR loans -boost')
    assert [fts5_match(g) for g in q.groups] == ['"random forest"*', '"credit scoring" OR "loans"*']
    assert fts5_match(q.exclude) == '"boost"*'
    assert [tsquery(g) for g in q.groups] == ["('random' <-> 'forest':*)", "('credit' <-> 'scoring') | ('loans':*)"]


def test_cli_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / ".lineage" / "lineage.db"
    lg = lineage.open(db)
    ids = _fill(lg, tmp_path)
    lg.close()
    runner = CliRunner()
    out = runner.invoke(cli, ["--db", str(db), "search", "forest", "--json"], catch_exceptions=False)
    assert out.exit_code == 0
    doc = json.loads(out.output)
    assert [i["id"] for i in doc["items"]] == [ids["forest"]]
    item = doc["items"][0]
    assert {"id", "kind", "name", "created_at", "attrs", "score", "matches"} <= set(item)
    table = runner.invoke(cli, ["--db", str(db), "search", "credit", "scoring", "--kind", "run"], catch_exceptions=False)
    assert table.exit_code == 0 and "random_forest_fit" in table.output
    none = runner.invoke(cli, ["--db", str(db), "search", "nothingmatchesthis"], catch_exceptions=False)
    assert none.exit_code == 0 and "nothing matches" in none.output
    excluded = runner.invoke(cli, ["--db", str(db), "search", "fit", "-customers", "--json"], catch_exceptions=False)
    assert excluded.exit_code == 0 and [i["name"] for i in json.loads(excluded.output)["items"]] == ["boosting_fit"]
    bad = runner.invoke(cli, ["--db", str(db), "search", "OR"])
    assert bad.exit_code == 2 and "OR needs a word" in bad.output and "Traceback" not in bad.output
