"""`lineage push` / `lineage pull` (lg.push, lg.pull; lineage/store/publish.py): a
store's history copied into another, re-chained there with a push event that links
the copies to the source's head, idempotent, all or nothing, erasure kept."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lineage
from lineage.cli import cli
from lineage.errors import IntegrityError, WriteRefusedError
from lineage.model import ERASED_PERSON, agent_label
from lineage.store import publish


def graph(lg: lineage.Lineage) -> tuple[set[tuple], set[tuple]]:
    """The graph as sets: nodes (id, kind, name, attrs) and edges."""
    c = lg.store.conn
    nodes = {tuple(r) for r in c.execute("SELECT id, kind, name, attrs FROM nodes")}
    nodes |= {tuple(r) for r in c.execute("SELECT id, model, output, request_id FROM predictions")}
    edges = {tuple(r) for r in c.execute("SELECT src, dst, rel, role FROM edges")}
    return nodes, edges


def facts(lg: lineage.Lineage) -> dict[str, list]:
    c = lg.store.conn
    return {t: sorted(map(tuple, c.execute(f"SELECT {cols} FROM {t}")), key=repr) for t, cols in (
        ("params", "run, key, value"), ("tags", "run, key, value"), ("metrics", "run, key, value, step"),
        ("annotations", "node, field, text"), ("run_states", "run, status"))}


def work(lg: lineage.Lineage, folder: Path, tag: str = "a") -> dict[str, str]:
    """Some history: a dataset, a run with params, metrics and a model, predictions."""
    from sklearn.linear_model import LogisticRegression

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"train_{tag}.csv").write_text(f"x,y\n0,0\n1,1\n{tag!r},1\n")
    data = lg.log_dataset(folder / f"train_{tag}.csv", name=f"train_{tag}")
    with lg.start_run(f"fit_{tag}", params={"C": 1.0}, tags={"team": "risk"}) as run:
        run.log_input(data)
        run.log_metric("accuracy", 0.9)
        run.log_metric("accuracy", 0.93, step=1)
        model = run.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), f"model_{tag}")
    lg.log_predictions(model, [[0.0], [1.0]], [0, 1], request_ids=[f"{tag}-1", f"{tag}-2"])
    lg.annotate(model, "intended_use", f"scoring {tag}")
    return {"data": data.id, "run": run.id, "model": model.id}


#: the target of a push runs on both backends (a laptop's SQLite into a team's server)
BACKENDS = ("sqlite", "postgres")


@pytest.fixture
def two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, request: pytest.FixtureRequest):
    b_path = request.getfixturevalue("store_path") if backend == "postgres" else tmp_path / "server" / ".lineage" / "lineage.db"
    monkeypatch.chdir(tmp_path)
    a = lineage.open(tmp_path / "laptop" / ".lineage" / "lineage.db")
    yield a, b_path
    a.close()


def test_round_trip_gives_an_equal_graph_and_both_verify(two, tmp_path: Path) -> None:
    a, b_path = two
    ids = work(a, tmp_path / "laptop")
    result = a.push(b_path)
    assert result.events == a.store.head()[0] and result.head == a.store.head()[1]
    b = lineage.open(b_path)
    assert graph(b) == graph(a) and facts(b) == facts(a)
    assert a.verify().ok and b.verify().ok
    # the copies keep the source's payload digests and rows digests, re-chained
    src = list(a.store.events())
    dst = list(b.store.events())[: len(src)]
    assert [(e.type, e.payload_digest, e.rows_digest) for e in src] == [(e.type, e.payload_digest, e.rows_digest) for e in dst]
    push_event = b.store.event(result.push_event)
    assert push_event.type == "push" and push_event.payload["head"] == a.store.head()[1]
    assert push_event.payload["source"] == publish.store_id(a.store)
    # queries work on the copy: trace, search, request ids, artifacts
    assert b.trace(ids["model"]).to_dict()["nodes"] and b.get("request:a-1").kind == "prediction"
    assert [h.node.id for h in b.search("model_a")] == [ids["model"]]
    artifact = a.get(ids["model"]).attrs.get("artifact_digest") or a.get(ids["model"]).id.split(":")[1]
    assert b.store.artifact_path(artifact).exists()
    # kept where the target keeps bytes: on PostgreSQL, on the server (where the
    # team's other machines fetch them), not only in this machine's folder
    assert b.store.has_artifact(artifact) and result.artifacts >= 1
    # each copy keeps its original hash: the replay gives every source event's hash
    originals = publish.source_hashes(b.store, result.push_event)
    assert originals == {i + 1: e.hash for i, e in enumerate(src)}
    b.close()


def test_pushing_twice_adds_nothing_and_later_history_goes_alone(two, tmp_path: Path) -> None:
    a, b_path = two
    work(a, tmp_path / "laptop")
    first = a.push(b_path)
    b = lineage.open(b_path)
    head = b.store.head()
    assert not a.push(b_path).changed and b.store.head() == head
    with a.start_run("later", params={"lr": 0.1}):
        pass
    second = a.push(b_path)
    assert second.from_seq == first.to_seq + 1 and second.to_seq == a.store.head()[0]
    assert second.events == second.to_seq - second.from_seq + 1
    assert graph(b) == graph(a) and b.verify().ok
    assert not b.pull(a.db_path).changed  # b pulling a: a's history is there already
    b.close()


def test_two_laptops_publish_into_one_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    server = tmp_path / "server.db"
    a = lineage.open(tmp_path / "a" / "lineage.db")
    b = lineage.open(tmp_path / "b" / "lineage.db")
    work(a, tmp_path / "a", "a")
    work(b, tmp_path / "b", "b")
    a.push(server)
    result = b.push(server)
    # the same agent and environment were recorded on both: kept once on the server
    assert result.skipped.get("nodes", 0) >= 1
    s = lineage.open(server)
    assert s.verify().ok
    # re-chained after a's history, the copies still prove b's own chain, hash by hash
    assert sorted(publish.source_hashes(s.store, result.push_event).values()) == sorted(e.hash for e in b.store.events())
    na, ea = graph(a)
    nb, eb = graph(b)
    ns, es = graph(s)
    assert {n[0] for n in ns} == {n[0] for n in na | nb} and es == ea | eb
    # the same model bytes under b's name: b's name is an alias on the server
    if "model" in {n[1] for n in na & nb} or s.get("model_b").name == "model_a":
        assert s.get("model_b").id == a.get("model_a").id
    # and a laptop can pull the other's work, then push back without duplicates
    pulled = a.pull(server)
    assert pulled.changed and graph(a) == graph(s) and a.verify().ok
    before = s.store.head()
    assert not a.push(server).changed and s.store.head() == before
    s.close()
    a.close()
    b.close()


def test_a_failed_push_leaves_the_target_unchanged(two, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b_path = two
    work(a, tmp_path / "laptop")
    b = lineage.open(b_path)
    with b.start_run("server_side"):
        pass
    before = (b.store.head(), graph(b), facts(b))
    real = publish._copy_rows
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("connection dropped")
        return real(*args, **kwargs)

    monkeypatch.setattr(publish, "_copy_rows", failing)
    with pytest.raises(OSError):
        a.push(b_path)
    monkeypatch.setattr(publish, "_copy_rows", real)
    assert (b.store.head(), graph(b), facts(b)) == before and b.verify().ok
    assert a.push(b_path).changed and b.verify().ok  # and a retry publishes it whole
    b.close()


def test_a_tampered_source_is_not_published(two, tmp_path: Path) -> None:
    a, b_path = two
    work(a, tmp_path / "laptop")
    a.store.conn.execute("UPDATE params SET value = '9' WHERE key = 'C'")
    with pytest.raises(IntegrityError, match="fails verification"):
        a.push(b_path)
    b = lineage.open(b_path)
    assert b.store.head()[0] == 0
    b.close()


def test_a_store_cannot_be_pushed_into_itself_or_a_copy(two, tmp_path: Path) -> None:
    a, _ = two
    work(a, tmp_path / "laptop")
    with pytest.raises(WriteRefusedError):
        a.push(a.db_path)
    copy = tmp_path / "copy.db"
    src = sqlite3.connect(a.db_path)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    with pytest.raises(WriteRefusedError, match="copy"):
        a.push(copy)


def test_a_rewritten_source_history_is_refused(two, tmp_path: Path) -> None:
    a, b_path = two
    work(a, tmp_path / "laptop")
    a.push(b_path)
    store_id = publish.store_id(a.store)
    other = lineage.open(tmp_path / "other.db")  # another history passing itself off as a's
    with other.start_run("x"):
        pass
    other.store.conn.execute("INSERT INTO meta (key, value) VALUES ('store_id', ?) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (store_id,))
    with pytest.raises(WriteRefusedError, match="no longer extends"):
        other.push(b_path)
    other.close()


def test_erased_rows_stay_erased(two, tmp_path: Path) -> None:
    a, b_path = two
    ids = work(a, tmp_path / "laptop")
    a.push(b_path)
    a.redact("request:a-1", reason="GDPR 1")  # erased after it was published
    a.annotate(ids["run"], "limitations", "quux personal note")
    a.redact(ids["run"], reason="GDPR 2")  # erased before it is published
    result = a.push(b_path)
    assert result.erased >= 3
    b = lineage.open(b_path)
    assert b.verify().ok and a.verify().ok
    pred = b.store.conn.execute("SELECT output, request_id FROM predictions WHERE request_id IS NULL").fetchall()
    assert len(pred) == 1
    assert b.get(ids["run"]).name is None and b.search("quux") == []
    assert graph(b) == graph(a)
    if isinstance(b_path, Path):  # (a server's files are the server's: docs/postgres.md)
        raw = b"".join(p.read_bytes() for p in b.db_path.parent.glob("server*")) + b"".join(
            p.read_bytes() for p in b_path.parent.glob("lineage.db*"))
        assert b"quux" not in raw
    # editing an erased copy is still caught
    b.store.conn.execute("UPDATE params SET value = 'forged' WHERE run = ?", (ids["run"],))
    assert not b.verify().ok
    b.close()


def test_a_person_erased_after_a_push_is_erased_on_the_target_too(two, tmp_path: Path) -> None:
    """The person's rows went with the next push, but the payload of the event that
    recorded their statement ("recorded_by": their name and email) stayed on the
    target: the copy keeps the payload's digest, so it is erased there as well."""
    a, b_path = two
    ids = work(a, tmp_path / "laptop")
    a.annotate(ids["model"], "intended_use", "demo")
    me = a.get(a.actor).attrs
    a.push(b_path)
    a.redact(a.actor, reason="GDPR 3")
    a.push(b_path)
    b = lineage.open(b_path)
    assert b.verify().ok and a.verify().ok
    rows = [repr(r) for t in ("events", "annotations", "promotions", "nodes") for r in b.store.conn.execute(f"SELECT * FROM {t}")]
    assert [r for r in rows if agent_label(me) in r] == []
    assert b.annotations(ids["model"])["intended_use"]["recorded_by"] == ERASED_PERSON
    b.close()
    a.redact(ids["model"], reason="GDPR 4")  # the statement, erased in its second form
    a.push(b_path)
    b = lineage.open(b_path)
    assert b.verify().ok and b.annotations(ids["model"])["intended_use"]["text"] is None
    b.close()


def test_verify_catches_a_copy_that_no_longer_replays_to_the_source_head(two, tmp_path: Path) -> None:
    a, b_path = two
    work(a, tmp_path / "laptop")
    result = a.push(b_path)
    b = lineage.open(b_path)
    # rewrite the push event's claim of the source head, and re-chain everything after
    # it so the target's own chain holds: only the replay can tell
    ev = b.store.event(result.push_event)
    body = dict(ev.payload)
    body["head"] = "0" * 64
    import hashlib

    from lineage.model import canonical_json

    text = canonical_json(body)
    pd = hashlib.sha256(text.encode()).hexdigest()
    prev = b.store.event(result.push_event - 1).hash
    from lineage.store import chain_hash

    b.store.conn.execute("UPDATE events SET payload = ?, payload_digest = ?, hash = ? WHERE seq = ?",
                         (text, pd, chain_hash(prev, "push", pd, ev.rows_digest), result.push_event))
    report = b.verify()
    assert not report.ok and report.first_bad == result.push_event and "replay" in report.problems[0]
    b.close()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["run", "push", "dataset"]), min_size=1, max_size=6))
def test_any_interleaving_of_work_and_pushes_converges(tmp_path_factory: pytest.TempPathFactory, steps: list[str]) -> None:
    root = tmp_path_factory.mktemp("inter")
    a = lineage.open(root / "a.db")
    server = root / "server.db"
    for i, step in enumerate(steps):
        if step == "run":
            with a.start_run(f"r{i}", params={"i": i}):
                pass
        elif step == "dataset":
            (root / f"d{i}.csv").write_text(f"x\n{i}\n")
            a.log_dataset(root / f"d{i}.csv", name=f"d{i}")
        else:
            a.push(server)
    a.push(server)
    s = lineage.open(server)
    assert graph(s) == graph(a) and facts(s) == facts(a) and s.verify().ok
    head = s.store.head()
    a.push(server)
    assert s.store.head() == head
    s.close()
    a.close()


def test_cli_push_and_pull(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    a_db = tmp_path / "a" / ".lineage" / "lineage.db"
    lg = lineage.open(a_db)
    with lg.start_run("fit"):
        pass
    lg.close()
    server = tmp_path / "server.db"
    runner = CliRunner()
    out = runner.invoke(cli, ["--db", str(a_db), "push", "--to", str(server), "--json"], catch_exceptions=False)
    assert out.exit_code == 0
    doc = json.loads(out.output)
    assert doc["events"] >= 1 and doc["push_event"] and doc["head"]
    again = runner.invoke(cli, ["--db", str(a_db), "push", "--to", str(server)], catch_exceptions=False)
    assert again.exit_code == 0 and "nothing new" in again.output
    c_db = tmp_path / "c" / ".lineage" / "lineage.db"
    pulled = runner.invoke(cli, ["--db", str(c_db), "pull", "--from", str(server), "--json"], catch_exceptions=False)
    assert pulled.exit_code == 0 and json.loads(pulled.output)["events"] >= 1
    missing = runner.invoke(cli, ["--db", str(c_db), "pull", "--from", str(tmp_path / "nope.db")])
    assert missing.exit_code == 1 and "no lineage store" in missing.output and "Traceback" not in missing.output
    verify = runner.invoke(cli, ["--db", str(c_db), "verify"], catch_exceptions=False)
    assert verify.exit_code == 0


def test_an_erasure_after_a_pull_and_a_push_reaches_the_right_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    server = tmp_path / "server.db"
    a = lineage.open(tmp_path / "a.db")
    b = lineage.open(tmp_path / "b.db")
    with b.start_run("b_work", params={"owner": "bob"}):
        pass
    b.push(server)
    with a.start_run("a_first"):
        pass
    a.pull(server)  # a now holds b's events, copied from the server
    with a.start_run("a_later", params={"owner": "zorblax"}) as run:
        pass
    pushed = a.push(server)  # the server's own events in a's history are not sent back
    assert pushed.omitted > 0
    s = lineage.open(server)
    assert [h.node.id for h in s.search("zorblax")] == [run.id]
    a.redact(run.id, reason="GDPR 3")
    assert a.push(server).erased >= 2  # the run's name and its param, found past the omitted events
    assert s.search("zorblax") == [] and s.get(run.id).name is None
    assert s.get("b_work").attrs["params"] == {"owner": "bob"}  # nothing else was touched
    assert s.verify().ok and a.verify().ok and graph(s) == graph(a)
    for lg in (a, b, s):
        lg.close()


def _counts(lg: lineage.Lineage) -> dict[str, int]:
    c = lg.store.conn
    return {t: c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("nodes", "edges", "params", "metrics", "tags", "annotations", "run_states", "predictions")}


def test_history_through_a_third_store_is_not_recorded_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A → server → B, then B → A: A's own events come back by another path and are
    omitted (params and metrics rows are not repeated, not only nodes and edges);
    the graph and every table's row count equal A's, and all three verify."""
    monkeypatch.chdir(tmp_path)
    a = lineage.open(tmp_path / "a" / "lineage.db")
    work(a, tmp_path / "wa", "a")
    server = tmp_path / "server" / "lineage.db"
    b_path = tmp_path / "b" / "lineage.db"
    a.push(server)
    b = lineage.open(b_path)
    b.pull(server)
    before = _counts(a)
    result = b.push(tmp_path / "a" / "lineage.db")
    # nothing of A's work is copied back: only the records of the two pushes it went
    # through (the server's and B's), which A did not have
    assert result.omitted > 0
    types = [r[0] for r in a.store.conn.execute("SELECT type FROM events WHERE seq >= ? AND seq < ?",
                                                (result.push_event - result.events, result.push_event))]
    assert types == ["push", "push"]
    assert _counts(a) == before and graph(a) == graph(b) and facts(a) == facts(b)
    # B's own work goes through the server to A, then A → B again adds nothing either
    work(b, tmp_path / "wb", "b")
    b.push(server)
    a.pull(server)
    counts = _counts(a)
    result = a.push(b_path)
    # (only the ledger's records of pushes travel on: they carry no rows here)
    types = {r[0] for r in b.store.conn.execute("SELECT type FROM events WHERE seq >= ?",
                                                (result.push_event - result.events,))}
    assert types == {"push"} and _counts(b) == counts == _counts(a)
    assert facts(a) == facts(b) and graph(a) == graph(b)
    s = lineage.open(server)
    assert facts(s) == facts(a) and _counts(s) == counts
    assert a.verify().ok and b.verify().ok and s.verify().ok
    for lg in (a, b, s):
        lg.close()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from("ASB"), st.sampled_from(["work", "A", "S", "B"])), min_size=1, max_size=8))
def test_any_push_path_among_three_stores_records_each_row_once(tmp_path_factory: pytest.TempPathFactory,
                                                                steps: list[tuple[str, str]]) -> None:
    """Work anywhere and push along any path between three stores; once the history
    has gone around (everyone → S, S → everyone), all three hold the same graph and
    the same rows, each once: the row counts equal the work's."""
    root = tmp_path_factory.mktemp("three")
    paths = {k: root / f"{k}.db" for k in "ASB"}
    stores = {k: lineage.open(p) for k, p in paths.items()}
    runs = 0
    for i, (where, what) in enumerate(steps):
        if what == "work":
            with stores[where].start_run(f"r{i}", params={"i": i, "at": where}) as run:
                run.log_metric("m", float(i))
            runs += 1
        elif what != where:
            stores[where].push(paths[what])
    for k in "AB":
        stores[k].push(paths["S"])
    for k in "AB":
        stores["S"].push(paths[k])
    c = _counts(stores["A"])
    assert c["params"] == 2 * runs and c["metrics"] == runs
    for k in "SB":
        assert _counts(stores[k]) == c and facts(stores[k]) == facts(stores["A"])
        assert graph(stores[k]) == graph(stores["A"])
    for lg in stores.values():
        assert lg.verify().ok
        lg.close()


def test_a_copied_erasure_record_vouches_for_no_event_of_the_target(two, tmp_path: Path) -> None:
    """A redact event copied by a push lists the source's event numbers. On a target
    with history of its own those are other events: blanking one of them by hand is
    caught, while the payloads the push brought blank (listed by the push event) verify."""
    a, b_path = two
    work(a, tmp_path / "laptop")
    a.redact(a.actor, reason="GDPR 5")
    listed = json.loads(a.store.conn.execute("SELECT payload FROM events WHERE type = 'redact'").fetchone()[0])["payloads"]
    b = lineage.open(b_path)
    work(b, tmp_path / "server", tag="b")
    b.close()
    a.push(b_path)
    b = lineage.open(b_path)
    assert b.verify().ok
    (push,) = [json.loads(p) for (p,) in b.store.conn.execute("SELECT payload FROM events WHERE type = 'push'")]
    copied_blank = [s for (s,) in b.store.conn.execute("SELECT seq FROM events WHERE payload IS NULL ORDER BY seq")]
    assert push["payloads"] == copied_blank and len(copied_blank) == len(listed)
    (theirs,) = [s for s in listed if s not in copied_blank][:1]
    b.store.conn.execute("UPDATE events SET payload = NULL WHERE seq = ?", (theirs,))
    report = b.verify()
    assert not report.ok and report.first_bad == theirs
    b.close()


def test_a_push_recorded_before_pushes_listed_blank_payloads_still_verifies(
        two, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pushes made before this rule listed no blank payloads: the events they copied
    keep the rule of their day (a blank payload there counts as erased), or every
    team store fed by a laptop that erased a person would now fail verify. A payload
    blanked by hand outside those copies is still caught."""
    a, b_path = two
    ids = work(a, tmp_path / "laptop")
    b = lineage.open(b_path)
    work(b, tmp_path / "server", tag="b")  # (history of its own: copies get other numbers)
    own = b.store.conn.execute("SELECT max(seq) FROM events").fetchone()[0]
    b.close()
    write = lineage.store.Store.write

    def as_before(self, type_, payload, rows=None):  # a push event as the code before this rule wrote it
        return write(self, type_, {k: v for k, v in payload.items() if not (type_ == "push" and k == "payloads")}, rows)

    monkeypatch.setattr(lineage.store.Store, "write", as_before)
    a.redact(a.actor, reason="GDPR 6")
    a.push(b_path)
    a.annotate(ids["model"], "limitations", "more")
    a.push(b_path)
    monkeypatch.undo()
    b = lineage.open(b_path)
    conn = b.store.conn
    assert all("payloads" not in json.loads(p) for (p,) in conn.execute("SELECT payload FROM events WHERE type = 'push'"))
    assert conn.execute("SELECT count(*) FROM events WHERE payload IS NULL").fetchone()[0] > 0
    assert b.verify().ok
    conn.execute("UPDATE events SET payload = NULL WHERE seq = ?", (own,))  # the server's own event
    report = b.verify()
    assert not report.ok and report.first_bad == own
    b.close()
