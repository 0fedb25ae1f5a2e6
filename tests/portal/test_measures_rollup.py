"""The roll-up arithmetic on its own: a hand-computed tree and properties of any tree."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartcity.portal.measures.rollup import Node, group_progress, rolled_up, weighted_mean


def _nodes(*items: tuple[str, float, float, str | None]) -> dict[str, Node]:
    return {i: Node(i, p, w, parent) for i, p, w, parent in items}


def test_hand_computed_three_levels() -> None:
    nodes = _nodes(
        ("a", 0, 1, None),  # = (2*b + 1*c) / 3 = (2*70 + 1*10) / 3 = 50
        ("b", 99, 2, "a"),  # = (1*100 + 3*60) / 4 = 70
        ("c", 10, 1, "a"),
        ("d", 100, 1, "b"),
        ("e", 60, 3, "b"),
        ("f", 20, 4, None),
    )
    shown = rolled_up(nodes)
    assert shown["b"] == pytest.approx(70)
    assert shown["a"] == pytest.approx(50)
    assert shown["f"] == 20
    # top level: a (weight 1) and f (weight 4) -> (50 + 80) / 5 = 26
    assert group_progress(nodes, shown) == pytest.approx(26)
    # a subset (one "area") whose parent lies outside it counts its own top level
    subset = {k: nodes[k] for k in ("d", "e")}
    assert group_progress(subset, shown) == pytest.approx(70)


def test_zero_weights_and_empty() -> None:
    assert weighted_mean([]) == 0.0
    assert weighted_mean([(10, 0), (30, 0)]) == 20.0
    assert weighted_mean([(10, 0), (30, 1)]) == 30.0


@st.composite
def forests(draw: st.DrawFn) -> dict[str, Node]:
    n = draw(st.integers(1, 25))
    out: dict[str, Node] = {}
    for i in range(n):
        parent = draw(st.one_of(st.none(), st.sampled_from([f"m{j}" for j in range(i)] or [None])))
        out[f"m{i}"] = Node(
            f"m{i}",
            draw(st.floats(0, 100)),
            draw(st.floats(0, 10)),
            parent,
        )
    return out


@given(forests())
def test_rolled_up_stays_within_its_leaves(nodes: dict[str, Node]) -> None:
    shown = rolled_up(nodes)
    children: dict[str, list[str]] = {}
    for node in nodes.values():
        if node.parent:
            children.setdefault(node.parent, []).append(node.id)

    def leaves(i: str) -> list[float]:
        kids = children.get(i)
        return [nodes[i].progress] if not kids else [v for k in kids for v in leaves(k)]

    for i in nodes:
        values = leaves(i)
        assert min(values) - 1e-9 <= shown[i] <= max(values) + 1e-9
    total = group_progress(nodes, shown)
    assert 0 - 1e-9 <= total <= 100 + 1e-9
