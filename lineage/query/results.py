"""Result types of the analyses (`DataUse`, `Diff`, `Suspect`, `Insights`, `Status`,
…) and their rich tables (rich is imported inside the methods that draw)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import KINDS, Node, short_id
from .subgraph import node_or_group


def _rich_table(title: str | None, columns: Sequence[str]) -> Any:
    from rich.table import Table

    table = Table(title=_text(title) if title else None, header_style="bold", title_justify="left")
    for c in columns:
        table.add_column(c)
    return table


def _text(value: Any, style: str = "") -> Any:
    """User strings (names, params, paths) as rich Text: data, never markup."""
    from rich.text import Text

    return Text("" if value is None else str(value), style=style)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and ":" in value and len(value) > 40:
        kind = value.split(":", 1)[0]
        if kind in KINDS:
            return short_id(value, 12)
    return str(value)


#: roles (the caller's words, MLflow's contexts included) that count as training data;
#: ``train`` is what MLflow's autolog writes, ``input`` what `lineage run -i` writes
TRAINING_ROLES = frozenset({"training", "train", "input"})
#: roles of held-out data: reported as given, never counted as training
HELD_OUT_ROLES = frozenset({"validation", "testing", "evaluation", "test", "eval", "val", "valid"})


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
        return data_uses_table([self])


def data_uses_table(items: Sequence[DataUse], *, title: str | None = None) -> Any:
    """A rich Table of `which_data`'s answer."""
    table = _rich_table(title, ["role", "hops", "name", "id", "created"])
    for u in items:
        style = {"training": "bold", "held_out": "cyan"}.get(u.group, "dim")
        table.add_row(_text(u.role, style), str(u.distance), _text(u.node.name), short_id(u.node.id, 12),
                      (u.node.created_at or "")[:19].replace("T", " "))
    return table


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
class Diff:
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
        title = f"{self.a.label} ({short_id(self.a.id)}) → {self.b.label} ({short_id(self.b.id)})"
        table = _rich_table(title, ["aspect", "key", "a", "b"])
        last = None
        for c in self.changes:
            table.add_row(c.aspect if c.aspect != last else "", _text(c.key), _text(_fmt(c.a)), _text(_fmt(c.b)))
            last = c.aspect
        if not self.changes:
            table.add_row("", "no differences", "", "")
        return table


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


def suspects_table(items: Sequence[Suspect], *, bad: int, good: int, title: str | None = None) -> Any:
    """A rich Table of `blame`'s answer."""
    table = _rich_table(title, ["score", f"bad /{bad}", f"good /{good}", "kind", "name", "id"])
    for s in items:
        table.add_row(f"{s.score:.2f}", str(s.bad), str(s.good), s.node.kind, _text(s.node.name), short_id(s.node.id, 12))
    return table


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
class Insights:
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
        skill = "" if self.explained is None else \
            f"; the parameters explain {max(self.explained, 0):.0%} of its variance (cross-validated)"
        table = _rich_table(f"what matters for {self.metric} (across {self.runs} runs{skill})",
                            ["param", "importance", "", "rank correlation"])
        for i in self.items:
            bar = "█" * round(i.importance * 30)
            corr = "—" if i.correlation is None else f"{i.correlation:+.2f}"
            table.add_row(_text(i.param), f"{i.importance:.2f}", _text(bar, "green"), corr)
        return table


@dataclass(frozen=True)
class Status:
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
        from rich.console import Group
        from rich.text import Text

        if self.ok:
            return Text("ok: every recorded local dataset matches its file", style="green")
        changed = _rich_table("changed on disk", ["dataset", "id", "reason", "path"])
        for n in self.changed:
            changed.add_row(_text(n.name), short_id(n.id, 12), self.reasons.get(n.id, "modified"),
                            _text(n.attrs.get("path") or n.attrs.get("abspath", "")))
        affected = _rich_table("stale downstream", ["kind", "name", "id", "why"])
        for n in self.affected:
            why = self.stale.get(n.id, "upstream changed")
            if n.kind == "group":
                affected.add_row("predictions", _text(n.name), f"of {short_id(n.attrs.get('model', ''), 12)}", why)
            else:
                affected.add_row(n.kind, _text(n.name), short_id(n.id, 12), why)
        return Group(*([changed] if self.changed else []), affected)
