"""The `Lineage` facade: one object whose methods are the whole API.

It owns a Store and delegates: writes to `tracking`, traversals and analyses to
`query`, diagrams to `render`, reports to `audit`. The heavy layers (networkx,
scikit-learn, graphviz, jinja2, matplotlib) are imported inside the methods that need
them, so ``import lineage`` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import tracking
from .model import Node, make_id
from .store import Store, VerifyReport, locate

if TYPE_CHECKING:  # pragma: no cover
    from .predfiles import PredictResult
    from .predlog import PredictionLogger
    from .query import Subgraph
    from .supervise import CommandResult


class Items(list):  # type: ignore[type-arg]
    """A list result (`runs`, `which_data`, `blame`, `nodes`, `history`) that is still a
    plain list, plus ``.to_dict()`` -> ``{"items": [...]}``, the JSON shape the CLI prints."""

    def to_dict(self) -> dict[str, Any]:
        return {"items": [x.to_dict() if hasattr(x, "to_dict") else x for x in self]}


def _agent_id() -> str:
    from .capture import capture_agent

    return make_id("agent", capture_agent()[0])


class Lineage:
    """A lineage store opened for use. Get one with `lineage.open()`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._reaped = False

    # -- housekeeping -------------------------------------------------------

    @property
    def db_path(self) -> Path:
        """The database file."""
        return self.store.path

    def close(self) -> None:
        for logger in list(getattr(self, "_loggers", ())):
            logger.close()  # their queued predictions go to the store before it closes
        self.store.close()

    def __enter__(self) -> Lineage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Lineage {self.db_path}>"

    def reap(self) -> list[str]:
        """Record as `crashed` every `running` run whose process has died; returns their ids."""
        self._reaped = True
        return self.store.reap_dead_runs()

    @contextmanager
    def batch(self) -> Iterator[Lineage]:
        """Group many writes into one transaction (one commit); a failure rolls back all."""
        with self.store.transaction():
            yield self

    # -- tracking -------------------------------------------------------------

    def log_dataset(self, data: Any = None, *, name: str | None = None, uri: str | None = None,
                    digest: str | None = None, progress: Any = None) -> Node:
        """Record a dataset version: a path (file or directory), an array, a DataFrame,
        or remote data by ``uri`` with the caller's ``digest``. Returns its node."""
        return tracking.log_dataset(self.store, data, name=name, uri=uri, digest=digest, progress=progress)

    def start_run(self, name: str | None = None, *, params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None, experiment: str | None = None,
                  description: str | None = None, parent: str | None = None,
                  command: Sequence[str] | None = None, run_id: str | None = None) -> tracking.Run:
        """Start (or, with ``run_id``, resume) a run; use it as a context manager."""
        if run_id is not None:
            return tracking.Run.resume(self.store, run_id)
        return tracking.Run.start(self.store, name, params=params, tags=tags, experiment=experiment,
                                  description=description, parent=parent, command=command)

    def log_predictions(self, model: Any, inputs: Any, outputs: Any, *, request_ids: Sequence[Any] | None = None,
                        scores: Any = None) -> list[str]:
        """Record predictions in bulk (one ledger event); returns their ``prediction:`` ids."""
        return tracking.log_predictions(self.store, model, inputs, outputs, request_ids=request_ids, scores=scores)

    def annotate(self, ref: Any, field: str, text: str, *, author: str | None = None) -> int:
        """Record a person's statement (``intended_use``, ``limitations``, ``sign_off``, …)
        about a node; returns its ledger event number."""
        return tracking.annotate(self.store, ref, field, text, author=author)

    def annotate_card(self, ref: Any, card: Mapping[str, Any] | str | os.PathLike[str], *, author: str | None = None) -> list[int]:
        """Record every field of a model card (a mapping or a YAML file) in one transaction."""
        if not isinstance(card, Mapping):
            card = _load_card(card)
        with self.store.transaction():
            node = self.get(ref)
            unknown = [k for k in card if k not in tracking.ANNOTATION_FIELDS]
            if unknown:
                from .errors import InvalidInputError

                raise InvalidInputError(f"unknown card key(s) {', '.join(map(str, unknown))}; "
                                        f"expected some of {', '.join(tracking.ANNOTATION_FIELDS)}")
            return [self.annotate(node, k, _card_text(v), author=author) for k, v in card.items() if v is not None]

    def redact(self, ref: Any, *, reason: str) -> int:
        """Erase the personal content of one node (GDPR erasure) without breaking the
        chain; returns the `redact` event's number. See `Store.redact`."""
        return self.store.redact(self.get(ref).id, reason=reason)

    def annotations(self, ref: Any) -> dict[str, dict[str, Any]]:
        """The latest annotation of each field on a node."""
        return self.store.annotations(self.get(ref).id)

    # -- commands, model files and served predictions (supervise, modelfile, predfiles, predlog)

    def run_command(self, argv: Sequence[str], *, inputs: Sequence[str] = (), outputs: Sequence[str] = (),
                    models: Sequence[str] = (), params: Mapping[str, Any] | None = None,
                    tags: Mapping[str, Any] | None = None, name: str | None = None, experiment: str | None = None,
                    predictions: str | None = None, id_column: str | None = None, output_column: str | None = None,
                    of: Any = None, detect: bool = True, load: bool = True) -> CommandResult:
        """Run any program as a recorded run, as ``lineage run`` does; returns a
        `CommandResult` (``.run``, ``.exit_code``, ``.status``, ``.error``).

        See `lineage.supervise.run_command` for every option. Raises InvalidInputError
        before recording anything for a missing input or inconsistent options.
        """
        from .supervise import run_command

        return run_command(self.store, argv, inputs=inputs, outputs=outputs, models=models, params=params, tags=tags,
                           name=name, experiment=experiment, predictions=predictions, id_column=id_column,
                           output_column=output_column, of=of, detect=detect, load=load)

    def log_model_file(self, path: str | os.PathLike[str], *, name: str | None = None, load: bool = True) -> Node:
        """Record a model file made elsewhere (a pickle or joblib file); returns its node,
        content-addressed by the file's bytes. ``load=False`` does not unpickle it
        (unpickling runs code from the file): the class is then read from the pickle's
        opcodes and parameters, features and importance are not recorded."""
        from .modelfile import record_model_file

        return record_model_file(self.store, path, name=name, load=load)

    def predict(self, model: Any, input: str | os.PathLike[str], output: str | os.PathLike[str], *,
                id_column: str | None = None, command: Sequence[str] | None = None) -> PredictResult:
        """Run a recorded scikit-learn model on a CSV file, write its predictions to
        ``output`` and record each one (request id from ``id_column``); returns a
        `PredictResult`. The features are the model's ``feature_names_in_`` when it has
        them, else every column but the id column, in file order."""
        from .predfiles import predict_file

        return predict_file(self.store, self.get(model), input, output, id_column=id_column, command=command)

    def prediction_logger(self, model: Any, *, max_batch: int = 1000, max_delay: float = 0.5,
                          max_queue: int = 100_000, on_full: str = "block") -> PredictionLogger:
        """A logger for a live service: ``.log(X, y, request_ids=)`` queues rows in
        microseconds and a background thread writes them as bulk events; ``.flush()``,
        ``.close()`` (also at exit and on ``lg.close()``). ``on_full="drop"`` counts and
        records rows refused by a full queue instead of waiting for room."""
        from .predlog import PredictionLogger

        logger = PredictionLogger(self.store, self.get(model) if isinstance(model, str) else model,
                                  max_batch=max_batch, max_delay=max_delay, max_queue=max_queue, on_full=on_full)
        if not hasattr(self, "_loggers"):
            import weakref

            self._loggers: weakref.WeakSet[PredictionLogger] = weakref.WeakSet()
        self._loggers.add(logger)
        return logger

    def describe(self, ref: Any) -> Node:
        """The node ``ref`` names, with the facts derived from other records added to
        its attrs: for a model, ``predictions`` = ``{count, first, last}``."""
        node = self.get(ref)
        if node.kind != "model":
            return node
        summary = self.store.prediction_summary(node.id)
        attrs = {**node.attrs, "predictions": {"count": summary["count"], "first": summary["first_at"],
                                               "last": summary["last_at"]}}
        return Node(node.id, node.kind, node.name, attrs, node.created_at)

    # -- reads ----------------------------------------------------------------

    def get(self, ref: Any) -> Node:
        """The node a reference names: an id, a unique prefix, a name, ``kind:name``,
        ``name@N`` or ``request:ID``. Raises NodeNotFoundError / AmbiguousIdError."""
        if isinstance(ref, Node):
            return ref
        if isinstance(ref, tracking.Run):
            ref = ref.id
        return self.store.resolve(str(ref))

    def nodes(self, kind: str | None = None, name: str | None = None, *, limit: int | None = None) -> list[Node]:
        """Recorded nodes, newest first."""
        return Items(self.store.nodes(kind=kind, name=name, limit=limit))

    def history(self, name: str, *, kind: str | None = None) -> list[Node]:
        """Every version recorded under a name, oldest first."""
        return Items(self.store.history(name, kind=kind))

    def verify(self, *, head: str | None = None, record: bool = False, since_checkpoint: bool = False,
               progress: Any = None) -> VerifyReport:
        """Replay the ledger and every recorded table; see `Store.verify`."""
        return self.store.verify(head=head, record=record, since_checkpoint=since_checkpoint, progress=progress)

    # -- questions (query layer) -----------------------------------------------

    def trace(self, ref: Any, *, depth: int | None = None, kinds: Sequence[str] | None = None) -> Subgraph:
        """Everything upstream of a node, itself included."""
        from . import query

        return query.trace(self.store, self.get(ref).id, depth=depth, kinds=kinds)

    def impact(self, ref: Any, *, include_predictions: bool = False, depth: int | None = None) -> Subgraph:
        """Everything downstream of a node; predictions counted, listed only when asked."""
        from . import query

        return query.impact(self.store, self.get(ref).id, include_predictions=include_predictions, depth=depth)

    def which_data(self, model: Any) -> list[Any]:
        """The datasets behind a model, each with its role and distance; root sources first."""
        from . import query

        return Items(query.which_data(self.store, self.get(model).id))

    def path(self, a: Any, b: Any) -> list[Node]:
        """A shortest provenance path from ``a`` back to ``b`` (empty when none)."""
        from . import query

        return query.path(self.store, self.get(a).id, self.get(b).id)

    def common_ancestors(self, refs: Sequence[Any]) -> list[Node]:
        """Nodes upstream of every one of ``refs``."""
        from . import query

        return query.common_ancestors(self.store, [self.get(r).id for r in refs])

    def diff(self, a: Any, b: Any) -> Any:
        """How two models (or runs) differ: data, code, params, environment, metrics."""
        from . import query

        return query.diff(self.store, self.get(a).id, self.get(b).id)

    def blame(self, bad: Sequence[Any], good: Sequence[Any] = ()) -> list[Any]:
        """Upstream nodes ranked by how much more often they stand behind the bad predictions."""
        from . import query

        bad, good = _as_refs(bad), _as_refs(good)
        return Items(query.blame(self.store, [self.get(r).id for r in bad], [self.get(r).id for r in good]))

    def runs(self, where: str | None = None, order_by: str | None = None, limit: int | None = None) -> list[Node]:
        """Runs matching a filter (``params.C > 0.5 and status = 'finished'``)."""
        from . import query

        return Items(query.runs(self.store, where=where, order_by=order_by, limit=limit))

    def insights(self, metric: str) -> Any:
        """Which parameters matter most for ``metric`` across the runs that logged it."""
        from . import query

        return query.insights(self.store, metric)

    def status(self) -> Any:
        """Datasets whose files changed on disk, and the models and predictions they affect."""
        from . import query

        return query.status(self.store)

    # -- views and reports -----------------------------------------------------

    def render(self, subgraph: Subgraph, path: str | os.PathLike[str], **options: Any) -> Path:
        """Draw a subgraph to a file; the format comes from the suffix
        (.svg .png .pdf .dot .mmd .html)."""
        from . import render

        return render.render(subgraph, path, **options)

    def audit(self, ref: Any, *, standard: str = "annex-iv") -> Any:
        """The audit report of a model or prediction; ``.write("audit.html")``."""
        from . import audit

        return audit.build_report(self.store, self.get(ref).id, standard=standard)

    def inventory(self, *, all_versions: bool = False) -> Any:
        """Every model with its owner, data, status and report completeness (SR 11-7):
        the newest version of each name, or every version with ``all_versions``."""
        from . import audit

        return audit.build_inventory(self.store, all_versions=all_versions)


def _as_refs(refs: Any) -> Sequence[Any]:
    """One reference (a string, a Node, a Run) or many; a lone string is not a list of letters."""
    if isinstance(refs, (str, Node, tracking.Run)):
        return [refs]
    return list(refs or ())


def _load_card(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    import yaml

    from .errors import InvalidInputError

    try:
        with Path(path).open(encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise InvalidInputError(f"cannot read card {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"card {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"card {path} must be a mapping of field keys to text")
    return data


def _card_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    import yaml

    return yaml.safe_dump(value, sort_keys=False).strip()


def open(path: str | os.PathLike[str] | None = None, *, create: bool = True) -> Lineage:
    """Open the lineage store at ``path`` (default: ``LINEAGE_DB``, else the nearest
    ``.lineage/lineage.db`` up from the working directory, else a new one at the git
    root or here). Runs whose process died are recorded as `crashed` on the way in.

    Raises NoStoreError when ``create`` is false and there is no store.
    """
    store = Store(locate(path, create=create), create=create, actor=_agent_id)
    lg = Lineage(store)
    lg.reap()
    return lg
