"""Capture of what a run cannot log by itself: its code (git), environment (Python,
platform, packages) and agent (who, where); every captured string goes through the
secret detector (`lineage.secrets`), and only an allow-list of environment
variables is kept.

Each ``capture_*`` function returns ``(identity hex, attrs)``: the identity is the
SHA-256 that makes the node's id, the attrs are what gets recorded. Nothing here
writes anything; nothing of lineage is imported here but the model and the secret
detector.

Importing this module is cheap: ``subprocess`` (and git) are only touched when code
or an e-mail address is captured.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lineage.errors import log
from lineage.model import agent_label, canonical_json
from lineage.secrets import is_secret_name, mask_text, mask_url

if TYPE_CHECKING:
    import subprocess

__all__ = [
    "ENV_ALLOWLIST",
    "agent_label",
    "allowed_env",
    "capture_agent",
    "capture_code",
    "capture_environment",
    "strip_url_credentials",
]

#: seconds any single git call may take before we give up on git
GIT_TIMEOUT = 10.0

#: untracked files larger than this enter the diff digest by size and mtime, not
#: content: hashing a stray multi-gigabyte data file on every run would make
#: starting a run slow, and such files are data, not code.
UNTRACKED_CONTENT_LIMIT = 64 << 20


def _sha256(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------
# secret hygiene: one detector, in lineage.secrets

#: ``https://user:pw@host/x`` -> ``https://host/x`` (`lineage.secrets.mask_url`, under
#: the name the capture and import code reads best with)
strip_url_credentials = mask_url


#: environment variables that may be recorded with a run: those that change what
#: numerical code computes or where it runs, and nothing else. A name ending in
#: ``*`` is a prefix; names matched by a prefix are dropped if they look secret.
#: (Exact names here are vetted: TOKENIZERS_PARALLELISM is not a token.)
ENV_ALLOWLIST: tuple[str, ...] = (
    # devices
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "NVIDIA_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    # threads
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "TOKENIZERS_PARALLELISM",
    # determinism
    "PYTHONHASHSEED",
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDA_LAUNCH_BLOCKING",
    "TF_DETERMINISTIC_OPS",
    "TF_CUDNN_DETERMINISTIC",
    "SOURCE_DATE_EPOCH",
    # interpreter and locale
    "PYTHONOPTIMIZE",
    "PYTHONUTF8",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "LC_NUMERIC",
    "TZ",
    # where it ran
    "CI",
    "GITHUB_ACTIONS",
    "GITHUB_RUN_ID",
    "GITHUB_SHA",
    "SLURM_JOB_ID",
    "CONDA_DEFAULT_ENV",
    # ours
    "LINEAGE_*",
)


#: ``LINEAGE_*`` variables that say who ran, not what ran: the agent node records
#: them, once (`capture_agent`). Copied into every run's ``env`` too, they made
#: each run a record about the person, so erasing the person blanked the run's
#: attributes whole (its experiment, command and host; docs/integrity.md, Erasure).
IDENTITY_ENV = frozenset({"LINEAGE_USER", "LINEAGE_EMAIL", "LINEAGE_NAME"})


def _env_allowed(name: str) -> bool:
    if name in IDENTITY_ENV:
        return False
    for pattern in ENV_ALLOWLIST:
        if pattern.endswith("*"):
            if name.startswith(pattern[:-1]) and not is_secret_name(name):
                return True
        elif name == pattern:
            return True
    return False


def allowed_env() -> dict[str, str]:
    """Return the allow-listed environment variables that are set, sorted by name.

    No other environment variable is ever recorded (DESIGN.md §6).
    """
    # a value may still hold a URL with credentials (LINEAGE_DB=postgresql://u:pw@h/db)
    return {name: mask_text(os.environ[name]) for name in sorted(os.environ) if _env_allowed(name)}


# ---------------------------------------------------------------------------
# subprocess helpers


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env["LC_ALL"] = "C"  # stable, parseable output whatever the user's locale
    env["GIT_TERMINAL_PROMPT"] = "0"  # never block on a credential prompt
    # `git status` refreshes the index and takes index.lock to do it; a run started
    # while the user commits must not make their commit fail.
    env["GIT_OPTIONAL_LOCKS"] = "0"
    return env


def run_git(root: str, *args: str, timeout: float = GIT_TIMEOUT) -> bytes | None:
    """Stdout of ``git -C root args...``, or None if git is missing, fails or hangs."""
    import subprocess

    try:
        proc = subprocess.run(
            ["git", "-C", root, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_git_env(),
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _git_digest_into(h: Any, root: str, *args: str, timeout: float = GIT_TIMEOUT) -> bool:
    """Feed the stdout of ``git -C root args...`` into ``h`` in chunks (a diff of a
    changed binary file can be large). False if git fails or runs out of time."""
    import subprocess

    try:
        proc: subprocess.Popen[bytes] = subprocess.Popen(
            ["git", "-C", root, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_git_env(),
        )
    except OSError:
        return False
    timer = threading.Timer(timeout, proc.kill)  # a blocking read has no timeout of its own
    timer.start()
    try:
        assert proc.stdout is not None
        while True:
            chunk = proc.stdout.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
        returncode = proc.wait()
    finally:
        timer.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
    return returncode == 0


# Options pinned so the diff text depends on the working tree only, never on the
# user's git configuration (color, external diff drivers, prefixes, rename detection,
# algorithm, order files): two people with the same tree get the same code identity.
_DIFF_ARGS = (
    "diff",
    "HEAD",
    "--binary",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-renames",
    "--no-relative",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--unified=3",
    "--inter-hunk-context=0",
    "--diff-algorithm=myers",
    "--indent-heuristic",
    "--submodule=short",
    "--ignore-submodules=none",
    "-O/dev/null",
    "--",
)


# ---------------------------------------------------------------------------
# code


#: how a kernel's sys.argv[0] ends: ipykernel's launcher (JupyterLab, Notebook, VS
#: Code, nbclient, papermill all start kernels through it)
_KERNEL_LAUNCHERS = ("ipykernel_launcher.py", "ipykernel/__main__.py")

#: the entry point of a run started in a notebook whose file is not known
NOTEBOOK_CELLS = "(notebook cells)"


def notebook_code() -> tuple[str | None, str | None]:
    """Inside a Jupyter kernel, the code a run executes: ``(the notebook's file,
    None)`` when the kernel knows it (VS Code's ``__vsc_ipynb_file__``, Jupyter
    Server's ``JPY_SESSION_NAME``: absolute, or relative to the server's folder while
    the kernel runs in the notebook's), else ``(NOTEBOOK_CELLS, the cells run so far)``
    (IPython's ``In``), an inline program. ``(None, None)`` outside a kernel. Every
    notebook's runs had ipykernel's launcher script as their code, so no two of them
    differed in code and none showed the notebook's commit."""
    argv0 = (sys.argv[0] if sys.argv else "").replace(os.sep, "/")
    if not argv0.endswith(_KERNEL_LAUNCHERS):
        return None, None
    main = sys.modules.get("__main__")  # (IPython's user namespace in a kernel)
    for named in (getattr(main, "__vsc_ipynb_file__", None), os.environ.get("JPY_SESSION_NAME")):
        if isinstance(named, str) and named.endswith(".ipynb"):
            for candidate in (named, os.path.join(os.getcwd(), os.path.basename(named))):
                if os.path.isfile(candidate):
                    return os.path.abspath(candidate), None
    cells = getattr(main, "In", None)
    text = "\n\n".join(c for c in cells if isinstance(c, str) and c.strip()) if isinstance(cells, list) else ""
    return (NOTEBOOK_CELLS, text) if text else (None, None)


def _entry_script(entry_point: str | None, base: str | None) -> str | None:
    """The file the entry point names, if it is one: ``entry_point`` relative to the
    working directory (as a shell would), else to ``base``; by default sys.argv[0]."""
    candidate = entry_point
    if candidate is None:
        argv0 = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-m") else None
        candidate = argv0
    if not candidate:
        return None
    if os.path.isfile(candidate):
        return candidate
    if base is not None and not os.path.isabs(candidate):
        joined = os.path.join(base, candidate)
        if os.path.isfile(joined):
            return joined
    return None


def _file_sha256(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def capture_code(path: str | None = None, *, entry_point: str | None = None, inline: str | None = None,
                 capture_git: Callable[[str, str | None], dict[str, Any] | None] | None = None) -> tuple[str, dict[str, Any]]:
    """Identify the code a run executes.

    Inside a git work tree (found from ``path``, a file or directory, or the working
    directory), returns attrs ``git`` (True), ``repo`` (the ``origin`` URL with
    credentials stripped, or None), ``branch`` (None when detached), ``commit``,
    ``dirty`` (tracked changes, or untracked files that are not ignored),
    ``diff_digest`` (SHA-256 over ``git diff HEAD --binary`` and the names and content
    digests of untracked files; None when clean), ``entry_point`` and ``root``. The
    identity is ``sha256(f"{commit}\\0{diff_digest or ''}")``: a clean checkout of a
    commit is the same code wherever it runs.

    Outside git (or without git, or in a repository with no commit yet): the identity
    is the SHA-256 of the entry script (``entry_point``, by default ``sys.argv[0]``)
    and attrs are ``{"git": False, "entry_point", "script_digest"}``. When the entry
    point is not a file (a command name) the identity is the SHA-256 of
    ``"command\\0" + entry_point``; with no entry point at all (an interactive session)
    it is the SHA-256 of ``b"interactive"`` and attrs carry ``"interactive": True``.

    ``inline``: the text of an inline program (``python -c TEXT``), which is the code
    then, not the command's name: attrs get ``script_digest``, its UTF-8 SHA-256 (what
    ``printf %s TEXT | sha256sum`` prints). Outside git that digest is the identity,
    as a script file's is; in git the identity is
    ``sha256(f"{commit}\\0{diff_digest or ''}\\0{script_digest}")``.

    Never raises for a missing or broken git: it falls back as above. ``capture_git``
    replaces `git_attrs` (lineage.capture_cache passes its cached version).
    """
    start = os.fspath(path) if path is not None else os.getcwd()
    base = start if os.path.isdir(start) else (os.path.dirname(os.path.abspath(start)) or ".")
    git = (capture_git or git_attrs)(base, _entry_script(entry_point, base))
    inline_digest = _sha256(inline) if inline is not None else None
    if git is not None:
        root = git["root"]
        script = _entry_script(entry_point, base)
        shown = entry_point
        if script is not None:
            abs_script = os.path.realpath(script)
            # Inside the repository the entry point is shown relative to its root, so
            # it reads the same on every clone.
            if abs_script.startswith(os.path.realpath(root).rstrip(os.sep) + os.sep):
                shown = os.path.relpath(abs_script, os.path.realpath(root)).replace(os.sep, "/")
            else:
                shown = script
        git["entry_point"] = shown
        identity = _sha256(f"{git['commit']}\0{git['diff_digest'] or ''}")
        if inline_digest is not None:
            # the program is not in the tree: one commit runs many different ones
            git["script_digest"] = inline_digest
            identity = _sha256(f"{git['commit']}\0{git['diff_digest'] or ''}\0{inline_digest}")
        return identity, git

    if inline_digest is not None:
        return inline_digest, {"git": False, "entry_point": entry_point, "script_digest": inline_digest}
    script = _entry_script(entry_point, base)
    if script is not None:
        digest = _file_sha256(script)
        if digest is not None:
            return digest, {"git": False, "entry_point": entry_point or script, "script_digest": digest}
    if entry_point:
        return _sha256(f"command\0{entry_point}"), {"git": False, "entry_point": entry_point, "script_digest": None}
    return _sha256(b"interactive"), {"git": False, "entry_point": None, "script_digest": None, "interactive": True}


def git_attrs(where: str, entry_script: str | None = None) -> dict[str, Any] | None:
    """The git attrs of the work tree containing ``where``, or None when there is no
    usable one (not a work tree, git missing, no commit yet, git failing).

    Dirty as ``git describe --dirty`` sees it: tracked files differ from the commit,
    or the ``entry_script`` itself is untracked. Other untracked files (the data a
    run writes, a store's folder) do not make the code a new version."""
    out = run_git(where, "rev-parse", "--show-toplevel")
    if out is None:
        return None
    root = out.decode("utf-8", "surrogateescape").strip()
    if not root:
        return None  # inside .git, or a bare repository
    status = run_git(root, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all")
    if status is None:
        return None
    commit: str | None = None
    branch: str | None = None
    tracked_changes = False
    untracked: list[bytes] = []
    fields = status.split(b"\0")
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if entry.startswith(b"# branch.oid "):
            oid = entry[len(b"# branch.oid ") :].decode("ascii", "replace")
            commit = None if oid == "(initial)" else oid
        elif entry.startswith(b"# branch.head "):
            head = entry[len(b"# branch.head ") :].decode("utf-8", "replace")
            branch = None if head == "(detached)" else head
        elif entry.startswith(b"? "):
            untracked.append(entry[2:])
        elif entry[:2] in (b"1 ", b"u "):
            tracked_changes = True
        elif entry.startswith(b"2 "):
            tracked_changes = True
            i += 1  # a rename/copy entry is followed by its original path
    if commit is None:
        return None  # no commit yet: nothing to name the code by

    remote = run_git(root, "config", "--get", "remote.origin.url")
    repo = mask_url(remote.decode("utf-8", "replace").strip()) if remote else None

    untracked = _untracked_entry(root, entry_script, untracked)
    dirty = tracked_changes or bool(untracked)
    diff_digest: str | None = None
    if dirty:
        h = hashlib.sha256()
        if not _git_digest_into(h, root, *_DIFF_ARGS):
            return None
        for rel in sorted(untracked):
            # Name and content digest, NUL-framed: renaming or editing an untracked
            # file changes the digest, and names cannot run into each other.
            h.update(b"\0untracked\0" + rel + b"\0" + _untracked_digest(root, rel).encode("ascii"))
        diff_digest = h.hexdigest()
    return {
        "git": True,
        "repo": repo,
        "branch": branch,
        "commit": commit,
        "dirty": dirty,
        "diff_digest": diff_digest,
        "entry_point": None,
        "root": root,
    }


def _untracked_entry(root: str, entry: str | None, untracked: list[bytes]) -> list[bytes]:
    """The entry script's path among the untracked ones (a one-item list), else []."""
    if entry is None or not untracked:
        return []
    try:
        rel = os.path.relpath(os.path.realpath(os.fsdecode(entry)), os.path.realpath(root))
    except (TypeError, ValueError):
        return []
    wanted = os.fsencode(rel.replace(os.sep, "/"))
    return [u for u in untracked if u == wanted]


def _untracked_digest(root: str, rel: bytes) -> str:
    path = os.path.join(os.fsencode(root), rel)
    try:
        st = os.stat(path)
    except OSError:
        return "missing"  # deleted between `git status` and now
    if not stat.S_ISREG(st.st_mode):
        return "special"  # a FIFO or device (through a symlink): reading it may never end
    if st.st_size > UNTRACKED_CONTENT_LIMIT:
        return f"large:{st.st_size}:{st.st_mtime_ns}"
    digest = _file_sha256(os.fsdecode(path))
    return digest if digest is not None else "unreadable"


# ---------------------------------------------------------------------------
# environment and agent

_lock = threading.Lock()
_env_cache: tuple[str, dict[str, Any]] | None = None
_agent_cache: dict[str, Any] | None = None


def reset_cache() -> None:
    """Forget the cached environment and agent (for tests)."""
    global _env_cache, _agent_cache
    with _lock:
        _env_cache = None
        _agent_cache = None


def _normalize_dist_name(name: str) -> str:
    # PEP 503 normalisation: "Scikit_Learn" and "scikit-learn" are one package
    return re.sub(r"[-_.]+", "-", name).lower()


def capture_environment() -> tuple[str, dict[str, Any]]:
    """Describe the Python environment, once per process.

    Returns ``(identity, attrs)`` with attrs ``python`` (version), ``implementation``,
    ``platform`` (``platform.platform()``), ``machine`` and ``packages`` (normalised
    distribution name -> version, sorted by name). The identity is
    ``sha256(canonical_json([python, platform, sorted [name, version] pairs]))``.
    Later calls return the cached result (packages do not change under a running
    process in any way that affects it); a copy of the attrs each time.
    """
    global _env_cache
    with _lock:
        if _env_cache is None:
            _env_cache = _compute_environment()
        identity, attrs = _env_cache
    return identity, {**attrs, "packages": dict(attrs["packages"])}


def _compute_environment() -> tuple[str, dict[str, Any]]:
    import platform
    from importlib import metadata

    packages: dict[str, str] = {}
    for dist in metadata.distributions():
        try:
            name = dist.metadata["Name"]
            version = dist.version
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # a broken dist-info (unreadable, undecodable, no METADATA) must not stop a run
            log.debug("environment capture skips %s: %s", getattr(dist, "_path", dist), exc)
            continue
        if not name or version is None:
            continue
        # the first occurrence on sys.path is the one imported; keep it
        packages.setdefault(_normalize_dist_name(name), str(version))
    packages = dict(sorted(packages.items()))
    python = platform.python_version()
    plat = platform.platform()
    attrs = {
        "python": python,
        "implementation": platform.python_implementation(),
        "platform": plat,
        "machine": platform.machine(),
        "packages": packages,
    }
    identity = _sha256(canonical_json([python, plat, [[n, v] for n, v in packages.items()]]))
    return identity, attrs


def _current_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no passwd entry (a container's arbitrary uid), no env vars, no pwd
        uid = getattr(os, "getuid", None)
        return f"uid{uid()}" if uid is not None else "unknown"


def _git_config(key: str) -> str | None:
    """``git config --get KEY`` as seen from the working directory, or None."""
    where = os.getcwd() if os.path.isdir(os.getcwd()) else "/"
    out = run_git(where, "config", "--get", key, timeout=5.0)
    value = out.decode("utf-8", "replace").strip() if out else ""
    return value or None


def capture_agent(*, fresh: bool = False) -> tuple[str, dict[str, Any]]:
    """Describe who runs this process, and where.

    Returns ``(identity, attrs)`` with attrs ``name`` (``LINEAGE_NAME`` if set, else
    git's ``user.name``, else None), ``email`` (``LINEAGE_EMAIL`` if set, else git's
    ``user.email``, else None), ``user`` (``LINEAGE_USER`` if set, else the OS login
    name) and ``host``. The person comes first: two people sharing one OS account
    (a shared training server) are two agents when git tells them apart.

    The identity is ``sha256(canonical_json([name, email, user, host]))`` when git
    (or ``LINEAGE_NAME``/``LINEAGE_EMAIL``) names the person, else
    ``sha256(f"{user}@{host}")`` as before. The login name, host and git identity are
    looked up once per process (again with ``fresh``: `lineage.capture_cache` asks for
    that when what they depend on changed); the ``LINEAGE_*`` overrides are read on
    every call.
    """
    global _agent_cache
    with _lock:
        if _agent_cache is None or fresh:
            import socket

            try:
                host = socket.gethostname()
            except OSError:
                host = "unknown"
            _agent_cache = {"user": _current_user(), "host": host, "email": _git_config("user.email"),
                            "name": _git_config("user.name")}
        base = dict(_agent_cache)
    user = os.environ.get("LINEAGE_USER") or base["user"]
    email = os.environ.get("LINEAGE_EMAIL") or base["email"]
    name = os.environ.get("LINEAGE_NAME") or base["name"]
    attrs = {"user": user, "host": base["host"], "email": email, "name": name}
    if name or email:
        identity = _sha256(canonical_json([name, email, user, base["host"]]))
    else:
        identity = _sha256(f"{user}@{base['host']}")
    return identity, attrs
