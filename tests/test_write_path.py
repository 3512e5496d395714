"""The write path remembers between transactions what it may (issue 16): the ledger's
head and the nodes it has seen recorded, re-checked under the write lock through
SQLite's PRAGMA data_version, dropped on every rollback. These tests check that what
is remembered never outlives the truth: another connection's or process's commits,
a rolled-back savepoint, a failed write, and that the savings stay saved."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import child_status, store_location
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lineage
from lineage.errors import WriteRefusedError
from lineage.store import RECORD_TABLES, Store
from lineage.store import ledger as _ledger

# The tests of what is remembered across transactions take ``store_path`` and run on
# both backends: SQLite checks it with PRAGMA data_version, PostgreSQL with the
# ledger's head, read with every BEGIN (`PostgresStore._check_others`).
BACKENDS = ("sqlite", "postgres")


def _consecutive(store: Store) -> list[int]:
    return [e.seq for e in store.events()]


def _fail_dataset_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the ledger append of a dataset's event fail: after its node row is written."""
    real = _ledger.append_event

    def failing(store: Store, seq: int, prev: str, type_: str, body: object, rows_digest: str) -> int:
        if type_ == "dataset":
            raise OSError("disk gone")
        return real(store, seq, prev, type_, body, rows_digest)  # type: ignore[arg-type]

    monkeypatch.setattr(_ledger, "append_event", failing)


def test_two_connections_writing_in_turn_keep_one_chain(store_path: Path) -> None:
    db = store_path
    a, b = Store(db), Store(db)
    for i in range(5):
        a.write("note", {"i": i, "by": "a"})
        b.write("note", {"i": i, "by": "b"})  # a's remembered head is stale now
    a.write("note", {"last": True})
    assert a.head() == b.head() == (11, a.verify().head)
    assert a.verify().ok
    assert _consecutive(a) == list(range(1, 12))


def test_another_process_commits_between_two_writes(store_path: Path) -> None:
    db = store_path
    lg = lineage.open(db)
    lg.log_dataset(uri="s3://b/a.csv", digest="a" * 64, name="a")
    code = ("import lineage, sys; lg = lineage.open(sys.argv[1]); "
            "lg.log_dataset(uri='s3://b/b.csv', digest='b' * 64, name='b'); lg.close()")
    subprocess.run([sys.executable, "-c", code, str(db)], check=True)
    lg.log_dataset(uri="s3://b/c.csv", digest="c" * 64, name="c")
    report = lg.verify()
    assert report.ok, report.problems
    assert [n.name for n in lg.nodes(kind="dataset")] == ["c", "b", "a"]


def test_a_rolled_back_savepoint_does_not_leave_its_head_behind(tmp_path: Path) -> None:
    lg = lineage.open(tmp_path / "lineage.db")
    with lg.batch():
        lg.store.write("note", {"n": 1})
        with pytest.raises(RuntimeError), lg.store.transaction():
            lg.store.write("note", {"n": 2})  # appended, then undone
            raise RuntimeError("undo")
        lg.store.write("note", {"n": 3})
    lg.store.write("note", {"n": 4})
    assert lg.verify().ok
    assert [e.payload["n"] for e in lg.store.events() if e.payload and "n" in e.payload] == [1, 3, 4]
    assert _consecutive(lg.store) == list(range(1, len(_consecutive(lg.store)) + 1))


def test_a_refused_call_inside_a_batch_rolls_back_alone(tmp_path: Path) -> None:
    lg = lineage.open(tmp_path / "lineage.db")
    with lg.batch():
        run = lg.start_run("r", params={"a": 1})
        with pytest.raises(WriteRefusedError):
            run.log_params({"b": 2, "a": 5})  # `a` is immutable: the whole call is refused
        run.log_metric("m", 0.5)
        run.end()
    node = lg.get(run.id)
    assert node.attrs["params"] == {"a": "1"}
    assert node.attrs["metrics"] == {"m": 0.5}
    assert lg.verify().ok


def test_a_write_failing_inside_one_call_leaves_nothing_and_forgets(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    lg = lineage.open(tmp_path / "lineage.db")
    lg.log_dataset(uri="s3://b/a.csv", digest="a" * 64, name="a")  # the agent is known from here on
    before = lg.store.head()
    with monkeypatch.context() as m:
        _fail_dataset_events(m)
        with pytest.raises(OSError):
            lg.log_dataset(uri="s3://b/b.csv", digest="b" * 64, name="b")
    assert lg.store.head() == before
    assert [n.name for n in lg.nodes(kind="dataset")] == ["a"]
    lg.log_dataset(uri="s3://b/c.csv", digest="c" * 64, name="c")
    assert lg.verify().ok


def test_a_logged_value_costs_few_statements(tmp_path: Path) -> None:
    """No savepoint inside one call, no read of the ledger's head, no re-read of
    what was just written (issue 16 counted 11 statements per log_param)."""
    lg = lineage.open(tmp_path / "lineage.db")
    run = lg.start_run("r")
    run.log_param("warm", 1)
    seen: list[str] = []
    lg.store.conn.set_trace_callback(seen.append)
    run.log_param("p", 1)
    run.log_metric("m", 0.5)
    lg.store.conn.set_trace_callback(None)
    # (lines SQLite reports as "-- …" are the full-text index's triggers, run inside
    # our INSERT: not statements the write path sends)
    seen = [s for s in seen if not s.startswith("--")]
    text = " ".join(seen).upper()
    assert "SAVEPOINT" not in text
    assert "FROM EVENTS" not in text
    assert len(seen) <= 2 * 9, seen
    run.end()
    assert lg.verify().ok


def test_a_run_start_writes_one_event_and_reads_nothing_back(tmp_path: Path) -> None:
    lg = lineage.open(tmp_path / "lineage.db")
    with lg.start_run("warm"):
        pass
    seen: list[str] = []
    lg.store.conn.set_trace_callback(seen.append)
    run = lg.start_run("r", params={"a": 1}, tags={"t": "x"})
    lg.store.conn.set_trace_callback(None)
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert reads == [], reads  # the agent, environment and code are known; the run id is new
    run.end()
    assert lg.get(run.id).attrs["status"] == "finished"
    assert lg.verify().ok


def test_a_batch_captures_its_agent_environment_and_code_once_as_one_moment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: inside one transaction the agent, the environment and the code are
    asked for once (a batch is one unit of work, by one person in one environment);
    each transaction outside asks again, so a change between calls is seen."""
    from lineage import capture_cache

    calls = {"agent": 0, "code": 0}
    real_agent, real_code = capture_cache.capture_agent, capture_cache.capture_code

    def agent() -> tuple[str, dict]:
        calls["agent"] += 1
        return real_agent()

    def code(*args: object, **kwargs: object) -> tuple[str, dict]:
        calls["code"] += 1
        return real_code(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(capture_cache, "capture_agent", agent)
    monkeypatch.setattr(capture_cache, "capture_code", code)
    monkeypatch.chdir(tmp_path)
    lg = lineage.open(tmp_path / "lineage.db")
    monkeypatch.setenv("LINEAGE_USER", "alice")
    with lg.batch():
        data = lg.log_dataset(uri="s3://b/a.csv", digest="ab" * 32, name="a")
        for name in ("prep", "train"):
            with lg.start_run(name) as run:
                run.log_input(data)
                monkeypatch.setenv("LINEAGE_USER", "bob")  # (mid-batch: the batch keeps its moment)
    assert calls == {"agent": 1, "code": 1}

    def users(run_name: str) -> set[str]:
        rows = lg.store.conn.execute(
            "SELECT e.dst FROM edges e JOIN nodes n ON n.id = e.src WHERE n.name = ? AND e.rel = 'was_associated_with'",
            (run_name,)).fetchall()
        return {lg.get(dst).attrs["user"] for dst, in rows}

    assert users("prep") == users("train") == {"alice"}
    with lg.start_run("later"):
        pass  # a transaction of its own: bob now
    assert calls == {"agent": 2, "code": 2}
    assert users("later") == {"bob"}
    assert lg.verify().ok


def test_a_capture_rolled_back_with_its_batch_is_recorded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The once-per-transaction answer is a capture, not a record: a batch that rolls
    back takes its agent node with it, and the next write records it again."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LINEAGE_USER", "carol")
    lg = lineage.open(tmp_path / "lineage.db")
    with pytest.raises(RuntimeError), lg.batch():
        with lg.start_run("r"):
            pass
        raise RuntimeError("the caller fails")
    assert lg.nodes(kind="agent") == []
    with lg.start_run("r2"):
        pass
    assert [a.attrs["user"] for a in lg.nodes(kind="agent")] == ["carol"]
    assert lg.verify().ok


def test_edges_recorded_already_are_not_written_twice(tmp_path: Path) -> None:
    from lineage.model import Edge

    store = Store(tmp_path / "lineage.db")
    first = [Edge("run:a", "dataset:b", "used", "training"), Edge("run:a", "dataset:c", "used", None)]
    assert store.add_edges(first) == 2
    again = [*first, Edge("run:a", "dataset:c", "used", "evaluation"), first[0]]
    assert store.existing_edges(again) == set(first)
    assert store.add_edges(again) == 1  # only the new role is new
    assert store.conn.execute("SELECT COUNT(*) FROM edges").fetchone()[0] == 3
    assert store.verify().ok


def test_a_logged_param_and_a_metric_are_five_statements(tmp_path: Path) -> None:
    """Issue 16, per call: BEGIN IMMEDIATE, the data_version check, the row, the
    event, COMMIT. A param of a run this connection started is checked against the
    params it knows, not looked up; no busy-wait switches around the BEGIN, no
    search-index trigger inside the INSERT; and the connection's own busy wait is
    back on for the next read."""
    lg = lineage.open(tmp_path / "lineage.db")
    run = lg.start_run("r")
    run.log_param("warm", 1)
    for i in range(3):
        seen: list[str] = []
        lg.store.conn.set_trace_callback(seen.append)
        run.log_param(f"p{i}", i)
        lg.store.conn.set_trace_callback(None)
        assert [s.split()[0].upper() for s in seen] == ["BEGIN", "PRAGMA", "INSERT", "INSERT", "COMMIT"], seen
        assert "data_version" in seen[1]
        seen = []
        lg.store.conn.set_trace_callback(seen.append)
        run.log_metric("m", i / 10, step=i)
        lg.store.conn.set_trace_callback(None)
        assert [s.split()[0].upper() for s in seen] == ["BEGIN", "PRAGMA", "INSERT", "INSERT", "COMMIT"], seen
    # a read outside a transaction waits for a busy store again (30 s, not 0)
    assert lg.store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    run.end()
    assert lg.verify().ok


def test_a_logged_param_and_a_metric_on_postgresql_are_three_round_trips(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The same call on PostgreSQL, where each statement waited for is a round trip:
    the BEGIN, the append lock and the ledger's head in one query; the row and the
    event sent together in a pipeline; COMMIT. As many as a bare INSERT's own
    transaction (BEGIN, INSERT, COMMIT). The run's params are checked in memory, as
    nobody else wrote since this connection's last commit (the head says so)."""
    import psycopg

    monkeypatch.chdir(tmp_path)
    with store_location("postgres", tmp_path) as url:
        lg = lineage.open(url)
        run = lg.start_run("r")
        run.log_param("warm", 1)
        sent: list[tuple[str, bool]] = []  # (statement, inside a pipeline)
        piped = [False]
        real_execute, real_many, real_pipeline = (psycopg.Connection.execute, psycopg.Cursor.executemany,
                                                  psycopg.Connection.pipeline)

        def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            sent.append((" ".join(str(query).split()), piped[0]))
            return real_execute(self, query, params, **kw)

        def executemany(self: Any, query: Any, params: Any, **kw: Any) -> Any:
            sent.append((" ".join(str(query).split()), piped[0]))
            return real_many(self, query, params, **kw)

        @contextmanager
        def pipeline(self: Any) -> Iterator[Any]:
            with real_pipeline(self) as p:
                piped[0] = True
                try:
                    yield p
                finally:
                    piped[0] = False

        with monkeypatch.context() as patched:
            patched.setattr(psycopg.Connection, "execute", execute)
            patched.setattr(psycopg.Cursor, "executemany", executemany)
            patched.setattr(psycopg.Connection, "pipeline", pipeline)
            for call in (lambda: run.log_param("p", 2), lambda: run.log_metric("m", 0.5, step=1)):
                sent.clear()
                call()
                first, *rows, event, commit = sent
                assert first[0].startswith("BEGIN;") and "pg_advisory_xact_lock" in first[0] and "FROM events" in first[0]
                assert [r[0].split()[:2] for r in rows] == [["INSERT", "INTO"]] and event[0].startswith("INSERT INTO events")
                assert rows[0][1] and event[1], "the row and the event go out together"
                assert commit == ("COMMIT", False)
        with pytest.raises(WriteRefusedError, match="already '2'"):
            run.log_param("p", 3)  # (refused from memory, as on SQLite)
        run.end()
        assert lg.verify().ok
        lg.close()


def test_a_libpq_without_pipeline_mode_writes_the_same_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pipeline mode needs libpq 14: with an older one each statement waits for its
    answer, and the store records exactly as it does with it."""
    import psycopg

    from lineage.store import postgres

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(postgres, "_pipeline_supported", lambda: False)
    entered: list[bool] = []
    real_pipeline = psycopg.Connection.pipeline

    def pipeline(self: Any) -> Any:
        entered.append(True)
        return real_pipeline(self)

    monkeypatch.setattr(psycopg.Connection, "pipeline", pipeline)
    with store_location("postgres", tmp_path) as url:
        lg = lineage.open(url)
        with lg.start_run("r", params={"a": 1}) as run:
            run.log_param("b", 2)
            run.log_metric("m", 0.5)
            with pytest.raises(WriteRefusedError):
                run.log_param("a", 3)
        assert not entered
        assert lg.get(run.id).attrs["params"] == {"a": "1", "b": "2"} and lg.verify().ok
        lg.close()


# ---------------------------------------------------------------------------
# a run's params, known in memory while nothing else writes (`Store.known_params`)


def _param_rows(lg: lineage.Lineage, run_id: str) -> list[tuple[str, str]]:
    return lg.store.conn.execute("SELECT key, value FROM params WHERE run = ? ORDER BY pk", (run_id,)).fetchall()


def test_a_param_written_by_another_process_is_seen_before_the_next_one(store_path: Path) -> None:
    db = store_path
    lg = lineage.open(db)
    run = lg.start_run("r", params={"a": 1})
    run.log_param("b", 2)
    # an MLflow client in another process logs a param of the same run
    code = ("import sys; from lineage.store import Store; s = Store(sys.argv[1]); "
            "s.write('params', {'run': sys.argv[2], 'keys': ['c']}, {'params': [(sys.argv[2], 'c', '3')]}); s.close()")
    subprocess.run([sys.executable, "-c", code, str(db), run.id], check=True)
    with pytest.raises(WriteRefusedError, match="already '3'"):
        run.log_param("c", 4)
    run.log_param("c", 3)  # the same value again: nothing to do
    run.log_param("a", 1)
    with pytest.raises(WriteRefusedError, match="already '1'"):
        run.log_param("a", 5)
    assert _param_rows(lg, run.id) == [("a", "1"), ("b", "2"), ("c", "3")]
    run.end()
    assert lg.verify().ok


def test_a_param_rolled_back_inside_a_batch_can_be_logged_again(tmp_path: Path) -> None:
    lg = lineage.open(tmp_path / "lineage.db")
    run = lg.start_run("r")
    with pytest.raises(RuntimeError), lg.batch():
        run.log_param("lr", 0.1)
        raise RuntimeError("undo")
    run.log_param("lr", 0.2)  # the rolled-back 0.1 is not remembered
    with lg.batch():
        run.log_param("n", 1)
        with pytest.raises(WriteRefusedError):
            run.log_param("n", 2)  # refused alone; the batch goes on
        run.log_param("m", 3)
    with pytest.raises(WriteRefusedError):
        run.log_param("m", 4)
    assert _param_rows(lg, run.id) == [("lr", "0.2"), ("n", "1"), ("m", "3")]
    run.end()
    assert lg.verify().ok


def _edge_rows(lg: lineage.Lineage, run_id: str) -> list[tuple[str, str, str]]:
    return lg.store.conn.execute("SELECT src, dst, rel FROM edges WHERE src = ? OR dst = ? ORDER BY pk",
                                 (run_id, run_id)).fetchall()


def test_a_new_runs_edges_are_checked_in_memory_and_recorded_once(tmp_path: Path) -> None:
    """The edges of a run this connection started are all known to it: logging an
    input reads nothing from ``edges``, and logging it again records nothing new."""
    lg = lineage.open(tmp_path / "lineage.db")
    data = lg.log_dataset(uri="s3://b/x.csv", digest="a" * 64, name="x")
    run = lg.start_run("r")
    seen: list[str] = []
    lg.store.conn.set_trace_callback(seen.append)
    run.log_input(data)
    run.log_input(data)
    lg.store.conn.set_trace_callback(None)
    assert not [q for q in seen if "FROM edges" in q and "role IS" in q], seen  # (the existence look-ups)
    assert _edge_rows(lg, run.id).count((run.id, data.id, "used")) == 1
    run.end()
    assert lg.verify().ok


def test_an_edge_written_by_another_process_or_rolled_back_is_not_trusted_to_memory(store_path: Path) -> None:
    db = store_path
    lg = lineage.open(db)
    data = lg.log_dataset(uri="s3://b/x.csv", digest="a" * 64, name="x")
    other_data = lg.log_dataset(uri="s3://b/y.csv", digest="b" * 64, name="y")
    run = lg.start_run("r")
    # another process records that the run used y: the next log_input(y) must see it
    code = ("import sys; from lineage.store import Store; s = Store(sys.argv[1]); "
            "s.write('link', {'edges': 1}, {'edges': [(sys.argv[2], sys.argv[3], 'used', 'training')]}); s.close()")
    subprocess.run([sys.executable, "-c", code, str(db), run.id, other_data.id], check=True)
    run.log_input(other_data)
    # an input logged in a batch that rolled back was not recorded: logging it again records it
    with pytest.raises(RuntimeError), lg.batch():
        run.log_input(data)
        raise RuntimeError("undo")
    run.log_input(data)
    edges = _edge_rows(lg, run.id)
    assert edges.count((run.id, other_data.id, "used")) == 1
    assert edges.count((run.id, data.id, "used")) == 1
    run.end()
    assert lg.verify().ok


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["log", "other", "batch_fail", "resume"]),
                          st.sampled_from(["a", "b", "c", "\udcff"]), st.integers(0, 2)), max_size=12))
def test_params_stay_immutable_whoever_writes_them(tmp_path_factory: pytest.TempPathFactory, backend: str,
                                                   steps: list[tuple[str, str, int]]) -> None:
    """Whatever mix of this connection's logs, another connection's writes, rolled
    back batches and resumed runs: a key is stored once, with the first value that
    stayed, and logging another value for it is refused."""
    with store_location(backend, tmp_path_factory.mktemp("store")) as db:
        _params_stay_immutable(db, steps)


def _params_stay_immutable(db: Any, steps: list[tuple[str, str, int]]) -> None:
    lg = lineage.open(db)
    other = Store(db)
    run = lg.start_run("r")
    model: dict[str, str] = {}
    for action, key, value in steps:
        stored = key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        if action == "other":
            if stored not in model:
                other.write("params", {"run": run.id, "keys": [key]}, {"params": [(run.id, key, str(value))]})
                model[stored] = str(value)
        elif action == "batch_fail":
            with pytest.raises((RuntimeError, WriteRefusedError)), lg.batch():
                run.log_param(key, value)
                raise RuntimeError("undo")
        elif action == "resume":
            run.end()
            run = lg.start_run(run_id=run.id)
        elif model.get(stored, str(value)) != str(value):
            with pytest.raises(WriteRefusedError):
                run.log_param(key, value)
        else:
            run.log_param(key, value)
            model[stored] = str(value)
    rows = _param_rows(lg, run.id)
    assert dict(rows) == model and len(rows) == len(model)
    run.end()
    other.close()
    lg.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["log", "other", "batch_fail", "resume"]), st.sampled_from("xyz")),
                max_size=10))
def test_a_runs_edges_are_recorded_once_whoever_writes_them(tmp_path_factory: pytest.TempPathFactory, backend: str,
                                                            steps: list[tuple[str, str]]) -> None:
    """Whatever mix of this connection's inputs, another connection's edges, rolled
    back batches and resumed runs: each input of the run is recorded exactly once
    when it was logged, and not at all otherwise."""
    with store_location(backend, tmp_path_factory.mktemp("store")) as db:
        _edges_recorded_once(db, steps)


def _edges_recorded_once(db: Any, steps: list[tuple[str, str]]) -> None:
    lg = lineage.open(db)
    other = Store(db)
    data = {k: lg.log_dataset(uri=f"s3://b/{k}.csv", digest=d * 64, name=k) for k, d in zip("xyz", "abc")}
    run = lg.start_run("r")
    logged: set[str] = set()
    for action, k in steps:
        if action == "other":
            if data[k].id not in logged:
                other.write("link", {"edges": 1}, {"edges": [(run.id, data[k].id, "used", "training")]})
                logged.add(data[k].id)
        elif action == "batch_fail":
            with pytest.raises(RuntimeError), lg.batch():
                run.log_input(data[k])
                raise RuntimeError("undo")
        elif action == "resume":
            run.end()
            run = lg.start_run(run_id=run.id)
        else:
            run.log_input(data[k])
            logged.add(data[k].id)
    used = [dst for _, dst, rel in _edge_rows(lg, run.id) if rel == "used" and dst.startswith("dataset:")]
    assert sorted(used) == sorted(logged)
    run.end()
    other.close()
    lg.close()


# ---------------------------------------------------------------------------
# one event's encoding without json.dumps commits to exactly the canonical form

_text = st.one_of(st.text(max_size=10), st.sampled_from(["\ud800", "a\udcffb", "é\n\"\\", "\x00", "💡", "***"]))
_value = st.one_of(
    st.none(), _text, st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.one_of(_text, st.integers()), max_size=3), st.dictionaries(_text, st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(table=st.sampled_from(sorted(RECORD_TABLES)), data=st.data())
def test_a_single_row_encodes_as_coerce_and_row_digest_do(table: str, data: st.DataObject) -> None:
    from lineage.errors import InvalidInputError
    from lineage.store import as_stored, row_digest
    from lineage.store.codec import encode_row

    columns = RECORD_TABLES[table]
    values = data.draw(st.lists(_value, min_size=len(columns), max_size=len(columns)))
    try:
        expected = as_stored(table, columns, values)
    except InvalidInputError:
        with pytest.raises(InvalidInputError):
            encode_row(table, values)
        return
    stored, digest = encode_row(table, values)
    assert stored == expected  # (NaN never survives _coerce: it is stored as NULL)
    assert digest == row_digest(table, expected)


@settings(max_examples=300, deadline=None)
@given(body=st.dictionaries(st.one_of(_text, st.integers()), _value, max_size=6)
       | st.dictionaries(_text, st.one_of(_text, st.integers(), st.none(), st.lists(_text, max_size=3)), max_size=6))
def test_a_payload_encodes_as_canonical_json_does(body: dict) -> None:
    from lineage.model import canonical_json, clean_text
    from lineage.store.codec import payload_text

    try:
        expected = clean_text(canonical_json(body))
    except (TypeError, ValueError) as exc:  # (keys of mixed types cannot be sorted: neither path writes them)
        with pytest.raises(type(exc)):
            payload_text(body)
        return
    assert payload_text(body) == expected


def test_a_write_of_several_tables_digests_them_in_record_order_and_refuses_unknown_ones(tmp_path: Path) -> None:
    """A write's rows digest follows RECORD_TABLES' order whatever order the caller
    gives its tables in (a single table is taken as given), so the event verifies;
    a table that is not recorded fails the write instead of being dropped."""
    lg = lineage.open(tmp_path / "s.db")
    store = lg.store
    run = lg.start_run("r")
    rows = {"tags": [(run.id, "t", "1")], "params": [(run.id, "p", "2")]}  # (tags come after params)
    seq = store.write("custom", {"run": run.id}, rows)
    assert _ledger.check_event_rows(store, seq)
    assert store.params_of(run.id) == {"p": "2"}
    head = store.head()
    for bad in ({"params": [(run.id, "q", "3")], "nope": [("x",)]}, {"nope": [("x",)]}):
        with pytest.raises(KeyError, match="nope"):
            store.write("custom", {"run": run.id}, bad)
        assert store.head() == head  # nothing of it kept
    assert store.params_of(run.id) == {"p": "2"}
    assert lg.verify().ok
    lg.close()


def test_now_iso_is_utc_with_microseconds_and_moves_forward() -> None:
    import re
    from datetime import datetime, timezone

    from lineage.model import now_iso

    before = datetime.now(timezone.utc)
    stamps = [now_iso() for _ in range(2000)]
    after = datetime.now(timezone.utc)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", s) for s in stamps)
    assert stamps == sorted(stamps)
    first = datetime.fromisoformat(stamps[0].replace("Z", "+00:00"))
    last = datetime.fromisoformat(stamps[-1].replace("Z", "+00:00"))
    assert before <= first <= last <= after


def test_a_recorded_pipeline_costs_a_bounded_number_of_statements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The MLMD benchmark's group (benchmarks/bench_vs_mlmd.py): 2 raw datasets, 2
    preprocessing runs, 2 processed datasets, a training run with a metric, a model
    and 20 predictions: 19 ledger events. Issue 16 counted 268 statements; the
    search index's triggers, the busy-wait switches and the look-ups repeated inside
    one call are gone, and so are the look-ups of a new run's edges (known in
    memory). Each prediction row counts once (an executemany)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    monkeypatch.chdir(tmp_path)
    X = np.arange(40, dtype=float).reshape(20, 2)
    y = np.array([0, 1] * 10)
    lg = lineage.open(tmp_path / ".lineage" / "lineage.db")
    with lg.start_run("warm-up"):
        pass
    counts = []
    for g in range(3):
        seen: list[str] = []
        lg.store.conn.set_trace_callback(seen.append)
        before = lg.store.head()[0]
        raw = [lg.log_dataset(uri=f"s3://b/raw/{g}/{k}.csv", digest=f"{g}{k}".ljust(64, "a"), name=f"raw_{k}") for k in "ab"]
        processed = []
        for k, source in zip("ab", raw):
            with lg.start_run(f"prep_{k}", params={"step": k}) as run:
                run.log_input(source)
                out = lg.log_dataset(uri=f"s3://b/clean/{g}/{k}.csv", digest=f"{g}{k}".ljust(64, "c"), name=f"clean_{k}")
                processed.append(run.log_output(out))
        with lg.start_run("train", params={"C": 1.0 + g}) as run:
            for p in processed:
                run.log_input(p)
            run.log_metric("accuracy", 0.9)
            model = run.log_model(LogisticRegression(C=1.0 + g, max_iter=50).fit(X, y), "model")
        lg.log_predictions(model, X, y)
        lg.store.conn.set_trace_callback(None)
        assert lg.store.head()[0] - before == 19
        assert not [s for s in seen if s.startswith("--") or "_fts" in s]
        # the busy wait is switched off only after a read outside a transaction
        # (before the bulk write's), not around each of the 19 BEGINs
        assert sum("busy_timeout = 0" in s for s in seen) <= 2
        counts.append(len(seen))
    assert max(counts[1:]) <= 170, counts  # (the first group also records its datasets' first versions)
    assert lg.verify().ok


# ---------------------------------------------------------------------------
# WAL checkpoints run in a thread of their own (`sqlite.Checkpointer`)


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lineage-checkpoint"]


def test_the_wal_is_copied_back_in_the_background_not_by_a_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lineage.store import sqlite as sqlite_backend

    monkeypatch.setattr(sqlite_backend, "CHECKPOINT_EVERY", 8)
    # (other tests' stores may still have theirs, idling out: only this store's count)
    others = set(_checkpoint_threads())
    db = tmp_path / "lineage.db"
    lg = lineage.open(db)
    lg.store.conn.execute("PRAGMA wal_autocheckpoint = 0")  # the writer itself never checkpoints now
    run = lg.start_run("r")
    size = db.stat().st_size
    for i in range(40):
        run.log_metric("m", i / 10, step=i)
    deadline = time.monotonic() + 10
    while db.stat().st_size <= size and time.monotonic() < deadline:
        time.sleep(0.02)
    assert db.stat().st_size > size, "no checkpoint copied the WAL into the database file"
    assert set(_checkpoint_threads()) - others
    run.end()
    lg.close()
    assert not set(_checkpoint_threads()) - others  # closing the store stops its thread
    assert lineage.open(db).verify().ok


def test_commits_of_many_pages_leave_the_wal_to_the_checkpointer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A few large commits (batches) take the WAL past SQLite's default of 1,000
    pages long before the checkpointer's 64 commits; they no longer copy it back
    inside the caller's write (the safety net is at `WAL_AUTOCHECKPOINT_PAGES`)."""
    from lineage.store import sqlite as sqlite_backend

    monkeypatch.setattr(sqlite_backend.Checkpointer, "_run", lambda self, wake: None)  # (held back)
    db = tmp_path / "lineage.db"
    lg = lineage.open(db)
    with lg.start_run("warm-up"):
        pass
    lg.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.stat().st_size
    for b in range(8):  # 8 commits of 300 new datasets each: random ids, pages all over the indexes
        with lg.batch():
            for i in range(300):
                lg.log_dataset(uri=f"s3://bucket/{b}/{i}.csv", digest=hashlib.sha256(f"{b}/{i}".encode()).hexdigest())
    assert Path(f"{db}-wal").stat().st_size > 4_100_000  # past 1,000 pages of 4 KiB
    assert db.stat().st_size == size, "a commit copied the WAL back into the database itself"
    assert lg.store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == sqlite_backend.WAL_AUTOCHECKPOINT_PAGES
    assert lg.verify().ok


def _wal_restarts(db: Path) -> int:
    """The WAL header's checkpoint sequence number: one more at each time SQLite
    starts the WAL again from its first page."""
    return int.from_bytes(Path(f"{db}-wal").read_bytes()[12:16], "big")


def test_a_commit_copies_the_tail_the_checkpointer_left_so_the_wal_starts_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread copies back all but the last few commits of a writer that never
    pauses; the next commit copies those itself (`Checkpointer.tail_due`), and the
    write after it starts the WAL again from its first page."""
    from lineage.store import sqlite as sqlite_backend

    monkeypatch.setattr(sqlite_backend.Checkpointer, "_run", lambda self, wake: None)  # (held back)
    db = tmp_path / "lineage.db"
    lg = lineage.open(db)
    run = lg.start_run("r")
    for i in range(20):
        run.log_param(f"p{i}", i)
    restarts = _wal_restarts(db)
    run.log_param("more", 1)
    assert _wal_restarts(db) == restarts  # nothing copied back: the WAL only grows
    lg.store._checkpointer.tail_due = True
    run.log_param("tail", 1)  # its commit copies the WAL back
    assert not lg.store._checkpointer.tail_due
    size = Path(f"{db}-wal").stat().st_size
    run.log_param("after", 1)
    assert _wal_restarts(db) == restarts + 1
    assert Path(f"{db}-wal").stat().st_size == size  # overwritten from the top, not grown
    run.end()
    assert lg.verify().ok


def test_a_tail_copy_that_fails_leaves_the_committed_write_reported_as_done(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tail is copied after the write committed: a copy that fails (a full
    disk) is left to the next one, not reported as the write's failure."""
    import sqlite3

    from lineage.store import sqlite as sqlite_backend

    monkeypatch.setattr(sqlite_backend.Checkpointer, "_run", lambda self, wake: None)  # (held back)
    real = sqlite_backend._EXECUTE

    def failing_checkpoint(conn: Any, sql: str, *args: Any) -> Any:
        if sql.startswith("PRAGMA wal_checkpoint"):
            raise sqlite3.OperationalError("database or disk is full")
        return real(conn, sql, *args)

    lg = lineage.open(tmp_path / "lineage.db")
    run = lg.start_run("r")
    monkeypatch.setattr(sqlite_backend, "_EXECUTE", failing_checkpoint)
    lg.store._checkpointer.tail_due = True
    run.log_param("lr", 0.1)  # committed, then its tail copy fails
    monkeypatch.setattr(sqlite_backend, "_EXECUTE", real)
    assert lg.store.params_of(run.id) == {"lr": "0.1"}
    run.log_param("depth", 3)
    run.end()
    assert lg.verify().ok


def test_a_writer_that_never_pauses_keeps_the_wal_short(tmp_path: Path) -> None:
    """Logged params one after another, as fast as they go: the WAL starts again
    from its first page every few hundred commits. With the thread's copies alone
    it grew to the safety net's 10,000 pages (40 MiB) within 2,000 params."""
    from lineage.store import sqlite as sqlite_backend

    # (Quiet, the WAL ends at 1,700-5,100 pages after 12-19 restarts. Up to three
    # tries, each on a fresh store: while another process keeps the disk busy with
    # its syncs, one sync of the thread's copy can stall for most of the loop, and
    # the WAL grows meanwhile: 22,001 pages after 2 restarts once, beside a
    # `dd conv=fsync` loop. Without the tail copy every try fails alike.)
    seen = []
    for attempt in range(3):
        db = tmp_path / f"lineage-{attempt}.db"
        with lineage.open(db) as lg:
            run = lg.start_run("r")
            for i in range(4_000):
                run.log_param(f"p{i}", i)
            seen.append((Path(f"{db}-wal").stat().st_size // 4096, _wal_restarts(db)))
            run.end()
            assert lg.verify().ok
        if seen[-1][0] < sqlite_backend.WAL_AUTOCHECKPOINT_PAGES and seen[-1][1] >= 3:
            return
    pytest.fail(f"the WAL's pages and restarts after 4,000 params, in each try: {seen}")


def test_a_forked_child_checkpoints_on_its_own_and_closes_without_waiting(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from lineage.store import sqlite as sqlite_backend

    monkeypatch.setattr(sqlite_backend, "CHECKPOINT_EVERY", 4)
    lg = lineage.open(tmp_path / "lineage.db")
    run = lg.start_run("r")
    for i in range(10):
        run.log_metric("parent", i, step=i)  # the parent's thread is running now
    pid = os.fork()
    if pid == 0:  # the child: writes, checkpoints through a thread of its own, closes
        code = 1
        try:
            for i in range(10):
                lg.store.write("note", {"child": i})
            code = 0 if _checkpoint_threads() else 2
            lg.close()
        finally:
            os._exit(code)
    status = child_status(pid)
    assert os.waitstatus_to_exitcode(status) == 0
    run.log_metric("parent", 10, step=10)
    run.end()
    assert lg.verify().ok
    assert lg.store.conn.execute("SELECT COUNT(*) FROM events WHERE type = 'note'").fetchone()[0] == 10


def test_forks_taken_while_the_checkpointer_works_give_children_that_can_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fork copies only the forking thread, but every mutex as it is: one taken
    while the checkpoint thread was inside SQLite gave a child whose first SQLite
    call waited forever (one fork in about twelve did; CI hung on it). With a
    checkpoint woken by every commit, many forks land on a busy thread."""
    from lineage.store import sqlite as sqlite_backend

    monkeypatch.setattr(sqlite_backend, "CHECKPOINT_EVERY", 1)
    for round_ in range(40):  # a store each: its thread opens a connection, then checkpoints
        lg = lineage.open(tmp_path / f"{round_}.db")
        for i in range(3):
            lg.store.write("note", {"parent": i})  # each commit wakes the thread
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                lg.store.write("note", {"child": round_})
                code = 0
            finally:
                os._exit(code)
        assert os.waitstatus_to_exitcode(child_status(pid, seconds=20)) == 0, f"the child of fork {round_}"
        assert lg.store.conn.execute("SELECT COUNT(*) FROM events WHERE type = 'note'").fetchone()[0] == 4
        assert lg.verify().ok
        lg.close()


def test_savepoint_journals_stay_in_memory_and_scrub_keeps_it_so(tmp_path: Path) -> None:
    """Every call inside `lg.batch()` is a savepoint whose journal SQLite spilled to a
    file in /var/tmp past 64 KiB (two writes of each page changed): kept in memory,
    also after an erasure's VACUUM (which alone copies the store through a file)."""
    lg = lineage.open(tmp_path / "lineage.db")
    assert lg.store.conn.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY
    with lg.batch():
        for i in range(30):
            lg.log_dataset(uri=f"s3://b/{i}.csv", digest=f"{i:064x}", name=f"d{i}")
    node = lg.get("d3")
    assert lg.redact(node.id, reason="test") >= 1
    assert lg.store.conn.execute("PRAGMA temp_store").fetchone()[0] == 2
    assert lg.verify().ok


def _bulk_predictions(lg: lineage.Lineage, n: int, *, chunk: int) -> None:
    """``n`` predictions of one model in one bulk write, loaded ``chunk`` rows at a time."""
    model = "model:" + "a" * 64
    rows = [(f"prediction:{i:032x}", model, "b" * 64, "1", None, None, "2026-01-01T00:00:00Z") for i in range(n)]
    lg.store.write_bulk("predictions", {"model": model}, "predictions", rows, chunk=chunk)


def test_a_bulk_write_is_not_checkpointed_between_its_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bulk write's loading commits are one write (bulk._loading): the background
    checkpointer is not woken between them, however many there are; only the
    commits around them count."""
    from lineage.store import sqlite as sqlite_backend

    monkeypatch.setattr(sqlite_backend, "CHECKPOINT_EVERY", 1)
    lg = lineage.open(tmp_path / "lineage.db")
    with lg.start_run("fit") as run:
        run.log_metric("m", 1.0)
    before = lg.store._checkpointer.woken
    _bulk_predictions(lg, 30_000, chunk=1_000)
    assert lg.store.conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 30_000
    # the batch's opening commit, and the publish (its commit, and the wake for its load)
    assert lg.store._checkpointer.woken - before <= 3
    assert lg.store._checkpointer.paused == 0
    assert lg.verify().ok


def test_a_bulk_write_leaves_copying_its_rows_into_the_database_to_the_checkpointer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The publish commit of a bulk write does not copy the load from the WAL into
    the database file (SQLite's autocheckpoint would, inside the caller's call: a
    fifth to a third of a 100,000-row write); it wakes the checkpointer thread, which does.
    Held back here, the rows are still committed, readable and verified; once the
    thread runs, the database file holds them."""
    from lineage.store import sqlite as sqlite_backend

    held: list[threading.Event] = []
    monkeypatch.setattr(sqlite_backend.Checkpointer, "_run", lambda self, wake: held.append(wake))
    db = tmp_path / "lineage.db"
    lg = lineage.open(db)
    with lg.start_run("fit") as run:
        run.log_metric("m", 1.0)
    lg.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # (SQLite's default threshold, which this load passes; lineage's own net, 10,000
    # pages, is beyond what 30,000 rows write)
    lg.store.conn.execute("PRAGMA wal_autocheckpoint = 1000")
    size = db.stat().st_size
    woken = lg.store._checkpointer.woken
    _bulk_predictions(lg, 30_000, chunk=5_000)
    wal = Path(f"{db}-wal").stat().st_size
    assert wal > 4_000_000  # (the load: over 1,000 pages, past SQLite's autocheckpoint)
    assert db.stat().st_size - size < wal // 10, "the publish commit copied the load into the database itself"
    assert lg.store._checkpointer.woken > woken and held  # the thread was asked
    assert lg.store.conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 30_000
    assert lg.verify().ok
    monkeypatch.undo()
    lg.store._checkpointer.wake()  # (the real thread now)
    deadline = time.monotonic() + 10
    while db.stat().st_size - size < wal // 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert db.stat().st_size - size >= wal // 2, "the checkpointer did not copy the load"


# ---------------------------------------------------------------------------
# a call inside `lg.batch()` is guarded, not a savepoint (`Store._guarded`)


def _datasets(lg: lineage.Lineage) -> list[str]:
    return sorted(str(n.name) for n in lg.nodes(kind="dataset"))


def test_a_batch_sends_no_savepoint_and_a_refused_call_leaves_it_whole(tmp_path: Path) -> None:
    lg = lineage.open(tmp_path / "lineage.db")
    seen: list[str] = []
    lg.store.conn.set_trace_callback(seen.append)
    with lg.batch():
        lg.log_dataset(uri="s3://b/a.csv", digest="a" * 64, name="a")
        run = lg.start_run("r", params={"C": 1})
        with pytest.raises(WriteRefusedError):
            run.log_params({"C": 2})  # immutable: refused before anything is written
        with pytest.raises(WriteRefusedError, match="unknown relation"):
            # a node and a bad edge in one write: refused whole, the node not written either
            lg.store.write("note", {}, {"nodes": [("dataset:" + "c" * 64, "dataset", "c", "{}", "2026-01-01T00:00:00Z")],
                                        "edges": [(run.id, "dataset:" + "c" * 64, "bogus", None)]})
        run.log_metric("m", 0.5)
        run.end()
        lg.log_dataset(uri="s3://b/b.csv", digest="b" * 64, name="b")
    lg.store.conn.set_trace_callback(None)
    assert not [s for s in seen if "SAVEPOINT" in s.upper()]
    assert _datasets(lg) == ["a", "b"]
    node = lg.get(run.id)
    assert node.attrs["params"] == {"C": "1"} and node.attrs["metrics"] == {"m": 0.5}
    assert lg.verify().ok


def test_a_call_failing_part_way_and_caught_inside_a_batch_fails_the_batch_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lg = lineage.open(tmp_path / "lineage.db")
    lg.log_dataset(uri="s3://b/before.csv", digest="f" * 64, name="before")
    head = lg.store.head()
    with pytest.raises(WriteRefusedError, match="nothing of this batch was recorded.*OSError: disk gone"):
        with lg.batch():
            run = lg.start_run("r")
            with monkeypatch.context() as m:
                _fail_dataset_events(m)
                with pytest.raises(OSError):
                    lg.log_dataset(uri="s3://b/a.csv", digest="a" * 64, name="a")  # its node row was written
            with pytest.raises(WriteRefusedError, match="failed part-way"):
                run.log_metric("m", 0.5)  # nothing more goes into a batch that cannot be kept
            with pytest.raises(WriteRefusedError, match="failed part-way"), lg.store.transaction():
                pass
    assert lg.store.head() == head
    assert _datasets(lg) == ["before"]
    assert lg.runs() == [] or all(r.id != run.id for r in lg.runs())
    lg.log_dataset(uri="s3://b/after.csv", digest="e" * 64, name="after")  # the store writes on
    assert _datasets(lg) == ["after", "before"]
    assert lg.verify().ok


def test_a_call_failing_part_way_out_of_a_batch_rolls_it_back_with_its_own_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lg = lineage.open(tmp_path / "lineage.db")
    _fail_dataset_events(monkeypatch)
    with pytest.raises(OSError, match="disk gone"), lg.batch():
        lg.start_run("r").end()
        lg.log_dataset(uri="s3://b/a.csv", digest="a" * 64, name="a")
    monkeypatch.undo()
    assert lg.store.head()[0] == 0
    lg.log_dataset(uri="s3://b/b.csv", digest="b" * 64, name="b")
    assert _datasets(lg) == ["b"] and lg.verify().ok


@settings(max_examples=20, deadline=None)
@given(st.lists(st.sampled_from(["dataset", "refused param", "bad edge", "metric"]), min_size=1, max_size=8))
def test_refused_calls_inside_a_batch_change_nothing(tmp_path_factory: pytest.TempPathFactory, ops: list[str]) -> None:
    """Whatever refused calls a batch meets (and its caller catches), what it records
    is exactly what the same calls record without them."""
    def record(lg: lineage.Lineage, with_refusals: bool) -> None:
        with lg.batch():
            run = lg.start_run("r", params={"C": 1})
            for i, op in enumerate(ops):
                if op == "dataset":
                    lg.log_dataset(uri=f"s3://b/{i}.csv", digest=f"{i:064x}", name=f"d{i}")
                elif op == "metric":
                    run.log_metric("m", float(i), step=i)
                elif with_refusals and op == "refused param":
                    with pytest.raises(WriteRefusedError):
                        run.log_params({"C": 2})
                elif with_refusals:
                    with pytest.raises(WriteRefusedError):
                        lg.store.write("note", {"i": i}, {"edges": [(run.id, run.id, "bogus", None)]})
            run.end()

    stores = []
    for with_refusals in (True, False):
        lg = lineage.open(tmp_path_factory.mktemp("s") / "lineage.db")
        record(lg, with_refusals)
        stores.append(lg)
    a, b = stores
    assert a.store.head()[0] == b.store.head()[0]
    assert _datasets(a) == _datasets(b)
    assert [e.type for e in a.store.events()] == [e.type for e in b.store.events()]
    assert a.verify().ok


def test_a_call_failing_part_way_inside_a_rolled_back_transaction_leaves_the_batch_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit transaction inside a batch is a savepoint: rolling it back undoes a
    call that failed part-way inside it, and the batch goes on."""
    lg = lineage.open(tmp_path / "lineage.db")
    with lg.batch():
        lg.log_dataset(uri="s3://b/a.csv", digest="a" * 64, name="a")
        with monkeypatch.context() as m:
            _fail_dataset_events(m)
            with pytest.raises(OSError), lg.store.transaction():
                lg.log_dataset(uri="s3://b/b.csv", digest="b" * 64, name="b")
        lg.log_dataset(uri="s3://b/c.csv", digest="c" * 64, name="c")
    assert _datasets(lg) == ["a", "c"]
    assert lg.verify().ok
