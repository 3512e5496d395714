"""Recording a pipeline: lineage against Google's ML Metadata (MLMD), on the same facts.

    python benchmarks/bench_vs_mlmd.py                 # 400 groups, 3 repeats
    python benchmarks/bench_vs_mlmd.py --groups 100 --repeats 1
    MLMD_PYTHON=/path/to/venv/bin/python python benchmarks/bench_vs_mlmd.py
    python benchmarks/bench_vs_mlmd.py --profile --groups 100   # where lineage's time goes
    python benchmarks/bench_vs_mlmd.py --pages --groups 300     # which B-trees a group's commit writes
    python benchmarks/bench_vs_mlmd.py --replay                 # lineage against its own SQL, replayed raw

Each *group* is one pipeline of the same topology, recorded through each system's
public API:

    2 raw datasets -> 2 preprocessing runs -> 2 processed datasets
                   -> a training run (with its code version) -> a model -> 20 predictions

What each system counts, so the work is equal:

- lineage: (after one empty warm-up run before the clock, which captures the
  environment once per process) ``log_dataset(uri=, digest=)`` for the four datasets, three runs through
  ``start_run`` (each captures code, environment and agent, and writes a ledger event
  per fact), ``log_model`` of a small fitted scikit-learn model (pickled, hashed, kept
  as an artifact), ``log_predictions`` of 20 rows (one bulk event).
- MLMD: one ``put_lineage_subgraph`` call per group (its fastest write path) holding
  the same 4 DataSet artifacts, a Code artifact, a Model artifact (URI and digest as
  properties: MLMD keeps no bytes), 20 Prediction artifacts, 4 executions (two
  preprocessing, training with its params and metric, inference) and their INPUT and
  OUTPUT events, attributed to one experiment context. MLMD's SQLite store, in a file.

MLMD needs Python <= 3.11 (its wheels stop there): the MLMD half runs in a separate
interpreter, ``$MLMD_PYTHON`` or this one when ``ml_metadata`` imports here. Without
one the benchmark prints lineage's figures and says how to get the comparison.
Machines here are noisy: compare the ratio printed in one run, not absolute times.
Both sides also report the CPU time (user + system) of the recording loop, which a
loaded machine distorts far less than the wall clock.

Two ways of recording are timed (``--mode``):

- ``call``: every public call is its own transaction and commit, as a script that
  calls them one by one gets (19 ledger events, 19 commits per group);
- ``batch``: each group inside ``with lg.batch():``, one transaction per group, the
  unit MLMD's ``put_lineage_subgraph`` commits (still 19 ledger events, each its own
  verifiable entry).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

N_PREDICTIONS = 20


def _digest(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


# ---------------------------------------------------------------------------
# lineage

def record_lineage(folder: Path, groups: int, *, on_open: Any = None, batch: bool = False) -> float:
    """Seconds to record ``groups`` pipelines into a fresh store in ``folder``
    (``on_open(lg)`` is called once the store is open, before the clock starts);
    ``batch``: each group in one ``lg.batch()`` transaction. The CPU seconds of the
    loop are left in ``LAST_CPU[0]``."""
    import contextlib

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import lineage

    # each run captures its code: the script's work tree, found from sys.argv[0],
    # which must still name the script after the chdir into the store's folder
    sys.argv[0] = os.path.abspath(sys.argv[0])
    os.chdir(folder)
    X = np.arange(40, dtype=float).reshape(20, 2)
    y = np.array([0, 1] * 10)
    # the models are fitted beforehand: fitting is the user's work, not recording
    models = [LogisticRegression(C=1.0 + g, max_iter=50).fit(X, y) for g in range(groups)]
    lg = lineage.open(folder / ".lineage" / "lineage.db")
    # Before the clock, as MLMD's types are registered before its clock: the first run
    # of a process captures the environment (every installed package's metadata,
    # 0.15-0.3 s once; later processes read it from the store's cache folder).
    with lg.start_run("warm-up"):
        pass
    if on_open is not None:
        on_open(lg)
    start = time.perf_counter()
    cpu = time.process_time()
    for g in range(groups):
        with lg.batch() if batch else contextlib.nullcontext():
            record_group(lg, g, models[g], X, y)
    elapsed = time.perf_counter() - start
    LAST_CPU[0] = time.process_time() - cpu
    lg.close()
    return elapsed


def record_group(lg: Any, g: int, fitted: Any, X: Any, y: Any) -> None:
    """Group ``g`` of the topology, through lineage's public API (``fitted``: its model)."""
    raw = [lg.log_dataset(uri=f"s3://bench/raw/{g}/{k}.csv", digest=_digest("raw", g, k), name=f"g{g}_raw_{k}")
           for k in "ab"]
    processed = []
    for k, source in zip("ab", raw):
        with lg.start_run(f"prep_{k}", params={"step": k}) as run:
            run.log_input(source)
            out = lg.log_dataset(uri=f"s3://bench/clean/{g}/{k}.csv", digest=_digest("clean", g, k),
                                 name=f"g{g}_clean_{k}")
            processed.append(run.log_output(out))
    with lg.start_run("train", params={"C": 1.0 + g}) as run:
        for p in processed:
            run.log_input(p)
        run.log_metric("accuracy", 0.9)
        model = run.log_model(fitted, "model")
    lg.log_predictions(model, X, y, request_ids=[f"{g}-{i}" for i in range(N_PREDICTIONS)])


#: CPU seconds (user + system, all threads) of the last `record_lineage` loop
LAST_CPU = [0.0]


# ---------------------------------------------------------------------------
# MLMD (runs in an interpreter where ml_metadata imports)

MLMD_WORKER = r'''
import hashlib, sys, time
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

path, groups, n_pred = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = pb.ConnectionConfig()
config.sqlite.filename_uri = path
config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
store = metadata_store.MetadataStore(config)

def digest(*parts):
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()

def artifact_type(name, **props):
    t = pb.ArtifactType(name=name)
    for k, v in props.items():
        t.properties[k] = v
    return store.put_artifact_type(t)

def execution_type(name, **props):
    t = pb.ExecutionType(name=name)
    for k, v in props.items():
        t.properties[k] = v
    return store.put_execution_type(t)

S, D = pb.STRING, pb.DOUBLE
dataset_t = artifact_type("DataSet", digest=S)
code_t = artifact_type("Code", commit=S)
model_t = artifact_type("Model", digest=S, model_class=S)
pred_t = artifact_type("Prediction", input_digest=S, output=S, request_id=S)
prep_t = execution_type("Preprocess", step=S)
train_t = execution_type("Trainer", C=D, accuracy=D)
infer_t = execution_type("Inference")
ctx_t = store.put_context_type(pb.ContextType(name="Experiment"))
context = pb.Context(type_id=ctx_t, name="default")
[ctx_id] = store.put_contexts([context])
context.id = ctx_id

def artifact(type_id, name, uri, **props):
    a = pb.Artifact(type_id=type_id, name=name, uri=uri, state=pb.Artifact.LIVE)
    for k, v in props.items():
        a.properties[k].string_value = v
    return a

def execution(type_id, name, **props):
    e = pb.Execution(type_id=type_id, name=name, last_known_state=pb.Execution.COMPLETE)
    for k, v in props.items():
        if isinstance(v, float):
            e.properties[k].double_value = v
        else:
            e.properties[k].string_value = v
    return e

IN, OUT = pb.Event.INPUT, pb.Event.OUTPUT
start = time.perf_counter()
cpu = time.process_time()
for g in range(groups):
    arts = [artifact(dataset_t, f"g{g}_raw_{k}", f"s3://bench/raw/{g}/{k}.csv", digest=digest("raw", g, k)) for k in "ab"]
    arts += [artifact(dataset_t, f"g{g}_clean_{k}", f"s3://bench/clean/{g}/{k}.csv", digest=digest("clean", g, k)) for k in "ab"]
    arts.append(artifact(code_t, f"g{g}_code", "git://bench", commit=digest("code")))
    arts.append(artifact(model_t, f"g{g}_model", f"file://models/{g}", digest=digest("model", g), model_class="LogisticRegression"))
    arts += [artifact(pred_t, f"g{g}_pred_{i}", "", input_digest=digest("x", g, i), output=str(i % 2), request_id=f"{g}-{i}")
             for i in range(n_pred)]
    execs = [execution(prep_t, f"g{g}_prep_a", step="a"), execution(prep_t, f"g{g}_prep_b", step="b"),
             execution(train_t, f"g{g}_train", C=1.0 + g, accuracy=0.9), execution(infer_t, f"g{g}_infer")]
    edges = [(0, 0, pb.Event(type=IN)), (0, 2, pb.Event(type=OUT)),
             (1, 1, pb.Event(type=IN)), (1, 3, pb.Event(type=OUT)),
             (2, 2, pb.Event(type=IN)), (2, 3, pb.Event(type=IN)), (2, 4, pb.Event(type=IN)), (2, 5, pb.Event(type=OUT)),
             (3, 5, pb.Event(type=IN))]
    edges += [(3, 6 + i, pb.Event(type=OUT)) for i in range(n_pred)]
    store.put_lineage_subgraph(execs, arts, [context], edges)
print(time.perf_counter() - start, time.process_time() - cpu)
'''


def find_mlmd_python() -> str | None:
    """An interpreter where ``ml_metadata`` imports: $MLMD_PYTHON, else this one."""
    for candidate in (os.environ.get("MLMD_PYTHON"), sys.executable):
        if candidate and subprocess.run([candidate, "-c", "import ml_metadata"], capture_output=True).returncode == 0:
            return candidate
    return None


def record_mlmd(python: str, folder: Path, groups: int) -> tuple[float, float]:
    """``(wall seconds, CPU seconds)`` of MLMD's recording loop."""
    out = subprocess.run([python, "-c", MLMD_WORKER, str(folder / "mlmd.sqlite"), str(groups), str(N_PREDICTIONS)],
                         capture_output=True, text=True, check=True)
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


# ---------------------------------------------------------------------------

def profile_lineage(groups: int, top: int = 25, *, batch: bool = False) -> None:
    """Where lineage's time goes per group: SQL statements by kind, ledger events by
    type, and the functions with the most cumulative time (cProfile); ``batch``: each
    group in one ``lg.batch()``."""
    import collections
    import cProfile
    import pstats

    statements: collections.Counter[str] = collections.Counter()
    stores: list[Any] = []

    def count(sql: str) -> None:
        words = sql.split()
        verb = words[0].upper() if words else "?"
        table = next((w for w, prev in zip(words[1:], words) if prev.upper() in ("INTO", "FROM", "UPDATE")), "")
        statements[f"{verb} {table}".strip()] += 1

    def watch(lg: Any) -> None:
        stores.append(lg.store.path)
        lg.store.conn.set_trace_callback(count)
        profiler.enable()  # the recording only: not the imports, not the models' fitting

    folder = Path(tempfile.mkdtemp(prefix="bench-mlmd-profile-"))
    here = os.getcwd()
    profiler = cProfile.Profile()
    try:
        elapsed = record_lineage(folder, groups, on_open=watch, batch=batch)
        profiler.disable()
        import sqlite3

        con = sqlite3.connect(stores[0])
        events = collections.Counter(dict(con.execute("SELECT type, COUNT(*) FROM events GROUP BY type")))
        con.close()
    finally:
        os.chdir(here)
        shutil.rmtree(folder, ignore_errors=True)
    total = sum(statements.values())
    mode = "one lg.batch() per group" if batch else "each call committed"
    print(f"{groups} groups ({mode}) in {elapsed:.2f} s under cProfile ({elapsed / groups * 1000:.1f} ms per group)")
    print(f"SQL statements per group: {total / groups:.1f}")
    for what, n in statements.most_common(20):
        print(f"  {n / groups:7.1f}  {what}")
    print(f"ledger events per group: {sum(events.values()) / groups:.1f}")
    for what, n in events.most_common():
        print(f"  {n / groups:7.1f}  {what}")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(r"lineage[/\\]", top)
    stats.sort_stats("tottime").print_stats(top)


def _wal_frames(db: Path) -> list[int]:
    """The page number of every frame in ``db``'s WAL file, in order."""
    import struct

    wal = Path(f"{db}-wal").read_bytes()
    if len(wal) < 32:
        return []
    size = struct.unpack(">I", wal[8:12])[0]
    return [struct.unpack(">I", wal[off:off + 4])[0] for off in range(32, len(wal) - 23, 24 + size)]


def _btree_of(con: Any) -> dict[int, str]:
    """Page number -> the table or index it belongs to (SQLite's ``dbstat``; empty
    where this SQLite was built without it)."""
    import sqlite3

    try:
        return dict(con.execute("SELECT pageno, name FROM dbstat"))
    except sqlite3.OperationalError:
        return {}


def wal_pages(groups: int) -> None:
    """Which B-trees one batched group's commit writes (WAL frames, one 4 KiB page
    each), on a store of ``groups`` groups; then the store's edges replayed, group by
    group, into an edges table indexed by node id (as stored) and by node ``pk`` (an
    integer), to show what content-addressed ids cost the edge indexes."""
    import collections
    import sqlite3

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import lineage

    here = os.getcwd()
    folder = Path(tempfile.mkdtemp(prefix="bench-mlmd-pages-"))
    try:
        record_lineage(folder, groups, batch=True)
        db = folder / ".lineage" / "lineage.db"
        X = np.arange(40, dtype=float).reshape(20, 2)
        y = np.array([0, 1] * 10)
        lg = lineage.open(db)
        for g in (groups, groups + 1):  # the first captures this process's environment
            fitted = LogisticRegression(C=1.0 + g, max_iter=50).fit(X, y)
            if g == groups + 1:
                con = sqlite3.connect(db)
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                con.close()
            with lg.batch():
                record_group(lg, g, fitted, X, y)
        frames = _wal_frames(db)
        lg.close()
        con = sqlite3.connect(db)
        names = _btree_of(con)
        by_tree = collections.Counter(names.get(p, f"page {p}") for p in frames)
        print(f"one batched group on a store of {groups} groups: {len(frames)} WAL frames")
        for name, n in by_tree.most_common():
            print(f"  {n:4d}  {name}")
        edges = con.execute("SELECT src, dst, rel, role, event FROM edges ORDER BY pk").fetchall()
        pk_of = dict(con.execute("SELECT id, pk FROM nodes"))
        ends = [r[0] for r in con.execute("SELECT seq FROM events WHERE type = 'predictions' ORDER BY seq")]
        con.close()
        print(f"the same store's {len(edges)} edges replayed a group per commit; frames of the last group's commit:")
        for key, typ in (("node id (text, as stored)", "TEXT"), ("node pk (integer)", "INTEGER")):
            replay = folder / f"edges-{typ}.db"
            con = sqlite3.connect(replay, isolation_level=None)
            con.execute("PRAGMA journal_mode = WAL")
            con.executescript(f"""
                CREATE TABLE edges (pk INTEGER PRIMARY KEY, src {typ}, dst {typ}, rel TEXT, role TEXT, event INTEGER);
                CREATE INDEX edges_src ON edges (src, dst, rel, role);
                CREATE INDEX edges_dst ON edges (dst, src, rel);
                CREATE INDEX edges_event ON edges (event);""")
            i = 0
            for n, end in enumerate(ends):
                if n == len(ends) - 1:
                    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                con.execute("BEGIN")
                while i < len(edges) and edges[i][4] <= end:
                    src, dst, rel, role, event = edges[i]
                    if typ == "INTEGER":
                        src, dst = pk_of.get(src, src), pk_of.get(dst, dst)
                    con.execute("INSERT INTO edges (src, dst, rel, role, event) VALUES (?, ?, ?, ?, ?)",
                                (src, dst, rel, role, event))
                    i += 1
                con.execute("COMMIT")
            pages = _wal_frames(replay)
            names = _btree_of(con)
            con.close()
            trees = collections.Counter(names.get(p, f"page {p}") for p in pages)
            print(f"  keyed by {key}: {len(pages)} frames ({', '.join(f'{k} {v}' for k, v in trees.most_common())})")
    finally:
        os.chdir(here)
        shutil.rmtree(folder, ignore_errors=True)


def replay_sql(groups: int, repeats: int) -> None:
    """Lineage's batched run against the SQL it issued: every statement of the timed
    loop (with its parameters) is kept, then replayed through plain ``sqlite3`` on a
    copy of the store as it was when the clock started, with the same pragmas. The
    replay is the floor no Python above SQLite can go under; the ratio says how much
    of a group is lineage's own work (Python, the model file) rather than SQL."""
    import sqlite3

    from lineage.store.sqlite import configure

    log: list[tuple[bool, str, Any]] = []

    def watch(lg: Any) -> None:
        store, conn = lg.store, lg.store.conn
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copy(store.path, folder / "before.db")
        execute, executemany, begin = conn.execute, conn.executemany, store._begin_tx

        def logged_execute(sql: str, args: Any = ()) -> Any:
            log.append((False, sql, args))
            return execute(sql, args)

        def logged_executemany(sql: str, rows: Any) -> Any:
            rows = list(rows)
            log.append((True, sql, rows))
            return executemany(sql, rows)

        def logged_begin(c: Any) -> None:
            log.append((False, "BEGIN IMMEDIATE", ()))  # (issued on the raw class: not seen above)
            begin(c)

        # instance attributes shadow the connection class's and the store's methods
        conn.execute, conn.executemany, store._begin_tx = logged_execute, logged_executemany, logged_begin

    here = os.getcwd()
    folder = Path(tempfile.mkdtemp(prefix="bench-mlmd-replay-"))
    try:
        wall = record_lineage(folder, groups, on_open=watch, batch=True)
        cpu = LAST_CPU[0]
        raw: list[tuple[float, float]] = []
        for r in range(repeats):
            copy = folder / f"replay-{r}.db"
            shutil.copy(folder / "before.db", copy)
            con = sqlite3.connect(copy, isolation_level=None)
            configure(con)  # the store's own pragmas (LINEAGE_DURABILITY included)
            start, start_cpu = time.perf_counter(), time.process_time()
            for many, sql, args in log:
                (con.executemany if many else con.execute)(sql, args)
            raw.append((time.perf_counter() - start, time.process_time() - start_cpu))
            con.close()
    finally:
        os.chdir(here)
        shutil.rmtree(folder, ignore_errors=True)
    raw_wall = statistics.median(x[0] for x in raw)
    raw_cpu = statistics.median(x[1] for x in raw)
    print(f"{groups} groups, lg.batch(): {len(log) / groups:.0f} statements per group")
    print(f"lineage               : {wall / groups * 1000:.2f} ms per group (CPU {cpu / groups * 1000:.2f})")
    print(f"its SQL, replayed raw : {raw_wall / groups * 1000:.2f} ms per group (CPU {raw_cpu / groups * 1000:.2f}), "
          f"median of {repeats}")
    print(f"  lineage / raw: {wall / raw_wall:.1f}x wall, {cpu / raw_cpu:.1f}x CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mode", choices=["call", "batch", "both"], default="both",
                        help="call: each public call commits; batch: one lg.batch() per group (default: both)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--profile", action="store_true",
                        help="profile lineage's half only (no MLMD, no repeats; --mode batch profiles batched groups)")
    parser.add_argument("--pages", action="store_true",
                        help="which tables and indexes one batched group's commit writes (lineage only)")
    parser.add_argument("--replay", action="store_true",
                        help="lineage's batched run against its own SQL replayed through plain sqlite3 (no MLMD)")
    args = parser.parse_args()
    if args.replay:
        replay_sql(args.groups, args.repeats)
        return
    if args.profile:
        profile_lineage(args.groups, batch=args.mode == "batch")
        return
    if args.pages:
        wal_pages(args.groups)
        return
    python = find_mlmd_python()
    modes = ["call", "batch"] if args.mode == "both" else [args.mode]
    ours: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    theirs: list[tuple[float, float]] = []
    here = os.getcwd()
    for _ in range(args.repeats):
        # in turn, so both see the same machine state
        if python:
            folder = Path(tempfile.mkdtemp(prefix="bench-mlmd-"))
            try:
                theirs.append(record_mlmd(python, folder, args.groups))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        for mode in modes:
            folder = Path(tempfile.mkdtemp(prefix="bench-mlmd-"))
            try:
                wall = record_lineage(folder, args.groups, batch=mode == "batch")
                ours[mode].append((wall, LAST_CPU[0]))
            finally:
                os.chdir(here)
                shutil.rmtree(folder, ignore_errors=True)

    def med(xs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(x[i] for x in xs)

    def best(xs: list[tuple[float, float]], i: int) -> float:
        # (a shared machine only ever adds time: the fastest repeat of each system is
        # the one least disturbed, as `timeit` reports its minimum)
        return min(x[i] for x in xs)

    result: dict[str, Any] = {"groups": args.groups, "repeats": args.repeats}
    for mode in modes:
        result[mode] = {"lineage_s": [x[0] for x in ours[mode]], "lineage_cpu_s": [x[1] for x in ours[mode]],
                        "lineage_median_s": med(ours[mode], 0), "lineage_median_cpu_s": med(ours[mode], 1)}
        if theirs:
            result[mode].update(speed_vs_mlmd=med(theirs, 0) / med(ours[mode], 0),
                                cpu_speed_vs_mlmd=med(theirs, 1) / med(ours[mode], 1),
                                best_speed_vs_mlmd=best(theirs, 0) / best(ours[mode], 0),
                                best_cpu_speed_vs_mlmd=best(theirs, 1) / best(ours[mode], 1))
    if theirs:
        result.update(mlmd_s=[x[0] for x in theirs], mlmd_cpu_s=[x[1] for x in theirs],
                      mlmd_median_s=med(theirs, 0), mlmd_median_cpu_s=med(theirs, 1))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.groups} groups of the pipeline topology, {args.repeats} repeats (wall s; CPU s in parentheses)")
    if theirs:
        print(f"MLMD           : {', '.join(f'{w:.2f} ({c:.2f})' for w, c in theirs)}  "
              f"(median {med(theirs, 0) / args.groups * 1000:.1f} ms per group, CPU {med(theirs, 1) / args.groups * 1000:.1f})")
    for mode in modes:
        label = "each call" if mode == "call" else "lg.batch()"
        print(f"lineage, {label:10s}: {', '.join(f'{w:.2f} ({c:.2f})' for w, c in ours[mode])}  "
              f"(median {med(ours[mode], 0) / args.groups * 1000:.1f} ms per group, "
              f"CPU {med(ours[mode], 1) / args.groups * 1000:.1f})")
        if theirs:
            print(f"  speed vs MLMD: {result[mode]['speed_vs_mlmd']:.2f}x wall, "
                  f"{result[mode]['cpu_speed_vs_mlmd']:.2f}x CPU  (goal >= 1.0x); "
                  f"fastest repeat against fastest: {result[mode]['best_speed_vs_mlmd']:.2f}x wall, "
                  f"{result[mode]['best_cpu_speed_vs_mlmd']:.2f}x CPU")
    if not theirs:
        print("MLMD: skipped — ml_metadata needs Python <= 3.11; make a venv with `pip install ml-metadata` "
              "and set MLMD_PYTHON to its python")


if __name__ == "__main__":
    main()
