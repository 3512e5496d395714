"""Tests of lineage.secrets, the one secret detector, and of every path that stores
text going through it: a table of secret forms that must be masked, a table of
look-alikes that must not be, properties (idempotent, never leaks), the escape hatch,
and end-to-end checks on a real store (run argv, params, tags, errors, environment,
git remote, dataset URIs, annotations)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import lineage
from lineage import capture
from lineage.cli import cli
from lineage.secrets import (
    MASK,
    NOT_SECRET_ENV,
    SecretWarning,
    find_secrets,
    is_secret_name,
    mask_argv,
    mask_mapping,
    mask_text,
    mask_url,
    mask_value,
)

# Realistic-looking fake credentials (none is live).
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GH = "ghp_" + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"

# ---------------------------------------------------------------------------
# the table of forms: (where, input, the secret that must go, what must stay)
#   where: "text" -> mask_text(input); "argv" -> mask_argv(input);
#          "param" -> mask_mapping({name: value}) with input = (name, value)

FORMS: list[tuple[str, Any, str, str]] = [
    # command lines
    ("argv", ["curl", "-H", "Authorization: Bearer tok_8f7a6b5c4d3e", "https://api"], "tok_8f7a6b5c4d3e", "Authorization: Bearer"),
    ("argv", ["curl", "--header", "X-Api-Key: 9f8e7d6c5b4a3928", "https://api"], "9f8e7d6c5b4a3928", "X-Api-Key:"),
    ("argv", ["curl", "-H", "Cookie: session=abc123def456; theme=dark", "u"], "abc123def456", "Cookie:"),
    ("argv", ["curl", "-u", "bob:hunter2pw", "https://x"], "hunter2pw", "bob:"),
    ("argv", ["curl", "--user", "bob:hunter2pw", "https://x"], "hunter2pw", "bob:"),
    ("argv", ["wget", "--password=hunter2pw", "https://x"], "hunter2pw", "--password="),
    ("argv", ["t.py", "--auth", "s3cr3tValue"], "s3cr3tValue", "--auth"),
    ("argv", ["t.py", "--auth=s3cr3tValue"], "s3cr3tValue", "--auth="),
    ("argv", ["t.py", "--pwd", "s3cr3tValue"], "s3cr3tValue", "--pwd"),
    ("argv", ["t.py", "--pw", "s3cr3tValue"], "s3cr3tValue", "--pw"),
    ("argv", ["mysql", "-uroot", "-pS3cretPw", "db"], "S3cretPw", "-p"),
    ("argv", ["/usr/bin/mysqldump", "-u", "root", "-pS3cretPw", "db"], "S3cretPw", "-p"),
    ("argv", ["t.py", "--passphrase", "correct horse battery"], "correct horse battery", "--passphrase"),
    ("argv", ["t.py", "--api-key", "k-123456"], "k-123456", "--api-key"),
    ("argv", ["t.py", "--api-key=k-123456"], "k-123456", "--api-key="),
    ("argv", ["t.py", "--token", "abc123xyz"], "abc123xyz", "--token"),
    ("argv", ["t.py", "--db-password", "hunter2pw"], "hunter2pw", "--db-password"),
    ("argv", ["t.py", "--client-secret=hunter2pw"], "hunter2pw", "--client-secret="),
    ("argv", ["sh", "-c", "curl -u user:pa55word https://x/y"], "pa55word", "curl -u user:"),
    ("argv", ["bash", "-c", "mysql -h db -pS3cretPw -e 'select 1'"], "S3cretPw", "mysql -h db -p"),
    ("argv", ["sh", "-c", "python t.py --password hunter2pw && echo done"], "hunter2pw", "--password"),
    ("argv", ["sh", "-c", 'curl -H "Authorization: Bearer tok_8f7a6b5c4d3e" https://x'], "tok_8f7a6b5c4d3e", "Bearer"),
    ("argv", ["env", "AWS_SECRET_ACCESS_KEY=" + AWS_SECRET, "python", "t.py"], AWS_SECRET, "AWS_SECRET_ACCESS_KEY="),
    ("argv", ["env", "GITHUB_TOKEN=ghs_abcdef", "make"], "ghs_abcdef", "GITHUB_TOKEN="),
    ("argv", ["sshpass", "-p", "hunter2pw", "ssh", "host"], "hunter2pw", "sshpass -p"),
    ("argv", ["docker", "login", "-p", "hunter2pw", "registry"], "hunter2pw", "login"),
    ("argv", ["lineage", "run", "-p", "password=hunter2pw", "--", "t.py"], "hunter2pw", "password="),
    ("argv", ["t.py", "model.api_key=abc123"], "abc123", "model.api_key="),
    ("argv", ["git", "clone", "https://oauth2:glpat-abcdefghij0123456789@gitlab.com/o/r.git"], "glpat-abcdefghij0123456789", "gitlab.com/o/r.git"),
    ("argv", ["psql", "postgresql://app:pw0rd1@db:5432/prod"], "pw0rd1", "postgresql://db:5432/prod"),
    ("argv", ["openssl", "enc", "-pass", "pass:hunter2pw"], "hunter2pw", "-pass"),
    # headers and connection strings in text
    ("text", "Authorization: Bearer tok_8f7a6b5c4d3e", "tok_8f7a6b5c4d3e", "Authorization: Bearer"),
    ("text", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", "Authorization: Basic"),
    ("text", "Proxy-Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", "Proxy-Authorization"),
    ("text", "X-Api-Key: 9f8e7d6c5b4a3928", "9f8e7d6c5b4a3928", "X-Api-Key:"),
    ("text", "x-auth-token: 9f8e7d6c5b4a3928", "9f8e7d6c5b4a3928", "x-auth-token:"),
    ("text", "Server=db;Database=x;User Id=app;Password=hunter2pw;", "hunter2pw", "Password=***;"),
    ("text", "Driver={ODBC};Server=db;Uid=app;Pwd=hunter2pw;", "hunter2pw", "Pwd="),
    ("text", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=bXlrZXlteWtleQ==;", "bXlrZXlteWtleQ==", "AccountKey="),
    ("text", "host=db port=5432 user=app password=hunter2pw dbname=x", "hunter2pw", "password="),
    ("text", "postgresql://u:pw0rd1@h/db", "pw0rd1", "postgresql://h/db"),
    ("text", "mongodb+srv://admin:pw0rd1@cluster0.mongodb.net/test", "pw0rd1", "cluster0.mongodb.net"),
    ("text", "redis://:pw0rd1@cache:6379/0", "pw0rd1", "cache:6379"),
    ("text", "https://h/x?access_token=abc123def&page=2", "abc123def", "page=2"),
    ("text", "https://b.s3.amazonaws.com/k?X-Amz-Signature=f00ba4&X-Amz-Expires=60", "f00ba4", "X-Amz-Expires=60"),
    ("text", "https://hooks.slack.com/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXX", "XXXXXXXXXXXXXXXXXXXX", "hooks.slack.com"),
    # secrets inside messages, tags and configs
    ("text", "connect failed: password=hunter2pw for db", "hunter2pw", "connect failed: password="),
    ("text", "ValueError: bad config {'password': 'hunter2pw', 'lr': 0.1}", "hunter2pw", "'lr': 0.1"),
    ("text", '{"api_key": "abc123def456", "epochs": 3}', "abc123def456", '"epochs": 3'),
    ("text", "secret: hunter2pw", "hunter2pw", "secret:"),
    ("text", "team=risk password=hunter2pw", "hunter2pw", "team=risk"),
    # token shapes anywhere
    ("text", f"key {AWS_ID} in log", AWS_ID, "in log"),
    ("text", "ASIAIOSFODNN7EXAMPLE", "ASIAIOSFODNN7EXAMPLE", ""),
    ("text", f"aws {AWS_SECRET} end", AWS_SECRET, "end"),
    ("text", f"token {GH}", GH, "token"),
    ("text", "gho_" + "Zx9" * 12, "gho_" + "Zx9" * 12, ""),
    ("text", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv", ""),
    ("text", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp", ""),
    ("text", "xoxp-123456789012-abcdefghij", "xoxp-123456789012-abcdefghij", ""),
    ("text", f"bearer {JWT}", JWT, "bearer"),
    ("text", JWT, JWT, ""),
    ("text", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----", "MIIEpAIBAAKCAQEA7", "BEGIN RSA PRIVATE KEY"),
    ("text", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXk", "END OPENSSH"),
    ("text", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg (truncated", "MIIEvQIBADANBg", "BEGIN PRIVATE KEY"),
    ("text", "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW", "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW", ""),
    ("text", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", ""),
    ("text", "sk-proj-abcdefghijklmnopqrstuvwxyz012345", "sk-proj-abcdefghijklmnopqrstuvwxyz012345", ""),
    ("text", "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", ""),
    # params by name
    ("param", ("pwd", "hunter2pw"), "hunter2pw", ""),
    ("param", ("passphrase", "correct horse"), "correct horse", ""),
    ("param", ("auth_header", "Bearer abc"), "Bearer abc", ""),
    ("param", ("creds", "bob:pw"), "bob:pw", ""),
    ("param", ("token", "abc"), "abc", ""),
    ("param", ("secret", "abc"), "abc", ""),
    ("param", ("password", 123456), "123456", ""),
    ("param", ("api_key", "abc"), "abc", ""),
    ("param", ("sort_key", "date"), "date", ""),  # *key*: masked as a text value (escape hatch: docs)
    ("param", ("hfToken", "abcdef"), "abcdef", ""),
    ("param", ("AWS_SECRET_ACCESS_KEY", AWS_SECRET), AWS_SECRET, ""),
    ("param", ("session_id", "9f8e7d6c5b4a39281f2e3d4c"), "9f8e7d6c5b4a39281f2e3d4c", ""),  # high entropy under a suspect name
    ("param", ("db", {"host": "h", "password": "hunter2pw"}), "hunter2pw", "host"),
    ("param", ("credentials", {"user": "bob", "value": "hunter2pw"}), "hunter2pw", "credentials"),
    ("param", ("db_url", "postgresql://u:pw0rd1@h/db"), "pw0rd1", "postgresql://h/db"),
    ("param", ("note", f"uses {AWS_ID}"), AWS_ID, "uses"),
    # a command line logged as a list (`sys.argv`, Hydra overrides): as the argv it is
    ("param", ("argv", ["train.py", "--api-key", "seca3xyz"]), "seca3xyz", "--api-key"),
    ("param", ("overrides", ("--token", "seca9xyz")), "seca9xyz", "--token"),
]


def _apply(where: str, value: Any) -> str:
    if where == "text":
        return mask_text(value)
    if where == "argv":
        return " ".join(mask_argv(value))
    name, v = value
    return json.dumps(mask_mapping({name: v}))


@pytest.mark.parametrize("where, value, secret, kept", FORMS, ids=[f"{i}-{f[0]}" for i, f in enumerate(FORMS)])
def test_every_secret_form_is_masked(where: str, value: Any, secret: str, kept: str) -> None:
    out = _apply(where, value)
    assert secret not in out, out
    assert MASK in out or "://" in out  # (a URL's user and password are dropped, not masked)
    assert kept in out, out  # the key, flag or header stays: the record still says what was given


def test_the_table_covers_at_least_60_forms() -> None:
    assert len(FORMS) >= 60


# look-alikes: (where, input) that must come out unchanged
LOOKALIKES: list[tuple[str, Any]] = [
    ("argv", ["make", "--keep-going"]),
    ("argv", ["t.py", "--max-tokens", "100", "--lr", "0.1"]),
    ("argv", ["t.py", "--tokenizer", "bert-base-uncased"]),
    ("argv", ["t.py", "--num-keys", "3"]),
    ("argv", ["t.py", "--auth-retries", "2"]),
    ("argv", ["python", "-m", "train", "--epochs", "3", "data/train.csv"]),
    ("argv", ["docker", "run", "-p", "8080:80", "-u", "1000:1000", "img"]),
    ("argv", ["git", "clone", "git@github.com:org/repo.git"]),
    ("argv", ["ssh", "ssh://git@github.com/org/repo.git"]),
    ("argv", ["lineage", "run", "-p", "lr=0.1", "-p", "monkey=1", "--", "t.py"]),
    ("text", "monkey=1"),
    ("text", "max_tokens=100"),
    ("text", "KeyError: 'lr'"),
    ("text", "TokenError: unexpected end"),
    ("text", "Basic authentication failed for user bob"),
    ("text", "the token expired, log in again"),
    ("text", "commit 3f2a9c41d0e7aaaabbbbccccddddeeeeffff0000"),
    ("text", "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("text", "data/processed/train/features_2024_v2.csv"),
    ("text", "run:0192ab3c4d5e6f708192a3b4c5d6e7f8"),
    ("text", "https://github.com/org/repo.git"),
    ("text", "s3://bucket/path/data.parquet?versionId=3"),
    ("text", "keyboard_layout=us"),
    ("text", "password policy: at least 12 characters"),
    ("param", ("max_tokens", 100)),
    ("param", ("num_keys", 3)),
    ("param", ("keys_seen", 3)),
    ("param", ("monkey", 1)),
    ("param", ("tokenizer", "bert")),
    ("param", ("lr", 0.1)),
    ("param", ("pin_memory", True)),
    ("param", ("use_auth", False)),
    ("param", ("session_name", "exp1")),
    ("param", ("token_type", "bpe")),
    ("param", ("key_column", "customer_id")),
    ("param", ("password_env", "DB_PASSWORD")),  # names the variable, as docs/secrets.md advises
    ("argv", ["t.py", "--key-file", "certs/client.pem", "--password-file", "/run/secrets/db"]),
]


@pytest.mark.parametrize("where, value", LOOKALIKES, ids=[f"{i}-{f[0]}" for i, f in enumerate(LOOKALIKES)])
def test_look_alikes_are_not_masked(where: str, value: Any) -> None:
    if where == "text":
        assert mask_text(value) == value
    elif where == "argv":
        assert mask_argv(value) == value
    else:
        name, v = value
        assert mask_mapping({name: v}) == {name: v}


@pytest.mark.parametrize("name", ["api_key", "AWS_SECRET_ACCESS_KEY", "--db-password", "token", "passwd", "credentials",
                                  "pwd", "X-Api-Key", "auth_header", "creds", "passphrase", "hfToken", "sort_key"])
def test_secret_looking_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["lr", "n_estimators", "max_depth", "dataset", "C", "monkey", "keep_going", "tokenizer",
                                  "KeyError", "keyboard"])
def test_ordinary_names(name: str) -> None:
    assert not is_secret_name(name)


def test_numbers_under_weak_names_are_settings_but_not_under_strong_ones() -> None:
    assert mask_value("max_tokens", 100) == 100
    assert mask_value("max_tokens", "100") == "100"  # as `-p max_tokens=100` gives it
    assert mask_value("password", 1234) == MASK
    assert mask_value("pin_password", "1234") == MASK
    assert mask_value("token", True) is True  # a flag, not a credential


# ---------------------------------------------------------------------------
# properties

_SECRET_CHARS = st.text(alphabet="abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=12, max_size=30)
_TEMPLATES = [
    "--password {s}", "--password={s}", "password={s}", "Authorization: Bearer {s}", "X-Api-Key: {s}",
    "postgresql://app:{s}@db/prod", "Server=x;Password={s};", "curl -u bob:{s} https://h", "mysql -p{s} db",
    '{{"secret": "{s}"}}', "token={s}", "https://h/x?access_token={s}", "error: api_key={s} rejected",
    "-----BEGIN PRIVATE KEY-----\n{s}\n-----END PRIVATE KEY-----",
]


@settings(max_examples=300, deadline=None)
@given(secret=_SECRET_CHARS, template=st.sampled_from(_TEMPLATES), prefix=st.sampled_from(["", "run: ", "x ", "\n"]))
def test_a_masked_secret_never_leaks_and_masking_is_idempotent(secret: str, template: str, prefix: str) -> None:
    text = prefix + template.format(s=secret)
    once = mask_text(text)
    assert secret not in once, (text, once)
    assert mask_text(once) == once


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_masking_any_text_is_idempotent(text: str) -> None:
    once = mask_text(text)
    assert mask_text(once) == once


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20), max_size=6))
def test_masking_any_argv_is_idempotent(argv: list[str]) -> None:
    once = mask_argv(argv)
    assert mask_argv(once) == once
    assert len(once) == len(argv)  # one argument in, one out: the command stays readable


def test_find_secrets_names_the_kind() -> None:
    assert find_secrets(f"my token is {GH}") == ["GitHub token"]
    assert find_secrets("password=hunter2pw") == ["a credential"]
    assert find_secrets("Not validated for applicants under 21") == []


# ---------------------------------------------------------------------------
# the escape hatch


def test_lineage_not_secret_lets_named_values_through(monkeypatch: pytest.MonkeyPatch) -> None:
    assert mask_mapping({"sort_key": "date"}) == {"sort_key": MASK}
    monkeypatch.setenv(NOT_SECRET_ENV, "sort_key, --key-column")
    assert mask_mapping({"sort_key": "date"}) == {"sort_key": "date"}
    assert mask_argv(["t.py", "--key-column", "id", "--sort-key=date"]) == ["t.py", "--key-column", "id", "--sort-key=date"]
    # a token's shape is still caught whatever the name: the hatch is for names only
    assert mask_mapping({"sort_key": GH}) == {"sort_key": MASK}


def test_a_remembered_command_line_follows_the_escape_hatch_and_is_a_fresh_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """mask_argv remembers its answers (every run of a process records one argv):
    the answer still moves with LINEAGE_NOT_SECRET, and a caller's list is its own."""
    argv = ["t.py", "--api-key", "sk-live-abc"]
    first = mask_argv(argv)
    assert first == ["t.py", "--api-key", MASK]
    first.append("changed by the caller")
    assert mask_argv(argv) == ["t.py", "--api-key", MASK]
    monkeypatch.setenv(NOT_SECRET_ENV, "--api-key")
    assert mask_argv(argv) == argv
    monkeypatch.delenv(NOT_SECRET_ENV)
    assert mask_argv(tuple(argv)) == ["t.py", "--api-key", MASK]


def test_capture_strips_urls_with_the_detector() -> None:
    assert capture.strip_url_credentials is mask_url


# ---------------------------------------------------------------------------
# every path that stores text, on a real store


def _dump(lg: lineage.Lineage) -> str:
    return "\n".join(sqlite3.connect(lg.db_path).iterdump())


def test_run_params_tags_description_and_error_are_masked(lg: lineage.Lineage) -> None:
    with pytest.raises(RuntimeError):
        with lg.start_run("r", params={"pwd": "pw-one-1", "auth_header": "Bearer pw-two-2", "max_tokens": 100},
                          tags={"note": "password=pw-three-3"}, description=f"uses {AWS_ID}") as run:
            run.log_params({"creds": "pw-four-4", "db": {"passphrase": "pw-five-5"}})
            run.set_tag("source", "curl -u bob:pw-six-6 https://h")
            raise RuntimeError("login failed: password=pw-seven-7 with X-Api-Key: pw-eight-8abc")
    dump = _dump(lg)
    for secret in ("pw-one-1", "pw-two-2", "pw-three-3", AWS_ID, "pw-four-4", "pw-five-5", "pw-six-6", "pw-seven-7",
                   "pw-eight-8abc"):
        assert secret not in dump, secret
    node = lg.runs()[0]
    assert node.attrs["params"]["max_tokens"] == "100"  # a setting, kept
    assert node.attrs["params"]["pwd"] == MASK
    assert "password=***" in node.attrs["error"]


def test_run_end_error_text_is_masked(lg: lineage.Lineage) -> None:
    run = lg.start_run("r")
    run.end("failed", error=f"upload with {GH} failed")
    assert GH not in _dump(lg)


def test_remote_dataset_uri_and_name_are_masked(lg: lineage.Lineage) -> None:
    node = lg.log_dataset(uri="s3://AKIA:pw-nine-9@bucket/x.csv?X-Amz-Signature=f00", digest="0" * 64,
                          name="x?token=pw-ten-10")
    dump = _dump(lg)
    assert "pw-nine-9" not in dump and "f00" not in node.attrs["uri"] and "pw-ten-10" not in dump


def test_allowed_env_values_are_masked(lg: lineage.Lineage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAGE_DB_URL", "mysql://app:pw-eleven-11@db/x")
    monkeypatch.setenv("LINEAGE_NOTE", f"Authorization: Bearer {JWT}")
    with lg.start_run("r"):
        pass
    dump = _dump(lg)
    assert "pw-eleven-11" not in dump and JWT not in dump


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def git_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    capture.reset_cache()
    yield home
    capture.reset_cache()


def test_git_remote_credentials_are_masked(tmp_path: Path, git_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.name=x", "-c", "user.email=x@y", "commit", "-q", "--allow-empty", "-m", "init")
    _git(repo, "remote", "add", "origin", f"https://x-access-token:{GH}@github.com/o/r.git")
    _, attrs = capture.capture_code(str(repo))
    assert attrs["repo"] == "https://github.com/o/r.git"


def test_lineage_run_argv_is_masked_in_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / ".lineage" / "lineage.db"
    result = CliRunner().invoke(cli, ["--db", str(db), "run", "-p", "api_token=pw-twelve-12", "--",
                                      sys.executable, "-c", "pass", "--password", "pw-thirteen-13",
                                      "-H", "Authorization: Bearer pw-fourteen-14"])
    assert result.exit_code == 0, result.output
    lg = lineage.open(db)
    try:
        dump = _dump(lg)
        for secret in ("pw-twelve-12", "pw-thirteen-13", "pw-fourteen-14"):
            assert secret not in dump, secret
        command = lg.runs()[0].attrs["command"]
        assert command[-4:] == ["--password", MASK, "-H", f"Authorization: Bearer {MASK}"]
    finally:
        lg.close()


# ---------------------------------------------------------------------------
# annotations: a person's words are kept, with a warning; who recorded them is shown


def test_an_annotation_that_looks_secret_warns_and_is_kept(lg: lineage.Lineage) -> None:
    node = lg.log_dataset([[1, 2]], name="d")
    with pytest.warns(SecretWarning, match="GitHub token"):
        lg.annotate(node, "limitations", f"ask for access with {GH}")
    assert lg.annotations(node)["limitations"]["text"].endswith(GH)  # kept as typed
    with warnings.catch_warnings():
        warnings.simplefilter("error", SecretWarning)
        lg.annotate(node, "intended_use", "Credit pre-screening")  # no warning for plain words


def test_cli_annotate_prints_a_one_line_notice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / ".lineage" / "lineage.db")
    lg = lineage.open(db)
    lg.log_dataset([[1]], name="d")
    lg.close()
    result = CliRunner().invoke(cli, ["--db", db, "annotate", "d", "limitations", "db password=hunter2pw"])
    assert result.exit_code == 0, result.output
    notice = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(notice) == 1 and "looks like it contains a secret" in notice[0]


def test_annotations_show_the_typed_author_and_who_recorded_them(lg: lineage.Lineage,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAGE_NAME", "Ada Lovelace")
    monkeypatch.setenv("LINEAGE_EMAIL", "ada@example.com")
    monkeypatch.setenv("LINEAGE_USER", "ada")
    node = lg.log_dataset([[1, 2]], name="d")
    lg.annotate(node, "sign_off", "approved", author="Chief Risk Officer")
    note = lg.annotations(node)["sign_off"]
    assert note["author"] == "Chief Risk Officer"
    assert note["recorded_by"].startswith("Ada Lovelace <ada@example.com> (ada@")
    assert note["recorded_by_agent"].startswith("agent:")
    assert set(note) >= {"text", "author", "at", "event", "recorded_by"}
    # without --author, the author is the person git (or LINEAGE_NAME) names
    lg.annotate(node, "limitations", "small sample")
    assert lg.annotations(node)["limitations"]["author"] == "Ada Lovelace"


def test_agents_carry_git_user_name_and_email(tmp_path: Path, git_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LINEAGE_NAME", "LINEAGE_EMAIL", "LINEAGE_USER"):
        monkeypatch.delenv(var, raising=False)
    (git_home / ".gitconfig").write_text("[user]\n\tname = Grace Hopper\n\temail = grace@example.com\n")
    monkeypatch.chdir(tmp_path)
    identity, attrs = capture.capture_agent()
    assert attrs["name"] == "Grace Hopper" and attrs["email"] == "grace@example.com"
    assert attrs["user"] and attrs["host"]
    # two people on one OS account are two agents
    monkeypatch.setenv("LINEAGE_NAME", "Alan Turing")
    assert capture.capture_agent()[0] != identity
    assert capture.agent_label(attrs) == f"Grace Hopper <grace@example.com> ({attrs['user']}@{attrs['host']})"
    assert os.environ.get("LINEAGE_NAME") == "Alan Turing"
