"""`lineage import dvc`: a DVC repository's pipeline history, read through DVC's own
`Repo` (``dvc.yaml``, ``dvc.lock``, ``params.yaml`` and ``*.dvc`` files).

Each locked stage becomes a ``run`` (its command, its params, the git commit as its
code version, the commit's author as agent); its deps are ``used`` (role ``input``,
``code`` for scripts) and its outs ``was_generated_by`` it. A ``.dvc`` file (``dvc
add``) records a dataset version. Every file keeps DVC's MD5 in
``attrs["digests"]``; when the file in the work tree still has that MD5 it is hashed
and the node is our content node (SHA-256), else the node is known by the MD5 alone
(`foreign_dataset_id`, ``content_hashed: False``) and is linked to the content node
(``was_derived_from``, role ``same_data``) once a later import finds the file.

``--all-commits`` walks every commit (DVC's ``brancher``), so each past version of a
stage's outputs becomes a version in lineage, oldest first, with ``was_revision_of``
between versions of the same path. A stage run is identified by its lock entry, so an
unchanged stage seen in many commits is one run, and importing again adds nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import capture, hashing
from ..errors import InvalidInputError, foreign
from ..model import Node, canonical_json, make_id
from ..store import Store
from ..store.files import project_root
from . import require
from .bulk import ImportBatch, ImportResult, foreign_dataset_id, foreign_run_hex

_SCRIPTS = (".py", ".R", ".r", ".jl", ".sh", ".ipynb", ".scala", ".js")


def import_dvc(store: Store, repo: str | os.PathLike[str] = ".", *, all_commits: bool = False) -> ImportResult:
    """Import a DVC repository's stages and tracked data; returns the counts.

    Raises MissingExtraError without dvc, InvalidInputError when ``repo`` is not a DVC
    repository or has neither a ``dvc.yaml`` nor a ``.dvc`` file; writes nothing then.
    """
    require("dvc.repo", "dvc")
    root = Path(repo).resolve()
    if not (root / ".dvc").is_dir():
        raise InvalidInputError(f"{root}: not a DVC repository (no .dvc/ folder; run `dvc init`)")
    if not (root / "dvc.yaml").is_file() and not _dvc_files(root):
        raise InvalidInputError(f"{root / 'dvc.yaml'}: no such file (and no .dvc files): nothing to import")
    from dvc.repo import Repo

    # DVC's own errors (NotDvcRepoError, YAML errors) have many types: one line
    with foreign(f"{root}: DVC cannot open it: {{reason}}"):
        dvc_repo = Repo(str(root))
    batch = ImportBatch(store, tool="dvc", source=str(root), details={"all_commits": all_commits})
    # a broken dvc.yaml / dvc.lock in some commit: one line
    with foreign(f"{root}: DVC cannot read the pipeline: {{reason}}"), dvc_repo:
        revs = _collect(dvc_repo, root, all_commits)
    _build(batch, store, root, revs)
    return batch.commit()


def _dvc_files(root: Path) -> bool:
    """True when a ``.dvc`` file (``dvc add``) exists outside .git/ and .dvc/."""
    for _dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".dvc")]
        if any(f.endswith(".dvc") for f in filenames):
            return True
    return False


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _collect(repo: Any, root: Path, all_commits: bool) -> list[dict[str, Any]]:
    """Per revision (oldest first, the work tree last): its commit facts and stages."""
    head = _git(root, "rev-parse", "HEAD")
    out = []
    revs = repo.brancher(all_commits=True) if all_commits else repo.brancher()
    for rev in revs:
        rev = rev or "workspace"  # (DVC names the work tree "" when asked for it alone)
        commit = head if rev == "workspace" else rev
        info = _git(root, "log", "-1", "--format=%aI%x00%an%x00%ae", commit) if commit else None
        at, author, email = (info.split("\0") + ["", "", ""])[:3] if info else ("", "", "")
        stages = []
        for st in repo.index.stages:
            stages.append(_stage(repo, st))
        dirty, diff = False, None
        if rev == "workspace" and commit:
            # the work tree, not the commit: uncommitted data, dvc.lock or code are
            # a different code identity (DESIGN.md §1: commit and diff digest)
            state = capture.git_attrs(str(root)) or {}
            dirty, diff = bool(state.get("dirty")), state.get("diff_digest")
        out.append({"rev": rev, "commit": commit, "at": at or None, "author": author or None, "email": email or None,
                    "stages": stages, "dirty": dirty, "diff_digest": diff})
    # oldest first by ancestry, not by time alone: git keeps whole seconds, and commits
    # made within one second (a script, a rebase) came in DVC's order, a set's, so a
    # version could be recorded as a revision of the one that followed it
    ancestry = {c: i for i, c in enumerate((_git(root, "rev-list", "--topo-order", "--reverse", "--all") or "").split())}
    out.sort(key=lambda r: (r["rev"] == "workspace", ancestry.get(str(r["commit"]), len(ancestry)), r["at"] or ""))
    return out


def _stage(repo: Any, st: Any) -> dict[str, Any]:
    def files(items: Any) -> list[dict[str, Any]]:
        found = []
        for o in items:
            if type(o).__name__ == "ParamsDependency":
                continue
            hi = o.hash_info
            found.append({"path": o.fs.relpath(o.fs_path, repo.root_dir).replace(os.sep, "/"),
                          "md5": str(hi.value) if hi and hi.value else None,
                          "size": getattr(getattr(o, "meta", None), "size", None)})
        return found

    params: dict[str, Any] = {}
    for d in st.deps:
        if type(d).__name__ == "ParamsDependency":
            values = d.hash_info.value if d.hash_info and isinstance(d.hash_info.value, Mapping) else {}
            prefix = "" if os.path.basename(str(d.def_path)) == "params.yaml" else f"{d.def_path}:"
            for k, v in _flatten(values).items():
                params[prefix + k] = v
    # (`addressing` is relative to the working directory: not a stable name)
    dvcfile = repo.fs.relpath(st.path, repo.root_dir).replace(os.sep, "/")
    name = getattr(st, "name", None) or dvcfile
    if dvcfile != "dvc.yaml" and getattr(st, "cmd", None):
        name = f"{dvcfile}:{name}"
    return {"name": name, "cmd": getattr(st, "cmd", None), "deps": files(st.deps), "outs": files(st.outs),
            "params": params, "file": str(getattr(st, "relpath", ""))}


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _md5(path: Path) -> str | None:
    h = hashlib.md5(usedforsecurity=False)
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def _build(batch: ImportBatch, store: Store, root: Path, revs: list[dict[str, Any]]) -> None:
    latest: dict[str, str] = {}  # path -> newest dataset id seen (for was_revision_of)
    produced: dict[str, str] = {}  # dataset id -> run that generated it
    content: dict[tuple[str, str], str] = {}  # (path, md5) -> node id
    # DVC's paths are relative to its repo; a recorded path is relative to the store's
    # project (`tracking.local_file`), which holds the repo or not: a repo outside it is
    # recorded by absolute paths, or `status` looked for its files in the wrong place
    project, here = project_root(store).resolve(), root.resolve()
    outside = not (here == project or project in here.parents)

    def dataset(f: dict[str, Any]) -> str | None:
        md5, path = f["md5"], f["path"]
        if not md5:
            return None
        key = (path, md5)
        if key in content:
            return content[key]
        abs_path = root / path
        recorded = str(abs_path) if outside else path
        foreign = foreign_dataset_id("md5", md5)
        attrs: dict[str, Any] = {"path": recorded, "digests": {"md5": md5}, "source": "dvc"}
        if f.get("size") is not None:
            attrs["size"] = f["size"]
        node_id = foreign
        same_as = None
        if not md5.endswith(".dir") and abs_path.is_file() and _md5(abs_path) == md5:
            fd = hashing.hash_file(abs_path, cache=store.stat_cache)
            attrs.update(hashing.describe_file(abs_path, fd))
            attrs.update({"path": recorded, "abspath": str(abs_path), "digests": {"md5": md5}, "content_hashed": True})
            node_id = make_id("dataset", fd.digest)
            if batch.has(foreign):  # known by its MD5 before: the same data, now hashed
                batch.add_edge(node_id, foreign, "was_derived_from", "same_data")
                same_as = foreign
        else:
            attrs["content_hashed"] = False
            attrs["content"] = "not available in the work tree (known by DVC's MD5 only)"
        if not batch.has(node_id):
            prev = latest.get(path)
            if prev is None:
                found = store.nodes(kind="dataset", name=path, limit=1)
                prev = found[0].id if found else None
            if prev and prev not in (node_id, same_as):
                batch.add_edge(node_id, prev, "was_revision_of")
        batch.add_node(Node(node_id, "dataset", path, attrs))
        latest[path] = node_id
        content[key] = node_id
        return node_id

    for rev in revs:
        code_id = None
        if rev["commit"]:
            code_attrs = {"git": True, "commit": rev["commit"], "dirty": rev["dirty"], "diff_digest": rev["diff_digest"],
                          "root": str(root), "repo": None, "entry_point": None, "source": "dvc"}
            code_id = make_id("code", hashing.hash_text(f"{rev['commit']}\0{rev['diff_digest'] or ''}"))
            batch.add_node(Node(code_id, "code", root.name, code_attrs))
        agent_id = None
        if rev["author"]:
            agent_id = make_id("agent", hashing.hash_text(f"{rev['author']}@"))
            batch.add_node(Node(agent_id, "agent", rev["author"], {"user": rev["author"], "host": None,
                                                                 "email": rev["email"], "source": "git"}))
        for st in rev["stages"]:
            if not st["cmd"]:  # a .dvc file: a dataset version, no run
                for f in st["outs"]:
                    dataset(f)
                continue
            entry = {"stage": st["name"], "cmd": st["cmd"], "deps": [(f["path"], f["md5"]) for f in st["deps"]],
                     "outs": [(f["path"], f["md5"]) for f in st["outs"]], "params": st["params"]}
            if not any(md5 for _, md5 in entry["outs"]) and st["outs"]:
                continue  # never reproduced in this revision: no lock entry
            lock_digest = hashlib.sha256(canonical_json(entry).encode()).hexdigest()
            rid = make_id("run", foreign_run_hex("dvc", f"{root.name}:{lock_digest}", None))
            ins = [(f, dataset(f)) for f in st["deps"]]
            outs = [dataset(f) for f in st["outs"]]
            if batch.has(rid):
                continue
            at = rev["at"] or None
            attrs: dict[str, Any] = {"experiment": "dvc", "command": [st["cmd"]] if isinstance(st["cmd"], str) else list(st["cmd"]),
                     "dvc": {"stage": st["name"], "lock_digest": lock_digest, "commit": rev["commit"], "repo": str(root)},
                     "imported_from": str(root)}
            if at:
                attrs["started_at"] = _utc(at)
            started = _utc(at) if at else None
            batch.add_node(Node(rid, "run", st["name"], attrs, started))
            from .. import tracking

            batch.add_rows("params", [(rid, k, v) for k, v in tracking.secret_safe(st["params"]).items()])
            if started:
                batch.add_rows("run_states", [(rid, "running", started, None, None, None),
                                              (rid, "finished", started, 0, None, None)])
            if code_id:
                batch.add_edge(rid, code_id, "used", "code")
            if agent_id:
                batch.add_edge(rid, agent_id, "was_associated_with")
            for f, ds in ins:
                if ds is None:
                    continue
                role = "code" if f["path"].endswith(_SCRIPTS) else "input"
                batch.add_edge(rid, ds, "used", role)
                producer = produced.get(ds) or next(iter(store.generators(ds)), None)
                if producer and producer != rid:
                    batch.add_edge(rid, producer, "was_informed_by")
            for ds in outs:
                if ds is not None:
                    batch.add_edge(ds, rid, "was_generated_by")
                    produced[ds] = rid


def _utc(iso: str) -> str:
    """A git ISO-8601 time with offset as lineage's UTC form."""
    from datetime import datetime, timezone

    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return iso
