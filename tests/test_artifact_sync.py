"""A model's bytes are synced off the caller's thread, never after the commit that
records them (issue 16): `put_artifact(later=True)` hands the write, the fsync and
the rename to a worker, and every COMMIT waits for the artifacts its thread put.

Real stores, real scikit-learn models and real files; the one stand-in is
`lineage.store.files.sync_file`, the documented hook through which a test makes
the sync slow or makes it fail as a full disk does (ENOSPC), which no disk here can
be made to do on demand.
"""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import lineage
from lineage import describe
from lineage.errors import DiskFullError
from lineage.model import canonical_json
from lineage.store import files

BACKENDS = ("sqlite", "postgres")  # conftest runs the store fixtures on both

X = np.arange(40, dtype=float).reshape(20, 2)
y = np.array([0, 1] * 10)


def _models(n: int, start: float = 1.0) -> list[LogisticRegression]:
    return [LogisticRegression(C=start + i, max_iter=50).fit(X, y) for i in range(n)]


def _kept(lg: lineage.Lineage, node: Any) -> Path:
    """The artifact of ``node``, checked: present, with the digest its id names."""
    digest = node.id.split(":", 1)[1]
    path = lg.store.artifacts_dir / digest[:2] / digest
    assert path.is_file(), f"{node.id}: no file under its digest's name"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    return path


def _no_temporaries(lg: lineage.Lineage) -> None:
    assert not [p for p in lg.store.artifacts_dir.rglob("*") if p.name.endswith(".tmp")]


def _model_count(lg: lineage.Lineage) -> int:
    return len(lg.store.nodes(kind="model", limit=10_000))


def test_a_logged_model_is_on_disk_with_its_digest_once_log_model_returns(lg: lineage.Lineage) -> None:
    with lg.start_run("fit") as run:
        nodes = [run.log_model(m, "clf") for m in _models(3)]
    for node in nodes:
        _kept(lg, node)
    assert type(lg.load_model(nodes[-1])).__name__ == "LogisticRegression"
    _no_temporaries(lg)
    assert lg.verify().ok


def test_the_commit_waits_for_the_sync_of_the_bytes_it_records(lg: lineage.Lineage, monkeypatch: pytest.MonkeyPatch,
                                                               store_path: Any) -> None:
    """While the sync is held back, the model is neither recorded (a second connection
    sees no model) nor under its name; once the sync is done, both are."""
    held, entered = threading.Event(), threading.Event()
    real = os.fsync

    def slow_disk(fd: int) -> None:
        entered.set()
        held.wait(30)
        real(fd)

    monkeypatch.setattr(files, "sync_file", slow_disk)
    model = _models(1)[0]
    digest = hashlib.sha256(pickle.dumps(model, protocol=5)).hexdigest()
    target = lg.store.artifacts_dir / digest[:2] / digest
    out: list[Any] = []
    with lg.start_run("fit") as run:
        t = threading.Thread(target=lambda: out.append(run.log_model(model, "clf")))
        t.start()
        assert entered.wait(30)
        time.sleep(0.2)  # (the caller has had time to reach its commit)
        other = lineage.open(store_path)
        try:
            assert other.store.nodes(kind="model", limit=5) == []  # nothing recorded yet
        finally:
            other.close()
        assert not target.exists() and t.is_alive()
        held.set()
        t.join(30)
    assert out and out[0].id == f"model:{digest}"
    _kept(lg, out[0])
    _no_temporaries(lg)


def test_a_batch_of_several_models_keeps_every_file_and_reads_its_own_before_commit(lg: lineage.Lineage) -> None:
    models = _models(4, start=10.0)
    with lg.batch(), lg.start_run("fit") as run:
        nodes = [run.log_model(m, f"clf{i}") for i, m in enumerate(models)]
        # read back inside the batch, before its commit: the read waits for the bytes
        assert lg.load_model(nodes[0]).C == 10.0
        assert lg.artifact_file(nodes[2]).is_file()
    for node in nodes:
        _kept(lg, node)
    assert _model_count(lg) == 4
    _no_temporaries(lg)


def test_a_full_disk_at_the_sync_rolls_back_the_model_and_leaves_no_file(lg: lineage.Lineage,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    first, second, third = _models(3, start=20.0)
    with lg.start_run("fit") as run:
        kept = run.log_model(first, "clf")
        monkeypatch.setattr(files, "sync_file", full_disk)
        with pytest.raises(DiskFullError, match="artifact"):
            run.log_model(second, "clf")
        # in a batch the whole batch goes: the dataset logged before it too
        with pytest.raises(DiskFullError), lg.batch():
            lg.log_dataset(uri="s3://b/x.csv", digest="ee" * 32, name="x")
            run.log_model(third, "clf")
        monkeypatch.setattr(files, "sync_file", os.fsync)
        assert lg.store.nodes(kind="dataset", limit=5) == []
        assert [n.id for n in lg.store.nodes(kind="model", limit=5)] == [kept.id]
        for model in (second, third):
            digest = hashlib.sha256(pickle.dumps(model, protocol=5)).hexdigest()
            assert not (lg.store.artifacts_dir / digest[:2] / digest).exists()
        _no_temporaries(lg)
        again = run.log_model(second, "clf")  # the disk has room again: the same call succeeds
    _kept(lg, again)
    assert lg.verify().ok


def test_two_threads_logging_models_keep_every_file(lg: lineage.Lineage) -> None:
    shared = _models(1, start=99.0)[0]
    per_thread = {k: _models(5, start=30.0 + 10 * k) for k in range(2)}
    nodes: list[Any] = []
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            with lg.start_run(f"fit{k}") as run:
                for m in [*per_thread[k], shared]:
                    nodes.append(run.log_model(m, f"clf{k}"))
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(nodes) == 12
    for node in nodes:
        _kept(lg, node)
    assert _model_count(lg) == 11  # the shared model is one node
    _no_temporaries(lg)
    assert lg.verify().ok


@pytest.mark.sqlite_only
def test_a_forked_child_never_waits_for_the_parents_worker(lg: lineage.Lineage, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent's worker is stuck in a sync when the process forks: the child, which
    has no such thread, logs and commits a model of its own all the same."""
    parent = os.getpid()
    held, entered = threading.Event(), threading.Event()
    real = os.fsync

    def stuck_in_parent(fd: int) -> None:
        if os.getpid() == parent:
            entered.set()
            held.wait(60)
        real(fd)

    monkeypatch.setattr(files, "sync_file", stuck_in_parent)
    lg.store.put_artifact("ab" * 32, b"the parent's bytes", later=True)  # (no commit waits for it here)
    assert entered.wait(30)
    child_model = _models(1, start=50.0)[0]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            with lg.start_run("child") as run:
                node = run.log_model(child_model, "clf")
            digest = node.id.split(":", 1)[1]
            data = (lg.store.artifacts_dir / digest[:2] / digest).read_bytes()
            code = 0 if hashlib.sha256(data).hexdigest() == digest else 2
        finally:
            os._exit(code)
    try:
        deadline = time.monotonic() + 60
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            assert time.monotonic() < deadline, "the forked child hung"
            time.sleep(0.05)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        held.set()
    lg.store.wait_artifacts()  # the parent's own write completes once its disk answers
    assert (lg.store.artifacts_dir / "ab" / ("ab" * 32)).read_bytes() == b"the parent's bytes"


def test_full_durability_also_syncs_the_folder_that_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   store_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    synced: list[int] = []

    def counting(fd: int) -> None:
        synced.append(fd)
        os.fsync(fd)

    monkeypatch.setattr(files, "sync_file", counting)
    model_a, model_b = _models(2, start=60.0)
    with lineage.open(store_path) as lg, lg.start_run("fit") as run:
        run.log_model(model_a, "a")
        assert len(synced) == 1  # normal: the file's bytes
        monkeypatch.setenv("LINEAGE_DURABILITY", "full")
        run.log_model(model_b, "b")
        assert len(synced) == 3  # full: the bytes, then the folder holding the new name


@pytest.mark.parametrize("kind", ["logistic", "pipeline", "forest"])
def test_the_recorded_description_is_what_scikit_learns_get_params_gives(lg: lineage.Lineage, kind: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`describe` reads scikit-learn's parameter names once per class rather than
    introspecting ``__init__`` per call: the recorded attributes stay byte for byte
    what `get_params` itself gives."""
    model: Any = {
        "logistic": LogisticRegression(C=0.5, max_iter=50),
        "pipeline": Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=50))]),
        "forest": RandomForestClassifier(n_estimators=3, random_state=0),
    }[kind].fit(X, y)
    with lg.start_run("fit") as run:
        run.log_model(_models(1)[0], "warm")  # (the per-class names are remembered by now)
        node = run.log_model(model, "m")
    recorded = canonical_json(dict(node.attrs))
    # the same description with every class's own get_params called, as before
    monkeypatch.setattr(describe, "_param_names", weakref.WeakKeyDictionary())
    monkeypatch.setattr(describe, "_own_param_names", lambda cls: None)
    slow = describe.describe_model(model)
    digest = node.id.split(":", 1)[1]
    slow.update({"artifact": f"artifacts/{digest[:2]}/{digest}", "size": node.attrs["size"], "serializer": "pickle"})
    assert recorded == canonical_json(slow)
    assert node.attrs["params"]["C" if kind != "forest" else "n_estimators"] in (0.5, 1.0, 3)
