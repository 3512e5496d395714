"""Which data, diff, blame: analyses of the graph upstream of models, runs and
predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError, NodeNotFoundError
from ..model import SCORED_ROLE, Edge, Node
from ..store import Store
from .closure import KIND_RANK, bfs_distances, chunks, edges_among, fetch_nodes, models_of, placeholders, reachable_ids, resolve_root
from .results import Change, DataUse, Diff, Suspect, role_group


def which_data(store: Store, ref: str) -> list[DataUse]:
    """The datasets behind a model (or a prediction, run or dataset), each with its
    role and its distance in hops.

    The datasets the run(s) that produced the node used carry the role of their
    ``used`` edge as recorded (``training``, ``input`` from ``lineage run -i``, MLflow's
    ``validation``/``testing``/``evaluation`` contexts, or any other word);
    ``upstream`` are the sources further back. `DataUse.group` says how each counts:
    ``training`` and ``input`` as training, validation/testing/evaluation as held-out
    data, never as training; ``scored`` is the batch a model scored to make a
    prediction (`lineage predict`'s input), reached past the scoring run with the
    data of the model that scored it. When a run used one dataset in several roles,
    a training role wins.

    Parameters
    ----------
    store : Store
        The store to read.
    ref : str
        A node id.

    Returns
    -------
    list of DataUse
        The farthest sources first, the data the model saw last.

    Raises
    ------
    NodeNotFoundError
        When ``ref`` names no node.

    Examples
    --------
    >>> from lineage import query
    >>> uses = query.which_data(store, lg.get("clf").id)
    >>> [(u.node.name, u.role, u.group) for u in uses]
    [('raw', 'upstream', 'upstream'), ('train', 'training', 'training'), ('test', 'evaluation', 'held_out')]
    """
    root = resolve_root(store, ref)
    ids = reachable_ids(store, [root], upstream=True)
    nodes = fetch_nodes(store, ids, root)
    edges = edges_among(store, nodes, upstream=True)
    dist = bfs_distances([root], edges, upstream=True)
    out_adj: dict[str, list[Edge]] = {}
    for e in edges:
        out_adj.setdefault(e.src, []).append(e)
    roles: dict[str, str] = {}
    for r, scoring in _first_runs(root, nodes, out_adj).items():
        for e in out_adj.get(r, ()):
            if e.rel == "used" and nodes[e.dst].kind == "dataset":
                role = SCORED_ROLE if scoring and e.role in (None, "input") else e.role or "training"
                if role_group(roles.get(e.dst)) != "training" or e.dst not in roles:  # training wins
                    roles[e.dst] = role
    rank = {"training": 0, "held_out": 1, "other": 2, "upstream": 3}
    out = [DataUse(n, roles.get(i, "upstream"), dist.get(i, 0)) for i, n in nodes.items()
           if n.kind == "dataset" and i != root]
    out.sort(key=lambda u: (-u.distance, rank[u.group], u.role, u.node.name or "", u.node.id))
    return out


def _first_runs(root: str, nodes: Mapping[str, Node], out_adj: Mapping[str, list[Edge]]) -> dict[str, bool]:
    """The runs that made ``root``, each with whether it scored data with a model: the
    first met walking up from it (``root`` itself when it is a run). Past a scoring
    run (`lineage predict`), the walk goes on through that model to the runs that
    trained it: the data behind a prediction is the batch scored and the model's own."""
    found: dict[str, bool] = {}
    seen = {root}
    stack = [root]
    while stack:
        u = stack.pop()
        if nodes[u].kind == "run":
            scoring = found[u] = _is_scoring(nodes[u], out_adj.get(u, ()))
            if not scoring:
                continue
            ahead = [e.dst for e in out_adj.get(u, ()) if e.rel == "used" and nodes[e.dst].kind == "model"]
        else:
            ahead = [e.dst for e in out_adj.get(u, ())]
        for v in ahead:
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return found


def _is_scoring(run: Node, used: Sequence[Edge]) -> bool:
    """Whether ``run`` scored a batch with a model: it read data in the `SCORED_ROLE`,
    or it is a `lineage predict` recorded before that role (its file read as ``input``)."""
    if any(e.role == SCORED_ROLE for e in used if e.rel == "used"):
        return True
    command = run.attrs.get("command")
    return isinstance(command, list) and command[:2] == ["lineage", "predict"]


@dataclass
class _Context:
    node: Node
    run: Node | None
    model: Node | None
    code: Node | None
    environment: Node | None
    data: list[DataUse]


def _producing_run(store: Store, node_id: str) -> Node | None:
    row = store.conn.execute(
        "SELECT e.dst FROM edges e JOIN nodes n ON n.id = e.dst WHERE e.src = ? AND e.rel = 'was_generated_by' "
        "AND n.kind = 'run' ORDER BY n.pk DESC LIMIT 1", (node_id,)).fetchone()
    return store.get_node(row[0]) if row else None


def _context(store: Store, node_id: str) -> _Context:
    node = store.get_node(node_id)
    if node is None:
        raise NodeNotFoundError(node_id)
    model = None
    if node.kind == "prediction":
        model = store.get_node(node.attrs["model"])
        run = _producing_run(store, model.id) if model else None
    elif node.kind == "run":
        run = node
    elif node.kind in ("model", "dataset", "artifact"):
        model = node if node.kind == "model" else None
        run = _producing_run(store, node.id)
    else:
        raise InvalidInputError(f"diff compares models, runs or two versions of data; {node.id} is {_a(node.kind)}")
    code = env = None
    if run is not None:
        rows = store.conn.execute(
            "SELECT dst, role FROM edges WHERE src = ? AND rel = 'used' AND role IN ('code', 'environment') ORDER BY pk",
            (run.id,)).fetchall()
        found = store.get_nodes([r[0] for r in rows])
        for dst, role in rows:
            if role == "code":
                code = found.get(dst, code)
            else:
                env = found.get(dst, env)
    data = which_data(store, (model or run or node).id)
    return _Context(node, run, model, code, env, data)


def _dict_changes(aspect: str, a: Mapping[str, Any], b: Mapping[str, Any], *, prefix: str = "") -> list[Change]:
    out = []
    for key in sorted(set(a) | set(b), key=str):
        va, vb = a.get(key), b.get(key)
        if va != vb:
            out.append(Change(aspect, f"{prefix}{key}", va, vb))
    return out


_CODE_FIELDS = ("repo", "branch", "commit", "dirty", "diff_digest", "entry_point", "script_digest")


def _code_attrs(c: Any) -> dict[str, Any]:
    """The code fields of one side of a diff: its code node's, with the entry point its
    run recorded (runs before that recorded none: the code node's then)."""
    attrs = dict(c.code.attrs) if c.code else {}
    if c.run is not None and c.run.attrs.get("entry_point"):
        attrs["entry_point"] = c.run.attrs["entry_point"]
    return attrs


def diff(store: Store, a: str, b: str) -> Diff:
    """How two models (or runs; a prediction stands for its model), or two versions
    of data, differ in lineage.

    Aspects, in this order: ``data`` (for two versions of data, first what changed in
    them: the version, location, format, rows, files, size, columns added or removed
    and column types; then the datasets behind each, keyed by name: added,
    removed, changed version, or changed role), ``code`` (commit, diff, entry point),
    ``params`` (the run's parameters, the model's class and hyperparameters as
    ``model.*``), ``environment`` (Python, platform, each package's version) and
    ``metrics`` (each run's latest values).

    Parameters
    ----------
    store : Store
        The store to read.
    a, b : str
        Node ids.

    Returns
    -------
    Diff
        Iterable of `Change`; false when nothing differs.

    Raises
    ------
    InvalidInputError
        For nodes that are neither models, runs nor data (a dataset or artifact
        compared with a model or run needs a run that produced it).

    Examples
    --------
    >>> from lineage import query
    >>> d = query.diff(store, lg.get("clf@1").id, lg.get("clf@3").id)
    >>> [(c.aspect, c.key) for c in d]
    [('params', 'C'), ('params', 'model.C'), ('metrics', 'accuracy')]
    """
    ca, cb = _context(store, resolve_root(store, a)), _context(store, resolve_root(store, b))
    same_kind_data = ca.node.kind == cb.node.kind and ca.node.kind in _DATA_KINDS
    for c in (ca, cb):
        if c.node.kind in _DATA_KINDS and c.run is None and not same_kind_data:
            raise InvalidInputError(f"diff compares models, runs or two versions of data; no run produced {c.node.id}, "
                                    f"and the other side is {_a((cb if c is ca else ca).node.kind)}")
    # two versions of data: first what changed in the data itself
    changes: list[Change] = _version_changes(ca.node, cb.node) if same_kind_data else []
    # data, keyed by name (ids for unnamed data)
    def by_name(uses: list[DataUse]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for u in uses:
            out.setdefault(u.node.name or u.node.id, {})[u.node.id] = u.role
        return out

    da, db = by_name(ca.data), by_name(cb.data)
    for key in sorted(set(da) | set(db)):
        ia, ib = da.get(key, {}), db.get(key, {})
        if set(ia) == set(ib):
            for i in sorted(ia):
                if ia[i] != ib[i]:
                    changes.append(Change("data", f"{key} (role)", ia[i], ib[i]))
            continue
        only_a, only_b = sorted(set(ia) - set(ib)), sorted(set(ib) - set(ia))
        if len(only_a) == 1 and len(only_b) == 1:
            changes.append(Change("data", key, only_a[0], only_b[0]))  # another version
        else:
            changes += [Change("data", key, i, None) for i in only_a]
            changes += [Change("data", key, None, i) for i in only_b]
    # code: what each ran, with the run's own entry point (the runs of one commit share
    # its code node, which names the first one's script)
    attrs_a, attrs_b = _code_attrs(ca), _code_attrs(cb)
    code_changes = [Change("code", k, attrs_a.get(k), attrs_b.get(k)) for k in _CODE_FIELDS
                    if attrs_a.get(k) != attrs_b.get(k)]
    if not code_changes and (ca.code and ca.code.id) != (cb.code and cb.code.id):
        code_changes = [Change("code", "id", ca.code and ca.code.id, cb.code and cb.code.id)]
    changes += code_changes
    # params: the run's, then the model's own
    pa = dict(ca.run.attrs.get("params", {})) if ca.run else {}
    pb = dict(cb.run.attrs.get("params", {})) if cb.run else {}
    changes += _dict_changes("params", pa, pb)
    if ca.model is not None or cb.model is not None:
        ma = dict(ca.model.attrs) if ca.model else {}
        mb = dict(cb.model.attrs) if cb.model else {}
        if ma.get("class") != mb.get("class"):
            changes.append(Change("params", "model.class", ma.get("class"), mb.get("class")))
        changes += _dict_changes("params", ma.get("params") or {}, mb.get("params") or {}, prefix="model.")
    # environment
    if (ca.environment and ca.environment.id) != (cb.environment and cb.environment.id):
        ea = dict(ca.environment.attrs) if ca.environment else {}
        eb = dict(cb.environment.attrs) if cb.environment else {}
        for k in ("python", "platform"):
            if ea.get(k) != eb.get(k):
                changes.append(Change("environment", k, ea.get(k), eb.get(k)))
        changes += _dict_changes("environment", _packages(ea), _packages(eb))
    # metrics
    changes += _dict_changes("metrics", ca.run.attrs.get("metrics", {}) if ca.run else {},
                             cb.run.attrs.get("metrics", {}) if cb.run else {})
    return Diff(ca.node, cb.node, changes)


_DATA_KINDS = ("dataset", "artifact")

#: what a data version's record says of its content, compared field by field
_VERSION_FIELDS = ("path", "uri", "format", "rows", "files", "size")


def _version_changes(a: Node, b: Node) -> list[Change]:
    """What differs between two versions of data themselves (``data`` aspect): the
    version (keyed by the name), then its location, format, rows, files and size,
    the columns added and removed, and each kept column whose type changed."""
    if a.id == b.id:
        return []
    out = [Change("data", b.name or a.name or b.kind, a.id, b.id)]
    out += [Change("data", k, a.attrs.get(k), b.attrs.get(k)) for k in _VERSION_FIELDS
            if a.attrs.get(k) != b.attrs.get(k)]
    cols_a, cols_b = a.attrs.get("columns"), b.attrs.get("columns")
    if isinstance(cols_a, list) and isinstance(cols_b, list):
        removed = [c for c in cols_a if c not in cols_b]
        added = [c for c in cols_b if c not in cols_a]
        if removed:
            out.append(Change("data", "columns removed", removed, None))
        if added:
            out.append(Change("data", "columns added", None, added))
        if not removed and not added and cols_a != cols_b:
            out.append(Change("data", "column order", cols_a, cols_b))
        types_a, types_b = _column_types(a), _column_types(b)
        out += [Change("data", f"type of {c}", types_a[c], types_b[c]) for c in cols_b
                if c in types_a and c in types_b and types_a[c] != types_b[c]]
    elif cols_a != cols_b:
        out.append(Change("data", "columns", cols_a, cols_b))
    return out


def _column_types(node: Node) -> dict[str, Any]:
    """A data version's column types as recorded (a frame's ``dtypes``, an imported
    ``schema``), by column; empty when none were."""
    types = node.attrs.get("dtypes") or node.attrs.get("schema")
    return dict(types) if isinstance(types, Mapping) else {}


def _a(kind: str) -> str:
    """``"a model"``, ``"an agent"``."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


def _packages(env_attrs: Mapping[str, Any]) -> dict[str, Any]:
    pk = env_attrs.get("packages") or {}
    if isinstance(pk, Mapping):
        return dict(pk)
    out: dict[str, Any] = {}
    for item in pk:  # a list of "name==version" strings, or of [name, version]
        if isinstance(item, str):
            name, _, version = item.partition("==")
            out[name] = version or None
        elif isinstance(item, (list, tuple)) and item:
            out[str(item[0])] = item[1] if len(item) > 1 else None
    return out


def blame(store: Store, bad: Sequence[str], good: Sequence[str] = ()) -> list[Suspect]:
    """Rank the nodes upstream of flagged predictions by how much more often they stand
    behind the ``bad`` ones than behind the ``good`` ones: where to look first when
    predictions go wrong.

    Any node can be flagged, not just predictions. Predictions of one model share one
    upstream walk, so thousands of flagged predictions cost a few walks.

    Parameters
    ----------
    store : Store
        The store to read.
    bad : sequence of str
        Ids of the bad predictions.
    good : sequence of str, optional
        Ids of good ones to compare with.

    Returns
    -------
    list of Suspect
        Those with a positive score, highest first; ties go to data, then code,
        environment, runs and models, then to the node behind more bad predictions.

    Raises
    ------
    InvalidInputError
        When ``bad`` is empty.

    Examples
    --------
    >>> from lineage import query
    >>> suspects = query.blame(store, [lg.get("request:req-1").id])
    >>> [(s.node.kind, s.node.name) for s in suspects][:3]
    [('dataset', 'raw'), ('dataset', 'test'), ('dataset', 'train')]
    """
    bad_ids = list(dict.fromkeys(resolve_root(store, r) for r in bad))
    good_ids = list(dict.fromkeys(resolve_root(store, r) for r in good))
    if not bad_ids:
        raise InvalidInputError("blame needs at least one bad prediction (--bad REF)")
    overlap = set(bad_ids) & set(good_ids)
    if overlap:
        raise InvalidInputError(f"{sorted(overlap)[0]} is flagged both bad and good")
    flagged = bad_ids + good_ids
    # what each flagged node directly depends on: its model, and any stored edges
    parents: dict[str, set[str]] = {i: set() for i in flagged}
    for p, m in models_of(store, flagged).items():
        parents[p].add(m)
    for chunk in chunks(flagged):
        for s, d in store.conn.execute(
            f"SELECT src, dst FROM edges WHERE src IN ({placeholders(len(chunk))}) AND rel <> 'was_revision_of'", chunk):
            parents[s].add(d)
    missing = [i for i in flagged if not parents[i] and not store.node_exists(i)]
    if missing:
        raise NodeNotFoundError(missing[0])
    walks: dict[frozenset[str], set[str]] = {}

    def upstream_of(i: str) -> set[str]:
        key = frozenset(parents[i])
        if key not in walks:
            walks[key] = reachable_ids(store, sorted(key), upstream=True) if key else set()
        return walks[key]

    counts_bad: dict[str, int] = {}
    counts_good: dict[str, int] = {}
    for ids, counts in ((bad_ids, counts_bad), (good_ids, counts_good)):
        for i in ids:
            for u in upstream_of(i):
                counts[u] = counts.get(u, 0) + 1
    n_bad, n_good = len(bad_ids), len(good_ids)
    flagged_set = set(flagged)
    scores: dict[str, float] = {}
    for u, b in counts_bad.items():
        if u in flagged_set:
            continue
        s = b / n_bad - (counts_good.get(u, 0) / n_good if n_good else 0.0)
        if s > 1e-12:
            scores[u] = round(s, 6)
    found = store.get_nodes(list(scores))
    out = [Suspect(n, scores[i], counts_bad[i], counts_good.get(i, 0)) for i, n in found.items()]
    out.sort(key=lambda s: (-s.score, KIND_RANK.get(s.node.kind, 99), -s.bad, s.node.name or "", s.node.id))
    return out
