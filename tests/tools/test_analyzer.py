"""tools.analyzer drives pulumi-policy's real servicer the way the engine does."""

from __future__ import annotations

import os

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from tools import analyzer
from tools.analyzer import UNKNOWN, PackAnalyzer, analyze_record

STACK_URN = "urn:pulumi:dev::ratelimited-platform::pulumi:pulumi:Stack::ratelimited-platform-dev"
PROVIDER_URN = "urn:pulumi:dev::ratelimited-platform::pulumi:providers:aws::aws-eu-west-1"
EDGE_URN = "urn:pulumi:dev::ratelimited-platform::ratelimited:index:Edge::eu-west-1-edge"
ALB_URN = (
    "urn:pulumi:dev::ratelimited-platform::ratelimited:index:Edge$aws:lb/loadBalancer:LoadBalancer::eu-west-1-edge-alb"
)


def resource(urn, type_, name, inputs=None, parent="", custom=True, provider="", **extra):
    return {
        "urn": urn,
        "type": type_,
        "name": name,
        "custom": custom,
        "remote": False,
        "parent": parent,
        "provider": provider,
        "dependencies": [],
        "property_dependencies": {},
        "inputs": inputs or {},
        "outputs": dict(inputs or {}),
        "id": UNKNOWN if custom else "",
        **extra,
    }


@pytest.fixture
def record():
    return {
        "project": "ratelimited-platform",
        "stack": "dev",
        "preview": True,
        "config": {"ratelimited-platform:regions": '["eu-west-1"]'},
        "resources": [
            resource(STACK_URN, "pulumi:pulumi:Stack", "ratelimited-platform-dev", custom=False),
            resource(PROVIDER_URN, "pulumi:providers:aws", "aws-eu-west-1", {"region": "eu-west-1"}, STACK_URN),
            resource(EDGE_URN, "ratelimited:index:Edge", "eu-west-1-edge", parent=STACK_URN, custom=False),
            resource(
                ALB_URN,
                "aws:lb/loadBalancer:LoadBalancer",
                "eu-west-1-edge-alb",
                {
                    "internal": UNKNOWN,
                    "loadBalancerType": "application",
                    "secret": {
                        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                        "value": "s3cr3t",
                    },
                },
                EDGE_URN,
                provider=f"{PROVIDER_URN}::{UNKNOWN}",
            ),
        ],
        "exports": {},
    }


def test_engine_sequence_and_what_each_call_receives(record, monkeypatch):
    seen = []
    checked = []

    def validate(args, report_violation):
        checked.append((args.resource_type, args.name, args.opts.parent, args.provider and args.provider.name))

    def validate_stack(args, report_violation):
        alb = next(r for r in args.resources if r.name == "eu-west-1-edge-alb")
        checked.append(("stack", len(args.resources), alb.parent.name, alb.provider.name, alb.props["secret"]))

    spy = [
        ResourceValidationPolicy(name="spy", description="Sees every resource.", validate=validate),
        StackValidationPolicy(name="spy-stack", description="Sees the stack.", validate=validate_stack),
    ]
    pack = PackAnalyzer(spy)
    for method in ("GetAnalyzerInfo", "Configure", "ConfigureStack", "Analyze", "AnalyzeStack"):
        original = getattr(pack.servicer, method)

        def wrapped(request, context, _original=original, _method=method):
            seen.append(_method)
            return _original(request, context)

        monkeypatch.setattr(pack.servicer, method, wrapped)

    pack.run(record)

    assert seen == ["GetAnalyzerInfo", "Configure", "ConfigureStack"] + ["Analyze"] * 4 + ["AnalyzeStack"]
    # Components, providers and the root stack reach Analyze too, as in a real engine run.
    assert checked[:4] == [
        ("pulumi:pulumi:Stack", "ratelimited-platform-dev", None, None),
        ("pulumi:providers:aws", "aws-eu-west-1", STACK_URN, None),
        ("ratelimited:index:Edge", "eu-west-1-edge", STACK_URN, None),
        ("aws:lb/loadBalancer:LoadBalancer", "eu-west-1-edge-alb", EDGE_URN, "aws-eu-west-1"),
    ]
    assert checked[4] == ("stack", 4, "eu-west-1-edge", "aws-eu-west-1", "s3cr3t")


def test_naive_policy_gets_the_preview_skip_advisory_and_the_pack_does_not(record):
    def naive(args, report_violation):
        if args.resource_type == "aws:lb/loadBalancer:LoadBalancer" and not args.props["internal"]:
            report_violation("needs a WAF")

    result = analyze_record(record, [ResourceValidationPolicy(name="naive", description="Naive.", validate=naive)])

    [skip] = result.preview_skips
    assert skip.enforcement_level == "advisory"
    assert skip.message.startswith("can't run policy 'naive' from policy pack 'ratelimited-platform-policies@v0.0.1'")
    assert analyze_record(record).preview_skips == []


def test_resource_diagnostics_belong_to_the_analyzed_resource(record):
    result = analyze_record(record)

    [diagnostic] = result.for_policy("alb-drop-invalid-headers")
    assert diagnostic.urn == ALB_URN
    assert diagnostic.resource_name == "eu-west-1-edge-alb"
    assert diagnostic.resource_type == "aws:lb/loadBalancer:LoadBalancer"
    assert diagnostic.call == "Analyze"
    assert result.for_policy("waf-before-alb")[0].call == "AnalyzeStack"


def test_configure_sends_schema_defaults_and_overrides(record):
    configs = []

    def validate(args, report_violation):
        configs.append(dict(args.get_config()))

    policy = ResourceValidationPolicy(
        name="configured",
        description="Reads its config.",
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=analyzer_schema(),
    )

    analyze_record(record, [policy])
    analyze_record(record, [policy], policy_config={"configured": {"limit": 5}})

    assert configs[0] == {"limit": 3, "names": []}
    assert configs[-1] == {"limit": 5, "names": []}


def analyzer_schema():
    from pulumi_policy import PolicyConfigSchema

    return PolicyConfigSchema(
        properties={"limit": {"type": "integer", "default": 3}, "names": {"type": "array", "default": []}}
    )


def test_config_can_set_every_policy_level_at_once(record):
    result = analyze_record(record, policy_config={"all": "advisory"})

    assert result.diagnostics
    assert result.mandatory == []


def test_disabled_policy_does_not_run(record):
    result = analyze_record(record, policy_config={"waf-before-alb": {"enforcementLevel": "disabled"}})

    assert result.for_policy("waf-before-alb") == []


def test_config_for_an_unknown_policy_is_refused(record):
    with pytest.raises(ValueError, match="'waf-everywhere', which is not a policy"):
        analyze_record(record, policy_config={"waf-everywhere": "mandatory"})


def test_config_property_outside_the_schema_is_refused(record):
    with pytest.raises(ValueError, match="sets 'exemptResource', which is not in its config schema"):
        analyze_record(record, policy_config={"waf-before-alb": {"exemptResource": ["x"]}})


def test_engine_environment_is_set_only_inside_and_restored(record, monkeypatch):
    monkeypatch.setenv("PULUMI_STACK", "before")
    monkeypatch.delenv("PULUMI_DRY_RUN", raising=False)

    with analyzer._engine_environment(record, dry_run=True, enabled=True):
        inside = {k: os.environ.get(k) for k in ("PULUMI_PROJECT", "PULUMI_STACK", "PULUMI_DRY_RUN")}

    assert inside == {"PULUMI_PROJECT": "ratelimited-platform", "PULUMI_STACK": "dev", "PULUMI_DRY_RUN": "true"}
    assert os.environ["PULUMI_STACK"] == "before"
    assert "PULUMI_DRY_RUN" not in os.environ


def test_state_prefers_known_inputs_over_unknown_outputs_and_adds_the_id():
    state = analyzer._state(
        {
            "custom": True,
            "id": "alb-1",
            "inputs": {"name": "known", "internal": False},
            "outputs": {"name": UNKNOWN, "arn": UNKNOWN, "internal": True},
        }
    )

    assert state == {"name": "known", "internal": True, "arn": UNKNOWN, "id": "alb-1"}
