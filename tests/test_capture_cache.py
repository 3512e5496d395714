"""Tests of lineage.capture_cache: what is captured once per process is reused only
while its validators hold, against real git repositories made in tmp_path."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import committed_repo, git, needs_git

import lineage
from lineage import capture, capture_cache, tracking


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The developer's git configuration and any enclosing repository stay out."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)
    capture_cache.reset()
    yield
    capture_cache.reset()


@pytest.fixture
def git_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Every git command capture runs (they still run: this only records them)."""
    calls: list[tuple[str, ...]] = []
    real = capture.run_git

    def recording(root: str, *args: str, **kw: Any) -> bytes | None:
        calls.append(args)
        return real(root, *args, **kw)

    monkeypatch.setattr(capture, "run_git", recording)
    return calls


def age(root: Path, seconds: float = 100.0) -> None:
    """Date every file and folder under ``root`` (``.git`` included) ``seconds`` back,
    as if the tree had been left alone that long: the cache trusts no timestamp
    younger than RACY_SECONDS."""
    past = time.time() - seconds
    for folder, dirs, files in os.walk(root):
        for name in files + dirs:
            os.utime(os.path.join(folder, name), (past, past), follow_symlinks=False)
    os.utime(root, (past, past))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The shared one-commit repository, left alone long enough for the cache to trust it."""
    root = committed_repo(tmp_path)
    age(root)
    return root


@needs_git
def test_a_valid_answer_is_reused_without_running_git(repo: Path, git_calls: list[tuple[str, ...]]) -> None:
    first = capture_cache.capture_code(str(repo), entry_point=str(repo / "train.py"))
    assert git_calls  # the first capture asks git
    git_calls.clear()
    second = capture_cache.capture_code(str(repo), entry_point=str(repo / "train.py"))
    assert git_calls == []
    assert second == first == capture.capture_code(str(repo), entry_point=str(repo / "train.py"))
    assert capture_cache.stats["git_hits"] == 1


@needs_git
def test_callers_get_copies(repo: Path) -> None:
    _, attrs = capture_cache.capture_code(str(repo))
    attrs["commit"] = "tampered"
    assert capture_cache.capture_code(str(repo))[1]["commit"] != "tampered"


@needs_git
def test_a_tracked_file_edited_between_two_runs_changes_the_code_node(repo: Path, tmp_path: Path) -> None:
    with lineage.open(tmp_path / "store" / "lineage.db") as lg:
        with tracking.Run.start(lg.store, "one", entry_point=str(repo / "train.py")) as run:
            pass
        with tracking.Run.start(lg.store, "two", entry_point=str(repo / "train.py")) as run2:
            pass
        one, two = (next(e.dst for e in lg.trace(r.id).edges() if e.dst.startswith("code:")) for r in (run, run2))
        assert one == two and capture_cache.stats["git_hits"] >= 1
        # the same size, so only the timestamp tells: what an editor saving a one-character fix does
        (repo / "src" / "util.py").write_text("X = 2\n")
        with tracking.Run.start(lg.store, "three", entry_point=str(repo / "train.py")) as run3:
            pass
        three = next(e.dst for e in lg.trace(run3.id).edges() if e.dst.startswith("code:"))
        assert three != two
        assert lg.get(three).attrs["dirty"] is True


@needs_git
def test_untracked_files_commits_and_branches_are_seen(repo: Path) -> None:
    clean = capture_cache.capture_code(str(repo))
    assert capture_cache.capture_code(str(repo)) == clean

    (repo / "src" / "new.py").write_text("Y = 2\n")  # in a watched folder: its mtime changes
    untracked = capture_cache.capture_code(str(repo))
    # an untracked file does not make the code dirty (issue 11); the cache agrees with git
    assert untracked[1]["dirty"] is False
    assert untracked == capture.capture_code(str(repo))

    git(repo, "add", "src/new.py")
    git(repo, "commit", "-q", "-m", "second")
    committed = capture_cache.capture_code(str(repo))
    assert committed[1]["dirty"] is False and committed[1]["commit"] != clean[1]["commit"]

    git(repo, "checkout", "-q", "-b", "feature")
    assert capture_cache.capture_code(str(repo))[1]["branch"] == "feature"


@needs_git
def test_an_edited_untracked_file_is_seen(repo: Path) -> None:
    (repo / "notes.py").write_text("a = 1\n")
    age(repo)
    # an untracked entry script is the code: dirty, and its edit is a new code version
    before = capture_cache.capture_code(str(repo), entry_point="notes.py")
    assert before[1]["dirty"] is True
    assert capture_cache.capture_code(str(repo), entry_point="notes.py") == before  # cached
    (repo / "notes.py").write_text("a = 2\n")
    after = capture_cache.capture_code(str(repo), entry_point="notes.py")
    assert after[0] != before[0] and after == capture.capture_code(str(repo), entry_point="notes.py")


@needs_git
def test_fresh_timestamps_are_not_trusted(repo: Path, git_calls: list[tuple[str, ...]]) -> None:
    (repo / "train.py").write_text("print('now')\n")  # written just now: racy
    capture_cache.capture_code(str(repo))
    git_calls.clear()
    capture_cache.capture_code(str(repo))
    assert git_calls  # asked git again
    assert capture_cache.stats["git_hits"] == 0


@needs_git
def test_answers_expire(repo: Path, git_calls: list[tuple[str, ...]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture_cache, "GIT_RECHECK_SECONDS", 0.0)
    capture_cache.capture_code(str(repo))
    git_calls.clear()
    capture_cache.capture_code(str(repo))
    assert git_calls


@needs_git
def test_large_trees_are_not_cached(repo: Path, git_calls: list[tuple[str, ...]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture_cache, "MAX_WATCHED", 3)
    first = capture_cache.capture_code(str(repo))
    git_calls.clear()
    assert capture_cache.capture_code(str(repo)) == first
    assert any(c[0] == "status" for c in git_calls)


@needs_git
def test_git_location_overrides_are_not_cached(repo: Path, git_calls: list[tuple[str, ...]],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    capture_cache.capture_code(str(repo))
    git_calls.clear()
    capture_cache.capture_code(str(repo))
    assert git_calls and capture_cache.stats["git_uncached"] == 2


def test_outside_git_no_git_runs(tmp_path: Path, git_calls: list[tuple[str, ...]]) -> None:
    script = tmp_path / "job.py"
    script.write_text("print(1)\n")
    got = capture_cache.capture_code(str(tmp_path), entry_point=str(script))
    assert git_calls == []
    assert got == capture.capture_code(str(tmp_path), entry_point=str(script))
    script.write_text("print(2)\n")  # the script's digest is not cached
    assert capture_cache.capture_code(str(tmp_path), entry_point=str(script))[0] != got[0]


def test_environment_is_recomputed_when_a_package_appears(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    before = capture_cache.capture_environment()
    assert "fake-pkg-for-lineage" not in before[1]["packages"]
    assert capture_cache.capture_environment() == before
    age(site)
    meta = site / "fake_pkg_for_lineage-1.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-pkg-for-lineage\nVersion: 1.0\n")
    after = capture_cache.capture_environment()
    assert after[1]["packages"]["fake-pkg-for-lineage"] == "1.0"
    assert after[0] != before[0]
    capture.reset_cache()


def test_allowed_env_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    first = capture_cache.allowed_env()
    assert first["OMP_NUM_THREADS"] == "4" and first == capture.allowed_env()
    first["OMP_NUM_THREADS"] = "tampered"  # callers get copies
    assert capture_cache.allowed_env()["OMP_NUM_THREADS"] == "4"
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("LINEAGE_API_TOKEN", "secret")  # a prefix match that looks secret
    second = capture_cache.allowed_env()
    assert second == capture.allowed_env()
    assert second["OMP_NUM_THREADS"] == "8" and second["CUDA_VISIBLE_DEVICES"] == "0"
    assert "LINEAGE_API_TOKEN" not in second
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert "OMP_NUM_THREADS" not in capture_cache.allowed_env()


# ---------------------------------------------------------------------------
# nodes known to the store: no re-check query, forgotten on rollback


def test_a_rolled_back_batch_forgets_the_nodes_it_recorded(tmp_path: Path) -> None:
    with lineage.open(tmp_path / "s" / "lineage.db") as lg:
        with pytest.raises(RuntimeError), lg.batch():
            with lg.start_run("inside") as run:
                pass
            assert lg.store.known_node(lg.get(run.id).id, None) is None  # runs are not remembered
            raise RuntimeError("undo it all")
        # the agent, environment and code nodes recorded in the batch are gone: the
        # next run must record them again, not link to nodes that do not exist
        with lg.start_run("after") as run:
            pass
        ends = [e.dst for e in lg.trace(run.id, depth=1).edges()]
        assert {d.split(":", 1)[0] for d in ends} >= {"agent", "environment", "code"}
        for node_id in ends:
            assert lg.store.get_node(node_id) is not None
        assert lg.verify().ok


def test_a_rolled_back_savepoint_forgets_too(tmp_path: Path) -> None:
    with lineage.open(tmp_path / "s" / "lineage.db") as lg, lg.batch():
        with pytest.raises(RuntimeError), lg.store.transaction():
            lg.log_dataset(uri="s3://b/x.csv", digest="a" * 64, name="x")  # records the agent
            raise RuntimeError("undo the savepoint")
        node = lg.log_dataset(uri="s3://b/y.csv", digest="b" * 64, name="y")
        agent = next(e.dst for e in lg.trace(node.id).edges() if e.dst.startswith("agent:"))
        assert lg.store.get_node(agent) is not None


def test_known_nodes_are_reused_and_erasure_forgets_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with lineage.open(tmp_path / "s" / "lineage.db") as lg:
        with lg.start_run("one"):
            pass
        executed: list[str] = []
        lg.store.conn.set_trace_callback(executed.append)
        with lg.start_run("two"):
            pass
        lg.store.conn.set_trace_callback(None)
        # no lookup of the agent, environment or code node by id
        shared = ("'agent:", "'environment:", "'code:")
        assert not [s for s in executed if "FROM nodes WHERE id" in s and any(k in s for k in shared)]
        agent = next(e.dst for e in lg.trace(lg.runs()[0].id).edges() if e.dst.startswith("agent:"))
        lg.store.redact(agent, reason="GDPR request")
        assert lg.store.known_node(agent, None) is None


def test_another_connection_committing_forgets_known_nodes(tmp_path: Path) -> None:
    path = tmp_path / "s" / "lineage.db"
    with lineage.open(path) as lg, lineage.open(path) as other:
        with lg.start_run("one"):
            pass
        agent = next(e.dst for e in lg.trace(lg.runs()[0].id).edges() if e.dst.startswith("agent:"))
        assert lg.store.known_node(agent, None) is not None
        other.store.redact(agent, reason="GDPR request")
        assert lg.store.known_node(agent, None) is None
        assert lg.verify().ok

