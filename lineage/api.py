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
    from .interop.bulk import ImportResult
    from .interop.export import ExportResult
    from .predfiles import PredictResult
    from .predlog import PredictionLogger
    from .query import Subgraph
    from .supervise import CommandResult


class Items(list[Any]):
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
                        scores: Any = None, keep_inputs: bool = False, decision: Mapping[str, Any] | None = None) -> list[str]:
        """Record predictions in bulk (one ledger event); returns their ``prediction:`` ids.
        ``keep_inputs`` keeps each row's values and ``decision`` the rule applied (see
        `tracking.log_predictions`), for decision records."""
        return tracking.log_predictions(self.store, model, inputs, outputs, request_ids=request_ids, scores=scores,
                                        keep_inputs=keep_inputs, decision=decision)

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
        """The latest annotation of each field on a node: ``{field: {text, author, at,
        event, recorded_by, recorded_by_agent}}`` (``author`` as typed, ``recorded_by``
        the identity that recorded it)."""
        return tracking.read_annotations(self.store, self.get(ref).id)

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

        # a full id goes straight to the walk, which reports a missing node itself:
        # resolving it first cost two more queries per trace (issue 16)
        root = ref if isinstance(ref, str) else self.get(ref).id
        return query.trace(self.store, root, depth=depth, kinds=kinds)

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

    # -- metric step history (MLflow's get_metric_history) ----------------------

    def metric_history(self, run: Any, key: str) -> list[Any]:
        """Every value of metric ``key`` a run logged, by step: a list of
        `MetricPoint` (``.step``, ``.value``, ``.at``, ``.group``, ``.dataset``), with
        ``.to_dict()`` and a terminal sparkline (``.sparkline()``).

        Raises NodeNotFoundError for an unknown run or a metric the run never logged
        (the message lists the ones it did), InvalidInputError for a node that is not a run."""
        from .errors import InvalidInputError, NodeNotFoundError
        from .query import runview

        node = self.get(run)
        if node.kind != "run":
            raise InvalidInputError(f"{node.id} is a {node.kind}; metric history belongs to runs")
        rows = runview.metric_history(self.store, node.id, key)
        if not rows:
            known = runview.metric_keys(self.store, node.id)
            hint = f"it logged {', '.join(known)}" if known else "it logged no metrics"
            raise NodeNotFoundError(f"{node.id} metric {key}", hint)
        return MetricHistory(key, node.id, [MetricPoint(**r) for r in rows])

    # -- views and reports -----------------------------------------------------

    def render(self, subgraph: Subgraph, path: str | os.PathLike[str], **options: Any) -> Path:
        """Draw a subgraph to a file; the format comes from the suffix
        (.svg .png .pdf .dot .mmd .html)."""
        from . import render

        return render.render(subgraph, path, **options)

    def audit(self, ref: Any, *, standard: str = "annex-iv") -> Any:
        """The audit report of a model or prediction; ``.write("audit.html")``."""
        from . import audit

        node, selection = self.resolve_for_audit(ref)
        report = audit.build_report(self.store, node.id, standard=standard)
        if selection:
            report.note_selection(selection)
        return report

    def inventory(self, *, all_versions: bool = False) -> Any:
        """Every model with its owner, data, status and report completeness (SR 11-7):
        the newest version of each name, or every version with ``all_versions``."""
        from . import audit

        return audit.build_inventory(self.store, all_versions=all_versions)

    # -- decision records and signed checkpoints (issue 14) ----------------------

    def explain(self, ref: Any) -> dict[str, Any]:
        """Why a prediction came out as it did (``request:ID`` or its id): its inputs, the
        rule applied and ``reasons`` (``{feature, contribution, method}``, largest effect
        first); for a model, its recorded feature importance. Raises InvalidInputError
        for another kind of node."""
        from .audit import decision

        return decision.explain(self.store, self.get(ref).id)

    @staticmethod
    def keygen(path: str | os.PathLike[str]) -> dict[str, str]:
        """Write an Ed25519 key pair (``path`` and ``path.pub``) for signed checkpoints;
        returns ``{private, public, fingerprint}``. See `lineage.signing.keygen`."""
        from . import signing

        return signing.keygen(path)

    def verify_signed(self, keyfile: str | os.PathLike[str], *, since_checkpoint: bool = False,
                      progress: Any = None) -> VerifyReport:
        """`verify`, and when it passes, a checkpoint event whose payload carries an
        Ed25519 signature (key in ``keyfile``) over the head it vouches for. The key is
        read first, so a bad key file writes nothing. Raises InvalidInputError for it."""
        from . import signing

        signing.load_private(keyfile)
        report = self.store.verify(since_checkpoint=since_checkpoint, progress=progress)
        if report.ok:
            sig = signing.sign(keyfile, signing.checkpoint_message(report.events, report.head))
            self.store.write("checkpoint", {"verified_through": report.events, "head": report.head,
                                            "from": report.checked_from, "signature": sig})
        return report

    def checkpoint_signatures(self, *, head: str | None = None) -> list[dict[str, Any]]:
        """Each signed checkpoint (those vouching for ``head``, a hex prefix, when given):
        ``{event, at, verified_through, head, fingerprint, ok, problem}``; ``ok`` is
        whether the signature matches the head it claims."""
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

    def promote(self, ref: Any, label: str, reason: str | None = None, *, author: str | None = None) -> Any:
        """Put a label (``production``, ``staging``, any word) on one model version, ending
        it on the version that held it; a ledger event with who and when. Returns the
        `Promotion` (``.to_dict()``). ``NAME@LABEL`` then names that version.
        Raises InvalidInputError for a non-model or a bad label; nothing is recorded."""
        from . import promotion

        return promotion.promote(self.store, self.get(ref), label, reason=reason, author=author)

    def unpromote(self, name: Any, label: str, *, reason: str | None = None, author: str | None = None) -> Any:
        """Take a label off the version of a model name that holds it; returns the change.
        Raises NodeNotFoundError when no version holds it."""
        from . import promotion

        return promotion.unpromote(self.store, name, label, reason=reason, author=author)

    def promotions(self, name: Any) -> list[Any]:
        """Every label change of a model name, oldest first, with version numbers."""
        if not isinstance(name, str):
            name = self.get(name).name or ""
        return Items(self.model_history(name).promotions)

    def model_history(self, name: str) -> Any:
        """The versions of a model name beside its label changes and predictions
        (`ModelHistory`; ``.to_dict()`` is `lineage history NAME --json`)."""
        from .model import KINDS
        from .query.serving import model_history

        kind, sep, rest = name.partition(":")
        versions = self.history(rest, kind=kind) if sep and kind in KINDS and rest else self.history(name)
        return model_history(self.store, versions)

    def labels(self, name: Any) -> dict[str, Node]:
        """``{label: model version}`` of every label a model name holds now."""
        if not isinstance(name, str):  # a Node or a Run: its name
            name = self.get(name).name or ""
        elif name.startswith("model:"):
            name = name[len("model:"):]
        return {k: self.get(v) for k, v in sorted(self.store.labels_of(name).items())}

    def labels_at(self, prediction: Any) -> list[str]:
        """The labels the prediction's model version held when the prediction was made."""
        from .query.serving import labels_at_prediction

        return labels_at_prediction(self.store, self.get(prediction).id)

    def resolve_for_audit(self, ref: Any) -> tuple[Node, str | None]:
        """The model version `audit` and the inventory mean by ``ref``, and a sentence
        saying how it was chosen: a bare model name is the version labelled
        ``production`` when one is, else the newest (DESIGN.md §1)."""
        from . import promotion
        from .model import parse_ref

        if isinstance(ref, (Node, tracking.Run)):
            return self.get(ref), None
        text = str(ref)
        try:
            r = parse_ref(text)
        except ValueError:
            return self.get(text), None
        bare = r.name is not None and r.version is None and r.label is None and r.prefix is None \
            and r.request is None and r.kind in (None, "model")
        if not bare:
            return self.get(text), None
        node = self.get(text)
        if node.kind != "model" or not node.name:
            return node, None
        versions = self.store.history(node.name, kind="model")
        holder = self.store.label_holder(node.name, promotion.PRODUCTION)
        if holder is not None:
            number = next(i for i, v in enumerate(versions, 1) if v.id == holder)
            return self.get(holder), (f"{node.name} resolved to @{number}, the version labelled "
                                      f"{promotion.PRODUCTION} ({len(versions)} versions recorded)")
        return node, (f"no version of {node.name} is promoted to {promotion.PRODUCTION}; "
                      f"this is the newest, @{len(versions)} of {len(versions)}")

    def describe_model(self, ref: Any) -> dict[str, Any]:
        """The description of a recorded model (steps, params, features, importance):
        as recorded, or, for a scikit-learn model logged before features were
        described, read from its pickle. Raises InvalidInputError (one line) when
        that pickle cannot be loaded."""
        from . import describe

        node = self.get(ref)
        if node.kind != "model":
            from .errors import InvalidInputError

            raise InvalidInputError(f"{node.id} is a {node.kind}, not a model")
        attrs = dict(node.attrs)
        if "features_out" not in attrs and attrs.get("flavor") == "sklearn":
            fresh = describe.describe_model(describe.load_model(self.store.artifacts_dir, node))
            attrs = {**fresh, **{k: v for k, v in attrs.items() if k in ("artifact", "size", "serializer")}}
        return attrs

    def feature_lineage(self, model: Any) -> Any:
        """Each feature of a model -> the source columns of the dataset versions it came
        from (through recorded preparation runs), with importance and sensitivity
        (`FeatureLineage`: ``.items``, ``.inputs``, ``.sensitive``, ``.ok``, ``.to_dict()``)."""
        from .features import feature_lineage

        node = self.get(model)
        if node.kind == "prediction":
            node = self.get(node.attrs["model"])
        return feature_lineage(self.store, node.id, attrs=self.describe_model(node))

    def compute_importance(self, model: Any, data: Any, target: str, *, n_repeats: int = 5) -> dict[str, Any]:
        """Permutation importance of a recorded model on held-out ``data`` (a dataset
        reference, or a DataFrame) with label column ``target``, recorded with its
        method and data; returns ``{"values", "std", "rows", "dataset", "event", …}``.
        What `lineage explain MODEL --data REF --target COL` runs."""
        from . import describe
        from .errors import InvalidInputError

        node = self.get(model)
        if node.kind != "model":
            raise InvalidInputError(f"{node.id} is a {node.kind}, not a model")
        return describe.compute_importance(self.store, node, data, target, n_repeats=n_repeats)

    def mark_sensitive(self, ref: Any, columns: Sequence[str] | str, *, author: str | None = None) -> list[str]:
        """Mark columns of a dataset sensitive (all versions of its name count); returns
        every column now marked. An annotation: a ledger event with who and when."""
        from . import promotion

        return promotion.mark_sensitive(self.store, self.get(ref), columns, author=author)

    def allow_sensitive(self, model: Any, columns: Sequence[str] | str, reason: str, *,
                        author: str | None = None) -> int:
        """Record that a model version may read these sensitive columns, and why (the
        ``sensitive_use`` annotation `check_sensitive` accepts); returns the event."""
        from . import promotion

        return promotion.allow_sensitive(self.store, self.get(model), columns, reason, author=author)

    def check_sensitive(self, model: Any) -> Any:
        """`feature_lineage` of a model, whose ``.ok`` is False when a sensitive column
        reaches its inputs without a ``sensitive_use`` allowance (``.violations``)."""
        return self.feature_lineage(model)
    # -- interop: import other tools' history, export the graph (lineage/interop) --

    def import_mlflow(self, tracking_uri: str, *, experiments: Sequence[str] = (),
                      registry_uri: str | None = None) -> ImportResult:
        """Import an MLflow tracking store (runs, params, metric histories, tags, datasets,
        logged and registered models); returns an ImportResult (``.counts``,
        ``.activity``). Idempotent. Raises MissingExtraError without mlflow,
        InvalidInputError when the store cannot be read (nothing is written then)."""
        from .interop.mlflow_import import import_mlflow

        return import_mlflow(self.store, tracking_uri, experiments=experiments, registry_uri=registry_uri)

    def import_dvc(self, repo: str | os.PathLike[str] = ".", *, all_commits: bool = False) -> ImportResult:
        """Import a DVC repository's stages and data versions (those of every commit
        with ``all_commits``); returns an ImportResult. Idempotent."""
        from .interop.dvc import import_dvc

        return import_dvc(self.store, repo, all_commits=all_commits)

    def import_openlineage(self, source: Any) -> ImportResult:
        """Import OpenLineage RunEvents from a JSON-lines file (``"-"``: stdin); returns
        an ImportResult. Idempotent; a bad line raises InvalidInputError naming it."""
        from .interop.openlineage import import_openlineage

        return import_openlineage(self.store, source)

    def import_prov(self, path: str | os.PathLike[str]) -> ImportResult:
        """Rebuild the graph a PROV-JSON or PROV-XML document describes; returns an ImportResult."""
        from .interop.prov import import_prov

        return import_prov(self.store, path)

    def export(self, format: str, ref: Any = None, path: str | os.PathLike[str] | None = None, *,
               url: str | None = None, namespace: str = "lineage") -> ExportResult:
        """Export the store (or the trace of ``ref``) as ``openlineage``, ``prov-json``,
        ``prov-n``, ``prov-xml``, ``graphml`` or ``json`` to ``path``; OpenLineage events
        can also be POSTed to ``url``. Returns an ExportResult (``.count``, ``.path``)."""
        from .interop.export import export

        node_ref = None if ref is None else self.get(ref).id
        return export(self.store, format, node_ref, path, url=url, namespace=namespace)

    # -- full-text search (issue 10: lineage/store/fulltext.py, lineage/query/search.py) --

    def search(self, text: str, *, kind: str | None = None, limit: int | None = 20) -> Any:
        """Nodes whose name, alias, annotations, params or tags match ``text``, best
        first: a list of SearchHit (``.node``, ``.score``, ``.matches``) with
        ``.to_dict()``. Words are ANDed and prefix-matched, ``"a phrase"`` is exact,
        ``OR`` takes either side, ``-word`` excludes. Raises InvalidInputError for an
        empty or wordless query."""
        from .query.search import search_text

        return search_text(self.store, text, kind=kind, limit=limit)

    # -- publishing a store's history (issue 10: lineage/store/publish.py) --------

    def push(self, to: str | os.PathLike[str]) -> Any:
        """Copy this store's history that ``to`` lacks into it (a store path, or a
        ``postgresql://`` URL once that backend is there; created when missing), with
        one ``push`` event linking the copies to this store's head. Idempotent; all or
        nothing. Returns a PushResult (``.events``, ``.head``, ``.push_event``, …).
        Raises IntegrityError when this store fails verification, WriteRefusedError
        when ``to`` is this store or holds a history this one no longer extends."""
        from .store.publish import push

        target = open(to, create=True)
        try:
            return push(self.store, target.store, source_location=str(self.store.path), target_location=str(to))
        finally:
            target.close()

    def pull(self, from_: str | os.PathLike[str]) -> Any:
        """Copy the history of the store at ``from_`` that this one lacks into this
        one: `push` the other way. Raises NoStoreError when there is no store there."""
        from .store.publish import push

        source = open(from_, create=False)
        try:
            return push(source.store, self.store, source_location=str(from_), target_location=str(self.store.path))
        finally:
            source.close()


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
        """The values of the overall (not per-group) series as a line of block characters."""
        values = [p.value for p in self if p.group is None] or [p.value for p in self]
        if len(values) > width:  # keep the shape: sample evenly, last value included
            values = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]
        lo, hi = min(values), max(values)
        span = (hi - lo) or 1.0
        return "".join(_SPARKS[min(len(_SPARKS) - 1, int((v - lo) / span * (len(_SPARKS) - 1) + 0.5))] for v in values)


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

