"""Benchmark `lineage audit` on the 1M-node store of bench_queries.py.

    python benchmarks/bench_audit.py                 # the 1M-node store
    python benchmarks/bench_audit.py --size 100k     # a smaller one
    python benchmarks/bench_audit.py --models 50     # audit more models

What is measured, on a private copy of the cached store (so the query benchmark's
store is never written to):

1. the full `verify` of the store (every event, every recorded row), timed on its
   own: it is what `lineage verify --record` costs, once, to record a checkpoint;
2. one audit before any checkpoint exists: the report then replays the whole chain
   itself (the expensive path, for reference);
3. after `verify --record`, audits of random models, each writing the HTML report:
   facts collected, every fact checked against the event that recorded it, the chain
   checked from the checkpoint, files re-hashed, diagram and chart drawn. Reported as
   median / 90th percentile / max in process, with a breakdown of the slowest, and
   as wall time of the `lineage audit MODEL -o audit.html` command (a fresh Python
   process: imports included);
4. the report of one prediction, and the model inventory.

The goal: ≤ 2 s for the HTML report of a model.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_queries  # noqa: E402  - the store builder and its cache

GOAL_S = 2.0


def _copy_store(source: Path, label: str) -> Path:
    """A fresh private copy of the cached store (database and artifacts)."""
    work = bench_queries.CACHE / f".audit-work-{label}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy2(source, work / "lineage.db")
    if (source.parent / "artifacts").is_dir():
        shutil.copytree(source.parent / "artifacts", work / "artifacts")
    return work / "lineage.db"


def _timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def _breakdown(store: Any, model_id: str, out: Path) -> dict[str, float]:
    """The stages of one report, timed separately (the sum is about one audit)."""
    from lineage.audit import checklist, facts, integrity, report
    from lineage.audit.chart import importance_svg

    t: dict[str, float] = {}
    t["collect facts"], f = _timed(lambda: facts.collect_model(store, model_id))
    t["check integrity"], f.integrity = _timed(lambda: integrity.check(store, f))
    items = checklist.evaluate(f)
    t["diagram (dot)"], (diagram, kind) = _timed(lambda: report._diagram(store, f))
    t["chart (matplotlib)"], chart = _timed(lambda: importance_svg(f.feature_importance))
    doc = report._document(store, f, items, "annex-iv")
    r = report.AuditReport(doc, diagram=diagram, diagram_kind=kind, chart=chart)
    t["HTML (jinja2) + write"], _ = _timed(lambda: r.write(out))
    return t


def measure(label: str, n_models: int, seed: int) -> dict[str, Any]:
    import lineage

    source, facts = bench_queries.cached_store(label, bench_queries.SIZES[label])
    db = _copy_store(source, label)
    out_dir = db.parent / "reports"
    out_dir.mkdir()
    res: dict[str, Any] = {"label": label, "shape": facts["shape"]}
    try:
        lg = lineage.open(db)
        store = lg.store
        res["events"], _ = store.head()
        res["nodes"] = store.conn.execute("SELECT COUNT(*) FROM nodes").fetchone()[0] + \
            store.conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
        rng = random.Random(seed)
        model_ids = [r[0] for r in store.conn.execute("SELECT id FROM nodes WHERE kind = 'model' ORDER BY pk")]
        sample = rng.sample(model_ids, min(n_models, len(model_ids)))

        # 1. the full verify, timed on its own
        res["verify_s"], v = _timed(lambda: store.verify())
        assert v.ok, v.problems[:3]
        # 2. an audit with no checkpoint: the chain is replayed from event 1
        res["audit_no_checkpoint_s"], rep = _timed(lambda: lg.audit(sample[0]).write(out_dir / "first.html"))
        # 3. record a checkpoint (a full verify plus one event), then audit models
        res["verify_record_s"], v = _timed(lambda: store.verify(record=True))
        timed, scopes = [], set()
        for model_id in sample:
            seconds, report = _timed(lambda: _audit(lg, model_id, out_dir / "model.html"))  # noqa: B023 - called at once, in this iteration
            timed.append((seconds, model_id))
            scopes.add(report.to_dict()["integrity"]["chain"]["scope"])
            assert report.ok
        times = sorted(t for t, _ in timed)
        res["audit_s"] = {"median": statistics.median(times), "p90": times[int(0.9 * (len(times) - 1))],
                          "max": times[-1], "n": len(times)}
        res["chain_scope"] = sorted(scopes)
        slowest = max(timed)[1]
        lg.audit(slowest).write(out_dir / "model.html")
        doc = lg.audit(slowest).to_dict()
        res["example"] = {"model": slowest, "trace_nodes": doc["lineage"]["nodes"],
                          "events_checked": doc["integrity"]["facts"]["events_checked"],
                          "prediction_rows_checked": doc["integrity"]["facts"]["prediction_rows_checked"],
                          "version": doc["model"]["version"], "versions": doc["model"]["versions"],
                          "changes": len(doc["changes"]["items"]),
                          "html_bytes": (out_dir / "model.html").stat().st_size}
        res["breakdown_s"] = _breakdown(store, slowest, out_dir / "breakdown.html")
        res["inventory_s"], inv = _timed(lambda: lg.inventory().write(out_dir / "inventory.html"))
        res["inventory_models"] = len(lg.inventory())
        # 4. one prediction's report
        pred = store.conn.execute("SELECT id FROM predictions ORDER BY pk DESC LIMIT 1").fetchone()[0]
        res["audit_prediction_s"], _ = _timed(lambda: lg.audit(pred).write(out_dir / "prediction.html"))
        lg.close()
        # the command, in a fresh process (imports, store open, report, write)
        walls = []
        for model_id in sample[:3]:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "lineage", "--db", str(db), "audit", model_id, "-o",
                            str(out_dir / "cli.html")], check=True, capture_output=True)
            walls.append(time.perf_counter() - started)
        res["cli_wall_s"] = {"median": statistics.median(walls), "max": max(walls), "n": len(walls)}
    finally:
        shutil.rmtree(db.parent, ignore_errors=True)
    return res


def _audit(lg: Any, model_id: str, out: Path) -> Any:
    report = lg.audit(model_id)
    report.write(out)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1m", choices=sorted(bench_queries.SIZES), help="which store (default 1m)")
    parser.add_argument("--models", type=int, default=20, help="how many random models to audit (default 20)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", dest="json_out", help="also write the figures to this file")
    args = parser.parse_args(argv)
    r = measure(args.size, args.models, args.seed)
    a, c = r["audit_s"], r["cli_wall_s"]
    print(f"store: {r['label']}, {r['nodes']:,} nodes, {r['events']:,} events")
    print(f"full verify: {r['verify_s']:.2f} s (with --record: {r['verify_record_s']:.2f} s)")
    print(f"audit with no checkpoint (replays the chain from event 1): {r['audit_no_checkpoint_s']:.2f} s")
    print(f"audit after a checkpoint, HTML written, {a['n']} random models: median {a['median']:.3f} s, "
          f"p90 {a['p90']:.3f} s, max {a['max']:.3f} s  (goal ≤ {GOAL_S:.0f} s: "
          f"{'met' if a['max'] <= GOAL_S else 'MISSED'})")
    print(f"`lineage audit MODEL -o audit.html` wall time, fresh process: median {c['median']:.2f} s, max {c['max']:.2f} s")
    print(f"prediction report: {r['audit_prediction_s']:.3f} s")
    print(f"inventory of the newest version of each of {r['inventory_models']} model names, HTML written: "
          f"{r['inventory_s']:.2f} s")
    print(f"chain scope stated: {'; '.join(r['chain_scope'])}")
    e = r["example"]
    print(f"slowest, {e['model'][:22]}…: {e['trace_nodes']} nodes traced, {e['events_checked']} events checked, "
          f"{e['prediction_rows_checked']} prediction rows re-hashed, version {e['version']} of {e['versions']} of its name "
          f"({e['changes']} changes), {e['html_bytes'] / 1024:.0f} KB of HTML")
    print("breakdown: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in r["breakdown_s"].items()))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
