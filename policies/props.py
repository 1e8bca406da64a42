"""Reading resource properties with explicit handling of unknown (preview) values.

During `pulumi preview` the engine sends every value that depends on an output not yet known as
a sentinel string. pulumi-policy wraps the properties in a proxy that raises `UnknownValueError`
when a policy touches one, and turns that exception into a single ADVISORY "can't run policy
... during preview" diagnostic: the rest of the policy does not run, so a naive policy passes
every first preview silently.

No policy in this pack reads `args.props` directly. `plain()` copies the properties once into
plain dicts and lists in which every unknown value is the `UNKNOWN` marker, and each policy then
decides, per property, what an unknown value means. The rules used across the pack:

- A value that decides *exposure* (an ALB's `internal`, its `loadBalancerType`, an EKS endpoint's
  public access) is taken as the exposed case when unknown: the stricter check runs.
- A value that *references* the protecting resource (a `webAclId`, a `healthCheckId`, a KMS key
  ARN) is unknown exactly because it comes from a resource created in the same run; it counts as
  present when unknown (the stack policies also check what it was derived from where they can).
- A value that *is* the setting (`sslPolicy`, `dropInvalidHeaderFields`, a redirect protocol)
  normally comes from a literal or stack config and is then known in preview. When unknown it
  passes in preview: `pulumi up` runs the same policy on the resolved inputs before it creates the
  resource, so the value is judged then, and a mandatory violation stops the update.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import PolicyConfigSchema, Secret
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

_SENTINELS = frozenset(
    {
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_STRING_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_OBJECT_VALUE,
    }
)


class _Unknown:
    """The one marker for a value that cannot be known until the update runs."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown>"

    def __bool__(self) -> bool:
        raise TypeError("an unknown value has no truth value; test it with is_unknown() first")


_Validator = Callable[[Any, Any], None]

UNKNOWN: Any = _Unknown()
"""Stands for a property whose value is unknown during preview."""


def is_unknown(value: Any) -> bool:
    """True when `value` is the `UNKNOWN` marker or one of the engine's unknown sentinels."""
    return value is UNKNOWN or (isinstance(value, str) and value in _SENTINELS)


def plain(value: Any) -> Any:
    """A plain copy of `value` (dicts, lists, scalars) with every unknown value replaced by `UNKNOWN`.

    Accepts pulumi-policy's unknown-checking proxies as well as plain data, and never raises
    `UnknownValueError`.
    """
    if is_unknown(value):
        return UNKNOWN
    if isinstance(value, Secret):
        return plain(value.value)
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key in value:
            try:
                item = value[key]
            except UnknownValueError:
                item = UNKNOWN
            result[str(key)] = plain(item)
        return result
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items: list[Any] = []
        for index in range(len(value)):
            try:
                item = value[index]
            except UnknownValueError:
                item = UNKNOWN
            items.append(plain(item))
        return items
    return value


def get(props: Any, path: str, default: Any = None) -> Any:
    """The value at a dotted `path` ("viewerCertificate.minimumProtocolVersion", "rules.0.name").

    Returns `UNKNOWN` as soon as the walk meets an unknown value (an unknown object makes all
    its fields unknown), and `default` when a key is missing or null. `props` must come from
    `plain()`.
    """
    current = props
    for part in path.split("."):
        if is_unknown(current):
            return UNKNOWN
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return default
        if current is None:
            return default
    return UNKNOWN if is_unknown(current) else current


def items(value: Any) -> list[Any]:
    """The elements of a list property: [] when missing, [UNKNOWN] when the whole list is unknown.

    A list that is unknown as a whole still counts as one element whose content is unknown, so
    callers that look for "any element matching" must decide what an unknown element means.
    """
    if value is None:
        return []
    if is_unknown(value):
        return [UNKNOWN]
    if isinstance(value, list):
        return value
    return [value]


def first(value: Any) -> Any:
    """The first element of a list-typed property that the provider models as a single block."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def is_true(value: Any) -> bool:
    """True only for a known true value (booleans may also arrive as the strings "true"/"false")."""
    if is_unknown(value):
        return False
    if isinstance(value, str):
        return value.lower() == "true"
    return value is True


def is_false(value: Any) -> bool:
    """True only for a known false value."""
    if is_unknown(value):
        return False
    if isinstance(value, str):
        return value.lower() == "false"
    return value is False


def describe(value: Any) -> str:
    """A value as a message shows it."""
    if value is None:
        return "not set"
    if is_unknown(value):
        return "unknown until the update"
    return repr(value)


# --- Configuration shared by every policy -------------------------------------------------

EXEMPT_KEY = "exemptResources"


@dataclass(frozen=True)
class Option:
    """One config property of a policy: its JSON schema, whose `default` is also what `value` falls back to."""

    key: str
    schema: Mapping[str, Any]

    def value(self, args: Any) -> Any:
        """The value in the policy's config, or the schema's default when the engine sent none."""
        return config_value(args, self.key, self.schema["default"])


EXEMPT = Option(
    EXEMPT_KEY,
    {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "description": (
            "Names of resources this policy skips (the resource name as given to Pulumi, "
            "shell-style wildcards allowed, e.g. 'eu-west-1-edge-*'). Say why in the config file."
        ),
    },
)


def config_schema(*options: Option) -> PolicyConfigSchema:
    """The policy's config schema: `exemptResources` plus the policy's own options.

    The enforcement level is configurable for every policy without being declared here
    (pulumi-policy forbids declaring it).
    """
    return PolicyConfigSchema(properties={o.key: dict(o.schema) for o in (EXEMPT, *options)})


def config_value(args: Any, key: str, default: Any) -> Any:
    """A config value of the policy, or `default` when the engine sent none."""
    try:
        config = args.get_config()
    except AttributeError:
        return default
    if not config or key not in config or config[key] is None:
        return default
    return config[key]


def is_exempt(args: Any, name: str) -> bool:
    """True when `name` matches one of the policy's `exemptResources` patterns."""
    patterns: Iterable[str] = EXEMPT.value(args) or []
    return any(fnmatch.fnmatchcase(name, str(pattern)) for pattern in patterns)


def for_types(*types: str) -> Callable[[_Validator], _Validator]:
    """Run a resource validation only on resources of the given type tokens.

    pulumi-policy's Python ResourceValidationPolicy calls every validation for every resource the
    engine analyzes (custom resources, components, providers and the root stack alike), and
    skips nothing by itself. Exempt resources (`exemptResources`) are skipped here too.
    """
    wanted = frozenset(types)

    def decorate(validate: _Validator) -> _Validator:
        @functools.wraps(validate)
        def wrapper(args: Any, report_violation: Any) -> None:
            if args.resource_type in wanted and not is_exempt(args, args.name):
                validate(args, report_violation)

        return wrapper

    return decorate
