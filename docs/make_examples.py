"""Regenerate the pictures and reports shipped in docs/ from the quickstart.

    python docs/make_examples.py        (or `make docs`)

Writes docs/lineage.svg (the diagram `make demo` draws) and docs/example-audit.html:
the random forest's report after a recorded checkpoint and a partial model card, so
the example shows annotations, a sign-off and the gaps that remain.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "examples"))

CARD = {
    "intended_use": "Research demonstration: pre-screening of breast-cancer biopsy measurements "
                    "(Wisconsin diagnostic data). Not for clinical decisions.",
    "limitations": "Trained on 426 cases from one source; not validated on other populations or devices.",
    "metric_rationale": "Accuracy and F1 on a held-out split; per-group accuracy for large tumours "
                        "(mean radius > 15), where errors matter most.",
}


def main() -> None:
    os.environ.setdefault("LINEAGE_USER", "analyst")
    os.environ.setdefault("LINEAGE_EMAIL", "analyst@example.com")  # not this machine's git identity
    import quickstart  # examples/quickstart.py

    sys.argv = [quickstart.__file__]  # recorded as the runs' entry point, as under `make demo`

    import lineage

    # a fixed folder, so paths in the report do not change from one regeneration to the next
    work = Path(tempfile.gettempdir()) / "lineage-quickstart"
    shutil.rmtree(work, ignore_errors=True)
    try:
        quickstart.main(work)
        shutil.copyfile(work / "lineage.svg", DOCS / "lineage.svg")
        with lineage.open(work / ".lineage" / "lineage.db") as lg:
            lg.verify(record=True)
            lg.annotate_card("random_forest", CARD)
            lg.annotate("random_forest", "sign_off", "Approved for the research demo only.", author="Dana Reviewer")
            lg.audit("random_forest").write(DOCS / "example-audit.html")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {DOCS / 'lineage.svg'} and {DOCS / 'example-audit.html'}")


if __name__ == "__main__":
    main()
