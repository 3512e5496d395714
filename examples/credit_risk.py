"""A credit-risk model with several versions, recorded with lineage: what the models
and concepts pages (promotion labels, feature lineage, sensitive columns) work on.

Synthetic applications (age, sex, income, debt, default) are written to
`data/raw.csv`, cleaned by a `prepare` run into `data/applications.csv`, and a
scikit-learn Pipeline (scaling, one-hot encoding, logistic regression) is trained
on them as model `risk`: two versions on the first batch of applications, three
more once a second batch arrives (raw@2, applications@2). Version 3 is labelled
`staging` and answers 50 requests (`req-0000` to `req-0049`); `data/test.csv` is
held-out data with its label column `default`.

Run it with `python examples/credit_risk.py [DIR]` (default: the current folder);
it needs pandas and scikit-learn.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import lineage

NUMERIC = ["age", "income", "debt"]


def applications(n: int, seed: int) -> pd.DataFrame:
    """``n`` synthetic applications: default grows with debt over income, falls with age."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    income = rng.normal(42_000, 12_000, n).clip(8_000).round(-2)
    debt = rng.gamma(2.0, 6_000, n).round(-2)
    sex = rng.choice(["f", "m"], n)
    logit = 3.0 * debt / income - 0.03 * (age - 45) - 1.0
    default = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"age": age, "sex": sex, "income": income, "debt": debt, "default": default})


def pipeline(c: float) -> Pipeline:
    pre = ColumnTransformer([("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(), ["sex"])])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(C=c, max_iter=1000))])


def main(out: Path) -> None:
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    lg = lineage.open(out / ".lineage" / "lineage.db")
    applications(200, seed=1).to_csv(data / "test.csv", index=False)
    test = lg.log_dataset(data / "test.csv", name="test")

    batches = [(applications(400, seed=2), (0.1, 0.3)), (applications(300, seed=3), (1.0, 3.0, 10.0))]
    raw = pd.DataFrame()
    models = []
    for batch, cs in batches:
        # a new batch of applications: a new version of raw, cleaned into a new version of applications
        raw = pd.concat([raw, batch], ignore_index=True)
        raw.to_csv(data / "raw.csv", index=False)
        raw_node = lg.log_dataset(data / "raw.csv", name="raw")
        with lg.start_run("prepare", params={"drop": "rows with income below 10000"}) as run:
            run.log_input(raw_node)
            raw[raw["income"] >= 10_000].to_csv(data / "applications.csv", index=False)
            apps = run.log_output(data / "applications.csv", name="applications")
        train = pd.read_csv(data / "applications.csv")
        held_out = pd.read_csv(data / "test.csv")
        for c in cs:
            with lg.start_run("train_risk", params={"C": c}) as run:
                run.log_input(apps)
                model = pipeline(c).fit(train.drop(columns="default"), train["default"])
                accuracy = model.score(held_out.drop(columns="default"), held_out["default"])
                run.log_metric("accuracy", accuracy, dataset=test)
                models.append((model, run.log_model(model, "risk")))

    # version 3 goes to staging and answers requests
    model, node = models[2]
    lg.promote(node, "staging", reason="candidate for MRM-114")
    new = applications(50, seed=4).drop(columns="default")
    lg.log_predictions(node, new, model.predict(new), scores=model.predict_proba(new)[:, 1],
                       request_ids=[f"req-{i:04d}" for i in range(len(new))])
    print(f"recorded {len(models)} versions of risk into {lg.db_path}; risk@3 is in staging")
    lg.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))
