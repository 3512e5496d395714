"""The classic MLflow + DVC workflow, recorded with lineage.

A dataset shipped inside scikit-learn (no download) is written to CSV, split into
train and test files (each versioned, as `dvc add` would), cleaned by a
preprocessing run, and used to train two models (logistic regression, then a random
forest with feature importance). Both are evaluated on the test file, the forest
serves predictions on new rows, and the whole story is one provenance graph.

Run it with `make demo`, or `python examples/quickstart.py [OUT_DIR]` (default `out/`).
"""

from __future__ import annotations

import contextlib
import csv
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import lineage


def write_csv(path: Path, header: list[str], rows: np.ndarray, target: np.ndarray) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*header, "target"])
        for row, y in zip(rows, target):
            w.writerow([*(f"{v:.6g}" for v in row), int(y)])


def read_csv(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    with path.open() as f:
        r = csv.reader(f)
        header = next(r)
        data = np.array([[float(v) for v in row] for row in r])
    return header[:-1], data[:, :-1], data[:, -1].astype(int)


def main(out: Path, db: str | None = None) -> None:
    """``db``: another store to record into (a ``postgresql://`` URL) instead of
    ``out/.lineage/lineage.db``."""
    started = time.perf_counter()
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    lg = lineage.open(db or out / ".lineage" / "lineage.db")

    # 1. Raw data, split and versioned: what `dvc add` does, with content hashes.
    bunch = load_breast_cancer()
    features = [n.replace(" ", "_") for n in bunch.feature_names]
    X_tr, X_te, y_tr, y_te = train_test_split(bunch.data, bunch.target, test_size=0.25, random_state=0)
    X_te, X_new, y_te, _ = train_test_split(X_te, y_te, test_size=0.3, random_state=0)
    write_csv(data_dir / "raw.csv", features, bunch.data, bunch.target)
    write_csv(data_dir / "train.csv", features, X_tr, y_tr)
    write_csv(data_dir / "test.csv", features, X_te, y_te)
    raw = lg.log_dataset(data_dir / "raw.csv", name="raw")
    train = lg.log_dataset(data_dir / "train.csv", name="train")
    test = lg.log_dataset(data_dir / "test.csv", name="test")

    # 2. A preprocessing run: drop the three most correlated "worst" columns.
    with lg.start_run("preprocess", params={"drop": "worst_perimeter,worst_area,worst_radius"},
                      experiment="breast-cancer") as run:
        run.log_input(train)
        header, X, y = read_csv(data_dir / "train.csv")
        keep = [i for i, h in enumerate(header) if h not in ("worst_perimeter", "worst_area", "worst_radius")]
        write_csv(data_dir / "train_clean.csv", [header[i] for i in keep], X[:, keep], y)
        clean = run.log_output(data_dir / "train_clean.csv", name="train_clean")

    header, X_train, y_train = read_csv(data_dir / "train_clean.csv")
    _, X_test_all, y_test = read_csv(data_dir / "test.csv")
    cols = [features.index(h) for h in header]
    X_test = X_test_all[:, cols]

    # 3. Two training runs, MLflow-style: params, metrics on the test file, the model.
    models = {}
    for name, estimator, params in [
        ("logistic_regression", make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500)), {"C": 1.0}),
        ("random_forest", RandomForestClassifier(n_estimators=60, max_depth=6, random_state=0),
         {"n_estimators": 60, "max_depth": 6}),
    ]:
        with lg.start_run(f"train_{name}", params=params, tags={"team": "risk"}, experiment="breast-cancer") as run:
            run.log_input(clean)
            clf = _named(estimator.fit(_frame(X_train, header), y_train), header)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # (named by hand when pandas is absent)
                pred = clf.predict(_frame(X_test, header))
            run.log_metric("accuracy", accuracy_score(y_test, pred), dataset=test)
            run.log_metric("f1", f1_score(y_test, pred), dataset=test)
            big = X_test[:, header.index("mean_radius")] > 15
            run.log_metric("accuracy", accuracy_score(y_test[big], pred[big]), dataset=test, group="mean_radius>15")
            models[name] = (clf, run.log_model(clf, name))

    # 3b. A small sweep of the forest's depth (metrics only, no model kept): what
    #     `lineage insights accuracy` reads to say which parameter matters.
    for depth in (2, 4, 8):
        with lg.start_run("tune_random_forest", params={"n_estimators": 30, "max_depth": depth},
                          experiment="breast-cancer-tuning") as run:
            tuned = RandomForestClassifier(n_estimators=30, max_depth=depth, random_state=0)
            tuned = _named(tuned.fit(_frame(X_train, header), y_train), header)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                run.log_metric("accuracy", accuracy_score(y_test, tuned.predict(_frame(X_test, header))))

    # 4. Serve: the forest predicts on rows it has never seen.
    forest, forest_node = models["random_forest"]
    X_serve = X_new[:, cols]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        y_pred = forest.predict(_frame(X_serve, header))
        proba = forest.predict_proba(_frame(X_serve, header))[:, 1]
    # keep_inputs: each prediction's input values are kept, so why it came out as it
    # did can be answered later (`lineage explain request:req-0000`, the decision record)
    ids = lg.log_predictions(forest_node, X_serve, y_pred, scores=proba, keep_inputs=True,
                             request_ids=[f"req-{i:04d}" for i in range(len(y_pred))])

    report = lg.verify()
    elapsed = time.perf_counter() - started
    print(f"Recorded the quickstart in {elapsed:.1f}s into {lg.db_path}")
    print(f"  datasets: raw {raw.id[:20]}…, train, test, train_clean")
    for name, (_, node) in models.items():
        print(f"  model {name}: {node.id[:22]}…  accuracy {_metric(lg, node)}")
    print(f"  predictions: {len(ids)} by random_forest (e.g. {ids[0]}, request id req-0000)")
    print(f"  ledger: {report}")
    _explain(lg, ids[0], out)


def _frame(X: np.ndarray, header: list[str]):
    """Feature names travel with the data when pandas is installed, as in real pipelines."""
    try:
        import pandas as pd
    except ImportError:
        return X
    return pd.DataFrame(X, columns=header)


def _named(model: Any, header: list[str]) -> Any:
    """The estimator with its feature names even when pandas is absent (fitted on an
    array): the audit's importance chart then reads `mean_radius`, not `x0`."""
    if getattr(model, "feature_names_in_", None) is None:
        with contextlib.suppress(AttributeError):  # (a Pipeline derives it from its first step)
            model.feature_names_in_ = np.asarray(header, dtype=object)
    return model


def _metric(lg: lineage.Lineage, model: lineage.Node) -> str:
    runs = [e for e in lg.store.generators(model.id)]
    run = lg.get(runs[0])
    value = run.attrs.get("metrics", {}).get("accuracy")
    return f"{value:.3f}" if value is not None else "?"


def _explain(lg: lineage.Lineage, prediction_id: str, out: Path) -> None:
    """Once queries and diagrams exist: the trace of one prediction, and its picture."""
    try:
        sub = lg.trace(prediction_id)
    except ImportError:
        return
    from rich.console import Console

    console = Console()
    console.print(f"\nWhere did {prediction_id[:24]}… come from?")
    console.print(sub)
    why = lg.explain(prediction_id)
    if why.get("reasons"):
        top = ", ".join(f"{r['feature']} {r['contribution']:+.3f}" for r in why["reasons"][:3])
        rid = why["subject"]["request_id"]
        console.print(f"Why did it answer {why['output']}? The largest effects: {top} "
                      f"(all of them: lineage explain {'request:' + rid if rid else prediction_id})")
    try:
        from lineage import render
    except ImportError:
        return
    print(render.demo_diagram(lg, sub, out))
    try:
        from lineage import audit  # noqa: F401
    except ImportError:
        return
    model = next(n for n in sub.nodes("model"))
    path = lg.audit(model.id).write(out / "audit.html")
    print(f"Audit report of {model.name}: {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out"))
