"""Tracking benchmarks: what recording costs, against raw sqlite3 / hashlib doing the
same work in the same process.

    python benchmarks/bench_tracking.py            # the sizes of docs/performance.md
    python benchmarks/bench_tracking.py --quick    # smaller sizes, a minute or so
    python benchmarks/bench_tracking.py --only params,predictions

Not a timed test: it prints medians of several repeats, the raw baseline and the
ratio, at the default durability (``synchronous=NORMAL``) and at ``full``, as a
Markdown table ready for docs/performance.md. Every store and file lives in a
temporary directory that is removed at the end.

Baselines (what "raw" means for each line):

- ``log_param`` / ``log_metric``: ``BEGIN IMMEDIATE; INSERT`` one row into the same
  table (same schema and indexes, same WAL and ``synchronous``); ``COMMIT``.
- ``log_predictions``: ``executemany`` of the very rows lineage writes (ids, model,
  input digest, output, score, request id, time, event), prepared beforehand, in one
  transaction, in batches of 5,000, into the same table.
- ``log_model``: ``pickle.dumps`` + ``hashlib.sha256`` + writing the bytes to a file.
- ``log_dataset``: ``hashlib.sha256`` over the file read in 1 MiB chunks (page
  cache warm for both).
- ``verify``: recomputing the hash chain alone (``sha256(prev ‖ type ‖ 0 ‖
  payload digest ‖ rows digest)`` per event) over the events table, without
  checking any row or payload.
- start-up: ``python -c pass``.
- empty run (``start_run`` and its end, nothing logged): none; the goal is absolute
  (≤ 5 ms). Measured with the script in a git work tree of 200 files (files older
  than a few seconds, as in a project being worked on) and outside git.
- ``log_dataset`` of a new name: the same call at 1,000 datasets, so "raw" there is
  lineage itself at a tenth of the store (the ratio says whether it stays flat).

On PostgreSQL (``--db URL``, or ``LINEAGE_BENCH_POSTGRES`` / ``LINEAGE_TEST_POSTGRES``;
skipped with one line without a server), each in a fresh schema of that server:

- ``log_param pg`` / ``log_metric pg``: a plain psycopg connection doing ``BEGIN;
  INSERT`` of one row into the same table (same schema and indexes); ``COMMIT``.
- ``log_predictions pg``: a binary ``COPY`` of the very rows lineage writes, prepared
  beforehand, in one transaction, into the same table.
- ``empty run pg``: none; the goal is SQLite's (≤ 5 ms).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import pickle
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# name prefix: (goal as written in the issue, test of a result row, durabilities it is set for)
#: measure name prefix -> (goal, test, durabilities), the first prefix that matches
#: deciding; None: no goal (a small write on PostgreSQL is round trips, which the
#: SQLite goal of 0.2 ms does not measure: it is compared with its raw baseline)
GOALS: dict[str, tuple[str, Callable[[dict[str, Any]], bool], tuple[str, ...]] | None] = {
    "log_param pg": None,
    "log_metric pg": None,
    # issue 10's goal on a server: the raw binary COPY is the ceiling
    "log_predictions pg": ("≥ 100,000/s, ≥ 0.5× raw", lambda r: r["ours"] >= 100_000 and r["ratio"] >= 0.5, ("normal",)),
    "log_param": ("≤ 0.2 ms", lambda r: r["ours"] <= 0.2, ("normal",)),
    "log_metric": ("≤ 0.2 ms", lambda r: r["ours"] <= 0.2, ("normal",)),
    # issue 16: 0.8× (issue 8's floor was 0.5×)
    "log_predictions": ("≥ 100,000/s, ≥ 0.8× raw", lambda r: r["ours"] >= 100_000 and r["ratio"] >= 0.8, ("normal",)),
    "log_model": ("≤ 50 ms", lambda r: r["ours"] <= 50, ("normal", "full")),
    "log_dataset": ("≥ 0.8× hashlib", lambda r: r["ratio"] >= 0.8, ("normal", "full")),
    "re-add": ("≤ 1 ms", lambda r: r["ours"] <= 1, ("normal", "full")),
    "verify": ("≥ 100,000 events/s", lambda r: r["ours"] >= 100_000, ("normal",)),
    "import lineage": ("≤ 0.3 s", lambda r: r["ours"] <= 0.3, ("normal",)),
    "empty run": ("≤ 5 ms", lambda r: r["ours"] <= 5, ("normal",)),
    "new dataset name": ("flat: ≤ 1.3× at 10× the datasets", lambda r: r["ratio"] <= 1.3, ("normal",)),
    "lineage --version": ("≤ 0.3 s", lambda r: r["ours"] <= 0.3, ("normal",)),
}

SIZES = {
    # name: (full, quick)
    "latency_calls": (2000, 300),
    "predictions": (1_000_000, 100_000),
    "dataset_mb": (500, 64),
    "verify_events": (1_000_000, 100_000),
}


class Bench:
    def __init__(self, root: Path, quick: bool, repeats: int) -> None:
        self.root = root
        self.quick = quick
        self.repeats = repeats
        self.rows: list[dict[str, Any]] = []
        self._n = itertools.count()

    def size(self, name: str) -> int:
        full, quick = SIZES[name]
        return quick if self.quick else full

    def fresh_dir(self) -> Path:
        d = self.root / f"s{next(self._n)}"
        d.mkdir()
        return d

    def open(self, durability: str) -> Any:
        """A new store; the durability is read from the environment when it opens."""
        import lineage

        os.environ["LINEAGE_DURABILITY"] = durability
        return lineage.open(self.fresh_dir() / ".lineage" / "lineage.db")

    def raw(self, durability: str) -> sqlite3.Connection:
        """A bare sqlite3 connection on a new file with lineage's schema, configured
        as lineage configures its own (WAL, synchronous, busy timeout)."""
        from lineage.store import MIGRATIONS

        conn = sqlite3.connect(self.fresh_dir() / "raw.db", isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durability == 'full' else 'NORMAL'}")
        for version in sorted(MIGRATIONS):  # the same schema lineage's store has
            step = MIGRATIONS[version]
            if not isinstance(step, str):
                continue  # a migration written as code: the search index (its cost is lineage's, not raw's)
            for stmt in step.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
        return conn

    def record(self, name: str, durability: str, ours: float, raw: float | None, unit: str,
               *, higher_is_better: bool = False, note: str = "") -> None:
        ratio = ours / raw if raw else None  # lineage ÷ raw, in the unit shown
        row = {"name": name, "durability": durability, "ours": ours, "raw": raw, "unit": unit,
               "ratio": ratio, "note": note, "higher": higher_is_better}
        self.rows.append(row)
        raw_text = "–" if raw is None else _fmt(raw, unit)
        ratio_text = "" if ratio is None else f"  ({ratio:.2f}× raw)"
        goal = _goal(row)
        if goal is not None:
            ratio_text += f"  goal {goal[0]}: {'met' if goal[1] else 'MISSED'}"
        print(f"  {name:<20} {durability:<7} {_fmt(ours, unit):>16}   raw {raw_text:>16}{ratio_text} {note}", flush=True)


def _fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.3f} ms"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "MB/s":
        return f"{value:,.0f} MB/s"
    return f"{value:g} {unit}"


def median_of(repeats: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(repeats))


# ---------------------------------------------------------------------------
# latency: one commit per call


def bench_params(b: Bench, durability: str) -> None:
    n = b.size("latency_calls")

    def ours_param() -> float:
        with b.open(durability) as lg:
            run = lg.start_run("bench")
            times = []
            for i in range(n):
                t = time.perf_counter()
                run.log_param(f"param_{i}", i)
                times.append(time.perf_counter() - t)
            run.end()
        return statistics.median(times) * 1e3

    def ours_metric() -> float:
        with b.open(durability) as lg:
            run = lg.start_run("bench")
            times = []
            for i in range(n):
                t = time.perf_counter()
                run.log_metric("loss", 1.0 / (i + 1), step=i)
                times.append(time.perf_counter() - t)
            run.end()
        return statistics.median(times) * 1e3

    def raw(table: str) -> Callable[[], float]:
        def go() -> float:
            return raw_row_commits(b.raw(durability), table, n, mark="?", begin="BEGIN IMMEDIATE")
        return go

    b.record("log_param", durability, median_of(b.repeats, ours_param), median_of(b.repeats, raw("params")), "ms")
    b.record("log_metric", durability, median_of(b.repeats, ours_metric), median_of(b.repeats, raw("metrics")), "ms")


# ---------------------------------------------------------------------------
# predictions: throughput of one bulk event


def raw_row_commits(conn: Any, table: str, n: int, *, mark: str, begin: str) -> float:
    """The raw baseline of one logged value: median milliseconds of ``begin``, one
    INSERT of a param or metric row and COMMIT, ``n`` times, on a plain connection
    (sqlite3 or psycopg: ``mark`` is its placeholder); closes ``conn``."""
    times = []
    for i in range(n):
        t = time.perf_counter()
        conn.execute(begin)
        if table == "params":
            conn.execute(f"INSERT INTO params (run, key, value, event) VALUES ({', '.join([mark] * 4)})",
                         ("run:1", f"param_{i}", str(i), i))
        else:
            conn.execute(f"INSERT INTO metrics (run, key, value, step, at, event) VALUES ({', '.join([mark] * 6)})",
                         ("run:1", "loss", 1.0 / (i + 1), i, "2026-01-01T00:00:00Z", i))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - t)
    conn.close()
    return statistics.median(times) * 1e3


def _wait_checkpointed(conn: Any) -> None:
    """Return once every frame of the WAL is in the database file: copied by the
    store's checkpointer thread (this call's own passive checkpoint gives way to it),
    or by this call when the thread has not started yet."""
    from lineage.errors import StoreBusyError

    while True:
        try:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except (sqlite3.OperationalError, StoreBusyError):  # the thread is checkpointing
            busy = 1
        if not busy and frames == copied:
            return
        time.sleep(0.001)


def bench_predictions(b: Bench, durability: str) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from lineage import hashing
    from lineage.model import canonical_json, now_iso, uuid7_batch

    n = b.size("predictions")
    rng = np.random.default_rng(0)
    X = rng.random((n, 8))
    y = (X[:, 0] > 0.5).astype(np.int64)
    scores = X[:, 0].copy()
    clf = LogisticRegression().fit(X[:2000], y[:2000])

    settled: list[float] = []

    def ours() -> float:
        with b.open(durability) as lg:
            with lg.start_run("fit") as run:
                model = run.log_model(clf, "clf")
            t = time.perf_counter()
            lg.log_predictions(model, X, y, scores=scores)
            call = time.perf_counter() - t
            # The call leaves copying the load from the WAL into the database file to
            # the store's checkpointer thread; raw pays that copy inside its COMMIT.
            # So also: the time until that copy is done as well.
            _wait_checkpointed(lg.store.conn)
            settled.append(n / (time.perf_counter() - t))
            return n / call

    # the rows lineage writes, built before the clock starts
    model_id = "model:" + "ab" * 32
    at = now_iso()
    rows = list(zip(uuid7_batch(n, "prediction:"), itertools.repeat(model_id), hashing.row_digests(X),
                    map(canonical_json, y.tolist()), scores.tolist(), itertools.repeat(None), itertools.repeat(at),
                    itertools.repeat(1)))
    sql = ("INSERT INTO predictions (id, model, input_digest, output, score, request_id, created_at, event) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")

    def raw() -> float:
        conn = b.raw(durability)
        t = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for i in range(0, n, 5000):
            conn.executemany(sql, rows[i : i + 5000])
        conn.execute("COMMIT")
        rate = n / (time.perf_counter() - t)
        conn.close()
        return rate

    repeats = max(3, b.repeats - 2)
    # interleaved, so both see the same machine weather
    ours_r, raw_r = [], []
    for _ in range(repeats):
        raw_r.append(raw())
        ours_r.append(ours())
    b.record("log_predictions", durability, statistics.median(ours_r), statistics.median(raw_r), "/s",
             higher_is_better=True, note=f"({n:,} rows)")
    b.record("  … and checkpointed", durability, statistics.median(settled), statistics.median(raw_r), "/s",
             higher_is_better=True, note="(until the WAL is copied back, as raw's COMMIT does)")


# ---------------------------------------------------------------------------
# models


def bench_model(b: Bench, durability: str) -> None:
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(1)
    X = rng.random((2000, 20))
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    clf = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0).fit(X, y)

    def ours() -> float:
        with b.open(durability) as lg, lg.start_run("fit") as run:
            t = time.perf_counter()
            run.log_model(clf, "random_forest")
            return (time.perf_counter() - t) * 1e3

    def raw() -> float:
        d = b.fresh_dir()
        t = time.perf_counter()
        data = pickle.dumps(clf, protocol=5)
        digest = hashlib.sha256(data).hexdigest()
        (d / digest).write_bytes(data)
        return (time.perf_counter() - t) * 1e3

    size = len(pickle.dumps(clf, protocol=5))
    b.record("log_model", durability, median_of(b.repeats, ours), median_of(b.repeats, raw), "ms",
             note=f"(RandomForest, 100 trees, {size / 2**20:.1f} MiB pickle)")


# ---------------------------------------------------------------------------
# datasets


def _make_csv(path: Path, mb: int) -> None:
    """A CSV of ``mb`` MiB: one random 1 MiB block of numeric rows, repeated (SHA-256
    and line counting do not care that blocks repeat; the page cache is warmed)."""
    import numpy as np

    rng = np.random.default_rng(2)
    lines = []
    size = 0
    while size < 2**20:
        line = ",".join(f"{v:.6f}" for v in rng.random(8)) + "\n"
        lines.append(line)
        size += len(line)
    block = ("".join(lines)).encode()[: 2**20]
    block = block[: block.rindex(b"\n") + 1]
    with path.open("wb") as f:
        f.write(b"a,b,c,d,e,f,g,h\n")
        for _ in range(mb):
            f.write(block)


def _raw_sha256(path: Path) -> float:
    """Seconds for hashlib to hash the file (1 MiB readinto chunks)."""
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    h = hashlib.sha256()
    t = time.perf_counter()
    with path.open("rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    h.hexdigest()
    return time.perf_counter() - t


def bench_dataset(b: Bench, durability: str) -> None:
    mb = b.size("dataset_mb")
    data_dir = b.fresh_dir()
    paths = {"csv": data_dir / "big.csv", "bin": data_dir / "big.bin"}
    _make_csv(paths["csv"], mb)
    shutil.copyfile(paths["csv"], paths["bin"])  # same bytes; the suffix decides whether rows are counted
    size_mb = paths["csv"].stat().st_size / 2**20
    for p in paths.values():
        _raw_sha256(p)  # warm the page cache

    for label, path in paths.items():
        def ours(path: Path = path) -> float:
            with b.open(durability) as lg:  # a new store: an empty stat cache, so the file is read
                t = time.perf_counter()
                lg.log_dataset(path, name="big")
                return size_mb / (time.perf_counter() - t)

        ours_r, raw_r = [], []
        for _ in range(max(3, b.repeats - 2)):
            raw_r.append(size_mb / _raw_sha256(path))
            ours_r.append(ours())
        what = "rows counted" if label == "csv" else "no row count"
        b.record(f"log_dataset .{label}", durability, statistics.median(ours_r), statistics.median(raw_r), "MB/s",
                 higher_is_better=True, note=f"({size_mb:.0f} MiB, {what})")

    with b.open(durability) as lg:
        lg.log_dataset(paths["csv"], name="big")
        times = []
        for _ in range(50):
            t = time.perf_counter()
            lg.log_dataset(paths["csv"], name="big")
            times.append((time.perf_counter() - t) * 1e3)
        assert lg.store.head()[0] > 0
    b.record("re-add unchanged", durability, statistics.median(times), None, "ms", note="(stat cache hit: no read)")


# ---------------------------------------------------------------------------
# verify


def _fill_ledger(lg: Any, events: int) -> None:
    """``events`` one-row metric events (the commonest event), in batches of 10,000."""
    from lineage.model import now_iso

    store = lg.store
    with lg.start_run("bench") as run:
        rid = run.id
        at = now_iso()
        done = store.head()[0]
        i = 0
        while done < events:
            with store.transaction():
                for _ in range(min(10_000, events - done)):
                    store.write("metric", {"run": rid, "key": "loss"}, {"metrics": [(rid, "loss", 1.0 / (i + 1), i, at, None, None)]})
                    i += 1
                    done += 1


def bench_verify(b: Bench, durability: str) -> None:
    n = b.size("verify_events")
    lg = b.open(durability)
    t = time.perf_counter()
    _fill_ledger(lg, n)
    build = time.perf_counter() - t
    events = lg.store.head()[0]

    def ours() -> float:
        t = time.perf_counter()
        report = lg.verify()
        dt = time.perf_counter() - t
        assert report.ok, report.problems[:3]
        return events / dt

    def raw() -> float:
        conn = sqlite3.connect(lg.store.path)
        t = time.perf_counter()
        prev = bytes(32)
        sha = hashlib.sha256
        for type_, pd, rd, _h in conn.execute("SELECT type, payload_digest, rows_digest, hash FROM events ORDER BY seq"):
            prev = sha(prev + type_.encode() + b"\x00" + bytes.fromhex(pd) + bytes.fromhex(rd)).digest()
        dt = time.perf_counter() - t
        assert prev.hex() == lg.store.head()[1]
        conn.close()
        return events / dt

    b.record("verify", durability, median_of(3, ours), median_of(3, raw), "/s", higher_is_better=True,
             note=f"({events:,} events, built in {build:.0f} s)")
    lg.close()


# ---------------------------------------------------------------------------
# a run's fixed cost, and writes against the store's size


def _script_repo(root: Path, files: int) -> Path:
    """A git work tree of ``files`` tracked files plus ``train.py``, committed, with
    every timestamp a minute old (the capture cache distrusts fresh ones)."""
    repo = root / "project"
    (repo / "src").mkdir(parents=True)
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    for i in range(files):
        (repo / "src" / f"m{i}.py").write_text(f"X = {i}\n")
    (repo / "train.py").write_text("print('fit')\n")
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=b", "-c", "user.email=b@e", "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)
    past = time.time() - 60
    for folder, dirs, names in os.walk(repo):
        for name in dirs + names:
            os.utime(os.path.join(folder, name), (past, past))
    return repo


def _empty_runs_ms(lg: Any, n: int) -> float:
    """Median milliseconds of ``n`` empty runs (start and end) in ``lg``, after five
    untimed ones (the first run captures; later ones re-validate)."""
    for _ in range(5):
        with lg.start_run("warm"):
            pass
    times = []
    for _ in range(n):
        t = time.perf_counter()
        with lg.start_run("empty"):
            pass
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def bench_runs(b: Bench, durability: str) -> None:
    n = 200 if b.quick else 1000

    def empty_runs(script: Path) -> float:
        saved = sys.argv[0]
        sys.argv[0] = str(script)  # as if started as `python <script>`
        try:
            with b.open(durability) as lg:
                return _empty_runs_ms(lg, n)
        finally:
            sys.argv[0] = saved

    if shutil.which("git"):
        repo = _script_repo(b.fresh_dir(), 200)
        b.record("empty run, in git", durability, median_of(3, lambda: empty_runs(repo / "train.py")), None, "ms",
                 note="(start + end, nothing logged; a 200-file work tree)")
    outside = b.fresh_dir() / "train.py"
    outside.write_text("print('fit')\n")
    b.record("empty run, no git", durability, median_of(3, lambda: empty_runs(outside)), None, "ms",
             note="(start + end, nothing logged; a script outside git)")



def bench_growth(b: Bench, durability: str) -> None:
    """``log_dataset`` of a new name at 1,000 and at 10,000 datasets: two stores in
    one process, calls alternating between them, so both see the same machine weather."""
    sizes = (1000, 10_000) if not b.quick else (500, 5000)
    stores = {size: b.open(durability) for size in sizes}
    try:
        for size, lg in stores.items():
            with lg.batch():
                for j in range(size):
                    lg.log_dataset(uri=f"s3://lake/seed/{j}.csv", digest=f"{j:064x}", name=f"seed_{j % 300}")
        times: dict[int, list[float]] = {size: [] for size in sizes}
        for i in range(300):
            for size, lg in stores.items():
                t = time.perf_counter()
                lg.log_dataset(uri=f"s3://lake/new/{i}.csv", digest=f"{1:032x}{i:032x}", name=f"new_{i}")
                times[size].append(time.perf_counter() - t)
    finally:
        for lg in stores.values():
            lg.close()
    small, large = sizes
    b.record(f"new dataset name at {large:,}", durability, statistics.median(times[large]) * 1e3,
             statistics.median(times[small]) * 1e3, "ms",
             note=f"(raw = the same call at {small:,} datasets, alternating, same process)")


# ---------------------------------------------------------------------------
# start-up


def bench_startup(b: Bench, durability: str) -> None:
    exe = sys.executable
    script = Path(exe).with_name("lineage")
    cli = [str(script)] if script.exists() else [exe, "-m", "lineage"]

    def timed(cmd: list[str]) -> float:
        def go() -> float:
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            return time.perf_counter() - t
        go()  # warm the file cache
        return median_of(max(7, b.repeats), go)

    base = timed([exe, "-c", "pass"])
    b.record("import lineage", durability, timed([exe, "-c", "import lineage"]), base, "s")
    b.record("lineage --version", durability, timed([*cli, "--version"]), base, "s")
    for mod in ("sqlite_utils", "mlflow"):
        probe = subprocess.run([exe, "-c", f"import {mod}"], capture_output=True)
        if probe.returncode == 0:
            b.record(f"(import {mod})", durability, timed([exe, "-c", f"import {mod}"]), base, "s", note="for scale")


# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# predictions on PostgreSQL (LINEAGE_BENCH_POSTGRES or LINEAGE_TEST_POSTGRES: a server URL)


def _pg_url() -> str:
    return os.environ.get("LINEAGE_BENCH_POSTGRES") or os.environ.get("LINEAGE_TEST_POSTGRES") or ""


class _PgSchemas:
    """Fresh schemas on the benchmark server (one store each), dropped at the end."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.admin = psycopg.connect(url, autocommit=True)
        self.schemas: list[str] = []

    def fresh(self) -> str:
        import uuid

        schema = "bench_" + uuid.uuid4().hex[:12]
        self.admin.execute(f"CREATE SCHEMA {schema}")
        self.schemas.append(schema)
        return self.url + ("&" if "?" in self.url else "?") + f"schema={schema}"

    def raw(self) -> Any:
        """A plain psycopg connection (autocommit) on a fresh schema holding lineage's
        tables and indexes, nothing else of lineage."""
        import psycopg

        from lineage.store import Store

        target = self.fresh()
        Store(target).close()
        conn = psycopg.connect(self.url, autocommit=True)
        conn.execute(f"SET search_path TO {target.rsplit('schema=', 1)[1]}")
        return conn

    def close(self) -> None:
        for schema in self.schemas:
            self.admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        self.admin.close()


def bench_params_postgres(b: Bench, durability: str) -> None:
    """``log_param`` / ``log_metric`` on PostgreSQL, one commit each, against a plain
    psycopg ``BEGIN; INSERT; COMMIT`` of the same row into the same table."""
    import lineage

    n = b.size("latency_calls")
    pg = _PgSchemas(_pg_url())

    def ours(kind: str) -> Callable[[], float]:
        def go() -> float:
            with lineage.open(pg.fresh()) as lg:
                run = lg.start_run("bench")
                times = []
                for i in range(n):
                    t = time.perf_counter()
                    if kind == "param":
                        run.log_param(f"param_{i}", i)
                    else:
                        run.log_metric("loss", 1.0 / (i + 1), step=i)
                    times.append(time.perf_counter() - t)
                run.end()
            return statistics.median(times) * 1e3
        return go

    def raw(table: str) -> Callable[[], float]:
        def go() -> float:
            return raw_row_commits(pg.raw(), table, n, mark="%s", begin="BEGIN")
        return go

    try:
        b.record("log_param pg", durability, median_of(b.repeats, ours("param")), median_of(b.repeats, raw("params")),
                 "ms", note="(raw: psycopg INSERT + COMMIT)")
        b.record("log_metric pg", durability, median_of(b.repeats, ours("metric")), median_of(b.repeats, raw("metrics")),
                 "ms", note="(raw: psycopg INSERT + COMMIT)")
    finally:
        pg.close()


def bench_runs_postgres(b: Bench, durability: str) -> None:
    """An empty run (start and end, nothing logged) on PostgreSQL, with the same goal
    as on SQLite (≤ 5 ms): its run node and states, and its liveness lock (taken on
    the process's one lock session, `postgres._LockSession`)."""
    import lineage

    n = 50 if b.quick else 200
    pg = _PgSchemas(_pg_url())

    def go() -> float:
        with lineage.open(pg.fresh()) as lg:
            return _empty_runs_ms(lg, n)

    try:
        b.record("empty run pg", durability, median_of(3, go), None, "ms", note="(start + end, nothing logged)")
    finally:
        pg.close()


def bench_predictions_postgres(b: Bench, durability: str) -> None:
    """The bulk write on PostgreSQL (binary COPY straight into the table as a batch,
    then one short append) against a raw binary ``COPY`` of the very same rows
    straight into the predictions table (same schema and indexes), in one
    transaction, on the same server."""
    import uuid

    import numpy as np
    import psycopg
    from sklearn.linear_model import LogisticRegression

    from lineage import hashing
    from lineage.model import canonical_json, now_iso, uuid7_batch

    url = _pg_url()
    n = b.size("predictions")
    rng = np.random.default_rng(0)
    X = rng.random((n, 8))
    y = (X[:, 0] > 0.5).astype(np.int64)
    scores = X[:, 0].copy()
    clf = LogisticRegression().fit(X[:2000], y[:2000])
    admin = psycopg.connect(url, autocommit=True)
    schemas: list[str] = []

    def fresh() -> str:
        schema = "bench_" + uuid.uuid4().hex[:12]
        admin.execute(f"CREATE SCHEMA {schema}")
        schemas.append(schema)
        return url + ("&" if "?" in url else "?") + f"schema={schema}"

    def ours() -> float:
        import lineage

        with lineage.open(fresh()) as lg:
            with lg.start_run("fit") as run:
                model = run.log_model(clf, "clf")
            t = time.perf_counter()
            lg.log_predictions(model, X, y, scores=scores)
            return n / (time.perf_counter() - t)

    model_id = "model:" + "ab" * 32
    at = now_iso()
    rows = list(zip(uuid7_batch(n, "prediction:"), itertools.repeat(model_id), hashing.row_digests(X),
                    map(canonical_json, y.tolist()), scores.tolist(), itertools.repeat(None), itertools.repeat(at),
                    itertools.repeat(1)))

    def raw() -> float:
        from lineage.store import Store

        target = fresh()
        Store(target).close()  # lineage's schema and indexes, nothing else
        schema = target.rsplit("schema=", 1)[1]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {schema}")
            t = time.perf_counter()
            conn.execute("BEGIN")
            with conn.cursor() as cur, cur.copy("COPY predictions (id, model, input_digest, output, score, request_id, "
                                                 "created_at, event) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["text", "text", "text", "text", "float8", "text", "text", "int8"])
                for row in rows:
                    copy.write_row(row)
            conn.execute("COMMIT")
            return n / (time.perf_counter() - t)

    try:
        repeats = max(3, b.repeats - 2)
        ours_r, raw_r = [], []
        for _ in range(repeats):
            raw_r.append(raw())
            ours_r.append(ours())
        b.record("log_predictions pg", durability, statistics.median(ours_r), statistics.median(raw_r), "/s",
                 higher_is_better=True, note=f"({n:,} rows; raw: binary COPY)")
    finally:
        for schema in schemas:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()


_APPENDER = """
import sys, time
import lineage
lg = lineage.open(sys.argv[1])
n, w = int(sys.argv[2]), sys.argv[3]
with lg.start_run("w" + w) as run:
    t = time.time()
    for i in range(n):
        run.log_param(f"p{i}", i)
    print(t, time.time())
"""


def _window_rate(procs: list[Any], writes: int) -> float:
    """Writes/s over the window from the first writer's start to the last one's end
    (each prints its loop's start and end times: process start-up is left out)."""
    spans = [tuple(map(float, p.communicate()[0].split())) for p in procs]
    return writes / (max(e for _, e in spans) - min(s for s, _ in spans))


def bench_writers_postgres(b: Bench, durability: str) -> None:
    """Appends/s on one chain from 1 and from 8 writer processes (``log_param``, one
    commit each), all on one store: appends serialize on the chain's lock, so this is
    the ceiling of one store on one server. Raw: the same from 8 processes as plain
    psycopg ``INSERT`` + ``COMMIT`` with no lock (what the chain costs)."""
    n = 100 if b.quick else 400
    pg = _PgSchemas(_pg_url())

    def ours(procs: int) -> float:
        url = pg.fresh()
        import lineage

        lineage.open(url).close()  # the schema, before the writers race to make it
        ps = [subprocess.Popen([sys.executable, "-c", _APPENDER, url, str(n), str(w)], stdout=subprocess.PIPE)
              for w in range(procs)]
        return _window_rate(ps, procs * n)

    raw_code = """
import sys, time, psycopg
c = psycopg.connect(sys.argv[1], autocommit=True)
c.execute("SET search_path TO " + sys.argv[2])
t = time.time()
for i in range(int(sys.argv[3])):
    c.execute("BEGIN")
    c.execute("INSERT INTO params (run, key, value, event) VALUES (%s, %s, %s, %s)", ("run:" + sys.argv[4], f"p{i}", str(i), i))
    c.execute("COMMIT")
print(t, time.time())
"""

    def raw(procs: int) -> float:
        conn = pg.raw()
        schema = conn.execute("SHOW search_path").fetchone()[0]
        conn.close()
        ps = [subprocess.Popen([sys.executable, "-c", raw_code, pg.url, schema, str(n), str(w)], stdout=subprocess.PIPE)
              for w in range(procs)]
        return _window_rate(ps, procs * n)

    try:
        for procs in (1, 8):
            b.record(f"appends pg, {procs} writer{'s' if procs > 1 else ''}", durability, ours(procs), raw(procs), "/s",
                     higher_is_better=True, note=f"({n} log_param each; raw: INSERT + COMMIT, no chain)")
    finally:
        pg.close()


BENCHES: dict[str, tuple[Callable[[Bench, str], None], tuple[str, ...]]] = {
    # name: (function, durabilities it runs at). Verify and start-up write nothing,
    # so durability cannot change them.
    "params": (bench_params, ("normal", "full")),
    "predictions": (bench_predictions, ("normal", "full")),
    "model": (bench_model, ("normal", "full")),
    "dataset": (bench_dataset, ("normal", "full")),
    "verify": (bench_verify, ("normal",)),
    "runs": (bench_runs, ("normal",)),
    "growth": (bench_growth, ("normal",)),
    "startup": (bench_startup, ("normal",)),
}
#: on PostgreSQL, when a server is given (--db, LINEAGE_BENCH_POSTGRES or LINEAGE_TEST_POSTGRES)
PG_BENCHES: dict[str, tuple[Callable[[Bench, str], None], tuple[str, ...]]] = {
    "params-pg": (bench_params_postgres, ("normal",)),
    "runs-pg": (bench_runs_postgres, ("normal",)),
    "predictions-pg": (bench_predictions_postgres, ("normal",)),
    "writers-pg": (bench_writers_postgres, ("normal",)),
}


def _goal(row: dict[str, Any]) -> tuple[str, bool] | None:
    """``(goal text, met?)`` for a result row, or None when no goal is set for it."""
    for prefix, goal in GOALS.items():
        if row["name"].startswith(prefix):
            if goal is None or row["durability"] not in goal[2]:
                return None
            return goal[0], bool(goal[1](row))
    return None


def markdown(rows: list[dict[str, Any]]) -> Iterator[str]:
    yield "| measure | durability | lineage | raw baseline | lineage ÷ raw | goal | met |"
    yield "| --- | --- | ---: | ---: | ---: | --- | --- |"
    for r in rows:
        goal = _goal(r)
        raw = "–" if r["raw"] is None else _fmt(r["raw"], r["unit"])
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}×"
        name = f"{r['name']} {r['note']}".strip()
        yield (f"| {name} | {r['durability']} | {_fmt(r['ours'], r['unit'])} | {raw} | {ratio} | "
               f"{goal[0] if goal else ''} | {('yes' if goal[1] else '**no**') if goal else ''} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a minute or so)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per measurement (default 5)")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHES)}")
    parser.add_argument("--durability", choices=["normal", "full", "both"], default="both")
    parser.add_argument("--db", metavar="URL", help="also run the PostgreSQL benchmarks (params-pg, predictions-pg) "
                        "on this server (postgresql://…; default LINEAGE_BENCH_POSTGRES or LINEAGE_TEST_POSTGRES)")
    args = parser.parse_args(argv)
    if args.db:
        os.environ["LINEAGE_BENCH_POSTGRES"] = args.db
    if _pg_url():
        BENCHES.update(PG_BENCHES)
    chosen = args.only.split(",") if args.only else list(BENCHES)
    if not _pg_url():
        print("PostgreSQL: skipped (pass --db postgresql://… or set LINEAGE_BENCH_POSTGRES to measure it too)")
        chosen = [c for c in chosen if c not in PG_BENCHES]
    unknown = [c for c in chosen if c not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    import numpy
    import sklearn

    import lineage

    print(f"lineage {lineage.__version__}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"numpy {numpy.__version__}, scikit-learn {sklearn.__version__}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"{'quick' if args.quick else 'full'} sizes, medians of {args.repeats} repeats\n", flush=True)
    os.environ.setdefault("LINEAGE_USER", "bench")
    root = Path(tempfile.mkdtemp(prefix="lineage-bench-"))
    cwd = os.getcwd()
    os.chdir(root)  # code capture looks at the working directory: keep it out of any repo
    b = Bench(root, args.quick, args.repeats)
    try:
        for name in chosen:
            fn, durabilities = BENCHES[name]
            for d in durabilities:
                if args.durability != "both" and d != args.durability and len(durabilities) > 1:
                    continue
                fn(b, d)
    finally:
        os.chdir(cwd)
        os.environ.pop("LINEAGE_DURABILITY", None)
        shutil.rmtree(root, ignore_errors=True)
    print()
    for line in markdown(b.rows):
        print(line)


if __name__ == "__main__":
    main()
