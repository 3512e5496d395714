"""MLflow's ``search_runs`` filter and ``order_by`` syntax, read for lineage.

    metrics.rmse < 0.8 and params.alpha = '0.5' and tags.team = 'risk'
    attributes.status = 'FINISHED' and attributes.run_name LIKE 'en%'

A filter is clauses joined by ``AND`` (MLflow has no ``OR``). Each is parsed with its
position, so a malformed one fails with `FilterSyntaxError` naming where. The clauses
that lineage's own `runs` filter can answer are translated to it (`to_where`) to
narrow the search in SQL; every clause is then checked on the MLflow-shaped view of
each run (`matches`), so the answer follows MLflow's rules (string params, latest
metric values, ``LIKE`` patterns) exactly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import FilterSyntaxError, InvalidInputError

T = TypeVar("T")

_ENTITY = {"metric": "metrics", "metrics": "metrics", "param": "params", "params": "params", "parameter": "params",
           "parameters": "params", "tag": "tags", "tags": "tags", "attribute": "attributes", "attributes": "attributes",
           "attr": "attributes", "run": "attributes", "dataset": "datasets", "datasets": "datasets"}
_ATTRIBUTES = {"run_id", "run_name", "status", "start_time", "end_time", "artifact_uri", "user_id", "lifecycle_stage",
               "experiment_id", "created", "run name", "name"}
_OPS = ("!=", ">=", "<=", "=", ">", "<")
_WORD_OPS = ("not in", "not like", "not ilike", "ilike", "like", "in")


@dataclass(frozen=True)
class Clause:
    """One comparison: ``entity`` is metrics, params, tags, attributes or datasets."""

    entity: str
    key: str
    op: str  # = != < <= > >= like ilike in "not in"
    value: Any
    pos: int


class _Reader:
    def __init__(self, text: str, attributes: Collection[str] = _ATTRIBUTES) -> None:
        self.text = text
        self.i = 0
        self.attributes = attributes

    def skip(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def done(self) -> bool:
        self.skip()
        return self.i >= len(self.text)

    def fail(self, message: str, pos: int | None = None) -> FilterSyntaxError:
        return FilterSyntaxError(message, self.i if pos is None else pos)

    def quoted(self) -> str:
        q = self.text[self.i]
        j = self.i + 1
        out = []
        while j < len(self.text):
            c = self.text[j]
            if c == "\\" and j + 1 < len(self.text):
                out.append(self.text[j + 1])
                j += 2
                continue
            if c == q:
                if self.text[j + 1: j + 2] == q:
                    out.append(q)
                    j += 2
                    continue
                self.i = j + 1
                return "".join(out)
            out.append(c)
            j += 1
        raise self.fail("unterminated string (a quote is missing)")

    def identifier(self) -> tuple[str, str, int]:
        self.skip()
        start = self.i
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.text, self.i)
        if not m:
            raise self.fail("expected a key such as metrics.rmse, params.alpha, tags.team or attributes.status")
        head = m.group(0)
        self.i = m.end()
        if self.i < len(self.text) and self.text[self.i] == ".":
            entity = _ENTITY.get(head.lower())
            if entity is None:
                raise self.fail(f"unknown entity {head!r}; use metrics., params., tags., attributes. or datasets.", start)
            self.i += 1
            if self.i < len(self.text) and self.text[self.i] in "`\"'":
                key = self.quoted()
            else:
                m2 = re.compile(r"[A-Za-z0-9_.\-/:]+").match(self.text, self.i)
                if not m2:
                    raise self.fail(f"{head}. needs a key")
                key = m2.group(0)
                self.i = m2.end()
            if entity == "attributes" and key.lower() not in self.attributes:
                known = ("run_id, run_name, status, start_time, end_time, artifact_uri or user_id"
                         if self.attributes is _ATTRIBUTES else ", ".join(sorted(self.attributes)))
                raise self.fail(f"unknown attribute {key!r}; use {known}", start)
            return entity, key, start
        if head.lower() in self.attributes:
            return "attributes", head, start
        raise self.fail(f"unknown key {head!r}; prefix it with metrics., params., tags. or attributes.", start)

    def operator(self) -> str:
        self.skip()
        low = self.text[self.i:].lower()
        for op in _OPS:
            if low.startswith(op):
                self.i += len(op)
                return op
        for op in _WORD_OPS:
            parts = op.split()
            m = re.compile(r"\s+".join(parts) + r"\b", re.IGNORECASE).match(self.text, self.i)
            if m:
                self.i = m.end()
                return op
        raise self.fail("expected a comparison: = != < <= > >= LIKE ILIKE IN or NOT IN")

    def scalar(self) -> Any:
        self.skip()
        if self.i >= len(self.text):
            raise self.fail("expected a value")
        c = self.text[self.i]
        if c in "'\"":
            return self.quoted()
        m = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?").match(self.text, self.i)
        if m:
            self.i = m.end()
            v = float(m.group(0))
            if not math.isfinite(v):
                raise self.fail(f"{m.group(0)!r} is not a finite number", m.start())
            return v
        raise self.fail("expected a number or a quoted string")

    def value(self, op: str) -> Any:
        self.skip()
        if op in ("in", "not in"):
            if self.i >= len(self.text) or self.text[self.i] != "(":
                raise self.fail("IN needs a list in parentheses: ('a', 'b')")
            self.i += 1
            items = []
            while True:
                items.append(self.scalar())
                self.skip()
                if self.i < len(self.text) and self.text[self.i] == ",":
                    self.i += 1
                    continue
                if self.i < len(self.text) and self.text[self.i] == ")":
                    self.i += 1
                    return items
                raise self.fail("expected , or ) in the IN list")
        return self.scalar()


def parse(filter_string: str | None, *, attributes: Collection[str] = _ATTRIBUTES) -> list[Clause]:
    """The clauses of an MLflow filter (empty for an empty filter); ``attributes``:
    the attribute names it may compare (a run's, unless given).

    Raises FilterSyntaxError naming the position of the first problem."""
    text = filter_string or ""
    if not isinstance(text, str):
        raise InvalidInputError(f"filter_string must be text, got {type(text).__name__}")
    r = _Reader(text, attributes)
    out: list[Clause] = []
    if r.done():
        return out
    while True:
        entity, key, pos = r.identifier()
        op = r.operator()
        value = r.value(op)
        if entity == "metrics" and op in ("like", "ilike", "not like", "not ilike") :
            raise FilterSyntaxError(f"metrics compare numbers; {op.upper()} is for params, tags and attributes", pos)
        if entity == "metrics" and not isinstance(value, (float, list)):
            raise FilterSyntaxError(f"metrics.{key} compares with a number, got {value!r}", pos)
        out.append(Clause(entity, key, op, value, pos))
        if r.done():
            return out
        m = re.compile(r"and\b", re.IGNORECASE).match(r.text, r.i)
        if not m:
            raise r.fail("expected AND between comparisons (MLflow filters have no OR)")
        r.i = m.end()


def _quote(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def _field(entity: str, key: str) -> str:
    return f'{entity}."' + key.replace('"', '""') + '"'


_LINEAGE_STATUS = {"RUNNING": ["running"], "FINISHED": ["finished"], "FAILED": ["failed", "crashed"],
                   "KILLED": ["failed"], "SCHEDULED": []}


def to_where(clauses: Sequence[Clause]) -> str | None:
    """The part of the filter lineage's `runs` language can narrow in SQL (a superset
    of the answer: `matches` has the last word), or None when nothing can."""
    parts = []
    for c in clauses:
        if c.entity == "metrics" and c.op in ("=", "!=", "<", "<=", ">", ">=") and isinstance(c.value, float):
            parts.append(f"{_field('metrics', c.key)} {c.op} {_quote(c.value)}")
        elif c.entity in ("params", "tags") and c.op == "=" and isinstance(c.value, str) and not c.key.startswith("mlflow."):
            parts.append(f"{_field(c.entity, c.key)} = {_quote(c.value)}")
        elif c.entity == "attributes" and c.key.lower() == "status" and c.op == "=" and isinstance(c.value, str):
            statuses = _LINEAGE_STATUS.get(c.value.upper())
            if statuses:
                parts.append("status in (" + ", ".join(map(_quote, statuses)) + ")")
        elif c.entity == "attributes" and c.key.lower() in ("run_name", "run name", "name") and c.op == "=":
            # (the name it started with, or the one a mlflow.runName tag renamed it to)
            parts.append(f"(name = {_quote(c.value)} or {_field('tags', 'mlflow.runName')} = {_quote(c.value)})")
    return " and ".join(parts) or None


def _like(pattern: str, text: str, *, ci: bool) -> bool:
    rx = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(rx, text, re.IGNORECASE | re.DOTALL if ci else re.DOTALL) is not None


def compare(actual: Any, op: str, expected: Any) -> bool:
    """True when ``actual`` stands in relation ``op`` to ``expected`` as MLflow's filters compare (None
    matches nothing)."""
    if actual is None:
        return False
    if op in ("in", "not in"):
        inside = any(compare(actual, "=", e) for e in expected)
        return inside if op == "in" else not inside
    if op in ("like", "ilike", "not like", "not ilike"):
        hit = _like(str(expected), str(actual), ci="ilike" in op)
        return not hit if op.startswith("not") else hit
    if isinstance(expected, float):
        try:
            a: Any = float(actual)
        except (TypeError, ValueError):
            return False
        e: Any = expected
    else:
        a, e = str(actual), str(expected)
    return {"=": a == e, "!=": a != e, "<": a < e, "<=": a <= e, ">": a > e, ">=": a >= e}[op]


def _attribute(view: Any, key: str) -> Any:
    k = key.lower()
    if k in ("run_name", "run name", "name"):
        return view.info.run_name
    if k == "created":
        return view.info.start_time
    return getattr(view.info, k, None)


def matches(view: Any, clauses: Sequence[Clause]) -> bool:
    """True when an MLflow-shaped run view satisfies every clause."""
    for c in clauses:
        if c.entity == "metrics":
            actual = view.data.metrics.get(c.key)
        elif c.entity == "params":
            actual = view.data.params.get(c.key)
        elif c.entity == "tags":
            actual = view.data.tags.get(c.key)
        elif c.entity == "attributes":
            actual = _attribute(view, c.key)
            if c.key.lower() == "status" and isinstance(c.value, str):
                actual, expected = str(actual), c.value.upper()
                if not compare(actual, c.op, expected):
                    return False
                continue
        else:  # datasets.name / datasets.digest / datasets.context
            k = c.key.lower()
            values = [d.tags.get("mlflow.data.context") if k == "context" else getattr(d.dataset, k, None)
                      for d in view.inputs.dataset_inputs]
            if not any(compare(v, c.op, c.value) for v in values):
                return False
            continue
        if not compare(actual, c.op, c.value):
            return False
    return True


def parse_order(order_by: Sequence[str] | None, *,
                attributes: Collection[str] = _ATTRIBUTES) -> list[tuple[str, str, bool]]:
    """``["metrics.rmse ASC", "attributes.start_time DESC"]`` -> ``[(entity, key, descending)]``;
    ``attributes``: the attribute names it may order by (a run's, unless given).

    Raises FilterSyntaxError for a term that does not parse."""
    out = []
    for term in order_by or ():
        text = str(term).strip()
        desc = False
        low = text.lower()
        if low.endswith(" desc"):
            text, desc = text[:-5].strip(), True
        elif low.endswith(" asc"):
            text = text[:-4].strip()
        r = _Reader(text, attributes)
        entity, key, _ = r.identifier()
        if not r.done():
            raise FilterSyntaxError(f"cannot order by {term!r}; write e.g. 'metrics.rmse ASC'", r.i)
        out.append((entity, key, desc))
    return out


def sort_by_fields(items: Sequence[T], fields: Sequence[tuple[str, str, bool]],
                   value: Callable[[T, str, str], Any]) -> list[T]:
    """``items`` in the order of ``fields``, each ``(entity, key, descending)``, the
    first the most significant, ``value(item, entity, key)`` giving an item's value;
    ``items``' own order breaks ties. An item with no value for a field (None) comes
    after those with one, in both directions. (For searches of experiments and logged
    models; runs have their own rules for NaN: `sort_views`.)"""
    out = list(items)
    for entity, key, descending in reversed(fields):  # (stable sorts, the least significant first)
        valued = [(value(x, entity, key), x) for x in out]
        present = sorted((vx for vx in valued if vx[0] is not None), key=lambda vx: vx[0], reverse=descending)
        out = [x for _, x in present] + [x for v, x in valued if v is None]
    return out


def sort_views(views: list[Any], order: Sequence[tuple[str, str, bool]]) -> list[Any]:
    """Views sorted by MLflow's rules: the given keys (missing values last), then newest
    first, then run id."""
    views = sorted(views, key=lambda v: v.info.run_id)
    views.sort(key=lambda v: -(v.info.start_time or 0))
    for entity, key, desc in reversed(list(order)):
        def value(v: Any, entity: str = entity, key: str = key) -> Any:
            if entity == "attributes":
                return _attribute(v, key)
            return getattr(v.data, entity, {}).get(key)

        # NaN (a diverged trial's loss) is no number to order by: after the numbers in
        # both directions, as MLflow puts it, before the runs without the key. Sorted
        # among the numbers, its comparisons (all false) split the list, and
        # `max_results=1` picked the worst run as the best.
        missing = [v for v in views if value(v) is None]
        nans = [v for v in views if _is_nan(value(v))]
        present = [v for v in views if value(v) is not None and not _is_nan(value(v))]

        def sort_key(v: Any, value: Any = value) -> tuple[int, Any]:
            x = value(v)
            try:
                return (0, float(x))
            except (TypeError, ValueError):
                return (1, str(x))

        present.sort(key=sort_key, reverse=desc)
        views = present + nans + missing
    return views


def _is_nan(x: Any) -> bool:
    return isinstance(x, float) and x != x
