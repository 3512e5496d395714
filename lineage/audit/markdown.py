"""Markdown views of a report and an inventory.

Every user string goes through `esc` (or `cell` inside tables): HTML's ``& < >`` become
entities, so a renderer that passes raw HTML through still shows a hostile name as
text, and Markdown's own punctuation is backslash-escaped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..features import shown_ref
from .checklist import FAILED, MISSING, NEEDS_PERSON, RECORDED, arrange, description_source
from .html import num, plural, short, size, when
from .steps import short_class, step_tree

if TYPE_CHECKING:  # pragma: no cover
    from .report import AuditReport

# `[` `]` escaped means no link or image can form, so `(` `)` `!` may stay readable
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
# list, heading and rule markers matter only where a line starts: after a newline inside
# the text, or at the start of a quoted line (`quote`); table cells never start one
_LINE_START = re.compile(r"(\n\s*)([-+#=]|\d+[.)])")
_FIRST_LINE_START = re.compile(r"^(\s*)([-+#=]|\d+[.)])")


def _code(text: Any, pattern: str) -> str:
    """Payload text as a code span only when it is what lineage writes there, else escaped."""
    return f"`{text}`" if re.fullmatch(pattern, str(text)) else esc(text)


def _signature_lines(cp: dict[str, Any] | None) -> list[str]:
    """The last checkpoint's signature, as the HTML report's `signature_line` says it:
    whose key, whether it holds, and whether the recorder signed its own history."""
    if not cp:
        return []
    s = cp.get("signature")
    if not s:
        return [f"- The last checkpoint (event {cp['event']}) is not signed; `lineage verify --record --sign KEYFILE` "
                "records a signed one."]
    command = f"lineage verify --head {cp['head']} --key KEYFILE.pub"
    held = "the signature holds" if s["valid"] else f"**the signature does not hold** ({esc(s['problem'])})"
    by = f" (recorded by {esc(s['signed_by_account'])})" if s.get("signed_by_account") else ""
    note = str(s.get("note") or "")
    key = _code(s["fingerprint"], "SHA256:[0-9a-f]{64}")
    return [f"- **Signature**: checkpoint event {cp['event']} is signed by key {key}: {held}. "
            f"{esc(note[:1].upper() + note[1:])}{by}. Check it with the key you trust: "
            f"{_code(command, 'lineage verify --head [0-9a-f]{64} --key KEYFILE.pub')}."]


def esc(value: Any) -> str:
    """A user string made inert for Markdown (and for the HTML a renderer may pass through)."""
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def cell(value: Any) -> str:
    """`esc` for a table cell: one line."""
    return re.sub(r"\s*\n\s*", " ", esc(value))


def code(text: Any) -> str:
    """Ids and hashes (hex and colons only) in a code span; anything else escaped."""
    s = str(text)
    return f"`{s}`" if re.fullmatch(r"[A-Za-z0-9:._/@ -]*", s) else esc(s)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def quote(text: str) -> list[str]:
    lines = esc(text).splitlines()
    return ["> " + _FIRST_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), line) if line else ">"
            for line in lines] or [">"]


def _alert(d: dict[str, Any]) -> list[str]:
    i = d["integrity"]
    if i["ok"]:
        return []
    out = ["**INTEGRITY CHECK FAILED: this record may have been altered. Do not rely on the facts below until the "
           "problems are explained.**", ""]
    out += [f"- {cell(p)}" for p in i["problems"][:8]]
    if len(i["problems"]) > 8:
        out.append(f"- … and {len(i['problems']) - 8} more (see Integrity)")
    return out + [""]


def _integrity(d: dict[str, Any]) -> list[str]:
    i = d["integrity"]
    f = i["facts"]
    ch = i["chain"]
    out = ["## Integrity of this record", ""]
    out.append("All checks passed." if i["ok"] else f"**Checks failed: {len(i['problems'])} problem(s).**")
    out.append("")
    tables = ", ".join(f"{t.replace('_', ' ')} {n}" for t, n in sorted(f["by_table"].items()))
    facts_line = (f"- **Facts against their events** ({'ok' if f['ok'] else 'FAILED'}): {f['events_checked']} ledger events "
                  f"behind the facts shown ({tables}) re-hashed against what each committed to, and each event's hash "
                  f"against its predecessor's.")
    if f["prediction_events_total"]:
        facts_line += (f" Predictions: {f['prediction_events_checked']} of {f['prediction_events_total']} events "
                       f"({f['prediction_rows_checked']} of {f['prediction_rows_total']} rows) checked.")
    if f["failed"]:
        facts_line += f" Failed events: {', '.join(map(str, f['failed']))}."
    out.append(facts_line)
    cp = ch.get("checkpoint")
    chain_line = f"- **Hash chain** ({'ok' if ch['ok'] else 'FAILED'}): {esc(ch['scope'])}."
    if cp:
        chain_line += (f" Last full verification: checkpoint event {cp['event']}, recorded {when(cp['at'])} by "
                       f"{esc(cp['by'])}, covering events 1 to {cp['verified_through']}.")
    else:
        chain_line += " No full verification was recorded (`lineage verify --record`), so the whole chain was replayed."
    if ch.get("first_bad"):
        chain_line += f" First bad event: {ch['first_bad']}."
    out.append(chain_line)
    out.extend(_signature_lines(cp))
    bad = [x for x in i["files"] if x["status"] in ("changed", "missing", "unreadable")]
    out.append(f"- **Files on disk** ({'ok' if not bad else 'FAILED'}): {len(i['files'])} files re-hashed and compared "
               f"with their recorded digests.")
    out.append("")
    if i["problems"]:
        out += ["Problems:", ""] + [f"- {cell(p)}" for p in i["problems"]] + [""]
    out += table(["Item", "File", "On disk"],
                 [[f"{cell(x['kind'])} {cell(x['name'])} {code(x['id'])}", cell(x["path"] or x["note"]), f"**{x['status']}**"]
                  for x in i["files"]])
    out += [f"This report describes the ledger up to event {i['head']['events']}, head `{i['head']['hash']}`. "
            "To check later that this history is unchanged:", "", f"    {i['head']['command']}", ""]
    return out


def _altered_mark(d: dict[str, Any], event: int | None) -> str:
    """A mark after a value whose recording event failed its check (else nothing)."""
    failed = d["integrity"]["facts"]["failed"]
    return f" **(altered after it was written, event {event})**" if event is not None and event in failed else ""


def _status(s: str) -> str:
    return {RECORDED: "recorded", NEEDS_PERSON: "**needs a person**", MISSING: "**missing**", FAILED: "**FAILED**"}[s]


def _runs(runs: list[dict[str, Any]], label: str, d: dict[str, Any] | None = None) -> list[str]:
    out = []
    for r in runs:
        agent = (r.get("agent") or {}).get("label")
        took = f" ({num(r['duration_s'])} s)" if r.get("duration_s") is not None else ""
        out.append(f"- **{label}: {esc(r['name'] or r['id'])}** {code(r['id'])}, {esc(r['status'])}; by {esc(agent)}, "
                   f"{when(r['started_at'])} to {when(r['ended_at'])}{took}")
        if r.get("noticed_by"):
            out.append(f"  - crash noticed by {esc(r['noticed_by'])}")
        if r.get("error"):
            out.append(f"  - error: {cell(r['error'])}")
        if r.get("experiment"):
            out.append(f"  - experiment: {cell(r['experiment'])}")
        if r.get("command"):
            out.append(f"  - command: {cell(' '.join(map(str, r['command'])))}")
        out.append(f"  - code: {', '.join(code(short(c, 16)) for c in r['code']) or 'not recorded'}")
        out.append("  - read: " + (", ".join(f"{esc(x['name'] or short(x['id']))} ({esc(x['role'] or x['kind'])})"
                                              for x in r["inputs"]) or "nothing recorded"))
        out.append("  - wrote: " + (", ".join(f"{esc(x['name'] or short(x['id']))} ({esc(x['kind'])})"
                                               for x in r["outputs"]) or "nothing recorded"))
        events = r.get("param_events", {})
        out.append("  - parameters: " + (", ".join(f"{esc(k)}={esc(_text(v))}" + (_altered_mark(d, events.get(k)) if d else "")
                                                   for k, v in sorted(r["params"].items())) or "none"))
    return out + ([""] if out else [])


def version_of(x: dict[str, Any]) -> str:
    """Which version of its name a dataset is, ``name@2 of 3``, as the HTML's `version_of`
    says it (``—`` for a dataset with no version number)."""
    return f"{cell(x.get('name') or 'dataset')}@{x['version']} of {x['versions']}" if x.get("version") else "—"


def _data_table(d: dict[str, Any], role: str | None = None) -> list[str]:
    """The datasets behind the report (only those of ``role``, when given): which
    version of its name each is, where, its digest, size, shape, capture and file check."""
    files = {f["id"]: f for f in d["integrity"]["files"]}
    return table(["Dataset (version)", "Role", "Location", "SHA-256", "Size", "Rows × cols", "Captured", "On disk"], [
        [version_of(x) if x.get("version") else cell(x["name"] or "(unnamed)"),
         cell(x["role"]) + (f" ({x['distance']} hops from the model)" if x.get("distance") else ""),
         cell(x["location"] or "in memory") + (f" ({cell(x['format'])})" if x.get("format") else ""),
         code(x["digest"]), size(x["size"]), f"{num(x['rows'])} × {num(x['columns'])}",
         f"{when(x['captured_at'])} by {cell((x.get('captured_by') or {}).get('label'))} (event {x.get('event')})"
         + _altered_mark(d, x.get("event")),
         files[x["id"]]["status"] if x["id"] in files else "not checked"]
        for x in d["data"] if role is None or x["role"] == role])


def _computed_on(x: dict[str, Any]) -> str:
    """The dataset a metric was computed on: name, which version of it, digest."""
    ds = x.get("dataset")
    if not ds:
        return "not recorded"
    return f"{version_of(ds) if ds.get('version') else cell(ds.get('name'))} {code(ds.get('digest') or '')}"


def _interval(x: dict[str, Any]) -> str:
    return f"{num(x['ci']['low'])}–{num(x['ci']['high'])}" if x.get("ci") else "n not recorded"


def _interval_note(metrics: list[dict[str, Any]]) -> str:
    withci = [x for x in metrics if x.get("ci")]
    return (f"{esc(withci[0]['ci']['method'])}, 95 %" if withci
            else "none (log metrics with `n=` to get them: `run.log_metric(key, value, dataset=, group=, n=SIZE)`)")


def _group_table(d: dict[str, Any]) -> list[str]:
    """Per-group results as the HTML's table: metric on which dataset version, group,
    n, value, 95 % interval and the ratio to the best group."""
    groups = [x for x in d["metrics"] if x.get("group")]
    if not groups:
        return []
    out = ["Per-group results:", ""] + table(
        ["Metric on dataset", "Group", "n", "Value", "95 % interval", "Ratio to best group"], [
            [f"{cell(x['key'])} on {_computed_on(x)}", cell(x["group"]), num(x["n"]) if x.get("n") else "—",
             num(x["value"]) + _altered_mark(d, x.get("event")), _interval(x), num(x.get("ratio_to_best"))]
            for x in groups])
    return out + [f"Interval: {_interval_note(groups)}. Ratio: the group's value over the best group's for the same "
                  "metric and dataset (1 = the best group; lower-is-better metrics divided the other way).", ""]


def _feature_table(f: dict[str, Any]) -> list[str]:
    """The model's input columns: source column, origin and importance by each method."""
    if not f.get("inputs"):
        return []
    methods = list(f.get("methods") or [])
    rows = [[code(r["column"]), cell(", ".join(map(shown_ref, r["sources"]))) or "—",
             cell(", ".join(dict.fromkeys(map(shown_ref, r["origins"])))) or "—",
             *(f"{r['importance'][m]:.4f}" if m in r["importance"] else "—" for m in methods)] for r in f["inputs"]]
    return (["Input columns: the column each comes from, its origin, and its importance:", ""]
            + table(["Input column", "Source column", "Origin", *(esc(m) for m in methods)], rows))


def _serving(d: dict[str, Any]) -> list[str]:
    """The HTML report's "Serving state and inputs": labels, how the version was
    chosen, and the sensitive columns that reach it, stated as facts."""
    m = d["model"]
    f, labels, name_labels = m.get("features") or {}, m.get("labels") or [], m.get("name_labels") or {}
    held = ", ".join(f"{esc(k)} → version {v}" for k, v in sorted(name_labels.items()))
    label_altered = [e for e in m.get("label_events") or [] if e in d["integrity"]["facts"]["failed"]]
    rows = [["Labels", (esc(", ".join(labels)) if labels else "none held by this version")
             + (f" (of {esc(m['name'])}: {held})" if held else "")
             + (f" **(a label change behind this was altered after it was written, ledger event "
                f"{', '.join(map(str, label_altered))})**" if label_altered else "")]]
    for i, o in enumerate(m.get("other_names") or []):
        number = f" version {o['version']} of {o['versions']}" if o.get("version") else ""
        rows.append(["Also recorded as" if i == 0 else "",
                     f"**{esc(o['name'])}**{number}: {esc(', '.join(o['labels'])) if o['labels'] else 'no label'}"])
    for i, u in enumerate(m.get("unlabelled_serving") or []):
        who = "this version" if u.get("this") else f"version {u['version']} of {esc(m['name'])}"
        last = f", the last at {when(u['last_prediction_at'])}" if u.get("last_prediction_at") else ""
        rows.append(["Served without a label" if i == 0 else "",
                     f"**{who} made {plural(u['predictions'], 'prediction')} while holding no label**{last}"])
    if m.get("selection"):
        rows.append(["Chosen", cell(m["selection"])])
    if "n_inputs" in f:
        rows.append(["Inputs", f"{f['n_inputs']} input columns; the final estimator sees {f['n_features']} features"
                     + (f"; importance by {esc(', '.join(f['methods']))}" if f.get("methods") else "")])
    out = ["## Serving state and inputs", ""] + table(["", ""], rows)
    if f.get("error"):
        out += [f"The feature map could not be read: {esc(f['error'])}.", ""]
    if f.get("sensitive"):
        out += ["Sensitive columns reaching the model:", ""]
        out += table(["Column", "Marked sensitive in", "Becomes", "Allowed"], [
            [code(s["column"]), cell(", ".join(s["marked_in"])),
             "may reach it: the model records no input column names" if not s.get("confirmed", True)
             else cell(", ".join(s["features"])),
             f"allowed: {cell(s['allowance'].get('reason') or '')} ({cell(s['allowance'].get('author') or '?')}, "
             f"{when(s['allowance'].get('at'))})" if s["allowed"] else "**no allowance**"]
            for s in f["sensitive"]])
    elif "inputs" in f:
        out += ["No column marked sensitive reaches this model's inputs.", ""]
    return out + _feature_table(f)


def _validation(d: dict[str, Any]) -> list[str]:
    """SR 11-7's "Independent validation" block, as in the HTML report."""
    v = d["model"].get("validation")
    if not v:
        return [f"**No independent validation recorded.** Record one with `lineage annotate "
                f"{short(d['model']['id'], 16)} --card validation.yaml`, the file holding `validation: {{validator: …, "
                "date: …, scope: …, findings: …, outcome: …}`.", ""]
    status = "recorded" if v["independent"] and v["complete"] else "incomplete"
    who = ("independent of the author" if v["independent"] else
           "recorded from the model author's own account: not independent" if v.get("self_recorded")
           else "the model's author: not independent")
    return [f"Status: **{status}**", ""] + table(["", ""], [
        ["Validator", f"{cell(v['validator'])} ({who})"], ["Date", cell(v["date"])], ["Scope", cell(v["scope"])],
        ["Findings", cell(v["findings"])], ["Outcome", cell(v["outcome"])],
        ["Recorded", f"by {cell(v['recorded_by'])} at {when(v['at'])} (ledger event {v['event']})"
                     + _altered_mark(d, v.get("event"))]])


def _validation_line(v: dict[str, Any] | None) -> str:
    """The identity table's one-line validation, as the HTML's: who, when, outcome, independence."""
    if not v:
        return "**none recorded** (a `validation` annotation: validator, date, scope, findings, outcome)"
    return (cell(v.get("validator")) + (f", {cell(v['date'])}" if v.get("date") else "")
            + (f": {cell(v['outcome'])}" if v.get("outcome") else "")
            + (" (independent)" if v.get("independent") else " (**not independent of the author**)"))


def _text(v: Any) -> str:
    """A param value as text: strings as they are, the rest as compact JSON (as in HTML)."""
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)


def _chain(steps: list[dict[str, Any]]) -> str:
    """A composite model's steps in data-flow order, ``name (Class) → …``, a
    ColumnTransformer's branches side by side in brackets (`step_tree`)."""
    def nodes(tree: list[dict[str, Any]], sep: str) -> str:
        return sep.join(f"{code(x['name'])} ({cell(short_class(x['class']))})"
                        + (f" [{nodes(x['children'], ' ‖ ' if x['parallel'] else ' → ')}]" if x["children"] else "")
                        for x in tree)

    return nodes(step_tree(steps), " → ")


def _detail(key: str, d: dict[str, Any]) -> list[str]:
    m = d["model"]
    if key == "identity":
        prev = m.get("previous")
        return table(["", ""], [
            ["Name", cell(m["name"])], ["Version", f"{m['version']} of {m['versions']}"],
            ["Parent version", f"{cell(prev['name'])} {code(prev['id'])}" if prev else "none (first version)"],
            ["Owner", cell((m.get("owner") or {}).get("label"))], ["Recorded", f"{when(m['created_at'])} (event {m['event']})"],
            ["Metrics logged", f"{when(m.get('evaluated_at'))} (by the training run: not a validation)"],
            ["Validation", _validation_line(m.get("validation"))], ["Class", cell(m["class"])],
            *([["Steps", f"{_chain(m['steps'])}; final estimator {cell(short_class(m.get('final_estimator')))}"]]
              if m.get("steps") else []),
            ["Artifact", f"{code(m['artifact'] or '—')} ({size(m['size'])}, {cell(m.get('serializer') or 'unknown serializer')})"],
            *([["Classes", cell(", ".join(map(_text, m["classes"])))]] if m.get("classes") else []),
            *([["Features", str(m["n_features"])]] if m.get("n_features") else []),
        ])
    if key == "intended_use" and m.get("described"):
        return ["What the model registry says it is for: written there by whoever could, not a person's signed "
                "statement; confirm or correct it with `lineage annotate`.", ""] + [
            f"- “{esc(x['text'])}” ({esc(description_source(x))}"
            + (f", event {x['event']}" if x["event"] is not None else "") + ")" + _altered_mark(d, x["event"])
            for x in m["described"]] + [""]
    if key == "training_data" and d["data"]:
        return _data_table(d)
    if key == "data_preparation":
        return _runs(d["preparation"], "Preparation", d) + _runs(d["training_runs"], "Training", d)
    if key == "representativeness":
        out = _group_table(d)
        for ds in d["data"]:
            if ds["role"] == "training" and ds.get("column_names"):
                out += [f"Composition of {version_of(ds)}: {num(ds['rows'])} rows; {ds['columns']} columns: "
                        f"{cell(', '.join(ds['column_names']))}.", ""]
        return out
    if key == "code_version" and d["code"]:
        return table(["Code", "Commit", "Branch / repository", "Working tree", "Used by"], [
            [f"{cell(c['name'])} {code(c['id'])}", code(c["commit"] or "—"),
             cell(c["branch"]) + (f" ({cell(c['repo'])})" if c.get("repo") else ""),
             (f"uncommitted changes (diff digest {code(c.get('diff_digest') or '—')})" if c["dirty"] else "clean")
             if c["commit"] else "script hashed outside git",
             ", ".join(code(short(u)) for u in c.get("used_by") or [])]
            for c in d["code"]])
    if key in ("third_party_components", "environment"):
        out = []
        for e in d["environments"]:
            if key == "environment":
                out += [f"Python {esc(e['python'])} ({esc(e['implementation'])}) on {esc(e['platform'])}, "
                        f"{esc(e['machine'])} (architecture only: CPU and GPU models are not recorded); environment "
                        f"{code(e['id'])} with {e['packages_total']} packages.", ""]
            out += table(["Library", "Version"], [[cell(k), cell(v)] for k, v in e["key_packages"].items()])
        return out
    if key == "hyperparameters":
        hp = d["hyperparameters"]
        source = f"final estimator ({cell(short_class(m.get('final_estimator')))})" if m.get("steps") else "estimator"
        out = table(["Parameter", "Source", "Value"],
                    [[cell(k), source, cell(_text(v))] for k, v in sorted(hp["model"].items())]
                    + [[cell(k), "run", cell(_text(v)) + _altered_mark(d, hp.get("run_events", {}).get(k))]
                       for k, v in sorted(hp["run"].items())])
        if m.get("steps"):
            out += [f"Steps and their own parameters ({sum(1 for x in m['steps'] if x['depth'])}):", ""]
            out += table(["Step", "Class", "Columns", "Own parameters"], [
                [code(x["step"]), cell(short_class(x["class"])), cell(", ".join(x["columns"])) if "columns" in x else "",
                 cell(", ".join(f"{k}={_text(v)}" for k, v in sorted(x["params"].items())) or "none")]
                for x in m["steps"]])
        if d["feature_importance"]:
            out += [f"Feature importance (from {esc(m.get('importance_source'))}), top 20 of {len(d['feature_importance'])}:", ""]
            out += table(["Rank", "Feature", "Importance"],
                         [[str(n), cell(x["feature"]), f"{x['importance']:.4f}"] for n, x in enumerate(d["feature_importance"][:20], 1)])
        return out
    if key == "evaluation" and d["metrics"]:
        out = table(["Metric", "Value (95 % interval)", "Group", "Computed on", "Recorded"], [
            [cell(x["key"]) + (f" (step {x['step']})" if x.get("step") else ""),
             num(x["value"]) + (f" ({_interval(x)})" if x.get("ci") else "") + _altered_mark(d, x.get("event")),
             cell(x["group"] or "all") + (f", n={num(x['n'])}" if x.get("n") else ""), _computed_on(x),
             f"{when(x['at'])} (event {x['event']})"] for x in d["metrics"]])
        return out + ["Decision thresholds: recorded with predictions as their decision rule "
                      "(`log_predictions(decision=...)`)" + ("" if d["annotations"].get("evaluation") else
                                                              "; state the evaluation thresholds in an `evaluation` annotation")
                      + f". Intervals: {_interval_note(d['metrics'])}.", ""]
    if key == "accountability":
        out = table(["When", "Step", "Who", "Event"], [
            [when(s["at"]) + (f" to {when(s['ended_at'])}" if s.get("ended_at") else ""), cell(s["step"]) + (f" ({cell(s['status'])})" if s.get("status") else ""), cell(s["who"]),
             str(s["event"])] for s in d["accountability"]])
        s = d["annotations"].get("sign_off")
        out += ([f"**Signed off** by {esc(s['author'])} at {when(s['at'])} (event {s['event']}):", ""] + quote(s["text"]) + [""]
                if s else ["**No sign-off recorded.**", ""])
        return out + [f"_{esc(d['report']['notes'][0])}_", ""]
    if key == "changes" and d["changes"].get("previous"):
        prev = d["changes"]["previous"]
        out = [f"Previous version: {cell(prev['name'])} {code(prev['id'])} ({when(prev['created_at'])}).", ""]
        if d["changes"]["items"]:
            out += table(["Aspect", "What", "Previous", "This version"],
                         [[cell(c["aspect"]), cell(c["key"]), cell(c["a"]), cell(c["b"])] for c in d["changes"]["items"]])
        elif not d["changes"].get("error"):
            out += ["No recorded difference in data, code, parameters, environment or metrics.", ""]
        return out
    if key == "prediction_log" and d["predictions"]["count"]:
        p = d["predictions"]
        by = "".join(f"; event {x['event']} by {esc(x['who'])} at {when(x['at'])}" for x in p.get("loggers", [])[:5])
        return [f"{p['count']} predictions from {when(p['first_at'])} to {when(p['last_at'])}, in {len(p['events'])} "
                f"ledger event(s){by}; each records time, model id and digest, SHA-256 of the input row, output, score "
                "and request id.", ""]
    if key == "retention":
        r = d["retention"]
        return [f"Store holds records since {when(r['store_since'])} ({r['store_days']} days); "
                f"prediction log spans {r['log_days'] if r['log_days'] is not None else '—'} days. {esc(r['policy'])}. "
                "The minimum periods (logs at least six months, documentation ten years) are met for as long as the "
                "store itself is kept: back it up and keep it for that long.", ""]
    if key == "monitoring" and d.get("later_runs"):
        return ["Later runs that used this model:", ""] + [
            f"- {esc(r['name'] or r['id'])} {code(short(r['id']))}, {when(r['created_at'])}" for r in d["later_runs"]] + [""]
    if key == "impact" and d["impact"].get("counts"):
        return table(["Derived from this model", "Count"], [[cell(k), num(n)] for k, n in sorted(d["impact"]["counts"].items())])
    return []


def render_report(report: AuditReport) -> str:
    d = report.to_dict()
    items = d["checklist"]
    subject = d["subject"]
    c = d["completeness"]
    out = _alert(d)
    if subject["kind"] == "prediction":
        out += [f"# Audit report: prediction {esc(d['prediction']['request_id'] or d['prediction']['id'])}", ""]
    else:
        out += [f"# Audit report: model {esc(d['model']['name'])}", ""]
    out += [f"{esc(d['report']['standard_title']) if subject['kind'] == 'model' else 'Decision record'} · generated "
            f"{when(d['report']['generated_at'])} by "
            f"{esc(d['report']['generator'])}" + (f" from {code(d['report']['store'])}" if d["report"].get("store") else "")
            + f" ({esc(d['report'].get('format'))} v{d['report'].get('version')}) · ledger head `{d['integrity']['head']['hash']}` "
            f"({d['integrity']['head']['events']} events)", ""]
    out += [("**Integrity:** " if d["integrity"]["ok"] else "**Integrity check failed:** ") + esc(d["integrity"]["summary"]), ""]
    m = d["model"]
    if m.get("erased"):
        e = m["erased"]
        out += [f"**This model was erased** (event {e['event']}) at {when(e['at'])} by {esc(e['actor'] or 'unknown')}: "
                f"{esc(e['reason'] or 'no reason given')}. Its name, attributes and description are gone; its "
                "place in the graph and the record of the erasure remain.", ""]
    if subject["kind"] == "prediction":
        p = d["prediction"]
        files = {f["id"]: f for f in d["integrity"]["files"]}
        out += _decision(d)
        out += ["## Chain of origin", ""]
        out += table(["", ""], [
            ["Prediction", code(p["id"])], ["Request id", cell(p["request_id"])], ["Made at", when(p["created_at"])],
            ["Input (SHA-256)", code(p["input_digest"] or "—")], ["Output", cell(p["output"])], ["Score", num(p["score"])],
            ["Logged by", f"{cell(p['logged_by'])} (event {p['event']})"],
            ["Model", f"{cell(m['name'])} {code(m['id'])}"],
            ["Model file", files[m["id"]]["status"] if m["id"] in files else "not checked"],
        ])
        out += _runs(d["training_runs"], "Training run")
        out += ["Data:", ""] + _data_table(d)
        out += _runs(d["preparation"], "Preparation")
        out += _detail("code_version", d) + _detail("environment", d)
    else:
        out += ["## Summary", ""]
        out += table(["", ""], [
            ["Name", f"**{cell(m['name'])}** (version {m['version']} of {m['versions']})"], ["Id", code(m["id"])],
            ["Digest", code("sha256:" + m["digest"])], ["Class", cell(m["class"])],
            *([["Steps", _chain(m["steps"])]] if m.get("steps") else []),
            ["Who", cell((m.get("owner") or {}).get("label"))], ["When", when(m["created_at"])],
            ["Status", cell(d["summary"]["status"])],
            ["Predictions", f"{d['predictions']['count']}" + (f", {when(d['predictions']['first_at'])} to "
                                                             f"{when(d['predictions']['last_at'])}" if d["predictions"]["count"] else "")],
            ["Checklist", f"{c['recorded']} recorded, {c['needs a person']} need a person, {c['missing']} missing"],
            ["Integrity", "intact" if d["integrity"]["ok"] else "**FAILED**"],
        ])
        out += _serving(d)
    out += _integrity(d)
    out += ["## Compliance checklist", ""]
    rows = []
    order = d.get("reading_order") or {}  # numbered in the order this arrangement shows them
    for sec in arrange(items, d["report"]["standard"]):
        rows.append(["", f"**{(sec['number'] + '. ') if sec['number'] else ''}{esc(sec['title'])}**", "", ""])
        rows += [[str(order.get(i["key"], i["number"])), f"{esc(i['title'])} (`{i['key']}`)", esc("; ".join(i["sources"])), _status(i["status"])]
                 for i in sec["fields"]]
    out += table(["#", "Field", "Sources", "Status"], rows)
    out += ["The lineage diagram and the feature-importance chart are in the HTML report "
            f"({d['lineage']['nodes']} nodes, {d['lineage']['edges']} relations upstream).", ""]
    if subject["kind"] == "model":
        for sec in arrange(items, d["report"]["standard"]):
            out += [f"## {(sec['number'] + '. ') if sec['number'] else ''}{esc(sec['title'])}", ""]
            if sec.get("extra") == "validation":
                out += _validation(d)
            elif sec.get("extra") == "evaluation_data":
                out += _data_table(d, "evaluation") if any(x["role"] == "evaluation" for x in d["data"]) else [
                    "No evaluation dataset recorded (metrics logged with `dataset=` record one).", ""]
            for i in sec["fields"]:
                out += [f"### {order.get(i['key'], i['number'])}. {esc(i['title'])} — {_status(i['status'])}", "",
                        f"`{i['key']}` · {esc(' · '.join(i['sources']))} · fill: {esc(i['fill_note'])}", ""]
                if i["fill"] != "human":
                    out += [esc(i["summary"]) + ".", ""]
                if i["annotation"]:
                    a = i["annotation"]
                    by = f", recorded by {esc(a['recorded_by'])}" if a.get("recorded_by") not in (None, a["author"]) else ""
                    out += quote(a["text"]) + [f"> — {esc(a['author'])}{by}, {when(a['at'])} (event {a['event']})"
                                               + _altered_mark(d, a.get("event")), ""]
                if i["status"] == MISSING:
                    out += [f"**Not recorded.** `lineage annotate {short(m['id'], 16)} --field {i['key']} --text \"…\"`", ""]
                out += _detail(i["key"], d)
                if i["evidence"]:
                    more = f" … and {len(i['evidence']) - 24} more" if len(i["evidence"]) > 24 else ""
                    out += ["Evidence: " + ", ".join(code(e) for e in i["evidence"][:24]) + more, ""]
    out += ["## Notes", ""] + [f"- {esc(n)}" for n in d["report"]["notes"]] + [""]
    return "\n".join(out).rstrip() + "\n"


def _decision(d: dict[str, Any]) -> list[str]:
    """The decision record's core in Markdown: outcome, rule, reasons, inputs."""
    dec = d.get("decision") or {}
    out = ["## The decision", ""]
    out += [f"- Output: {code(json_text(dec.get('output')))}; score: {'—' if dec.get('score') is None else dec['score']}",
            f"- Rule: {esc(', '.join(f'{k}={v}' for k, v in (dec.get('rule') or {}).items())) or esc(dec.get('rule_note') or '')}"]
    if dec.get("outcome"):
        out.append(f"- Outcome: {esc(dec['outcome'])}")
    p, m = d.get("prediction") or {}, d["model"]
    files = {f["id"]: f for f in d["integrity"]["files"]}
    out += [f"- Made at: {when(p.get('created_at'))}, ledger event {p.get('event')}"
            + (f", logged by {esc(p['logged_by'])}" if p.get("logged_by") else ""),
            f"- Model: **{esc(m['name'])}** version {m['version']} of {m['versions']} {code('sha256:' + str(m['digest']))} "
            f"(model file {files[m['id']]['status'] if m['id'] in files else 'not checked'})"]
    held = p.get("labels_at_prediction")
    if held is not None:  # (None: the store cannot say; [] : it held none, which is itself a finding)
        out.append(f"- Label then: labels it held when this prediction was made: {esc(', '.join(held)) if held else '**none**'}")
    out += ["", "## Reasons", ""]
    if dec.get("reasons"):
        at_base = f" (score there {num(dec['score_at_baseline'])})" if dec.get("score_at_baseline") is not None else ""
        out += [f"Method: {esc(dec['method'])}. Baseline: {esc(dec['baseline_source'])}{at_base}. Positive contributions "
                "push the score up, negative ones down.", ""]
        out += table(["#", "Feature", "Value", "Baseline", "Contribution"],
                     [[str(n), code(r["feature"]), esc(str(r.get("value"))), num(r.get("baseline")), f"{r['contribution']:+.4g}"]
                      for n, r in enumerate(dec["reasons"][:10], 1)])
        if len(dec["reasons"]) > 10:
            out += [f"{len(dec['reasons']) - 10} more features with smaller effects are in the JSON record.", ""]
    else:
        out += [esc(dec.get("reasons_note") or "No reasons available."), ""]
    out += ["## Inputs", ""]
    if dec.get("inputs"):
        out += table(["Feature", "Value"], [[code(k), esc(str(v))] for k, v in sorted(dec["inputs"].items())])
        out += [f"Input digest (SHA-256): {code(p.get('input_digest') or '—')}; values kept in ledger event "
                f"{dec.get('inputs_event')}.", ""]
    else:
        out += [f"{esc(dec.get('inputs_note') or '')}. Input digest (SHA-256): {code(p.get('input_digest') or 'not recorded')}.", ""]
    return out


def json_text(v: Any) -> str:
    import json

    return v if isinstance(v, str) else json.dumps(v)
