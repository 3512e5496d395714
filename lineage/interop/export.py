"""`lineage export`: one entry point for every output format."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from ..store import Store

FORMATS = ("openlineage", "prov-json", "prov-n", "prov-xml", "graphml", "json")


@dataclass
class ExportResult:
    """What an export wrote: ``count`` records (events, PROV records, nodes) to ``path``
    and/or posted to ``url``, in ``seconds``."""

    format: str
    count: int
    path: str | None = None
    url: str | None = None
    seconds: float = 0.0
    bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "count": self.count, "path": self.path, "url": self.url,
                "seconds": round(self.seconds, 4), "bytes": self.bytes}


def export(store: Store, fmt: str, ref: str | None = None, path: str | os.PathLike[str] | None = None, *,
           url: str | None = None, namespace: str = "lineage") -> ExportResult:
    """Export the whole store, or the trace of ``ref``, as ``fmt`` to ``path`` (``-``:
    stdout, OpenLineage only) and/or, for OpenLineage, POST it to ``url``.

    Raises InvalidInputError for an unknown format or a missing destination,
    MissingExtraError when PROV is asked for without the prov package."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if path is None and url is None:
        raise InvalidInputError("say where to write: -o FILE (or --url URL for openlineage)")
    if url is not None and fmt != "openlineage":
        raise InvalidInputError("--url posts OpenLineage events; use it with --format openlineage")
    if path is not None and os.fspath(path) == "-" and fmt != "openlineage":
        raise InvalidInputError(f"{fmt} is written to a file: give -o FILE")
    from .graph import scope

    t0 = time.perf_counter()
    # OpenLineage speaks of runs and their inputs and outputs: the (millions of)
    # predictions, which no run produced, are not read for it
    # and its events are made of runs' inputs and outputs: no other relation is read
    ol = fmt == "openlineage"
    sc = scope(store, ref, predictions=not ol, rels=("used", "was_generated_by") if ol else None)
    target = None if path is None else os.fspath(path)
    if target and target != "-":
        parent = Path(target).parent
        if not parent.is_dir():
            raise InvalidInputError(f"cannot write {target}: no such directory {parent}")
    if fmt == "openlineage":
        from . import openlineage

        count = 0
        if target is not None:
            count = openlineage.write_events(sc, target, namespace=namespace)
        if url is not None:
            count = openlineage.post_events(openlineage.events(sc, namespace=namespace), url)
    elif fmt.startswith("prov-"):
        from . import prov

        assert target is not None
        count = prov.write(sc, target, fmt)
    elif fmt == "graphml":
        from .graph import write_graphml

        assert target is not None
        count = write_graphml(sc, target)
    else:
        from .graph import write_json

        assert target is not None
        count = write_json(sc, target)
    size = os.path.getsize(target) if target and target != "-" else None
    return ExportResult(fmt, count, target, url, time.perf_counter() - t0, size)
