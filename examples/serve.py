"""A model served over HTTP, every answer recorded with lineage.

The standard library's `http.server` answers ``POST /predict`` with a JSON body
``{"features": {"age": 41, "income": 52000}}`` (or a list of numbers in the model's
feature order); the caller's ``X-Request-ID`` header (else a generated id) becomes
the prediction's request id, so ``lineage trace request:<id>`` finds where any answer
came from. Recording costs the request a few microseconds: `lg.prediction_logger`
queues the row and a background thread writes batches to the store.

    python examples/serve.py --port 8000              # trains a small model first if needed
    curl -s -X POST localhost:8000/predict -H 'X-Request-ID: r-1' \\
         -d '{"features": {"age": 41, "income": 52000}}'
    lineage trace request:r-1
    lineage explain request:r-1                       # why: its inputs, the threshold, the reasons

``--max-requests N`` stops after N answers (for tests and load tests), ``--no-log``
serves without recording (to measure what recording costs). SIGTERM or Ctrl-C stop
it cleanly: the logger flushes, nothing answered is lost.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import lineage

FEATURES = ["age", "income"]
THRESHOLD = 0.5  # a score at or above it is answered 1


def train(lg: lineage.Lineage, folder: Path) -> lineage.Node:
    """A small logistic regression on synthetic applications, recorded with its data."""
    from sklearn.linear_model import LogisticRegression

    rng = random.Random(0)
    rows = [(rng.randint(18, 80), rng.randint(10_000, 120_000)) for _ in range(400)]
    labels = [int(income / 1000 + rng.gauss(0, 15) > 60 + age / 4) for age, income in rows]
    data = folder / "applications.csv"
    data.write_text("age,income,label\n" + "".join(f"{a},{i},{y}\n" for (a, i), y in zip(rows, labels)))
    train_set = lg.log_dataset(data, name="applications")
    with lg.start_run("train_service_model", params={"C": 1.0}) as run:
        run.log_input(train_set)
        try:  # a DataFrame gives the model its feature names
            import pandas as pd

            X: Any = pd.DataFrame(rows, columns=FEATURES)
        except ImportError:
            X = rows
        clf = LogisticRegression(C=1.0, max_iter=1000).fit(X, labels)
        run.log_metric("accuracy", clf.score(X, labels), dataset=train_set)
        return run.log_model(clf, "service_model")


def make_handler(model: Any, logger: Any, stats: dict[str, int], done: threading.Event,
                 max_requests: int | None) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()
    has_names = getattr(model, "feature_names_in_", None) is not None
    if has_names:
        import pandas as pd

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a load test measures the model, not TCP set-up

        def log_message(self, format: str, *args: Any) -> None:  # (the base class's name for it)
            pass  # the access log is the lineage store

        def do_POST(self) -> None:
            if self.path != "/predict":
                return self._send(404, {"error": "POST /predict"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                features = body["features"]
                row = [float(features[f]) for f in FEATURES] if isinstance(features, dict) else [float(v) for v in features]
                if len(row) != len(FEATURES):
                    raise ValueError(f"expected {len(FEATURES)} features")
            except (ValueError, KeyError, TypeError) as exc:
                return self._send(400, {"error": f"bad request: {exc}"})
            request_id = self.headers.get("X-Request-ID") or uuid.uuid4().hex
            X = pd.DataFrame([row], columns=FEATURES) if has_names else [row]
            score = float(model.predict_proba(X)[0][1])
            prediction = int(score >= THRESHOLD)
            if logger is not None:
                # microseconds: the row is queued, a background thread writes it
                logger.log([dict(zip(FEATURES, row))], [prediction], request_ids=[request_id], scores=[score])
            self._send(200, {"request_id": request_id, "prediction": prediction, "score": round(score, 6)})
            with lock:
                stats["served"] += 1
                if max_requests is not None and stats["served"] >= max_requests:
                    done.set()

        def _send(self, status: int, doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed on start)")
    parser.add_argument("--db", help="lineage store (default: the nearest .lineage/lineage.db)")
    parser.add_argument("--model", default="service_model", help="a recorded model to serve (trained first if absent)")
    parser.add_argument("--max-requests", type=int, help="stop after this many answers")
    parser.add_argument("--no-log", action="store_true", help="do not record predictions (to measure the cost)")
    args = parser.parse_args(argv)

    lg = lineage.open(args.db)
    try:
        node = lg.get(args.model)
    except lineage.NodeNotFoundError:
        node = train(lg, lg.db_path.parent.parent)
    from lineage.predfiles import model_object

    model = model_object(lg.store, node)  # the recorded bytes: what is served is what was recorded
    # each request's inputs and the threshold are kept with its prediction, so
    # `lineage explain request:<id>` can say why it was answered as it was
    logger = None if args.no_log else lg.prediction_logger(node, max_batch=1000, max_delay=0.2, keep_inputs=True,
                                                           decision={"threshold": THRESHOLD, "positive": 1, "negative": 0})
    stats = {"served": 0}
    done = threading.Event()
    server = ThreadingHTTPServer((args.host, args.port), make_handler(model, logger, stats, done, args.max_requests))
    server.daemon_threads = True
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"serving {node.name} ({node.id[:20]}…) on http://{args.host}:{server.server_address[1]}", flush=True)
    done.wait()
    server.shutdown()  # no new requests; answers in progress finish
    server.server_close()
    if logger is not None:
        logger.close()  # everything answered is written before we exit
    logged = logger.written if logger is not None else 0
    print(f"served {stats['served']} requests, recorded {logged} predictions"
          + (f", dropped {logger.dropped}" if logger is not None and logger.dropped else ""), flush=True)
    lg.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
