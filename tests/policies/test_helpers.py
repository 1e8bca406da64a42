"""The policies' helpers for values that may be unknown in preview."""

from __future__ import annotations

import pytest

from policies.graph import both_known, known_equal
from policies.props import first, is_false, is_true
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


@pytest.mark.parametrize(
    ("value", "false", "true"),
    [(False, True, False), ("false", True, False), ("FALSE", True, False), (True, False, True), ("true", False, True),
     ("", False, False), ("0", False, False), ("f", False, False), (None, False, False), (UNKNOWN, False, False)],
)  # fmt: skip
def test_only_a_known_boolean_or_its_word_is_true_or_false(value, false, true):
    # The engine sends booleans, or their words from string-typed config; anything else is neither.
    assert (is_false(value), is_true(value)) == (false, true)
