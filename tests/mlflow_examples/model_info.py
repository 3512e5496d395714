# ruff: noqa -- plain MLflow code: the calls of MLflow's tracking quickstart (log a model
# with registered_model_name, then load it back through the ModelInfo it returned), with
# MLflow 2's artifact_path= and MLflow 3's name= spellings, and the registry calls after it
import mlflow
from mlflow import MlflowClient
from mlflow.models import infer_signature

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

X, y = load_iris(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=7)
mlflow.set_experiment("iris-quickstart")
infos = []
for spelling, C in (("artifact_path", 0.5), ("name", 2.0)):
    clf = LogisticRegression(C=C, max_iter=500).fit(X_train, y_train)
    with mlflow.start_run(run_name=f"C={C}"):
        mlflow.log_params({"C": C, "max_iter": 500})
        mlflow.log_metrics({"accuracy": accuracy_score(y_test, clf.predict(X_test))})
        mlflow.set_tag("purpose", "quickstart-shaped check")
        infos.append(mlflow.sklearn.log_model(
            sk_model=clf,
            signature=infer_signature(X_train, clf.predict(X_train)),
            input_example=X_train.head(3),
            registered_model_name="iris-classifier",
            **{spelling: "iris_model"},
        ))
for info in infos:
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    print("version", info.registered_model_version, "uri", info.model_uri, "run", info.run_id,
          "predicted", list(loaded.predict(X_test.head(3))))
client = MlflowClient()
client.set_registered_model_alias("iris-classifier", "champion", infos[1].registered_model_version)
champion = client.get_model_version_by_alias("iris-classifier", "champion")
print("champion", champion.version, champion.aliases, champion.run_id)
client.transition_model_version_stage("iris-classifier", champion.version, "Production")
print("production", [v.version for v in client.get_latest_versions("iris-classifier", stages=["Production"])])
print("loaded champion", mlflow.pyfunc.load_model("models:/iris-classifier@champion").predict(X_test.head(1)))
