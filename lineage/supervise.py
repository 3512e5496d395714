"""Command supervision: run any program as a recorded run (what `lineage run` does).

`run_command` starts the run, records the declared inputs, starts the program in a
process group of its own, forwards SIGINT/SIGTERM/SIGHUP to that group, waits, and
records what it wrote: datasets, models (declared with ``models=`` or recognised among
the outputs) and predictions (a CSV output, one prediction per row). The run ends
``finished`` only when the program exited 0 and wrote every declared output;
otherwise ``failed``, with the reason on the run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidInputError
from .model import Edge, Node
from .store import Store

#: a file changed this recently (ns) is not judged by its stamp (see `_file_stamp`)
FRESH_NS = 2_000_000_000

#: signals that stop `lineage run` and are passed on to the program instead
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class CommandResult:
    """What `run_command` recorded: the ended run's node, the exit code `lineage run`
    exits with, and the reason when the run failed."""

    run: Node
    exit_code: int
    status: str
    error: str | None = None
    duration: float = 0.0
    outputs: list[Node] = field(default_factory=list)
    models: list[Node] = field(default_factory=list)
    predictions: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "finished"

    def summary(self) -> str:
        """The one line `lineage run` prints: ``recorded run:… (failed, command 0.0s, exit 1: why)``.
        The time is the command's alone: `lineage ls` shows the run's, which also holds
        the hashing of its inputs and outputs."""
        why = f": {self.error}" if self.error and not self.ok else ""
        extra = f", {self.predictions:,} predictions" if self.predictions else ""
        return f"recorded {self.run.id} ({self.status}, command {self.duration:.1f}s, exit {self.exit_code}{why}{extra})"

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run.to_dict(), "exit_code": self.exit_code, "status": self.status, "error": self.error,
                "duration": round(self.duration, 3), "outputs": [n.id for n in self.outputs],
                "models": [n.id for n in self.models], "predictions": self.predictions}


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class _Forwarder:
    """Passes the signals `lineage run` receives to the program's process group, and
    remembers the first, so the run can be recorded as stopped by it."""

    def __init__(self) -> None:
        self.pgid: int | None = None
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Forwarder:
        if _in_main_thread():  # signal handlers can only be set from the main thread
            for sig in FORWARDED:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.received is None:
            self.received = signum
        if self.pgid is not None:
            with contextlib.suppress(OSError):  # the group is gone already
                os.killpg(self.pgid, signum)

    def resend(self) -> None:
        if self.received is not None and self.pgid is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.pgid, self.received)

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def _terminal_fd() -> int | None:
    """stdin's descriptor when it is a terminal we own the foreground of, else None."""
    try:
        fd = sys.stdin.fileno()
        if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
            return fd
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _hand_terminal(fd: int | None, pgid: int) -> None:
    """Make ``pgid`` the terminal's foreground group (as a shell does for a job), so the
    program can read the terminal and Ctrl-C reaches it."""
    if fd is None:
        return
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may not set it otherwise
    try:
        os.tcsetpgrp(fd, pgid)
    except OSError:
        pass
    finally:
        signal.signal(signal.SIGTTOU, old)


def _wait(proc: subprocess.Popen[bytes], terminal: int | None) -> int:
    """Wait for the program; returns Popen's code (-N when a signal killed it).

    Job control from a terminal: Ctrl-Z stops the program's group (it holds the
    terminal), so `lineage run` stops itself too and gives the terminal back to the
    shell; on `fg` it hands the terminal over again and resumes the group.
    """
    while True:
        _, status = os.waitpid(proc.pid, os.WUNTRACED if terminal is not None else 0)
        if not os.WIFSTOPPED(status):
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode
        _hand_terminal(terminal, os.getpgrp())
        os.kill(os.getpid(), signal.SIGSTOP)  # as the shell's job, until `fg` or `bg`
        with contextlib.suppress(OSError):
            if terminal is not None and os.tcgetpgrp(terminal) == os.getpgrp():  # `fg`, not `bg`
                _hand_terminal(terminal, proc.pid)
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGCONT)


def _own_group() -> dict[str, Any]:
    """Popen's arguments for a process group of the child's own (not a new session: it
    keeps the terminal, which `_hand_terminal` gives its group)."""
    if sys.version_info >= (3, 11):
        return {"process_group": 0}
    return {"preexec_fn": os.setpgrp}  # (Python 3.10: no process_group= yet)


def _file_stamp(path: str) -> tuple[int, ...] | None:
    """What changes when a file is written: inode, size and change time (any write,
    even one that restores the old mtime, moves ``st_ctime``). None for a missing
    file, a directory (its files are not walked here), and a file changed in the last
    two seconds, whose stamp a filesystem with coarse times might not move again."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path) or time.time_ns() - st.st_ctime_ns < FRESH_NS:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _describe_exit(code: int) -> tuple[int, str]:
    """A shell's exit code (128 + N for a signal) and the words for it."""
    if code >= 0:
        return code, f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return 128 - code, f"killed by {name}"


def run_command(store: Store, argv: Sequence[str], *, inputs: Sequence[str] = (), outputs: Sequence[str] = (),
                models: Sequence[str] = (), params: Mapping[str, Any] | None = None,
                tags: Mapping[str, Any] | None = None, name: str | None = None, experiment: str | None = None,
                predictions: str | None = None, id_column: str | None = None, output_column: str | None = None,
                of: Any = None, detect: bool = True, load: bool = True, keep_inputs: bool = False) -> CommandResult:
    """Run ``argv`` as a recorded run; returns a `CommandResult`.

    ``inputs`` are read by the program (role ``input``; a file whose bytes are a
    recorded model is that model, and an unrecorded model file is recorded as one);
    ``outputs`` are written by it (datasets, or models when recognised); ``models`` are
    outputs that are models. ``predictions`` is an output CSV whose rows are
    predictions of ``of`` (default: the run's one model input), with ``id_column`` as
    request ids and ``output_column`` (default: the only other column) as outputs;
    ``keep_inputs`` also keeps each prediction's feature values, found by its request
    id in the CSV inputs (`predfiles.log_prediction_file`).
    ``detect=False`` records outputs as datasets unless declared in ``models``;
    ``load=False`` never unpickles a file (models are then recorded without their
    parameters and features), since unpickling runs code from the file.

    Raises InvalidInputError before anything is recorded when ``argv`` is empty, an
    input does not exist, or the predictions options do not fit together.
    """
    from . import modelfile
    from .tracking import PARENT_RUN_ENV, Run

    cmd = [str(a) for a in argv]
    if not cmd:
        raise InvalidInputError("give the command to run, e.g. lineage run -- python train.py")
    missing_inputs = [p for p in inputs if not os.path.exists(p)]
    if missing_inputs:
        raise InvalidInputError(f"input {missing_inputs[0]} does not exist")
    if predictions is None and (id_column or output_column or of is not None or keep_inputs):
        raise InvalidInputError("--id-column, --output-column, --of and --keep-inputs go with --predictions FILE")
    if keep_inputs and id_column is None:
        raise InvalidInputError("--keep-inputs finds each prediction's input row by its request id: give --id-column")
    of_node: Node | None = None
    if of is not None:
        of_node = of if isinstance(of, Node) else store.resolve(str(of))
        if of_node.kind != "model":
            raise InvalidInputError(f"--of {of}: {of_node.id} is a {of_node.kind}, not a model")
    # which inputs are models: by bytes (recorded already), or by their pickle's class
    input_models: dict[str, Node | None] = {}
    for p in inputs:
        if os.path.isfile(p):
            known = modelfile.recorded_model(store, p)
            if known is not None:
                input_models[p] = known
            elif detect and modelfile.looks_like_model(p):
                input_models[p] = None  # recorded as a model once the run exists
    scored_from = [p for p in inputs if p not in input_models and os.path.isfile(p)] if keep_inputs else []
    if keep_inputs and not scored_from:
        raise InvalidInputError("--keep-inputs reads each prediction's inputs from an input file (-i rows.csv): none given")
    if predictions is not None and of_node is None and len(input_models) != 1:
        raise InvalidInputError(
            f"--predictions {predictions}: the run reads {len(input_models)} model(s); say whose predictions they are with --of MODEL")

    run = Run.start(store, name, params=params, tags=tags, experiment=experiment, command=cmd)
    result_outputs: list[Node] = []
    result_models: list[Node] = []
    n_predictions = 0
    try:
        for p in inputs:
            if p in input_models:
                model = input_models[p] or modelfile.record_model_file(store, p, load=load)
                input_models[p] = model
                producers = [r for r in store.generators(model.id) if r != run.id]
                store.add_edges([Edge(run.id, model.id, "used", "model"),
                                 *(Edge(run.id, r, "was_informed_by") for r in producers)], event_type="used")
            else:
                run.log_input(p, role="input")
        if of_node is None and predictions is not None:
            of_node = next(iter(input_models.values()))
        # a declared output already there before the program ran, and left as it was,
        # was not written by it: crediting the run with it would be false provenance
        declared = [*outputs, *(m for m in models if m not in outputs), *([predictions] if predictions else [])]
        stamps = {p: _file_stamp(p) for p in declared}
        started = time.monotonic()
        terminal = _terminal_fd()
        with _Forwarder() as forward:
            try:
                # a process group of its own: a signal to `lineage run` reaches every
                # process the program started (a shell script's children too)
                # the program's own runs (a script using lineage, a nested `lineage
                # run`) nest in this one
                env = {**os.environ, PARENT_RUN_ENV: run.id}
                proc = subprocess.Popen(cmd, env=env, **_own_group())
            except OSError as exc:
                # the shell's codes: 126 found but not executable, 127 not found
                code = 126 if isinstance(exc, PermissionError) else 127
                reason = f"could not start {cmd[0]}: {exc.strerror or exc}"
                run.end("failed", exit_code=code, error=reason)
                return CommandResult(run.node, code, "failed", reason, 0.0)
            forward.pgid = proc.pid
            if forward.received is not None:  # a signal that came while the program was starting
                forward.resend()
            _hand_terminal(terminal, proc.pid)
            try:
                raw = _wait(proc, terminal)
            finally:
                _hand_terminal(terminal, os.getpgrp())
        elapsed = time.monotonic() - started
        code, how = _describe_exit(raw)
        if forward.received is not None:
            sig = signal.Signals(forward.received).name
            how = f"stopped by {sig} (passed on to the command)"
            if raw >= 0 and code == 0:
                code = 128 + forward.received
        missing: list[str] = []
        untouched = {p for p, stamp in stamps.items() if stamp is not None and stamp == _file_stamp(p)}
        declared_models = {os.path.normpath(m) for m in models}
        for p in [*outputs, *(m for m in models if m not in outputs)]:
            if not os.path.exists(p) or p in untouched:
                missing.append(f"{p} (left as it was)" if p in untouched else p)
                continue
            is_model = os.path.normpath(p) in declared_models or (detect and os.path.isfile(p) and modelfile.looks_like_model(p))
            if is_model:
                result_models.append(modelfile.record_model_file(store, p, load=load, generated_by=run.id))
            else:
                result_outputs.append(run.log_output(p))
        if predictions is not None:
            if not os.path.exists(predictions) or predictions in untouched:
                missing.append(f"{predictions} (left as it was)" if predictions in untouched else predictions)
            else:
                result_outputs.append(run.log_output(predictions))
                if code == 0 and forward.received is None:
                    assert of_node is not None
                    from .predfiles import log_prediction_file

                    n_predictions = len(log_prediction_file(store, of_node, predictions, id_column=id_column,
                                                            output_column=output_column, run=run.id,
                                                            inputs_from=scored_from))
        if code == 0 and not missing and forward.received is None:
            run.end("finished", exit_code=0)
            return CommandResult(run.node, 0, "finished", None, elapsed, result_outputs, result_models, n_predictions)
        recorded_code = code
        if forward.received is not None or code != 0:
            why = how
        else:
            why = f"declared output{'s' if len(missing) > 1 else ''} not written: {', '.join(missing)}"
            code = 1  # the program succeeded (recorded as such), the step did not: `make` must not go on
        run.end("failed", exit_code=recorded_code, error=why)
        return CommandResult(run.node, code, "failed", why, elapsed, result_outputs, result_models, n_predictions)
    except BaseException as exc:
        if not run._ended:
            reason = str(exc) if isinstance(exc, InvalidInputError) else "lineage run was interrupted"
            run.end("failed", error=reason)
        raise
