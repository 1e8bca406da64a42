"""waf-before-alb, waf-before-api-stage and waf-before-cloudfront through the real analyzer.

Every test runs twice (the `preview` fixture): in preview the association's `resourceArn` is
unknown and only its property dependency ties it to the load balancer; in update the ARNs are
known.
"""

from __future__ import annotations

import pytest

from tools.analyzer import UNKNOWN

REGION = "eu-west-1"
ALB = f"{REGION}-edge-alb"
ASSOCIATION = f"{REGION}-edge-waf-association"
STAGE = f"{REGION}-api-stage"
CDN = "global-edge-cdn"


def test_happy_path_stack_passes_every_policy_without_preview_skips(platform):
    result = platform.analyze()

    assert result.diagnostics == []
    assert result.preview_skips == []


def test_alb_without_association_is_a_mandatory_violation(platform, found):
    platform.remove(ASSOCIATION)

    result = platform.analyze()

    assert found(result, "waf-before-alb") == [
        (
            ALB,
            "Every internet-facing application load balancer has a WAFv2 web ACL associated.\n"
            f"The internet-facing ALB '{ALB}' has no WAFv2 web ACL associated. Create an "
            "aws.wafv2.WebAclAssociation whose resource_arn is this load balancer's arn and whose "
            "web_acl_arn is a REGIONAL web ACL, or make the load balancer internal.",
        )
    ]
    [diagnostic] = result.for_policy("waf-before-alb")
    assert diagnostic.enforcement_level == "mandatory"
    assert diagnostic.urn == platform.get(ALB)["urn"]
    assert diagnostic.call == "AnalyzeStack"


def test_association_with_unknown_arn_that_depends_on_the_alb_passes(platform):
    association = platform.get(ASSOCIATION)
    assert association["property_dependencies"]["resourceArn"] == [platform.get(ALB)["urn"]]
    if platform.preview:
        assert association["inputs"]["resourceArn"] == UNKNOWN

    assert platform.analyze().for_policy("waf-before-alb") == []


def test_association_on_another_alb_does_not_protect_this_one(platform, found):
    other = platform.add(
        "aws:lb/loadBalancer:LoadBalancer",
        f"{REGION}-edge-other-alb",
        {"loadBalancerType": "application", "internal": False, "dropInvalidHeaderFields": True},
    )
    platform.remove(ASSOCIATION)
    acl = platform.get(f"{REGION}-edge-waf")
    platform.add(
        "aws:wafv2/webAclAssociation:WebAclAssociation",
        ASSOCIATION,
        {"resourceArn": platform.ref(other, "arn"), "webAclArn": platform.ref(acl, "arn")},
    )

    result = platform.analyze()

    assert [name for name, _ in found(result, "waf-before-alb")] == [ALB]


def test_association_found_by_known_arn_without_property_dependency(build, found):
    stack = build(preview=False)
    stack.get(ASSOCIATION)["property_dependencies"] = {}

    assert found(stack.analyze(), "waf-before-alb") == []


def test_known_arns_that_differ_override_a_property_dependency(build, found):
    stack = build(preview=False)
    stack.get(ASSOCIATION)["inputs"]["resourceArn"] = "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/x"
    stack.get(ASSOCIATION)["outputs"]["resourceArn"] = "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/x"

    assert [name for name, _ in found(stack.analyze(), "waf-before-alb")] == [ALB]


def test_internal_alb_passes_without_association(platform, found):
    platform.remove(ASSOCIATION)
    platform.set_input(ALB, "internal", True)

    assert found(platform.analyze(), "waf-before-alb") == []


def test_alb_with_unknown_internal_flag_is_treated_as_internet_facing(platform, found):
    platform.remove(ASSOCIATION)
    platform.set_input(ALB, "internal", UNKNOWN)

    [(name, message)] = found(platform.analyze(), "waf-before-alb")

    assert name == ALB
    assert "'internal' flag is unknown until the update" in message


def test_alb_without_internal_flag_defaults_to_internet_facing(platform, found):
    platform.remove(ASSOCIATION)
    platform.set_input(ALB, "internal", None)

    assert [name for name, _ in found(platform.analyze(), "waf-before-alb")] == [ALB]


def test_network_load_balancer_needs_no_waf(platform, found):
    platform.remove(ASSOCIATION)
    platform.set_input(ALB, "loadBalancerType", "network")

    assert found(platform.analyze(), "waf-before-alb") == []


def test_exempt_alb_is_skipped(platform, found):
    platform.remove(ASSOCIATION)

    result = platform.analyze(policy_config={"waf-before-alb": {"exemptResources": [f"{REGION}-edge-*"]}})

    assert found(result, "waf-before-alb") == []


def test_enforcement_level_can_be_lowered_in_config(platform):
    platform.remove(ASSOCIATION)

    result = platform.analyze(policy_config={"waf-before-alb": "advisory"})

    assert [d.enforcement_level for d in result.for_policy("waf-before-alb")] == ["advisory"]


def test_api_stage_without_association_is_a_violation(platform, found):
    platform.remove(f"{REGION}-api-waf-association")

    [(name, message)] = found(platform.analyze(), "waf-before-api-stage")

    assert name == STAGE
    assert f"The API Gateway stage '{STAGE}' has no WAFv2 web ACL associated." in message


@pytest.mark.parametrize("types", ["PRIVATE", ["PRIVATE"]], ids=["string", "list"])
def test_private_api_stage_needs_no_waf(platform, found, types):
    # pulumi-aws 7 spells endpoint_configuration.types as one string; earlier versions as a list.
    platform.remove(f"{REGION}-api-waf-association")
    platform.set_input(f"{REGION}-api-rest", "endpointConfiguration", {"types": types})

    assert found(platform.analyze(), "waf-before-api-stage") == []


def test_alb_association_does_not_cover_the_api_stage(platform, found):
    platform.remove(f"{REGION}-api-waf-association")

    result = platform.analyze()

    assert found(result, "waf-before-alb") == []
    assert [name for name, _ in found(result, "waf-before-api-stage")] == [STAGE]


def test_cloudfront_without_web_acl_is_a_violation(platform, found):
    platform.set_input(CDN, "webAclId", None)

    [(name, message)] = found(platform.analyze(), "waf-before-cloudfront")

    assert name == CDN
    assert "has no WAFv2 web ACL. Set web_acl_id" in message


def test_cloudfront_with_unknown_acl_not_derived_from_a_web_acl_is_a_violation(platform, found):
    platform.set_input(CDN, "webAclId", UNKNOWN)  # set_input drops the property dependency

    [(name, message)] = found(platform.analyze(), "waf-before-cloudfront")

    assert name == CDN
    assert "not derived from any aws.wafv2.WebAcl" in message


def test_cloudfront_with_waf_classic_id_is_a_violation(platform, found):
    platform.set_input(CDN, "webAclId", "4e3b1f1a-0000-1111-2222-333344445555")

    [(name, message)] = found(platform.analyze(), "waf-before-cloudfront")

    assert name == CDN
    assert "not a WAFv2 web ACL arn" in message


def test_cloudfront_with_known_wafv2_arn_passes(platform, found):
    platform.set_input(CDN, "webAclId", "arn:aws:wafv2:us-east-1:123456789012:global/webacl/edge/abc")

    assert found(platform.analyze(), "waf-before-cloudfront") == []


def test_every_stage_is_judged_after_an_exempt_one(platform, found):
    platform.add_api_stage("v2")
    platform.remove(f"{REGION}-api-waf-association")

    result = platform.analyze(policy_config={"waf-before-api-stage": {"exemptResources": [STAGE]}})

    assert [name for name, _ in found(result, "waf-before-api-stage")] == [f"{REGION}-api-stage-v2"]


def test_every_distribution_is_judged_after_one_with_its_acl(platform, found):
    # The first distribution's ACL comes from a WebAcl (unknown in preview, known in update); the next has none.
    platform.add("aws:cloudfront/distribution:Distribution", "global-edge-cdn-2", {"enabled": True})

    assert [name for name, _ in found(platform.analyze(), "waf-before-cloudfront")] == ["global-edge-cdn-2"]


def test_every_distribution_is_judged_after_an_exempt_one(platform, found):
    platform.add("aws:cloudfront/distribution:Distribution", "global-edge-cdn-2", {"enabled": True})
    config = {"waf-before-cloudfront": {"exemptResources": ["global-edge-cdn"]}}

    assert [name for name, _ in found(platform.analyze(policy_config=config), "waf-before-cloudfront")] == [
        "global-edge-cdn-2"
    ]


def test_every_alb_is_judged_after_one_with_its_acl(platform, found):
    platform.add("aws:lb/loadBalancer:LoadBalancer", f"{REGION}-edge-alb-2", {"loadBalancerType": "application"})

    assert [name for name, _ in found(platform.analyze(), "waf-before-alb")] == [f"{REGION}-edge-alb-2"]
