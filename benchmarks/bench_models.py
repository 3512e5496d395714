"""Model description and feature lineage (issue 13): `lineage features MODEL` on a
200-feature Pipeline, and permutation importance on 10,000 held-out rows, each beside
its raw baseline measured in the same process.

    python benchmarks/bench_models.py            # the figures of docs/performance.md
    python benchmarks/bench_models.py --repeats 3

Raw baselines: for `features`, the interpreter starting (`python -c pass`) and, in
process, what a person would do by hand (unpickle the model, call
`get_feature_names_out`); for importance, scikit-learn's `permutation_importance` on
the same frame with the same repeats and seed (what `compute_importance` wraps: it adds
reading the CSV, loading the pickle and recording one row per column).
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lineage  # noqa: E402


def _median(f: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _cli_times(cmd: list[str], env: dict[str, str], repeats: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system, from the child's rusage)
    of a command. On a shared, loaded machine the wall time is mostly waiting for a
    core; the CPU time is what the command itself costs."""
    import resource

    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return statistics.median(walls), statistics.median(cpus)


def _frame(n: int, n_num: int, n_cat: int, levels: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {f"num_{i:03d}": rng.normal(size=n).round(4) for i in range(n_num)}
    cols.update({f"cat_{i:02d}": rng.choice([f"l{j}" for j in range(levels)], n) for i in range(n_cat)})
    df = pd.DataFrame(cols)
    df["target"] = (df["num_000"] + (df["cat_00"] == "l1") + rng.normal(scale=0.5, size=n) > 0.5).astype(int)
    return df


def _pipeline(num: list[str], cat: list[str], final: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer([("num", StandardScaler(), num), ("cat", OneHotEncoder(handle_unknown="ignore"), cat)])
    return Pipeline([("pre", pre), ("clf", final)])


def bench_features(workdir: Path, repeats: int) -> list[tuple[str, float, float, str]]:
    from sklearn.linear_model import LogisticRegression

    df = _frame(2000, 100, 20, 5, 0)  # 100 numeric + 20 categoricals of 5 levels = 200 features
    num = [c for c in df.columns if c.startswith("num_")]
    cat = [c for c in df.columns if c.startswith("cat_")]
    df.to_csv(workdir / "raw.csv", index=False)
    lg = lineage.open(workdir / ".lineage" / "lineage.db")
    raw = lg.log_dataset(workdir / "raw.csv", name="raw")
    with lg.start_run("prep") as run:
        run.log_input(raw)
        df.iloc[:1800].to_csv(workdir / "applications.csv", index=False)
        apps = run.log_output(workdir / "applications.csv", name="applications")
    with lg.start_run("fit") as run:
        run.log_input(apps)
        X, y = df.drop(columns="target").iloc[:1800], df["target"].iloc[:1800]
        model = _pipeline(num, cat, LogisticRegression(max_iter=300)).fit(X, y)
        t = time.perf_counter()
        node = run.log_model(model, "wide")
        log_model_s = time.perf_counter() - t
    lg.mark_sensitive("raw", ["cat_00"])
    assert len(node.attrs["features_out"]) == 200, len(node.attrs["features_out"])
    api = _median(lambda: lg.feature_lineage("wide"), repeats)
    artifact = lg.store.artifact_path(node.id.split(":", 1)[1])
    lg.close()

    def by_hand() -> None:
        m = pickle.loads(artifact.read_bytes())
        m[:-1].get_feature_names_out()

    by_hand_s = _median(by_hand, repeats)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LINEAGE_DB": str(workdir / ".lineage" / "lineage.db"),
           "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "lineage", "features", "wide"]
    wall, cpu = _cli_times(cmd, env, repeats)
    wall_j, cpu_j = _cli_times([*cmd, "--json"], env, repeats)
    base_wall, base_cpu = _cli_times([sys.executable, "-m", "lineage", "--version"], env, repeats)
    return [
        ("`lineage features MODEL`, 200-feature Pipeline (table), wall", wall, base_wall, "`lineage --version`, wall"),
        ("the same, CPU time (user + system)", cpu, base_cpu, "`lineage --version`, CPU"),
        ("`lineage features MODEL --json`, wall", wall_j, base_wall, "`lineage --version`, wall"),
        ("the same, CPU time", cpu_j, base_cpu, "`lineage --version`, CPU"),
        ("`lg.feature_lineage(model)` in process", api, by_hand_s, "unpickle + get_feature_names_out"),
        ("`log_model` of that Pipeline (described, 200 features mapped)", log_model_s, float("nan"), ""),
    ]


def bench_permutation(workdir: Path, repeats: int) -> list[tuple[str, float, float, str]]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.linear_model import LogisticRegression

    df = _frame(30_000, 6, 3, 4, 1)  # 6 numeric + 3 categoricals of 4 levels -> 18 features
    num = [c for c in df.columns if c.startswith("num_")]
    cat = [c for c in df.columns if c.startswith("cat_")]
    train, held = df.iloc[:20_000], df.iloc[20_000:]
    held.to_csv(workdir / "holdout.csv", index=False)
    lg = lineage.open(workdir / ".lineage" / "lineage.db")
    lg.log_dataset(workdir / "holdout.csv", name="holdout")
    out = []
    for label, final in (("LogisticRegression", LogisticRegression(max_iter=300)),
                         ("HistGradientBoostingClassifier", HistGradientBoostingClassifier(max_iter=50))):
        model = _pipeline(num, cat, final).fit(train.drop(columns="target"), train["target"])
        name = label.lower()
        with lg.start_run("fit") as run:
            run.log_model(model, name)
        Xh, yh = held.drop(columns="target"), held["target"]
        ours = _median(lambda n=name: lg.compute_importance(n, data="holdout", target="target"), repeats)
        raw = _median(lambda m=model, X=Xh, y=yh: permutation_importance(m, X, y, n_repeats=5, random_state=0), repeats)
        out.append((f"permutation importance, 10,000 held-out rows, 9 columns × 5 repeats, {label}", ours, raw,
                    "sklearn permutation_importance"))
    lg.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        rows += bench_features(Path(tmp), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        rows += bench_permutation(Path(tmp), max(1, args.repeats // 2))
    print("| measure | lineage | raw baseline | baseline is |")
    print("| --- | ---: | ---: | --- |")
    for what, ours, raw, base in rows:
        raw_text = "–" if raw != raw else f"{raw:.3f} s"
        print(f"| {what} | {ours:.3f} s | {raw_text} | {base} |")


if __name__ == "__main__":
    main()
