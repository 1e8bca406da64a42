"""The limiter's Prometheus alerts: they parse (PromQL), and every limiter metric they name is one the limiter
really exports, read from the /metrics of a running limiter process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from components.metrics_catalog import PROMETHEUS_METRICS
from components.observability import AlarmThresholds, alert_rules, alert_rules_yaml
from tests.limiter_service.limiter_testutil import ServiceProcess, service_env
from tools.records import RecordedStack

ALERTS = {
    "LimiterFailureModeAnswers",
    "LimiterStoreErrors",
    "LimiterDenyRatioJump",
    "LimiterRequestsWithoutKey",
    "LimiterLatencyNearTimeout",
}


def _registered_rules(stack: RecordedStack) -> dict[str, dict[str, Any]]:
    """{region: rule file} of the AMP rule group namespaces the program registers."""
    rules = {}
    for namespace in stack.of_type("aws:amp/ruleGroupNamespace:RuleGroupNamespace"):
        region = namespace["name"].split("-obs-")[0]
        rules[region] = yaml.safe_load(namespace["outputs"]["data"])
    return rules


def _metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def _all_rules(rule_file: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in rule_file["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Every series name the limiter's /metrics declares (counters as _total, histograms as _bucket...)."""
    svc = ServiceProcess(service_env(), tmp_path_factory.mktemp("limiter") / "limiter.log")
    try:
        svc.wait_ready()
        # One decision, so that labelled families have samples too.
        httpx.post(svc.url + "/v1/check", json={"rule": "per-client-ip", "key": "198.51.100.7"}, timeout=5)
        text = httpx.get(svc.url + "/metrics", timeout=5).text
    finally:
        svc.stop()
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
    for family in text_string_to_metric_families(text):
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    yield names


def test_the_running_limiter_exports_its_metrics(exported):
    assert {"limiter_decisions_total", "limiter_store_up", "limiter_store_latency_seconds_bucket"} <= exported


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack"])
def test_rules_parse_and_name_only_metrics_the_limiter_or_istio_exports(stack_name, request, exported):
    stack = request.getfixturevalue(stack_name)
    rules_by_region = _registered_rules(stack)
    assert set(rules_by_region) == set(yaml.safe_load(stack.record["config"]["ratelimited-platform:regions"]))
    catalog = {m.name for m in PROMETHEUS_METRICS}
    for rule_file in rules_by_region.values():
        rules = _all_rules(rule_file)
        assert {r["alert"] for r in rules} == ALERTS
        for rule in rules:
            names = _metric_names(rule["expr"])  # raises ValueError on a PromQL syntax error
            promql_parser.parse_duration(rule["for"])
            assert rule["annotations"]["runbook_url"].startswith("docs/runbook.md#")
            assert names and names <= catalog, (rule["alert"], names - catalog)
            limiter = {n for n in names if n.startswith("limiter_")}
            assert limiter <= exported, (rule["alert"], limiter - exported)
            assert {n for n in names if not n.startswith("limiter_")} <= {"istio_request_duration_milliseconds_bucket"}


def test_requests_without_key_metric_is_exported(exported):
    # The alert on requests a rule cannot key (a wrong trusted-proxy count) needs the limiter's counter.
    assert "limiter_requests_without_key_total" in exported


def test_a_rule_with_a_syntax_error_is_refused():
    with pytest.raises(ValueError):
        _metric_names("sum(rate(limiter_decisions_total[5m]) > 0")


def test_failure_mode_alert_fires_on_any_failure_mode_answer_for_five_minutes():
    rules = {r["alert"]: r for r in _all_rules(alert_rules(200, AlarmThresholds(), "docs/runbook.md"))}
    failure = rules["LimiterFailureModeAnswers"]
    assert failure["for"] == "5m"
    assert failure["expr"] == (
        'sum(rate(limiter_decisions_total{outcome=~"error_allowed|error_denied|shed_allowed|shed_denied"}[5m])) > 0'
    )
    store = rules["LimiterStoreErrors"]["expr"]
    assert store == (
        'sum(rate(limiter_store_errors_total{reason!~"overloaded|stalled"}[5m])) > 0 or min(limiter_store_up) == 0'
    )


@pytest.mark.parametrize(("timeout_ms", "fraction", "limit"), [(200, 0.8, "160"), (500, 0.5, "250")])
def test_latency_alert_follows_the_ext_authz_timeout(timeout_ms, fraction, limit):
    thresholds = AlarmThresholds(limiter_latency_fraction=fraction)
    rules = {r["alert"]: r for r in _all_rules(alert_rules(timeout_ms, thresholds, "x"))}

    expr = rules["LimiterLatencyNearTimeout"]["expr"]

    assert expr.startswith("histogram_quantile(0.99,") and expr.endswith(f"> {limit}")


def test_registered_rules_use_the_stacks_ext_authz_timeout(dev_stack):
    [namespace] = dev_stack.of_type("aws:amp/ruleGroupNamespace:RuleGroupNamespace")
    assert namespace["outputs"]["data"] == alert_rules_yaml(200, AlarmThresholds(), "docs/runbook.md")


def test_alerts_go_to_the_regions_topic_firing_and_resolved(prod_stack):
    topics = {t["outputs"]["arn"].split(":")[3]: t["outputs"]["arn"] for t in prod_stack.of_type("aws:sns/topic:Topic")}
    definitions = prod_stack.of_type("aws:amp/alertManagerDefinition:AlertManagerDefinition")
    assert len(definitions) == 2
    for definition in definitions:
        region = definition["name"].split("-obs-")[0]
        config = yaml.safe_load(yaml.safe_load(definition["outputs"]["definition"])["alertmanager_config"])
        [receiver] = config["receivers"]
        assert config["route"]["receiver"] == receiver["name"]
        [sns] = receiver["sns_configs"]
        assert sns == {**sns, "topic_arn": topics[region], "send_resolved": True, "sigv4": {"region": region}}


def test_scraper_collects_the_limiter_and_the_gateways_from_the_regions_cluster(prod_stack):
    for scraper in prod_stack.of_type("aws:amp/scraper:Scraper"):
        region = scraper["name"].split("-obs-")[0]
        # The region's own cluster (pulumi-eks names its aws.eks.Cluster after the component). The ARN's region
        # field is not checked: the mock of pulumi-eks's remote Cluster does not see the regional provider.
        cluster_arn = scraper["outputs"]["source"]["eks"]["clusterArn"]
        assert f":cluster/{region}-eks-cluster-" in cluster_arn
        [workspace] = [w for w in prod_stack.of_type("aws:amp/workspace:Workspace") if w["name"].startswith(region)]
        assert scraper["outputs"]["destination"]["amp"]["workspaceArn"] == workspace["outputs"]["arn"]
        config = yaml.safe_load(scraper["outputs"]["scrapeConfiguration"])
        jobs = {j["job_name"]: j for j in config["scrape_configs"]}
        assert jobs["limiter"]["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["limiter"]}}]
        assert jobs["ingress-gateways"]["kubernetes_sd_configs"][0]["namespaces"] == {"names": ["istio-ingress"]}
        assert {j["metrics_path"] for j in jobs.values()} == {"/stats/prometheus"}


def test_scraper_identity_may_read_pods_in_the_cluster(prod_stack):
    bindings = prod_stack.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
    scraper = [b for b in bindings if b["outputs"]["subjects"][0]["name"] == "aps-collector-user"]
    assert len(scraper) == 2
    role = prod_stack.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
    rules = next(r for r in role if r["outputs"]["metadata"]["name"] == "aps-collector-role")["outputs"]["rules"]
    # The whole role: read-only, and nothing beyond what the managed scraper documents it needs.
    assert rules == [
        {
            "apiGroups": [""],
            "resources": ["nodes", "nodes/proxy", "nodes/metrics", "services", "endpoints", "pods"],
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
    ]


def test_runbook_has_a_section_for_every_alarm_and_alert(dev_stack, prod_stack):
    runbook = (Path(__file__).resolve().parents[2] / "docs" / "runbook.md").read_text()
    sections = {line[3:].strip() for line in runbook.splitlines() if line.startswith("## ")}
    anchors = set()
    for stack in (dev_stack, prod_stack):
        for alarm in stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
            anchors.add(alarm["outputs"]["alarmDescription"].rsplit("#", 1)[1])
        for rule_file in _registered_rules(stack).values():
            anchors |= {r["annotations"]["runbook_url"].rsplit("#", 1)[1] for r in _all_rules(rule_file)}
    assert len(anchors) >= 14
    assert anchors <= sections, anchors - sections
