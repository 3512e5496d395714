# ruff: noqa -- plain MLflow code: fluent and client calls, steps, nested runs, tags
import mlflow
from mlflow import MlflowClient

mlflow.set_experiment("side-by-side")
for alpha in (0.1, 0.5):
    with mlflow.start_run(run_name=f"alpha-{alpha}") as run:
        mlflow.log_param("alpha", alpha)
        mlflow.set_tags({"team": "risk", "alpha_tag": str(alpha)})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1 + alpha), step=step)
        mlflow.log_metrics({"rmse": 0.7 + alpha, "r2": 0.2 - alpha})
        with mlflow.start_run(run_name=f"child-{alpha}", nested=True):
            mlflow.log_param("fold", 1)
client = MlflowClient()
exp = client.get_experiment_by_name("side-by-side")
r = client.create_run(exp.experiment_id, run_name="by-client")
client.log_batch(r.info.run_id, params=[mlflow.entities.Param("beta", "2")], metrics=[], tags=[])
client.log_metric(r.info.run_id, "loss", 0.25, step=7)
client.set_terminated(r.info.run_id)
print("ok")
