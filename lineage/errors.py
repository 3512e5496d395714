"""The exception tree. Every error a user can cause is a LineageError with a one-line
message that names the problem and, where there is one, the fix.

    LineageError                  root: catch this to catch everything of ours
    ├── NoStoreError              a read found no store (run `lineage init`)
    ├── SchemaVersionError        the store was written by a newer lineage
    ├── StoreCorruptError         the file is not a lineage store, or SQLite says it is damaged
    ├── StoreBusyError            another writer held the store's lock past the busy wait (30 s)
    ├── StoreUnavailableError     the store's server (PostgreSQL) cannot be reached; the write was not kept
    ├── DiskFullError             the disk filled during a write (nothing of it was kept)
    ├── ReferenceLookupError      (abstract) a reference did not name exactly one node
    │   ├── NodeNotFoundError     nothing matches the reference
    │   └── AmbiguousIdError      several nodes match; the message lists them
    ├── InvalidInputError         bad arguments: a missing file, an unsupported object, a bad value
    │   ├── BadArgumentError      an argument of the wrong form (a --head that is not hex): bad usage, exit 2
    │   └── FilterSyntaxError     a `runs --where` expression does not parse (names the position)
    ├── WriteRefusedError         a write that would break a rule (a changed param, a closed run)
    ├── IntegrityError            verification found tampering (carries the VerifyReport)
    ├── RenderError               a diagram could not be drawn (no `dot` program, unknown format)
    └── UnsupportedError          an MLflow call lineage does not provide (also an AttributeError)

Also here: `foreign`, the boundary with code lineage does not own (a user's model, the
classes a pickle names, another tool's library), which turns whatever it raises into
one InvalidInputError line; and `log`, the ``lineage`` logger, on which whatever lineage
deliberately carries on from is said.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

#: the one logger: what lineage deliberately swallows (a courtesy that failed, a retry)
#: is said here, so a missing diagram or description leaves a trace
log = logging.getLogger("lineage")


class LineageError(Exception):
    """Root of every error lineage raises on purpose.

    It is also ``mlflow.exceptions.MlflowException`` for ``import lineage as mlflow``,
    so it answers as that does: ``error_code`` (MLflow's name for the kind of error,
    which scripts compare), ``message`` and ``get_http_status_code()``."""

    #: exit code the CLI uses for this error (DESIGN.md §5)
    exit_code = 1
    #: MLflow's ``ErrorCode`` name for this kind of error
    error_code = "INTERNAL_ERROR"
    _HTTP = {"INVALID_PARAMETER_VALUE": 400, "RESOURCE_ALREADY_EXISTS": 400, "RESOURCE_DOES_NOT_EXIST": 404, "TEMPORARILY_UNAVAILABLE": 503,
             "NOT_IMPLEMENTED": 501}

    @property
    def message(self) -> str:
        return str(self)

    def get_http_status_code(self) -> int:
        return self._HTTP.get(self.error_code, 500)


class NoStoreError(LineageError):
    """Raised by a read when no store exists where one was looked for."""


class SchemaVersionError(LineageError):
    """Raised when a store's schema is newer than this version of lineage understands."""


class StoreCorruptError(LineageError):
    """Raised when a file is not a lineage store or SQLite reports it damaged."""


class StoreBusyError(LineageError):
    """Raised when another writer holds the store's write lock past the busy wait."""

    error_code = "TEMPORARILY_UNAVAILABLE"


class StoreUnavailableError(LineageError):
    """Raised when a PostgreSQL store's server cannot be reached (down, restarting, the
    connection dropped mid-write); an interrupted write was rolled back whole."""

    error_code = "TEMPORARILY_UNAVAILABLE"


class DiskFullError(LineageError):
    """Raised when the disk fills during a write; the write was rolled back whole."""


class ReferenceLookupError(LineageError):
    """Base of the errors raised when a reference does not name exactly one node."""

    error_code = "INVALID_PARAMETER_VALUE"


class NodeNotFoundError(ReferenceLookupError):
    """Raised when no node matches a reference."""

    error_code = "RESOURCE_DOES_NOT_EXIST"

    def __init__(self, ref: str, hint: str = "", *, message: str | None = None) -> None:
        self.ref = ref
        if message is not None:  # the node was found but not the thing asked of it (a metric)
            super().__init__(message)
            return
        msg = f"no node matches {ref!r}"
        super().__init__(msg + (f" ({hint})" if hint else " (see `lineage ls`)"))


class AmbiguousIdError(ReferenceLookupError):
    """Raised when a reference matches several nodes; the message lists the candidates."""

    #: counts of matches at or past this are a floor (the store stops counting there)
    COUNT_CAP = 10_000

    def __init__(self, ref: str, candidates: Sequence[str], *, total: int | None = None,
                 hint: str = "use a longer prefix or kind:name") -> None:
        """``candidates``: some or all of the matches; ``total``: how many there are
        when more than the candidates (counted up to `COUNT_CAP`); ``hint``: how to
        name one of them."""
        self.ref = ref
        self.candidates = list(candidates)
        self.total = max(total or 0, len(self.candidates))
        shown = ", ".join(self.candidates[:8])
        rest = self.total - len(self.candidates[:8])
        more = f" and {'at least ' if self.total > self.COUNT_CAP else ''}{rest:,} more" if rest > 0 else ""
        super().__init__(f"{ref!r} is ambiguous: it matches {shown}{more}; {hint}")


class InvalidInputError(LineageError):
    """Raised for bad arguments: a missing file, an unsupported object, a malformed value."""

    error_code = "INVALID_PARAMETER_VALUE"


class BadArgumentError(InvalidInputError):
    """Raised when an argument has the wrong form (a head hash that is not hex): bad
    usage, exit 2, as against a well-formed one that names nothing (exit 1)."""

    exit_code = 2


class FilterSyntaxError(InvalidInputError):
    """Raised when a filter expression does not parse; `.position` is the 0-based offset."""

    exit_code = 2

    def __init__(self, message: str, position: int | None = None) -> None:
        self.position = position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"invalid filter{where}: {message}")


class WriteRefusedError(LineageError):
    """Raised when a write would break a rule of the record (e.g. changing a logged param)."""

    error_code = "INVALID_PARAMETER_VALUE"  # as MLflow answers a changed param or a closed run


class AlreadyExistsError(WriteRefusedError):
    """Raised when something created by name exists already (an experiment, a
    registered model): MLflow's ``RESOURCE_ALREADY_EXISTS``, which scripts test for to
    go on with the one there."""

    error_code = "RESOURCE_ALREADY_EXISTS"


class IntegrityError(LineageError):
    """Raised when verification finds the record altered; `.report` holds the details."""

    def __init__(self, message: str, report: Any = None) -> None:
        self.report = report
        super().__init__(message)


class RenderError(LineageError):
    """Raised when a diagram cannot be drawn (no Graphviz `dot`, an unknown format)."""


class UnsupportedError(LineageError, AttributeError):
    """Raised when code asks for an MLflow call that lineage does not provide (tracing,
    GenAI, projects, deployments). Also an AttributeError, so ``hasattr`` answers False."""

    error_code = "NOT_IMPLEMENTED"

    def __init__(self, call: str, hint: str = "") -> None:
        self.call = call
        msg = f"lineage does not support mlflow.{call}" + (f" ({hint})" if hint else "")
        super().__init__(msg + "; keep real MLflow for it, with MLFLOW_TRACKING_URI=lineage:///DIR to record into lineage too")


# ---------------------------------------------------------------------------
# the boundary with code lineage does not own


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (at most 300 characters), or its type's name
    when it has none: what a one-line error quotes of a foreign exception."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


@contextmanager
def foreign(message: str, *, error: type[LineageError] = InvalidInputError) -> Iterator[None]:
    """Run code lineage does not own: a user's model (``predict``, ``score``,
    ``get_params``), the classes a pickle names, another tool's library (MLflow, DVC,
    prov, pandas' parsers). Their exceptions have no common base, so whatever they raise
    becomes ``error(message)`` (InvalidInputError unless given), one line, with
    ``{reason}`` in ``message`` replaced by the exception's first line and ``{type}`` by
    its class name. lineage's own errors, and BaseExceptions that are not Exceptions
    (KeyboardInterrupt, SystemExit), pass through unchanged.

    Raises ``error`` as said; callers that deliberately carry on catch it and log.
    """
    try:
        yield
    except LineageError:
        raise
    except Exception as exc:  # boundary 1 of 5: foreign code raises any type; translated, not swallowed
        text = message.replace("{reason}", first_line(exc)).replace("{type}", type(exc).__name__)
        log.debug("%s", text, exc_info=True)  # the one line the user sees; the traceback for whoever debugs
        raise error(text) from None
