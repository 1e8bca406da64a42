"""Drive the policy pack's real analyzer servicer in-process, the way the Pulumi engine does.

The engine starts a pack as `python -m pulumi.policy <engine> .` and calls, over gRPC:
GetAnalyzerInfo, Configure (every policy's enforcement level and config, schema defaults filled
in), ConfigureStack (project, stack, dry run, config), Analyze once per registered resource (its
inputs; custom resources, components, providers and the root stack alike) and AnalyzeStack once
with every resource's state plus parent, dependencies and property dependencies. This module
makes the same calls with the same `analyzer_pb2` request messages on pulumi-policy's own
servicer class (the one `PolicyPack` serves), without a server, and collects the diagnostics as
the engine would report them (a resource policy's diagnostic belongs to the analyzed resource).

Input: a recorded stack as `tools.mocked_run.run_stack` returns it (see `analyze_record`).

What differs from the engine, and why:
- Analyze gets the recorded inputs as the program sent them; the engine first passes them
  through the provider's Check, which can add defaults.
- AnalyzeStack gets each resource's state: the recorded outputs laid over its inputs (a real
  provider's state contains its inputs; a mock may return only some of them), plus its `id`. An
  output that the mock left unknown while the input was known keeps the known input, as a
  provider's preview does.
- pulumi-policy reconfigures the global Pulumi runtime from PULUMI_PROJECT/PULUMI_STACK/
  PULUMI_DRY_RUN/PULUMI_CONFIG on every call. `engine_env=True` sets them as the engine does;
  never use it in a process that also runs Pulumi mocks (the reconfiguration breaks the mocks).
  Tests leave it off; the policies do not read the runtime.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel, Policy
from pulumi_policy.policy import PolicyResource, ResourceValidationArgs, _PolicyAnalyzerServicer

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
PREVIEW_SKIP_MARKER = "during preview"

_LEVEL_NAMES = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.DISABLED: "disabled",
    analyzer_pb2.REMEDIATE: "remediate",
}
_LEVEL_VALUES = {name: value for value, name in _LEVEL_NAMES.items()}


@dataclass(frozen=True)
class Diagnostic:
    """One policy violation as the engine would print it."""

    policy: str
    enforcement_level: str
    urn: str
    message: str
    description: str
    pack: str
    call: str  # "Analyze" or "AnalyzeStack"

    @property
    def resource_name(self) -> str:
        """The name part of the URN ("" for a stack-wide diagnostic)."""
        return self.urn.rsplit("::", 1)[-1] if self.urn else ""

    @property
    def resource_type(self) -> str:
        """The type part of the URN (the last type of the parent chain)."""
        if not self.urn:
            return ""
        qualified = self.urn.split("::")[2] if self.urn.count("::") >= 3 else ""
        return qualified.rsplit("$", 1)[-1]

    @property
    def is_preview_skip(self) -> bool:
        """True for pulumi-policy's "can't run policy ... during preview" advisory."""
        return self.message.startswith("can't run policy") and PREVIEW_SKIP_MARKER in self.message

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["resource_name"] = self.resource_name
        data["resource_type"] = self.resource_type
        return data


@dataclass
class AnalysisResult:
    """What one engine-like run of the pack reported.

    `policies` carry the effective enforcement level and config (after the policy config), the
    default level, and `judged`: the URNs whose properties the policy read, i.e. the resources it
    actually examined (a resource policy's type filter and `exemptResources` skip the others).
    """

    pack: str
    policies: list[dict[str, Any]]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    not_applicable: list[dict[str, str]] = field(default_factory=list)
    version: str = ""

    @property
    def mandatory(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.enforcement_level == "mandatory"]

    @property
    def advisory(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.enforcement_level == "advisory"]

    @property
    def preview_skips(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_preview_skip]

    def for_policy(self, name: str) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.policy == name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "version": self.version,
            "policies": self.policies,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
            "not_applicable": self.not_applicable,
        }


def _struct(values: Mapping[str, Any] | None) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(dict(values or {}))
    return message


def _state(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A resource's state for AnalyzeStack: outputs over inputs, known inputs kept over unknown outputs."""
    inputs = dict(resource.get("inputs") or {})
    state = dict(inputs)
    for key, value in (resource.get("outputs") or {}).items():
        if value == UNKNOWN and key in inputs and inputs[key] != UNKNOWN:
            continue
        state[key] = value
    if resource.get("custom") and resource.get("id") and "id" not in state:
        state["id"] = resource["id"]  # bridged providers report the id among the outputs
    return state


def _provider_urn(reference: str) -> str:
    """The URN part of a provider reference ("<urn>::<id>")."""
    if not reference:
        return ""
    return reference.rsplit("::", 1)[0] if reference.count("::") > 3 else reference


class PackAnalyzer:
    """pulumi-policy's analyzer servicer for a list of policies, driven like the engine drives it."""

    def __init__(self, policies: Sequence[Policy] | None = None, **overrides: Any) -> None:
        import policies as pack  # the project's pack: the same arguments its __main__ passes

        arguments = pack.pack_arguments()
        if policies is not None:
            arguments["policies"] = list(policies)
        arguments.update(overrides)
        self.name: str = arguments["name"]
        self.version: str = pack_version()
        self.judged: dict[str, set[str]] = {}
        self.effective: dict[str, dict[str, Any]] = {}
        self.servicer = _PolicyAnalyzerServicer(
            arguments["name"],
            "0.0.1",  # what PolicyPack passes; the CLI shows PulumiPolicy.yaml's version instead
            [_tracked(policy, self.judged) for policy in arguments["policies"]],
            arguments.get("enforcement_level") or EnforcementLevel.ADVISORY,
            arguments.get("initial_config"),
            arguments.get("description"),
            arguments.get("display_name"),
            arguments.get("readme"),
            arguments.get("provider"),
            arguments.get("tags"),
            arguments.get("repository"),
        )

    # -- the engine's calls ------------------------------------------------------------------

    def info(self) -> analyzer_pb2.AnalyzerInfo:
        return self.servicer.GetAnalyzerInfo(empty_pb2.Empty(), None)

    def configure(self, info: analyzer_pb2.AnalyzerInfo, policy_config: Mapping[str, Any] | None = None) -> None:
        """Configure with every policy's level and properties, schema defaults filled in (as the CLI does).

        The config is checked as the CLI checks `--policy-pack-config`: every policy named must be
        one of the pack's, a value is a level or an object, and an object's properties must satisfy
        the policy's config schema (unknown property, wrong type). Raises ValueError naming the
        policy, the property, what was given and what is allowed.
        """
        if policy_config is not None and not isinstance(policy_config, Mapping):
            raise ValueError(f"policy config must be a JSON object of policy names, not {_json_type(policy_config)}")
        policy_config = dict(policy_config or {})
        known = {p.name for p in info.policies}
        for key in policy_config:
            if key not in known and key != "all":
                raise ValueError(
                    f"policy config names {key!r}, which is not a policy of the pack {self.name!r}"
                    f"{_did_you_mean(key, known)}"
                )
        everyone = policy_config.get("all")
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for policy in info.policies:
            level = policy.enforcementLevel
            properties: dict[str, Any] = {}
            schema = json_format.MessageToDict(policy.configSchema)
            schema_properties = schema.get("properties") or {}
            for key, property_schema in schema_properties.items():
                if isinstance(property_schema, dict) and "default" in property_schema:
                    properties[key] = property_schema["default"]
            given_properties: dict[str, Any] = {}
            for source, given in (("all", everyone), (policy.name, policy_config.get(policy.name))):
                if given is None:
                    continue
                if isinstance(given, str):
                    level = _level(given, source)
                elif isinstance(given, Mapping):
                    for key, value in given.items():
                        if key == "enforcementLevel":
                            level = _level(value, source)
                        elif source == "all":
                            raise ValueError(f"policy config 'all' sets {key!r}; 'all' takes only an enforcement level")
                        elif key not in schema_properties:
                            raise ValueError(
                                f"policy config for {policy.name!r} sets {key!r}, which is not in its config "
                                f"schema ({', '.join(sorted(schema_properties)) or 'no properties'})"
                                f"{_did_you_mean(key, schema_properties)}"
                            )
                        else:
                            given_properties[key] = value
                else:
                    raise ValueError(
                        f"policy config for {source!r} is {_json_type(given)} {json.dumps(given)}; "
                        f"give an enforcement level ({', '.join(sorted(_LEVEL_VALUES))}) or an object"
                    )
            _check_schema(policy.name, schema, given_properties)
            properties.update(given_properties)
            entry = request.policyConfig[policy.name]
            entry.enforcementLevel = level
            entry.properties.update(properties)
            self.effective[policy.name] = {
                "enforcement_level": _LEVEL_NAMES.get(level, str(level)),
                "default_enforcement_level": _LEVEL_NAMES.get(policy.enforcementLevel, str(policy.enforcementLevel)),
                "config": properties,
            }
        self.servicer.Configure(request, None)

    def configure_stack(self, project: str, stack: str, dry_run: bool, config: Mapping[str, str]) -> None:
        request = analyzer_pb2.AnalyzerStackConfigureRequest(
            project=project,
            stack=stack,
            organization="organization",
            dry_run=dry_run,
            config={k: str(v) for k, v in config.items()},
        )
        self.servicer.ConfigureStack(request, None)

    def analyze(self, resource: Mapping[str, Any], provider: Mapping[str, Any] | None) -> analyzer_pb2.AnalyzeResponse:
        request = analyzer_pb2.AnalyzeRequest(
            type=resource["type"],
            urn=resource["urn"],
            name=resource["name"],
            properties=_struct(resource.get("inputs")),
            options=analyzer_pb2.AnalyzerResourceOptions(parent=resource.get("parent") or ""),
        )
        if provider is not None:
            request.provider.CopyFrom(_provider_message(provider))
        return self.servicer.Analyze(request, None)

    def analyze_stack(
        self, resources: Sequence[Mapping[str, Any]], providers: Mapping[str, Mapping[str, Any]]
    ) -> analyzer_pb2.AnalyzeResponse:
        request = analyzer_pb2.AnalyzeStackRequest()
        for resource in resources:
            message = request.resources.add()
            message.type = resource["type"]
            message.urn = resource["urn"]
            message.name = resource["name"]
            message.properties.CopyFrom(_struct(_state(resource)))
            message.options.CopyFrom(analyzer_pb2.AnalyzerResourceOptions(parent=resource.get("parent") or ""))
            message.parent = resource.get("parent") or ""
            message.dependencies.extend(resource.get("dependencies") or [])
            for key, urns in (resource.get("property_dependencies") or {}).items():
                message.propertyDependencies[key].urns.extend(urns)
            provider = providers.get(_provider_urn(resource.get("provider") or ""))
            if provider is not None:
                message.provider.CopyFrom(_provider_message(provider))
        return self.servicer.AnalyzeStack(request, None)

    # -- the whole sequence ------------------------------------------------------------------

    def run(
        self,
        record: Mapping[str, Any],
        policy_config: Mapping[str, Any] | None = None,
        engine_env: bool = False,
    ) -> AnalysisResult:
        """GetAnalyzerInfo, Configure, ConfigureStack, Analyze per resource, AnalyzeStack."""
        resources = list(record.get("resources") or [])
        providers = {r["urn"]: r for r in resources if str(r.get("type", "")).startswith("pulumi:providers:")}
        dry_run = bool(record.get("preview", True))
        with _engine_environment(record, dry_run, enabled=engine_env):
            info = self.info()
            self.configure(info, policy_config)
            self.configure_stack(
                record.get("project", ""), record.get("stack", ""), dry_run, record.get("config") or {}
            )
            self.judged.clear()
            result = AnalysisResult(
                pack=info.name, policies=[_policy_dict(p) for p in info.policies], version=self.version
            )
            for resource in resources:
                provider = providers.get(_provider_urn(resource.get("provider") or ""))
                response = self.analyze(resource, provider)
                _collect(result, response, "Analyze", default_urn=resource["urn"])
            response = self.analyze_stack(resources, providers)
            _collect(result, response, "AnalyzeStack", default_urn="")
        order = {r["urn"]: i for i, r in enumerate(resources)}
        for policy in result.policies:
            policy.update(self.effective.get(policy["name"], {}))
            policy["judged"] = sorted(self.judged.get(policy["name"], ()), key=lambda urn: order.get(urn, len(order)))
        return result


def analyze_record(
    record: Mapping[str, Any],
    policies: Sequence[Policy] | None = None,
    policy_config: Mapping[str, Any] | None = None,
    engine_env: bool = False,
) -> AnalysisResult:
    """Judge a recorded stack with the project's pack (or with `policies` only)."""
    return PackAnalyzer(policies).run(record, policy_config=policy_config, engine_env=engine_env)


# --- helpers -------------------------------------------------------------------------------


def pack_version() -> str:
    """The pack's version as the CLI reports it: `version` in policies/PulumiPolicy.yaml."""
    path = Path(__file__).resolve().parent.parent / "policies" / "PulumiPolicy.yaml"
    data = yaml.safe_load(path.read_text()) or {}
    return str(data.get("version", ""))


def _level(value: Any, policy: str = "") -> int:
    if isinstance(value, str) and value in _LEVEL_VALUES:
        return _LEVEL_VALUES[value]
    where = f"policy config for {policy!r}: " if policy else ""
    raise ValueError(f"{where}unknown enforcement level {value!r}; use one of {', '.join(sorted(_LEVEL_VALUES))}")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object", type(None): "null"}.get(type(value), "an object")


def _did_you_mean(given: str, choices: Any) -> str:
    import difflib

    close = difflib.get_close_matches(given, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_schema(policy: str, schema: Mapping[str, Any], properties: Mapping[str, Any]) -> None:
    """The given properties against the policy's config schema (JSON Schema), as the CLI validates them."""
    if not properties:
        return
    full = {"type": "object", **schema}
    full["required"] = [key for key in full.get("required") or [] if key in properties]
    validator = jsonschema.Draft7Validator(full)
    errors = sorted(validator.iter_errors(dict(properties)), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        expected = error.schema.get("type") if isinstance(error.schema, Mapping) else None
        detail = (
            f"must be {_article(expected)} ({error.message})"
            if error.validator == "type" and expected
            else error.message
        )
        raise ValueError(
            f"policy config for {policy!r} sets {path or 'its properties'} to {json.dumps(error.instance)}, "
            f"which does not fit its config schema: {detail}"
        )


def _article(json_type: Any) -> str:
    names = {"array": "an array", "object": "an object", "integer": "an integer"}
    if isinstance(json_type, list):
        return " or ".join(_article(t) for t in json_type)
    return names.get(str(json_type), f"a {json_type}")


class _TrackedResourceArgs(ResourceValidationArgs):
    """ResourceValidationArgs that notes when a validation reads the resource's properties."""

    _on_read: Callable[[str], None]

    @property  # type: ignore[override]
    def props(self) -> Mapping[str, Any]:
        self._on_read(self.urn)
        return self.__dict__["props"]


class _TrackedPolicyResource(PolicyResource):
    """A stack policy's PolicyResource that notes when the policy reads its properties."""

    _on_read: Callable[[str], None]

    @property  # type: ignore[override]
    def props(self) -> Mapping[str, Any]:
        self._on_read(self.urn)
        return self.__dict__["props"]


def _tracked(policy: Policy, judged: dict[str, set[str]]) -> Policy:
    """A copy of `policy` whose validation records the URNs whose properties it reads into `judged`."""
    tracked = copy.copy(policy)
    validate = policy.validate
    seen = judged

    def on_read(urn: str) -> None:
        seen.setdefault(policy.name, set()).add(urn)

    def wrapper(args: Any, report_violation: Any) -> Any:
        if isinstance(args, ResourceValidationArgs):
            args.__class__ = _TrackedResourceArgs
            args._on_read = on_read
        for resource in getattr(args, "resources", None) or []:
            if type(resource) is PolicyResource:
                resource.__class__ = _TrackedPolicyResource
            resource._on_read = on_read
        return validate(args, report_violation)

    tracked.validate = wrapper  # type: ignore[method-assign]
    return tracked


def _provider_message(provider: Mapping[str, Any]) -> analyzer_pb2.AnalyzerProviderResource:
    return analyzer_pb2.AnalyzerProviderResource(
        type=provider["type"],
        urn=provider["urn"],
        name=provider["name"],
        properties=_struct(provider.get("inputs")),
    )


def _policy_dict(policy: analyzer_pb2.PolicyInfo) -> dict[str, Any]:
    kind = {analyzer_pb2.POLICY_TYPE_RESOURCE: "resource", analyzer_pb2.POLICY_TYPE_STACK: "stack"}
    return {
        "name": policy.name,
        "description": policy.description,
        "enforcement_level": _LEVEL_NAMES.get(policy.enforcementLevel, str(policy.enforcementLevel)),
        "type": kind.get(policy.policy_type, "unknown"),
        "config": sorted(json_format.MessageToDict(policy.configSchema.properties)),
    }


def _collect(result: AnalysisResult, response: analyzer_pb2.AnalyzeResponse, call: str, default_urn: str) -> None:
    for diagnostic in response.diagnostics:
        # The engine attributes a resource policy's diagnostic to the analyzed resource.
        urn = default_urn if call == "Analyze" else diagnostic.urn
        result.diagnostics.append(
            Diagnostic(
                policy=diagnostic.policyName,
                enforcement_level=_LEVEL_NAMES.get(diagnostic.enforcementLevel, "advisory"),
                urn=urn,
                message=diagnostic.message,
                description=diagnostic.description,
                pack=diagnostic.policyPackName,
                call=call,
            )
        )
    for entry in response.not_applicable:
        result.not_applicable.append({"policy": entry.policy_name, "reason": entry.reason, "call": call})


@contextmanager
def _engine_environment(record: Mapping[str, Any], dry_run: bool, enabled: bool) -> Iterator[None]:
    """The PULUMI_* variables the engine gives a pack process, restored afterwards."""
    if not enabled:
        yield
        return
    values = {
        "PULUMI_PROJECT": str(record.get("project", "")),
        "PULUMI_STACK": str(record.get("stack", "")),
        "PULUMI_DRY_RUN": "true" if dry_run else "false",
        "PULUMI_CONFIG": json.dumps(dict(record.get("config") or {})),
    }
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
