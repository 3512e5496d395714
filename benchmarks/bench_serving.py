"""Serving benchmarks: what recording predictions from a live service costs, and what
`lineage run` adds to each pipeline step. Short runs (a minute or so in all).

    python benchmarks/bench_serving.py                 # everything
    python benchmarks/bench_serving.py --only logger,run

Prints a Markdown table for docs/performance.md, each figure beside its baseline:

- ``log() per call``: one row per call, timed around each call (p50, p99); baseline:
  appending the same tuple to a list (the floor of any queue).
- ``logger rows/s``: one row per call from one producer thread, until ``flush()``
  returns; baseline: ``lg.log_predictions`` of the same rows in one bulk call.
- ``service``: examples/serve.py on 127.0.0.1 under a bounded load (keep-alive
  client threads), with and without the logger; then the predictions recorded
  after a clean shutdown, against the answers given.
- ``lineage run``: ``lineage run -- true`` in a git repository, against ``true``
  itself (wall median, and the CPU time of the whole process tree).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lineage  # noqa: E402 - after the path is set


def _model(lg: lineage.Lineage) -> lineage.Node:
    from sklearn.dummy import DummyClassifier

    with lg.start_run("fit") as run:
        return run.log_model(DummyClassifier().fit([[0, 0], [1, 1]], [0, 1]), "clf")


def bench_logger(folder: Path, calls: int = 20_000, rows: int = 100_000) -> list[dict[str, Any]]:
    out = []
    with lineage.open(folder / "a" / "lineage.db") as lg:
        model = _model(lg)
        logger = lg.prediction_logger(model, max_batch=5000, max_delay=0.2, max_queue=10 * calls)
        times = []
        clock = time.perf_counter_ns
        for i in range(calls):
            x, y, r = [[i, i]], [i & 1], [f"p{i}"]
            c0 = clock()
            logger.log(x, y, request_ids=r)
            times.append(clock() - c0)
        logger.close()
        floor = []
        sink: list[Any] = []
        for i in range(calls):
            x, y, r = [[i, i]], [i & 1], [f"p{i}"]
            c0 = clock()
            sink.append((x, y, r, None, time.time(), 1))
            floor.append(clock() - c0)
        times.sort()
        floor.sort()
        q = lambda v, p: v[int(p * (len(v) - 1))] / 1000  # noqa: E731 - µs at quantile p
        out.append({"what": "log() per call, p50", "ours": f"{q(times, .5):.1f} µs", "raw": f"{q(floor, .5):.2f} µs",
                    "goal": "≤ 20 µs", "ok": q(times, .5) <= 20})
        out.append({"what": "log() per call, p99", "ours": f"{q(times, .99):.1f} µs", "raw": f"{q(floor, .99):.2f} µs",
                    "goal": "", "ok": True})
    # sustained: one row per call, until flushed
    with lineage.open(folder / "b" / "lineage.db") as lg:
        model = _model(lg)
        X = [[i, i] for i in range(rows)]
        y = [i & 1 for i in range(rows)]
        ids = [f"s{i}" for i in range(rows)]
        logger = lg.prediction_logger(model, max_batch=10_000, max_delay=0.2, max_queue=50_000)
        t0 = time.perf_counter()
        for i in range(rows):
            logger.log(X[i:i + 1], y[i:i + 1], request_ids=ids[i:i + 1])
        logger.flush()
        ours = rows / (time.perf_counter() - t0)  # rows/s
        logger.close()
        assert logger.written == rows
    # the writer thread alone: everything queued first, then one flush
    with lineage.open(folder / "d" / "lineage.db") as lg:
        model = _model(lg)
        logger = lg.prediction_logger(model, max_batch=rows, max_delay=3600, max_queue=rows)
        for i in range(rows):
            logger.log(X[i:i + 1], y[i:i + 1], request_ids=ids[i:i + 1])
        t0 = time.perf_counter()
        logger.flush()
        writer = rows / (time.perf_counter() - t0)
        logger.close()
    with lineage.open(folder / "c" / "lineage.db") as lg:
        model = _model(lg)
        t0 = time.perf_counter()
        lg.log_predictions(model, X, y, request_ids=ids)
        bulk = rows / (time.perf_counter() - t0)
    out.append({"what": f"logger, {rows:,} rows one per call", "ours": f"{ours:,.0f} rows/s",
                "raw": f"{bulk:,.0f} rows/s (log_predictions bulk)", "goal": "≥ 0.8× bulk",
                "ok": ours >= 0.8 * bulk, "ratio": ours / bulk})
    out.append({"what": f"logger's writer thread alone, {rows:,} rows queued one per call", "ours": f"{writer:,.0f} rows/s",
                "raw": f"{bulk:,.0f} rows/s (log_predictions bulk)", "goal": "≥ 0.8× bulk",
                "ok": writer >= 0.8 * bulk, "ratio": writer / bulk})
    return out


def _serve(folder: Path, n: int, clients: int, log: bool) -> tuple[float, str]:
    db = folder / ("log" if log else "nolog") / ".lineage" / "lineage.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(ROOT / "examples" / "serve.py"), "--db", str(db), "--port", "0", "--max-requests", str(n)]
    proc = subprocess.Popen(cmd + ([] if log else ["--no-log"]), env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().rsplit(":", 1)[1])
    per = n // clients

    def client(c: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in range(per):
            body = json.dumps({"features": [30 + i % 40, 20_000 + i]})
            conn.request("POST", "/predict", body, {"X-Request-ID": f"c{c}-{i}"})
            conn.getresponse().read()
        conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = per * clients / (time.perf_counter() - t0)
    out, _ = proc.communicate(timeout=120)
    return rate, out.strip().splitlines()[-1]


def bench_service(folder: Path, n: int = 2000, clients: int = 4) -> list[dict[str, Any]]:
    _serve(folder / "warm", 40, 1, True)  # trains and caches once: neither timed run pays for it
    without, _ = _serve(folder, n, clients, False)
    with_log, summary = _serve(folder, n, clients, True)
    recorded = int(summary.split("recorded ")[1].split()[0])
    return [
        {"what": f"service, {n:,} requests, {clients} clients", "ours": f"{with_log:,.0f} req/s logged",
         "raw": f"{without:,.0f} req/s not logged", "goal": "", "ok": True, "ratio": with_log / without},
        {"what": "predictions recorded after a clean shutdown", "ours": f"{recorded:,}", "raw": f"{n:,} answered",
         "goal": "0 lost", "ok": recorded == n},
    ]


def _timed(cmd: list[str], cwd: Path, env: dict[str, str], repeats: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (user + sys of the process tree)."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def bench_run(folder: Path, repeats: int = 7) -> list[dict[str, Any]]:
    repo = folder / "repo"
    repo.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GIT_CONFIG_GLOBAL": os.devnull, "LINEAGE_USER": "bench",
           "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its .pyc files: measure that
    env.pop("LINEAGE_DB", None)
    (repo / "step.py").write_text("pass\n")
    for args in (["init", "-q"], ["add", "step.py"], ["commit", "-qm", "step"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    lineage_cmd = [sys.executable, "-m", "lineage"]
    subprocess.run([*lineage_cmd, "init"], cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)
    step = [sys.executable, "step.py"]
    subprocess.run([*lineage_cmd, "run", "--", *step], cwd=repo, env=env, check=True, stderr=subprocess.DEVNULL)  # warm
    bare_wall, bare_cpu = _timed(step, repo, env, repeats)
    run_wall, run_cpu = _timed([*lineage_cmd, "run", "--", *step], repo, env, repeats)
    pass_wall, pass_cpu = _timed([sys.executable, "-c", "pass"], repo, env, repeats)
    over = run_wall - bare_wall
    return [
        {"what": "`lineage run` overhead per step (wall)", "ours": f"{over:.3f} s",
         "raw": f"{bare_wall:.3f} s the step alone; {pass_wall:.3f} s `python -c pass`", "goal": "< 0.2 s",
         "ok": over < 0.2},
        {"what": "`lineage run` overhead per step (CPU)", "ours": f"{run_cpu - bare_cpu:.3f} s",
         "raw": f"{bare_cpu:.3f} s the step alone; {pass_cpu:.3f} s `python -c pass`", "goal": "", "ok": True},
    ]


BENCHES: dict[str, Callable[[Path], list[dict[str, Any]]]] = {"logger": bench_logger, "service": bench_service, "run": bench_run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated: {', '.join(BENCHES)}")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHES)
    folder = Path(tempfile.mkdtemp(prefix="lineage-bench-serving-"))
    rows: list[dict[str, Any]] = []
    try:
        for name in names:
            rows += BENCHES[name](folder / name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| measure | lineage | baseline | goal | met |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        ratio = f" ({r['ratio']:.2f}×)" if "ratio" in r else ""
        print(f"| {r['what']} | {r['ours']}{ratio} | {r['raw']} | {r['goal']} | {'yes' if r['ok'] else 'NO'} |")


if __name__ == "__main__":
    main()
