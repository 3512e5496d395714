"""Export: OpenLineage events that validate on the spec's schemas, PROV documents that
read back equal and import back into the same graph, GraphML and JSON; posting to a
real HTTP server on localhost."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import lineage
from lineage.cli import cli
from lineage.interop import openlineage

# CI has shared/ beside the clone; a worktree here sits one level deeper
_ROOT = Path(__file__).resolve().parents[1]
REFERENCE = next((p / "shared" / "reference" / "openlineage-spec" for p in (_ROOT.parent, _ROOT.parent.parent)
                  if (p / "shared" / "reference" / "openlineage-spec").is_dir()), _ROOT / "missing")
SHIPPED = Path(openlineage.__file__).parent / "schemas" / "openlineage"


@pytest.fixture
def graph(lg: lineage.Lineage, tmp_path: Path) -> dict[str, Any]:
    """A small real graph: raw -> prep -> clean -> fit -> model, one failed run."""
    raw = tmp_path / "raw.csv"
    raw.write_text("age,income,label\n30,100,1\n40,200,0\n")
    with lg.start_run("prep", params={"drop": "na"}, command=["python", "prep.py"]) as prep:
        prep.log_input(str(raw), role="input")
        clean = tmp_path / "clean.csv"
        clean.write_text("age,income,label\n30,100,1\n")
        clean_node = prep.log_output(str(clean))
    from sklearn.linear_model import LogisticRegression

    with lg.start_run("fit", params={"C": 0.5}, parent=prep.id) as fit:
        fit.log_input(clean_node)
        fit.log_metric("accuracy", 0.9)
        fit.log_metric("accuracy", 0.95, step=1)
        model = fit.log_model(LogisticRegression(C=0.5).fit([[1], [2], [3], [4]], [0, 0, 1, 1]), "clf")
    lg.log_predictions(model, [[1], [2]], [0, 1], request_ids=["req-1", "req-2"])
    raw.write_text("age,income,label\n30,100,1\n40,200,0\n50,300,1\n")
    lg.log_dataset(str(raw))  # a second version: was_revision_of the first
    with pytest.raises(RuntimeError), lg.start_run("broken") as broken:
        raise RuntimeError("out of memory")
    return {"prep": prep.id, "fit": fit.id, "model": model.id, "clean": clean_node.id, "broken": broken.id}


def test_shipped_schemas_are_the_reference_copy() -> None:
    if not REFERENCE.is_dir():
        pytest.skip("no ../shared/reference beside the clone")
    for ref in REFERENCE.rglob("*.json"):
        assert (SHIPPED / ref.relative_to(REFERENCE)).read_bytes() == ref.read_bytes(), ref.name


def test_openlineage_events_validate_and_carry_the_facts(lg: lineage.Lineage, graph: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    result = lg.export("openlineage", None, out)
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert result.count == len(events) == 6  # START + end for prep, fit, broken
    for ev in events:
        assert openlineage.validate_event(ev) == [], ev
        assert ev["schemaURL"].startswith("https://openlineage.io/spec/2-0-2/")
    by_run: dict[str, list[str]] = {}
    for ev in events:
        by_run.setdefault(ev["run"]["runId"], []).append(ev["eventType"])
    assert sorted(map(tuple, by_run.values())) == [("START", "COMPLETE"), ("START", "COMPLETE"), ("START", "FAIL")]
    fit_uuid = openlineage.run_uuid(graph["fit"])
    fit_end = next(e for e in events if e["run"]["runId"] == fit_uuid and e["eventType"] == "COMPLETE")
    ml = fit_end["run"]["facets"]["lineage_ml"]
    assert ml["params"] == {"C": "0.5"} and ml["metrics"] == {"accuracy": 0.95}
    assert ml["models"][0]["id"] == graph["model"]
    assert fit_end["run"]["facets"]["parent"]["run"]["runId"] == openlineage.run_uuid(graph["prep"])
    [inp] = fit_end["inputs"]
    assert inp["facets"]["version"]["datasetVersion"] == graph["clean"].split(":")[1]
    assert [f["name"] for f in inp["facets"]["schema"]["fields"]] == ["age", "income", "label"]
    assert {o["name"] for o in fit_end["outputs"]} == {"model/clf"}
    prep_start = next(e for e in events if e["run"]["runId"] == openlineage.run_uuid(graph["prep"]))
    assert prep_start["job"]["facets"]["sourceCode"]["sourceCode"] == "python prep.py"
    fail = next(e for e in events if e["eventType"] == "FAIL")
    assert "out of memory" in fail["run"]["facets"]["errorMessage"]["message"]


def test_the_custom_facet_has_its_own_schema(lg: lineage.Lineage, graph: dict[str, Any], tmp_path: Path) -> None:
    lg.export("openlineage", None, tmp_path / "e.jsonl")
    ev = json.loads((tmp_path / "e.jsonl").read_text().splitlines()[0])
    facet = ev["run"]["facets"]["lineage_ml"]
    assert openlineage.known_schema(facet["_schemaURL"])
    bad = {**ev, "run": {**ev["run"], "facets": {"lineage_ml": {**facet, "lineageId": "not-an-id"}}}}
    assert any("lineageId" in p for p in openlineage.validate_event(bad))


def test_an_invalid_event_is_caught() -> None:
    ev = {"eventType": "START", "eventTime": "2026-01-01T00:00:00Z", "producer": "https://x", "schemaURL": openlineage.RUN_EVENT_SCHEMA,
          "run": {"runId": "not-a-uuid"}, "job": {"namespace": "n"}}
    problems = openlineage.validate_event(ev)
    assert any("name" in p for p in problems) and any("uuid" in p for p in problems)


def test_export_of_a_reference_covers_its_trace(lg: lineage.Lineage, graph: dict[str, Any], tmp_path: Path) -> None:
    lg.export("openlineage", "clf", tmp_path / "e.jsonl")
    runs = {json.loads(x)["run"]["runId"] for x in (tmp_path / "e.jsonl").read_text().splitlines()}
    assert runs == {openlineage.run_uuid(graph["fit"]), openlineage.run_uuid(graph["prep"])}


def test_prov_round_trip(lg: lineage.Lineage, graph: dict[str, Any], tmp_path: Path) -> None:
    import prov

    from lineage.interop.graph import scope
    from lineage.interop.prov import to_document

    formats = [("prov-json", "json")]
    try:
        import lxml  # noqa: F401  (prov's XML serializer needs it)

        formats.append(("prov-xml", "xml"))
    except ImportError:
        pass
    for fmt, suffix in formats:
        path = tmp_path / f"g.{suffix}"
        lg.export(fmt, None, path)
        assert prov.read(str(path), format=suffix) == to_document(scope(lg.store)), fmt
    lg.export("prov-n", None, tmp_path / "g.provn")
    text = (tmp_path / "g.provn").read_text()
    for word in ("used(", "wasGeneratedBy(", "wasAssociatedWith(", "wasAttributedTo(", "wasInformedBy(", "prov:role"):
        assert word in text, word
    # import into a fresh store: the same graph
    other = lineage.open(tmp_path / "other" / "lineage.db")
    result = other.import_prov(tmp_path / "g.json")
    assert result.changed
    ours = scope(lg.store)
    theirs = scope(other.store)
    imported = {n.id for n in theirs.nodes if n.attrs.get("experiment") != "lineage.import"}
    assert {n.id for n in ours.nodes} <= imported
    for n in ours.nodes:
        twin = other.get(n.id)
        assert (twin.kind, twin.name) == (n.kind, n.name)
        if n.kind == "run":
            for key in ("params", "metrics", "status", "tags", "started_at", "ended_at", "experiment"):
                assert twin.attrs.get(key) == n.attrs.get(key), (n.id, key)
        else:
            assert dict(twin.attrs) == dict(n.attrs)
    ours_edges = set(ours.edges)
    assert ours_edges <= set(theirs.edges)
    assert other.get("request:req-2").attrs["model"] == graph["model"]
    assert {"was_revision_of", "was_derived_from", "used", "was_generated_by", "was_associated_with", "was_attributed_to",
            "was_informed_by"} <= {e.rel for e in ours_edges}
    assert other.import_prov(tmp_path / "g.json").changed is False  # idempotent
    assert other.verify().ok
    other.close()


def test_graphml_and_json(lg: lineage.Lineage, graph: dict[str, Any], tmp_path: Path) -> None:
    import networkx as nx

    lg.export("graphml", None, tmp_path / "g.graphml")
    g = nx.read_graphml(tmp_path / "g.graphml")
    assert graph["model"] in g and g.nodes[graph["model"]]["kind"] == "model"
    lg.export("json", "clf", tmp_path / "g.json")
    doc = json.loads((tmp_path / "g.json").read_text())
    assert doc["root"] == graph["model"] and set(doc) == {"root", "nodes", "edges", "counts"}
    assert {"src": graph["model"], "dst": graph["fit"], "rel": "was_generated_by", "role": None} in doc["edges"]


class _Recorder(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Recorder.fail_first > 0:
            _Recorder.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        _Recorder.received.append(json.loads(body))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_url_posts_every_event_with_retries(lg: lineage.Lineage, graph: dict[str, Any], tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Recorder.received, _Recorder.fail_first = [], 2
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/lineage"
        res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "export", "--format", "openlineage", "--url", url])
        assert res.exit_code == 0, res.output
    finally:
        server.shutdown()
    assert len(_Recorder.received) == 6
    assert all(openlineage.validate_event(e) == [] for e in _Recorder.received)


def test_url_refused_is_one_clear_line(lg: lineage.Lineage, graph: dict[str, Any]) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = CliRunner().invoke(cli, ["--db", str(lg.db_path), "export", "--format", "openlineage",
                                   "--url", f"http://127.0.0.1:{port}/api/v1/lineage"])
    assert res.exit_code == 1
    assert "cannot post to http://127.0.0.1" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_the_written_lines_are_the_events(lg: lineage.Lineage, graph: dict[str, Any], tmp_path: Path) -> None:
    from lineage.interop.graph import scope

    lg.export("openlineage", None, tmp_path / "e.jsonl")
    written = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert written == list(openlineage.events(scope(lg.store, predictions=False)))


def test_the_one_pass_read_gives_what_store_nodes_gives(lg: lineage.Lineage, graph: dict[str, Any]) -> None:
    from lineage.query.dump import all_edges, all_nodes

    ours, theirs = all_nodes(lg.store), list(reversed(lg.store.nodes()))
    assert [(n.id, n.kind, n.name, n.attrs, n.created_at) for n in ours] == \
        [(n.id, n.kind, n.name, n.attrs, n.created_at) for n in theirs]
    fit = next(n for n in ours if n.id == graph["fit"])
    assert fit.attrs["metrics"] == {"accuracy": 0.95} and fit.attrs["status"] == "finished"
    assert {e.rel for e in all_edges(lg.store, ["used"])} == {"used"}
    assert len(list(all_edges(lg.store))) > len(list(all_edges(lg.store, ["used"])))


def test_an_import_moves_and_removes_only_the_labels_it_put(lg: lineage.Lineage, graph: dict[str, Any],
                                                            tmp_path: Path) -> None:
    """`ImportBatch.set_labels`, the registry re-read of every import: what the other
    tool changed is applied, what people set here is left alone."""
    from sklearn.linear_model import LogisticRegression

    from lineage.errors import NodeNotFoundError
    from lineage.interop.bulk import ImportBatch

    with lg.start_run("refit") as run:
        v2 = run.log_model(LogisticRegression(C=2.0).fit([[1], [2], [3], [4]], [0, 1, 1, 1]), "clf")
    v1 = graph["model"]

    def sync(labels: dict[str, str]) -> Any:
        batch = ImportBatch(lg.store, tool="registry", source="test")
        batch.set_labels("clf", {k: (m, f"alias {k}") for k, m in labels.items()}, owner="reg")
        return batch.commit()

    assert sync({"champion": v1, "shadow": v1}).counts["promotions"] == 2
    assert lg.get("clf@champion").id == v1 and lg.get("clf@shadow").id == v1
    assert not sync({"champion": v1, "shadow": v1}).changed  # nothing changed there
    result = sync({"champion": v2.id})  # moved one, deleted the other
    assert lg.get("clf@champion").id == v2.id
    with pytest.raises(NodeNotFoundError):
        lg.get("clf@shadow")
    assert [r["action"] for r in lg.store.promotion_rows("clf", "champion")] == ["promote", "end", "promote"]
    changes = lg.get(result.activity).attrs["import"]["registry"]
    assert [(c["change"], c["label"]) for c in changes] == [("label", "champion"), ("label removed", "shadow")]
    # labels people put here stay while the tool does not change them
    lg.promote(v1, "champion")
    lg.promote(v1, "production")
    assert not sync({"champion": v2.id}).changed
    assert lg.get("clf@champion").id == v1 and lg.get("clf@production").id == v1
    sync({"champion": v1})  # the tool moves it itself: followed
    sync({})  # and drops it: the holder is the tool's, so it goes; production was never the tool's
    with pytest.raises(NodeNotFoundError):
        lg.get("clf@champion")
    assert lg.get("clf@production").id == v1
    assert lg.verify().ok


def test_a_dataframes_column_types_reach_the_schema_facet(lg: lineage.Lineage, tmp_path: Path) -> None:
    """A DataFrame records its dtypes, not an imported schema: the exported schema
    facet named the columns without their types."""
    import pandas as pd

    frame = pd.DataFrame({"age": [30, 40], "income": [1.5, 2.5], "city": ["a", "b"]})
    with lg.start_run("fit") as run:
        run.log_input(frame, name="applicants")
    lg.export("openlineage", None, tmp_path / "ev.jsonl")
    events = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    [applicants] = [d for e in events for d in e["inputs"] if d["name"].endswith("applicants")][:1]
    fields = applicants["facets"]["schema"]["fields"]
    assert [(f["name"], f.get("type")) for f in fields] == [("age", "int64"), ("income", "float64"), ("city", str(frame["city"].dtype))]
    assert all(not openlineage.validate_event(e) for e in events)
