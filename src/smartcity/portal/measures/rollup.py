"""Weighted roll-up of progress, as in Decidim Accountability.

A measure with children shows the weighted mean of its children's (rolled-up) progress; a
measure without children shows what its editors entered. An area shows the weighted mean of
its top-level measures, and the blueprint the weighted mean of all top-level measures (so a
big area counts for more than a small one). Weights are >= 0; if every weight in a group is 0
the plain mean is used, so a group never divides by zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    id: str
    progress: float  # as entered
    weight: float
    parent: str | None


def weighted_mean(items: Iterable[tuple[float, float]]) -> float:
    """Mean of ``(value, weight)`` pairs; 0 for no items."""
    pairs = list(items)
    if not pairs:
        return 0.0
    total = sum(w for _, w in pairs)
    if total <= 0:
        return sum(v for v, _ in pairs) / len(pairs)
    mean = sum(v * w for v, w in pairs) / total
    # Rounding (tiny weights) must never take a mean outside its values.
    return min(max(mean, min(v for v, _ in pairs)), max(v for v, _ in pairs))


def rolled_up(nodes: Mapping[str, Node]) -> dict[str, float]:
    """Every measure's displayed progress. Parents missing from ``nodes`` count as absent;
    cycles (which ``set_parent`` prevents) are broken by using the entered progress."""
    children: dict[str, list[str]] = {}
    for node in nodes.values():
        if node.parent is not None and node.parent in nodes:
            children.setdefault(node.parent, []).append(node.id)
    result: dict[str, float] = {}

    def visit(node_id: str, path: frozenset[str]) -> float:
        if node_id in result:
            return result[node_id]
        kids = [k for k in children.get(node_id, []) if k not in path]
        if not kids:
            value = nodes[node_id].progress
        else:
            inner = path | {node_id}
            value = weighted_mean((visit(k, inner), nodes[k].weight) for k in kids)
        result[node_id] = value
        return value

    for node_id in nodes:
        visit(node_id, frozenset())
    return result


def group_progress(nodes: Mapping[str, Node], progress: Mapping[str, float]) -> float:
    """The weighted mean of the top-level nodes (no parent among ``nodes``)."""
    return weighted_mean(
        (progress[n.id], n.weight)
        for n in nodes.values()
        if n.parent is None or n.parent not in nodes
    )
