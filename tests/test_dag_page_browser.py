"""`lineage dag SUBJECT -o x.html` in a real browser (issue 14): the page opens
centred on its subject, at the diagram's natural size (labels as drawn), and stays an
ordinary page: scrolling pans, zooming magnifies, printing gives one A4 landscape page.
Headless Chromium through the conftest `browser` fixture (a 1280x1600 window)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import build_quickstart, require_program
from test_audit_print import print_pdf

import lineage
from lineage.cli import cli


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The quickstart's trace of request req-0042 as an HTML page, and the prediction's
    id: a diagram wider than the window, with the subject at its right-hand edge."""
    require_program("dot")
    out = build_quickstart(tmp_path_factory.mktemp("quickstart"))
    db = out / ".lineage" / "lineage.db"
    html = out / "trace.html"
    result = CliRunner().invoke(cli, ["--db", str(db), "dag", "request:req-0042", "-o", str(html)])
    assert result.exit_code == 0, result.output
    with lineage.open(db, create=False) as lg:
        subject = lg.get("request:req-0042").id
    yield html, subject


_WHERE = """
const id = arguments[0];
const a = [...document.querySelectorAll('g.node a')].find(x => x.getAttribute('xlink:title') === id
                                                           || x.getAttributeNS('http://www.w3.org/1999/xlink', 'title') === id);
const r = a.closest('g.node').getBoundingClientRect();
const svg = document.querySelector('.lineage-canvas svg');
return {x: r.x + r.width / 2, y: r.y + r.height / 2, w: r.width,
        vw: document.documentElement.clientWidth, vh: document.documentElement.clientHeight,
        sx: window.scrollX, sy: window.scrollY, hash: location.hash,
        scale: svg.getBoundingClientRect().width / svg.viewBox.baseVal.width};
"""


def _open(browser: Any, html: Path, subject: str) -> dict[str, float]:
    browser.get(html.resolve().as_uri())
    deadline = time.monotonic() + 10
    where = browser.execute_script(_WHERE, subject)
    while where["hash"] != "#lineage-subject" and time.monotonic() < deadline:
        time.sleep(0.1)
        where = browser.execute_script(_WHERE, subject)
    time.sleep(0.3)  # let the jump settle
    return browser.execute_script(_WHERE, subject)


def _assert_centred(where: dict[str, float]) -> None:
    """The subject's centre lies in the middle fifth of the window, both ways."""
    assert abs(where["x"] - where["vw"] / 2) <= where["vw"] / 10, where
    assert abs(where["y"] - where["vh"] / 2) <= where["vh"] / 10, where


def test_the_page_opens_centred_on_its_subject_at_natural_size(browser: Any, page: tuple[Path, str]) -> None:
    html, subject = page
    where = _open(browser, html, subject)
    _assert_centred(where)
    assert where["sx"] > 0, "the subject sits at the right-hand edge: the page scrolled to it"
    # drawn as dot laid it out (1 pt = 4/3 CSS px), not shrunk to the window
    assert where["scale"] == pytest.approx(4 / 3, rel=0.01)
    assert "<script" not in html.read_text().lower()


def test_scrolling_pans_and_stays_where_it_was_taken(browser: Any, page: tuple[Path, str]) -> None:
    html, subject = page
    before = _open(browser, html, subject)
    browser.execute_script("window.scrollBy(-400, -150)")
    time.sleep(0.6)  # nothing pulls it back (no snapping, no script)
    after = browser.execute_script(_WHERE, subject)
    assert after["sx"] == pytest.approx(max(before["sx"] - 400, 0), abs=1)
    assert after["sy"] == pytest.approx(max(before["sy"] - 150, 0), abs=1)
    assert after["x"] == pytest.approx(before["x"] + (before["sx"] - after["sx"]), abs=1)


def test_zooming_in_magnifies_the_diagram_and_keeps_the_subject_centred(browser: Any, page: tuple[Path, str]) -> None:
    """Browser zoom at 200 % is a window half as wide in CSS pixels, each drawn twice as
    large: the diagram keeps its CSS size (so it is twice as big on screen; a page
    fitted to the window would shrink it back) and reopens centred on the subject."""
    html, subject = page
    normal = _open(browser, html, subject)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": normal["vw"] // 2, "height": normal["vh"] // 2, "deviceScaleFactor": 2,
                             "mobile": False})
    try:
        zoomed = _open(browser, html, subject)
        assert zoomed["vw"] <= normal["vw"] / 2 + 1
        assert zoomed["w"] == pytest.approx(normal["w"], rel=0.01)  # same CSS size: twice the device pixels
        _assert_centred(zoomed)
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_the_page_prints_whole_on_one_a4_landscape_page(page: tuple[Path, str], tmp_path: Path) -> None:
    html, _ = page
    pages = print_pdf(html, tmp_path / "trace.pdf")
    assert len(pages) == 1
    assert (pages[0].width, pages[0].height) == pytest.approx((842, 595), abs=2)  # A4 landscape, in points
    low, high = pages[0].extent()
    assert high - low > 100, "the diagram is on the page"


def test_only_a_page_with_a_subject_jumps(tmp_path: Path) -> None:
    """The overview has no subject: no anchor, no refresh; a trace has both."""
    require_program("dot")
    (tmp_path / "a.csv").write_text("x\n1\n")
    with lineage.open(tmp_path / ".lineage" / "lineage.db") as lg:
        node = lg.log_dataset(tmp_path / "a.csv", name="a")
        with lg.start_run("use") as run:
            run.log_input(node)
        from lineage import render

        traced = render.render(lg.impact(node), tmp_path / "impact.html").read_text()
        whole = render.render(render.overview(lg.store), tmp_path / "overview.html").read_text()
    assert 'url=#lineage-subject' in traced and 'id="lineage-subject"' in traced
    assert 'id="lineage-subject"' not in whole and 'http-equiv="refresh"' not in whole
