"""Per-process caches of what `capture` finds, re-validated by cheap checks.

Every run records its code, environment and the allow-listed environment variables.
Computing them from scratch costs a few git subprocesses (~3 ms each), reading every
installed package's metadata (~0.1 s) and filtering the environment: far more than
recording the run itself. This module keeps the last answer per process and hands it
out again while cheap *validators* show nothing it depends on has changed; when one
has, it asks `capture` again. What `capture` returns is never altered here: a cached
answer is exactly what `capture` returned when it was computed.

**Git** (`capture_code`). An answer for a work tree is reused while all of these hold
(docs/performance.md, "A run's fixed cost", and docs/concepts.md state it for users):

- the ``lstat`` (mtime and ctime in ns, size, inode, mode) of every file git listed
  as tracked or untracked-not-ignored (``git ls-files --cached --others
  --exclude-standard``), of every directory holding one of them (and their
  ancestors up to the root: adding or removing a file changes its directory's
  mtime), and of git's own state: ``HEAD``, the branch's ref file, ``packed-refs``,
  ``index``, the repository and user configuration and ``info/exclude``;
- the same ``GIT_*``, ``HOME`` and ``XDG_CONFIG_HOME`` environment;
- no validator was modified less than `RACY_SECONDS` before the answer was
  computed (a file written twice within one timestamp tick keeps its mtime, so a
  freshly written file is not trusted — git's "racy clean" problem);
- the answer is less than `GIT_RECHECK_SECONDS` old. This bounds what the
  validators cannot see: a file created in a directory that held no listed file
  (an empty directory, or one holding only ignored files), an ignore rule read
  from a file that is not watched (a custom ``core.excludesFile``).

Not cached at all (``git`` runs at every run start, as before): work trees with more
than `MAX_WATCHED` paths to watch (a ``stat`` each would cost more than git's own
check), work trees with submodules (their content is not visible to a ``stat`` of
the submodule's directory), and any ``GIT_DIR``/``GIT_WORK_TREE``-style override.

A directory with no ``.git`` in it or above it (and no ``GIT_DIR``) is not a work
tree: that needs no git at all. Files under the store's own ``.lineage/`` folder
are never watched: every run writes there.

**Environment** (`capture_environment`): reused while the directories of
``sys.path`` keep their mtimes (installing or removing a package adds or removes a
``*.dist-info`` entry in one of them). **Allow-listed variables** (`allowed_env`):
reused while the allow-listed names and their values are the same.
"""

from __future__ import annotations

import copy
import os
import stat
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from . import capture

__all__ = [
    "GIT_RECHECK_SECONDS",
    "MAX_WATCHED",
    "RACY_SECONDS",
    "allowed_env",
    "capture_code",
    "capture_environment",
    "reset",
    "stats",
]

#: an answer about a work tree is recomputed at least this often, whatever the
#: validators say (see the module docstring for what they cannot see)
GIT_RECHECK_SECONDS = 5.0

#: a validator modified less than this long before the answer was computed makes the
#: answer untrusted: file timestamps have a granularity (a few ms on ext4, 2 s on
#: FAT), and a second write within one tick leaves mtime unchanged
RACY_SECONDS = 2.0

#: above this many watched paths, a `stat` of each costs more than `git status`:
#: such work trees are not cached
MAX_WATCHED = 2000

# environment variables that decide where git looks; with any set, nothing is cached
_GIT_LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
                      "GIT_NAMESPACE")

# the store's folder (lineage.store.STORE_DIR) inside a work tree is never watched
_STORE_DIR = b".lineage"

_lock = threading.Lock()


@dataclass
class _GitEntry:
    dotgit: str  # the `.git` that was found from the base directory
    watch: list[bytes]  # absolute paths whose lstat is the validator
    signature: list[tuple[int, ...] | None]
    result: dict[str, Any]
    computed_at: float  # time.monotonic() when git ran


_git_cache: dict[tuple[str, str | None, tuple[tuple[str, str], ...]], _GitEntry] = {}
_env_cache: tuple[tuple[tuple[str, int | None], ...], tuple[str, dict[str, Any]]] | None = None
_allowed_cache: tuple[tuple[tuple[str, str], ...], dict[str, str]] | None = None

#: how often each cache answered without recomputing, or recomputed (for tests and
#: benchmarks: a test asserts a hit ran no git)
stats: dict[str, int] = {"git_hits": 0, "git_misses": 0, "git_uncached": 0, "no_repo": 0}


def reset() -> None:
    """Forget everything cached here (tests; after changing what a validator misses)."""
    global _env_cache, _allowed_cache
    with _lock:
        _git_cache.clear()
        _env_cache = None
        _allowed_cache = None
        for k in stats:
            stats[k] = 0


# ---------------------------------------------------------------------------
# code


def capture_code(path: str | None = None, *, entry_point: str | None = None) -> tuple[str, dict[str, Any]]:
    """`lineage.capture.capture_code`, with the git part cached as the module
    docstring says. Returns ``(identity hex, attrs)``, the same as `capture`'s."""
    return capture.capture_code(path, entry_point=entry_point, capture_git=_cached_git)


def _stat_sig(path: bytes) -> tuple[int, ...] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode)


def _signature(paths: list[bytes]) -> list[tuple[int, ...] | None]:
    return list(map(_stat_sig, paths))


def _env_key() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items()
                        if k.startswith("GIT_") or k in ("HOME", "XDG_CONFIG_HOME")))


def _find_dotgit(base: str) -> str | None:
    """The nearest ``.git`` (directory or file) at or above ``base``, as git finds it."""
    here = base
    while True:
        candidate = os.path.join(here, ".git")
        if os.path.lexists(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _git_dirs(dotgit: str) -> tuple[str, str] | None:
    """``(git dir, common dir)`` of a ``.git`` directory or ``gitdir:`` file (a linked
    worktree, a submodule), or None when it cannot be read."""
    try:
        if os.path.isdir(dotgit):
            gitdir = dotgit
        else:
            with open(dotgit, encoding="utf-8") as f:
                line = f.read().strip()
            if not line.startswith("gitdir:"):
                return None
            gitdir = os.path.normpath(os.path.join(os.path.dirname(dotgit), line[len("gitdir:"):].strip()))
        common = gitdir
        commondir_file = os.path.join(gitdir, "commondir")
        if os.path.isfile(commondir_file):
            with open(commondir_file, encoding="utf-8") as f:
                common = os.path.normpath(os.path.join(gitdir, f.read().strip()))
    except OSError:
        return None
    return gitdir, common


def _meta_paths(dotgit: str, gitdir: str, common: str) -> list[str]:
    """Git's own files whose change can change the answer."""
    paths = [dotgit, os.path.join(gitdir, "HEAD"), os.path.join(gitdir, "index"),
             os.path.join(common, "packed-refs"), os.path.join(common, "config"),
             os.path.join(gitdir, "config.worktree"), os.path.join(common, "info", "exclude"),
             os.path.join(common, "reftable", "tables.list")]
    try:
        with open(os.path.join(gitdir, "HEAD"), encoding="utf-8") as f:
            head = f.read().strip()
        if head.startswith("ref:"):
            paths.append(os.path.join(common, head[4:].strip()))
    except OSError:
        pass
    home = os.environ.get("HOME") or os.path.expanduser("~")
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    paths += [os.path.join(home, ".gitconfig"), os.path.join(xdg, "git", "config"),
              os.path.join(xdg, "git", "ignore"), "/etc/gitconfig"]
    for var in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM"):
        if os.environ.get(var):
            paths.append(os.environ[var])
    return paths


def _cached_git(base: str, entry_script: str | None = None) -> dict[str, Any] | None:
    """`capture.git_attrs` for ``base``, from the cache when still valid."""
    if any(os.environ.get(v) for v in _GIT_LOCATION_VARS):
        stats["git_uncached"] += 1
        return capture.git_attrs(base, entry_script)
    real = os.path.realpath(base)  # git -C resolves symlinks: walk the same path
    dotgit = _find_dotgit(real)
    if dotgit is None:
        # No `.git` anywhere above: git would fail to find a work tree. No subprocess.
        stats["no_repo"] += 1
        return None
    key = (real, entry_script, _env_key())
    with _lock:
        entry = _git_cache.get(key)
    if (entry is not None and entry.dotgit == dotgit and time.monotonic() - entry.computed_at < GIT_RECHECK_SECONDS
            and _signature(entry.watch) == entry.signature):
        stats["git_hits"] += 1
        return copy.deepcopy(entry.result)
    stats["git_misses"] += 1
    fresh = _compute(real, dotgit, entry_script)
    if isinstance(fresh, _GitEntry):
        with _lock:
            _git_cache[key] = fresh
        return copy.deepcopy(fresh.result)
    with _lock:
        _git_cache.pop(key, None)
    return fresh


def _compute(base: str, dotgit: str, entry_script: str | None = None) -> _GitEntry | dict[str, Any] | None:
    """Run git for ``base``: a cache entry when the answer may be cached, else the
    bare answer (see the module docstring for when it may not)."""
    started_ns = time.time_ns()
    started = time.monotonic()
    dirs = _git_dirs(dotgit)
    root = os.path.dirname(dotgit)
    listed = capture.run_git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard") if dirs else None
    if dirs is None or listed is None:
        return capture.git_attrs(base, entry_script)
    broot = os.fsencode(root)
    watch_dirs: set[bytes] = set()
    files: list[bytes] = []
    for rel in dict.fromkeys(n for n in listed.split(b"\0") if n):  # (unmerged files are listed per stage)
        if rel == _STORE_DIR or rel.startswith(_STORE_DIR + b"/"):
            continue  # lineage's own store: written by every run, never code
        files.append(os.path.join(broot, rel))
        parent = os.path.dirname(rel)
        while parent and parent not in watch_dirs:
            watch_dirs.add(parent)
            parent = os.path.dirname(parent)
    meta = [os.fsencode(p) for p in _meta_paths(dotgit, *dirs)]
    folders = [broot] + sorted(os.path.join(broot, d) for d in watch_dirs)
    watch = meta + folders + files
    if len(watch) > MAX_WATCHED:
        return capture.git_attrs(base, entry_script)
    before = _signature(watch)
    result = capture.git_attrs(base, entry_script)
    after = _signature(watch)
    if result is None or before != after or os.path.realpath(result.get("root") or "") != os.path.realpath(root):
        return result  # changed while git looked, or git sees another root (core.worktree)
    if any(sig is not None and stat.S_ISDIR(sig[4]) for sig in after[len(meta) + len(folders):]):
        return result  # a submodule (git lists its directory as an entry): its content is not watched
    # (mtime only: a content change within one tick leaves it alone; a chmod, a
    # replacement or a rename shows in the mode, inode or size, which have no tick)
    racy = started_ns - int(RACY_SECONDS * 1e9)
    if any(sig is not None and sig[0] >= racy for sig in after):
        return result  # something was written too recently to trust its timestamp
    return _GitEntry(dotgit, watch, after, result, started)


# ---------------------------------------------------------------------------
# environment and allow-listed variables


def _sys_path_key() -> tuple[tuple[str, int | None], ...]:
    out = []
    for entry in sys.path:
        try:
            mtime: int | None = os.stat(entry or ".").st_mtime_ns
        except OSError:
            mtime = None
        out.append((entry, mtime))
    return tuple(out)


def capture_environment() -> tuple[str, dict[str, Any]]:
    """`lineage.capture.capture_environment`, recomputed when a directory of
    ``sys.path`` changed (a package installed or removed in this process's life).
    Returns ``(identity hex, attrs)``; the attrs are a copy each time."""
    global _env_cache
    key = _sys_path_key()
    with _lock:
        cached = _env_cache
    if cached is None or cached[0] != key:
        if cached is not None:
            capture.reset_cache()  # (forgets the agent's lookups too: they are redone once)
        cached = (key, capture.capture_environment())
        with _lock:
            _env_cache = cached
    identity, attrs = cached[1]
    return identity, {**attrs, "packages": dict(attrs["packages"])}


_patterns: tuple[tuple[str, ...], tuple[frozenset[str], tuple[str, ...]]] | None = None


def _allow_patterns() -> tuple[frozenset[str], tuple[str, ...]]:
    global _patterns
    allow = tuple(capture.ENV_ALLOWLIST)
    if _patterns is None or _patterns[0] != allow:  # (made again if the list is changed)
        exact = frozenset(p for p in allow if not p.endswith("*"))
        prefixes = tuple(p[:-1] for p in allow if p.endswith("*"))
        _patterns = (allow, (exact, prefixes))
    return _patterns[1]


def environment_if_cached() -> tuple[str, dict[str, Any]] | None:
    """This process's environment capture when it is still valid, else None (no work)."""
    key = _sys_path_key()
    with _lock:
        cached = _env_cache
    if cached is None or cached[0] != key:
        return None
    identity, attrs = cached[1]
    return identity, {**attrs, "packages": dict(attrs["packages"])}


def remember_environment(value: tuple[str, dict[str, Any]]) -> None:
    """Keep an environment capture found elsewhere (the store's file cache) for this process."""
    global _env_cache
    with _lock:
        _env_cache = (_sys_path_key(), value)


def allowed_env() -> dict[str, str]:
    """`lineage.capture.allowed_env`, recomputed only when a variable the allow-list
    could admit was set, changed or removed. Returns a new dict each time."""
    global _allowed_cache
    exact, prefixes = _allow_patterns()
    env = os.environ
    key = tuple(sorted((k, env[k]) for k in env if k in exact or k.startswith(prefixes)))
    cached = _allowed_cache
    if cached is None or cached[0] != key:
        cached = (key, capture.allowed_env())
        _allowed_cache = cached
    return dict(cached[1])
