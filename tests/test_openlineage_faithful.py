"""An OpenLineage import records nothing untrue: a failed run is not credited with
its outputs, dirty code is not clean, a run whose START and COMPLETE arrive in two
files keeps what its START said, and a file imported before it was hashed is linked
to its hashed versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import lineage
from lineage.interop import openlineage

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
