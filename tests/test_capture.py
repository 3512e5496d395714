"""Tests of lineage.capture against real git repositories made in tmp_path."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import committed_repo, git, needs_git
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage import capture
from lineage.capture import (
    ENV_ALLOWLIST,
    allowed_env,
    capture_agent,
    capture_code,
    capture_environment,
    strip_url_credentials,
)
from lineage.model import SECRET_MASK, canonical_json
from lineage.secrets import mask_argv, mask_mapping


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's git configuration (signing, hooks, templates) and any
    enclosing repository out of these tests."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "LINEAGE_USER", "LINEAGE_EMAIL", "LINEAGE_NAME"):
        monkeypatch.delenv(var, raising=False)
    capture.reset_cache()
    yield
    capture.reset_cache()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The shared one-commit repository (tests/conftest.py `committed_repo`)."""
    return committed_repo(tmp_path)


# ---------------------------------------------------------------------------
# code in git


@needs_git
def test_clean_repository(repo: Path) -> None:
    identity, attrs = capture_code(str(repo), entry_point=str(repo / "train.py"))
    commit = git(repo, "rev-parse", "HEAD")
    assert attrs == {
        "git": True,
        "repo": None,
        "branch": "main",
        "commit": commit,
        "dirty": False,
        "diff_digest": None,
        "entry_point": "train.py",  # relative to the root, so it reads the same on every clone
        "root": os.path.realpath(repo),
    }
    assert identity == sha(f"{commit}\0")


@needs_git
def test_found_from_a_file_or_subdirectory(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = capture_code(str(repo))[0]
    assert capture_code(str(repo / "src" / "util.py"))[0] == expected
    monkeypatch.chdir(repo / "src")
    identity, attrs = capture_code(entry_point="util.py")
    assert identity == expected
    assert attrs["entry_point"] == "src/util.py"


@needs_git
def test_remote_credentials_never_recorded(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "https://alice:s3cret@example.com/org/repo.git")
    (repo / "train.py").write_text("print('changed')\n")  # dirty, so every code path runs
    _, attrs = capture_code(str(repo))
    assert attrs["repo"] == "https://example.com/org/repo.git"
    dumped = json.dumps(attrs)
    assert "s3cret" not in dumped
    assert "alice" not in dumped


@needs_git
def test_scp_style_remote_kept(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "git@github.com:org/repo.git")
    assert capture_code(str(repo))[1]["repo"] == "git@github.com:org/repo.git"


@needs_git
def test_edits_make_it_dirty_and_change_the_diff_digest(repo: Path) -> None:
    clean_id, _ = capture_code(str(repo))
    script = repo / "train.py"

    script.write_text("print('fit')\nprint('more')\n")
    id1, a1 = capture_code(str(repo))
    assert a1["dirty"] is True and a1["diff_digest"] is not None
    assert id1 == sha(f"{a1['commit']}\0{a1['diff_digest']}") != clean_id

    script.write_text("print('fit')\nprint('other')\n")
    id2, a2 = capture_code(str(repo))
    assert a2["diff_digest"] != a1["diff_digest"] and id2 != id1

    # The same working tree gives the same identity: the digest is deterministic.
    script.write_text("print('fit')\nprint('more')\n")
    assert capture_code(str(repo))[0] == id1

    # Staging does not change what the code is.
    git(repo, "add", "train.py")
    assert capture_code(str(repo))[0] == id1

    # Reverting makes it clean again.
    git(repo, "checkout", "HEAD", "--", "train.py")
    assert capture_code(str(repo)) == (clean_id, capture_code(str(repo))[1])
    assert capture_code(str(repo))[1]["dirty"] is False


@needs_git
def test_diff_digest_ignores_user_diff_configuration(repo: Path) -> None:
    (repo / "train.py").write_text("print('fit')\nprint('more')\n")
    before = capture_code(str(repo))[0]
    git(repo, "config", "color.ui", "always")
    git(repo, "config", "diff.noprefix", "true")
    git(repo, "config", "diff.context", "10")
    git(repo, "config", "diff.mnemonicPrefix", "true")
    assert capture_code(str(repo))[0] == before


@needs_git
def test_only_an_untracked_entry_script_makes_it_dirty(repo: Path) -> None:
    # as `git describe --dirty`: the data a run writes is not a code change
    clean_id, _ = capture_code(str(repo))
    (repo / "notes.log").write_text("ignored\n")  # ignored by .gitignore
    assert capture_code(str(repo))[0] == clean_id
    (repo / "src" / "out.csv").write_text("a\n1\n")
    assert capture_code(str(repo))[0] == clean_id and capture_code(str(repo))[1]["dirty"] is False

    (repo / "src" / "new.py").write_text("Y = 2\n")
    id1, attrs = capture_code(str(repo / "src"), entry_point="new.py")
    assert attrs["dirty"] is True and attrs["diff_digest"] is not None and id1 != clean_id

    (repo / "src" / "new.py").write_text("Y = 3\n")  # content counts
    id2, _ = capture_code(str(repo / "src"), entry_point="new.py")
    assert id2 != id1

    (repo / "src" / "new.py").rename(repo / "src" / "new2.py")  # and so does the name
    assert capture_code(str(repo / "src"), entry_point="new2.py")[0] not in (id1, id2)


@needs_git
def test_deleted_tracked_file_is_dirty(repo: Path) -> None:
    (repo / "src" / "util.py").unlink()
    assert capture_code(str(repo))[1]["dirty"] is True


@needs_git
def test_detached_head_has_no_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    _, attrs = capture_code(str(repo))
    assert attrs["branch"] is None
    assert attrs["commit"] == git(repo, "rev-parse", "HEAD")


@needs_git
def test_repository_without_commits_falls_back_to_the_script(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q")
    script = root / "run.py"
    script.write_bytes(b"print(1)\n")
    identity, attrs = capture_code(str(root), entry_point=str(script))
    assert attrs == {"git": False, "entry_point": str(script), "script_digest": sha(b"print(1)\n")}
    assert identity == sha(b"print(1)\n")


# ---------------------------------------------------------------------------
# code outside git


def test_outside_git_the_script_is_the_code(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_bytes(b"import sys\nprint(sys.argv)\n")
    identity, attrs = capture_code(str(tmp_path), entry_point=str(script))
    assert identity == sha(script.read_bytes())
    assert attrs == {"git": False, "entry_point": str(script), "script_digest": identity}
    script.write_bytes(b"print('edited')\n")
    assert capture_code(str(tmp_path), entry_point=str(script))[0] == sha(b"print('edited')\n")


def test_outside_git_entry_point_defaults_to_argv0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "job.py"
    script.write_bytes(b"pass\n")
    monkeypatch.setattr(sys, "argv", [str(script), "--lr", "0.1"])
    identity, attrs = capture_code(str(tmp_path))
    assert identity == sha(b"pass\n") and attrs["entry_point"] == str(script)


def test_outside_git_entry_point_relative_to_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "job.py").write_bytes(b"pass\n")
    monkeypatch.chdir(tmp_path.parent)
    assert capture_code(str(tmp_path), entry_point="job.py")[0] == sha(b"pass\n")


def test_interactive_and_command_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", [""])
    identity, attrs = capture_code(str(tmp_path))
    assert identity == sha(b"interactive")
    assert attrs["interactive"] is True and attrs["git"] is False
    identity, attrs = capture_code(str(tmp_path), entry_point="make")
    assert identity == sha("command\0make")
    assert attrs == {"git": False, "entry_point": "make", "script_digest": None}


@needs_git
def test_without_git_installed_falls_back(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    identity, attrs = capture_code(str(repo), entry_point=str(repo / "train.py"))
    assert attrs["git"] is False
    assert identity == sha((repo / "train.py").read_bytes())


# ---------------------------------------------------------------------------
# URLs


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://user:pass@host/x.git", "https://host/x.git"),
        ("https://ghp_TOKEN123@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("ssh://git@github.com/org/repo.git", "ssh://git@github.com/org/repo.git"),
        ("ssh://git:pw@host/x", "ssh://git@host/x"),
        ("s3://AKIA:SECRET@bucket/key.csv", "s3://bucket/key.csv"),
        ("gs://bucket/path/data.parquet", "gs://bucket/path/data.parquet"),
        ("postgresql://app:pw@db:5432/prod?sslmode=require", "postgresql://db:5432/prod?sslmode=require"),
        ("https://u:p@ss:w@host/x", "https://host/x"),  # raw '@' in the password
        ("https://h/x?token=abc&page=2", "https://h/x?token=***&page=2"),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=f00&X-Amz-Expires=60",
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Expires=60",
        ),
        ("https://acct.blob.core.windows.net/c/b?sv=2020&sig=abc%3D", "https://acct.blob.core.windows.net/c/b?sv=2020&sig=***"),
        ("https://h/cb#access_token=xyz&state=1", "https://h/cb#access_token=***&state=1"),
        ("file:///data/train.csv", "file:///data/train.csv"),
        ("data/train.csv", "data/train.csv"),
        ("user:pw@host:path/repo.git", "user@host:path/repo.git"),
    ],
)
def test_strip_url_credentials(url: str, expected: str) -> None:
    assert strip_url_credentials(url) == expected


def _chars(exclude: str) -> st.SearchStrategy[str]:
    return st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, blacklist_characters=exclude),
        min_size=1,
        max_size=20,
    )


@settings(max_examples=500, deadline=None)
@given(
    raw_user=_chars("/?#"),
    raw_password=_chars("/?#"),
    any_user=_chars(""),
    any_password=_chars(""),
    scheme=st.sampled_from(["https", "http", "s3", "gs", "postgresql", "mysql+pymysql", "ssh"]),
    encode=st.booleans(),
)
def test_password_never_survives(
    raw_user: str, raw_password: str, any_user: str, any_password: str, scheme: str, encode: bool
) -> None:
    # A valid URL percent-encodes its userinfo, so any characters at all may be in
    # it. A careless paste has them raw: '@', ':', '[' and the like are handled;
    # a raw '/', '?' or '#' can make the URL genuinely ambiguous, so those are
    # covered by the example tests below instead.
    if encode:
        user, password = quote(any_user, safe=""), quote(any_password, safe="")
    else:
        user, password = raw_user, raw_password
    url = f"{scheme}://{user}:{password}@example.com/org/repo.git"
    out = strip_url_credentials(url)
    tail = "example.com/org/repo.git"
    assert out.endswith(tail), out
    head = out[: -len(tail)]
    allowed = {f"{scheme}://"}  # nothing of the userinfo survives ...
    if scheme == "ssh":  # ... except an ssh account name (up to its first ':')
        allowed.add(f"ssh://{user.partition(':')[0]}@")
    assert head in allowed, (url, out)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY@bucket/train.csv", "s3://bucket/train.csv"),
        ("https://user:pa/ss@word@host/x?token=1", "https://host/x?token=***"),
        ("https://user:pa?ss@host/x", "https://host/x"),
        ("https://user:pa#ss@host/x", "https://host/x"),
        ("https://u:p[w@h/x", "https://h/x"),
        ("postgresql://user@/db", "postgresql:///db"),
        # not credentials: '@' in the path of a URL with a valid host
        ("https://host:8080/u/bob@example.com", "https://host:8080/u/bob@example.com"),
        ("https://[::1]/a@b", "https://[::1]/a@b"),
    ],
)
def test_raw_pasted_credentials(url: str, expected: str) -> None:
    assert strip_url_credentials(url) == expected


def test_urls_inside_text_are_stripped() -> None:
    text = "fetched https://bob:pw@host/a and s3://k:s@bucket/b?sig=1"
    assert strip_url_credentials(text) == "fetched https://host/a and s3://bucket/b?sig=***"


# ---------------------------------------------------------------------------
# params, argv, environment


def test_redact_params() -> None:
    params = {
        "lr": 0.1,
        "api_key": "sk-123",
        "DB_PASSWORD": "hunter2",
        "n_estimators": 100,
        "auth": {"token": "abc", "user": "bob"},
        "db_url": "postgresql://bob:hunter2@db/prod",
        "keys_seen": 3,  # a number under a weak name (key/token) is a setting: kept (docs/secrets.md)
    }
    out = mask_mapping(params)
    assert out == {
        "lr": 0.1,
        "api_key": SECRET_MASK,
        "DB_PASSWORD": SECRET_MASK,
        "n_estimators": 100,
        "auth": {"token": SECRET_MASK, "user": "bob"},
        "db_url": "postgresql://db/prod",
        "keys_seen": 3,
    }
    assert params["api_key"] == "sk-123"  # a copy, the caller's dict untouched
    assert "hunter2" not in canonical_json(out)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["train.py", "--api-key", "X", "--lr", "0.1"], ["train.py", "--api-key", "***", "--lr", "0.1"]),
        (["train.py", "--api-key=X"], ["train.py", "--api-key=***"]),
        (["lineage", "run", "-p", "password=X", "-p", "lr=0.1"], ["lineage", "run", "-p", "password=***", "-p", "lr=0.1"]),
        (["env", "TOKEN=abc", "HF_HOME=/x", "python", "t.py"], ["env", "TOKEN=***", "HF_HOME=/x", "python", "t.py"]),
        (["t.py", "--db-password", "--verbose"], ["t.py", "--db-password", "--verbose"]),
        (["t.py", "--secret", "-x7f"], ["t.py", "--secret", "***"]),
        (["git", "clone", "https://tok@github.com/o/r.git"], ["git", "clone", "https://github.com/o/r.git"]),
        (["t.py", "--db=postgresql://u:pw@h/db"], ["t.py", "--db=postgresql://h/db"]),
        (["t.py", "--data", "s3://AK:SK@bucket/x?sig=abc"], ["t.py", "--data", "s3://bucket/x?sig=***"]),
        (["curl", "https://h/x?access_token=abc&x=1"], ["curl", "https://h/x?access_token=***&x=1"]),
        (["python", "-m", "train", "--epochs", "3"], ["python", "-m", "train", "--epochs", "3"]),
        (["t.py", "model.api_key=abc", "trainer.max_epochs=3"], ["t.py", "model.api_key=***", "trainer.max_epochs=3"]),
    ],
)
def test_redact_argv(argv: list[str], expected: list[str]) -> None:
    assert mask_argv(argv) == expected


def test_allowed_env_records_only_the_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        monkeypatch.delenv(name)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("LINEAGE_DURABILITY", "full")
    monkeypatch.setenv("LINEAGE_API_TOKEN", "nope")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "nope")
    monkeypatch.setenv("HOME", "/home/x")
    monkeypatch.setenv("PATH", "/usr/bin")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@h/db")
    assert allowed_env() == {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "LINEAGE_DURABILITY": "full",
        "OMP_NUM_THREADS": "4",
        "PYTHONHASHSEED": "0",
        "TOKENIZERS_PARALLELISM": "false",
    }
    assert list(allowed_env()) == sorted(allowed_env())
    assert "CUDA_VISIBLE_DEVICES" in ENV_ALLOWLIST


# ---------------------------------------------------------------------------
# environment


def test_capture_environment() -> None:
    import numpy

    identity, attrs = capture_environment()
    assert attrs["python"] == platform.python_version()
    assert attrs["platform"] == platform.platform()
    assert attrs["implementation"] == platform.python_implementation()
    assert attrs["machine"] == platform.machine()
    pkgs = attrs["packages"]
    assert pkgs["numpy"] == numpy.__version__
    assert "pytest" in pkgs
    assert list(pkgs) == sorted(pkgs)
    assert all(name == name.lower() and "_" not in name and "." not in name for name in pkgs)
    assert identity == sha(canonical_json([attrs["python"], attrs["platform"], [[n, v] for n, v in pkgs.items()]]))


def test_capture_environment_is_cached_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    first = capture_environment()
    first[1]["packages"]["tampered"] = "1"  # callers get copies

    def boom() -> Any:
        raise AssertionError("distributions() read again")

    monkeypatch.setattr(metadata, "distributions", boom)
    assert capture_environment() == (first[0], {**first[1], "packages": {k: v for k, v in first[1]["packages"].items() if k != "tampered"}})
    capture.reset_cache()
    with pytest.raises(AssertionError, match="read again"):
        capture_environment()


# ---------------------------------------------------------------------------
# agent


def test_capture_agent_defaults() -> None:
    import getpass
    import socket

    identity, attrs = capture_agent()
    assert attrs["user"] == getpass.getuser()
    assert attrs["host"] == socket.gethostname()
    assert identity == sha(f"{attrs['user']}@{attrs['host']}")


def test_lineage_user_overrides_on_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    _, before = capture_agent()
    monkeypatch.setenv("LINEAGE_USER", "alice")
    monkeypatch.setenv("LINEAGE_EMAIL", "alice@example.com")
    identity, attrs = capture_agent()  # no cache reset needed
    assert attrs == {"user": "alice", "host": before["host"], "email": "alice@example.com", "name": None}
    # a person named (here by e-mail) is part of the identity: one OS account, two people
    assert identity == sha(canonical_json([None, "alice@example.com", "alice", before["host"]]))
    monkeypatch.setenv("LINEAGE_USER", "bob")
    assert capture_agent()[1]["user"] == "bob"


@needs_git
def test_agent_email_from_git_config(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    assert capture_agent()[1]["email"] == "test@example.com"


def test_agent_survives_getuser_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    def fail() -> str:
        raise KeyError("getpwuid(): uid not found: 12345")

    monkeypatch.setattr(getpass, "getuser", fail)
    identity, attrs = capture_agent()
    assert attrs["user"]
    assert identity == sha(f"{attrs['user']}@{attrs['host']}")


@needs_git
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_an_untracked_link_to_a_fifo_does_not_block_code_capture(repo: Path, tmp_path: Path) -> None:
    import threading

    os.mkfifo(tmp_path / "pipe")
    os.symlink(tmp_path / "pipe", repo / "pipe-link")  # git lists the link as untracked
    box: dict[str, Any] = {}
    t = threading.Thread(target=lambda: box.update(result=capture_code(str(repo))), daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "capture_code blocked reading a FIFO"
    # an untracked file is not the code (issue 11: dirty means tracked changes, or an
    # untracked entry script), so the link leaves the tree clean
    assert box["result"][1]["dirty"] is False


@needs_git
def test_runs_of_one_commit_keep_their_own_scripts(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two scripts of one commit share its code node (identified by commit and diff,
    DESIGN.md §1), which names the first one's script; each run keeps its own, and
    `diff` and the audit read it there: the second run is not said to have run the
    first's script."""
    import lineage
    from lineage.audit.facts import collect_model

    (repo / "prep.py").write_text("open('clean.csv', 'w').write('x\\n1\\n')\n")
    (repo / "train.py").write_text("import pickle\npickle.dump({'w': 1}, open('model.pkl', 'wb'))\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "two steps")
    monkeypatch.chdir(repo)
    lg = lineage.open(repo / ".lineage" / "lineage.db")
    lg.run_command([sys.executable, "prep.py"], outputs=["clean.csv"])
    lg.run_command([sys.executable, "train.py"], inputs=["clean.csv"], models=["model.pkl"])
    prep, train = sorted(lg.nodes(kind="run"), key=lambda r: r.created_at)
    assert (prep.attrs["entry_point"], train.attrs["entry_point"]) == ("prep.py", "train.py")
    code = lg.trace("model.pkl").nodes(kind="code")
    assert len(code) == 1  # one commit: one code node, as DESIGN.md §1 identifies it
    assert {"aspect": "code", "key": "entry_point", "a": "prep.py", "b": "train.py"} in \
        lg.diff(prep, train).to_dict()["changes"]
    facts = collect_model(lg.store, lg.get("model.pkl").id)
    assert set(facts.code[0]["entry_point"].split(", ")) == {"prep.py", "train.py"}


# A Jupyter kernel is a process whose sys.argv[0] is ipykernel's launcher and whose
# __main__ is IPython's user namespace (``In``: the cells run so far). The kernels
# here are such processes, started from a file of that name, so the test needs
# neither Jupyter nor IPython.
_KERNEL = """
import json, sys
import lineage
__main__ = sys.modules["__main__"]
__main__.In = json.loads(sys.argv[1])
lg = lineage.open(sys.argv[2])
with lg.start_run("nb") as run:
    pass
code = [o for rel, role, o in lg.run_links(lg.get(run.id)) if role == "code"][0]
print(json.dumps({"id": code.id, "attrs": code.attrs, "entry": lg.get(run.id).attrs.get("entry_point")}))
"""


def _kernel_run(folder: Path, cells: list[str], db: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    import subprocess

    launcher = folder / "kernel" / "ipykernel_launcher.py"
    launcher.parent.mkdir(exist_ok=True)
    launcher.write_text(_KERNEL)
    environ = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
    out = subprocess.run([sys.executable, str(launcher), json.dumps(cells), str(db)], cwd=folder, check=True,
                         capture_output=True, text=True, env={**environ, **(env or {})}).stdout
    return json.loads(out.splitlines()[-1])


@needs_git
def test_a_notebook_run_has_the_notebook_as_its_code(tmp_path: Path) -> None:
    """Every notebook's runs had ipykernel's launcher script as their code: no two
    differed, and none showed the notebook's commit."""
    repo = committed_repo(tmp_path)
    (repo / "analysis.ipynb").write_text('{"cells": [], "nbformat": 4, "nbformat_minor": 5}\n')
    git(repo, "add", "analysis.ipynb")
    git(repo, "commit", "-q", "-m", "notebook")
    db = tmp_path / "store" / "lineage.db"
    # Jupyter Server names the notebook relative to its own folder; the kernel runs in the notebook's
    found = _kernel_run(repo, ["x = 1"], db, {"JPY_SESSION_NAME": "projects/proj/analysis.ipynb"})
    assert found["attrs"]["entry_point"] == "analysis.ipynb" and found["entry"] == "analysis.ipynb"
    assert found["attrs"]["commit"] == git(repo, "rev-parse", "HEAD") and found["attrs"]["dirty"] is False


def test_a_notebook_without_a_known_file_has_its_cells_as_code(tmp_path: Path) -> None:
    db = tmp_path / "store" / "lineage.db"
    first = _kernel_run(tmp_path, ["import numpy as np", "X = np.ones(3)"], db)
    again = _kernel_run(tmp_path, ["import numpy as np", "X = np.ones(3)"], db)
    other = _kernel_run(tmp_path, ["import numpy as np", "X = np.zeros(3)"], db)
    assert first["id"] == again["id"] != other["id"]
    assert first["entry"] == "(notebook cells)" and "ipykernel" not in json.dumps(first["attrs"])
    digest = hashlib.sha256(b"import numpy as np\n\nX = np.ones(3)").hexdigest()
    assert first["attrs"]["script_digest"] == digest
