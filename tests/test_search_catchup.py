"""The full-text index catches up when it is searched (issue 16, migration 10): no
write touches it, every search sees every row written before it, an erasure still
takes the erased words out of the files, an older store (with migration 8's
triggers) upgrades and verifies, and a store that cannot be written is searched
through a copy of the index in memory."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest
from conftest import exit_code_as_nobody

import lineage
from lineage.store import SCHEMA_VERSION, Store, fulltext


def _marks(store: Store) -> dict[str, int]:
    return dict(store.conn.execute("SELECT tbl, pk FROM fts_marks").fetchall())


def _triggers(store: Store) -> list[str]:
    return [r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]


def test_writes_do_not_touch_the_index_and_a_search_catches_it_up(tmp_path: Path) -> None:
    lg = lineage.open(tmp_path / "lineage.db")
    run = lg.start_run("warm", params={"w": 1})
    seen: list[str] = []
    lg.store.conn.set_trace_callback(seen.append)
    run.log_param("penalty", "elasticnet")
    run.set_tag("team", "quokka")
    lg.store.conn.set_trace_callback(None)
    assert not [s for s in seen if "_fts" in s or s.startswith("--")], seen  # no trigger, no index write
    assert _triggers(lg.store) == []
    before = _marks(lg.store)
    assert names(lg.search("elasticnet")) == ["warm"] and names(lg.search("quokka")) == ["warm"]
    after = _marks(lg.store)
    top = lg.store.conn.execute("SELECT MAX(pk) FROM params").fetchone()[0]
    assert after["params"] == top > before.get("params", 0)
    # nothing new: a search is one read of the marks, no write transaction
    seen.clear()
    lg.store.conn.set_trace_callback(seen.append)
    lg.search("elasticnet")
    lg.store.conn.set_trace_callback(None)
    assert not any(s.upper().startswith(("BEGIN", "INSERT")) for s in seen), seen
    assert fulltext.check(lg.store) == []
    run.end()
    assert lg.verify().ok


def names(hits: list) -> list[str | None]:
    return [h.node.name for h in hits]


def test_rows_from_another_connection_and_a_rolled_back_write_are_indexed_right(tmp_path: Path) -> None:
    db = tmp_path / "lineage.db"
    a, b = lineage.open(db), lineage.open(db)
    with a.start_run("first", params={"colour": "vermilion"}):
        pass
    assert names(b.search("vermilion")) == ["first"]
    with pytest.raises(RuntimeError), a.batch():
        with a.start_run("undone", params={"colour": "chartreuse"}):
            pass
        raise RuntimeError("roll back")  # its rows, and their pks, are gone
    with b.start_run("second", params={"colour": "cerulean"}):
        pass
    assert names(a.search("cerulean")) == ["second"] and a.search("chartreuse") == []
    assert set(names(a.search("colour"))) == {"first", "second"}
    assert fulltext.check(a.store) == []
    assert a.verify().ok


def test_an_erasure_takes_words_not_yet_indexed_out_too(tmp_path: Path) -> None:
    lg = lineage.open(tmp_path / "lineage.db")
    with lg.start_run("keep", params={"owner": "alice"}):
        pass
    assert names(lg.search("alice")) == ["keep"]  # indexed up to here
    with lg.start_run("xylophonist_run", params={"note": "xylophonist"}) as gone:
        pass
    lg.annotate(gone.id, "limitations", "qwertyzed by the analyst")
    lg.redact(gone.id, reason="GDPR request 9")  # erased before any search indexed it
    assert lg.search("qwertyzed") == [] and lg.search("xylophonist_run") == []
    assert names(lg.search("alice")) == ["keep"]
    raw = b"".join(p.read_bytes() for p in lg.db_path.parent.glob("lineage.db*"))
    assert b"qwertyzed" not in raw and b"xylophonist_run" not in raw
    assert fulltext.check(lg.store) == []
    assert lg.verify().ok


def test_a_store_with_the_old_triggers_upgrades_and_still_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "lineage.db"
    lg = lineage.open(db)
    with lg.start_run("before_upgrade", params={"solver": "liblinear"}):
        pass
    lg.close()
    # what version 9 was: the triggers of migration 8 keeping the index, no marks
    conn = sqlite3.connect(db)
    import sqlite_utils

    sdb = sqlite_utils.Database(conn, recursive_triggers=False)
    for table, columns in fulltext.SOURCES.items():
        sdb[table].enable_fts(list(columns), create_triggers=True, replace=True)
    conn.execute("DROP TABLE fts_marks")
    conn.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    conn.commit()
    assert len(conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()) == 15
    conn.close()
    lg = lineage.open(db)
    assert lg.store.schema_version() == SCHEMA_VERSION
    assert _triggers(lg.store) == []
    assert _marks(lg.store)["params"] == lg.store.conn.execute("SELECT MAX(pk) FROM params").fetchone()[0]
    with lg.start_run("after_upgrade", params={"solver": "saga"}):
        pass
    assert names(lg.search("liblinear")) == ["before_upgrade"]
    assert names(lg.search("saga")) == ["after_upgrade"]
    assert fulltext.check(lg.store) == []
    assert lg.verify().ok
    lg.close()


def test_a_store_that_cannot_be_written_is_searched_in_memory(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="lineage-ro-search-"))
    base.chmod(0o755)
    d = base / ".lineage"
    lg = lineage.open(d / "lineage.db")
    with lg.start_run("searched_once", params={"k": "v"}):
        pass
    assert names(lg.search("searched")) == ["searched_once"]
    with lg.start_run("never_searched", params={"flavour": "pistachio"}):
        pass  # past the mark: only a search could index it, and none will write here
    assert lg.verify().ok  # (imports what the child needs: `nobody` cannot read the interpreter's library)
    lg.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    lg.close()
    for extra in ("lineage.db-wal", "lineage.db-shm"):
        (d / extra).unlink(missing_ok=True)
    (d / "lineage.db").chmod(0o444)
    d.chmod(0o555)

    def search() -> int:
        try:
            ro = lineage.open(d / "lineage.db", create=False)
            ok = (ro.store.read_only and names(ro.search("pistachio")) == ["never_searched"]
                  and names(ro.search("once")) == ["searched_once"] and ro.verify().ok)
            ro.close()
            return 0 if ok else 2
        except BaseException:
            return 3

    try:
        assert exit_code_as_nobody(search) == 0  # (as root: in a child dropped to `nobody`, where the mode bites)
    finally:
        d.chmod(0o755)
        (d / "lineage.db").chmod(0o644)
        import shutil

        shutil.rmtree(base, ignore_errors=True)


def test_a_search_while_another_writer_holds_the_lock_still_sees_everything(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from lineage.store import sqlite as store_sqlite

    db = tmp_path / "lineage.db"
    lg = lineage.open(db)
    with lg.start_run("marmalade_run", params={"jar": "glass"}):
        pass
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's long write
    monkeypatch.setattr(store_sqlite, "BUSY_SECONDS", 0.3)
    try:
        assert names(lg.search("marmalade")) == ["marmalade_run"]  # indexed in memory meanwhile
    finally:
        other.execute("ROLLBACK")
        other.close()
    with lg.start_run("later_run", params={"jar": "tin"}):
        pass
    assert names(lg.search("tin")) == ["later_run"]
    run_id = lg.search("marmalade")[0].node.id
    lg.redact(run_id, reason="GDPR request 11")  # the in-memory copy goes with the words
    assert lg.search("marmalade") == [] and names(lg.search("tin")) == ["later_run"]
    assert fulltext.check(lg.store) == []
    assert lg.verify().ok
