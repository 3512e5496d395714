"""Run search: `runs`, a parsed filter (see `filters`) compiled to parameterised SQL,
and `parse_order`, its sort keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import FilterSyntaxError, InvalidInputError
from ..model import Node
from ..store import Store
from .filters import _Bool, _Cmp, parse_filter

# Fragments of SQL for each field, given the comparison as a SQL snippet over `v`.
# Params and tags are stored as TEXT; a number in the filter compares numerically with
# the values that look like numbers (GLOB is SQLite's; PostgreSQL would use
# `v ~ '^[-+0-9.eE]+$'`), and text compares as text. Tags and run states change over
# time: the latest row wins. Metrics: the latest value (by step, then order logged)
# of the run-level series (not per-group results).
_NUMERIC_TEXT = "({v} NOT GLOB '*[^0-9.eE+-]*' AND {v} GLOB '*[0-9]*')"
_LATEST_TAG = "t.pk = (SELECT MAX(t2.pk) FROM tags t2 WHERE t2.run = t.run AND t2.key = t.key)"
_LATEST_METRIC = ("NOT EXISTS (SELECT 1 FROM metrics m2 WHERE m2.run = m.run AND m2.key = m.key AND m2.grp IS NULL "
                  "AND (m2.step > m.step OR (m2.step = m.step AND m2.pk > m.pk)))")
_LATEST_STATE = "s.pk = (SELECT MAX(s2.pk) FROM run_states s2 WHERE s2.run = s.run)"


def _like_pattern(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _value_test(column: str, op: str, value: Any, *, numeric_column: bool = False,
                prefix: bool = False) -> tuple[str, list[Any]]:
    """``column op ?`` with the right typing: numeric for number literals (text
    columns compare only their numeric-looking values), text otherwise."""
    if op == "contains":
        return f"{column} LIKE ? ESCAPE '\\'", [_like_pattern(str(value))]
    if isinstance(value, float):
        if numeric_column:
            return f"{column} {op} ?", [value]
        guard = _NUMERIC_TEXT.format(v=column)
        return f"({guard} AND CAST({column} AS REAL) {op} ?)", [value]
    if prefix:
        # started_at '2024-05-01' compares by the day: '<=' takes in the whole day
        text = str(value).replace(" ", "T")
        return f"substr({column}, 1, {len(text)}) {op} ?", [text]
    return f"{column} {op} ?", [value]


def _compile(expr: Any, store: Store) -> tuple[str, list[Any]]:
    """The filter as a condition on one run row ``n``: each comparison is a probe of
    that run's rows through the ``(run, key)`` indexes."""
    if isinstance(expr, _Bool):
        parts = [_compile(a, store) for a in expr.args]
        if expr.op == "not":
            return f"NOT ({parts[0][0]})", parts[0][1]
        sql = f" {expr.op.upper()} ".join(f"({p[0]})" for p in parts)
        return sql, [x for p in parts for x in p[1]]
    c: _Cmp = expr
    if c.op in ("in", "not in"):
        alts = [_compile(_Cmp(c.field, c.key, "=", (v,), c.pos), store) for v in c.values]
        sql = " OR ".join(f"({a[0]})" for a in alts)
        args = [x for a in alts for x in a[1]]
        return (f"NOT ({sql})", args) if c.op == "not in" else (sql, args)
    v = c.values[0]
    if c.field == "params":
        test, args = _value_test("p.value", c.op, v)
        return f"EXISTS (SELECT 1 FROM params p WHERE p.run = n.id AND p.key = ? AND {test})", [c.key, *args]
    if c.field == "tags":
        test, args = _value_test("t.value", c.op, v)
        return f"EXISTS (SELECT 1 FROM tags t WHERE t.run = n.id AND t.key = ? AND {_LATEST_TAG} AND {test})", [c.key, *args]
    # the latest value as a scalar subquery: one probe of the (run, …) index per run
    if c.field == "metrics":
        latest = ("(SELECT m.value FROM metrics m WHERE m.run = n.id AND m.key = ? AND m.grp IS NULL "
                  "ORDER BY m.step DESC, m.pk DESC LIMIT 1)")
        test, args = _value_test(latest, c.op, v, numeric_column=True)
        return test, [c.key, *args]
    if c.field == "status":
        latest = "(SELECT s.status FROM run_states s WHERE s.run = n.id ORDER BY s.pk DESC LIMIT 1)"
        return _value_test(latest, c.op, v)
    if c.field == "name":
        return _value_test("n.name", c.op, v if isinstance(v, str) else _number_text(v))
    if c.field == "experiment":
        # json_extract is SQLite's; PostgreSQL: (n.attrs::jsonb ->> 'experiment')
        return _value_test("json_extract(n.attrs, '$.experiment')", c.op, v if isinstance(v, str) else _number_text(v))
    if c.field == "started_at":
        return _value_test("n.created_at", c.op, v if isinstance(v, str) else _number_text(v), prefix=c.op != "contains")
    if c.field == "used":
        sql = "EXISTS (SELECT 1 FROM edges e WHERE e.src = n.id AND e.dst = ? AND e.rel = 'used')"
        target = store.resolve(v).id
        return (sql, [target]) if c.op == "=" else (f"NOT ({sql})", [target])
    raise FilterSyntaxError(f"unknown field {c.field!r}", c.pos)  # pragma: no cover - the parser allows no other


def _driver(c: _Cmp, store: Store) -> tuple[int, str, list[Any]] | None:
    """For a comparison that every match must satisfy: the ids of the runs that pass
    it, as a subquery over one index (``params (key, run)``, ``edges (dst, …)``, …),
    and a guess at how selective it is (lower: fewer runs). None when no index helps
    (``!=``, ``not in``, experiment, …)."""
    if c.op in ("<>", "not in", "contains") or c.field in ("experiment", "started_at"):
        return None
    if c.op == "in":
        parts = [_driver(_Cmp(c.field, c.key, "=", (v,), c.pos), store) for v in c.values]
        if any(p is None for p in parts):
            return None
        return (max(p[0] for p in parts),  # type: ignore[index]
                " UNION ".join(p[1] for p in parts), [x for p in parts for x in p[2]])  # type: ignore[index]
    v = c.values[0]
    eq = c.op == "="
    if c.field == "used":
        return 0, "SELECT e.src FROM edges e WHERE e.dst = ? AND e.rel = 'used'", [store.resolve(v).id]
    if c.field == "name":
        return (0 if eq else 4), "SELECT x.id FROM nodes x WHERE x.kind = 'run' AND x.name " + c.op + " ?", [
            v if isinstance(v, str) else _number_text(v)]
    if c.field == "params":
        test, args = _value_test("p.value", c.op, v)
        return (1 if eq else 3), f"SELECT p.run FROM params p WHERE p.key = ? AND {test}", [c.key, *args]
    if c.field == "tags":
        test, args = _value_test("t.value", c.op, v)
        return (1 if eq else 3), f"SELECT t.run FROM tags t WHERE t.key = ? AND {_LATEST_TAG} AND {test}", [c.key, *args]
    if c.field == "metrics":
        test, args = _value_test("m.value", c.op, v, numeric_column=True)
        return 2, f"SELECT m.run FROM metrics m WHERE m.key = ? AND m.grp IS NULL AND {test} AND {_LATEST_METRIC}", [
            c.key, *args]
    if c.field == "status":
        # most runs finish: only the other states are worth driving from
        return (5 if v == "finished" or not eq else 1), \
            f"SELECT s.run FROM run_states s WHERE s.status {c.op} ? AND {_LATEST_STATE}", [v]
    return None


def _where(tree: Any, store: Store) -> tuple[list[str], list[Any]]:
    """WHERE terms for `runs`. When the filter's top level is an ``and`` (or one
    comparison), the most selective indexed comparison drives: its matches are
    found through its index and the other comparisons are probed for those runs
    only, so a filter costs what it selects rather than one probe per run per term.
    Otherwise every run is probed."""
    conjuncts = list(tree.args) if isinstance(tree, _Bool) and tree.op == "and" else [tree]
    best: tuple[int, int, tuple[int, str, list[Any]]] | None = None
    for i, c in enumerate(conjuncts):
        if isinstance(c, _Cmp):
            d = _driver(c, store)
            if d is not None and (best is None or d[0] < best[2][0]):
                best = (i, d[0], d)
    terms: list[str] = []
    args: list[Any] = []
    if best is None or best[1] >= 5:
        terms.append("n.kind = 'run'")
    if best is not None and best[1] < 5:
        terms.append(f"n.id IN ({best[2][1]})")
        args += best[2][2]
    for i, c in enumerate(conjuncts):
        if best is not None and best[1] < 5 and i == best[0]:
            continue
        sql, a = _compile(c, store)
        terms.append(f"({sql})")
        args += a
    return terms, args


def _number_text(v: float) -> str:
    return str(int(v)) if v.is_integer() else repr(v)


def parse_order(order_by: str | Sequence[str]) -> list[tuple[str, str | None, bool]]:
    """Sort keys for `runs`: ``"-metrics.accuracy,params.C"`` →
    ``[("metrics", "accuracy", True), ("params", "C", False)]`` (field, key,
    descending). Raises InvalidInputError for a key that cannot be sorted by."""
    keys = [k.strip() for k in order_by.split(",")] if isinstance(order_by, str) else [str(k).strip() for k in order_by]
    out: list[tuple[str, str | None, bool]] = []
    for raw in keys:
        if not raw:
            continue
        desc = raw.startswith("-")
        body = raw.lstrip("+-").strip()
        if body.lower().endswith(" desc"):
            body, desc = body[:-5].strip(), True
        elif body.lower().endswith(" asc"):
            body = body[:-4].strip()
        head, dot, key = body.partition(".")
        if dot and head.lower() in ("params", "metrics", "tags") and key:
            out.append((head.lower(), key.strip("'\"`"), desc))
        elif body.lower() in ("name", "experiment", "status", "started_at"):
            out.append((body.lower(), None, desc))
        else:
            raise InvalidInputError(f"cannot sort by {raw!r}; use params.KEY, metrics.KEY, tags.KEY, name, "
                                    "experiment, status or started_at (a leading - sorts descending)")
    return out


def _sort_sql(terms: list[tuple[str, str | None, bool]]) -> tuple[list[str], list[Any], list[str]]:
    """Columns to select (with their arguments) and ORDER BY terms; missing values last."""
    cols: list[str] = []
    args: list[Any] = []
    order: list[str] = []
    for i, (fld, key, desc) in enumerate(terms):
        d = " DESC" if desc else ""
        alias = f"s{i}"
        if fld == "metrics":
            cols.append(f"(SELECT m.value FROM metrics m WHERE m.run = n.id AND m.key = ? AND m.grp IS NULL "
                        f"ORDER BY m.step DESC, m.pk DESC LIMIT 1) AS {alias}")
            args.append(key)
            order += [f"{alias} IS NULL", f"{alias}{d}"]
            continue
        if fld in ("params", "tags"):
            table = fld
            cols.append(f"(SELECT x.value FROM {table} x WHERE x.run = n.id AND x.key = ? "
                        f"ORDER BY x.pk DESC LIMIT 1) AS {alias}")
            args.append(key)
            numeric = _NUMERIC_TEXT.format(v=alias)
            # numbers before text, numbers by value, text by text
            order += [f"{alias} IS NULL", f"CASE WHEN {numeric} THEN 0 ELSE 1 END",
                      f"CASE WHEN {numeric} THEN CAST({alias} AS REAL) END{d}", f"{alias}{d}"]
            continue
        expr = {
            "name": "n.name",
            "experiment": "json_extract(n.attrs, '$.experiment')",
            "started_at": "n.created_at",
            "status": "(SELECT s.status FROM run_states s WHERE s.run = n.id ORDER BY s.pk DESC LIMIT 1)",
        }[fld]
        cols.append(f"{expr} AS {alias}")
        order += [f"{alias} IS NULL", f"{alias}{d}"]
    return cols, args, order


def runs(store: Store, where: str | None = None, order_by: str | Sequence[str] | None = None,
         limit: int | None = None) -> list[Node]:
    """Runs across experiments that match a filter, with their status, params, tags
    and latest metrics in ``attrs``; newest first unless ``order_by`` says otherwise.

    ``where`` is the filter language of DESIGN.md §5, e.g.
    ``params.C > 0.5 and metrics.accuracy >= 0.9 and status = 'finished'`` or
    ``used = 'train' and started_at >= '2024-05-01'``. ``order_by``: keys separated
    by commas, ``-`` for descending: ``-metrics.accuracy,params.C``.

    Raises FilterSyntaxError (with the position) for a filter that does not parse,
    InvalidInputError for a bad sort key or limit, NodeNotFoundError when ``used``
    names no node.
    """
    conditions = ["n.kind = 'run'"]
    args: list[Any] = []
    if where is not None and str(where).strip():
        conditions, args = _where(parse_filter(where), store)
    terms = parse_order(order_by) if order_by else []
    cols, sort_args, order = _sort_sql(terms)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidInputError(f"limit must be a whole number (0 or more), got {limit!r}")
    select = ", ".join([f"n.{c.strip()}" for c in store._NODE_COLS.split(",")] + cols + ["n.pk"])
    sql = f"SELECT {select} FROM nodes n WHERE {' AND '.join(conditions)}"
    if order:  # sort keys are output columns: PostgreSQL takes them in expressions only from a subquery
        sql = f"SELECT * FROM ({sql}) q"
    sql += " ORDER BY " + ", ".join([*order, "pk DESC" if order else "n.pk DESC"])
    params = [*sort_args, *args]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    nodes = [store._node_from_row(row[:5]) for row in store.conn.execute(sql, params)]
    return store.with_run_state(nodes)
