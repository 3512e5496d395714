"""Finding a store: an explicit path, ``LINEAGE_DB``, or a walk up from the cwd."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import (
    InvalidInputError,
    NoStoreError,
)
from .schema import DB_NAME, STORE_DIR


def find_store(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``.lineage/lineage.db`` at or above ``start`` (default: the cwd), or None."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / STORE_DIR / DB_NAME
        if candidate.is_file():
            return candidate
    return None


def default_location(start: str | os.PathLike[str] | None = None) -> Path:
    """Where a new store goes: the root of the enclosing git work tree, else ``start``."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder / STORE_DIR / DB_NAME
    return here / STORE_DIR / DB_NAME


def locate(path: str | os.PathLike[str] | None = None, *, create: bool) -> Path:
    """Resolve the store path: explicit ``path``, then ``LINEAGE_DB``, then a walk up.
    A ``postgresql://`` URL is returned as it is (a `postgres.PgUrl`).

    Raises NoStoreError when ``create`` is false and no store exists.
    """
    chosen = path or os.environ.get("LINEAGE_DB") or None
    if isinstance(chosen, str) and chosen.startswith(("postgresql://", "postgres://")):
        # a PostgreSQL store (lineage/store/postgres.py): a URL, not a file; a read of
        # a database that holds no store yet fails when the store is opened
        from .postgres import PgUrl

        return PgUrl(chosen)  # type: ignore[return-value]  # a str standing for the location
    if isinstance(chosen, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", chosen):
        # `sqlite:///x.db`, `mysql://…` read as a path made a folder named `sqlite:`
        raise InvalidInputError(f"unsupported store URL {chosen!r}: give a file path or a postgresql:// URL")
    if chosen:
        p = Path(chosen).expanduser()
        if p.is_dir() or str(chosen).endswith(("/", os.sep)):
            p = p / DB_NAME
        if not create and not p.is_file():
            raise NoStoreError(f"no lineage store at {p} (run `lineage init`)")
        return p
    found = find_store()
    if found:
        return found
    if not create:
        raise NoStoreError("no lineage store here (run `lineage init`)")
    return default_location()
