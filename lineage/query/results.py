"""Result types of the analyses (`DataUse`, `Diff`, `Suspect`, `Insights`, `Status`,
…). Their terminal tables are drawn by `lineage.render.tables`, which each ``__rich__``
imports when called (render is the layer above)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..model import Node
from .subgraph import node_or_group

#: roles (the caller's words, MLflow's contexts included) that count as training data;
#: ``train`` is what MLflow's autolog writes, ``input`` what `lineage run -i` writes
TRAINING_ROLES = frozenset({"training", "train", "input"})
#: roles of held-out data: reported as given, never counted as training
HELD_OUT_ROLES = frozenset({"validation", "testing", "evaluation", "test", "eval", "val", "valid"})


class _Views:
    """``str()``/``print()`` and Jupyter show an answer as the table ``lineage`` prints
    (its ``__rich__``), not as the dataclass's repr (a diff was 4 KB of nested node
    dumps in a notebook)."""

    def __str__(self) -> str:
        from ..render.views import as_text

        return as_text(self)

    def _repr_html_(self) -> str:
        from ..render.views import as_html

        return as_html(self)


def role_group(role: str | None) -> str:
    """``training``, ``held_out``, ``upstream`` or ``other`` for a stored role."""
    if role is None or role in TRAINING_ROLES:
        return "training"
    if role in HELD_OUT_ROLES:
        return "held_out"
    return "upstream" if role == "upstream" else "other"


@dataclass(frozen=True)
class DataUse:
    """A dataset behind a model: its ``role`` as the run recorded it (``training``,
    ``validation``, ``testing``, ``evaluation``, ``input`` or any other word), or
    ``upstream`` for sources further back, and ``distance`` in hops from the model.
    `group` says how it counts: training, held-out, upstream or other."""

    node: Node
    role: str
    distance: int

    @property
    def group(self) -> str:
        """``training``, ``held_out``, ``upstream`` or ``other``: see `role_group`."""
        return role_group(self.role)

    def to_dict(self) -> dict[str, Any]:
        return {**self.node.to_dict(), "role": self.role, "distance": self.distance}

    def __rich__(self) -> Any:
        from ..render.tables import data_uses_table

        return data_uses_table([self])


@dataclass(frozen=True)
class Change:
    """One difference between two models or runs: ``aspect`` is ``data``, ``code``,
    ``params``, ``environment`` or ``metrics``; ``a`` / ``b`` are the values on each
    side (None where one side has none)."""

    aspect: str
    key: str
    a: Any
    b: Any

    def to_dict(self) -> dict[str, Any]:
        return {"aspect": self.aspect, "key": self.key, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class Diff(_Views):
    """How two models (or runs) differ in lineage."""

    a: Node
    b: Node
    changes: list[Change] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def aspect(self, name: str) -> list[Change]:
        """The changes of one aspect (``data``, ``code``, ``params``, …)."""
        return [c for c in self.changes if c.aspect == name]

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a.id, "b": self.b.id, "changes": [c.to_dict() for c in self.changes]}

    def __rich__(self) -> Any:
        from ..render.tables import diff_table

        return diff_table(self)


@dataclass(frozen=True)
class Suspect:
    """An upstream node and how much more often it stands behind the bad predictions:
    ``score`` = share of bad ones behind it − share of good ones behind it (just the
    former without good ones); ``bad`` / ``good`` count them."""

    node: Node
    score: float
    bad: int
    good: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.node.to_dict(), "score": self.score, "bad": self.bad, "good": self.good}


@dataclass(frozen=True)
class ParamImportance:
    """How much one parameter matters for a metric: ``importance`` is its share of
    the forest's permutation importance (the shares sum to 1), ``correlation`` its
    Spearman rank correlation with the metric (None for non-numeric parameters)."""

    param: str
    importance: float
    correlation: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"param": self.param, "importance": self.importance, "correlation": self.correlation}


@dataclass(frozen=True)
class Insights(_Views):
    """Which parameters matter most for ``metric``, across ``runs`` runs: each
    parameter's share of the importance (shares sum to 1, or are all 0 when the
    parameters predict nothing) and its rank correlation with the metric."""

    metric: str
    runs: int
    items: list[ParamImportance] = field(default_factory=list)
    #: the forest's cross-validated R²: how much of the metric the parameters explain
    #: (None when the metric never varies); not part of the JSON shape
    explained: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "runs": self.runs, "items": [i.to_dict() for i in self.items]}

    def __rich__(self) -> Any:
        from ..render.tables import insights_table

        return insights_table(self)


@dataclass(frozen=True)
class Status(_Views):
    """Recorded datasets whose file on disk no longer matches its digest (``changed``)
    and what depends on them (``affected``: datasets, runs and models, each model's
    predictions folded into one ``group`` node)."""

    changed: list[Node] = field(default_factory=list)
    affected: list[Node] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    #: why each affected node is stale: "upstream changed" (a file changed on disk) or
    #: "superseded" (built from a version that has a newer one, and not rebuilt)
    stale: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every recorded local dataset still matches its file and nothing
        current was built from a superseded version."""
        return not self.changed and not self.affected

    @property
    def predictions(self) -> int:
        """How many predictions depend on changed data."""
        return sum(int(n.attrs.get("count", 0)) for n in self.affected if n.kind == "group")

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": [{**n.to_dict(), "reason": self.reasons.get(n.id, "modified")} for n in self.changed],
            "affected": [{**node_or_group(n), "reason": self.stale.get(n.id, "upstream changed")} for n in self.affected],
        }

    def __rich__(self) -> Any:
        from ..render.tables import status_view

        return status_view(self)
