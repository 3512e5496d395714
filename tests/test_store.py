"""The store: schema, transactions, the ledger and verify, references, run locks."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from pathlib import Path

import pytest
from conftest import DB_ERRORS, child_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lineage
from lineage.errors import (
    AmbiguousIdError,
    InvalidInputError,
    NodeNotFoundError,
    NoStoreError,
    SchemaVersionError,
    StoreCorruptError,
    WriteRefusedError,
)
from lineage.model import Edge, Node, make_id, new_uuid7_hex
from lineage.store import GENESIS, RECORD_TABLES, SCHEMA_VERSION, Store, chain_hash, locate

H = "ab" * 32
BACKENDS = ("sqlite", "postgres")  # conftest runs the store fixtures on both


def dataset(hex_: str, name: str | None = None, **attrs) -> Node:
    return Node(make_id("dataset", hex_), "dataset", name, attrs)


def fill(store: Store) -> dict[str, str]:
    """A small store with at least one row in every recorded table."""
    d1, _ = store.add_node(dataset("a1" * 32, "train", rows=10))
    d2, _ = store.add_node(dataset("b2" * 32, "train", rows=12), edges=[Edge("dataset:" + "b2" * 32, d1.id, "was_revision_of")])
    store.add_node(dataset("b2" * 32, "train_v2"))  # alias
    run_id = make_id("run", new_uuid7_hex())
    store.add_node(
        Node(run_id, "run", "fit", {"experiment": "default"}),
        edges=[Edge(run_id, d2.id, "used", "training")],
        extra={"run_states": [(run_id, "running", "2026-01-01T00:00:00.000000Z", None, None, None)],
               "params": [(run_id, "C", "1.0")], "tags": [(run_id, "team", "risk")]},
    )
    store.write("metric", {"run": run_id}, {"metrics": [(run_id, "accuracy", 0.93, 0, "2026-01-01T00:00:01.000000Z", d2.id, None)]})
    model_id = make_id("model", "cd" * 32)
    store.add_node(Node(model_id, "model", "rf", {"class": "X"}), edges=[Edge(model_id, run_id, "was_generated_by")])
    store.write_bulk("predictions", {"model": model_id}, "predictions",
                     [(f"prediction:{new_uuid7_hex()}", model_id, "ee" * 32, json.dumps(i), 0.5, f"req-{i}", "2026-01-01T00:00:02.000000Z")
                      for i in range(3)])
    kept = [r[0] for r in store.conn.execute("SELECT id FROM predictions ORDER BY pk")]
    store.write_bulk("prediction_inputs", {"model": model_id}, "prediction_inputs",
                     [(pid, json.dumps({"x0": i})) for i, pid in enumerate(kept)])
    store.write("annotation", {"node": model_id}, {"annotations": [(model_id, "intended_use", "demo", "tester", "2026-01-01T00:00:03.000000Z")]})
    store.write("promote", {"name": "rf", "label": "production"},
                {"promotions": [("rf", "production", model_id, "promote", "validated", "tester", "2026-01-01T00:00:03.000000Z")]})
    store.write("importance", {"model": model_id}, {"importances": [
        (model_id, "permutation", "age", "input", 0.25, 0.01, d2.id, "y", "2026-01-01T00:00:03.000000Z")]})
    first_prediction = store.conn.execute("SELECT id FROM predictions ORDER BY pk LIMIT 1").fetchone()[0]
    store.redact(first_prediction, reason="erasure request")
    store.write("experiment", {"name": "churn"}, {"names": [  # an experiment's record: a creation (no key), a tag
        ("experiment", "churn", None, None, "2026-01-01T00:00:04.000000Z"),
        ("experiment", "churn", "team", "risk", "2026-01-01T00:00:04.000000Z")]})
    store.write("run_ended", {"run": run_id}, {"run_states": [(run_id, "finished", "2026-01-01T00:00:04.000000Z", 0, None, None)]})
    return {"d1": d1.id, "d2": d2.id, "run": run_id, "model": model_id}


# ---------------------------------------------------------------------------
# schema

@pytest.mark.sqlite_only
def test_new_store_has_current_schema_and_empty_ledger(store: Store) -> None:
    assert store.schema_version() == SCHEMA_VERSION
    assert store.head() == (0, GENESIS)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    report = store.verify()
    assert report.ok and report.events == 0


def test_newer_schema_is_refused_with_a_clear_message(store_path: Path, store: Store) -> None:
    store.conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    store.close()
    with pytest.raises(SchemaVersionError, match="newer than this lineage"):
        Store(store_path)


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreCorruptError):
        Store(junk)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE dogs (name TEXT)").connection.commit()
    with pytest.raises(StoreCorruptError, match="not a lineage store"):
        Store(other)


def test_reading_without_a_store_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NoStoreError, match="lineage init"):
        locate(None, create=False)


def test_store_is_found_by_walking_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Store(tmp_path / ".lineage" / "lineage.db").close()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert locate(None, create=False) == tmp_path / ".lineage" / "lineage.db"


def test_new_store_goes_to_the_git_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()
    sub = tmp_path / "src"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert locate(None, create=True) == tmp_path.resolve() / ".lineage" / "lineage.db"


@pytest.mark.sqlite_only
def test_durability_full_is_applied(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAGE_DURABILITY", "full")
    s = Store(store_path)
    assert s.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    s.close()
    monkeypatch.delenv("LINEAGE_DURABILITY")
    s = Store(store_path)
    assert s.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    s.close()


# ---------------------------------------------------------------------------
# writes and transactions

def test_same_node_twice_adds_no_event(store: Store) -> None:
    store.add_node(dataset(H, "train"))
    n = store.head()[0]
    _, created = store.add_node(dataset(H, "train"))
    assert not created and store.head()[0] == n


def test_same_bytes_under_a_second_name_is_an_alias(store: Store) -> None:
    store.add_node(dataset(H, "train"))
    store.add_node(dataset(H, "copy"))
    assert store.aliases(f"dataset:{H}") == ["copy"]
    assert store.resolve("copy").id == f"dataset:{H}"
    assert len(store.nodes(kind="dataset")) == 1


def test_a_failed_write_rolls_back_whole(store: Store) -> None:
    store.add_node(dataset(H, "train"))
    before = store.head()
    with pytest.raises(DB_ERRORS):
        # the second table's insert fails (an alias of no node): no rows and no event survive
        store.write("bad", {}, {"nodes": [("dataset:" + "cc" * 32, "dataset", "x", "{}", "t")],
                                "aliases": [(None, "x")]})
    assert store.head() == before
    assert not store.node_exists("dataset:" + "cc" * 32)
    assert store.verify().ok


@pytest.mark.sqlite_only  # (on PostgreSQL a statement error aborts the whole batch: tests/test_postgres.py)
def test_inner_failure_in_a_batch_rolls_back_only_itself(store: Store) -> None:
    """A write whose statement fails having changed nothing (SQLite undoes the
    statement alone) leaves the batch whole."""
    with store.transaction():
        store.add_node(dataset("11" * 32, "a"))
        with pytest.raises(DB_ERRORS):
            store.write("bad", {}, {"aliases": [(None, "x")]})
        store.add_node(dataset("22" * 32, "b"))
    assert store.node_exists("dataset:" + "11" * 32) and store.node_exists("dataset:" + "22" * 32)
    assert store.head()[0] == 2
    assert store.verify().ok


def test_an_exception_in_a_batch_rolls_back_everything(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.add_node(dataset("11" * 32, "a"))
            raise RuntimeError("boom")
    assert store.head() == (0, GENESIS)


# ---------------------------------------------------------------------------
# the ledger

def test_chain_follows_the_documented_formula(store: Store) -> None:
    fill(store)
    prev = GENESIS
    for ev in store.events():
        assert ev.hash == chain_hash(prev, ev.type, ev.payload_digest, ev.rows_digest)
        prev = ev.hash
    assert store.head()[1] == prev


def test_verify_passes_on_an_honest_store(store: Store) -> None:
    fill(store)
    report = store.verify()
    assert report.ok, report.problems
    assert report.events == store.head()[0] and report.head == store.head()[1]
    assert report.first_bad is None


def _tables_with_rows(store: Store) -> list[str]:
    return [t for t in RECORD_TABLES if store.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]]


def test_every_recorded_table_is_covered(store: Store) -> None:
    fill(store)
    assert _tables_with_rows(store) == list(RECORD_TABLES)


_FILLED: dict[str, bytes] = {}


def _filled_copy(tmp_path: Path) -> Store:
    """A filled store, built once and copied per example (hypothesis runs many)."""
    if "db" not in _FILLED:
        src = tmp_path / "template.db"
        s = Store(src, actor="agent:" + "0" * 64)
        fill(s)
        s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        s.close()
        _FILLED["db"] = src.read_bytes()
    path = tmp_path / f"copy{len(list(tmp_path.glob('copy*')))}.db"
    path.write_bytes(_FILLED["db"])
    return Store(path, actor="agent:" + "0" * 64)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_edited_deleted_or_inserted_row_fails_verify(tmp_path: Path, data: st.DataObject) -> None:
    store = _filled_copy(tmp_path)
    try:
        table = data.draw(st.sampled_from([*RECORD_TABLES, "events"]))
        pks = [r[0] for r in store.conn.execute(f"SELECT {'seq' if table == 'events' else 'pk'} FROM {table}")]
        action = data.draw(st.sampled_from(["edit", "delete", "insert"]))
        pk_col = "seq" if table == "events" else "pk"
        pk = data.draw(st.sampled_from(pks))
        cols = ["type", "payload", "payload_digest", "rows_digest", "hash"] if table == "events" else list(RECORD_TABLES[table])
        if action == "edit":
            col = data.draw(st.sampled_from(cols))
            old = store.conn.execute(f"SELECT {col} FROM {table} WHERE {pk_col} = ?", (pk,)).fetchone()[0]
            new = data.draw(st.one_of(st.text(min_size=1, max_size=8), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False)).filter(lambda v: v != old and str(v) != str(old)))
            if table == "events" and col in ("payload_digest", "rows_digest", "hash"):
                new = ("f" * 64) if old != "f" * 64 else ("e" * 64)
            if table == "events" and col == "payload":
                # (JSON, as a forger's would be: the index on predictions events'
                # `json_extract(payload, '$.run')` refuses text that is not)
                new = json.dumps(new)
            store.conn.execute(f"UPDATE {table} SET {col} = ? WHERE {pk_col} = ?", (new, pk))
        elif action == "delete":
            store.conn.execute(f"DELETE FROM {table} WHERE {pk_col} = ?", (pk,))
            if table == "events" and pk == max(pks):
                # deleting the newest event is truncation: only a remembered head catches it
                assert not store.verify(head=_FILLED.setdefault("head", _head_of_template(tmp_path))).ok
                return
        else:
            if table == "events":
                store.conn.execute(
                    "INSERT INTO events (seq, type, payload, payload_digest, rows_digest, hash) "
                    "SELECT seq + 1000, type, payload, payload_digest, rows_digest, hash FROM events WHERE seq = ?", (pk,))
            else:
                # a forged copy of a row; unique ids get a new last digit, as a forger's would
                col_list = ", ".join(RECORD_TABLES[table])
                sel = ", ".join("id || '0'" if c == "id" else c for c in RECORD_TABLES[table])
                store.conn.execute(f"INSERT INTO {table} ({col_list}, event) SELECT {sel}, event FROM {table} WHERE pk = ?", (pk,))
        report = store.verify()
        assert not report.ok, f"{action} of {table} row {pk} went unnoticed"
        assert report.first_bad is not None and report.problems
    finally:
        store.close()


def _head_of_template(tmp_path: Path) -> str:
    p = tmp_path / "head.db"
    p.write_bytes(_FILLED["db"])
    s = Store(p)
    h = s.head()[1]
    s.close()
    return h


def test_verify_names_the_first_bad_event(store: Store) -> None:
    ids = fill(store)
    seq = store.event_of(ids["model"])
    store.conn.execute("UPDATE nodes SET attrs = '{\"class\":\"Evil\"}' WHERE id = ?", (ids["model"],))
    report = store.verify()
    assert not report.ok and report.first_bad == seq
    assert f"event {seq}" in report.problems[0]
    assert not store.check_event_rows(seq)
    assert store.check_event_rows(seq - 1)


def test_verify_head_catches_truncation_and_rewrites(store: Store) -> None:
    fill(store)
    n, head = store.head()
    store.add_node(dataset("99" * 32, "later"))
    assert store.verify(head=head).ok  # an older head is still a prefix
    cut = n - 1  # drop the last two events and everything they wrote
    store.conn.execute("DELETE FROM events WHERE seq > ?", (cut,))
    for table in RECORD_TABLES:
        store.conn.execute(f"DELETE FROM {table} WHERE event > ?", (cut,))
    assert store.verify().ok  # a clean truncation is invisible without a remembered head
    report = store.verify(head=head)
    assert not report.ok and "truncated or rewritten" in report.problems[-1]


def test_verify_writes_nothing_unless_recording(store: Store) -> None:
    fill(store)
    before = store.head()
    store.verify()
    assert store.head() == before
    report = store.verify(record=True)
    assert store.head()[0] == before[0] + 1
    cp = store.last_checkpoint()
    assert cp is not None and cp.payload["verified_through"] == report.events
    assert cp.payload["head"] == report.head


def test_incremental_verify_starts_at_the_checkpoint(store: Store) -> None:
    fill(store)
    store.verify(record=True)
    store.add_node(dataset("77" * 32, "new"))
    report = store.verify(since_checkpoint=True)
    assert report.ok and report.checked_from == store.head()[0] - 2
    # an edit after the checkpoint is caught incrementally
    store.conn.execute("UPDATE nodes SET name = 'evil' WHERE id = ?", ("dataset:" + "77" * 32,))
    assert not store.verify(since_checkpoint=True).ok


def test_a_payload_erased_keeps_the_chain_but_must_be_an_erasures(store: Store) -> None:
    """The chain commits to a payload's digest, not its text, so a NULL payload breaks
    no link; only an erasure may make one, and says so (tests/test_erasure_person.py)."""
    ids = fill(store)
    seq = store.event_of(ids["d1"])
    store.conn.execute("UPDATE events SET payload = NULL WHERE seq = ?", (seq,))
    report = store.verify()
    assert not report.ok and report.first_bad == seq and len(report.problems) == 1
    assert "no erasure record" in report.problems[0] and "chain" not in report.problems[0]


# ---------------------------------------------------------------------------
# references

def test_references_resolve_every_documented_way(store: Store) -> None:
    ids = fill(store)
    d2 = ids["d2"]
    assert store.resolve(d2).id == d2
    assert store.resolve("dataset:b2b2").id == d2
    assert store.resolve("b2b2b2").id == d2
    assert store.resolve("train").id == d2  # newest with that name
    assert store.resolve("train@1").id == ids["d1"]
    assert store.resolve("train@2").id == d2
    assert store.resolve("dataset:train").id == d2
    assert store.resolve("model:rf").id == ids["model"]
    assert store.resolve("request:req-1").kind == "prediction"
    run = store.resolve(ids["run"][:12])
    assert run.kind == "run" and run.attrs["status"] == "finished" and run.attrs["params"] == {"C": "1.0"}


def test_unknown_and_ambiguous_references_fail_listing_candidates(store: Store) -> None:
    fill(store)
    with pytest.raises(NodeNotFoundError, match="nope"):
        store.resolve("nope")
    with pytest.raises(NodeNotFoundError, match="versions 1 to 2"):
        store.resolve("train@7")
    store.add_node(dataset("b2" + "00" * 31, "other"))
    with pytest.raises(AmbiguousIdError) as err:
        store.resolve("dataset:b2")
    assert len(err.value.candidates) == 2
    store.add_node(Node(make_id("model", "ef" * 32), "model", "train"))
    with pytest.raises(AmbiguousIdError, match="dataset:train, model:train"):
        store.resolve("train")


def test_hex_that_is_also_a_name_finds_that_node_or_says_it_is_ambiguous(store: Store) -> None:
    """A dataset called `d` could not be reached by its name whenever two ids began
    with d, and reached the one other node silently when one did (seen in a test
    whose environment's id began with d on one machine and not on another)."""
    named = dataset("11" * 32, "d")
    other = dataset("d0" * 32, "other")
    store.add_node(named)
    store.add_node(other)
    assert store.resolve("d").id == named.id  # under 4 digits: the name
    assert store.resolve("dataset:d").id == named.id
    assert store.resolve("d0d0").id == other.id  # 4 digits and no such name: the prefix
    lone = dataset("e1" * 32, "lone")
    store.add_node(lone)
    assert store.resolve("e1").id == lone.id  # no node called e1: the short prefix still works
    cafe = dataset("22" * 32, "cafe")
    starts_cafe = dataset("cafe" + "33" * 30, "x")
    store.add_node(cafe)
    store.add_node(starts_cafe)
    with pytest.raises(AmbiguousIdError, match="both an id's prefix and a name") as err:
        store.resolve("cafe")  # 4 digits that fit one id and name another node
    assert set(err.value.candidates) == {cafe.id, starts_cafe.id}
    assert store.resolve("cafe@1").id == cafe.id  # the name, by its version
    assert store.resolve(starts_cafe.id[: len("dataset:") + 8]).id == starts_cafe.id  # more of the id
    assert store.resolve(starts_cafe.id).id == starts_cafe.id


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text("0123456789abcdef", min_size=1, max_size=6),
       others=st.lists(st.text("0123456789abcdef", min_size=1, max_size=6), max_size=4))
def test_a_hex_name_never_resolves_to_another_node(tmp_path_factory: pytest.TempPathFactory, name: str,
                                                   others: list[str]) -> None:
    """Whatever ids begin with a hex name, resolving it gives the node of that name or
    an AmbiguousIdError listing it: never some other node."""
    with Store(tmp_path_factory.mktemp("hexname") / "lineage.db") as store:
        named = dataset("ab" * 32, name)
        store.add_node(named)
        for i, start in enumerate(others):  # ids beginning with parts of the name, or not
            store.add_node(dataset((start + f"{i:02x}" * 32)[:64].ljust(64, "0"), f"other{i}"))
        try:
            assert store.resolve(name).id == named.id
        except AmbiguousIdError as exc:
            assert named.id in exc.candidates and len(name) >= 4


def test_history_lists_versions_oldest_first(store: Store) -> None:
    ids = fill(store)
    assert [n.id for n in store.history("train")] == [ids["d1"], ids["d2"]]


# ---------------------------------------------------------------------------
# run locks

def test_a_run_whose_lock_is_free_is_reaped_as_crashed(store: Store) -> None:
    run_id = make_id("run", new_uuid7_hex())
    store.add_node(Node(run_id, "run", "r", {}), extra={"run_states": [(run_id, "running", "2026-01-01T00:00:00.000000Z", None, None, None)]})
    held = store.run_lock(run_id)
    assert held.try_acquire()
    assert store.reap_dead_runs() == []  # alive: its lock is held
    held.release()
    assert store.reap_dead_runs() == [run_id]
    node = store.get_node(run_id)
    assert node.attrs["status"] == "crashed"
    assert store.reap_dead_runs() == []
    assert store.verify().ok


@pytest.mark.sqlite_only
@pytest.mark.skipif(not hasattr(fcntl, "F_OFD_SETLK"), reason="open-file-description locks are Linux's")
def test_runs_lock_bytes_of_one_file_and_leave_no_file_per_run(lg: lineage.Lineage) -> None:
    """A run's lock is a byte of locks/runs.lock (no file made and unlinked per run);
    a second lock on the same run conflicts even inside this process (so a reaper
    never takes its own process's live run for dead), and an ended run's is free."""
    store = lg.store
    runs = [lg.start_run(f"r{i}") for i in range(5)]
    assert sorted(p.name for p in store.locks_dir.iterdir()) == ["runs.lock"]
    assert not any(store.run_lock(r.id).try_acquire() for r in runs)  # each held, by this process
    assert lg.store.reap_dead_runs() == []
    runs[2].end()
    again = store.run_lock(runs[2].id)
    assert again.try_acquire()
    again.release(remove=True)
    assert not store.run_lock(runs[3].id).try_acquire()  # releasing one byte left the others held
    for r in runs[:2] + runs[3:]:
        r.end()
    assert sorted(p.name for p in store.locks_dir.iterdir()) == ["runs.lock"]


# ---------------------------------------------------------------------------
# the bulk-write fast path must commit to exactly what row_digest defines

_cell = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(table=st.sampled_from(list(RECORD_TABLES)), data=st.data())
def test_bulk_encoding_equals_row_digest(table: str, data: st.DataObject) -> None:
    from lineage.store import as_stored, column_kinds, encode_batch, row_digest

    columns = RECORD_TABLES[table]
    kinds = column_kinds(table, columns)
    n = data.draw(st.integers(1, 6))
    # a column is either uniform (the C fast path) or mixed (value by value)
    cols = []
    for kind in kinds:
        uniform = data.draw(st.sampled_from(["str", "float", "int", "none", "mixed"]))
        strategy = {"str": st.text(max_size=8), "float": st.floats(allow_nan=False, allow_infinity=False),
                    "int": st.integers(-(2**63), 2**63 - 1), "none": st.none(), "mixed": _cell}[uniform]
        if kind == 2:  # an INTEGER column only ever receives integers (or NULL)
            strategy = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))
        elif kind == 1:
            strategy = st.one_of(st.none(), st.floats(), st.integers(-(2**53), 2**53)) if uniform == "mixed" else (
                st.floats(allow_nan=False, allow_infinity=False) if uniform != "none" else st.none())
        cols.append(data.draw(st.lists(strategy, min_size=n, max_size=n)))
    rows = list(zip(*cols))
    out, digests = encode_batch(table, kinds, rows)
    expected = [as_stored(table, columns, r) for r in rows]
    assert [tuple(o) for o in out] == [tuple(e) for e in expected]  # (no NaN survives _coerce)
    assert digests == b"".join(row_digest(table, e) for e in expected)


def test_bulk_write_verifies_and_matches_write(store: Store) -> None:
    rows = [(f"prediction:{new_uuid7_hex()}", "model:" + "cd" * 32, "ee" * 32, json.dumps(i), s, r, "2026-01-01T00:00:00.000000Z")
            for i, (s, r) in enumerate([(0.5, "a"), (None, None), (float("nan"), "b"), (1, None), (float("inf"), "é\n\"")])]
    seq = store.write_bulk("predictions", {}, "predictions", rows, chunk=2)
    ev = store.event(seq)
    assert ev is not None and ev.payload is not None and ev.payload["rows"] == 5
    assert store.check_event_rows(seq)
    assert store.verify().ok


def test_uuid7_batch_is_sorted_unique_and_well_formed() -> None:
    from lineage.model import uuid7_batch, uuid7_time

    ids = uuid7_batch(10_000)
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert all(len(i) == 32 and i[12] == "7" and i[16] in "89ab" for i in ids)
    later = uuid7_batch(3)
    assert later[0] > ids[-1] and new_uuid7_hex() > later[-1]
    assert uuid7_time(ids[0]).year >= 2024


@settings(max_examples=40, deadline=None)
@given(n=st.one_of(st.integers(0, 20), st.integers(4090, 12_300)), prefix=st.sampled_from(["", "prediction:", "é:"]))
def test_uuid7_batch_ids_are_the_documented_fields(n: int, prefix: str) -> None:
    from lineage.model import uuid7_batch

    ids = uuid7_batch(n, prefix)
    assert len(ids) == n and len(set(ids)) == n and ids == sorted(ids)
    values = [int(i.removeprefix(prefix), 16) for i in ids]
    assert all(i.startswith(prefix) and len(i) == len(prefix) + 32 for i in ids)
    if not n:
        return
    ms0, rand = values[0] >> 80, (values[0] >> 32) & ((1 << 30) - 1)
    for i, v in enumerate(values):  # (ms + i // 4096) << 80 | 0x7 << 76 | (i % 4096) << 64 | 0b10 << 62 | base | i
        assert v >> 80 == ms0 + i // 4096 and (v >> 76) & 0xF == 0x7 and (v >> 64) & 0xFFF == i % 4096
        assert (v >> 62) & 0b11 == 0b10 and (v >> 32) & ((1 << 30) - 1) == rand and v & 0xFFFFFFFF == i


@pytest.mark.parametrize("sql", [
    "UPDATE events SET rows_digest = 'not hex' WHERE seq = 2",
    "UPDATE events SET payload_digest = X'00ff' WHERE seq = 2",
    "UPDATE events SET payload = X'7b7d' WHERE seq = 2",
    "UPDATE events SET hash = 42 WHERE seq = 2",
    "UPDATE nodes SET event = 'two' WHERE pk = 1",
    "UPDATE metrics SET value = 'high' WHERE pk = 1",
    "UPDATE params SET value = X'01' WHERE pk = 1",
])
def test_forged_values_of_the_wrong_type_fail_verify_without_crashing(store: Store, sql: str) -> None:
    fill(store)
    if store.dialect == "postgresql" and ("'two'" in sql or "'high'" in sql):
        pytest.skip("PostgreSQL's typed columns refuse the forged value itself")
    store.conn.execute(sql)
    report = store.verify()
    assert not report.ok and report.first_bad is not None and report.problems


@settings(max_examples=300, deadline=None)
@given(streams=st.lists(st.lists(st.tuples(st.integers(1, 12), st.binary(min_size=32, max_size=32)), max_size=30),
                        min_size=1, max_size=5), data=st.data())
def test_verify_hashes_each_events_rows_stream_by_stream_however_they_are_chunked(
        streams: list[list[tuple[int, bytes]]], data: st.DataObject) -> None:
    import hashlib

    from lineage.store.ledger import by_event

    streams = [sorted(s, key=lambda r: r[0]) for s in streams]  # (stable: an event's rows keep their order)
    # what an event commits to: its rows' digests, table by table, each table's in its order
    expected = [(e, hashlib.sha256(b"".join(d for s in streams for event, d in s if event == e)).hexdigest())
                for e in sorted({e for s in streams for e, _ in s})]
    chunked = []
    for s in streams:  # cut anywhere, an event's rows across chunks, empty chunks between
        cuts = sorted(data.draw(st.lists(st.integers(0, len(s)), max_size=8), label="cuts"))
        bounds = [0, *cuts, len(s)]
        chunks = [s[a:b] for a, b in zip(bounds, bounds[1:])]
        chunked.append(iter([([e for e, _ in c], [d for _, d in c]) for c in chunks]))
    assert list(by_event(chunked)) == expected


def test_chain_hash_is_the_documented_byte_layout() -> None:
    import hashlib

    prev, pd, rd = "11" * 32, "22" * 32, "33" * 32
    expected = hashlib.sha256(bytes.fromhex(prev) + b"metric\x00" + bytes.fromhex(pd) + bytes.fromhex(rd)).hexdigest()
    assert chain_hash(prev, "metric", pd, rd) == expected
    assert chain_hash(prev, "metric", "zz", rd) != expected  # a forged, non-hex digest: defined, and wrong


@pytest.mark.sqlite_only
def test_an_older_store_is_upgraded_on_open_and_still_verifies(store_path: Path) -> None:
    from lineage import store as store_module

    # turn a new store back into what version 1 of the schema wrote
    old = Store(store_path, actor="agent:" + "0" * 64)
    left_open = make_id("run", new_uuid7_hex())  # a run a version-1 store had left running
    old.add_node(Node(left_open, "run", "r", {}),
                 extra={"run_states": [(left_open, "running", "2026-01-01T00:00:00.000000Z", None, None, None)]})
    old.close()
    conn = sqlite3.connect(store_path)
    conn.execute("DROP INDEX events_scored_by")  # migration 14
    conn.execute("DROP TABLE prediction_inputs")  # migration 6
    conn.execute("DROP TABLE open_runs")  # migration 5
    conn.execute("DROP INDEX events_checkpoint")  # migration 11 (which dropped migration 2's events_type)
    conn.execute("DROP INDEX events_push")
    conn.execute("DROP TABLE redactions")  # migration 3
    conn.execute("DROP INDEX predictions_request")  # migration 4: back to the full index
    conn.execute("CREATE INDEX predictions_request ON predictions (request_id)")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    s = Store(store_path, actor="agent:" + "0" * 64)
    assert s.schema_version() == SCHEMA_VERSION == max(store_module.MIGRATIONS)
    indexes = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"events_checkpoint", "events_push"} <= indexes and "events_type" not in indexes  # 2, then 11
    assert s.running_runs() == [left_open]  # migration 5 found it from run_states
    fill(s)
    s.verify(record=True)
    plan = " ".join(r[-1] for r in s.conn.execute(
        "EXPLAIN QUERY PLAN SELECT seq FROM events WHERE type = 'checkpoint' ORDER BY seq DESC LIMIT 1"))
    assert "USING COVERING INDEX events_checkpoint" in plan  # no scan of the ledger
    plan = " ".join(r[-1] for r in s.conn.execute("EXPLAIN QUERY PLAN SELECT seq, payload FROM events WHERE type = 'push' ORDER BY seq DESC"))
    assert "USING INDEX events_push" in plan
    plan = " ".join(r[-1] for r in s.conn.execute("EXPLAIN QUERY PLAN SELECT id FROM predictions WHERE request_id = ?", ("x",)))
    assert "predictions_request" in plan  # the partial index still serves request:ID
    assert s.resolve("request:req-1").kind == "prediction"
    plan = " ".join(r[-1] for r in s.conn.execute(
        "EXPLAIN QUERY PLAN SELECT seq FROM events WHERE type = 'predictions' AND json_extract(payload, '$.run') IN (?)",
        ("run:x",)))
    assert "USING INDEX events_scored_by" in plan  # migration 14: a run's predictions, no scan of the ledger
    assert s.last_checkpoint() is not None and s.verify().ok
    s.close()


def test_the_stat_cache_never_fails_what_it_speeds_up(tmp_path: Path, store: Store) -> None:
    from lineage import query
    from lineage.hashing import hash_file, stat_key
    from lineage.tracking import log_dataset

    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    log_dataset(store, data, name="d")
    store.conn.execute("DELETE FROM stat_cache")
    store.conn.execute("PRAGMA query_only = ON")  # as on a read-only file or mount
    store.stat_cache.put(stat_key(data), "00" * 32, 1)  # dropped, not raised
    assert store.stat_cache.get(stat_key(data)) is None
    assert hash_file(data, cache=store.stat_cache).digest == store.resolve("d").id.split(":")[1]
    data.write_text("a\n2\n")
    assert [n.name for n in query.status(store).changed] == ["d"]


# ---------------------------------------------------------------------------
# erasure (GDPR): a row's content goes, the chain stays verifiable

def test_erasing_one_prediction_of_a_bulk_event_keeps_the_record_verifiable(store: Store) -> None:
    ids = fill(store)
    preds = [r[0] for r in store.conn.execute("SELECT id FROM predictions ORDER BY pk")]
    target = preds[1]  # preds[0] was erased by fill()
    bulk_event = store.event_of(target)
    seq = store.redact(target, reason="GDPR request 7")
    erased = store.get_node(target)
    assert erased.attrs["output"] is None and erased.attrs["request_id"] is None
    assert erased.attrs["input_digest"] is None and erased.attrs["model"] == ids["model"]
    assert store.event(seq).type == "redact" and store.event(seq).payload["reason"] == "GDPR request 7"
    with pytest.raises(NodeNotFoundError):
        store.resolve("request:req-1")  # the request id is gone
    assert store.resolve("request:req-2").id == preds[2]  # its neighbours in the same event are not
    assert store.check_event_rows(bulk_event)
    assert store.verify().ok
    with pytest.raises(WriteRefusedError, match="already erased"):
        store.redact(target, reason="again")


def test_erasing_a_node_blanks_its_name_aliases_and_annotation_text(store: Store) -> None:
    ids = fill(store)
    store.redact(ids["d2"], reason="consent withdrawn")
    node = store.get_node(ids["d2"])
    assert node.name is None and node.attrs == {"redacted": True}
    assert store.aliases(ids["d2"]) == [""]
    store.redact(ids["model"], reason="x")
    assert store.annotations(ids["model"])["intended_use"]["text"] is None
    assert [e.src for e in _edges_into(store, ids["d2"])]  # links stay: the graph keeps its shape
    assert store.verify().ok


def _edges_into(store: Store, node_id: str) -> list[Edge]:
    return [Edge(*r) for r in store.conn.execute("SELECT src, dst, rel, role FROM edges WHERE dst = ?", (node_id,))]


def test_an_erased_row_edited_afterwards_fails_verify(store: Store) -> None:
    fill(store)
    erased = store.conn.execute("SELECT row_pk FROM redactions WHERE tbl = 'predictions'").fetchone()[0]
    store.conn.execute("UPDATE predictions SET output = '1' WHERE pk = ?", (erased,))
    report = store.verify()
    assert not report.ok and "edited" in report.problems[0]


def test_erasure_needs_a_reason_and_a_known_node(store: Store) -> None:
    ids = fill(store)
    with pytest.raises(InvalidInputError, match="reason"):
        store.redact(ids["d1"], reason=" ")
    with pytest.raises(NodeNotFoundError):
        store.redact("dataset:" + "0" * 64, reason="x")


def test_erasure_inside_a_large_bulk_event(store: Store) -> None:
    model_id = make_id("model", "cd" * 32)
    store.add_node(Node(model_id, "model", "rf", {}))
    ids = [f"prediction:{new_uuid7_hex()}" for _ in range(1_500)]
    seq = store.write_bulk("predictions", {"model": model_id}, "predictions",
                           [(i, model_id, "ee" * 32, "1", 0.5, f"r{n}", "2026-01-01T00:00:02.000000Z") for n, i in enumerate(ids)])
    store.redact(ids[1_234], reason="erasure request")  # beyond the first chunk of 500
    assert store.check_event_rows(seq) and store.verify().ok
    store.conn.execute("UPDATE predictions SET request_id = 'back' WHERE id = ?", (ids[1_234],))
    assert not store.check_event_rows(seq) and not store.verify().ok


def test_a_failed_commit_keeps_nothing_and_the_store_stays_usable(store: Store) -> None:
    # a deferred foreign key fails only at COMMIT, like a full disk would
    store.conn.execute("CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)")
    store.conn.execute("CREATE TEMP TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(DB_ERRORS):
        with store.transaction():
            store.add_node(dataset("11" * 32, "a"))
            store.conn.execute("INSERT INTO child (p) VALUES (42)")
    assert not store.conn.in_transaction and store.head() == (0, GENESIS)
    store.add_node(dataset("22" * 32, "b"))  # the next write works
    assert store.head()[0] == 1 and store.verify().ok


def test_verify_head_needs_a_real_hash_prefix(store: Store) -> None:
    fill(store)
    for bad in ("a", "abc", "not-hex-at-all!"):
        with pytest.raises(InvalidInputError, match="at least 12"):
            store.verify(head=bad)
    assert store.verify(head=store.head()[1][:12]).ok


def test_erasure_reason_must_be_text(store: Store) -> None:
    ids = fill(store)
    with pytest.raises(InvalidInputError, match="reason"):
        store.redact(ids["d1"], reason=5)  # type: ignore[arg-type]


def test_an_unknown_name_lists_the_near_candidates(store: Store) -> None:
    fill(store)
    with pytest.raises(NodeNotFoundError, match=r"did you mean train\?"):
        store.resolve("trian")
    with pytest.raises(NodeNotFoundError, match=r"did you mean model:rf\?"):
        store.resolve("model:rff")
    with pytest.raises(NodeNotFoundError, match="see `lineage ls`"):
        store.resolve("zzzzzz-nothing-like-it")


def test_a_forked_child_writes_through_its_own_connection(store: Store) -> None:
    fill(store)
    parent_conn = store.conn
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's lines are not traced
        code = 9
        try:
            if store.conn is parent_conn:
                code = 1  # SQLite forbids using a connection across fork()
            else:
                store.add_node(dataset("ab" * 32, "from-child"))
                code = 0 if store.verify().ok else 2
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    status = child_status(pid)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.conn is parent_conn  # the parent keeps its own
    store.add_node(dataset("cd" * 32, "from-parent"))
    assert store.resolve("from-child").id == "dataset:" + "ab" * 32
    assert store.verify().ok


def test_open_runs_follow_every_state_change(store: Store) -> None:
    def latest_running() -> list[str]:  # the definition, read from the evidence itself
        sql = ("SELECT s.run FROM run_states s WHERE s.status = 'running' "
               "AND s.pk = (SELECT MAX(t.pk) FROM run_states t WHERE t.run = s.run) ORDER BY s.run")
        return [r[0] for r in store.conn.execute(sql)]

    runs = [make_id("run", new_uuid7_hex()) for _ in range(3)]
    at = "2026-01-01T00:00:00.000000Z"
    for r in runs:
        store.add_node(Node(r, "run", "r", {}), extra={"run_states": [(r, "running", at, None, None, None)]})
    assert store.running_runs() == latest_running() == sorted(runs)
    store.write("run_ended", {}, {"run_states": [(runs[0], "finished", at, 0, None, None)]})
    store.write("run_resumed", {}, {"run_states": [(runs[0], "running", at, None, None, None)]})
    store.write("run_ended", {}, {"run_states": [(runs[1], "failed", at, 1, "x", None)]})
    with pytest.raises(RuntimeError):  # a rolled-back end leaves the run open
        with store.transaction():
            store.write("run_ended", {}, {"run_states": [(runs[2], "finished", at, 0, None, None)]})
            raise RuntimeError
    assert store.running_runs() == latest_running() == sorted([runs[0], runs[2]])
    assert sorted(store.reap_dead_runs()) == sorted([runs[0], runs[2]])
    assert store.running_runs() == latest_running() == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["params", "tags", "metrics", "states"]),
                          st.sampled_from(["a", "b"]), st.integers(0, 3)), max_size=25))
def test_run_state_read_in_one_statement_equals_the_four_reads(tmp_path_factory: pytest.TempPathFactory,
                                                               writes: list[tuple[int, str, str, int]]) -> None:
    """PostgreSQL reads a run's params, tags, metrics and states as one union (one
    round trip): on the same rows it must give what the four reads give."""
    store = Store(tmp_path_factory.mktemp("union") / "lineage.db")
    runs = [Node(make_id("run", new_uuid7_hex()), "run", f"r{i}", {}) for i in range(3)]
    for r in runs:
        store.add_node(r, extra={"run_states": [(r.id, "running", "2026-01-01T00:00:00Z", None, None, None)]})
    seen_params: set[tuple[str, str]] = set()
    for i, (k, what, key, v) in enumerate(writes):
        run = runs[k].id
        if what == "params" and (run, key) not in seen_params:
            seen_params.add((run, key))
            store.write("params", {"run": run}, {"params": [(run, key, str(v))]})
        elif what == "tags":
            store.write("tags", {"run": run}, {"tags": [(run, key, f"t{v}")]})
        elif what == "metrics":  # steps out of order, and a per-group value beside
            store.write("metric", {"run": run}, {"metrics": [(run, key, v / 10, 3 - v, f"2026-01-01T00:00:0{v}Z", None, None),
                                                             (run, key, 9.0, 9, f"2026-01-01T00:00:0{v}Z", None, "g")]})
        elif what == "states":
            status = ["finished", "failed", "running", "finished"][v]
            store.write("run_state", {"run": run}, {"run_states": [(run, status, f"2026-01-0{i % 9 + 1}T00:00:00Z",
                                                                    v, "boom" if status == "failed" else None, None)]})
    stored = [store.get_node(r.id) for r in runs]
    four_reads = store.with_run_state(stored)
    store.dialect = "postgresql"  # (this instance only: the union's path, on the same rows)
    try:
        one_statement = store.with_run_state(stored)
    finally:
        store.dialect = "sqlite"
    assert one_statement == four_reads
    store.close()


@pytest.mark.parametrize("chunks", [
    [([1, 3, 2], [b"a" * 32] * 3)],  # out of order within a chunk
    [([5, 6], [b"a" * 32] * 2), ([3, 7], [b"b" * 32] * 2)],  # a chunk starting before the last one ended
])
def test_rows_out_of_event_order_are_a_damaged_store_not_a_verdict(chunks: list[tuple[list[int], list[bytes]]]) -> None:
    from lineage.store.ledger import by_event

    # (SQLite returns rows out of `ORDER BY event` only from a damaged index: hashing
    # them under whichever event comes next would blame the wrong event)
    with pytest.raises(StoreCorruptError, match="out of event order"):
        list(by_event([iter(chunks)]))
