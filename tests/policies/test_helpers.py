"""The policies' helpers for values that may be unknown in preview."""

from __future__ import annotations

import pytest

from policies.graph import both_known, known_equal
from policies.props import first
from tools.analyzer import UNKNOWN


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        ("a", "a", True),
        ("a", "b", False),
        ("", "", False),  # empty names never identify anything
        (None, None, False),
        (None, "a", False),
        ("a", None, False),
        (UNKNOWN, UNKNOWN, False),  # two unknowns are not known to be equal
        (UNKNOWN, "a", False),
        ("a", UNKNOWN, False),
    ],
)
def test_known_equal_needs_two_known_equal_non_empty_values(left, right, equal):
    assert known_equal(left, right) is equal
    assert both_known(left, right) is (left is not None and right is not None and UNKNOWN not in (left, right))


def test_first_of_a_single_block_list():
    assert first([{"a": 1}, {"a": 2}]) == {"a": 1}
    assert first([]) is None
    assert first({"a": 1}) == {"a": 1}
