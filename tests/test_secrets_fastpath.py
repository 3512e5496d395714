"""`mask_text`'s pre-screen (issue 16): text in which no rule can match is returned
without running the rule chain. Whatever the text, the answer must be exactly the
rule chain's (`_mask_text`, kept as the reference)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_secrets import _TEMPLATES, FORMS, LOOKALIKES

from lineage import secrets
from lineage.secrets import NOT_SECRET_ENV, _mask_text, _may_hold_secret, mask_text

# Pieces of every rule's triggers and near misses: URL parts, separators, header and
# scheme words (with the characters Unicode case folding matches to ASCII letters:
# KELVIN SIGN for k, LONG S for s, DOTLESS I for i), token prefixes, option dashes.
_FRAGMENTS = [
    "s3://", "https://", "://", ":/", "//", "/", ":", "=", "@", "?", "#", "&", ";", ",", "-", "--", " -", "\t-", '"-',
    "'", '"', "`", "(", "[", "{", " ", "\n", "\t", "\u00a0", "\u2003", "bench/raw/1/2.csv", "user", "pw0rd1",
    "host", "db", "5432", "password", "passwd", "api_key", "token", "key", "auth", "sig", "code", "session", "x",
    "Authorization", "authorization", "AUTHORIZATION", "Proxy-Authorization", "Cookie", "cookie", "Set-Cookie",
    "coo\u212aie", "author\u0131zation", "Bearer", "bearer", "Basic", "Token", "Digest", "Negotiate",
    "slack", "hooks.slack.com/services/", "PRIVATE KEY", "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----",
    "AKIA", "ASIA", "AIza", "ghp_", "gho_", "github_pat_", "glpat-", "xoxb-", "sk_live_", "rk_test_", "whsec_",
    "sk-", "sk-proj-", "hf_", "npm_", "pypi-AgE", "SG.", "eyJ", "curl", "wget", "mysql", "-u", "-p", "--user",
    "Ab3dE6gH9jK2mN5pQ8sT", "wJalrXUtnFEMI/K7MDENG", "/bPxRfiCYEXAMPLEKEY", "0123456789abcdef", "ABCDEFGHIJ",
    "abcdefghijklmnopqrst", "+/", "***", "\u00e9", "\ud800", "1.5", "e-3",
]

_BUILT = st.lists(st.sampled_from(_FRAGMENTS), max_size=12).map("".join)
# fewer, denser pieces: short texts that reach each rule's corner more often
_CORE = ["s3://", "://", ":", "=", "@", "?", "#", "-", " ", "'", "(", "x", "db", "pw0rd1", "password", "token",
         "sig", "Cookie", "coo\u212aie", "Basic", "slack", "hooks.slack.com/services/", "glpat-", "curl", "-u",
         "mysql", "-p", "abcdefghijklmnopqrstABCDEFGHIJ0123456789"]
_DENSE = st.lists(st.sampled_from(_CORE), min_size=1, max_size=7).map("".join)
_RANDOM = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2200), max_size=80)
_PRINTABLE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120)


def _same_as_the_chain(text: str) -> None:
    reference = _mask_text(text)
    assert mask_text(text) == reference, text
    if not _may_hold_secret(text):
        assert reference == text, text  # the pre-screen's promise


@settings(max_examples=1500, deadline=None)
@given(_BUILT)
def test_text_built_from_secret_fragments_masks_as_the_rule_chain(text: str) -> None:
    _same_as_the_chain(text)


@settings(max_examples=3000, deadline=None)
@given(_DENSE)
def test_short_dense_text_masks_as_the_rule_chain(text: str) -> None:
    _same_as_the_chain(text)


# One text per trigger of the pre-screen that only that trigger lets through, each
# one the rule chain changes: taking any trigger away fails here.
WITNESSES = [
    "s3://TOKEN@bucket/x", "https://h/x?sig=abc", "https://hooks.slack.com/services/T0/B0/XXXXXXXXXX",
    "password: hunter2pw", "Cookie://abc", "COO\u212aIE://abc", "--password hunter2pw", "x -password hunter2pw",
    "Bearer abc.def.ghi", "bearer abc.def.ghi", "Basic dXNlcjpwYXNzd29yZA", "Token abc.def.ghi", "Digest abc.def.ghi",
    "-----BEGIN PRIVATE KEY-----\nabc", "AKIAIOSFODNN7EXAMPLE", "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
    "ghp_Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6", "github_pat_11ABCDEFG0123456789_abcdef", "glpat-abcdefghij0123456789",
    "xoxb-123456789012", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "whsec_abcdefghij0123456789", "sk-abcdefghijklmnopqrstuvwxyz",
    "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "npm_abcdefghijklmnopqrstuvwxyz0123456789", "pypi-AgE" + "a" * 40,
    "SG.abcdefghijklmnopqr.abcdefghijklmnopqr", "eyJabcdefghij.eyJabcdefghij.abcdefghij",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
]


@pytest.mark.parametrize("text", WITNESSES)
def test_each_trigger_lets_its_secret_through(text: str) -> None:
    assert _mask_text(text) != text, text
    _same_as_the_chain(text)


@settings(max_examples=800, deadline=None)
@given(st.one_of(_RANDOM, _PRINTABLE))
def test_random_text_masks_as_the_rule_chain(text: str) -> None:
    _same_as_the_chain(text)


@settings(max_examples=400, deadline=None)
@given(template=st.sampled_from(_TEMPLATES), secret=st.text(alphabet="abcXYZ0189/+-_.", min_size=1, max_size=45),
       prefix=st.sampled_from(["", "run: ", "x ", "\n", "s3://b/", "("]))
def test_templated_secrets_mask_as_the_rule_chain(template: str, secret: str, prefix: str) -> None:
    _same_as_the_chain(prefix + template.format(s=secret))


def _texts_of_the_corpora() -> list[str]:
    out = []
    for where, value, *_ in [*FORMS, *LOOKALIKES]:
        if where == "text":
            out.append(value)
        elif where == "argv":
            out.extend(value)
            out.append(" ".join(value))
        elif isinstance(value[1], str):
            out.extend([value[1], f"{value[0]}={value[1]}", f"{value[0]}: {value[1]}"])
    return out


@pytest.mark.parametrize("text", _texts_of_the_corpora())
def test_every_corpus_text_masks_as_the_rule_chain(text: str) -> None:
    _same_as_the_chain(text)


def test_a_plain_name_or_uri_skips_the_rule_chain() -> None:
    for text in ("g12_raw_3", "s3://bench/raw/12/3.csv", "gs://b/clean/part-0001.parquet", "prep_0", "train"):
        assert not _may_hold_secret(text)
        assert mask_text(text) is text


def test_the_escape_hatch_does_not_change_what_the_pre_screen_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "s3://bench/raw/1/2.csv"
    monkeypatch.setenv(NOT_SECRET_ENV, "password,token")
    assert mask_text(text) == _mask_text(text) == text
    monkeypatch.setenv(NOT_SECRET_ENV, "token")
    assert mask_text("token=abc123def") == _mask_text("token=abc123def") == "token=abc123def"
    assert os.environ[NOT_SECRET_ENV] == "token" and secrets.MASK == "***"


# Names: snake_case pieces (the fast path's), with the characters that leave it
# (capitals, other separators, digits alone, non-ASCII letters, a KELVIN SIGN).
_NAME_PIECES = ["p", "lr", "max", "api", "key", "_", "__", "0", "12", "Key", "API", "-", ".", " ", "é", "\u212a", "x"]


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.lists(st.sampled_from(_NAME_PIECES), max_size=8).map("".join), _PRINTABLE, _RANDOM))
def test_name_words_fast_path_is_the_rules(name: str) -> None:
    """`_words`' snake_case shortcut splits every name exactly as the regular
    expressions do (`_words_of_any`), so a name is classified the same either way."""
    assert secrets._words(name) == secrets._words_of_any(name)
