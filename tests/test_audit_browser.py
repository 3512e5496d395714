"""The HTML audit report in a real browser: Debian's Chromium, headless, driven by
selenium through Debian's chromedriver (both installed by .ci/run).

The page must load without console errors, show the lineage diagram and the
importance chart with a real size, and show a hostile name as text: no alert, no
``<img>`` element created from it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import lineage

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def hostile_report(lg: lineage.Lineage, tmp_path: Path) -> Path:
    """A report whose model, run, param, feature, dataset and annotations are all named
    with markup that would run script if it were not escaped."""
    pd = pytest.importorskip("pandas")
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    frame = pd.DataFrame(X, columns=[HOSTILE, "income", "age"])
    csv = tmp_path / "train.csv"
    frame.assign(target=y).to_csv(csv, index=False)
    data = lg.log_dataset(csv, name=HOSTILE)
    with lg.start_run(HOSTILE, params={HOSTILE: HOSTILE}) as run:
        run.log_input(data)
        run.log_metric("accuracy", 0.91, dataset=data, group=HOSTILE)
        model = run.log_model(RandomForestClassifier(n_estimators=5, random_state=0).fit(frame, y), HOSTILE)
    lg.annotate(model, "intended_use", HOSTILE, author=HOSTILE)
    lg.annotate(model, "sign_off", HOSTILE, author=HOSTILE)
    lg.log_predictions(model, frame.head(4), y[:4], request_ids=[HOSTILE, "b", "c", "d"])
    return lg.audit(model).write(tmp_path / "audit.html")


def _load(driver: object, path: Path) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(path.resolve().as_uri())


def _severe(driver: object) -> list[dict]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _assert_no_alert(driver: object) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text


def test_report_renders_with_diagram_and_chart(browser: object, hostile_report: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    _load(browser, hostile_report)
    assert _severe(browser) == []
    _assert_no_alert(browser)
    assert browser.find_elements(By.TAG_NAME, "img") == []
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert browser.execute_script("return window.__lineage_xss === undefined")

    diagram = browser.find_element(By.CSS_SELECTOR, "#lineage svg")
    chart = browser.find_element(By.CSS_SELECTOR, ".chart svg")
    for svg in (diagram, chart):
        browser.execute_script("arguments[0].scrollIntoView()", svg)
        assert svg.is_displayed()
        assert svg.size["width"] > 200 and svg.size["height"] > 50
    # the hostile name is on the page as text: in the title, a table, the chart's tick label
    title = browser.find_element(By.TAG_NAME, "h1").text
    assert HOSTILE in title
    assert HOSTILE in browser.find_element(By.ID, "field-hyperparameters").text
    ticks = [t.get_attribute("textContent") for t in chart.find_elements(By.TAG_NAME, "text")]
    assert HOSTILE in ticks
    assert "not a cryptographic signature" in browser.find_element(By.TAG_NAME, "body").text

    browser.save_screenshot(str(tmp_path / "audit.png"))
    assert (tmp_path / "audit.png").stat().st_size > 10_000


def test_prediction_report_and_inventory_render(browser: object, lg: lineage.Lineage, hostile_report: Path,
                                                tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    pred = lg.audit(f"request:{HOSTILE}").write(tmp_path / "prediction.html")
    _load(browser, pred)
    assert _severe(browser) == []
    _assert_no_alert(browser)
    assert browser.find_elements(By.TAG_NAME, "img") == []
    assert "Data lineage" in browser.find_element(By.ID, "data-lineage").text
    assert "Reasons" in browser.find_element(By.ID, "reasons").text
    assert browser.find_element(By.CSS_SELECTOR, "#lineage-diagram svg").is_displayed()

    inv = lg.inventory().write(tmp_path / "inventory.html")
    _load(browser, inv)
    assert _severe(browser) == []
    _assert_no_alert(browser)
    assert browser.find_elements(By.TAG_NAME, "img") == []
    assert HOSTILE in browser.find_element(By.TAG_NAME, "table").text


def test_tampered_report_shows_the_warning_first(browser: object, lg: lineage.Lineage, hostile_report: Path,
                                                 tmp_path: Path) -> None:
    import sqlite3

    from selenium.webdriver.common.by import By

    con = sqlite3.connect(lg.store.path)
    con.execute("UPDATE params SET value = 'edited'")
    con.commit()
    con.close()
    model = lg.nodes(kind="model")[0]
    path = lg.audit(model).write(tmp_path / "tampered.html")
    _load(browser, path)
    assert _severe(browser) == []
    alert = browser.find_element(By.CSS_SELECTOR, ".alert")
    assert alert.is_displayed() and "Integrity check failed" in alert.text
    assert alert.location["y"] < browser.find_element(By.TAG_NAME, "h1").location["y"]
    color = alert.value_of_css_property("border-left-color")
    assert color.startswith("rgba(180, 35, 24") or color.startswith("rgb(180, 35, 24")  # the report's red


def test_the_whole_report_renders_visibly(browser: object, hostile_report: Path, tmp_path: Path) -> None:
    """A full-page screenshot has real content from top to bottom (no blank page, no
    collapsed layout). Set LINEAGE_SCREENSHOTS=DIR to keep the picture for a review."""
    from matplotlib.image import imread

    out = Path(os.environ.get("LINEAGE_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    _load(browser, hostile_report)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    assert height > 2000  # summary, integrity, checklist, data, evaluation, accountability
    browser.set_window_size(1280, min(height, 16000))
    shot = out / "audit-full.png"
    browser.save_screenshot(str(shot))
    browser.set_window_size(1280, 1600)
    pixels = imread(shot)[..., :3]
    ink = (pixels.mean(axis=2) < 0.85)  # anything darker than the page's light greys
    bands = np.array_split(ink, 8, axis=0)
    assert all(band.mean() > 0.003 for band in bands), "a stretch of the report rendered blank"
