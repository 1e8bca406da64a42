"""The mocks answer what the providers answer: formats read in the providers' sources and AWS's API references
(cited beside each output in tools/mocks.py). A program that works only against a mock's invented shape would
fail at its first `pulumi up`; these keep the stand-in honest."""

from __future__ import annotations

import re

import pytest

from tools.mocks import ACCOUNT, availability_zones

_ARN = re.compile(r"^arn:aws:[a-z0-9-]+:([a-z]{2}-[a-z]+-\d)?:(\d{12}|aws)?:.+$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _outputs(stack, type_):
    found = stack.of_type(type_)
    assert found, f"the program registers no {type_}"
    return found


def test_pulumi_eks_oidc_outputs(prod_stack):
    for cluster in _outputs(prod_stack, "eks:index:Cluster"):
        out = cluster["outputs"]
        # cluster.ts: oidcProviderUrl is the issuer, with its scheme; oidcIssuer drops it (SDK docstring).
        assert re.fullmatch(r"https://oidc\.eks\.[a-z0-9-]+\.amazonaws\.com/id/[0-9A-F]{32}", out["oidcProviderUrl"])
        assert out["oidcIssuer"] == out["oidcProviderUrl"].removeprefix("https://")
        assert out["oidcProviderArn"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{out['oidcIssuer']}"
        # The component's region is its `providers` entry (a remote component has no `provider` of its own).
        region = cluster["name"].removesuffix("-eks-cluster")
        assert out["oidcIssuer"].startswith(f"oidc.eks.{region}.amazonaws.com/"), (cluster["name"], out["oidcIssuer"])


def test_every_arn_output_has_the_arn_grammar(prod_stack):
    arns = [
        (r["name"], r["outputs"]["arn"])
        for r in prod_stack.resources
        if r["custom"] and isinstance((r.get("outputs") or {}).get("arn"), str)
    ]
    assert len(arns) > 100
    assert [(n, a) for n, a in arns if not _ARN.match(a)] == []


def test_elb_ids_and_arns(prod_stack):
    for lb in _outputs(prod_stack, "aws:lb/loadBalancer:LoadBalancer"):
        out = lb["outputs"]
        kind = "net" if lb["inputs"]["loadBalancerType"] == "network" else "app"
        assert re.fullmatch(rf"{kind}/{re.escape(out['name'])}/[0-9a-f]{{16}}", out["arnSuffix"])
        assert out["arn"].endswith(":loadbalancer/" + out["arnSuffix"])
        assert re.fullmatch(r"web-\d{26}|api-\d{26}", out["name"])  # name_prefix + 26 (id.PrefixedUniqueId)
    for tg in _outputs(prod_stack, "aws:lb/targetGroup:TargetGroup"):
        assert re.fullmatch(r"targetgroup/(web|api)-\d{26}/[0-9a-f]{16}", tg["outputs"]["arnSuffix"])
    for listener in _outputs(prod_stack, "aws:lb/listener:Listener"):
        lb_arn = listener["inputs"]["loadBalancerArn"]
        assert listener["outputs"]["arn"].startswith(lb_arn.replace(":loadbalancer/", ":listener/") + "/")


def test_alias_zone_ids_are_the_published_ones(prod_stack):
    published = {
        ("application", "eu-west-1"): "Z32O12XQLNTSW2",
        ("application", "us-east-1"): "Z35SXDOTRQ7X7K",
        ("network", "eu-west-1"): "Z2IFOLAFXWLO4F",
        ("network", "us-east-1"): "Z26RNL4JYFTOTI",
    }
    for lb in _outputs(prod_stack, "aws:lb/loadBalancer:LoadBalancer"):
        region = lb["outputs"]["arn"].split(":")[3]
        assert lb["outputs"]["zoneId"] == published[(lb["inputs"]["loadBalancerType"], region)]
    api_zones = {"eu-west-1": "ZLY8HYME6SFDD", "us-east-1": "Z1UJRXOUMOOFQ8"}
    for domain in _outputs(prod_stack, "aws:apigateway/domainName:DomainName"):
        region = domain["outputs"]["arn"].split(":")[3]
        assert domain["outputs"]["regionalZoneId"] == api_zones[region]


def test_ids_in_aws_formats(prod_stack):
    formats = {
        "aws:ec2/vpc:Vpc": r"vpc-[0-9a-f]{17}",
        "aws:ec2/subnet:Subnet": r"subnet-[0-9a-f]{17}",
        "aws:ec2/securityGroup:SecurityGroup": r"sg-[0-9a-f]{17}",
        "aws:ec2/natGateway:NatGateway": r"nat-[0-9a-f]{17}",
        "aws:ec2/vpcEndpoint:VpcEndpoint": r"vpce-[0-9a-f]{17}",
        "aws:kms/key:Key": _UUID.pattern[1:-1],
        "aws:wafv2/webAcl:WebAcl": _UUID.pattern[1:-1],
        "aws:cloudfront/distribution:Distribution": r"E[0-9A-Z]{13}",
        "aws:route53/healthCheck:HealthCheck": _UUID.pattern[1:-1],
    }
    for type_, pattern in formats.items():
        for resource in _outputs(prod_stack, type_):
            assert re.fullmatch(pattern, resource["id"]), (type_, resource["id"])
    # terraform-provider-aws appautoscaling/target.go: the target's id is its resource id.
    for target in _outputs(prod_stack, "aws:appautoscaling/target:Target"):
        assert target["id"] == target["inputs"]["resourceId"]


def test_acm_gives_one_validation_option_per_distinct_name(prod_stack):
    for cert in _outputs(prod_stack, "aws:acm/certificate:Certificate"):
        names = [cert["inputs"]["domainName"], *cert["inputs"].get("subjectAlternativeNames", [])]
        options = cert["outputs"]["domainValidationOptions"]
        assert [o["domainName"] for o in options] == list(dict.fromkeys(names))
        for option in options:
            assert option["resourceRecordType"] == "CNAME"
            assert option["resourceRecordName"].endswith("." + option["domainName"].removeprefix("*.") + ".")


def test_managed_cloudfront_policies_have_their_fixed_ids(prod_stack):
    (cdn,) = _outputs(prod_stack, "aws:cloudfront/distribution:Distribution")
    default = cdn["inputs"]["defaultCacheBehavior"]
    assert default["cachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # Managed-CachingDisabled
    assert default["responseHeadersPolicyId"] == "67f7725c-6f97-4210-82d7-5512b31e9d03"


def test_auto_names_follow_the_providers(dev_stack):
    # pulumi-aws: "<logical>-<7 hex>"; pulumi-kubernetes: "<logical>-<8 characters>".
    role = dev_stack.named("eu-west-1-eks-node-role")
    assert re.fullmatch(r"eu-west-1-eks-node-role-[0-9a-f]{7}", role["outputs"]["name"])
    for obj in dev_stack.of_type("kubernetes:*"):
        if obj["type"] == "kubernetes:helm.sh/v3:Release":
            assert obj["outputs"]["name"] == obj["inputs"]["name"]  # every release is named explicitly
        elif "name" not in (obj["inputs"].get("metadata") or {}):
            assert re.fullmatch(re.escape(obj["name"]) + r"-[0-9a-f]{8}", obj["outputs"]["metadata"]["name"])


_USE1 = [f"us-east-1{z}" for z in "abcdef"]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ({}, [*_USE1, "us-east-1-bos-1a"]),
        ({"excludeZoneIds": ["use1-az3"]}, [*_USE1[1:], "us-east-1-bos-1a"]),
        ({"filters": [{"name": "opt-in-status", "values": ["opt-in-not-required"]}]}, _USE1),
    ],
)
def test_availability_zones_honour_the_invokes_filters(args, names):
    assert availability_zones("us-east-1", args)["names"] == names


def test_unknown_invoke_filters_are_refused_not_ignored():
    with pytest.raises(NotImplementedError, match="zone-colour"):
        availability_zones("us-east-1", {"filters": [{"name": "zone-colour", "values": ["x"]}]})


def test_the_caller_is_a_role_session(dev_stack, monkeypatch):
    from tools.mocks import DEFAULT_CALLER_ARN, PlatformMocks

    assert re.fullmatch(r"arn:aws:sts::\d{12}:assumed-role/[\w+=,.@-]+/[\w+=,.@-]+", DEFAULT_CALLER_ARN)
    monkeypatch.setenv("RATELIMITED_MOCK_CALLER_ARN", "arn:aws:sts::123456789012:assumed-role/x/y")
    assert PlatformMocks().caller_arn.endswith("assumed-role/x/y")
