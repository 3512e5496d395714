"""The write paths: datasets, runs, models, artifacts, predictions and annotations.

Each public function records what it is given through `Store.write`, so every fact is
one ledger event (or part of one) and a failed call leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import posixpath
import re
import sys
import threading
import traceback
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from json.encoder import encode_basestring as _json_str  # the string encoder of canonical_json
from pathlib import Path, PurePosixPath
from typing import Any

from . import capture, capture_cache, hashing, secrets
from . import describe as _describe
from .errors import InvalidInputError, LineageError, NodeNotFoundError, WriteRefusedError
from .model import (
    ANNOTATION_FIELDS,
    ENDED_STATUSES,
    ERASED_PERSON,
    SENSITIVE_FIELDS,
    Edge,
    Node,
    canonical_json,
    clean_text,
    iso_of_us,
    local_path,
    make_id,
    new_uuid7_hex,
    now_iso,
    uuid7_batch,
)
from .store import Store
from .store.asyncwrite import RunOperations
from .store.asyncwrite import wanted as wanted_async
from .store.files import project_path, project_root

DEFAULT_EXPERIMENT = "default"


# ---------------------------------------------------------------------------
# the nodes every run shares: who, with what code, in which environment

# What is captured once per process is cached by `capture_cache` (re-validated
# cheaply), and a node this store has already seen recorded is not re-checked by a
# query (`Store.known_node`): together they are most of a run's fixed cost.

def _ensure(store: Store, node: Node, event_type: str) -> Node:
    """``node`` as stored, recording it (or its name as an alias) if it is not yet."""
    known = store.known_node(node.id, node.name)
    if known is not None:
        return known
    stored = store.add_node(node, event_type=event_type)[0]
    store.remember_node(stored, node.name)
    return stored


def _once_per_transaction(store: Store, what: str,
                          capture: Callable[[], tuple[str, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    """``capture()``, asked once per write transaction (`Store.transaction_memo`):
    a batch is recorded as one moment, by one agent in one environment. The answer
    is shared within the transaction: its callers only build a `Node` of it, which
    `_ensure` hands to `Store.add_node` (which does not change it) or drops."""
    memo = store.transaction_memo()
    if memo is None:
        return capture()
    found = memo.get(what)
    if found is None:
        found = memo[what] = capture()
    return found


def ensure_agent(store: Store) -> Node:
    """The agent node for the current person (git's user.name and user.email), OS
    account and host; named after the person, else the account."""
    hex_id, attrs = _once_per_transaction(store, "agent", capture_cache.capture_agent)
    node = Node(make_id("agent", hex_id), "agent", attrs.get("name") or attrs.get("user"), attrs)
    return _ensure(store, node, "agent")


#: the error text of a run MLflow would call KILLED: lineage's statuses are running,
#: finished, failed and crashed (DESIGN.md), so a killed run is failed, said so here
KILLED = "killed"

#: The run tag MLflow's ``delete_run`` and ``restore_run`` set (``deleted`` /
#: ``active``): MLflow's ``lifecycle_stage`` of a run. Records are append-only, so a
#: deleted run stays in the graph, and who deleted it and when is the tag's ledger
#: event; MLflow's views read the tag as ``info.lifecycle_stage`` and leave deleted
#: runs out of active searches (`entities.in_view`).
LIFECYCLE_TAG = "mlflow.lifecycleStage"
# MLflow keeps a run's or a model version's description in this tag
NOTE_TAG = "mlflow.note.content"

class _OpenedRuns(threading.local):
    """The runs a thread opened through the facade (`Lineage.start_run`), oldest
    first, until they end: the fluent API (``lineage.log_metric``, autolog) logs to
    the newest when it has no run of its own, so the two documented styles mix
    (`fluent.active_run`). A run ended from another thread is left in its opener's
    list, ended: readers skip those."""

    def __init__(self) -> None:
        self.runs: list[Run] = []

    def _forget(self, run: Run) -> None:  # (a run's owner is told when it ends)
        if run in self.runs:
            self.runs.remove(run)


OPENED_RUNS = _OpenedRuns()


#: stores (this process's objects) whose actor is known to be a recorded agent node:
#: nodes are never deleted, so once seen it stays, and a write need not ask again
_ACTOR_RECORDED: weakref.WeakKeyDictionary[Store, str] = weakref.WeakKeyDictionary()


def ensure_actor(store: Store) -> None:
    """Record the agent a store's events name as their actor, if it is not yet: a
    promotion, an annotation or a batch of predictions is written without a run, and
    a report must be able to name who wrote it, not only show an agent id that no
    command resolves. Asked of the store once per process."""
    if _ACTOR_RECORDED.get(store) == store.actor:
        return
    node = ensure_agent(store)
    if node.id == store.actor and not store.in_transaction:  # (committed: no rollback can undo it)
        _ACTOR_RECORDED[store] = node.id


def ensure_environment(store: Store) -> Node:
    """The environment node (Python, platform, packages); content-addressed and shared."""
    hex_id, attrs = _once_per_transaction(store, "environment", lambda: _cached_environment(store))
    node = Node(make_id("environment", hex_id), "environment", f"python {attrs.get('python', '')}".strip(), attrs)
    return _ensure(store, node, "environment")


def _environment_key() -> str:
    """What decides the installed packages: the interpreter and every folder on
    ``sys.path`` with its modification time (installing, upgrading or removing a
    package adds or removes a ``*.dist-info`` folder there, which changes it)."""
    parts = [sys.executable, sys.version, platform_tag()]
    for entry in sys.path:
        try:
            parts.append(f"{entry}\0{os.stat(entry or '.').st_mtime_ns}")
        except OSError:
            parts.append(f"{entry}\0-")
    return hashing.hash_text("\n".join(parts))


def platform_tag() -> str:
    return f"{sys.platform}-{os.uname().release if hasattr(os, 'uname') else ''}"


def _cached_environment(store: Store) -> tuple[str, dict[str, Any]]:
    """`capture.capture_environment`, remembered across processes in the store's
    ``cache/`` folder: reading every package's metadata took ~0.1-0.2 s of each
    `lineage run`. A cache, not evidence (like the stat cache): keyed by the
    interpreter and its package folders, and its identity recomputed from its content.
    Within one process, `capture_cache` answers first (no file read per run).
    """
    import json

    memo = capture_cache.environment_if_cached()
    if memo is not None:
        return memo

    path = store.dir / "cache" / f"environment-{_environment_key()[:32]}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        attrs = doc["attrs"]
        if isinstance(attrs, dict) and isinstance(attrs.get("packages"), dict) and doc["id"] == _environment_id(attrs):
            capture_cache.remember_environment((doc["id"], attrs))
            return doc["id"], attrs
    except (OSError, ValueError, KeyError, TypeError):
        pass
    hex_id, attrs = capture_cache.capture_environment()
    try:
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"id": hex_id, "attrs": attrs}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # a read-only store folder: no cache, same answer
        pass
    return hex_id, attrs


def _environment_id(attrs: Mapping[str, Any]) -> str:
    """The environment's identity as `capture.capture_environment` computes it."""
    packages = attrs["packages"]
    return hashing.hash_text(canonical_json([attrs["python"], attrs["platform"], [[n, v] for n, v in packages.items()]]))


def ensure_code(store: Store, *, path: str | None = None, entry_point: str | None = None,
                inline: str | None = None) -> tuple[Node, str | None]:
    """The code node of the working tree (git commit + diff digest, or the script's
    digest; with an ``inline`` program's text, that too), and the entry point as
    captured now: the runs of one commit share its node, whose own ``entry_point``
    is the first one's."""
    try:
        cwd: str | None = os.getcwd()
    except OSError:  # (the working directory was removed)
        cwd = None
    # (what the answer depends on inside one transaction: a batch may run code from several places)
    key = f"code\0{path}\0{entry_point}\0{cwd}\0{sys.argv[0] if sys.argv else ''}\0{inline}"
    hex_id, attrs = _once_per_transaction(store, key, lambda: capture_cache.capture_code(path, entry_point=entry_point,
                                                                                          inline=inline))
    name = attrs.get("entry_point") or (Path(attrs["root"]).name if attrs.get("root") else None)
    node = Node(make_id("code", hex_id), "code", name, attrs)
    return _ensure(store, node, "code"), attrs.get("entry_point")


# ---------------------------------------------------------------------------
# datasets

def _default_name(store: Store, path: Path) -> str:
    """A path relative to the project root when inside it (see `project_path`)."""
    return project_path(store, path)


def local_file(store: Store, attrs: Mapping[str, Any]) -> str | None:
    """Where a recorded local file (a dataset's, a model's) is now: its ``path``
    relative to this store's project root, so a copied or moved project checks its own
    files; the absolute path recorded beside it (a hint) when the project has not
    moved, or for a path recorded outside the project. None for remote data.

    Older records kept ``path`` as typed (relative to the working directory then) and
    ``abspath``: the part of ``abspath`` before ``path`` was that directory; when it
    is not inside this project, the project moved and ``path`` is taken from the root.
    """
    abspath = attrs.get("abspath")
    rel = attrs.get("path")
    if not rel or os.path.isabs(str(rel)) or not abspath:
        return abspath or rel or None
    rel = posixpath.normpath(str(rel).replace(os.sep, "/"))
    if rel.startswith(".."):
        return str(abspath)
    root = project_root(store)
    suffix = "/" + rel
    apath = str(abspath).replace(os.sep, "/")
    if not apath.endswith(suffix):
        return str(abspath)
    base = Path(apath[: -len(suffix)] or "/")
    if base == root or root in base.parents:
        return str(abspath)  # recorded in this project, where it still is
    return str(root / rel)


#: digest algorithms whose hex length is known; others (crc32c, etag) are checked for form only
_DIGEST_HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128,
                       "blake2b": 128, "blake2s": 64}
_DIGEST_OTHER = ("crc32c", "crc64nvme", "etag", "xxh64", "xxh128")
_LOWER_HEX = "0123456789abcdef"


def valid_digest(digest: str) -> str:
    """A caller-supplied checksum in normal form: ``algorithm:value`` (lowercase hex
    for the hex algorithms); 64 bare hex digits are read as ``sha256:``.

    Raises InvalidInputError for anything else (``9b2c...`` is not a digest).
    """
    if type(digest) is str and len(digest) == 71 and digest.startswith("sha256:") and not digest[7:].strip(_LOWER_HEX):
        return digest  # already in normal form, as hashlib's hexdigest gives it (issue 16)
    text = str(digest).strip()
    algo, sep, value = text.partition(":")
    algo = algo.lower()
    if not sep:
        algo, value = "sha256", text
    hexdigits = set("0123456789abcdef")
    if algo in _DIGEST_HEX_LENGTHS:
        v = value.lower()
        if len(v) == _DIGEST_HEX_LENGTHS[algo] and set(v) <= hexdigits:
            return f"{algo}:{v}"
    elif algo in _DIGEST_OTHER and value and all(c.isalnum() or c in "+/=_-" for c in value) and len(value) <= 200:
        return f"{algo}:{value}"
    raise InvalidInputError(
        f"{text[:80]!r} is not a digest: give it with its algorithm (md5:<32 hex>, sha256:<64 hex>, "
        f"crc32c:<base64>, etag:<value>) or as 64 hex digits (SHA-256)")


def dataset_node(store: Store, data: Any, *, name: str | None = None, uri: str | None = None,
                 digest: str | None = None, progress: Any = None, source: Any = None) -> Node:
    """Describe a dataset as a (not yet stored) node: hash it, gather its attributes.
    ``source``: where data held in memory was read from (a URL, a table), kept as
    ``attrs["source"]`` (credentials masked): the origin of the bytes the id names."""
    if isinstance(data, Node):
        return data
    if uri is not None or (digest is not None and data is None):
        if not uri or not digest:
            raise InvalidInputError("remote data needs both uri= and digest= (the store's checksum)")
        clean_uri = secrets.mask_text(uri)
        checksum = valid_digest(digest)
        if checksum.startswith("sha256:"):
            hex_id = checksum[len("sha256:"):]  # already a SHA-256
        else:
            hex_id = hashing.hash_text(f"checksum:{digest.strip()}")
        attrs = {"uri": clean_uri, "checksum": digest.strip(), "remote": True}
        shown = secrets.mask_text(name) if name else clean_uri.rstrip("/").rsplit("/", 1)[-1]
        return Node(make_id("dataset", hex_id), "dataset", shown, attrs)
    if isinstance(data, (str, os.PathLike)):
        path = Path(data).expanduser()
        if not path.exists():
            raise InvalidInputError(f"no such file or directory: {data}")
        cache = store.stat_cache
        if path.is_dir():
            hex_id, manifest = hashing.hash_tree(path, cache=cache, progress=progress)
            attrs = {
                "path": project_path(store, path),
                "format": "directory",
                "files": len(manifest),
                "size": sum(m[2] for m in manifest),
            }
        else:
            fd = hashing.hash_file(path, cache=cache, progress=progress)
            hex_id, attrs = fd.digest, hashing.describe_file(path, fd)
            attrs["path"] = project_path(store, path)  # relative to the project root: a copied project checks its own files
        attrs["abspath"] = str(path.resolve())  # a hint: where it was
        # (a file name that is not UTF-8 is named as the store will keep it, escaped)
        return Node(make_id("dataset", hex_id), "dataset", clean_text(name or _default_name(store, path)), attrs)
    try:
        hex_id, attrs = hashing.hash_data(data)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"cannot log {type(data).__name__} as a dataset: {exc}") from None
    if source is not None and str(source):
        attrs["source"] = secrets.mask_text(os.fspath(source) if isinstance(source, os.PathLike) else str(source))
    return Node(make_id("dataset", hex_id), "dataset", name, attrs)


def log_dataset(store: Store, data: Any, *, name: str | None = None, uri: str | None = None,
                digest: str | None = None, progress: Any = None, extra_edges: Sequence[Edge] = ()) -> Node:
    """Record a dataset version; returns its node.

    Same bytes give the same node (no new event); changed bytes under a known name give
    a new version with `was_revision_of` to the newest earlier one; the same bytes under
    a second name keep one node and record the name as an alias.
    """
    node = dataset_node(store, data, name=name, uri=uri, digest=digest, progress=progress)
    with store.atomic():
        agent = ensure_agent(store)
        edges = [Edge(node.id, agent.id, "was_attributed_to"), *extra_edges]
        absent = not store.node_exists(node.id)  # (in this transaction: add_node need not look again)
        if node.name and absent:
            previous = store.nodes(kind="dataset", name=node.name, limit=1)
            if previous:
                edges.append(Edge(node.id, previous[0].id, "was_revision_of"))
        if absent:
            for seen in _imported_unhashed(store, node):
                edges += [Edge(node.id, seen, "was_derived_from", "same_data"),
                          Edge(seen, node.id, "was_derived_from", "same_data")]
        return store.add_node(node, edges=edges, event_type="dataset", absent=absent)[0]


def _imported_unhashed(store: Store, node: Node) -> list[str]:
    """The datasets an import knew only by this file's path (an OpenLineage ``file``
    dataset with no version: `interop.openlineage`) whose bytes these are.

    The evidence: the file has not been modified since the first imported event that
    named it (``seen_at``), so every run those events describe saw these bytes. Then
    the two nodes are the same data (``was_derived_from`` both ways, role
    ``same_data``), and `trace` and `impact` pass between them. A file modified later
    is other bytes: only the version history (`was_revision_of`, by name) relates them."""
    abspath = node.attrs.get("abspath")
    if not isinstance(abspath, str) or not abspath or not store.nodes(kind="run", name="import openlineage", limit=1):
        return []  # (no OpenLineage import, no such dataset: one indexed look-up, not one per version of the name)
    try:
        mtime_ns = os.stat(abspath).st_mtime_ns  # (read after hashing: a write meanwhile only makes it later)
    except OSError:
        return []
    modified = iso_of_us(mtime_ns // 1000)
    out: list[str] = []
    for name in dict.fromkeys(n for n in (node.name, posixpath.basename(abspath)) if n):
        for n in store.nodes(kind="dataset", name=name):
            ol = n.attrs.get("openlineage")
            seen = n.attrs.get("seen_at")
            if (isinstance(ol, Mapping) and ol.get("namespace") == "file" and ol.get("name") == abspath
                    and "version" not in n.attrs and isinstance(seen, str) and modified <= seen and n.id not in out):
                out.append(n.id)
    return out


# ---------------------------------------------------------------------------
# models and artifacts

# describe_model moved to `lineage.describe` (Pipelines, searches, calibration, feature
# maps and importance); still importable from here.
describe_model = _describe.describe_model
_plain = _describe.plain


def model_node(store: Store, model: Any, name: str | None) -> tuple[Node, bytes]:
    """The model's node (content-addressed by its serialized bytes) and those bytes."""
    hex_id, blob = hashing.hash_model(model)  # InvalidInputError, one line, when it does not pickle
    attrs = describe_model(model)
    attrs.update({"artifact": f"artifacts/{hex_id[:2]}/{hex_id}", "size": len(blob), "serializer": "pickle"})
    return Node(make_id("model", hex_id), "model", name or type(model).__name__, attrs), blob


# ---------------------------------------------------------------------------
# runs

#: set by `lineage run` for the command it runs: the wrapping run's id
PARENT_RUN_ENV = "LINEAGE_PARENT_RUN"


def _wrapping_run(store: Store) -> str | None:
    """The run of the `lineage run` this process runs under (`PARENT_RUN_ENV`), when it
    is a run of this store: a script's own runs nest in it, as a wrapped
    `lineage run` does. None otherwise (a script that opens another store)."""
    ref = os.environ.get(PARENT_RUN_ENV)
    if not ref or not ref.startswith("run:"):
        return None
    node = store.get_node(ref)
    return node.id if node is not None and node.kind == "run" else None


def _run_id_of(store: Store, ref: Any) -> str:
    """The id of the run ``ref`` names: a `Run`, a run `Node`, or a reference."""
    node = store.get_node(ref.id) if isinstance(ref, (Run, Node)) else store.resolve(str(ref))
    if node is None:
        raise NodeNotFoundError(str(ref.id), "no run has that id")
    if node.kind != "run":
        raise InvalidInputError(f"parent must be a run, not the {node.kind} {node.id}")
    return node.id


_PLAIN_VALUES = (int, float, str, bool, type(None))


def _file_format(name: str) -> str:
    """An artifact's format, from its file name's suffix (``"png"``; ``"file"`` without one)."""
    return PurePosixPath(name).suffix.lstrip(".").lower() or "file"


def secret_safe(params: Mapping[str, Any], what: str = "params") -> dict[str, str]:
    """Params (or tags) as recorded text, through the secret detector
    (`lineage.secrets.mask_value`: secret names masked, numbers under weak names kept,
    secrets inside any text value masked)."""
    # (the type tests first: a dict, an int, a str pass without the ABC's instance
    # check or a failed attribute lookup; 2 of the ~8 µs a new param's check costs)
    if type(params) is not dict and not isinstance(params, Mapping):
        raise InvalidInputError(f"{what} must be a mapping of names to values, got {type(params).__name__}")
    return dict(itertools.starmap(_safe_pair, params.items()))


def _safe_pair(k: Any, v: Any) -> tuple[str, str]:
    """One param's (or tag's) name and value as recorded text (`secret_safe`)."""
    key = k if type(k) is str else str(k)
    if type(v) not in _PLAIN_VALUES and hasattr(v, "item") and getattr(v, "ndim", None) == 0:
        v = v.item()  # a numpy scalar: its number (masked as one)
    masked = secrets.mask_value(key, v)
    # the text of a value is checked once more: a list's or an object's repr can
    # hold what the value itself did not show (`Conn(password='x')`)
    return key, secrets.mask_text(_param_text(masked))


def _param_text(value: Any) -> str:
    """Params are stored as text, like MLflow's: numbers keep their repr so filters can
    compare them numerically (a float subclass, numpy's ``float64``, as the float it
    is: numpy 2's repr is ``np.float64(0.1)``, where MLflow stores ``0.1``); lists and
    mappings as canonical JSON; other objects (dates, paths, decimals) as their
    ``str``, as MLflow writes them."""
    try:
        if isinstance(value, str):
            return value
        if isinstance(value, bool) or value is None:
            return str(value)
        if isinstance(value, int):
            return repr(int(value))
        if isinstance(value, float):
            return repr(float(value))
        if getattr(value, "ndim", 0) and hasattr(value, "tolist"):  # an array: its items, as a list's
            value = value.tolist()
        if isinstance(value, (list, tuple, Mapping)) or hasattr(value, "get_params") or hasattr(value, "ndim"):
            plain = _plain(value)
            return plain if isinstance(plain, str) else canonical_json(plain)
        return str(value)
    except ValueError as exc:  # an int too long to write out in decimal
        raise InvalidInputError(f"cannot record a {type(value).__name__} value as text: {exc}") from None


#: suffixes of the scripts an interpreter runs (`python train.py`, `Rscript fit.R`)
SCRIPT_SUFFIXES = (".py", ".ipynb", ".R", ".r", ".jl", ".sh", ".bash", ".rb", ".pl", ".js", ".m", ".scala")


def command_entry_point(argv: Sequence[str]) -> str | None:
    """The code a wrapped command runs (`lineage run -- CMD`).

    The program itself when it is a script (``./prep.sh``, ``train.py``); else the
    first script among its next two arguments (``python train.py``,
    ``/usr/bin/python3 -u train.py``, ``Rscript fit.R``); for ``python -m pkg.train``
    the module's file when it is in the working directory (``pkg/train.py``, or a
    package's ``__main__.py``), else ``python -m pkg.train``, so two modules are two
    codes; ``python -c`` (``sh -c``, ``bash -c``) for an inline program, whose text
    (`command_inline_code`) is then the code; else the program's name (``cp``), so
    the interpreter binary is never taken for the code and a data file argument
    (``cp a.csv b.csv``) never either.
    """
    if not argv:
        return None
    program = str(argv[0])
    if os.path.isfile(program) and (program.endswith(SCRIPT_SUFFIXES) or _has_shebang(program)):
        return program
    if command_inline_code(argv) is not None:
        return f"{os.path.basename(program)} -c"
    args = [str(a) for a in argv[1:4]]
    if os.path.basename(program).startswith("python") and "-m" in args[:2] and args.index("-m") + 1 < len(args):
        module = args[args.index("-m") + 1]
        path = module.replace(".", "/")
        for candidate in (f"{path}.py", f"{path}/__main__.py"):
            if os.path.isfile(candidate):
                return candidate
        return f"{os.path.basename(program)} -m {module}"
    for arg in args[:2]:
        if arg.endswith(SCRIPT_SUFFIXES) and os.path.isfile(arg):
            return arg
    return os.path.basename(program)


#: programs whose ``-c`` option takes the program's text: an interpreter, or a shell
_INLINE_PROGRAMS = re.compile(r"(python|pypy)[0-9.]*|(ba|z|da|k)?sh")


def command_inline_code(argv: Sequence[str]) -> str | None:
    """The program text of a wrapped ``python -c TEXT`` (``-c`` first or second, as in
    ``python -u -c TEXT``; also ``sh``/``bash -c``), else None. The text is the code
    that runs, so it is captured as a script file's content would be: two inline
    programs are two code versions, and the same one run twice is one."""
    if len(argv) < 3 or not _INLINE_PROGRAMS.fullmatch(os.path.basename(str(argv[0]))):
        return None
    args = [str(a) for a in argv[1:]]
    for i in range(min(2, len(args) - 1)):
        if args[i] == "-c":
            return args[i + 1]
        if not args[i].startswith("-") or args[i] in ("-m", "--"):
            return None  # a script's or a module's arguments, not the interpreter's options
    return None


def _has_shebang(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


class _NoLock:
    """The lock of a run written to from outside the process that started it: a handle
    that appends to a recorded run (`Lineage.run_handle`) holds no lock to release."""

    def release(self, *, remove: bool = False) -> None:
        return None


NO_LOCK = _NoLock()


class Run:
    """A run in progress: what `start_run` hands out. Use it as a context manager;
    a run that raises ends `failed` with the error message."""

    def __init__(self, store: Store, node: Node, lock: Any, *, owner: Any = None) -> None:
        self.store = store
        self.id = node.id
        self.name = node.name
        self.experiment = node.attrs.get("experiment", DEFAULT_EXPERIMENT)
        self._lock = lock
        self._owner = owner  # the fluent API's run stack, told when the run ends
        self._ended = False
        self._pid = os.getpid()  # a run belongs to the process that holds its lock

    # -- lifecycle --------------------------------------------------------

    @classmethod
    def start(cls, store: Store, name: str | None = None, *, params: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None, experiment: str | None = None, description: str | None = None,
              parent: Any = None, command: Sequence[str] | None = None, code_path: str | None = None,
              entry_point: str | None = None, owner: Any = None) -> Run:
        """Record a new run (with its code, environment and agent) and take its lock.
        Raises NodeNotFoundError when ``parent`` names no run, InvalidInputError when
        it names something else (a run is nested in a run: DESIGN.md §1)."""
        wrapper = None
        if parent is not None:
            parent = _run_id_of(store, parent)
        else:
            parent = wrapper = _wrapping_run(store)
        run_id = make_id("run", new_uuid7_hex())
        argv = list(command) if command is not None else list(sys.argv)
        # `python train.py` and `./train.sh` alike: the first argument that is a file
        inline = None
        if entry_point is None and command is not None:
            entry = command_entry_point(argv)
            inline = command_inline_code(argv)
        else:  # this process's own argv: sys.argv[0] is the script (`python train.py`)
            notebook, inline = capture.notebook_code() if entry_point is None else (None, None)
            entry = entry_point or notebook or next((a for a in argv[:3] if os.path.isfile(a)), None)
        if code_path is None and entry is not None and entry != capture.NOTEBOOK_CELLS:
            # the code is the script's repository, wherever it was started from
            code_path = os.path.dirname(os.path.abspath(entry))
        lock = store.run_lock(run_id)
        with store.atomic():
            agent = ensure_agent(store)
            env = ensure_environment(store)
            code, script = ensure_code(store, path=code_path, entry_point=entry, inline=inline)
            started = now_iso()
            attrs: dict[str, Any] = {
                "experiment": experiment or DEFAULT_EXPERIMENT,
                "command": secrets.mask_argv(argv),
                "started_at": started,
                "host": agent.attrs.get("host"),
                "pid": os.getpid(),
            }
            if script:  # the run's own script (its code node may name another's: `ensure_code`)
                attrs["entry_point"] = script
            if description:
                attrs["description"] = secrets.mask_text(str(description))
            if parent:
                attrs["parent_run"] = parent
            env_vars = capture_cache.allowed_env()
            if env_vars:
                attrs["env"] = env_vars
            # a wrapped command's run is named after its script's stem (`train` for
            # train.py): the code node already carries the file name, and a run of the
            # same name would make `lineage show train.py` ambiguous every time
            default = (os.path.splitext(os.path.basename(entry))[0] or entry) if command is not None and entry else run_id.split(":", 1)[1][:8]
            node = Node(run_id, "run", secrets.mask_text(name) if name else default, attrs, started)
            edges = [
                Edge(run_id, agent.id, "was_associated_with"),
                Edge(run_id, code.id, "used", "code"),
                Edge(run_id, env.id, "used", "environment"),
            ]
            if wrapper:
                # a run started inside `lineage run` is part of the command, which read
                # the inputs and models it declared (`-i`): they are this run's inputs
                # too, so what it makes traces back to them (`trace`, `which-data`,
                # audits), as it would had the script logged them itself
                edges += [Edge(run_id, dst, "used", role) for dst, role in dict.fromkeys(store.used_by(wrapper))
                          if role in ("input", "model")]
            extra: dict[str, list[Sequence[Any]]] = {"run_states": [(run_id, "running", started, None, None, None)]}
            if params:
                extra["params"] = [(run_id, k, v) for k, v in secret_safe(params).items()]
            if tags:
                extra["tags"] = [(run_id, k, v) for k, v in secret_safe(tags, "tags").items()]
            # (the id was made just now: nothing can be recorded under it or from it yet)
            store.know_new_run(run_id)
            store.add_node(node, edges=edges, event_type="run_started", extra=extra, new=True)
            if not lock.try_acquire():
                raise WriteRefusedError(f"cannot lock run {run_id}: {lock.path} is held by another process")
        return cls(store, node, lock, owner=owner)

    @classmethod
    def resume(cls, store: Store, ref: str, *, owner: Any = None) -> Run:
        """Reopen a recorded run (MLflow's ``start_run(run_id=...)``)."""
        node = store.resolve(ref)
        if node.kind != "run":
            raise InvalidInputError(f"{ref!r} is a {node.kind}, not a run")
        lock = store.run_lock(node.id)
        if not lock.try_acquire():
            raise WriteRefusedError(f"run {node.id} is still running in another process")
        if node.attrs.get("status") != "running":
            store.write("run_resumed", {"run": node.id}, {"run_states": [(node.id, "running", now_iso(), None, None, None)]})
        return cls(store, node, lock, owner=owner)

    def recorded_params(self, keys: Sequence[str] | None = None) -> dict[str, str]:
        """The params this run holds now; only those named in ``keys`` when given."""
        return self.store.params_of(self.id, keys)

    def queue(self, call: Callable[[], Any], *, at_once: bool = False) -> RunOperations:
        """MLflow's ``synchronous=False``: ``call`` (a write to this run) queued for the
        store's background writer, which commits many queued calls at a time
        (`Store.submit`); returns the handle whose ``wait()`` reports the write.
        Written at once instead inside a batch, as the batch's other calls are (the
        batch is already one commit), and when ``at_once`` asks (a metric with a
        dataset: hashed outside any transaction)."""
        if at_once or self.store.in_transaction:
            call()
            return RunOperations()
        return self.store.submit(call)

    def perform(self, call: Callable[[], Any], synchronous: bool | None = None, *,
                at_once: bool = False) -> RunOperations | None:
        """``call`` (a write to this run) as MLflow's ``synchronous`` argument asks:
        written now (None returned), or queued (`queue`, with ``at_once``: its
        RunOperations returned)."""
        if not wanted_async(synchronous):
            call()
            return None
        return self.queue(call, at_once=at_once)

    @contextlib.contextmanager
    def batch(self) -> Iterator[Run]:
        """Group several writes of this run into one unit (one commit): a failure inside
        rolls back all of them, so nothing inside should catch a write's error and go on
        (use `Lineage.batch`, whose inner writes are savepoints, for that). Yields the run."""
        with self.store.atomic():  # the store's unit of one logical write: no savepoints inside
            yield self

    def end(self, status: str = "finished", *, exit_code: int | None = None, error: str | None = None) -> None:
        """Close the run with a final status; a second call does nothing."""
        if self._ended:
            return
        if os.getpid() != self._pid:
            # a forked child (a worker, a subprocess that forgot exec) must not close
            # the parent's live run, nor unlock it: the lock is shared across fork
            raise WriteRefusedError(f"run {self.id} belongs to process {self._pid}; end it there")
        if status not in (*ENDED_STATUSES, "killed"):  # killed: MLflow's word, recorded as failed
            raise InvalidInputError(f"unknown run status {status!r}")
        if status == "killed":  # kept apart by its error text, so MLflow's views read KILLED again
            status, error = "failed", error or KILLED
        if error is not None:
            error = secrets.mask_text(str(error))  # error texts quote URLs, commands, configs
        self.store.write(
            "run_ended",
            {"run": self.id, "status": status},
            {"run_states": [(self.id, status, now_iso(), exit_code, error, None)]},
        )
        self._ended = True
        self._lock.release(remove=True)  # only after the end is recorded: see RunLock
        if self._owner is not None:
            self._owner._forget(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._ended or os.getpid() != self._pid:
            return  # (a forked child leaving the block: the run is its parent's)
        if exc is None:
            self.end("finished")
        elif isinstance(exc, KeyboardInterrupt):
            self.end("failed", error="interrupted (KeyboardInterrupt)")
        else:
            message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            # an error message often quotes a URL (a failed download) or a config: masked
            # before the cut, so a secret cut in two cannot leave a recognisable half.
            # If recording the end fails too (the disk that failed the run is still
            # full, the store busy), the first error is the one to report, so it
            # propagates; the run stays `running` and is reaped as `crashed` later.
            with contextlib.suppress(LineageError):
                self.end("failed", error=secrets.mask_text(message)[:2000])

    @property
    def node(self) -> Node:
        node = self.store.get_node(self.id)
        assert node is not None
        return node

    @property
    def info(self) -> Node:  # MLflow users reach for run.info
        return self.node

    def _check_open(self) -> None:
        if self._ended:
            raise WriteRefusedError(f"run {self.id} has ended; start a new run to log more")

    # -- params, tags, metrics ----------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        """Record a parameter. Re-logging the same value is a no-op; a different one is refused."""
        self._check_open()
        # (`log_params` of one pair, without building and copying the mappings: the
        # call MLflow scripts make most, issue 16)
        k, v = _safe_pair(key, value)
        self._add_params({clean_text(k): clean_text(v)})

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._check_open()
        # compared as stored: text that is not valid Unicode is kept escaped (`clean_text`)
        self._add_params({clean_text(k): clean_text(v) for k, v in secret_safe(params).items()})

    def _add_params(self, safe: dict[str, str]) -> None:
        """Write the params ``safe`` (recorded text by recorded name) not yet logged;
        refuse a name already logged with another value."""
        with self.store.atomic():
            # (a run started by this connection: its params are known, not read back)
            existing = self.store.known_params(self.id)
            if existing is None:
                existing = self.store.params_of(self.id, list(safe))
            rows = []
            for k, v in safe.items():
                if k in existing:
                    if existing[k] != v:
                        raise WriteRefusedError(
                            f"param {k!r} of run {self.id} is already {existing[k]!r}; params are immutable, start a new run"
                        )
                    continue
                rows.append((self.id, k, v))
            if rows:
                self.store.write("params", {"run": self.id, "keys": [r[1] for r in rows]}, {"params": rows})

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Tags can change (the latest wins); each change is kept in the ledger."""
        self._check_open()
        rows = [(self.id, k, v) for k, v in secret_safe(tags, "tags").items()]
        if rows:
            self.store.write("tags", {"run": self.id, "keys": [r[1] for r in rows]}, {"tags": rows})

    def log_metric(self, key: str, value: float, step: int | None = None, *, dataset: Any = None,
                   group: str | None = None, timestamp: str | None = None, n: int | None = None) -> None:
        """Record a metric value; ``dataset`` also records that the run used it for
        evaluation, ``group`` marks a per-group result (``"age>60"``), ``n`` the number
        of rows it was computed on (reports give per-group confidence intervals from
        it; kept in the metric event's payload)."""
        self._check_open()
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            if not (hasattr(n, "item") and isinstance(n.item(), int) and n.item() >= 1):  # numpy ints
                raise InvalidInputError(f"metric {key!r}: n is the number of rows (a positive integer), got {n!r}")
            n = int(n.item())
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"a metric needs a name (a non-empty string), got {key!r}")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise InvalidInputError(f"metric {key!r} must be a number that fits a float, got {value!r}") from None
        try:
            step = int(step or 0)
        except (TypeError, ValueError, OverflowError):
            raise InvalidInputError(f"metric {key!r}: step must be an integer, got {step!r}") from None
        prepared = self._prepare(dataset) if dataset is not None else None
        with self.store.atomic():
            data_id = None
            edges: list[Edge] = []
            if prepared is not None:
                data_node = self._dataset(prepared)
                data_id = data_node.id
                edge = Edge(self.id, data_id, "used", "evaluation")
                if not self.store.edge_exists(edge):
                    edges.append(edge)
            rows: dict[str, list[Sequence[Any]]] = {
                "metrics": [(self.id, key, number, step, timestamp or now_iso(), data_id, group)]
            }
            if edges:
                rows["edges"] = [(e.src, e.dst, e.rel, e.role) for e in edges]
            payload: dict[str, Any] = {"run": self.id, "key": key}
            if n is not None:
                payload["n"] = n
            self.store.write("metric", payload, rows)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None, *, dataset: Any = None,
                    group: str | None = None) -> None:
        with self.store.atomic():
            for k, v in metrics.items():
                self.log_metric(k, v, step, dataset=dataset, group=group)

    # -- inputs and outputs ---------------------------------------------------

    def _prepare(self, data: Any, *, name: str | None = None, references: bool = True,
                 source: Any = None) -> tuple[Node, bool]:
        """``(node, needs recording)`` for a Node, a reference or data to hash.

        Hashing happens here, before the caller opens its write transaction: hashing a
        large file takes seconds, and holding SQLite's write lock that long would make
        every other process's writes wait (and fail after the busy timeout).
        """
        if isinstance(data, Node):
            return data, False
        if references and isinstance(data, str) and not os.path.exists(data):
            return self.store.resolve(data), False  # a reference to something recorded
        return dataset_node(self.store, data, name=name, source=source), True

    def _dataset(self, prepared: tuple[Node, bool]) -> Node:
        node, fresh = prepared
        return log_dataset(self.store, node) if fresh else node

    def log_input(self, data: Any, *, role: str = "training", name: str | None = None, source: Any = None) -> Node:
        """Record that the run read ``data`` (a Node, reference, path, array or frame);
        ``source``: where an array or frame was read from (`dataset_node`). A source
        that is a local file is recorded too, the frame `was_derived_from` it: what is
        known of the file (its columns marked sensitive, its producers) reaches what
        was trained on the frame."""
        self._check_open()
        prepared = self._prepare(data, name=name, source=source)
        origin = self._file_origin(data, source)
        with self.store.atomic():
            node = self._dataset(prepared)
            # one run consumed what another produced: say so run to run, too
            producers = [r for r in self.store.generators(node.id) if r != self.id]
            edges = [Edge(self.id, node.id, "used", role)] + [Edge(self.id, r, "was_informed_by") for r in producers]
            if origin is not None and origin.id != node.id:
                edges.append(Edge(node.id, log_dataset(self.store, origin).id, "was_derived_from"))
            self.store.add_edges(edges, event_type="used")
            return node

    def _file_origin(self, data: Any, source: Any) -> Node | None:
        """The dataset node of the local file ``source`` names, for data held in memory
        (a frame read from ``train.csv``); None for a URL, a table, or no such file. Hashed
        here, before the write transaction, as `_prepare` hashes."""
        if source is None or isinstance(data, (Node, str, os.PathLike)):
            return None
        local = local_path(os.fspath(source) if isinstance(source, os.PathLike) else str(source))
        path = local.expanduser() if local is not None else None
        return dataset_node(self.store, path) if path is not None and path.is_file() else None

    def log_output(self, data: Any, *, name: str | None = None) -> Node:
        """Record a dataset the run wrote; returns its node (`was_generated_by` this run)."""
        self._check_open()
        prepared = self._prepare(data, name=name, references=False)
        with self.store.atomic():
            node = self._dataset(prepared)
            self.store.add_edges([Edge(node.id, self.id, "was_generated_by")], event_type="generated")
            return node

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> Node:
        """Keep a copy of a file the run wrote (plot, report) and record it as an artifact."""
        self._check_open()
        p = Path(path)
        if not p.exists():
            raise InvalidInputError(f"no such file: {path}")
        # (hash_file names what else it is: a directory, a FIFO, a device)
        fd = hashing.hash_file(p, cache=self.store.stat_cache)
        self.store.put_artifact(fd.digest, source=p)
        return self._record_artifact(fd.digest, name or p.name, {"path": p.as_posix(), "size": fd.size,
                                                                 "format": _file_format(p.name)})

    def log_bytes(self, data: bytes, name: str) -> Node:
        """Keep bytes made in memory (what MLflow's ``log_text``, ``log_dict``,
        ``log_figure``, ``log_image`` and ``log_table`` write) as an artifact of the
        run, under ``name``, its path in the run (``"plots/roc.png"``). Unlike
        `log_artifact`, no file path is recorded: there was no file, and a temporary
        one's path would name a folder gone by the time anyone reads it."""
        self._check_open()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidInputError(f"log_bytes takes bytes, got {type(data).__name__}")
        if not isinstance(name, str) or not name.strip("/") or name.endswith("/"):
            raise InvalidInputError(f"an artifact's name must name a file, e.g. 'config.json', got {name!r}")
        data = bytes(data)
        digest = hashing.hash_bytes(data)
        self.store.put_artifact(digest, data)
        where = name.strip("/")
        return self._record_artifact(digest, where, {"size": len(data), "format": _file_format(where)})

    def _record_artifact(self, digest: str, where: str, attrs: Mapping[str, Any]) -> Node:
        """The artifact node of kept bytes ``digest``, generated by this run at ``where``."""
        attrs = {**attrs, "artifact": f"artifacts/{digest[:2]}/{digest}"}
        node = Node(make_id("artifact", digest), "artifact", where, attrs)
        with self.store.atomic():
            agent = ensure_agent(self.store)
            # (the node is its content, named where it was first logged; where this run
            # put it is the role of its generation: the same bytes logged again, here or
            # by another run, under another path keep that path: `Lineage.run_links`)
            stored, _ = self.store.add_node(node, edges=[Edge(node.id, self.id, "was_generated_by", where),
                                                         Edge(node.id, agent.id, "was_attributed_to")], event_type="artifact")
            return stored

    def log_model(self, model: Any, name: str | None = None, *, evaluation: Any = None, target: str | None = None,
                  attrs: Mapping[str, Any] | None = None, **_: Any) -> Node:
        """Save a fitted model content-addressed next to the store and record it.

        Records its digest, class, the chain of steps with each step's parameters (the
        final estimator's as ``params``), the features it reads and those its final
        estimator sees, and native importance (see `lineage.describe`). With held-out
        data, ``evaluation=(X, y)`` or ``evaluation=DATASET_REF, target=COLUMN``, it
        also computes permutation importance there and records that the run used the
        data for evaluation. ``attrs`` adds recorded facts (a signature, the MLflow
        artifact path). Other keyword arguments of MLflow's ``log_model``
        (signature, input_example, …) are accepted and ignored, so MLflow code runs
        unchanged. Raises InvalidInputError for bad evaluation data (nothing recorded).
        """
        self._check_open()
        if isinstance(model, (str, os.PathLike)):  # (it was pickled as the model: a str)
            raise InvalidInputError(f"log_model takes the fitted model object, not a path ({os.fspath(model)!r}); "
                                    "record a saved model file with lg.log_model_file(PATH), or `lineage run -o PATH`")
        # (MLflow's artifact path, where given, is the role of its generation, as an
        # artifact's path is: the same model logged again under another path keeps both)
        where = (attrs or {}).get("artifact_path")
        node, blob = model_node(self.store, model, name)
        if attrs:
            node = Node(node.id, node.kind, node.name, {**node.attrs, **attrs}, node.created_at)
        held_out = None
        if evaluation is not None:
            X, y, data_ref = self._evaluation_data(evaluation, target)
            result = _describe.permutation(model, X, y)
            held_out = data_ref
            attrs = _describe.with_permutation(dict(node.attrs), result, dataset=data_ref[0].id, target=target)
            node = Node(node.id, node.kind, node.name, attrs, node.created_at)
        elif target is not None:
            raise InvalidInputError("target= names the label column of evaluation=DATASET_REF; give evaluation= too")
        with self.store.atomic():
            # (inside the transaction: a small model's bytes are committed with its record)
            self.store.put_artifact(node.id.split(":", 1)[1], blob)
            agent = ensure_agent(self.store)
            edges = [Edge(node.id, self.id, "was_generated_by", where), Edge(node.id, agent.id, "was_attributed_to")]
            if held_out is not None:
                data_node = self._dataset(held_out)
                self.store.add_edges([Edge(self.id, data_node.id, "used", "evaluation")], event_type="used")
            stored, _created = self.store.add_node(node, edges=edges, event_type="model")
            return stored

    def _evaluation_data(self, evaluation: Any, target: str | None) -> tuple[Any, Any, tuple[Node, bool]]:
        """``(X, y, prepared dataset)`` from ``(X, y)`` or a dataset reference + target."""
        if isinstance(evaluation, tuple):
            if len(evaluation) != 2:
                raise InvalidInputError("evaluation= takes (X, y) or a dataset reference with target=COLUMN")
            X, y = evaluation
            return X, y, self._prepare(X, references=False)
        if target is None:
            raise InvalidInputError("evaluation=DATASET_REF needs target=COLUMN (the label column)")
        data_node = evaluation if isinstance(evaluation, Node) else self.store.resolve(str(evaluation))
        if data_node.kind != "dataset":
            raise InvalidInputError(f"{data_node.id} is a {data_node.kind}; evaluation data must be a dataset")
        X, y = _describe.split_target(_describe.load_frame(data_node), target)
        return X, y, (data_node, False)

    def __repr__(self) -> str:
        return f"<Run {self.id} name={self.name!r}>"


# ---------------------------------------------------------------------------
# predictions

def as_list(values: Any, what: str = "outputs") -> list[Any]:
    """A list of per-prediction values (an array, a Series, any sequence; None: empty).
    Raises InvalidInputError for a string, bytes or a mapping (``what`` names it)."""
    if values is None:
        return []
    if hasattr(values, "tolist"):
        out = values.tolist()
        return out if isinstance(out, list) else [out]
    if hasattr(values, "to_numpy"):
        return values.to_numpy().tolist()
    if isinstance(values, (str, bytes, Mapping)):
        raise InvalidInputError(f"{what} must be a sequence with one item per prediction, got a {type(values).__name__}")
    try:
        return list(values)
    except TypeError:
        raise InvalidInputError(f"{what} must be a sequence with one item per prediction, got {values!r}") from None


def _input_digests(inputs: Any, size: int = 10_000) -> tuple[Iterable[str], int]:
    """The input rows' digests (`hashing.row_digests`) and how many rows there are.

    For a large array, DataFrame or list the digests are computed chunk by chunk as
    the bulk write reads its rows, in its encoding thread, alongside the inserts
    (issue 16), instead of all before the write starts. The digests are the same:
    each row's depends on that row alone."""
    if hashing.is_ndarray(inputs) and getattr(inputs, "ndim", 0) >= 1:
        n, rows = int(inputs.shape[0]), inputs
    elif hashing.is_pandas(inputs, "DataFrame"):
        n, rows = len(inputs), inputs.iloc
    elif isinstance(inputs, (list, tuple)):
        n, rows = len(inputs), inputs
    elif hashing.is_sparse(inputs) and len(inputs.shape) == 2:
        n, rows = int(inputs.shape[0]), inputs.tocsr()  # (csr: a COO matrix cannot be sliced)
    else:
        digests = hashing.row_digests(inputs)
        return digests, len(digests)
    if n <= size:
        digests = hashing.row_digests(inputs)
        return digests, len(digests)
    return itertools.chain.from_iterable(hashing.row_digests(rows[i:i + size]) for i in range(0, n, size)), n


def log_predictions(store: Store, model: Any, inputs: Any, outputs: Any, *, request_ids: Sequence[Any] | None = None,
                    scores: Any = None, keep_inputs: bool = False, decision: Mapping[str, Any] | None = None,
                    run: str | None = None) -> list[str]:
    """Record many predictions of ``model`` in one ledger event; returns their ids in order.

    ``model`` is a model Node, a reference, or the fitted object itself (found by its
    digest). Each prediction stores the digest of its input row, the output, an
    optional score and the caller's request id (searchable as ``request:ID``).
    ``keep_inputs=True`` also keeps each row's input values (a second event, erased
    with the prediction by `redact`), so its decision can be reconstructed and
    explained; ``decision`` is the rule applied to the score (e.g. ``{"threshold":
    0.3, "positive": "refer"}``), recorded in the event's payload. ``run`` is the run
    that made them (a batch scoring of a file), recorded there too: a trace of each
    then leads to that run and the input it read. Raises InvalidInputError for
    mismatched lengths or a decision that is not a mapping.
    """
    model_ref = model_reference(store, model)
    outs = as_list(outputs)
    n = len(outs)
    digests, n_inputs = _input_digests(inputs)
    if n_inputs != n:
        raise InvalidInputError(f"{n_inputs} input rows but {n} outputs: they must match one to one")
    reqs = [None] * n if request_ids is None else [None if r is None else str(r) for r in as_list(request_ids, "request_ids")]
    if len(reqs) != n:
        raise InvalidInputError(f"{len(reqs)} request ids for {n} predictions")
    score_list = [None] * n if scores is None else as_list(scores, "scores")
    if len(score_list) != n:
        raise InvalidInputError(f"{len(score_list)} scores for {n} predictions")
    ids = uuid7_batch(n, "prediction:")
    ensure_actor(store)  # the account a report names as the predictions' logger
    at = now_iso()
    dumps = output_json
    # outputs are stored JSON-encoded (strings too), so a read gives back what was logged
    rows = zip(ids, itertools.repeat(model_ref), digests, map(dumps, outs), score_list, reqs, itertools.repeat(at))
    payload: dict[str, Any] = {"model": model_ref, "count": n}
    if run is not None:
        payload["run"] = run
    if decision is not None:
        payload["decision"] = decision_rule(decision)
    if not keep_inputs:
        # (a few rows go in one short transaction with their event: `bulk.SMALL_ROWS`)
        store.write_bulk("predictions", payload, "predictions", rows)
        return ids
    kept = input_rows(store, model_ref, inputs, n)
    # the predictions and their inputs appear together or not at all
    store.write_bulks([("predictions", {**payload, "inputs_kept": True}, "predictions", rows),
                       ("prediction_inputs", {"model": model_ref, "count": n}, "prediction_inputs",
                        zip(ids, map(canonical_json, kept)))])
    return ids


# -- decision records: the rule and the input values kept with predictions ----


def decision_rule(decision: Any) -> dict[str, Any]:
    """The decision rule as plain JSON; raises InvalidInputError for a non-mapping."""
    if not isinstance(decision, Mapping) or not decision:
        raise InvalidInputError('decision must be a mapping such as {"threshold": 0.3, "positive": "refer"}, '
                                f"got {decision!r}")
    return {str(k): _plain_value(v) for k, v in decision.items()}


def _plain_value(v: Any) -> Any:
    """A JSON scalar for a numpy/pandas value (NaN becomes None)."""
    if hasattr(v, "item") and callable(v.item):
        with contextlib.suppress(TypeError, ValueError):  # a 0-d numpy value -> its Python scalar
            v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, Mapping):
        return {str(k): _plain_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain_value(x) for x in v]
    return str(v)


def input_rows(store: Store, model_ref: str, inputs: Any, n: int) -> list[dict[str, Any]]:
    """Each input row as ``{feature: value}``: DataFrame columns, dict rows, else the
    model's recorded feature names (``x0``, ``x1``, … when none were recorded)."""
    if hasattr(inputs, "columns") and hasattr(inputs, "itertuples"):
        names = [str(c) for c in inputs.columns]
        rows: list[Any] = [list(r) for r in inputs.itertuples(index=False, name=None)]
    elif hashing.is_sparse(inputs):
        rows = _sparse_input_rows(inputs, _feature_names(store, model_ref, int(inputs.shape[-1])))
    else:
        if hasattr(inputs, "tolist"):
            inputs = inputs.tolist()
        rows = list(inputs)
        names = _feature_names(store, model_ref, max((len(r) for r in rows if isinstance(r, (list, tuple))), default=1))
    if len(rows) != n:
        raise InvalidInputError(f"{len(rows)} input rows but {n} outputs: they must match one to one")
    out = []
    for r in rows:
        if isinstance(r, Mapping):
            out.append({str(k): _plain_value(v) for k, v in r.items()})
        elif isinstance(r, (list, tuple)):
            out.append({k: _plain_value(v) for k, v in zip(names, r)})
        else:
            out.append({names[0]: _plain_value(r)})
    return out


def _feature_names(store: Store, model_ref: str, width: int) -> list[str]:
    """`feature_names` of the stored model ``model_ref``."""
    node = store.get_node(model_ref)
    return feature_names(node.attrs.get("feature_names") if node is not None else None, width)


def feature_names(recorded: Sequence[Any] | None, width: int) -> list[str]:
    """The names a kept input row gives a model's ``width`` features: its recorded
    ``feature_names`` when there are as many, else ``x0``, ``x1``, … (an explanation
    reads the row back by the same names: `audit.decision.model_features`)."""
    given = recorded or []
    return [str(x) for x in given] if len(given) == width else [f"x{i}" for i in range(width)]


def _sparse_input_rows(mat: Any, names: list[str]) -> list[dict[str, Any]]:
    """A scipy.sparse matrix's rows as ``{feature: value}``. Up to
    `hashing.SPARSE_DENSE_WIDTH` columns, every feature, as a dense row keeps them
    (its digest is the dense row's too); wider, only the non-zero ones: a row of a
    TF-IDF matrix names its few words, not a million zeros. A feature a kept row
    does not name is 0: `audit.decision.sparse_rows` rebuilds it as a CSR row."""
    if len(mat.shape) != 2:
        raise InvalidInputError(f"cannot keep the rows of a {len(mat.shape)}-D sparse array; pass a 2-D one")
    csr = hashing.canonical_csr(mat, f"cannot keep the rows of a {type(mat).__qualname__}")
    n, width = (int(d) for d in csr.shape)
    if width <= hashing.SPARSE_DENSE_WIDTH:
        return [dict(zip(names, map(_plain_value, row))) for block in hashing.dense_row_blocks(csr) for row in block.tolist()]
    indptr, indices, data = csr.indptr.tolist(), csr.indices.tolist(), csr.data.tolist()
    return [{names[j]: _plain_value(v) for j, v in zip(indices[indptr[i]:indptr[i + 1]], data[indptr[i]:indptr[i + 1]])}
            for i in range(n)]


def output_json(o: Any) -> str:
    """``canonical_json(o)``, with the common scalar outputs (labels, numbers) encoded
    directly: a million predictions spent more time in json.dumps than in SQLite."""
    t = type(o)
    if t is int:
        return int.__repr__(o)
    if t is str and o.isascii():
        return _json_str(o)
    if t is float and math.isfinite(o):
        return float.__repr__(o)
    return canonical_json(o)


def model_reference(store: Store, model: Any) -> str:
    """The id of the recorded model ``model`` names: a Node, a reference, or the
    fitted object itself (by its digest). Raises InvalidInputError for another kind
    of node or an object never logged, NodeNotFoundError for an unknown reference."""
    if isinstance(model, Node):
        node = model
    elif isinstance(model, str):
        node = store.resolve(model)
    else:
        hex_id, _ = hashing.hash_model(model)
        node_id = make_id("model", hex_id)
        if not store.node_exists(node_id):
            raise InvalidInputError("this model object was never logged; call run.log_model(model, name) first")
        return node_id
    if node.kind != "model":
        raise InvalidInputError(f"{node.id} is a {node.kind}, not a model")
    return node.id


# ---------------------------------------------------------------------------
# annotations (the human fields of an audit)

def annotate(store: Store, ref: Any, field: str, text: str, *, author: str | None = None) -> int:
    """Record a person's statement about a node (``intended_use``, ``sign_off``, …);
    returns the ledger event number. Unknown fields are refused with the list of keys.

    ``author`` is who makes the statement as typed (default: the current person, from
    git, else the OS account); the identity that records it is the event's actor,
    shown as ``recorded_by`` by `annotations`. The text is a person's words, kept as
    given: when it looks like it holds a secret, a `lineage.secrets.SecretWarning` is
    issued (and the CLI prints a one-line notice) instead of masking it.
    """
    if field not in ANNOTATION_FIELDS and field not in SENSITIVE_FIELDS:
        import difflib

        known = ANNOTATION_FIELDS + SENSITIVE_FIELDS
        near = difflib.get_close_matches(str(field), known, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise InvalidInputError(f"unknown field {field!r}; {hint}expected one of {', '.join(known)}")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(f"annotation {field!r} needs some text")
    node = ref if isinstance(ref, Node) else store.resolve(ref)
    agent = capture.capture_agent()[1]
    who = author or agent.get("name") or agent.get("user") or "unknown"
    secrets.warn_if_secret(text, f"annotation {field!r} on {node.id}")
    # Who records it, in the event's payload (which the chain commits to) beside the
    # actor's agent id: readable even when that agent was never recorded as a node.
    payload = {"node": node.id, "field": field, "recorded_by": capture.agent_label(agent)}
    with store.atomic():
        ensure_actor(store)  # the actor is a node a report can name, not only an id
        return store.write("annotation", payload, {"annotations": [(node.id, field, text, who, now_iso())]})


def set_model_tags(store: Store, ref: Any, tags: Mapping[str, Any]) -> int | None:
    """Tag a model (MLflow 3's ``set_logged_model_tags``, the registry's
    ``set_model_version_tag``: a version is a model here); returns the ledger event
    number, None when ``tags`` is empty. Kept as a run's tags are, in the same table
    under the model's id: the latest value wins and every change stays in the
    ledger, masked as a run's tags are (`secret_safe`)."""
    node = ref if isinstance(ref, Node) else store.resolve(ref)
    if node.kind != "model":
        raise InvalidInputError(f"{node.id} is a {node.kind}; only a model takes model tags (a run has its own: set_tag)")
    rows = [(node.id, k, v) for k, v in secret_safe(tags, "tags").items()]
    if not rows:
        return None
    return store.write("model_tags", {"model": node.id, "keys": [r[1] for r in rows]}, {"tags": rows})


def read_annotations(store: Store, node_id: str) -> dict[str, dict[str, Any]]:
    """The latest annotation of each field on a node: ``{field: {text, author, at,
    event, recorded_by, recorded_by_agent}}``.

    ``author`` is the name typed with the statement; ``recorded_by`` is the identity
    that recorded it (the ledger event's actor, as "Name <email> (user@host)"), and
    ``recorded_by_agent`` its agent id (None when the actor is not a recorded agent).
    """
    notes = store.annotations(node_id)
    for note in notes.values():
        event = store.event(int(note["event"])) if note.get("event") is not None else None
        payload = (event.payload or {}) if event is not None else {}
        actor = str(payload.get("actor") or "") or None
        label = payload.get("recorded_by")
        if event is not None and event.payload is None:
            # a payload goes only with the person it named (`erasure._person_rows`)
            label = ERASED_PERSON
        elif label is None and actor is not None:  # written before the payload said so
            agent = store.get_node(actor) if actor.startswith("agent:") else None
            label = capture.agent_label(agent.attrs) if agent is not None else actor
        note["recorded_by"] = label
        note["recorded_by_agent"] = actor if actor and actor.startswith("agent:") else None
    return notes


def __getattr__(name: str) -> Any:
    # `import lineage as mlflow` makes this module `mlflow.tracking`, where MLflow
    # scripts find their client (`mlflow.tracking.MlflowClient()`): handed over lazily,
    # as the client sits in the layer above
    if name == "MlflowClient":
        from .client import MlflowClient

        return MlflowClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
