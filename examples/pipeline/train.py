"""Fit a logistic regression on clean.csv and pickle it to model.pkl."""
import pickle
import sys

import pandas as pd
from sklearn.linear_model import LogisticRegression

C = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
data = pd.read_csv("clean.csv")
model = LogisticRegression(C=C, max_iter=1000).fit(data[["age", "income", "debt"]], data["label"])
with open("model.pkl", "wb") as f:
    pickle.dump(model, f)
