"""Compliance audit reports: collect facts -> checklist -> HTML / Markdown / JSON.

    report = lg.audit("random_forest")          # a model or a prediction
    report.write("audit.html")                  # .html, .md or .json
    report.ok, report.missing                   # integrity, gap keys
    lg.inventory().write("inventory.html")      # every model (SR 11-7 inventory)

`facts` reads the store and the query layer; `integrity` checks those facts against
the ledger events that recorded them, the chain from the last checkpoint, and the
files on disk; `checklist` holds COMPLIANCE.md's 22 fields and decides each status;
`html` and `markdown` are views of the JSON document, whose schema ships as
``schema.json``. jinja2 and matplotlib are imported only when a view is rendered.
"""

from .checklist import FIELDS, STANDARDS
from .report import AuditReport, Inventory, build_inventory, build_report, check_standard

__all__ = ["FIELDS", "STANDARDS", "AuditReport", "Inventory", "build_inventory", "build_report", "check_standard", "schema"]


def schema() -> dict:
    """The JSON Schema of the JSON report (``schema.json``, shipped with the package)."""
    import json
    from pathlib import Path

    return json.loads((Path(__file__).parent / "schema.json").read_text(encoding="utf-8"))
