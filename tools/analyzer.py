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

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel, Policy
from pulumi_policy.policy import _PolicyAnalyzerServicer

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
    """What one engine-like run of the pack reported."""

    pack: str
    policies: list[dict[str, Any]]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    not_applicable: list[dict[str, str]] = field(default_factory=list)

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
        self.servicer = _PolicyAnalyzerServicer(
            arguments["name"],
            "0.0.1",  # what PolicyPack passes; the CLI shows PulumiPolicy.yaml's version instead
            arguments["policies"],
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
        """Configure with every policy's level and properties, schema defaults filled in (as the CLI does)."""
        policy_config = dict(policy_config or {})
        known = {p.name for p in info.policies}
        for key in policy_config:
            if key not in known and key != "all":
                raise ValueError(f"policy config names {key!r}, which is not a policy of the pack {self.name!r}")
        everyone = policy_config.get("all")
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for policy in info.policies:
            level = policy.enforcementLevel
            properties: dict[str, Any] = {}
            schema_properties = json_format.MessageToDict(policy.configSchema.properties)
            for key, schema in schema_properties.items():
                if isinstance(schema, dict) and "default" in schema:
                    properties[key] = schema["default"]
            for given in (everyone, policy_config.get(policy.name)):
                if isinstance(given, str):
                    level = _level(given)
                elif isinstance(given, Mapping):
                    for key, value in given.items():
                        if key == "enforcementLevel":
                            level = _level(value)
                        elif given is everyone:
                            continue  # "all" sets only the enforcement level
                        elif key not in schema_properties:
                            raise ValueError(
                                f"policy config for {policy.name!r} sets {key!r}, which is not in its config "
                                f"schema ({', '.join(sorted(schema_properties)) or 'no properties'})"
                            )
                        else:
                            properties[key] = value
            entry = request.policyConfig[policy.name]
            entry.enforcementLevel = level
            entry.properties.update(properties)
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
            result = AnalysisResult(pack=info.name, policies=[_policy_dict(p) for p in info.policies])
            for resource in resources:
                provider = providers.get(_provider_urn(resource.get("provider") or ""))
                response = self.analyze(resource, provider)
                _collect(result, response, "Analyze", default_urn=resource["urn"])
            response = self.analyze_stack(resources, providers)
            _collect(result, response, "AnalyzeStack", default_urn="")
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


def _level(value: Any) -> int:
    if isinstance(value, str) and value in _LEVEL_VALUES:
        return _LEVEL_VALUES[value]
    raise ValueError(f"unknown enforcement level {value!r}; use one of {sorted(_LEVEL_VALUES)}")


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
