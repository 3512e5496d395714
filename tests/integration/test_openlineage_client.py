"""OpenLineage with the real openlineage-python client: events it writes (file
transport) import into lineage; events we export read back through its own model."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import require_module

import lineage
from lineage.interop import openlineage as ol


def _emit(path: Path) -> dict[str, str]:
    require_module("openlineage.client")
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import dataset_version_dataset, parent_run, schema_dataset
    from openlineage.client.transport.file import FileConfig, FileTransport
    from openlineage.client.uuid import generate_new_uuid

    client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(path), append=True)))
    producer = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/airflow"
    parent_id, run_id = str(generate_new_uuid()), str(generate_new_uuid())
    raw = InputDataset(namespace="s3://lake", name="raw/customers",
                       facets={"schema": schema_dataset.SchemaDatasetFacet(
                           fields=[schema_dataset.SchemaDatasetFacetFields(name="id", type="INT"),
                                   schema_dataset.SchemaDatasetFacetFields(name="income", type="DOUBLE")])})
    out = OutputDataset(namespace="s3://lake", name="features/customers",
                        facets={"version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="v7")})
    job = Job(namespace="airflow", name="etl.features")
    parent = parent_run.ParentRunFacet(run=parent_run.Run(runId=parent_id),
                                       job=parent_run.Job(namespace="airflow", name="etl"))
    for state, t in ((RunState.START, "2026-03-01T10:00:00Z"), (RunState.COMPLETE, "2026-03-01T10:05:00Z")):
        client.emit(RunEvent(eventType=state, eventTime=t, producer=producer,
                             run=Run(runId=run_id, facets={"parent": parent}), job=job, inputs=[raw], outputs=[out]))
    return {"run": run_id, "parent": parent_id}


def test_events_from_the_real_client_import(lg: lineage.Lineage, tmp_path: Path) -> None:
    path = tmp_path / "events"
    ids = _emit(path)
    files = sorted(tmp_path.glob("events*"))
    lines = [line for f in files for line in f.read_text().splitlines() if line.strip()]
    assert len(lines) == 2
    for line in lines:
        assert ol.validate_event(json.loads(line)) == []
    events = tmp_path / "all.jsonl"
    events.write_text("\n".join(lines) + "\n")
    result = lg.import_openlineage(events)
    assert result.counts["run"] == 1
    run = lg.get("run:" + ids["run"].replace("-", ""))
    assert run.name == "etl.features" and run.attrs["status"] == "finished"
    assert run.attrs["parent_run"] == "run:" + ids["parent"].replace("-", "")
    sub = lg.trace(run.id)
    raw = next(n for n in sub.nodes("dataset") if n.attrs["openlineage"]["name"] == "raw/customers")
    assert raw.attrs["columns"] == ["id", "income"] and raw.attrs["uri"] == "s3://lake/raw/customers"
    made = [e.src for e in lg.impact(run.id).edges() if e.rel == "was_generated_by"]
    assert len(made) == 1 and lg.get(made[0]).attrs["version"] == "v7"
    # our own export of what was imported names the same run and datasets
    lg.export("openlineage", run.id, tmp_path / "back.jsonl")
    back = [json.loads(x) for x in (tmp_path / "back.jsonl").read_text().splitlines()]
    assert {e["run"]["runId"] for e in back} == {ids["run"]}
    assert {(d["namespace"], d["name"]) for e in back for d in e["inputs"]} == {("s3://lake", "raw/customers")}
    assert all(ol.validate_event(e) == [] for e in back)
    assert not lg.import_openlineage(events).changed


def test_our_events_parse_in_the_client(lg: lineage.Lineage, tmp_path: Path) -> None:
    require_module("openlineage.client")
    from openlineage.client.event_v2 import RunEvent
    from openlineage.client.serde import Serde

    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    with lg.start_run("fit", params={"C": 1}) as r:
        r.log_input(str(data))
        r.log_metric("acc", 0.5)
    lg.export("openlineage", None, tmp_path / "e.jsonl")
    for line in (tmp_path / "e.jsonl").read_text().splitlines():
        ev = json.loads(line)
        # the client's own model accepts our fields, and serialises them back unchanged
        typed = RunEvent(eventTime=ev["eventTime"], producer=ev["producer"], eventType=ev["eventType"],
                         run=ev["run"], job=ev["job"], inputs=ev["inputs"], outputs=ev["outputs"])
        again = json.loads(Serde.to_json(typed))
        assert again["run"]["runId"] == ev["run"]["runId"] and again["job"] == ev["job"]
