"""Score new.csv with model.pkl: one prediction per request, in predictions.csv."""
import pickle

import pandas as pd

with open("model.pkl", "rb") as f:
    model = pickle.load(f)
new = pd.read_csv("new.csv")
new["approved"] = model.predict(new[["age", "income", "debt"]])
new[["request_id", "approved"]].to_csv("predictions.csv", index=False)
