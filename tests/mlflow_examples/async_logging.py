# ruff: noqa -- plain MLflow code: async logging, switched on globally and per call
import mlflow

mlflow.config.enable_async_logging()
mlflow.set_experiment("async")
with mlflow.start_run(run_name="queued"):
    ops = [mlflow.log_param("alpha", 0.5), mlflow.set_tag("team", "risk")]
    for step in range(20):
        ops.append(mlflow.log_metric("loss", 1.0 / (step + 1), step=step))
    ops.append(mlflow.log_params({"beta": 2}))
    ops.append(mlflow.log_metrics({"rmse": 0.7, "r2": 0.2}))
    for op in ops:
        op.wait()
mlflow.config.enable_async_logging(False)
with mlflow.start_run(run_name="mixed"):
    assert mlflow.log_param("gamma", 3) == 3
    mlflow.log_metric("rmse", 0.8, synchronous=False).wait()
    mlflow.set_tag("phase", "final", synchronous=False).wait()
mlflow.flush_async_logging()
print("ok")
