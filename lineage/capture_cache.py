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

- nothing changed among the *watched paths*: every file git listed as tracked or
  untracked-not-ignored (``git ls-files --cached --others --exclude-standard``), every
  directory holding one of them (and their ancestors up to the root), and git's own
  state: ``HEAD``, the branch's ref file, ``packed-refs``, ``index``, the repository
  and user configuration, ``info/exclude`` and ``info/attributes``. "Changed" is
  judged one of two ways:

  * on Linux, by **inotify** (`inotify(7)`): when the answer is computed, one inotify
    instance watches every directory above (and the directories of git's own files
    that live in the repository), *before* git runs, so nothing that happens while
    git looks or afterwards is missed. A run start then drains the instance with one
    non-blocking ``read``, whatever the number of files. These events make the answer
    stale: a creation, deletion or rename of any entry in a watched work-tree
    directory (a new untracked file, a new folder, a removed file), a write, close
    after writing or attribute change of a watched file (ignored files may be written
    freely: a ``*.pyc``, a log), any event on one of git's watched files, a watched
    directory removed, moved or unmounted, and a queue overflow. The user's and the
    system's configuration (``~/.gitconfig``, ``$XDG_CONFIG_HOME/git/…``,
    ``/etc/gitconfig``, ``GIT_CONFIG_GLOBAL``/``GIT_CONFIG_SYSTEM``) are watched the
    same way, by name in their folders, when each is a regular file or missing; one
    that is something else (``GIT_CONFIG_GLOBAL=/dev/null``: a device is written to
    all the time) is checked by ``lstat`` at every run start. A file whose directory
    does not exist (``~/.config/git/config`` without ``~/.config/git``) is watched
    through the nearest folder above that does, for the name leading down (its
    creation is an event); when that folder appeared before the watch began, by
    ``lstat``;
  * otherwise (not Linux, inotify refused by a sandbox, ``fs.inotify.max_user_watches``
    or ``max_user_instances`` reached, more than `MAX_WATCHERS` instances in this
    process), by the ``lstat`` (mtime and ctime in ns, size, inode, mode) of every
    watched path at every run start (adding or removing a file changes its
    directory's mtime);

- the same ``GIT_*``, ``HOME`` and ``XDG_CONFIG_HOME`` environment;
- the same process: a forked child never reads its parent's inotify instance (an
  event read by one is lost to the other); it computes its own answer;
- no watched path was modified less than `RACY_SECONDS` before the answer was
  computed (a file written twice within one timestamp tick keeps its mtime, so a
  freshly written file is not trusted — git's "racy clean" problem; it also covers a
  file created between ``ls-files`` and the start of the watch, whose directory's
  mtime is then fresh);
- the answer is less than `GIT_RECHECK_SECONDS` old. This bounds what neither check
  can see: a file created in a directory that held no listed file (an empty
  directory, or one holding only ignored files), an ignore rule read from a file
  that is not watched (a custom ``core.excludesFile``, a configuration ``include``),
  and what inotify does not report: writes through a shared ``mmap``, changes made
  by another machine on a network file system (NFS, SMB, FUSE), an edit through a
  hard link in an unwatched directory.

Not cached at all (``git`` runs at every run start, as before): work trees with more
than `MAX_WATCHED` paths to watch (computing an answer takes an ``lstat`` of each,
for the racy check, and without inotify so does every run start: more than git's own
check), work trees with submodules (their content is not visible to a ``stat`` of
the submodule's directory), and any ``GIT_DIR``/``GIT_WORK_TREE``-style override.

A directory with no ``.git`` in it or above it (and no ``GIT_DIR``) is not a work
tree: that needs no git at all. Files under the store's own ``.lineage/`` folder
are never watched: every run writes there.

`fswatch.open_inotify` is the one place an inotify instance is made: replacing it
with a function that raises `OSError` shows what happens where the kernel refuses
inotify (the ``lstat`` rule above; tests do this).

**The whole code answer** (`capture_code`): what `capture` adds around git's answer
(finding the code's folder and the entry script, resolving both with ``realpath``,
walking up for ``.git``, outside git hashing the script) is kept too, per arguments,
working directory, ``sys.argv[0]`` and ``GIT_*``/``HOME`` environment, while git's
answer inside it is reused (above) and an ``lstat`` of each path looked at reads the
same: the type of every folder from ``/`` down to the code's folder and to the entry
script, whether each ``.git`` looked for on the way up exists, and the entry
script's mtime, ctime, size, inode and mode. Kept only when none of those paths is
a symlink and none holds ``..`` (then resolving is a function of those types alone:
a folder replaced by a symlink, a re-pointed symlink, a new ``.git`` below the one
found, each changes an ``lstat``), and not when the script was modified less than
`RACY_SECONDS` before (outside git its digest is the identity); recomputed at least
every `GIT_RECHECK_SECONDS`, outside git too.

**Agent** (`capture_agent`): git's ``user.name``/``user.email``, the login name and
the host, asked again (two ``git config`` calls) when any of these changed: the
``GIT_*``, ``HOME``, ``XDG_CONFIG_HOME``, ``LOGNAME``, ``USER``, ``LNAME``,
``USERNAME`` or ``LINEAGE_*`` overrides, the working directory, the user id, or a
file git's answer may come from (each ``.git`` looked for from the working
directory up, the repository's ``config``/``config.worktree``, the user's and the
system's configuration, ``/etc/passwd``; by inotify or ``lstat`` as for git, with the
same `RACY_SECONDS` rule for what is ``lstat``-checked); and at least every
`GIT_RECHECK_SECONDS` (a configuration ``include`` is not watched, nor the host name).

**Environment** (`capture_environment`): reused while the directories of
``sys.path`` keep their mtimes (installing or removing a package adds or removes a
``*.dist-info`` entry in one of them). **Allow-listed variables** (`allowed_env`):
reused while the allow-listed names and their values are the same.

**Environment variables** are not read name by name at every call: a copy of
``os.environ``'s underlying dict is compared with the last one seen (under 1 µs),
and the filtered keys above (``GIT_*``, the agent's variables, the allow-list) are
recomputed only when it differs. What changes ``os.environ`` (assignment, ``pop``,
``monkeypatch.setenv``) is seen by the next call; ``os.putenv`` alone was never seen,
since `capture` reads ``os.environ``.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import capture, fswatch

__all__ = [
    "GIT_RECHECK_SECONDS",
    "MAX_WATCHED",
    "MAX_WATCHERS",
    "RACY_SECONDS",
    "allowed_env",
    "capture_agent",
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

#: at most this many inotify instances per process (one per cached answer; the kernel
#: allows a user 128 by default, shared by all their processes): beyond, ``lstat``
MAX_WATCHERS = 8

# environment variables that decide where git looks; with any set, nothing is cached
_GIT_LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
                      "GIT_NAMESPACE")

# the store's folder (lineage.store.STORE_DIR) inside a work tree is never watched
_STORE_DIR = b".lineage"

_lock = threading.Lock()


def _new_lock_in_child() -> None:
    # a fork taken while another thread held the lock would leave the child's copy
    # held forever
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def _watch(work_folders: dict[bytes, set[bytes]], git_files: list[bytes]) -> tuple[fswatch.Watcher | None, list[bytes]]:
    """An inotify instance watching ``work_folders`` (folder -> names in it that
    matter) and the folders of ``git_files``, and the git files it cannot watch (their
    folder does not exist): those stay ``lstat``-checked. ``(None, git_files)`` when
    inotify is unavailable or out of watches: everything is ``lstat``-checked then."""
    with _lock:
        watchers = sum(1 for e in _git_cache.values() if e.watcher is not None)
    if watchers >= MAX_WATCHERS:
        return None, git_files
    try:
        fd = fswatch.open_inotify()
    except OSError:
        return None, git_files
    watcher = fswatch.Watcher(fd, os.getpid())
    unwatched: list[bytes] = []
    try:
        for folder, names in work_folders.items():
            watcher.add(folder, names, work_tree=True)
        by_folder: dict[bytes, set[bytes]] = {}
        for path in git_files:
            by_folder.setdefault(os.path.dirname(path), set()).add(os.path.basename(path))
        for folder, names in by_folder.items():
            try:
                watcher.add(folder, names, work_tree=False)
            except OSError as exc:
                if exc.errno in fswatch.OUT_OF_WATCHES:
                    raise
                if not (exc.errno == errno.ENOENT and _watch_above(watcher, folder)):
                    unwatched += [os.path.join(folder, n) for n in names]  # no such folder (yet)
    except OSError:
        watcher.close()  # out of watches, or a work-tree folder gone already: lstat instead
        return None, git_files
    return watcher, unwatched


def _watch_above(watcher: fswatch.Watcher, missing: bytes) -> bool:
    """Watch the nearest existing folder above the ``missing`` one for the name that
    leads down to it (``~/.config`` for ``git`` when ``~/.config/git/config`` is
    looked for): its creation is then an event, and nothing below needs an ``lstat``
    until it exists. False when that cannot be done: the caller ``lstat``s instead."""
    child = missing
    while True:
        parent = os.path.dirname(child)
        if parent == child:
            return False
        try:
            watcher.add(parent, {os.path.basename(child)}, work_tree=False)
        except OSError as exc:
            if exc.errno in fswatch.OUT_OF_WATCHES:
                raise
            if exc.errno != errno.ENOENT:
                return False
            child = parent
            continue
        # (created before the watch began: no event will tell, so the caller lstats)
        return _stat_sig(child) is None


class _Validated:
    """An answer kept while its validators show no change: an inotify watcher on
    what it can watch, and the ``lstat`` signature of the rest (``watch``)."""

    watch: list[bytes]
    signature: list[tuple[int, ...] | None]
    watcher: fswatch.Watcher | None

    def unchanged(self) -> bool:
        """True while the validators show no change (call with ``_lock`` held)."""
        if self.watcher is not None and not self.watcher.unchanged():
            return False
        return _signature(self.watch) == self.signature

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()


@dataclass
class _GitEntry(_Validated):
    dotgit: str  # the `.git` that was found from the base directory
    watch: list[bytes]  # absolute paths whose lstat is the validator (with a watcher: what it cannot watch)
    signature: list[tuple[int, ...] | None]
    result: dict[str, Any]
    computed_at: float  # time.monotonic() when git ran
    watcher: fswatch.Watcher | None = None  # inotify on the rest of the watched paths


_git_cache: dict[tuple[str, str | None, tuple[tuple[str, str], ...]], _GitEntry] = {}
_env_cache: _EnvEntry | None = None
_allowed_cache: tuple[tuple[tuple[str, str], ...], dict[str, str]] | None = None

#: how often each cache answered without recomputing, or recomputed (for tests and
#: benchmarks: a test asserts a hit ran no git); ``git_inotify`` / ``git_lstat``: how
#: many git answers were kept under each way of re-validating them
stats: dict[str, int] = {"git_hits": 0, "git_misses": 0, "git_uncached": 0, "no_repo": 0,
                         "git_inotify": 0, "git_lstat": 0, "code_hits": 0, "agent_hits": 0, "agent_misses": 0}


def reset() -> None:
    """Forget everything cached here (tests; after changing what a validator misses)."""
    global _env_cache, _allowed_cache, _allowed_seen, _env_key_memo, _agent_entry, _agent_env_memo
    with _lock:
        for entry in _git_cache.values():
            entry.close()
        _git_cache.clear()
        _code_memo.clear()
        if _agent_entry is not None:
            _agent_entry.close()
        _agent_entry = None
        if _env_cache is not None:
            _env_cache.close()
        _env_cache = None
        _allowed_cache = _allowed_seen = None
        _env_key_memo = _agent_env_memo = None
        for k in stats:
            stats[k] = 0


# ---------------------------------------------------------------------------
# code


@dataclass
class _CodeMemo:
    """A whole `capture_code` answer, and what finding its paths depended on."""

    git: tuple[tuple[Any, ...], _GitEntry] | None  # the git answer it holds (key, entry); None outside git
    paths: list[tuple[str, bool]]  # every path whose lstat decided the answer (True: the entry script)
    kinds: list[tuple[int, ...] | None]  # what lstat said of each, when the answer was computed
    answer: tuple[str, dict[str, Any]]
    computed_at: float  # time.monotonic()

    def valid(self) -> bool:
        """True while the git answer is still reused and every path reads the same
        (call with ``_lock`` held)."""
        if time.monotonic() - self.computed_at >= GIT_RECHECK_SECONDS:
            return False  # (outside git too: a write through a shared mmap leaves the script's mtime)
        if self.git is not None:
            key, entry = self.git
            if (_git_cache.get(key) is not entry or time.monotonic() - entry.computed_at >= GIT_RECHECK_SECONDS
                    or not entry.unchanged()):
                return False
        return _kinds(self.paths) == self.kinds


# (path, entry_point, sys.argv[0], working directory, git's environment) -> answer
_code_memo: dict[tuple[Any, ...], _CodeMemo] = {}
_CODE_MEMO_SIZE = 32


def capture_code(path: str | None = None, *, entry_point: str | None = None,
                 inline: str | None = None) -> tuple[str, dict[str, Any]]:
    """`lineage.capture.capture_code`, with the git part cached as the module
    docstring says. Returns ``(identity hex, attrs)``, the same as `capture`'s.

    The whole answer is kept too, for the same arguments, working directory,
    ``sys.argv[0]`` and ``GIT_*``/``HOME`` environment, while the git answer it holds
    is reused and an ``lstat`` of each path that was looked at to find it reads the
    same: every folder from ``/`` down to the code's folder and to the entry script,
    each ``.git`` looked for on the way up, and the entry script itself (type, and for
    the script its size, mtime, ctime and inode: outside git the script's digest is
    the identity). Only when none of them is a symlink and no path holds ``..``: then
    resolving a path is a function of those types alone. Not kept when the script
    was modified less than `RACY_SECONDS` before, nor for longer than
    `GIT_RECHECK_SECONDS` (outside git as well)."""
    env_key, located = _env_state()
    try:
        cwd: str | None = os.getcwd()
    except OSError:  # (the working directory was removed)
        cwd = None
    argv0 = sys.argv[0] if entry_point is None and sys.argv else None
    key = (path, entry_point, argv0, cwd, env_key, inline)
    if not located and cwd is not None:
        with _lock:
            memo = _code_memo.get(key)
            hit = memo is not None and memo.valid()
            if memo is not None and not hit:
                del _code_memo[key]
        if hit:
            assert memo is not None
            stats["code_hits"] += 1
            stats["git_hits" if memo.git is not None else "no_repo"] += 1
            return memo.answer[0], dict(memo.answer[1])  # (flat: a copy is a deep copy)
    paths = None if located or cwd is None else _code_paths(path, entry_point, argv0, cwd)
    started_ns = time.time_ns()
    started = time.monotonic()
    before = _kinds(paths) if paths is not None else None
    found: dict[str, Any] = {}
    answer = capture.capture_code(path, entry_point=entry_point, inline=inline,
                                  capture_git=lambda base, script: _cached_git(base, script, found))
    if paths is None or before is None or not found:
        return answer
    after = _kinds(paths)
    racy = started_ns - int(RACY_SECONDS * 1e9)
    if (after != before or any(k is not None and stat.S_ISLNK(k[-1]) for k in after)
            or any(full and k is not None and k[0] >= racy for (_p, full), k in zip(paths, after))):
        return answer  # a symlink, something moved while we looked, or a script too fresh to trust
    memo = _CodeMemo(found.get("entry"), paths, after, (answer[0], dict(answer[1])), started)
    with _lock:
        if len(_code_memo) >= _CODE_MEMO_SIZE:
            _code_memo.clear()
        _code_memo[key] = memo
    return answer


def _kinds(paths: list[tuple[str, bool]]) -> list[tuple[int, ...] | None]:
    """What ``lstat`` says of each path: its type (the mode's format bits), or for
    the entry script its mtime, ctime, size, inode and mode (the mode last); None
    when it does not exist."""
    out: list[tuple[int, ...] | None] = []
    for p, full in paths:
        try:
            st = os.lstat(p)
        except OSError:
            out.append(None)
            continue
        out.append((st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode) if full
                   else (stat.S_IFMT(st.st_mode),))
    return out


def _code_paths(path: str | None, entry_point: str | None, argv0: str | None,
                cwd: str) -> list[tuple[str, bool]] | None:
    """The paths `capture.capture_code` looks at to find the code (see `capture_code`),
    or None when the answer is not kept (a path with ``..`` in it)."""
    start = os.fspath(path) if path is not None else cwd
    candidate = entry_point if entry_point is not None else (argv0 if argv0 not in ("", "-c", "-m") else None)
    if ".." in start.split(os.sep) or (candidate and ".." in candidate.split(os.sep)):
        return None  # (`a/..` goes through `a`'s target when `a` is a symlink: not the same as normpath)
    out: dict[str, bool] = {}

    def add(p: str, full: bool = False) -> None:
        here = os.sep
        for part in p.split(os.sep):
            if part and part != ".":
                here = os.path.join(here, part)
                out.setdefault(here, False)
        if full:
            out[os.path.normpath(p)] = True

    start = os.path.normpath(os.path.join(cwd, start))
    add(start)
    base = start if os.path.isdir(start) else os.path.dirname(start)
    if candidate:
        add(os.path.join(cwd, candidate), True)  # (as capture resolves it: from the working directory,
        if not os.path.isabs(candidate):  # then from the code's folder)
            add(os.path.join(base, candidate), True)
    here = base
    while True:  # every `.git` looked for, up to the first found (as `_find_dotgit` walks)
        dotgit = os.path.join(here, ".git")
        out.setdefault(dotgit, False)
        parent = os.path.dirname(here)
        if parent == here or os.path.lexists(dotgit):
            break
        here = parent
    return list(out.items())


def _stat_sig(path: bytes) -> tuple[int, ...] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode)


def _signature(paths: list[bytes]) -> list[tuple[int, ...] | None]:
    return list(map(_stat_sig, paths))


_environ_seen: dict[Any, Any] | None = None
_environ_generation = 0


def _environ_gen() -> int:
    """A number that changes whenever ``os.environ`` changed since the last call.

    A copy of the mapping's underlying dict and one comparison (under 1 µs for 50
    variables), instead of decoding and filtering every name at every run start: the
    keys below are recomputed only when it moves. (A Python whose ``os.environ`` keeps
    no such dict gets a new number every call: nothing is remembered.)"""
    global _environ_seen, _environ_generation
    data = getattr(os.environ, "_data", None)
    if not isinstance(data, dict):
        _environ_generation += 1
    elif data != _environ_seen:
        _environ_seen = data.copy()
        _environ_generation += 1
    return _environ_generation


_env_key_memo: tuple[int, tuple[tuple[str, str], ...], bool] | None = None


def _env_state() -> tuple[tuple[tuple[str, str], ...], bool]:
    """The ``GIT_*``, ``HOME`` and ``XDG_CONFIG_HOME`` variables, sorted, and whether
    one of `_GIT_LOCATION_VARS` is set (then nothing about git is cached)."""
    global _env_key_memo
    gen = _environ_gen()
    memo = _env_key_memo
    if memo is not None and memo[0] == gen:
        return memo[1], memo[2]
    env = os.environ  # (names first, values of the few that match: 11 µs instead of 51 µs for all items)
    key = tuple(sorted((k, env[k]) for k in env if k.startswith("GIT_") or k in ("HOME", "XDG_CONFIG_HOME")))
    located = any(v for k, v in key if k in _GIT_LOCATION_VARS)
    _env_key_memo = (gen, key, located)
    return key, located


def _env_key() -> tuple[tuple[str, str], ...]:
    """The ``GIT_*``, ``HOME`` and ``XDG_CONFIG_HOME`` variables, sorted."""
    return _env_state()[0]


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


def _meta_paths(dotgit: str, gitdir: str, common: str) -> tuple[list[str], list[str]]:
    """Git's own files whose change can change the answer: ``(those in the
    repository, the user's and system's configuration)``."""
    paths = [dotgit, os.path.join(gitdir, "HEAD"), os.path.join(gitdir, "index"),
             os.path.join(common, "packed-refs"), os.path.join(common, "config"),
             os.path.join(gitdir, "config.worktree"), os.path.join(common, "info", "exclude"),
             os.path.join(common, "info", "attributes"), os.path.join(common, "reftable", "tables.list")]
    try:
        with open(os.path.join(gitdir, "HEAD"), encoding="utf-8") as f:
            head = f.read().strip()
        if head.startswith("ref:"):
            paths.append(os.path.join(common, head[4:].strip()))
    except OSError:
        pass
    return paths, _user_config_paths()


def _user_config_paths() -> list[str]:
    """The user's and the system's git configuration (and global ignore) files."""
    home = os.environ.get("HOME") or os.path.expanduser("~")
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    outside = [os.path.join(home, ".gitconfig"), os.path.join(xdg, "git", "config"),
               os.path.join(xdg, "git", "ignore"), "/etc/gitconfig"]
    for var in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM"):
        if os.environ.get(var):
            outside.append(os.environ[var])
    return outside


def _cached_git(base: str, entry_script: str | None = None,
                found: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """`capture.git_attrs` for ``base``, from the cache when still valid. ``found``,
    when given, gets ``entry`` (the cache key and entry the answer came from) or
    ``no_repo`` when the answer may be kept with its paths (`capture_code`)."""
    env_key, located = _env_state()
    if located:
        stats["git_uncached"] += 1
        return capture.git_attrs(base, entry_script)
    real = os.path.realpath(base)  # git -C resolves symlinks: walk the same path
    dotgit = _find_dotgit(real)
    if dotgit is None:
        # No `.git` anywhere above: git would fail to find a work tree. No subprocess.
        stats["no_repo"] += 1
        if found is not None:
            found["no_repo"] = True
        return None
    key = (real, entry_script, env_key)
    with _lock:
        entry = _git_cache.get(key)
        # (checked under the lock: draining the inotify instance takes its events, and
        # a replaced entry's instance is closed under it)
        hit = (entry is not None and entry.dotgit == dotgit
               and time.monotonic() - entry.computed_at < GIT_RECHECK_SECONDS and entry.unchanged())
        if entry is not None and not hit:
            del _git_cache[key]
            entry.close()  # (frees its inotify instance before git runs again)
    if hit:
        assert entry is not None
        stats["git_hits"] += 1
        if found is not None:
            found["entry"] = (key, entry)
        return dict(entry.result)  # (flat: str, bool and None values; a copy is a deep copy)
    stats["git_misses"] += 1
    fresh = _compute(real, dotgit, entry_script)
    with _lock:
        old = _git_cache.pop(key, None)  # (another thread's answer, computed meanwhile)
        if old is not None:
            old.close()
        if isinstance(fresh, _GitEntry):
            _git_cache[key] = fresh
            stats["git_inotify" if fresh.watcher is not None else "git_lstat"] += 1
            if found is not None:
                found["entry"] = (key, fresh)
    return dict(fresh.result) if isinstance(fresh, _GitEntry) else fresh


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
    names: dict[bytes, set[bytes]] = {b"": {b".git"}}  # folder (relative) -> its entries that matter
    for rel in dict.fromkeys(n for n in listed.split(b"\0") if n):  # (unmerged files are listed per stage)
        if rel == _STORE_DIR or rel.startswith(_STORE_DIR + b"/"):
            continue  # lineage's own store: written by every run, never code
        files.append(os.path.join(broot, rel))
        parent = os.path.dirname(rel)
        names.setdefault(parent, set()).add(os.path.basename(rel))
        while parent and parent not in watch_dirs:
            watch_dirs.add(parent)
            names.setdefault(os.path.dirname(parent), set()).add(os.path.basename(parent))
            parent = os.path.dirname(parent)
    in_repo, outside = _meta_paths(dotgit, *dirs)
    meta = [os.fsencode(p) for p in in_repo + outside]
    folders = [broot] + sorted(os.path.join(broot, d) for d in watch_dirs)
    watch = meta + folders + files
    if len(watch) > MAX_WATCHED:
        return capture.git_attrs(base, entry_script)
    # The watch starts before git runs: whatever changes from here on is an event.
    # (The `.git` entry is watched as a name in the root folder.)
    # (the user's configuration is watched too, by name in its folder, when it is a
    # regular file or missing: not a device such as GIT_CONFIG_GLOBAL=/dev/null)
    regular = [p for p in outside if _stat_sig(os.fsencode(p)) is None or os.path.isfile(p)]
    watcher, unwatched = _watch({os.path.join(broot, d) if d else broot: n for d, n in names.items()},
                                [os.fsencode(p) for p in in_repo[1:] + regular])
    try:
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
        if watcher is None:
            return _GitEntry(dotgit, watch, after, result, started)
        if not watcher.unchanged():
            return result  # (git's own index refresh while it looked, say)
        seen = dict(zip(watch, after))  # (the lstats git's answer was checked against)
        rest = [os.fsencode(p) for p in outside if p not in regular] + unwatched
        entry = _GitEntry(dotgit, rest, [seen[p] for p in rest], result, started, watcher)
        watcher = None  # (kept by the entry)
        return entry
    finally:
        if watcher is not None:
            watcher.close()


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


@dataclass
class _EnvEntry:
    """An environment capture and how to tell cheaply that ``sys.path`` still holds it."""

    key: tuple[tuple[str, int | None], ...]  # `_sys_path_key` when it was kept: the rule
    value: tuple[str, dict[str, Any]]
    path: list[str] | None = None  # sys.path as the watcher was set up for it
    stat_checked: list[tuple[str, int | None]] = field(default_factory=list)  # entries not watched
    watcher: fswatch.Watcher | None = None
    armed_at: float = 0.0

    def valid(self) -> bool:
        """True while `_sys_path_key` would still equal ``key`` (call with ``_lock``
        held). Without a full key when the watcher shows no event on any watched
        folder, ``sys.path`` is the same list and the folders it could not watch keep
        their mtimes; at least every `GIT_RECHECK_SECONDS` (a mount over a folder sends
        no event), or when the watcher saw something, by the full key as before."""
        if (self.watcher is not None and self.path == sys.path
                and time.monotonic() - self.armed_at < GIT_RECHECK_SECONDS and self.watcher.unchanged()
                and _mtimes([e for e, _m in self.stat_checked]) == [m for _e, m in self.stat_checked]):
            return True
        if _sys_path_key() != self.key:
            return False
        if self.watcher is None or self.watcher.stale or self.path != sys.path:
            self.close()
            self._arm()  # (an event that did not change an mtime: watch again)
        else:
            self.armed_at = time.monotonic()
        return True

    def _arm(self) -> None:
        """Watch the folders of ``sys.path`` (on Linux; nothing when inotify is refused)."""
        try:
            fd = fswatch.open_inotify()
        except OSError:
            return
        watcher = fswatch.Watcher(fd, os.getpid())
        path = list(sys.path)
        stat_checked: list[str] = []
        try:
            for entry in path:
                if (not entry or not os.path.isabs(entry) or os.path.normpath(entry) != os.path.realpath(entry)
                        or not os.path.isdir(entry)):
                    stat_checked.append(entry)  # the working directory, a zip file, missing, through a symlink
                    continue
                here = os.path.normpath(entry)
                # entries coming and going, and the folder itself re-dated or removed...
                watcher.add(os.fsencode(here), {b""}, work_tree=True)
                while True:  # ...and each folder above, for the name leading down to it
                    parent = os.path.dirname(here)
                    if parent == here:
                        break
                    watcher.add(os.fsencode(parent), {os.fsencode(os.path.basename(here))}, work_tree=False)
                    here = parent
        except OSError:
            watcher.close()
            return
        if _sys_path_key() != self.key:  # (changed before the watch began: the full key decides)
            watcher.close()
            return
        self.path, self.watcher, self.armed_at = path, watcher, time.monotonic()
        self.stat_checked = list(zip(stat_checked, _mtimes(stat_checked)))

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
        self.watcher = None


def _mtimes(entries: list[str]) -> list[int | None]:
    out: list[int | None] = []
    for entry in entries:
        try:
            out.append(os.stat(entry or ".").st_mtime_ns)
        except OSError:
            out.append(None)
    return out


def _keep_environment(key: tuple[tuple[str, int | None], ...], value: tuple[str, dict[str, Any]]) -> None:
    global _env_cache
    entry = _EnvEntry(key, value)
    entry._arm()
    with _lock:
        if _env_cache is not None:
            _env_cache.close()
        _env_cache = entry


def _valid_environment() -> _EnvEntry | None:
    with _lock:
        cached = _env_cache
        return cached if cached is not None and cached.valid() else None


def capture_environment() -> tuple[str, dict[str, Any]]:
    """`lineage.capture.capture_environment`, recomputed when a directory of
    ``sys.path`` changed (a package installed or removed in this process's life).
    Returns ``(identity hex, attrs)``; the attrs are a copy each time."""
    cached = _valid_environment()
    if cached is None:
        with _lock:
            had = _env_cache is not None
        if had:
            capture.reset_cache()  # (forgets the agent's lookups too: they are redone once)
        key = _sys_path_key()
        value = capture.capture_environment()
        _keep_environment(key, value)
        identity, attrs = value
    else:
        identity, attrs = cached.value
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
    cached = _valid_environment()
    if cached is None:
        return None
    identity, attrs = cached.value
    return identity, {**attrs, "packages": dict(attrs["packages"])}


def remember_environment(value: tuple[str, dict[str, Any]]) -> None:
    """Keep an environment capture found elsewhere (the store's file cache) for this process."""
    _keep_environment(_sys_path_key(), value)


_allowed_seen: tuple[int, tuple[str, ...], dict[str, str]] | None = None


def allowed_env() -> dict[str, str]:
    """`lineage.capture.allowed_env`, recomputed only when a variable the allow-list
    could admit was set, changed or removed. Returns a new dict each time."""
    global _allowed_cache, _allowed_seen
    gen = _environ_gen()
    seen = _allowed_seen
    if seen is not None and seen[0] == gen and seen[1] is capture.ENV_ALLOWLIST:
        return dict(seen[2])  # (os.environ and the allow-list untouched since: no filtering)
    exact, prefixes = _allow_patterns()
    env = os.environ
    key = tuple(sorted((k, env[k]) for k in env if k in exact or k.startswith(prefixes)))
    cached = _allowed_cache
    if cached is None or cached[0] != key:
        cached = (key, capture.allowed_env())
        _allowed_cache = cached
    _allowed_seen = (gen, capture.ENV_ALLOWLIST, cached[1])
    return dict(cached[1])


# ---------------------------------------------------------------------------
# agent

# what `capture.capture_agent` reads from the environment, besides ``GIT_*``: where
# git's user configuration is, the login name (`getpass.getuser`) and the overrides
_AGENT_VARS = frozenset({"HOME", "XDG_CONFIG_HOME", "LOGNAME", "USER", "LNAME", "USERNAME",
                         "LINEAGE_USER", "LINEAGE_EMAIL", "LINEAGE_NAME"})


@dataclass
class _AgentEntry(_Validated):
    env: tuple[tuple[str, str], ...]
    cwd: str | None  # (git reads the configuration of the repository it is started in)
    uid: int | None
    watch: list[bytes]  # paths whose lstat is the validator (with a watcher: what it cannot watch)
    signature: list[tuple[int, ...] | None]
    answer: tuple[str, dict[str, Any]]
    computed_at: float
    watcher: fswatch.Watcher | None = None


_agent_entry: _AgentEntry | None = None
_agent_env_memo: tuple[int, tuple[tuple[str, str], ...]] | None = None


def _agent_env() -> tuple[tuple[str, str], ...]:
    global _agent_env_memo
    gen = _environ_gen()
    memo = _agent_env_memo
    if memo is not None and memo[0] == gen:
        return memo[1]
    env = os.environ
    key = tuple(sorted((k, env[k]) for k in env if k.startswith("GIT_") or k in _AGENT_VARS))
    _agent_env_memo = (gen, key)
    return key


def _agent_paths(cwd: str | None) -> list[bytes]:
    """The files git's ``user.name`` and ``user.email`` can come from, seen from
    ``cwd``: each ``.git`` looked for on the way up (a ``git init`` below the
    repository found changes which configuration applies), the found repository's
    ``config``, ``config.worktree`` and ``commondir``, the user's and the system's
    configuration, and ``/etc/passwd`` (the login name when no variable names it)."""
    paths: list[str] = []
    here = cwd
    while here:
        dotgit = os.path.join(here, ".git")
        paths.append(dotgit)
        if os.path.lexists(dotgit):
            dirs = _git_dirs(dotgit)
            if dirs is not None:
                gitdir, common = dirs
                paths += [os.path.join(common, "config"), os.path.join(gitdir, "config.worktree"),
                          os.path.join(gitdir, "commondir")]
            break
        parent = os.path.dirname(here)
        here = parent if parent != here else None
    paths += _user_config_paths()
    paths.append("/etc/passwd")
    return [os.fsencode(p) for p in dict.fromkeys(paths)]


def capture_agent() -> tuple[str, dict[str, Any]]:
    """`lineage.capture.capture_agent`, asked again (git's configuration, the login
    name and the host looked up anew) whenever what it depends on may have changed:
    the ``GIT_*``, ``HOME``, ``XDG_CONFIG_HOME``, ``LOGNAME``, ``USER``, ``LNAME``,
    ``USERNAME`` and ``LINEAGE_*`` overrides, the working directory, the user id, or
    one of the files of `_agent_paths` (by inotify where the kernel allows, else by
    ``lstat``, as for git's answer; an ``lstat``-checked file modified less than
    `RACY_SECONDS` before is not trusted); and at least every `GIT_RECHECK_SECONDS`
    (a configuration ``include`` is not watched; nor is the host name).
    Returns ``(identity hex, attrs)``; the attrs are a copy each time."""
    global _agent_entry
    env = _agent_env()
    try:
        cwd: str | None = os.getcwd()
    except OSError:
        cwd = None
    uid = os.getuid() if hasattr(os, "getuid") else None
    with _lock:
        entry = _agent_entry
        hit = (entry is not None and entry.env == env and entry.cwd == cwd and entry.uid == uid
               and time.monotonic() - entry.computed_at < GIT_RECHECK_SECONDS and entry.unchanged())
        if entry is not None and not hit:
            _agent_entry = None
            entry.close()
    if hit:
        assert entry is not None
        stats["agent_hits"] += 1
        return entry.answer[0], dict(entry.answer[1])  # (flat: a copy is a deep copy)
    stats["agent_misses"] += 1
    started_ns = time.time_ns()
    started = time.monotonic()
    paths = _agent_paths(cwd)
    # The watch starts before git runs: whatever changes from here on is an event.
    watcher, unwatched = _watch({}, paths)
    try:
        before = _signature(paths)
        answer = capture.capture_agent(fresh=True)
        after = _signature(paths)
        if after != before or _agent_paths(cwd) != paths or (watcher is not None and not watcher.unchanged()):
            return answer  # changed while git looked
        seen = dict(zip(paths, after))
        checked = unwatched if watcher is not None else paths
        racy = started_ns - int(RACY_SECONDS * 1e9)
        if any(seen[p] is not None and seen[p][0] >= racy for p in checked):  # type: ignore[index]
            return answer  # written too recently to trust its timestamp
        fresh = _AgentEntry(env, cwd, uid, checked, [seen[p] for p in checked], (answer[0], dict(answer[1])),
                            started, watcher)
        watcher = None  # (kept by the entry)
        with _lock:
            if _agent_entry is not None:
                _agent_entry.close()
            _agent_entry = fresh
        return answer
    finally:
        if watcher is not None:
            watcher.close()
