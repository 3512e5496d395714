"""What every import shares: gather nodes, edges and rows in memory, drop what the store
already holds, and write the rest as one ledger event, with the import itself recorded.

An import is all or nothing: the reader (MLflow, DVC, OpenLineage, PROV) builds an
`ImportBatch` completely before anything is written, so a bad record found halfway
leaves the store untouched; `ImportBatch.commit` then writes it, invisible until
whole (DESIGN.md §2): the import's event (its nodes, edges, small row sets) and one
event per run table written in bulk, all committed together. A large import's bulk
rows are loaded beforehand as invisible batches in short transactions (SQLite,
lineage/store/bulk.py), so the write lock is never held for the whole import.

Idempotence comes from identities that do not depend on when the import ran: content
digests, foreign digests (`foreign_dataset_id`), and run ids derived from the other
tool's run id (`foreign_run_hex`). A second import of the same history finds every
node present and writes nothing, not even an import activity.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import Edge, Node, canonical_json, iso_of_us, make_id, new_uuid7_hex, now_iso
from ..store import Store

#: experiment of the activities that record imports (kept apart from the user's runs)
IMPORT_EXPERIMENT = "lineage.import"

#: tables whose rows belong to a run (first column); dropped with a run already stored
_RUN_TABLES = ("params", "tags", "metrics", "run_states")

#: tables written with `Store.write_bulk` when an import brings more than _BULK_MIN rows
#: (on SQLite loaded as invisible batches when they total more than bulk.SMALL_ROWS)
_BULK_TABLES = ("metrics", "params", "tags", "run_states")
_BULK_MIN = 1000


def foreign_dataset_id(algorithm: str, digest: str) -> str:
    """The id of data known only by another tool's digest (DVC's MD5, MLflow's dataset
    digest): ``dataset:`` + SHA-256 of ``"ALGORITHM:DIGEST"``, so each (algorithm,
    digest) pair always names the same node and never collides with a content id."""
    return make_id("dataset", hashlib.sha256(f"{algorithm.lower()}:{digest.strip().lower()}".encode()).hexdigest())


def foreign_run_hex(tool: str, foreign_id: str, started_ms: int | None) -> str:
    """A run id for a run another tool recorded, the same on every import.

    A UUIDv7 (DESIGN.md §1: runs sort by time) whose time field is the run's start in
    milliseconds and whose remaining bits are SHA-256 of ``"TOOL:ID"``: deterministic,
    so re-importing finds the run; time-sortable among our own runs.
    """
    ms = max(int(started_ms or 0), 0) & ((1 << 48) - 1)
    h = int.from_bytes(hashlib.sha256(f"{tool}:{foreign_id}".encode()).digest()[:10], "big")
    rand_a = h & 0xFFF
    rand_b = (h >> 12) & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return f"{value:032x}"


def ms_to_iso(ms: int | float | None) -> str | None:
    """Milliseconds since the epoch (MLflow's times) as ISO-8601 UTC with microseconds,
    lineage's form (``2026-01-01T00:00:00.123000Z``). Formatted by hand: an import
    formats one per metric value, and datetime's strftime was a tenth of the import."""
    if ms is None:
        return None
    return iso_of_us(round(float(ms) * 1000))


#: `ms_to_iso` remembering its answers: the values of a metric history share their
#: times (MLflow's log_batch stamps a whole batch with one), so each is formatted once
ms_to_iso_cached = functools.lru_cache(maxsize=65536)(ms_to_iso)


@dataclass
class ImportResult:
    """What an import wrote: ``counts`` of new nodes per kind and of new rows per table,
    the ``activity`` (the run node recording the import) and its ledger ``event``; both
    None when there was nothing new."""

    tool: str
    source: str
    counts: dict[str, int] = field(default_factory=dict)
    activity: str | None = None
    event: int | None = None
    skipped: int = 0

    @property
    def changed(self) -> bool:
        return self.event is not None

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "source": self.source, "activity": self.activity, "event": self.event,
                "counts": dict(self.counts), "skipped": self.skipped}


class ImportBatch:
    """Everything one import will write, kept in memory until `commit`.

    ``add_node`` / ``add_edge`` / ``add_rows`` collect; nothing touches the store's
    tables until `commit`, which writes what is new in one transaction and one event.
    """

    def __init__(self, store: Store, *, tool: str, source: str, details: Mapping[str, Any] | None = None) -> None:
        self.store = store
        self.tool = tool
        self.source = source
        self.details = dict(details or {})
        self.nodes: dict[str, Node] = {}
        self.edges: dict[Edge, None] = {}
        self.rows: dict[str, list[Sequence[Any]]] = {}
        self.aliases: dict[tuple[str, str], None] = {}
        #: what changed in the other tool since the last import that no node or row
        #: shows (a version registered for a model already here): kept in the import
        #: activity's ``attrs["import"]["registry"]``
        self.changes: list[dict[str, Any]] = []
        #: name -> ({label: (model id, reason)}, owner): labels the other tool puts now
        self.labels: dict[str, tuple[dict[str, tuple[str, str]], str]] = {}
        #: (run, tag key) -> (value now, value when the tag is absent): `tag_now`
        self.tags_now: dict[tuple[str, str], tuple[str, str | None]] = {}
        #: records the other tool has not finished (an OpenLineage START whose COMPLETE
        #: is in a later file): kept in the import activity's ``attrs["import"]["pending"]``,
        #: where the next import finds them (`pending_records`)
        self.pending: list[dict[str, Any]] = []
        self._known: dict[str, bool] = {}
        self._who: tuple[str, dict[str, Any]] | None = None
        #: node id -> its attrs as canonical JSON, encoded before the write lock is taken
        self._encoded: dict[str, str] = {}

    # -- collecting ---------------------------------------------------------

    def stored(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` the store holds already (asked once per id, in chunks)."""
        ask = [i for i in dict.fromkeys(ids) if i not in self._known]
        if ask:
            found = self.store.get_nodes(ask)
            for i in ask:
                self._known[i] = i in found
        return {i for i in ids if self._known.get(i)}

    def has(self, node_id: str) -> bool:
        """True when the node is in this batch or in the store."""
        return node_id in self.nodes or bool(self.stored([node_id]))

    def add_node(self, node: Node, *, aliases: Iterable[str] = ()) -> bool:
        """Collect a node (the first one given for an id wins); returns True when it is
        new to the store. Names in ``aliases`` (and a differing name of a stored node)
        are recorded as aliases."""
        names = [a for a in aliases if a]
        if node.id in self.nodes:
            for a in names:
                self.aliases[(node.id, a)] = None
            return True
        if self.stored([node.id]):
            if node.name:
                names.insert(0, node.name)
            for a in names:
                self.aliases[(node.id, a)] = None
            return False
        self.nodes[node.id] = node
        for a in names:
            if a != node.name:
                self.aliases[(node.id, a)] = None
        return True

    def add_edge(self, src: str, dst: str, rel: str, role: str | None = None) -> None:
        self.edges[Edge(src, dst, rel, role)] = None

    def add_rows(self, table: str, rows: Iterable[Sequence[Any]]) -> None:
        """Rows of a recorded table (RECORD_TABLES order). Rows of a run table
        (params, tags, metrics, run_states) are kept only when their run is new."""
        self.rows.setdefault(table, []).extend(rows)

    def tag_now(self, run: str, key: str, value: str, *, absent: str | None = None) -> None:
        """The value the other tool gives tag ``key`` of ``run`` now, for a run the
        store may hold already. Its other rows are history written once (`add_rows`
        drops them for a stored run), but a tag can change afterwards (MLflow's delete
        and restore of a run are a tag here, `tracking.LIFECYCLE_TAG`): at `commit`, a
        stored run whose latest value differs (no tag reads as ``absent``) gets a new
        tag row in the import's event; a new run gets its tag rows from `add_rows`."""
        self.tags_now[(run, key)] = (value, absent)

    def _tag_changes(self) -> list[Sequence[Any]]:
        """The tag rows `tag_now` asks for; read under the write lock, so two imports
        racing record a change once."""
        from ..query import rows as query_rows

        stored = self.stored([run for run, _ in self.tags_now])
        by_key: dict[str, list[str]] = {}
        for run, key in self.tags_now:
            if run in stored:
                by_key.setdefault(key, []).append(run)
        out: list[Sequence[Any]] = []
        for key, runs in sorted(by_key.items()):
            recorded = query_rows.tag_values(self.store, runs, key)
            for run in runs:
                value, absent = self.tags_now[(run, key)]
                if recorded.get(run, absent) != value:
                    out.append((run, key, value))
        return out

    def set_labels(self, name: str, labels: Mapping[str, tuple[str, str]], *, owner: str) -> None:
        """The promotion labels the other tool puts on versions of ``name`` now:
        ``{label: (model id, reason)}``. At `commit`, each label whose holder differs
        from what the last import from ``owner`` recorded is moved (a ``promote`` row,
        ending the previous holder), and a label that import put and the tool no longer
        sets is taken off (``unpromote``); labels people set here are left alone unless
        the tool changes them."""
        self.labels[name] = (dict(labels), owner)

    def _label_rows(self, who: str, at: str) -> tuple[list[Sequence[Any]], list[dict[str, Any]]]:
        """Promotion rows and change records for `set_labels`, read under the write lock."""
        rows: list[Sequence[Any]] = []
        changes: list[dict[str, Any]] = []
        for name, (wanted, owner) in sorted(self.labels.items()):
            holders = self.store.labels_of(name)
            recorded: dict[str, str | None] = {}  # label -> holder as the owner's last import saw it
            for r in self.store.promotion_rows(name):
                if (r["reason"] or "").startswith(f"{owner}:") and r["action"] in ("promote", "unpromote"):
                    recorded[r["label"]] = r["model"] if r["action"] == "promote" else None
            for label in sorted(set(wanted) | set(recorded)):
                now = wanted.get(label)
                model = now[0] if now else None
                if label in recorded and recorded[label] == model:
                    continue  # unchanged in the tool since the last import
                if label not in recorded and now is None:
                    continue
                holder = holders.get(label)
                if now is not None:
                    if holder is not None and holder != model:
                        rows.append((name, label, holder, "end", f"{owner}: label moved to {model}", who, at))
                    rows.append((name, label, model, "promote", f"{owner}: {now[1]}", who, at))
                    changes.append({"change": "label", "name": name, "label": label, "model": model, "previous": holder})
                elif holder is not None and holder == recorded.get(label):
                    rows.append((name, label, holder, "unpromote", f"{owner}: {label} is no longer set there", who, at))
                    changes.append({"change": "label removed", "name": name, "label": label, "model": holder})
        return rows, changes

    def _implicit(self, e: Edge) -> bool:
        """True for a prediction's derivation from its own model: the store keeps
        that link as the prediction's ``model`` column, not as an edge."""
        if e.rel != "was_derived_from" or not e.src.startswith("prediction:"):
            return False
        node = self.nodes.get(e.src) or self.store.get_node(e.src)
        return node is not None and node.attrs.get("model") == e.dst

    # -- writing ------------------------------------------------------------

    def commit(self) -> ImportResult:
        """Write what is new as one event with an import activity; returns the counts.

        All or nothing, checked against a store no other writer changes meanwhile
        (existence is read again under the write lock); an exception leaves nothing
        written. A large import (more than `bulk.SMALL_ROWS` rows of run tables to
        write in bulk: metric histories, params, tags, run states) on SQLite first
        loads those rows as invisible batches in short transactions, then writes
        its nodes and event and publishes the batches in one short transaction
        (`_commit_staged`): other writers never wait on the whole import (issue 8).
        On PostgreSQL those rows are loaded as batches in one transaction without
        the append lock, which the same transaction takes only to publish them. A
        smaller import is one transaction.
        """
        if not self.store.in_transaction:
            staged = self._commit_staged()
            if staged is not None:
                return staged
        with self.store.transaction():
            self._known.clear()  # re-check under the write lock
            return self._write(self.stored(self.nodes), make_id("run", new_uuid7_hex()), None)

    def _bulky(self, present: set[str]) -> dict[str, list[Sequence[Any]]]:
        """The rows of the tables written in bulk (`_BULK_TABLES` with more than
        `_BULK_MIN` rows), given which nodes the store holds (``present``)."""
        new_ids = {i for i in self.nodes if i not in present}
        out = {}
        for table in _BULK_TABLES:
            kept = [r for r in self.rows.get(table, ()) if table not in _RUN_TABLES or r[0] in new_ids]
            if len(kept) > _BULK_MIN:
                out[table] = kept
        return out

    def _commit_staged(self) -> ImportResult | None:
        """`commit` for a large import (see there); None when the import is
        small, or when what the store holds changed between loading and publishing
        (another import of the same history): then the caller writes it in one
        transaction, having removed the batches."""
        from ..store import bulk as store_bulk

        self._known.clear()
        present = self.stored(self.nodes)
        bulky = self._bulky(present)
        self._agent()
        self._encoded = {i: canonical_json(dict(n.attrs)) for i, n in self.nodes.items() if i not in present}
        if sum(map(len, bulky.values())) <= store_bulk.SMALL_ROWS:
            return None
        activity = make_id("run", new_uuid7_hex())
        writes = [("import_rows", {"activity": activity}, table, rows) for table, rows in bulky.items()]
        with store_bulk.staged(self.store, writes) as publish:
            try:
                with self.store.transaction():  # short: the import's event, then the batches' publish
                    self._known.clear()  # re-check under the write lock
                    if self.stored(self.nodes) != present:
                        raise _Changed
                    return self._write(present, activity, publish, bulky)
            except _Changed:
                return None

    def _agent(self) -> tuple[str, dict[str, Any]]:
        """Who imports (`capture.capture_agent`: it runs git), found once per import,
        before the write lock is taken."""
        if self._who is None:
            from .. import capture

            self._who = capture.capture_agent()
        return self._who

    def _write(self, present: set[str], activity: str, publish: Callable[[], list[int]] | None,
               staged: Mapping[str, list[Sequence[Any]]] | None = None) -> ImportResult:
        """Write what is new, inside the caller's write transaction, given which
        nodes the store holds (``present``); ``publish`` publishes the ``staged`` rows
        of the bulk tables (`_bulky` for ``present``), else those are written here too."""
        from .. import tracking

        result = ImportResult(self.tool, self.source)
        new_nodes = [n for i, n in self.nodes.items() if i not in present]
        result.skipped = len(present)
        new_ids = {n.id for n in new_nodes}
        rows: dict[str, list[Sequence[Any]]] = {}
        for table, table_rows in self.rows.items():
            if staged and table in staged:  # (picked already, before the lock was taken)
                rows[table] = staged[table]
                continue
            kept = [r for r in table_rows if table not in _RUN_TABLES or r[0] in new_ids]
            if kept:
                rows[table] = kept
        candidates = [e for e in self.edges if not self._implicit(e)]
        known = self.store.existing_edges(candidates)  # (a statement per 200 edges, not one per edge)
        edges = [e for e in candidates if e not in known]
        aliases: list[Sequence[Any]] = [(node, name) for node, name in self.aliases
                   if node not in new_ids and name not in self.store.aliases(node)
                   and (self.store.get_node(node) or Node("", "")).name != name]
        aliases += [(node, name) for node, name in self.aliases if node in new_ids and self.nodes[node].name != name]
        aliases = list(dict.fromkeys(map(tuple, aliases)))
        agent_hex, who_attrs = self._agent()
        who = who_attrs.get("name") or who_attrs.get("user") or "unknown"
        promotions, label_changes = self._label_rows(who, now_iso())
        changes = self.changes + label_changes
        retagged = self._tag_changes()
        if (not new_nodes and not edges and not aliases and not any(rows.values()) and not promotions and not changes
                and not retagged and not self.pending):
            return result
        for n in new_nodes:
            result.counts[n.kind] = result.counts.get(n.kind, 0) + 1
        if edges:
            result.counts["edges"] = len(edges)
        for table in ("params", "metrics", "tags"):
            if rows.get(table) or (table == "tags" and retagged):
                result.counts[table] = len(rows.get(table, ())) + (len(retagged) if table == "tags" else 0)
        result.counts.update(_lifecycle_counts(rows.get("tags", ()), new_ids, retagged))
        if promotions:
            result.counts["promotions"] = len(promotions)
        for kind in ("experiment", "registered_model"):  # (recorded, or tags changed since the last import)
            touched = {r[1] for r in rows.get("names", ()) if r[0] == kind}
            if touched:
                result.counts[f"{kind}s"] = len(touched)
        if changes:
            result.counts["registry_changes"] = len(changes)
        if self.pending:
            result.counts["pending"] = len(self.pending)
        agent_id = make_id("agent", agent_hex)
        if agent_id not in new_ids:  # (else this batch writes it: the importer is in the history)
            agent_id = tracking.ensure_agent(self.store).id
        started = now_iso()
        details: dict[str, Any] = {**self.details, **({"registry": changes} if changes else {}),
                                   **({"pending": self.pending} if self.pending else {})}
        attrs = {"experiment": IMPORT_EXPERIMENT, "import": {"tool": self.tool, "source": self.source,
                                                               "counts": dict(result.counts), **details},
                 "started_at": started}
        node_rows: list[Sequence[Any]] = [(activity, "run", f"import {self.tool}", canonical_json(attrs), started)]
        encoded = self._encoded
        node_rows += [(n.id, n.kind, n.name, encoded.get(n.id) or canonical_json(dict(n.attrs)), n.created_at or started)
                      for n in new_nodes if n.kind != "prediction"]
        rows["nodes"] = node_rows
        preds = [n for n in new_nodes if n.kind == "prediction"]
        if preds:  # predictions live in their own table; their model link is a column
            rows["predictions"] = [(n.id, n.attrs.get("model"), n.attrs.get("input_digest"),
                                    canonical_json(n.attrs.get("output")), n.attrs.get("score"),
                                    n.attrs.get("request_id"), n.created_at or started) for n in preds]
        edge_rows: list[Sequence[Any]] = [(activity, agent_id, "was_associated_with", None)] + [(e.src, e.dst, e.rel, e.role) for e in edges]
        rows["edges"] = edge_rows
        if aliases:
            rows["aliases"] = aliases
        if promotions:
            rows["promotions"] = promotions
        # The many rows (metric histories, params, …) are written in bulk (`_bulky`),
        # encoded a batch column by column (~10x cheaper per row than `write`): each
        # table one more event, naming the import activity, after the import's own.
        bulky = {t: rows.pop(t) for t in _BULK_TABLES if len(rows.get(t, ())) > _BULK_MIN}
        if retagged:  # (a few rows for runs already stored: in the import's own event, never a batch)
            rows["tags"] = [*rows.get("tags", ()), *retagged]
        rows["run_states"] = [(activity, "running", started, None, None, None), *rows.get("run_states", ()),
                              (activity, "finished", now_iso(), 0, None, None)]
        payload = {"tool": self.tool, "source": self.source, "activity": activity, "counts": result.counts}
        result.event = self.store.write("import", payload, rows)
        if publish is not None:  # (loaded beforehand as invisible batches: published now)
            publish()
        else:
            for table, table_rows in bulky.items():
                self.store.write_bulk("import_rows", {"activity": activity}, table, table_rows)
        result.activity = activity
        return result


def pending_records(store: Store, tool: str) -> list[Any]:
    """Every record an earlier import of ``tool`` left pending (`ImportBatch.pending`),
    oldest import first. Read from the import activities (ledger events like any
    other, on every backend), so no table of its own; cost grows with the imports of
    that tool, not with the store."""
    out: list[Any] = []
    for node in reversed(store.nodes(kind="run", name=f"import {tool}")):
        imp = node.attrs.get("import")
        if node.attrs.get("experiment") == IMPORT_EXPERIMENT and isinstance(imp, Mapping) and imp.get("tool") == tool:
            out.extend(imp.get("pending") or ())
    return out


def _lifecycle_counts(new_tags: Iterable[Sequence[Any]], new_runs: set[str],
                      retagged: Sequence[Sequence[Any]]) -> dict[str, int]:
    """How many runs an import brings that were deleted in the other tool
    (``runs_deleted``: they are in the import, marked, `tracking.LIFECYCLE_TAG`), and
    how many stored runs it marks deleted or restored (``runs_marked_deleted``,
    ``runs_restored``): what an import's summary says beside its run count, as a run
    hidden from MLflow's views is easy to miss."""
    from ..tracking import LIFECYCLE_TAG

    deleted = {r[0] for r in new_tags if r[1] == LIFECYCLE_TAG and r[2] == "deleted" and r[0] in new_runs}
    marked = [r for r in retagged if r[1] == LIFECYCLE_TAG]
    counts = {"runs_deleted": len(deleted), "runs_marked_deleted": sum(r[2] == "deleted" for r in marked),
              "runs_restored": sum(r[2] != "deleted" for r in marked)}
    return {k: n for k, n in counts.items() if n}


class _Changed(Exception):
    """What the store holds changed between loading an import's batches and
    publishing them: written again in one transaction instead."""
