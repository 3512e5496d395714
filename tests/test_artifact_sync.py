"""A model's bytes are durable before, or with, the commit that records them: a small
model's bytes are written by that very transaction into the database (its file is not
synced, and is written again from there when lost or cut short); a larger model's
file is synced under its digest's name before the commit. A sync that fails (a full
disk) records nothing and leaves nothing under the name; and `describe`'s per-class
memory of scikit-learn's parameter names records exactly what `get_params` gives
(issue 16).

Real stores, real scikit-learn models and real files; the one stand-in is
`lineage.store.files.sync_file`, the documented hook through which a test watches
the sync or makes it fail as a full disk does (ENOSPC), which no disk here can be
made to do on demand.
"""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import threading
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
from lineage.store.files import INLINE_ARTIFACT_BYTES

BACKENDS = ("sqlite", "postgres")  # conftest runs the store fixtures on both

X = np.arange(40, dtype=float).reshape(20, 2)
y = np.array([0, 1] * 10)


def _models(n: int, start: float = 1.0) -> list[LogisticRegression]:
    """Small models (a pickle of about 1 KB: kept in the database too)."""
    return [LogisticRegression(C=start + i, max_iter=50).fit(X, y) for i in range(n)]


def _large_models(n: int, start: int = 0) -> list[RandomForestClassifier]:
    """Models whose pickle is past `INLINE_ARTIFACT_BYTES` (their file is synced)."""
    rng = np.random.default_rng(7)
    Xl = rng.normal(size=(300, 4))
    yl = (Xl[:, 0] + rng.normal(scale=0.5, size=300) > 0).astype(int)
    out = [RandomForestClassifier(n_estimators=60, random_state=start + i).fit(Xl, yl) for i in range(n)]
    assert all(len(pickle.dumps(m, protocol=5)) > INLINE_ARTIFACT_BYTES for m in out)
    return out


def _digest_of(model: Any) -> str:
    return hashlib.sha256(pickle.dumps(model, protocol=5)).hexdigest()


def _kept_in_database(lg: lineage.Lineage, digest: str) -> bytes | None:
    row = lg.store.conn.execute("SELECT data FROM artifact_blobs WHERE digest = ?", (digest,)).fetchone()
    return None if row is None else bytes(row[0])


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


def test_a_large_models_bytes_are_synced_before_the_model_is_recorded(lg: lineage.Lineage, monkeypatch: pytest.MonkeyPatch,
                                                                     store_path: Any) -> None:
    """At the moment of the sync, nothing of the model is recorded yet (a second
    connection sees no model) and nothing is under its digest's name."""
    seen: list[tuple[int, bool]] = []
    model = _large_models(1)[0]
    digest = _digest_of(model)
    target = lg.store.artifacts_dir / digest[:2] / digest

    def watching(fd: int) -> None:
        other = lineage.open(store_path)
        try:
            seen.append((len(other.store.nodes(kind="model", limit=5)), target.exists()))
        finally:
            other.close()
        os.fsync(fd)

    monkeypatch.setattr(files, "sync_file", watching)
    with lg.start_run("fit") as run:
        node = run.log_model(model, "clf")
    assert seen == [(0, False)]
    assert node.id == f"model:{digest}"
    _kept(lg, node)
    _no_temporaries(lg)
    # (PostgreSQL keeps every artifact's bytes on the server, for the team's other machines)
    assert (_kept_in_database(lg, digest) is None) == (lg.store.dialect == "sqlite")


def test_a_small_models_bytes_are_committed_with_its_record_and_its_file_is_not_synced(
        lg: lineage.Lineage, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []

    def watching(fd: int) -> None:
        synced.append(fd)
        os.fsync(fd)

    monkeypatch.setattr(files, "sync_file", watching)
    kept_model, undone_model = _models(2, start=40.0)
    with lg.start_run("fit") as run:
        node = run.log_model(kept_model, "clf")
        # a batch that fails takes the model's bytes with its record
        with pytest.raises(RuntimeError), lg.batch():
            run.log_model(undone_model, "clf")
            raise RuntimeError("the user's code failed")
    assert synced == []
    digest = node.id.split(":", 1)[1]
    assert _kept_in_database(lg, digest) == _kept(lg, node).read_bytes()
    assert _kept_in_database(lg, _digest_of(undone_model)) is None
    assert [n.id for n in lg.store.nodes(kind="model", limit=5)] == [node.id]
    _no_temporaries(lg)
    assert lg.verify().ok


@pytest.mark.parametrize("damage", ["lost", "cut short", "emptied", "zeroed"])
def test_a_small_models_file_a_power_cut_damaged_is_written_again_from_the_database(
        lg: lineage.Lineage, damage: str) -> None:
    """Its file was never synced: a power cut can lose it, or leave it cut short
    or unwritten under its name. Reading the model restores it; so does logging it
    again."""
    model = _models(1, start=50.0)[0]
    with lg.start_run("fit") as run:
        node = run.log_model(model, "clf")
    path = _kept(lg, node)

    def harm() -> None:
        size = path.stat().st_size
        if damage == "lost":
            path.unlink()
        else:
            path.write_bytes({"cut short": path.read_bytes()[:40], "emptied": b"", "zeroed": bytes(size)}[damage])

    harm()
    assert lg.load_model(node).C == 50.0
    _kept(lg, node)
    harm()
    assert lg.artifact_file(node) == path
    _kept(lg, node)
    harm()
    with lg.start_run("fit again") as run:
        assert run.log_model(model, "clf").id == node.id
    _kept(lg, node)
    _no_temporaries(lg)


def test_an_older_store_gains_the_artifact_table_and_keeps_its_synced_files(tmp_path: Path) -> None:
    """Migration 12 adds ``artifact_blobs``; models logged before it stay readable
    from their (synced) files, with no copy in the database."""
    import sqlite3

    from lineage.store import SCHEMA_VERSION

    db = tmp_path / ".lineage" / "lineage.db"
    old = lineage.open(db)
    with old.start_run("fit") as run:
        before = run.log_model(_models(1, start=60.0)[0], "clf")
    old.store.conn.execute("DELETE FROM artifact_blobs")
    old.close()
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE artifact_blobs")
    conn.execute("UPDATE meta SET value = '11' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    lg = lineage.open(db)
    try:
        assert lg.store.schema_version() == SCHEMA_VERSION >= 12
        assert lg.load_model(before).C == 60.0
        assert _kept_in_database(lg, before.id.split(":", 1)[1]) is None
        with lg.start_run("fit") as run:
            after = run.log_model(_models(1, start=61.0)[0], "clf")
        assert _kept_in_database(lg, after.id.split(":", 1)[1]) == _kept(lg, after).read_bytes()
        assert lg.verify().ok
    finally:
        lg.close()


def test_a_batch_of_several_models_keeps_every_file_and_reads_its_own_before_commit(lg: lineage.Lineage) -> None:
    models = _models(4, start=10.0)
    with lg.batch(), lg.start_run("fit") as run:
        nodes = [run.log_model(m, f"clf{i}") for i, m in enumerate(models)]
        # read back inside the batch, before its commit
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

    first, second, third = _large_models(3, start=20)  # (a small model's file is not synced)
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
            digest = _digest_of(model)
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
