"""Shared fixtures: every store is a real SQLite file in a temporary folder, or (in the
modules that run on both backends) a fresh schema of a real PostgreSQL server."""

from __future__ import annotations

import faulthandler
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import lineage
from lineage.store import Store

IN_CI = bool(os.environ.get("CI"))


def require_program(name: str) -> str:
    """The path of a program a test needs. Outside CI a missing one skips the test
    (saying why); in CI, where .ci/run installs it, it fails."""
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is not installed, but .ci/run should have installed it")
        pytest.skip(f"{name} is not installed here (CI installs it via .ci/run)")
    return path


# ---------------------------------------------------------------------------
# a stuck test stops the run, saying where, instead of using up CI's 90 minutes
# (once a forked child deadlocked and its parent waited on it until CI's deadline)

#: seconds one test (setup, call, teardown) may take; stress tests get three times it
TEST_TIMEOUT_SECONDS = float(os.environ.get("LINEAGE_TEST_TIMEOUT", "300"))
_TERMINAL = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_TERMINAL] = os.dup(2)  # the real stderr: pytest captures fd 2 during tests


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Past the limit, faulthandler prints every thread's stack to the terminal and
    ends the run with a failure (a deadlock cannot be interrupted from Python)."""
    limit = TEST_TIMEOUT_SECONDS * (3 if item.get_closest_marker("stress") else 1)
    faulthandler.dump_traceback_later(limit, exit=True, file=item.config.stash[_TERMINAL])
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's store or identity."""
    monkeypatch.delenv("LINEAGE_DB", raising=False)
    monkeypatch.delenv("LINEAGE_DURABILITY", raising=False)
    for var in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID", "MLFLOW_TRACKING_URI",
                "MLFLOW_ENABLE_ASYNC_LOGGING"):
        monkeypatch.delenv(var, raising=False)  # MLflow's set_experiment exports these
    monkeypatch.setenv("LINEAGE_USER", "tester")
    monkeypatch.setenv("LINEAGE_EMAIL", "tester@example.com")
    monkeypatch.setenv("LINEAGE_NAME", "tester")  # not the developer's git user.name


@pytest.fixture
def fluent_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project folder whose store the fluent API of this process uses
    (``lineage.log_param`` and the rest, as ``import lineage as mlflow`` scripts do);
    afterwards the runs left active are ended and the store is closed and forgotten."""
    from lineage import fluent

    monkeypatch.chdir(tmp_path)
    fluent.set_tracking_uri(tmp_path / ".lineage" / "lineage.db")
    monkeypatch.setitem(fluent._default, "experiment", None)
    yield tmp_path
    while fluent.active_run() is not None:
        fluent.end_run()
    fluent.get_lineage().close()
    fluent._default["lg"] = None
    fluent._default["uri"] = None


# ---------------------------------------------------------------------------
# backends: a module that sets ``BACKENDS = ("sqlite", "postgres")`` runs each test
# using the store fixtures (store_path, store, lg) on both; `@pytest.mark.sqlite_only`
# keeps a test of SQLite's files on SQLite. PostgreSQL needs a server:
# LINEAGE_TEST_POSTGRES=$(bash .ci/postgres-up); without one these tests skip (in CI
# they fail). Each test gets a fresh schema of that database (``?schema=t_…``).

PG_URL = os.environ.get("LINEAGE_TEST_POSTGRES", "")


def _db_errors() -> tuple[type[BaseException], ...]:
    import sqlite3

    try:
        import psycopg
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


#: what a backend raises for a bug of ours (a constraint failure), on either backend
DB_ERRORS = _db_errors()
_PG_HOW = "PostgreSQL tests skipped: run them with LINEAGE_TEST_POSTGRES=$(bash .ci/postgres-up)"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = getattr(metafunc.module, "BACKENDS", ("sqlite",))
        if metafunc.definition.get_closest_marker("sqlite_only") is not None:
            backends = ("sqlite",)
        metafunc.parametrize("backend", list(backends))


@pytest.fixture
def backend() -> str:
    return "sqlite"


def require_postgres() -> str:
    """The URL of the test server; skips (fails in CI) when there is none."""
    if not PG_URL:
        if IN_CI:
            pytest.fail("LINEAGE_TEST_POSTGRES is not set, but CI must run the PostgreSQL tests (.ci/run starts a server)")
        pytest.skip(_PG_HOW)
    return PG_URL


_PG_ADMIN: list[Any] = []


def _pg_admin() -> Any:
    if not _PG_ADMIN:
        import psycopg

        try:
            _PG_ADMIN.append(psycopg.connect(require_postgres(), autocommit=True, connect_timeout=5))
        except psycopg.OperationalError as exc:
            if IN_CI:
                pytest.fail(f"the PostgreSQL server at LINEAGE_TEST_POSTGRES cannot be reached: {exc}")
            pytest.skip(f"the PostgreSQL server at LINEAGE_TEST_POSTGRES cannot be reached ({str(exc).strip()[:80]})")
    import psycopg

    try:
        _PG_ADMIN[0].execute("SELECT 1")
    except psycopg.Error:  # the server was restarted by a fault test
        _PG_ADMIN[0] = psycopg.connect(require_postgres(), autocommit=True, connect_timeout=5)
    return _PG_ADMIN[0]


class _RawPostgres:
    """A bare psycopg connection on a store's schema, shaped like the sqlite3
    connection tamper tests use (execute with ``?``, commit, close)."""

    def __init__(self, url: str) -> None:
        import psycopg

        from lineage.store.postgres import _split_url

        conninfo, schema = _split_url(url)
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.conn.execute(f'SET search_path TO "{schema}"')

    def execute(self, sql: str, params: Any = ()) -> Any:
        from lineage.store.postgres import translate

        return self.conn.execute(translate(sql, bool(params)), tuple(params) or None)

    def commit(self) -> None:
        pass

    def close(self) -> None:
        self.conn.close()


def raw_connect(db: Any) -> Any:
    """A connection that bypasses lineage (to tamper with a store): sqlite3 on a
    file, psycopg on a PostgreSQL store's URL."""
    import sqlite3

    if isinstance(db, str) and db.startswith(("postgresql://", "postgres://")):
        return _RawPostgres(db)
    return sqlite3.connect(db)


def pg_store_url(schema: str) -> str:
    """The URL of a store in ``schema`` of the test database."""
    return PG_URL + ("&" if "?" in PG_URL else "?") + f"schema={schema}"


@contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh schema of the test database (dropped after, with every session on it)."""
    import uuid

    admin = _pg_admin()
    schema = "t_" + uuid.uuid4().hex[:16]
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        admin = _pg_admin()
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN (%s, %s)",
                      (f"lineage:{schema}", f"lineage-run:{schema}"))
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@contextmanager
def store_location(backend: str, folder: Path) -> Iterator[Any]:
    """A new store's location on ``backend``: a file in ``folder``, or the URL of a
    fresh schema of the test database (dropped after). Property tests take one per
    example; most tests take `store_path`."""
    if backend == "sqlite":
        yield folder / ".lineage" / "lineage.db"
        return
    require_postgres()
    with pg_schema() as schema:
        yield pg_store_url(schema)


@pytest.fixture
def store_path(tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Where a test's store lives: a file in tmp_path, or (backend postgres) the URL of
    a fresh schema, with the working directory in tmp_path (where its artifacts go)."""
    if backend != "sqlite":
        monkeypatch.chdir(tmp_path)
        # (a CI server has just started: no grace for runs reconnecting after a restart)
        monkeypatch.setenv("LINEAGE_PG_RESTART_GRACE", "0")
    with store_location(backend, tmp_path) as location:
        yield location


@pytest.fixture
def store(store_path: Path) -> Store:
    s = Store(store_path, actor="agent:" + "0" * 64)
    yield s
    s.close()


@pytest.fixture
def lg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_path: Path) -> lineage.Lineage:
    """A Lineage on a fresh store, with the working directory in the temp folder."""
    monkeypatch.chdir(tmp_path)
    opened = lineage.open(store_path)
    yield opened
    opened.close()


def edit_and_rechain(db: str | Path, seq: int, edit: Callable[[dict[str, Any]], None]) -> None:
    """What an insider with write access to the store file ``db`` can do: edit event
    ``seq``'s payload (``edit`` changes the parsed body in place) and recompute its
    digest and every later hash, so the chain holds again and only a head kept
    elsewhere, or a signature, can tell."""
    import hashlib
    import json
    import sqlite3

    con = sqlite3.connect(db)
    body = json.loads(con.execute("SELECT payload FROM events WHERE seq = ?", (seq,)).fetchone()[0])
    edit(body)
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    con.execute("UPDATE events SET payload = ?, payload_digest = ? WHERE seq = ?",
                (text, hashlib.sha256(text.encode()).hexdigest(), seq))
    h = bytes(32)
    for s, type_, pd, rd in con.execute("SELECT seq, type, payload_digest, rows_digest FROM events ORDER BY seq").fetchall():
        h = hashlib.sha256(h + type_.encode() + b"\x00" + bytes.fromhex(pd) + bytes.fromhex(rd)).digest()
        con.execute("UPDATE events SET hash = ? WHERE seq = ?", (h.hex(), s))
    con.commit()
    con.close()


def require_module(name: str) -> Any:
    """Import a client library an integration test needs (tests/integration, run by
    `make integration` in .venv-integration). Outside CI a missing one skips, saying how
    to get it; in CI, where `make integration` installs it, it fails."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        if IN_CI:
            pytest.fail(f"{name} is not installed, but `make integration` should have installed it")
        pytest.skip(f"{name} is not installed here (run `make integration`)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's, through chromedriver and selenium), one per test
    module: at 1280x1600 and device scale 1, so measured sizes are CSS pixels, with the
    browser's console log kept, and no background networking (this machine has none)."""
    chromium = require_program("chromium")
    driver_path = require_program("chromedriver")
    pytest.importorskip("selenium")
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="lineage-chromium-")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={profile}", "--window-size=1280,1600",
                "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; its output, stripped."""
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def committed_repo(tmp_path: Path) -> Path:
    """A repository with one commit on `main`: train.py, src/util.py and .gitignore
    (ignoring *.log), with a test identity and no signing."""
    root = tmp_path / "proj"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "commit.gpgsign", "false")
    (root / "train.py").write_text("print('fit')\n")
    (root / ".gitignore").write_text("*.log\n")
    (root / "src").mkdir()
    (root / "src" / "util.py").write_text("X = 1\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "initial")
    return root


def build_quickstart(out: Path, db: str | None = None) -> Path:
    """Run examples/quickstart.py into ``out`` (store, data, out/audit.html) as the
    tester, whatever the environment says; returns ``out``. ``db``: record into that
    store instead (a PostgreSQL URL), with ``out`` as the working directory."""
    import importlib.util

    script = Path(__file__).parent.parent / "examples" / "quickstart.py"
    spec = importlib.util.spec_from_file_location("quickstart_example", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LINEAGE_USER", "tester")
        mp.setenv("LINEAGE_EMAIL", "tester@example.com")
        mp.delenv("LINEAGE_DB", raising=False)
        # the command its runs record is the example's, as `make demo` runs it, not
        # pytest's (whose length, with the test files named, changed the report's pages)
        mp.setattr(sys, "argv", [str(script)])
        if db is not None:
            out.mkdir(parents=True, exist_ok=True)
            mp.chdir(out)
        module.main(out, db)
    return out


def lock_holds(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A list that fills, for the rest of the test, with how long each outermost
    write transaction of ``store`` held the write lock (from its BEGIN's return to
    its commit): what other writers wait behind."""
    held: list[float] = []
    original = Store.transaction

    @contextmanager
    def timed(self: Store) -> Iterator[None]:
        outer = not self.in_transaction
        with original(self):
            t0 = time.perf_counter()  # the lock is taken: from here to the commit
            yield
        if self is store and outer:
            held.append(time.perf_counter() - t0)

    monkeypatch.setattr(Store, "transaction", timed)
    return held


def exit_code_as_nobody(check: Callable[[], int]) -> int:
    """``check()``'s exit code, run as the unprivileged user ``nobody`` in a forked
    child when the tests run as root (root reads and writes past any file mode, so
    a read-only store would not be read-only to it); run here otherwise."""
    if os.geteuid() != 0:
        return check()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's lines are not traced
        code = 4
        try:
            os.setgid(65534)
            os.setuid(65534)
            code = check()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(child_status(pid))


#: seconds a forked child of a test may take before it is killed and the test fails
CHILD_SECONDS = 60.0


def child_status(pid: int, seconds: float = CHILD_SECONDS) -> int:
    """The wait status of the forked child ``pid`` (``os.waitpid``'s), waiting at most
    ``seconds``: a child still running then is killed and the test fails. A hung
    child left behind would keep the run's output pipe open after pytest ends."""
    deadline = time.monotonic() + seconds
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child {pid} was still running after {seconds:.0f} s (killed)")
        time.sleep(0.01)
