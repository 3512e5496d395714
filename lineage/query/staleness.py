"""Staleness: recorded files that changed on disk, and what depends on them."""

from __future__ import annotations

import os

from ..errors import InvalidInputError
from ..model import Node, short_id
from ..store import Store
from ..store.files import project_root
from .closure import KIND_RANK, count_predictions, reachable_ids
from .results import Status


def status(store: Store) -> Status:
    """Recorded local datasets whose file (or directory) no longer matches its digest,
    and everything downstream of them: the datasets derived from them, the runs that
    read them, the models those runs trained, and those models' predictions (folded
    into one group per model). A missing file counts as changed.

    For each path only the newest record is compared (an older version of a file is
    expected to differ from the file now). Unchanged files cost one ``stat`` each,
    thanks to the store's stat cache.

    Parameters
    ----------
    store : Store
        The store to read; paths are resolved from its project root.

    Returns
    -------
    Status
        ``.ok``, ``.changed``, ``.affected``, ``.reasons``, ``.stale``.

    Examples
    --------
    >>> from lineage import query
    >>> query.status(store).ok
    True
    >>> Path("data/raw.csv").unlink()
    >>> st = query.status(store)
    >>> [(n.name, st.reasons[n.id]) for n in st.changed]
    [('raw', 'missing')]
    """
    from .. import hashing
    from ..tracking import local_file

    recorded: list[tuple[int, str, str, str, str | None]] = []
    # json_extract is SQLite's; PostgreSQL: (attrs::jsonb ->> 'abspath')
    for event, node_id, abspath, rel, fmt in store.conn.execute(
        "SELECT event, id, json_extract(attrs, '$.abspath'), json_extract(attrs, '$.path'), json_extract(attrs, '$.format') "
        "FROM nodes WHERE kind = 'dataset' AND json_extract(attrs, '$.abspath') IS NOT NULL"
    ):
        # the file in this project (a copied or moved one checks its own), by its relative path
        recorded.append((event, local_file(store, {"abspath": abspath, "path": rel}) or abspath, node_id, fmt, None))
    # the same bytes added from a second path are one node with that path as an alias:
    # that file is watched too, once it exists (an alias may be a plain name instead)
    root = project_root(store)
    for event, node_id, alias, fmt in store.conn.execute(
        "SELECT a.event, a.node, a.name, json_extract(n.attrs, '$.format') FROM aliases a "
        "JOIN nodes n ON n.id = a.node WHERE n.kind = 'dataset' AND json_extract(n.attrs, '$.abspath') IS NOT NULL"
    ):
        path = os.path.join(root, alias) if not os.path.isabs(alias) else alias
        if os.path.exists(path):
            recorded.append((event, path, node_id, fmt, alias))
    latest: dict[str, tuple[str, str, str | None]] = {}
    for _, where, node_id, fmt, alias in sorted(recorded, key=lambda r: r[0]):  # the newest record of each file
        latest[where] = (node_id, fmt, alias)
    cache = store.stat_cache
    reasons: dict[str, str] = {}
    for abspath, (node_id, fmt, alias) in latest.items():
        want = node_id.split(":", 1)[1]
        as_alias = f" (as {alias})" if alias else ""
        if not os.path.exists(abspath):
            reasons[node_id] = "missing"
            continue
        try:
            if os.path.isdir(abspath):
                got = hashing.hash_tree(abspath, cache=cache)[0] if fmt == "directory" else None
            else:
                got = hashing.hash_file(abspath, cache=cache).digest if fmt != "directory" else None
        except InvalidInputError:
            reasons[node_id] = "unreadable" + as_alias
            continue
        if got != want:
            # reverted to bytes recorded before (a `git checkout` of old data): say
            # which version, so "modified" does not read as something new
            earlier = store.get_node(f"dataset:{got}") if got else None
            again = f" (back to {short_id(earlier.id)}, recorded before)" if earlier is not None else ""
            reasons[node_id] = "modified" + as_alias + again
    changed_nodes = store.get_nodes(list(reasons))
    changed = sorted(changed_nodes.values(), key=lambda n: (n.name or "", n.id))
    affected: dict[str, Node] = {}
    if changed:
        seeds = [n.id for n in changed]
        ids = reachable_ids(store, seeds, upstream=False)
        nodes = store.get_nodes([i for i in ids if i not in reasons])
        for i, node in nodes.items():
            if node.kind in ("agent",):
                continue
            affected[i] = node
        for model, count in sorted(count_predictions(store, [i for i in nodes if i.startswith("model:")]).items()):
            listed = sum(1 for x in nodes.values() if x.kind == "prediction" and x.attrs.get("model") == model)
            n = count - listed
            if n > 0:
                gid = f"group:prediction:{n}"
                if gid in affected:
                    gid = f"{gid}:{model.split(':', 1)[1][:12]}"
                affected[gid] = Node(gid, "group", f"{n:,} predictions", {"of": "prediction", "count": n, "model": model})
    stale = {i: "upstream changed" for i in affected}
    for i, node in _superseded_downstream(store, set(affected) | set(reasons)).items():
        affected[i] = node
        stale[i] = "superseded"
    ordered = sorted(affected.values(), key=lambda n: (KIND_RANK.get(n.kind, 99), n.name or "", n.id))
    return Status(changed, ordered, reasons, stale)


def _made_by_a_labelled_model(store: Store, run: str, labelled: set[str], old: set[str]) -> bool:
    """Whether ``run`` used a labelled model version and no older version of anything else."""
    used = [dst for dst, _ in store.used_by(run)]
    return any(u in labelled for u in used) and not any(u in old and u not in labelled for u in used)


def _superseded_downstream(store: Store, skip: set[str]) -> dict[str, Node]:
    """The newest versions that were built from an older version of something: a
    dataset or model downstream of a version that has a newer one (a re-added
    ``raw.csv``, a retrained ``model.pkl``), which is itself the newest of its name.
    Their predictions are counted as one group per model. Old versions are history,
    not stale: only what is current but was not rebuilt gets listed."""
    newest: dict[tuple[str, str], str] = {}
    old: set[str] = set()
    for node_id, kind, name in store.conn.execute(
        "SELECT id, kind, name FROM nodes WHERE kind IN ('dataset', 'model', 'artifact') AND name IS NOT NULL ORDER BY pk"
    ):
        key = (kind, name)
        if key in newest:
            old.add(newest[key])
        newest[key] = node_id
    old.update(r[0] for r in store.conn.execute("SELECT dst FROM edges WHERE rel = 'was_revision_of'"))
    if not old:
        return {}
    current = set(newest.values()) - old
    ids = reachable_ids(store, sorted(old), upstream=False)
    # a model version holding a label (production, staging, an alias) is the one in
    # use on purpose, however many newer candidates exist: what a run made from it,
    # reading nothing older, is current (a batch scored by model@production)
    labelled = store.labelled_models()
    found = []
    for i in ids:
        if i in current and i not in skip:
            # rebuilt with the same bytes (content addressing: the same node) by a run that
            # read only current versions: its newest producer is not downstream of an old one
            producers = store.generators(i)
            if not producers or max(producers) in ids:
                if producers and _made_by_a_labelled_model(store, max(producers), labelled, old):
                    continue
                found.append(i)
    nodes = store.get_nodes(found)
    out: dict[str, Node] = dict(nodes)
    for model, count in sorted(count_predictions(store, [i for i in nodes if i.startswith("model:")]).items()):
        gid = f"group:prediction:{count}"
        if gid in skip or gid in out:
            gid = f"{gid}:{model.split(':', 1)[1][:12]}"
        out[gid] = Node(gid, "group", f"{count:,} predictions", {"of": "prediction", "count": count, "model": model})
    return out
