"""Things known only by a name, as records: experiments and registered models.

A run carries the name of its experiment (DESIGN.md: ``default`` unless set), and a
registered model is the name its versions are recorded under: that was all either
had been. An experiment created with MLflow's ``create_experiment`` and no run yet,
and the tags and description of an experiment or a registered model, lived only in
the process that made them (or stopped the script: ``set_experiment_tag``,
``update_registered_model``), so the next script found nothing.

Each is now an event whose rows go to the append-only ``names`` table, one per fact:
a row without a key records that the name was created, a row with a key sets that
tag (the newest row of a key holds its value, as a run's tags do). A registered
model's description is its tag ``mlflow.note.content``, as a run's is. The name is
the identity (an experiment's MLflow id is derived from it, a version is ``NAME@N``),
so nothing renames or deletes one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import AlreadyExistsError, InvalidInputError, NodeNotFoundError
from .model import clean_text, now_iso
from .store import Store
from .tracking import DEFAULT_EXPERIMENT, ensure_actor, secret_safe

EXPERIMENT = "experiment"
REGISTERED_MODEL = "registered_model"
KINDS = (EXPERIMENT, REGISTERED_MODEL)

#: a row of the ``names`` table: (kind, name, key, value, at), RECORD_TABLES' order
Row = tuple[str, str, str | None, str | None, str]


@dataclass
class Recorded:
    """What the ledger holds of one name: when it was created, its tags now, and when
    it was last changed."""

    name: str
    created_at: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    updated_at: str | None = None


def fold(rows: Iterable[tuple[str, str | None, str | None, str]]) -> dict[str, Recorded]:
    """``(name, key, value, at)`` rows of one kind, oldest first, as one `Recorded` per name."""
    out: dict[str, Recorded] = {}
    for name, key, value, at in rows:
        rec = out.setdefault(name, Recorded(name))
        if key is None:
            rec.created_at = rec.created_at or at
        elif value is not None:
            rec.tags[key] = value
        else:  # (a value erased: the key holds none)
            rec.tags.pop(key, None)
        rec.updated_at = at
    return out


def recorded(store: Store, kind: str, name: str | None = None) -> dict[str, Recorded]:
    """Every recorded name of ``kind`` (or the one ``name``, if recorded)."""
    return fold(store.name_rows(kind, name))


def exists(store: Store, kind: str, name: str) -> bool:
    """Whether ``name`` exists as a ``kind``: recorded, or known otherwise (the default
    experiment, one that runs name; a registered model with versions), as in stores
    from before these records."""
    return name in recorded(store, kind, name) or _known_otherwise(store, kind, name)


def _known_otherwise(store: Store, kind: str, name: str) -> bool:
    """`exists` without its record: the default experiment, one that runs name, a
    registered model with versions."""
    if kind == EXPERIMENT:
        return name == DEFAULT_EXPERIMENT or store.experiment_has_runs(name)
    return bool(store.version_ids(name, "model"))


def _what(kind: str) -> str:
    return kind.replace("_", " ")


def _check(kind: str, name: Any) -> str:
    if kind not in KINDS:
        raise InvalidInputError(f"names are recorded for {' and '.join(KINDS)}, not {kind!r}")
    if not isinstance(name, str) or not name.strip():
        article = "an" if kind == EXPERIMENT else "a"
        raise InvalidInputError(f"{article} {_what(kind)} needs a name (non-empty text), got {name!r}")
    return clean_text(name)


def _tag_rows(kind: str, name: str, tags: Mapping[str, Any] | None, at: str) -> list[Row]:
    """Tag rows, through the secret detector as a run's tags are (`secret_safe`)."""
    if not tags:
        return []
    return [(kind, name, clean_text(k), clean_text(v), at) for k, v in secret_safe(tags, f"{_what(kind)} tags").items()]


def create(store: Store, kind: str, name: str, tags: Mapping[str, Any] | None = None, *,
           exist_ok: bool = False) -> bool:
    """Record that the ``kind`` ``name`` was created, with ``tags``; True when it was
    recorded now. Raises AlreadyExistsError when it exists (`exists`), unless
    ``exist_ok``: then nothing is written (`set_tags` adds tags)."""
    name = _check(kind, name)
    if exist_ok and exists(store, kind, name):
        return False  # (read first: `set_experiment` of a known name takes no write lock)
    at = now_iso()
    rows: list[Row] = [(kind, name, None, None, at), *_tag_rows(kind, name, tags, at)]
    with store.transaction():
        if exists(store, kind, name):
            if exist_ok:
                return False
            raise AlreadyExistsError(f"{_what(kind)} {name!r} already exists")
        ensure_actor(store)
        store.write(kind, {"name": name, "keys": [r[2] for r in rows[1:]]}, {"names": rows})
    return True


def set_tags(store: Store, kind: str, name: str, tags: Mapping[str, Any]) -> None:
    """Set tags on the ``kind`` ``name``, recording its creation with them when it is
    known but not recorded yet (`exists`). Each change is kept; setting a tag to the
    value it holds records nothing. Raises NodeNotFoundError for a name that does not
    exist."""
    name = _check(kind, name)
    at = now_iso()
    rows = _tag_rows(kind, name, tags, at)
    if not rows:
        return
    with store.transaction():
        now = recorded(store, kind, name).get(name)
        if now is None or now.created_at is None:
            if now is None and not _known_otherwise(store, kind, name):  # (its record was just read)
                raise NodeNotFoundError(f"{_what(kind)} {name}", f"no {_what(kind)} has that name")
            rows.insert(0, (kind, name, None, None, at))
        elif all(k is not None and now.tags.get(k) == v for _, _, k, v, _ in rows):
            return
        ensure_actor(store)
        store.write(f"{kind}_tags", {"name": name, "keys": [r[2] for r in rows if r[2] is not None]},
                    {"names": rows})
