"""The 22 fields of COMPLIANCE.md, how each one's status is decided, and the three
arrangements (`--standard`) the report can follow.

A field's status is one of:

- ``recorded``: the graph supplies it (Auto), or a person recorded it as an
  annotation (Human, or Part once annotated);
- ``needs a person``: a Part field whose evidence the graph supplies, waiting for a
  person's judgement (an annotation);
- ``missing``: nothing supplies it. Missing fields are listed as gaps; the report never
  invents them;
- ``failed``: the integrity field when a check failed (never shown as "missing").

"Recorded" means the content meets the field's rule, not merely that something is
there: identity needs an independent validation (a ``validation`` annotation whose
validator is not the model's author) for its "validation dates"; retention needs a
stated period (a ``retention`` annotation such as "logs 6 months, documentation 10
years"). Without them those fields need a person.

Citations are given as COMPLIANCE.md gives them; the report never quotes the texts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .steps import chain_text

if TYPE_CHECKING:  # pragma: no cover
    from .facts import Facts

RECORDED = "recorded"
MISSING = "missing"
NEEDS_PERSON = "needs a person"
FAILED = "failed"  # the integrity check failed: never shown as merely "missing"


@dataclass(frozen=True)
class Field:
    """One row of COMPLIANCE.md's checklist."""

    number: int
    key: str
    title: str
    sources: tuple[str, ...]
    fill: str  # "auto" | "part" | "human": how the status is decided
    fill_note: str  # the Fill column as COMPLIANCE.md writes it


FIELDS: tuple[Field, ...] = (
    Field(1, "identity", "Name, version, parent version, provider; owner; validation dates",
          ("IV 1(a)", "MC Model Details", "SR 11-7 inventory", "NIST GOVERN 1.6"), "auto", "Auto / Part"),
    Field(2, "intended_use", "Intended purpose, users, out-of-scope uses",
          ("AIA 13(3)(b)(i)", "MC Intended Use", "NIST MAP 1.1"), "human", "Human"),
    Field(3, "training_data", "Training / validation / test data: location, content hash, size, when captured",
          ("AIA 10(2)(b)", "IV 2(d)", "DS Composition", "ISO A.7.5", "NIST MAP 2.3"), "auto", "Auto"),
    Field(4, "personal_data_origin", "Origin and original purpose of personal data",
          ("AIA 10(2)(b)", "AIA 10(5)"), "human", "Human"),
    Field(5, "data_preparation", "Data preparation lineage: cleaning, labelling, joins, with code and parameters",
          ("AIA 10(2)(c)", "IV 2(d)", "DS Preprocessing", "ISO A.7.6"), "auto", "Auto"),
    Field(6, "representativeness", "Representativeness, group statistics, bias, gaps",
          ("AIA 10(2)(f)–(h)", "AIA 10(3)–(4)", "NIST MEASURE 2.11"), "part", "Part"),
    Field(7, "code_version", "Code version, pipeline, design choices",
          ("IV 2(a)–(c)", "AIA 17(1)(b)–(c)"), "part", "Part"),
    Field(8, "third_party_components", "Third-party and pre-trained components, licences",
          ("IV 2(a)", "NIST MAP 4.1"), "part", "Part"),
    Field(9, "hyperparameters", "Hyperparameters, training objective",
          ("IV 2(b)", "MC Model Details"), "auto", "Auto"),
    Field(10, "environment", "Library versions, OS, hardware",
          ("IV 1(c),(e)", "IV 2(c)", "AIA 13(3)(e)"), "auto", "Auto"),
    Field(11, "evaluation", "Metrics, the data they were computed on (hash), thresholds, per-group results",
          ("IV 2(g)", "IV 3", "AIA 15", "MC Metrics / Evaluation Data", "SR 11-7 outcomes analysis"), "auto", "Auto"),
    Field(12, "metric_rationale", "Why the chosen metrics are appropriate", ("IV 4",), "human", "Human"),
    Field(13, "accountability", "Who ran each step and when; sign-off",
          ("IV 2(g)", "AIA 17(1)(m)"), "part", "Auto; signature Human"),
    Field(14, "changes", "Differences from the previous version",
          ("IV 6", "IV 2(f)", "AIA 11(1)", "AIA 43(4)"), "part", "Part"),
    Field(15, "limitations", "Limitations, foreseeable misuse, risks",
          ("AIA 13(3)(b)(iii)", "IV 3", "MC Caveats"), "human", "Human"),
    Field(16, "risk_management", "Risk management, human oversight",
          ("AIA 9", "AIA 14", "IV 2(e)", "IV 5"), "human", "Human"),
    Field(17, "prediction_log", "Prediction log: time, model version, input hash, output",
          ("AIA 12(1)–(2)", "AIA 26(5)–(6)", "NIST MEASURE 2.4"), "auto", "Auto"),
    Field(18, "retention", "Retention: logs at least 6 months, documentation 10 years",
          ("AIA 19(1)", "AIA 26(6)", "AIA 18"), "auto", "Auto (check)"),
    Field(19, "integrity", "Integrity of the record (hash chain verified)",
          ("supports AIA 12", "ISO 7.5.3"), "auto", "Auto"),
    Field(20, "monitoring", "Post-market monitoring: metrics over time, drift, incidents",
          ("AIA 72", "AIA 73", "IV 9"), "part", "Part"),
    Field(21, "impact", "Everything derived from a given dataset (impact)",
          ("AIA 10", "AIA 72", "SR 11-7 inventory"), "auto", "Auto"),
    Field(22, "conformity", "Standards applied, declaration of conformity, cybersecurity",
          ("IV 7", "IV 8", "IV 2(h)", "AIA 47", "AIA 15"), "human", "Human"),
)

FIELD_BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS}

# ---------------------------------------------------------------------------
# arrangements: the same 22 fields, grouped and titled as each standard outlines them

STANDARDS: dict[str, dict[str, Any]] = {
    "annex-iv": {
        "title": "EU AI Act, Annex IV technical documentation",
        "sections": (
            ("1", "General description of the AI system", ("identity", "intended_use", "environment")),
            ("2", "Elements of the system and its development process",
             ("code_version", "third_party_components", "hyperparameters", "training_data", "personal_data_origin",
              "data_preparation", "representativeness", "evaluation", "accountability")),
            ("3", "Monitoring, functioning and control", ("limitations", "prediction_log", "retention", "integrity")),
            ("4", "Appropriateness of the performance metrics", ("metric_rationale",)),
            ("5", "Risk management system", ("risk_management",)),
            ("6", "Changes over the life cycle", ("changes",)),
            ("7–8", "Standards applied; declaration of conformity", ("conformity",)),
            ("9", "Post-market monitoring plan", ("monitoring", "impact")),
        ),
    },
    # the Model Card's own nine sections (Mitchell et al., 2019); record keeping after them
    "model-card": {
        "title": "Model Card (Mitchell et al., 2019)",
        "sections": (
            ("", "Model Details", ("identity", "code_version", "hyperparameters", "environment", "third_party_components",
                                   "accountability", "changes")),
            ("", "Intended Use", ("intended_use",)),
            ("", "Factors", ("representativeness",)),
            ("", "Metrics", ("metric_rationale",)),
            ("", "Evaluation Data", (), "evaluation_data"),
            ("", "Training Data", ("training_data", "data_preparation", "personal_data_origin")),
            ("", "Quantitative Analyses", ("evaluation",), "slices"),
            ("", "Ethical Considerations", ("risk_management",)),
            ("", "Caveats and Recommendations", ("limitations",)),
            ("", "Record keeping", ("prediction_log", "monitoring", "retention", "integrity", "impact", "conformity")),
        ),
    },
    # SR 11-7: development, independent validation (its own section: validator, date,
    # scope, findings, outcome), governance, monitoring and outcomes
    "sr11-7": {
        "title": "SR 11-7 model risk management",
        "sections": (
            ("", "Model inventory and governance", ("identity", "intended_use", "accountability", "impact", "integrity",
                                                    "retention")),
            ("", "Model development and implementation",
             ("training_data", "personal_data_origin", "data_preparation", "representativeness", "code_version",
              "third_party_components", "hyperparameters", "environment")),
            ("", "Independent validation", ("metric_rationale", "limitations"), "validation"),
            ("", "Risk management and controls", ("risk_management", "conformity")),
            ("", "Ongoing monitoring", ("monitoring", "changes")),
            ("", "Outcomes analysis", ("evaluation", "prediction_log")),
        ),
    },
}


def _check_standards() -> None:
    # every arrangement shows every field exactly once
    for name, std in STANDARDS.items():
        keys = [k for sec in std["sections"] for k in sec[2]]
        assert sorted(keys) == sorted(FIELD_BY_KEY), name


_check_standards()


# ---------------------------------------------------------------------------
# evidence per field: (has evidence, one-line summary, evidence list)

Finding = tuple[bool, str, list[str]]


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def when_text(ts: Any) -> str:
    """ISO-8601 UTC as ``2026-11-26 05:10:33 UTC`` (what the HTML shows too)."""
    text = str(ts or "?")
    return text[:19].replace("T", " ") + " UTC" if len(text) >= 19 and text[10] == "T" else text


def _days(days: float | None) -> str:
    if days is None:
        return "?"
    return "less than a day" if days < 1 else f"{days:,.1f} days"


def _identity(f: Facts) -> Finding:
    m = f.model
    ev = [m["id"], f"sha256:{m['digest']}"]
    if m.get("event") is not None:
        ev.append(f"event {m['event']}")
    owner = m.get("owner")
    bits = [f"Version {m['version']} of {m['versions']} of {m['name']}", f"recorded {when_text(m.get('created_at'))}"]
    v = m.get("validation")
    if v and v.get("independent"):
        bits.append(f"validated by {v['validator']} on {v.get('date') or when_text(v.get('at'))}")
    elif v and v.get("self_recorded"):
        bits.append(f"validation naming {v['validator']} recorded from the model author's own account, "
                    "so not independent")
    elif v:
        bits.append(f"validation recorded by {v['validator']}, who is not independent of the model's author")
    else:
        bits.append("no independent validation recorded")
    if owner:
        bits.append(f"owner {owner['label']}")
        ev.append(owner["id"])
    if m.get("previous"):
        bits.append(f"parent version {m['previous']['id']}")
    ok = bool(m.get("name") and m.get("digest") and owner and m.get("created_at"))
    return ok, "; ".join(bits), ev


def _training_data(f: Facts) -> Finding:
    data = f.data
    training = [d for d in data if d.get("use", d["role"]) == "training"]
    roles: dict[str, int] = {}
    for d in data:
        roles[d["role"]] = roles.get(d["role"], 0) + 1
    summary = ", ".join(f"{n} {r}" for r, n in roles.items()) or "none recorded"
    ev = [d["id"] for d in data]
    if not training:
        return False, f"No training dataset recorded (datasets: {summary})", ev
    located = sum(1 for d in data if d.get("location"))
    where = ("each with location, digest, size and capture time" if located == len(data) else
             "each with digest and capture time, logged from memory: no location or size, only the digest "
             "identifies them" if not located else
             f"each with digest and capture time; {located} of {len(data)} with location and size (the rest "
             "logged from memory: only their digest identifies them)")
    return True, f"{_n(len(data), 'dataset')}: {summary}; {where}", ev


def _data_preparation(f: Facts) -> Finding:
    steps = f.preparation
    training = f.training_runs
    ev = [s["id"] for s in steps] + [s["id"] for s in training]
    if not training:
        return False, "No run is recorded as producing this model", ev
    if not steps and not any(d.get("use", d["role"]) == "training" for d in f.data):
        return False, "No data is recorded behind the training run, so there is no preparation lineage", ev
    if steps:
        names = ", ".join(s["name"] or s["id"] for s in steps)
        return True, f"{_n(len(steps), 'preparation step').capitalize()} upstream of training ({names}), with code and parameters", ev
    # the graph does answer: the model was trained directly on recorded data
    return True, "No preparation step upstream: the training run read its recorded data directly", ev


def _representativeness(f: Facts) -> Finding:
    groups = [m for m in f.metrics if m.get("group")]
    described = [d for d in f.data if d.get("use", d["role"]) == "training" and (d.get("rows") is not None or d.get("columns"))]
    ev = [f"event {m['event']}" for m in groups] + [d["id"] for d in described]
    bits = []
    if groups:
        bits.append(f"{_n(len({m['group'] for m in groups}), 'group')} with per-group metrics")
    if described:
        parts = [p for p, present in (("rows", any(d.get("rows") is not None for d in described)),
                                      ("columns", any(d.get("columns") for d in described))) if present]
        bits.append(f"training data composition ({', '.join(parts)})")
    if not bits:
        return False, "No per-group metrics or data composition recorded", ev
    return True, "Evidence: " + " and ".join(bits) + "; the judgement of representativeness and bias is a person's", ev


def _code_version(f: Facts) -> Finding:
    code = f.code
    if not code:
        return False, "No code version recorded", []
    bits = []
    for c in code:
        # the scripts this model's runs started from: the code node, shared by every run of
        # one commit, is named after whichever script ran first (`_code_fact`)
        script = c.get("entry_point") or c.get("name")
        if c.get("commit"):
            bits.append(f"{script or 'code'} at commit {c['commit'][:12]}{' with uncommitted changes' if c.get('dirty') else ''}")
        else:
            bits.append(f"{script or 'script'} by content digest")
    return True, "Code: " + "; ".join(bits) + "; design choices are a person's to describe", [c["id"] for c in code]


def _third_party(f: Facts) -> Finding:
    env = f.environments
    if not env:
        return False, "No environment recorded", []
    keys = {k: v for e in env for k, v in e["key_packages"].items()}
    listed = ", ".join(f"{k} {v}" for k, v in list(keys.items())[:6])
    total = max(e["packages_total"] for e in env)
    return True, f"{total} installed packages recorded ({listed}, …); licences and pre-trained components are a person's to state", [e["id"] for e in env]


def _hyperparameters(f: Facts) -> Finding:
    hp = f.hyperparameters
    n_model, n_run = len(hp["model"]), len(hp["run"])
    ev = [f.model["id"]] + [r["id"] for r in f.training_runs]
    if not n_model and not n_run:
        return False, "No hyperparameters recorded", ev
    extra = "; feature importance recorded" if f.feature_importance else ""
    steps = [s for s in f.model.get("steps") or [] if s["depth"]]
    if steps:  # a composite: its chain is part of the design, not only the last step's settings
        chain = chain_text(steps)
        return True, (f"{_n(len(steps), 'step')} ({chain}), each with its own parameters; "
                      f"{_n(n_model, 'final estimator parameter')} and {_n(n_run, 'run parameter')} recorded{extra}"), ev
    return True, f"{_n(n_model, 'estimator parameter').capitalize()} and {_n(n_run, 'run parameter')} recorded{extra}", ev


def _environment(f: Facts) -> Finding:
    env = f.environments
    if not env:
        return False, "No environment recorded", []
    e = env[0]
    return True, f"Python {e.get('python')} on {e.get('platform')} ({e.get('machine')}), {e['packages_total']} packages", [x["id"] for x in env]


def _evaluation(f: Facts) -> Finding:
    metrics = f.metrics
    if not metrics:
        return False, "No evaluation metrics recorded", []
    with_data = [m for m in metrics if m.get("dataset")]
    groups = {m["group"] for m in metrics if m.get("group")}
    ev = sorted({m["dataset"]["id"] for m in with_data}) + [f"event {m['event']}" for m in metrics]
    # a score on the data the model was fitted on says how well it fits, not how it
    # does on data it has not seen: DESIGN.md's evaluation roles are held out
    training = {d["id"] for d in f.data if d.get("use", d["role"]) == "training"}
    in_sample = [m for m in with_data if m["dataset"]["id"] in training]
    if in_sample and len(in_sample) == len(with_data) == len(metrics):
        return False, (f"No held-out evaluation: {'the' if len(metrics) == 1 else 'every'} metric was computed on the "
                       "training data itself (in-sample)"), ev
    summary = f"{_n(len(metrics), 'metric value').capitalize()}, {len(with_data)} with the dataset they were computed on"
    if in_sample:
        summary += f" ({len(in_sample)} on the training data itself: in-sample, not held out)"
    if groups:
        summary += f", {_n(len(groups), 'group')} with per-group results"
    summary += "; no thresholds recorded" if not f.annotations.get("evaluation") else ""
    return True, summary, ev


def _accountability(f: Facts) -> Finding:
    steps = f.accountability
    ev = sorted({s["agent_id"] for s in steps if s.get("agent_id")})
    if not steps:
        return False, "No one is recorded for any step", ev
    people = sorted({s["who"] for s in steps if s.get("who")})
    sign = f.annotations.get("sign_off")
    summary = f"{_n(len(steps), 'step').capitalize()} with who and when ({', '.join(people)})"
    if sign:
        summary += f"; signed off by {sign['author']} at {when_text(sign['at'])}"
        if sign.get("recorded_by") and sign["recorded_by"] != sign["author"]:
            summary += f" (recorded by {sign['recorded_by']})"
        ev.append(f"event {sign['event']}")
    else:
        summary += "; no sign-off recorded"
    return True, summary, ev


def _changes(f: Facts) -> Finding:
    ch = f.changes
    prev = ch.get("previous")
    if prev is None:
        return True, f"First recorded version of {f.model['name']}: no earlier version to compare with", [f.model["id"]]
    if ch.get("error"):
        return True, f"Previous version {prev['id']} recorded; the comparison failed ({ch['error']})", [prev["id"]]
    return True, f"{_n(len(ch['items']), 'recorded difference').capitalize()} from the previous version", [prev["id"], f.model["id"]]


def _prediction_log(f: Facts) -> Finding:
    p = f.predictions
    if not p["count"]:
        return False, "No predictions recorded for this model", []
    return True, (f"{_n(p['count'], 'prediction')} from {when_text(p['first_at'])} to {when_text(p['last_at'])}, each with time, model, "
                  f"input digest and output"), [f"event {e}" for e in p["events"]]


_PERIOD = __import__("re").compile(r"\b\d+(\.\d+)?\s*(day|week|month|year)s?\b", __import__("re").I)


def retention_period(f: Facts) -> str | None:
    """The retention period a person stated (a ``retention`` annotation naming one), or None."""
    note = f.annotations.get("retention")
    text = (note or {}).get("text") or ""
    return text if _PERIOD.search(text) else None


def _retention(f: Facts) -> Finding:
    r = f.retention
    period = retention_period(f)
    bits = [f"Retention period: {period}" if period else "No retention period recorded",
            f"the store holds every record since {when_text(r['store_since'])} ({_days(r['store_days'])}; append-only, nothing deleted)"]
    if r.get("log_days") is not None:
        bits.append(f"the prediction log spans {_days(r['log_days'])}")
    bits.append("logs are kept for as long as the store is" + (" (already over 6 months)" if r["store_days"] >= 183 else ""))
    return True, "; ".join(bits), ["event 1"]


def _integrity(f: Facts) -> Finding:
    i = f.integrity
    if i is None:
        return False, "Not checked", []
    ev = [f"head {i['head']['hash']}", f"{i['facts']['events_checked']} events checked"]
    return bool(i["ok"]), i.get("summary") or ("checks passed" if i["ok"] else "FAILED: " + "; ".join(i["problems"][:3])), ev


def _monitoring(f: Facts) -> Finding:
    p = f.predictions
    later = f.later_runs
    ev = [f"event {e}" for e in p["events"]] + [r["id"] for r in later]
    bits = []
    if p["count"]:
        bits.append(f"prediction volume over time ({p['count']} predictions)")
    if later:
        bits.append(f"{_n(len(later), 'later run')} that used the model")
    if not bits:
        return False, "No predictions or later runs recorded", ev
    return True, "Evidence: " + " and ".join(bits) + "; a monitoring plan, drift and incidents are a person's to record", ev


def _impact(f: Facts) -> Finding:
    imp = f.impact
    if imp.get("error"):
        return False, f"Impact could not be computed ({imp['error']})", []
    counts = imp["counts"]
    text = ", ".join(_n(n, k) for k, n in sorted(counts.items())) or "nothing"
    return True, f"Downstream of this model: {text}", [f.model["id"]]


def description_source(described: Mapping[str, Any]) -> str:
    """Whose description a registry's text is, as every view of the report names it
    (one of a model's ``described`` entries): ``the version`` or ``registered model NAME``."""
    return "the version" if described["of"] == "version" else f"registered model {described['name']}"


def _intended_use(f: Facts) -> Finding:
    """A person's statement; what a model registry says the model is for (MLflow's
    descriptions) is shown as a lead to confirm, never as the statement itself."""
    said = f.model.get("described") or []
    if not said:
        return False, "A person's statement; none recorded", []
    quoted = "; ".join(f"“{d['text']}” ({description_source(d)})" for d in said)
    return True, (f"No person's statement recorded; the model registry describes it: {quoted}. Confirm or correct "
                  f"it as the intended purpose with `lineage annotate {f.model['id']} --field intended_use "
                  f"--text \"…\"`"), [f.model["id"]]


def _human(key: str) -> Callable[[Facts], Finding]:
    def finding(f: Facts) -> Finding:
        return False, "A person's statement; none recorded", []

    return finding


FINDERS: dict[str, Callable[[Facts], Finding]] = {
    "identity": _identity,
    "intended_use": _intended_use,
    "training_data": _training_data,
    "personal_data_origin": _human("personal_data_origin"),
    "data_preparation": _data_preparation,
    "representativeness": _representativeness,
    "code_version": _code_version,
    "third_party_components": _third_party,
    "hyperparameters": _hyperparameters,
    "environment": _environment,
    "evaluation": _evaluation,
    "metric_rationale": _human("metric_rationale"),
    "accountability": _accountability,
    "changes": _changes,
    "limitations": _human("limitations"),
    "risk_management": _human("risk_management"),
    "prediction_log": _prediction_log,
    "retention": _retention,
    "integrity": _integrity,
    "monitoring": _monitoring,
    "impact": _impact,
    "conformity": _human("conformity"),
}


def status_of(field: Field, has_evidence: bool, annotated: bool) -> str:
    """The rule of the module docstring. Auto fields are facts of the record: an
    annotation is shown beside them but cannot stand in for them."""
    if field.fill == "auto":
        return RECORDED if has_evidence else MISSING
    if field.fill == "human":
        return RECORDED if annotated else MISSING
    if annotated:
        return RECORDED
    return NEEDS_PERSON if has_evidence else MISSING


def evaluate(facts: Facts) -> list[dict[str, Any]]:
    """The 22 checklist items of a model's facts, in COMPLIANCE.md order."""
    items = []
    for field in FIELDS:
        has_evidence, summary, evidence = FINDERS[field.key](facts)
        note = facts.annotations.get(field.key)
        annotated = note is not None
        if field.key == "accountability":
            annotated = "sign_off" in facts.annotations  # the signature is what the graph cannot supply
        status = status_of(field, has_evidence, annotated)
        if field.fill == "human" and note is not None:
            summary = "Stated by a person (see the annotation)"
        # the content must meet the field's rule before it counts as recorded
        if field.key == "integrity" and facts.integrity is not None and not facts.integrity["ok"]:
            status = FAILED
        elif field.key == "identity" and status == RECORDED and not (facts.model.get("validation") or {}).get("independent"):
            status = NEEDS_PERSON
        elif field.key == "retention" and has_evidence:
            status = RECORDED if retention_period(facts) else NEEDS_PERSON
        items.append({
            "number": field.number,
            "key": field.key,
            "title": field.title,
            "sources": list(field.sources),
            "fill": field.fill,
            "fill_note": field.fill_note,
            "status": status,
            "summary": summary,
            "evidence": list(dict.fromkeys(evidence)),
            "annotation": _annotation(facts.annotations.get(field.key)),
        })
    return items


def _annotation(a: dict[str, Any] | None) -> dict[str, Any] | None:
    if a is None:
        return None
    out = {"text": a["text"], "author": a["author"], "at": a["at"], "event": a["event"]}
    if a.get("recorded_by"):  # the identity that recorded it, beside the typed author
        out["recorded_by"] = a["recorded_by"]
    return out


def arrange(items: list[dict[str, Any]], standard: str) -> list[dict[str, Any]]:
    """The items grouped into the sections of ``standard``: ``[{number, title, fields}]``."""
    by_key = {i["key"]: i for i in items}
    return [{"number": sec[0], "title": sec[1], "fields": [by_key[k] for k in sec[2]],
             "extra": sec[3] if len(sec) > 3 else None}
            for sec in STANDARDS[standard]["sections"]]


def reading_order(standard: str) -> dict[str, int]:
    """Field key -> its number in the order the arrangement shows them (1, 2, 3, …)."""
    keys = [k for sec in STANDARDS[standard]["sections"] for k in sec[2]]
    return {k: i for i, k in enumerate(keys, 1)}
