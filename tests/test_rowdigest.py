"""Row digests of bulk writes, computed here or in a helper process
(lineage/store/rowdigest.py, issue 16): byte for byte what `row_digest` defines, and
a helper that dies, lies or cannot start never costs a write its correctness."""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reliability import ACTOR

from lineage.errors import LineageError
from lineage.model import Node, canonical_json, make_id, uuid7_batch
from lineage.store import RECORD_TABLES, Store, as_stored, bulk, column_kinds, row_digest, rowdigest
from lineage.store.codec import _encode_chunk

MODEL = make_id("model", "d4" * 32)

# every kind of value a bulk write may be handed: the codec coerces them to what
# SQLite stores, and the rows' JSON is made from that
_text = st.one_of(
    st.text(max_size=10),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10),  # bare-quotable
    st.sampled_from(['"', "\\", "\n", "é", "\x00", "{}", "{0}", "\ud800", "a\udcff", "\u2028", "\x7f"]),
)
_cell = st.one_of(
    st.none(), _text, st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _column(data: st.DataObject, kind: int, n: int) -> list[Any]:
    """A column of ``n`` values for a column of ``kind``: uniform (the C fast paths),
    constant (written into the template once) or mixed (value by value)."""
    shape = data.draw(st.sampled_from(["uniform", "constant", "none", "mixed"]))
    if kind == 2:  # an INTEGER column only ever receives integers (or NULL)
        values = st.integers(-(2**63), 2**63 - 1)
    elif kind == 1:
        values = st.floats(allow_nan=shape == "mixed", allow_infinity=shape == "mixed")
    else:
        values = _text
    if shape == "none":
        return [None] * n
    if shape == "constant":
        return [data.draw(values)] * n
    if shape == "mixed":
        values = st.one_of(st.none(), values, _cell) if kind == 0 else st.one_of(st.none(), values)
    return data.draw(st.lists(values, min_size=n, max_size=n))


@settings(max_examples=300, deadline=None)
@given(table=st.sampled_from(list(RECORD_TABLES)), data=st.data())
def test_chunk_digests_are_row_digests_of_the_stored_values(table: str, data: st.DataObject) -> None:
    columns = RECORD_TABLES[table]
    kinds = column_kinds(table, columns)
    n = data.draw(st.integers(1, 8))
    rows = list(zip(*(_column(data, k, n) for k in kinds)))
    enc = _encode_chunk(table, kinds, rows, digests=False)
    expected = [as_stored(table, columns, r) for r in rows]
    assert [tuple(r) for r in enc.rows()] == expected
    reference = b"".join(row_digest(table, e) for e in expected)
    assert rowdigest.chunk_digests(enc.pieces, enc.n) == reference
    assert list(rowdigest.chunk_lines(enc.pieces, enc.n)) == [canonical_json([table, *e]) for e in expected]
    assert _encode_chunk(table, kinds, rows).digests == reference


@given(st.lists(st.text(max_size=6), min_size=1, max_size=6))
def test_a_text_column_travels_to_the_helper_unchanged(col: list[str]) -> None:
    packed = rowdigest._packed(("s", col))
    assert list(rowdigest._unpacked(packed)[1]) == col
    assert packed[0] == ("s\n" if not any("\n" in t for t in col) else "s")


@pytest.fixture
def helper() -> Any:
    h = rowdigest.start_helper()
    if h is None:
        pytest.skip("a helper process needs two CPUs and a Python executable")
    yield h
    h.close()


def test_the_helper_answers_what_this_process_computes(helper: rowdigest.Helper) -> None:
    kinds = column_kinds("predictions", RECORD_TABLES["predictions"])
    chunks = []
    for size in (1, 7, 3000):
        ids = uuid7_batch(size, "prediction:")
        rows = [(ids[i], MODEL, f"{i:064x}", ["x", "é\n\"", "1", '{"a": 1}'][i % 4], [0.25, 1e300, -3.5][i % 3],
                 None if i % 2 else f"req-{i}", "2026-01-01T00:00:00.000000Z") for i in range(size)]
        chunks.append(_encode_chunk("predictions", kinds, rows, digests=False))
    futures = [helper.submit(c.pieces, c.n) for c in chunks]  # several in flight at once
    for c, f in zip(chunks, futures):
        assert f.result(timeout=60) == rowdigest.chunk_digests(c.pieces, c.n)


def test_a_helper_that_dies_fails_its_futures(helper: rowdigest.Helper) -> None:
    helper.proc.kill()
    helper.proc.wait()
    future = helper.submit(['"t"', ("i", [1, 2])], 2)
    with pytest.raises((rowdigest.HelperError, OSError)):
        future.result(timeout=60)


def test_no_helper_without_a_second_cpu_or_an_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    for program in ("", "/usr/bin/uwsgi"):  # (an embedding program's binary is not a Python to run)
        monkeypatch.setattr(sys, "executable", program)
        assert rowdigest.start_helper() is None
    monkeypatch.undo()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert rowdigest.start_helper() is None


def test_the_helper_refuses_another_interpreter() -> None:
    import subprocess

    done = subprocess.run([sys.executable, "-I", "-S", rowdigest.__file__, "0"], input=b"", capture_output=True,
                          timeout=60)
    assert done.returncode == 2


# ---------------------------------------------------------------------------
# bulk writes through the helper


def _store(path: Path) -> Store:
    s = Store(path, actor=ACTOR)
    if not s.node_exists(MODEL):
        s.add_node(Node(MODEL, "model", "clf", {}))
    return s


def _rows(n: int) -> list[tuple[Any, ...]]:
    ids = uuid7_batch(n, "prediction:")
    return [(ids[i], MODEL, f"{i:064x}", str(i % 3), (i % 7) / 7 if i % 5 else None, None if i % 3 else f"r{i}",
             "2026-01-01T00:00:00.000000Z") for i in range(n)]


def _children() -> set[int]:
    """This process's child processes (Linux; none known elsewhere)."""
    found: set[int] = set()
    tasks = Path("/proc/self/task")
    for task in tasks.iterdir() if tasks.is_dir() else ():
        with open(task / "children") as f:
            found |= {int(p) for p in f.read().split()}
    return found


@pytest.mark.parametrize("use_helper", [True, False])
def test_a_bulk_write_commits_to_the_same_rows_digest_with_or_without_the_helper(
        store_path: Path, monkeypatch: pytest.MonkeyPatch, use_helper: bool) -> None:
    rows = _rows(30_000)
    s = _store(store_path)
    before = _children()
    monkeypatch.setattr(bulk, "HELPER", use_helper)
    seq = s.write_bulk("predictions", {"model": MODEL}, "predictions", rows, chunk=2_000)
    ev = s.event(seq)
    assert ev is not None
    # the reference: row_digest of every row as stored, fed to SHA-256 in order
    columns = RECORD_TABLES["predictions"]
    want = hashlib.sha256(b"".join(row_digest("predictions", as_stored("predictions", columns, r)) for r in rows))
    assert ev.rows_digest == want.hexdigest()
    assert s.verify().ok
    assert _children() <= before  # the helper is gone when the write returns


def test_a_helper_killed_mid_write_costs_nothing_but_time(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[rowdigest.Helper] = []
    real = rowdigest.start_helper

    def start_and_kill_soon() -> rowdigest.Helper | None:
        h = real()
        if h is not None:
            started.append(h)
            h.proc.kill()  # dead before it answers anything
        return h

    monkeypatch.setattr(rowdigest, "start_helper", start_and_kill_soon)
    s = _store(store_path)
    rows = _rows(20_000)
    s.write_bulk("predictions", {"model": MODEL}, "predictions", rows, chunk=1_000)
    if not started:
        pytest.skip("no helper process on this machine")
    assert s.verify().ok
    assert s.conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 20_000
    assert started[0].proc.returncode is not None  # reaped
    assert not [t for t in threading.enumerate() if t.name.startswith("lineage-rowdigest")]


def test_a_helper_answering_wrong_digests_fails_the_write_and_leaves_nothing(
        store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_call = rowdigest.Helper._call

    def lying(self: rowdigest.Helper, msg: bytes, n: int) -> bytes:
        got = real_call(self, msg, n)
        return bytes([got[0] ^ 1]) + got[1:]

    if (h := rowdigest.start_helper()) is None:
        pytest.skip("no helper process on this machine")
    h.close()
    monkeypatch.setattr(rowdigest.Helper, "_call", lying)
    s = _store(store_path)
    with pytest.raises(LineageError, match="differ from the reference"):
        s.write_bulk("predictions", {"model": MODEL}, "predictions", _rows(20_000), chunk=1_000)
    assert s.conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 0
    assert s.verify().ok


def test_the_documented_stdlib_verifier_accepts_bulk_writes_digested_by_the_helper(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    import numpy as np
    from sklearn.dummy import DummyClassifier
    from test_reliability import _docs_verifier

    import lineage

    calls: list[int] = []
    real_submit = rowdigest.Helper.submit

    def counted(self: rowdigest.Helper, pieces: Any, n: int) -> Any:
        calls.append(n)
        return real_submit(self, pieces, n)

    monkeypatch.setattr(rowdigest.Helper, "submit", counted)
    n = 12_000
    X = np.random.default_rng(1).random((n, 3))
    outputs = [["yes", 'a "quoted" é', 1, 2.5, None, {"k": [1, 2]}][i % 6] for i in range(n)]
    scores = [[0.5, float("nan"), float("inf"), -0.0, None][i % 5] for i in range(n)]
    db = tmp_path / ".lineage" / "lineage.db"
    with lineage.open(db) as lg:
        with lg.start_run("fit") as run:
            model = run.log_model(DummyClassifier().fit([[0, 0, 0], [1, 1, 1]], [0, 1]), "clf")
        lg.log_predictions(model, X, outputs, scores=scores, request_ids=[f"r{i}" if i % 3 else None for i in range(n)],
                           keep_inputs=True)
        assert lg.verify().ok
        count, head = lg.store.head()
    if (h := rowdigest.start_helper()) is not None:
        h.close()  # (only asked whether one can start)
        assert calls  # (the helper did digest some of the chunks)
    out = subprocess.run([sys.executable, str(_docs_verifier(tmp_path)), str(db)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"ok: {count} events, head {head}"
