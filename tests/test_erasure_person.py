"""Erasing a person (an agent node) reaches every record that names them: who changed
a label, who made or recorded a statement, a run's captured environment, the person's
other agent records; and nothing else. The chain still verifies, the graph keeps its
shape, and the audit says the person was erased."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

import lineage
from lineage.cli import cli
from lineage.model import ERASED_PERSON

BACKENDS = ("sqlite", "postgres")  # conftest runs the store fixtures on both

EVE = {"LINEAGE_NAME": "Eve Engineer", "LINEAGE_EMAIL": "eve@example.com", "LINEAGE_USER": "evelogin"}
BOB = {"LINEAGE_NAME": "Bob Builder", "LINEAGE_EMAIL": "bob@example.com", "LINEAGE_USER": "boblogin"}
EVE_TEXTS = ("Eve Engineer", "eve@example.com", "evelogin")
BOB_TEXTS = ("Bob Builder", "bob@example.com", "boblogin")
ROWS = "age,sex,y\n1,0,1\n2,1,0\n3,0,1\n4,1,0\n5,0,1\n6,1,0\n"


def _as(monkeypatch: pytest.MonkeyPatch, person: dict[str, str], store_path: Any) -> lineage.Lineage:
    """The store opened as ``person`` (their git name, email and login)."""
    for key, value in person.items():
        monkeypatch.setenv(key, value)
    return lineage.open(store_path)


def _fit(lg: lineage.Lineage, tmp_path: Path, name: str = "risk") -> Any:
    (tmp_path / "train.csv").write_text(ROWS)
    frame = pd.read_csv(tmp_path / "train.csv")
    ds = lg.log_dataset(tmp_path / "train.csv", name="train")
    with lg.start_run("fit", params={"C": 1.0}) as run:
        run.log_input(ds)
        return run.log_model(LogisticRegression().fit(frame[["age", "sex"]], frame["y"]), name)


def _everything(lg: lineage.Lineage) -> str:
    """Every row of every recorded table and of the ledger, as text."""
    from lineage.store.schema import RECORD_TABLES

    out = [repr(r) for t in (*RECORD_TABLES, "events") for r in lg.store.conn.execute(f"SELECT * FROM {t}")]
    return "\n".join(out)


def _shape(lg: lineage.Lineage) -> dict[str, Any]:
    conn = lg.store.conn
    return {"nodes": conn.execute("SELECT id, kind, created_at FROM nodes ORDER BY pk").fetchall(),
            "edges": conn.execute("SELECT src, dst, rel, role FROM edges ORDER BY pk").fetchall(),
            "promotions": conn.execute("SELECT name, label, model, action, reason, at FROM promotions ORDER BY pk").fetchall(),
            "annotations": conn.execute("SELECT node, field, text, at FROM annotations ORDER BY pk").fetchall(),
            "events": conn.execute("SELECT seq, type, payload_digest, hash FROM events ORDER BY seq").fetchall()}


def _two_people(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_path: Any) -> dict[str, Any]:
    """Eve trains, promotes and annotates; Bob promotes, and types Eve as the author
    of one statement; Eve records one in Bob's name."""
    monkeypatch.chdir(tmp_path)
    with _as(monkeypatch, EVE, store_path) as lg:
        model = _fit(lg, tmp_path)
        lg.promote(model, "staging", "first fit")
        lg.annotate(model, "intended_use", "ranking demo data")
        lg.annotate(model, "limitations", "six rows", author="Bob Builder")  # Eve records Bob's words
        eve = lg.actor
    with _as(monkeypatch, BOB, store_path) as lg:
        lg.promote(model, "production", "reviewed")
        lg.annotate(model, "sign_off", "approved", author="Eve Engineer <eve@example.com>")
        bob = lg.actor
    return {"model": model.id, "eve": eve, "bob": bob}


def test_erasing_a_person_erases_their_name_everywhere_and_nothing_else(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_path: Any) -> None:
    """The agent node lost its name, but "Eve Engineer <eve@example.com> (evelogin@…)"
    stayed in the promotion she made, the statements she made or recorded and her
    run's captured environment; the audit still printed it."""
    ids = _two_people(tmp_path, monkeypatch, store_path)
    with _as(monkeypatch, BOB, store_path) as lg:
        before = _everything(lg)
        assert all(t in before for t in EVE_TEXTS)
        shape = _shape(lg)
        lg.redact(ids["eve"], reason="GDPR request 2026-7")
        after = _everything(lg)
        assert [t for t in EVE_TEXTS if t in after] == []
        assert all(t in after for t in BOB_TEXTS)  # Bob's records are his, and stay
        assert lg.verify().ok
        now = _shape(lg)
        # the graph, the facts and the chain keep their shape; the redact event follows
        assert now["events"][:len(shape["events"])] == shape["events"]
        assert [e[1] for e in now["events"][len(shape["events"]):]] == ["redact"]
        assert {k: v for k, v in now.items() if k not in ("annotations", "events")} == \
            {k: v for k, v in shape.items() if k not in ("annotations", "events")}
        assert [a[:2] + a[3:] for a in now["annotations"]] == [a[:2] + a[3:] for a in shape["annotations"]]
        rows = {r["label"]: r for r in lg.store.promotion_rows("risk")}
        assert rows["staging"]["author"] == ERASED_PERSON and rows["staging"]["model"] == ids["model"]
        assert rows["production"]["author"].startswith("Bob Builder <bob@example.com>")
        notes = lg.annotations(ids["model"])
        assert notes["intended_use"] == {**notes["intended_use"], "text": "ranking demo data", "author": ERASED_PERSON,
                                         "recorded_by": ERASED_PERSON}
        assert notes["limitations"]["author"] == "Bob Builder" and notes["limitations"]["recorded_by"] == ERASED_PERSON
        assert notes["sign_off"]["author"] == ERASED_PERSON and notes["sign_off"]["text"] == "approved"
        assert notes["sign_off"]["recorded_by"].startswith("Bob Builder")
        report = lg.audit(ids["model"])
        for text in (report.to_markdown(), report.to_html(), json.dumps(report.to_dict())):
            assert [t for t in EVE_TEXTS if t in text] == [] and "erased" in text
        assert "signed off by [erased]" in json.dumps(report.to_dict())
    result = CliRunner().invoke(cli, ["--db", str(store_path), "verify"])
    assert result.exit_code == 0, result.output


def test_a_person_erased_leaves_no_copy_in_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       backend: str, store_path: Any) -> None:
    if backend != "sqlite":
        pytest.skip("a server's files are the server's (docs/postgres.md)")
    ids = _two_people(tmp_path, monkeypatch, store_path)
    with _as(monkeypatch, BOB, store_path) as lg:
        for c in lg.store._conns:  # as on a build whose SQLite has no SECURE_DELETE default
            c.execute("PRAGMA secure_delete = OFF")
        lg.redact(ids["eve"], reason="GDPR request 2026-7")
    raw = b"".join(p.read_bytes() for p in Path(store_path).parent.glob("lineage.db*"))
    assert [t for t in EVE_TEXTS if t.encode() in raw] == []


def test_a_shared_login_is_not_the_erased_persons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   store_path: Any) -> None:
    """Two people on one account (a training server), told apart by git: erasing one
    leaves the account name in the other's records."""
    monkeypatch.chdir(tmp_path)
    with _as(monkeypatch, {**EVE, "LINEAGE_USER": "ml"}, store_path) as lg:
        model = _fit(lg, tmp_path)
        eve = lg.actor
    with _as(monkeypatch, {**BOB, "LINEAGE_USER": "ml"}, store_path) as lg:
        lg.promote(model, "production")
        with lg.start_run("bobs"):
            pass
        lg.redact(eve, reason="GDPR request 8")
        assert "Eve Engineer" not in _everything(lg) and "eve@example.com" not in _everything(lg)
        (row,) = lg.store.promotion_rows("risk")
        assert row["author"].startswith("Bob Builder <bob@example.com> (ml@")
        assert lg.get("bobs").attrs["experiment"] == "default"  # (not blanked: "ml" is Bob's login too)
        assert lg.get(model.id).name == "risk"
        assert lg.verify().ok


def test_erasing_a_person_keeps_their_runs_attributes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      store_path: Any) -> None:
    """A run recorded who ran it twice: by its agent, and by the LINEAGE_USER,
    LINEAGE_EMAIL and LINEAGE_NAME in its captured environment, so erasing the person
    blanked the run's attributes whole (experiment, command, host). The agent holds
    who; the run keeps what ran, and loses nothing when the person goes."""
    monkeypatch.chdir(tmp_path)
    with _as(monkeypatch, {**EVE, "OMP_NUM_THREADS": "4"}, store_path) as lg:
        with lg.start_run("eves-fit", experiment="churn") as run:
            run.log_metric("acc", 0.9)
        eve = lg.actor
        env = lg.get(run.id).attrs["env"]
        lg.redact(eve, reason="GDPR request 9")
        kept = lg.get(run.id)
        assert kept.name == "eves-fit" and kept.attrs["experiment"] == "churn"
        assert kept.attrs["env"]["OMP_NUM_THREADS"] == "4" and kept.attrs["metrics"] == {"acc": 0.9}
        assert [t for t in EVE_TEXTS if t in _everything(lg)] == []
        assert lg.verify().ok
        assert env["OMP_NUM_THREADS"] == "4" and not set(env) & set(EVE)  # who ran it is the agent's to say


def test_a_statement_that_lost_its_author_can_lose_its_text_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                store_path: Any) -> None:
    """Erasure in two steps (the person, then the node): the second redaction of the
    row still names the digest its first event committed to, so verify passes."""
    ids = _two_people(tmp_path, monkeypatch, store_path)
    with _as(monkeypatch, BOB, store_path) as lg:
        lg.redact(ids["eve"], reason="GDPR request 2026-7")
        assert lg.annotations(ids["model"])["intended_use"]["author"] == ERASED_PERSON
        lg.redact(ids["model"], reason="GDPR request 2026-8")
        assert lg.verify().ok
        assert {a["text"] for a in lg.annotations(ids["model"]).values()} == {None}
        with pytest.raises(lineage.errors.WriteRefusedError):
            lg.redact(ids["eve"], reason="again")


def test_an_erased_author_edited_back_fails_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   store_path: Any) -> None:
    """A redaction record vouches only for the row as erasure left it: the author put
    back, or the label moved while the author stays blank, is caught."""
    ids = _two_people(tmp_path, monkeypatch, store_path)
    with _as(monkeypatch, BOB, store_path) as lg:
        lg.redact(ids["eve"], reason="GDPR request 2026-7")
        conn = lg.store.conn
        assert conn.execute("SELECT author FROM promotions WHERE label = 'staging'").fetchone() == (None,)
        conn.execute("UPDATE promotions SET author = 'Mallory' WHERE label = 'staging'")
        assert not lg.verify().ok
        conn.execute("UPDATE promotions SET author = NULL, label = 'production' WHERE label = 'staging'")
        assert not lg.verify().ok


def test_a_tag_or_param_that_is_the_person_loses_its_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           store_path: Any) -> None:
    """An MLflow script's `mlflow.user` tag is the login; a param can hold the email:
    their values go, their keys and the run's other values stay."""
    monkeypatch.chdir(tmp_path)
    with _as(monkeypatch, EVE, store_path) as lg:
        with lg.start_run("fit", params={"notify": "eve@example.com", "C": 0.5},
                          tags={"mlflow.user": "evelogin", "team": "risk"}) as run:
            pass
        lg.redact(lg.actor, reason="GDPR request 9")
        node = lg.get(run.id)
        params = dict(lg.store.conn.execute("SELECT key, value FROM params WHERE run = ?", (run.id,)).fetchall())
        tags = dict(lg.store.conn.execute("SELECT key, value FROM tags WHERE run = ?", (run.id,)).fetchall())
        assert params["notify"] is None and params["C"] == "0.5"
        assert tags["mlflow.user"] is None and tags["team"] == "risk"
        assert node.name == "fit" and "redacted" not in node.attrs and lg.verify().ok  # (the run itself is kept)


def test_a_payload_blanked_outside_lineage_fails_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        store_path: Any) -> None:
    """The chain commits to a payload's digest, not its text, so an erasure may blank a
    payload and still verify; one blanked by hand (who promoted, and why, gone) must
    not: only a payload an erasure record lists may be gone."""
    ids = _two_people(tmp_path, monkeypatch, store_path)
    with _as(monkeypatch, BOB, store_path) as lg:
        conn = lg.store.conn
        (seq,) = conn.execute("SELECT max(seq) FROM events WHERE type = 'promote'").fetchone()
        conn.execute("UPDATE events SET payload = NULL WHERE seq = ?", (seq,))
        report = lg.verify()
        assert not report.ok and report.first_bad == seq
        assert f"event {seq}: its payload is gone, and no erasure record" in report.problems[0]
    result = CliRunner().invoke(cli, ["--db", str(store_path), "verify"])
    assert result.exit_code != 0 and f"event {seq}" in result.output
    assert ids["model"]


def test_an_erasure_record_that_names_a_person_erased_later_keeps_its_list(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_path: Any) -> None:
    """Eve's erasure lists the events whose payloads it blanked; its reason names Bob,
    who handled it. Erasing Bob blanks that record's payload too, so the new record
    carries its list along, or Eve's blanked payloads would read as deleted by hand."""
    ids = _two_people(tmp_path, monkeypatch, store_path)
    with _as(monkeypatch, EVE, store_path) as lg:
        eve = lg.actor
    with _as(monkeypatch, BOB, store_path) as lg:
        bob = lg.actor
        lg.redact(eve, reason="GDPR request 2026-7, handled by bob@example.com")
        first, payload = lg.store.conn.execute("SELECT seq, payload FROM events WHERE type = 'redact'").fetchone()
        eves = json.loads(payload)["payloads"]
        lg.redact(bob, reason="GDPR request 2026-8")
        conn = lg.store.conn
        assert conn.execute("SELECT payload FROM events WHERE seq = ?", (first,)).fetchone() == (None,)
        (last,) = [json.loads(p) for (p,) in conn.execute("SELECT payload FROM events WHERE type = 'redact' AND seq > ?",
                                                          (first,))]
        assert set(eves) | {first} <= set(last["payloads"])
        report = lg.verify()
        assert report.ok, report.problems
        assert lg.get(ids["model"]).name == "risk"
