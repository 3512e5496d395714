"""`lineage import dvc` on a real DVC pipeline built in the test (`dvc init`, `dvc add`,
`dvc stage add`, `dvc repro` in a temporary git repository, two commits changing the
data), compared with what DVC reports through its own API."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import require_module

import lineage
from lineage.cli import cli


def _dvc() -> str:
    exe = Path(sys.executable).with_name("dvc")
    return str(exe) if exe.exists() else (shutil.which("dvc") or "dvc")


def _sh(repo: Path, *argv: str) -> None:
    # every commit in the same second, as a script's or a rebase's are: the history's
    # order comes from ancestry, never from git's whole-second times
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com", "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    subprocess.run(list(argv), cwd=repo, check=True, capture_output=True, env=env)


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    require_module("dvc.repo")
    repo = tmp_path / "proj"
    repo.mkdir()
    dvc = _dvc()
    _sh(repo, "git", "init", "-q")
    _sh(repo, dvc, "init", "-q")
    (repo / "data").mkdir()
    (repo / "data" / "raw.csv").write_text("a,b\n1,2\n")
    (repo / "params.yaml").write_text("prep:\n  scale: 2\n")
    (repo / "prep.py").write_text("open('data/clean.csv', 'w').write(open('data/raw.csv').read().upper())\n")
    _sh(repo, dvc, "add", "-q", "data/raw.csv")
    _sh(repo, dvc, "stage", "add", "-q", "-n", "prep", "-d", "prep.py", "-d", "data/raw.csv", "-p", "prep.scale",
        "-o", "data/clean.csv", f"{sys.executable} prep.py")
    _sh(repo, dvc, "repro", "-q")
    _sh(repo, "git", "add", "-A")
    _sh(repo, "git", "commit", "-qm", "first data")
    (repo / "data" / "raw.csv").write_text("a,b\n3,4\n5,6\n")
    _sh(repo, dvc, "add", "-q", "data/raw.csv")
    _sh(repo, dvc, "repro", "-q")
    _sh(repo, "git", "add", "-A")
    _sh(repo, "git", "commit", "-qm", "second data")
    return repo


def _md5(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def test_present_state_matches_dvc(lg: lineage.Lineage, dvc_repo: Path) -> None:
    from dvc.repo import Repo

    result = lg.import_dvc(dvc_repo)
    assert result.counts["run"] == 1
    with Repo(str(dvc_repo)) as repo:
        [stage] = [s for s in repo.index.stages if getattr(s, "cmd", None)]
        run = lg.get("prep")
        assert run.attrs["command"] == [stage.cmd] and run.attrs["params"] == {"prep.scale": "2"}
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=dvc_repo, capture_output=True, text=True).stdout.strip()
        edges = lg.trace(run.id, depth=1).edges()
        code = next(e.dst for e in edges if e.src == run.id and e.role == "code" and e.dst.startswith("code:"))
        assert lg.get(code).attrs["commit"] == head
        for out in stage.outs:
            path = dvc_repo / out.def_path
            node = lg.get(out.def_path)
            assert node.attrs["digests"] == {"md5": out.hash_info.value} == {"md5": _md5(path)}
            assert node.id == "dataset:" + hashlib.sha256(path.read_bytes()).hexdigest()  # our SHA-256 beside it
            assert lg.store.generators(node.id) == [run.id]
        for dep in stage.deps:
            if type(dep).__name__ == "ParamsDependency":
                continue
            assert lg.get(str(dep.def_path)).attrs["digests"] == {"md5": dep.hash_info.value}
    assert lg.get(run.id).attrs["status"] == "finished"
    assert not lg.import_dvc(dvc_repo).changed
    assert lg.verify().ok


def test_all_commits_brings_the_data_history(lg: lineage.Lineage, dvc_repo: Path) -> None:
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "import", "dvc", str(dvc_repo), "--all-commits", "--json"])
    assert res.exit_code == 0, res.output
    runs = [n for n in lg.nodes(kind="run") if n.name == "prep"]
    assert len(runs) == 2  # the stage's lock entry of each commit
    versions = lg.history("data/clean.csv")
    assert len(versions) == 2
    old, new = versions
    assert old.attrs["content_hashed"] is False and "not available" in old.attrs["content"]  # only its MD5 is known
    assert new.attrs["content_hashed"] is True
    from dvc.repo import Repo

    from lineage.interop.graph import scope

    edges = scope(lg.store).edges
    assert any(e.rel == "was_revision_of" and (e.src, e.dst) == (new.id, old.id) for e in edges)
    # every run's output is the version DVC locked at its commit
    locked = set()
    with Repo(str(dvc_repo)) as repo:
        for _rev in repo.brancher(all_commits=True):
            for st in repo.index.stages:
                locked |= {o.hash_info.value for o in st.outs if str(o.def_path) == "data/clean.csv"}
    made = {lg.get(e.src).attrs["digests"]["md5"] for e in edges if e.rel == "was_generated_by" and e.dst in {r.id for r in runs}}
    assert made == locked and len(locked) == 2
    assert len(lg.history("data/raw.csv")) == 2
    again = CliRunner().invoke(cli, ["--db", str(lg.db_path), "import", "dvc", str(dvc_repo), "--all-commits"])
    assert again.exit_code == 0 and "nothing new" in again.output


def test_a_repo_without_dvc_yaml_is_one_line(lg: lineage.Lineage, tmp_path: Path) -> None:
    require_module("dvc.repo")
    repo = tmp_path / "empty"
    repo.mkdir()
    _sh(repo, "git", "init", "-q")
    _sh(repo, _dvc(), "init", "-q")
    before = lg.store.head()
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "import", "dvc", str(repo)])
    assert res.exit_code == 1 and "dvc.yaml" in res.output and len(res.output.strip().splitlines()) == 1
    assert lg.store.head() == before


def test_data_known_by_md5_is_linked_once_hashed(lg: lineage.Lineage, dvc_repo: Path) -> None:
    clean = dvc_repo / "data" / "clean.csv"
    content = clean.read_bytes()
    clean.unlink()  # as after a `git clone` without `dvc pull`
    lg.import_dvc(dvc_repo)
    foreign = lg.get("data/clean.csv")
    assert foreign.attrs["content_hashed"] is False and foreign.attrs["digests"] == {"md5": _md5_bytes(content)}
    clean.write_bytes(content)  # `dvc pull`
    result = lg.import_dvc(dvc_repo)
    assert result.counts == {"dataset": 1, "edges": 1}
    node = lg.get("dataset:" + hashlib.sha256(content).hexdigest())
    assert node.attrs["digests"] == foreign.attrs["digests"]
    assert [(e.dst, e.rel, e.role) for e in lg.trace(node.id, depth=1).edges() if e.src == node.id] == \
        [(foreign.id, "was_derived_from", "same_data")]
    assert lg.get("prep").id in lg.trace(node.id).graph  # its provenance goes through the MD5 node


def _md5_bytes(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def test_an_uncommitted_repro_is_not_recorded_as_the_clean_commit(lg: lineage.Lineage, dvc_repo: Path) -> None:
    """The work tree's dvc.lock after an uncommitted `dvc repro` was recorded with
    HEAD's code, `dirty: false`: checking that commit out gives other data."""
    (dvc_repo / "data" / "raw.csv").write_text("a,b\n7,7\n")
    _sh(dvc_repo, _dvc(), "add", "-q", "data/raw.csv")
    _sh(dvc_repo, _dvc(), "repro", "-q")
    lg.import_dvc(dvc_repo)
    run = lg.get("prep")
    code = next(e.dst for e in lg.trace(run.id, depth=1).edges() if e.role == "code" and e.dst.startswith("code:"))
    attrs = lg.get(code).attrs
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=dvc_repo, capture_output=True, text=True).stdout.strip()
    assert attrs["commit"] == head and attrs["dirty"] is True and attrs["diff_digest"]
    assert code != "code:" + hashlib.sha256(f"{head}\0".encode()).hexdigest()  # not the clean commit's code
    assert lg.verify().ok


def test_a_store_outside_the_repo_finds_its_files(dvc_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Imported into a store of another project, DVC's paths (relative to its repo)
    were looked up under that project: every file 'missing', `status --check` exit 1."""
    db = tmp_path / "elsewhere" / ".lineage" / "lineage.db"
    res = CliRunner().invoke(cli, ["--db", str(db), "import", "dvc", str(dvc_repo), "--all-commits"])
    assert res.exit_code == 0, res.output
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["--db", str(db), "status", "--check"])
    assert res.exit_code == 0, res.output
    (dvc_repo / "data" / "raw.csv").write_text("a,b\n7,8\n")  # and a real change is still seen
    res = CliRunner().invoke(cli, ["--db", str(db), "status", "--json"])
    assert [n["attrs"]["abspath"] for n in json.loads(res.stdout)["changed"]] == [str(dvc_repo / "data" / "raw.csv")]
