"""An altered hyperparameter is marked where the report shows it (issue 14): the facts
carry the ledger event behind each run parameter, so a params row edited in SQLite
after it was recorded is marked in the HTML and Markdown reports, and no other value
is."""

from __future__ import annotations

import re
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

from sklearn.linear_model import LogisticRegression

import lineage


class _Altered(HTMLParser):
    """The text of every element with class ``altered`` (nested ones included)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth: list[bool] = []
        self.found: list[str] = []
        self._buf: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "img", "meta", "link", "input", "hr", "col"):
            return
        marked = "altered" in (dict(attrs).get("class") or "").split()
        self.depth.append(marked)
        if marked:
            self._buf.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("br", "img", "meta", "link", "input", "hr", "col") or not self.depth:
            return
        if self.depth.pop():
            self.found.append("".join(self._buf.pop()).strip())

    def handle_data(self, data: str) -> None:
        for buf in self._buf:
            buf.append(data)


def _altered_texts(html: str) -> list[str]:
    parser = _Altered()
    parser.feed(html)
    return parser.found


def _store(tmp_path: Path) -> tuple[Path, str]:
    """A model trained by a run with one param given at its start and two logged one
    by one (each its own ledger event); returns the database and the model's id."""
    db = tmp_path / ".lineage" / "lineage.db"
    (tmp_path / "train.csv").write_text("x,y\n0,0\n1,0\n2,1\n3,1\n")
    with lineage.open(db) as lg:
        train = lg.log_dataset(tmp_path / "train.csv", name="train")
        with lg.start_run("fit", params={"C": 0.25}) as run:
            run.log_input(train)
            run.log_param("solver", "lbfgs")
            run.log_param("max_iter", 321)
            clf = LogisticRegression(C=0.25, max_iter=321).fit([[0], [1], [2], [3]], [0, 0, 1, 1])
            run.log_metric("accuracy", 1.0, dataset=train)
            model = run.log_model(clf, "clf")
        lg.verify(record=True)
    return db, model.id


def _edit_param(db: Path, key: str, value: str) -> int:
    """Edit one params row behind lineage's back; returns the event that wrote it."""
    conn = sqlite3.connect(db)
    with conn:
        (event,) = conn.execute("SELECT event FROM params WHERE key = ?", (key,)).fetchone()
        conn.execute("UPDATE params SET value = ? WHERE key = ?", (value, key))
    conn.close()
    return event


def test_an_edited_param_is_marked_where_it_appears_and_nothing_else_is(tmp_path: Path) -> None:
    db, model = _store(tmp_path)
    with lineage.open(db, create=False) as lg:
        clean = lg.audit(model)
        assert clean.ok
        assert _altered_texts(clean.write(tmp_path / "clean.html").read_text()) == []
    event = _edit_param(db, "max_iter", "999")
    with lineage.open(db, create=False) as lg:
        assert not lg.verify().ok
        report = lg.audit(model)
        assert not report.ok
        d = report.to_dict()
        assert event in d["integrity"]["facts"]["failed"]
        assert d["hyperparameters"]["run_events"]["max_iter"] == event
        html = report.write(tmp_path / "audit.html").read_text()
        md = report.write(tmp_path / "audit.md").read_text()
    marked = _altered_texts(html)
    # the hyperparameters table and the training run's parameters both show it
    assert marked and set(marked) == {"999"}, marked
    assert f'title="altered after it was written (ledger event {event})"' in html
    for honest in ("0.25", "lbfgs"):  # the other params, from events that still verify
        assert honest not in marked
        assert re.search(rf">{re.escape(honest)}<", html), honest  # still shown, unmarked
    assert f"999 **(altered after it was written, event {event})**" in md
    assert "lbfgs **(altered" not in md and "0.25 **(altered" not in md


def test_a_param_given_at_the_start_marks_the_values_its_event_wrote(tmp_path: Path) -> None:
    """Params given to start_run are one ledger event with the run itself: the ledger
    commits to them together, so the report cannot tell which of them changed and marks
    the values that event wrote, not the ones logged later."""
    db, model = _store(tmp_path)
    _edit_param(db, "C", "8")
    with lineage.open(db, create=False) as lg:
        html = lg.audit(model).write(tmp_path / "audit.html").read_text()
    marked = _altered_texts(html)
    assert "8" in marked
    assert "lbfgs" not in marked and "321" not in marked
