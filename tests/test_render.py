"""Diagrams: DOT/SVG through the real `dot`, Mermaid text, HTML, the terminal tree,
folding, highlighting, escaping of hostile names, and the `dag` command."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import require_program
from rich.console import Console

import lineage
from lineage import render
from lineage.cli import cli
from lineage.errors import RenderError
from lineage.model import KINDS, Edge, Node
from lineage.query import Subgraph, build_subgraph

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"

HOSTILE = ["<script>alert(1)</script>", '"]; evil [', "two\nlines \\N \\\\ end", "a & b #quot; `tick` %%"]


# ---------------------------------------------------------------------------
# hand-built graphs (the shape a trace of one prediction has)


def _hex(c: str) -> str:
    return (c * 64)[:64]


def _uuid(n: int) -> str:
    return f"{0x0192 << 112 | n:032x}"


def pipeline(*, names: dict[str, str] | None = None, predictions: int = 1) -> tuple[list[Node], list[Edge]]:
    """raw -> preprocess -> clean -> fit (+ test, code, env, agent) -> model -> predictions."""
    names = {"raw": "train", "clean": "train_clean", "test": "test", "prep": "preprocess",
             "fit": "train_random_forest", "model": "random_forest", **(names or {})}
    raw = Node("dataset:" + _hex("3f2a9c41"), "dataset", names["raw"], {"rows": 1234, "size": 120_345})
    clean = Node("dataset:" + _hex("a1"), "dataset", names["clean"], {"rows": 1200, "size": 99_000})
    test = Node("dataset:" + _hex("b2"), "dataset", names["test"], {"rows": 300, "size": 30_000})
    prep = Node("run:" + _uuid(1 << 40), "run", names["prep"], {"status": "finished", "duration_s": 1.25})
    fit = Node("run:" + _uuid(2 << 40), "run", names["fit"],
               {"status": "finished", "duration_s": 83.0, "metrics": {"f1": 0.96, "accuracy": 0.95614}})
    code = Node("code:" + _hex("e"), "code", "train.py", {"commit": "abcdef1234567890", "dirty": True})
    env = Node("environment:" + _hex("f"), "environment", "python 3.11.4", {"packages": {"numpy": "2"}, "platform": "Linux-6"})
    agent = Node("agent:" + _hex("9"), "agent", "alice", {"user": "alice", "host": "ml-box"})
    model = Node("model:" + _hex("7"), "model", names["model"], {"class": "sklearn.ensemble.RandomForestClassifier"})
    preds = [Node("prediction:" + _uuid(i), "prediction", None,
                  {"output": i % 2, "score": 0.9, "request_id": f"req-{i:04d}"}, f"2024-05-0{1 + i % 3}T00:00:00Z")
             for i in range(predictions)]
    nodes = [raw, clean, test, prep, fit, code, env, agent, model, *preds]
    edges = [
        Edge(prep.id, raw.id, "used", "training"), Edge(clean.id, prep.id, "was_generated_by"),
        Edge(fit.id, clean.id, "used", "training"), Edge(fit.id, test.id, "used", "evaluation"),
        Edge(fit.id, code.id, "used", "code"), Edge(fit.id, env.id, "used", "environment"),
        Edge(fit.id, agent.id, "was_associated_with"), Edge(fit.id, prep.id, "was_informed_by"),
        Edge(model.id, fit.id, "was_generated_by"), Edge(model.id, agent.id, "was_attributed_to"),
        *[Edge(p.id, model.id, "was_derived_from") for p in preds],
    ]
    return nodes, edges


def trace_of_prediction(**kw) -> Subgraph:
    nodes, edges = pipeline(**kw)
    root = next(n.id for n in nodes if n.kind == "prediction")
    return build_subgraph(nodes, edges, root, direction="upstream")


def impact_of_raw(**kw) -> Subgraph:
    nodes, edges = pipeline(**kw)
    keep = {"dataset:" + _hex("3f2a9c41"), "dataset:" + _hex("a1"), "run:" + _uuid(1 << 40), "run:" + _uuid(2 << 40),
            "model:" + _hex("7")}
    nodes = [n for n in nodes if n.id in keep or n.kind == "prediction"]
    return build_subgraph(nodes, edges, "dataset:" + _hex("3f2a9c41"), direction="downstream")


RAW = "dataset:" + _hex("3f2a9c41")
CLEAN = "dataset:" + _hex("a1")
TEST = "dataset:" + _hex("b2")
PREP = "run:" + _uuid(1 << 40)
MODEL = "model:" + _hex("7")


def svg_tree(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))


def svg_nodes(root: ET.Element) -> list[ET.Element]:
    """The drawn nodes, the legend aside."""
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "node" and g.findtext(f"{SVG}title") != "legend"]


def svg_edges(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]


def texts(el: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in el.iter(f"{SVG}text")]


def tooltip(node_el: ET.Element) -> str | None:
    for a in node_el.iter(f"{SVG}a"):
        return a.get(f"{XLINK}title")
    return None


def bold(el: ET.Element) -> bool:
    return any(p.get("stroke-width") == "3" for p in el.iter(f"{SVG}path"))


def tree_text(tree, width: int = 200) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(tree)
    return console.export_text()


# ---------------------------------------------------------------------------
# the style table


def test_style_table_follows_prov_and_covers_every_kind() -> None:
    for kind in (*KINDS, "group", "note"):
        assert kind in render.STYLE, kind
        assert {"shape", "fillcolor", "color", "mermaid", "rich"} <= set(render.STYLE[kind])
    entities = [k for k, c in KINDS.items() if c == "entity"]
    assert {render.STYLE[k]["shape"] for k in entities} == {"ellipse"}
    assert len({render.STYLE[k]["fillcolor"] for k in entities}) == len(entities)  # each its own colour
    assert render.STYLE["run"]["shape"] == "box"
    assert render.STYLE["agent"]["shape"] == "house"


# ---------------------------------------------------------------------------
# DOT and SVG


def test_dot_uses_generated_ids_and_puts_real_ids_in_labels() -> None:
    dot = render.to_dot(trace_of_prediction())
    node_lines = [line for line in dot.splitlines() if re.match(r"\s+n\d+ \[", line)]
    assert len(node_lines) == 10
    edge_lines = [line for line in dot.splitlines() if "->" in line]
    assert all(re.match(r"\s+n\d+ -> n\d+ \[", line) for line in edge_lines)
    assert len(edge_lines) == 10  # 11 relations; the run-to-run was_informed_by arc is implied by the data
    assert "was_informed_by arc not drawn" in dot
    assert "dataset:3f2a9c41<" in dot  # the short id, inside the label
    assert 'rankdir="RL"' in dot  # PROV arrows point back; data still reads left to right
    assert 'rankdir="BT"' in render.to_dot(trace_of_prediction(), rankdir="TB")
    with pytest.raises(RenderError, match="rankdir"):
        render.to_dot(trace_of_prediction(), rankdir="sideways")


def test_short_ids_tell_the_diagrams_nodes_apart() -> None:
    # two runs logged in the same millisecond share their first 12 hex digits
    a = Node("run:01a2164a6b9d7001" + "0" * 16, "run", "a", {"status": "finished"})
    b = Node("run:01a2164a6b9d7002" + "0" * 16, "run", "b", {"status": "finished"})
    c = Node("run:01a2164a7000" + "0" * 20, "run", "c", {"status": "finished"})
    d = Node("dataset:" + _hex("3f2a9c41"), "dataset", "d")
    sub = build_subgraph([a, b, c, d], [Edge(a.id, d.id, "used"), Edge(b.id, d.id, "used"), Edge(c.id, d.id, "used")],
                         a.id, direction="upstream")
    dot = render.to_dot(sub)
    assert "run:01a2164a6b9d7001<" in dot and "run:01a2164a6b9d7002<" in dot
    assert "run:01a2164a70000000<" in dot  # a run's time-ordered id: at least 16 digits, as in tables
    assert "dataset:3f2a9c41<" in dot  # content digests: 8 are plenty


def test_svg_has_every_node_with_its_name_short_id_and_facts() -> None:
    require_program("dot")
    sub = trace_of_prediction()
    root = svg_tree(render.to_svg(sub))
    nodes = svg_nodes(root)
    assert len(nodes) == len(sub) == 10
    assert {tooltip(n) for n in nodes} == {n.id for n in sub.nodes()}  # full ids on hover
    labels = {tooltip(n): texts(n) for n in nodes}
    assert labels[RAW] == ["train", "1,234 rows · 117.5 KB", "dataset:3f2a9c41"]
    assert labels[PREP][:2] == ["preprocess", "finished · 1.2 s"]
    # the model shows its main metric, found on the run in the subgraph that made it
    assert labels[MODEL][:2] == ["random_forest", "accuracy 0.956"]
    assert len(svg_edges(root)) == 10  # the implied was_informed_by arc is left to the data path
    edge_labels = {t for e in svg_edges(root) for t in texts(e)}
    assert {"used (training)", "was_generated_by", "was_derived_from"} <= edge_labels


def test_hostile_names_are_literal_text_everywhere() -> None:
    require_program("dot")
    names = {"raw": HOSTILE[0], "clean": HOSTILE[1], "test": HOSTILE[2], "model": HOSTILE[3]}
    sub = trace_of_prediction(names=names)
    svg = render.to_svg(sub)
    assert "<script" not in svg
    root = svg_tree(svg)  # still well-formed XML
    nodes = svg_nodes(root)
    assert len(nodes) == 10  # no node injected by `"]; evil [`
    shown = {tooltip(n): texts(n)[0] for n in nodes}
    assert shown[RAW] == "<script>alert(1)</script>"
    assert shown[CLEAN] == '"]; evil ['
    assert shown[TEST] == "two lines \\N \\\\ end"  # newline flattened; backslashes kept, not dot escapes
    assert shown[MODEL] == "a & b #quot; `tick` %%"

    mmd = render.to_mermaid(sub)
    assert "<script" not in mmd and "evil [" not in mmd
    assert "#60;script#62;alert(1)#60;/script#62;" in mmd
    assert "#34;#93;#59; evil #91;" in mmd
    assert "#35;quot#59;" in mmd  # a literal "#quot;" cannot become a quote

    page = render.to_html_fragment(sub)
    assert "<script" not in page


def test_highlight_draws_the_path_through_the_data_in_bold() -> None:
    require_program("dot")
    sub = trace_of_prediction()
    root = svg_tree(render.to_svg(sub, highlight=[RAW]))
    bold_edges = [e for e in svg_edges(root) if bold(e)]
    # prediction -> model -> fit -> train_clean -> preprocess -> train: through the data,
    # not the was_informed_by shortcut
    assert sorted(texts(e)[0] for e in bold_edges) == sorted(
        ["was_derived_from", "was_generated_by", "used (training)", "was_generated_by", "used (training)"])
    bold_nodes = {tooltip(n) for n in svg_nodes(root) if any(
        s.get("stroke-width") == "3" for s in n.iter() if s.tag in (f"{SVG}ellipse", f"{SVG}path", f"{SVG}polygon"))}
    assert bold_nodes == {sub.root, MODEL, "run:" + _uuid(2 << 40), CLEAN, PREP, RAW}

    with pytest.raises(RenderError, match="not in this diagram"):
        render.to_dot(sub, highlight=["dataset:" + _hex("0")])
    # references are resolved among the drawn nodes: a name, kind:name, an id prefix
    by_id = render.to_dot(sub, highlight=[RAW])
    assert render.to_dot(sub, highlight=["train"]) == by_id
    assert render.to_dot(sub, highlight=["dataset:train"]) == by_id
    assert render.to_dot(sub, highlight=["dataset:3f2a9c"]) == by_id
    with pytest.raises(RenderError, match="matches .*give the id"):
        render.to_dot(sub, highlight=["run:0192"])  # both runs


def test_highlight_downstream_to_a_folded_prediction_pulls_it_out() -> None:
    sub = impact_of_raw(predictions=12)
    flagged = sub.nodes("prediction")[7].id
    dot = render.to_dot(sub, highlight=flagged)
    assert "11 predictions" in dot  # the flagged one is drawn on its own
    assert "request req-0007" in dot
    assert dot.count("penwidth=3") >= 5  # the path from the raw data to it


def test_marks_stale_and_tampered() -> None:
    require_program("dot")
    sub = trace_of_prediction()
    root = svg_tree(render.to_svg(sub, marked={TEST: "stale", PREP: "tampered"}))
    labels = {tooltip(n): n for n in svg_nodes(root)}
    assert "⚠ stale" in texts(labels[TEST])
    assert "✗ tampered" in texts(labels[PREP])
    assert any(p.get("stroke-dasharray") for p in labels[TEST].iter(f"{SVG}ellipse"))
    with pytest.raises(RenderError, match="unknown mark"):
        render.to_dot(sub, marked={TEST: "dodgy"})


# ---------------------------------------------------------------------------
# folding and max_nodes


def _siblings(n: int) -> Subgraph:
    model = Node(MODEL, "model", "m")
    preds = [Node("prediction:" + _uuid(i), "prediction", None, {"output": 1}) for i in range(n)]
    return build_subgraph([model, *preds], [Edge(p.id, model.id, "was_derived_from") for p in preds], model.id,
                          direction="downstream")


def test_fold_threshold() -> None:
    assert render.FOLD_MIN == 5
    assert len(render.fold(_siblings(4))) == 5  # four siblings keep their names
    folded = render.fold(_siblings(5))
    assert len(folded) == 2
    group = folded.nodes("group")[0]
    assert group.attrs["of"] == "prediction" and group.attrs["count"] == 5
    assert folded.counts == {"model": 1, "prediction": 5}  # counts still tell the whole story
    assert len(render.fold(_siblings(3), fold=3)) == 2
    assert len(render.fold(_siblings(50), fold=False)) == 51
    # different neighbours (or relations, or roles) do not fold together
    nodes, edges = pipeline()
    sub = build_subgraph(nodes, edges, None, direction="upstream")
    assert len(render.fold(sub, fold=2)) == len(sub)


def test_the_fold_threshold_is_read_through_the_package(monkeypatch) -> None:
    monkeypatch.setattr(render.style, "FOLD_MIN", 3)  # `render.style.FOLD_MIN = 3` changes it (docs/diagrams.md)
    assert len(render.fold(_siblings(3))) == 2


def test_max_nodes_keeps_the_nearest_along_the_data_not_through_a_shared_agent() -> None:
    """Every run is associated with the one agent and uses the one environment: a walk
    through them puts every run two steps from the root, and the cut kept the far end
    of a chain (step_1, step_10, ... by name). Context nodes are reached, not crossed."""
    agent = Node("agent:" + _hex("a"), "agent", "ann")
    env = Node("environment:" + _hex("e"), "environment", "py")
    runs = [Node("run:" + _uuid(i + 1), "run", f"step{i}", {"status": "finished"}) for i in range(30)]
    data = [Node("dataset:" + _hex(f"{i + 16:02x}"), "dataset", f"d{i}") for i in range(31)]
    edges = []
    for i, run in enumerate(runs):
        edges += [Edge(run.id, data[i].id, "used", "training"), Edge(data[i + 1].id, run.id, "was_generated_by"),
                  Edge(run.id, agent.id, "was_associated_with"), Edge(run.id, env.id, "used", "environment")]
    sub = build_subgraph([agent, env, *runs, *data], edges, data[-1].id, direction="upstream")
    cut = render.fold(sub, max_nodes=12)
    kept = sorted(int(n.name[4:]) for n in cut.nodes() if n.kind == "run")
    assert kept and kept == list(range(29, 29 - len(kept), -1))[::-1]  # the last steps, nearest d30


def test_max_nodes_keeps_the_nearest_and_notes_the_rest() -> None:
    # a chain of 30 runs, each informed by the previous: nothing folds
    runs = [Node("run:" + _uuid(i + 1), "run", f"step{i}", {"status": "finished"}) for i in range(30)]
    data = [Node("dataset:" + _hex(f"{i:02x}"), "dataset", f"d{i}") for i in range(5)]
    edges = [Edge(runs[i].id, runs[i + 1].id, "was_informed_by") for i in range(29)]
    edges += [Edge(runs[-1].id, d.id, "used", "training") for d in data[:2]]
    sub = build_subgraph([*runs, *data], edges, runs[0].id, direction="upstream")
    cut = render.fold(sub, max_nodes=10)
    assert len(cut) <= 10
    kept = {n.name for n in cut.nodes() if n.kind == "run"}
    assert kept == {f"step{i}" for i in range(len(kept))}  # the nearest ones
    groups = {n.attrs["of"]: n.attrs["count"] for n in cut.nodes("group")}
    assert sum(groups.values()) == cut.graph.graph["hidden"] == 35 - (len(cut) - len(groups))
    dot = render.to_dot(sub, max_nodes=10)
    assert f"… {cut.graph.graph['hidden']:,} more nodes not shown (max_nodes=10)" in dot
    assert "more runs" in dot
    # the highlighted path survives the cut
    far = runs[25].id
    cut = render.fold(sub, max_nodes=10, keep=[far])
    assert far in cut and runs[0].id in cut


def test_huge_diagrams_need_max_nodes_for_dot_and_notebooks_limit_themselves(monkeypatch) -> None:
    require_program("dot")
    monkeypatch.setattr(render.style, "DOT_MAX_NODES", 20)
    monkeypatch.setattr(render.style, "AUTO_MAX_NODES", 10)
    runs = [Node("run:" + _uuid(i + 1), "run", f"step{i}", {"status": "finished"}) for i in range(30)]
    sub = build_subgraph(runs, [Edge(runs[i].id, runs[i + 1].id, "was_informed_by") for i in range(29)], runs[0].id,
                         direction="upstream")
    with pytest.raises(RenderError, match="30 nodes even after folding.*max_nodes") as err:
        render.to_svg(sub)
    assert "\n" not in str(err.value)
    assert len(svg_nodes(svg_tree(render.to_svg(sub, max_nodes=25)))) == 25 + 1  # the note
    assert render.to_dot(sub).count("was_informed_by") == 29  # text formats draw everything
    html = sub._repr_html_()
    assert "… 21 more nodes not shown (max_nodes=10)" in html  # 9 runs + 1 group of the rest


@pytest.fixture
def forest(lg: lineage.Lineage, tmp_path: Path) -> tuple[lineage.Lineage, Node, Node]:
    from sklearn.linear_model import LogisticRegression

    X = np.arange(30, dtype=float).reshape(10, 3)
    y = np.array([0, 1] * 5)
    train = lg.log_dataset(np.column_stack([X, y]), name="train")
    with lg.start_run("fit") as run:
        run.log_input(train)
        run.log_metric("accuracy", 0.875)
        model = run.log_model(LogisticRegression().fit(X, y), "clf")
    return lg, model, train


def test_ten_thousand_predictions_fold_into_one_node(forest) -> None:
    require_program("dot")
    lg, model, _ = forest
    rng = np.random.default_rng(0)
    ids = lg.log_predictions(model, rng.normal(size=(10_000, 3)), rng.integers(0, 2, 10_000))
    sub = lg.impact(model, include_predictions=True)
    assert len(sub) == 10_001

    svg = render.to_svg(sub)  # its time is measured in docs/diagrams.md, not asserted here
    root = svg_tree(svg)
    assert len(svg_nodes(root)) == 2
    assert "10,000 predictions" in {t for n in svg_nodes(root) for t in texts(n)}
    assert "was_derived_from ×10,000" in {t for e in svg_edges(root) for t in texts(e)}

    # a flagged prediction is drawn on its own, the rest stay folded
    root = svg_tree(render.to_svg(sub, highlight=[ids[4321]]))
    assert len(svg_nodes(root)) == 3
    shown = {t for n in svg_nodes(root) for t in texts(n)}
    assert "9,999 predictions" in shown
    # its short id is a prefix no other prediction of the batch shares
    short = next(t for t in shown if t.startswith("prediction:"))
    assert [i for i in ids if i.startswith(short)] == [ids[4321]]
    assert sum(bold(e) for e in svg_edges(root)) == 1

    # asked for everything, everything is there (not drawn: dot on 10k nodes is slow)
    unfolded = render.to_dot(sub, fold=False)
    assert unfolded.count(" -> ") == 10_000 and unfolded.count("was_derived_from ×10,000") == 1  # labelled once
    assert render.to_mermaid(sub).count("-->") == 1

    tree = tree_text(render.to_tree(sub))
    assert "10,000 predictions" in tree
    assert len(tree.strip().splitlines()) == 2


# ---------------------------------------------------------------------------
# Mermaid


MERMAID_NODE = re.compile(r'^  n\d+(\(\[|\[\[|\[/|\[|>)"[^"\n]*"(\]\)|\]\]|\\\]|\])$')
MERMAID_EDGE = re.compile(r'^  n\d+ -->\|"[^"\n]*"\| n\d+$')


def test_mermaid_nodes_edges_and_quoting() -> None:
    sub = trace_of_prediction(names={"raw": HOSTILE[0], "clean": HOSTILE[1], "test": HOSTILE[2]})
    mmd = render.to_mermaid(sub, highlight=[RAW], marked={TEST: "tampered"})
    lines = mmd.splitlines()
    assert lines[0] == "flowchart RL"
    node_lines = [line for line in lines if MERMAID_NODE.match(line)]
    edge_lines = [line for line in lines if MERMAID_EDGE.match(line)]
    assert len(node_lines) == 10 and len(edge_lines) == 11
    other = [line for line in lines[1:] if line not in node_lines and line not in edge_lines]
    legend = [line for line in other if line.startswith(("  subgraph legend", "    legend_", "    class legend_", "  end"))]
    assert legend and legend[0].startswith("  subgraph legend")  # every diagram explains itself
    other = [line for line in other if line not in legend]
    assert all(re.match(r"^  (classDef|class|linkStyle) ", line) for line in other), other
    # labels hold no syntax: the only markup is our own <br>
    for line in node_lines:
        label = line.split('"')[1]
        assert re.sub(r"<br>", "", label).count("<") == 0
        assert ":" not in label  # Mermaid pre-scans for style-like "…:#…;" text
    assert any("dataset#58;3f2a9c41" in line for line in node_lines)
    shapes = {line.split('"')[0].split("n", 1)[1].lstrip("0123456789") for line in node_lines}
    assert shapes == {"([", "[", "[/"}  # entities stadiums, runs boxes, agents trapezoids
    link_style = next(line for line in lines if line.startswith("  linkStyle"))
    assert len(link_style.split()[1].split(",")) == 5
    assert "  classDef tampered " in mmd
    assert 'flowchart BT' in render.to_mermaid(sub, rankdir="TB")


# ---------------------------------------------------------------------------
# the terminal tree


def test_tree_upstream_downstream_and_shared_nodes() -> None:
    text = tree_text(render.to_tree(trace_of_prediction()))
    lines = text.splitlines()
    assert lines[0].startswith("request req-0000  prediction:01920000")
    assert "was_derived_from random_forest  model:77777777  accuracy 0.956" in text
    # preprocess is reached twice: expanded where it first appears, then "(see above)"
    first = next(i for i, line in enumerate(lines) if "preprocess" in line)
    again = [i for i, line in enumerate(lines) if "preprocess" in line and "(see above)" in line]
    assert again and all(i > first for i in again) and "(see above)" not in lines[first]

    down = tree_text(render.to_tree(impact_of_raw(predictions=7)))
    assert down.splitlines()[0].startswith("train  dataset:3f2a9c41  1,234 rows")
    assert "used by (training) preprocess" in down
    assert "7 predictions" in down


def test_tree_tolerates_cycles_and_escapes_markup() -> None:
    a = Node("run:" + _uuid(1), "run", "[bold red]a[/]", {"status": "finished"})
    b = Node("run:" + _uuid(2), "run", "b", {"status": "finished"})
    sub = build_subgraph([a, b], [Edge(a.id, b.id, "was_informed_by"), Edge(b.id, a.id, "was_informed_by")], a.id,
                         direction="upstream")
    text = tree_text(render.to_tree(sub))
    assert "[bold red]a[/]" in text  # shown as typed, not interpreted as rich markup
    assert "(see above)" in text
    assert len(text.strip().splitlines()) == 3
    assert "n0 -> n1" in render.to_dot(sub) and "n1 -> n0" in render.to_dot(sub)


# ---------------------------------------------------------------------------
# files and formats


def test_render_by_suffix(tmp_path: Path, lg: lineage.Lineage) -> None:
    require_program("dot")
    sub = trace_of_prediction(names={"raw": HOSTILE[0]})
    assert render.render(sub, tmp_path / "a.dot").read_text().startswith("digraph lineage {")
    assert render.render(sub, tmp_path / "a.mmd").read_text().startswith("flowchart RL")
    assert len(svg_nodes(svg_tree(render.render(sub, tmp_path / "a.svg").read_text()))) == 10
    assert render.render(sub, tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert render.render(sub, tmp_path / "a.pdf").read_bytes()[:5] == b"%PDF-"
    page = render.render(sub, tmp_path / "sub" / "a.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert "<script" not in page
    # self-contained: nothing fetched from anywhere
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert not re.search(r"url\(|@import|<link|<iframe", page)
    assert "<!DOCTYPE svg" not in page
    with pytest.raises(RenderError, match=r"\.svg .*\.mmd .*\.html"):
        render.render(sub, tmp_path / "a.jpeg")
    assert "penwidth=3" in lg.render(sub, tmp_path / "b.dot", highlight=[RAW]).read_text()


def test_without_dot_text_formats_work_and_the_rest_say_how_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    sub = trace_of_prediction(names={"raw": HOSTILE[0]})
    assert render.render(sub, tmp_path / "a.dot").exists()
    assert render.render(sub, tmp_path / "a.mmd").exists()
    for suffix in (".svg", ".png", ".pdf"):
        with pytest.raises(RenderError) as err:
            render.render(sub, tmp_path / f"a{suffix}")
        message = str(err.value)
        assert "\n" not in message and "apt-get install graphviz" in message and "brew install graphviz" in message
        assert not (tmp_path / f"a{suffix}").exists()
    with pytest.raises(RenderError, match="apt-get install graphviz"):
        render.to_svg(sub)
    fragment = render.to_html_fragment(sub)  # the notebook view falls back to a table
    assert "<table>" in fragment and "&lt;script&gt;alert(1)&lt;/script&gt;" in fragment and "<script" not in fragment
    assert sub._repr_svg_() is None
    assert "<table>" in sub._repr_html_()
    page = render.render(sub, tmp_path / "a.html").read_text()
    assert "install Graphviz" in page


def test_notebook_views() -> None:
    require_program("dot")
    sub = trace_of_prediction()
    assert sub._repr_svg_().lstrip().startswith("<?xml")
    html = sub._repr_html_()
    assert html.startswith('<div class="lineage-diagram">') and "<svg" in html and "<?xml" not in html
    assert "max-width:100%" in html


# ---------------------------------------------------------------------------
# the whole store, marks from the record, the quickstart picture, the CLI


def _small_store(lg: lineage.Lineage) -> None:
    raw = lg.log_dataset(np.arange(12.0).reshape(4, 3), name="raw")
    for i in range(3):
        with lg.start_run("fit", params={"i": i}) as run:
            run.log_input(raw)
            run.log_output(np.full((2, 2), float(i)), name="features")


def test_overview_is_built_from_aggregates(lg: lineage.Lineage) -> None:
    _small_store(lg)
    sub = render.overview(lg.store)
    assert sub.root is None and sub.direction == "overview"
    groups = {(n.attrs["of"], n.name): n.attrs["count"] for n in sub.nodes()}
    assert groups[("run", "fit")] == 3
    assert groups[("dataset", "features")] == 3  # three versions under one name
    assert groups[("dataset", "raw")] == 1
    by_name = {n.name: n.id for n in sub.nodes() if n.attrs["of"] != "agent"}
    uses = sub.graph.get_edge_data(by_name["fit"], by_name["raw"])
    assert [(d["rel"], d["role"], d["count"]) for d in uses.values()] == [("used", "training", 3)]
    assert "3 versions" in render.to_dot(sub)


def test_find_marks_flags_a_tampered_node(lg: lineage.Lineage) -> None:
    _small_store(lg)
    raw = lg.get("raw")
    fit = lg.nodes(kind="run")[0]
    sub = build_subgraph([raw, fit], [Edge(fit.id, raw.id, "used", "training")], fit.id, direction="upstream")
    assert render.find_marks(lg, sub) == {}
    lg.store.conn.execute("UPDATE nodes SET attrs = ? WHERE id = ?", ('{"rows": 999}', raw.id))
    assert render.find_marks(lg, sub) == {raw.id: "tampered"}


def test_demo_diagram_with_and_without_dot(lg: lineage.Lineage, tmp_path: Path, monkeypatch) -> None:
    require_program("dot")
    sub = trace_of_prediction()
    message = render.demo_diagram(lg, sub, tmp_path / "out")
    assert (tmp_path / "out" / "lineage.svg").exists() and "lineage.svg" in message and "\n" not in message
    svg = svg_tree((tmp_path / "out" / "lineage.svg").read_text())
    assert sum(bold(e) for e in svg_edges(svg)) == 5  # back to the source dataset
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    message = render.demo_diagram(lg, sub, tmp_path / "out2")
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["lineage.dot", "lineage.mmd"]
    assert "\n" not in message and "apt-get install graphviz" in message and "lineage.svg" in message


def test_cli_dag_all_with_max_nodes_keeps_the_limit(lg: lineage.Lineage) -> None:
    prev = lg.log_dataset([[0]], name="d0")
    with lg.batch():
        for i in range(1, 21):
            with lg.start_run(f"step_{i}") as run:
                run.log_input(prev)
                prev = run.log_output([[i]], name=f"d{i}")
    import json

    def nodes(*args: str) -> list[dict[str, object]]:
        result = CliRunner().invoke(cli, ["--db", str(lg.db_path), "dag", "d20", "--json", *args])
        assert result.exit_code == 0, result.output
        return list(json.loads(result.stdout)["nodes"])

    assert len(nodes("--all")) > 40  # everything: 21 datasets, 20 runs, their context
    cut = nodes("--all", "--max-nodes", "12")
    assert len(cut) <= 12 and "step_20" in {n.get("name") for n in cut}


def test_cli_dag_overview(lg: lineage.Lineage, tmp_path: Path) -> None:
    _small_store(lg)
    db = str(lg.db_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", db, "dag"])
    assert result.exit_code == 0, result.output
    assert "lineage overview" in result.output and "fit" in result.output
    result = runner.invoke(cli, ["--db", db, "dag", "--json"])
    assert result.exit_code == 0, result.output
    import json

    doc = json.loads(result.output)
    assert set(doc) == {"root", "nodes", "edges", "counts"} and doc["root"] is None
    assert {n["kind"] for n in doc["nodes"]} == {"group"}
    assert doc["counts"]["run"] == 3
    result = runner.invoke(cli, ["--db", db, "dag", "-o", str(tmp_path / "o.mmd")])
    assert result.exit_code == 0 and (tmp_path / "o.mmd").read_text().startswith("flowchart RL")
    result = runner.invoke(cli, ["--db", db, "dag", "-o", str(tmp_path / "o.gif")])
    # a suffix that names no format is bad usage, said before any drawing
    assert result.exit_code == 2 and "the suffix picks the format; use one of .svg" in result.output
    assert not (tmp_path / "o.gif").exists()
    result = runner.invoke(cli, ["--db", db, "dag", "--highlight", "raw"])
    assert result.exit_code == 2 and "--highlight needs REF" in result.output
    assert "Example:" in runner.invoke(cli, ["dag", "--help"]).output


def test_impact_counted_predictions_are_labelled(forest) -> None:
    lg, model, train = forest
    lg.log_predictions(model, np.zeros((7, 3)), [1] * 7)
    sub = lg.impact(train)  # predictions counted into a group by the query
    dot = render.to_dot(sub)
    assert "<B>7 predictions</B>" in dot and "of 7 predictions" not in dot
    assert "accuracy 0.875" in dot  # the model's metric, from the run in the diagram


def test_cli_dag_of_a_reference(forest, tmp_path: Path) -> None:
    require_program("dot")
    import json

    lg, model, train = forest
    ids = lg.log_predictions(model, np.zeros((12, 3)), [0] * 12, request_ids=[f"r{i}" for i in range(12)])
    db = str(lg.db_path)
    runner = CliRunner()

    result = runner.invoke(cli, ["--db", db, "dag", "request:r3"])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("request r3  prediction:") and "was_derived_from clf" in result.output

    out = tmp_path / "up.svg"
    result = runner.invoke(cli, ["--db", db, "dag", "request:r3", "-o", str(out), "--highlight", "train"])
    assert result.exit_code == 0 and result.output.strip() == f"wrote {out}"
    root = svg_tree(out.read_text())
    assert sum(bold(e) for e in svg_edges(root)) == 3  # prediction -> model -> run -> train

    # downstream to one flagged prediction: listed, drawn on its own, the rest folded
    out = tmp_path / "down.svg"
    result = runner.invoke(cli, ["--db", db, "dag", "train", "--downstream", "-o", str(out), "--highlight", ids[5]])
    assert result.exit_code == 0, result.output
    shown = {t for n in svg_nodes(svg_tree(out.read_text())) for t in texts(n)}
    assert "11 predictions" in shown and "request r5" in shown

    doc = json.loads(runner.invoke(cli, ["--db", db, "dag", "train", "--downstream", "--json"]).output)
    assert doc["root"] == train.id and doc["counts"]["prediction"] == 12
    assert any(n["kind"] == "group" and n["of"] == "prediction" for n in doc["nodes"])
    doc = json.loads(runner.invoke(cli, ["--db", db, "dag", "train", "--downstream", "--all", "--json"]).output)
    assert sum(n["kind"] == "prediction" for n in doc["nodes"]) == 12

    result = runner.invoke(cli, ["--db", db, "dag", "clf", "--highlight", ids[0]])
    assert result.exit_code == 1 and "not in this diagram" in result.output and "\n" not in result.output.strip()

    # --check marks what the record no longer backs
    lg.store.conn.execute("UPDATE nodes SET attrs = ? WHERE id = ?", ('{"rows": 1}', train.id))
    result = runner.invoke(cli, ["--db", db, "dag", "clf", "--check"])
    assert result.exit_code == 0 and "✗ tampered" in result.output


def test_marks_fold_with_their_like_and_survive_the_cut() -> None:
    sub = _siblings(10)
    preds = [n.id for n in sub.nodes("prediction")]
    folded = render.fold(sub, marked={p: "stale" for p in preds[:6]})
    groups = sorted((n.attrs["count"], n.attrs.get("mark")) for n in folded.nodes("group"))
    assert groups == [(6, "stale")]  # the four unmarked keep their nodes: fewer than five
    dot = render.to_dot(sub, marked={p: "stale" for p in preds})
    assert "<B>10 predictions</B>" in dot and "⚠ stale" in dot

    runs = [Node("run:" + _uuid(i + 1), "run", f"step{i}", {"status": "finished"}) for i in range(30)]
    chain = build_subgraph(runs, [Edge(runs[i].id, runs[i + 1].id, "was_informed_by") for i in range(29)],
                           runs[0].id, direction="upstream")
    dot = render.to_dot(chain, max_nodes=10, marked={runs[25].id: "tampered", runs[20].id: "stale"})
    more = next(line for line in dot.splitlines() if "more runs" in line)
    assert "✗ tampered" in more  # hidden, but not unremarked


def test_find_marks_spreads_stale_down_the_diagram(lg: lineage.Lineage, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    data = tmp_path / "train.csv"
    data.write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n")
    train = lg.log_dataset(data, name="train")
    with lg.start_run("fit") as run:
        run.log_input(train)
        model = run.log_model(LogisticRegression().fit([[1, 2], [3, 4], [5, 6]], [0, 1, 0]), "clf")
    lg.log_predictions(model, np.zeros((8, 2)), [0] * 8)
    sub = lg.impact(train, include_predictions=True)
    assert render.find_marks(lg, sub) == {}
    data.write_text("a,b,y\n1,2,0\n3,4,1\n5,6,1\n")  # the file changed after training
    marks = render.find_marks(lg, sub)
    assert set(marks.values()) == {"stale"}
    assert {train.id, model.id} <= set(marks) and sum(k.startswith("prediction:") for k in marks) == 8
    dot = render.to_dot(sub, marked=marks)
    assert "<B>8 predictions</B>" in dot and dot.count("⚠ stale") == 4 + 1  # data, run, model, one group; the legend


def test_find_marks_sees_an_edited_run_state(forest) -> None:
    lg, model, _train = forest
    sub = lg.trace(model)
    run_id = next(n.id for n in sub.nodes("run"))
    assert render.find_marks(lg, sub) == {}
    lg.store.conn.execute("UPDATE run_states SET status = 'failed' WHERE run = ? AND status = 'finished'", (run_id,))
    assert render.find_marks(lg, sub) == {run_id: "tampered"}


def test_highlight_by_bare_hex_prefix() -> None:
    sub = trace_of_prediction()
    assert render.to_dot(sub, highlight=["3f2a9c"]) == render.to_dot(sub, highlight=[RAW])


def test_mermaid_over_its_default_limits_is_folded_or_refused() -> None:
    """Mermaid refuses more than 500 edges or 50,000 characters: the file is cut to
    the nearest nodes with a comment saying so, or refused with a hint."""
    from lineage.model import Node
    from lineage.query import Subgraph

    g = nx.MultiDiGraph()
    root = "model:" + "a" * 64
    g.add_node(root, node=Node(root, "model", "m", {}))
    for i in range(700):  # distinct runs with distinct datasets: nothing folds
        run = f"run:{i:032x}"
        data = f"dataset:{i:064x}"
        g.add_node(run, node=Node(run, "run", f"r{i}", {"params": {"i": i}}))
        g.add_node(data, node=Node(data, "dataset", f"d{i}", {"rows": i}))
        g.add_edge(root, run, rel="was_generated_by")
        g.add_edge(run, data, rel="used", role=f"training-{i}")
    sub = Subgraph(g, root=root)
    text = render.to_mermaid(sub, fold=False)
    assert text.startswith("%% folded to the") and text.count(" -->|") <= 500 and len(text) <= 50_000
    with pytest.raises(lineage.RenderError, match="Mermaid's default limits"):
        render.to_mermaid(sub, fold=False, max_nodes=1000)


def test_every_svg_carries_a_legend_of_what_it_draws() -> None:
    require_program("dot")
    sub = trace_of_prediction()
    root = svg_tree(render.to_svg(sub, highlight=[next(n.id for n in sub.nodes() if n.kind == "dataset")]))
    legend = [g for g in root.iter(f"{SVG}g") if g.findtext(f"{SVG}title") == "legend"]
    assert len(legend) == 1
    words = " ".join(texts(legend[0]))
    for kind in {n.kind for n in sub.nodes()}:
        assert kind in words
    assert "highlighted path" in words and "depends on" in words


def test_highlight_prefers_training_data_over_evaluation_data(lg: lineage.Lineage, tmp_path: Path) -> None:
    """From the model to its source file, the path through the held-out file is the
    shorter one (4 hops against 6 through the cleaned training data); the bold path
    still takes the training data."""
    from sklearn.linear_model import LogisticRegression

    for name, text in (("raw", "a,y\n1,0\n2,1\n3,0\n"), ("mid", "a,y\n1,0\n2,1\n"), ("train", "a,y\n1,0\n"),
                       ("test", "a,y\n3,0\n")):
        (tmp_path / f"{name}.csv").write_text(text)
    with lg.start_run("split") as run:
        run.log_input(tmp_path / "raw.csv")
        test = run.log_output(tmp_path / "test.csv")
        mid = run.log_output(tmp_path / "mid.csv")
    with lg.start_run("clean") as run:
        run.log_input(mid)
        train = run.log_output(tmp_path / "train.csv")
    with lg.start_run("fit") as run:
        run.log_metric("accuracy", 0.9, dataset=test)
        run.log_input(train)
        model = run.log_model(LogisticRegression().fit([[1], [2]], [0, 1]), "m")
    from lineage.render.prepare import prepare_graph

    p = prepare_graph(lg.trace(model), highlight=[lg.get("raw.csv").id])
    assert {train.id, mid.id} <= p.hl_nodes and test.id not in p.hl_nodes


def test_html_page_opens_on_its_subject_and_fits_the_paper() -> None:
    """On screen the diagram keeps its size and the page jumps to the subject (checked in
    Chromium by tests/test_dag_page_browser.py); on paper it fits one A4 landscape page."""
    require_program("dot")
    page = render.render(trace_of_prediction(), Path(tempfile_dir()) / "x.html").read_text()
    assert '<meta http-equiv="refresh" content="0;url=#lineage-subject">' in page
    assert "@page{size:A4 landscape" in page and "max-width:100%!important;max-height:170mm" in page


def tempfile_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="lineage-render-")


def test_a_subgraph_as_text_is_its_tree_inside_a_notebook_too(monkeypatch) -> None:
    """rich takes a process whose IPython shell is Jupyter's for a notebook and, asked
    to print, displays instead of writing: ``str(lg.trace(m))`` came back empty there,
    so a trace saved to a file or a log from a notebook was ""."""
    import builtins

    class ZMQInteractiveShell:  # the class name rich looks for (Jupyter's kernel shell)
        pass

    monkeypatch.setattr(builtins, "get_ipython", lambda: ZMQInteractiveShell(), raising=False)
    runs = [Node("run:" + _uuid(i + 1), "run", f"step{i}", {"status": "finished"}) for i in range(3)]
    sub = build_subgraph(runs, [Edge(runs[i].id, runs[i + 1].id, "was_informed_by") for i in range(2)], runs[0].id,
                         direction="upstream")
    text = str(sub)
    assert all(f"step{i}" in text for i in range(3))


def test_answers_show_as_their_tables_in_print_and_in_a_notebook(lg: lineage.Lineage) -> None:
    """A diff, a list of runs and `which_data` showed in a notebook (and a diff in
    print()) as the dataclasses' reprs: kilobytes of nested node dumps. They show as
    the tables `lineage` prints, every user string escaped in the HTML."""
    hostile = "<script>alert(1)</script> & co"
    with lg.start_run(hostile, params={"C": 1.0}) as a:
        a.log_metric("accuracy", 0.8)
    with lg.start_run("second", params={"C": 2.0}) as b:
        b.log_metric("accuracy", 0.9)
    diff = lg.diff(a.id, b.id)
    text = str(diff)
    assert "accuracy" in text and "0.8" in text and "0.9" in text and "Change(" not in text
    html = diff._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "accuracy" in html
    runs = lg.runs()
    html = runs._repr_html_()
    assert html is not None and "&lt;script&gt;" in html and "second" in html and "<script>" not in html
    assert lg.history(hostile)._repr_html_() is not None  # nodes of any kind
    assert lineage.api.Items([1, 2])._repr_html_() is None  # anything else: the plain repr


def test_a_dataset_of_one_row_says_row() -> None:
    from lineage.render.labels import node_facts

    facts = [node_facts(Node("dataset:" + _hex("c3"), "dataset", "d", {"rows": n, "size": 8}))[0] for n in (0, 1, 2, 1234)]
    assert facts == ["0 rows", "1 row", "2 rows", "1,234 rows"]
