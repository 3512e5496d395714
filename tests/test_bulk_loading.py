"""How a bulk write loads (lineage/store/bulk.py, `_load`; issue 16): the WAL is
copied into the database while the rows load, not all at the publish; the loading
connection's settings come back; durability ``full`` still syncs the publish."""

from __future__ import annotations

import threading
import time
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
    return [t for t in threading.enumerate() if t.name.startswith(("lineage-checkpoint", "lineage-rowdigest"))]


def test_the_wal_is_copied_into_the_database_while_a_bulk_write_loads(store_path: Path) -> None:
    s = _store(store_path)
    s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # (start from an empty WAL)
    seen: dict[str, Any] = {}

    def look() -> None:  # 8 chunks loaded, nothing published: the database file must grow meanwhile
        start = seen["start"]
        deadline = time.monotonic() + 20
        while store_path.stat().st_size <= start and time.monotonic() < deadline:
            time.sleep(0.01)
        seen["grew"] = store_path.stat().st_size > start
        seen["visible"] = Store(store_path, actor=ACTOR).prediction_summary(MODEL)["count"]

    seen["start"] = store_path.stat().st_size
    s.write_bulk("predictions", {"model": MODEL}, "predictions",
                 _prediction_rows(MODEL, 12_000, during=look, at=8_500), chunk=1_000)
    assert seen == {"start": seen["start"], "grew": True, "visible": 0}
    assert s.prediction_summary(MODEL)["count"] == 12_000
    assert s.verify().ok
    assert not _loading_threads()  # the checkpointing thread (and the helper's) ended with the write


def test_a_bulk_write_takes_its_size_on_disk_once(store_path: Path) -> None:
    # (before: the whole write sat in the WAL until the publish copied it into the
    # database file, so the store briefly took twice the write's size)
    s = _store(store_path)
    s.write_bulk("predictions", {"model": MODEL}, "predictions", _prediction_rows(MODEL, 40_000), chunk=2_000)
    wal = store_path.with_name(store_path.name + "-wal").stat().st_size
    assert wal < 0.8 * store_path.stat().st_size
    assert s.verify().ok


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
