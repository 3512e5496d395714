"""The data model: kinds and relations, ids, references, generated ids, canonical JSON,
the Node and Edge shapes, secret names; and the error tree's messages and exit codes."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lineage import errors
from lineage.model import (
    KINDS,
    PROV_NAMES,
    PROVENANCE_RELATIONS,
    RELATIONS,
    Edge,
    Node,
    Ref,
    canonical_json,
    env,
    is_hex,
    make_id,
    new_uuid7_hex,
    parse_ref,
    short_id,
    split_id,
    uuid7_time,
)


def test_kinds_and_relations_follow_design() -> None:
    assert set(KINDS) == {"dataset", "code", "model", "prediction", "artifact", "environment", "run", "agent"}
    assert KINDS["run"] == "activity" and KINDS["agent"] == "agent" and KINDS["dataset"] == "entity"
    assert set(RELATIONS) == set(PROV_NAMES)
    # version history is not provenance
    assert "was_revision_of" not in PROVENANCE_RELATIONS and len(PROVENANCE_RELATIONS) == len(RELATIONS) - 1
    sources, targets = RELATIONS["used"]
    assert sources == {"run"} and "dataset" in targets and "run" not in targets
    assert PROV_NAMES["was_generated_by"] == "wasGeneratedBy"


def test_ids() -> None:
    h = "AB" * 32
    node_id = make_id("dataset", h)
    assert node_id == "dataset:" + "ab" * 32
    assert split_id(node_id) == ("dataset", "ab" * 32)
    assert short_id(node_id) == "dataset:abababab"
    # a zero time field (a DVC stage's run): the shown id still tells runs apart
    assert short_id("run:" + "0" * 12 + "7" + "1f" * 9 + "ab", 12) == "run:" + "0" * 12 + "71f1f1f1"
    for bad in ("dataset", "thing:abc", "dataset:xyz", "dataset:"):
        with pytest.raises(ValueError):
            split_id(bad)
    with pytest.raises(ValueError):
        make_id("thing", "ab")
    with pytest.raises(ValueError):
        make_id("dataset", "not hex")
    assert is_hex("09afAF") and not is_hex("") and not is_hex("0x1")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("dataset:3f2a", Ref("dataset:3f2a", kind="dataset", prefix="3f2a", name="3f2a")),
        ("3F2A9C", Ref("3F2A9C", prefix="3f2a9c", name="3F2A9C")),
        ("random_forest", Ref("random_forest", name="random_forest")),
        ("model:random_forest", Ref("model:random_forest", kind="model", name="random_forest")),
        ("train@2", Ref("train@2", name="train", version=2)),
        ("dataset:train@1", Ref("dataset:train@1", kind="dataset", name="train", version=1)),
        ("request:abc-123", Ref("request:abc-123", request="abc-123")),
        ("data/train.csv", Ref("data/train.csv", name="data/train.csv")),
        ("s3://bucket/x", Ref("s3://bucket/x", name="s3://bucket/x")),  # not a kind: a name
        ("  train  ", Ref("train", name="train")),
    ],
)
def test_parse_ref_every_documented_form(text: str, expected: Ref) -> None:
    assert parse_ref(text) == expected


def test_parse_ref_refuses_empty() -> None:
    with pytest.raises(ValueError):
        parse_ref("   ")


def test_uuid7_ids_sort_by_creation_and_carry_their_time() -> None:
    ids = [new_uuid7_hex() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(len(i) == 32 and i[12] == "7" and i[16] in "89ab" for i in ids)
    when = uuid7_time(ids[0])
    assert abs(datetime.now(timezone.utc) - when) < timedelta(minutes=1)


def test_canonical_json_is_stable_and_readable() -> None:
    assert canonical_json({"b": 1, "a": [1.5, None, True]}) == '{"a":[1.5,null,true],"b":1}'
    assert canonical_json("é✓") == '"é✓"'  # UTF-8 kept, not \\u escapes
    assert canonical_json({"x": np.int64(3), "y": np.float32(0.5), "z": np.arange(2)}) == '{"x":3,"y":0.5,"z":[0,1]}'
    assert canonical_json({"s": {3, 1, 2}, "p": Path("a/b")}) == '{"p":"a/b","s":[1,2,3]}'


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                    max_leaves=10))
def test_canonical_json_round_trips_and_equals_json_dumps(value) -> None:
    text = canonical_json(value)
    assert text == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(json.loads(text)) == text


def test_node_and_edge_shapes() -> None:
    node = Node("dataset:" + "ab" * 32, "dataset", "train", {"rows": np.int64(3)}, "2026-01-01T00:00:00.000000Z")
    d = node.to_dict()
    assert list(d) == ["id", "kind", "name", "created_at", "attrs"]
    assert d["attrs"] == {"rows": 3} and json.dumps(d)
    assert node.label == "train" and Node("run:" + "1" * 32, "run").label == "run:11111111"
    assert Edge("a", "b", "used", "training").to_dict() == {"src": "a", "dst": "b", "rel": "used", "role": "training"}


# ---------------------------------------------------------------------------
# the error tree


def test_every_error_is_a_lineage_error_with_an_exit_code() -> None:
    for name in ("NoStoreError", "SchemaVersionError", "StoreCorruptError", "NodeNotFoundError", "AmbiguousIdError",
                 "InvalidInputError", "FilterSyntaxError", "WriteRefusedError", "IntegrityError", "RenderError"):
        cls = getattr(errors, name)
        assert issubclass(cls, errors.LineageError), name
        assert cls.__doc__, name
    assert errors.LineageError.exit_code == 1
    assert errors.FilterSyntaxError.exit_code == 2  # bad usage
    assert issubclass(errors.NodeNotFoundError, errors.ReferenceLookupError)
    assert issubclass(errors.AmbiguousIdError, errors.ReferenceLookupError)


def test_error_messages_are_one_line_and_name_the_fix() -> None:
    assert str(errors.NodeNotFoundError("x")) == "no node matches 'x' (see `lineage ls`)"
    many = errors.AmbiguousIdError("ab", [f"dataset:ab{i}" for i in range(10)])
    text = str(many)
    assert "\n" not in text and "dataset:ab0" in text and "and 2 more" in text and "kind:name" in text
    assert many.candidates[-1] == "dataset:ab9"
    assert "and 72 more;" in str(errors.AmbiguousIdError("ab", [f"dataset:ab{i}" for i in range(9)], total=80))
    assert "and at least 19,992 more" in str(errors.AmbiguousIdError("ab", ["a:1"] * 9, total=20_000))
    assert str(errors.FilterSyntaxError("unexpected ')'", 7)) == "invalid filter at position 7: unexpected ')'"
    report = object()
    assert errors.IntegrityError("bad", report).report is report


@pytest.mark.parametrize("uri, path", [
    ("file:///data/my%20file.csv", "/data/my file.csv"),  # escapes decoded
    ("file:./runs/model", "runs/model"),
    ("/data/train.csv", "/data/train.csv"),
    ("data/50%.csv", "data/50%.csv"),  # a plain path is taken as written
    ("C:/data/train.csv", "C:/data/train.csv"),  # a drive letter is no scheme
    ("s3://bucket/train.csv", None),
    ("runs:/0123/model", None),
    ("models:/churn/2", None),
])
def test_local_path_of_a_uri(uri: str, path: str | None) -> None:
    from lineage.model import local_path

    got = local_path(uri)
    assert (str(got) if got is not None else None) == (str(Path(path)) if path is not None else None)


# Names and values the environment can hold: no NUL, no "=" in a name.
_ENV_NAMES = st.text(st.characters(blacklist_characters="\x00=", blacklist_categories=("Cs",)), min_size=1, max_size=12)
_ENV_VALUES = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20)


@given(name=_ENV_NAMES, value=_ENV_VALUES, default=st.sampled_from(["", "x"]))
def test_env_reads_what_os_environ_holds_at_that_moment(name: str, value: str, default: str) -> None:
    """`model.env` (the settings read on every write, without os.environ's exception
    for an unset name) answers as ``os.environ.get`` does: unset, set, changed, unset
    again, with no answer remembered from before."""
    name = "LINEAGE_TEST_ENV_" + name
    before = os.environ.pop(name, None)
    try:
        assert env(name, default) == default
        os.environ[name] = value
        assert env(name, default) == os.environ.get(name, default) == value
        os.environ[name] = value + "!"
        assert env(name, default) == value + "!"
        del os.environ[name]
        assert env(name, default) == default
    finally:
        if before is not None:
            os.environ[name] = before
