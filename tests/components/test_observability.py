"""The observability layer under mocks: every watched resource has its alarms, bound to it through its outputs.

The checks run on the whole program (dev: one region, API Gateway; prod: two regions, CloudFront, three
tables with GSIs). `alarm_gaps` lists every (resource, metric) that lacks an alarm; a test removes single
alarms from the record to show that the check notices.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from components.metrics_catalog import CLOUDWATCH_METRICS, documented
from tools.records import RecordedStack, is_unknown

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TABLE = "aws:dynamodb/table:Table"
LB = "aws:lb/loadBalancer:LoadBalancer"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
STAGE = "aws:apigateway/stage:Stage"
REST_API = "aws:apigateway/restApi:RestApi"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
TOPIC = "aws:sns/topic:Topic"


def _metrics(alarm: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric, dimensions) of an alarm: its own metric, or every metric of its queries."""
    props = alarm["outputs"]
    if props.get("metricName"):
        yield props["namespace"], props["metricName"], props.get("dimensions") or {}
    for query in props.get("metricQueries") or []:
        metric = query.get("metric")
        if metric:
            yield metric["namespace"], metric["metricName"], metric.get("dimensions") or {}


def _bound(stack: RecordedStack, resource: dict[str, Any], namespace: str, metric: str, dims: dict[str, Any]) -> bool:
    """An alarm on `metric` whose dimensions are exactly `dims` (plus Operation) and derive from `resource`."""
    for alarm in stack.of_type(ALARM):
        derived = any(stack.depends_on(alarm, resource, prop) for prop in ("dimensions", "metricQueries"))
        if not derived:
            continue
        for ns, name, found in _metrics(alarm):
            extra = set(found) - set(dims)
            if (
                ns == namespace
                and name == metric
                and extra <= {"Operation"}
                and all(found.get(k) == v for k, v in dims.items())
            ):
                return True
    return False


def alarm_gaps(stack: RecordedStack) -> list[str]:
    """Every (resource, metric) the design says must be alarmed but is not."""
    expected: list[tuple[dict[str, Any], str, str, dict[str, Any]]] = []
    for table in stack.of_type(TABLE):
        name = table["outputs"]["name"]
        for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
            expected.append((table, "AWS/DynamoDB", metric, {"TableName": name}))
            for gsi in table["outputs"].get("globalSecondaryIndexes") or []:
                expected.append(
                    (table, "AWS/DynamoDB", metric, {"TableName": name, "GlobalSecondaryIndexName": gsi["name"]})
                )
        expected.append((table, "AWS/DynamoDB", "SystemErrors", {"TableName": name}))
    for lb in stack.of_type(LB):
        props = lb["outputs"]
        dims = {"LoadBalancer": props["arnSuffix"]}
        if props["loadBalancerType"] == "application":
            expected += [
                (lb, "AWS/ApplicationELB", m, dims) for m in ("HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count")
            ]
            edge = stack.parent_of(lb)
            [tg] = [t for t in stack.children_of(edge) if t["type"] == TARGET_GROUP]
            expected.append(
                (lb, "AWS/ApplicationELB", "UnHealthyHostCount", {**dims, "TargetGroup": tg["outputs"]["arnSuffix"]})
            )
            expected.append(
                (tg, "AWS/ApplicationELB", "UnHealthyHostCount", {**dims, "TargetGroup": tg["outputs"]["arnSuffix"]})
            )
        else:
            [tg] = [t for t in stack.children_of(stack.parent_of(lb)) if t["type"] == TARGET_GROUP]
            expected.append(
                (lb, "AWS/NetworkELB", "HealthyHostCount", {**dims, "TargetGroup": tg["outputs"]["arnSuffix"]})
            )
    for stage in stack.of_type(STAGE):
        [api] = [r for r in stack.of_type(REST_API) if stack.depends_on(stage, r, "restApi")]
        dims = {"ApiName": api["outputs"]["name"], "Stage": stage["outputs"]["stageName"]}
        expected += [(stage, "AWS/ApiGateway", m, dims) for m in ("5XXError", "Latency")]
    for check in stack.of_type(HEALTH_CHECK):
        expected.append((check, "AWS/Route53", "HealthCheckStatus", {"HealthCheckId": check["id"]}))
    return [
        f"{resource['name']}: {metric} {dims}"
        for resource, namespace, metric, dims in expected
        if not _bound(stack, resource, namespace, metric, dims)
    ]


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack"])
def test_every_table_gsi_load_balancer_stage_and_health_check_has_its_alarms(stack_name, request):
    stack = request.getfixturevalue(stack_name)
    assert len(stack.of_type(TABLE)) >= 2 and stack.of_type(STAGE) and stack.of_type(HEALTH_CHECK)

    assert alarm_gaps(stack) == []


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack"])
def test_gsi_alarm_number_i_watches_the_ith_index_of_the_tables_config(stack_name, request):
    """The alarm says "GSI #i": it must watch the index listed i-th in the stack's appTables."""
    stack = request.getfixturevalue(stack_name)
    checked = 0
    for spec in json.loads(stack.record["config"]["ratelimited-platform:appTables"]):
        for i, gsi in enumerate(spec.get("gsis") or []):
            for alarm in stack.of_type(ALARM):
                if alarm["name"].endswith(f"-obs-ddb-{spec['name']}-gsi{i}-throttles"):
                    indexes = {dims.get("GlobalSecondaryIndexName") for _, _, dims in _metrics(alarm)}
                    assert indexes == {gsi["name"]}, alarm["name"]
                    assert f"GSI #{i}" in alarm["outputs"]["alarmDescription"]
                    checked += 1
    assert checked >= 2


@pytest.mark.parametrize(
    ("alarm", "resources", "metric"),
    [
        ("eu-west-1-obs-ddb-counters-throttles", ("eu-west-1-data-counters",), "ReadThrottleEvents"),
        ("eu-west-1-obs-ddb-orders-system-errors", ("eu-west-1-data-app-orders",), "SystemErrors"),
        ("eu-west-1-obs-ddb-orders-gsi1-throttles", ("eu-west-1-data-app-orders",), "WriteThrottleEvents"),
        ("us-east-1-obs-ddb-catalog-throttles", ("us-east-1-data-app-catalog",), "ReadThrottleEvents"),
        ("eu-west-1-obs-alb-elb-5xx", ("eu-west-1-edge-alb",), "HTTPCode_ELB_5XX_Count"),
        ("us-east-1-obs-alb-target-5xx", ("us-east-1-edge-alb",), "HTTPCode_Target_5XX_Count"),
        ("eu-west-1-obs-alb-unhealthy-hosts", ("eu-west-1-edge-alb", "eu-west-1-edge-web-tg"), "UnHealthyHostCount"),
        ("eu-west-1-edge-apigw-api-targets-unhealthy", ("eu-west-1-edge-apigw-nlb",), "HealthyHostCount"),
        ("us-east-1-obs-api-5xx", ("us-east-1-edge-apigw-stage",), "5XXError"),
        ("eu-west-1-obs-api-latency-p99", ("eu-west-1-edge-apigw-stage",), "Latency"),
        ("global-obs-us-east-1-origin-health", ("us-east-1-edge-origin-health",), "HealthCheckStatus"),
        ("global-obs-eu-west-1-api-health", ("eu-west-1-edge-apigw-api-health",), "HealthCheckStatus"),
    ],
)
def test_removing_one_alarm_is_noticed(prod_stack, alarm, resources, metric):
    record = copy.deepcopy(prod_stack.record)
    record["resources"] = [r for r in record["resources"] if r["name"] != alarm]
    assert len(record["resources"]) == len(prod_stack.resources) - 1, alarm

    gaps = alarm_gaps(RecordedStack(record))

    assert gaps, alarm
    assert all(g.split(":")[0] in resources for g in gaps), gaps
    assert any(g.split(" ")[1] == metric for g in gaps), gaps


def test_in_preview_the_alarms_depend_on_the_resources_whose_outputs_are_unknown(prod_preview):
    alarms = prod_preview.of_type(ALARM)
    for resource in (
        *prod_preview.of_type(TABLE),
        *prod_preview.of_type(LB),
        *prod_preview.of_type(STAGE),
        *prod_preview.of_type(HEALTH_CHECK),
    ):
        bound = [
            a for a in alarms if any(prod_preview.depends_on(a, resource, p) for p in ("dimensions", "metricQueries"))
        ]
        assert bound, resource["name"]
        if resource["type"] != STAGE:  # the stage and its API are named in the program; the rest are not
            # Nothing was typed in: the dimension that names the resource is unknown until the update.
            values = [v for a in bound for _, _, dims in _metrics(a) for v in dims.values()]
            assert any(is_unknown(v) for v in values), resource["name"]


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack"])
def test_every_alarm_notifies_its_regions_topic_on_alarm_and_ok(stack_name, request):
    stack = request.getfixturevalue(stack_name)
    topics = {t["outputs"]["arn"].split(":")[3]: t["outputs"]["arn"] for t in stack.of_type(TOPIC)}
    for alarm in stack.of_type(ALARM):
        provider = stack.provider_name(alarm)
        region = "us-east-1" if provider == "aws-global" else provider.removeprefix("aws-")
        props = alarm["outputs"]
        assert props["alarmActions"] == props["okActions"] == [topics[region]], alarm["name"]
        assert "Runbook: docs/runbook.md#" in props["alarmDescription"], alarm["name"]


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack"])
def test_alarms_are_well_formed_for_cloudwatch(stack_name, request):
    """What PutMetricAlarm refuses: M of N with M > N, a period over a day, a statistic and a metric query."""
    for alarm in request.getfixturevalue(stack_name).of_type(ALARM):
        props = alarm["outputs"]
        periods = props["evaluationPeriods"]
        assert 1 <= props.get("datapointsToAlarm", periods) <= periods, alarm["name"]
        if props.get("metricQueries"):
            assert not props.get("metricName") and not props.get("statistic"), alarm["name"]
            assert sum(bool(q.get("returnData")) for q in props["metricQueries"]) == 1, alarm["name"]
            assert len([q for q in props["metricQueries"] if q.get("metric")]) <= 10  # metric math alarm limit
        else:
            assert bool(props.get("statistic")) != bool(props.get("extendedStatistic")), alarm["name"]
            assert props["period"] * periods <= 86400, alarm["name"]


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack", "prod_preview"])
def test_every_alarm_period_is_one_cloudwatch_takes(stack_name, request):
    from tools.preflight import values

    stack = request.getfixturevalue(stack_name)
    assert stack.of_type(ALARM)
    assert [f.message for f in values.check(stack.record) if f.rule == "alarm-period"] == []


def test_health_check_alarms_live_in_us_east_1(prod_stack):
    alarms = [a for a in prod_stack.of_type(ALARM) if any(m[0] == "AWS/Route53" for m in _metrics(a))]
    assert len(alarms) == len(prod_stack.of_type(HEALTH_CHECK)) == 4  # origin + api, two regions
    assert {prod_stack.provider_name(a) for a in alarms} == {"aws-global"}


def test_alarm_topics_are_encrypted_with_their_own_key_and_admit_cloudwatch_and_amp(prod_stack):
    for topic in prod_stack.of_type(TOPIC):
        [key] = [k for k in prod_stack.children_of(prod_stack.parent_of(topic)) if k["type"] == "aws:kms/key:Key"]
        assert topic["outputs"]["kmsMasterKeyId"] == key["outputs"]["arn"]
        [policy] = [p for p in prod_stack.of_type("aws:sns/topicPolicy:TopicPolicy") if prod_stack.depends_on(p, topic)]
        owner, publishers = json.loads(policy["outputs"]["policy"])["Statement"]
        assert publishers["Principal"]["Service"] == ["cloudwatch.amazonaws.com", "aps.amazonaws.com"]
        assert publishers["Action"] == "sns:Publish"
        # The account's own principals keep their rights (a topic policy replaces the default one) ...
        account = topic["outputs"]["arn"].split(":")[4]
        assert (
            owner["Principal"] == {"AWS": f"arn:aws:iam::{account}:root"}
            and owner["Resource"] == topic["outputs"]["arn"]
        )
        # ... and the services publish only for this account's alarms (confused deputy).
        assert publishers["Condition"] == {"StringEquals": {"aws:SourceAccount": account}}


def test_email_subscriptions_and_existing_topics_come_from_config():
    from tools.mocked_run import run_stack

    stack = RecordedStack(run_stack("dev", config_overrides={"alarmEmails": ["oncall@example.com"]}))
    subs = stack.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sorted(s["outputs"]["endpoint"] for s in subs) == ["oncall@example.com"] * 2  # eu-west-1, us-east-1
    assert {s["outputs"]["protocol"] for s in subs} == {"email"}

    arns = {r: f"arn:aws:sns:{r}:123456789012:pager" for r in ("eu-west-1", "us-east-1")}
    stack = RecordedStack(run_stack("dev", config_overrides={"alarmTopicArns": arns}))
    assert stack.of_type(TOPIC) == []
    for alarm in stack.of_type(ALARM):
        assert alarm["outputs"]["alarmActions"][0] in arns.values()


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack", "prod_preview"])
def test_every_metric_is_documented_with_its_source(stack_name, request):
    stack = request.getfixturevalue(stack_name)
    used = {(ns, name, tuple(sorted(dims))) for a in stack.of_type(ALARM) for ns, name, dims in _metrics(a)}
    assert len(used) >= 12
    for ns, name, dims in used:
        assert documented(ns, name, dims), (ns, name, dims)
    for metric in CLOUDWATCH_METRICS:
        assert metric.source and metric.namespace.startswith("AWS/")


def test_the_catalog_refuses_an_undocumented_metric():
    assert documented("AWS/DynamoDB", "ReadThrottleEvents", ("TableName",))
    assert not documented("AWS/DynamoDB", "ThrottledRequests", ("TableName",))  # needs Operation
    assert not documented("AWS/ApplicationELB", "HTTPCode_ELB_5xx_Count", ("LoadBalancer",))  # case matters


# --- the dashboard -----------------------------------------------------------------------------


def test_a_region_without_an_api_stage_leaves_its_cell_empty_and_the_next_region_still_gets_its_widget():
    from components.observability import RegionView, WatchedApiStage, dashboard_body

    def view(region: str, stage: WatchedApiStage | None) -> RegionView:
        return RegionView(region, (), f"app/{region}/1", f"{region}-acl", stage, {"origin": f"hc-{region}"}, None)

    body = dashboard_body([view("eu-west-1", None), view("us-east-1", WatchedApiStage("api-1", "apigw"))], None, None)
    api = [w for w in body["widgets"] if w["properties"].get("title", "").startswith("API Gateway")]
    assert [(w["properties"]["region"], w["x"]) for w in api] == [("us-east-1", 12)]


def test_a_dashboard_widget_takes_only_documented_metrics_reading_names_not_values():
    from components.observability import _metric_widget

    # [namespace, metric, name, value, ..., {options}]: the names are checked, whatever the values are.
    good = ["AWS/ApiGateway", "5XXError", "ApiName", "orders", "Stage", "v1", {"label": "x"}]
    assert _metric_widget("api", "eu-west-1", [good], 0, 0, 12)["properties"]["metrics"] == [good]
    bad = ["AWS/DynamoDB", "ThrottledRequests", "TableName", "counters"]  # needs Operation as well
    with pytest.raises(ValueError, match=r"AWS/DynamoDB ThrottledRequests with dimensions \['TableName'\] is not in"):
        _metric_widget("ddb", "eu-west-1", [good, bad], 0, 0, 12)


_DIMENSION_SOURCES = {
    "LoadBalancer": (LB, lambda r: r["outputs"]["arnSuffix"]),
    "TableName": (TABLE, lambda r: r["outputs"]["name"]),
    "ApiName": (REST_API, lambda r: r["outputs"]["name"]),
    "Stage": (STAGE, lambda r: r["outputs"]["stageName"]),
    "HealthCheckId": (HEALTH_CHECK, lambda r: r["id"]),
    "WebACL": ("aws:wafv2/webAcl:WebAcl", lambda r: r["outputs"]["visibilityConfig"]["metricName"]),
    "DistributionId": ("aws:cloudfront/distribution:Distribution", lambda r: r["id"]),
}


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack"])
def test_dashboard_is_json_and_every_widget_names_resources_of_the_stack(stack_name, request):
    stack = request.getfixturevalue(stack_name)
    [dashboard] = stack.of_type("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard["outputs"]["dashboardBody"])
    regions = json.loads(stack.record["config"]["ratelimited-platform:regions"])
    existing = {dim: {get(r) for r in stack.of_type(t)} for dim, (t, get) in _DIMENSION_SOURCES.items()}
    workspaces = {w["id"] for w in stack.of_type("aws:amp/workspace:Workspace")}

    named = 0
    for widget in body["widgets"]:
        if widget["type"] == "text":
            assert any(ws in widget["properties"]["markdown"] for ws in workspaces), widget
            continue
        for metric in widget["properties"]["metrics"]:
            ns, name, *rest = [m for m in metric if not isinstance(m, dict)]
            dims = dict(zip(rest[::2], rest[1::2], strict=True))
            assert documented(ns, name, tuple(dims)), metric
            for dim, value in dims.items():
                if dim == "Region":
                    assert value in (*regions, "Global"), metric
                elif dim == "Rule":
                    assert value == "ALL"
                else:
                    assert value in existing[dim], (widget["properties"]["title"], dim, value)
                    named += 1
    assert named >= 10
    titles = [w["properties"].get("title", "") for w in body["widgets"]]
    for section in ("Route 53 health", "WAF allowed / blocked", "ALB requests", "API Gateway", "DynamoDB"):
        assert {t.rsplit(" - ", 1)[1] for t in titles if t.startswith(section)} == set(regions), section
    assert any(t.startswith("CloudFront") for t in titles) == (stack_name == "prod_stack")
    assert len(workspaces) == len(regions)


def test_dashboard_puts_the_regions_side_by_side(prod_stack):
    [dashboard] = prod_stack.of_type("aws:cloudwatch/dashboard:Dashboard")
    rows: dict[int, list[int]] = {}
    for widget in json.loads(dashboard["outputs"]["dashboardBody"])["widgets"]:
        rows.setdefault(widget["y"], []).append(widget["x"])
    regional = [xs for xs in rows.values() if len(xs) > 1]
    assert len(regional) >= 6
    assert all(sorted(xs) == [0, 12] for xs in regional)
    assert dashboard["outputs"]["dashboardName"] == "ratelimited-platform-prod"


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack"])
def test_dashboard_widgets_tile_the_24_column_grid_from_the_top(stack_name, request):
    """CloudWatch lays widgets on a 24-column grid (PutDashboard body: x 0-23, width 1-24): they must fit in it,
    must not overlap, and the rows follow each other from the top without an empty band."""
    [dashboard] = request.getfixturevalue(stack_name).of_type("aws:cloudwatch/dashboard:Dashboard")
    widgets = json.loads(dashboard["outputs"]["dashboardBody"])["widgets"]
    cells = set()
    for w in widgets:
        assert w["x"] >= 0 and w["y"] >= 0 and w["width"] >= 1 and w["x"] + w["width"] <= 24, w
        mine = {(x, y) for x in range(w["x"], w["x"] + w["width"]) for y in range(w["y"], w["y"] + w["height"])}
        assert not cells & mine, w
        cells |= mine
    rows = sorted({w["y"] for w in widgets})
    assert rows[0] == 0
    heights = {w["y"]: w["height"] for w in widgets}
    assert all(later == row + heights[row] for row, later in itertools.pairwise(rows)), rows


def test_a_prometheus_collection_needs_two_subnets():
    from components.observability import PrometheusCollection, RegionalObservabilityArgs, _validate_regional

    def args(subnets: list[str]) -> RegionalObservabilityArgs:
        prometheus = PrometheusCollection(
            cluster_arn="c", subnet_ids=subnets, security_group_ids=[], ext_authz_timeout_ms=250
        )
        return RegionalObservabilityArgs(
            region="eu-west-1", topic_arn="t", tables=(), alb_arn_suffix="a", web_target_group_arn_suffix="w",
            web_acl_metric_name="m", prometheus=prometheus,
        )  # fmt: skip

    _validate_regional(args(["s1", "s2"]))
    with pytest.raises(ValueError, match=r"prometheus\.subnet_ids must list two subnets"):
        _validate_regional(args(["s1"]))


# --- the policy on the program itself ----------------------------------------------------------


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
def test_alarm_per_resource_passes_the_program_and_catches_it_without_the_layer(preview):
    from tools.analyzer import analyze_record
    from tools.mocked_run import run_stack

    with_layer = analyze_record(run_stack("dev", preview=preview))
    without = analyze_record(run_stack("dev", preview=preview, config_overrides={"observabilityEnabled": False}))

    assert with_layer.for_policy("alarm-per-resource") == []
    flagged = sorted(d.resource_name for d in without.for_policy("alarm-per-resource"))
    assert flagged == [
        "eu-west-1-data-app-orders",
        "eu-west-1-data-counters",
        "eu-west-1-edge-alb",
        "eu-west-1-edge-apigw-stage",
    ]
    assert {d.enforcement_level for d in without.for_policy("alarm-per-resource")} == {"advisory"}
    assert without.for_policy("alarm-per-resource")[0].message.count("has no CloudWatch alarm bound to it") == 1


# --- argument validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"emails": ("oncall",)}, "AlarmTopicArgs.emails has 'oncall', which is not an e-mail address."),
        ({"existing_topic_arn": "arn:aws:sqs:eu-west-1:123456789012:q"}, "is not an SNS topic ARN"),
        (
            {"existing_topic_arn": "arn:aws:sns:us-east-1:123456789012:t"},
            "AlarmTopicArgs.existing_topic_arn is in us-east-1, but alarms in eu-west-1 can only notify a topic in",
        ),
        (
            {"existing_topic_arn": "arn:aws:sns:eu-west-1:123456789012:t", "emails": ("a@example.com",)},
            "give emails or existing_topic_arn, not both",
        ),
    ],
)
def test_alarm_topic_args_are_checked_naming_the_field(args, message):
    from components.observability import AlarmTopicArgs, _validate_topic

    with pytest.raises(ValueError) as err:
        _validate_topic(AlarmTopicArgs(region="eu-west-1", **args))
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("api_latency_p99_ms", 0), ("api_latency_p99_ms", 29_001), ("limiter_deny_ratio", 1.0),
     ("limiter_deny_ratio", 0.0), ("evaluation_minutes", 0), ("evaluation_minutes", 61), ("alb_elb_5xx", -1),
     ("cloudfront_5xx_rate_percent", 0), ("cloudfront_5xx_rate_percent", 101), ("waf_blocked_requests", 0)],
)  # fmt: skip
def test_thresholds_out_of_range_are_refused_naming_the_field(field, value):
    from components.observability import AlarmThresholds, validate_thresholds

    with pytest.raises(ValueError) as err:
        validate_thresholds("RegionalObservabilityArgs.thresholds", AlarmThresholds(**{field: value}))
    assert f"RegionalObservabilityArgs.thresholds.{field}" in str(err.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("api_latency_p99_ms", 1), ("api_latency_p99_ms", 29_000), ("cloudfront_5xx_rate_percent", 1),
     ("cloudfront_5xx_rate_percent", 100), ("evaluation_minutes", 1), ("evaluation_minutes", 60),
     ("alb_elb_5xx", 0), ("waf_blocked_requests", 1)],
)  # fmt: skip
def test_thresholds_at_the_ends_of_their_ranges_are_accepted(field, value):
    from components.observability import AlarmThresholds, validate_thresholds

    validate_thresholds("RegionalObservabilityArgs.thresholds", AlarmThresholds(**{field: value}))


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack"])
def test_the_scraper_reads_a_port_the_pods_admit_where_istio_merges_the_metrics(stack_name, request):
    """Mesh mTLS is STRICT, so the scraper (outside the mesh) can only read the sidecar's plain-text port 15020
    (`/stats/prometheus`, Istio's merged metrics); the limiter's NetworkPolicy must admit it."""
    import yaml

    stack = request.getfixturevalue(stack_name)
    scrapers = stack.of_type("aws:amp/scraper:Scraper")
    assert scrapers
    limiter_policies = [
        p
        for p in stack.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if p["name"].endswith("-limiter-netpol")
    ]
    assert len(limiter_policies) == len(scrapers)
    for scraper, policy in zip(scrapers, limiter_policies, strict=True):
        config = yaml.safe_load(scraper["inputs"]["scrapeConfiguration"])
        admitted = {
            port["port"]
            for rule in policy["inputs"]["spec"]["ingress"]
            if "from" not in rule  # admitted from anywhere in the VPC, the scraper's ENIs included
            for port in rule.get("ports", [])
        }
        for job in config["scrape_configs"]:
            assert job["metrics_path"] == "/stats/prometheus", job["job_name"]
            (address,) = [r for r in job["relabel_configs"] if r.get("target_label") == "__address__"]
            port = int(address["replacement"].rsplit(":", 1)[1])
            assert port == 15020, job["job_name"]  # Istio: the merged Prometheus endpoint of every proxy
            assert port in admitted, (job["job_name"], admitted)


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack"])
def test_alarms_fire_on_the_m_of_n_minutes_the_runbook_states(stack_name, request):
    import re

    from tools import stack_files

    runbook = (stack_files.ROOT / "docs" / "runbook.md").read_text()
    (m,) = re.findall(r"(\d+) bad minutes \(or all, if fewer\) fire it", runbook)
    stack = request.getfixturevalue(stack_name)
    alarms = [a["inputs"] for a in stack.of_type(ALARM) if "datapointsToAlarm" in a["inputs"]]
    assert len(alarms) >= 10
    for alarm in alarms:
        assert alarm["datapointsToAlarm"] == min(int(m), alarm["evaluationPeriods"]), alarm


def test_the_runbook_lists_every_threshold_with_its_default():
    """Operators read the defaults in docs/runbook.md; they are the dataclass's, field for field."""
    import re
    from dataclasses import fields
    from pathlib import Path

    from components.observability import AlarmThresholds
    from stack_config import _camel

    text = (Path(__file__).resolve().parents[2] / "docs" / "runbook.md").read_text()
    documented = dict(re.findall(r"^\| `(\w+)` \| ([\d.]+) \|", text, re.M))
    defaults = AlarmThresholds()
    assert documented == {_camel(f.name): str(getattr(defaults, f.name)) for f in fields(AlarmThresholds)}
