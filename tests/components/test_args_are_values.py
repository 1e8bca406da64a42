"""Every args and spec type of components/ is a frozen dataclass (one frozen args type per component).

One args object, and the specs parsed from config, are handed to every region's components: none may change
them for the others, and a frozen dataclass can be a dict key or set member. The types are found by walking
the package, so a new one is held to the rule too.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import pytest

import components


def _dataclasses() -> list[type]:
    found = {}
    for info in pkgutil.iter_modules(components.__path__):
        module = importlib.import_module(f"components.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == module.__name__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[k] for k in sorted(found)]


TYPES = _dataclasses()


def test_the_walk_finds_the_components_types():
    names = {t.__name__ for t in TYPES}
    assert {"Microservice", "AlarmThresholds", "MeshArgs", "RegionalEdgeArgs", "DataArgs", "EksClusterArgs"} <= names


@pytest.mark.parametrize("cls", TYPES, ids=lambda t: f"{t.__module__}.{t.__name__}")
def test_instances_cannot_be_changed(cls):
    instance = object.__new__(cls)  # no field values needed: the guard is in __setattr__
    field = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(instance, field, None)
