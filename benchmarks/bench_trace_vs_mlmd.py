"""Tracing a prediction: lineage's ``trace`` against MLMD's ``get_lineage_subgraph``, on
the same store.

    MLMD_PYTHON=/path/to/venv/bin/python python benchmarks/bench_trace_vs_mlmd.py
    python benchmarks/bench_trace_vs_mlmd.py --sizes 10k,100k --repeats 3 --traces 300

The lineage store is `bench_queries.py`'s (built once and cached in
``benchmarks/.cache/``). Its facts are copied into an MLMD SQLite store (cached
beside it), node for node, so both systems answer the same question over the same
graph:

- datasets, code versions, models, the environment and predictions become MLMD
  artifacts (with their name, URI or digest and a prediction's input digest, output
  and request id as properties); runs become executions (params and metrics as
  properties, the final state as ``last_known_state``); the agent becomes a context,
  associated with every run and attributed to the entities it is responsible for;
- ``used`` becomes an INPUT event, ``was_generated_by`` an OUTPUT event; a
  prediction's implicit ``was_derived_from`` its model becomes, as in MLMD's own
  pipelines, one inference execution per model with the model as INPUT and its
  predictions as OUTPUT (one more hop on MLMD's side). MLMD has no edge between two
  runs or two artifacts: ``was_informed_by`` is implied there by the artifact between
  the runs, which both stores hold.

Each side traces the same random predictions upstream, to the roots: ``lg.trace(id)``
(a `Subgraph` of `Node`s, runs with their params, metrics and status, and the
edges), and ``get_lineage_subgraph`` with ``direction=UPSTREAM`` and every field
(artifacts and executions with their properties, types, events, contexts). Medians;
MLMD runs in its own interpreter (it needs Python <= 3.11), ``$MLMD_PYTHON`` or this
one when ``ml_metadata`` imports here. The sides take turns, ``--repeats`` times, so
a change in the machine's load falls on both.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_queries  # noqa: E402  (the query benchmark's stores)

MLMD_WORKER = r'''
import json, os, statistics, sys, time
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

path, dump, ids_file = sys.argv[1], sys.argv[2], sys.argv[3]
fresh = not os.path.exists(path)
config = pb.ConnectionConfig()
config.sqlite.filename_uri = path
config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
store = metadata_store.MetadataStore(config)
if fresh:  # copy the lineage store's facts (see the module docstring)
    facts = json.load(open(dump))
    S, D = pb.STRING, pb.DOUBLE
    types = {}
    for kind, props in (("dataset", ("uri", "digest")), ("code", ("commit", "repo")), ("model", ("model_class",)),
                        ("environment", ("python",)), ("artifact", ()),
                        ("prediction", ("input_digest", "output", "request_id"))):
        t = pb.ArtifactType(name=kind)
        for p in props:
            t.properties[p] = S
        types[kind] = store.put_artifact_type(t)
    run_t = store.put_execution_type(pb.ExecutionType(name="run"))
    infer_t = store.put_execution_type(pb.ExecutionType(name="inference"))
    agent_t = store.put_context_type(pb.ContextType(name="agent"))
    arts, art_ids = [], []
    for node_id, kind, name, props in facts["entities"]:
        a = pb.Artifact(type_id=types[kind], name=node_id, state=pb.Artifact.LIVE)
        if name:
            a.custom_properties["name"].string_value = name
        for k, v in props.items():
            if v is not None:
                a.properties[k].string_value = str(v)
        arts.append(a)
        art_ids.append(node_id)
    aid = dict(zip(art_ids, store.put_artifacts(arts)))
    execs, exec_ids = [], []
    for run_id, name, params, metrics, status in facts["runs"]:
        e = pb.Execution(type_id=run_t, name=run_id, last_known_state=pb.Execution.COMPLETE if status == "finished"
                         else pb.Execution.FAILED)
        e.custom_properties["name"].string_value = name or ""
        for k, v in params.items():
            e.custom_properties["param." + k].string_value = str(v)
        for k, v in metrics.items():
            e.custom_properties["metric." + k].double_value = float(v)
        execs.append(e)
        exec_ids.append(run_id)
    for model in facts["models_with_predictions"]:
        execs.append(pb.Execution(type_id=infer_t, name="infer " + model, last_known_state=pb.Execution.COMPLETE))
        exec_ids.append("infer " + model)
    eid = dict(zip(exec_ids, store.put_executions(execs)))
    pairs = {}  # MLMD keeps one event per (artifact, execution, type): a dataset used in two roles is one INPUT
    for src, dst, rel in facts["edges"]:
        if rel == "used" and src in eid and dst in aid:
            pairs[aid[dst], eid[src], pb.Event.INPUT] = None
        elif rel == "was_generated_by" and src in aid and dst in eid:
            pairs[aid[src], eid[dst], pb.Event.OUTPUT] = None
    for model in facts["models_with_predictions"]:
        pairs[aid[model], eid["infer " + model], pb.Event.INPUT] = None
    for pred, model in facts["predictions"]:
        pairs[aid[pred], eid["infer " + model], pb.Event.OUTPUT] = None
    events = [pb.Event(artifact_id=a, execution_id=e, type=t) for a, e, t in pairs]
    for i in range(0, len(events), 20000):
        store.put_events(events[i:i + 20000])
    agents = sorted({dst for _, dst, rel in facts["edges"] if rel in ("was_associated_with", "was_attributed_to")})
    cid = dict(zip(agents, store.put_contexts([pb.Context(type_id=agent_t, name=a) for a in agents])))
    assocs = [pb.Association(execution_id=eid[s], context_id=cid[d]) for s, d, rel in facts["edges"]
              if rel == "was_associated_with" and s in eid and d in cid]
    attrs = [pb.Attribution(artifact_id=aid[s], context_id=cid[d]) for s, d, rel in facts["edges"]
             if rel == "was_attributed_to" and s in aid and d in cid]
    store.put_attributions_and_associations(attrs, assocs)

ids = json.load(open(ids_file))
by_name = {name: store.get_artifact_by_type_and_name("prediction", name).id for name, _ in ids}

def trace(artifact_id, hops):
    opts = pb.LineageSubgraphQueryOptions(
        starting_artifacts=pb.LineageSubgraphQueryOptions.StartingNodes(filter_query=f"id = {artifact_id}"),
        max_num_hops=hops, direction=pb.LineageSubgraphQueryOptions.UPSTREAM)
    return store.get_lineage_subgraph(opts)

for name, hops in ids[:50]:
    trace(by_name[name], hops)
times, sizes = [], []
for name, hops in ids:
    t = time.perf_counter()
    g = trace(by_name[name], hops)
    times.append(time.perf_counter() - t)
    sizes.append(len(g.artifacts) + len(g.executions))
print(json.dumps({"ms": statistics.median(times) * 1000, "nodes": statistics.median(sizes)}))
'''


def _facts(path: Path) -> dict[str, Any]:
    """What the MLMD copy needs from the lineage store, read straight from its tables
    (runs with their latest params, metrics and status)."""
    con = sqlite3.connect(path)
    entities = []
    for node_id, kind, name, attrs in con.execute("SELECT id, kind, name, attrs FROM nodes WHERE kind NOT IN ('run', 'agent')"):
        a = json.loads(attrs)
        props = {"dataset": {"uri": a.get("uri"), "digest": node_id.split(":", 1)[1]},
                 "code": {"commit": a.get("commit"), "repo": a.get("repo")},
                 "model": {"model_class": a.get("class")},
                 "environment": {"python": a.get("python")}}.get(kind, {})
        entities.append((node_id, kind, name, props))
    predictions = []
    for pid, model, input_digest, output, request_id in con.execute(
            "SELECT id, model, input_digest, output, request_id FROM predictions"):
        entities.append((pid, "prediction", None, {"input_digest": input_digest, "output": output, "request_id": request_id}))
        predictions.append((pid, model))
    params: dict[str, dict[str, str]] = {}
    for run, key, value in con.execute("SELECT run, key, value FROM params"):
        params.setdefault(run, {})[key] = value
    metrics: dict[str, dict[str, float]] = {}
    for run, key, value in con.execute("SELECT run, key, value FROM metrics WHERE grp IS NULL ORDER BY step, pk"):
        metrics.setdefault(run, {})[key] = value
    status = dict(con.execute("SELECT run, status FROM run_states ORDER BY pk"))
    runs = [(r, n, params.get(r, {}), metrics.get(r, {}), status.get(r)) for r, n in
            con.execute("SELECT id, name FROM nodes WHERE kind = 'run'")]
    edges = list(con.execute("SELECT src, dst, rel FROM edges"))
    con.close()
    return {"entities": entities, "runs": runs, "edges": edges, "predictions": predictions,
            "models_with_predictions": sorted({m for _, m in predictions})}


def find_mlmd_python() -> str | None:
    """An interpreter where ``ml_metadata`` imports: $MLMD_PYTHON, else this one."""
    for candidate in (os.environ.get("MLMD_PYTHON"), sys.executable):
        if candidate and subprocess.run([candidate, "-c", "import ml_metadata"], capture_output=True).returncode == 0:
            return candidate
    return None


def run(label: str, *, repeats: int, traces: int, python: str | None) -> list[dict[str, Any]]:
    import lineage

    path, _ = bench_queries.cached_store(label, bench_queries.SIZES[label])
    folder = path.parent
    mlmd_db = folder / "mlmd.sqlite"
    con = sqlite3.connect(path)
    rng = random.Random(11)
    n_pred = con.execute("SELECT MAX(pk) FROM predictions").fetchone()[0]
    ids: list[str] = []
    while len(ids) < traces:
        row = con.execute("SELECT id FROM predictions WHERE pk = ?", (rng.randint(1, n_pred),)).fetchone()
        if row:
            ids.append(row[0])
    lg = lineage.open(path, create=False)
    # MLMD's cost grows with max_num_hops even when the answer stops growing (8 hops:
    # 3.5 ms, 20: 11.6 ms for the same 12 nodes at 10k), so each MLMD query gets the
    # fewest hops that reach everything: two per edge of lineage's deepest path (an
    # artifact and an execution per step there; a prediction's model is two, through
    # its inference execution, as is a run informed by another)
    hops = {p: 2 * max(d for _, d in lg.trace(p).graph.nodes(data="distance")) + 2 for p in ids}
    ids_file = folder / "trace-ids.json"
    ids_file.write_text(json.dumps([[p, hops[p]] for p in ids]))
    dump = folder / "mlmd-facts.json"
    if python and not mlmd_db.exists():
        print(f"copying the {label} store into MLMD ({mlmd_db}) ...", file=sys.stderr)
        dump.write_text(json.dumps(_facts(path)))
        try:
            built = subprocess.run([python, "-c", MLMD_WORKER, str(mlmd_db), str(dump), str(ids_file)],
                                   capture_output=True, text=True)
            if built.returncode:
                raise SystemExit(f"copying into MLMD failed:\n{built.stderr[-2000:]}")
        except BaseException:
            mlmd_db.unlink(missing_ok=True)  # never reuse a half-built copy
            raise
    for p in ids[:50]:
        lg.trace(p)
        con.execute(bench_queries.RAW_TRACE, (p,)).fetchall()
    results = []
    for i in range(repeats):
        ours, raw = [], []
        for p in ids:
            t = time.perf_counter()
            lg.trace(p)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            con.execute(bench_queries.RAW_TRACE, (p,)).fetchall()
            raw.append(time.perf_counter() - t)
        r: dict[str, Any] = {"label": label, "repeat": i + 1, "trace_ms": statistics.median(ours) * 1000,
             "raw_ms": statistics.median(raw) * 1000, "nodes": statistics.median(len(lg.trace(p)) for p in ids[:100]),
             "load": os.getloadavg()[0]}
        if python:
            out = subprocess.run([python, "-c", MLMD_WORKER, str(mlmd_db), str(dump), str(ids_file)],
                                 check=True, capture_output=True, text=True)
            m = json.loads(out.stdout.strip().splitlines()[-1])
            r["mlmd_ms"], r["mlmd_nodes"] = m["ms"], m["nodes"]
        results.append(r)
        line = (f"{label} #{i + 1}: trace {r['trace_ms']:.3f} ms ({r['nodes']:.0f} nodes), raw CTE {r['raw_ms']:.3f} ms "
                f"= {r['trace_ms'] / r['raw_ms']:.2f}x")
        if "mlmd_ms" in r:
            line += (f"; MLMD get_lineage_subgraph {r['mlmd_ms']:.3f} ms ({r['mlmd_nodes']:.0f} nodes) "
                     f"= {r['mlmd_ms'] / r['trace_ms']:.1f}x lineage's time")
        print(line + f" (load {r['load']:.1f})")
    lg.close()
    con.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k", help="comma-separated: 10k, 100k, 1m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--traces", type=int, default=300, help="random predictions traced per repeat")
    parser.add_argument("--json", dest="json_out", help="also write the figures to this file")
    args = parser.parse_args()
    python = find_mlmd_python()
    if python is None:
        print("ml_metadata is not importable here: set MLMD_PYTHON to an interpreter (Python <= 3.11) that has it; "
              "lineage's figures only", file=sys.stderr)
    results = []
    for label in [s.strip().lower() for s in args.sizes.split(",") if s.strip()]:
        results += run(label, repeats=args.repeats, traces=args.traces, python=python)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
