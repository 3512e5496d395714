"""MLflow's async logging (``synchronous=False``, ``MLFLOW_ENABLE_ASYNC_LOGGING``,
``mlflow.config.enable_async_logging``): calls queued for a background writer that
commits many at a time, answered through ``RunOperations.wait``, written in the order
they were made, and never lost at a run's end, a store's close or the process's exit."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lineage
from lineage.entities import resolve_run, run_view
from lineage.store.asyncwrite import ASYNC_ENV, RunOperations, combine

BACKENDS = ("sqlite", "postgres")  # the queue's writer thread on both backends
ROOT = Path(__file__).resolve().parents[1]


def _event_keys(lg: lineage.Lineage, run_id: str) -> list[tuple[str, str]]:
    """``(event type, key)`` of a run's param, metric and tag events, in ledger order."""
    out = []
    for ev in lg.store.events():
        payload = ev.payload or {}
        if payload.get("run") != run_id or ev.type not in ("params", "metric", "tags"):
            continue
        keys = payload.get("keys") or [payload.get("key")]
        out += [(ev.type, k) for k in keys]
    return out


def test_queued_calls_return_run_operations_and_are_written_in_call_order(fluent_project: Path) -> None:
    with lineage.start_run() as run:
        ops = [lineage.log_param("a", 1, synchronous=False), lineage.log_metric("m", 0.5, step=0, synchronous=False)]
        assert lineage.log_param("b", 2) == 2  # synchronous: the value, as MLflow returns it
        ops += [lineage.set_tag("t", "x", synchronous=False), lineage.log_params({"c": 3}, synchronous=False),
                lineage.log_metrics({"m": 0.25}, step=1, synchronous=False), lineage.set_tags({"u": "y"}, synchronous=False)]
        assert all(isinstance(op, RunOperations) for op in ops)
        combine(ops).wait()
    lg = lineage.get_lineage()
    assert _event_keys(lg, run.id) == [("params", "a"), ("metric", "m"), ("params", "b"), ("tags", "t"),
                                       ("params", "c"), ("metric", "m"), ("tags", "u")]
    view = lineage.get_run(run.info.run_id)
    assert view.data.params == {"a": "1", "b": "2", "c": "3"}
    assert view.data.metrics == {"m": 0.25} and view.data.tags["t"] == "x" and view.data.tags["u"] == "y"
    assert lg.verify().ok


def test_a_synchronous_tag_after_a_queued_one_stays_the_latest(fluent_project: Path) -> None:
    with lineage.start_run() as run:
        for i in range(200):
            lineage.set_tag("phase", f"queued {i}", synchronous=False)
        lineage.set_tag("phase", "final")
    assert lineage.get_run(run.info.run_id).data.tags["phase"] == "final"


def test_a_refused_call_fails_alone_and_wait_names_it(fluent_project: Path, caplog: pytest.LogCaptureFixture) -> None:
    with lineage.start_run() as run:
        lineage.log_param("lr", 0.1)
        before = [lineage.log_metric("loss", 1.0 / (i + 1), step=i, synchronous=False) for i in range(50)]
        bad = lineage.log_param("lr", 0.2, synchronous=False)  # params are immutable
        after = [lineage.log_param(f"p{i}", i, synchronous=False) for i in range(50)]
        with caplog.at_level(logging.WARNING, logger="lineage"):
            for _ in range(2):  # (a second wait gives the same answer)
                with pytest.raises(lineage.LineageError, match=r"WriteRefusedError: param 'lr' .* is already '0.1'"):
                    bad.wait()
            combine(before + after).wait()  # the others were written
    assert "1 asynchronous write failed: WriteRefusedError" in caplog.text  # reported even to one who never waits
    view = lineage.get_run(run.info.run_id)
    assert view.data.params["lr"] == "0.1" and len(view.data.params) == 51
    assert len(lineage.get_lineage().metric_history(run.node, "loss")) == 50


def test_a_call_failing_part_way_keeps_nothing_of_itself_and_loses_none_of_the_others(lg: lineage.Lineage) -> None:
    with lg.start_run("fit") as run:
        def half_written() -> None:
            run.log_param("half", 1)
            raise ZeroDivisionError("after its first write")

        first = [run.queue(lambda i=i: run.log_param(f"a{i}", i)) for i in range(20)]
        broken = run.queue(half_written)
        rest = [run.queue(lambda i=i: run.log_metric("m", i, step=i)) for i in range(20)]
        with pytest.raises(lineage.LineageError, match="ZeroDivisionError: after its first write"):
            broken.wait()
        combine(first + rest).wait()
        params = run.recorded_params()
    assert "half" not in params and len(params) == 20
    assert len(lg.metric_history(run.node, "m")) == 20
    assert lg.verify().ok


def test_the_run_ends_after_its_queued_writes(lg: lineage.Lineage) -> None:
    with lg.start_run("fit") as run:
        for i in range(300):
            run.queue(lambda i=i: run.log_metric("loss", 1.0 / (i + 1), step=i))
    assert len(lg.metric_history(run.node, "loss")) == 300
    types = [ev.type for ev in lg.store.events() if (ev.payload or {}).get("run") == run.id]
    assert types[-1] == "run_ended" and types.count("metric") == 300


def test_closing_the_store_writes_what_is_queued(tmp_path: Path) -> None:
    path = tmp_path / ".lineage" / "lineage.db"
    lg = lineage.open(path)
    run = lg.start_run("fit")
    for i in range(100):
        run.queue(lambda i=i: run.log_param(f"p{i}", i))
    run_id = run.id
    lg.close()
    with lineage.open(path) as again:
        assert len(again.store.params_of(run_id, None)) == 100
        assert again.verify().ok


@pytest.mark.sqlite_only
def test_a_forked_child_queues_its_own_writes(tmp_path: Path) -> None:
    """A child forked while the parent has calls queued (a data-loader worker) starts
    with an empty queue of its own: its writes are kept, the parent's are not doubled,
    and neither waits for the other's thread."""
    import multiprocessing

    path = tmp_path / ".lineage" / "lineage.db"
    with lineage.open(path) as lg:
        run = lg.start_run("parent")
        ops = [run.queue(lambda i=i: run.log_param(f"p{i}", i)) for i in range(300)]

        def child() -> None:
            with lg.start_run("child") as mine:
                for i in range(50):
                    mine.queue(lambda i=i: mine.log_param(f"c{i}", i))
            lineage.flush_async_logging()

        proc = multiprocessing.get_context("fork").Process(target=child)
        proc.start()
        proc.join(60)
        assert proc.exitcode == 0
        combine(ops).wait()
        run.end()
        children = [n for n in lg.runs() if n.attrs.get("name") == "child" or n.name == "child"]
        assert len(run.recorded_params()) == 300
        assert len(children) == 1 and len(lg.store.params_of(children[0].id, None)) == 50
        assert lg.verify().ok


def test_inside_a_batch_a_queued_call_is_written_at_once(lg: lineage.Lineage) -> None:
    with lg.start_run("fit") as run, lg.batch():
        op = run.queue(lambda: run.log_param("in_batch", 1))
        assert run.recorded_params(["in_batch"]) == {"in_batch": "1"}  # no wait for a writer holding our lock
        op.wait()


def test_the_switch_mlflow_reads(fluent_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with lineage.start_run():
        assert lineage.log_param("off", 1) == 1
        lineage.config.enable_async_logging()
        assert isinstance(lineage.log_param("on", 2), RunOperations)
        assert isinstance(lineage.log_param("forced", 3, synchronous=True), int)
        lineage.config.enable_async_logging(False)
        assert lineage.log_param("off_again", 4) == 4
        monkeypatch.setenv(ASYNC_ENV, "true")
        assert isinstance(lineage.log_metric("m", 1.0), RunOperations)
        lineage.flush_async_logging()
        run = lineage.active_run()
        assert run is not None and set(run.recorded_params()) == {"off", "on", "forced", "off_again"}
    with pytest.raises(lineage.UnsupportedError, match="config.enable_system_metrics_logging"):
        lineage.config.enable_system_metrics_logging()


def test_the_client_queues_the_same_calls(fluent_project: Path) -> None:
    client = lineage.MlflowClient()
    run = client.create_run(experiment_id="0")
    rid = run.info.run_id
    ops = [client.log_param(rid, "a", 1, synchronous=False),
           client.log_metric(rid, "m", 0.5, synchronous=False),
           client.log_batch(rid, params=[("b", 2)], tags=[("t", "x")], metrics=[("m", 0.25)], synchronous=False),
           client.set_tag(rid, "u", "y", synchronous=False)]
    combine(ops).wait()
    client.set_terminated(rid)
    data = client.get_run(rid).data
    assert data.params == {"a": "1", "b": "2"} and data.metrics["m"] == 0.25 and data.tags["u"] == "y"


def test_a_script_that_exits_with_writes_queued_keeps_them(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import lineage as mlflow\n"
        "mlflow.config.enable_async_logging()\n"
        "mlflow.start_run()\n"
        "for i in range(500):\n"
        "    mlflow.log_metric('loss', 1.0 / (i + 1), step=i)\n"
        "print(mlflow.active_run().info.run_id)\n"  # no end_run, no flush: the exit does both
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    with lineage.open(tmp_path / ".lineage" / "lineage.db") as lg:
        run = resolve_run(lg, out.stdout.strip())
        assert len(lg.metric_history(run, "loss")) == 500
        assert run_view(lg, run).info.status == "FINISHED" and lg.verify().ok


_CALLS = st.lists(st.tuples(st.sampled_from(["param", "metric", "tag"]), st.sampled_from("abc"),
                            st.integers(0, 3), st.booleans()), max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=_CALLS)
def test_queued_or_not_the_store_ends_the_same(tmp_path_factory: pytest.TempPathFactory, calls: list[Any]) -> None:
    """Any mix of queued and immediate calls leaves what the same calls made
    immediately leave: the same params (a refused re-log refused either way), the
    same latest tags and the same metric histories, in the same ledger order."""
    results = []
    for queue_some in (False, True):
        with lineage.open(tmp_path_factory.mktemp("s") / "lineage.db") as lg:
            with lg.start_run("fit") as run:
                ops = []
                for kind, key, value, queued in calls:
                    def call(kind: str = kind, key: str = key, value: int = value) -> None:
                        if kind == "param":
                            run.log_param(key, value)
                        elif kind == "metric":
                            run.log_metric(key, value)
                        else:
                            run.set_tag(key, value)
                    if queue_some and queued:
                        ops.append(run.queue(call))
                    else:
                        with contextlib.suppress(lineage.WriteRefusedError):
                            call()
                for op in ops:
                    with contextlib.suppress(lineage.LineageError):
                        op.wait()
            histories = {k: [p.value for p in lg.metric_history(run.node, k)] for k in "abc"
                         if any(c[0] == "metric" and c[1] == k for c in calls)}
            results.append((run.recorded_params(), run_view(lg, run.node).data.tags, histories, _event_keys(lg, run.id)))
            assert lg.verify().ok
    assert results[0] == results[1]


def _other_process_writes(path: str, n: int) -> None:  # pragma: no cover - runs in a child
    with lineage.open(path) as lg, lg.start_run("other") as run:
        for i in range(n):
            run.log_metric("other", i, step=i)


@pytest.mark.stress
def test_queued_writes_under_another_process_and_a_synchronous_thread(tmp_path: Path) -> None:
    """The writer thread shares the store's lock with another process writing each
    call and with a thread of its own process writing synchronously: every queued
    call is written once, in order, and the ledger verifies."""
    import multiprocessing
    import threading

    path = tmp_path / ".lineage" / "lineage.db"
    with lineage.open(path) as lg:
        other = multiprocessing.get_context("spawn").Process(target=_other_process_writes, args=(str(path), 400))
        other.start()
        run = lg.start_run("fit")
        sync_errors: list[BaseException] = []

        def tags() -> None:
            try:
                for i in range(200):
                    run.set_tag("sync", str(i))
            except BaseException as exc:  # reported below
                sync_errors.append(exc)

        side = threading.Thread(target=tags)
        side.start()
        ops = [run.queue(lambda i=i: run.log_metric("loss", 1.0 / (i + 1), step=i)) for i in range(3000)]
        combine(ops).wait()
        side.join(60)
        other.join(120)
        run.end()
        assert not sync_errors and other.exitcode == 0
        history = lg.metric_history(run.node, "loss")
        assert [p.step for p in history] == list(range(3000))
        report = lg.verify()
        assert report.ok, report.problems[:3]


def test_a_queued_metric_with_a_dataset_is_written_at_once(fluent_project: Path) -> None:
    """The dataset is hashed before its write transaction, never inside the writer's
    batch (which would hold the store's lock for the whole hash)."""
    import numpy as np

    with lineage.start_run() as run:
        op = lineage.log_metric("auc", 0.9, dataset=np.arange(1000).reshape(100, 10), synchronous=False)
        assert isinstance(op, RunOperations)
        assert run.store._async._thread is None  # nothing was queued: no writer thread was needed
        op.wait()
        assert lineage.get_run(run.info.run_id).data.metrics == {"auc": 0.9}


def test_a_queued_call_that_ends_the_writer_thread_does_not_strand_the_rest(tmp_path: Path) -> None:
    """A call raising what is not an Exception (SystemExit, which in a thread ends
    only the thread) fails alone: the calls batched with it are still written."""
    with lineage.open(tmp_path / "lineage.db") as lg, lg.start_run("fit") as run:
        def leave() -> None:
            raise SystemExit(3)

        gate = threading.Event()
        blocked = run.queue(gate.wait)  # (holds the writer until the rest is queued)
        ended = run.queue(leave)
        after = [run.queue(lambda i=i: run.log_param(f"p{i}", i)) for i in range(10)]
        gate.set()
        blocked.wait()
        with pytest.raises(lineage.LineageError, match="SystemExit"):
            ended.wait()
        combine(after).wait()
        assert len(run.recorded_params()) == 10


def test_a_busy_store_fails_the_batch_once_not_once_per_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holding the write lock past the busy wait: the batch's calls
    all fail with StoreBusyError after one wait (not one wait per call), and once
    the lock is free the next calls are written."""
    import sqlite3
    import time

    from lineage.store import sqlite as store_sqlite

    path = tmp_path / "lineage.db"
    with lineage.open(path) as lg, lg.start_run("fit") as run:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's long write
        monkeypatch.setattr(store_sqlite, "BUSY_SECONDS", 0.3)
        try:
            gate = threading.Event()
            first = run.queue(gate.wait)  # (the next calls queue up behind it: one batch)
            ops = [run.queue(lambda i=i: run.log_param(f"p{i}", i)) for i in range(50)]
            t = time.monotonic()
            gate.set()
            with pytest.raises(lineage.LineageError, match=r"StoreBusyError: .* \(×50\)$"):
                combine(ops).wait()
            with pytest.raises(lineage.LineageError, match="StoreBusyError"):
                first.wait()
            assert time.monotonic() - t < 5  # 50 waits of 0.3 s would be 15 s
        finally:
            other.execute("ROLLBACK")
            other.close()
        run.queue(lambda: run.log_param("after", 1)).wait()
        assert run.recorded_params() == {"after": "1"}
