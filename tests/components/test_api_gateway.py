"""API Gateway under mocks: the real `__main__.py` (dev: one region, one consumer; prod: two regions, two
consumers), plus config variations (API Gateway off; no consumers)."""

from __future__ import annotations

import json

import pytest

from components.api_gateway import (
    _LOG_RETENTION_DAYS,
    API_STAGE_NAME,
    API_TRAFFIC_PORT,
    ApiGatewayArgs,
    ApiGatewaySettings,
    _validate,
)
from components.specs import ApiConsumer
from tests.components.programs.edge_helpers import (
    GATEWAY_HEALTH_CHECK,
    assert_reaches_only_the_gateway_pods,
    config,
    one,
    referrers,
    regions,
    under,
    variant,
)
from tools.preflight import values
from tools.records import RecordedStack, Resource, is_unknown

WAF_ASSOC = "aws:wafv2/webAclAssociation:WebAclAssociation"
STAGE = "aws:apigateway/stage:Stage"
API = "aws:apigateway/restApi:RestApi"


@pytest.fixture(params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> RecordedStack:
    return request.getfixturevalue(f"{request.param}_stack")


@pytest.fixture(scope="session")
def dev_without_api() -> RecordedStack:
    return variant("dev-no-api")


@pytest.fixture(scope="session")
def without_consumers() -> RecordedStack:
    """prod with no apiConsumers (and CloudFront off, a variant shared with test_edge.py)."""
    stack = variant("prod-open")
    assert config(stack, "apiConsumers") == []
    return stack


def _stage(stack: RecordedStack, region: str) -> Resource:
    return one(under(stack, region, STAGE), f"stage in {region}")


def _nlb(stack: RecordedStack, region: str) -> Resource:
    found = [
        r
        for r in under(stack, region, "aws:lb/loadBalancer:LoadBalancer")
        if r["inputs"].get("loadBalancerType") == "network"
    ]
    return one(found, f"NLB in {region}")


def test_the_stage_has_one_waf_association_with_the_regional_acl(stack: RecordedStack) -> None:
    for region in regions(stack):
        stage = _stage(stack, region)
        assoc = one(referrers(stack, WAF_ASSOC, stage, "resourceArn"), f"stage WAF association in {region}")
        assert assoc["inputs"]["resourceArn"] == stage["outputs"]["arn"]
        acl = stack.named(f"{region}-edge-waf")
        assert acl["inputs"]["scope"] == "REGIONAL"
        assert stack.depends_on(assoc, acl, "webAclArn")


def test_preview_links_the_stage_association_to_the_stage(prod_preview: RecordedStack) -> None:
    for region in regions(prod_preview):
        stage = _stage(prod_preview, region)
        assoc = one(referrers(prod_preview, WAF_ASSOC, stage, "resourceArn"), f"stage association in {region}")
        assert is_unknown(assoc["inputs"]["resourceArn"])


def test_rest_api_is_regional_and_reachable_only_through_the_custom_domain(stack: RecordedStack) -> None:
    domain = config(stack, "domain")
    for region in regions(stack):
        api = one(under(stack, region, API), f"REST API in {region}")
        assert api["inputs"]["endpointConfiguration"]["types"] == "REGIONAL"
        assert api["inputs"]["disableExecuteApiEndpoint"] is True
        custom = one(under(stack, region, "aws:apigateway/domainName:DomainName"), "custom domain")
        assert custom["inputs"]["domainName"] == f"api.{domain}"
        assert custom["inputs"]["securityPolicy"] == "TLS_1_2"
        assert custom["inputs"]["endpointConfiguration"]["types"] == "REGIONAL"
        validation = stack.named(f"{region}-edge-apigw-api-cert-validation")
        assert stack.depends_on(custom, validation, "regionalCertificateArn")
        mapping = one(under(stack, region, "aws:apigateway/basePathMapping:BasePathMapping"), "base path mapping")
        assert stack.depends_on(mapping, api, "restApi") and stack.depends_on(mapping, _stage(stack, region))
        assert "basePath" not in mapping["inputs"], "the API is mapped at the root of api.<domain>"


def test_api_name_is_a_latency_set_over_the_regions_custom_domains(stack: RecordedStack) -> None:
    domain = config(stack, "domain")
    records = [
        r
        for r in stack.of_type("aws:route53/record:Record")
        if r["inputs"]["name"] == f"api.{domain}" and r["inputs"]["type"] == "A"
    ]
    assert sorted(r["inputs"]["setIdentifier"] for r in records) == sorted(regions(stack))
    for record in records:
        region = record["inputs"]["setIdentifier"]
        assert record["inputs"]["latencyRoutingPolicies"] == [{"region": region}]
        custom = one(under(stack, region, "aws:apigateway/domainName:DomainName"), "custom domain")
        assert stack.depends_on(record, custom, "aliases")
        (alias,) = record["inputs"]["aliases"]
        assert alias["name"] == custom["outputs"]["regionalDomainName"]
        # Each region's member is tied to that region's health: its API gateway pods behind its NLB.
        check = stack.named(f"{region}-edge-apigw-api-health")
        assert record["inputs"]["healthCheckId"] == check["id"] and stack.depends_on(record, check, "healthCheckId")
        assert check["inputs"]["type"] == "CLOUDWATCH_METRIC"
        assert check["inputs"]["cloudwatchAlarmRegion"] == region
        alarm = stack.named(f"{region}-edge-apigw-api-targets-unhealthy")
        assert stack.depends_on(check, alarm, "cloudwatchAlarmName")
        assert check["inputs"]["cloudwatchAlarmName"] == alarm["outputs"]["name"]
        assert (alarm["inputs"]["namespace"], alarm["inputs"]["metricName"]) == ("AWS/NetworkELB", "HealthyHostCount")
        assert stack.depends_on(alarm, stack.named(f"{region}-edge-apigw-api-tg"), "dimensions")
        assert alarm["inputs"]["treatMissingData"] == "breaching"


def test_every_method_reaches_the_internal_nlb_through_the_vpc_link(stack: RecordedStack) -> None:
    domain = config(stack, "domain")
    for region in regions(stack):
        nlb = _nlb(stack, region)
        assert nlb["inputs"]["internal"] is True
        subnets = sorted(stack.by_urn[u]["name"] for u in nlb["property_dependencies"]["subnets"])
        assert subnets == [f"{region}-eks-private-{i}" for i in range(3)]
        link = one(under(stack, region, "aws:apigatewayv2/vpcLink:VpcLink"), "VPC link v2")
        integrations = under(stack, region, "aws:apigateway/integration:Integration")
        methods = under(stack, region, "aws:apigateway/method:Method")
        assert len(integrations) == len(methods) == 2, "the root and {proxy+}"
        for integration in integrations:
            inputs = integration["inputs"]
            assert (inputs["type"], inputs["connectionType"]) == ("HTTP_PROXY", "VPC_LINK")
            assert stack.depends_on(integration, link, "connectionId")
            assert stack.depends_on(integration, nlb, "integrationTarget")
            assert inputs["uri"].startswith(f"http://api.{domain}/")
            assert inputs["timeoutMilliseconds"] == 29000  # API Gateway's maximum for an integration
        proxy = one([i for i in integrations if "{proxy}" in i["inputs"]["uri"]], "proxy integration")
        assert proxy["inputs"]["requestParameters"] == {"integration.request.path.proxy": "method.request.path.proxy"}
        # API Gateway refuses an integration that maps a method parameter its method does not declare ("Invalid
        # mapping expression parameter specified"): the {proxy+} method declares it, the root one has none.
        declared = {m["inputs"]["resourceId"]: m["inputs"].get("requestParameters") for m in methods}
        assert declared[proxy["inputs"]["resourceId"]] == {"method.request.path.proxy": True}
        assert sorted(map(str, declared.values())) == sorted(["None", str({"method.request.path.proxy": True})])
        resource = one(under(stack, region, "aws:apigateway/resource:Resource"), "proxy resource")
        assert resource["inputs"]["pathPart"] == "{proxy+}"


def test_nlb_admits_only_the_vpc_link_and_forwards_to_an_ip_target_group(stack: RecordedStack) -> None:
    for region in regions(stack):
        nlb = _nlb(stack, region)
        (nlb_sg,) = (stack.by_urn[u] for u in nlb["property_dependencies"]["securityGroups"])
        link = one(under(stack, region, "aws:apigatewayv2/vpcLink:VpcLink"), "VPC link v2")
        (link_sg,) = (stack.by_urn[u] for u in link["property_dependencies"]["securityGroupIds"])
        ingress = [
            r
            for r in stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
            if stack.depends_on(r, nlb_sg, "securityGroupId")
        ]
        rule = one(ingress, "NLB ingress rule")
        assert stack.depends_on(rule, link_sg, "referencedSecurityGroupId")
        assert "cidrIpv4" not in rule["inputs"] and rule["inputs"]["fromPort"] == API_TRAFFIC_PORT
        listener = one(
            referrers(stack, "aws:lb/listener:Listener", nlb, "loadBalancerArn"), f"NLB listener in {region}"
        )
        tg = stack.named(f"{region}-edge-apigw-api-tg")
        assert stack.depends_on(listener, tg, "defaultActions")
        assert (tg["inputs"]["targetType"], tg["inputs"]["protocol"]) == ("ip", "TCP")
        assert tg["inputs"]["healthCheck"] == GATEWAY_HEALTH_CHECK
        # Targets in every zone take traffic from the NLB's nodes in every zone.
        assert nlb["inputs"]["enableCrossZoneLoadBalancing"] is True


def test_the_stage_name_is_a_prefix_no_application_path_uses(stack: RecordedStack) -> None:
    """A private integration may send /<stage>/path; the mesh strips /<stage>, so no service may live there."""
    prefix = f"/{API_STAGE_NAME}"
    for region in regions(stack):
        assert _stage(stack, region)["inputs"]["stageName"] == API_STAGE_NAME
    for service in config(stack, "microservices"):
        path = service["pathPrefix"]
        assert not (path == prefix or path.startswith(prefix + "/")), f"{service['name']} is routed under {prefix}"


def test_stage_logs_access_and_throttles_from_config(stack: RecordedStack) -> None:
    for region in regions(stack):
        stage = _stage(stack, region)
        log_groups = [
            g
            for g in stack.of_type("aws:cloudwatch/logGroup:LogGroup")
            if stack.depends_on(stage, g, "accessLogSettings")
        ]
        one(log_groups, "access log group")
        fields = json.loads(stage["inputs"]["accessLogSettings"]["format"])
        assert {"requestId", "ip", "status", "apiKeyId", "wafStatus"} <= set(fields)
        # The account-wide logging role: managed by one stack per account and region (prod in the samples).
        accounts = under(stack, region, "aws:apigateway/account:Account")
        if config(stack, "apiGatewayAccountLoggingRole"):
            account = one(accounts, "API Gateway account settings")
            assert account["urn"] in stage["dependencies"], "access logging needs the account's CloudWatch role first"
        else:
            assert not accounts, "a stack that leaves the account-wide role to another must not set it"
        deployment = one(under(stack, region, "aws:apigateway/deployment:Deployment"), "deployment")
        assert stack.depends_on(stage, deployment, "deployment")
        assert deployment["inputs"]["triggers"]["redeployment"]
        for integration in under(stack, region, "aws:apigateway/integration:Integration"):
            assert integration["urn"] in deployment["dependencies"]
        settings = one(under(stack, region, "aws:apigateway/methodSettings:MethodSettings"), "method settings")
        assert settings["inputs"]["methodPath"] == "*/*"
        s = settings["inputs"]["settings"]
        assert s["throttlingRateLimit"] == config(stack, "apiThrottleRateLimit")
        assert s["throttlingBurstLimit"] == config(stack, "apiThrottleBurstLimit")
        assert s.get("dataTraceEnabled") is False
        # Per-method metrics (ApiName, Method, Resource, Stage: the runbook's way to the failing route; the stage
        # alarms need none) and execution logs of errors only.
        assert (s["metricsEnabled"], s["loggingLevel"]) == (True, "ERROR")


def test_each_consumer_has_a_usage_plan_and_the_same_key_in_every_region(stack: RecordedStack) -> None:
    consumers = config(stack, "apiConsumers")
    assert consumers, "the stack files declare consumers; this test needs them"
    for region in regions(stack):
        for method in under(stack, region, "aws:apigateway/method:Method"):
            assert method["inputs"]["apiKeyRequired"] is True
        stage = _stage(stack, region)
        for consumer in consumers:
            plan = stack.named(f"{region}-edge-apigw-plan-{consumer['name']}")
            assert plan["inputs"]["throttleSettings"] == {
                "rateLimit": consumer["rateLimit"],
                "burstLimit": consumer["burstLimit"],
            }
            assert plan["inputs"]["quotaSettings"] == {"limit": consumer["quotaPerDay"], "period": "DAY"}
            assert stack.depends_on(plan, stage, "apiStages")
            key = stack.named(f"{region}-edge-apigw-key-{consumer['name']}")
            assert key["inputs"]["enabled"] is True  # a disabled key answers every request 403
            link = one(referrers(stack, "aws:apigateway/usagePlanKey:UsagePlanKey", key, "keyId"), "plan key")
            assert stack.depends_on(link, plan, "usagePlanId")
            # One value per consumer for the whole stack: latency routing may send it to any region.
            assert stack.depends_on(key, stack.named(f"api-key-{consumer['name']}"), "value")


def test_no_api_gateway_when_config_turns_it_off(dev_without_api: RecordedStack) -> None:
    assert dev_without_api.of_type("ratelimited:index:ApiGateway") == []
    assert dev_without_api.of_type("aws:apigateway/*") == []
    assert dev_without_api.of_type("aws:apigatewayv2/*") == []
    assert "apiKeys" not in dev_without_api.exports(), "no consumers' keys without API Gateway"
    for region in regions(dev_without_api):
        assert [r for r in under(dev_without_api, region, "aws:lb/loadBalancer:LoadBalancer")
                if r["inputs"].get("loadBalancerType") == "network"] == []  # fmt: skip


def test_without_consumers_methods_do_not_require_keys(without_consumers: RecordedStack) -> None:
    assert without_consumers.of_type("aws:apigateway/usagePlan:UsagePlan") == []
    assert without_consumers.of_type("aws:apigateway/apiKey:ApiKey") == []
    methods = without_consumers.of_type("aws:apigateway/method:Method")
    assert methods and all(m["inputs"]["apiKeyRequired"] is False for m in methods)


def _args(**settings: object) -> ApiGatewayArgs:
    base: dict = dict(throttle_rate_limit=100, throttle_burst_limit=200)
    base.update(settings)
    return ApiGatewayArgs(
        region="eu-west-1", domain="example.com", zone_id="Z1", vpc_id="vpc-1", vpc_cidr="10.0.0.0/16",
        private_subnet_ids=["a", "b", "c"], web_acl_arn="arn:acl", settings=ApiGatewaySettings(**base),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"throttle_rate_limit": 0}, "throttle_rate_limit"),
        ({"throttle_rate_limit": 1_000_001}, "throttle_rate_limit"),
        ({"throttle_burst_limit": 0}, "throttle_burst_limit"),
        ({"throttle_burst_limit": 1_000_001}, "throttle_burst_limit"),
        ({"consumers": (ApiConsumer("a", 1, 1, 1), ApiConsumer("a", 2, 2, 2))}, "consumers"),
        ({"api_key_values": {"ghost": "x" * 30}}, "api_key_values"),
        ({"stage_name": "v 1"}, "stage_name"),
        ({"log_retention_days": 2}, "log_retention_days"),
    ],
)
def test_settings_are_validated_with_the_input_named(settings: dict, names: str) -> None:
    _validate(_args())
    with pytest.raises(ValueError, match=f"ApiGatewaySettings.{names}"):
        _validate(_args(**settings))


@pytest.mark.parametrize("limit", [1, 1_000_000])
def test_throttle_limits_from_1_to_a_million_are_accepted(limit: int) -> None:
    _validate(_args(throttle_rate_limit=limit, throttle_burst_limit=limit))


_BREACHES = {
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
}


def test_the_unhealthy_targets_alarm_fires_with_no_healthy_pod_and_only_then(stack: RecordedStack) -> None:
    for region in regions(stack):
        alarm = stack.named(f"{region}-edge-apigw-api-targets-unhealthy")["outputs"]
        breaches = _BREACHES[alarm["comparisonOperator"]]
        assert alarm["statistic"] == "Minimum"  # the lowest count of the minute: a brief gap counts too
        assert [breaches(healthy, alarm["threshold"]) for healthy in (0, 1, 2)] == [True, False, False]


def test_the_unhealthy_targets_alarm_notifies_the_regions_topic_on_alarm_and_ok(stack: RecordedStack) -> None:
    topics = {t["outputs"]["arn"].split(":")[3]: t["outputs"]["arn"] for t in stack.of_type("aws:sns/topic:Topic")}
    for region in regions(stack):
        alarm = stack.named(f"{region}-edge-apigw-api-targets-unhealthy")["outputs"]
        # Recovery is news too: whoever was paged learns that the gateway pods are back.
        assert alarm["alarmActions"] == alarm["okActions"] == [topics[region]]


def test_log_retention_choices_are_the_periods_cloudwatch_logs_accepts() -> None:
    # Config validation and the preflight share one truth (the preflight's table is checked against botocore).
    assert set(_LOG_RETENTION_DAYS) == values.LOG_RETENTION_DAYS - {0}


def test_integration_timeouts_are_ones_api_gateway_takes(stack: RecordedStack) -> None:
    integrations = stack.of_type("aws:apigateway/integration:Integration")
    assert integrations
    assert [f.message for f in values.check(stack.record) if f.rule == "api-integration-timeout"] == []


def test_the_nlb_reaches_the_gateway_pods_on_the_traffic_and_health_check_ports_only(stack: RecordedStack) -> None:
    """The NLB has a security group: without egress to the pods on the target group's traffic and health
    check ports, every target stays unhealthy and the API entry is down."""
    for region in regions(stack):
        nlb = _nlb(stack, region)
        target_group = stack.named(f"{region}-edge-apigw-api-tg")["inputs"]
        assert_reaches_only_the_gateway_pods(stack, region, set(nlb["inputs"]["securityGroups"]), target_group)
        # A rolled gateway pod's long-lived VPC-link connections are closed once it is deregistered, so
        # clients reconnect to a live pod instead of hanging on one that is gone.
        assert target_group["connectionTermination"] is True
