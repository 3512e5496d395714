"""Check what a report relies on: the events behind its facts, the chain, the files.

Three checks, each with a stated scope:

1. **Facts.** Every ledger event that recorded something the report shows (a node, an
   edge, a param, a tag, a metric, a run state, an annotation, a label change of the
   model's name, an importance, an erasure, the predictions it counts, a prediction's
   kept inputs) is re-checked on its own: its rows still hash to what it committed to,
   its payload to its digest, and its hash still follows from its predecessor's.
   Cheap, and it catches an edit to exactly the records the report relies on. An
   event after the checkpoint is left to check 2, which replays it whole in the same
   snapshot (and is checked here too only when that replay fails, to name it).
2. **Chain.** `Store.verify(since_checkpoint=True)`: the whole ledger from the last
   recorded full verification (`lineage verify --record`) to the head; from event 1
   when no checkpoint exists. The checkpoint's own claim is checked too: the event it
   vouches for must still carry the hash it recorded.
3. **Files.** Each model artifact and dataset file is re-hashed (through the stat
   cache: unchanged size, mtime and inode are trusted) and compared with its digest.

The head hash and event count are printed so anyone can later run
``lineage verify --head HASH`` to check that this history is unchanged.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from ..store import Store, VerifyReport, chain_hash
from .facts import Agents, Facts, FileTarget

#: prediction rows re-hashed per report (about 0.3 s); events beyond it are left to the
#: chain check, and the report says how many were checked
PREDICTION_ROW_BUDGET = 100_000


class EventChecks:
    """Events read and checked once for several reports: an inventory's 50 models
    share their agents', environments' and names' events, which were re-read and
    re-hashed once per model (event 1 177 times on the benchmark's 1M store)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._events: dict[int, Any] = {}
        self._why: dict[int, str | None] = {}

    def event(self, seq: int) -> Any:
        if seq not in self._events:
            self._events[seq] = self.store.event(seq)
        return self._events[seq]

    def why(self, seq: int) -> str | None:
        """`check_event`'s answer for ``seq``, worked out once."""
        if seq not in self._why:
            self._why[seq] = check_event(self.store, seq, self)
        return self._why[seq]


def check_event(store: Store, seq: int, checks: EventChecks | None = None) -> str | None:
    """None when event ``seq`` is intact (rows, payload, link to its predecessor),
    else what is wrong with it. ``checks``: where events already read are kept."""
    event = checks.event if checks is not None else store.event
    ev = event(seq)
    if ev is None:
        return f"event {seq} is missing from the ledger"
    if not store.check_event_rows(seq):
        return f"event {seq} ({ev.type}): its recorded rows or payload no longer match what it committed to"
    prev = event(seq - 1) if seq > 1 else None
    prev_hash = prev.hash if prev is not None else "0" * 64
    if seq > 1 and prev is None:
        return f"event {seq - 1}, the predecessor of event {seq}, is missing from the ledger"
    if chain_hash(prev_hash, ev.type, ev.payload_digest, ev.rows_digest) != ev.hash:
        return f"event {seq} ({ev.type}): its hash does not follow from event {seq - 1}'s"
    return None


def check_files(targets: list[FileTarget]) -> list[dict[str, Any]]:
    """Each target re-hashed: status ``intact``, ``changed``, ``missing``, ``unreadable``
    or ``not checked`` (nothing on disk to check); `check` turns a ``changed`` file
    that holds another recorded version into ``superseded``.

    Read whole, never through the stat cache: the cache is outside the chain, and one
    UPDATE of it made a swapped model file pass the audit as intact. What a report
    vouches for rests on the bytes, as `verify` rests on the chain."""
    from ..errors import InvalidInputError
    from ..hashing import hash_file, hash_tree

    out = []
    for t in targets:
        row: dict[str, Any] = {"id": t.node_id, "kind": t.kind, "name": t.name, "path": t.path,
                               "expected": t.expected, "actual": None, "status": "not checked", "note": t.note}
        if t.path is not None:
            if not os.path.exists(t.path):
                row["status"] = "missing"
            else:
                try:
                    if os.path.isdir(t.path):
                        actual = hash_tree(t.path)[0]
                    else:
                        actual = hash_file(t.path).digest
                except (InvalidInputError, OSError) as exc:
                    row["status"], row["note"] = "unreadable", str(exc)
                else:
                    row["actual"] = actual
                    row["status"] = "intact" if actual == t.expected else "changed"
        out.append(row)
    return out


def _name_other_versions(store: Store, rows: list[dict[str, Any]]) -> None:
    """A data file that now holds another recorded version (a training file a later
    run rewrote) is ``superseded``, with the version named: the record is intact and
    nothing was tampered with, but the bytes recorded here are no longer at that path
    to be re-read. "changed" would send an auditor looking for tampering that is not
    there. Only for datasets, which live in the user's folders: a model or artifact
    file is the store's own copy, named by its digest, and any other bytes there
    were put there behind the store's back, even another recorded version's."""
    from ..model import version_number

    for row in rows:
        if row["status"] != "changed" or not row["actual"] or row["kind"] != "dataset":
            continue
        other = store.get_node(f"{row['kind']}:{row['actual']}")
        if other is None:
            continue
        number = version_number(store.history(other.name, kind=other.kind), other.id) if other.name else None
        which = f"{other.name}@{number}" if number is not None else other.id
        row["status"] = "superseded"
        row["note"] = (f"now holds {which} ({other.id[:20]}…, recorded {_when(other.created_at)}), another recorded "
                       "version: the bytes recorded here are not at this path to re-check")


def check(store: Store, facts: Facts, *, chain: VerifyReport | None = None, files: bool = True,
          checks: EventChecks | None = None) -> dict[str, Any]:
    """The integrity section of a report (JSON-ready); ``ok`` is false when any check failed.

    ``chain``: a verification already run in the same snapshot (an inventory verifies
    once for all models, inside one snapshot); ``checks``: the events already checked
    for other reports of the same run. Everything is read from one snapshot of the
    store, so a writer appending meanwhile never makes an honest record look tampered
    with.
    """
    with store.snapshot():
        # 2 first: the events it replays in this snapshot need no second check in 1
        if chain is None:
            chain = store.verify(since_checkpoint=True)
        return _check(store, facts, chain=chain, files=files, checks=checks or EventChecks(store))


def _check(store: Store, facts: Facts, *, chain: VerifyReport, files: bool,
           checks: EventChecks) -> dict[str, Any]:
    started = time.perf_counter()
    problems: list[str] = []

    # 1. the events behind the facts shown. Those after the checkpoint were replayed
    # whole by the chain check in this snapshot (rows, payload, link): re-hashing
    # them here was half of an audit of a model with a million predictions (1.9 s of
    # 5.9); they are checked one by one only when the replay failed, to say which.
    replayed_ok = chain.checked_from if chain.ok else None

    def why(seq: int) -> str | None:
        return None if replayed_ok is not None and seq > replayed_ok else checks.why(seq)

    per_table = {t: sorted(s) for t, s in facts.fact_events.items() if s}
    fact_seqs = sorted({s for seqs in per_table.values() for s in seqs})
    failed = []
    recorders: set[str] = set()
    for seq in fact_seqs:
        why_not = why(seq)
        if why_not:
            failed.append(seq)
            problems.append(why_not)
        ev = checks.event(seq)
        if ev is not None and ev.payload and ev.payload.get("actor"):
            recorders.add(str(ev.payload["actor"]))

    # predictions: their bulk events, all of them while the row budget lasts
    pred_total = len(facts.prediction_events)
    pred_rows_total = sum(facts.prediction_events.values())
    checked_pred, rows_checked = [], 0
    for seq, rows in sorted(facts.prediction_events.items()):
        if seq in fact_seqs:
            checked_pred.append(seq)
            rows_checked += rows
            continue
        if rows_checked + rows > PREDICTION_ROW_BUDGET and checked_pred:
            break
        why_not = why(seq)
        checked_pred.append(seq)
        rows_checked += rows
        if why_not:
            failed.append(seq)
            problems.append(why_not)

    # 2. the chain, from the last recorded full verification (`check` ran it)
    cp = store.last_checkpoint()
    checkpoint = None
    agents = Agents(store)
    if cp is not None and cp.payload is not None:
        through = int(cp.payload.get("verified_through", 0) or 0)
        base = store.event(through) if through else None
        matches = base is not None and base.hash == cp.payload.get("head")
        checkpoint = {
            "event": cp.seq,
            "at": cp.payload.get("at"),
            "by": agents.label(cp.payload.get("actor")),
            "verified_through": through,
            "head": cp.payload.get("head"),
            "matches": matches,
            "signature": _signature(cp.payload, cp.payload.get("actor"), recorders, agents),
        }
        sig: dict[str, Any] | None = checkpoint["signature"]  # type: ignore[assignment]
        if sig is not None and not sig["valid"] and "not installed" not in str(sig["problem"]):
            problems.append(f"the checkpoint of event {cp.seq} carries a signature that does not hold: {sig['problem']}")
        if not matches:
            problems.append(f"the checkpoint of event {cp.seq} vouches for event {through} with hash "
                            f"{str(cp.payload.get('head'))[:16]}…, which that event no longer carries: the history before it was rewritten")
    if not chain.ok:
        problems.extend(chain.problems[:10])
        if len(chain.problems) > 10:
            problems.append(f"… and {len(chain.problems) - 10} more chain problems")

    # 3. files
    file_rows = check_files(facts.files) if files else []
    _name_other_versions(store, file_rows)
    for f in file_rows:
        if f["status"] in ("missing", "changed", "unreadable"):
            what = {"missing": "is missing", "changed": "no longer matches its recorded digest",
                    "unreadable": "cannot be read"}[f["status"]]
            problems.append(f"{f['kind']} {f['name'] or f['id']}: the file {f['path']} {what}")

    events, head = store.head()
    head_event = store.event(events) if events else None
    head_at = head_event.payload.get("at") if head_event is not None and head_event.payload else None
    events_checked = len(fact_seqs) + len([s for s in checked_pred if s not in fact_seqs])
    bad_files = [f for f in file_rows if f["status"] in ("missing", "changed", "unreadable")]
    return {
        "summary": _sentence(events_checked, events, head_at, sorted(set(failed)), chain, bad_files, problems, len(file_rows),
                             [f for f in file_rows if f["status"] == "superseded"]),
        "ok": not problems,
        "problems": problems,
        "facts": {
            "ok": not failed,
            "events_checked": events_checked,
            "events": fact_seqs,
            "by_table": {t: len(s) for t, s in per_table.items()},
            "failed": sorted(set(failed)),
            "prediction_events_total": pred_total,
            "prediction_events_checked": len(checked_pred),
            "prediction_rows_total": pred_rows_total,
            "prediction_rows_checked": rows_checked,
        },
        "chain": {
            "ok": chain.ok,
            "verified_from": chain.checked_from,
            "events": chain.events,
            "first_bad": chain.first_bad,
            "problems": list(chain.problems[:10]),
            "checkpoint": checkpoint,
            "scope": ("full replay from event 1 (no checkpoint recorded)" if checkpoint is None and chain.checked_from == 0
                      else "full replay from event 1 (the checkpoint could not be used)" if chain.checked_from == 0
                      else f"the whole history of {chain.events} events: verified in full through event "
                           f"{chain.checked_from} by the checkpoint, nothing written since"
                      if chain.checked_from >= chain.events
                      else f"the whole history of {chain.events} events: events {chain.checked_from + 1} to {chain.events} "
                           f"replayed now, the {chain.checked_from} before them verified in full by the checkpoint"),
        },
        "head": {"hash": head, "events": events, "command": f"lineage verify --head {head}"},
        "files": file_rows,
        "files_checked": files,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _when(ts: Any) -> str:
    """``2026-12-01T14:02:11Z`` -> ``1 Dec 2026 14:02 UTC``."""
    from datetime import datetime

    try:
        dt = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return str(ts or "?")
    return f"{dt.day} {dt.strftime('%b %Y %H:%M')} UTC"


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def _sentence(checked: int, events: int, head_at: Any, failed: list[int], chain: VerifyReport,
              bad_files: list[dict[str, Any]], problems: list[str], n_files: int,
              moved_on: Sequence[dict[str, Any]] = ()) -> str:
    """The integrity result in one sentence a non-engineer can read."""
    if not problems:
        return (f"Every record behind this report was checked: {_n(checked, 'record')} (ledger events) up to "
                f"{_when(head_at)}, in a history of {events:,} events, and {_n(n_files, 'file')}; no changes found."
                + (f" {_n(len(moved_on), 'file')} now {'holds' if len(moved_on) == 1 else 'hold'} another recorded "
                   f"version ({', '.join(str(f['name'] or f['id']) for f in moved_on[:3])}), so the bytes recorded "
                   "here could not be re-read there." if moved_on else ""))
    bits = []
    if failed:
        bits.append(f"{_n(len(failed), 'record')} behind this report {'was' if len(failed) == 1 else 'were'} altered "
                    f"after {'it was' if len(failed) == 1 else 'they were'} written (ledger event{'s' if len(failed) > 1 else ''} "
                    f"{', '.join(map(str, failed[:5]))}{'…' if len(failed) > 5 else ''})")
    if not chain.ok and chain.first_bad not in failed:
        bits.append(f"the history fails its check from event {chain.first_bad}")
    if bad_files:
        bits.append(f"{_n(len(bad_files), 'file')} no longer {'matches' if len(bad_files) == 1 else 'match'} "
                    f"what was recorded ({', '.join(str(f['name'] or f['id']) for f in bad_files[:3])})")
    if not bits:
        bits.append(problems[0])
    text = "; ".join(bits)
    return f"Do not rely on this report as it stands: {text[0].lower()}{text[1:]}."


def _signature(payload: dict[str, Any], actor: Any, recorders: set[str], agents: Any) -> dict[str, Any] | None:
    """Whose key signed a checkpoint, whether the signature holds, and whether the
    account that recorded the checkpoint also recorded the facts of the report."""
    sig = payload.get("signature")
    if sig is None:
        return None
    from ..signing import check, checkpoint_message

    try:
        ok, why = check(sig, checkpoint_message(int(payload.get("verified_through") or 0), str(payload.get("head"))))
    except ImportError:
        ok, why = False, "not checked here: the `cryptography` package is not installed"
    except (TypeError, ValueError):
        ok, why = False, "the checkpoint's claim is not a number and a hash"
    same = str(actor) in recorders
    return {
        "fingerprint": sig.get("fingerprint") if isinstance(sig, dict) else None,
        "valid": ok,
        "problem": why or None,
        "signed_by_account": agents.label(actor),
        "same_account_as_recorder": same,
        "note": ("the checkpoint was recorded by the same account that recorded the facts of this report: the signature "
                 "shows the key holder vouched for this history, not that someone independent checked it"
                 if same else "the checkpoint was recorded by an account other than those that recorded the facts"),
    }
