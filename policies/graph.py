"""Relating resources in stack policies: by property dependency first, by known values second.

A property dependency (the engine's `propertyDependencies`) says that an input was derived from
another resource's outputs. It is the only link available in a first preview, where ARNs and
names are still unknown, so stack policies match through it and fall back to comparing values
only when both sides are known.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pulumi_policy import PolicyResource

from .props import is_unknown, plain


class StackView:
    """The resources of one AnalyzeStack call, with their properties read once through `plain()`."""

    def __init__(self, resources: Iterable[PolicyResource]) -> None:
        self.resources = list(resources)
        self._props: dict[str, dict[str, Any]] = {}

    def of_type(self, *types: str) -> list[PolicyResource]:
        """Resources whose type token is one of `types` (custom or component)."""
        wanted = set(types)
        return [r for r in self.resources if r.resource_type in wanted]

    def props(self, resource: PolicyResource) -> dict[str, Any]:
        """The resource's properties as plain data with `UNKNOWN` markers."""
        if resource.urn not in self._props:
            value = plain(resource.props)
            self._props[resource.urn] = value if isinstance(value, dict) else {}
        return self._props[resource.urn]


def depends_on(resource: PolicyResource, prop: str, target: PolicyResource) -> bool:
    """True when `resource`'s input `prop` was derived from `target`'s outputs."""
    return any(dep.urn == target.urn for dep in resource.property_dependencies.get(prop, []) or [])


def dependencies_of_type(resource: PolicyResource, prop: str, *types: str) -> list[PolicyResource]:
    """The resources of the given types that `resource`'s input `prop` was derived from."""
    wanted = set(types)
    return [dep for dep in resource.property_dependencies.get(prop, []) or [] if dep.resource_type in wanted]


def known_equal(left: Any, right: Any) -> bool:
    """True when both values are known, non-empty and equal."""
    if left is None or right is None or is_unknown(left) or is_unknown(right):
        return False
    return left == right and left != ""


def both_known(left: Any, right: Any) -> bool:
    """True when both values are known and set."""
    return left is not None and right is not None and not is_unknown(left) and not is_unknown(right)
