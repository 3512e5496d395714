"""Every write's cost is flat in the store's size (issue 16): each SQL statement the
write paths run is read back through ``EXPLAIN QUERY PLAN`` and none may scan a
recorded table, or find its rows through an index on a column that splits a table
into a handful of big groups (``kind``, ``status``, ``rel``) only — that is a scan of
the group, growing with the store."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import lineage
from lineage.store import RECORD_TABLES

# the tables a write may touch: recorded ones, the ledger, and the stat cache beside
# them (`open_runs` is read whole on purpose: it holds only the runs still open)
TABLES = {*RECORD_TABLES, "events", "stat_cache", "meta"}
# columns with a few distinct values each: an index on them alone finds a big group
LOW_CARDINALITY = {"kind", "status", "rel", "role", "type", "tbl"}

_SCAN = re.compile(r"^SCAN (\w+)")
_SEARCH = re.compile(r"^SEARCH (\w+) USING (?:COVERING )?INDEX \w+ \((.*)\)$")
_ALIAS = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)\s+(?:AS\s+)?(\w+)", re.IGNORECASE)
# `ORDER BY <integer primary key> [DESC] LIMIT n` with no WHERE: a bounded walk from
# one end of the table (the ledger's head), which the planner calls a SCAN
_BOUNDED = re.compile(r"^SELECT [^;]*? FROM (\w+) ORDER BY (seq|pk)( DESC)? LIMIT \d+$", re.IGNORECASE)


def _bad_steps(sql: str, plan: list[str]) -> list[str]:
    aliases = {alias.lower(): table.lower() for table, alias in _ALIAS.findall(sql)}
    bad = []
    for detail in plan:
        m = _SCAN.match(detail)
        if m:
            table = aliases.get(m.group(1).lower(), m.group(1).lower())
            if table in TABLES and not _BOUNDED.match(" ".join(sql.split())):
                bad.append(detail)
            continue
        m = _SEARCH.match(detail)
        if m:
            table = aliases.get(m.group(1).lower(), m.group(1).lower())
            columns = {c.split("=")[0].split(">")[0].split("<")[0].strip() for c in m.group(2).split(" AND ")}
            if table in TABLES and columns <= LOW_CARDINALITY:
                bad.append(detail)
    return bad


def _record_writes(lg: lineage.Lineage, tmp_path: Path) -> None:
    """A representative set of writes: datasets (new name, new version, alias, file,
    remote), runs with params, tags, metrics, inputs by node and by name, outputs,
    models, artifacts, predictions, annotations, erasure, a batch, a crash reaped."""
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    train = lg.log_dataset(data, name="train")
    data.write_text("a,b\n1,2\n3,4\n")
    lg.log_dataset(data, name="train")  # a new version of a known name
    lg.log_dataset(data, name="train_alias")  # the same bytes under a second name
    remote = lg.log_dataset(uri="s3://bucket/x.csv", digest="c" * 64, name="remote")
    X = np.arange(20, dtype=float).reshape(10, 2)
    y = np.array([0, 1] * 5)
    with lg.start_run("fit", params={"C": 1.0}, tags={"team": "risk"}) as run:
        run.log_input(train)
        run.log_input("remote")  # a reference by name
        run.log_param("penalty", "l2")
        run.log_params({"penalty": "l2", "max_iter": 50})
        run.set_tag("stage", "dev")
        run.log_metric("accuracy", 0.9, dataset=remote)
        run.log_metric("loss", 0.1, step=3)
        out = tmp_path / "clean.csv"
        out.write_text("a\n1\n")
        run.log_output(out)
        plot = tmp_path / "plot.txt"
        plot.write_text("plot")
        run.log_artifact(plot)
        model = run.log_model(LogisticRegression(max_iter=50).fit(X, y), "clf")
    lg.log_predictions(model, X, y, request_ids=[f"r{i}" for i in range(10)])
    lg.annotate(model, "intended_use", "scoring")
    with lg.batch():
        for i in range(3):
            lg.log_dataset(uri=f"s3://bucket/b{i}.csv", digest=f"{i:064x}", name=f"batch{i}")
    with lg.start_run("second") as run2:
        run2.log_input(train)
    lg.redact(remote.id, reason="GDPR request")
    crashed = lg.start_run("dies")
    crashed._lock.release()  # as if its process had died
    lg.reap()


def test_no_write_scans_a_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lg = lineage.open(tmp_path / ".lineage" / "lineage.db")
    # some history first, so the plans are those of a store in use
    for i in range(30):
        lg.log_dataset(uri=f"s3://bucket/seed{i}.csv", digest=f"{i + 100:064x}", name=f"seed{i % 7}")
    statements: list[str] = []
    lg.store.conn.set_trace_callback(statements.append)
    try:
        _record_writes(lg, tmp_path)
    finally:
        lg.store.conn.set_trace_callback(None)
    checked = 0
    problems: list[tuple[str, list[str]]] = []
    for sql in dict.fromkeys(statements):
        if not sql.lstrip().upper().startswith(("SELECT", "WITH", "INSERT", "UPDATE", "DELETE")):
            continue
        if "lineage_staged" in sql:
            # a bulk write's own TEMP staging table: read whole, on purpose, when it is
            # published (and dropped by now)
            continue
        plan = [row[-1] for row in lg.store.conn.execute("EXPLAIN QUERY PLAN " + sql)]
        checked += 1
        bad = _bad_steps(sql, plan)
        if bad:
            problems.append((sql[:200], bad))
    lg.close()
    assert checked > 30  # the writes above did run statements through the trace
    assert problems == []


def test_the_checker_catches_what_it_is_for(tmp_path: Path) -> None:
    """The rules above, against the statement issue 16 found (an OR that defeated the
    name index) and a plain scan."""
    lg = lineage.open(tmp_path / "lineage.db")
    old = ("SELECT id FROM nodes WHERE kind = 'dataset' AND (name = 'x' OR id IN "
           "(SELECT node FROM aliases WHERE name = 'x')) ORDER BY pk DESC LIMIT 1")
    scan = "SELECT id FROM nodes WHERE attrs = '{}'"
    head = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"

    def plan(sql: str) -> list[str]:
        return [row[-1] for row in lg.store.conn.execute("EXPLAIN QUERY PLAN " + sql)]

    assert _bad_steps(old, plan(old))
    assert _bad_steps(scan, plan(scan))
    assert _bad_steps(head, plan(head)) == []
    lg.close()
