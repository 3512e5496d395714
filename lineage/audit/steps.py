"""A composite model's steps as the tree they are: a Pipeline's steps run one after
another, but a ColumnTransformer's (or a FeatureUnion's) branches run side by side,
each on its own columns. Read as one flat chain, "ColumnTransformer → StandardScaler →
OneHotEncoder → LogisticRegression" told an auditor the scaler fed the encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def step_tree(steps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's steps (``{"step": "a/b", "class", "depth", "columns"?}``, in
    recorded order) as a forest: the top-level steps, each with ``children``, the
    steps one level below it, and ``parallel``: whether those are branches side by
    side (a ColumnTransformer's, a FeatureUnion's) or a nested pipeline's steps, one
    after another. The unnamed root (depth 0) is left out."""
    roots: list[dict[str, Any]] = []
    by_path: dict[str, dict[str, Any]] = {}
    for s in steps:
        if not s.get("depth"):
            continue
        node = {**s, "name": str(s["step"]).rsplit("/", 1)[-1], "children": [],
                "parallel": not short_class(s.get("class")).endswith("Pipeline")}
        parent = by_path.get(str(s["step"]).rpartition("/")[0]) if "/" in str(s["step"]) else None
        (parent["children"] if parent is not None else roots).append(node)
        by_path[str(s["step"])] = node
    return roots


def short_class(qualname: Any) -> str:
    """``sklearn.preprocessing._data.StandardScaler`` -> ``StandardScaler``."""
    return str(qualname or "—").rsplit(".", 1)[-1]


def chain_text(steps: Sequence[dict[str, Any]]) -> str:
    """The tree as one line of plain text: ``ColumnTransformer [num: StandardScaler ‖
    cat: OneHotEncoder] → LogisticRegression`` (branches side by side in brackets)."""
    def one(node: dict[str, Any]) -> str:
        text = short_class(node["class"])
        if node["children"]:
            sep = " ‖ " if node["parallel"] else " → "
            text += " [" + sep.join(f"{c['name']}: {one(c)}" for c in node["children"]) + "]"
        return text

    return " → ".join(one(n) for n in step_tree(steps))
