"""The `lineage` command line: parse arguments, call the facade, print with rich.

No logic lives here that the Python API lacks. Every read command takes ``--json`` and
prints one JSON document (DESIGN.md §5). Errors the user can cause become one line on
stderr and an exit code: 1 for a failed check or a bad reference, 2 for bad usage.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, cast

import click

from ._version import __version__
from .errors import FilterSyntaxError, LineageError
from .model import KINDS, LISTING_ORDER, REPORT_SUFFIXES, json_document, json_line

# ---------------------------------------------------------------------------
# plumbing


def one_line(message: str) -> str:
    """``message`` with what is not printable written as escapes (``\\n``, ``\\x1b``,
    ``\\u202e``): in an error it came from the user's data (a path or name with a
    newline, a terminal escape, a direction override) and would break the one line,
    drive the terminal or reorder what is shown. The same rule as the labels'
    `clean_line`, which drops such characters; an error keeps them, escaped, so the
    name it quotes is the name to look for."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in message)


class LineageGroup(click.Group):
    """A click group that turns our errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FilterSyntaxError as exc:
            raise click.UsageError(one_line(str(exc)), ctx) from None
        except click.ClickException as exc:  # (a command's own, a bad argument's)
            exc.message = one_line(exc.message)  # type: ignore[misc]  # (typed Final; read when shown)
            raise
        except LineageError as exc:
            err = click.ClickException(one_line(str(exc)))
            err.exit_code = exc.exit_code  # type: ignore[misc]  # click reads it per instance
            raise err from None
        except UnicodeEncodeError as exc:
            if "surrogates" not in str(exc.reason):
                raise
            # a byte of the command line that is not UTF-8 (a Latin-1 terminal's "café")
            # reached a search or filter as Python's escape for it
            bad = exc.object[exc.start:exc.end].encode("utf-8", "surrogateescape")
            raise click.UsageError(f"an argument holds a byte that is not UTF-8 ({bad!r}); "
                                   "set your terminal to UTF-8 or leave the character out", ctx) from None
        except BrokenPipeError:  # `lineage ls | head`
            sys.stderr.close()
            raise SystemExit(0) from None
        except sqlite3.DatabaseError as exc:
            # damage SQLite finds only when it reads the page (opening succeeded), or a
            # write lock held by another process past the busy timeout
            raise click.ClickException(one_line(f"the lineage store failed: {exc} (see `lineage verify`)")) from None
        except OSError as exc:  # e.g. no permission to create .lineage/ here
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(one_line(f"{exc.strerror or exc}{where}")) from None


class State:
    """What the group option hands down: where the store is, opened on demand."""

    def __init__(self, db: str | None) -> None:
        self.db = db
        self._lg: Any = None

    def lineage(self, *, create: bool = False) -> Any:
        if self._lg is None:
            from .api import open as open_lineage

            self._lg = open_lineage(self.db, create=create)
        return self._lg

    def close(self) -> None:
        if self._lg is not None:
            self._lg.close()
            self._lg = None

    @contextlib.contextmanager
    def importing(self) -> Iterator[Any]:
        """The store for an import, created when missing; when the import fails, or
        finds nothing to import, a store it created is removed again (it writes
        nothing, not even an empty store)."""
        lg = self.lineage(create=True)
        try:
            yield lg
        except BaseException:
            self._lg = None
            lg.close(discard_if_new=True)
            raise
        if lg.store.head()[0] == 0:  # (discard_if_new keeps a store it did not create)
            self._lg = None
            lg.close(discard_if_new=True)


pass_state = click.make_pass_decorator(State)

#: a report that replays at least this many events from event 1 says how to avoid it
CHECKPOINT_HINT_EVENTS = 10_000


def checkpoint_hint(chain: dict[str, Any]) -> None:
    """On stderr, when a report's chain check (its JSON ``chain``) replayed a long
    ledger from event 1: how to make the next one check only what came after. The
    replay is most of such a report's time (6 s at 1M predictions, against 0.6 s
    after a checkpoint), and the written report was the only place that said why."""
    if chain.get("verified_from") == 0 and (chain.get("events") or 0) >= CHECKPOINT_HINT_EVENTS:
        click.echo(f"note: this report replayed all {chain['events']:,} ledger events, as no checkpoint could be "
                   "used; record one with `lineage verify --record` (e.g. nightly) and reports replay only what "
                   "came after it", err=True)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")(f)


#: a --json document whose lists hold more items than this is written one item a line,
#: each by json's C encoder: indenting every field of 300,000 predictions was most of
#: `impact --predictions --json`'s 19 s, and the whole text was held in memory at once
BIG_JSON_ITEMS = 10_000


def output_suffix(kind: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """An ``-o`` option's check: a file suffix that names no format this command
    writes is bad usage (exit 2), said before any work. ``kind``: ``diagram`` or
    ``report``."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return value
        if kind == "diagram":
            from .render import FORMATS

            known, shown, hint = set(FORMATS), [s for s in FORMATS if s not in (".gv", ".htm")], ""
        else:
            known, shown = set(REPORT_SUFFIXES), [".html", ".md", ".json"]
            hint = " (for PDF, open the .html in a browser and print it)"
        name = os.path.basename(value)
        if os.path.splitext(name)[1].lower() not in known:
            raise click.BadParameter(f"{name!r}: the suffix picks the format; use one of {' '.join(shown)}{hint}")
        return value

    return check


def emit_json(doc: Any) -> None:
    if isinstance(doc, dict) and sum(len(v) for v in doc.values() if isinstance(v, list)) > BIG_JSON_ITEMS:
        _emit_json_by_item(doc)
    else:
        click.echo(json_document(doc))


def _emit_json_by_item(doc: dict[str, Any]) -> None:
    """``doc`` as JSON, its top-level lists one item a line, written as it goes."""
    out = sys.stdout
    out.write("{")
    for i, (key, value) in enumerate(doc.items()):
        out.write(f"{',' if i else ''}\n  {json_line(key)}: ")
        if isinstance(value, list) and value:
            out.write("[")
            for j, item in enumerate(value):
                out.write(f"{',' if j else ''}\n    {json_line(item)}")
            out.write("\n  ]")
        else:
            out.write(json_line(value))
    out.write("\n}\n")
    out.flush()


#: the width of tables written to a pipe or a file: whole lines, so `lineage ls | grep x`
#: finds what a terminal would have shown cut or wrapped ($COLUMNS still wins when set)
PIPE_WIDTH = 10_000


class _TrimmedLines:
    """A text stream that drops the spaces at the end of each line it passes on to
    ``out``. Rich pads every row of a table to the table's width, which for a
    pipe (`PIPE_WIDTH`) can be hundreds of columns of trailing blanks."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.partial = ""  # a line not yet ended: its end may still gain blanks

    def write(self, text: str) -> int:
        *lines, self.partial = (self.partial + text).split("\n")
        if lines:
            self.out.write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self.partial:
            self.out.write(self.partial.rstrip(" "))
            self.partial = ""
        self.out.flush()

    def isatty(self) -> bool:
        return False


def console() -> Any:
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(highlight=False, soft_wrap=False)
    # ($COLUMNS, when set, is the width rich takes)
    width = None if os.environ.get("COLUMNS") else PIPE_WIDTH
    trimmed = cast("IO[str]", _TrimmedLines(sys.stdout))  # (rich writes, flushes and asks isatty: all it has)
    return Console(highlight=False, soft_wrap=False, width=width, file=trimmed)


# ---------------------------------------------------------------------------
# the group


@click.group(cls=LineageGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", type=click.Path(dir_okay=True), envvar="LINEAGE_DB", help="Store to use: a file, or a postgresql://USER@HOST/DB URL (default: the nearest .lineage/lineage.db).")
@click.version_option(__version__, "--version", prog_name="lineage")
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """Provenance and audit for machine learning.

    Every dataset version, code version, run, model and prediction is a node in one
    tamper-evident provenance graph kept in .lineage/lineage.db.

    \b
    Example:
      lineage init
      lineage add data/train.csv --name train
      lineage run -i data/train.csv -o model.pkl -- python train.py
      lineage trace model.pkl
    """
    ctx.obj = State(db)
    ctx.call_on_close(ctx.obj.close)  # in-process callers (CliRunner, scripts) leak no connections


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="lineage")


# ---------------------------------------------------------------------------
# init, add


@cli.command()
@click.argument("path", required=False, type=click.Path(file_okay=False))
@pass_state
def init(state: State, path: str | None) -> None:
    """Create a lineage store (at the git root, or here, unless PATH is given).

    \b
    Example:
      lineage init
      lineage --db /data/team/lineage.db init
    """
    from .api import init as init_lineage

    lg, created = init_lineage(None if path else state.db, root=path or None)
    verb = "Initialized" if created else "Found existing"
    click.echo(f"{verb} lineage store at {lg.db_path}")


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--name", help="Name for the dataset (one path only); default: its path in the project.")
@click.option("--uri", is_flag=True, help="Treat PATHS as remote URIs; needs --digest.")
@click.option("--digest", help="Checksum of remote data: md5:<hex>, sha256:<hex>, crc32c:<b64>, etag:<v>, or 64 hex (SHA-256).")
@click.option("--model", "as_model", is_flag=True, help="The files are models (pickle or joblib), not datasets.")
@click.option("--no-load", is_flag=True, help="With --model: do not unpickle it to describe it (unpickling runs its code).")
@json_option
@pass_state
def add(state: State, paths: tuple[str, ...], name: str | None, uri: bool, digest: str | None, as_model: bool,
        no_load: bool, as_json: bool) -> None:
    """Record dataset versions by content hash (what `dvc add` does), or model files.

    Adding unchanged data again records nothing; changed data becomes a new version.
    With --model, a pickled or joblib model made elsewhere is recorded as a model,
    described (class, parameters, features, importance) by loading it, which runs
    code from the file: add --no-load for a file you do not trust.

    \b
    Example:
      lineage add data/train.csv --name train
      lineage add data/images/
      lineage add model.pkl --model
      lineage add --uri s3://bucket/train.parquet --digest md5:9b2c4f0e5d6a7b8c9d0e1f2a3b4c5d6e
    """
    if no_load and not as_model:
        raise click.UsageError("--no-load goes with --model")
    if as_model and uri:
        raise click.UsageError("--model records local files; --uri is for remote data")
    if name and len(paths) > 1:
        raise click.UsageError("--name goes with a single path")
    if uri and len(paths) > 1:
        raise click.UsageError("--uri takes one URI at a time (each has its own --digest)")
    if not uri:
        # all or nothing: check every path before recording any
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise click.ClickException(f"no such file or directory: {missing[0]}{more}")
    if uri and digest is not None:
        from .api import Lineage

        Lineage.check_digest(digest)  # before a store is created for it
    lg = state.lineage(create=True)
    if not uri:
        # Every file hashed first, outside any transaction: a big one takes seconds,
        # and no writer must wait on the lock for it (the stat cache keeps the digests
        # for the writes below). A file that cannot be read stops here, before any write.
        for p in paths:
            _hash_for_add(lg, p, show=not as_json and sys.stderr.isatty())
    nodes = []
    with lg.batch():  # all the paths are recorded, or none (a file that is no model)
        for p in paths:
            if as_model:
                nodes.append(lg.log_model_file(p, name=name, load=not no_load))
            elif uri:
                nodes.append(lg.log_dataset(name=name, uri=p, digest=digest))
            else:
                nodes.append(lg.log_dataset(p, name=name))
    if as_json:
        emit_json({"items": [n.to_dict() for n in nodes]})
        return
    for n in nodes:
        click.echo(f"{n.id}  {_shown(n.name or '')}")  # (a name never drives the terminal)


def _hash_for_add(lg: Any, path: str, *, show: bool) -> None:
    """Hash ``path`` into the store's stat cache, with a progress bar for a big one."""
    if not (show and (os.path.isdir(path) or os.path.getsize(path) > 64 * 2**20)):
        lg.digest(path)
        return
    from rich.progress import Progress

    with Progress(transient=True, console=console().__class__(stderr=True)) as bar:
        task = bar.add_task(f"hashing {os.path.basename(os.path.normpath(path))}", total=None)
        lg.digest(path, progress=lambda done, total: bar.update(task, completed=done, total=total))


def _shown(name: str) -> str:
    """A user's name as echoed on a terminal: control characters dropped (`clean_line`)."""
    from .render.labels import clean_line

    return clean_line(name, None)


# ---------------------------------------------------------------------------
# run


def _parse_params(pairs: Sequence[str], option: str = "-p") -> dict[str, str]:
    """``key=value`` pairs of a repeated option (``option``: how the error names it)."""
    params = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{p!r} is not key=value", param_hint=option)
        params[key] = value
    return params


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-i", "--input", "inputs", multiple=True, help="A file or folder the command reads (repeatable).")
@click.option("-o", "--output", "outputs", multiple=True, help="A file or folder the command writes (repeatable).")
@click.option("-m", "--model", "models", multiple=True, help="A model file the command writes (repeatable).")
@click.option("--predictions", metavar="FILE", help="A CSV file the command writes with one prediction per row.")
@click.option("--id-column", metavar="C", help="With --predictions: the column of request ids.")
@click.option("--output-column", metavar="Y", help="With --predictions: the column of outputs (default: the only other one).")
@click.option("--of", "of", metavar="MODEL", help="With --predictions: whose predictions (default: the model input).")
@click.option("--keep-inputs", is_flag=True,
              help="With --predictions and --id-column: keep each row's features, found by id in the -i CSV files.")
@click.option("--no-detect", is_flag=True, help="Record outputs as datasets, even pickled models (unless --model).")
@click.option("--no-load", is_flag=True, help="Never unpickle a model file to describe it (unpickling runs its code).")
@click.option("-p", "--param", "params", multiple=True, help="A parameter as key=value (repeatable).")
@click.option("-n", "--name", help="Run name (default: the script it runs, else the program).")
@click.option("-e", "--experiment", help="Experiment the run belongs to.")
@click.option("-t", "--tag", "tags", multiple=True, help="A tag as key=value (repeatable).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_state
def run(state: State, inputs: tuple[str, ...], outputs: tuple[str, ...], models: tuple[str, ...],
        predictions: str | None, id_column: str | None, output_column: str | None, of: str | None, keep_inputs: bool,
        no_detect: bool, no_load: bool, params: tuple[str, ...], name: str | None, experiment: str | None, tags: tuple[str, ...],
        command: tuple[str, ...]) -> None:
    """Run any command and record its inputs, outputs, code, environment and exit code.

    Exits with the command's own exit code (1 when it exited 0 but did not write a
    declared output). A pickled or joblib scikit-learn model among -o outputs is
    recorded as a model (--no-detect: as a dataset); an input whose bytes are a
    recorded model is that model. Describing a model file unpickles it, which runs
    code from the file: only files named here are loaded, and --no-load refuses it.
    SIGINT, SIGTERM and SIGHUP are passed on to the command.

    \b
    Example:
      lineage run -i data/raw.csv -o data/clean.csv -p dropna=true -- python prep.py
      lineage run -i data/clean.csv --model model.pkl -- python train.py
      lineage run -i model.pkl -i new.csv --predictions preds.csv --id-column id -- python predict.py
      lineage run -i data/clean.csv -o model.rds -- Rscript fit.R
    """
    cmd = list(command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise click.UsageError("give the command after --, e.g. lineage run -- python train.py")
    parsed_params, parsed_tags = _parse_params(params), _parse_params(tags, "-t")
    if predictions is None and (id_column or output_column or of or keep_inputs):
        raise click.UsageError("--id-column, --output-column, --of and --keep-inputs go with --predictions FILE")
    lg = state.lineage(create=True)
    # (without --name, the run is named after the script it runs: train.py, not python)
    result = lg.run_command(cmd, inputs=inputs, outputs=outputs, models=models, params=parsed_params, tags=parsed_tags,
                            name=name, experiment=experiment, predictions=predictions, id_column=id_column,
                            output_column=output_column, of=of, detect=not no_detect, load=not no_load,
                            keep_inputs=keep_inputs)
    if result.exit_code in (126, 127) and result.duration == 0.0 and result.error and result.error.startswith("could not start"):
        click.echo(f"Error: {result.error}", err=True)
    else:
        click.echo(f"lineage: {result.summary()}", err=True)
    raise SystemExit(result.exit_code)


# ---------------------------------------------------------------------------
# predict: a recorded model on a file


@cli.command()
@click.argument("model")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The CSV file to write the predictions to.")
@click.option("--id-column", metavar="C", help="The input column of request ids (kept in the output; searchable as request:ID).")
@click.option("--keep-inputs", is_flag=True,
              help="Also keep each row's feature values, so `lineage explain` can say why a prediction was made.")
@json_option
@pass_state
def predict(state: State, model: str, input_path: str, output: str, id_column: str | None, keep_inputs: bool,
            as_json: bool) -> None:
    """Run a recorded scikit-learn model on a CSV file and record every prediction.

    The features are the model's feature names when it has them, else every column
    but the id column, in file order. The input file is recorded as a dataset, the
    output file too; each prediction's request id is its row's id column. Loading the
    model unpickles its kept file, which runs code from it: predict with models you
    recorded yourself.

    \b
    Example:
      lineage predict model.pkl data/new.csv -o preds.csv --id-column request_id
      lineage predict random_forest@2 batch.csv -o out.csv --keep-inputs --json
    """
    if not os.path.isfile(input_path):
        raise click.ClickException(f"no such file: {input_path}")
    lg = state.lineage()
    result = lg.predict(model, input_path, output, id_column=id_column,
                        command=["lineage", "predict", model, input_path, "-o", output]
                        + (["--id-column", id_column] if id_column else []) + (["--keep-inputs"] if keep_inputs else []),
                        keep_inputs=keep_inputs)
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(f"wrote {len(result.ids):,} predictions to {result.output} (recorded by {result.run.id})")


# ---------------------------------------------------------------------------
# ls, show, history


#: rows a listing's table shows when no --limit is given (its --json lists all, but
#: for predictions): a table of 10,000 rows takes seconds to draw and no one reads it
TABLE_LIMIT = 100


def _left_out(shown: int, total: int, *, json_all: bool = True) -> None:
    """The footer of a cut table: how many rows it left out and how to see them."""
    if total > shown:
        more = total - shown
        click.echo(f"… {more:,} more not shown ({shown:,} of {total:,}): use --limit N"
                   + (", or --json for all" if json_all else ""))


@cli.command(name="ls")
@click.option("--kind", type=click.Choice(list(KINDS)), help="Only nodes of this kind.")
@click.option("--name", help="Only nodes with this name.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help=f"At most this many (newest first). The table shows {TABLE_LIMIT} by default, and says "
                   f"how many more there are; --json lists all, but predictions ({TABLE_LIMIT}: there may be millions).")
@json_option
@pass_state
def ls_(state: State, kind: str | None, name: str | None, limit: int | None, as_json: bool) -> None:
    """List recorded nodes, newest first.

    Without --kind, predictions are not listed (there may be millions): the table
    says how many there are; `--kind prediction` lists them.

    \b
    Example:
      lineage ls --kind model
      lineage ls --kind dataset --json
    """
    lg = state.lineage()
    if limit is None and kind == "prediction":
        limit = TABLE_LIMIT
    shown = TABLE_LIMIT if limit is None else limit  # the table's rows
    # (the table: one row past them says whether anything was cut, without a count every time)
    nodes = lg.nodes(kind=kind, name=name, limit=limit if as_json else shown + 1)
    if as_json:
        emit_json({"items": [n.to_dict() for n in nodes]})
        return
    from .render.tables import nodes_table

    console().print(nodes_table(nodes[:shown]))
    if len(nodes) > shown:
        _left_out(shown, lg.count_nodes(kind=kind, name=name), json_all=kind != "prediction")
    if kind is None and name is None:
        predictions = lg.count_nodes(kind="prediction")
        if predictions:
            click.echo(f"({predictions:,} predictions not listed: lineage ls --kind prediction)")


@cli.command()
@click.argument("ref")
@click.option("--metric", "metric", metavar="KEY", default=None, help="Show this metric's step history (REF a run).")
@json_option
@pass_state
def show(state: State, ref: str, as_json: bool, metric: str | None = None) -> None:
    """Show one node with all its attributes.

    REF is an id, a unique prefix, a name, kind:name, name@N, request:ID or
    mlflow:RUN_ID. With --metric KEY (REF a run), show that metric's step history:
    a table and a sparkline.

    \b
    Example:
      lineage show random_forest
      lineage show dataset:3f2a --json
      lineage show mlflow:4f1c2d --metric rmse
    """
    lg = state.lineage()
    if metric is not None:
        _show_metric_history(lg, ref, metric, as_json)
        return
    node = lg.describe(ref)  # with derived facts: a model's prediction count and times
    extra = _serving_attrs(lg, node, ref)  # labels now (a model) or when made (a prediction)
    if extra:
        from .model import Node

        node = Node(node.id, node.kind, node.name, {**node.attrs, **extra}, node.created_at)
    if as_json:
        emit_json(node.to_dict())
        return
    from .render.tables import node_facts_table

    console().print(node_facts_table(node))


# -- show --metric: a run's step history (MLflow's metric history) ---------------

def _show_metric_history(lg: Any, ref: str, key: str, as_json: bool) -> None:
    points = lg.metric_history(ref, key)
    if as_json:
        emit_json(points.to_dict())
        return
    from .render.tables import metric_history_view

    console().print(metric_history_view(points))


@cli.command()
@click.argument("name")
@json_option
@pass_state
def history(state: State, name: str, as_json: bool) -> None:
    """List every version recorded under NAME, oldest first.

    \b
    Example:
      lineage history train
      lineage history data/train.csv --json
    """
    lg = state.lineage()
    versions = lg.history(name)  # (or `dataset:train`, when a name is used by two kinds)
    if not versions:  # an unknown name is an unknown reference: exit 1, JSON or not
        raise click.ClickException(f"no versions recorded under {name!r} (see `lineage ls`)")
    if versions[0].kind == "model":  # versions beside the promotions of their labels
        _model_history(lg, name, as_json)
        return
    if as_json:
        emit_json({"items": [n.to_dict() for n in versions]})
        return
    number = {n.id: i + 1 for i, n in enumerate(versions)}

    def version(n: Any) -> str:
        return f"@{number[n.id]}"

    from .render.tables import nodes_table

    console().print(nodes_table(versions, title=f"history of {name}", extra=[("version", version)]))


# ---------------------------------------------------------------------------
# dag


@cli.command()
@click.argument("ref", required=False)
@click.option("--upstream/--downstream", default=True,
              help="Draw what REF depends on (default), or what depends on it.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), callback=output_suffix("diagram"),
              help="Write the diagram to FILE; the suffix picks the format: .svg .png .pdf .dot .mmd .html.")
@click.option("--max-nodes", type=click.IntRange(min=1), default=100, show_default=True,
              help="Draw at most N nodes, nearest REF first; the rest are folded with a note.")
@click.option("--highlight", "highlights", multiple=True, metavar="REF",
              help="Draw the path from REF to this node in bold (repeatable).")
@click.option("--all", "show_all", is_flag=True,
              help="Draw every node: no folding of look-alike siblings, and no --max-nodes limit unless one is given.")
@click.option("--top-down", is_flag=True, help="Lay the diagram out top to bottom instead of left to right.")
@click.option("--check", is_flag=True, help="Mark tampered nodes and stale ones (data changed on disk).")
@json_option
@pass_state
def dag(state: State, ref: str | None, upstream: bool, output: str | None, max_nodes: int,
        highlights: tuple[str, ...], show_all: bool, top_down: bool, check: bool, as_json: bool) -> None:
    """Draw the lineage of REF as a diagram, or of the whole store without REF.

    Without -o, prints a tree in the terminal. With -o, writes a file: SVG, PNG and PDF
    need Graphviz's `dot`; .dot, .mmd (Mermaid, renders on GitHub) and .html (one
    self-contained page) do not. Nodes of one kind with the same neighbours are folded
    into one ("10,000 predictions") unless --all. Without REF: one node per kind and
    name, counted, drawn from aggregate queries.

    \b
    Example:
      lineage dag random_forest
      lineage dag request:req-0042 -o lineage.svg --highlight train
      lineage dag train --downstream -o impact.mmd
      lineage dag -o overview.html
    """
    from . import render

    lg = state.lineage()
    # (--all lifts the default limit; a --max-nodes given with it still holds)
    given = click.get_current_context().get_parameter_source("max_nodes") == click.core.ParameterSource.COMMANDLINE
    options: dict[str, Any] = {"fold": not show_all, "max_nodes": None if show_all and not given else max_nodes}
    if ref is None:
        if highlights:
            raise click.UsageError("--highlight needs REF (the overview shows groups, not nodes)")
        sub = lg.overview()
    else:
        node = lg.get(ref)
        targets = [lg.get(h) for h in highlights]
        options["highlight"] = [h.id for h in targets]
        if upstream:
            sub = lg.trace(node)
        else:
            # list predictions when asked for everything or when one is highlighted;
            # otherwise the query counts them, which is all a diagram can show anyway
            listed = show_all or any(h.kind == "prediction" for h in targets)
            sub = lg.impact(node, include_predictions=listed)
    if check:
        options["marked"] = render.find_marks(lg, sub)
    if as_json:
        emit_json(render.fold(sub, fold=options["fold"], max_nodes=options["max_nodes"],
                              keep=options.get("highlight", []), marked=options.get("marked")).to_dict())
        return
    if output:
        folder = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(folder):  # a typo in a folder name must not grow a tree of folders
            raise click.ClickException(f"cannot write {output}: there is no folder {folder} (create it first)")
        path = lg.render(sub, output, rankdir="TB" if top_down else "LR", **options)
        click.echo(f"wrote {path}")
        return
    console().print(render.to_tree(sub, **options))


# ---------------------------------------------------------------------------
# questions: trace, impact, which-data, diff, blame, runs, insights, status

_KIND_NAMES = list(KINDS)


def _count_line(counts: dict[str, int], *, skip: str | None = None) -> str:
    order = LISTING_ORDER
    parts = []
    for kind in sorted(counts, key=lambda k: order.index(k) if k in order else len(order)):
        n = counts[kind] - (1 if kind == skip else 0)
        if n > 0:
            word = "code version" if kind == "code" else kind
            parts.append(f"{n:,} {word}{'' if n == 1 else 's'}")
    return ", ".join(parts) or "nothing"


class _VariadicCommand(click.Command):
    """A command whose ``variadic`` options take several values after one flag:
    ``--bad p1 p2 p3 --good p4`` reads as ``--bad p1 --bad p2 --bad p3 --good p4``."""

    variadic: tuple[str, ...] = ()

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        current: str | None = None
        waiting = False  # the flag itself has not had its first value yet
        for i, a in enumerate(args):
            if a == "--":
                out.extend(args[i:])
                break
            if a.startswith("-") and a != "-":
                current, waiting = (a, True) if a in self.variadic else (None, False)
                out.append(a)
            elif current is not None and not waiting:
                out += [current, a]
            else:
                out.append(a)
                waiting = False
        return super().parse_args(ctx, out)


class _BlameCommand(_VariadicCommand):
    variadic = ("--bad", "--good")


def _read_refs(values: Sequence[str]) -> list[str]:
    """References as given; ``@FILE`` stands for the references in FILE, one a line."""
    refs: list[str] = []
    for v in values:
        if v.startswith("@") and len(v) > 1:
            try:
                with open(v[1:], encoding="utf-8") as f:
                    refs += [line.strip() for line in f if line.strip() and not line.startswith("#")]
            except OSError as exc:
                raise click.ClickException(f"cannot read {v[1:]}: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise click.ClickException(f"{v[1:]} is not UTF-8 text: it should hold one reference a line") from None
        else:
            refs += [r for r in v.split(",") if r.strip()] if "," in v else [v]
    return refs


@cli.command()
@click.argument("ref")
@click.option("--depth", type=click.IntRange(min=0), help="Go at most N hops up.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(_KIND_NAMES),
              help="Show only nodes of this kind (repeatable); paths through the others become indirect edges.")
@click.option("--max-nodes", type=click.IntRange(min=1), default=100, show_default=True,
              help="Show at most N nodes in the tree, nearest REF first (--json always has all).")
@json_option
@pass_state
def trace(state: State, ref: str, depth: int | None, kinds: tuple[str, ...], max_nodes: int, as_json: bool) -> None:
    """Show where REF came from: everything upstream of it, back to the roots.

    For a prediction: its model, the run that trained it, that run's data, code,
    environment and agent, the runs that produced that data, and so on. Version
    history (older versions of a dataset) is not provenance and is not shown.

    \b
    Example:
      lineage trace request:req-0042
      lineage trace random_forest --depth 2
      lineage trace random_forest --kind dataset --kind code --json
    """
    from . import render
    from .model import short_id

    lg = state.lineage()
    sub = lg.trace(ref, depth=depth, kinds=list(kinds) or None)
    if as_json:
        emit_json(sub.to_dict())
        return
    out = console()
    out.print(render.to_tree(sub, max_nodes=max_nodes))
    out.print(f"[dim]upstream of {short_id(sub.root)}: {_count_line(sub.counts, skip=sub.root.split(':', 1)[0])}[/]")


@cli.command()
@click.argument("ref")
@click.option("--predictions", "--include-predictions", "include_predictions", is_flag=True,
              help="List the predictions instead of counting them per model (the tree, at most --max-nodes a "
                   "model; --json, every one).")
@click.option("--depth", type=click.IntRange(min=0), help="Go at most N hops down.")
@click.option("--max-nodes", type=click.IntRange(min=1), default=100, show_default=True,
              help="Show at most N nodes in the tree, nearest REF first (--json always has all).")
@json_option
@pass_state
def impact(state: State, ref: str, include_predictions: bool, depth: int | None, max_nodes: int, as_json: bool) -> None:
    """Show everything downstream of REF: what is affected if it was wrong.

    For a dataset: the datasets derived from it, the runs that read any of them, the
    models they trained and those models' predictions (counted per model unless
    --predictions).

    \b
    Example:
      lineage impact train
      lineage impact dataset:3f2a9c --json
      lineage impact random_forest --predictions --json
    """
    from . import render
    from .model import short_id

    lg = state.lineage()
    # (the tree shows at most --max-nodes nodes: listing more predictions than that is
    # work nobody sees; --json lists them all)
    sub = lg.impact(ref, include_predictions=include_predictions, depth=depth,
                    max_predictions=None if as_json else max_nodes)
    if as_json:
        emit_json(sub.to_dict())
        return
    out = console()
    out.print(render.to_tree(sub, max_nodes=max_nodes))
    out.print(f"[bold]affected[/] downstream of {short_id(sub.root)}: "
              f"{_count_line(sub.counts, skip=sub.root.split(':', 1)[0])}")


@cli.command(name="which-data")
@click.argument("ref")
@json_option
@pass_state
def which_data(state: State, ref: str, as_json: bool) -> None:
    """List the datasets that produced a model, with their role and distance.

    Roles: training and evaluation (what the producing run used), scored (the
    batch `lineage predict` scored, for a prediction), upstream (the sources further
    back). The farthest sources come first.

    \b
    Example:
      lineage which-data random_forest
      lineage which-data request:req-0042 --json
    """
    from .render.tables import data_uses_table

    lg = state.lineage()
    node = lg.get(ref)
    uses = lg.which_data(node)
    if as_json:
        emit_json({"items": [u.to_dict() for u in uses]})
        return
    if not uses:
        click.echo(f"no datasets are recorded upstream of {node.id}")
        return
    console().print(data_uses_table(uses, title=f"data behind {node.label}"))


@cli.command()
@click.argument("a")
@click.argument("b")
@json_option
@pass_state
def diff(state: State, a: str, b: str, as_json: bool) -> None:
    """Show how two models (or runs), or two versions of data, differ in lineage.

    Datasets added, removed or at another version; code commit; parameters;
    environment packages; metrics. For two versions of data, first what changed
    in them: rows, size, files, columns added or removed, column types.

    \b
    Example:
      lineage diff random_forest@1 random_forest@2
      lineage diff run:01a2f3 run:01a2f9 --json
      lineage diff train@1 train
    """
    lg = state.lineage()
    result = lg.diff(a, b)
    if as_json:
        emit_json(result.to_dict())
        return
    console().print(result)


@cli.command(cls=_BlameCommand)
@click.option("--bad", "bad", multiple=True, required=True, metavar="REF...",
              help="Predictions (or any nodes) that went wrong; several may follow one --bad; @FILE reads them from FILE.")
@click.option("--good", "good", multiple=True, metavar="REF...",
              help="Predictions that were right, to contrast with; same forms as --bad.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most N suspects (the table shows 20 unless told).")
@json_option
@pass_state
def blame(state: State, bad: tuple[str, ...], good: tuple[str, ...], limit: int | None, as_json: bool) -> None:
    """Rank what stands behind bad predictions more often than behind good ones.

    Each upstream node scores the share of bad predictions it stands behind minus
    the share of good ones: the first places to look when predictions go wrong.

    \b
    Example:
      lineage blame --bad request:r-17 request:r-18 --good request:r-02
      lineage blame --bad @flagged.txt --good @ok.txt --json
    """
    lg = state.lineage()
    bad_refs, good_refs = _read_refs(bad), _read_refs(good)
    suspects = lg.blame(bad_refs, good_refs)
    if as_json:
        emit_json({"items": [s.to_dict() for s in (suspects[:limit] if limit else suspects)]})
        return
    if not suspects:
        click.echo("no upstream node stands behind the bad predictions more often than behind the good ones")
        return
    from .render.tables import suspects_table

    shown = suspects[: limit or 20]
    console().print(suspects_table(shown, bad=len(set(bad_refs)), good=len(set(good_refs)), title="suspects"))
    if len(suspects) > len(shown):
        click.echo(f"… and {len(suspects) - len(shown)} more (--limit N, or --json for all)")


@cli.command(name="runs")
@click.option("--where", "where", metavar="EXPR",
              help="A filter: params.X, metrics.X, tags.X, name, experiment, status, started_at, used; "
                   "= != < <= > >= contains in; and or not ( ).")
@click.option("--sort", "sort", metavar="KEY[,KEY]", help="Sort keys, - for descending: -metrics.accuracy,params.C")
@click.option("--limit", type=click.IntRange(min=0),
              help=f"At most N runs. The table shows {TABLE_LIMIT} by default and says how many more match; --json lists all.")
@json_option
@pass_state
def runs_(state: State, where: str | None, sort: str | None, limit: int | None, as_json: bool) -> None:
    """Search runs across experiments by parameters, metrics, tags, status, dates and inputs.

    Newest first unless --sort. Text goes in quotes; a syntax error exits 2 and names
    the position.

    \b
    Example:
      lineage runs --where "params.C > 0.5 and metrics.accuracy >= 0.9 and status = 'finished'"
      lineage runs --where "used = 'train' and started_at >= '2026-01-01'" --sort -metrics.accuracy --limit 10
      lineage runs --where "tags.team = 'risk' or experiment contains 'churn'" --json
    """
    from .api import Lineage
    from .errors import InvalidInputError

    if sort:
        try:
            Lineage.check_order(sort)  # a bad key is bad usage (exit 2), like a bad filter
        except InvalidInputError as exc:
            raise click.BadParameter(str(exc), param_hint="--sort") from None
    lg = state.lineage()
    shown = TABLE_LIMIT if limit is None else limit  # the table's rows
    try:  # (the table: one row past them says whether anything was cut)
        found = lg.runs(where=where, order_by=sort, limit=limit if as_json else shown + 1)
    except FilterSyntaxError as exc:  # usage of `lineage runs`, not of the group
        raise click.BadParameter(str(exc), param_hint="--where") from None
    if as_json:
        emit_json({"items": [n.to_dict() for n in found]})
        return
    if not found:
        click.echo("no runs match")
        return
    from .render.tables import runs_table

    console().print(runs_table(found[:shown]))
    if len(found) > shown:
        _left_out(shown, lg.count_runs(where))


@cli.command()
@json_option
@pass_state
def experiments(state: State, as_json: bool) -> None:
    """List the experiments: the runs each holds, when it was created, its tags.

    An experiment is created by MLflow's set_experiment or create_experiment, or by
    the first run that names it (lineage run --experiment, start_run(experiment=));
    its tags are set with set_experiment_tag. Each is a record in the ledger.

    \b
    Example:
      lineage experiments
      lineage experiments --json
    """
    found = state.lineage().experiments()
    if as_json:
        emit_json({"items": found})
        return
    if not found:
        click.echo("no experiments yet: a run names one (start_run(experiment=...)), or set_experiment creates it")
        return
    from .render.tables import experiments_table

    console().print(experiments_table(found))


@cli.command()
@click.argument("metric")
@json_option
@pass_state
def insights(state: State, metric: str, as_json: bool) -> None:
    """Show which parameters matter most for METRIC across the runs that logged it.

    A random forest's permutation importance (shares summing to 1) and the rank
    correlation of each numeric parameter with the metric. Needs 3 runs or more.

    \b
    Example:
      lineage insights accuracy
      lineage insights val_loss --json
    """
    lg = state.lineage()
    result = lg.insights(metric)
    if as_json:
        emit_json(result.to_dict())
        return
    if not result.items:
        click.echo(f"no parameter varies across the {result.runs} runs that logged {metric}")
        return
    console().print(result)


@cli.command(name="status")
@click.option("--check", is_flag=True, help="Exit 1 when anything is stale (for CI).")
@json_option
@pass_state
def status_(state: State, check: bool, as_json: bool) -> None:
    """List recorded datasets whose files changed on disk, and what depends on them.

    Every model, run and derived dataset downstream of changed data is stale; their
    predictions are counted. Unchanged files cost one stat each (a digest cache).

    \b
    Example:
      lineage status
      lineage status --check --json
    """
    lg = state.lineage()
    result = lg.status()
    if as_json:
        emit_json(result.to_dict())
    else:
        console().print(result)
        if not result.ok:
            click.echo(f"{len(result.changed)} changed, {len(result.affected)} stale downstream"
                       + (f" ({result.predictions:,} predictions)" if result.predictions else ""))
    if check and not result.ok:
        raise SystemExit(1)


# ---------------------------------------------------------------------------
# verify


@cli.command()
@click.option("--head", "head", help="A head hash remembered earlier (e.g. from an audit report) that must still be in the history.")
@click.option("--record", is_flag=True, help="Append the result as a checkpoint event (later incremental checks start there).")
@click.option("--since-checkpoint", is_flag=True, help="Check only what was written since the last recorded checkpoint.")
@click.option("--sign", "sign", type=click.Path(dir_okay=False), metavar="KEYFILE",
              help="With --record: sign the checkpoint with this Ed25519 key (`lineage keygen`).")
@click.option("--key", "key", metavar="PUBKEY",
              help="The key you trust: its public key file (KEYFILE.pub) or fingerprint (SHA256:…). Fails unless "
                   "a checkpoint signed by it vouches for --head or later (or for this history), and when one it signed "
                   "no longer matches the ledger.")
@json_option
@pass_state
def verify(state: State, head: str | None, record: bool, since_checkpoint: bool, as_json: bool,
           sign: str | None = None, key: str | None = None) -> None:
    """Replay the ledger and check every recorded row against it.

    Detects edited, inserted, deleted or reordered records and names the first bad
    event. Writes nothing unless --record. Exits 1 when anything is wrong.

    \b
    Example:
      lineage verify
      lineage verify --head 9f2c41d0e7... --json
      lineage verify --record
      lineage verify --record --sign ~/.lineage-keys/auditor
      lineage verify --head 9f2c41d0e7... --key auditor.pub
    """
    lg = state.lineage()
    if sign and not record:
        raise click.UsageError("--sign signs the checkpoint --record writes; give both")
    if sign and head is not None:
        raise click.UsageError("--sign records a checkpoint; check a remembered --head separately")
    if sign and key is not None:
        raise click.UsageError("--sign records a checkpoint; check it against a --key separately")
    total = lg.head()[0]
    if sign:
        report = lg.verify_signed(sign, since_checkpoint=since_checkpoint)
    elif as_json or total < 50_000 or not sys.stderr.isatty():
        report = lg.verify(head=head, record=record, since_checkpoint=since_checkpoint, key=key)
    else:
        from rich.progress import Progress

        with Progress(transient=True, console=console().__class__(stderr=True)) as bar:
            task = bar.add_task("verifying", total=total)
            report = lg.verify(head=head, record=record, since_checkpoint=since_checkpoint, key=key,
                               progress=lambda done, _total: bar.update(task, completed=done))
    # a remembered head that a checkpoint signed: its signature is checked too
    signatures = lg.checkpoint_signatures(head=head) if head is not None else []
    bad_sigs = [s for s in signatures if not s["ok"]]
    if bad_sigs:
        report.ok = False
        report.first_bad = report.first_bad or bad_sigs[0]["event"]
        report.problems = [*report.problems, *(f"event {s['event']} (checkpoint): {s['problem']}" for s in bad_sigs)]
    if as_json:
        emit_json({**report.to_dict(), **({"signatures": signatures} if head is not None or sign else {}),
                   **({"trusted_checkpoints": report.trusted_checkpoints} if key is not None else {})})
    elif report.ok:
        scope = f" since checkpoint at event {report.checked_from}" if report.checked_from else \
            " (no usable checkpoint: the whole ledger was replayed)" if since_checkpoint else ""
        click.echo(f"ok: {report.events} events verified{scope}")
        click.echo(f"head: {report.head}")
        if head:
            click.echo(f"the remembered head {head} is part of this history")
            for sig in signatures:
                click.echo(f"signed by key {sig['fingerprint']} at checkpoint event {sig['event']}: signature valid"
                           + ("" if key is None or sig["event"] in (report.trusted_checkpoints or ())
                              else " (not the key given: not trusted)"))
        if key is not None and report.trusted_checkpoints:
            click.echo(f"vouched for by the given key: checkpoint event{'s' if len(report.trusted_checkpoints) > 1 else ''} "
                       + ", ".join(map(str, report.trusted_checkpoints)))
        if record:
            click.echo("recorded a checkpoint event" + (f", signed with {sign}" if sign else ""))
        for fixed in getattr(report, "repaired", ()):  # caches (not evidence) found stale and rebuilt
            click.echo(f"repaired: {fixed}")
    else:
        # (a lost --head names no event of this ledger: then the problem says it all)
        click.echo("FAILED" + (f": first bad event {report.first_bad}" if report.first_bad is not None else ""), err=True)
        for p in report.problems[:20]:
            click.echo(f"  - {p}", err=True)
        if len(report.problems) > 20:
            click.echo(f"  … and {len(report.problems) - 20} more", err=True)
        if key is not None and report.first_bad is None and report.head_found is not False:
            # (only the key's vouching failed: the ledger itself replayed clean)
            click.echo(f"head: {report.head} ({report.events} events: the ledger replays intact, but no checkpoint "
                       "signed by the given key vouches for it)", err=True)
        else:
            # the chain recomputed over a damaged ledger: shown for comparison, never to be
            # written down as the head to check against later
            click.echo(f"head: {report.head} ({report.events} events, recomputed over the damaged ledger: "
                       "not a head to remember)", err=True)
    if not report.ok:
        raise SystemExit(1)


# ---------------------------------------------------------------------------
# explain and keygen (decision records and signed checkpoints)


@cli.command()
@click.argument("ref")
@click.option("--data", "data", metavar="REF", help="Held-out data (a dataset reference): compute and record "
              "permutation importance of the model REF on it.")
@click.option("--target", metavar="COLUMN", help="The label column of --data.")
@json_option
@pass_state
def explain(state: State, ref: str, data: str | None, target: str | None, as_json: bool) -> None:
    """Why a prediction came out as it did, or what a model relies on.

    For a prediction (request:ID or its id): its inputs, the decision rule and the
    reasons, each feature's contribution to the score with the method that computed
    it (exact for linear models; per-feature replacement otherwise). For a model: its
    recorded feature importance; with --data and --target, permutation importance on
    that held-out data is computed first and recorded (a ledger event).

    \b
    Example:
      lineage explain request:req-0042
      lineage explain random_forest --json
      lineage explain random_forest --data test --target label
    """
    from rich.text import Text

    from .render.tables import brief_value, feature_importance_table, permutation_importance_table, reasons_table

    lg = state.lineage()
    if (data is None) != (target is None):
        raise click.UsageError("--data and --target go together: the held-out data and its label column")
    if data is not None and target is not None:
        computed = lg.compute_importance(ref, data, target)
        if as_json:
            emit_json(computed)
            return
        console().print(permutation_importance_table(computed, data=data, target=target))
        return
    doc = lg.explain(ref)
    if as_json:
        emit_json(doc)
        return
    subject = doc["subject"]
    out = console()
    if subject["kind"] == "model":
        out.print(Text(f"Feature importance of model {subject['name'] or subject['id']}", style="bold"))
        if doc.get("source"):
            out.print(Text(f"source: {doc['source']}", style="dim"))
        out.print(feature_importance_table(doc["importance"]) if doc["importance"] else Text(doc.get("note") or "", style="yellow"))
        return
    m = doc["model"]
    out.print(Text(f"Decision {subject['request_id'] or subject['id']} by {m['name']} "
                   f"(version {m['version']} of {m['versions']})", style="bold"))
    out.print(Text(f"output {brief_value(doc['output'])}"
                   + (f", score {brief_value(doc['score'])}" if doc["score"] is not None else "")  # (a classifier without scores)
                   + (f"; {doc['outcome']}" if doc.get("outcome") else "")))
    if doc.get("rule"):
        out.print(Text("rule: " + ", ".join(f"{k}={brief_value(v)}" for k, v in doc["rule"].items()), style="dim"))
    if not doc["reasons"]:
        out.print(Text(doc.get("note") or "no reasons available", style="yellow"))
        return
    out.print(Text(f"method: {doc['method']}; baseline: {doc['baseline_source']}", style="dim"))
    out.print(reasons_table(doc["reasons"]))


@cli.command()
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False), metavar="KEYFILE",
              help="Where to write the private key; the public key goes to KEYFILE.pub.")
@json_option
def keygen(output: str, as_json: bool) -> None:
    """Make an Ed25519 key pair for signed checkpoints and print its fingerprint.

    Keep the private key away from the machine that records (a signature by the
    recorder's own account proves little); give the fingerprint to whoever reads the
    reports. Never overwrites a key.

    \b
    Example:
      lineage keygen -o ~/.lineage-keys/auditor
      lineage verify --record --sign ~/.lineage-keys/auditor
    """
    from .api import Lineage

    try:
        got = Lineage.keygen(output)
    except LineageError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        emit_json(got)
        return
    click.echo(f"wrote the private key to {got['private']} and the public key to {got['public']}")
    click.echo(f"fingerprint: {got['fingerprint']}")


# ---------------------------------------------------------------------------
# audit


@cli.command()
@click.argument("ref", required=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False), callback=output_suffix("report"),
              help="Write the report: .html (self-contained, prints to PDF), .md or .json.")
@click.option("--standard", type=click.Choice(["annex-iv", "model-card", "sr11-7"]), default="annex-iv", show_default=True,
              help="How to arrange and title the sections: EU AI Act Annex IV, Model Cards, or SR 11-7.")
@click.option("--inventory", is_flag=True, help="Every model in the store with owner, data, status and report completeness.")
@click.option("--all-versions", is_flag=True, help="With --inventory: list every version of each model name, not only the newest.")
@json_option
@pass_state
def audit(state: State, ref: str | None, output: str | None, standard: str, inventory: bool, all_versions: bool,
          as_json: bool) -> None:
    """Write the compliance audit report of a model or a prediction.

    The report shows every field of the compliance checklist as recorded, missing or
    needing a person, with its evidence and the articles it serves; the lineage
    diagram; data, code, environment, metrics; and an integrity section: the facts
    shown are checked against the ledger events that recorded them, the chain from
    the last `verify --record` checkpoint, and every file against its digest.
    Without -o, prints a summary (or the JSON report with --json).

    Exits 1 when an integrity check fails (the report is still written, with the
    failure at the top).

    \b
    Example:
      lineage audit random_forest -o audit.html
      lineage audit random_forest --standard sr11-7 -o audit.md
      lineage audit request:req-0042 -o explanation.html
      lineage audit --inventory -o inventory.html
    """
    lg = state.lineage()
    if all_versions and not inventory:
        raise click.UsageError("--all-versions goes with --inventory")
    if inventory:
        if ref:
            raise click.UsageError("--inventory covers every model; give no REF with it")
        inv = lg.inventory(all_versions=all_versions)
        inv_doc = inv.to_dict()  # (a deep copy: 6.5 MB at the benchmark's 1M store, made once)
        if output:
            path = inv.write(output)
            click.echo(f"wrote the inventory of {len(inv)} model(s) to {path}")
        elif as_json:
            emit_json(inv_doc)
        else:
            from .render.tables import inventory_table

            console().print(inventory_table(inv_doc))
        checkpoint_hint(inv_doc["chain"])  # (it replays the chain as a report does)
        if not inv.ok:
            click.echo("integrity check FAILED for the store or some model (see the inventory)", err=True)
            raise SystemExit(1)
        return
    if not ref:
        raise click.UsageError("give a model or prediction to audit (or --inventory)")
    report = lg.audit(ref, standard=standard)
    doc = report.to_dict()
    if doc["model"].get("selection") and not as_json:
        click.echo(doc["model"]["selection"], err=bool(output))
    if output:
        path = report.write(output)
        c = doc["completeness"]
        subject = doc["subject"]
        click.echo(f"wrote the audit report of {subject['kind']} {subject['name'] or subject['id']} to {path} "
                   f"({c['recorded']} recorded, {c['needs a person']} need a person, {c['missing']} missing; "
                   f"integrity {'intact' if report.ok else 'FAILED'})")
    elif as_json:
        emit_json(doc)
    else:
        from .render.tables import audit_summary

        console().print(audit_summary(doc))
    checkpoint_hint((doc.get("integrity") or {}).get("chain") or {})
    if not report.ok:
        problems = doc["integrity"]["problems"]
        click.echo(f"integrity check FAILED: {problems[0] if problems else 'see the report'}", err=True)
        raise SystemExit(1)


# ---------------------------------------------------------------------------
# annotate


@cli.command()
@click.argument("ref")
@click.argument("statement", nargs=-1, metavar="[FIELD TEXT]")
@click.option("--field", "field_", help="Checklist key: intended_use, limitations, risk_management, sign_off, …")
@click.option("--text", help="The statement to record.")
@click.option("--card", type=click.Path(dir_okay=False), help="A model card YAML file whose keys are checklist keys.")
@click.option("--author", help="Who makes the statement (default: the current user).")
@click.option("--sensitive", "sensitive", metavar="COLS", help="Mark columns of a dataset sensitive: age,sex.")
@click.option("--allow-sensitive", "allow_sensitive", metavar="COLS",
              help="Allow a model to read these sensitive columns; --text gives the reason.")
@pass_state
def annotate(state: State, ref: str, statement: tuple[str, ...], field_: str | None, text: str | None,
             card: str | None, author: str | None, sensitive: str | None = None,
             allow_sensitive: str | None = None) -> None:
    """Record a person's statement about a node, for the audit report.

    Statements are ledger events with author and time; a sign-off is a recorded
    statement, not a cryptographic signature.

    \b
    Example:
      lineage annotate random_forest --field intended_use --text "Credit pre-screening"
      lineage annotate random_forest limitations "Not validated for applicants under 21"
      lineage annotate random_forest --card card.yaml
      lineage annotate applications --sensitive age,sex
      lineage annotate risk@production --allow-sensitive age --text "age is a permitted rating factor (legal 2026-03)"
    """
    if sensitive or allow_sensitive:
        _annotate_sensitive(state, ref, sensitive, allow_sensitive, text, author, bool(statement or field_ or card))
        return
    if statement:  # positional FIELD TEXT, as in lg.annotate(ref, field, text)
        if len(statement) != 2:
            raise click.UsageError("give FIELD and TEXT after REF (quote the text), or use --field/--text")
        if field_ or text or card:
            raise click.UsageError("give FIELD TEXT either as arguments or with --field/--text, not both")
        field_, text = statement
    if card and (field_ or text):
        raise click.UsageError("use either --card or --field with --text")
    if not card and not (field_ and text):
        raise click.UsageError("give --field and --text, or --card FILE")
    lg = state.lineage()
    node = lg.get(ref)
    import warnings

    from .secrets import SecretWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SecretWarning)
        if card:
            events = lg.annotate_card(node, card, author=author)
            click.echo(f"recorded {len(events)} annotation(s) on {node.id}")
        else:
            event = lg.annotate(node, field_, text, author=author)
            click.echo(f"recorded {field_} on {node.id} (event {event})")
    for w in caught:  # a statement that looks like it holds a secret: one line, kept as typed
        if issubclass(w.category, SecretWarning):
            click.echo(f"warning: {w.message}", err=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


# ---------------------------------------------------------------------------
# redact


@cli.command()
@click.argument("ref")
@click.option("--reason", required=True, help="Why (e.g. the erasure request's reference); recorded in the ledger.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def redact(state: State, ref: str, reason: str, yes: bool) -> None:
    """Erase the personal content of one node (GDPR erasure), keeping the record verifiable.

    A prediction loses its input digest, output, score and request id; any other node
    its name and attributes (a run also its params, tags and error text); annotations
    on it lose their text. A person (an agent) also loses their name, email and login
    wherever else they were recorded: as the author of a label change or a statement,
    in who recorded a statement, in their runs' captured environment (the statements
    and labels stay, their author reads [erased]). Ids, times and links stay. The
    erasure is itself a ledger event (who, when, why), and `lineage verify` still
    passes. It cannot be undone.
    The store's WAL and free pages are scrubbed (when another process holds the store
    open, the output says what may remain and how to finish); copies made earlier
    (backups, exports, reports) are not reached, and the output says so.

    \b
    Example:
      lineage redact request:req-0042 --reason "GDPR request 2026-114"
      lineage redact dataset:3f2a9c --reason "consent withdrawn" --yes
      lineage redact agent:9e13228d --reason "GDPR request 2026-115"
    """
    lg = state.lineage()
    node = lg.get(ref)
    if not yes:
        click.confirm(f"Erase the content of {node.id}? This cannot be undone", abort=True, err=True)
    seq = lg.redact(node, reason=reason)
    click.echo(f"erased {node.id} (event {seq})")
    click.echo(f"not reached: {lg.erasure_limits}", err=True)


# ---------------------------------------------------------------------------
# promotion, serving state, features, sensitive columns (issue 13)


def _serving_attrs(lg: Any, node: Any, ref: str) -> dict[str, Any]:
    """What `show` adds: a model's labels and tags now (under each of its names: the
    one ``ref`` gives first, ``NAME@label`` under the others), a prediction's labels
    when it was made."""
    if node.kind == "model":
        out: dict[str, Any] = {}
        if node.name or lg.aliases(node):
            out["labels"] = lg.version_labels(ref)
        tags = lg.model_tags(node)
        if tags:
            out["tags"] = tags
        return out
    if node.kind == "prediction":
        return {"labels_at_prediction": lg.labels_at(node)}
    return {}


def _model_history(lg: Any, name: str, as_json: bool) -> None:
    hist = lg.model_history(name)
    if as_json:
        emit_json(hist.to_dict())
        return
    from .render.tables import label_changes_table, nodes_table

    table = nodes_table(hist.versions, title=f"history of {name}", extra=[
        ("version", lambda n: f"@{hist.number(n.id)}"),
        ("labels", lambda n: ", ".join(hist.version_labels(n.id))),
        ("predictions", lambda n: f"{hist.predictions.get(n.id, {}).get('count', 0):,}"),
    ])
    out = console()
    out.print(table)
    if hist.promotions:
        out.print(label_changes_table(hist.promotions))
    else:
        out.print("[dim]no labels: promote a version with `lineage promote NAME@N production`[/]")


@cli.command()
@click.argument("ref")
@click.argument("label")
@click.option("--reason", help="Why (a review, a ticket); recorded with the promotion.")
@json_option
@pass_state
def promote(state: State, ref: str, label: str, reason: str | None, as_json: bool) -> None:
    """Put LABEL (production, staging, champion, any word) on one model version.

    The label moves: the version that held it stops holding it, in the same ledger
    event (who, when, why). NAME@LABEL then names the version in every command.

    \b
    Example:
      lineage promote risk@3 production --reason "validated, ticket MRM-114"
      lineage audit risk@production
    """
    lg = state.lineage()
    p = lg.promote(ref, label, reason=reason)
    if as_json:
        emit_json(p.to_dict())
        return
    moved = f" (moved from {p.previous})" if p.previous else ""
    click.echo(f"{_shown(p.name)}@{p.label} is now @{p.version} {p.model}{moved}")


@cli.command()
@click.argument("name")
@click.argument("label")
@click.option("--reason", help="Why; recorded with the change.")
@json_option
@pass_state
def unpromote(state: State, name: str, label: str, reason: str | None, as_json: bool) -> None:
    """Take LABEL off the version of model NAME that holds it.

    \b
    Example:
      lineage unpromote risk staging --reason "superseded"
    """
    lg = state.lineage()
    p = lg.unpromote(name, label, reason=reason)
    if as_json:
        emit_json(p.to_dict())
        return
    click.echo(f"{_shown(p.name)}@{p.label} no longer names a version (was @{p.version} {p.model})")


@cli.command()
@click.argument("model")
@json_option
@pass_state
def features(state: State, model: str, as_json: bool) -> None:
    """Show which source columns feed MODEL, what each becomes, and how much it matters.

    Each input column is traced to the column of the dataset version it came from
    (and further back through recorded preparation runs whose outputs keep the
    column's name); each feature the final estimator sees (cat__sex_f) lists its
    input columns. Importance is shown per method (coef_, feature_importances_,
    permutation). Sensitive columns reaching the model are flagged.

    \b
    Example:
      lineage features risk@production
      lineage features risk --json
    """
    lg = state.lineage()
    fl = lg.feature_lineage(model)
    if as_json:
        emit_json(fl.to_dict())
        return
    console().print(fl)


@cli.group(cls=LineageGroup)
def check() -> None:
    """Checks that exit 1 when they fail (for CI and release gates).

    \b
    Example:
      lineage check sensitive risk@production
    """


@check.command(name="sensitive")
@click.argument("model")
@json_option
@pass_state
def check_sensitive(state: State, model: str, as_json: bool) -> None:
    """Exit 1 when a sensitive column reaches MODEL's inputs without an allowance.

    Columns are marked sensitive on a dataset (`lineage annotate DATA --sensitive
    age,sex`); a model version may be allowed to read some with a reason
    (`lineage annotate MODEL --allow-sensitive age --text REASON`, the
    `sensitive_use` annotation).

    \b
    Example:
      lineage check sensitive risk@production
      lineage check sensitive risk --json
    """
    lg = state.lineage()
    fl = lg.check_sensitive(model)
    m = fl.model
    if as_json:
        emit_json({"ok": fl.ok, "model": m, "sensitive": fl.sensitive, "violations": [v["column"] for v in fl.violations]})
    else:
        for v in fl.sensitive:
            state_ = "allowed" if v["allowed"] else "NOT ALLOWED"
            reach = (f"reaches {', '.join(v['features'])}" if v.get("confirmed", True)
                     else "may reach it (the model records no input column names)")
            click.echo(f"{v['column']}: sensitive ({', '.join(v['marked_in'])}), {reach}: {state_}")
        if fl.ok:
            click.echo(f"ok: no sensitive column reaches {m['name']}@{m['version']} without an allowance")
    if not fl.ok:
        cols = ", ".join(v["column"] for v in fl.violations)
        verb = "reach" if all(v.get("confirmed", True) for v in fl.violations) else "may reach"
        click.echo(f"sensitive column(s) {cols} {verb} {m['name']}@{m['version']} with no allowance "
                   f"(`lineage annotate {m['name']}@{m['version']} --allow-sensitive {cols} --text REASON`)", err=True)
        raise SystemExit(1)


def _annotate_sensitive(state: State, ref: str, sensitive: str | None, allow: str | None, text: str | None,
                        author: str | None, other: bool) -> None:
    if other or (sensitive and allow):
        raise click.UsageError("--sensitive and --allow-sensitive go alone (with --text for the reason)")
    lg = state.lineage()
    if sensitive:
        if text:
            raise click.UsageError("--sensitive takes no --text; it marks columns of a dataset")
        cols = lg.mark_sensitive(ref, sensitive, author=author)
        click.echo(f"sensitive columns of {lg.get(ref).label}: {', '.join(cols)}")
        return
    if not text:
        raise click.UsageError("--allow-sensitive needs --text REASON (who approved it, for what)")
    assert allow is not None
    event = lg.allow_sensitive(ref, allow, text, author=author)
    click.echo(f"recorded sensitive_use on {lg.get(ref).id} (event {event})")
# import / export: other tools' history in, the graph out (lineage/interop)


def _print_import(result: Any, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict())
        return
    if not result.changed:
        click.echo(f"nothing new to import from {result.source}")
        return
    click.echo(f"imported from {result.source}: {_import_counts(result.counts, result.tool)}")
    click.echo(f"recorded as {result.activity} (event {result.event})")


#: how an import's summary names the tool whose deletions it reports
_TOOL_NAMES = {"mlflow": "MLflow", "dvc": "DVC", "openlineage": "OpenLineage", "prov": "PROV"}


def _import_counts(counts: dict[str, int], tool: str) -> str:
    """``3 runs (1 deleted in MLflow), 1 model, 12 params, …``: runs deleted in the
    other tool are imported, but hidden from MLflow's views here as there, so the
    summary says how many, and how many runs already here it marked deleted or
    restored. Nodes are counted in words (``1 code version``), rows by table."""
    from .model import KINDS
    from .render.labels import plural

    name = _TOOL_NAMES.get(tool, tool)
    counts = dict(counts)
    deleted = counts.pop("runs_deleted", 0)
    notes = {"runs_marked_deleted": f"marked deleted (deleted in {name} since imported)",
             "runs_restored": f"marked active again (restored in {name})"}
    parts = []
    for k, n in counts.items():
        if k in notes:
            parts.append(f"{n} run{'s' if n != 1 else ''} {notes[k]}")
        elif k in KINDS:
            parts.append(f"{n} {plural(k, n)}" + (f" ({deleted} deleted in {name})" if k == "run" and deleted else ""))
        else:  # a table's rows: edges, params, metrics, tags, promotions, registry_changes
            word = k.replace("_", " ")
            parts.append(f"{n} {word[:-1] if n == 1 and word.endswith('s') else word}")
    return ", ".join(parts)


@cli.group(name="import", cls=LineageGroup)
def import_() -> None:
    """Bring in history recorded by MLflow, DVC, OpenLineage producers or PROV tools.

    Imports are idempotent (running one again adds nothing) and all or nothing (a
    bad record stops the import before anything is written). Each is recorded as an
    activity naming its source.

    \b
    Example:
      lineage import mlflow sqlite:///mlflow.db
      lineage import dvc . --all-commits
      lineage import openlineage events.jsonl
      lineage import prov graph.json
    """


@import_.command(name="mlflow")
@click.argument("uri", required=False, metavar="[TRACKING_URI]")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", metavar="URI",
              help="MLflow tracking store: sqlite:///mlflow.db, a folder, or http(s)://server (also the "
                   "argument; default: MLFLOW_TRACKING_URI).")
@click.option("--experiment", "experiments", multiple=True, metavar="NAME",
              help="Only this experiment (repeatable); a deleted experiment's name imports it too.")
@click.option("--registry-uri", metavar="URI", help="Model registry, when not the tracking store.")
@json_option
@pass_state
def import_mlflow(state: State, uri: str | None, tracking_uri: str | None, experiments: tuple[str, ...],
                  registry_uri: str | None, as_json: bool) -> None:
    """Import an MLflow store: runs, params, metric histories, tags, datasets, models.

    `lineage show mlflow:<run_id>` finds an imported run by its MLflow id. Runs
    deleted in MLflow (and those of deleted experiments) are imported too, tagged
    mlflow.lifecycleStage=deleted: hidden from search_runs here as there, shown by
    `lineage runs`; a later import records deletions and restorations since.

    \b
    Example:
      lineage import mlflow sqlite:///mlflow.db
      lineage import mlflow --tracking-uri http://mlflow:5000 --experiment risk
    """
    # (the argument wins over the option, which MLFLOW_TRACKING_URI may have filled)
    tracking_uri = uri or tracking_uri
    if not tracking_uri:
        raise click.UsageError("name the MLflow store: lineage import mlflow sqlite:///mlflow.db "
                               "(or --tracking-uri, or MLFLOW_TRACKING_URI)")
    with state.importing() as lg:
        result = lg.import_mlflow(tracking_uri, experiments=experiments, registry_uri=registry_uri)
    _print_import(result, as_json)


@import_.command(name="dvc")
@click.argument("repo", required=False, default=".", type=click.Path(file_okay=False))
@click.option("--all-commits", is_flag=True, help="Walk every git commit, so past data versions are imported too.")
@json_option
@pass_state
def import_dvc(state: State, repo: str, all_commits: bool, as_json: bool) -> None:
    """Import a DVC pipeline: stages as runs, deps and outs as data versions.

    \b
    Example:
      lineage import dvc
      lineage import dvc path/to/repo --all-commits
    """
    with state.importing() as lg:
        result = lg.import_dvc(repo, all_commits=all_commits)
    _print_import(result, as_json)


@import_.command(name="openlineage")
@click.argument("source", metavar="FILE")
@json_option
@pass_state
def import_openlineage(state: State, source: str, as_json: bool) -> None:
    """Import OpenLineage RunEvents (JSON lines; - reads stdin).

    \b
    Example:
      lineage import openlineage events.jsonl
      cat events.jsonl | lineage import openlineage -
    """
    with state.importing() as lg:
        result = lg.import_openlineage(source)
    _print_import(result, as_json)


@import_.command(name="prov")
@click.argument("path", metavar="FILE")
@json_option
@pass_state
def import_prov(state: State, path: str, as_json: bool) -> None:
    """Import a W3C PROV document (PROV-JSON, or PROV-XML by its .xml suffix).

    \b
    Example:
      lineage import prov graph.json
    """
    with state.importing() as lg:
        result = lg.import_prov(path)
    _print_import(result, as_json)


@cli.command(name="export")
@click.argument("ref", required=False)
@click.option("--format", "fmt", required=True,
              type=click.Choice(["openlineage", "prov-json", "prov-n", "prov-xml", "graphml", "json"]),
              help="openlineage (JSON lines of RunEvents), W3C PROV, GraphML or lineage's subgraph JSON.")
@click.option("-o", "--output", metavar="FILE", help="Where to write (- for stdout, openlineage only).")
@click.option("--url", metavar="URL", help="POST OpenLineage events here (e.g. http://marquez:5000/api/v1/lineage).")
@click.option("--namespace", default="lineage", show_default=True, help="OpenLineage job namespace.")
@json_option
@pass_state
def export_(state: State, ref: str | None, fmt: str, output: str | None, url: str | None, namespace: str, as_json: bool) -> None:
    """Export the whole store, or everything upstream of REF, for other tools.

    \b
    Example:
      lineage export --format openlineage -o events.jsonl
      lineage export --format openlineage --url http://localhost:5000/api/v1/lineage
      lineage export --format prov-json random_forest -o model.prov.json
      lineage export --format graphml -o lineage.graphml
    """
    if output is None and url is None:
        raise click.UsageError("give -o FILE (or --url URL with --format openlineage)")
    lg = state.lineage()
    result = lg.export(fmt, ref, output, url=url, namespace=namespace)
    if as_json:
        emit_json(result.to_dict())
    elif output != "-":
        where = " and ".join(x for x in (result.path, result.url) if x)
        click.echo(f"wrote {result.count:,} {'events' if fmt == 'openlineage' else 'records'} as {fmt} to {where}")



# ---------------------------------------------------------------------------
# full-text search (issue 10)


# (unknown options are words: `-boost` excludes a word, it is not an option)
@cli.command(name="search", context_settings={"ignore_unknown_options": True})
@click.argument("text", nargs=-1, required=True)
@click.option("--kind", type=click.Choice(_KIND_NAMES), help="Only nodes of this kind.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most N nodes.")
@json_option
@pass_state
def search_(state: State, text: tuple[str, ...], kind: str | None, limit: int, as_json: bool) -> None:
    """Find nodes by the words in their names, aliases, annotations, params and tags.

    Words are ANDed and match the start of a word (`rand` finds random_forest);
    "quoted words" are an exact phrase; OR takes either side; -word leaves out
    what matches it. Best matches first (a name counts more than a param). A word
    that is a prediction's request id finds that prediction too.

    \b
    Example:
      lineage search forest
      lineage search credit scoring --kind model
      lineage search '"retail loans"' OR mortgage --json
      lineage search penalty l2 -boost --limit 5
    """
    from .api import Lineage

    try:  # a query that says nothing to look for is bad usage (exit 2), like a --where error
        Lineage.check_search(" ".join(text))
    except LineageError as exc:
        raise click.UsageError(str(exc)) from None
    lg = state.lineage()
    hits = lg.search(" ".join(text), kind=kind, limit=limit)
    if as_json:
        emit_json(hits.to_dict())
        return
    if not hits:
        click.echo(f"nothing matches {' '.join(text)!r}")
        return

    def where(node: Any) -> str:
        hit = next(h for h in hits if h.node.id == node.id)
        return "; ".join(f"{m['field']}: {m['text']}" for m in hit.matches[:3])

    from .render.tables import nodes_table

    console().print(nodes_table([h.node for h in hits], extra=[("matched", where)]))
    _left_out(len(hits), hits.total, json_all=False)


# ---------------------------------------------------------------------------
# publishing a store's history (issue 10)


def _print_push(result: Any, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(str(result))


@cli.command(name="push")
@click.option("--to", "to", required=True, metavar="URL", help="The store to publish into: a path or a postgresql:// URL.")
@json_option
@pass_state
def push_(state: State, to: str, as_json: bool) -> None:
    """Publish this store's history into another store (e.g. the team's server).

    Copies the events the other store lacks, re-chained there, and records one push
    event that links them to this store's head, so `lineage verify` there proves
    both chains. Pushing again adds only what is new. Erased rows stay erased;
    artifact files are copied when the other store keeps files.

    \b
    Example:
      lineage push --to postgresql://ml@db.internal/lineage
      lineage push --to /shared/team/.lineage/lineage.db --json
    """
    _print_push(state.lineage().push(to), as_json)


@cli.command(name="pull")
@click.option("--from", "from_", required=True, metavar="URL", help="The store to copy from: a path or a postgresql:// URL.")
@json_option
@pass_state
def pull_(state: State, from_: str, as_json: bool) -> None:
    """Copy another store's history that this one lacks into this one.

    The same as `lineage push` run from the other side: idempotent, all or nothing,
    verified by `lineage verify` here.

    \b
    Example:
      lineage pull --from postgresql://ml@db.internal/lineage
      lineage pull --from ../colleague/.lineage/lineage.db --json
    """
    _print_push(state.lineage(create=True).pull(from_), as_json)

if __name__ == "__main__":  # pragma: no cover
    main()
