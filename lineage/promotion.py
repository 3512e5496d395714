"""Promotion labels: which version of a model name is `production`, `staging`,
`champion` (any word), who put it there, when and why.

A label is held by at most one version of a name at a time. Every change is one ledger
event whose rows go to the append-only `promotions` table: ``promote`` puts a label on
a version, ``end`` takes it off the version that held it when it moves elsewhere (in
the same event), ``unpromote`` takes it off without a successor. Nothing is updated in
place, so the whole history of a label stays answerable ("which version was in
production on 3 March?", "which label did this prediction's model hold?").

`NAME@LABEL` resolves to the holder in every command (`Store.resolve`). Sensitive
columns (`mark_sensitive`, `allow_sensitive`) are annotations, recorded here too
since they are the other statements a reviewer makes about what a model may read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import capture
from .errors import InvalidInputError, NodeNotFoundError
from .model import LABEL_PATTERN, Node, now_iso, version_number
from .store import Store
from .tracking import annotate, ensure_actor

#: the label `audit NAME` and the inventory look for first
PRODUCTION = "production"


@dataclass(frozen=True)
class Promotion:
    """One change of a label: ``action`` is promote, end or unpromote."""

    name: str
    label: str
    model: str
    action: str
    version: int | None
    reason: str | None
    author: str | None
    at: str
    event: int
    previous: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "model": self.model, "version": self.version,
                "action": self.action, "reason": self.reason, "author": self.author, "at": self.at,
                "event": self.event, "previous": self.previous}


def check_label(label: Any) -> str:
    """``label`` when it is a word (letters, digits, ``_.-``; not a bare number, which
    would read as ``name@N``); raises InvalidInputError otherwise."""
    if not isinstance(label, str) or not LABEL_PATTERN.match(label):
        raise InvalidInputError(f"a label is a word such as production, staging or champion "
                                f"(letters, digits, _ . -; starting with a letter), not {label!r}")
    return label


def version_of(store: Store, node: Node, name: str | None = None) -> int | None:
    """The version number (from 1) of a model node under its name (or ``name``, one of
    its aliases: a registered model name)."""
    name = name or node.name
    return version_number(store.history(name, kind=node.kind), node.id) if name else None


def _who(author: str | None) -> str:
    """Who a label change is by: as typed, else the recording account in full
    (``Ada <ada@x> (paula@host)``). Git's name alone is the checkout's owner, who
    need not be the person promoting from it."""
    return author or capture.agent_label(capture.capture_agent()[1])


def promote(store: Store, ref: Any, label: str, *, reason: str | None = None, author: str | None = None,
            name: str | None = None) -> Promotion:
    """Put ``label`` on the model version ``ref`` names, ending it on the version that
    held it; returns the promotion. Promoting the holder again records nothing.
    ``name`` chooses which of the model's names the label belongs to (an alias, as a
    model registered under a second name in MLflow's registry); default its own name.
    Raises InvalidInputError for a non-model or a bad label, NodeNotFoundError for an
    unknown reference; nothing is recorded then."""
    check_label(label)
    if reason is not None and not isinstance(reason, str):
        raise InvalidInputError("reason= is text")
    node = ref if isinstance(ref, Node) else store.resolve(str(ref))
    if node.kind != "model":
        raise InvalidInputError(f"{node.id} is a {node.kind}; only a model version can be promoted "
                                f"(see `lineage ls --kind model`)")
    if name is not None and name != node.name:
        if name not in store.aliases(node.id):
            raise InvalidInputError(f"{node.id} is not named {name!r}; its names: {', '.join([node.name or '', *store.aliases(node.id)])}")
        node = Node(node.id, node.kind, name, node.attrs, node.created_at)
    if not node.name:
        raise InvalidInputError(f"{node.id} has no name, so no label can name it; log it with a name")
    who, at = _who(author), now_iso()
    with store.transaction():
        current = store.label_holder(node.name, label)
        version = version_of(store, node, node.name)
        if current == node.id:  # already there: no event, the existing promotion stands
            last = promotion_history_rows(store, node.name, label)[-1]
            return Promotion(node.name, label, node.id, "promote", version, last["reason"], last["author"], last["at"],
                             last["event"])
        rows: list[tuple[str, str, str, str, str | None, str, str]] = []
        if current is not None:
            rows.append((node.name, label, current, "end", f"label moved to {node.id}", who, at))
        rows.append((node.name, label, node.id, "promote", reason, who, at))
        ensure_actor(store)  # the event's actor, as a node the reports can name
        seq = store.write("promote", {"name": node.name, "label": label, "model": node.id, "previous": current},
                          {"promotions": rows})
    return Promotion(node.name, label, node.id, "promote", version, reason, who, at, seq, current)


def _model_name(store: Store, name: str, label: str) -> str:
    """The model name in ``name``: without ``model:``, and without ``@LABEL`` when the
    caller wrote the reference `NAME@LABEL` where the name goes (``unpromote
    risk@production production``), unless a model is really named so. A different
    label there is a contradiction: InvalidInputError."""
    if name.startswith("model:"):
        name = name[len("model:"):]
    base, at, written = name.rpartition("@")
    if not at or not base or not LABEL_PATTERN.match(written) or store.version_ids(name, "model"):
        return name
    if written != label:
        raise InvalidInputError(f"{name!r} names the label {written!r} but {label!r} was given; "
                                f"give the model name and one label: {base} {label}")
    return base


def unpromote(store: Store, name: str, label: str, *, reason: str | None = None, author: str | None = None) -> Promotion:
    """Take ``label`` off the version of ``name`` that holds it; returns the change.
    Raises NodeNotFoundError when no version of ``name`` holds it (nothing recorded)."""
    check_label(label)
    if isinstance(name, Node):
        name = name.name or ""
    name = _model_name(store, str(name), label)
    with store.transaction():
        holder = store.label_holder(name, label)
        if holder is None:
            labels = store.labels_of(name)
            held = f"; its labels: {', '.join(sorted(labels))}" if labels else ""
            raise NodeNotFoundError(f"{name}@{label}", f"no version of {name!r} holds the label {label!r}{held}")
        node = store.get_node(holder)
        who, at = _who(author), now_iso()
        ensure_actor(store)
        seq = store.write("unpromote", {"name": name, "label": label, "model": holder},
                          {"promotions": [(name, label, holder, "unpromote", reason, who, at)]})
    return Promotion(name, label, holder, "unpromote", version_of(store, node) if node else None, reason, who, at, seq)


#: MLflow 2's registry stages that are labels, one version holding each; the other
#: two, ``None`` and ``Archived``, are the absence of one
STAGE_LABELS = {"Staging": "staging", "Production": PRODUCTION}
STAGES = ("None", "Staging", "Production", "Archived")


def stage_name(stage: Any) -> str:
    """MLflow's name of a stage given in any case; InvalidInputError for another word."""
    for known in STAGES:
        if isinstance(stage, str) and stage.strip().lower() == known.lower():
            return known
    raise InvalidInputError(f"unknown stage {stage!r}; MLflow's stages are {', '.join(STAGES)}")


def set_stage(store: Store, ref: Any, name: str, stage: Any, *, author: str | None = None) -> str:
    """Move a model version of ``name`` to an MLflow stage, as labels (`STAGE_LABELS`):
    Staging or Production puts that label on it, ending it on the version that held
    it; None or Archived takes the stage labels it holds off. Returns the stage's name."""
    wanted = stage_name(stage)
    node = ref if isinstance(ref, Node) else store.resolve(str(ref))
    with store.transaction():
        if wanted in STAGE_LABELS:
            promote(store, node, STAGE_LABELS[wanted], name=name, author=author)
        else:
            for label in STAGE_LABELS.values():
                if store.label_holder(name, label) == node.id:
                    unpromote(store, name, label, reason=f"stage set to {wanted}", author=author)
    return wanted


def promotion_history_rows(store: Store, name: str, label: str | None = None) -> list[dict[str, Any]]:
    """The recorded label changes of a name (optionally one label), oldest first."""
    return store.promotion_rows(name, label)


# ---------------------------------------------------------------------------
# sensitive columns: statements about data, and about what a model may read

#: annotation field on a dataset: the columns that are sensitive (JSON list)
SENSITIVE_FIELD = "sensitive_columns"
#: annotation field on a model: the sensitive columns it may read, and why (JSON)
ALLOW_FIELD = "sensitive_use"


def _column_list(columns: Any) -> list[str]:
    if isinstance(columns, str):
        columns = [c for c in columns.split(",")]
    cols = [str(c).strip() for c in (columns or ()) if str(c).strip()]
    if not cols:
        raise InvalidInputError("name at least one column (e.g. age,sex)")
    return list(dict.fromkeys(cols))


def parse_columns(text: str | None) -> list[str]:
    """The columns an annotation's text names: a JSON list, a JSON object's
    ``columns``, or plain text ``age,sex: reason`` (the names before the first colon)."""
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        head = text.split(":", 1)[0]
        return [c.strip() for c in head.split(",") if c.strip()]
    if isinstance(value, dict):
        value = value.get("columns", [])
    if isinstance(value, list):
        return [str(c) for c in value]
    return []


def mark_sensitive(store: Store, ref: Any, columns: Sequence[str] | str, *, author: str | None = None) -> list[str]:
    """Mark columns of a dataset sensitive (added to those already marked); returns the
    full set. Raises InvalidInputError for a non-dataset or a column the dataset's
    recorded schema does not have."""
    node = ref if isinstance(ref, Node) else store.resolve(str(ref))
    if node.kind != "dataset":
        raise InvalidInputError(f"{node.id} is a {node.kind}; sensitive columns are marked on a dataset")
    cols = _column_list(columns)
    known = node.attrs.get("columns")
    if isinstance(known, list) and known:
        unknown = [c for c in cols if c not in known]
        if unknown:
            raise InvalidInputError(f"{node.name or node.id} has no column {unknown[0]!r} (columns: {', '.join(map(str, known[:20]))})")
    current = parse_columns((store.annotations(node.id).get(SENSITIVE_FIELD) or {}).get("text"))
    merged = list(dict.fromkeys([*current, *cols]))
    if merged != current:
        annotate(store, node, SENSITIVE_FIELD, json.dumps(merged), author=author)
    return merged


def allow_sensitive(store: Store, ref: Any, columns: Sequence[str] | str, reason: str, *,
                    author: str | None = None) -> int:
    """Record that a model may read these sensitive columns, and why (a person's
    statement; `check sensitive` then passes for them); returns the event number."""
    node = ref if isinstance(ref, Node) else store.resolve(str(ref))
    if node.kind != "model":
        raise InvalidInputError(f"{node.id} is a {node.kind}; sensitive use is allowed on a model")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInputError("allowing a sensitive column needs a reason (who approved it, for what)")
    current = parse_columns((store.annotations(node.id).get(ALLOW_FIELD) or {}).get("text"))
    cols = list(dict.fromkeys([*current, *_column_list(columns)]))
    return annotate(store, node, ALLOW_FIELD, json.dumps({"columns": cols, "reason": reason}), author=author)
