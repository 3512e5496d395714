"""The long versions of test_reliability (`make stress`): load, faults, many edits.

Each prints the figure docs/reliability.md reports (run with ``-s`` to see them).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import lock_holds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_reliability import ACTOR, _prediction_rows, dataset, small_writer
from test_reliability import test_every_kind_of_edit_fails_verify as _edit_property

import lineage
from lineage.model import Node, make_id, new_uuid7_hex
from lineage.query import rows as query_rows
from lineage.store import Store

pytestmark = pytest.mark.stress


def _writer_process(path: str, stop: Any, seed: int) -> None:  # pragma: no cover - runs in a child
    lg = lineage.open(path)
    model = None
    i = 0
    while not stop.is_set():
        if i % 5 == 4 and model is not None:
            lg.store.write_bulk("predictions", {"model": model}, "predictions", _prediction_rows(model, 200))
        else:
            with lg.start_run(f"p{seed}", params={"i": i}, tags={"round": str(i)}) as run:
                run.log_metric("loss", 1.0 / (i + 1))
                if model is None:
                    model = make_id("model", f"{seed:02x}" * 32)
                    lg.store.add_node(Node(model, "model", f"m{seed}", {}))
        i += 1
        time.sleep(0.05)  # steady writing, not a spin: the store stays a size a full verify replays fast
    lg.close()


def _writer_thread(lg: Any, stop: threading.Event, seed: int, errors: list[BaseException]) -> None:
    i = 0
    try:
        while not stop.is_set():
            if i % 2:
                with lg.batch():
                    lg.store.add_node(dataset(f"{seed + 128:02x}{i:062x}", f"t{seed}"))
            else:
                with lg.start_run(f"t{seed}") as run:
                    run.log_param("i", i)
            i += 1
            time.sleep(0.05)
    except BaseException as exc:
        errors.append(exc)


def test_a_thousand_verifies_under_four_processes_and_four_threads(tmp_path: Path) -> None:
    path = tmp_path / "lineage.db"
    lineage.open(path).close()
    ctx = multiprocessing.get_context("fork")
    stop_p = ctx.Event()
    procs = [ctx.Process(target=_writer_process, args=(str(path), stop_p, n)) for n in range(4)]
    for p in procs:
        p.start()
    lg = lineage.open(path)
    stop_t = threading.Event()
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_writer_thread, args=(lg, stop_t, n, errors)) for n in range(4)]
    for t in threads:
        t.start()
    verifies = alarms = full = 0
    started = time.monotonic()
    try:
        while verifies < 1000:
            # a full replay every 25th time, else from the last checkpoint (recorded
            # every tenth), as a CI job and audits would
            report = lg.verify(since_checkpoint=verifies % 25 != 0, record=verifies % 10 == 9)
            verifies += 1
            full += verifies % 25 == 1
            if not report.ok:
                alarms += 1
                print("FALSE ALARM", report)
    finally:
        stop_t.set()
        stop_p.set()
        for t in threads:
            t.join()
        for p in procs:
            p.join(60)
    events = lg.store.head()[0]
    final = lg.verify()
    lg.close()
    print(f"\nFIGURE load: {verifies} verifies ({full} full) in {time.monotonic() - started:.1f} s while 4 processes and "
          f"4 threads wrote {events} events: {alarms} false alarms")
    assert not errors, errors
    assert all(p.exitcode == 0 for p in procs)
    assert alarms == 0 and final.ok


def _victim(path: str, out: int) -> None:  # pragma: no cover - runs in a child, killed
    """Writes forever, telling the parent (through a pipe) each id once committed."""
    s = Store(path, actor=ACTOR)
    model = make_id("model", "ee" * 32)
    s.add_node(Node(model, "model", "victim", {}))
    i = 0
    while True:
        kind = i % 4
        if kind == 0:
            node = dataset(new_uuid7_hex() * 2, "v")
            s.add_node(node)
            os.write(out, f"node {node.id}\n".encode())
        elif kind == 1:
            rows = list(_prediction_rows(model, random.randint(1, 20_000)))
            s.write_bulk("predictions", {"model": model}, "predictions", iter(rows))
            os.write(out, f"pred {rows[-1][0]} {len(rows)}\n".encode())
        elif kind == 2:
            with s.transaction():
                a, b = dataset(new_uuid7_hex() * 2, "x"), dataset(new_uuid7_hex() * 2, "y")
                s.add_node(a)
                s.add_node(b)
            os.write(out, f"node {a.id}\nnode {b.id}\n".encode())
        else:
            s.verify(record=True)
        i += 1


def test_fifty_sigkills_at_random_points_lose_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "lineage.db"
    Store(path, actor=ACTOR).close()
    committed: list[str] = []
    rng = random.Random(8)
    started = time.monotonic()
    kills = 0
    for _ in range(50):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover
            os.close(r)
            try:
                _victim(str(path), w)
            finally:
                os._exit(1)
        os.close(w)
        time.sleep(rng.uniform(0.02, 0.4))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        kills += 1
        with os.fdopen(r) as f:
            committed += [line for line in f.read().splitlines() if line.count(" ") >= 1]
        s = Store(path, actor=ACTOR)
        report = s.verify()
        assert report.ok, report
        s.close()
    s = Store(path, actor=ACTOR)
    missing = []
    for line in committed:
        parts = line.split()
        if parts[0] in ("node", "pred") and not s.node_exists(parts[1]):
            missing.append(line)
    report = s.verify()
    preds = s.conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    events = s.head()[0]
    s.close()
    print(f"\nFIGURE faults: {kills} SIGKILLs in {time.monotonic() - started:.1f} s; {len(committed)} commits reported, "
          f"{len(missing)} lost; {events} events, {preds} predictions; verify ok after every kill: {report.ok}")
    assert kills >= 50 and not missing and report.ok


def test_a_large_bulk_write_never_starves_small_writers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "lineage.db"
    s = Store(path, actor=ACTOR)
    model = make_id("model", "d4" * 32)
    s.add_node(Node(model, "model", "clf", {}))
    n = 300_000
    held = lock_holds(s, monkeypatch)  # each write transaction of the bulk writer: a chunk's load, or the publish
    started = time.perf_counter()
    with small_writer(path, pause=0.02) as waits:
        s.write_bulk("predictions", {}, "predictions", _prediction_rows(model, n))
    took = time.perf_counter() - started
    waits.sort()
    print(f"\nFIGURE bulk: {n:,} predictions in {took:.1f} s; the write lock held {len(held)} times, longest "
          f"{max(held):.3f} s (publish {held[-1]:.3f} s); {len(waits)} small writes meanwhile, median "
          f"{waits[len(waits) // 2] * 1000:.1f} ms, longest wait {waits[-1]:.3f} s")
    assert len(waits) > 20
    assert max(held) < 0.5 and waits[-1] < 0.5
    assert len(s.nodes(kind="prediction", limit=5)) == 5 and query_rows.prediction_summary(s, model)["count"] == n
    assert s.verify().ok
    s.close()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_six_hundred_edits_of_every_kind_fail_verify(tmp_path: Path, data: st.DataObject) -> None:
    _edit_property.hypothesis.inner_test(tmp_path, data)
