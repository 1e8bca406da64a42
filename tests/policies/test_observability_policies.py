"""alarm-per-resource through the real analyzer, in preview (unknown values, property dependencies only)
and in update (known values), from the happy-path stack of conftest.py with one thing changed per test."""

from __future__ import annotations

import pytest

from tools.analyzer import UNKNOWN

REGION = "eu-west-1"
POLICY = "alarm-per-resource"
ALB = f"{REGION}-edge-alb"
COUNTERS = f"{REGION}-data-counters"
ORDERS = f"{REGION}-data-orders"
STAGE = f"{REGION}-api-stage"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def test_happy_path_has_an_alarm_bound_to_every_alb_table_and_stage(platform):
    alarm = platform.get(f"{REGION}-obs-alb-elb-5xx")
    assert alarm["property_dependencies"]["dimensions"] == [platform.get(ALB)["urn"]]
    if platform.preview:
        assert alarm["inputs"]["dimensions"]["LoadBalancer"] == UNKNOWN

    assert platform.analyze().for_policy(POLICY) == []


@pytest.mark.parametrize(
    ("removed", "resource", "what"),
    [
        (f"{REGION}-obs-alb-elb-5xx", ALB, "internet-facing ALB"),
        (f"{REGION}-obs-ddb-counters-throttles", COUNTERS, "DynamoDB table"),
        (f"{REGION}-obs-ddb-orders-throttles", ORDERS, "DynamoDB table"),
        (f"{REGION}-obs-api-5xx", STAGE, "API Gateway stage"),
    ],
)
def test_a_resource_without_its_alarm_is_an_advisory_violation(platform, found, removed, resource, what):
    platform.remove(removed)

    result = platform.analyze()

    [(name, message)] = found(result, POLICY)
    assert name == resource
    assert f"The {what} '{resource}' has no CloudWatch alarm bound to it." in message
    [diagnostic] = result.for_policy(POLICY)
    assert diagnostic.enforcement_level == "advisory"
    assert diagnostic.urn == platform.get(resource)["urn"]


def test_the_level_is_configurable_to_mandatory(platform):
    platform.remove(f"{REGION}-obs-ddb-orders-throttles")

    result = platform.analyze(policy_config={POLICY: "mandatory"})

    [diagnostic] = result.for_policy(POLICY)
    assert diagnostic.enforcement_level == "mandatory"
    assert diagnostic.resource_name == ORDERS


def test_an_alarm_on_another_table_does_not_count(platform, found):
    # The orders alarm is re-pointed at the counters table: orders is unwatched.
    counters = platform.get(COUNTERS)
    orders_alarm = platform.get(f"{REGION}-obs-ddb-orders-throttles")
    for query in orders_alarm["inputs"]["metricQueries"]:
        query["metric"]["dimensions"]["TableName"] = counters["outputs"]["name"]
    orders_alarm["outputs"] = dict(orders_alarm["inputs"])
    orders_alarm["property_dependencies"]["metricQueries"] = [counters["urn"]]

    assert [name for name, _ in found(platform.analyze(), POLICY)] == [ORDERS]


def test_typed_names_bind_only_when_known(build, preview, found):
    """An alarm with a typed TableName (no property dependency) matches the auto-named table only once its
    name is known (update); in a first preview it binds to nothing."""
    stack = build(preview, named_tables=False)
    stack.remove(f"{REGION}-obs-ddb-counters-throttles")
    stack.add(
        ALARM,
        f"{REGION}-obs-typed",
        {"namespace": "AWS/DynamoDB", "metricName": "SystemErrors", "dimensions": {"TableName": f"{COUNTERS}-1a2b3c"}},
    )

    names = [name for name, _ in found(stack.analyze(), POLICY)]

    assert names == ([COUNTERS] if preview else [])


@pytest.mark.parametrize("where", ["alarm", "metric query"])
def test_a_typed_name_of_a_named_table_binds_in_preview_too(platform, found, where):
    """A table named in the program has a known name even in preview, so a typed alarm matches it, whether
    the alarm names it in its own dimensions or in a metric query's (math over several metrics)."""
    platform.remove(f"{REGION}-obs-ddb-orders-throttles")
    metric = {
        "namespace": "AWS/DynamoDB",
        "metricName": "SystemErrors",
        "dimensions": {"TableName": f"{REGION}-orders"},
    }
    if where == "alarm":
        inputs = metric
    else:
        inputs = {
            "metricQueries": [{"id": "m1", "returnData": True, "metric": {**metric, "period": 60, "stat": "Sum"}}]
        }
    platform.add(ALARM, f"{REGION}-obs-typed", inputs)

    assert found(platform.analyze(), POLICY) == []


def test_internal_load_balancers_need_no_alarm(platform):
    platform.remove(f"{REGION}-obs-alb-elb-5xx")
    platform.set_input(ALB, "internal", True)

    assert platform.analyze().for_policy(POLICY) == []


def test_exempt_resources_are_skipped(platform):
    platform.remove(f"{REGION}-obs-api-5xx")

    result = platform.analyze(policy_config={POLICY: {"exemptResources": [f"{REGION}-api-*"]}})

    assert result.for_policy(POLICY) == []


@pytest.mark.parametrize("exempt_first", [False, True])
def test_every_stage_is_judged_after_one_with_an_alarm_or_exempt(platform, exempt_first):
    platform.add_api_stage("v2")
    config = {POLICY: {"exemptResources": [f"{REGION}-api-stage"]}} if exempt_first else {}

    result = platform.analyze(policy_config=config)

    assert [d.resource_name for d in result.for_policy(POLICY)] == [f"{REGION}-api-stage-v2"]


@pytest.mark.parametrize("exempt_first", [False, True])
def test_every_table_is_judged_after_one_with_an_alarm_or_exempt(platform, found, exempt_first):
    platform.remove(f"{REGION}-obs-ddb-orders-throttles")
    if exempt_first:
        platform.remove(f"{REGION}-obs-ddb-counters-throttles")
    config = {POLICY: {"exemptResources": [COUNTERS]}} if exempt_first else {}

    result = platform.analyze(policy_config=config)

    assert [d.resource_name for d in result.for_policy(POLICY)] == [ORDERS]


@pytest.mark.parametrize("exempt_first", [False, True])
def test_every_alb_is_judged_after_one_with_an_alarm_or_exempt(platform, exempt_first):
    second = f"{REGION}-edge-alb-2"
    platform.add(
        "aws:lb/loadBalancer:LoadBalancer",
        second,
        {"loadBalancerType": "application", "internal": False},
        computed={"arnSuffix": f"app/{second}/0123456789abcdef"},
    )
    config = {POLICY: {"exemptResources": [ALB]}} if exempt_first else {}

    result = platform.analyze(policy_config=config)

    assert [d.resource_name for d in result.for_policy(POLICY)] == [second]


def test_a_stage_bound_by_typed_names_does_not_end_the_scan(platform):
    """An alarm that types the API's name and stage binds once the name is known (update); the stages after it
    are still judged."""
    platform.remove(f"{REGION}-obs-api-5xx")
    platform.add(
        ALARM,
        f"{REGION}-obs-typed-api-5xx",
        {"namespace": "AWS/ApiGateway", "metricName": "5XXError",
         "dimensions": {"ApiName": f"{REGION}-api-rest-1a2b3c", "Stage": "v1"}},
    )  # fmt: skip
    platform.add_api_stage("v2")

    reported = [d.resource_name for d in platform.analyze().for_policy(POLICY)]

    # In a first preview the API's auto-name is unknown, so the typed alarm binds to nothing yet.
    assert reported == ([STAGE] if platform.preview else []) + [f"{REGION}-api-stage-v2"]
