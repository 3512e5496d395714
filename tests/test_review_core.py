"""Review of the core (store, tracking, capture, hashing, model): each test pins a bug
found in review, so it stays fixed."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest
from conftest import child_status

import lineage
from lineage import fluent
from lineage.errors import InvalidInputError, LineageError
from lineage.model import Node, canonical_json, make_id
from lineage.store import RunLock, Store, row_digest


def _rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute(sql).fetchall()


# ---------------------------------------------------------------------------
# integrity: the digest at write time must be the digest at verify time

def test_negative_zero_metric_and_score_verify(lg: lineage.Lineage) -> None:
    # SQLite stores -0.0 as 0.0: hashing "-0.0" at write time was a false alarm
    with lg.start_run("r") as run:
        run.log_metric("loss", -0.0)
        model = run.log_model({"w": 1}, "m")
    lg.log_predictions(model, [[1], [2]], [1, 2], scores=[-0.0, 0.5])
    report = lg.verify()
    assert report.ok, report.problems


def test_text_that_is_not_valid_unicode_is_recorded_and_verifies(lg: lineage.Lineage, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # a file name or an argument that is not UTF-8 reaches Python as surrogate escapes
    name = os.fsdecode(b"caf\xe9.csv")
    (tmp_path / name).write_bytes(b"a\n1\n")
    node = lg.log_dataset(tmp_path / name)
    assert "caf" in node.name
    monkeypatch.setattr(sys, "argv", ["train.py", os.fsdecode(b"--x=\xfe")])
    with lg.start_run("r") as run:
        run.log_param("p", "a\udcffb")
        run.log_metric("k\ud800", 1.0)
        model = run.log_model({"w": 1}, "m")
    lg.log_predictions(model, [[1]], ["x\udcff"], request_ids=["r\udcff"])
    report = lg.verify()
    assert report.ok, report.problems


@pytest.mark.parametrize("call", [
    lambda run: run.log_metric("m", 10**400),
    lambda run: run.log_metric("m", 1.0, step="abc"),
    lambda run: run.log_metric("m", 1.0, step=2**70),
    lambda run: run.log_metric(None, 1.0),
    lambda run: run.log_param("p", 10**5000),
    lambda run: run.log_params([("a", 1)]),
    lambda run: run.set_tags("abc"),
])
def test_bad_values_are_one_line_errors_and_write_nothing(lg: lineage.Lineage, call) -> None:
    with lg.start_run("r") as run:
        before = lg.store.head()
        with pytest.raises(InvalidInputError):
            call(run)
        assert lg.store.head() == before
    assert lg.verify().ok


def test_bad_prediction_arguments_are_one_line_errors(lg: lineage.Lineage) -> None:
    with lg.start_run("r") as run:
        model = run.log_model({"w": 1}, "m")
    for kwargs in ({"outputs": 5}, {"outputs": [1], "scores": ["high"]}, {"outputs": [1], "request_ids": 5}):
        with pytest.raises(InvalidInputError):
            lg.log_predictions(model, [[1]], **kwargs)
    with pytest.raises(InvalidInputError):
        lg.start_run("x", params=[1, 2])
    assert lg.verify().ok


def test_a_closed_store_is_a_one_line_error(lg: lineage.Lineage) -> None:
    lg.close()
    with pytest.raises(LineageError, match="closed"):
        lg.log_dataset([1, 2, 3])
    with pytest.raises(LineageError, match="closed"):
        lg.nodes()
    lg.close()  # closing twice is harmless


# ---------------------------------------------------------------------------
# checkpoints cannot be used to skip checks

def _checkpointed(store: Store) -> None:
    for i in range(3):
        store.add_node(Node(make_id("dataset", f"{i:02x}" * 32), "dataset", f"d{i}", {"i": i}))
    assert store.verify(record=True).ok
    store.add_node(Node(make_id("dataset", "aa" * 32), "dataset", "late", {}))


def test_an_edited_checkpoint_cannot_skip_what_came_after_it(store: Store) -> None:
    _checkpointed(store)
    seq, h = store.head()
    # point the checkpoint past itself, at the newest event: nothing would be checked
    cp = store.last_checkpoint()
    forged = dict(cp.payload, verified_through=seq, head=h)
    store.conn.execute("UPDATE events SET payload = ? WHERE seq = ?", (canonical_json(forged), cp.seq))
    store.conn.execute("UPDATE nodes SET name = 'evil' WHERE name = 'late'")
    assert not store.verify(since_checkpoint=True).ok


def test_a_checkpoint_with_a_forged_non_number_does_not_crash_verify(store: Store) -> None:
    _checkpointed(store)
    cp = store.last_checkpoint()
    store.conn.execute("UPDATE events SET payload = ? WHERE seq = ?",
                       (canonical_json(dict(cp.payload, verified_through="x")), cp.seq))
    report = store.verify(since_checkpoint=True)
    assert not report.ok  # checked from the start: the checkpoint's payload was edited


def test_an_old_head_is_found_by_an_incremental_check(store: Store) -> None:
    store.add_node(Node(make_id("dataset", "01" * 32), "dataset", "a", {}))
    old_head = store.head()[1]
    _checkpointed(store)
    assert store.verify(head=old_head).ok
    assert store.verify(head=old_head, since_checkpoint=True).ok
    assert not store.verify(head="ab" * 32, since_checkpoint=True).ok


# ---------------------------------------------------------------------------
# erasure rules: a redaction cannot rewrite a fact that is not erasable

def test_a_forged_redaction_cannot_rewrite_a_metric(lg: lineage.Lineage) -> None:
    with lg.start_run("r") as run:
        run.log_metric("accuracy", 0.61)
    store = lg.store
    pk, *values = store.conn.execute("SELECT pk, run, key, value, step, at, dataset, grp FROM metrics").fetchone()
    forged = list(values)
    forged[2] = 0.99
    with store.transaction():  # a well-chained `redact` event, appended by someone with write access
        store.write("redact", {"node": values[0], "reason": "x", "rows": 1},
                    {"redactions": [("metrics", pk, row_digest("metrics", values).hex(),
                                     row_digest("metrics", forged).hex(), "x")]})
        store.conn.execute("UPDATE metrics SET value = 0.99 WHERE pk = ?", (pk,))
    assert not store.verify().ok


def test_a_forged_redaction_must_leave_the_row_blank(lg: lineage.Lineage) -> None:
    node = lg.log_dataset([1, 2, 3], name="public")
    store = lg.store
    pk, *values = store.conn.execute("SELECT pk, id, kind, name, attrs, created_at FROM nodes WHERE id = ?",
                                     (node.id,)).fetchone()
    forged = list(values)
    forged[2] = "renamed"  # not erased: rewritten
    with store.transaction():
        store.write("redact", {"node": node.id, "reason": "x", "rows": 1},
                    {"redactions": [("nodes", pk, row_digest("nodes", values).hex(),
                                     row_digest("nodes", forged).hex(), "x")]})
        store.conn.execute("UPDATE nodes SET name = 'renamed' WHERE pk = ?", (pk,))
    assert not store.verify().ok


def test_an_honest_erasure_still_verifies(lg: lineage.Lineage) -> None:
    node = lg.log_dataset([1, 2, 3], name="person")
    lg.annotate(node, "intended_use", "about a person")
    lg.redact(node, reason="GDPR")
    assert lg.verify().ok


# ---------------------------------------------------------------------------
# secrets

def test_credentials_in_param_and_tag_values_are_stripped(lg: lineage.Lineage) -> None:
    with lg.start_run("r", params={"db_url": "postgresql://u:hunter2@h/db"}) as run:
        run.log_param("cfg", {"api_key": "sekrit", "lr": 0.1})
        run.set_tag("api_token", "sekrit2")
        run.set_tag("source", "https://user:tok3n@host/x")
    dump = "\n".join(line for line in sqlite3.connect(lg.db_path).iterdump())
    for secret in ("hunter2", "sekrit", "sekrit2", "tok3n"):
        assert secret not in dump, secret


def test_credentials_in_allowed_env_and_errors_are_stripped(lg: lineage.Lineage,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAGE_DB", "postgresql://u:pw1234@h/db")
    with pytest.raises(RuntimeError):
        with lg.start_run("r"):
            raise RuntimeError("failed to fetch https://user:tok3n@host/x")
    dump = "\n".join(line for line in sqlite3.connect(lg.db_path).iterdump())
    assert "pw1234" not in dump and "tok3n" not in dump


# ---------------------------------------------------------------------------
# the run lock: an unlinked lock file must not be taken for the run's lock

def test_a_lock_file_unlinked_while_being_locked_is_not_trusted(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locks" / "x.lock"
    real_open = os.open
    calls = []

    def racing_open(p, *a, **k):  # a reaper unlinks the file between our open and our flock
        fd = real_open(p, *a, **k)
        if not calls:
            calls.append(1)
            os.unlink(p)
        return fd

    mine = RunLock(path)
    monkeypatch.setattr(os, "open", racing_open)
    assert mine.try_acquire()
    monkeypatch.setattr(os, "open", real_open)
    # whoever looks at the path now must find it locked
    other = RunLock(path)
    assert not other.try_acquire()
    mine.release()


# ---------------------------------------------------------------------------
# fork safety: a forked child must not end (or unlock) its parent's run

def test_a_forked_child_does_not_end_its_parents_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fluent.set_tracking_uri(tmp_path / "lineage.db")
    run = fluent.start_run(run_name="parent")
    try:
        pid = os.fork()
        if pid == 0:  # the child: what its atexit would do
            code = 0
            try:
                fluent._end_open_runs()
            except BaseException:
                code = 3
            os._exit(code)
        status = child_status(pid)
        assert os.WEXITSTATUS(status) == 0
        lg = lineage.open(tmp_path / "lineage.db")
        try:
            assert lg.get(run.id).attrs["status"] == "running"
            assert not lg.store.run_lock(run.id).try_acquire()  # still held by us
        finally:
            lg.close()
    finally:
        fluent.end_run()
    lg = lineage.open(tmp_path / "lineage.db")
    try:
        assert lg.get(run.id).attrs["status"] == "finished"
        assert lg.verify().ok
    finally:
        lg.close()


# ---------------------------------------------------------------------------
# the fluent API at exit: a script that died of an exception did not finish

def test_a_script_dying_of_an_exception_leaves_a_failed_run(tmp_path: Path) -> None:
    import subprocess

    db = tmp_path / "l.db"
    script = tmp_path / "s.py"
    script.write_text(f"import lineage\nlineage.set_tracking_uri({str(db)!r})\n"
                      "lineage.log_param('a', 1)\nraise RuntimeError('boom at https://u:tok3n@h/x')\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True)
    assert proc.returncode == 1
    lg = lineage.open(db)
    try:
        (run,) = lg.runs()
        assert run.attrs["status"] == "failed"
        assert "boom" in run.attrs["error"] and "tok3n" not in run.attrs["error"]
    finally:
        lg.close()
