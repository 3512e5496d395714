"""Signed checkpoints: keygen, verify --record --sign, verify --head checking the
signature, and the report naming the key and whether it is the recorder's own."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

import lineage
from lineage.cli import cli

pytest.importorskip("cryptography")

from lineage import signing


def test_keygen_writes_a_pair_and_never_overwrites(tmp_path: Path) -> None:
    got = signing.keygen(tmp_path / "keys" / "auditor")
    priv, pub = Path(got["private"]), Path(got["public"])
    assert priv.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pub.name == "auditor.pub" and b"PUBLIC KEY" in pub.read_bytes()
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert got["fingerprint"].startswith("SHA256:") and len(got["fingerprint"]) == 7 + 64
    with pytest.raises(lineage.InvalidInputError, match="already exists"):
        signing.keygen(priv)


def test_signature_round_trip_and_tampering(tmp_path: Path) -> None:
    key = signing.keygen(tmp_path / "k")["private"]
    msg = signing.checkpoint_message(12, "ab" * 32)
    sig = signing.sign(key, msg)
    assert signing.check(sig, msg) == (True, "")
    assert not signing.check(sig, signing.checkpoint_message(13, "ab" * 32))[0]
    forged = {**sig, "public_key": signing.sign(signing.keygen(tmp_path / "other")["private"], msg)["public_key"]}
    assert not signing.check(forged, msg)[0]  # fingerprint no longer matches the key


def test_bad_key_file_is_one_line_error(lg: lineage.Lineage, tmp_path: Path) -> None:
    bad = tmp_path / "not-a-key"
    bad.write_text("hello")
    before = lg.store.head()
    with pytest.raises(lineage.InvalidInputError, match="not an unencrypted PEM private key"):
        lg.verify_signed(bad)
    assert lg.store.head() == before  # nothing written


def _model(lg: lineage.Lineage, tmp_path: Path) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X = np.arange(40, dtype=float).reshape(20, 2)
    y = (X[:, 0] > 20).astype(int)
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,y\n" + "\n".join(f"{a},{b},{t}" for (a, b), t in zip(X, y)) + "\n")
    with lg.start_run("fit") as run:
        run.log_input(lg.log_dataset(csv, name="d"))
        run.log_model(LogisticRegression().fit(X, y), "m")


def test_cli_sign_and_check_head(lg: lineage.Lineage, tmp_path: Path) -> None:
    _model(lg, tmp_path)
    db = str(lg.store.path)
    runner = CliRunner()
    res = runner.invoke(cli, ["keygen", "-o", str(tmp_path / "auditor")])
    assert res.exit_code == 0 and "fingerprint: SHA256:" in res.output
    fp = res.output.split("fingerprint: ")[1].strip()
    res = runner.invoke(cli, ["--db", db, "verify", "--sign", str(tmp_path / "auditor")])
    assert res.exit_code == 2  # --sign needs --record
    res = runner.invoke(cli, ["--db", db, "verify", "--record", "--sign", str(tmp_path / "auditor")])
    assert res.exit_code == 0, res.output
    cp = lg.store.last_checkpoint()
    assert cp is not None and cp.payload["signature"]["fingerprint"] == fp
    head = cp.payload["head"]
    res = runner.invoke(cli, ["--db", db, "verify", "--head", head, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["ok"] and doc["signatures"][0]["ok"] and doc["signatures"][0]["fingerprint"] == fp

    # the report names the key, and that it was recorded by the same account
    rep = lg.audit("m").to_dict()["integrity"]["chain"]["checkpoint"]
    assert rep["signature"]["fingerprint"] == fp and rep["signature"]["valid"]
    assert rep["signature"]["same_account_as_recorder"] is True
    assert "same account" in rep["signature"]["note"]
    assert fp in lg.audit("m").to_html()

    # rewrite the whole history consistently from the checkpoint on: the signature
    # (which nobody but the key holder can make) no longer matches
    lg.close()
    con = sqlite3.connect(db)
    payload = json.loads(con.execute("SELECT payload FROM events WHERE seq = ?", (cp.seq,)).fetchone()[0])
    payload["head"] = "cd" * 32
    con.execute("UPDATE events SET payload = ? WHERE seq = ?", (json.dumps(payload), cp.seq))
    con.commit()
    con.close()
    with lineage.open(db) as again:
        sigs = again.checkpoint_signatures()
        assert sigs and not sigs[0]["ok"] and "does not match" in sigs[0]["problem"]
    res = runner.invoke(cli, ["--db", db, "verify", "--head", "cd" * 32])
    assert res.exit_code == 1


def test_empty_head_is_bad_usage_not_a_silent_pass(lg: lineage.Lineage, tmp_path: Path) -> None:
    # `lineage verify --head "$HEAD"` where extracting HEAD failed: an empty head is
    # malformed like any other, never a plain verify that exits 0 without the head
    _model(lg, tmp_path)
    db = str(lg.store.path)
    runner = CliRunner()
    for extra in ([], ["--json"]):
        res = runner.invoke(cli, ["--db", db, "verify", "--head", "", *extra])
        assert res.exit_code == 2, res.output
        assert "--head takes the hex head hash" in res.output and "Traceback" not in res.output
    with pytest.raises(lineage.LineageError, match="at least 12 digits"):
        lg.verify(head="")
