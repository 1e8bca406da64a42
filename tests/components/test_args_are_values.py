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


# Fields whose Pulumi.yaml key of the same name means something else: a layer's `node_groups` are the node group
# resources it waits for, the config's are their specs.
_NOT_CONFIG = {"node_groups"}
# Fields fed from a config key of another name (see __main__.py).
_CONFIG_KEY = {
    ("ApiGatewaySettings", "manage_account_logging_role"): "apiGatewayAccountLoggingRole",
    ("LimiterArgs", "min_replicas"): "limiterMinReplicas",
    ("LimiterArgs", "max_replicas"): "limiterMaxReplicas",
}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def test_a_component_used_alone_defaults_like_a_stack_that_leaves_the_key_unset():
    """Where the program feeds a field from a config key, the field's own default is that key's default in
    Pulumi.yaml: a component used on its own behaves like the project's default stack."""
    from tools import stack_files

    declared = stack_files.declarations()
    compared = []
    for cls in TYPES:
        for field in dataclasses.fields(cls):
            key = _CONFIG_KEY.get((cls.__name__, field.name), _camel(field.name))
            if field.name in _NOT_CONFIG or key not in declared or field.default is dataclasses.MISSING:
                continue
            default = list(field.default) if isinstance(field.default, tuple) else field.default
            assert default == declared[key]["default"], (cls.__name__, field.name, key)
            compared.append(f"{cls.__name__}.{field.name}")
    expected = {"DataArgs.deletion_protection", "RegionalEdgeArgs.waf_rate_limit", "EksClusterArgs.kubernetes_version"}
    assert expected | {"ApiGatewaySettings.manage_account_logging_role", "LimiterArgs.min_replicas"} <= set(compared)
