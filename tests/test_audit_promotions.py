"""The labels a report shows are re-checked like every other fact it shows: a
promotion row edited in SQLite after it was recorded makes the audit's integrity fail,
names the event, and marks the labels in the HTML report; the inventory says so too.
`lineage verify` already caught it; before this, the audit called the record intact."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

import lineage
from lineage.cli import cli


def _store(tmp_path: Path) -> tuple[Path, str, str]:
    """A model trained on a dataset and promoted to production, with a verified
    checkpoint after it; returns the database, the model's id and its name."""
    db = tmp_path / ".lineage" / "lineage.db"
    (tmp_path / "train.csv").write_text("x,y\n0,0\n1,0\n2,1\n3,1\n")
    with lineage.open(db) as lg:
        train = lg.log_dataset(tmp_path / "train.csv", name="train")
        with lg.start_run("fit") as run:
            run.log_input(train)
            clf = LogisticRegression().fit([[0], [1], [2], [3]], [0, 0, 1, 1])
            model = run.log_model(clf, "risk")
        lg.promote(model, "production", reason="passed validation")
        lg.verify(record=True)
    return db, model.id, "risk"


def _forge_label(db: Path) -> int:
    """Rewrite the production promotion as 'retired' behind lineage's back; returns
    the event that recorded it."""
    conn = sqlite3.connect(db)
    with conn:
        (event,) = conn.execute("SELECT event FROM promotions WHERE label = 'production'").fetchone()
        conn.execute("UPDATE promotions SET label = 'retired' WHERE label = 'production'")
    conn.close()
    return event


def test_an_intact_promotion_is_among_the_facts_checked(tmp_path: Path) -> None:
    db, model_id, _ = _store(tmp_path)
    with lineage.open(db) as lg:
        report = lg.audit(model_id)
    integ = report.to_dict()["integrity"]
    assert integ["ok"], integ["problems"]
    assert integ["facts"]["by_table"].get("promotions") == 1
    assert report.to_dict()["model"]["labels"] == ["production"]


def test_a_forged_label_fails_the_audit_names_the_event_and_is_marked(tmp_path: Path) -> None:
    db, model_id, name = _store(tmp_path)
    event = _forge_label(db)

    out = tmp_path / "a.json"
    result = CliRunner().invoke(cli, ["--db", str(db), "audit", model_id, "-o", str(out)])
    assert result.exit_code == 1, result.output
    doc = json.loads(out.read_text())
    assert doc["model"]["labels"] == ["retired"]  # what the forged row says, shown...
    integ = doc["integrity"]
    assert integ["ok"] is False  # ...but not vouched for
    assert event in integ["facts"]["failed"]
    assert any(f"event {event} (promote)" in p for p in integ["problems"]), integ["problems"]
    assert f"ledger event {event}" in integ["summary"]
    assert doc["model"]["label_events"] == [event]

    html_path = tmp_path / "a.html"
    CliRunner().invoke(cli, ["--db", str(db), "audit", model_id, "-o", str(html_path)])
    html = html_path.read_text()
    assert "Do not rely on this report" in html
    assert f"a label change behind this was altered after it was written (ledger event {event})" in html

    md_path = tmp_path / "a.md"
    CliRunner().invoke(cli, ["--db", str(db), "audit", model_id, "-o", str(md_path)])
    md = md_path.read_text()
    assert "INTEGRITY CHECK FAILED" in md and f"event {event} (promote)" in md
    labels = next(line for line in md.splitlines() if line.startswith("| Labels |"))  # marked where shown, as in HTML
    assert f"altered after it was written, ledger event {event}" in labels

    with lineage.open(db) as lg:
        inv = lg.inventory().to_dict()
    (item,) = [i for i in inv["items"] if i["name"] == name]
    assert item["integrity_ok"] is False
    assert any(f"event {event} (promote)" in p for p in item["problems"]), item["problems"]


def test_a_forged_label_of_another_version_fails_this_versions_audit(tmp_path: Path) -> None:
    """The name's labels are shown on every version's report ("production -> version
    1"), so every version's audit checks every label change of its name."""
    db, _, _ = _store(tmp_path)
    with lineage.open(db) as lg:
        with lg.start_run("refit") as run:
            newer = run.log_model(LogisticRegression(C=0.5).fit([[0], [1], [2], [3]], [0, 0, 1, 1]), "risk")
    event = _forge_label(db)
    with lineage.open(db) as lg:
        integ = lg.audit(newer.id).to_dict()["integrity"]
    assert integ["ok"] is False and event in integ["facts"]["failed"]


def test_who_promoted_and_who_logged_predictions_are_in_the_report(tmp_path: Path, monkeypatch) -> None:
    """An auditor's first question of a model in production: who put it there, when
    and why. The promotion was in no report, its author read as the checkout's git
    name (the developer's, not the promoter's), and the service account that logged
    predictions appeared as an agent id no command could resolve."""
    import socket

    db, model_id, name = _store(tmp_path)  # by this process's own account
    monkeypatch.setenv("LINEAGE_USER", "paula")
    with lineage.open(db) as lg:
        lg.promote(model_id, "staging", reason="second review passed")
    monkeypatch.setenv("LINEAGE_USER", "svc")
    with lineage.open(db) as lg, lg.prediction_logger(model_id) as logger:
        logger.log([[0]], [0], request_ids=["r-1"])
    with lineage.open(db) as lg:
        doc = lg.audit(model_id).to_dict()
        steps = {s["step"]: s for s in doc["accountability"]}
        staged = steps["label staging put on this version"]
        assert f"(paula@{socket.gethostname()})" in staged["who"] and staged["status"] == "second review passed"
        assert "label production put on this version" in steps
        logged = next(s for s in doc["accountability"] if s["step"].endswith("predictions logged"))
        assert logged["who"] == f"svc@{socket.gethostname()}"
        # every actor named by these events is a recorded agent
        for step in (staged, logged):
            agent = lg.get(step["agent_id"])
            assert agent.kind == "agent" and agent.attrs["user"] in ("paula", "svc")
        assert lg.model_history(name).promotions[-1]["author"] == staged["who"]
        assert lg.verify().ok
