"""Predictions that live in files: a batch job's output CSV (``lineage run
--predictions``) and a recorded model run on an input CSV (``lineage predict``).

CSV is read with the standard library's csv module, so neither needs pandas.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import internal
from .errors import InvalidInputError, foreign, log
from .model import SCORED_ROLE, Edge, Node
from .store import Store

_INT = re.compile(r"[+-]?\d+")


def cell(text: str) -> Any:
    """A CSV field as the value it spells: an int, a float, None for empty, else the text."""
    s = text.strip()
    if not s:
        return None
    if _INT.fullmatch(s):
        return int(s)
    try:
        return float(s)
    except ValueError:
        return text


@dataclass
class Table:
    """A CSV file read whole: its header and its rows of parsed values."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]


def read_csv(path: str | os.PathLike[str], *, as_text: str | None = None) -> Table:
    """Read a CSV file with a header line; cells that read as numbers become numbers,
    except in the column ``as_text`` (the request ids: ``007`` stays ``007``, not 7).
    Raises InvalidInputError when it is missing, empty, or a row's length differs
    from the header's."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                raise InvalidInputError(f"{path} is empty: a CSV file with a header line is needed")
            table = Table([h.strip() for h in header])
            text_at = table.columns.index(as_text) if as_text in table.columns else -1
            for n, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise InvalidInputError(f"{path}, line {n}: {len(row)} fields, but the header has {len(header)}")
                table.rows.append([v if i == text_at else cell(v) for i, v in enumerate(row)])
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path} is not UTF-8 text (a CSV file is needed)") from None
    except csv.Error as exc:
        raise InvalidInputError(f"{path} is not valid CSV: {exc}") from None
    return table


def _need_column(table: Table, name: str, path: Any, option: str) -> None:
    if name not in table.columns:
        raise InvalidInputError(f"{path} has no column {name!r} ({option}); its columns: {', '.join(table.columns)}")


def output_column_of(table: Table, path: Any, *, id_column: str | None, output_column: str | None) -> str:
    """The column holding the predictions: the one named, else the only column besides
    the id column. Raises InvalidInputError when that is not one column."""
    if id_column is not None:
        _need_column(table, id_column, path, "--id-column")
    if output_column is not None:
        _need_column(table, output_column, path, "--output-column")
        return output_column
    rest = [c for c in table.columns if c != id_column]
    if len(rest) != 1:
        raise InvalidInputError(f"{path} has {len(rest)} columns besides the id column ({', '.join(rest) or 'none'}); "
                                "name the predictions with --output-column")
    return rest[0]


def log_prediction_file(store: Store, model: Node, path: str | os.PathLike[str], *, id_column: str | None = None,
                        output_column: str | None = None, run: str | None = None,
                        inputs_from: Sequence[str | os.PathLike[str]] = ()) -> list[str]:
    """Record every row of a predictions CSV as a prediction of ``model``; returns the ids.

    The output is the output column's value; the request id the id column's; the input
    digest is the digest of the row's other columns as ``{column: value}`` (the id
    alone when there is nothing else). ``inputs_from``: the CSV files the rows were
    scored from, each row's features found there by its request id and kept (as
    ``keep_inputs=True`` keeps them: `explain` gives reasons from them). ``run``: the
    run that wrote the file. Raises InvalidInputError for a bad file, or a request id
    that no file of ``inputs_from`` has.
    """
    from .tracking import log_predictions

    table = read_csv(path, as_text=id_column)
    out_col = output_column_of(table, path, id_column=id_column, output_column=output_column)
    out_i = table.columns.index(out_col)
    outputs = [r[out_i] for r in table.rows]
    ids = None if id_column is None else table.column(id_column)
    if not table.rows:
        return []
    if inputs_from:
        assert id_column is not None and ids is not None  # (run_command checks the options first)
        inputs = _scored_rows(model, [str(i) for i in ids], inputs_from, id_column, path)
    else:
        keep = [i for i, c in enumerate(table.columns) if i != out_i and c != id_column] or \
               [i for i, c in enumerate(table.columns) if c == id_column]
        inputs = [{table.columns[i]: r[i] for i in keep} for r in table.rows]
    return log_predictions(store, model, inputs, outputs, request_ids=ids, run=run, keep_inputs=bool(inputs_from))


def _scored_rows(model: Node, ids: Sequence[str], files: Sequence[str | os.PathLike[str]], id_column: str,
                 predictions: Any) -> list[dict[str, Any]]:
    """The feature values each request id was scored from: its row in the first CSV
    of ``files`` that has it (features: `feature_columns`, by the model's recorded
    feature names when it has them); files that are no CSV are passed over."""
    by_id: dict[str, dict[str, Any]] = {}
    for f in files:
        try:
            table = read_csv(f, as_text=id_column)
        except InvalidInputError:
            continue  # (another kind of input: a config, a lookup file that is no CSV)
        if id_column not in table.columns:
            continue
        features = feature_columns(None, model, table, id_column=id_column)
        idx = [table.columns.index(c) for c in features]
        at = table.columns.index(id_column)
        for r in table.rows:
            by_id.setdefault(str(r[at]), {c: r[i] for c, i in zip(features, idx)})
    lost = [i for i in ids if i not in by_id]
    if lost:
        raise InvalidInputError(f"--keep-inputs: request id {lost[0]!r} of {predictions} is in no input with the "
                                f"column {id_column!r} ({len(lost):,} of {len(ids):,} are not)")
    return [by_id[i] for i in ids]


# ---------------------------------------------------------------------------
# lineage predict: run a recorded model on a file


@dataclass
class PredictResult:
    """What `predict_file` did: the run that recorded it, the prediction ids, the output file."""

    run: Node
    ids: list[str]
    output: Path
    features: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run.to_dict(), "count": len(self.ids), "output": str(self.output),
                "features": self.features, "ids": self.ids}


def model_object(store: Store, model: Node) -> Any:
    """The fitted object of a recorded model, unpickled from its kept artifact (or its
    file when the artifact is missing). Unpickling runs code from the file."""
    from .modelfile import load_model_file

    hex_id = model.id.split(":", 1)[1]
    candidates = [store.artifact_path(hex_id)]
    if model.attrs.get("abspath"):
        candidates.append(Path(model.attrs["abspath"]))
    for p in candidates:
        if p.is_file():
            return load_model_file(p)
    raise InvalidInputError(f"the file of {model.id} is not kept (no artifact under {store.artifacts_dir}); "
                            "record it with `lineage add FILE --model`")


def feature_columns(obj: Any, model: Node, table: Table, *, id_column: str | None) -> list[str]:
    """The model's ``feature_names_in_`` when it has them, else every column but the id
    column, in file order. Raises InvalidInputError when the file lacks a feature."""
    names = getattr(obj, "feature_names_in_", None)
    if names is None:
        names = model.attrs.get("feature_names")
    if names is not None:
        wanted = [str(n) for n in names]
        missing = [n for n in wanted if n not in table.columns]
        if missing:
            raise InvalidInputError(f"the model needs column(s) {', '.join(missing)}, which the input lacks")
        return wanted
    return [c for c in table.columns if c != id_column]


#: the name of the run `predict_file` records (and of the runs whose output it may replace)
PREDICT_RUN = "predict"


def _refuse_recorded_data(store: Store, out: Path) -> None:
    """Refuse to write over a file whose bytes are recorded data that no earlier
    `predict` wrote (``-o data/raw.csv`` by a slip clobbered the training data); the
    predictions of an earlier run may be written over, as a re-run does."""
    if not out.is_file():
        return
    from .hashing import hash_file

    node = store.get_node(f"dataset:{hash_file(out, cache=store.stat_cache).digest}")
    if node is None:
        return
    makers = store.get_nodes(store.generators(node.id))
    if not any(m.kind == "run" and m.name == PREDICT_RUN for m in makers.values()):
        raise InvalidInputError(f"{out} holds recorded data ({node.name or node.id}): write the predictions to "
                                "another file, or move it first")


def predict_file(store: Store, model_ref: Any, input_path: str | os.PathLike[str], output_path: str | os.PathLike[str], *,
                 id_column: str | None = None, output_column: str = "prediction",
                 command: Sequence[str] | None = None, keep_inputs: bool = False) -> PredictResult:
    """Run a recorded model on a CSV file, write its predictions, and record them.

    Records a run (named ``predict``) that used the input file (a dataset, role
    ``input``) and the model, and generated the output file; and every prediction, with
    the id column as its request id, and with ``keep_inputs`` each row's feature values
    (`explain` gives reasons from them). Raises InvalidInputError for a bad file or a
    model that cannot be loaded; nothing is recorded then.
    """
    from .tracking import Run, log_predictions

    model = model_ref if isinstance(model_ref, Node) else store.resolve(str(model_ref))
    if model.kind != "model":
        raise InvalidInputError(f"{model.id} is a {model.kind}, not a model")
    table = read_csv(input_path, as_text=id_column)
    if id_column is not None:
        _need_column(table, id_column, input_path, "--id-column")
    out = Path(output_path)
    if not out.parent.is_dir():
        raise InvalidInputError(f"cannot write {output_path}: no folder {out.parent}")
    if out.exists() and out.resolve() == Path(input_path).resolve():
        raise InvalidInputError(f"{output_path} is the input file: write the predictions to another file")
    _refuse_recorded_data(store, out)
    obj = model_object(store, model)
    features = feature_columns(obj, model, table, id_column=id_column)
    idx = [table.columns.index(f) for f in features]
    rows = [{f: r[i] for f, i in zip(features, idx)} for r in table.rows]
    X: Any = [[r[i] for i in idx] for r in table.rows]
    # a frame for a model fitted on named columns, and for a custom model (MLflow hands
    # a PythonModel a DataFrame: `pyfunc.PythonModelBundle.takes_frame`)
    if getattr(obj, "feature_names_in_", None) is not None or getattr(obj, "takes_frame", False):
        try:
            import pandas as pd

            X = pd.DataFrame(X, columns=features)
        except ImportError:
            pass
    import warnings

    # the model's own error on this input (a bad file) is told in one line
    # (unrecorded: these predictions are recorded below, by lineage, not a second time by autolog)
    with warnings.catch_warnings(), foreign(f"{model.name or model.id} could not predict {input_path}: {{reason}}"), \
            internal.unrecorded():
        warnings.simplefilter("ignore")  # "X does not have valid feature names": we matched them by name
        y = list(obj.predict(X)) if table.rows else []
    scores = None
    if table.rows and hasattr(obj, "predict_proba"):
        try:
            with warnings.catch_warnings(), foreign("{type}: {reason}"), internal.unrecorded():
                warnings.simplefilter("ignore")
                scores = [float(max(p)) for p in obj.predict_proba(X)]
        except InvalidInputError as exc:  # a classifier without probabilities (SVC without probability=True)
            log.debug("predictions without scores: predict_proba failed: %s", exc)
            scores = None
    y = [v.item() if hasattr(v, "item") else v for v in y]
    ids = table.column(id_column) if id_column is not None else None
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(([id_column] if id_column else []) + [output_column])
        for i, v in enumerate(y):
            w.writerow(([ids[i]] if ids is not None else []) + [v])
    run = Run.start(store, PREDICT_RUN, command=list(command) if command else ["lineage", "predict", str(model_ref),
                                                                                   str(input_path), "-o", str(output_path)],
                    entry_point="lineage")
    try:
        run.log_input(str(input_path), role=SCORED_ROLE)
        store.add_edges([Edge(run.id, model.id, "used", "model")], event_type="used")
        pred_ids = log_predictions(store, model, rows, y, request_ids=ids, scores=scores, run=run.id,
                                   keep_inputs=keep_inputs) if y else []
        run.log_output(str(out))
    except BaseException:
        run.end("failed", error="lineage predict was interrupted")
        raise
    run.end("finished", exit_code=0)
    return PredictResult(run.node, pred_ids, out, features)
