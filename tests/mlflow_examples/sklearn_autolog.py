# ruff: noqa -- kept as MLflow wrote it
# After MLflow's examples/sklearn_autolog (grid_search_cv.py and pipeline.py): autolog,
# a GridSearchCV over an SVC, then a Pipeline; data from scikit-learn.
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import mlflow
import mlflow.sklearn


def main():
    mlflow.sklearn.autolog()

    iris = load_iris(as_frame=True)
    parameters = {"kernel": ("linear", "rbf"), "C": [1, 5, 10]}
    svc = SVC()
    clf = GridSearchCV(svc, parameters)
    with mlflow.start_run() as run:
        clf.fit(iris.data, iris.target)
    print("grid", run.info.run_id)

    pipe = Pipeline([("scaler", StandardScaler()), ("lr", LinearRegression())])
    X = np.array([[1, 1], [1, 2], [2, 2], [2, 3]])
    y = np.dot(X, np.array([1, 2])) + 3
    with mlflow.start_run() as run:
        pipe.fit(X, y)
        pipe.predict(X)
    print("pipeline", run.info.run_id)


if __name__ == "__main__":
    main()
