"""RELATIONS (DESIGN.md §1) hold on every write: an edge whose relation does not fit
the kinds at its ends is refused in one line, and nothing of its write is kept."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

import lineage
from lineage.errors import WriteRefusedError
from lineage.model import KINDS, RELATIONS, Edge, make_id, relation_problem
from lineage.store import Store


def _id(kind: str, digit: str = "a") -> str:
    return make_id(kind, digit * 32)


def test_relation_problem_is_the_relations_table() -> None:
    for rel, src, dst in itertools.product(RELATIONS, KINDS, KINDS):
        fits = src in RELATIONS[rel][0] and dst in RELATIONS[rel][1]
        problem = relation_problem(_id(src), _id(dst, "b"), rel)
        assert (problem is None) == fits, (rel, src, dst)
        assert problem is None or ("\n" not in problem and rel in problem)


def test_an_unknown_relation_is_named() -> None:
    assert "unknown relation 'caused'" in (relation_problem(_id("run"), _id("dataset"), "caused") or "")


def test_a_used_edge_from_a_dataset_to_a_run_is_refused(store: Store) -> None:
    before = store.head()
    with pytest.raises(WriteRefusedError) as info:
        store.add_edges([Edge(_id("run"), _id("dataset"), "used", "training"),  # fine, but in the same write
                         Edge(_id("dataset"), _id("run"), "used", "training")])
    assert str(info.value).startswith("refused: a 'used' edge goes from run to ")
    assert "\n" not in str(info.value) and info.value.exit_code == 1
    assert store.head() == before  # the whole write rolled back: no event, no edge
    assert store.conn.execute("SELECT COUNT(*) FROM edges").fetchone()[0] == 0


def test_add_node_refuses_a_bad_edge_and_keeps_no_node(store: Store) -> None:
    ds = lineage.Node(_id("dataset"), "dataset", "train", {})
    with pytest.raises(WriteRefusedError, match="was_generated_by"):
        store.add_node(ds, edges=[Edge(ds.id, _id("agent"), "was_generated_by")])
    assert store.get_node(ds.id) is None


def test_every_writer_of_the_quickstart_writes_fitting_edges(tmp_path: Path) -> None:
    """Tracking, promotion, predictions, `lineage run` and a PROV round trip leave only
    edges that fit RELATIONS (the refusal is in Store.write, so any that did not would
    have failed there; this reads what is stored)."""
    from conftest import build_quickstart

    out = build_quickstart(tmp_path / "qs")
    db = next(out.rglob("lineage.db"))
    with sqlite3.connect(db) as conn:
        edges = conn.execute("SELECT src, dst, rel FROM edges").fetchall()
    assert edges
    assert [e for e in edges if relation_problem(*e)] == []

