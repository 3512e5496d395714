"""``lineage.autolog()``: record every scikit-learn ``fit`` (and, when asked, ``predict``).

    lineage.autolog()                       # also lineage.sklearn.autolog(), mlflow.autolog() in route 1
    Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, y)

Each outermost ``fit`` records, on the active run (or on a run of its own, ended when
the fit returns): the estimator's parameters (``get_params(deep=True)``, so a
Pipeline's steps read ``clf__C``), ``X`` and ``y`` content-hashed as training data
(DataFrame column names kept), the fitted model, MLflow's ``estimator_name`` and
``estimator_class`` tags, ``training_score`` and MLflow's other ``training_*`` metrics.
``GridSearchCV`` / ``RandomizedSearchCV`` record the search on the parent run (its
``best_*`` params, ``best_cv_score``, the best estimator) and up to
``max_tuning_runs`` of the best candidates as child runs. With
``log_predictions=True``, ``predict``/``predict_proba`` of an estimator autolog
recorded log their outputs in bulk, with request ids from
``with lineage.request_ids(ids):``. ``lineage.autolog(disable=True)`` undoes it.

A fit that raises fails its run (when autolog started one) and keeps its params
and data, as MLflow's autolog does; the exception reaches the caller unchanged.
Autolog never breaks the user's code: a recording that fails is reported with a
warning and the fit's result is returned as it would be without lineage. Each part
(params and data, model, tags, metrics) is recorded on its own, so data lineage
cannot hash drops only that data; one warning line names what was left out.
Fits lineage makes itself (`internal.unrecorded`) are never recorded.
"""

from __future__ import annotations

import atexit
import functools
import threading
import warnings
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from . import internal
from .errors import InvalidInputError, LineageError, foreign, log

_config: dict[str, Any] = {"enabled": False, "log_predictions": False, "max_tuning_runs": 5,
                           "log_datasets": True, "log_models": True}
_patched: list[tuple[type, str, Any]] = []
_local = threading.local()
_models: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_SEARCH = ("GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV")


def autolog(disable: bool = False, log_predictions: bool = False, max_tuning_runs: int | None = 5,
            log_datasets: bool = True, log_models: bool = True, silent: bool = False, **_: Any) -> None:
    """Turn scikit-learn autologging on (or off with ``disable=True``).

    Other MLflow autolog arguments are accepted and ignored."""
    if disable:
        _unpatch()
        _config["enabled"] = False
        flush()
        return
    _config.update(enabled=True, log_predictions=bool(log_predictions),
                   max_tuning_runs=5 if max_tuning_runs is None else int(max_tuning_runs),
                   log_datasets=bool(log_datasets), log_models=bool(log_models))
    if not _patched:
        _patch()


@contextmanager
def request_ids(ids: Sequence[Any]) -> Iterator[None]:
    """Predictions autolog records inside the block carry these request ids (one per row)."""
    previous = getattr(_local, "request_ids", None)
    _local.request_ids = list(ids)
    try:
        yield
    finally:
        _local.request_ids = previous


def _patch() -> None:
    from sklearn.utils import all_estimators

    for _, cls in all_estimators():
        if cls.__module__ == "sklearn.preprocessing._label":
            # LabelEncoder, LabelBinarizer: target encoders sklearn's own metrics fit
            # inside roc_auc_score & co. (a user's call of those read as a model's fit)
            continue
        for method in ("fit", "predict", "predict_proba"):
            # patch the class that defines the method (GridSearchCV's fit is BaseSearchCV's)
            owner = next((k for k in cls.__mro__ if method in k.__dict__), None)
            if owner is None or not owner.__module__.startswith("sklearn."):
                continue
            original = owner.__dict__[method]
            if getattr(original, "_lineage_autolog", False):
                continue
            if callable(original):
                wrapper = _fit_wrapper(original) if method == "fit" else _predict_wrapper(original)
            elif method != "fit" and _is_available_if(original):
                wrapper = _available_if_wrapper(original)
                if wrapper is None:
                    continue
            else:
                continue
            wrapper._lineage_autolog = True
            setattr(owner, method, wrapper)
            _patched.append((owner, method, original))


def _is_available_if(attr: Any) -> bool:
    # Pipeline's and the searches' predict exist only when their last step has one:
    # sklearn's `available_if` descriptor, which is not callable itself. Unwrapped,
    # a Pipeline's predictions were never recorded (its steps' are part of it).
    return type(attr).__name__ == "_AvailableIfDescriptor" and callable(getattr(attr, "fn", None))


def _available_if_wrapper(descriptor: Any) -> Any:
    """The same `available_if` descriptor around the recording predict (None if this
    scikit-learn's descriptor is built otherwise: that method is then left alone)."""
    try:
        return type(descriptor)(_predict_wrapper(descriptor.fn), descriptor.check,
                                attribute_name=descriptor.attribute_name)
    except (AttributeError, TypeError):
        return None


def _unpatch() -> None:
    while _patched:
        cls, method, original = _patched.pop()
        setattr(cls, method, original)


def _depth(name: str) -> int:
    return int(getattr(_local, name, 0))


def _fit_wrapper(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _config["enabled"] or _depth("fit") > 0 or not internal.recording():
            # (not recording: lineage's own fit, e.g. insights' forests, is no run of the user's)
            return original(self, *args, **kwargs)
        _local.fit = 1  # inner fits (a Pipeline's steps, a search's candidates) are part of this one
        try:
            return _record_fit(original, self, args, kwargs)
        finally:
            _local.fit = 0

    return fit


def _predict_wrapper(original: Any) -> Any:
    @functools.wraps(original)
    def predict(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _depth("predict") > 0:
            return original(self, *args, **kwargs)
        _local.predict = 1
        try:
            out = original(self, *args, **kwargs)
        finally:
            _local.predict = 0
        if (_config["enabled"] and _config["log_predictions"] and _depth("fit") == 0 and args
                and internal.recording()):  # (lineage's own scoring of a user's model is no prediction)
            model_id = _models.get(self)
            if model_id is not None:
                _log_predictions(self, model_id, args[0], out)
        return out

    return predict


def _warn(what: str, exc: BaseException) -> None:
    warnings.warn(f"lineage autolog could not record {what}: {exc}", RuntimeWarning, stacklevel=4)


#: the parts of a fit's record that could not be written, each with its reason
Missed = list[tuple[str, LineageError]]


def _warn_missed(fit: str, missed: Missed) -> None:
    """One line for everything of one fit that was not recorded (the rest was)."""
    parts = ", ".join(what for what, _ in missed)
    reasons = "; ".join(dict.fromkeys(str(exc) for _, exc in missed))  # (the same reason once)
    warnings.warn(f"lineage autolog could not record {parts} of {fit}: {reasons}", RuntimeWarning, stacklevel=4)


class _PredictionWriter:
    """Writes autolog's predictions from a thread of its own, on a connection of its
    own, so a ``predict`` pays only for a copy of its rows (hashing the rows and the
    bulk write happen beside it). `flush` waits for everything queued; the queue is
    flushed at exit and by ``autolog(disable=True)`` and ``flush_async_logging()``."""

    def __init__(self) -> None:
        import queue  # only once predictions are logged: keeps `import lineage` light

        self.queue: queue.Queue[Any] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def put(self, item: tuple[Any, ...]) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._work, name="lineage-autolog-predictions", daemon=True)
                self.thread.start()
        self.queue.put(item)

    def _work(self) -> None:
        from .store import Store, fork_gate
        from .tracking import log_predictions

        stores: dict[Any, Store] = {}
        while True:
            path, actor, model_id, model_class, X, out, ids = self.queue.get()
            try:
                # (whatever the rows make numpy or the store raise becomes one line: the
                # thread must live on, and the user hear what was lost, not a traceback)
                with fork_gate.passage(), foreign("{type}: {reason}"):  # a fork waits for this write (see store.ForkGate)
                    if path not in stores:
                        stores[path] = Store(path, create=False, actor=actor)
                    log_predictions(stores[path], model_id, X, out, request_ids=ids)
            except LineageError as exc:
                self._lost(stores.get(path), model_id, model_class, out, exc)
            finally:
                self.queue.task_done()

    @staticmethod
    def _lost(store: Any, model_id: str, model_class: str, out: Any, exc: LineageError) -> None:
        """Say that these predictions were not recorded: a warning each time (not once
        per place, Python's default: the second loss would go unseen, as every one is
        warned from the same line of this thread), and a ``predictions_dropped`` event
        in the ledger, as the prediction logger records its losses, when the store
        still takes writes."""
        try:
            n: int | str = len(out)
        except TypeError:
            n = "the"
        reason = str(exc)
        warnings.warn_explicit(
            f"lineage autolog did not record {n} predictions of {model_class} ({model_id[:18]}…): {reason}",
            RuntimeWarning, __file__, 0, module=__name__, registry={})
        if store is not None:
            try:
                store.write("predictions_dropped", {"model": model_id, "dropped": 0, "rejected": n if isinstance(n, int) else 0,
                                                    "reason": reason, "source": "autolog"})
            except LineageError as again:
                log.debug("the loss of predictions of %s could not be recorded either: %s", model_id, again)

    def flush(self) -> None:
        if self.thread is not None:
            self.queue.join()


_writers: list[_PredictionWriter] = []


def _writer() -> _PredictionWriter:
    if not _writers:
        _writers.append(_PredictionWriter())
        atexit.register(_writers[0].flush)
    return _writers[0]


def flush() -> None:
    """Wait until every prediction autolog queued is written."""
    if _writers:
        _writers[0].flush()


def _snapshot(data: Any) -> Any:
    # the caller may change its array after predict returns; what it predicted on is kept
    if hasattr(data, "copy"):
        try:
            return data.copy()
        except TypeError:
            pass
    return list(data) if not hasattr(data, "shape") else data


def _log_predictions(model: Any, model_id: str, X: Any, out: Any) -> None:
    from . import fluent

    ids = getattr(_local, "request_ids", None)
    lg = fluent.get_lineage()
    _writer().put((lg.db_path, lg.actor, model_id, type(model).__name__, _snapshot(X), _snapshot(out),
                   None if ids is None else list(ids)))


def _record_fit(original: Any, est: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    from . import fluent

    active = fluent.active_run()
    own = None
    if active is None:
        try:
            own = fluent.start_run(run_name=type(est).__name__)
        except LineageError as exc:
            _warn("a run for this fit", exc)
            return original(est, *args, **kwargs)
    run = active or own
    assert run is not None
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    try:
        result = original(est, *args, **kwargs)
    except Exception as exc:
        # what the failed fit was asked to do, and on which data: the params and
        # inputs, as MLflow's autolog keeps them (no model: there is none)
        missed = _record_attempt(run, est, X, y)
        if missed:
            _warn_missed(f"the failed fit of {type(est).__name__}", missed)
        if own is not None:
            own.__exit__(type(exc), exc, None)
        raise
    except BaseException as exc:  # (Ctrl-C: end the run, record nothing more)
        if own is not None:
            own.__exit__(type(exc), exc, None)
        raise
    try:
        missed = _record(run, est, X, y)
        if missed:
            _warn_missed(f"the fit of {type(est).__name__}", missed)
    finally:
        if own is not None:
            try:
                own.end("finished")
            except LineageError as exc:
                _warn("the end of its run", exc)
    return result


def _params(est: Any) -> dict[str, Any]:
    from .describe import plain

    try:
        with foreign("{type}: {reason}"):
            params = est.get_params(deep=True)
    except InvalidInputError as exc:  # a broken get_params is not worth failing the user's fit
        log.debug("autolog: %s.get_params failed: %s", type(est).__name__, exc)
        return {}
    return {str(k): plain(v) for k, v in params.items()}


def _log_new_params(run: Any, params: dict[str, Any]) -> None:
    """Params the run does not hold yet (a second fit in one run keeps the first's)."""
    from .tracking import secret_safe

    safe = secret_safe(params)
    existing = run.recorded_params(list(safe))
    new = {k: v for k, v in safe.items() if k not in existing}
    if new:
        run.log_params(new)


def _record_attempt(run: Any, est: Any, X: Any, y: Any) -> Missed:
    """The params of a fit and its data, as training inputs; what could not be written.

    One transaction when all goes well; when one part is refused (data that cannot be
    hashed), each part alone, so that one part's problem drops only that part."""
    params = _params(est)
    inputs = [(what, data) for what, data in (("X", X), ("y", y)) if data is not None] if _config["log_datasets"] else []
    try:
        with run.batch():
            _log_new_params(run, params)
            for _, data in inputs:
                run.log_input(data, role="training", name=None)
        return []
    except LineageError as exc:
        log.debug("autolog: params and data in one transaction failed (%s); each part alone", exc)
    missed: Missed = []
    try:
        _log_new_params(run, params)
    except LineageError as exc:
        missed.append(("the params", exc))
    for what, data in inputs:
        try:
            run.log_input(data, role="training", name=None)
        except LineageError as exc:
            missed.append((f"the training data {what}", exc))
    return missed


def _record(run: Any, est: Any, X: Any, y: Any) -> Missed:
    """Record a finished fit, each part (params and data, model, tags, metrics, the
    search) on its own: one part's problem drops that part only, as MLflow's autolog
    logs params, metrics and the model whatever became of the dataset. Returns what
    could not be recorded."""
    name = type(est).__name__
    missed = _record_attempt(run, est, X, y)
    is_search = name in _SEARCH and hasattr(est, "cv_results_")
    if _config["log_models"]:
        try:
            node = run.log_model(est, name, attrs={"artifact_path": "model"})
            _models[est] = node.id
            if is_search and getattr(est, "best_estimator_", None) is not None:
                best = run.log_model(est.best_estimator_, type(est.best_estimator_).__name__,
                                     attrs={"artifact_path": "best_estimator"})
                _models[est.best_estimator_] = best.id
        except LineageError as exc:
            missed.append(("the model", exc))
    try:
        # MLflow's tags for the fitted estimator: scripts and dashboards filter on them
        run.set_tags({"estimator_name": name, "estimator_class": f"{type(est).__module__}.{type(est).__qualname__}"})
    except LineageError as exc:
        missed.append(("the estimator tags", exc))
    if X is not None and y is not None and hasattr(est, "score"):
        try:
            with foreign("{type}: {reason}"):
                score: float | None = float(est.score(X, y))
        except InvalidInputError as exc:  # an estimator whose score needs more than X, y
            _warn("training_score", exc)
            score = None
        try:
            if score is not None:
                run.log_metric("training_score", score)
            metrics = _training_metrics(est, X, y)
            if metrics:
                run.log_metrics(metrics)
        except LineageError as exc:
            missed.append(("the training metrics", exc))
    if is_search:
        try:
            _record_search(run, est)
        except LineageError as exc:
            missed.append(("the search's results", exc))
    return missed


def _training_metrics(est: Any, X: Any, y: Any) -> dict[str, float]:
    """The ``training_*`` metrics MLflow's sklearn autolog logs, on the training data
    (in-sample: how the model fits, not how it generalises). A metric the estimator
    cannot give (no predict_proba, one class, a multi-output y) is left out, as MLflow
    leaves it out."""
    import math

    from sklearn import metrics as m
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}

    def put(key: str, compute: Any) -> None:
        try:
            with foreign("{type}: {reason}"):  # (a metric sklearn refuses for this data: not logged)
                value = float(compute())
        except InvalidInputError:
            return
        if math.isfinite(value):
            out[f"training_{key}"] = value

    try:
        with foreign("{type}: {reason}"):
            pred = est.predict(X)
    except InvalidInputError:
        return out
    if is_classifier(est):
        put("accuracy_score", lambda: m.accuracy_score(y, pred))
        put("precision_score", lambda: m.precision_score(y, pred, average="weighted", zero_division=0))
        put("recall_score", lambda: m.recall_score(y, pred, average="weighted", zero_division=0))
        put("f1_score", lambda: m.f1_score(y, pred, average="weighted", zero_division=0))
        if hasattr(est, "predict_proba"):
            try:
                with foreign("{type}: {reason}"):
                    proba = est.predict_proba(X)
            except InvalidInputError:
                return out
            put("log_loss", lambda: m.log_loss(y, proba, labels=getattr(est, "classes_", None)))
            put("roc_auc", lambda: m.roc_auc_score(y, proba[:, 1]) if proba.shape[1] == 2
                else m.roc_auc_score(y, proba, multi_class="ovr", average="weighted"))
    elif is_regressor(est):
        put("mean_squared_error", lambda: m.mean_squared_error(y, pred))
        put("root_mean_squared_error", lambda: math.sqrt(m.mean_squared_error(y, pred)))
        put("mean_absolute_error", lambda: m.mean_absolute_error(y, pred))
        put("r2_score", lambda: m.r2_score(y, pred))
    return out


def _record_search(run: Any, est: Any) -> None:
    from . import fluent
    from .entities import ActiveRun

    lg = getattr(run, "lineage", None) or fluent.get_lineage()  # the facade the searching run was opened through
    best = {f"best_{k}": v for k, v in (getattr(est, "best_params_", None) or {}).items()}
    _log_new_params(run, best)
    if getattr(est, "best_score_", None) is not None:
        run.log_metric("best_cv_score", float(est.best_score_))
    results = est.cv_results_
    n = int(_config["max_tuning_runs"] or 0)
    if n <= 0 or "params" not in results:
        return
    ranks = list(results.get("rank_test_score", range(1, len(results["params"]) + 1)))
    order = sorted(range(len(results["params"])), key=lambda i: (ranks[i], i))[:n]
    metric_keys = [k for k in results if k.startswith(("mean_", "std_", "rank_"))]  # (fit and score times too, as MLflow)
    for i in order:
        child = lg.open_run(ActiveRun, f"{run.name}-candidate-{i}", params=results["params"][i],
                            experiment=run.experiment, parent=run.id)
        child.lineage = lg  # its MLflow view reads through the facade
        with child, lg.batch():  # one transaction: a metric refused below changes nothing, the rest go on
            for k in metric_keys:
                try:
                    child.log_metric(k, float(results[k][i]))
                except (TypeError, ValueError, LineageError):
                    continue


__all__ = ["autolog", "flush", "request_ids"]
