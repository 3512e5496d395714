"""`valid_digest` answers a normal-form SHA-256 without parsing it (issue 16); every
digest, normal or not, gets the answer the parser gives."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage.errors import InvalidInputError
from lineage.tracking import valid_digest

_HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128, "blake2b": 128,
                "blake2s": 64}


def _parsed(digest: str) -> str | None:
    """The parser's answer (valid_digest before the shortcut); None for a refusal."""
    text = str(digest).strip()
    algo, sep, value = text.partition(":")
    algo = algo.lower()
    if not sep:
        algo, value = "sha256", text
    if algo in _HEX_LENGTHS:
        v = value.lower()
        if len(v) == _HEX_LENGTHS[algo] and set(v) <= set("0123456789abcdef"):
            return f"{algo}:{v}"
        return None
    if algo in ("crc32c", "crc64nvme", "etag", "xxh64", "xxh128") and value and len(value) <= 200 \
            and all(c.isalnum() or c in "+/=_-" for c in value):
        return f"{algo}:{value}"
    return None


_hex = st.text(alphabet="0123456789abcdefABCDEFg ", min_size=60, max_size=66)
_digests = st.one_of(
    st.builds(lambda h: "sha256:" + h, _hex),
    st.builds(lambda a, h: a + h, st.sampled_from(["sha256:", "SHA256:", " sha256:", "sha256", "md5:", "etag:", ""]), _hex),
    st.builds(lambda s, tail: "sha256:" + hashlib.sha256(s).hexdigest() + tail, st.binary(max_size=8),
              st.sampled_from(["", " ", "\n", "0", "\u00e9"])),
    st.text(max_size=80),
)


@settings(max_examples=600, deadline=None)
@given(_digests)
def test_every_digest_gets_the_parsers_answer(digest: str) -> None:
    expected = _parsed(digest)
    if expected is None:
        with pytest.raises(InvalidInputError):
            valid_digest(digest)
    else:
        assert valid_digest(digest) == expected


def test_a_normal_sha256_comes_back_as_given() -> None:
    d = "sha256:" + hashlib.sha256(b"x").hexdigest()
    assert valid_digest(d) == d
    assert valid_digest(d.upper().replace("SHA256", "sha256")) == d
    assert valid_digest(" " + d) == d
    with pytest.raises(InvalidInputError):
        valid_digest(d[:-1] + "\u0660")  # an Arabic-Indic digit is a digit, not a hex digit
