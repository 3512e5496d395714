"""Writes queued and committed in the background: MLflow's async logging
(``synchronous=False``, ``MLFLOW_ENABLE_ASYNC_LOGGING``) for one store.

A queued write is a callable that writes through the store's usual calls. One thread
per store takes everything queued so far and runs it in one transaction, each call
a guarded unit of it (`Store.atomic`): while it commits, the next calls queue up, so
a training loop logging a metric per step pays one commit per batch instead of one
per call. A call the store refuses (a param re-logged with another value) fails
alone; should a batch fail part-way (a full disk), its calls are written again one
transaction each, so each gets its own answer. Failures are reported by
`RunOperations.wait` and logged as warnings, so none goes unseen.

Order is kept: any other write to the store, from any thread, first waits for what
is queued (`Store._transaction` calls `AsyncWriter.drain` first), so a run ends after its queued
metrics, and a tag set synchronously after an asynchronous one stays the latest.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import LineageError
from ..model import env
from .sqlite import fork_gate

if TYPE_CHECKING:
    from .core import Store

#: MLflow's switch for async logging (`synchronous=None` reads it); `lineage.config.enable_async_logging` sets it
ASYNC_ENV = "MLFLOW_ENABLE_ASYNC_LOGGING"

#: calls written per transaction at most (a transaction of ~0.1 s: other writers wait no longer)
MAX_BATCH = 1000
#: queued calls past which a caller waits for the writer (memory stays bounded)
MAX_QUEUED = 100_000

_log = logging.getLogger("lineage")
_writers: weakref.WeakSet[AsyncWriter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for writer in list(_writers):
        writer._start_empty()


if hasattr(os, "register_at_fork"):  # (POSIX)
    os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def drain_all() -> None:
    """Wait until every store's queued writes are written (`flush_async_logging`; at exit)."""
    for writer in list(_writers):
        writer.drain()


def wanted(synchronous: bool | None) -> bool:
    """Whether a call with MLflow's ``synchronous`` argument is queued: ``False``
    queues, ``True`` writes now, ``None`` follows `ASYNC_ENV` (off unless set true)."""
    if synchronous is None:
        return env(ASYNC_ENV).strip().lower() in ("1", "true", "yes", "on")  # (read on every call, as MLflow does)
    return not synchronous


class RunOperations:
    """What an asynchronous call returns (MLflow's ``RunOperations``): `wait` blocks
    until its writes are committed and raises a LineageError naming every one that
    failed."""

    def __init__(self, tickets: Iterable[tuple[AsyncWriter, int]] = ()) -> None:
        self._tickets = list(tickets)

    def wait(self) -> None:
        errors = [e for e in (w.result(t) for w, t in self._tickets) if e is not None]
        if errors:
            raise LineageError(f"asynchronous logging failed: {_summary(errors)}")

    def __repr__(self) -> str:
        return f"RunOperations({len(self._tickets)} queued writes)"


def _summary(errors: Iterable[BaseException]) -> str:
    """The errors as one line, each distinct one once, with its count when repeated
    (a busy store fails a whole batch with the same error)."""
    counts: dict[str, int] = {}
    for e in errors:
        text = f"{type(e).__name__}: {e}"
        counts[text] = counts.get(text, 0) + 1
    return "; ".join(text if n == 1 else f"{text} (×{n})" for text, n in counts.items())


def combine(operations: Sequence[RunOperations | None]) -> RunOperations:
    """One `RunOperations` waiting for all of ``operations``."""
    return RunOperations(t for op in operations if op is not None for t in op._tickets)


class AsyncWriter:
    """The queue of one store and the thread that writes it (started on first use)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._closed = False
        self._start_empty()
        _writers.add(self)

    def _start_empty(self) -> None:
        """No calls queued, no thread (made; and in a forked child, where the parent's
        thread and queue are not, and its lock may have been held at the fork)."""
        self._queue: deque[tuple[int, Callable[[], Any]]] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._issued = 0  # tickets handed out
        self._done = 0  # every ticket up to this one has its answer
        self._failures: dict[int, BaseException] = {}
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> bool:
        """Calls queued or being written (read without the lock: a hint for `drain`)."""
        return self._done != self._issued

    def on_writer_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, call: Callable[[], Any]) -> RunOperations:
        """Queue ``call``; it is written by the writer thread, in order."""
        with self._cond:
            if self._closed:
                raise LineageError(f"the lineage store {self._store.path} is closed; open it again with lineage.open()")
            while len(self._queue) >= MAX_QUEUED:
                self._cond.wait()
            self._issued += 1
            ticket = self._issued
            self._queue.append((ticket, call))
            if self._thread is None:
                self._start_thread()
            self._cond.notify_all()
        return RunOperations([(self, ticket)])

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lineage-async-log", daemon=True)
        self._thread.start()

    def _wait_until(self, ticket: int) -> None:
        """Wait (holding the lock) until every ticket up to ``ticket`` has its answer.
        Should the thread have ended on an error of its own (not a call's: those are
        answers), the next one is started for what is left."""
        while self._done < ticket:
            if self._queue and (self._thread is None or not self._thread.is_alive()):
                self._start_thread()
            self._cond.wait(1.0)

    def result(self, ticket: int) -> BaseException | None:
        """Wait for ``ticket``'s answer: None when written, else the error."""
        with self._cond:
            self._wait_until(ticket)
            return self._failures.get(ticket)  # (kept: a second wait gives the same answer)

    def drain(self) -> None:
        """Wait until everything queued so far is written. On the writer thread itself
        (a queued call writing, or flushing) it returns at once: the writer writes in
        order, and waiting for itself would never end."""
        if self.on_writer_thread():
            return
        with self._cond:
            self._wait_until(self._issued)

    def close(self) -> None:
        """Write what is queued, then stop the thread; idempotent."""
        self.drain()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
                self._cond.notify_all()  # (room in the queue)
            failures: dict[int, BaseException] = {}
            try:
                with fork_gate.passage():  # (a fork waits for the batch: no child starts inside SQLite)
                    failures = self._write(batch)
            except BaseException as exc:  # (an error of the writer itself: the thread ends, the next wait or call starts another)
                failures = {ticket: exc for ticket, _ in batch}
                self._thread = None
                raise
            finally:  # every caller gets its answer, whatever happened
                with self._cond:
                    self._failures.update(failures)
                    self._done = batch[-1][0]
                    self._cond.notify_all()

    def _write(self, batch: list[tuple[int, Callable[[], Any]]]) -> dict[int, BaseException]:
        """Write ``batch`` in one transaction; returns the failures by ticket."""
        failures: dict[int, BaseException] = {}
        began = False
        try:
            with self._store.transaction():
                began = True
                for ticket, call in batch:
                    try:
                        call()
                    except LineageError as exc:  # refused before it wrote: the rest goes on
                        failures[ticket] = exc
        except BaseException as exc:  # noqa: BLE001 - boundary 4 of 5: a batch failed part-way (a full disk, a lost connection, a call raising SystemExit); each call alone gets its answer
            if began:
                _log.debug("asynchronous batch of %d writes failed (%s); writing them one by one", len(batch), exc)
                failures = self._one_by_one(batch)
            else:  # the store's lock was never had (a busy store): one by one would wait as long for each
                failures = dict.fromkeys((ticket for ticket, _ in batch), exc)
        if failures:
            _log.warning("lineage: %d asynchronous write%s failed: %s", len(failures), "s" * (len(failures) > 1),
                         _summary(failures.values()))
        return failures

    def _one_by_one(self, batch: list[tuple[int, Callable[[], Any]]]) -> dict[int, BaseException]:
        """Each call of ``batch`` in a transaction of its own; returns the failures by ticket."""
        failures: dict[int, BaseException] = {}
        for ticket, call in batch:
            try:
                with self._store.transaction():
                    call()
            except BaseException as one:  # noqa: BLE001 - boundary 5 of 5: the writer thread must not die of a call (in a thread, SystemExit ends only the thread); the caller hears of it through RunOperations.wait, and the log
                failures[ticket] = one
        return failures
