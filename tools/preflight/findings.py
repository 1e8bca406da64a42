"""What a preflight check reports: one error about one registered resource."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    """A value AWS, IAM, Helm or Kubernetes would refuse at `pulumi up`, found offline.

    Every finding is an error: the offline preview exits 1 on any, as on a mandatory policy violation.
    """

    rule: str
    """The rule's id, e.g. "name-length" (listed in tools.preflight.RULES)."""
    urn: str
    """The URN of the resource that carries the bad value."""
    name: str
    """The resource's logical name."""
    type: str
    """The resource's type token."""
    message: str
    """A complete sentence that names the resource, the value and the limit."""
    source: str
    """Where the rule comes from upstream (a provider file, an API reference, a schema)."""

    @classmethod
    def about(cls, rule: str, resource: Mapping[str, Any], message: str, source: str) -> Finding:
        """A finding on one recorded resource: its URN, logical name and type come from the record."""
        return cls(rule, str(resource["urn"]), str(resource["name"]), str(resource["type"]), message, source)
