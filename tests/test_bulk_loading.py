"""How a bulk write loads (lineage/store/bulk.py, `_load`; issue 16): the loading
connection's settings come back as they were, and the helper's threads end with the
write, whether it succeeds or fails."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from test_reliability import ACTOR, _prediction_rows

from lineage.model import Node, make_id
from lineage.store import Store

MODEL = make_id("model", "d4" * 32)


def _store(path: Path) -> Store:
    s = Store(path, actor=ACTOR)
    s.add_node(Node(MODEL, "model", "clf", {}))
    return s


def _loading_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("lineage-rowdigest")]


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_a_bulk_write_gives_its_connection_back_as_it_found_it(store_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                durability: str) -> None:
    monkeypatch.setenv("LINEAGE_DURABILITY", durability)
    s = _store(store_path)
    before = [s.conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("synchronous", "wal_autocheckpoint")]
    assert before[0] == (2 if durability == "full" else 1)
    s.write_bulk("predictions", {"model": MODEL}, "predictions", _prediction_rows(MODEL, 6_000), chunk=1_000)
    assert [s.conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("synchronous", "wal_autocheckpoint")] == before
    assert s.verify().ok


def test_a_failed_bulk_write_ends_its_loading_threads(store_path: Path) -> None:
    s = _store(store_path)

    def rows() -> Any:
        yield from _prediction_rows(MODEL, 9_000)
        raise ValueError("the caller's data ran out")

    with pytest.raises(ValueError, match="ran out"):
        s.write_bulk("predictions", {}, "predictions", rows(), chunk=1_000)
    assert not _loading_threads()
    assert s.conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 0
    assert s.verify().ok
