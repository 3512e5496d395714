"""Predictions from a live service: a logger whose ``log()`` costs microseconds.

A request handler must not wait for a SQLite commit. `PredictionLogger.log` only
appends the call's rows to a bounded in-memory queue; a background thread takes
what has gathered (up to ``max_batch`` rows, or whatever is there after
``max_delay`` seconds) and writes it as one bulk ledger event through the same path
as `log_predictions` (`Store.write_bulk`), so one prediction can still be redacted
alone. Input digests, ids and JSON are computed on that thread, not the caller's.

When the queue is full, ``log()`` waits for room by default (nothing is lost); with
``on_full="drop"`` it returns at once and the rows are counted, and every count is
recorded in the ledger as a ``predictions_dropped`` event, never silently lost.
``flush()`` returns when everything logged before it is written; ``close()``
flushes and stops the thread; a flush also runs at interpreter exit, and when the
process is sent SIGTERM while that signal is still Python's default (which exits
without running ``atexit``: a plain service stopped by its supervisor would lose its
queue). A process with its own SIGTERM handler keeps it, and closes its loggers.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import hashing
from .errors import InvalidInputError, LineageError, WriteRefusedError
from .model import uuid7_batch
from .store import Store, fork_gate

log = logging.getLogger("lineage")

#: ``on_full`` choices
ON_FULL = ("block", "drop")

#: how long SIGTERM waits for the loggers' queues to be written before the process ends
TERM_FLUSH_SECONDS = 10.0

_live: weakref.WeakSet[PredictionLogger] = weakref.WeakSet()


def _flush_on_sigterm() -> None:
    """Make SIGTERM write the queues before the process ends, when SIGTERM is still
    the default (a handler the process set stays) and this is the main thread (the
    only one that may set one)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # (an embedded interpreter may refuse)
        return


def _on_sigterm(signum: int, frame: Any) -> None:
    # The handler runs on the main thread, between any two of its bytecodes, perhaps
    # inside a logger's lock: the flush runs on a thread of its own, then the signal
    # is delivered again with its default action, so the process still ends by
    # SIGTERM (what its supervisor expects). A second SIGTERM ends it at once.
    signal.signal(signum, signal.SIG_DFL)
    threading.Thread(target=_flush_then_end, args=(signum,), name="lineage-sigterm", daemon=True).start()


def _flush_then_end(signum: int) -> None:
    try:
        for logger in list(_live):
            try:
                logger.flush(timeout=TERM_FLUSH_SECONDS)
            except LineageError as exc:  # (ending anyway: say what was not written)
                log.warning("lineage: at SIGTERM, predictions of %s not written: %s", logger.model, exc)
    finally:  # whatever happened, the process ends as it was told to
        os.kill(os.getpid(), signum)


def _copied(values: Any) -> Any:
    """``values`` as they are now: an array's, a frame's or a list's copy (with its
    array rows copied too), anything else as it is."""
    if isinstance(values, list):
        return [v.copy() if hasattr(v, "ndim") else v for v in values]
    return values.copy() if hasattr(values, "ndim") and hasattr(values, "copy") else values


class PredictionLogger:
    """Logs predictions of one model from any thread; see the module's docstring.

    Get one with ``lg.prediction_logger(model, max_batch=1000, max_delay=0.5)``. Use
    it as a context manager, or call `close` (a flush at exit covers a forgotten one).
    """

    def __init__(self, store: Store, model: Any, *, max_batch: int = 1000, max_delay: float = 0.5,
                 max_queue: int = 100_000, on_full: str = "block", keep_inputs: bool = False,
                 decision: Mapping[str, Any] | None = None) -> None:
        from .tracking import decision_rule, ensure_actor, model_reference

        if not isinstance(max_batch, int) or max_batch < 1:
            raise InvalidInputError(f"max_batch must be a positive integer, got {max_batch!r}")
        if not isinstance(max_delay, (int, float)) or not max_delay >= 0:
            raise InvalidInputError(f"max_delay must be a number of seconds >= 0, got {max_delay!r}")
        if not isinstance(max_queue, int) or max_queue < max_batch:
            raise InvalidInputError(f"max_queue must be an integer >= max_batch ({max_batch}), got {max_queue!r}")
        if on_full not in ON_FULL:
            raise InvalidInputError(f"on_full must be one of {', '.join(ON_FULL)}, got {on_full!r}")
        self.store = store
        self.model = model_reference(store, model)
        # what `log_predictions` records with a batch, for every batch of this logger: the
        # rule applied to the score, and each row's input values (so each decision can be
        # explained later; erased with its prediction by `redact`)
        self.decision = None if decision is None else decision_rule(decision)
        self.keep_inputs = bool(keep_inputs)
        # the service account its batches are recorded by, as a node the reports
        # name, written here in the caller's thread, not by each flush
        ensure_actor(store)
        self.max_batch = max_batch
        self.max_delay = float(max_delay)
        self.max_queue = max_queue
        self.on_full = on_full
        self._cond = threading.Condition(threading.Lock())
        self._items: list[tuple[Any, Any, Any, Any, float, int]] = []
        self._pending = 0  # rows queued, not yet taken by the writer
        self._in_flight = 0  # rows taken, being written
        self._first_at = 0.0
        self._flush_wanted = False
        self._closed = False
        self.logged = 0  # rows accepted by log()
        self.written = 0  # rows in the ledger
        self.dropped = 0  # rows refused because the queue was full (on_full="drop")
        self.rejected = 0  # rows the writer could not record (inputs it cannot digest)
        self._dropped_recorded = 0
        self._rejected_recorded = 0
        self._errors = 0
        self.last_error: str | None = None
        self._start_writer()
        atexit.register(self.close)
        _live.add(self)
        _flush_on_sigterm()

    def _start_writer(self) -> None:
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name=f"lineage-predictions-{self.model[6:18]}", daemon=True)
        self._thread.start()

    def _after_fork(self) -> None:
        """A forked worker (gunicorn's preload, multiprocessing) has no writer thread and
        may have inherited a held lock: it gets its own, and an empty queue (the
        parent writes what it had queued; copying it would record it twice)."""
        self._cond = threading.Condition(threading.Lock())
        self._items = []
        self._pending = self._in_flight = 0
        self._flush_wanted = False
        self.logged = self.written = self.dropped = self.rejected = 0
        self._dropped_recorded = self._rejected_recorded = 0
        self._start_writer()

    # -- the caller's side: cheap --------------------------------------------

    def log(self, inputs: Any, outputs: Any, request_ids: Sequence[Any] | None = None, scores: Any = None) -> None:
        """Queue predictions: ``inputs`` rows (a list of rows, an array, a DataFrame),
        their ``outputs``, optional ``request_ids`` and ``scores``, one per row. Returns
        at once (or, with the queue full and ``on_full="block"``, once there is room).

        Raises InvalidInputError when the lengths differ, WriteRefusedError after close.
        """
        try:
            n = len(outputs)
        except TypeError:
            raise InvalidInputError("outputs must be a sequence with one item per prediction") from None
        try:
            # (a scipy.sparse matrix has rows but no len(): TF-IDF features are one)
            rows = int(inputs.shape[0]) if hashing.is_sparse(inputs) and len(inputs.shape) == 2 else len(inputs)
            if rows != n:
                raise InvalidInputError(f"{rows} input rows but {n} outputs: they must match one to one")
            if request_ids is not None and len(request_ids) != n:
                raise InvalidInputError(f"{len(request_ids)} request ids for {n} predictions")
            if scores is not None and len(scores) != n:
                raise InvalidInputError(f"{len(scores)} scores for {n} predictions")
        except TypeError:
            raise InvalidInputError("inputs, request_ids and scores must be sequences with one item per prediction") from None
        # (a copy, as the call returns before the rows are written: a service that
        # reuses its input buffer must not change what it logged)
        inputs, outputs = _copied(inputs), _copied(outputs)
        scores = _copied(scores) if scores is not None else None
        if os.getpid() != self._pid:
            self._after_fork()
        t = time.time()
        with self._cond:
            if self._closed:
                raise WriteRefusedError("this prediction logger is closed; get a new one with lg.prediction_logger()")
            while self._pending + self._in_flight + n > self.max_queue and self._pending + self._in_flight:
                if self.on_full == "drop":
                    self.dropped += n
                    self._cond.notify_all()
                    return
                self._cond.wait()
                if self._closed:
                    raise WriteRefusedError("this prediction logger was closed while waiting for room")
            if not self._pending:
                self._first_at = time.monotonic()
            self._items.append((inputs, outputs, request_ids, scores, t, n))
            self._pending += n
            self.logged += n
            if self._pending >= self.max_batch:
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> int:
        """Wait until everything logged so far is in the ledger; returns the rows
        written so far in total. Raises LineageError if the writer keeps failing past
        ``timeout`` seconds (default: wait as long as it takes)."""
        if os.getpid() != self._pid:
            self._after_fork()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush_wanted = True
            self._cond.notify_all()
            while (self._pending or self._in_flight) and self._thread.is_alive():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise LineageError(f"predictions not written after {timeout}s: {self.last_error or 'the store is busy'}")
                self._cond.wait(left if left is not None else 0.5)
            written = self.written
        return written

    def close(self) -> None:
        """Flush, record any drop counts, and stop the writer thread. Idempotent."""
        if os.getpid() != self._pid:
            self._after_fork()  # a forked child's own writer flushes its own rows
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        atexit.unregister(self.close)
        _live.discard(self)

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<PredictionLogger {self.model} logged={self.logged} written={self.written} "
                f"dropped={self.dropped}>")

    # -- the writer thread ------------------------------------------------------

    def _ready(self) -> bool:
        return bool(self._pending) and (
            self._closed or self._flush_wanted or self._pending >= self.max_batch
            or time.monotonic() - self._first_at >= self.max_delay)

    def _run(self) -> None:
        backoff = 0.0
        unwritten: list[tuple[Any, ...]] = []  # rows built but not yet in the ledger (the store failed)
        while True:
            with self._cond:
                while not unwritten and not self._ready() and not (self._closed and not self._pending):
                    if self._pending:
                        self._cond.wait(max(0.0, self._first_at + self.max_delay - time.monotonic()))
                    else:
                        self._flush_wanted = False
                        self._cond.wait()
                if backoff:
                    self._cond.wait(backoff)  # the store failed: let it recover (a close still wakes us)
                items, self._items = self._items, []
                self._in_flight += self._pending
                self._pending = 0
                closing = self._closed
                dropped = self.dropped - self._dropped_recorded
            if items:
                unwritten += self._rows(items)
            ok = self._write(unwritten) if unwritten else True
            if ok:
                unwritten = []
                if dropped or self.rejected > self._rejected_recorded:
                    ok = self._record_losses(dropped)
            with self._cond:
                self._in_flight = len(unwritten)
                backoff = 0.0 if ok else min(1.0, backoff * 2 or 0.05)
                self._cond.notify_all()  # room for blocked callers; news for flush()
                if closing and not self._pending and not unwritten and ok:
                    return
                if closing and not ok and self._errors > 20:
                    log.error("lineage: %d predictions of %s could not be written at exit: %s",
                              len(unwritten) + self._pending, self.model, self.last_error)
                    self._in_flight = self._pending = 0
                    self._cond.notify_all()
                    return

    def _rows(self, items: list[tuple[Any, Any, Any, Any, float, int]]) -> list[tuple[Any, ...]]:
        """Ledger rows for queued calls. Calls that pass plain lists (the common case of
        a service logging one request) are digested together in one `row_digests` call;
        a call whose inputs cannot be digested is counted in ``rejected`` (and recorded
        as such), the others go on."""
        from .tracking import output_json

        digests: list[str] = []
        outs: list[Any] = []
        reqs: list[Any] = []
        scores: list[Any] = []
        times: list[str] = []
        kept: list[str] = []
        plain: list[tuple[Any, Any, Any, Any, float, int]] = []

        def take(group: list[tuple[Any, Any, Any, Any, float, int]]) -> None:
            rows: list[Any] = []
            for inputs, *_ in group:
                rows += inputs
            try:
                d = hashing.row_digests(rows)
                k = self._kept(rows, len(rows)) if self.keep_inputs else []
            except (InvalidInputError, TypeError, ValueError):
                for item in group:  # find the bad call; keep the others
                    self._take_one(item, digests, outs, reqs, scores, times, kept)
                return
            digests.extend(d)
            kept.extend(k)
            stamp = self._stamp
            for _, outputs, request_ids, score, t, n in group:
                outs.extend(outputs)
                reqs.extend([None] * n if request_ids is None else [None if x is None else str(x) for x in request_ids])
                scores.extend([None] * n if score is None else score)
                times.extend([stamp(t)] * n)

        for item in items:
            inputs, outputs, request_ids, score, _, _ = item
            if (type(inputs) is list and type(outputs) is list and (request_ids is None or type(request_ids) is list)
                    and (score is None or (type(score) is list and len(score) == item[5]))):
                plain.append(item)
                continue
            if plain:
                take(plain)
                plain = []
            self._take_one(item, digests, outs, reqs, scores, times, kept)
        if plain:
            take(plain)
        ids = uuid7_batch(len(outs), "prediction:")
        rows = zip(ids, itertools.repeat(self.model), digests, map(output_json, outs), scores, reqs, times)
        if self.keep_inputs:  # (each row carries its inputs' JSON to `_write`, retries included)
            return [(*r, k) for r, k in zip(rows, kept)]
        return list(rows)

    def _take_one(self, item: tuple[Any, Any, Any, Any, float, int], digests: list[str], outs: list[Any],
                  reqs: list[Any], scores: list[Any], times: list[str], kept: list[str]) -> None:
        from .tracking import as_list

        inputs, outputs, request_ids, score, t, n = item
        try:
            d = hashing.row_digests(inputs)
            k = self._kept(inputs, n) if self.keep_inputs else []
            o = as_list(outputs)
            r = [None] * n if request_ids is None else [None if x is None else str(x) for x in as_list(request_ids, "request_ids")]
            s = [None] * n if score is None else as_list(score, "scores")
            if not (len(d) == len(o) == len(r) == len(s) == n):
                raise InvalidInputError(f"{n} predictions with {len(d)} input rows, {len(o)} outputs, "
                                        f"{len(r)} request ids, {len(s)} scores")
        except (InvalidInputError, TypeError, ValueError) as exc:
            self.rejected += n
            self.last_error = str(exc)
            log.warning("lineage: %d predictions not recorded: %s", n, exc)
            return
        digests += d
        outs += o
        reqs += r
        scores += s
        times += [self._stamp(t)] * n
        kept += k

    def _kept(self, inputs: Any, n: int) -> list[str]:
        """Each input row's values as the canonical JSON `log_predictions` keeps."""
        from .model import canonical_json
        from .tracking import input_rows

        return [canonical_json(r) for r in input_rows(self.store, self.model, inputs, n)]

    _second = -1
    _prefix = ""

    def _stamp(self, t: float) -> str:
        """``now_iso()``'s format for time ``t``; the date part is formatted once a second."""
        sec = int(t)
        if sec != self._second:
            self._second, self._prefix = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._prefix}.{int((t - sec) * 1e6):06d}Z"

    def _attempt(self, what: str, write: Callable[[], object]) -> bool:
        """Run one write of the writer thread: True when it committed; False when it
        failed, the error kept in `last_error` and logged, for a later retry."""
        try:
            with fork_gate.passage():  # a fork waits for this write (see store.ForkGate)
                write()
        except Exception as exc:  # noqa: BLE001 - boundary 3 of 5: the writer thread must not die; a busy or failing store (either backend's errors) keeps the rows for a retry
            self._errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("lineage: %s failed (%s); retrying", what, self.last_error)
            return False
        return True

    def _write(self, rows: list[tuple[Any, ...]]) -> bool:
        payload: dict[str, Any] = {"model": self.model, "count": len(rows), "source": "logger"}
        if self.decision is not None:
            payload["decision"] = self.decision
        if self.keep_inputs:  # the predictions and their inputs appear together or not at all
            writes = [("predictions", {**payload, "inputs_kept": True}, "predictions", [r[:7] for r in rows]),
                      ("prediction_inputs", {"model": self.model, "count": len(rows)}, "prediction_inputs",
                       [(r[0], r[7]) for r in rows])]
            write: Callable[[], object] = lambda: self.store.write_bulks(writes)  # noqa: E731
        else:
            write = lambda: self.store.write_bulk("predictions", payload, "predictions", rows)  # noqa: E731
        if not self._attempt(f"writing {len(rows)} predictions", write):
            return False
        self.written += len(rows)
        return True

    def _record_losses(self, dropped: int) -> bool:
        rejected = self.rejected - self._rejected_recorded
        payload = {"model": self.model, "dropped": dropped, "rejected": rejected,
                   "reason": "queue full" if dropped else (self.last_error or "")}
        if not self._attempt("recording lost predictions", lambda: self.store.write("predictions_dropped", payload)):
            return False
        self._dropped_recorded += dropped
        self._rejected_recorded += rejected
        return True
