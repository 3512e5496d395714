"""Tests of lineage.capture_cache: what is captured once per process is reused only
while its validators hold, against real git repositories made in tmp_path."""

from __future__ import annotations

import errno
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import committed_repo, git, needs_git
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lineage
from lineage import capture, capture_cache, fswatch, tracking


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
# re-validation by inotify (Linux), and by lstat where inotify is refused

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux only")


def no_inotify() -> int:
    """What `fswatch.open_inotify` does in a seccomp sandbox or off Linux."""
    raise OSError(errno.ENOSYS, "inotify_init1 refused")


@pytest.fixture(params=["inotify", "lstat"])
def validation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each way of re-validating a cached answer: inotify (Linux), or the lstat of
    every watched path, which is what a kernel refusing inotify gets."""
    if request.param == "inotify" and not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux only")
    if request.param == "lstat":
        monkeypatch.setattr(fswatch, "open_inotify", no_inotify)
    return str(request.param)


def primed(repo: Path, validation: str, entry: str | None = None) -> tuple[str, dict[str, Any]]:
    """Cache the answer for ``repo`` and check that the next run start reuses it."""
    first = capture_cache.capture_code(str(repo), entry_point=entry)
    if not capture_cache.stats[f"git_{validation}"]:
        # In a dirty tree `git diff` refreshes the index while git looks: that answer
        # is not kept, the next one is (with RACY_SECONDS at 0: see settled())
        first = capture_cache.capture_code(str(repo), entry_point=entry)
    assert capture_cache.stats[f"git_{validation}"] == 1, capture_cache.stats
    hits = capture_cache.stats["git_hits"]
    assert capture_cache.capture_code(str(repo), entry_point=entry) == first
    assert capture_cache.stats["git_hits"] == hits + 1
    return first


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust timestamps written before the answer was computed: `age` cannot date the
    index back without making git refresh it again, so a dirty tree's index is always
    young. (`test_fresh_timestamps_are_not_trusted` checks the real setting.)"""
    monkeypatch.setattr(capture_cache, "RACY_SECONDS", 0.0)


def new_folder(repo: Path) -> None:
    (repo / "pkg").mkdir()
    (repo / "pkg" / "a.py").write_text("a = 1\n")


def rename(repo: Path) -> None:
    (repo / "src" / "util.py").rename(repo / "src" / "helpers.py")


def branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")


CHANGES: dict[str, Callable[[Path], Any]] = {
    # the same size: only the timestamp (or the event) tells
    "edit a tracked file": lambda r: (r / "src" / "util.py").write_text("X = 2\n"),
    "create an untracked file": lambda r: (r / "notes.py").write_text("n = 1\n"),
    "create an untracked file in a subfolder": lambda r: (r / "src" / "more.py").write_text("m = 1\n"),
    "create a folder with a file": lambda r: new_folder(r),
    "delete a tracked file": lambda r: (r / "src" / "util.py").unlink(),
    "rename a tracked file": rename,
    "chmod a tracked file": lambda r: (r / "train.py").chmod(0o755),
    "git add": lambda r: ((r / "train.py").write_text("print('go')\n"), git(r, "add", "train.py")),
    "git commit": lambda r: git(r, "commit", "-q", "--allow-empty", "-m", "empty"),
    "switch branch": branch,
}


@needs_git
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_change_git_would_see_is_seen(repo: Path, validation: str, change: str,
                                            git_calls: list[tuple[str, ...]]) -> None:
    before = primed(repo, validation)
    git_calls.clear()
    CHANGES[change](repo)
    after = capture_cache.capture_code(str(repo))
    assert any(c[0] == "status" for c in git_calls), "the cached answer was reused"
    assert after == capture.capture_code(str(repo))
    if change not in ("create an untracked file", "create an untracked file in a subfolder",
                      "create a folder with a file"):  # (untracked files leave the code clean)
        assert after != before


@needs_git
@pytest.mark.usefixtures("settled")
def test_an_exclude_rule_is_seen(repo: Path, validation: str, git_calls: list[tuple[str, ...]]) -> None:
    (repo / "notes.py").write_text("a = 1\n")
    age(repo)
    before = primed(repo, validation, "notes.py")
    assert before[1]["dirty"] is True  # an untracked entry script
    git_calls.clear()
    with open(repo / ".git" / "info" / "exclude", "a") as f:
        f.write("notes.py\n")
    after = capture_cache.capture_code(str(repo), entry_point="notes.py")
    assert git_calls and after[1]["dirty"] is False
    assert after == capture.capture_code(str(repo), entry_point="notes.py")


@needs_git
def test_writing_an_ignored_file_runs_no_git(repo: Path, validation: str, git_calls: list[tuple[str, ...]]) -> None:
    (repo / "train.log").write_text("epoch 0\n")  # *.log is ignored; its creation is seen once
    age(repo)
    first = primed(repo, validation)
    git_calls.clear()
    for epoch in range(1, 4):  # what a training loop appending to its log does between runs
        with open(repo / "train.log", "a") as f:
            f.write(f"epoch {epoch}\n")
        assert capture_cache.capture_code(str(repo)) == first
    assert git_calls == []
    assert capture_cache.stats["git_hits"] == 4


@needs_git
@linux_only
def test_a_forked_child_leaves_the_parent_its_events(repo: Path, git_calls: list[tuple[str, ...]]) -> None:
    primed(repo, "inotify")
    (repo / "src" / "util.py").write_text("X = 2\n")  # an event waits in the parent's instance
    fresh = capture.capture_code(str(repo))
    assert fresh[1]["dirty"] is True
    git_calls.clear()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its answer, and whether it asked git
        try:
            got = capture_cache.capture_code(str(repo))
            os.write(write, json.dumps([got, bool(git_calls)]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        child, child_asked_git = json.loads(f.read())
    os.waitpid(pid, 0)
    assert child_asked_git and tuple(child) == tuple(json.loads(json.dumps(fresh)))
    # the child did not read the parent's instance: the parent still sees the edit
    assert capture_cache.capture_code(str(repo)) == fresh
    assert any(c[0] == "status" for c in git_calls)


@needs_git
@linux_only
@pytest.mark.usefixtures("settled")
def test_inotify_instances_are_closed_when_answers_are_replaced(repo: Path) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    base = open_fds()
    primed(repo, "inotify")
    assert open_fds() == base + 1
    for n in range(3):  # each edit replaces the answer: one instance at a time
        (repo / "train.py").write_text(f"print({n})\n")
        age(repo)
        for _ in range(2):  # (once more when git refreshed its index while it looked)
            capture_cache.capture_code(str(repo))
        assert open_fds() == base + 1
    assert capture_cache.stats["git_inotify"] == 4
    capture_cache.reset()
    assert open_fds() == base


@needs_git
def test_beyond_max_watchers_answers_are_checked_by_lstat(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                           git_calls: list[tuple[str, ...]]) -> None:
    monkeypatch.setattr(capture_cache, "MAX_WATCHERS", 0)
    primed(repo, "lstat")
    git_calls.clear()
    (repo / "src" / "util.py").write_text("X = 2\n")
    assert capture_cache.capture_code(str(repo)) == capture.capture_code(str(repo))
    assert git_calls


OPERATIONS = ["edit", "create", "create_sub", "delete_untracked", "write_ignored", "add", "commit", "branch",
              "exclude", "restore"]


def operate(repo: Path, op: str, n: int) -> None:
    """One thing a user does to a work tree between two runs."""
    if op == "edit":
        (repo / "src" / "util.py").write_text(f"X = {n % 10}\n")
    elif op == "create":
        (repo / f"u{n % 3}.py").write_text(f"u = {n}\n")
    elif op == "create_sub":
        (repo / "src" / f"s{n % 3}.py").write_text(f"s = {n}\n")
    elif op == "delete_untracked":
        for path in [*repo.glob("u*.py"), *repo.glob("src/s*.py")][:1]:
            path.unlink()
    elif op == "write_ignored":
        with open(repo / "run.log", "a") as log:
            log.write(f"{n}\n")
    elif op == "add":
        git(repo, "add", "-A")
    elif op == "commit":
        git(repo, "commit", "-q", "--allow-empty", "-m", f"c{n}")
    elif op == "branch":
        git(repo, "checkout", "-q", "-B", f"b{n % 2}")
    elif op == "exclude":
        with open(repo / ".git" / "info" / "exclude", "a") as rules:
            rules.write(f"u{n % 3}.py\n")
    elif op == "restore":
        git(repo, "checkout", "-q", "--", ".")


@needs_git
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 9)), min_size=1, max_size=6))
def test_the_cached_answer_is_always_gits(tmp_path: Path, settled: None, steps: list[tuple[str, int]]) -> None:
    repo = committed_repo(Path(tempfile.mkdtemp(dir=tmp_path)))
    capture_cache.reset()
    entry = str(repo / "u0.py")  # an untracked entry script makes untracked files matter
    for op, n in steps:
        age(repo)
        kept = capture_cache.stats["git_inotify"] + capture_cache.stats["git_lstat"]
        for _ in range(2):  # (once more when git refreshed its index while it looked)
            capture_cache.capture_code(str(repo), entry_point=entry)
        assert capture_cache.stats["git_inotify"] + capture_cache.stats["git_lstat"] > kept  # the answer is cached...
        operate(repo, op, n)  # ...and must not outlive the change
        assert capture_cache.capture_code(str(repo), entry_point=entry) == capture.capture_code(str(repo), entry_point=entry)


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



# ---------------------------------------------------------------------------
# the whole code answer: kept with the paths that were looked at to find it


@needs_git
def test_answers_are_flat_so_a_copy_is_a_deep_copy(repo: Path) -> None:
    for _ in range(2):  # (computed, then kept)
        _, attrs = capture_cache.capture_code(str(repo), entry_point=str(repo / "train.py"))
        assert all(v is None or isinstance(v, (str, bool)) for v in attrs.values())


@needs_git
def test_a_kept_answer_runs_no_git_and_resolves_nothing(repo: Path, git_calls: list[tuple[str, ...]],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    entry = str(repo / "train.py")
    first = capture_cache.capture_code(str(repo), entry_point=entry)
    second = capture_cache.capture_code(str(repo), entry_point=entry)
    assert second == first and capture_cache.stats["code_hits"] == 1
    git_calls.clear()

    def no_realpath(path: Any) -> str:
        raise AssertionError("resolved a path for a kept answer")

    monkeypatch.setattr(os.path, "realpath", no_realpath)
    assert capture_cache.capture_code(str(repo), entry_point=entry) == first
    assert git_calls == [] and capture_cache.stats["code_hits"] == 2


def relink(link: Path, target: Path) -> None:
    """Point the symlink ``link`` at ``target`` the way a deploy does: a new link renamed over it."""
    tmp = link.with_name(link.name + ".new")
    tmp.symlink_to(target)
    tmp.rename(link)


@needs_git
def test_a_replaced_symlink_in_the_path_to_the_script_is_seen(tmp_path: Path) -> None:
    for name in "ab":
        (tmp_path / name).mkdir()
    one = committed_repo(tmp_path / "a")
    two = committed_repo(tmp_path / "b")
    (two / "train.py").write_text("print('another')\n")
    git(two, "commit", "-qam", "other")
    age(one)
    age(two)
    current = tmp_path / "current"
    current.symlink_to(one)
    entry = str(current / "train.py")
    first = capture_cache.capture_code(str(current), entry_point=entry)
    assert capture_cache.capture_code(str(current), entry_point=entry) == first
    relink(current, two)
    after = capture_cache.capture_code(str(current), entry_point=entry)
    assert after[1]["root"] == str(two.resolve()) and after[1]["commit"] != first[1]["commit"]
    assert after == capture.capture_code(str(current), entry_point=entry)


@needs_git
def test_a_folder_on_the_path_replaced_by_a_symlink_is_seen(tmp_path: Path) -> None:
    for name in "ab":
        (tmp_path / name).mkdir()
    one = committed_repo(tmp_path / "a")
    two = committed_repo(tmp_path / "b")
    git(two, "commit", "-q", "--allow-empty", "-m", "other")
    age(tmp_path)
    entry = str(one / "train.py")
    first = capture_cache.capture_code(str(one), entry_point=entry)
    assert capture_cache.capture_code(str(one), entry_point=entry) == first
    assert capture_cache.stats["code_hits"] == 1  # kept: no symlink on the way
    one.rename(tmp_path / "a" / "old")
    one.symlink_to(two)  # the same path now leads to another repository
    after = capture_cache.capture_code(str(one), entry_point=entry)
    assert after[1]["commit"] != first[1]["commit"]
    assert after == capture.capture_code(str(one), entry_point=entry)


@needs_git
def test_a_repository_made_below_the_one_found_is_seen(repo: Path) -> None:
    sub = repo / "tools"
    sub.mkdir()
    (sub / "job.py").write_text("print(1)\n")
    age(repo)
    entry = str(sub / "job.py")
    first = capture_cache.capture_code(str(sub), entry_point=entry)
    assert first[1]["root"] == str(repo.resolve())
    assert capture_cache.capture_code(str(sub), entry_point=entry) == first
    git(sub, "init", "-q", "-b", "main")
    git(sub, "config", "user.email", "t@example.com")
    git(sub, "config", "user.name", "T")
    git(sub, "add", "job.py")
    git(sub, "commit", "-q", "-m", "inner")
    after = capture_cache.capture_code(str(sub), entry_point=entry)
    assert after[1]["root"] == str(sub.resolve())
    assert after == capture.capture_code(str(sub), entry_point=entry)


def test_outside_git_an_edited_script_is_seen_and_an_unchanged_one_is_not_hashed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "job.py"
    script.write_text("print(1)\n")
    age(tmp_path)
    first = capture_cache.capture_code(str(tmp_path), entry_point=str(script))
    hashed: list[str] = []
    real = capture._file_sha256

    def counting(path: str) -> str | None:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(capture, "_file_sha256", counting)
    assert capture_cache.capture_code(str(tmp_path), entry_point=str(script)) == first
    assert hashed == []  # the same lstat: the digest is the one computed before
    script.write_text("print(2)\n")  # the same size, a new mtime
    after = capture_cache.capture_code(str(tmp_path), entry_point=str(script))
    assert after[0] != first[0] and after == capture.capture_code(str(tmp_path), entry_point=str(script))


@needs_git
def test_outside_git_a_new_repository_above_is_seen(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    script = proj / "src" / "job.py"
    script.write_text("print(1)\n")
    age(tmp_path)
    first = capture_cache.capture_code(str(proj / "src"), entry_point=str(script))
    assert first[1]["git"] is False
    assert capture_cache.capture_code(str(proj / "src"), entry_point=str(script)) == first
    git(proj, "init", "-q", "-b", "main")
    git(proj, "config", "user.email", "t@example.com")
    git(proj, "config", "user.name", "T")
    git(proj, "add", ".")
    git(proj, "commit", "-q", "-m", "first")
    after = capture_cache.capture_code(str(proj / "src"), entry_point=str(script))
    assert after[1]["git"] is True and after == capture.capture_code(str(proj / "src"), entry_point=str(script))


def test_a_relative_entry_point_follows_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, text in (("a", "print('a')\n"), ("b", "print('bb')\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "job.py").write_text(text)
    age(tmp_path)
    answers = []
    for name in ("a", "b", "a"):
        monkeypatch.chdir(tmp_path / name)
        answers.append(capture_cache.capture_code(None, entry_point="job.py"))
        assert answers[-1] == capture.capture_code(None, entry_point="job.py")
    assert answers[0] == answers[2] != answers[1]


# ---------------------------------------------------------------------------
# the agent: kept while git's configuration, the account and the overrides hold


@pytest.fixture
def gitconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real user configuration naming a person, old enough to be trusted."""
    path = tmp_path / "home" / ".gitconfig"
    path.write_text("[user]\n\tname = Ada Lovelace\n\temail = ada@example.com\n")
    monkeypatch.delenv("GIT_CONFIG_GLOBAL")
    monkeypatch.delenv("LINEAGE_NAME", raising=False)
    monkeypatch.delenv("LINEAGE_EMAIL", raising=False)
    monkeypatch.delenv("LINEAGE_USER", raising=False)
    monkeypatch.chdir(tmp_path)
    age(tmp_path / "home")
    return path


def set_email(config: Path, email: str) -> None:
    git(config.parent, "config", "--file", str(config), "user.email", email)


def other_user(config: Path, m: pytest.MonkeyPatch) -> None:
    m.setenv("USER", "grace")
    m.setenv("LOGNAME", "grace")


def repo_email(config: Path, m: pytest.MonkeyPatch) -> None:
    """``git init`` in the working directory, whose configuration names someone else."""
    git(config.parent.parent, "init", "-q")
    git(config.parent.parent, "config", "user.email", "repo@example.com")


def move_elsewhere(config: Path, m: pytest.MonkeyPatch) -> None:
    elsewhere = config.parent.parent / "elsewhere"
    elsewhere.mkdir()
    git(elsewhere, "init", "-q")
    git(elsewhere, "config", "user.email", "there@example.com")
    m.chdir(elsewhere)


AGENT_CHANGES: dict[str, Callable[[Path, pytest.MonkeyPatch], Any]] = {
    "git's user.email": lambda c, m: set_email(c, "ada@lovelace.org"),
    "git's user.name": lambda c, m: git(c.parent, "config", "--file", str(c), "user.name", "Augusta Ada King"),
    "HOME": lambda c, m: m.setenv("HOME", str(c.parent.parent)),
    "USER": other_user,
    "LINEAGE_EMAIL": lambda c, m: m.setenv("LINEAGE_EMAIL", "ops@example.com"),
    "a repository's own user.email": repo_email,
    "the working directory": move_elsewhere,
}


@needs_git
@pytest.mark.parametrize("change", sorted(AGENT_CHANGES))
def test_every_change_to_who_runs_is_seen_by_the_next_call(gitconfig: Path, validation: str, change: str,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         git_calls: list[tuple[str, ...]]) -> None:
    first = capture_cache.capture_agent()
    assert first[1]["email"] == "ada@example.com"
    git_calls.clear()
    assert capture_cache.capture_agent() == first  # kept: no git
    assert git_calls == [] and capture_cache.stats["agent_hits"] == 1
    AGENT_CHANGES[change](gitconfig, monkeypatch)
    after = capture_cache.capture_agent()
    assert after == capture.capture_agent(fresh=True)
    assert after != first


@needs_git
def test_the_agent_node_follows_git_config_between_runs(gitconfig: Path, tmp_path: Path) -> None:
    with lineage.open(tmp_path / "store" / "lineage.db") as lg:
        with tracking.Run.start(lg.store, "one") as one:
            pass
        set_email(gitconfig, "ada@lovelace.org")
        with tracking.Run.start(lg.store, "two") as two:
            pass
        who = [next(e.dst for e in lg.trace(r.id).edges() if e.dst.startswith("agent:")) for r in (one, two)]
        assert who[0] != who[1] and lg.get(who[1]).attrs["email"] == "ada@lovelace.org"


@needs_git
def test_the_agent_is_asked_again_after_the_recheck_period(gitconfig: Path, git_calls: list[tuple[str, ...]],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    capture_cache.capture_agent()
    monkeypatch.setattr(capture_cache, "GIT_RECHECK_SECONDS", 0.0)
    git_calls.clear()
    capture_cache.capture_agent()
    assert git_calls  # (what no validator sees: an `include`d file, the host name)


AGENT_OPS = ["email", "name", "home", "user", "override", "unset_override", "repo_email", "noop"]


@needs_git
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(AGENT_OPS), st.integers(0, 3)), min_size=1, max_size=6))
def test_the_kept_agent_is_always_a_fresh_capture(tmp_path: Path, steps: list[tuple[str, int]]) -> None:
    top = Path(tempfile.mkdtemp(dir=tmp_path))
    homes = [top / "h0", top / "h1"]
    for home in homes:
        home.mkdir()
        (home / ".gitconfig").write_text("[user]\n\tname = A\n\temail = a@example.com\n")
    work = top / "work"
    work.mkdir()
    git(work, "init", "-q")
    saved = {k: os.environ.get(k) for k in ("HOME", "USER", "LOGNAME", "LINEAGE_EMAIL", "GIT_CONFIG_GLOBAL")}
    old = os.getcwd()
    try:
        os.environ.pop("GIT_CONFIG_GLOBAL", None)
        os.environ.pop("LINEAGE_EMAIL", None)
        os.environ["HOME"] = str(homes[0])
        os.chdir(work)
        capture_cache.reset()
        for op, n in steps:
            capture_cache.capture_agent()
            capture_cache.capture_agent()
            home = Path(os.environ["HOME"])
            if op == "email":
                set_email(home / ".gitconfig", f"e{n}@example.com")
            elif op == "name":
                git(home, "config", "--file", str(home / ".gitconfig"), "user.name", f"N{n}")
            elif op == "home":
                os.environ["HOME"] = str(homes[n % 2])
            elif op == "user":
                os.environ["USER"] = os.environ["LOGNAME"] = f"u{n}"
            elif op == "override":
                os.environ["LINEAGE_EMAIL"] = f"o{n}@example.com"
            elif op == "unset_override":
                os.environ.pop("LINEAGE_EMAIL", None)
            elif op == "repo_email":
                git(work, "config", "user.email", f"r{n}@example.com")
            assert capture_cache.capture_agent() == capture.capture_agent(fresh=True)
    finally:
        os.chdir(old)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        capture_cache.reset()


# ---------------------------------------------------------------------------
# the environment: sys.path's folders watched (Linux), their mtimes otherwise


def fake_package(site: Path, name: str, version: str) -> None:
    meta = site / f"{name.replace('-', '_')}-{version}.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on ``sys.path`` to install fake packages into."""
    folder = tmp_path / "venv" / "site"
    folder.mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [*sys.path, str(folder)])
    capture.reset_cache()  # (capture keeps its own answer per process)
    yield folder
    capture.reset_cache()


@pytest.mark.parametrize("change", ["install", "uninstall", "upgrade", "replace the folder", "replace a folder above",
                                    "append to sys.path"])
def test_every_package_change_is_seen_by_the_next_run_start(site: Path, validation: str, change: str,
                                                            tmp_path: Path) -> None:
    fake_package(site, "fake-pkg-for-lineage", "1.0")
    age(tmp_path / "venv")
    before = capture_cache.capture_environment()
    assert before[1]["packages"]["fake-pkg-for-lineage"] == "1.0"
    assert capture_cache.environment_if_cached() == before  # kept
    other = tmp_path / "other"
    if change == "install":
        fake_package(site, "another-fake-pkg", "2.0")
    elif change == "uninstall":
        for path in sorted(site.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    elif change == "upgrade":
        (site / "fake_pkg_for_lineage-1.0.dist-info").rename(site / "fake_pkg_for_lineage-1.1.dist-info")
        (site / "fake_pkg_for_lineage-1.1.dist-info" / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: fake-pkg-for-lineage\nVersion: 1.1\n")
    elif change == "replace the folder":  # a new folder at the same path, with another package in it
        site.rename(tmp_path / "venv" / "old-site")
        site.mkdir()
        fake_package(site, "fake-pkg-for-lineage", "3.0")
        age(tmp_path / "venv")
    elif change == "replace a folder above":  # `mv venv venv.old && python -m venv venv`
        (tmp_path / "venv").rename(tmp_path / "venv.old")
        site.mkdir(parents=True)
        fake_package(site, "fake-pkg-for-lineage", "4.0")
        age(tmp_path / "venv")
    elif change == "append to sys.path":
        other.mkdir()
        fake_package(other, "another-fake-pkg", "5.0")
        sys.path.append(str(other))
    assert capture_cache.environment_if_cached() is None  # no longer valid: the next run start recomputes
    after = capture_cache.capture_environment()
    capture.reset_cache()
    assert after == capture.capture_environment()
    assert after != before


@linux_only
def test_a_kept_environment_is_checked_without_a_stat_of_each_folder(site: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    age(tmp_path / "venv")
    first = capture_cache.capture_environment()

    def no_full_key() -> Any:
        raise AssertionError("stat of every sys.path folder")

    monkeypatch.setattr(capture_cache, "_sys_path_key", no_full_key)
    for _ in range(3):
        assert capture_cache.environment_if_cached() == first
    fake_package(site, "another-fake-pkg", "2.0")
    monkeypatch.undo()
    assert capture_cache.environment_if_cached() is None


@pytest.mark.usefixtures("site")
def test_a_forked_child_checks_the_environment_itself(validation: str) -> None:
    first = capture_cache.capture_environment()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        ok = capture_cache.environment_if_cached() == first
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert capture_cache.environment_if_cached() == first


@needs_git
@linux_only
def test_a_configuration_folder_made_later_is_seen(gitconfig: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``$XDG_CONFIG_HOME/git/config`` whose folder does not exist yet: watched through
    the folder above, so making it and writing a configuration there is seen."""
    xdg = tmp_path / "xdg"
    xdg.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    gitconfig.unlink()
    first = capture_cache.capture_agent()
    assert first[1]["email"] is None
    assert capture_cache.capture_agent() == first and capture_cache.stats["agent_hits"] == 1
    entry = capture_cache._agent_entry
    assert entry is not None and entry.watcher is not None and entry.watch == []  # nothing left to lstat
    (xdg / "git").mkdir()
    (xdg / "git" / "config").write_text("[user]\n\temail = xdg@example.com\n")
    after = capture_cache.capture_agent()
    assert after[1]["email"] == "xdg@example.com" and after == capture.capture_agent(fresh=True)


def test_outside_git_the_script_is_hashed_again_after_the_recheck_period(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "job.py"
    script.write_text("print(1)\n")
    age(tmp_path)
    first = capture_cache.capture_code(str(tmp_path), entry_point=str(script))
    assert capture_cache.capture_code(str(tmp_path), entry_point=str(script)) == first
    assert capture_cache.stats["code_hits"] == 1
    monkeypatch.setattr(capture_cache, "GIT_RECHECK_SECONDS", 0.0)
    assert capture_cache.capture_code(str(tmp_path), entry_point=str(script)) == first
    assert capture_cache.stats["code_hits"] == 1  # (what no lstat shows: a write through a shared mmap)
