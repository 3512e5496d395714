"""`canonical_json` with its C encoder built once (issue 16) writes exactly what
``json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` wrote
through `encode` before, lone surrogates cleaned as ever, and raises what it raised."""

from __future__ import annotations

import json
import math
import threading
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage.model import Node, _cleaned, _flat_copy, _json_default, canonical_json, json_document, json_line

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _reference(value: Any) -> str:
    """canonical_json as it was: a fresh encoder pass per call."""
    text = _ENCODER.encode(value)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            text = _ENCODER.encode(_cleaned(value))
    return text


_text = st.one_of(st.text(max_size=10), st.text(st.characters(blacklist_categories=()), max_size=6),
                  st.sampled_from(["\ud800", "a\udcffb", "é\n\"\\", "\x00", "💡", "***", "\u2028"]))
_scalar = st.one_of(_text, st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
                    st.sampled_from([0.1, -0.0, 1e300, 5e-324, math.nan, -math.inf, 2**70]))
_json_values = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(_text, inner, max_size=5),
                            st.dictionaries(st.one_of(st.integers(), st.booleans(), st.none(), st.floats()), inner,
                                            max_size=3)),
    max_leaves=20,
)


def _same(value: Any) -> None:
    try:
        expected = _reference(value)
    except (TypeError, ValueError) as exc:  # (keys of mixed types cannot be sorted)
        with pytest.raises(type(exc)):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@settings(max_examples=600, deadline=None)
@given(_json_values)
def test_any_json_value_encodes_as_the_encoder_did(value: Any) -> None:
    _same(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_text, st.one_of(_text, st.booleans(), st.integers(), st.lists(_text, max_size=3)), max_size=8))
def test_node_attrs_encode_as_the_encoder_did(attrs: dict[str, Any]) -> None:
    _same(attrs)
    _same({"outer": attrs, "n": len(attrs)})


def test_values_json_does_not_know_go_through_the_same_default() -> None:
    value = {"a": np.float64(0.5), "b": np.arange(3), "c": {3, 1}, "d": PurePosixPath("x/y"), "e": object.__name__,
             "f": np.int64(7), "g": [np.bool_(True)]}
    _same(value)
    assert canonical_json(value) == '{"a":0.5,"b":[0,1,2],"c":[1,3],"d":"x/y","e":"object","f":7,"g":[true]}'


def test_a_value_that_holds_itself_is_refused_as_before() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        canonical_json({"x": loop})


def test_one_encoder_serves_many_threads() -> None:
    values = [{"i": i, "name": f"n{i}", "xs": [float(i), str(i)], "nested": {"b": i, "a": [i] * 3}} for i in range(300)]
    expected = [_reference(v) for v in values]
    out: dict[int, list[str]] = {}

    def work(k: int) -> None:
        out[k] = [canonical_json(v) for _ in range(20) for v in values][-len(values):]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(got == expected for got in out.values())


# ---------------------------------------------------------------------------
# json_document: what --json and report files print

_DOC_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20)


def _expected(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _expected(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expected(v) for v in value]
    return value


@given(_DOC_VALUES)
@settings(max_examples=300, deadline=None)
def test_a_json_document_is_json_any_parser_reads(value: Any) -> None:
    """No bare NaN/Infinity tokens (jq and browsers refuse them): a non-finite float is
    protobuf's string for it, and everything else reads back exactly as it was."""
    text = json_document(value)
    parsed = json.loads(text, parse_constant=lambda token: pytest.fail(f"not JSON: {token}"))
    assert parsed == _expected(value)
    assert json_document(np.float64("inf")) == '"Infinity"' and json_document([np.float32(0.5)]) == "[\n  0.5\n]"



@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.one_of(_text, st.integers()), _json_values, max_size=6))
def test_a_nodes_json_attrs_are_the_round_trip_whatever_the_fast_path(attrs: dict[Any, Any]) -> None:
    """`Node.to_dict` copies flat attrs (`_flat_copy`) instead of the JSON round trip:
    the same value either way, and a copy the node does not share."""
    try:
        expected = json.loads(canonical_json(attrs))
    except (TypeError, ValueError):
        return  # (keys of mixed types cannot be sorted: to_dict raises as before)
    doc = Node("dataset:ab", "dataset", "x", attrs).to_dict()["attrs"]
    assert json_document(doc) == json_document(expected)
    flat = _flat_copy(attrs)
    assert flat is None or (flat == attrs and flat is not attrs)


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_json_line_is_json_document_on_one_line(value: Any) -> None:
    try:
        expected = json.loads(json_document(value))
    except (TypeError, ValueError):
        return
    line = json_line(value)
    assert "\n" not in line and json.loads(line) == expected
