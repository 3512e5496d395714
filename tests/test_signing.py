"""Signed checkpoints: keygen, verify --record --sign, verify --head checking the
signature, and the report naming the key and whether it is the recorder's own."""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import edit_and_rechain

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


def _rewrite_history(db: str) -> None:
    """Edit the first event's payload and re-chain (`edit_and_rechain`)."""
    con = sqlite3.connect(db)
    seq = con.execute("SELECT seq FROM events WHERE type != 'checkpoint' AND payload IS NOT NULL "
                      "ORDER BY seq LIMIT 1").fetchone()[0]
    con.close()
    edit_and_rechain(db, seq, lambda body: body.update(at="2000-01-01T00:00:00Z"))


def test_verify_key_trusts_only_the_auditors_key(lg: lineage.Lineage, tmp_path: Path) -> None:
    # the auditor holds only auditor.pub (or its fingerprint); a checkpoint signed with
    # a key the recorder made for the occasion must not pass as "signature valid"
    _model(lg, tmp_path)
    db = str(lg.store.path)
    runner = CliRunner()
    auditor = signing.keygen(tmp_path / "auditor")
    mallory = signing.keygen(tmp_path / "mallory")
    assert runner.invoke(cli, ["--db", db, "verify", "--record", "--sign", auditor["private"]]).exit_code == 0
    signed_head = lg.store.last_checkpoint().payload["head"]

    for key in (auditor["public"], auditor["fingerprint"]):
        res = runner.invoke(cli, ["--db", db, "verify", "--head", signed_head[:16], "--key", key])
        assert res.exit_code == 0, res.output
        assert "vouched for by the given key: checkpoint event" in res.output
    earlier = lg.store.event(2).hash  # a head remembered before the signed one: the chain links them
    assert runner.invoke(cli, ["--db", db, "verify", "--head", earlier, "--key", auditor["public"]]).exit_code == 0
    doc = json.loads(runner.invoke(cli, ["--db", db, "verify", "--key", auditor["public"], "--json"]).output)
    assert doc["ok"] and doc["trusted_checkpoints"] == [lg.store.last_checkpoint().seq]

    # another key vouches for a later head: valid signature, but not the auditor's
    lg.annotate("m", "limitations", "none")
    assert runner.invoke(cli, ["--db", db, "verify", "--record", "--sign", mallory["private"]]).exit_code == 0
    mallory_head = lg.store.last_checkpoint().payload["head"]
    res = runner.invoke(cli, ["--db", db, "verify", "--head", mallory_head])
    assert res.exit_code == 0  # without --key: any key's signature holds
    res = runner.invoke(cli, ["--db", db, "verify", "--head", mallory_head, "--key", auditor["public"]])
    assert res.exit_code == 1, res.output
    assert "no checkpoint signed by the given key" in res.output and "not trusted" not in res.output
    res = runner.invoke(cli, ["--db", db, "verify", "--key", signing.keygen(tmp_path / "stranger")["public"]])
    assert res.exit_code == 1 and "no checkpoint of this ledger is signed by the given key" in res.output
    # (the ledger is not called damaged: only the key's vouching failed)
    assert "the ledger replays intact" in res.output and "damaged" not in res.output

    # the history rewritten consistently and re-signed by mallory: the plain chain holds
    # (it cannot see a rewrite), the auditor's key does not
    lg.close()
    _rewrite_history(db)
    runner.invoke(cli, ["--db", db, "verify", "--record", "--sign", mallory["private"]])
    with lineage.open(db) as again:
        new_head = again.store.last_checkpoint().payload["head"]
        assert again.verify().ok
    res = runner.invoke(cli, ["--db", db, "verify", "--head", new_head])
    assert res.exit_code == 0 and "signature valid" in res.output
    res = runner.invoke(cli, ["--db", db, "verify", "--head", new_head, "--key", auditor["public"]])
    assert res.exit_code == 1, res.output
    assert "which this ledger no longer carries: the history was rewritten" in res.output
    assert "Traceback" not in res.output


def test_verify_key_bad_input_is_one_line(lg: lineage.Lineage, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import x25519

    _model(lg, tmp_path)
    db = str(lg.store.path)
    runner = CliRunner()
    got = signing.keygen(tmp_path / "auditor")
    (tmp_path / "junk.pub").write_text("not a key")
    (tmp_path / "x25519.pub").write_bytes(x25519.X25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    # a well-formed SubjectPublicKeyInfo whose algorithm (OID 1.2.3.4) cryptography does not know
    spki = bytes.fromhex("302a300506032a0304032100") + b"\x11" * 32
    (tmp_path / "unknown.pub").write_bytes(b"-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(spki)
                                           + b"-----END PUBLIC KEY-----\n")
    # a key of the wrong form is bad usage (exit 2), as a malformed --head is; a file that
    # is not there is exit 1, as any missing file is (DESIGN.md §5)
    cases = {str(tmp_path / "missing.pub"): (1, "cannot read the public key file"),
             str(tmp_path): (1, "cannot read the public key file"),
             got["private"]: (2, "is a private key; check signatures with its public key"),
             str(tmp_path / "junk.pub"): (2, "is not a PEM public key"),
             str(tmp_path / "x25519.pub"): (2, "holds a"),
             str(tmp_path / "unknown.pub"): (2, "holds a public key of a kind lineage cannot read"),
             "SHA256:1234": (2, "is not a key fingerprint"),
             "SHA256:zz": (2, "is not a key fingerprint"),
             "SHA256:" + "0123456789": (2, "is not a key fingerprint"),
             "": (2, "not an empty string")}
    for key, (code, message) in cases.items():
        res = runner.invoke(cli, ["--db", db, "verify", "--key", key])
        assert res.exit_code == code, (key, res.output)
        assert message in res.output and "Traceback" not in res.output and res.output.count("\n") == 1, (key, res.output)
        assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), (key, res.exception)
    # a well-formed key that vouches for nothing here stays a failed check (exit 1), not bad usage
    stranger = signing.keygen(tmp_path / "stranger")
    for key in (stranger["public"], stranger["fingerprint"]):
        assert runner.invoke(cli, ["--db", db, "verify", "--key", key]).exit_code == 1
    # the Python side: the same keys raise InvalidInputError (its BadArgumentError), before any work
    for key in ("SHA256:zz", "SHA256:0123456789", str(tmp_path / "junk.pub"), ""):
        with pytest.raises(lineage.InvalidInputError) as caught:
            lg.verify(key=key)
        assert caught.value.exit_code == 2, key
    res = runner.invoke(cli, ["--db", db, "verify", "--record", "--sign", got["private"], "--key", got["public"]])
    assert res.exit_code == 2



def test_signing_with_a_key_of_an_unknown_kind_is_one_line(lg: lineage.Lineage, tmp_path: Path) -> None:
    # a well-formed PKCS#8 private key whose algorithm (OID 1.2.3.4) cryptography does
    # not know: `verify --record --sign` printed its UnsupportedAlgorithm as a traceback
    _model(lg, tmp_path)
    der = bytes.fromhex("302e020100300506032a030404220420") + b"\x11" * 32
    key = tmp_path / "unknown.key"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\n" + base64.encodebytes(der) + b"-----END PRIVATE KEY-----\n")
    events = lg.store.head()[0]
    res = CliRunner().invoke(cli, ["--db", str(lg.store.path), "verify", "--record", "--sign", str(key)])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    assert "is not an unencrypted PEM private key" in res.output and res.output.count("\n") == 1, res.output
    assert lg.store.head()[0] == events  # no checkpoint recorded unsigned instead

def test_markdown_report_shows_the_checkpoint_signature(lg: lineage.Lineage, tmp_path: Path) -> None:
    # docs/audit.md: a report shows the key that signed the last checkpoint and whether
    # it holds; the Markdown report (read on paper like the HTML one) said nothing
    _model(lg, tmp_path)
    runner = CliRunner()
    key = signing.keygen(tmp_path / "auditor")
    assert runner.invoke(cli, ["--db", str(lg.store.path), "verify", "--record", "--sign", key["private"]]).exit_code == 0
    head = lg.store.last_checkpoint().payload["head"]
    out = tmp_path / "audit.md"
    res = runner.invoke(cli, ["--db", str(lg.store.path), "audit", "m", "-o", str(out)])
    assert res.exit_code == 0, res.output
    md = out.read_text()
    assert f"signed by key `{key['fingerprint']}`: the signature holds" in md
    assert "recorded by the same account" in md
    assert f"`lineage verify --head {head} --key KEYFILE.pub`" in md
    assert f"lineage verify --head {head} --key KEYFILE.pub" in lg.audit("m").to_html()
