"""The other facts a model report shows besides its lineage are re-checked too: an
importance computed after logging (the inputs table), the erasure records of the rows
it shows (a prediction and its kept inputs, a run of its lineage), and a
sensitive-columns annotation on another version of a training dataset's name. Each,
edited in SQLite after it was recorded, makes the audit's integrity fail and name the
event, as `lineage verify` does; before the re-check the audit called the record intact.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

import lineage
from lineage.cli import cli
from lineage.store.codec import row_digest

ROWS = "age,sex,y\n25,0,0\n32,1,0\n47,0,1\n51,1,1\n38,0,0\n60,1,1\n29,1,0\n55,0,1\n"


def _model(lg: Any, train: Any, path: Path) -> tuple[Any, pd.DataFrame]:
    """A logistic regression fitted on named columns of ``path``, logged by a run that
    used ``train``; returns the model node and the features."""
    frame = pd.read_csv(path)
    X = frame[["age", "sex"]]
    with lg.start_run("fit", params={"C": 1.0}) as run:
        run.log_input(train)
        model = run.log_model(LogisticRegression(C=1.0).fit(X, frame["y"]), "risk")
    return model, X


def _audit_json(db: Path, ref: str, out: Path) -> tuple[int, dict[str, Any]]:
    """``lineage audit REF -o out.json``: its exit code and the report."""
    result = CliRunner().invoke(cli, ["--db", str(db), "audit", ref, "-o", str(out)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(out.read_text())


def _assert_fails_naming(db: Path, ref: str, out: Path, event: int, kind: str) -> dict[str, Any]:
    """The audit of ``ref`` and `lineage verify` both fail, and name ``event``."""
    code, doc = _audit_json(db, ref, out)
    integ = doc["integrity"]
    assert code == 1
    assert integ["ok"] is False
    assert event in integ["facts"]["failed"], integ["facts"]
    assert any(f"event {event} ({kind})" in p for p in integ["problems"]), integ["problems"]
    assert f"ledger event {event}" in integ["summary"]
    verify = CliRunner().invoke(cli, ["--db", str(db), "verify"])
    assert verify.exit_code == 1, verify.output
    assert f"event {event}" in verify.output
    return doc


def _intact(db: Path, ref: str) -> dict[str, Any]:
    """The integrity section of ``ref``'s audit, asserted intact."""
    with lineage.open(db) as lg:
        doc: dict[str, Any] = lg.audit(ref).to_dict()
    assert doc["integrity"]["ok"], doc["integrity"]["problems"]
    return doc


# ---------------------------------------------------------------------------
# importances computed after logging


def test_a_forged_importance_fails_the_audit(tmp_path: Path) -> None:
    db = tmp_path / ".lineage" / "lineage.db"
    (tmp_path / "train.csv").write_text(ROWS)
    (tmp_path / "holdout.csv").write_text(ROWS)
    with lineage.open(db) as lg:
        train = lg.log_dataset(tmp_path / "train.csv", name="train")
        holdout = lg.log_dataset(tmp_path / "holdout.csv", name="holdout")
        model, _ = _model(lg, train, tmp_path / "train.csv")
        event = lg.compute_importance(model, holdout.id, "y", n_repeats=2)["event"]
        lg.verify(record=True)

    doc = _intact(db, model.id)
    assert event in doc["integrity"]["facts"]["events"]
    assert doc["integrity"]["facts"]["by_table"].get("importances") == 1
    shown = {i["column"]: i["importance"].get("permutation") for i in doc["model"]["features"]["inputs"]}
    assert set(shown) == {"age", "sex"} and None not in shown.values()  # in the inputs table

    assert shown["age"] > 0
    conn = sqlite3.connect(db)  # make age look as if the model did not rely on it
    with conn:
        assert conn.execute("UPDATE importances SET value = 0 WHERE event = ? AND feature = 'age'", (event,)).rowcount == 1
    conn.close()

    doc = _assert_fails_naming(db, model.id, tmp_path / "a.json", event, "importance")
    (age,) = [i for i in doc["model"]["features"]["inputs"] if i["column"] == "age"]
    assert age["importance"]["permutation"] == 0  # the forged value is shown, but not vouched for


# ---------------------------------------------------------------------------
# erasures


def _erased_store(tmp_path: Path, what: str) -> tuple[Path, str, list[str], int]:
    """A model with two predictions (inputs kept) and ``what`` ('prediction': the
    first prediction, 'run': the training run) erased, with a verified checkpoint
    after it; returns the database, the model's id, the predictions and the erasure's
    event."""
    db = tmp_path / ".lineage" / "lineage.db"
    (tmp_path / "train.csv").write_text(ROWS)
    with lineage.open(db) as lg:
        train = lg.log_dataset(tmp_path / "train.csv", name="train")
        model, X = _model(lg, train, tmp_path / "train.csv")
        preds = lg.log_predictions(model, X.head(2), ["refer", "approve"], scores=[0.7, 0.2],
                                   request_ids=["app-1", "app-2"], keep_inputs=True)
        erased = preds[0] if what == "prediction" else lg.store.generators(model.id)[0]
        event = lg.redact(erased, reason="GDPR request 7")
        lg.verify(record=True)
    return db, model.id, preds, event


@pytest.mark.parametrize("what", ["prediction", "run"])
def test_an_edited_erasure_record_fails_the_audit(tmp_path: Path, what: str) -> None:
    """A prediction the model made (its row and kept inputs) or a run of its lineage
    (its params, tags, states), erased: the erasure's event is among those checked,
    and its record edited fails the audit."""
    db, model_id, _, event = _erased_store(tmp_path, what)
    integ = _intact(db, model_id)["integrity"]
    assert event in integ["facts"]["events"]
    assert integ["facts"]["by_table"].get("redactions") == 1

    conn = sqlite3.connect(db)
    with conn:
        tables = {r[0] for r in conn.execute("SELECT tbl FROM redactions WHERE event = ?", (event,))}
        assert tables == ({"predictions", "prediction_inputs"} if what == "prediction" else {"nodes", "params"})
        conn.execute("UPDATE redactions SET reason = 'routine clean-up' WHERE event = ?", (event,))
    conn.close()
    _assert_fails_naming(db, model_id, tmp_path / "a.json", event, "redact")


def test_a_forged_erasure_cannot_hide_a_prediction(tmp_path: Path) -> None:
    """The second prediction's output and kept inputs blanked behind lineage's back,
    with erasure records that vouch for the blank rows added to the real erasure's
    event: the blanked rows then match what their own event committed to, so only
    the erasure's event can tell, and both the model's and the prediction's audits
    check it."""
    db, model_id, preds, event = _erased_store(tmp_path, "prediction")
    hidden = preds[1]
    conn = sqlite3.connect(db)
    with conn:
        pk, *row = conn.execute("SELECT pk, id, model, input_digest, output, score, request_id, created_at "
                                "FROM predictions WHERE id = ?", (hidden,)).fetchone()
        blank = (row[0], row[1], None, None, None, None, row[6])
        ipk, inputs = conn.execute("SELECT pk, inputs FROM prediction_inputs WHERE prediction = ?", (hidden,)).fetchone()
        conn.execute("UPDATE predictions SET input_digest = NULL, output = NULL, score = NULL, request_id = NULL "
                     "WHERE pk = ?", (pk,))
        conn.execute("UPDATE prediction_inputs SET inputs = NULL WHERE pk = ?", (ipk,))
        conn.executemany(
            "INSERT INTO redactions (tbl, row_pk, row_digest, erased_digest, reason, event) VALUES (?, ?, ?, ?, ?, ?)",
            [("predictions", pk, row_digest("predictions", tuple(row)).hex(), row_digest("predictions", blank).hex(),
              "GDPR request 7", event),
             ("prediction_inputs", ipk, row_digest("prediction_inputs", (hidden, inputs)).hex(),
              row_digest("prediction_inputs", (hidden, None)).hex(), "GDPR request 7", event)])
    conn.close()

    doc = _assert_fails_naming(db, model_id, tmp_path / "a.json", event, "redact")
    # the blanked rows themselves pass: their event is not the one that failed
    assert doc["integrity"]["facts"]["failed"] == [event]
    decision = _assert_fails_naming(db, hidden, tmp_path / "d.json", event, "redact")
    assert decision["prediction"]["output"] is None


# ---------------------------------------------------------------------------
# sensitive columns marked on another version of a training dataset's name


def test_a_forged_sensitive_mark_on_another_version_fails_the_audit(tmp_path: Path) -> None:
    """``sex`` marked sensitive on version 1 of ``applications``; the model is trained
    on version 2, which is not in its lineage, yet the report shows ``sex`` as
    sensitive (every version of the name counts). Taking the column off the mark on
    version 1 fails the audit."""
    db = tmp_path / ".lineage" / "lineage.db"
    (tmp_path / "apps_v1.csv").write_text(ROWS)
    (tmp_path / "apps_v2.csv").write_text(ROWS + "44,1,1\n")
    with lineage.open(db) as lg:
        v1 = lg.log_dataset(tmp_path / "apps_v1.csv", name="applications")
        event = lg.annotate(v1, "sensitive_columns", json.dumps(["sex"]), author="dpo")
        v2 = lg.log_dataset(tmp_path / "apps_v2.csv", name="applications")
        assert v2.id != v1.id
        model, _ = _model(lg, v2, tmp_path / "apps_v2.csv")
        lg.verify(record=True)

    doc = _intact(db, model.id)
    assert v1.id not in {d["id"] for d in doc["data"]}  # not in the model's lineage...
    assert event in doc["integrity"]["facts"]["events"]  # ...but its mark is checked
    assert [s["column"] for s in doc["model"]["features"]["sensitive"]] == ["sex"]

    conn = sqlite3.connect(db)
    with conn:
        assert conn.execute("UPDATE annotations SET text = '[]' WHERE event = ?", (event,)).rowcount == 1
    conn.close()

    doc = _assert_fails_naming(db, model.id, tmp_path / "a.json", event, "annotation")
    assert doc["model"]["features"]["sensitive"] == []  # what the forged row says, but not vouched for


def test_a_forged_stat_cache_row_does_not_pass_a_swapped_model_file(tmp_path: Path) -> None:
    """The stat cache is outside the chain: one UPDATE of it, matched to a swapped
    model file, made the audit call the file intact. A report re-reads the bytes."""
    import os
    import pickle

    (tmp_path / "train.csv").write_text(ROWS)
    with lineage.open(tmp_path / ".lineage" / "lineage.db") as lg:
        model, _ = _model(lg, lg.log_dataset(tmp_path / "train.csv"), tmp_path / "train.csv")
        assert lg.audit(model).to_dict()["integrity"]["ok"]
        path = lg.store.artifact_path(model.id.split(":", 1)[1])
        db = lg.db_path
    os.chmod(path, 0o644)
    path.write_bytes(pickle.dumps(LogisticRegression(C=123.0).fit([[0, 0], [1, 1]], [1, 0])))
    st = os.stat(path)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM artifact_blobs")  # (the copy in the database is a cache too)
        # a cache row vouching that the swapped file has the recorded digest
        conn.execute("INSERT OR REPLACE INTO stat_cache (path, size, mtime_ns, inode, digest, lines) "
                     "VALUES (?, ?, ?, ?, ?, NULL)", (str(path), st.st_size, st.st_mtime_ns, st.st_ino, path.name))
    code, doc = _audit_json(db, "risk", tmp_path / "a.json")
    assert code == 1 and doc["integrity"]["ok"] is False
    assert any(f["status"] == "changed" and f["id"] == model.id for f in doc["integrity"]["files"])
    # and the report says so: it told its reader unchanged files were taken from the cache
    with lineage.open(db) as lg:
        page = lg.audit(model).to_html()
    assert "each read whole" in page and "taken from the stat cache" not in page


def test_an_erased_models_report_says_who_erased_it_when_and_why(tmp_path: Path) -> None:
    """Erasure blanks the model's name and attributes: its report read "model —",
    "Integrity intact", and never said the model was erased, by whom or why."""
    (tmp_path / "train.csv").write_text(ROWS)
    with lineage.open(tmp_path / ".lineage" / "lineage.db") as lg:
        model, _ = _model(lg, lg.log_dataset(tmp_path / "train.csv"), tmp_path / "train.csv")
        assert "erased" not in lg.audit(model).to_dict()["model"]
        event = lg.redact(model, reason="GDPR request 2026-114")
        report = lg.audit(model)
        erased = report.to_dict()["model"]["erased"]
        assert erased["event"] == event and erased["reason"] == "GDPR request 2026-114"
        assert erased["actor"] and erased["at"]
        for text in (report.to_markdown(), report.to_html()):
            assert "This model was erased" in text and "GDPR request 2026-114" in text


def test_a_data_file_rewritten_as_a_later_recorded_version_is_superseded_not_tampered(tmp_path: Path) -> None:
    """A training script rewrites its split each run and both versions are recorded:
    the older model's report said "Do not rely on this report" and exited 1 though
    nothing was altered. It now names the version the file holds; bytes recorded
    nowhere still fail the audit."""
    train = tmp_path / "train.csv"
    train.write_text(ROWS)
    with lineage.open(tmp_path / ".lineage" / "lineage.db") as lg:
        old, _ = _model(lg, lg.log_dataset(train, name="train"), train)
        train.write_text(ROWS + ROWS.splitlines()[-1] + "\n")
        _model(lg, lg.log_dataset(train, name="train"), train)
        db = lg.db_path
    code, doc = _audit_json(db, old.id, tmp_path / "a.json")
    integ = doc["integrity"]
    assert code == 0 and integ["ok"], integ["problems"]
    (row,) = [f for f in integ["files"] if f["kind"] == "dataset"]
    assert row["status"] == "superseded" and "now holds train@2" in row["note"]
    assert "1 file now holds another recorded version (train)" in integ["summary"]
    train.write_text("age,sex,y\n1,0,1\n")  # bytes never recorded: changed, and the report fails
    code, doc = _audit_json(db, old.id, tmp_path / "b.json")
    assert code == 1 and [f["status"] for f in doc["integrity"]["files"] if f["kind"] == "dataset"] == ["changed"]
    # a model file is the store's own copy: another recorded model's bytes there are tampering
    with lineage.open(db) as lg:
        newer = lg.get("risk")
        path = lg.store.artifact_path(old.id.split(":", 1)[1])
        path.chmod(0o644)
        path.write_bytes(lg.store.artifact_path(newer.id.split(":", 1)[1]).read_bytes())
    code, doc = _audit_json(db, old.id, tmp_path / "c.json")
    assert code == 1 and [f["status"] for f in doc["integrity"]["files"] if f["kind"] == "model"] == ["changed"]


# ---------------------------------------------------------------------------
# the chain check and the fact checks share their work

def test_facts_the_chain_replayed_are_not_hashed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An audit replays the chain from its checkpoint, rows and all, in the same
    snapshot as its fact checks: re-hashing those facts' events was half of the audit
    of a model with a million predictions. Only events the checkpoint vouches for are
    re-checked one by one; and when the replay fails, each fact event again, to name it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.csv").write_text(ROWS)
    db = tmp_path / "s.db"
    with lineage.open(db) as lg:
        model, X = _model(lg, lg.log_dataset(tmp_path / "train.csv", name="train"), tmp_path / "train.csv")
        lg.log_predictions(model, X, [0] * len(X))
    checked: list[int] = []
    original = lineage.store.Store.check_event_rows
    monkeypatch.setattr(lineage.store.Store, "check_event_rows",
                        lambda self, seq: checked.append(seq) or original(self, seq))
    doc = _intact(db, "risk")
    assert checked == [] and doc["integrity"]["facts"]["events_checked"] > 3
    with lineage.open(db) as lg:
        lg.verify(record=True)
        through = lg.store.head()[0]
        lg.annotate(model, "intended_use", "scoring demo rows")  # after the checkpoint: replayed
    doc = _intact(db, "risk")
    assert checked and max(checked) <= through
    checked.clear()
    with sqlite3.connect(db) as conn:  # a fact's row edited after the checkpoint
        (event,) = conn.execute("SELECT event FROM annotations WHERE field = 'intended_use'").fetchone()
        conn.execute("UPDATE annotations SET text = 'anything' WHERE event = ?", (event,))
    _assert_fails_naming(db, "risk", tmp_path / "r.json", event, "annotation")
    assert event in checked


def test_the_code_line_names_the_script_that_trained_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two scripts of one commit share a code node, named after whichever ran first:
    the report said "Code: prep.py at commit …" of a model train.py made. It names
    the scripts of the runs behind the model (prep.py made its data)."""
    import sys

    from conftest import committed_repo, git

    repo = committed_repo(tmp_path)
    (repo / "prep.py").write_text("open('clean.csv', 'w').write('x,y\\n0,0\\n1,1\\n')\n")
    (repo / "train.py").write_text(
        "import pickle; from sklearn.linear_model import LogisticRegression\n"
        "pickle.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), open('model.pkl', 'wb'))\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "two steps")
    monkeypatch.chdir(repo)
    with lineage.open(repo / ".lineage" / "lineage.db") as lg:
        assert lg.run_command([sys.executable, "prep.py"], outputs=["clean.csv"]).ok
        assert lg.run_command([sys.executable, "train.py"], inputs=["clean.csv"], models=["model.pkl"]).ok
        item = lg.audit("model.pkl").item("code_version")
    assert item["summary"].startswith("Code: train.py, prep.py at commit")
