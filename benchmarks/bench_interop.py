"""Benchmark the interop layer: MLflow import, OpenLineage and PROV export.

    python benchmarks/bench_interop.py                 # 200 MLflow runs, the 100k store
    python benchmarks/bench_interop.py --runs 1000     # the full MLflow goal (builds for minutes)
    python benchmarks/bench_interop.py --skip-mlflow   # exports only (no mlflow needed)

* MLflow import: an MLflow store (``sqlite:///``) of N runs, each with 20 params and
  20 metrics of 10 steps, written by MLflow's own client (``log_batch``, one call per
  run), then ``lg.import_mlflow`` into a fresh lineage store. The raw baseline is
  reading the same facts through MLflow's client alone (``search_runs`` plus the
  metric histories), i.e. what any importer must pay before writing anything.
  Goal: >= 200 runs/s.
* OpenLineage export of the 100k-node store of ``bench_queries.py`` (built and cached
  there): events written per second. Goal: >= 20,000 events/s.
* PROV-JSON export of the same store: time and size, beside the prov package building
  and serializing the same document (the raw baseline, what the export did before it
  was streamed).

Needs the integration environment for the MLflow part (mlflow) and prov for PROV.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def build_mlflow(uri: str, runs: int) -> float:
    """An MLflow store of ``runs`` runs (20 params, 20 metrics x 10 steps each); seconds taken."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    t0 = time.perf_counter()
    client = MlflowClient(uri)
    exp = client.create_experiment("bench")
    now = int(time.time() * 1000)
    for i in range(runs):
        run = client.create_run(exp, run_name=f"run-{i}")
        rid = run.info.run_id
        params = [Param(f"p{j}", str(i * j)) for j in range(20)]
        metrics = [Metric(f"m{j}", float(i + j + s) / 7, now + s, s) for j in range(20) for s in range(10)]
        client.log_batch(rid, metrics=metrics, params=params)
        client.set_terminated(rid, "FINISHED")
    return time.perf_counter() - t0


def read_raw(uri: str) -> float:
    """Seconds to read every run and metric history through MLflow's own calls alone
    (``search_runs``, then ``get_metric_history_bulk`` per metric key, 500 runs at a
    time): what an importer using only MLflow's API pays before writing anything."""
    from mlflow import MlflowClient

    from lineage.interop.mlflow_import import _pages

    t0 = time.perf_counter()
    client = MlflowClient(uri)
    store = client._tracking_client.store
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = list(_pages(lambda t: client.search_runs(exps, max_results=1000, page_token=t)))
    keys: dict[str, list[str]] = {}
    for r in runs:
        for k in r.data.metrics:
            keys.setdefault(k, []).append(r.info.run_id)
    n = 0
    for k, ids in keys.items():
        for i in range(0, len(ids), 500):
            n += len(store.get_metric_history_bulk(ids[i:i + 500], k, 2**31 - 1))
    return time.perf_counter() - t0


CACHE = HERE / ".cache"


def cached_mlflow(runs: int, workdir: Path) -> tuple[str, float | None]:
    """A copy, in ``workdir``, of the ``runs``-run MLflow store, built once into
    benchmarks/.cache (MLflow's client takes ~0.5 s a run to write it); the URI and
    the build's seconds (None when it came from the cache)."""
    import shutil

    cached = CACHE / f"mlflow-{runs}" / "mlflow.db"
    build_s = None
    if not cached.is_file():
        tmp = CACHE / f".building-mlflow-{runs}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        build_s = build_mlflow(f"sqlite:///{tmp / 'mlflow.db'}", runs)
        shutil.rmtree(cached.parent, ignore_errors=True)
        os.replace(tmp, cached.parent)
    shutil.copyfile(cached, workdir / "mlflow.db")
    return f"sqlite:///{workdir / 'mlflow.db'}", build_s


def bench_mlflow(runs: int, workdir: Path) -> dict[str, Any]:
    import lineage

    uri, build_s = cached_mlflow(runs, workdir)
    raw_s = read_raw(uri)
    lg = lineage.open(workdir / "lin" / "lineage.db")
    t0, c0 = time.perf_counter(), time.process_time()
    result = lg.import_mlflow(uri)
    import_s = time.perf_counter() - t0
    import_cpu = time.process_time() - c0  # this process's CPU: steadier than wall time on a shared machine
    t0 = time.perf_counter()
    again = lg.import_mlflow(uri)
    again_s = time.perf_counter() - t0
    lg.close()
    return {"runs": runs, "build_s": None if build_s is None else round(build_s, 1), "raw_read_s": round(raw_s, 2), "import_s": round(import_s, 2),
            "runs_per_s": round(runs / import_s), "raw_runs_per_s": round(runs / raw_s),
            "import_vs_raw": round(raw_s / import_s, 1), "import_cpu_s": round(import_cpu, 2),
            "runs_per_cpu_s": round(runs / import_cpu),
            "metric_rows": result.counts.get("metrics", 0), "second_import_s": round(again_s, 2),
            "second_import_changed": again.changed}


def bench_exports(workdir: Path, size: str, *, prov_baseline: bool = True) -> dict[str, Any]:
    from bench_queries import SIZES, cached_store

    import lineage

    path, facts = cached_store(size, SIZES[size])
    lg = lineage.open(path, create=False)
    out: dict[str, Any] = {"store": size, "shape": facts.get("shape")}
    lg.export("openlineage", None, workdir / "events.jsonl")  # warm: imports, page cache
    times, cpus = [], []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        ol = lg.export("openlineage", None, workdir / "events.jsonl")
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    s = min(times)
    out.update(openlineage_cpu_s=round(min(cpus), 3), events_per_cpu_s=round(ol.count / min(cpus)))
    out.update(openlineage_events=ol.count, openlineage_s=round(s, 3), events_per_s=round(ol.count / s),
               openlineage_mb=round(os.path.getsize(workdir / "events.jsonl") / 2**20, 1))
    # raw baseline: only json-encoding the same events, already built, one per line
    import json

    from lineage.interop import openlineage
    from lineage.interop.graph import scope

    evs = list(openlineage.events(scope(lg.store, predictions=False)))
    enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    t0 = time.perf_counter()
    with open(workdir / "raw.jsonl", "w", encoding="utf-8") as f:
        for ev in evs:
            f.write(enc(ev) + "\n")
    raw = time.perf_counter() - t0
    out.update(raw_encode_s=round(raw, 3), raw_events_per_s=round(len(evs) / raw),
               export_vs_raw_encode=round(raw / s, 2))
    t0 = time.perf_counter()
    pj = lg.export("prov-json", None, workdir / "graph.prov.json")
    s = time.perf_counter() - t0
    out.update(prov_records=pj.count, prov_json_s=round(s, 2),
               prov_json_mb=round(os.path.getsize(workdir / "graph.prov.json") / 2**20, 1))
    if prov_baseline:
        # baseline: the prov package building the same document and serializing it
        # (what the export did before it was streamed), from the same scope
        try:
            from lineage.interop.prov import to_document

            sc = scope(lg.store)
            t0 = time.perf_counter()
            text = to_document(sc).serialize(format="json")
            (workdir / "baseline.prov.json").write_text(text, encoding="utf-8")
            base = time.perf_counter() - t0
            out.update(prov_package_s=round(base, 2), prov_package_mb=round(len(text.encode()) / 2**20, 1),
                       prov_vs_package=round(base / s, 1))
        except ImportError as exc:
            out["prov_package"] = f"skipped: {exc}"
    lg.close()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="MLflow runs to build and import (goal measured at 1000)")
    ap.add_argument("--size", default="100k", help="bench_queries store size for the exports (10k, 100k, 1m)")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--skip-exports", action="store_true")
    ap.add_argument("--skip-prov-baseline", action="store_true", help="do not time the prov package's own PROV-JSON")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_mlflow:
            print("mlflow import:", bench_mlflow(args.runs, work), flush=True)
        if not args.skip_exports:
            print("exports:", bench_exports(work, args.size, prov_baseline=not args.skip_prov_baseline), flush=True)


if __name__ == "__main__":
    main()
