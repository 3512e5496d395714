"""lineage: provenance and audit for machine learning.

    import lineage
    lg = lineage.open()
    with lg.start_run("fit", params={"C": 1.0}) as run:
        run.log_input(lg.log_dataset("data/train.csv", name="train"))
        run.log_model(clf, "logistic_regression")

See docs/ for the data model, the tracking guide and the CLI reference.
"""

from . import artifacts, config, data, exceptions, models, pyfunc, sklearn
from ._version import __version__
from .api import Lineage, open
from .autologging import request_ids
from .client import MlflowClient
from .entities import missing_names as _missing_names
from .errors import (
    AmbiguousIdError,
    FilterSyntaxError,
    IntegrityError,
    InvalidInputError,
    LineageError,
    NodeNotFoundError,
    NoStoreError,
    RenderError,
    SchemaVersionError,
    StoreCorruptError,
    UnsupportedError,
    WriteRefusedError,
)
from .evaluation import evaluate
from .exceptions import MlflowException

# -- MLflow's fluent API on the default store (`import lineage as mlflow`) ---------
from .fluent import (
    active_run,
    autolog,
    create_experiment,
    delete_experiment,
    delete_logged_model_tag,
    delete_run,
    delete_tag,
    end_run,
    flush_async_logging,
    get_artifact_uri,
    get_experiment,
    get_experiment_by_name,
    get_lineage,
    get_logged_model,
    get_parent_run,
    get_registry_uri,
    get_run,
    get_tracking_uri,
    is_tracking_uri_set,
    last_active_run,
    last_logged_model,
    load_table,
    log_artifact,
    log_artifacts,
    log_dataset,
    log_dict,
    log_figure,
    log_image,
    log_input,
    log_inputs,
    log_metric,
    log_metrics,
    log_model,
    log_output,
    log_param,
    log_params,
    log_predictions,
    log_table,
    log_text,
    register_model,
    search_experiments,
    search_logged_models,
    search_model_versions,
    search_registered_models,
    search_runs,
    set_experiment,
    set_logged_model_tags,
    set_registry_uri,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)
from .model import Edge, Node
from .store import VerifyReport
from .store.asyncwrite import RunOperations
from .tracking import Run

__all__ = [
    "AmbiguousIdError",
    "Edge",
    "FilterSyntaxError",
    "IntegrityError",
    "InvalidInputError",
    "Lineage",
    "LineageError",
    "MlflowClient",
    "MlflowException",
    "NoStoreError",
    "Node",
    "NodeNotFoundError",
    "RenderError",
    "Run",
    "RunOperations",
    "SchemaVersionError",
    "StoreCorruptError",
    "UnsupportedError",
    "VerifyReport",
    "WriteRefusedError",
    "__version__",
    "active_run",
    "artifacts",
    "autolog",
    "config",
    "create_experiment",
    "data",
    "delete_experiment",
    "delete_logged_model_tag",
    "delete_run",
    "delete_tag",
    "end_run",
    "evaluate",
    "exceptions",
    "flush_async_logging",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_lineage",
    "get_logged_model",
    "get_parent_run",
    "get_registry_uri",
    "get_run",
    "get_tracking_uri",
    "is_tracking_uri_set",
    "last_active_run",
    "last_logged_model",
    "load_table",
    "log_artifact",
    "log_artifacts",
    "log_dataset",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_inputs",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_output",
    "log_param",
    "log_params",
    "log_predictions",
    "log_table",
    "log_text",
    "models",
    "open",
    "pyfunc",
    "register_model",
    "request_ids",
    "search_experiments",
    "search_logged_models",
    "search_model_versions",
    "search_registered_models",
    "search_runs",
    "set_experiment",
    "set_logged_model_tags",
    "set_registry_uri",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "sklearn",
    "start_run",
]


# MLflow names lineage does not provide (tracing, GenAI, projects, deployments)
__getattr__ = _missing_names()
