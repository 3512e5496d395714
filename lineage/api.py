"""The `Lineage` facade: one object whose methods are the whole API.

It owns a Store and delegates: writes to `tracking`, traversals and analyses to
`query`, diagrams to `render`, reports to `audit`. The heavy layers (networkx,
scikit-learn, graphviz, jinja2, matplotlib) are imported inside the methods that need
them, so ``import lineage`` stays fast.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import hashing, tracking
from .model import Node, make_id
from .store import DB_NAME, STORE_DIR, Store, VerifyReport, locate

if TYPE_CHECKING:  # pragma: no cover
    from .interop.bulk import ImportResult
    from .interop.export import ExportResult
    from .predfiles import PredictResult
    from .predlog import PredictionLogger
    from .query import Subgraph
    from .query.search import SearchResults
    from .store.publish import PushResult
    from .supervise import CommandResult


class Items(list[Any]):
    """A list result (`runs`, `which_data`, `blame`, `nodes`, `history`) that is still a
    plain list, plus ``.to_dict()`` -> ``{"items": [...]}``, the JSON shape the CLI prints."""

    def to_dict(self) -> dict[str, Any]:
        return {"items": [x.to_dict() if hasattr(x, "to_dict") else x for x in self]}

    def _repr_html_(self) -> str | None:
        """In a notebook, the table ``lineage`` prints for such a list (a list of nodes
        showed as a long repr of dataclasses); None, the plain repr, for other lists."""
        from .query.results import DataUse
        from .render import tables
        from .render.views import as_html

        if self and all(isinstance(x, DataUse) for x in self):
            return as_html(tables.data_uses_table(self))
        if self and all(isinstance(x, Node) for x in self):
            runs = all(x.kind == "run" and "status" in x.attrs for x in self)
            return as_html(tables.runs_table(self) if runs else tables.nodes_table(self))
        return None


def _kind_and_name(name: Any) -> tuple[str | None, Any]:
    """``dataset:train`` -> ``("dataset", "train")``; a name without a kind's prefix ->
    ``(None, name)``: how `history` reads a name used by two kinds."""
    from .model import KINDS

    prefix, sep, rest = name.partition(":") if isinstance(name, str) else ("", "", "")
    return (prefix, rest) if sep and prefix in KINDS and rest else (None, name)


def _agent_id() -> str:
    from .capture import capture_agent

    return make_id("agent", capture_agent()[0])


_R = TypeVar("_R", bound=tracking.Run)  # `Lineage.open_run` hands back the class it was given


class Lineage:
    """A lineage store opened for use. Get one with `lineage.open()`."""

    def __init__(self, store: Store) -> None:
        if not isinstance(store, Store):  # (a path here failed later, as "'str' object has no attribute 'resolve'")
            raise TypeError(f"Lineage() takes an open Store, not {type(store).__name__}; "
                            f"open a store by its path with lineage.open({str(store)!r})")
        self.store = store

    # -- housekeeping -------------------------------------------------------

    @property
    def db_path(self) -> Path:
        """The database file.

        Returns
        -------
        Path
            The SQLite file (artifacts live beside it, in ``artifacts/``).

        Examples
        --------
        >>> lg.db_path.name
        'lineage.db'
        """
        return self.store.path

    def close(self, *, discard_if_new: bool = False) -> None:
        """Close the store: flush every prediction logger of this object, then close
        the connections. Using the object afterwards fails; ``with lineage.open() as lg:``
        closes it for you.

        Parameters
        ----------
        discard_if_new : bool, default False
            Also remove the store when this object created it and nothing was written
            to it: what `lineage import` does when the import fails, so bad input
            leaves no empty store behind.

        Returns
        -------
        None

        Examples
        --------
        >>> other = lineage.open(lg.db_path)
        >>> other.close()
        """
        for logger in list(getattr(self, "_loggers", ())):
            logger.close()  # their queued predictions go to the store before it closes
        if discard_if_new:
            self.store.discard_if_new()
        else:
            self.store.close()

    def __enter__(self) -> Lineage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Lineage {self.db_path}>"

    def reap(self) -> list[str]:
        """Record as `crashed` every `running` run whose process has died (its OS lock is
        free); `lineage.open` does this on the way in.

        Returns
        -------
        list of str
            The ids of the runs it recorded as crashed (usually none).

        Examples
        --------
        >>> lg.reap()
        []
        """
        return self.store.reap_dead_runs()

    @contextmanager
    def batch(self) -> Iterator[Lineage]:
        """Group many writes into one transaction (one commit); a failure rolls back all.

        A call refused inside (invalid input, a param logged again with another
        value) changes nothing: catch its error and the batch goes on. A call that
        fails after it began writing (a full disk, an interrupt) cannot be undone
        alone: if its error is caught, every later write in the block is refused and
        leaving the block raises WriteRefusedError; nothing of the block is recorded
        either way. (On PostgreSQL, so does a call whose statement failed: the server
        aborts the whole transaction.)

        Returns
        -------
        contextmanager of Lineage
            This object, for the ``with`` block.

        Raises
        ------
        LineageError
            Whatever a write inside raises; nothing of the block is recorded then.

        Examples
        --------
        >>> _ = Path("data/a.csv").write_text("x\\n1\\n")
        >>> _ = Path("data/b.csv").write_text("x\\n2\\n")
        >>> with lg.batch():
        ...     a = lg.log_dataset("data/a.csv", name="a")
        ...     b = lg.log_dataset("data/b.csv", name="b")
        >>> [n.name for n in lg.nodes(kind="dataset", limit=2)]
        ['b', 'a']
        """
        with self.store.transaction():
            yield self

    # -- tracking -------------------------------------------------------------

    def log_dataset(self, data: Any = None, *, name: str | None = None, uri: str | None = None,
                    digest: str | None = None, progress: Any = None) -> Node:
        """Record a dataset version: a path (file or directory), an array, a DataFrame,
        or remote data by ``uri`` with the caller's ``digest``.

        The same bytes give the same node; changed bytes under a name already recorded
        add a new version (``was_revision_of`` the previous one).

        Parameters
        ----------
        data : str, PathLike, ndarray or DataFrame, optional
            What to record; omit it for remote data given by ``uri``.
        name : str, optional
            The dataset's name (default: the file's path in the project).
        uri : str, optional
            Where remote data lives (``s3://…``); needs ``digest``.
        digest : str, optional
            The remote data's checksum, as its store reports it.
        progress : callable, optional
            Called with bytes read so far while a large file is hashed.

        Returns
        -------
        Node
            The ``dataset`` node.

        Raises
        ------
        InvalidInputError
            For a missing path, a special file, or a ``uri`` without a ``digest``.

        Examples
        --------
        >>> node = lg.log_dataset("data/raw.csv", name="raw")  # already recorded: same node
        >>> node.kind, node.name, node.attrs["rows"]
        ('dataset', 'raw', 40)
        >>> node.id == lg.get("raw").id
        True
        """
        return tracking.log_dataset(self.store, data, name=name, uri=uri, digest=digest, progress=progress)

    def start_run(self, name: str | None = None, *, params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None, experiment: str | None = None,
                  description: str | None = None, parent: Any = None,
                  command: Sequence[str] | None = None, run_id: str | None = None) -> tracking.Run:
        """Start (or, with ``run_id``, resume) a run; use it as a context manager.

        Parameters
        ----------
        name : str, optional
            The run's name.
        params : mapping, optional
            Parameters, recorded at the start.
        tags : mapping, optional
            Free tags, as in MLflow.
        experiment : str, optional
            The experiment it belongs to (``default`` unless set).
        description : str, optional
            A sentence about the run.
        parent : Run, Node or str, optional
            The run this one is nested in (any reference `get` accepts).
        command : sequence of str, optional
            The command line it ran (default: this process's).
        run_id : str, optional
            Resume this run instead of starting one.

        Returns
        -------
        Run
            The open run; leaving the ``with`` block ends it (``failed`` on an exception).

        Raises
        ------
        NodeNotFoundError
            When ``run_id`` or ``parent`` names no run.
        InvalidInputError
            When ``parent`` names something other than a run.

        Examples
        --------
        >>> with lg.start_run("fit", params={"C": 2.0}, experiment="demo") as run:
        ...     _ = run.log_input("train")
        ...     run.log_metric("accuracy", 0.7)
        >>> lg.get(run.id).attrs["status"], lg.get(run.id).attrs["metrics"]
        ('finished', {'accuracy': 0.7})
        """
        opened = tracking.OPENED_RUNS
        if run_id is not None:
            run = tracking.Run.resume(self.store, run_id, owner=opened)
        else:
            run = tracking.Run.start(self.store, name, params=params, tags=tags, experiment=experiment,
                                     description=description, parent=parent, command=command, owner=opened)
        opened.runs.append(run)
        return run

    def log_predictions(self, model: Any, inputs: Any, outputs: Any, *, request_ids: Sequence[Any] | None = None,
                        scores: Any = None, keep_inputs: bool = False, decision: Mapping[str, Any] | None = None) -> list[str]:
        """Record predictions in bulk (one ledger event).

        Parameters
        ----------
        model : Node or str
            The model that made them.
        inputs : array-like, DataFrame, list or scipy.sparse matrix
            One row per prediction (stored as a digest unless ``keep_inputs``; a
            sparse row's digest is its dense row's up to 4096 columns).
        outputs : sequence
            What the model answered, one per row.
        request_ids : sequence, optional
            The caller's ids, searchable as ``request:ID``.
        scores : sequence, optional
            A score per prediction.
        keep_inputs : bool, default False
            Keep each row's values (for decision records, see `explain`).
        decision : mapping, optional
            The rule applied to the model's output (see `tracking.log_predictions`).

        Returns
        -------
        list of str
            The ``prediction:`` ids, in row order.

        Raises
        ------
        InvalidInputError
            When the lengths disagree or ``model`` is not a model; nothing is recorded.

        Examples
        --------
        >>> ids = lg.log_predictions("clf", [[0.1, 0.2]], [1], request_ids=["req-9"])
        >>> lg.get("request:req-9").attrs["output"]
        1
        >>> ids[0] == lg.get("request:req-9").id
        True
        """
        return tracking.log_predictions(self.store, model, inputs, outputs, request_ids=request_ids, scores=scores,
                                        keep_inputs=keep_inputs, decision=decision)

    def annotate(self, ref: Any, field: str, text: str, *, author: str | None = None) -> int:
        """Record a person's statement about a node (``intended_use``, ``limitations``,
        ``sign_off``, …): a ledger event with who and when.

        Parameters
        ----------
        ref : Node or str
            The node it is about.
        field : str
            One of `tracking.ANNOTATION_FIELDS`.
        text : str
            The statement.
        author : str, optional
            Who says so (default: the recording identity).

        Returns
        -------
        int
            Its ledger event number.

        Raises
        ------
        InvalidInputError
            For an unknown field or an empty text.

        Examples
        --------
        >>> event = lg.annotate("clf", "intended_use", "ranking demo data", author="ann")
        >>> lg.annotations("clf")["intended_use"]["text"]
        'ranking demo data'
        """
        return tracking.annotate(self.store, ref, field, text, author=author)

    def annotate_card(self, ref: Any, card: Mapping[str, Any] | str | os.PathLike[str], *, author: str | None = None) -> list[int]:
        """Record every field of a model card (a mapping or a YAML file) in one transaction.

        Parameters
        ----------
        ref : Node or str
            The model (or any node) the card describes.
        card : mapping, str or PathLike
            ``{field: text}``, or the path of a YAML file holding one.
        author : str, optional
            Who wrote it.

        Returns
        -------
        list of int
            The ledger event of each field recorded.

        Raises
        ------
        InvalidInputError
            For an unknown key or an unreadable card; nothing is recorded then.

        Examples
        --------
        >>> events = lg.annotate_card("clf", {"intended_use": "demo", "limitations": "40 rows"})
        >>> len(events), lg.annotations("clf")["limitations"]["text"]
        (2, '40 rows')
        """
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
        chain; for an agent, also the person's name, email and login wherever else the
        store recorded them. See `Store.redact`.

        Parameters
        ----------
        ref : Node or str
            The node to erase.
        reason : str
            Why (kept in the ``redact`` event).

        Returns
        -------
        int
            The ``redact`` event's number.

        Raises
        ------
        NodeNotFoundError
            When ``ref`` names nothing.

        Examples
        --------
        >>> event = lg.redact("request:req-1", reason="erasure request 7")
        >>> lg.verify().ok  # the chain still verifies
        True
        """
        node = self.get(ref)
        tracking.ensure_actor(self.store)  # who erased it, as a node the report can name
        return self.store.redact(node.id, reason=reason)

    def annotations(self, ref: Any) -> dict[str, dict[str, Any]]:
        """The latest annotation of each field on a node.

        Parameters
        ----------
        ref : Node or str
            The node.

        Returns
        -------
        dict
            ``{field: {text, author, at, event, recorded_by, recorded_by_agent}}``
            (``author`` as typed, ``recorded_by`` the identity that recorded it).

        Raises
        ------
        NodeNotFoundError
            When ``ref`` names nothing.

        Examples
        --------
        >>> _ = lg.annotate("clf", "limitations", "trained on 30 rows", author="ann")
        >>> note = lg.annotations("clf")["limitations"]
        >>> note["text"], note["author"]
        ('trained on 30 rows', 'ann')
        """
        return tracking.read_annotations(self.store, self.get(ref).id)

    def set_model_tags(self, ref: Any, tags: Mapping[str, Any]) -> int | None:
        """Tag a model version (MLflow 3's ``set_logged_model_tags``): the latest value
        of a key wins, every change stays in the ledger.

        Parameters
        ----------
        ref : Node or str
            The model version.
        tags : mapping
            ``{key: value}``; values are kept as text, masked under secret-looking keys
            as a run's tags are.

        Returns
        -------
        int or None
            The ledger event number (None for no tags).

        Raises
        ------
        NodeNotFoundError
            When ``ref`` names nothing.
        InvalidInputError
            When it names something other than a model.

        Examples
        --------
        >>> _ = lg.set_model_tags("clf", {"validation": "passed"})
        >>> lg.model_tags("clf")
        {'validation': 'passed'}
        """
        return tracking.set_model_tags(self.store, self.get(ref), tags)

    def model_tags(self, ref: Any) -> dict[str, str]:
        """The tags of a model version (or of a run) as they stand now.

        Parameters
        ----------
        ref : Node or str
            The model version.

        Returns
        -------
        dict
            ``{key: value}``, the latest value of each key.

        Raises
        ------
        NodeNotFoundError
            When ``ref`` names nothing.

        Examples
        --------
        >>> _ = lg.set_model_tags("clf@1", {"stage": "candidate"})
        >>> _ = lg.set_model_tags("clf@1", {"stage": "retired"})
        >>> lg.model_tags("clf@1")
        {'stage': 'retired'}
        """
        from .query.rows import tags_of

        return tags_of(self.store, self.get(ref).id)

    # -- commands, model files and served predictions (supervise, modelfile, predfiles, predlog)

    def run_command(self, argv: Sequence[str], *, inputs: Sequence[str] = (), outputs: Sequence[str] = (),
                    models: Sequence[str] = (), params: Mapping[str, Any] | None = None,
                    tags: Mapping[str, Any] | None = None, name: str | None = None, experiment: str | None = None,
                    predictions: str | None = None, id_column: str | None = None, output_column: str | None = None,
                    of: Any = None, detect: bool = True, load: bool = True,
                    keep_inputs: bool = False) -> CommandResult:
        """Run any program as a recorded run, as ``lineage run`` does.

        See `lineage.supervise.run_command` for every option.

        Parameters
        ----------
        argv : sequence of str
            The command and its arguments.
        inputs, outputs : sequence of str
            Files it reads and writes (recorded as datasets, before and after).
        models : sequence of str
            Model files it writes.
        params, tags : mapping, optional
            Recorded on the run.
        name, experiment : str, optional
            The run's name and experiment.
        predictions : str, optional
            A CSV file of predictions it writes, recorded row by row.
        id_column, output_column : str, optional
            The request id and output columns of ``predictions``.
        of : Node or str, optional
            The model ``predictions`` come from.
        detect : bool, default True
            Record files the program opened that were not declared.
        load : bool, default True
            Unpickle model files to describe them.
        keep_inputs : bool, default False
            Keep each prediction's feature values, found by its request id in the
            CSV inputs, so that `explain` can say why it was made.

        Returns
        -------
        CommandResult
            ``.run``, ``.exit_code``, ``.status``, ``.error``.

        Raises
        ------
        InvalidInputError
            Before recording anything, for a missing input or inconsistent options.

        Examples
        --------
        >>> import sys
        >>> result = lg.run_command([sys.executable, "-c", "pass"], inputs=["data/raw.csv"], name="noop")
        >>> result.status, result.exit_code, result.run.name
        ('finished', 0, 'noop')
        """
        from .supervise import run_command

        return run_command(self.store, argv, inputs=inputs, outputs=outputs, models=models, params=params, tags=tags,
                           name=name, experiment=experiment, predictions=predictions, id_column=id_column,
                           output_column=output_column, of=of, detect=detect, load=load, keep_inputs=keep_inputs)

    def digest(self, path: str | os.PathLike[str], *, progress: Any = None) -> str:
        """The SHA-256 that names a file or folder as a dataset (``dataset:<digest>``),
        remembered in the store's stat cache, so recording it next costs a ``stat``.

        `lineage add` hashes every path first, outside any write transaction, then
        records them all in one.

        Parameters
        ----------
        path : str or PathLike
            A file or a directory.
        progress : callable, optional
            ``progress(done_bytes, total_bytes)``, called while hashing.

        Returns
        -------
        str
            64 hex digits.

        Raises
        ------
        InvalidInputError
            When the path is missing or cannot be read.

        Examples
        --------
        >>> lg.digest("data/raw.csv") == lg.log_dataset("data/raw.csv").id.split(":")[1]
        True
        """
        if os.path.isdir(path):
            return hashing.hash_tree(path, cache=self.store.stat_cache, progress=progress)[0]
        return hashing.hash_file(path, cache=self.store.stat_cache, progress=progress).digest

    def log_model_file(self, path: str | os.PathLike[str], *, name: str | None = None, load: bool = True) -> Node:
        """Record a model file made elsewhere (a pickle or joblib file), content-addressed
        by the file's bytes.

        Parameters
        ----------
        path : str or PathLike
            The file.
        name : str, optional
            The model's name (default: the file's stem).
        load : bool, default True
            Unpickle it to describe it. Unpickling runs code from the file: with False the
            class is read from the pickle's opcodes, and parameters, features and importance
            are not recorded.

        Returns
        -------
        Node
            The ``model`` node.

        Raises
        ------
        InvalidInputError
            For a missing or unreadable file.

        Examples
        --------
        >>> import pickle
        >>> _ = Path("weights.pkl").write_bytes(pickle.dumps({"w": 1}))
        >>> node = lg.log_model_file("weights.pkl", name="weights", load=False)
        >>> node.kind, node.name
        ('model', 'weights')
        """
        from .modelfile import record_model_file

        return record_model_file(self.store, path, name=name, load=load)

    def predict(self, model: Any, input: str | os.PathLike[str], output: str | os.PathLike[str], *,
                id_column: str | None = None, command: Sequence[str] | None = None,
                keep_inputs: bool = False) -> PredictResult:
        """Run a recorded scikit-learn model on a CSV file, write its predictions to
        ``output`` and record each one.

        The features are the model's ``feature_names_in_`` when it has them, else every
        column but the id column, in file order.

        Parameters
        ----------
        model : Node or str
            The recorded model.
        input : str or PathLike
            A CSV file of rows to predict.
        output : str or PathLike
            Where the predictions are written (CSV).
        id_column : str, optional
            The column holding each row's request id.
        command : sequence of str, optional
            The command line to record on the run.
        keep_inputs : bool, default False
            Also keep each row's feature values, so that `explain` can say why each
            prediction was made (personal data, erasable with `redact`).

        Returns
        -------
        PredictResult
            ``.run``, ``.ids``, ``.output``, ``.features``.

        Raises
        ------
        InvalidInputError
            For a missing file or column, or a model that cannot be loaded.

        Examples
        --------
        >>> _ = Path("new.csv").write_text("id,a,b\\nr1,0.5,0.1\\nr2,-1.0,0.3\\n")
        >>> result = lg.predict("clf", "new.csv", "out.csv", id_column="id")
        >>> len(result.ids), result.features
        (2, ['a', 'b'])
        >>> lg.get("request:r1").kind
        'prediction'
        """
        from .predfiles import predict_file

        return predict_file(self.store, self._model(model), input, output, id_column=id_column, command=command,
                            keep_inputs=keep_inputs)

    def prediction_logger(self, model: Any, *, max_batch: int = 1000, max_delay: float = 0.5,
                          max_queue: int = 100_000, on_full: str = "block", keep_inputs: bool = False,
                          decision: Mapping[str, Any] | None = None) -> PredictionLogger:
        """A logger for a live service: ``.log(X, y, request_ids=)`` queues rows in
        microseconds and a background thread writes them as bulk events.

        ``.flush()`` waits for the queue, ``.close()`` (also at exit and on
        ``lg.close()``) flushes and stops the thread.

        Parameters
        ----------
        model : Node or str
            The model whose predictions it logs.
        max_batch : int, default 1000
            Rows per bulk event at most.
        max_delay : float, default 0.5
            Seconds a row waits at most before it is written.
        max_queue : int, default 100_000
            Rows queued at most.
        on_full : {"block", "drop"}
            Wait for room, or count and record the rows refused by a full queue.
        keep_inputs : bool, default False
            Also keep each row's input values, as `log_predictions` does, so every
            decision can be explained (`lineage explain`); erased with the prediction.
        decision : mapping, optional
            The rule the service applies to the score (``{"threshold": 0.5}``),
            recorded with every batch.

        Returns
        -------
        PredictionLogger

        Raises
        ------
        InvalidInputError
            For a bad option or a reference that is not a model.

        Examples
        --------
        >>> log = lg.prediction_logger("clf")
        >>> log.log([[0.1, 0.2]], [1], request_ids=["live-1"])
        >>> log.close()
        >>> lg.get("request:live-1").attrs["output"]
        1
        """
        from .predlog import PredictionLogger

        logger = PredictionLogger(self.store, self._model(model) if isinstance(model, str) else model,
                                  max_batch=max_batch, max_delay=max_delay, max_queue=max_queue, on_full=on_full,
                                  keep_inputs=keep_inputs, decision=decision)
        if not hasattr(self, "_loggers"):
            import weakref

            self._loggers: weakref.WeakSet[PredictionLogger] = weakref.WeakSet()
        self._loggers.add(logger)
        return logger

    def describe(self, ref: Any) -> Node:
        """The node ``ref`` names, with the facts derived from other records added to
        its attrs: for a model, ``predictions`` = ``{count, first, last}``.

        Parameters
        ----------
        ref : Node or str
            Any reference.

        Returns
        -------
        Node

        Raises
        ------
        NodeNotFoundError, AmbiguousIdError
            As `get`.

        Examples
        --------
        >>> lg.describe("clf").attrs["predictions"]["count"]
        3
        """
        node = self.get(ref)
        if node.kind != "model":
            return node
        from .query.rows import prediction_summary

        summary = prediction_summary(self.store, node.id)
        attrs = {**node.attrs, "predictions": {"count": summary["count"], "first": summary["first_at"],
                                               "last": summary["last_at"]}}
        return Node(node.id, node.kind, node.name, attrs, node.created_at)

    # -- reads ----------------------------------------------------------------

    def get(self, ref: Any) -> Node:
        """The node a reference names.

        Parameters
        ----------
        ref : Node, Run or str
            An id, a unique prefix, a name (the newest node of that name), ``kind:name``,
            ``name@N``, ``NAME@LABEL`` or ``request:ID``.

        Returns
        -------
        Node

        Raises
        ------
        NodeNotFoundError
            When nothing matches.
        AmbiguousIdError
            When several nodes match; the message lists them.

        Examples
        --------
        >>> lg.get("train").kind
        'dataset'
        >>> lg.get("clf@1").attrs["params"]["C"]
        1.0
        >>> lg.get("request:req-2").kind
        'prediction'
        """
        if isinstance(ref, Node):
            return ref
        if isinstance(ref, tracking.Run):
            ref = ref.id
        return self.store.resolve(str(ref))

    def nodes(self, kind: str | None = None, name: str | None = None, *, limit: int | None = None) -> list[Node]:
        """Recorded nodes, newest first.

        Parameters
        ----------
        kind : str, optional
            Only this kind (one of `model.KINDS`).
        name : str, optional
            Only nodes of this name.
        limit : int, optional
            At most this many.

        Returns
        -------
        list of Node
            With ``.to_dict()``, the JSON of ``lineage ls --json``.

        Examples
        --------
        >>> [n.name for n in lg.nodes(kind="dataset")]
        ['test', 'train', 'raw']
        """
        return Items(self.store.nodes(kind=kind, name=name, limit=limit))

    def count_nodes(self, kind: str | None = None, name: str | None = None) -> int:
        """How many nodes `nodes` lists without a limit (one COUNT): what a cut listing
        says it left out.

        Parameters
        ----------
        kind : str, optional
            Only this kind (one of `model.KINDS`; predictions are counted only so).
        name : str, optional
            Only nodes of this name.

        Returns
        -------
        int

        Examples
        --------
        >>> lg.count_nodes(kind="dataset")
        3
        """
        return self.store.count_nodes(kind=kind, name=name)

    def holds(self, run: tracking.Run) -> bool:
        """Whether ``run`` records into this store (opened through this facade or
        another one on the same file or server).

        Parameters
        ----------
        run : Run
            An open run.

        Returns
        -------
        bool

        Examples
        --------
        >>> with lg.start_run("fit") as run:
        ...     lg.holds(run)
        True
        """
        return str(run.store.path) == str(self.store.path)

    def _model(self, ref: Any, *, also: tuple[str, ...] = (), check: bool = True) -> Node:
        """The model version ``ref`` names, for the verbs that take a model (or one of
        the kinds in ``also``). A name or prefix shared with a run or a dataset means
        the model: autolog names a run and the model it fits after the estimator, so
        `audit LogisticRegression` was ambiguous between the two though only one of
        them can be audited. Raises InvalidInputError for a node of another kind
        (unless ``check`` is false: the verb says why in its own words)."""
        from .errors import AmbiguousIdError, InvalidInputError, NodeNotFoundError

        try:
            node = self.get(ref)
        except AmbiguousIdError as exc:
            text = str(ref)
            if not isinstance(ref, str) or ":" in text.split("@", 1)[0] or \
                    not any(c.startswith("model:") for c in exc.candidates):
                raise
            try:
                node = self.get(f"model:{text}")
            except NodeNotFoundError:
                raise exc from None
        if check and node.kind != "model" and node.kind not in also:
            raise InvalidInputError(f"{node.id} is a {node.kind}, not a model")
        return node

    def history(self, name: str, *, kind: str | None = None) -> list[Node]:
        """Every version recorded under a name, oldest first.

        Parameters
        ----------
        name : str
            The name, or ``kind:name`` (what an ambiguous reference asks for, when
            a run and a model share a name).
        kind : str, optional
            Only this kind, when names clash across kinds.

        Returns
        -------
        list of Node

        Examples
        --------
        >>> [n.attrs["params"]["C"] for n in lg.history("clf")]
        [1.0, 0.1, 0.01]
        """
        if kind is None:
            kind, name = _kind_and_name(name)
        return Items(self.store.history(name, kind=kind))

    def verify(self, *, head: str | None = None, record: bool = False, since_checkpoint: bool = False,
               progress: Any = None, key: str | os.PathLike[str] | None = None) -> VerifyReport:
        """Replay the ledger and every recorded table; see `Store.verify`.

        Parameters
        ----------
        head : str, optional
            A head hash remembered elsewhere, which must be a prefix of this history.
        key : str or PathLike, optional
            The key the caller trusts: its public key file (``KEYFILE.pub`` from `keygen`)
            or its fingerprint (``SHA256:…``). Then the check also fails unless a
            checkpoint signed by that key vouches for ``head`` or a later head (without
            ``head``: for some head of this history), and when any checkpoint signed by that key does
            not hold or vouches for a head this ledger no longer carries (a rewrite).
            Checkpoints signed by other keys are not trusted, whatever they say.
        record : bool, default False
            Append the result as a checkpoint event.
        since_checkpoint : bool, default False
            Start from the last checkpoint instead of the first event.
        progress : callable, optional
            Called with the events checked so far.

        Returns
        -------
        VerifyReport
            ``.ok``, ``.head``, ``.events``, and the first bad event when not ok.

        Examples
        --------
        >>> report = lg.verify()
        >>> report.ok, report.events > 0
        (True, True)
        >>> keys = lg.keygen("auditor.key")
        >>> lg.verify(key=keys["public"]).ok      # no checkpoint signed by that key yet
        False
        >>> _ = lg.verify_signed("auditor.key")
        >>> lg.verify(key=keys["public"]).ok, lg.verify(key=keys["fingerprint"]).ok
        (True, True)
        """
        trusted = None
        if key is not None:
            from . import signing

            trusted = signing.trusted_fingerprint(key)  # a bad key is an error before any work
        if record:
            tracking.ensure_actor(self.store)  # the checkpoint's author, as a node
        report = self.store.verify(head=head, record=record, since_checkpoint=since_checkpoint, progress=progress)
        if trusted is not None:
            self._check_trusted_key(report, trusted, head)
        return report

    def _check_trusted_key(self, report: VerifyReport, trusted: str, head: str | None) -> None:
        """Fail ``report`` unless a checkpoint signed by the ``trusted`` fingerprint vouches
        for ``head`` (or, without one, exists), and when one of that key's checkpoints
        does not hold or vouches for a head the ledger no longer carries."""
        from .signing import short as signing_short
        from .store import publish

        copied = publish.copied_ranges(self.store)
        problems: list[tuple[int, str]] = []
        vouching, local = [], []  # local: not a pushed copy, so its numbers are this ledger's
        for s in self.checkpoint_signatures():
            if s["fingerprint"] != trusted:
                continue
            if not s["ok"]:
                problems.append((s["event"], f"event {s['event']} (checkpoint signed by the given key): {s['problem']}"))
                continue
            if not publish.in_ranges(copied, s["event"]):  # a pushed copy vouches for its source's chain
                through = s["verified_through"]
                base = self.store.event(through) if type(through) is int else None
                if base is None or base.hash != s["head"]:
                    problems.append((s["event"], f"event {s['event']} (checkpoint signed by the given key) vouches for "
                                                 f"event {through} with hash {str(s['head'])[:16]}…, which this ledger "
                                                 "no longer carries: the history was rewritten since it was signed"))
                    continue
                local.append(through)
            vouching.append(s)
        # a checkpoint vouches for every head before the one it signed: the chain links them
        at = self.store.event_with_hash(head) if head is not None and report.head_found else None
        if head is not None and report.head_found and not any(at is not None and at <= through for through in local):
            problems.append((0, f"no checkpoint signed by the given key {signing_short(trusted)} vouches for the head "
                                f"{head} (or a later one)"))
        elif head is None and not vouching and not problems:
            problems.append((0, f"no checkpoint of this ledger is signed by the given key {signing_short(trusted)} "
                                "(`lineage verify --record --sign KEYFILE` records one)"))
        if problems:
            report.ok = False
            bad = [seq for seq, _ in problems if seq]
            if bad and report.first_bad is None:
                report.first_bad = min(bad)
            report.problems = [*report.problems, *(p for _, p in problems)]
        report.trusted_checkpoints = [s["event"] for s in vouching]

    # -- questions (query layer) -----------------------------------------------

    def trace(self, ref: Any, *, depth: int | None = None, kinds: Sequence[str] | None = None) -> Subgraph:
        """Everything upstream of a node, itself included.

        Parameters
        ----------
        ref : Node or str
            The node to start from.
        depth : int, optional
            At most this many hops.
        kinds : sequence of str, optional
            Keep only these kinds (the root is always kept).

        Returns
        -------
        Subgraph

        Raises
        ------
        NodeNotFoundError
            When ``ref`` names nothing.

        Examples
        --------
        >>> sub = lg.trace("clf")
        >>> sorted(n.name for n in sub.nodes(kind="dataset"))
        ['raw', 'test', 'train']
        """
        from . import query

        # a full id goes straight to the walk, which reports a missing node itself:
        # resolving it first cost two more queries per trace (issue 16)
        root = ref if isinstance(ref, str) else self.get(ref).id
        return query.trace(self.store, root, depth=depth, kinds=kinds)

    def impact(self, ref: Any, *, include_predictions: bool = False, depth: int | None = None,
               max_predictions: int | None = None) -> Subgraph:
        """Everything downstream of a node; predictions counted, listed only when asked.

        Parameters
        ----------
        ref : Node or str
            The node to start from.
        include_predictions : bool, default False
            List each prediction instead of one group per model.
        depth : int, optional
            At most this many hops.
        max_predictions : int, optional
            With ``include_predictions``: list at most this many of each model's
            predictions, the rest counted in one group per model (a view of a few
            hundred nodes need not build a million).

        Returns
        -------
        Subgraph

        Raises
        ------
        NodeNotFoundError
            When ``ref`` names nothing.

        Examples
        --------
        >>> lg.impact("train").counts
        {'dataset': 1, 'run': 3, 'model': 3, 'prediction': 3}
        """
        from . import query

        return query.impact(self.store, self.get(ref).id, include_predictions=include_predictions, depth=depth,
                            max_predictions=max_predictions)

    def which_data(self, model: Any) -> list[Any]:
        """The datasets behind a model, each with its role and distance; root sources first.

        Parameters
        ----------
        model : Node or str
            A model (or a prediction: its model's data).

        Returns
        -------
        list of DataUse
            ``.node``, ``.role`` (as recorded, or ``upstream``), ``.distance``, ``.group``.

        Raises
        ------
        NodeNotFoundError
            When ``model`` names nothing.

        Examples
        --------
        >>> [(u.node.name, u.role, u.distance) for u in lg.which_data("clf")]
        [('raw', 'upstream', 3), ('train', 'training', 2), ('test', 'evaluation', 2)]
        """
        from . import query

        return Items(query.which_data(self.store, self._model(model, check=False).id))

    def path(self, a: Any, b: Any) -> list[Node]:
        """A shortest provenance path from ``a`` back to ``b`` (empty when none).

        Parameters
        ----------
        a : Node or str
            The later node.
        b : Node or str
            The node it may depend on.

        Returns
        -------
        list of Node
            From ``a`` to ``b``, both included.

        Raises
        ------
        NodeNotFoundError
            When either names nothing.

        Examples
        --------
        >>> [n.name for n in lg.path("clf", "raw")]
        ['clf', 'fit', 'prepare', 'raw']
        """
        from . import query

        return query.path(self.store, self.get(a).id, self.get(b).id)

    def common_ancestors(self, refs: Sequence[Any]) -> list[Node]:
        """Nodes upstream of every one of ``refs``.

        Parameters
        ----------
        refs : sequence of Node or str
            Two or more nodes.

        Returns
        -------
        list of Node
            Nearest first.

        Raises
        ------
        NodeNotFoundError
            When one names nothing.

        Examples
        --------
        >>> sorted(n.name for n in lg.common_ancestors(["clf@1", "clf@2"]) if n.kind == "dataset")
        ['raw', 'test', 'train']
        """
        from . import query

        return query.common_ancestors(self.store, [self.get(r).id for r in refs])

    def diff(self, a: Any, b: Any) -> Any:
        """How two models (or runs) differ: data, code, params, environment, metrics.
        Two versions of data (``"train@1"``, ``"train"``) also say what changed in
        them: rows, size, files, columns added or removed, column types.

        Parameters
        ----------
        a, b : Node or str
            The two models or runs, or two datasets (or artifacts).

        Returns
        -------
        Diff
            Iterable of `Change` (``.aspect``, ``.key``, ``.a``, ``.b``); false when equal.

        Raises
        ------
        NodeNotFoundError
            When either names nothing.
        InvalidInputError
            When one is neither a model, a run nor data, or data that no run
            produced is compared with a model or run.

        Examples
        --------
        >>> [(c.key, c.a, c.b) for c in lg.diff("clf@1", "clf@2").aspect("metrics")]
        [('accuracy', 0.6, 0.5)]
        """
        from . import query

        return query.diff(self.store, self.get(a).id, self.get(b).id)

    def blame(self, bad: Sequence[Any], good: Sequence[Any] = ()) -> list[Any]:
        """Upstream nodes ranked by how much more often they stand behind the bad predictions.

        Parameters
        ----------
        bad : sequence of Node or str
            The bad predictions (or one).
        good : sequence of Node or str, optional
            Good ones to compare with.

        Returns
        -------
        list of Suspect
            ``.node``, ``.score``, ``.bad``, ``.good``, highest score first.

        Raises
        ------
        NodeNotFoundError
            When a reference names nothing.

        Examples
        --------
        >>> suspects = lg.blame(["request:req-1", "request:req-2"])
        >>> suspects[0].score, suspects[0].bad
        (1.0, 2)
        """
        from . import query

        bad, good = _as_refs(bad), _as_refs(good)
        return Items(query.blame(self.store, [self.get(r).id for r in bad], [self.get(r).id for r in good]))

    def runs(self, where: str | None = None, order_by: str | None = None, limit: int | None = None) -> list[Node]:
        """Runs matching a filter (``params.C > 0.5 and status = 'finished'``).

        Parameters
        ----------
        where : str, optional
            The filter (see `query.parse_filter`).
        order_by : str, optional
            ``metrics.accuracy DESC``, ``params.C``, ``started_at``, … (see `query.parse_order`).
        limit : int, optional
            At most this many.

        Returns
        -------
        list of Node

        Raises
        ------
        FilterSyntaxError
            For a filter or order that does not parse (the message points at it).

        Examples
        --------
        >>> [n.attrs["params"]["C"] for n in lg.runs("params.C > 0.05", order_by="params.C")]
        ['0.1', '1.0']
        """
        from . import query

        return Items(query.runs(self.store, where=where, order_by=order_by, limit=limit))

    def count_runs(self, where: str | None = None) -> int:
        """How many runs `runs` lists for ``where`` without a limit (one COUNT): what a
        cut listing says it left out.

        Parameters
        ----------
        where : str, optional
            The filter (see `query.parse_filter`).

        Returns
        -------
        int

        Raises
        ------
        FilterSyntaxError
            For a filter that does not parse, as `runs`.

        Examples
        --------
        >>> lg.count_runs("params.C > 0.05")
        2
        """
        from . import query

        return query.count_runs(self.store, where=where)

    def insights(self, metric: str) -> Any:
        """Which parameters matter most for ``metric`` across the runs that logged it.

        Parameters
        ----------
        metric : str
            The metric's key.

        Returns
        -------
        Insights
            ``.items`` of `ParamImportance` (``.param``, ``.importance``, ``.correlation``).

        Raises
        ------
        InvalidInputError
            When fewer than 3 runs logged the metric.

        Examples
        --------
        >>> found = lg.insights("accuracy")
        >>> found.runs, [(i.param, i.correlation) for i in found.items]
        (3, [('C', 1.0)])
        """
        from . import query

        return query.insights(self.store, metric)

    def status(self) -> Any:
        """Datasets whose files changed on disk, and the models and predictions they affect.

        Returns
        -------
        Status
            ``.ok``, ``.changed``, ``.affected``, ``.predictions``.

        Examples
        --------
        >>> lg.status().ok
        True
        >>> _ = Path("data/train.csv").write_text("a,b,target\\n0,0,0\\n")
        >>> st = lg.status()
        >>> [n.name for n in st.changed], st.predictions
        (['train'], 3)
        """
        from . import query

        return query.status(self.store)

    # -- metric step history (MLflow's get_metric_history) ----------------------

    def metric_history(self, run: Any, key: str) -> list[Any]:
        """Every value of metric ``key`` a run logged, by step.

        Parameters
        ----------
        run : Node, Run or str
            The run.
        key : str
            The metric.

        Returns
        -------
        MetricHistory
            A list of `MetricPoint` (``.step``, ``.value``, ``.at``, ``.group``,
            ``.dataset``), with ``.to_dict()`` and a terminal ``.sparkline()``.

        Raises
        ------
        NodeNotFoundError
            For an unknown run, or a metric the run never logged (the message lists the
            ones it did).
        InvalidInputError
            For a node that is not a run.

        Examples
        --------
        >>> with lg.start_run("train-loop") as run:
        ...     for step, loss in enumerate([0.9, 0.5, 0.3]):
        ...         run.log_metric("loss", loss, step=step)
        >>> history = lg.metric_history(run.id, "loss")
        >>> [(p.step, p.value) for p in history], history.sparkline()
        ([(0, 0.9), (1, 0.5), (2, 0.3)], '█▃▁')
        """
        from .errors import InvalidInputError, NodeNotFoundError
        from .query import runview

        node = self.get(run)
        if node.kind != "run":
            raise InvalidInputError(f"{node.id} is a {node.kind}; metric history belongs to runs")
        rows = runview.metric_history(self.store, node.id, key)
        if not rows:
            known = runview.metric_keys(self.store, node.id)
            logged = f"it logged {', '.join(known)}" if known else "it logged no metrics"
            # (the run was found: the missing thing is the metric, not a node)
            raise NodeNotFoundError(f"{node.id} metric {key}", message=f"{node.id} has no metric named {key!r}; {logged}")
        return MetricHistory(key, node.id, [MetricPoint(**r) for r in rows])

    # -- views and reports -----------------------------------------------------

    def render(self, subgraph: Subgraph, path: str | os.PathLike[str], **options: Any) -> Path:
        """Draw a subgraph to a file; the format comes from the suffix
        (.svg .png .pdf .dot .mmd .html).

        Parameters
        ----------
        subgraph : Subgraph
            What to draw (from `trace` or `impact`).
        path : str or PathLike
            The file to write.
        **options
            As `render.to_dot`: ``highlight``, ``max_nodes``, ``fold``, ``rankdir``, ….

        Returns
        -------
        Path
            The file written.

        Raises
        ------
        RenderError
            For an unknown suffix, or SVG/PNG/PDF without Graphviz.

        Examples
        --------
        >>> lg.render(lg.trace("clf"), "clf.mmd").read_text().splitlines()[0]
        'flowchart RL'
        """
        from . import render

        return render.render(subgraph, path, **options)

    def audit(self, ref: Any, *, standard: str = "annex-iv") -> Any:
        """The audit report of a model or prediction; ``.write("audit.html")``.

        A bare model name means the version labelled ``production`` when one is, else the
        newest (the report says which).

        Parameters
        ----------
        ref : Node or str
            A model or a prediction.
        standard : str, default "annex-iv"
            The checklist to arrange the facts by.

        Returns
        -------
        Report
            ``.ok``, ``.missing``, ``.to_dict()``, ``.write(path)`` (.html, .md, .json).

        Raises
        ------
        NodeNotFoundError
            When ``ref`` names nothing.
        InvalidInputError
            For another kind of node or an unknown standard.

        Examples
        --------
        >>> report = lg.audit("clf")
        >>> report.ok, "intended_use" in report.missing
        (True, True)
        >>> report.write("audit.md").name
        'audit.md'
        """
        from . import audit

        node, selection, name = self._audit_target(ref)
        report = audit.build_report(self.store, node.id, standard=standard, name=name)
        if selection:
            report.note_selection(selection)
        return report

    def inventory(self, *, all_versions: bool = False) -> Any:
        """Every model with its owner, data, status and report completeness (SR 11-7).

        Parameters
        ----------
        all_versions : bool, default False
            Every version instead of the newest of each name.

        Returns
        -------
        Inventory
            ``.items`` (one dict per model), ``.ok``, ``.to_dict()``, ``.write(path)``.

        Examples
        --------
        >>> [(m["name"], m["version"]) for m in lg.inventory().items]
        [('clf', 3)]
        >>> len(lg.inventory(all_versions=True).items)
        3
        """
        from . import audit

        return audit.build_inventory(self.store, all_versions=all_versions)

    # -- decision records and signed checkpoints (issue 14) ----------------------

    def explain(self, ref: Any) -> dict[str, Any]:
        """Why a prediction came out as it did, or what a model weighs.

        Parameters
        ----------
        ref : Node or str
            A prediction (``request:ID`` or its id): its inputs, the rule applied and
            ``reasons`` (``{feature, contribution, method}``, largest effect first); or a
            model: its recorded feature importance.

        Returns
        -------
        dict

        Raises
        ------
        InvalidInputError
            For another kind of node.

        Examples
        --------
        >>> lg.explain("clf")["importance"]
        [{'feature': 'a', 'importance': 0.582371}, {'feature': 'b', 'importance': 0.417629}]
        >>> lg.explain("request:req-1")["note"]
        'no reasons: input values were not kept (log the predictions with keep_inputs=True, or --keep-inputs)'
        """
        from .audit import decision

        return decision.explain(self.store, self.get(ref).id)

    @staticmethod
    def keygen(path: str | os.PathLike[str]) -> dict[str, str]:
        """Write an Ed25519 key pair (``path`` and ``path.pub``) for signed checkpoints.
        See `lineage.signing.keygen`.

        Parameters
        ----------
        path : str or PathLike
            The private key's file (refused when it exists).

        Returns
        -------
        dict
            ``{private, public, fingerprint}``.

        Raises
        ------
        InvalidInputError
            When the file exists or cannot be written.

        Examples
        --------
        >>> keys = lg.keygen("signing.key")
        >>> sorted(keys), Path("signing.key.pub").exists()
        (['fingerprint', 'private', 'public'], True)
        """
        from . import signing

        return signing.keygen(path)

    def verify_signed(self, keyfile: str | os.PathLike[str], *, since_checkpoint: bool = False,
                      progress: Any = None) -> VerifyReport:
        """`verify`, and when it passes, a checkpoint event whose payload carries an
        Ed25519 signature over the head it vouches for.

        Parameters
        ----------
        keyfile : str or PathLike
            The private key (from `keygen`), read first so a bad key writes nothing.
        since_checkpoint : bool, default False
            As `verify`.
        progress : callable, optional
            As `verify`.

        Returns
        -------
        VerifyReport

        Raises
        ------
        InvalidInputError
            For a missing or bad key file.

        Examples
        --------
        >>> _ = lg.keygen("signing.key")
        >>> lg.verify_signed("signing.key").ok
        True
        """
        from . import signing

        signing.load_private(keyfile)
        report = self.store.verify(since_checkpoint=since_checkpoint, progress=progress)
        if report.ok:
            sig = signing.sign(keyfile, signing.checkpoint_message(report.events, report.head))
            self.store.write("checkpoint", {"verified_through": report.events, "head": report.head,
                                            "from": report.checked_from, "signature": sig})
        return report

    def checkpoint_signatures(self, *, head: str | None = None) -> list[dict[str, Any]]:
        """Each signed checkpoint, with whether its signature matches the head it claims.

        Parameters
        ----------
        head : str, optional
            Only those vouching for this head (a hex prefix).

        Returns
        -------
        list of dict
            ``{event, at, verified_through, head, fingerprint, ok, problem}``.

        Examples
        --------
        >>> _ = lg.keygen("signing.key")
        >>> report = lg.verify_signed("signing.key")
        >>> [(s["ok"], s["head"] == report.head) for s in lg.checkpoint_signatures()]
        [(True, True)]
        """
        from . import signing

        out = []
        for cp in self.store.checkpoints():
            p = cp.payload or {}
            sig = p.get("signature")
            if sig is None or (head and not str(p.get("head", "")).startswith(head.lower())):
                continue
            try:
                ok, why = signing.check(sig, signing.checkpoint_message(int(p.get("verified_through") or 0),
                                                                         str(p.get("head"))))
            except (TypeError, ValueError):
                ok, why = False, "the checkpoint's claim is not a number and a hash"
            out.append({"event": cp.seq, "at": p.get("at"), "verified_through": p.get("verified_through"),
                        "head": p.get("head"), "fingerprint": sig.get("fingerprint") if isinstance(sig, dict) else None,
                        "ok": ok, "problem": why or None})
        return out


    # -- promotion, serving state, model description, feature lineage (issue 13) ------

    def promote(self, ref: Any, label: str, reason: str | None = None, *, author: str | None = None,
                name: str | None = None) -> Any:
        """Put a label (``production``, ``staging``, any word) on one model version, ending
        it on the version that held it; a ledger event with who and when.
        ``NAME@LABEL`` then names that version.

        Parameters
        ----------
        ref : Node or str
            The model version.
        label : str
            The label.
        reason : str, optional
            Why.
        author : str, optional
            Who decided (default: the recording identity).
        name : str, optional
            Which of the version's names the label belongs to: one it was registered
            under (`register_model`); default the name ``ref`` gives (``churn@1``)
            when the version has it, else its own name.

        Returns
        -------
        Promotion
            With ``.to_dict()``.

        Raises
        ------
        InvalidInputError
            For a non-model, a bad label or a name the version does not have; nothing
            is recorded.

        Examples
        --------
        >>> p = lg.promote("clf@2", "production", "best accuracy")
        >>> p.to_dict()["version"], lg.get("clf@production").id == lg.get("clf@2").id
        (2, True)
        >>> _ = lg.register_model("clf@2", "churn")
        >>> lg.promote("clf@2", "champion", name="churn").to_dict()["name"], lg.get("churn@champion").id == lg.get("clf@2").id
        ('churn', True)
        """
        from . import promotion

        node = self._model(ref, check=False)
        return promotion.promote(self.store, node, label, reason=reason, author=author,
                                 name=name or self._name_asked(ref, node))

    def unpromote(self, name: Any, label: str, *, reason: str | None = None, author: str | None = None) -> Any:
        """Take a label off the version of a model name that holds it.

        Parameters
        ----------
        name : str or Node
            The model name (or one of its versions).
        label : str
            The label.
        reason : str, optional
            Why.
        author : str, optional
            Who decided.

        Returns
        -------
        Promotion
            The change (``action`` ``unpromote``).

        Raises
        ------
        NodeNotFoundError
            When no version holds the label.

        Examples
        --------
        >>> _ = lg.promote("clf@2", "production")
        >>> lg.unpromote("clf", "production", reason="retired").to_dict()["action"]
        'unpromote'
        >>> lg.labels("clf")
        {}
        """
        from . import promotion

        return promotion.unpromote(self.store, name, label, reason=reason, author=author)

    def set_stage(self, ref: Any, name: str, stage: str, *, author: str | None = None) -> str:
        """Move a model version to one of MLflow 2's registry stages, as labels:
        ``Staging`` and ``Production`` are the labels ``staging`` and ``production``
        (one holder each: the version that held it loses it), ``None`` and
        ``Archived`` take the version's stage labels off. Each change is a ledger event.

        Parameters
        ----------
        ref : Node or str
            The model version.
        name : str
            The model name the stage belongs to (a registered name).
        stage : str
            ``None``, ``Staging``, ``Production`` or ``Archived``, in any case.
        author : str, optional
            Who decided.

        Returns
        -------
        str
            The stage, as MLflow names it.

        Raises
        ------
        InvalidInputError
            For another word, or a node that is not a model version named ``name``.

        Examples
        --------
        >>> lg.set_stage("clf@2", "clf", "production")
        'Production'
        >>> lg.labels("clf")["production"].id == lg.get("clf@2").id
        True
        """
        from . import promotion

        return promotion.set_stage(self.store, self._model(ref, check=False), name, stage, author=author)

    def promotions(self, name: Any) -> list[Any]:
        """Every label change of a model name, oldest first, with version numbers.

        Parameters
        ----------
        name : str or Node
            The model name (or one of its versions).

        Returns
        -------
        list of dict
            ``{name, label, model, version, action, reason, author, at, event, …}``.

        Examples
        --------
        >>> _ = lg.promote("clf@1", "production")
        >>> _ = lg.promote("clf@3", "production")
        >>> [(p["version"], p["action"]) for p in lg.promotions("clf")]
        [(1, 'promote'), (1, 'end'), (3, 'promote')]
        """
        if not isinstance(name, str):
            name = self.get(name).name or ""
        return Items(self.model_history(name).promotions)

    def model_history(self, name: str) -> Any:
        """The versions of a model name beside its label changes and predictions.

        Parameters
        ----------
        name : str
            The model name (``model:NAME`` when names clash across kinds).

        Returns
        -------
        ModelHistory
            ``.versions``, ``.promotions``, ``.predictions``; ``.to_dict()`` is
            ``lineage history NAME --json``.

        Examples
        --------
        >>> h = lg.model_history("clf")
        >>> len(h.versions), sorted(h.to_dict())
        (3, ['items', 'labels', 'promotions'])
        """
        from .query.serving import model_history

        bare = _kind_and_name(name)[1]
        # (only the model's versions: autolog names a run after the estimator too)
        return model_history(self.store, self.history(bare, kind="model"), bare)

    def labels(self, name: Any) -> dict[str, Node]:
        """``{label: model version}`` of every label a model name holds now.

        Parameters
        ----------
        name : str, Node or Run
            The model name (or one of its versions).

        Returns
        -------
        dict of str to Node

        Examples
        --------
        >>> _ = lg.promote("clf@2", "staging")
        >>> {k: v.id == lg.get("clf@2").id for k, v in lg.labels("clf").items()}
        {'staging': True}
        """
        if not isinstance(name, str):  # a Node or a Run: its name
            name = self.get(name).name or ""
        elif name.startswith("model:"):
            name = name[len("model:"):]
        return {k: self.get(v) for k, v in sorted(self.store.labels_of(name).items())}

    def labels_at(self, prediction: Any) -> list[str]:
        """The labels the prediction's model version held when the prediction was made.

        Parameters
        ----------
        prediction : Node or str
            The prediction (``request:ID`` works).

        Returns
        -------
        list of str

        Raises
        ------
        NodeNotFoundError
            When it names nothing.

        Examples
        --------
        >>> _ = lg.promote("clf", "production")
        >>> _ = lg.log_predictions("clf", [[0.0, 0.0]], [0], request_ids=["after"])
        >>> lg.labels_at("request:req-1"), lg.labels_at("request:after")
        ([], ['production'])
        """
        from .query.serving import labels_at_prediction

        return labels_at_prediction(self.store, self.get(prediction).id)

    def version_labels(self, ref: Any) -> list[str]:
        """The labels a model version holds now, under each of its names: as they are
        under the name ``ref`` gives (else the version's own), ``NAME@label`` under a
        name it was registered under besides (`register_model`).

        Parameters
        ----------
        ref : Node or str
            The model version (``NAME``, ``NAME@N``, an id).

        Returns
        -------
        list of str

        Raises
        ------
        NodeNotFoundError
            When it names nothing.
        InvalidInputError
            For a node that is not a model.

        Examples
        --------
        >>> _ = lg.promote("clf@2", "staging")
        >>> _ = lg.register_model("clf@2", "churn")
        >>> _ = lg.promote("churn@1", "production")
        >>> lg.version_labels("clf@2"), lg.version_labels("churn")
        (['staging', 'churn@production'], ['production', 'clf@staging'])
        """
        from .query.serving import labels_held, version_names

        node = self._model(ref)
        return labels_held(self.store, node, version_names(self.store, node, self._name_asked(ref, node)))

    def resolve_for_audit(self, ref: Any) -> tuple[Node, str | None]:
        """The model version `audit` and the inventory mean by ``ref``, and how it was chosen.

        A bare model name is the version labelled ``production`` when one is, else the
        newest (DESIGN.md §1).

        Parameters
        ----------
        ref : Node, Run or str
            Any reference.

        Returns
        -------
        tuple of (Node, str or None)
            The node, and a sentence saying how it was chosen (None when ``ref`` named
            one version).

        Raises
        ------
        NodeNotFoundError, AmbiguousIdError
            As `get`.

        Examples
        --------
        >>> _ = lg.promote("clf@2", "production")
        >>> node, how = lg.resolve_for_audit("clf")
        >>> how
        'clf resolved to @2, the version labelled production (3 versions recorded)'
        """
        node, how, _ = self._audit_target(ref)
        return node, how

    def _name_asked(self, ref: Any, node: Node) -> str | None:
        """The name ``ref`` gives the model version ``node``, when it is reference
        text naming the version by one of its names (`query.serving.name_asked`)."""
        from .query.serving import name_asked

        return name_asked(self.store, ref, node) if isinstance(ref, str) else None

    def _audit_target(self, ref: Any) -> tuple[Node, str | None, str | None]:
        """`resolve_for_audit`, with the name the report is written under: the one
        ``ref`` gives when the version has it (a version registered under a second
        name is audited under the name asked for, with that name's labels), else None."""
        from . import promotion
        from .model import parse_ref, version_number

        if isinstance(ref, (Node, tracking.Run)):
            return self.get(ref), None, None
        text = str(ref)
        try:
            r = parse_ref(text)
        except ValueError:
            return self.get(text), None, None
        node = self._model(text, check=False)
        name = self._name_asked(text, node)
        bare = r.version is None and r.label is None and r.kind in (None, "model")
        if name is None or not bare:
            return node, None, name
        versions = self.store.history(name, kind="model")
        holder = self.store.label_holder(name, promotion.PRODUCTION)
        if holder is not None:
            number = version_number(versions, holder)
            which = f"@{number}" if number is not None else holder
            return self.get(holder), (f"{name} resolved to {which}, the version labelled "
                                      f"{promotion.PRODUCTION} ({len(versions)} version{'s' if len(versions) != 1 else ''} "
                                      "recorded)"), name
        return node, (f"no version of {name} is promoted to {promotion.PRODUCTION}; "
                      f"this is the newest, @{len(versions)} of {len(versions)}"), name

    def describe_model(self, ref: Any) -> dict[str, Any]:
        """The description of a recorded model (steps, params, features, importance).

        As recorded, or, for a scikit-learn model logged before features were described,
        read from its pickle.

        Parameters
        ----------
        ref : Node or str
            The model.

        Returns
        -------
        dict
            ``class``, ``params``, ``features_out``, ``importance``, ….

        Raises
        ------
        InvalidInputError
            For another kind of node, or a pickle that cannot be loaded (one line).

        Examples
        --------
        >>> d = lg.describe_model("clf")
        >>> d["class"], d["features_out"]
        ('sklearn.linear_model._logistic.LogisticRegression', ['a', 'b'])
        """
        from . import describe

        node = self._model(ref)
        attrs = dict(node.attrs)
        if "features_out" not in attrs and attrs.get("flavor") == "sklearn":
            fresh = describe.describe_model(describe.load_model(self.store, node))
            attrs = {**fresh, **{k: v for k, v in attrs.items() if k in ("artifact", "size", "serializer")}}
        return attrs

    def feature_lineage(self, model: Any) -> Any:
        """Each feature of a model -> the source columns of the dataset versions it came
        from (through recorded preparation runs), with importance and sensitivity.

        Parameters
        ----------
        model : Node or str
            The model (or a prediction: its model).

        Returns
        -------
        FeatureLineage
            ``.items``, ``.inputs``, ``.sensitive``, ``.ok``, ``.to_dict()``.

        Raises
        ------
        InvalidInputError
            For another kind of node.

        Examples
        --------
        >>> [(i["feature"], i["sources"]) for i in lg.feature_lineage("clf").to_dict()["items"]]
        [('a', ['train@1.a']), ('b', ['train@1.b'])]
        """
        from .features import feature_lineage

        node = self._model(model, also=("prediction",))
        if node.kind == "prediction":
            node = self.get(node.attrs["model"])
        return feature_lineage(self.store, node.id, attrs=self.describe_model(node))

    def compute_importance(self, model: Any, data: Any, target: str, *, n_repeats: int = 5) -> dict[str, Any]:
        """Permutation importance of a recorded model on held-out data, recorded with
        its method and data. What ``lineage explain MODEL --data REF --target COL`` runs.

        Parameters
        ----------
        model : Node or str
            The model.
        data : Node, str or DataFrame
            A dataset reference, or a DataFrame.
        target : str
            The label column.
        n_repeats : int, default 5
            Permutations per feature.

        Returns
        -------
        dict
            ``{"values", "std", "rows", "dataset", "event", …}``.

        Raises
        ------
        InvalidInputError
            For a non-model, a missing column or data the model cannot read.

        Examples
        --------
        >>> result = lg.compute_importance("clf", "test", "target")
        >>> sorted(result["values"]), result["rows"]
        (['a', 'b'], 10)
        """
        from . import describe

        node = self._model(model)
        return describe.compute_importance(self.store, node, data, target, n_repeats=n_repeats)

    def mark_sensitive(self, ref: Any, columns: Sequence[str] | str, *, author: str | None = None) -> list[str]:
        """Mark columns of a dataset sensitive (all versions of its name count): an
        annotation, a ledger event with who and when.

        Parameters
        ----------
        ref : Node or str
            The dataset.
        columns : str or sequence of str
            The columns.
        author : str, optional
            Who decided.

        Returns
        -------
        list of str
            Every column now marked.

        Raises
        ------
        InvalidInputError
            For a node that is not a dataset, or a column it does not have.

        Examples
        --------
        >>> lg.mark_sensitive("raw", ["b"])
        ['b']
        """
        from . import promotion

        return promotion.mark_sensitive(self.store, self.get(ref), columns, author=author)

    def allow_sensitive(self, model: Any, columns: Sequence[str] | str, reason: str, *,
                        author: str | None = None) -> int:
        """Record that a model version may read these sensitive columns, and why (the
        ``sensitive_use`` annotation `check_sensitive` accepts).

        Parameters
        ----------
        model : Node or str
            The model version.
        columns : str or sequence of str
            The sensitive columns it may read.
        reason : str
            Why.
        author : str, optional
            Who decided.

        Returns
        -------
        int
            The ledger event.

        Raises
        ------
        InvalidInputError
            For a node that is not a model or an empty reason.

        Examples
        --------
        >>> _ = lg.mark_sensitive("raw", ["b"])
        >>> _ = lg.allow_sensitive("clf", ["b"], "b is needed and consented to")
        >>> lg.check_sensitive("clf").ok
        True
        """
        from . import promotion

        return promotion.allow_sensitive(self.store, self._model(model, check=False), columns, reason, author=author)

    def check_sensitive(self, model: Any) -> Any:
        """`feature_lineage` of a model, whose ``.ok`` is False when a sensitive column
        reaches its inputs without a ``sensitive_use`` allowance (``.violations``).

        Parameters
        ----------
        model : Node or str
            The model.

        Returns
        -------
        FeatureLineage

        Examples
        --------
        >>> _ = lg.mark_sensitive("raw", ["b"])
        >>> check = lg.check_sensitive("clf")
        >>> check.ok, check.to_dict()["check"]["violations"]
        (False, ['b'])
        """
        return self.feature_lineage(model)
    # -- interop: import other tools' history, export the graph (lineage/interop) --

    def import_mlflow(self, tracking_uri: str, *, experiments: Sequence[str] = (),
                      registry_uri: str | None = None) -> ImportResult:
        """Import an MLflow tracking store (runs, params, metric histories, tags,
        datasets, logged and registered models). Idempotent.

        Parameters
        ----------
        tracking_uri : str
            The MLflow store (a directory, ``sqlite:///…`` or a server URL).
        experiments : sequence of str, optional
            Only these experiments.
        registry_uri : str, optional
            The model registry, when it is elsewhere.

        Returns
        -------
        ImportResult
            ``.counts``, ``.activity``.

        Raises
        ------
        MissingExtraError
            Without mlflow (``pip install 'lineage-ml[mlflow]'``).
        InvalidInputError
            When the store cannot be read; nothing is written then.

        Examples
        --------
        Without mlflow installed (the ``[mlflow]`` extra) the import says what to install:

        >>> try:
        ...     lg.import_mlflow("mlruns")
        ... except lineage.errors.LineageError as exc:
        ...     print(type(exc).__name__)
        MissingExtraError
        """
        from .interop.mlflow_import import import_mlflow

        return import_mlflow(self.store, tracking_uri, experiments=experiments, registry_uri=registry_uri)

    def import_dvc(self, repo: str | os.PathLike[str] = ".", *, all_commits: bool = False) -> ImportResult:
        """Import a DVC repository's stages and data versions. Idempotent.

        Parameters
        ----------
        repo : str or PathLike, default "."
            The repository.
        all_commits : bool, default False
            Read every commit's versions, not only the work tree's.

        Returns
        -------
        ImportResult

        Raises
        ------
        MissingExtraError
            Without dvc (``pip install 'lineage-ml[dvc]'``).
        InvalidInputError
            When ``repo`` is no DVC repository.

        Examples
        --------
        Without dvc installed (the ``[dvc]`` extra) the import says what to install:

        >>> try:
        ...     lg.import_dvc(".")
        ... except lineage.errors.LineageError as exc:
        ...     print(type(exc).__name__)
        MissingExtraError
        """
        from .interop.dvc import import_dvc

        return import_dvc(self.store, repo, all_commits=all_commits)

    def import_openlineage(self, source: Any) -> ImportResult:
        """Import OpenLineage RunEvents from a JSON-lines file. Idempotent.

        Parameters
        ----------
        source : str, PathLike or file
            The file (``"-"``: stdin).

        Returns
        -------
        ImportResult

        Raises
        ------
        InvalidInputError
            For a bad line, naming it.

        Examples
        --------
        >>> _ = lg.export("openlineage", path="events.jsonl")
        >>> with lineage.open("elsewhere/lineage.db") as other:
        ...     counts = other.import_openlineage("events.jsonl").counts
        >>> counts["run"]
        4
        """
        from .interop.openlineage_import import import_openlineage

        return import_openlineage(self.store, source)

    def import_prov(self, path: str | os.PathLike[str]) -> ImportResult:
        """Rebuild the graph a PROV-JSON or PROV-XML document describes.

        Parameters
        ----------
        path : str or PathLike
            The document.

        Returns
        -------
        ImportResult

        Raises
        ------
        InvalidInputError
            For a missing file, PROV-N (which the prov package cannot read), or a
            document that does not parse.

        Examples
        --------
        >>> _ = lg.export("prov-json", "clf", "clf.prov.json")
        >>> with lineage.open("elsewhere/lineage.db") as other:
        ...     counts = other.import_prov("clf.prov.json").counts
        >>> counts["dataset"], counts["run"]
        (3, 2)
        """
        from .interop.prov import import_prov

        return import_prov(self.store, path)

    def export(self, format: str, ref: Any = None, path: str | os.PathLike[str] | None = None, *,
               url: str | None = None, namespace: str = "lineage") -> ExportResult:
        """Export the store (or the trace of ``ref``).

        Parameters
        ----------
        format : str
            ``openlineage``, ``prov-json``, ``prov-n``, ``prov-xml``, ``graphml`` or ``json``.
        ref : Node or str, optional
            Export only what this node was built from.
        path : str or PathLike, optional
            The file to write.
        url : str, optional
            POST OpenLineage events there.
        namespace : str, default "lineage"
            The OpenLineage namespace.

        Returns
        -------
        ExportResult
            ``.count``, ``.path``.

        Raises
        ------
        InvalidInputError
            For an unknown format.

        Examples
        --------
        >>> result = lg.export("json", "clf", "clf.json")
        >>> result.path, result.count > 0
        ('clf.json', True)
        """
        from .interop.export import export

        node_ref = None if ref is None else self.get(ref).id
        return export(self.store, format, node_ref, path, url=url, namespace=namespace)

    # -- what the CLI used to reach past the facade for (issue 9) ---------------
    # The CLI calls these instead of `lg.store`, `render.overview(lg.store)` or the
    # store's and tracking's helpers, so it holds no logic the Python API lacks.

    def overview(self, *, per_kind: int = 12) -> Subgraph:
        """A diagram-sized summary of the whole store (`render.overview`): one group
        node per (kind, name) with its count, built from aggregate queries only.

        Parameters
        ----------
        per_kind : int
            How many names of each kind get a group of their own before the rest fold.

        Returns
        -------
        Subgraph
            The summary, with no root; draw it with `render`.

        Examples
        --------
        >>> summary = lg.overview()
        >>> summary.root is None, len(summary) > 0
        (True, True)
        """
        from .render import overview

        return overview(self.store, per_kind=per_kind)

    def head(self) -> tuple[int, str]:
        """The history's length and the head `verify` would check, read without verifying.

        Returns
        -------
        tuple of (int, str)
            The number of ledger events and the hash of the newest.

        Examples
        --------
        >>> events, head = lg.head()
        >>> events > 0, head == lg.verify().head
        (True, True)
        """
        return self.store.head()

    @property
    def erasure_limits(self) -> str:
        """What `redact` cannot reach (backups, copies, reports already written), in
        one sentence, for whoever erases something.

        Returns
        -------
        str
            The sentence.

        Examples
        --------
        >>> "backups" in lg.erasure_limits
        True
        """
        from .store import ERASURE_LIMITS

        return ERASURE_LIMITS

    @staticmethod
    def check_digest(digest: str) -> str:
        """A caller-supplied checksum in normal form, checked before any store is
        opened for it.

        Parameters
        ----------
        digest : str
            ``algorithm:value``; 64 bare hex digits are read as ``sha256:``.

        Returns
        -------
        str
            The digest as ``algorithm:value`` in lower case.

        Raises
        ------
        InvalidInputError
            For anything else.

        Examples
        --------
        >>> lg.check_digest("AB" * 32) == "sha256:" + "ab" * 32
        True
        """
        return tracking.valid_digest(digest)

    @staticmethod
    def check_order(order_by: str) -> None:
        """Check a `runs` sort key before a store is opened.

        Parameters
        ----------
        order_by : str
            ``params.KEY``, ``metrics.KEY``, ``tags.KEY``, ``name``, ``experiment``,
            ``status`` or ``started_at``; a leading ``-`` sorts descending.

        Returns
        -------
        None

        Raises
        ------
        InvalidInputError
            Naming what is wrong.

        Examples
        --------
        >>> lg.check_order("-metrics.accuracy")
        >>> lg.check_order("size")
        Traceback (most recent call last):
        lineage.errors.InvalidInputError: cannot sort by 'size'; use params.KEY, metrics.KEY, tags.KEY, name, experiment, status or started_at (a leading - sorts descending)
        """
        from .query import parse_order

        parse_order(order_by)

    # -- full-text search (issue 10: lineage/store/fulltext.py, lineage/query/search.py) --

    def search(self, text: str, *, kind: str | None = None, limit: int | None = 20) -> SearchResults:
        """Nodes whose name, alias, annotations, params or tags match ``text``, best
        first; when ``text`` is one word equal to a prediction's request id, that
        prediction too, ahead of them.

        Parameters
        ----------
        text : str
            Words, ANDed and prefix-matched; ``"a phrase"`` is exact, ``OR`` takes
            either side, ``-word`` excludes.
        kind : str, optional
            Only nodes of this kind.
        limit : int or None
            At most this many hits (None: all).

        Returns
        -------
        SearchResults
            A list of SearchHit (``.node``, ``.score``, higher is better, and
            ``.matches``, where it matched), with ``.to_dict()``.

        Raises
        ------
        InvalidInputError
            For an empty or wordless query.

        Examples
        --------
        >>> [hit.node.name for hit in lg.search("raw", kind="dataset")]
        ['raw']
        """
        from .query.search import search_text

        return search_text(self.store, text, kind=kind, limit=limit)

    @staticmethod
    def check_search(text: str) -> None:
        """Check a `search` text before a store is opened.

        Parameters
        ----------
        text : str
            The query, as `search` takes it.

        Returns
        -------
        None

        Raises
        ------
        InvalidInputError
            When it has nothing to look for.

        Examples
        --------
        >>> lg.check_search("forest -boost")
        >>> lg.check_search('""')
        Traceback (most recent call last):
        lineage.errors.InvalidInputError: ...
        """
        from .query.search import parse_text_query

        parse_text_query(text)

    # -- publishing a store's history (issue 10: lineage/store/publish.py) --------

    def push(self, to: str | os.PathLike[str]) -> PushResult:
        """Copy this store's history that ``to`` lacks into it, with one ``push`` event
        linking the copies to this store's head; idempotent, all or nothing.

        Parameters
        ----------
        to : str or path
            A store path (created when missing) or a ``postgresql://`` URL.

        Returns
        -------
        PushResult
            ``.events`` copied, ``.head`` published, ``.push_event`` (None when there
            was nothing new), ``.from_seq``/``.to_seq``.

        Raises
        ------
        IntegrityError
            When this store fails verification.
        WriteRefusedError
            When ``to`` is this store, or holds a history this one no longer extends.

        Examples
        --------
        >>> lg.push("shared/lineage.db").events > 0
        True
        >>> lg.push("shared/lineage.db").events
        0
        """
        from .store.publish import push

        target = open(to, create=True)
        try:
            return push(self.store, target.store, source_location=str(self.store.path), target_location=str(to))
        finally:
            target.close()

    def pull(self, from_: str | os.PathLike[str]) -> PushResult:
        """Copy the history of the store at ``from_`` that this one lacks into this one:
        `push` the other way.

        Parameters
        ----------
        from_ : str or path
            A store path or a ``postgresql://`` URL.

        Returns
        -------
        PushResult
            As `push`.

        Raises
        ------
        NoStoreError
            When there is no store there.
        IntegrityError
            When that store fails verification.

        Examples
        --------
        >>> laptop = lineage.open("laptop/lineage.db")
        >>> laptop.pull(".lineage/lineage.db").events > 0
        True
        >>> laptop.close()
        """
        from .store.publish import push

        source = open(from_, create=False)
        try:
            return push(source.store, self.store, source_location=str(from_), target_location=str(self.store.path))
        finally:
            source.close()

    # -- what the MLflow surface (fluent, entities, client) reads through (issue 9) --
    # `import lineage as mlflow` used to reach into `lg.store`; these give it what it
    # needs (MLflow-shaped objects are built above, in lineage/entities.py).

    def artifacts_uri(self) -> str:
        """Where the store keeps artifacts (content-addressed, next to the database), as a URI.

        Returns
        -------
        str
            A ``file://`` URI of the store's ``artifacts`` folder.

        Examples
        --------
        >>> lg.artifacts_uri().startswith("file://"), lg.artifacts_uri().endswith("/artifacts")
        (True, True)
        """
        return (self.store.dir / "artifacts").as_uri()

    def experiments(self) -> list[dict[str, Any]]:
        """Every experiment, by name: those that hold runs and those created (with
        `create_experiment`, MLflow's ``create_experiment`` or ``set_experiment``).

        Returns
        -------
        list of dict
            ``{name, runs, first_at, last_at, created_at, updated_at, tags}`` per
            experiment: runs, how many; first_at and last_at, when its first and last
            run started (None without runs); created_at and updated_at, when its
            record was made and last changed (None for one known only by its runs);
            tags, its tags now.

        Examples
        --------
        >>> [(e["name"], e["runs"]) for e in lg.experiments()]
        [('demo', 4)]
        """
        from . import names
        from .query import runview

        rows = {r["name"]: {**r, "created_at": None, "updated_at": None, "tags": {}}
                for r in runview.experiments(self.store)}
        for name, rec in names.recorded(self.store, names.EXPERIMENT).items():
            row = rows.setdefault(name, {"name": name, "runs": 0, "first_at": None, "last_at": None})
            row.update(created_at=rec.created_at, updated_at=rec.updated_at, tags=dict(rec.tags))
        return [rows[name] for name in sorted(rows)]

    def experiment_models(self, names: Sequence[str]) -> list[Node]:
        """The model versions logged by runs of some experiments, oldest first.

        Parameters
        ----------
        names : sequence of str
            Experiment names (``default`` for the default experiment).

        Returns
        -------
        list of Node
            Each model once, even when several of the runs generated it.

        Examples
        --------
        >>> [(m.name, m.kind) for m in lg.experiment_models(["demo"])]
        [('clf', 'model'), ('clf', 'model'), ('clf', 'model')]
        """
        from .query import runview

        return runview.experiment_models(self.store, list(names))

    def create_experiment(self, name: str, tags: Mapping[str, Any] | None = None, *, exist_ok: bool = False) -> str:
        """Record an experiment before any run joins it, with tags (MLflow's
        ``create_experiment``); runs join it by name (``start_run(experiment=)``).

        Parameters
        ----------
        name : str
            Its name.
        tags : mapping, optional
            Its tags (values through the secret detector, as a run's tags are).
        exist_ok : bool, default False
            When the experiment exists already, record nothing (not even ``tags``:
            `set_experiment_tags` sets them) rather than raise.

        Returns
        -------
        str
            The name.

        Raises
        ------
        WriteRefusedError
            When an experiment of that name exists (created, or named by a run), or
            the store is read-only.

        Examples
        --------
        >>> lg.create_experiment("churn-2027", tags={"team": "risk"})
        'churn-2027'
        >>> [(e["name"], e["runs"], e["tags"]) for e in lg.experiments()]
        [('churn-2027', 0, {'team': 'risk'}), ('demo', 4, {})]
        """
        from . import names

        names.create(self.store, names.EXPERIMENT, name, tags, exist_ok=exist_ok)
        return name

    def set_experiment_tags(self, name: str, tags: Mapping[str, Any]) -> None:
        """Set tags on an experiment (recording it when only its runs named it); each
        change is kept in the ledger, the newest value of a tag holds.

        Parameters
        ----------
        name : str
            The experiment.
        tags : mapping
            Tag names to values.

        Returns
        -------
        None

        Raises
        ------
        NodeNotFoundError
            For a name no experiment has (neither created nor named by a run).

        Examples
        --------
        >>> lg.set_experiment_tags("demo", {"stage": "review"})
        >>> [e["tags"] for e in lg.experiments()]
        [{'stage': 'review'}]
        """
        from . import names

        names.set_tags(self.store, names.EXPERIMENT, name, tags)

    def run_links(self, run: Any) -> list[tuple[str, str | None, Node]]:
        """What a run used and what it generated, oldest first.

        Parameters
        ----------
        run : Node, Run or str
            The run (any reference `get` accepts).

        Returns
        -------
        list of (str, str or None, Node)
            ``(rel, role, node)``: rel ``used`` with the role as recorded (training,
            code, environment, …) or ``was_generated_by`` with the path the run logged
            it at (artifacts, and models logged at an MLflow artifact path) or None.

        Raises
        ------
        NodeNotFoundError
            When ``run`` names nothing.

        Examples
        --------
        >>> [(rel, node.name) for rel, _, node in lg.run_links("prepare") if node.kind == "dataset"]
        [('used', 'raw'), ('was_generated_by', 'train'), ('was_generated_by', 'test')]
        """
        from .query import runview

        return runview.run_links(self.store, self.get(run).id)

    def run_user(self, run: Any) -> str | None:
        """Who ran a run: the user of the first agent it was associated with.

        Parameters
        ----------
        run : Node, Run or str
            The run (any reference `get` accepts).

        Returns
        -------
        str or None
            The user name (or the agent's name), None when no agent was recorded.

        Raises
        ------
        NodeNotFoundError
            When ``run`` names nothing.

        Examples
        --------
        >>> lg.run_user("prepare")
        'tester'
        """
        from .query import runview

        for agent_id in runview.associated_agents(self.store, self.get(run).id):
            agent = self.store.get_node(agent_id)
            if agent is not None:
                return str(agent.attrs.get("user") or agent.name or "") or None
        return None

    def run_states(self, runs: Sequence[Node]) -> list[Node]:
        """Run nodes with their current state (status, end time, metrics, params) read now.

        Parameters
        ----------
        runs : sequence of Node
            Run nodes, as `nodes` or `get` returned them.

        Returns
        -------
        list of Node
            The same runs, in the same order, their ``attrs`` holding the state.

        Examples
        --------
        >>> [n.attrs["status"] for n in lg.run_states(lg.nodes(kind="run", name="prepare"))]
        ['finished']
        """
        return self.store.with_run_state(list(runs))

    def open_run(self, run_class: type[_R], name: str | None = None, *,
                 run_id: str | None = None, owner: Any = None, **fields: Any) -> _R:
        """`start_run` (or, with ``run_id``, resume) handing back a ``run_class``, told
        through ``owner._forget(run)`` when it ends (the fluent API's active-run stack).

        Parameters
        ----------
        run_class : type of Run
            `Run` or a subclass of it (the MLflow surface's ``ActiveRun``).
        name : str, optional
            The run's name (a new run).
        run_id : str, optional
            Resume this run instead of starting one.
        owner : object, optional
            Told when the run ends; None for nobody.
        **fields
            What `start_run` takes besides: params, tags, experiment, description, parent.

        Returns
        -------
        Run
            The open run, an instance of ``run_class`` (typed as such).

        Raises
        ------
        NodeNotFoundError
            When ``run_id`` names no run.
        WriteRefusedError
            When that run is still running in another process.

        Examples
        --------
        >>> from lineage.tracking import Run
        >>> with lg.open_run(Run, "tune", experiment="demo", params={"C": 0.5}) as run:
        ...     run.log_metric("accuracy", 0.6)
        >>> lg.get(run.id).attrs["status"]
        'finished'
        """
        # start and resume are class methods that build ``cls``: the run is a ``run_class``
        if run_id is not None:
            return cast(_R, run_class.resume(self.store, run_id, owner=owner))
        return cast(_R, run_class.start(self.store, name, owner=owner, **fields))

    def run_handle(self, run: Any) -> tracking.Run:
        """A handle that appends to a recorded run without holding its lock (MLflow lets
        code log to a run after it ended; each value is its own ledger event).

        Parameters
        ----------
        run : Node, Run or str
            The run (any reference `get` accepts).

        Returns
        -------
        Run
            A `Run` on this store; ending it does not unlock anything.

        Raises
        ------
        NodeNotFoundError
            When ``run`` names nothing.
        InvalidInputError
            When it names something that is not a run.

        Examples
        --------
        >>> lg.run_handle("prepare").log_metric("rows", 30.0)
        >>> lg.get("prepare").attrs["metrics"]["rows"]
        30.0
        """
        from .errors import InvalidInputError

        node = self.get(run)
        if node.kind != "run":
            raise InvalidInputError(f"{node.id} is a {node.kind}, not a run")
        return tracking.Run(self.store, node, tracking.NO_LOCK)

    @property
    def actor(self) -> str:
        """Who writes through this object (an agent id or ``user@host``), as every
        ledger event records it.

        Returns
        -------
        str
            The actor; ``unknown`` when none could be captured.

        Examples
        --------
        >>> lg.actor.startswith("agent:")
        True
        """
        return self.store.actor

    # -- model versions as MLflow's registry and pyfunc read them (issue 9) ----------
    # `MlflowClient`'s registry calls and `pyfunc.load_model` used to read `lg.store`
    # (aliases, generators, artifact paths, add_node); these are what they need.

    def artifact_file(self, ref: Any) -> Path:
        """Where the store keeps its copy of an artifact's or a model's bytes
        (content-addressed: the file is named after the digest in the id).

        Parameters
        ----------
        ref : Node or str
            An artifact or a model version (any reference `get` accepts).

        Returns
        -------
        Path
            The stored copy, inside the store's ``artifacts`` folder.

        Raises
        ------
        NodeNotFoundError
            When ``ref`` names nothing.
        InvalidInputError
            When it names something other than an artifact or a model, or the store
            holds no copy of its bytes.

        Examples
        --------
        >>> path = lg.artifact_file("clf@1")
        >>> path.exists(), path.name == lg.get("clf@1").id.split(":", 1)[1]
        (True, True)
        """
        from .errors import InvalidInputError

        node = self.get(ref)
        if node.kind not in ("artifact", "model"):
            raise InvalidInputError(f"{node.id} is a {node.kind}; only artifacts and models have stored bytes")
        path = self.store.artifact_path(node.id.split(":", 1)[1])
        if not path.is_file():
            raise InvalidInputError(f"the artifact of {node.id} is missing ({path})")
        return path

    def load_model(self, ref: Any) -> Any:
        """The fitted object of a recorded model version, read back from the store's copy
        after checking that its bytes still have the digest its id records.

        Parameters
        ----------
        ref : Node or str
            The model version (any reference `get` accepts: ``clf``, ``clf@2``,
            ``clf@production``, an id).

        Returns
        -------
        object
            The unpickled model (an estimator with its own ``predict``).

        Raises
        ------
        NodeNotFoundError
            When ``ref`` names nothing.
        InvalidInputError
            When it names something other than a model, or its stored copy is missing or
            altered (then run `verify`).

        Examples
        --------
        >>> model = lg.load_model("clf@1")
        >>> type(model).__name__, model.C
        ('LogisticRegression', 1.0)
        """
        import hashlib
        import pickle

        from .errors import InvalidInputError

        node = self._model(ref)
        path = self.artifact_file(node)
        try:
            blob = path.read_bytes()
        except OSError:
            raise InvalidInputError(f"the artifact of {node.id} is missing ({path})") from None
        if hashlib.sha256(blob).hexdigest() != node.id.split(":", 1)[1]:
            raise InvalidInputError(f"the artifact of {node.id} does not match its recorded digest; run `lineage verify`")
        return pickle.loads(blob)  # our own artifact, its digest checked above

    def aliases(self, ref: Any) -> list[str]:
        """The other names a node was recorded under, oldest first (a model version
        registered under a second name, as MLflow's registry does).

        Parameters
        ----------
        ref : Node or str
            The node (any reference `get` accepts).

        Returns
        -------
        list of str
            Its names besides ``.name``; empty when it has none.

        Raises
        ------
        NodeNotFoundError
            When ``ref`` names nothing.

        Examples
        --------
        >>> lg.aliases("clf@1")
        []
        >>> _ = lg.register_model("clf@1", "churn")
        >>> lg.aliases("clf@1")
        ['churn']
        """
        return self.store.aliases(self.get(ref).id)

    def generated_by(self, ref: Any) -> list[Node]:
        """The runs recorded as having generated a node, in the order recorded.

        Parameters
        ----------
        ref : Node or str
            The node (any reference `get` accepts).

        Returns
        -------
        list of Node
            The run nodes; empty for a node no run generated (a source dataset).

        Raises
        ------
        NodeNotFoundError
            When ``ref`` names nothing.

        Examples
        --------
        >>> [(run.kind, run.name) for run in lg.generated_by("clf@2")]
        [('run', 'fit')]
        >>> lg.generated_by("raw")
        []
        """
        ids = self.store.generators(self.get(ref).id)
        return [node for node in (self.store.get_node(i) for i in ids) if node is not None]

    def registered_models(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every registered model (a name model versions are recorded or registered
        under, or one created with `create_registered_model`), by name, with what is
        recorded of it; or only the one named ``name`` (none when it is no registered
        model).

        Parameters
        ----------
        name : str, optional
            One registered model's name.

        Returns
        -------
        list of dict
            ``{name, created_at, updated_at, tags, description}`` per name: created_at
            and updated_at, when its record was made and last changed (None for a
            name known only by its versions); tags, its tags now; description, its
            ``mlflow.note.content`` tag (kept out of tags), or None.

        Examples
        --------
        >>> lg.create_registered_model("churn", tags={"owner": "risk"}, description="Scores churn")
        'churn'
        >>> [(m["name"], m["tags"], m["description"]) for m in lg.registered_models()]
        [('churn', {'owner': 'risk'}, 'Scores churn'), ('clf', {}, None)]
        """
        from . import names

        held = names.recorded(self.store, names.REGISTERED_MODEL, name)
        if name is None:
            known = set(self.store.model_names()) | set(held)
        else:
            known = {name} if name in held or self.store.version_ids(name, "model") else set()
        out = []
        for each in sorted(known):
            rec = held.get(each) or names.Recorded(each)
            tags = dict(rec.tags)
            description = tags.pop(tracking.NOTE_TAG, None)
            out.append({"name": each, "created_at": rec.created_at, "updated_at": rec.updated_at, "tags": tags,
                        "description": description})
        return out

    def create_registered_model(self, name: str, tags: Mapping[str, Any] | None = None,
                                description: str | None = None) -> str:
        """Record a registered model before any version is registered under it, with
        tags and a description (MLflow's ``create_registered_model``); versions join it
        with `register_model`.

        Parameters
        ----------
        name : str
            Its name.
        tags : mapping, optional
            Its tags (values through the secret detector, as a run's tags are).
        description : str, optional
            What it is for (kept as its ``mlflow.note.content`` tag, as MLflow keeps a
            run's description).

        Returns
        -------
        str
            The name.

        Raises
        ------
        WriteRefusedError
            When a registered model of that name exists (created, or holding versions).

        Examples
        --------
        >>> lg.create_registered_model("risk", description="Scores loan applications")
        'risk'
        >>> [m["description"] for m in lg.registered_models() if m["name"] == "risk"]
        ['Scores loan applications']
        """
        from . import names

        all_tags = {**(tags or {}), **({tracking.NOTE_TAG: description} if description is not None else {})}
        names.create(self.store, names.REGISTERED_MODEL, name, all_tags)
        return name

    def set_registered_model_tags(self, name: str, tags: Mapping[str, Any]) -> None:
        """Set tags on a registered model (its description is the tag
        ``mlflow.note.content``); each change is kept in the ledger, the newest value
        of a tag holds.

        Parameters
        ----------
        name : str
            The registered model: a name its versions are recorded under, or one created
            with `create_registered_model`.
        tags : mapping
            Tag names to values.

        Returns
        -------
        None

        Raises
        ------
        NodeNotFoundError
            For a name no registered model has.

        Examples
        --------
        >>> lg.set_registered_model_tags("clf", {"owner": "risk-team"})
        >>> [m["tags"] for m in lg.registered_models()]
        [{'owner': 'risk-team'}]
        """
        from . import names

        names.set_tags(self.store, names.REGISTERED_MODEL, name, tags)

    def model_names(self) -> list[str]:
        """Every name model versions are recorded or registered under, sorted (the
        registered models of MLflow's registry).

        Returns
        -------
        list of str

        Examples
        --------
        >>> lg.model_names()
        ['clf']
        """
        return self.store.model_names()

    def register_model(self, ref: Any, name: str) -> Node:
        """Record a model version under a further name (MLflow's
        ``create_model_version``): ``NAME@N`` and ``NAME@LABEL`` then count it among
        that name's versions. Registering it under a name it has records nothing.

        Parameters
        ----------
        ref : Node or str
            The model version (any reference `get` accepts).
        name : str
            The registered model name.

        Returns
        -------
        Node
            The model version as known under ``name`` (same id, same attributes).

        Raises
        ------
        NodeNotFoundError
            When ``ref`` names nothing.
        InvalidInputError
            When it names something other than a model, or ``name`` is not a name.

        Examples
        --------
        >>> lg.register_model("clf@2", "churn").name
        'churn'
        >>> lg.get("churn@1").id == lg.get("clf@2").id
        True
        """
        from .errors import InvalidInputError

        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError("a registered model needs a name")
        node = self._model(ref)
        if name != node.name and name not in self.store.aliases(node.id):
            self.store.add_node(Node(node.id, "model", name, dict(node.attrs)), event_type="model")
        return Node(node.id, node.kind, name, node.attrs, node.created_at)

class MetricPoint:
    """One logged value of a metric: ``step``, ``value``, ``at`` (ISO time), ``group``
    (a per-group result's group, else None) and ``dataset`` (the evaluation data, or None)."""

    __slots__ = ("at", "dataset", "group", "step", "value")

    def __init__(self, step: int, value: float, at: str, group: str | None = None, dataset: str | None = None) -> None:
        self.step, self.value, self.at, self.group, self.dataset = step, value, at, group, dataset

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "value": self.value, "at": self.at, "group": self.group, "dataset": self.dataset}

    def __repr__(self) -> str:
        return f"MetricPoint(step={self.step}, value={self.value!r})"


_SPARKS = "▁▂▃▄▅▆▇█"


class MetricHistory(Items):
    """`metric_history`'s answer: a list of `MetricPoint`, oldest step first;
    ``.to_dict()`` is ``{"run", "metric", "items": [...]}``."""

    def __init__(self, key: str, run: str, points: Sequence[MetricPoint]) -> None:
        super().__init__(points)
        self.key = key
        self.run = run

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "metric": self.key, "items": [p.to_dict() for p in self]}

    def sparkline(self, width: int = 60) -> str:
        """The values of the overall (not per-group) series as a line of block characters
        (a NaN, recorded as None, is a gap; an infinity the top or bottom block)."""
        values = [p.value for p in self if p.group is None] or [p.value for p in self]
        if len(values) > width:  # keep the shape: sample evenly, last value included
            values = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
        span = (hi - lo) or 1.0
        top = len(_SPARKS) - 1

        def block(v: float | None) -> str:
            if v is None or math.isnan(v):
                return " "
            if math.isinf(v):
                return _SPARKS[top if v > 0 else 0]
            return _SPARKS[min(top, int((v - lo) / span * top + 0.5))]

        return "".join(map(block, values))


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
    except UnicodeDecodeError:
        raise InvalidInputError(f"card {path} is not UTF-8 text: save it as UTF-8") from None
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"card {path} must be a mapping of field keys to text")
    return data


def _card_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    import yaml

    return yaml.safe_dump(value, sort_keys=False).strip()


def init(path: str | os.PathLike[str] | None = None, *, root: str | os.PathLike[str] | None = None) -> tuple[Lineage, bool]:
    """What ``lineage init`` does: open the store at ``path`` (found as `open` finds
    it) or in ``root``'s ``.lineage/`` folder, creating it when there is none.
    Returns ``(the opened Lineage, whether it was created now)``."""
    if root is not None:
        path = os.path.join(root, STORE_DIR, DB_NAME)
    existed = locate(path, create=True).is_file()
    return open(path, create=True), not existed


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

