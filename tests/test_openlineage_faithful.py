"""An OpenLineage import records nothing untrue: a failed run is not credited with
its outputs, dirty code is not clean, a run whose START and COMPLETE arrive in two
files keeps what its START said, and a file imported before it was hashed is linked
to its hashed versions."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import lineage
from lineage.interop import openlineage

BACKENDS = ("sqlite", "postgres")  # conftest runs the store fixtures on both

RUN_A = "01890a5d-ac96-774b-bcce-b302099a8057"
RUN_B = "01890a5d-ac96-774b-bcce-b302099a8058"
RID_A = "run:" + RUN_A.replace("-", "")
RID_B = "run:" + RUN_B.replace("-", "")


def _event(run: str, kind: str, t: str, job: str, inputs: list[dict[str, Any]] = (), outputs: list[dict[str, Any]] = (),
           job_facets: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"eventType": kind, "eventTime": t, "producer": "https://github.com/dbt-labs/dbt-core", "schemaURL": openlineage.RUN_EVENT_SCHEMA,
            "run": {"runId": run}, "job": {"namespace": "dbt", "name": job, **({"facets": job_facets} if job_facets else {})},
            "inputs": list(inputs), "outputs": list(outputs)}


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


@pytest.mark.parametrize("end", ["FAIL", "ABORT"])
def test_a_failed_run_is_not_credited_with_its_outputs(lg: lineage.Lineage, tmp_path: Path, end: str) -> None:
    src = {"namespace": "postgres://db:5432", "name": "shop.public.orders"}
    model = {"namespace": "postgres://db:5432", "name": "shop.public.orders_daily"}
    lg.import_openlineage(_write(tmp_path / "e.jsonl", [
        _event(RUN_A, "START", "2026-01-01T00:00:00Z", "shop.orders_daily", [src]),
        _event(RUN_A, end, "2026-01-01T00:01:00Z", "shop.orders_daily", [src], [model]),
        # a later run reading the table the failed one meant to write was not informed by it
        _event(RUN_B, "START", "2026-01-01T00:02:00Z", "report", [model]),
        _event(RUN_B, "COMPLETE", "2026-01-01T00:03:00Z", "report", [model]),
    ]))
    run = lg.get(RID_A)
    assert run.attrs["status"] == "failed"
    assert run.attrs["declared_outputs"] == [model]  # what it meant to write, still visible
    assert not any(lg.store.generators(n.id) for n in lg.nodes(kind="dataset"))
    assert RID_A not in {n.id for n in lg.trace(RID_B).nodes()}
    assert lg.verify().ok


def _code_of(lg: lineage.Lineage, run_id: str) -> Any:
    [code] = [n for n in lg.trace(run_id).nodes() if n.kind == "code"]
    return code


@pytest.mark.parametrize("version", ["4f2a9c41d0e7b5a3c2d1e0f9a8b7c6d5e4f3a2b1-dirty", "4f2a9c41d0e7b5a3c2d1e0f9a8b7c6d5e4f3a2b1+dirty"])
def test_a_dirty_version_is_dirty_code(lg: lineage.Lineage, tmp_path: Path, version: str) -> None:
    loc = {"_producer": "https://x", "_schemaURL": openlineage.FACET_SCHEMAS["sourceCodeLocation"], "type": "git",
           "url": "https://github.com/acme/etl", "version": version}
    clean = {**loc, "version": version[:40]}
    lg.import_openlineage(_write(tmp_path / "e.jsonl", [
        _event(RUN_A, "START", "2026-01-01T00:00:00Z", "etl", job_facets={"sourceCodeLocation": loc}),
        _event(RUN_A, "COMPLETE", "2026-01-01T00:01:00Z", "etl", job_facets={"sourceCodeLocation": loc}),
        _event(RUN_B, "START", "2026-01-01T00:02:00Z", "etl", job_facets={"sourceCodeLocation": clean}),
        _event(RUN_B, "COMPLETE", "2026-01-01T00:03:00Z", "etl", job_facets={"sourceCodeLocation": clean}),
    ]))
    dirty, committed = _code_of(lg, RID_A), _code_of(lg, RID_B)
    assert dirty.attrs["dirty"] is True and dirty.attrs["commit"] == version[:40]
    assert committed.attrs["dirty"] is False and committed.attrs["commit"] == version[:40]
    assert dirty.id != committed.id  # the changes are not the commit


def test_our_export_of_dirty_code_imports_dirty(lg: lineage.Lineage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import committed_repo

    repo = committed_repo(tmp_path)
    (repo / "train.py").write_text("print('fit, edited')\n")
    monkeypatch.chdir(repo)
    with lg.start_run("fit", command=["python", "train.py"]) as r:  # (its code: the script's work tree)
        pass
    code = _code_of(lg, r.id)
    assert code.attrs["dirty"] is True and code.attrs["diff_digest"]
    lg.export("openlineage", None, tmp_path / "e.jsonl")
    loc = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()][0]["job"]["facets"]["sourceCodeLocation"]
    assert loc["version"] == code.attrs["commit"] + "-dirty"
    other = lineage.open(tmp_path / "other" / "lineage.db")
    other.import_openlineage(tmp_path / "e.jsonl")
    back = _code_of(other, r.id)
    assert back.id == code.id  # the same code node, dirty, with its diff digest
    assert back.attrs["dirty"] is True and back.attrs["diff_digest"] == code.attrs["diff_digest"]
    assert not lg.import_openlineage(tmp_path / "e.jsonl").changed


def test_start_and_complete_in_two_files(lg: lineage.Lineage, tmp_path: Path) -> None:
    raw = {"namespace": "s3://lake", "name": "raw/customers"}
    clean = {"namespace": "s3://lake", "name": "clean/customers"}
    env = {"_producer": "https://x", "_schemaURL": "https://example.com/EnvFacet.json", "API_TOKEN": "hunter2"}
    start = _event(RUN_A, "START", "2026-01-01T00:00:00Z", "etl", [raw])
    start["run"]["facets"] = {"environmentVariables": env}
    first = _write(tmp_path / "1.jsonl", [start])
    second = _write(tmp_path / "2.jsonl", [_event(RUN_A, "COMPLETE", "2026-01-01T00:05:00Z", "etl", [], [clean])])
    res = lg.import_openlineage(first)
    assert res.counts.get("run", 0) == 0 and res.counts["pending"] == 1  # not `running`: its lock would read crashed
    assert not lg.import_openlineage(first).changed  # kept once
    assert "hunter2" not in json.dumps([n.attrs for n in lg.nodes(kind="run")])  # only what the import reads is kept
    lg.import_openlineage(second)
    run = lg.get(RID_A)
    assert run.attrs["started_at"] == "2026-01-01T00:00:00.000000Z" and run.attrs["status"] == "finished"
    assert {n.attrs.get("openlineage", {}).get("name") for n in lg.trace(RID_A).nodes(kind="dataset")} == {"raw/customers"}
    assert lg.store.generators([n for n in lg.nodes(kind="dataset") if n.name == "customers"
                                and n.attrs["openlineage"]["name"] == "clean/customers"][0].id) == [RID_A]
    for path in (first, second):  # either file again adds nothing
        assert not lg.import_openlineage(path).changed
    assert lg.verify().ok


def _file_events(path: Path, t_start: str, t_end: str) -> list[dict[str, Any]]:
    out = {"namespace": "file", "name": str(path)}
    return [_event(RUN_A, "START", t_start, "etl.write"), _event(RUN_A, "COMPLETE", t_end, "etl.write", [], [out]),
            _event(RUN_B, "START", t_end, "etl.read", [out]), _event(RUN_B, "COMPLETE", t_end, "etl.read", [out])]


def test_a_file_imported_before_it_was_hashed_is_the_same_data(lg: lineage.Lineage, tmp_path: Path) -> None:
    data = tmp_path / "x.csv"
    data.write_text("a\n1\n")
    os.utime(data, (1767225600, 1767225600))  # 2026-01-01T00:00:00Z: written before the events
    lg.import_openlineage(_write(tmp_path / "e.jsonl", _file_events(data, "2025-12-31T23:59:00Z", "2026-01-01T00:01:00Z")))
    [seen] = [n for n in lg.nodes(kind="dataset") if n.attrs.get("openlineage", {}).get("name") == str(data)]
    with lg.start_run("train") as r:
        hashed = r.log_input(str(data))
    assert hashed.id != seen.id  # (the content node, as always)
    # the bytes hashed now are the ones the imported runs wrote and read
    assert RID_B in {n.id for n in lg.impact(hashed.id).nodes()}
    assert RID_A in {n.id for n in lg.trace(r.id).nodes()}
    assert lg.verify().ok


def test_a_file_modified_after_the_import_is_other_data(lg: lineage.Lineage, tmp_path: Path) -> None:
    data = tmp_path / "x.csv"
    data.write_text("a\n1\n")
    lg.import_openlineage(_write(tmp_path / "e.jsonl", _file_events(data, "2025-12-31T23:59:00Z", "2026-01-01T00:01:00Z")))
    data.write_text("a\n2\n")  # (now: after the events)
    hashed = lg.log_dataset(str(data))
    assert RID_B not in {n.id for n in lg.impact(hashed.id).nodes()}
    assert RID_A not in {n.id for n in lg.trace(hashed.id).nodes()}
    assert len(lg.history("x.csv").to_dict()["items"]) == 2  # still its version history


def test_a_script_recorded_as_data_in_the_code_role_exports_valid_events(lg: lineage.Lineage, tmp_path: Path) -> None:
    """A DVC stage's script is a dataset its run used in the role `code`: the export
    wrote it as the run's code state, which the OpenLineage schema check refused on
    import (``code.id`` must be a code node's)."""
    script = tmp_path / "train.py"
    script.write_text("print('fit')\n")
    with lg.start_run("fit", command=["python", "train.py"]) as r:
        r.log_input(str(script), role="code")
    lg.export("openlineage", None, tmp_path / "e.jsonl")
    other = lineage.open(tmp_path / "other" / "lineage.db")
    assert other.import_openlineage(tmp_path / "e.jsonl").changed
    assert other.get(r.id).kind == "run"
