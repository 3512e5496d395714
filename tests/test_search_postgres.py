"""The PostgreSQL form of `lineage search` (for the pg backend to wire): the GIN index
DDL (lineage/store/fulltext.py POSTGRES_DDL) and the query `search_sql` builds for
``postgresql``, run on a real server against the schema's own tables, and answering
as SQLite's FTS5 does. The server's URL comes from LINEAGE_TEST_POSTGRES (CI starts
one with .ci/postgres-up); without it these tests skip, except in CI, where they fail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from lineage.query.search import parse_text_query, search_sql
from lineage.store import MIGRATIONS, fulltext

URL = os.environ.get("LINEAGE_TEST_POSTGRES")


@pytest.fixture
def pg() -> Iterator[Any]:
    if not URL:
        if os.environ.get("CI"):
            pytest.fail("LINEAGE_TEST_POSTGRES is not set, but CI must provide a PostgreSQL server")
        pytest.skip("no PostgreSQL server: run `export LINEAGE_TEST_POSTGRES=$(bash .ci/postgres-up)` first")
    psycopg = pytest.importorskip("psycopg")
    conn = psycopg.connect(URL, autocommit=True)
    schema = f"search_{os.getpid()}"
    conn.execute(f"CREATE SCHEMA {schema}")
    conn.execute(f"SET search_path TO {schema}")
    try:
        yield conn
    finally:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


def _pg(sql: str) -> str:
    """The statement as the store's PostgreSQL backend sends it (placeholders only
    outside literals: the index expression's punctuation holds a ``?``)."""
    from lineage.store.postgres import translate

    return translate(sql)


RUN_A, RUN_B, DATA = "run:" + "a" * 32, "run:" + "b" * 32, "dataset:" + "c" * 64


def _fill(conn: Any) -> None:
    first = MIGRATIONS[1]
    assert isinstance(first, str)
    for stmt in first.split(";"):  # the schema's own tables (version 1 holds all five)
        if stmt.strip():
            conn.execute(stmt)
    # (reads of params and tags skip rows of unpublished bulk batches: migration 9's table)
    conn.execute("CREATE TABLE bulk_batches (batch BIGINT PRIMARY KEY, tbl TEXT NOT NULL, event BIGINT UNIQUE, "
                 "started_at TEXT NOT NULL)")
    for stmt in fulltext.POSTGRES_DDL:
        conn.execute(stmt)
    conn.execute(_pg("INSERT INTO nodes (pk, id, kind, name, attrs, created_at, event) VALUES "
                     "(1, ?, 'run', 'random_forest_fit', '{}', 't', 1), (2, ?, 'run', 'boosting_fit', '{}', 't', 2), "
                     "(3, ?, 'dataset', 'retail_loans', '{}', 't', 3)"), (RUN_A, RUN_B, DATA))
    conn.execute(_pg("INSERT INTO params (pk, run, key, value, event) VALUES (1, ?, 'penalty', 'l2', 1), "
                     "(2, ?, 'penalty', 'l1', 2)"), (RUN_A, RUN_B))
    conn.execute(_pg("INSERT INTO tags (pk, run, key, value, event) VALUES (1, ?, 'team', 'risk', 1)"), (RUN_A,))
    conn.execute(_pg("INSERT INTO annotations (pk, node, field, text, author, at, event) VALUES "
                     "(1, ?, 'intended_use', 'credit scoring for retail customers', 'x', 't', 4)"), (RUN_A,))
    conn.execute(_pg("INSERT INTO aliases (pk, node, name, event) VALUES (1, ?, 'rf_baseline', 5)"), (RUN_A,))


def _search(conn: Any, text: str, **kw: Any) -> list[str]:
    sql, params, _, _ = search_sql("postgresql", parse_text_query(text), **kw)
    return [r[0] for r in conn.execute(_pg(sql), params).fetchall()]


def test_postgres_search_answers_as_sqlite_does(pg: Any) -> None:
    _fill(pg)
    assert _search(pg, "forest") == [RUN_A]
    assert _search(pg, "rand") == [RUN_A]  # a prefix
    assert _search(pg, "l2") == [RUN_A]
    assert _search(pg, "forest l2") == [RUN_A] and _search(pg, "forest l1") == []
    assert set(_search(pg, "fit")) == {RUN_A, RUN_B}
    assert _search(pg, "fit -customers") == [RUN_B]
    assert _search(pg, '"credit scoring"') == [RUN_A] and _search(pg, '"scoring credit"') == []
    assert set(_search(pg, "retail")) == {RUN_A, DATA}
    assert _search(pg, "retail", kind="dataset") == [DATA]
    assert _search(pg, "baseline") == [RUN_A]  # an alias
    assert set(_search(pg, "growth OR risk OR loans")) == {RUN_A, DATA}
    assert len(_search(pg, "fit", limit=1)) == 1
    # a name outranks a param: random_forest_fit's name and boosting_fit's name both
    # match `fit`; a param-only match ranks below a name match
    pg.execute(_pg("INSERT INTO params (pk, run, key, value, event) VALUES (3, ?, 'model', 'forest', 6)"), (RUN_B,))
    assert _search(pg, "forest") == [RUN_A, RUN_B]


def test_postgres_splits_words_where_fts5_does(pg: Any) -> None:
    """PostgreSQL's parser keeps a file name, a path and a number whole, where FTS5
    splits them at punctuation: `search train` found no train.csv on a team store."""
    _fill(pg)
    rows = [("train.csv", "data/train.csv"), ("lr", "0.1"), ("alpha", "1e-05"), ("model", "model-8"),
            ("uri", "s3://bucket/x.parquet"), ("owner", "ana@example.com")]
    for pk, (key, value) in enumerate(rows, 10):
        pg.execute(_pg("INSERT INTO params (pk, run, key, value, event) VALUES (?, ?, ?, ?, 7)"),
                   (pk, RUN_B, key, value))
    for text in ("train", "csv", '"train.csv"', '"data/train.csv"', "0.1", '"1e-05"', "model-8", "parquet",
                 "bucket", "example"):
        assert _search(pg, text) == [RUN_B], text
    assert _search(pg, "model-9") == []


def test_postgres_uses_the_gin_indexes(pg: Any) -> None:
    _fill(pg)
    pg.execute("SET enable_seqscan = off")  # tiny tables: make the planner show it can use them
    sql, params, _, _ = search_sql("postgresql", parse_text_query("forest"))
    plan = "\n".join(r[0] for r in pg.execute("EXPLAIN " + _pg(sql), params).fetchall())
    for index in ("nodes_fts", "aliases_fts", "annotations_fts", "params_fts", "tags_fts"):
        assert index in plan
