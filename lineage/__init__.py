"""lineage: provenance and audit for machine learning.

    import lineage
    lg = lineage.open()
    with lg.start_run("fit", params={"C": 1.0}) as run:
        run.log_input(lg.log_dataset("data/train.csv", name="train"))
        run.log_model(clf, "logistic_regression")

See docs/ for the data model, the tracking guide and the CLI reference.
"""

from . import sklearn
from .api import Lineage, open
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
    WriteRefusedError,
)
from .fluent import (
    active_run,
    end_run,
    get_lineage,
    last_active_run,
    log_artifact,
    log_dataset,
    log_input,
    log_metric,
    log_metrics,
    log_model,
    log_output,
    log_param,
    log_params,
    log_predictions,
    set_experiment,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)
from .model import Edge, Node
from .store import VerifyReport
from .tracking import Run

__version__ = "0.1.0"

__all__ = [
    "AmbiguousIdError",
    "Edge",
    "FilterSyntaxError",
    "IntegrityError",
    "InvalidInputError",
    "Lineage",
    "LineageError",
    "NoStoreError",
    "Node",
    "NodeNotFoundError",
    "RenderError",
    "Run",
    "SchemaVersionError",
    "StoreCorruptError",
    "VerifyReport",
    "WriteRefusedError",
    "__version__",
    "active_run",
    "end_run",
    "get_lineage",
    "last_active_run",
    "log_artifact",
    "log_dataset",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_output",
    "log_param",
    "log_params",
    "log_predictions",
    "open",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "sklearn",
    "start_run",
]
