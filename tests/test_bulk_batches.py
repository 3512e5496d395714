"""Bulk writes loaded in short transactions as batches no read sees until one short
publish step (issue 8: writers never wait long, a bulk write stays whole; issue 16:
no staging copy). See lineage/store/bulk.py and docs/integrity.md."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import child_status
from test_reliability import ACTOR, _prediction_rows

import lineage
from lineage.errors import NodeNotFoundError
from lineage.model import Node, make_id
from lineage.query import rows as query_rows
from lineage.query.serving import prediction_counts
from lineage.store import Store, published

MODEL = make_id("model", "d4" * 32)
DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(autouse=True)
def _every_write_batched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small writes skip batching (one short transaction); these tests write small
    batches to look at them."""
    from lineage.store import bulk

    monkeypatch.setattr(bulk, "SMALL_ROWS", 0)


def _store(path: Path) -> Store:
    s = Store(path, actor=ACTOR)
    if not s.node_exists(MODEL):
        s.add_node(Node(MODEL, "model", "clf", {}))
    return s


def _raw_count(s: Store) -> int:
    return int(s.conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])


def test_no_read_sees_a_batch_in_flight(store_path: Path) -> None:
    s = _store(store_path)
    seen: dict[str, Any] = {}

    def look() -> None:  # half-way through: chunks of 500 are in the table, unpublished
        with lineage.open(store_path, create=False) as lg:
            other = lg.store
            pid, request = other.conn.execute("SELECT id, request_id FROM predictions LIMIT 1").fetchone()
            seen["loaded"] = _raw_count(other)
            seen["get"] = other.get_node(pid)
            seen["exists"] = other.node_exists(pid)
            seen["listed"] = other.nodes(kind="prediction")
            seen["summary"] = query_rows.prediction_summary(other, MODEL)["count"]
            seen["counts"] = prediction_counts(other, [MODEL])
            seen["overview"] = [g for g in query_rows.overview_counts(other)[0] if g[0] == "prediction"]
            for ref in (pid, pid[:20], f"request:{request}"):
                with pytest.raises(NodeNotFoundError):
                    lg.get(ref)
            with pytest.raises(NodeNotFoundError):
                lg.trace(pid)
            with pytest.raises(NodeNotFoundError):
                lg.redact(pid, reason="not yet recorded")
            seen["impact"] = lg.impact(MODEL, include_predictions=True).to_dict()["counts"].get("prediction", 0)
            seen["verify"] = lg.verify().ok

    rows = ((*r[:5], f"req{i}", r[6]) for i, r in enumerate(_prediction_rows(MODEL, 3_000, during=look, at=2_500)))
    s.write_bulk("predictions", {"model": MODEL}, "predictions", rows, chunk=500)
    assert seen.pop("loaded") >= 2_000  # loaded straight into the table...
    assert seen == {"get": None, "exists": False, "listed": [], "summary": 0, "counts": {}, "overview": [],
                    "impact": 0, "verify": True}  # ...yet seen by no read
    assert query_rows.prediction_summary(s, MODEL)["count"] == 3_000 == len(s.nodes(kind="prediction"))
    assert s.resolve("request:req7").kind == "prediction"
    s.close()


def test_concurrent_readers_never_see_a_partial_batch(store_path: Path) -> None:
    s = _store(store_path)
    counts: set[int] = set()
    stop = threading.Event()

    def read() -> None:
        r = Store(store_path, actor=ACTOR)
        while not stop.is_set():
            counts.add(query_rows.prediction_summary(r, MODEL)["count"])
            counts.add(int(r.conn.execute(f"SELECT COUNT(*) FROM predictions WHERE {published()}").fetchone()[0]))
            counts.add(prediction_counts(r, [MODEL]).get(MODEL, {}).get("count", 0))
        r.close()

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for _ in range(3):
            s.write_bulk("predictions", {}, "predictions", _prediction_rows(MODEL, 3_000), chunk=300)
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert counts <= {0, 3_000, 6_000, 9_000}, sorted(counts)
    assert s.verify().ok
    s.close()


def test_a_failed_bulk_write_leaves_nothing(store_path: Path) -> None:
    s = _store(store_path)

    def rows() -> Any:
        yield from _prediction_rows(MODEL, 2_500)
        raise ValueError("the caller's data ran out")

    with pytest.raises(ValueError, match="ran out"):
        s.write_bulk("predictions", {}, "predictions", rows(), chunk=500)
    assert _raw_count(s) == 0 and s.conn.execute("SELECT COUNT(*) FROM bulk_batches").fetchone()[0] == 0
    assert not list((store_path.parent / "locks").glob("bulk-*"))
    report = s.verify()
    assert report.ok and report.repaired == [] and s.head()[0] == 1
    s.close()


def _killed_half_way(store_path: Path) -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's lines are not traced
        try:
            child = Store(store_path, actor=ACTOR)
            child.write_bulk("predictions", {}, "predictions",
                             _prediction_rows(MODEL, 5_000, during=lambda: os.kill(os.getpid(), signal.SIGKILL), at=4_000),
                             chunk=1_000)
        finally:
            os._exit(3)
    status = child_status(pid)
    assert os.WIFSIGNALED(status)


def test_a_small_write_goes_in_one_transaction_with_its_event(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lineage.store import bulk

    monkeypatch.setattr(bulk, "SMALL_ROWS", 2_000)
    s = _store(store_path)
    seq = s.write_bulk("predictions", {}, "predictions", _prediction_rows(MODEL, 2_000))
    assert {r[0] for r in s.conn.execute("SELECT DISTINCT event FROM predictions")} == {seq}
    assert s.conn.execute("SELECT COUNT(*) FROM bulk_batches").fetchone()[0] == 0
    s.write_bulk("predictions", {}, "predictions", _prediction_rows(MODEL, 2_001))
    assert s.conn.execute("SELECT COUNT(*) FROM bulk_batches").fetchone()[0] == 1
    assert s.verify().ok and len(s.nodes(kind="prediction")) == 4_001
    s.close()


def test_the_next_bulk_write_removes_what_a_killed_one_left(store_path: Path) -> None:
    _store(store_path).close()
    _killed_half_way(store_path)
    s = Store(store_path, actor=ACTOR)
    assert _raw_count(s) >= 2_000 and s.nodes(kind="prediction") == []
    s.write_bulk("predictions", {}, "predictions", _prediction_rows(MODEL, 10))
    assert _raw_count(s) == 10 == len(s.nodes(kind="prediction"))
    assert not list((store_path.parent / "locks").glob("bulk-*"))
    report = s.verify()
    assert report.ok and report.repaired == []
    s.close()


def _two_batches(store_path: Path) -> Store:
    s = _store(store_path)
    for _ in range(2):
        s.write_bulk("predictions", {}, "predictions", _prediction_rows(MODEL, 4))
    assert s.verify().ok
    return s


@pytest.mark.parametrize("edit", ["unpublish", "repoint", "orphan", "swap_at_the_border", "move_out", "span"])
def test_edits_of_bulk_rows_and_batches_fail_verify(store_path: Path, edit: str) -> None:
    s = _two_batches(store_path)
    c = s.conn
    (b1, e1), (b2, e2) = c.execute("SELECT batch, event FROM bulk_batches ORDER BY batch").fetchall()
    pks = [r[0] for r in c.execute("SELECT pk FROM predictions ORDER BY pk")]
    if edit == "unpublish":  # a published write made to look like a killed one's leftover
        c.execute("UPDATE bulk_batches SET event = NULL WHERE batch = ?", (b1,))
    elif edit == "repoint":  # a batch claimed by another event
        c.execute("UPDATE bulk_batches SET event = 1 WHERE batch = ?", (b2,))
    elif edit == "orphan":  # rows of a batch that never was
        c.execute("INSERT INTO predictions (id, model, created_at, event) VALUES ('prediction:ff', ?, 't', -99)", (MODEL,))
    elif edit == "swap_at_the_border":  # the last row of one write and the first of the next:
        # each batch keeps its order, so only the spans their events committed to catch it
        c.execute("UPDATE predictions SET pk = -1 WHERE pk = ?", (pks[3],))
        c.execute("UPDATE predictions SET pk = ? WHERE pk = ?", (pks[3], pks[4]))
        c.execute("UPDATE predictions SET pk = ? WHERE pk = -1", (pks[4],))
    elif edit == "move_out":  # a row of a batch given an ordinary event number
        c.execute("UPDATE predictions SET event = ? WHERE pk = ?", (e2, pks[0]))
    elif edit == "span":  # the span edited in the payload
        c.execute("UPDATE events SET payload = replace(payload, '\"pks\":[', '\"pks\":[0,') WHERE seq = ?", (e1,))
    report = s.verify()
    assert not report.ok and report.first_bad is not None, (edit, report)
    s.close()


def _reference_verifier(tmp_path: Path) -> Path:
    text = (DOCS / "integrity.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- reference-verifier -->\n```python\n(.*?)^```", text, flags=re.S | re.M)
    assert m
    script = tmp_path / "verify.py"
    script.write_text(m.group(1))
    return script


def test_a_store_from_before_batches_upgrades_and_still_verifies(tmp_path: Path, store_path: Path) -> None:
    from lineage import store as store_module

    s = _store(store_path)
    with s.transaction():  # as version 7 wrote every bulk write: rows with their event number
        s.write_bulk("predictions", {}, "predictions", _prediction_rows(MODEL, 50))
    s.close()
    conn = sqlite3.connect(store_path)
    conn.execute("DROP TABLE bulk_batches")  # migration 9 (8, the search index, is re-made: replace=True)
    conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    s = Store(store_path, actor=ACTOR)
    assert s.schema_version() == store_module.SCHEMA_VERSION
    assert s.verify().ok and len(s.nodes(kind="prediction")) == 50
    _killed_half_way(store_path)  # a leftover, a published batch, ordinary rows: all at once
    s.write_bulk("predictions", {}, "predictions", _prediction_rows(MODEL, 30))
    with s.transaction():
        s.write_bulk("predictions", {}, "predictions", _prediction_rows(MODEL, 20))
    assert len(s.nodes(kind="prediction")) == 100 == query_rows.prediction_summary(s, MODEL)["count"]
    assert sorted(query_rows.prediction_summary(s, MODEL)["events"].values()) == [20, 30, 50]
    report = s.verify()
    assert report.ok, report
    count, head = s.head()
    s.close()
    _killed_half_way(store_path)  # one left in the table while the documented verifier reads
    assert _raw_count(Store(store_path, actor=ACTOR)) > 100
    out = subprocess.run([sys.executable, str(_reference_verifier(tmp_path)), str(store_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"ok: {count} events, head {head}"


def test_bulk_writes_loading_at_once_interleave_and_still_verify(tmp_path: Path, store_path: Path) -> None:
    s = _store(store_path)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            s.write_bulk("predictions", {}, "predictions", _prediction_rows(MODEL, 4_000), chunk=200)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(3)]  # one Store shared: a connection each
    for t in threads:
        t.start()
    for i in range(20):  # and ordinary writes in between
        s.write("tag", {}, {"tags": [(MODEL, "k", str(i))]})
    for t in threads:
        t.join()
    assert not errors
    events = [r[0] for r in s.conn.execute("SELECT event FROM predictions ORDER BY pk")]
    # three batches whose rows interleave along pk (43 switches in a run here; at
    # least the 2 of three writes one after the other, whatever the scheduling)
    assert len(set(events)) == 3 and sum(1 for a, b in zip(events, events[1:]) if a != b) >= 2
    report = s.verify()
    assert report.ok, report
    assert query_rows.prediction_summary(s, MODEL)["count"] == 12_000
    s.close()
    out = subprocess.run([sys.executable, str(_reference_verifier(tmp_path)), str(store_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr  # the documented verifier agrees
