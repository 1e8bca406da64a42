"""The edge under mocks: the real `__main__.py` for dev (CloudFront off) and prod (CloudFront on, two regions).

The stacks come from the session fixtures in tests/conftest.py (one process per stack and mode); the
config variations here run once per module. Links between resources are asserted through property
dependencies (what a value was derived from), which also hold in preview where ARNs are unknown.
"""

from __future__ import annotations

import json

import pytest

from components.edge import (
    ALB_SSL_POLICY,
    CLOUDFRONT_PREFIX_LIST,
    HEALTH_PATH,
    ORIGIN_HEADER,
    WEB_TRAFFIC_PORT,
    GlobalEdgeArgs,
    RegionalEdgeArgs,
    _validate_global,
    _validate_regional,
    route53_healthcheck_prefix_list,
)
from tests.components.programs.edge_helpers import (
    GATEWAY_HEALTH_CHECK,
    alb,
    assert_reaches_only_the_gateway_pods,
    config,
    mock_invoke,
    one,
    referrers,
    regions,
    variant,
)
from tools import stack_files
from tools.records import RecordedStack, is_unknown, unsecret

WAF_ASSOC = "aws:wafv2/webAclAssociation:WebAclAssociation"
LISTENER = "aws:lb/listener:Listener"
RULE = "aws:lb/listenerRule:ListenerRule"
RECORD = "aws:route53/record:Record"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
# TLS 1.2+ ALB policies (ELB's predefined names); anything else (TLS 1.0/1.1) fails.
TLS12_POLICIES = {
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
}
MANAGED_GROUPS = {
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
}


@pytest.fixture(params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> RecordedStack:
    return request.getfixturevalue(f"{request.param}_stack")


@pytest.fixture(scope="session")
def prod_without_cloudfront() -> RecordedStack:
    """prod with CloudFront turned off: the ALBs must open up, the origin-header machinery must go."""
    return variant("prod-open")


def _regional_acl(stack: RecordedStack, region: str) -> dict:
    acl = stack.named(f"{region}-edge-waf")
    assert acl["type"] == "aws:wafv2/webAcl:WebAcl"
    return acl


def _secret_of(stack: RecordedStack) -> str:
    return unsecret(stack.named("origin-header")["outputs"]["result"])


# -- WAF ------------------------------------------------------------------------------------------
def test_each_alb_has_exactly_one_waf_association_with_its_regional_acl(stack: RecordedStack) -> None:
    for region in regions(stack):
        lb = alb(stack, region)
        assocs = referrers(stack, WAF_ASSOC, lb, "resourceArn")
        assert len(assocs) == 1, f"{region}: ALB has {len(assocs)} WAF associations"
        acl = _regional_acl(stack, region)
        assert stack.depends_on(assocs[0], acl, "webAclArn")
        assert assocs[0]["inputs"]["resourceArn"] == lb["outputs"]["arn"]
        assert acl["inputs"]["scope"] == "REGIONAL"
        assert stack.provider_name(acl) == stack.provider_name(lb) == f"aws-{region}"


def test_regional_acl_has_managed_groups_and_rate_rule_from_config(stack: RecordedStack) -> None:
    limit = config(stack, "wafRateLimit")
    for region in regions(stack):
        rules = _regional_acl(stack, region)["inputs"]["rules"]
        managed = {
            r["statement"]["managedRuleGroupStatement"]["name"]: r
            for r in rules
            if "managedRuleGroupStatement" in r["statement"]
        }
        assert set(managed) == MANAGED_GROUPS
        for rule in managed.values():
            assert rule["statement"]["managedRuleGroupStatement"]["vendorName"] == "AWS"
            assert rule["overrideAction"] == {"none": {}}, "a managed group in count mode blocks nothing"
        rate = one([r for r in rules if "rateBasedStatement" in r["statement"]], "rate rule")
        statement = rate["statement"]["rateBasedStatement"]
        assert statement["limit"] == limit
        assert statement["aggregateKeyType"] == "IP"
        # The window the wafRateLimit key's description promises ("per 5 minutes" in Pulumi.yaml).
        assert "per client IP per 5 minutes" in stack_files.declarations()["wafRateLimit"]["description"]
        assert statement["evaluationWindowSec"] == 5 * 60
        assert rate["action"]["block"]["customResponse"]["responseCode"] == 429
        assert len({r["priority"] for r in rules}) == len(rules)
        for r in rules:
            assert r["visibilityConfig"]["cloudwatchMetricsEnabled"] is True


def test_rate_rule_exempts_only_requests_with_the_exact_origin_secret(
    dev_stack: RecordedStack, prod_stack: RecordedStack
) -> None:
    """Behind CloudFront the ALB sees CloudFront's addresses; CloudFront's own ACL counted those per client."""
    for region in regions(dev_stack):
        rules = _regional_acl(dev_stack, region)["inputs"]["rules"]
        rate = next(r for r in rules if "rateBasedStatement" in r["statement"])
        assert "scopeDownStatement" not in rate["statement"]["rateBasedStatement"]
    secret = _secret_of(prod_stack)
    for region in regions(prod_stack):
        rules = _regional_acl(prod_stack, region)["inputs"]["rules"]
        rate = next(r for r in rules if "rateBasedStatement" in r["statement"])
        match = rate["statement"]["rateBasedStatement"]["scopeDownStatement"]["notStatement"]["statement"]
        byte_match = match["byteMatchStatement"]
        assert byte_match["fieldToMatch"] == {"singleHeader": {"name": ORIGIN_HEADER}}
        assert byte_match["positionalConstraint"] == "EXACTLY"
        assert unsecret(byte_match["searchString"]) == secret


def test_every_web_acl_logs_to_an_aws_waf_logs_group_with_secrets_redacted(stack: RecordedStack) -> None:
    acls = stack.of_type("aws:wafv2/webAcl:WebAcl")
    assert acls
    for acl in acls:
        logging = one(
            referrers(stack, "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration", acl, "resourceArn"),
            f"logging configuration of {acl['name']}",
        )
        groups = [
            g
            for g in stack.of_type("aws:cloudwatch/logGroup:LogGroup")
            if stack.depends_on(logging, g, "logDestinationConfigs")
        ]
        group = one(groups, f"log group of {acl['name']}")
        assert group["inputs"]["namePrefix"].startswith("aws-waf-logs-")
        assert group["inputs"]["retentionInDays"] > 0
        assert stack.provider_name(group) == stack.provider_name(acl)
        # The whole list: each of these headers carries a secret (origin secret, API key, credentials).
        assert logging["inputs"]["redactedFields"] == [
            {"singleHeader": {"name": ORIGIN_HEADER}},
            {"singleHeader": {"name": "x-api-key"}},
            {"singleHeader": {"name": "authorization"}},
        ]


# -- ALB ------------------------------------------------------------------------------------------
def test_alb_is_internet_facing_in_the_public_subnets_with_invalid_headers_dropped(stack: RecordedStack) -> None:
    for region in regions(stack):
        lb = alb(stack, region)
        inputs = lb["inputs"]
        assert inputs["internal"] is False
        assert inputs["dropInvalidHeaderFields"] is True
        assert inputs["enableDeletionProtection"] is config(stack, "deletionProtection")
        subnets = [stack.by_urn[u]["name"] for u in lb["property_dependencies"]["subnets"]]
        assert sorted(subnets) == [f"{region}-eks-public-{i}" for i in range(3)]


def test_https_listener_uses_a_tls12_policy_and_a_validated_certificate(stack: RecordedStack) -> None:
    for region in regions(stack):
        lb = alb(stack, region)
        listeners = referrers(stack, LISTENER, lb, "loadBalancerArn")
        https = one([x for x in listeners if x["inputs"]["protocol"] == "HTTPS"], "HTTPS listener")
        assert https["inputs"]["port"] == 443
        assert https["inputs"]["sslPolicy"] in TLS12_POLICIES
        assert https["inputs"]["sslPolicy"] == ALB_SSL_POLICY
        validation = stack.named(f"{region}-edge-origin-cert-validation")
        assert stack.depends_on(https, validation, "certificateArn"), "a listener must wait for ACM validation"
        cert = stack.named(f"{region}-edge-origin-cert")
        domain = config(stack, "domain")
        assert cert["inputs"]["domainName"] == f"origin.{domain}"
        assert sorted(cert["inputs"]["subjectAlternativeNames"]) == sorted([domain, f"www.{domain}"])
        assert cert["inputs"]["validationMethod"] == "DNS"
        # One validation record per name, carrying exactly what ACM asked for that name.
        records = [stack.by_urn[u] for u in validation["property_dependencies"]["validationRecordFqdns"]]
        asked = {o["resourceRecordName"]: o["resourceRecordValue"] for o in cert["outputs"]["domainValidationOptions"]}
        assert {r["inputs"]["name"]: r["inputs"]["records"][0] for r in records} == asked
        assert all(r["inputs"]["type"] == "CNAME" and r["inputs"]["allowOverwrite"] is True for r in records)


def test_http_listener_only_redirects_to_https(stack: RecordedStack) -> None:
    for region in regions(stack):
        listeners = referrers(stack, LISTENER, alb(stack, region), "loadBalancerArn")
        assert sorted(x["inputs"]["port"] for x in listeners) == [80, 443]
        http = one([x for x in listeners if x["inputs"]["protocol"] == "HTTP"], "HTTP listener")
        (action,) = http["inputs"]["defaultActions"]
        assert action["type"] == "redirect"
        assert action["redirect"] == {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}
        assert referrers(stack, RULE, http, "listenerArn") == [], "the HTTP listener must not forward anything"


def test_access_logs_go_to_a_private_encrypted_expiring_bucket(stack: RecordedStack) -> None:
    for region in regions(stack):
        lb = alb(stack, region)
        logs = lb["inputs"]["accessLogs"]
        assert logs["enabled"] is True
        bucket = stack.named(f"{region}-edge-alb-logs")
        assert bucket["type"] == "aws:s3/bucket:Bucket"
        assert stack.depends_on(lb, bucket, "accessLogs")
        assert logs["bucket"] == bucket["outputs"]["bucket"]

        def attached(type_: str, bucket: dict = bucket) -> dict:
            return one(referrers(stack, type_, bucket, "bucket"), f"{type_} of {bucket['name']}")

        block = attached("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")["inputs"]
        assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                              "restrictPublicBuckets"))  # fmt: skip
        sse = attached("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
        assert sse["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
        ownership = attached("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
        assert ownership["inputs"]["rule"]["objectOwnership"] == "BucketOwnerEnforced"
        lifecycle = attached("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
        (rule,) = lifecycle["inputs"]["rules"]
        assert rule["status"] == "Enabled" and rule["expiration"]["days"] > 0
        policy = json.loads(attached("aws:s3/bucketPolicy:BucketPolicy")["inputs"]["policy"])
        delivery = next(s for s in policy["Statement"] if s["Effect"] == "Allow")
        assert delivery["Action"] == "s3:PutObject"
        assert delivery["Resource"] == f"{bucket['outputs']['arn']}/{logs['prefix']}/AWSLogs/123456789012/*"
        # eu-west-1 and us-east-1 predate August 2022: the regional ELB account delivers the logs.
        assert delivery["Principal"] == {
            "AWS": mock_invoke("aws:elb/getServiceAccount:getServiceAccount", region)["arn"]
        }
        deny = next(s for s in policy["Statement"] if s["Effect"] == "Deny")
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert deny["Resource"] == [bucket["outputs"]["arn"], f"{bucket['outputs']['arn']}/*"]  # bucket and objects
        # ELB checks its write access when logging is turned on: the ALB waits for the policy.
        assert attached("aws:s3/bucketPolicy:BucketPolicy")["urn"] in lb["dependencies"]


def test_web_target_group_checks_the_gateway_readiness_endpoint(stack: RecordedStack) -> None:
    for region in regions(stack):
        tg = stack.named(f"{region}-edge-web-tg")
        assert tg["inputs"]["targetType"] == "ip"
        assert tg["inputs"]["port"] == WEB_TRAFFIC_PORT
        assert tg["inputs"]["healthCheck"] == GATEWAY_HEALTH_CHECK
        (vpc,) = (stack.by_urn[u] for u in tg["property_dependencies"]["vpcId"])
        assert vpc["type"] == "aws:ec2/vpc:Vpc" and vpc["name"].startswith(f"{region}-")


# -- CloudFront and what it changes on the ALB ------------------------------------------------------
@pytest.mark.parametrize("fixture", ["dev_stack", "prod_stack", "prod_without_cloudfront"])
def test_cloudfront_and_its_origin_protection_exist_iff_config_says_so(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    stack: RecordedStack = request.getfixturevalue(fixture)
    enabled = config(stack, "cloudfrontEnabled")
    assert len(stack.of_type(DISTRIBUTION)) == (1 if enabled else 0)
    for region in regions(stack):
        lb = alb(stack, region)
        https = next(x for x in referrers(stack, LISTENER, lb, "loadBalancerArn") if x["inputs"]["port"] == 443)
        rules = referrers(stack, RULE, https, "listenerArn")
        header_rules = [r for r in rules if any("httpHeader" in c for c in r["inputs"]["conditions"])]
        groups = [stack.by_urn[u] for u in lb["property_dependencies"]["securityGroups"]]
        ingress = [r for r in stack.of_type(INGRESS) if any(stack.depends_on(r, g, "securityGroupId") for g in groups)]
        prefix_rules = [r for r in ingress if "prefixListId" in r["inputs"]]
        open_rules = [r for r in ingress if r["inputs"].get("cidrIpv4") == "0.0.0.0/0"]
        (default_action,) = https["inputs"]["defaultActions"]
        if enabled:
            assert len(header_rules) == 1
            (condition,) = header_rules[0]["inputs"]["conditions"]
            assert condition["httpHeader"]["httpHeaderName"] == ORIGIN_HEADER
            assert [unsecret(v) for v in condition["httpHeader"]["values"]] == [_secret_of(stack)]
            assert default_action["type"] == "fixed-response"
            assert default_action["fixedResponse"]["statusCode"] == "403"
            health = one([r for r in rules if r not in header_rules], "health-path rule")
            assert health["inputs"]["conditions"] == [{"pathPattern": {"values": [HEALTH_PATH]}}]
            assert health["inputs"]["actions"][0]["type"] == "forward"
            assert len(prefix_rules) == 2 and open_rules == []
        else:
            assert rules == [] and header_rules == []
            assert default_action["type"] == "forward"
            assert stack.depends_on(https, stack.named(f"{region}-edge-web-tg"), "defaultActions")
            assert prefix_rules == []
            assert sorted(r["inputs"]["fromPort"] for r in open_rules) == [80, 443]


def test_prefix_lists_sit_in_separate_security_groups_and_admit_only_https(prod_stack: RecordedStack) -> None:
    """CloudFront's list counts 55 rules, Route 53's 25: together they would break the 60-rule quota."""
    for region in regions(prod_stack):
        lb = alb(prod_stack, region)
        groups = [prod_stack.by_urn[u] for u in lb["property_dependencies"]["securityGroups"]]
        expected = {
            mock_invoke("aws:ec2/getManagedPrefixList:getManagedPrefixList", region, name=CLOUDFRONT_PREFIX_LIST)["id"],
            mock_invoke(
                "aws:ec2/getManagedPrefixList:getManagedPrefixList", region,
                name=route53_healthcheck_prefix_list(region),
            )["id"],
        }  # fmt: skip
        seen = {}
        for group in groups:
            rules = [r for r in prod_stack.of_type(INGRESS) if prod_stack.depends_on(r, group, "securityGroupId")]
            lists = {r["inputs"]["prefixListId"] for r in rules if "prefixListId" in r["inputs"]}
            assert len(lists) <= 1, f"{group['name']} holds {len(lists)} prefix lists"
            for r in rules:
                assert (r["inputs"]["fromPort"], r["inputs"]["toPort"]) == (443, 443)
                assert "cidrIpv4" not in r["inputs"]
            seen.update(dict.fromkeys(lists, group["name"]))
        assert set(seen) == expected


def test_distribution_serves_https_only_with_the_secret_header_and_the_global_acl(prod_stack: RecordedStack) -> None:
    dist = one(prod_stack.of_type(DISTRIBUTION), "distribution")
    inputs = dist["inputs"]
    domain = config(prod_stack, "domain")
    assert prod_stack.provider_name(dist) == "aws-global"
    assert sorted(inputs["aliases"]) == sorted([domain, f"www.{domain}"])
    assert inputs["priceClass"] == config(prod_stack, "cloudfrontPriceClass")
    (origin,) = inputs["origins"]
    assert origin["domainName"] == f"origin.{domain}"
    custom = origin["customOriginConfig"]
    assert custom["originProtocolPolicy"] == "https-only" and custom["originSslProtocols"] == ["TLSv1.2"]
    # CloudFront reaches the regions' ALBs on the port their HTTPS listeners open.
    https_ports = {x["inputs"]["port"] for x in prod_stack.of_type(LISTENER) if x["inputs"]["protocol"] == "HTTPS"}
    assert https_ports == {custom["httpsPort"]}
    (header,) = origin["customHeaders"]
    assert header["name"] == ORIGIN_HEADER and unsecret(header["value"]) == _secret_of(prod_stack)
    viewer = inputs["viewerCertificate"]
    assert viewer["minimumProtocolVersion"] == "TLSv1.2_2021" and viewer["sslSupportMethod"] == "sni-only"
    cert = prod_stack.named("global-edge-cloudfront-cert")
    assert prod_stack.provider_name(cert) == "aws-global", "CloudFront certificates must be in us-east-1"
    assert prod_stack.depends_on(dist, prod_stack.named("global-edge-cloudfront-cert-validation"), "viewerCertificate")

    acl = prod_stack.named("global-edge-cloudfront-waf")
    assert acl["inputs"]["scope"] == "CLOUDFRONT" and prod_stack.provider_name(acl) == "aws-global"
    assert prod_stack.depends_on(dist, acl, "webAclId")
    assert {r["name"] for r in acl["inputs"]["rules"]} >= MANAGED_GROUPS | {"rate-per-ip"}

    def policy_id(token: str, name: str) -> str:
        return mock_invoke(token, "us-east-1", name=name)["id"]

    cache_token = "aws:cloudfront/getCachePolicy:getCachePolicy"
    default = inputs["defaultCacheBehavior"]
    assert default["viewerProtocolPolicy"] == "https-only"
    assert default["cachePolicyId"] == policy_id(cache_token, "Managed-CachingDisabled")
    assert default["originRequestPolicyId"] == policy_id(
        "aws:cloudfront/getOriginRequestPolicy:getOriginRequestPolicy", "Managed-AllViewerExceptHostHeader"
    )
    assert {"POST", "PUT", "DELETE", "PATCH"} <= set(default["allowedMethods"])
    assert default["compress"] is True
    static = inputs["orderedCacheBehaviors"]
    assert static, "static paths must have cached behaviours"
    for behaviour in static:
        assert behaviour["viewerProtocolPolicy"] == "https-only"
        assert behaviour["cachePolicyId"] == policy_id(cache_token, "Managed-CachingOptimized")
        assert behaviour["compress"] is True  # static assets are the most compressible answers
    headers = policy_id(
        "aws:cloudfront/getResponseHeadersPolicy:getResponseHeadersPolicy", "Managed-SecurityHeadersPolicy"
    )
    assert all(b["responseHeadersPolicyId"] == headers for b in (default, *static))


# -- Route 53 -------------------------------------------------------------------------------------
def test_one_latency_record_and_one_health_check_per_region(stack: RecordedStack) -> None:
    domain = config(stack, "domain")
    origin = [r for r in stack.of_type(RECORD) if r["inputs"]["name"] == f"origin.{domain}"]
    assert sorted(r["inputs"]["setIdentifier"] for r in origin) == sorted(regions(stack))
    https_checks = [c for c in stack.of_type("aws:route53/healthCheck:HealthCheck") if c["inputs"]["type"] == "HTTPS"]
    assert len(https_checks) == len(regions(stack))
    for region in regions(stack):
        record = one([r for r in origin if r["inputs"]["setIdentifier"] == region], f"origin record of {region}")
        assert record["inputs"]["latencyRoutingPolicies"] == [{"region": region}]
        lb = alb(stack, region)
        # The alias target is this region's ALB in the ALB's own (ELB) zone, not the record's hosted zone.
        assert record["inputs"]["aliases"] == [
            {"name": lb["outputs"]["dnsName"], "zoneId": lb["outputs"]["zoneId"], "evaluateTargetHealth": True}
        ]
        assert lb["outputs"]["zoneId"] != record["inputs"]["zoneId"]
        assert stack.depends_on(record, lb, "aliases")
        check = one([c for c in https_checks if stack.is_below(c, f"{region}-edge")], f"ALB health check of {region}")
        assert stack.depends_on(record, check, "healthCheckId")
        assert record["inputs"]["healthCheckId"] == check["id"]
        # The check must judge this region's ALB, not whichever region origin.<domain> resolves to.
        assert stack.depends_on(check, lb, "fqdn") and check["inputs"]["fqdn"] == lb["outputs"]["dnsName"]
        inputs = check["inputs"]
        assert (inputs["type"], inputs["port"], inputs["resourcePath"]) == ("HTTPS", 443, HEALTH_PATH)
        assert inputs["enableSni"] is True


@pytest.mark.parametrize("fixture", ["dev_stack", "prod_stack", "prod_without_cloudfront"])
def test_public_names_alias_cloudfront_when_on_else_the_latency_set(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    stack: RecordedStack = request.getfixturevalue(fixture)
    domain = config(stack, "domain")
    for name in (domain, f"www.{domain}"):
        records = [r for r in stack.of_type(RECORD) if r["inputs"]["name"] == name and r["inputs"]["type"] != "CNAME"]
        assert records, f"no record for {name}"
        for record in records:
            (alias,) = record["inputs"]["aliases"]
            if config(stack, "cloudfrontEnabled"):
                distribution = one(stack.of_type(DISTRIBUTION), "distribution")
                assert stack.depends_on(record, distribution, "aliases")
                # CloudFront's fixed alias zone (the distribution's hostedZoneId), no health evaluation
                assert alias == {
                    "name": distribution["outputs"]["domainName"],
                    "zoneId": distribution["outputs"]["hostedZoneId"],
                    "evaluateTargetHealth": False,
                }
            else:
                # The latency set lives in the same hosted zone as the record itself.
                assert alias == {
                    "name": f"origin.{domain}",
                    "zoneId": record["inputs"]["zoneId"],
                    "evaluateTargetHealth": True,
                }
                assert record["inputs"]["type"] == "A"
        if config(stack, "cloudfrontEnabled"):
            assert sorted(r["inputs"]["type"] for r in records) == ["A", "AAAA"]
    # The alias to origin.<domain> needs the latency records to exist first.
    global_edge = stack.named("global-edge")
    for region in regions(stack):
        assert stack.named(f"{region}-edge-origin-latency")["urn"] in global_edge["dependencies"]


# -- preview --------------------------------------------------------------------------------------
def test_preview_links_each_waf_association_to_its_alb_while_arns_are_unknown(prod_preview: RecordedStack) -> None:
    for region in regions(prod_preview):
        lb = alb(prod_preview, region)
        assert "arn" not in lb["outputs"] or is_unknown(lb["outputs"]["arn"])
        assoc = one(referrers(prod_preview, WAF_ASSOC, lb, "resourceArn"), f"ALB association in {region}")
        assert is_unknown(assoc["inputs"]["resourceArn"])
        assert prod_preview.depends_on(assoc, _regional_acl(prod_preview, region), "webAclArn")


# -- argument validation --------------------------------------------------------------------------
def _regional_args(**changes: object) -> RegionalEdgeArgs:
    base: dict = dict(
        region="eu-west-1", domain="example.com", zone_id="Z1", vpc_id="vpc-1", vpc_cidr="10.0.0.0/16",
        public_subnet_ids=["a", "b", "c"], private_subnet_ids=["d", "e", "f"],
    )  # fmt: skip
    base.update(changes)
    return RegionalEdgeArgs(**base)


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"cloudfront_enabled": True}, "origin_secret"),
        ({"domain": "Example.COM"}, "domain"),
        ({"region": "europe"}, "region"),
        ({"public_subnet_ids": ["a"]}, "public_subnet_ids"),
        ({"waf_rate_limit": 5}, "waf_rate_limit"),
    ],
)
def test_regional_args_are_validated_with_the_input_named(changes: dict, names: str) -> None:
    _validate_regional(_regional_args())
    with pytest.raises(ValueError, match=f"RegionalEdgeArgs.{names}"):
        _validate_regional(_regional_args(**changes))


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"cloudfront_enabled": True}, "origin_secret"),
        ({"price_class": "PriceClass_1"}, "price_class"),
        ({"regions": []}, "regions"),
        ({"static_paths": ("static/*",)}, "static_paths"),
    ],
)
def test_global_args_are_validated_with_the_input_named(changes: dict, names: str) -> None:
    base: dict = dict(domain="example.com", zone_id="Z1", regions=["eu-west-1"])
    _validate_global(GlobalEdgeArgs(**base))
    with pytest.raises(ValueError, match=f"GlobalEdgeArgs.{names}"):
        _validate_global(GlobalEdgeArgs(**{**base, **changes}))


# -- certificates --------------------------------------------------------------------------------------
def test_validation_records_are_upserted_and_outlive_their_certificate(stack: RecordedStack) -> None:
    # ACM asks every certificate of a name for the same CNAME: another region's (or CloudFront's) renewal still
    # needs it after this certificate is gone, and a second writer must not fail on the existing record.
    validation = [r for r in stack.of_type(RECORD) if "-cert-validation-" in r["name"]]
    assert validation
    for record in validation:
        assert record["retain_on_delete"] is True, record["name"]
        assert record["inputs"]["allowOverwrite"] is True, record["name"]
    assert [r["name"] for r in stack.of_type(RECORD) if r["retain_on_delete"] and r not in validation] == []


def test_a_validation_option_is_picked_by_name_from_either_shape() -> None:
    from pulumi_aws.acm.outputs import CertificateDomainValidationOption

    from components.certificates import _option_for

    typed = [
        CertificateDomainValidationOption(
            domain_name=name, resource_record_name=f"_x.{name}.", resource_record_type="CNAME",
            resource_record_value=f"_y.{name}.acm-validations.aws.",
        )
        for name in ("www.example.com", "example.com")
    ]  # fmt: skip
    # The engine's raw JSON (camelCase keys) when a value did not go through the SDK's output types.
    raw = [{"domainName": "example.com", "resourceRecordName": "_a.example.com.", "resourceRecordType": "CNAME",
            "resourceRecordValue": "_b.acm-validations.aws."}]  # fmt: skip
    assert _option_for(typed, "example.com") == {
        "name": "_x.example.com.", "type": "CNAME", "value": "_y.example.com.acm-validations.aws."
    }  # fmt: skip
    assert _option_for(raw, "example.com") == {
        "name": "_a.example.com.",
        "type": "CNAME",
        "value": "_b.acm-validations.aws.",
    }
    with pytest.raises(ValueError, match=r"no DNS validation option for 'api\.example\.com'"):
        _option_for(typed, "api.example.com")


def test_web_acls_have_priorities_waf_accepts(stack: RecordedStack) -> None:
    from tools.preflight import values

    acls = stack.of_type("aws:wafv2/webAcl:WebAcl")
    assert acls
    assert [f.message for f in values.check(stack.record) if f.rule == "waf-priorities"] == []


def test_a_certificate_names_each_domain_once() -> None:
    from components.certificates import validated_certificate

    with pytest.raises(ValueError, match=r"alternative_names repeat a name"):
        validated_certificate("c", domain="example.com", alternative_names=["www.example.com", "www.example.com"],
                              zone_id="Z1", tags={}, parent=None)  # fmt: skip


def test_the_domain_among_the_alternative_names_is_dropped_not_refused(monkeypatch) -> None:
    """Compared by value: a name built at run time (not the same str object) is still the domain."""
    from components import certificates

    made = {}

    class Stop(Exception):
        pass

    def certificate(name, **kwargs):
        made.update(kwargs)
        raise Stop

    monkeypatch.setattr(certificates.aws.acm, "Certificate", certificate)
    domain = "example.com"
    with pytest.raises(Stop):
        certificates.validated_certificate(
            "c", domain=domain, alternative_names=["".join(["example", ".com"]), "www.example.com"],
            zone_id="Z1", tags={}, parent=None,
        )  # fmt: skip
    assert (made["domain_name"], made["subject_alternative_names"]) == (domain, ["www.example.com"])


def test_the_alb_reaches_the_gateway_pods_on_the_traffic_and_health_check_ports_only(stack: RecordedStack) -> None:
    """Without egress to the pods on the target group's traffic and health-check ports, every target stays
    unhealthy: the web entry is down."""
    for region in regions(stack):
        target_group = stack.named(f"{region}-edge-web-tg")["inputs"]
        assert_reaches_only_the_gateway_pods(
            stack, region, set(alb(stack, region)["inputs"]["securityGroups"]), target_group
        )


def test_every_web_acl_and_rule_keeps_sampled_requests_and_metrics(stack: RecordedStack) -> None:
    """The runbook's waf-blocked-surge step reads the sampled requests; the dashboard and alarms read the metrics."""
    acls = stack.of_type("aws:wafv2/webAcl:WebAcl")
    assert acls
    for acl in acls:
        configs = [acl["inputs"]["visibilityConfig"], *(r["visibilityConfig"] for r in acl["inputs"]["rules"])]
        assert all(c["sampledRequestsEnabled"] is True and c["cloudwatchMetricsEnabled"] is True for c in configs)
    assert "sampled requests" in (stack_files.ROOT / "docs" / "runbook.md").read_text()


def test_the_api_entry_hands_its_regional_domain_and_stage_segment_to_the_program(stack: RecordedStack) -> None:
    """The regional API domain is a stack output (Route 53 and clients need it) and the stage segment is what
    the limiter strips before it matches rules."""
    for region in regions(stack):
        domain = stack.named(f"{region}-edge-apigw-domain")["outputs"]["regionalDomainName"]
        assert stack.exports()["regional"][region]["apiRegionalDomain"] == domain
        deployment = stack.named(f"{region}-limiter-deployment")
        env = {
            e["name"]: e.get("value") for e in deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        stage = stack.named(f"{region}-edge-apigw-stage")["inputs"]["stageName"]
        assert json.loads(env["LIMITER_STRIP_PATH_PREFIXES"]) == [f"/{stage}"]
