"""What a commit costs while SQLite's WAL file is still growing, and after.

    python benchmarks/bench_wal_growth.py            # 8,000 commits, 3 runs
    python benchmarks/bench_wal_growth.py --commits 4000 --runs 1

Plain ``sqlite3``, no lineage: a table shaped like ``params`` (three indexes) and
one like ``events``, one row each per commit, in WAL mode with ``synchronous =
NORMAL`` and the checkpoint net lineage's writers use (10,000 pages; the
background checkpointer is left out). A fresh store's first commits append to a
WAL file that grows until SQLite first copies it back and starts it again from
the top; every later commit overwrites pages the file already has. The script
prints the time per commit in slices of 500, wall and CPU, for:

- ``fresh``: a new WAL file, as every process that opens a store nobody else has
  open starts with (SQLite deletes the WAL when its last connection closes);
- ``fallocate``: the same, the WAL's 10,000 pages reserved first
  (``posix_fallocate``, the file's size set, no bytes written);
- ``zero-filled``: the same, the 10,000 pages written with zeros first (the time
  that takes is printed: it is part of the price).

Machines here are noisy: compare the slices of one run, and the runs' medians.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time

from lineage.store.sqlite import WAL_AUTOCHECKPOINT_PAGES as NET_PAGES

SLICE = 500


def one_run(mode: str, commits: int) -> tuple[list[tuple[float, float]], float]:
    """``([(wall µs, CPU µs) per commit, per slice], seconds spent preparing the WAL)``."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "x.db")
        con = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", f"wal_autocheckpoint = {NET_PAGES}"):
            con.execute(f"PRAGMA {pragma}")
        con.executescript("""
            CREATE TABLE params (pk INTEGER PRIMARY KEY, run TEXT, key TEXT, value TEXT, event INTEGER);
            CREATE INDEX params_run ON params (run, key);
            CREATE INDEX params_key ON params (key, run);
            CREATE INDEX params_event ON params (event);
            CREATE TABLE events (seq INTEGER PRIMARY KEY, type TEXT, payload TEXT, hash TEXT);""")
        page = con.execute("PRAGMA page_size").fetchone()[0]
        prepared = 0.0
        if mode != "fresh":
            start = time.perf_counter()
            con.execute("BEGIN IMMEDIATE")  # (the write lock: nobody writes frames meanwhile)
            fd = os.open(path + "-wal", os.O_WRONLY)
            try:
                size = os.fstat(fd).st_size
                want = NET_PAGES * (page + 24) + 32
                if mode == "fallocate":
                    os.posix_fallocate(fd, size, want - size)
                else:
                    os.pwrite(fd, bytes(want - size), size)
            finally:
                os.close(fd)
            con.execute("COMMIT")
            prepared = time.perf_counter() - start
        slices = []
        for s in range(commits // SLICE):
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(s * SLICE, (s + 1) * SLICE):
                con.execute("BEGIN IMMEDIATE")
                con.execute("INSERT INTO params (run, key, value, event) VALUES (?, ?, ?, ?)",
                            (f"run:{i // 50:032x}", f"k{i}", str(i), i))
                con.execute("INSERT INTO events (type, payload, hash) VALUES (?, ?, ?)",
                            ("params", '{"keys": ["k"]}' + " " * 120, f"{i:064x}"))
                con.execute("COMMIT")
            slices.append(((time.perf_counter() - wall) / SLICE * 1e6, (time.process_time() - cpu) / SLICE * 1e6))
        con.close()
        return slices, prepared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=8000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.commits < 2 * SLICE or args.runs < 1:
        parser.error(f"--commits must be at least {2 * SLICE} (a first slice and a second half) and --runs at least 1")
    print(f"µs per commit (wall/CPU), slices of {SLICE} commits; WAL net {NET_PAGES} pages")
    firsts: dict[str, list[float]] = {}
    lasts: dict[str, list[float]] = {}
    for run in range(args.runs):
        for mode in ("fresh", "fallocate", "zero-filled"):  # in turn: the same machine state
            slices, prepared = one_run(mode, args.commits)
            firsts.setdefault(mode, []).append(slices[0][1])
            lasts.setdefault(mode, []).append(statistics.median(c for _, c in slices[len(slices) // 2:]))
            extra = f" (+{prepared * 1000:.0f} ms first)" if prepared else ""
            print(f"run {run + 1} {mode:12s}{extra}: " + " ".join(f"{w:.0f}/{c:.0f}" for w, c in slices))
    print("median CPU per commit, first slice / second half of the run:")
    for mode in firsts:
        print(f"  {mode:12s}: {statistics.median(firsts[mode]):.0f} / {statistics.median(lasts[mode]):.0f} µs")


if __name__ == "__main__":
    main()
