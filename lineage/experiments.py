"""Experiments as records: created, and tagged, in the ledger.

A run carries the name of its experiment (DESIGN.md: ``default`` unless set), which
was all an experiment had been: one created with MLflow's ``create_experiment`` and
no run yet, and any experiment's tags, lived only in the process that made them, so
the next script's ``get_experiment_by_name`` found nothing and its tags were gone.

Each is now an event whose rows go to the append-only ``experiments`` table: a row
without a key records a creation (``experiment``), a row with one sets that tag
(``experiment_tags``; the newest row of a key holds its value, as for a run's tags).
An experiment's name is its identity (MLflow's id is derived from it), so nothing
renames or deletes one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidInputError, NodeNotFoundError, WriteRefusedError
from .model import clean_text, now_iso
from .store import Store
from .tracking import DEFAULT_EXPERIMENT, ensure_actor, secret_safe

#: a row of the ``experiments`` table: (name, key, value, at), RECORD_TABLES' order
Row = tuple[str, str | None, str | None, str]


@dataclass
class Recorded:
    """What the ledger holds of one experiment: when it was created, its tags now,
    and when it was last changed."""

    name: str
    created_at: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    updated_at: str | None = None


def fold(rows: Iterable[Row]) -> dict[str, Recorded]:
    """`Store.experiment_rows` as one `Recorded` per experiment (rows oldest first)."""
    out: dict[str, Recorded] = {}
    for name, key, value, at in rows:
        rec = out.setdefault(name, Recorded(name))
        if key is None:
            rec.created_at = rec.created_at or at
        elif value is not None:  # (None: a value erased; the key no longer holds one)
            rec.tags[key] = value
        else:
            rec.tags.pop(key, None)
        rec.updated_at = at
    return out


def recorded(store: Store, name: str | None = None) -> dict[str, Recorded]:
    """Every recorded experiment by name (or the one named ``name``, if recorded)."""
    return fold(store.experiment_rows(name))


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"an experiment needs a name (non-empty text), got {name!r}")
    return clean_text(name)


def _tag_rows(name: str, tags: Mapping[str, Any] | None, at: str) -> list[Row]:
    """Tag rows, through the secret detector as a run's tags are (`secret_safe`)."""
    if tags is None:
        return []
    return [(name, clean_text(k), clean_text(v), at) for k, v in secret_safe(tags, "experiment tags").items()]


def exists(store: Store, name: str) -> bool:
    """Whether the experiment ``name`` exists: the default one, one recorded, or one
    that runs name (a store from before experiments were records)."""
    return name == DEFAULT_EXPERIMENT or name in recorded(store, name) or store.experiment_has_runs(name)


def create(store: Store, name: str, tags: Mapping[str, Any] | None = None, *, exist_ok: bool = False) -> bool:
    """Record that the experiment ``name`` was created, with ``tags``; True when it was
    recorded now. Raises WriteRefusedError when it exists (`exists`), unless
    ``exist_ok``: then nothing is written (`set_tags` adds tags)."""
    name = _check_name(name)
    at = now_iso()
    rows: list[Row] = [(name, None, None, at), *_tag_rows(name, tags, at)]
    with store.transaction():
        if exists(store, name):
            if exist_ok:
                return False
            raise WriteRefusedError(f"experiment {name!r} already exists")
        ensure_actor(store)
        store.write("experiment", {"name": name, "keys": [r[1] for r in rows[1:]]}, {"experiments": rows})
    return True


def set_tags(store: Store, name: str, tags: Mapping[str, Any]) -> None:
    """Set tags on the experiment ``name``, recording its creation with them when only
    its runs named it (or it is the default one). Each change is kept; setting a tag
    to the value it holds records nothing. Raises NodeNotFoundError for a name no
    experiment has."""
    name = _check_name(name)
    at = now_iso()
    rows = _tag_rows(name, tags, at)
    if not rows:
        return
    with store.transaction():
        now = recorded(store, name).get(name)
        if now is None or now.created_at is None:
            if name != DEFAULT_EXPERIMENT and not store.experiment_has_runs(name):
                raise NodeNotFoundError(f"experiment {name}", "no experiment has that name; create it first "
                                        "(create_experiment), or see lineage.search_experiments()")
            rows.insert(0, (name, None, None, at))
        elif all(k is not None and now.tags.get(k) == v for _, k, v, _ in rows):
            return
        ensure_actor(store)
        store.write("experiment_tags", {"name": name, "keys": [r[1] for r in rows if r[1] is not None]},
                    {"experiments": rows})

