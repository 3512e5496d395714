"""Reports on paper and on screen, checked in headless Chromium.

The quickstart's model report printed to A4 PDF: at most 8 pages, no page (but the
last) more than a third blank, no heading alone at the bottom of a page, no text under
8.5 pt; its decision record at most 2 pages. Every report kind (model under each
standard, decision record, inventory, a tampered store's report) is rendered from a
realistic store built here (a sweep, a pipeline, thousands of predictions, annotations,
per-group metrics, a tampered copy): each prints within its budget, shows its
sections, and its diagram's labels are at least 9 pt on screen at 100 %.

PDFs are measured with `pdfpages` (this folder): no PDF library is installed here.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pdfpages
import pytest
from conftest import build_quickstart, require_program

import lineage


def print_pdf(html: Path, out: Path) -> list[pdfpages.Page]:
    """Print ``html`` to ``out`` as Chromium does for a user (File > Print > PDF), and read it."""
    chromium = require_program("chromium")
    profile = tempfile.mkdtemp(prefix="lineage-print-")
    try:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--no-pdf-header-footer", f"--user-data-dir={profile}", f"--print-to-pdf={out}",
                        html.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return pdfpages.read(out.read_bytes())


def assert_printable(pages: list[pdfpages.Page], *, max_pages: int, what: str) -> None:
    assert 1 <= len(pages) <= max_pages, f"{what}: {len(pages)} pages, more than {max_pages}"
    for n, page in enumerate(pages[:-1], 1):
        assert page.blank_fraction() <= 1 / 3, f"{what}: page {n} is {page.blank_fraction():.0%} blank"
        assert not page.ends_with_heading(), f"{what}: page {n} ends with a heading alone"
    sizes = [s for p in pages for s in p.text_sizes]
    assert min(sizes) >= 8.4, f"{what}: text printed at {min(sizes):.1f} pt"


# ---------------------------------------------------------------------------
# the quickstart


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lineage.Lineage]:
    out = build_quickstart(tmp_path_factory.mktemp("quickstart"))
    lg = lineage.open(out / ".lineage" / "lineage.db")
    yield lg
    lg.close()


def test_quickstart_model_report_prints_in_8_pages(quickstart: lineage.Lineage, tmp_path: Path) -> None:
    html = quickstart.audit("random_forest").write(tmp_path / "model.html")
    assert_printable(print_pdf(html, tmp_path / "model.pdf"), max_pages=8, what="quickstart model report")


def test_quickstart_decision_record_prints_in_2_pages(quickstart: lineage.Lineage, tmp_path: Path) -> None:
    html = quickstart.audit("request:req-0007").write(tmp_path / "decision.html")
    pages = print_pdf(html, tmp_path / "decision.pdf")
    assert len(pages) <= 2
    assert min(s for p in pages for s in p.text_sizes) >= 8.4


# ---------------------------------------------------------------------------
# a realistic store

FEATURES = ["income", "debt", "age", "tenure"]


def _frame(n: int, seed: int) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)) * [20, 5, 12, 3] + [50, 10, 40, 5], columns=FEATURES)
    y = ((X["income"] - 2 * X["debt"] + rng.normal(size=n) * 6) > 30).astype(int)
    return X, y


@pytest.fixture(scope="module")
def realistic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root = tmp_path_factory.mktemp("realistic")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LINEAGE_USER", "dev")
        mp.setenv("LINEAGE_EMAIL", "dev@example.com")
        mp.delenv("LINEAGE_DB", raising=False)
        lg = lineage.open(root / ".lineage" / "lineage.db")
        X, y = _frame(1200, 0)
        (root / "data").mkdir()
        X.assign(target=y).to_csv(root / "data" / "applications.csv", index=False)
        X.iloc[:300].assign(target=y[:300]).to_csv(root / "data" / "applications.csv", index=False)  # version 1
        lg.log_dataset(root / "data" / "applications.csv", name="applications")
        X.assign(target=y).to_csv(root / "data" / "applications.csv", index=False)  # version 2
        apps = lg.log_dataset(root / "data" / "applications.csv", name="applications")
        Xt, yt = _frame(400, 1)
        Xt.assign(target=yt).to_csv(root / "data" / "holdout.csv", index=False)
        holdout = lg.log_dataset(root / "data" / "holdout.csv", name="holdout")
        best = None
        for C in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0):  # a sweep
            with lg.start_run("sweep", params={"C": C}, tags={"team": "credit"}) as run:
                run.log_input(apps)
                clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500)).fit(X, y)
                acc = float((clf.predict(Xt) == yt).mean())
                run.log_metric("accuracy", acc, dataset=holdout, n=len(yt))
                for name, mask in (("age<30", Xt["age"] < 30), ("age>=30", Xt["age"] >= 30)):
                    part = float((clf.predict(Xt[mask]) == yt[mask]).mean())
                    run.log_metric("accuracy", part, dataset=holdout, group=name, n=int(mask.sum()))
                model = run.log_model(clf, "credit")
                if best is None or acc >= best[0]:
                    best = (acc, model, clf)
        assert best is not None
        _, model, clf = best
        Xn, _ = _frame(3000, 2)
        lg.log_predictions(model, Xn, clf.predict(Xn).tolist(), scores=clf.predict_proba(Xn)[:, 1].tolist(),
                           request_ids=[f"app-{i}" for i in range(3000)], keep_inputs=True,
                           decision={"threshold": 0.3, "positive": "refer", "negative": "approve"})
        lg.annotate_card(model, {
            "intended_use": "Pre-screening of consumer credit applications; a person decides every referral.",
            "limitations": "Trained on one lender's 2025 applications.",
            "retention": "Prediction logs 6 months; documentation 10 years.",
        }, author="Ann Owner")
        with pytest.MonkeyPatch.context() as env:  # the validator, from her own account
            env.setenv("LINEAGE_USER", "vera")
            env.setenv("LINEAGE_NAME", "Vera Validator")
            env.setenv("LINEAGE_EMAIL", "vera@example.com")
            with lineage.open(lg.db_path) as vera:
                vera.annotate_card(model, {"validation": {
                    "validator": "Vera Validator", "date": "2026-11-30", "scope": "holdout data, per-age slices",
                    "findings": "No material gap between age groups.", "outcome": "approved with monitoring"}})
        lg.verify(record=True)
        lg.close()
    tampered = tmp_path_factory.mktemp("tampered")
    shutil.copytree(root / ".lineage", tampered / ".lineage")
    con = sqlite3.connect(tampered / ".lineage" / "lineage.db")
    con.execute("UPDATE metrics SET value = 0.99 WHERE grp IS NULL AND pk = (SELECT MAX(pk) FROM metrics WHERE grp IS NULL)")
    con.commit()
    con.close()
    lg = lineage.open(root / ".lineage" / "lineage.db")
    bad = lineage.open(tampered / ".lineage" / "lineage.db")
    yield {"lg": lg, "bad": bad, "model": model.id}
    lg.close()
    bad.close()


_LABEL_PX = """
const out = [];
for (const svg of document.querySelectorAll(arguments[0])) {
  const r = svg.getBoundingClientRect();
  const vb = svg.viewBox && svg.viewBox.baseVal;
  const scale = vb && vb.width ? r.width / vb.width : 1;
  for (const t of svg.querySelectorAll('text')) {
    const fs = parseFloat(getComputedStyle(t).fontSize || t.getAttribute('font-size'));
    if (t.textContent.trim()) out.push(fs * scale);
  }
}
return out;
"""


def _label_sizes_pt(driver: Any, selector: str) -> list[float]:
    """Rendered sizes (pt at 100 %: 1 CSS px = 0.75 pt) of every SVG text under ``selector``."""
    return [px * 0.75 for px in driver.execute_script(_LABEL_PX, selector)]


@pytest.mark.stress
@pytest.mark.parametrize("standard,sections", [
    ("annex-iv", ["1. General description of the AI system", "9. Post-market monitoring plan"]),
    ("sr11-7", ["Independent validation", "Outcomes analysis"]),
    ("model-card", ["Model Details", "Evaluation Data", "Quantitative Analyses", "Caveats and Recommendations"]),
])
def test_model_reports_render_and_print(realistic: dict[str, Any], browser: Any, tmp_path: Path, standard: str,
                                        sections: list[str]) -> None:
    from selenium.webdriver.common.by import By

    report = realistic["lg"].audit(realistic["model"], standard=standard)
    doc = report.to_dict()
    assert doc["model"]["validation"]["independent"] and report.item("identity")["status"] == "recorded"
    assert report.item("retention")["status"] == "recorded"
    html = report.write(tmp_path / f"{standard}.html")
    browser.get(html.resolve().as_uri())
    text = browser.find_element(By.TAG_NAME, "body").text
    for title in sections:
        assert title in text
    assert "applications@2" in text  # dataset versions where datasets are named
    if standard == "sr11-7":
        block = browser.find_element(By.ID, "independent-validation").text
        assert "Vera Validator" in block and "independent of the author" in block
    if standard == "model-card":
        assert browser.find_elements(By.CSS_SELECTOR, "#field-evaluation svg")  # per-slice chart
    sizes = _label_sizes_pt(browser, "#lineage figure svg")
    assert sizes and min(sizes) >= 9.0, f"diagram labels at {min(sizes):.1f} pt on screen"
    # reading order: the numbers shown run 1, 2, 3, …
    shown = [int(e.text) for e in browser.find_elements(By.CSS_SELECTOR, "article.field .no")]
    assert shown == list(range(1, 23))
    browser.save_screenshot(str(tmp_path / f"{standard}.png"))
    assert_printable(print_pdf(html, tmp_path / f"{standard}.pdf"), max_pages=10, what=f"{standard} report")


@pytest.mark.stress
def test_decision_record_renders_and_prints(realistic: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    report = realistic["lg"].audit("request:app-17")
    dec = report.to_dict()["decision"]
    assert dec["reasons"] and dec["rule"]["threshold"] == 0.3 and dec["outcome"]
    html = report.write(tmp_path / "decision.html")
    browser.get(html.resolve().as_uri())
    assert browser.title.startswith("Decision record")
    for section in ("decision", "reasons", "inputs", "data-lineage", "integrity-brief"):
        assert browser.find_element(By.ID, section).is_displayed()
    sizes = _label_sizes_pt(browser, "#lineage-diagram svg")
    assert sizes and min(sizes) >= 9.0
    pages = print_pdf(html, tmp_path / "decision.pdf")
    assert len(pages) <= 2


@pytest.mark.stress
def test_tampered_store_report_marks_the_altered_value(realistic: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    report = realistic["bad"].audit(realistic["model"])
    doc = report.to_dict()
    assert not report.ok and report.item("integrity")["status"] == "failed"
    assert doc["integrity"]["summary"].startswith("Do not rely on this report")
    html = report.write(tmp_path / "tampered.html")
    browser.get(html.resolve().as_uri())
    sentence = browser.find_element(By.CSS_SELECTOR, ".integrity-sentence")
    assert "altered" in sentence.text
    marked = browser.find_elements(By.CSS_SELECTOR, "#field-evaluation .altered")
    assert marked and any("0.99" in m.text for m in marked)  # the edited value, marked where it appears
    badge = browser.find_element(By.XPATH, "//section[@id='checklist']//tr[td[contains(., 'integrity')]]//span[contains(@class, 'badge')]")
    assert badge.text == "failed"  # never shown as "missing"
    assert_printable(print_pdf(html, tmp_path / "tampered.pdf"), max_pages=10, what="tampered report")


@pytest.mark.stress
def test_inventory_renders_and_prints(realistic: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    html = realistic["lg"].inventory(all_versions=True).write(tmp_path / "inventory.html")
    browser.get(html.resolve().as_uri())
    assert browser.find_element(By.TAG_NAME, "table").is_displayed()
    pages = print_pdf(html, tmp_path / "inventory.pdf")
    assert 1 <= len(pages) <= 3
