"""The filter language of `runs` (DESIGN.md §5): a tokenizer and a recursive-descent
parser into a small tree of comparisons; `search` compiles the tree to SQL."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import FilterSyntaxError
from ..model import RUN_STATUSES

# run search: a small filter language, parsed, compiled to parameterised SQL
#
#   expr       := or
#   or         := and ("or" and)*
#   and        := not ("and" not)*
#   not        := "not" not | "(" expr ")" | comparison
#   comparison := field op value | field ["not"] "in" "(" value ("," value)* ")"
#   field      := params.KEY | metrics.KEY | tags.KEY | name | experiment | status
#                 | started_at | used            (KEY may be quoted: params."a b")
#   op         := = | == | != | <> | < | <= | > | >= | contains
#                 (started_at compares with an ISO date/time; `used contains 'x'`:
#                 a used dataset's name contains x)
#   value      := number | 'text' | "text"       (a quote inside is doubled or \-escaped)
#
# User text only ever reaches SQL as a bound parameter; the SQL around it is built
# from fixed fragments chosen by the parser.

_OPS = {"=": "=", "==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_KEYWORDS = {"and", "or", "not", "in", "contains"}
_PLAIN_FIELDS = ("name", "experiment", "status", "started_at", "used")
_FIELD_HELP = "params.KEY, metrics.KEY, tags.KEY, name, experiment, status, started_at or used"


@dataclass(frozen=True)
class _Token:
    kind: str  # field, keyword, op, number, string, lparen, rparen, comma, word, end
    text: str
    pos: int
    value: Any = None


def _tokenize(text: str) -> Iterator[_Token]:
    """Tokens in reading order, made as the parser asks for them: the first problem
    reported is the first one in the text, whether it is a bad character or bad syntax."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "()," :
            yield _Token({"(": "lparen", ")": "rparen", ",": "comma"}[c], c, i)
            i += 1
            continue
        if c in "=!<>":
            two = text[i : i + 2]
            if two in _OPS:
                yield _Token("op", two, i)
                i += 2
            elif c in _OPS:
                yield _Token("op", c, i)
                i += 1
            else:
                raise FilterSyntaxError(f"unexpected {c!r}; comparisons are = != < <= > >= contains", i)
            continue
        if c in "'\"":
            value, end = _read_string(text, i)
            yield _Token("string", text[i:end], i, value)
            i = end
            continue
        if c.isdigit() or (c in "+-." and i + 1 < n and (text[i + 1].isdigit() or text[i + 1] == ".")):
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "._+-") and not (text[j] in "+-" and text[j - 1] not in "eE"):
                j += 1
            word = text[i:j]
            try:
                number = float(word)
            except ValueError:
                raise FilterSyntaxError(f"{word!r} is not a number", i) from None
            if not math.isfinite(number):
                raise FilterSyntaxError(f"{word!r} is not a finite number", i)
            yield _Token("number", word, i, number)
            i = j
            continue
        if c.isalpha() or c == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "_.-/:"):
                j += 1
            word = text[i:j]
            head, dot, key = word.partition(".")
            if dot and head.lower() in ("params", "metrics", "tags"):
                if not key and j < n and text[j] in "'\"`":
                    key, j = _read_string(text, j, quotes="'\"`")
                if not key:
                    raise FilterSyntaxError(f"{head}. needs a key, e.g. {head}.accuracy", i)
                yield _Token("field", text[i:j], i, (head.lower(), key))
            elif word.lower() in _KEYWORDS:
                yield _Token("keyword", word, i, word.lower())
            elif word.lower() in _PLAIN_FIELDS:
                yield _Token("field", word, i, (word.lower(), None))
            else:
                yield _Token("word", word, i)
            i = j
            continue
        raise FilterSyntaxError(f"unexpected {c!r}", i)
    yield _Token("end", "", n)


def _read_string(text: str, start: int, *, quotes: str = "'\"") -> tuple[str, int]:
    """The text of the quoted string at ``start`` and the offset after its closing quote."""
    q = text[start]
    if q not in quotes:
        raise FilterSyntaxError("expected a quote", start)
    out = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == q:
            if text[i + 1 : i + 2] == q:  # a doubled quote, as in SQL
                out.append(q)
                i += 2
                continue
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise FilterSyntaxError("unterminated string (a quote is missing)", start)


@dataclass(frozen=True)
class Comparison:
    """One comparison of a runs filter (``metrics.acc > 0.9``), as `parse_filter` returns it."""

    field: str  # params, metrics, tags, name, experiment, status, started_at, used
    key: str | None
    op: str  # SQL operator, or "contains", "in", "not in"
    values: tuple[Any, ...]  # floats for numbers, str for text
    pos: int


@dataclass(frozen=True)
class BoolOp:
    """``and``, ``or`` or ``not`` over parsed comparisons."""

    op: str  # and, or, not
    args: tuple[Any, ...]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self._tokens = _tokenize(text)
        self.tok = next(self._tokens)  # one token of lookahead
        self.prev = self.tok

    def take(self) -> _Token:
        t = self.tok
        self.prev = t
        if t.kind != "end":
            self.tok = next(self._tokens)
        return t

    def is_kw(self, word: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.value == word

    def parse(self) -> Any:
        if self.tok.kind == "end":
            raise FilterSyntaxError("empty filter", 0)
        expr = self.parse_or()
        if self.tok.kind != "end":
            raise FilterSyntaxError(f"unexpected {self.tok.text!r}; join conditions with and / or", self.tok.pos)
        return expr

    def parse_or(self) -> Any:
        args = [self.parse_and()]
        while self.is_kw("or"):
            self.take()
            args.append(self.parse_and())
        return args[0] if len(args) == 1 else BoolOp("or", tuple(args))

    def parse_and(self) -> Any:
        args = [self.parse_not()]
        while self.is_kw("and"):
            self.take()
            args.append(self.parse_not())
        return args[0] if len(args) == 1 else BoolOp("and", tuple(args))

    def parse_not(self) -> Any:
        if self.is_kw("not"):
            self.take()
            return BoolOp("not", (self.parse_not(),))
        if self.tok.kind == "lparen":
            self.take()
            inner = self.parse_or()
            if self.tok.kind != "rparen":
                raise FilterSyntaxError(f"expected ')' but found {self.tok.text or 'the end'!r}", self.tok.pos)
            self.take()
            return inner
        return self.parse_comparison()

    def parse_comparison(self) -> Comparison:
        t = self.tok
        if t.kind != "field":
            found = "the end of the filter" if t.kind == "end" else repr(t.text)
            raise FilterSyntaxError(f"expected a field ({_FIELD_HELP}) but found {found}", t.pos)
        self.take()
        fld, key = t.value
        op_tok = self.tok
        if op_tok.kind == "op":
            self.take()
            op = _OPS[op_tok.text]
            values: tuple[Any, ...] = (self.parse_value(),)
        elif op_tok.kind == "keyword" and op_tok.value == "contains":
            self.take()
            op = "contains"
            values = (self.parse_value(),)
            if not isinstance(values[0], str):
                raise FilterSyntaxError("contains needs a quoted string", self.prev.pos)
        elif op_tok.kind == "keyword" and op_tok.value in ("in", "not"):
            self.take()
            op = "in"
            if op_tok.value == "not":
                if not self.is_kw("in"):
                    raise FilterSyntaxError("expected 'in' after 'not'", self.tok.pos)
                self.take()
                op = "not in"
            if self.tok.kind != "lparen":
                raise FilterSyntaxError("expected '(' to start the list", self.tok.pos)
            self.take()
            items = [self.parse_value()]
            while self.tok.kind == "comma":
                self.take()
                items.append(self.parse_value())
            if self.tok.kind != "rparen":
                raise FilterSyntaxError("expected ',' or ')' in the list", self.tok.pos)
            self.take()
            values = tuple(items)
        else:
            found = "the end of the filter" if op_tok.kind == "end" else repr(op_tok.text)
            raise FilterSyntaxError(f"expected a comparison (= != < <= > >= contains in) after {t.text} "
                                    f"but found {found}", op_tok.pos)
        cmp = Comparison(fld, key, op, values, t.pos)
        _check_comparison(cmp, op_tok.pos)
        return cmp

    def parse_value(self) -> Any:
        t = self.tok
        if t.kind in ("number", "string"):
            self.take()
            return t.value
        if t.kind in ("word", "field", "keyword"):
            raise FilterSyntaxError(f"expected a number or a quoted string but found {t.text!r} "
                                    f"(put text in quotes: '{t.text}')", t.pos)
        found = "the end of the filter" if t.kind == "end" else repr(t.text)
        raise FilterSyntaxError(f"expected a number or a quoted string but found {found}", t.pos)


def _check_comparison(c: Comparison, pos: int) -> None:
    if c.field == "metrics" and any(isinstance(v, str) for v in c.values):
        raise FilterSyntaxError(f"metrics are numbers; compare metrics.{c.key} with a number", pos)
    if c.field == "metrics" and c.op == "contains":
        raise FilterSyntaxError("contains works on text, not on metrics", pos)
    if c.field == "status":
        for v in c.values:
            if v not in RUN_STATUSES:
                raise FilterSyntaxError(f"unknown status {v!r}; expected one of {', '.join(RUN_STATUSES)}", pos)
    if c.field == "used" and c.op not in ("=", "<>", "in", "not in", "contains"):
        raise FilterSyntaxError("used takes = != in (a dataset reference) or contains (text in a dataset's name)", pos)
    if c.field == "started_at" and c.op != "contains":
        for v in c.values:
            text = v if isinstance(v, str) else f"{v:g}"
            if not _is_iso_time(text):
                raise FilterSyntaxError(f"started_at compares with an ISO date or time in quotes, e.g. '2026-05-01' "
                                        f"or '2026-05-01T14:30' (UTC), not {text!r}", pos)
    if c.field == "used" and any(not isinstance(v, str) for v in c.values):
        raise FilterSyntaxError("used needs a quoted reference, e.g. used = 'train'", pos)


#: what started_at compares with: a leading part of an ISO-8601 UTC time as runs record
#: it (``2026-05-01T14:30:00.123456Z``), so a date compares by the day (search.py)
_ISO_PREFIX = re.compile(r"\d{4}(-\d{2}(-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d{1,6})?)?)?Z?)?)?)?")
#: the strptime format of each length of such a prefix (longer: with a fraction)
_ISO_FORMATS = {4: "%Y", 7: "%Y-%m", 10: "%Y-%m-%d", 13: "%Y-%m-%dT%H", 16: "%Y-%m-%dT%H:%M", 19: "%Y-%m-%dT%H:%M:%S"}


def _is_iso_time(text: str) -> bool:
    """Whether ``text`` is a date or time `started_at` can be compared with. It is
    compared with the stored text, so anything else ('yesterday') would silently
    match nothing or everything."""
    if not _ISO_PREFIX.fullmatch(text):
        return False
    digits = text.rstrip("Z").replace(" ", "T")
    try:  # a real calendar date and clock time (not month 13 or hour 25)
        datetime.strptime(digits, _ISO_FORMATS.get(len(digits), "%Y-%m-%dT%H:%M:%S.%f"))
    except ValueError:
        return False
    return True


def parse_filter(text: str) -> Any:
    """Parse a ``runs --where`` expression into a small tree.

    Parameters
    ----------
    text : str
        The filter, e.g. ``params.C > 0.5 and status = 'finished'``.

    Returns
    -------
    Comparison or BoolOp
        The tree `runs` compiles to SQL.

    Raises
    ------
    FilterSyntaxError
        Naming the 0-based position of the problem.

    Examples
    --------
    >>> from lineage import query
    >>> query.parse_filter("params.C > 0.5 and status = 'finished'")  # doctest: +NORMALIZE_WHITESPACE
    BoolOp(op='and', args=(Comparison(field='params', key='C', op='>', values=(0.5,), pos=0),
                           Comparison(field='status', key=None, op='=', values=('finished',), pos=19)))
    >>> query.parse_filter("params.C >")
    Traceback (most recent call last):
    ...
    lineage.errors.FilterSyntaxError: invalid filter at position 10: expected a number or a quoted string but found the end of the filter
    """
    if not isinstance(text, str):
        raise FilterSyntaxError(f"a filter is text, got {type(text).__name__}")
    return _Parser(text).parse()
