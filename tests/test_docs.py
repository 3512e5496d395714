"""The docs are tested like code (as sqlite-utils' tests/test_docs.py): every command
has help with an example, docs/cli.md is the commands' current help, the README's
quickstart runs, the integrity page's verifier agrees with lineage, links resolve."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from conftest import edit_and_rechain, require_program

import lineage
from lineage.cli import cli
from lineage.model import ERASED_PERSON

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def _commands() -> list[str]:
    return cli.list_commands(click.Context(cli))


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`lineage {command} --help` shows no example"


def test_the_group_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "Example" in result.output


def _reference_module():
    spec = importlib.util.spec_from_file_location("make_cli_reference", DOCS / "make_cli_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_up_to_date() -> None:
    expected = _reference_module().render()
    actual = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/cli.md is out of date with the commands' --help: run `make docs`"


def test_cli_reference_covers_every_command() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for command in _commands():
        assert f"## lineage {command}\n" in text


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_readme_quickstart_runs(tmp_path: Path) -> None:
    blocks = _python_blocks(README)
    assert len(blocks) == 1, "the README has one ```python block: the quickstart"
    code = blocks[0]
    assert len(code.strip().splitlines()) <= 15, "the quickstart is at most 15 lines"
    env = {**os.environ, "LINEAGE_DB": str(tmp_path / "store" / "lineage.db"), "LINEAGE_USER": "readme"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "ok:" in out.stdout  # the verify line
    with lineage.open(tmp_path / "store" / "lineage.db", create=False) as lg:
        assert lg.get("request:req-1").kind == "prediction"
        assert lg.verify().ok


def _reference_verifier(tmp_path: Path) -> Path:
    m = re.search(r"<!-- reference-verifier -->\n```python\n(.*?)^```", (DOCS / "integrity.md").read_text(encoding="utf-8"),
                  flags=re.S | re.M)
    assert m, "docs/integrity.md lost its reference verifier"
    script = tmp_path / "verify.py"
    script.write_text(m.group(1))
    return script


def test_the_integrity_page_verifier_agrees_with_lineage(tmp_path: Path) -> None:
    script = _reference_verifier(tmp_path)
    db = tmp_path / ".lineage" / "lineage.db"
    import numpy as np
    from sklearn.dummy import DummyClassifier

    (tmp_path / "train.csv").write_text("a,b\n1,2\n")
    with lineage.open(db) as lg:
        train = lg.log_dataset(tmp_path / "train.csv", name="train")
        with lg.start_run("fit", params={"C": 0.1, "note": "é \"quoted\"\n"}, tags={"team": "risk"}) as run:
            run.log_input(train)
            run.log_metric("accuracy", 0.1 + 0.2, dataset=train, group="age>60")
            run.log_metric("loss", float("nan"))
            model = run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "clf")
        ids = lg.log_predictions(model, np.zeros((3, 2)), [0, 1, 1], scores=[0.5, float("inf"), None], request_ids=["a", None, "c"])
        lg.annotate(model, "intended_use", "testing ✓")
        lg.promote(model, "production", reason="approved ✓")  # promotions and importances: tables 11, 12
        import pandas as pd

        lg.compute_importance(model, data=pd.DataFrame({"x": [0.0, 1.0, 0.5], "y": [0, 1, 1]}), target="y")
        lg.create_experiment("churn ✓", tags={"team": "risk"})  # table 14, a creation row's NULL key
        lg.set_experiment_tags("churn ✓", {"team": "fraud"})
        lg.redact(ids[0], reason="erasure request")  # the documented rule for erased rows
        lg.redact(lg.actor, reason="erasure request 2")  # a person: a promotion's and a statement's author
        assert lg.store.promotion_rows("clf")[0]["author"] == ERASED_PERSON
        report = lg.verify(record=True)
        count, head = lg.store.head()
    out = subprocess.run([sys.executable, str(script), str(db)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"ok: {count} events, head {head}"
    assert report.ok
    odd = tmp_path / "q?a #1 50%" / "lineage.db"  # (a path is a path, not a URI's query or fragment)
    odd.parent.mkdir()
    shutil.copy(db, odd)
    out = subprocess.run([sys.executable, str(script), str(odd)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"ok: {count} events, head {head}", out.stderr
    missing = tmp_path / "no-such.db"  # (read only: a mistyped path is an error, not a new empty store)
    assert subprocess.run([sys.executable, str(script), str(missing)], capture_output=True).returncode != 0
    assert not missing.exists()
    blanked = tmp_path / "blanked.db"
    with sqlite3.connect(db) as src, sqlite3.connect(blanked) as dst:
        src.backup(dst)
        dst.execute("UPDATE events SET payload = NULL WHERE seq = "  # what it recorded, by whom, when: gone
                    "(SELECT max(seq) FROM events WHERE type = 'metric' AND payload IS NOT NULL)")
    out = subprocess.run([sys.executable, str(script), str(blanked)], capture_output=True, text=True)
    assert out.returncode != 0 and "no erasure record lists it" in out.stderr
    conn = sqlite3.connect(db)
    conn.execute("UPDATE metrics SET value = 0.9 WHERE key = 'accuracy'")
    conn.commit()
    conn.close()
    tampered = subprocess.run([sys.executable, str(script), str(db)], capture_output=True, text=True)
    assert tampered.returncode != 0 and "rows edited" in tampered.stderr


def _edit_and_rechain(src: Path, dst: Path, seq: int, edit: Callable[[dict[str, Any]], None]) -> None:
    """A copy at ``dst`` of the store at ``src``, with event ``seq`` edited and the chain
    recomputed (`edit_and_rechain`)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    edit_and_rechain(dst, seq, edit)


def test_the_integrity_page_verifier_checks_signed_checkpoints_with_the_key_given(tmp_path: Path) -> None:
    # an auditor's own check of what lineage signs: with --key it must check the
    # signature over exactly lineage's message, and never pass what it did not check
    pytest.importorskip("cryptography")
    from lineage import signing

    script = _reference_verifier(tmp_path)
    db = tmp_path / "signed" / "lineage.db"
    auditor = signing.keygen(tmp_path / "auditor")
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    with lineage.open(db) as lg:
        with lg.start_run("fit", params={"C": 1}) as run:
            run.log_input(lg.log_dataset(tmp_path / "d.csv", name="d"))
        assert lg.verify_signed(auditor["private"]).ok
        cp = lg.store.last_checkpoint()
        lg.annotate("d", "limitations", "after the signature: checked, not vouched for")
        count, head = lg.store.head()
        assert lg.verify(key=auditor["public"]).ok

    def check(store: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(script), str(store), *args], capture_output=True, text=True, env=env)

    # the right key, as its file or its fingerprint: the ledger line as without a key, then what it vouches for
    for key in (auditor["public"], auditor["fingerprint"]):
        out = check(db, "--key", key)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == [f"ok: {count} events, head {head}",
                                           f"signed: the key {auditor['fingerprint']} vouches for events "
                                           f"1-{cp.payload['verified_through']} (checkpoint event {cp.seq})"]
    assert check(db).stdout == f"ok: {count} events, head {head}\n"  # without --key: as before

    # a well-formed key that signed nothing here
    stranger = signing.keygen(tmp_path / "stranger")
    out = check(db, "--key", stranger["public"])
    assert out.returncode == 1 and "no checkpoint signed by the key" in out.stderr and "ok:" not in out.stdout

    # the signature tampered with (flipped bit), the chain recomputed over it
    def flip(body: dict[str, Any]) -> None:
        sig = bytearray.fromhex(body["signature"]["signature"])
        sig[0] ^= 1
        body["signature"]["signature"] = sig.hex()

    forged = tmp_path / "forged.db"
    _edit_and_rechain(db, forged, cp.seq, flip)
    assert check(forged).returncode == 0  # the chain alone cannot see it
    out = check(forged, "--key", auditor["public"])
    assert out.returncode == 1 and f"event {cp.seq}: the checkpoint's signature does not match" in out.stderr
    with lineage.open(forged) as again:
        assert not again.verify(key=auditor["public"]).ok  # lineage agrees

    # the history the key vouched for rewritten before the checkpoint, everything re-chained
    rewritten = tmp_path / "rewritten.db"
    _edit_and_rechain(db, rewritten, 1, lambda body: body.update(at="2000-01-01T00:00:00Z"))
    assert check(rewritten).returncode == 0
    out = check(rewritten, "--key", auditor["fingerprint"])
    assert out.returncode == 1 and "which this store no longer carries" in out.stderr
    with lineage.open(rewritten) as again:
        assert not again.verify(key=auditor["public"]).ok

    # pushed elsewhere, the checkpoint is numbered as in this store: its signature is
    # still checked there, but the stand-alone check does not follow the push's link
    pushed = tmp_path / "pushed" / "lineage.db"
    with lineage.open(db) as lg:
        lg.push(pushed)
    out = check(pushed, "--key", auditor["public"])
    assert out.returncode == 1 and "no checkpoint signed by the key" in out.stderr
    pushed_forged = tmp_path / "pushed-forged.db"
    with lineage.open(pushed) as target:
        assert target.verify(key=auditor["public"]).ok  # (lineage replays the push back to the signed head)
        copy = next(s["event"] for s in target.checkpoint_signatures())
    _edit_and_rechain(pushed, pushed_forged, copy, flip)
    out = check(pushed_forged, "--key", auditor["public"])
    assert out.returncode == 1 and f"event {copy}: the checkpoint's signature does not match" in out.stderr

    # a store without a signed checkpoint, given a key
    unsigned = tmp_path / "unsigned" / "lineage.db"
    with lineage.open(unsigned) as lg:
        lg.log_dataset(tmp_path / "d.csv", name="d")
        assert lg.verify(record=True).ok  # a checkpoint, but not a signed one
    assert check(unsigned).returncode == 0
    out = check(unsigned, "--key", auditor["public"])
    assert out.returncode == 1 and "no checkpoint signed by the key" in out.stderr

    # a malformed key is bad usage, as for `lineage verify --key`
    (tmp_path / "junk.pub").write_text("not a key")
    for bad in ("SHA256:zz", "SHA256:0123456789", str(tmp_path / "junk.pub"), auditor["private"]):
        out = check(db, "--key", bad)
        assert out.returncode == 2 and "Traceback" not in out.stderr, (bad, out.stderr)

    # without `cryptography` a key cannot be checked: fail, and say why
    shim = tmp_path / "no-cryptography" / "cryptography"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('cryptography is not installed here')\n")
    env = {**os.environ, "PYTHONPATH": str(shim.parent)}
    out = check(db, "--key", auditor["public"], env=env)
    assert out.returncode == 1 and "needs the cryptography package" in out.stderr and not out.stdout
    assert check(db, env=env).returncode == 0  # the ledger alone needs only the standard library
    out = subprocess.run([sys.executable, "-O", str(script), str(db), "--key", auditor["public"]],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "without python -O" in out.stderr  # -O would skip every assert


def _links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    missing = []
    for link in _links(page):
        if re.match(r"^[a-z]+:", link) or link.startswith("#"):
            continue
        target = (page.parent / link.split("#", 1)[0]).resolve()
        if not target.exists():
            missing.append(link)
    assert not missing, f"{page.name} links to missing files: {missing}"


def test_readme_links_every_doc_page() -> None:
    text = README.read_text(encoding="utf-8")
    for name in ("concepts", "tracking", "cli", "integrity", "performance", "diagrams", "audit"):
        assert f"(docs/{name}.md" in text, name


# ---------------------------------------------------------------------------
# every example of the README and the tracking guide runs verbatim, in an empty folder

#: pages whose ```console and ```python blocks are run as written; a block preceded by
#: `<!-- not run: why -->` is prose about something this machine cannot run
RUN_PAGES = [README, DOCS / "tracking.md"]


def _examples(page: Path) -> list[tuple[str, str, int]]:
    """``(language, code, line)`` of every runnable example on a page."""
    text = page.read_text(encoding="utf-8")
    found = []
    for m in re.finditer(r"^```(console|python)\n(.*?)^```", text, flags=re.S | re.M):
        before = text[: m.start()].rstrip().splitlines()[-1:] or [""]
        if before[0].startswith("<!-- not run"):
            continue
        lang, code = m.group(1), m.group(2)
        if lang == "console" and not re.search(r"^\$ lineage ", code, flags=re.M):
            continue  # `make demo`: the set-up, not an example
        found.append((lang, code, text[: m.start()].count("\n") + 1))
    return found


def _example_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LINEAGE_DB", "COLUMNS")}
    bin_dir = str(Path(sys.executable).parent)
    env.update({"PATH": bin_dir + os.pathsep + env.get("PATH", ""), "LINEAGE_USER": "docs",
                "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), "GIT_CONFIG_GLOBAL": os.devnull})
    return env


@pytest.mark.parametrize("page,lang,code,line", [(p, *e) for p in RUN_PAGES for e in _examples(p)],
                         ids=lambda v: v.name if isinstance(v, Path) else (str(v) if isinstance(v, int) else None))
def test_every_example_runs_verbatim(tmp_path: Path, page: Path, lang: str, code: str, line: int) -> None:
    if shutil.which("lineage", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("the `lineage` command is not installed next to this Python")
    work = tmp_path / "work"
    work.mkdir()
    # the repository's examples/ is what a reader has beside the README; nothing else
    shutil.copytree(ROOT / "examples" / "pipeline", work / "examples" / "pipeline")
    env = _example_env(tmp_path)
    if lang == "console":
        lines = [ln[2:] for ln in code.splitlines() if ln.startswith("$ ")]
        script = "set -e\n" + "\n".join(lines) + "\n"
        out = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    else:
        out = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{page.name}:{line} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"


# ---------------------------------------------------------------------------
# pages whose examples run one after another in one empty folder (issue 11)

#: pages read top to bottom: their ```console and ```python blocks run in order, in one
#: empty folder holding a copy of the repository's examples/, as one shell session (a
#: variable set in one block is seen by the next). A page starts with its own set-up
#: block (`python examples/quickstart.py .`, or a script of its own). Conventions:
#: `<!-- not run: why -->` before a block skips it (only for what this machine cannot
#: do: a network service, installing system packages); `<!-- file: NAME -->` before a
#: block means the reader saves it as NAME; `<!-- needs: MODULE -->` runs a block only
#: where that optional package is installed (tests/integration runs them); a `$` line
#: whose comment says `# exit N` must exit with N (a check that is shown failing)
RUN_IN_ORDER = [DOCS / "audit.md", DOCS / "diagrams.md", DOCS / "models.md", DOCS / "concepts.md",
                DOCS / "integrity.md", DOCS / "interop.md", DOCS / "secrets.md"]

_EOF = "LINEAGE_DOC_EOF"


def _page_blocks(page: Path) -> list[tuple[str, str, int, str | None]]:
    """``(language, code, line, marker)`` of every fenced block of a page, with the
    runner's HTML comment among those just above it (or None); other comments (such
    as `<!-- reference-verifier -->`, which other tests look for) may sit between."""
    text = page.read_text(encoding="utf-8")
    found = []
    for m in re.finditer(r"^( *)```([a-z]*)\n(.*?)^\1```", text, flags=re.S | re.M):  # in a list item too
        marker = None
        for above in reversed(text[: m.start()].rstrip().splitlines()):
            above = above.strip()
            if not above.startswith("<!--"):
                break
            if re.match(r"<!-- (not run|file:|needs:)", above):
                marker = above
                break
        found.append((m.group(2), textwrap.dedent(m.group(3)), text[: m.start()].count("\n") + 1, marker))
    return found


def _console_script(code: str) -> str:
    """The ``$`` lines of a console block as shell; a line expected to fail checks its code."""
    out = []
    for ln in code.splitlines():
        if not ln.startswith("$ "):
            continue
        cmd = ln[2:]
        expected = re.search(r"#\s*exit (\d+)", cmd)
        if expected is None:
            out.append(cmd)
        else:
            code_ = expected.group(1)
            out.append(f"set +e\n{cmd}\nrc=$?\nset -e\n"
                       f"[ \"$rc\" = {code_} ] || {{ echo \"expected exit {code_}, got $rc: {cmd!s}\" | head -c 300 >&2; exit 1; }}")
    return "\n".join(out)


def _needs(marker: str | None) -> str | None:
    """The optional package a block needs (``<!-- needs: mlflow -->``), or None."""
    m = re.match(r"<!-- needs: ([\w.]+) -->", marker or "")
    return m.group(1) if m else None


def _page_script(page: Path, *, optional: bool = True) -> str:
    """The whole page as one shell script, each block announced on stderr. A block that
    needs an optional package this Python lacks is left out, unless ``optional`` is
    False (then it runs, and fails if the package is missing)."""
    parts = ["set -e"]
    for lang, code, line, marker in _page_blocks(page):
        if marker is not None and marker.startswith("<!-- not run"):
            continue
        need = _needs(marker)
        if need and optional and importlib.util.find_spec(need) is None:
            parts.append(f"echo '>>> {page.name}:{line} left out: needs {need}' >&2")
            continue
        file = re.match(r"<!-- file: (\S+) -->", marker or "")
        if file:
            parts.append(f"echo '>>> {page.name}:{line} (saved as {file.group(1)})' >&2")
            parts.append(f"cat > {file.group(1)} <<'{_EOF}'\n{code}{_EOF}")
        elif lang == "console":
            parts.append(f"echo '>>> {page.name}:{line}' >&2")
            parts.append(_console_script(code))
        elif lang == "python":
            parts.append(f"echo '>>> {page.name}:{line}' >&2")
            parts.append(f"python - <<'{_EOF}'\n{code}{_EOF}")
    return "\n".join(parts) + "\n"


def run_page_in_order(page: Path, tmp_path: Path, *, optional: bool = True) -> None:
    """Run a page's examples in order in an empty folder beside a copy of examples/
    (as a reader with git set up: commits get an author); fails naming the block."""
    if shutil.which("lineage", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("the `lineage` command is not installed next to this Python")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(ROOT / "examples", work / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**_example_env(tmp_path), "GIT_AUTHOR_NAME": "Docs Reader", "GIT_AUTHOR_EMAIL": "reader@example.com",
           "GIT_COMMITTER_NAME": "Docs Reader", "GIT_COMMITTER_EMAIL": "reader@example.com"}
    out = subprocess.run(["bash", "-c", _page_script(page, optional=optional)], cwd=work, env=env,
                         capture_output=True, text=True, timeout=600)
    blocks = [ln for ln in out.stderr.splitlines() if ln.startswith(">>> ")]
    where = blocks[-1][4:] if blocks else page.name
    if out.returncode != 0 and "needs Graphviz's `dot` program" in out.stderr:
        require_program("dot")  # (a page that draws: skipped outside CI, where dot may be missing)
    assert out.returncode == 0, f"{where} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"


@pytest.mark.parametrize("page", RUN_IN_ORDER, ids=lambda p: p.name)
def test_every_example_of_a_page_runs_in_order(tmp_path: Path, page: Path) -> None:
    run_page_in_order(page, tmp_path)


#: the languages of blocks that show something rather than run it
_SHOWN = {"text", "yaml", "json", "mermaid", "toml", "sql", "bash", "ini", "diff", "html"}


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_no_example_escapes_the_runner(page: Path) -> None:
    """A block that looks like commands to type is run, or says why it cannot be:
    an unlabelled block of `lineage …` lines would otherwise go untested."""
    if page.name == "cli.md":
        return  # generated from --help, checked by test_cli_reference_is_up_to_date
    run = page in RUN_PAGES or page in RUN_IN_ORDER
    loose = []
    for lang, code, line, marker in _page_blocks(page):
        if marker is not None and marker.startswith("<!-- not run"):
            continue
        if lang in ("console", "python"):
            if not run:
                loose.append(f"{page.name}:{line} ({lang} on a page that is not run)")
        elif lang not in _SHOWN and re.search(r"^(\$ )?([A-Z_]+=\S* )*(lineage|python) ", code, flags=re.M):
            loose.append(f"{page.name}:{line} (unlabelled commands: make it ```console)")
    assert not loose, loose
