"""The model inventory in Markdown: the same facts as ``inventory.html.j2`` (each name's
labels, how the listed version was chosen, the flags, and which versions served how
many predictions under which labels), escaped by `markdown`'s rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .html import num, short, when
from .markdown import cell, code, esc, table

if TYPE_CHECKING:  # pragma: no cover
    from .report import Inventory


def _labels(i: dict[str, Any]) -> str:
    """The labels a name holds now and how the listed version was chosen."""
    held = ", ".join(f"{cell(k)} → v{v}" for k, v in sorted((i.get("labels") or {}).items()))
    chosen = f"listed: {cell(i['selected'])}" if i.get("selected") else ""
    return "; ".join(x for x in (held and f"labels {held}", chosen) if x) or "—"


def _serving(items: list[dict[str, Any]]) -> list[str]:
    """Per name, the versions that hold a label or served predictions (a version with
    neither is counted, not listed: a name with 200 versions stays one page)."""
    from ..render.tables import flag_lines  # (the flags read as in the table and the page)

    out: list[str] = []
    for i in items:
        rows = [r for r in i.get("serving") or [] if r["labels"] or r["predictions"]]
        if not rows:
            continue
        quiet = len(i["serving"]) - len(rows)
        out += [f"### {cell(i['name'])}", ""]
        out += [f"- **{cell(line)}**" for line in flag_lines(i.get("flags") or [])]
        out += [""] if i.get("flags") else []
        out += table(["Version", "Id", "Labels now", "Predictions", "First / last", "Made holding no label"], [
            [f"v{r['version']}", code(short(r["id"], 16)), cell(", ".join(r["labels"])) or "none", num(r["predictions"]),
             f"{when(r['first_prediction_at'])} / {when(r['last_prediction_at'])}" if r["predictions"] else "—",
             f"**{num(r['unlabelled_predictions'])}**" if r["unlabelled_predictions"] else "0"]
            for r in rows])
        if quiet:
            out += [f"{quiet} other version(s) of {esc(i['name'])} hold no label and served no prediction.", ""]
    return (["## Serving", ""] + out) if out else []


def render_inventory(inventory: Inventory) -> str:
    from ..render.tables import flag_lines

    d = inventory.to_dict()
    out: list[str] = []
    bad = [i for i in d["items"] if not i["integrity_ok"]]
    if not d["chain"]["ok"] or bad:
        out += ["**INTEGRITY CHECK FAILED.**", ""]
        if not d["chain"]["ok"]:
            out.append(f"- the hash chain does not verify (first bad event {d['chain']['first_bad']})")
        out += [f"- model {esc(i['name'])} {code(i['id'])}: {cell(i['problems'][0] if i['problems'] else 'failed')}" for i in bad]
        out.append("")
    chain = d["chain"]
    out += ["# Model inventory", "",
            f"Generated {when(d['report']['generated_at'])} by {esc(d['report']['generator'])} from "
            f"{code(d['report'].get('store') or '—')} · ledger head `{d['head']['hash']}` ({d['head']['events']} events); "
            f"chain {'verified' if chain['ok'] else '**FAILED**'} "
            + (f"from the checkpoint at event {chain['verified_from']}" if chain.get("verified_from") else "from event 1"), "",
            f"{len(d['items'])} model(s). Listed: {esc(d['report'].get('listing') or '')} (v*n*/*m*: version *n* of the *m* "
            "recorded under the name).", ""]
    out += table(["Model", "Owner", "Training data", "Status", "Predictions", "Recorded / needs a person / missing", "Integrity"], [
        [f"**{cell(i['name'])}** v{i['version']}/{i['versions']} {code(short(i['id'], 16))}, {when(i.get('created_at'))}"
         + (f" · {_labels(i)}" if i.get("selected") else "")
         + "".join(f" · **{cell(line)}**" for line in flag_lines(i.get("flags") or [])), cell(i["owner"]),
         ", ".join(cell(x["name"] or short(x["id"])) for x in i["training_data"]) or "none recorded", cell(i["status"]),
         num(i["predictions"]),
         f"{i['completeness']['recorded']} / {i['completeness']['needs a person']} / {i['completeness']['missing']}"
         + (f" (missing: {', '.join(i['missing'])})" if i["missing"] else ""),
         "intact" if i["integrity_ok"] else "**FAILED**"]
        for i in d["items"]])
    out += _serving(d["items"])
    return "\n".join(out).rstrip() + "\n"
