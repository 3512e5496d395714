"""Run search: `runs`, a parsed filter (see `filters`) compiled to parameterised SQL,
and `parse_order`, its sort keys."""

from __future__ import annotations

import re as _re
from collections.abc import Sequence
from dataclasses import dataclass as _dataclass
from dataclasses import field as _field
from typing import Any

from ..errors import FilterSyntaxError, InvalidInputError
from ..model import Node
from ..store import Store, fulltext, latest, published
from .filters import BoolOp, Comparison, parse_filter

# Fragments of SQL for each field, given the comparison as a SQL snippet over `v`.
# Params and tags are stored as TEXT; a number in the filter compares numerically with
# the values that look like numbers (GLOB is SQLite's; PostgreSQL would use
# `v ~ '^[-+0-9.eE]+$'`), and text compares as text. Tags and run states change over
# time: the latest row wins. Metrics: the value MLflow's rule picks (`store.latest`:
# greatest step, then time, then value) of the run-level series (not per-group
# results). Rows of an unpublished bulk batch (an import in flight, or left by a
# killed one) are never seen: `published`.
_NUMERIC_TEXT = "({v} NOT GLOB '*[^0-9.eE+-]*' AND {v} GLOB '*[0-9]*')"
_LATEST_TAG = f"t.pk = (SELECT MAX(t2.pk) FROM tags t2 WHERE t2.run = t.run AND t2.key = t.key AND {published('t2')})"
_LATEST_STATE = f"s.pk = (SELECT MAX(s2.pk) FROM run_states s2 WHERE s2.run = s.run AND {published('s2')})"
#: a run's latest metric value and status, as scalar subqueries on the run ``n``
_METRIC_OF_N = ("(SELECT m.value FROM metrics m WHERE m.run = n.id AND m.key = ? AND m.grp IS NULL "
                f"AND {published('m')} ORDER BY {latest.latest_first('m')} LIMIT 1)")
_STATUS_OF_N = f"(SELECT s.status FROM run_states s WHERE s.run = n.id AND {published('s')} ORDER BY s.pk DESC LIMIT 1)"
#: whether the run whose id is ``{run}`` has the metric (bound to ``?``) at all: a
#: NaN is kept as NULL, so its value alone cannot tell it from an absent metric
_HAS_METRIC = "EXISTS (SELECT 1 FROM metrics m WHERE m.run = {run} AND m.key = ? AND m.grp IS NULL AND " + published("m") + ")"


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
        text = str(value).replace(" ", "T").rstrip("Z")  # (stored times are UTC, ending in Z after the fraction)
        return f"substr({column}, 1, {len(text)}) {op} ?", [text]
    return f"{column} {op} ?", [value]


def _compile(expr: Any, store: Store) -> tuple[str, list[Any]]:
    """The filter as a condition on one run row ``n``: each comparison is a probe of
    that run's rows through the ``(run, key)`` indexes."""
    if isinstance(expr, BoolOp):
        parts = [_compile(a, store) for a in expr.args]
        if expr.op == "not":
            return f"NOT ({parts[0][0]})", parts[0][1]
        sql = f" {expr.op.upper()} ".join(f"({p[0]})" for p in parts)
        return sql, [x for p in parts for x in p[1]]
    c: Comparison = expr
    if c.op in ("in", "not in"):
        alts = [_compile(Comparison(c.field, c.key, "=", (v,), c.pos), store) for v in c.values]
        sql = " OR ".join(f"({a[0]})" for a in alts)
        args = [x for a in alts for x in a[1]]
        return (f"NOT ({sql})", args) if c.op == "not in" else (sql, args)
    v = c.values[0]
    if c.field == "params":
        test, args = _value_test("p.value", c.op, v)
        return f"EXISTS (SELECT 1 FROM params p WHERE p.run = n.id AND p.key = ? AND {published('p')} AND {test})", [
            c.key, *args]
    if c.field == "tags":
        test, args = _value_test("t.value", c.op, v)
        return f"EXISTS (SELECT 1 FROM tags t WHERE t.run = n.id AND t.key = ? AND {_LATEST_TAG} AND {test})", [c.key, *args]
    # the latest value as a scalar subquery: one probe of the (run, …) index per run
    if c.field == "metrics":
        test, args = _value_test(_METRIC_OF_N, c.op, v, numeric_column=True)
        if c.op == "<>" and isinstance(v, float):
            # a NaN (kept as NULL) differs from every number, as in MLflow's search;
            # an absent metric matches nothing
            return f"COALESCE({test}, {_HAS_METRIC.format(run='n.id')})", [c.key, *args, c.key]
        return test, [c.key, *args]
    if c.field == "status":
        return _value_test(_STATUS_OF_N, c.op, v)
    if c.field == "name":
        return _value_test("n.name", c.op, v if isinstance(v, str) else _number_text(v))
    if c.field == "experiment":
        # json_extract is SQLite's; PostgreSQL: (n.attrs::jsonb ->> 'experiment')
        return _value_test("json_extract(n.attrs, '$.experiment')", c.op, v if isinstance(v, str) else _number_text(v))
    if c.field == "started_at":
        return _value_test("n.created_at", c.op, v if isinstance(v, str) else _number_text(v), prefix=c.op != "contains")
    if c.field == "used" and c.op == "contains":
        # a used dataset whose name (or an alias: the same bytes under another name) contains the text
        name_test, name_args = _value_test("d.name", "contains", v)
        alias_test, alias_args = _value_test("a.name", "contains", v)
        return ("EXISTS (SELECT 1 FROM edges e JOIN nodes d ON d.id = e.dst WHERE e.src = n.id AND e.rel = 'used' "
                f"AND d.kind = 'dataset' AND ({name_test} OR EXISTS (SELECT 1 FROM aliases a WHERE a.node = d.id "
                f"AND {alias_test})))", [*name_args, *alias_args])
    if c.field == "used":
        sql = "EXISTS (SELECT 1 FROM edges e WHERE e.src = n.id AND e.dst = ? AND e.rel = 'used')"
        target = store.resolve(v).id
        return (sql, [target]) if c.op == "=" else (f"NOT ({sql})", [target])
    raise FilterSyntaxError(f"unknown field {c.field!r}", c.pos)  # pragma: no cover - the parser allows no other


def _driver(c: Comparison, store: Store) -> tuple[int, str, list[Any]] | None:
    """For a comparison that every match must satisfy: the ids of the runs that pass
    it, as a subquery over one index (``params (key, run)``, ``edges (dst, …)``, …),
    and a guess at how selective it is (lower: fewer runs). None when no index helps
    (``!=``, ``not in``, experiment, …)."""
    if c.op in ("<>", "not in", "contains") or c.field in ("experiment", "started_at"):
        return None
    if c.op == "in":
        parts = [_driver(Comparison(c.field, c.key, "=", (v,), c.pos), store) for v in c.values]
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
        return (1 if eq else 3), f"SELECT p.run FROM params p WHERE p.key = ? AND {published('p')} AND {test}", [
            c.key, *args]
    if c.field == "tags":
        test, args = _value_test("t.value", c.op, v)
        return (1 if eq else 3), f"SELECT t.run FROM tags t WHERE t.key = ? AND {_LATEST_TAG} AND {test}", [c.key, *args]
    if c.field == "metrics":
        # the runs with any value of the metric that passes (through its index), each
        # then checked on its value (`_compile`): the cost follows the runs that
        # passed once, not every run's history (nor, per passing row, the rest of it)
        test, args = _value_test("m.value", c.op, v, numeric_column=True)
        if c.op == "<>" and isinstance(v, float):
            test = f"({test} OR m.value IS NULL)"  # a NaN differs from every number (`_compile`)
        value_test, value_args = _compile(c, store)
        return 2, (f"SELECT n.id FROM (SELECT DISTINCT m.run AS id FROM metrics m WHERE m.key = ? AND m.grp IS NULL "
                   f"AND {published('m')} AND {test}) n WHERE {value_test}"), [c.key, *args, *value_args]
    if c.field == "status":
        # most runs finish: only the other states are worth driving from
        return (5 if v == "finished" or not eq else 1), \
            f"SELECT s.run FROM run_states s WHERE s.status {c.op} ? AND {_LATEST_STATE}", [v]
    return None


def where_terms(tree: Any, store: Store) -> tuple[list[str], list[Any]]:
    """WHERE terms for `runs`. When the filter's top level is an ``and`` (or one
    comparison), the most selective indexed comparison drives: its matches are
    found through its index and the other comparisons are probed for those runs
    only, so a filter costs what it selects rather than one probe per run per term.
    Otherwise every run is probed."""
    conjuncts = list(tree.args) if isinstance(tree, BoolOp) and tree.op == "and" else [tree]
    best: tuple[int, int, tuple[int, str, list[Any]]] | None = None
    for i, c in enumerate(conjuncts):
        if isinstance(c, Comparison):
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
    """Sort keys for `runs`.

    Parameters
    ----------
    order_by : str or sequence of str
        Keys separated by commas, ``-`` for descending (or a trailing ``DESC``).

    Returns
    -------
    list of tuple of (str, str or None, bool)
        ``(field, key, descending)`` for each key.

    Raises
    ------
    InvalidInputError
        For a key that cannot be sorted by.

    Examples
    --------
    >>> from lineage import query
    >>> query.parse_order("-metrics.accuracy,params.C")
    [('metrics', 'accuracy', True), ('params', 'C', False)]
    """
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


def _sort_sql(terms: list[tuple[str, str | None, bool]]) -> tuple[list[str], list[Any], list[str], list[Any]]:
    """Columns to select and ORDER BY terms over them (the query's rows as ``q``),
    each with its arguments; missing values last."""
    cols: list[str] = []
    args: list[Any] = []
    order: list[str] = []
    order_args: list[Any] = []
    for i, (fld, key, desc) in enumerate(terms):
        d = " DESC" if desc else ""
        alias = f"s{i}"
        if fld == "metrics":
            cols.append(f"{_METRIC_OF_N} AS {alias}")
            args.append(key)
            # numbers, then NaN (kept as NULL, but the run has the metric), then no
            # metric, either way round, as MLflow's search_runs sorts them; the probe
            # runs only for a run whose value is NULL
            order.append(f"CASE WHEN {alias} IS NOT NULL THEN 0 WHEN {_HAS_METRIC.format(run='q.id')} THEN 1 ELSE 2 END")
            order_args.append(key)
            order.append(f"{alias}{d}")
            continue
        if fld in ("params", "tags"):
            table = fld
            cols.append(f"(SELECT x.value FROM {table} x WHERE x.run = n.id AND x.key = ? AND {published('x')} "
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
            "status": _STATUS_OF_N,
        }[fld]
        cols.append(f"{expr} AS {alias}")
        order += [f"{alias} IS NULL", f"{alias}{d}"]
    return cols, args, order, order_args


def runs(store: Store, where: str | None = None, order_by: str | Sequence[str] | None = None,
         limit: int | None = None) -> list[Node]:
    """Runs across experiments that match a filter, with their status, params, tags
    and latest metrics in ``attrs``; newest first unless ``order_by`` says otherwise.

    Parameters
    ----------
    store : Store
        The store to read.
    where : str, optional
        The filter language of DESIGN.md §5, e.g.
        ``params.C > 0.5 and metrics.accuracy >= 0.9 and status = 'finished'`` or
        ``used = 'train' and started_at >= '2024-05-01'``.
    order_by : str or sequence of str, optional
        Keys separated by commas, ``-`` for descending: ``-metrics.accuracy,params.C``
        (see `parse_order`).
    limit : int, optional
        At most this many.

    Returns
    -------
    list of Node

    Raises
    ------
    FilterSyntaxError
        With the position, for a filter that does not parse.
    InvalidInputError
        For a bad sort key or limit.
    NodeNotFoundError
        When ``used`` names no node.

    Examples
    --------
    >>> from lineage import query
    >>> found = query.runs(store, "metrics.accuracy >= 0.5", order_by="-metrics.accuracy")
    >>> [n.attrs["params"]["C"] for n in found]
    ['1.0', '0.1']
    """
    conditions = ["n.kind = 'run'"]
    args: list[Any] = []
    if where is not None and str(where).strip():
        conditions, args = where_terms(parse_filter(where), store)
    terms = parse_order(order_by) if order_by else []
    cols, sort_args, order, order_args = _sort_sql(terms)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidInputError(f"limit must be a whole number (0 or more), got {limit!r}")
    select = ", ".join([store.node_columns("n"), *cols, "n.pk"])
    sql = f"SELECT {select} FROM nodes n WHERE {' AND '.join(conditions)}"
    if order:  # sort keys are output columns: PostgreSQL takes them in expressions only from a subquery
        sql = f"SELECT * FROM ({sql}) q"
    sql += " ORDER BY " + ", ".join([*order, "pk DESC" if order else "n.pk DESC"])
    params = [*sort_args, *args, *order_args]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    nodes = [store._node_from_row(row[:5]) for row in store.conn.execute(sql, params)]
    return store.with_run_state(nodes)


def count_runs(store: Store, where: str | None = None) -> int:
    """How many runs `runs` would list for ``where`` without a limit: one COUNT with the
    same filter, so a cut listing can say how many it left out.

    Parameters
    ----------
    store : Store
    where : str, optional
        A filter (see `parse_filter`).

    Returns
    -------
    int

    Examples
    --------
    >>> from lineage import query
    >>> query.count_runs(store, "metrics.accuracy >= 0.5")
    2
    """
    conditions = ["n.kind = 'run'"]
    args: list[Any] = []
    if where is not None and str(where).strip():
        conditions, args = where_terms(parse_filter(where), store)
    return int(store.conn.execute(f"SELECT COUNT(*) FROM nodes n WHERE {' AND '.join(conditions)}", args).fetchone()[0])


# ---------------------------------------------------------------------------
# full-text search (`lineage search TEXT`): names, aliases, annotations, params and
# tags, through the store's full-text index (lineage/store/fulltext.py).
#
# The user's text is parsed here, never handed to the engine: words are ANDed and
# prefix-matched (`forest` finds `random_forest`, `rand` finds it too), "quoted
# words" are an exact phrase, `OR` between two terms takes either, and `-word`
# leaves out what matches it. The parsed query is compiled to FTS5's MATCH
# language (SQLite) or to a tsquery (PostgreSQL), so the two backends answer the
# same question and no engine syntax error can reach a user.

#: a word as both engines' tokenizers see it: letters and digits (``_``, ``-``, ``.``,
#: ``/`` separate words, as in FTS5's unicode61 and PostgreSQL's default parser)
_WORD = _re.compile(r"[^\W_]+")
_CHUNK = _re.compile(r'"([^"]*)"?|(\S+)')

#: how much a match in each place counts (multiplies the engine's relevance): a name
#: says what a thing is, an alias nearly so; annotations, params and tags describe it
_WEIGHTS = {"nodes": 3.0, "aliases": 2.0, "annotations": 1.0, "params": 1.0, "tags": 1.0}


@_dataclass(frozen=True)
class _Term:
    words: tuple[str, ...]
    prefix: bool  # the last word may be the start of a longer one


@_dataclass(frozen=True)
class TextQuery:
    """A parsed search: every group must match (a group matches when any of its
    terms does), and no term of ``exclude`` may."""

    groups: tuple[tuple[_Term, ...], ...]
    exclude: tuple[_Term, ...] = ()


def parse_text_query(text: str) -> TextQuery:
    """Parse the search language (see the comment above this section).

    Raises InvalidInputError, one line, for text with no word to look for (empty,
    punctuation only, only ``-excluded`` words) or an ``OR`` without a term on
    each side.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("nothing to search for: give a word, e.g. `lineage search forest`")
    groups: list[list[_Term]] = []
    exclude: list[_Term] = []
    pending_or = False
    for m in _CHUNK.finditer(text):
        quoted, bare = m.group(1), m.group(2)
        if bare == "OR":
            if not groups or pending_or:
                raise InvalidInputError(f"search {text!r}: OR needs a word on each side (`forest OR boost`)")
            pending_or = True
            continue
        negate = bare is not None and bare.startswith("-") and len(bare) > 1
        words = tuple(w.lower() for w in _WORD.findall(quoted if quoted is not None else bare.lstrip("-" if negate else "")))
        if not words:
            continue
        term = _Term(words, prefix=quoted is None)
        if negate:
            exclude.append(term)
        elif pending_or:
            groups[-1].append(term)
        else:
            groups.append([term])
        pending_or = False
    if pending_or:
        raise InvalidInputError(f"search {text!r}: OR needs a word on each side (`forest OR boost`)")
    if not groups:
        what = "only excluded words" if exclude else "no word (letters or digits)"
        raise InvalidInputError(f"search {text!r} has {what} to look for; give a word, e.g. `lineage search forest`")
    return TextQuery(tuple(tuple(g) for g in groups), tuple(exclude))


def fts5_match(terms: Sequence[_Term]) -> str:
    """Terms, any of which may match, in FTS5's MATCH language. Every word is letters
    and digits only, so quoting it is all the escaping it needs."""
    return " OR ".join('"' + " ".join(t.words) + '"' + ("*" if t.prefix else "") for t in terms)


def tsquery(terms: Sequence[_Term]) -> str:
    """Terms, any of which may match, as PostgreSQL's ``to_tsquery('simple', …)`` text
    (for the pg branch): phrases as ``<->``, prefixes as ``:*``, quoted lexemes."""
    def term(t: _Term) -> str:
        lexemes = ["'" + w.replace("'", "''") + "'" for w in t.words]
        if t.prefix:
            lexemes[-1] += ":*"
        return "(" + " <-> ".join(lexemes) + ")"

    return " | ".join(map(term, terms))


# One arm per indexed table: (node id, where it matched, the text, relevance).
# FTS5's `rank` is bm25, lower (more negative) for better matches; weighted here.
_SQLITE_ARMS = {
    "nodes": "SELECT n.id, 'name', n.name, nodes_fts.rank * {w} FROM nodes_fts "
             "JOIN nodes n ON n.pk = nodes_fts.rowid WHERE nodes_fts MATCH ?",
    "aliases": "SELECT a.node, 'alias', a.name, aliases_fts.rank * {w} FROM aliases_fts "
               "JOIN aliases a ON a.pk = aliases_fts.rowid WHERE aliases_fts MATCH ?",
    "annotations": "SELECT a.node, 'annotation:' || a.field, a.text, annotations_fts.rank * {w} FROM annotations_fts "
                   "JOIN annotations a ON a.pk = annotations_fts.rowid WHERE annotations_fts MATCH ?",
    "params": "SELECT p.run, 'param:' || p.key, p.value, params_fts.rank * {w} FROM params_fts "
              f"JOIN params p ON p.pk = params_fts.rowid WHERE params_fts MATCH ? AND {published('p')}",
    "tags": "SELECT t.run, 'tag:' || t.key, t.value, tags_fts.rank * {w} FROM tags_fts "
            f"JOIN tags t ON t.pk = tags_fts.rowid WHERE tags_fts MATCH ? AND {published('t')}",
}

#: The same search on PostgreSQL, for the pg branch to wire in `search_text` (one
#: `?` per arm, each bound to `tsquery(q)`). Each expression repeats its GIN index's
#: (lineage/store/fulltext.py POSTGRES_DDL) exactly, so the index is used; ts_rank
#: is higher for better matches, so it is negated to sort like FTS5's bm25.
POSTGRES_ARMS = {  # ({v}: `_pg_words` of the arm's table)
    "nodes": "SELECT n.id, 'name', n.name, -ts_rank({v}, to_tsquery('simple', ?)) * {w} FROM nodes n "
             "WHERE {v} @@ to_tsquery('simple', ?)",
    "aliases": "SELECT a.node, 'alias', a.name, -ts_rank({v}, to_tsquery('simple', ?)) * {w} FROM aliases a "
               "WHERE {v} @@ to_tsquery('simple', ?)",
    "annotations": "SELECT a.node, 'annotation:' || a.field, a.text, -ts_rank({v}, to_tsquery('simple', ?)) * {w} "
                   "FROM annotations a WHERE {v} @@ to_tsquery('simple', ?)",
    "params": "SELECT p.run, 'param:' || p.key, p.value, -ts_rank({v}, to_tsquery('simple', ?)) * {w} FROM params p "
              f"WHERE {{v}} @@ to_tsquery('simple', ?) AND {published('p')}",
    "tags": "SELECT t.run, 'tag:' || t.key, t.value, -ts_rank({v}, to_tsquery('simple', ?)) * {w} FROM tags t "
            f"WHERE {{v}} @@ to_tsquery('simple', ?) AND {published('t')}",
}


_PG_ALIAS = {"nodes": "n", "aliases": "a", "annotations": "a", "params": "p", "tags": "t"}


def _pg_words(table: str) -> str:
    """The tsvector of a POSTGRES_ARMS arm: its index's expression, on the arm's alias."""
    return fulltext.words(" || ' ' || ".join(f"coalesce({_PG_ALIAS[table]}.{c}, '')"
                                             for c in fulltext.SOURCES[table]))


@_dataclass
class SearchHit:
    """One node found by `search_text`: ``.node``, ``.score`` (higher is better) and
    ``.matches``, where it matched: ``[{"field": "name" | "alias" | "param:KEY" |
    "tag:KEY" | "annotation:FIELD", "text": …}]``."""

    node: Node
    score: float
    matches: list[dict[str, Any]] = _field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A node (DESIGN.md §5) plus ``score`` and ``matches``."""
        return {**self.node.to_dict(), "score": self.score, "matches": list(self.matches)}


class SearchResults(list[SearchHit]):
    """The hits of `search_text`, best first; ``.to_dict()`` is ``{"items": [...]}``.
    ``.total``: how many nodes matched before the limit cut them (a listing says how
    many it left out)."""

    total: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"items": [h.to_dict() for h in self]}


def _arms(backend: str, terms: Sequence[_Term], group: int) -> tuple[str, list[Any]]:
    """The UNION ALL of every indexed table's rows matching any of ``terms``, tagged
    with ``group``, and its arguments."""
    if backend == "sqlite":
        arms, args = _SQLITE_ARMS, [fts5_match(terms)] * len(_SQLITE_ARMS)
    else:
        arms, args = POSTGRES_ARMS, [tsquery(terms)] * (2 * len(POSTGRES_ARMS))
    sql = " UNION ALL ".join(a.format(w=_WEIGHTS[t], v=_pg_words(t)).replace("SELECT ", f"SELECT {int(group)}, ", 1)
                             for t, a in arms.items())
    return sql, args


def search_sql(backend: str, q: TextQuery, *, kind: str | None = None,
               limit: int | None = None) -> tuple[str, list[Any], str, list[Any]]:
    """The ranking query of `search_text` for ``backend`` (``"sqlite"`` or
    ``"postgresql"``), with ``?`` placeholders: ``(sql, params, hits, hits_params)``,
    where ``hits`` is its ``WITH`` clause (every matching row as ``(grp, node,
    field, text, score)``), which the caller reuses to list what matched."""
    parts, args = [], []
    for i, g in enumerate(q.groups):
        sql, a = _arms(backend, g, i)
        parts.append(sql)
        args += a
    hits = f"WITH hits (grp, node, field, text, score) AS ({' UNION ALL '.join(parts)})"
    conditions, cargs = [], []
    if q.exclude:
        sql, a = _arms(backend, q.exclude, -1)
        hits += f", excluded (grp, node, field, text, score) AS ({sql})"
        args += a
        conditions.append("node NOT IN (SELECT node FROM excluded)")
    if kind is not None:  # node ids start with their kind (predictions included); substr, not a
        # range, as PostgreSQL's collations may order punctuation otherwise (over the hits only)
        conditions.append("substr(node, 1, ?) = ?")
        cargs += [len(kind) + 1, f"{kind}:"]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    # equal scores (the versions of one name) newest first, as `lineage ls` lists
    # nodes, not in hash order
    sql = (f"{hits} SELECT node, SUM(score) AS best FROM hits{where} GROUP BY node "
           f"HAVING COUNT(DISTINCT grp) = {len(q.groups)} "
           "ORDER BY best, (SELECT o.pk FROM nodes o WHERE o.id = hits.node) DESC, node")
    params = [*args, *cargs]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params, hits, args


def search_text(store: Store, text: str, *, kind: str | None = None, limit: int | None = 20) -> SearchResults:
    """Nodes whose name, alias, annotations, params or tags match ``text`` (the
    language of `parse_text_query`), best first; each with where it matched.

    A node matches when each word (or OR-group) matches somewhere in what is
    recorded about it, not necessarily in one place (`forest l2`: a run named
    random_forest with a param l2), and none of the ``-excluded`` words does.
    Relevance: the engine's (bm25 on SQLite), weighted by where it matched
    (`_WEIGHTS`), summed over the matching rows.

    Cost: one index lookup per indexed table and term group, then a group over the
    matching rows (not over the store). Raises InvalidInputError for an empty or
    wordless query, an unknown kind or a bad limit.
    """
    from ..model import KINDS

    if kind is not None and kind not in KINDS:
        raise InvalidInputError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInputError(f"limit must be a whole number (1 or more), got {limit!r}")
    q = parse_text_query(text)
    by_request = _by_request_id(store, text, kind=kind, limit=limit)
    rest = None if limit is None else max(limit - len(by_request), 0)
    found = _by_text(store, q, kind=kind, limit=rest)
    if not by_request:
        return found
    # an identifier the caller gave outranks every text match
    top = max((h.score for h in found), default=0.0) + 1.0
    out = SearchResults([*(SearchHit(h.node, top, h.matches) for h in by_request), *found])
    out.total = by_request.total + found.total
    return out


def _by_text(store: Store, q: TextQuery, *, kind: str | None, limit: int | None) -> SearchResults:
    """`search_text`'s hits in the full-text index, best first."""
    # the index is brought up to date here, not by every write (lineage/store/fulltext.py)
    fulltext.catch_up(store)
    # ranked without a LIMIT: the engine groups and sorts every matching node anyway,
    # and their number is what a cut listing reports; only ``limit`` are read in full
    sql, params, hits, args = search_sql(store.dialect, q, kind=kind)
    every = [(r[0], r[1]) for r in store.conn.execute(sql, params)]
    ranked = every if limit is None else every[:limit]
    if not ranked:
        out = SearchResults()
        out.total = len(every)
        return out
    ids = [r[0] for r in ranked]
    marks = ", ".join("?" * len(ids))
    matches: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    seen: set[tuple[str, str, Any]] = set()
    for node, field_, value in store.conn.execute(
            f"{hits} SELECT node, field, text FROM hits WHERE node IN ({marks}) ORDER BY score, field", [*args, *ids]):
        if (node, field_, value) not in seen:  # a row matching two groups is shown once
            seen.add((node, field_, value))
            matches[node].append({"field": field_, "text": value})
    nodes = store.get_nodes(ids)
    out = SearchResults(SearchHit(nodes[i], round(-best, 4) + 0.0, matches[i]) for i, best in ranked if i in nodes)
    out.total = len(every) - (len(ranked) - len(out))
    return out


def _by_request_id(store: Store, text: str, *, kind: str | None, limit: int | None) -> SearchResults:
    """The predictions whose caller's request id is exactly ``text`` (one word, quotes
    allowed), newest first: DESIGN §1 makes the request id searchable. One lookup on
    the ``predictions (request_id)`` index; predictions stay out of the full-text
    index, which would grow by millions of rows for this one column (exact, not
    prefix: a range scan under PostgreSQL's collations would miss ids)."""
    wanted = text.strip().strip('"')
    if kind not in (None, "prediction") or not wanted or any(c.isspace() for c in wanted):
        return SearchResults()
    sql = f"SELECT id FROM predictions WHERE request_id = ? AND {published()} ORDER BY pk DESC"
    every = [r[0] for r in store.conn.execute(sql, [wanted])]  # (ids only: a few, as request ids go)
    ids = every if limit is None else every[:limit]
    nodes = store.get_nodes(ids)
    out = SearchResults(SearchHit(nodes[i], 0.0, [{"field": "request_id", "text": wanted}]) for i in ids if i in nodes)
    out.total = len(every) - (len(ids) - len(out))
    return out
