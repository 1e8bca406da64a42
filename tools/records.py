"""Queries over a recorded stack (the dict that tools.mocked_run.run_stack returns)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any

from pulumi.runtime.rpc import UNKNOWN

Resource = dict[str, Any]


class RecordedStack:
    """The registrations of one mocked run, with the lookups tests and tools need."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.resources: list[Resource] = record["resources"]
        self.by_urn: dict[str, Resource] = {r["urn"]: r for r in self.resources}

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def of_type(self, type_: str, *, under: str | None = None) -> list[Resource]:
        """Resources of a type token (glob allowed), optionally only those below the component named `under`."""
        found = [r for r in self.resources if fnmatch.fnmatchcase(r["type"], type_)]
        if under is not None:
            found = [r for r in found if self.is_below(r, under)]
        return found

    def named(self, name: str) -> Resource:
        """The one resource with this logical name (glob allowed); fails if there are none or several."""
        found = [r for r in self.resources if fnmatch.fnmatchcase(r["name"], name)]
        if len(found) != 1:
            raise LookupError(f"expected one resource named {name!r}, found {[r['name'] for r in found]}")
        return found[0]

    def parent_of(self, resource: Resource) -> Resource | None:
        return self.by_urn.get(resource["parent"])

    def ancestors(self, resource: Resource) -> list[Resource]:
        chain = []
        current = self.parent_of(resource)
        while current is not None:
            chain.append(current)
            current = self.parent_of(current)
        return chain

    def is_below(self, resource: Resource, component_name: str) -> bool:
        return any(a["name"] == component_name for a in self.ancestors(resource))

    def children_of(self, resource: Resource) -> list[Resource]:
        return [r for r in self.resources if r["parent"] == resource["urn"]]

    def provider_name(self, resource: Resource, package: str = "aws") -> str:
        """Logical name of the `package` provider a resource uses: its own, or one passed to a parent."""
        for r in (resource, *self.ancestors(resource)):
            own = r["provider"]
            # A provider's URN type is qualified by its parent's: "pulumi:pulumi:Stack$pulumi:providers:aws".
            is_package = own and own.split("::")[2].split("$")[-1] == f"pulumi:providers:{package}"
            ref = r.get("providers", {}).get(package) or (own if is_package else "")
            if ref:
                return ref.split("::")[3]
        return ""

    def depends_on(self, resource: Resource, other: Resource, prop: str | None = None) -> bool:
        """True if `resource` depends on `other` (through property `prop` when given)."""
        if prop is not None:
            return other["urn"] in resource["property_dependencies"].get(prop, [])
        return other["urn"] in resource["dependencies"] or any(
            other["urn"] in urns for urns in resource["property_dependencies"].values()
        )

    def exports(self) -> dict[str, Any]:
        return self.record.get("exports", {})


def is_unknown(value: Any) -> bool:
    return value == UNKNOWN


def unsecret(value: Any) -> Any:
    """The plain value of a wire-form secret (tests only; secrets are never printed by tools)."""
    if isinstance(value, dict) and value.get("4dabf18193072939515e22adb298388d") == "1b47061264138c4ac30d75fd1eb44270":
        return value.get("value")
    return value
