"""Every CloudWatch metric and Prometheus metric the observability layer names, with where it is documented.

The alarms and the dashboard take namespaces and metric names from here only, and a test checks that
every metric they register is in this list: a misspelled metric makes an alarm that never fires
(missing data) and a dashboard graph that stays empty, and neither fails at `pulumi up`.

Sources (AWS documentation pages listing each service's CloudWatch metrics and dimensions):
- DynamoDB: "DynamoDB Metrics and dimensions" (DynamoDB Developer Guide).
- ALB: "CloudWatch metrics for your Application Load Balancer" (Elastic Load Balancing).
- NLB: "CloudWatch metrics for your Network Load Balancer" (Elastic Load Balancing).
- API Gateway REST: "Amazon API Gateway dimensions and metrics" (API Gateway Developer Guide).
- Route 53: "Monitoring health checks using CloudWatch" (Route 53 Developer Guide); in us-east-1 only.
- WAF: "AWS WAF metrics and dimensions" (AWS WAF Developer Guide); WebACL is the web ACL's
  visibility-config metric name, Rule "ALL" sums the rules; Region is absent for CloudFront web ACLs.
- CloudFront: "Viewing CloudFront and edge function metrics" (CloudFront Developer Guide); in
  us-east-1 with Region "Global".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CloudWatchMetric:
    """A metric AWS publishes, with the dimensions this project uses for it and the page that documents it."""

    namespace: str
    name: str
    dimensions: tuple[str, ...]
    source: str


_DDB = "Amazon DynamoDB Developer Guide, 'DynamoDB Metrics and dimensions'"
_ALB = "Elastic Load Balancing, 'CloudWatch metrics for your Application Load Balancer'"
_NLB = "Elastic Load Balancing, 'CloudWatch metrics for your Network Load Balancer'"
_APIGW = "API Gateway Developer Guide, 'Amazon API Gateway dimensions and metrics'"
_R53 = "Route 53 Developer Guide, 'Monitoring health checks using CloudWatch'"
_WAF = "AWS WAF Developer Guide, 'AWS WAF metrics and dimensions'"
_CF = "CloudFront Developer Guide, 'Viewing CloudFront and edge function metrics'"

CLOUDWATCH_METRICS: tuple[CloudWatchMetric, ...] = (
    # DynamoDB: throttle events per table and per GSI; SystemErrors only per table and operation.
    CloudWatchMetric("AWS/DynamoDB", "ReadThrottleEvents", ("TableName",), _DDB),
    CloudWatchMetric("AWS/DynamoDB", "WriteThrottleEvents", ("TableName",), _DDB),
    CloudWatchMetric("AWS/DynamoDB", "ReadThrottleEvents", ("TableName", "GlobalSecondaryIndexName"), _DDB),
    CloudWatchMetric("AWS/DynamoDB", "WriteThrottleEvents", ("TableName", "GlobalSecondaryIndexName"), _DDB),
    CloudWatchMetric("AWS/DynamoDB", "SystemErrors", ("TableName", "Operation"), _DDB),
    CloudWatchMetric("AWS/DynamoDB", "ConsumedReadCapacityUnits", ("TableName",), _DDB),
    CloudWatchMetric("AWS/DynamoDB", "ConsumedWriteCapacityUnits", ("TableName",), _DDB),
    # ALB.
    CloudWatchMetric("AWS/ApplicationELB", "RequestCount", ("LoadBalancer",), _ALB),
    CloudWatchMetric("AWS/ApplicationELB", "TargetResponseTime", ("LoadBalancer",), _ALB),
    CloudWatchMetric("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", ("LoadBalancer",), _ALB),
    CloudWatchMetric("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", ("LoadBalancer",), _ALB),
    CloudWatchMetric("AWS/ApplicationELB", "UnHealthyHostCount", ("TargetGroup", "LoadBalancer"), _ALB),
    # NLB (the API path's internal load balancer).
    CloudWatchMetric("AWS/NetworkELB", "HealthyHostCount", ("TargetGroup", "LoadBalancer"), _NLB),
    # API Gateway REST stages.
    CloudWatchMetric("AWS/ApiGateway", "Count", ("ApiName", "Stage"), _APIGW),
    CloudWatchMetric("AWS/ApiGateway", "Latency", ("ApiName", "Stage"), _APIGW),
    CloudWatchMetric("AWS/ApiGateway", "4XXError", ("ApiName", "Stage"), _APIGW),
    CloudWatchMetric("AWS/ApiGateway", "5XXError", ("ApiName", "Stage"), _APIGW),
    # Route 53 health checks (us-east-1).
    CloudWatchMetric("AWS/Route53", "HealthCheckStatus", ("HealthCheckId",), _R53),
    # WAF.
    CloudWatchMetric("AWS/WAFV2", "AllowedRequests", ("WebACL", "Region", "Rule"), _WAF),
    CloudWatchMetric("AWS/WAFV2", "BlockedRequests", ("WebACL", "Region", "Rule"), _WAF),
    CloudWatchMetric("AWS/WAFV2", "AllowedRequests", ("WebACL", "Rule"), _WAF),
    CloudWatchMetric("AWS/WAFV2", "BlockedRequests", ("WebACL", "Rule"), _WAF),
    # CloudFront (us-east-1, Region "Global").
    CloudWatchMetric("AWS/CloudFront", "Requests", ("DistributionId", "Region"), _CF),
    CloudWatchMetric("AWS/CloudFront", "4xxErrorRate", ("DistributionId", "Region"), _CF),
    CloudWatchMetric("AWS/CloudFront", "5xxErrorRate", ("DistributionId", "Region"), _CF),
)


def documented(namespace: str, name: str, dimensions: tuple[str, ...] | list[str]) -> bool:
    """True when (namespace, name) with exactly these dimension names is in the list above."""
    wanted = frozenset(dimensions)
    return any(
        m.namespace == namespace and m.name == name and frozenset(m.dimensions) == wanted for m in CLOUDWATCH_METRICS
    )


@dataclass(frozen=True)
class PrometheusMetric:
    """A Prometheus series the alert rules read, and who exports it."""

    name: str
    source: str


_LIMITER = "limiter_service/metrics.py (the limiter's /metrics)"
_ISTIO = "Istio 'Standard Metrics' reference: the sidecar's istio_request_duration_milliseconds histogram"

PROMETHEUS_METRICS: tuple[PrometheusMetric, ...] = (
    PrometheusMetric("limiter_decisions_total", _LIMITER),
    PrometheusMetric("limiter_store_errors_total", _LIMITER),
    PrometheusMetric("limiter_store_up", _LIMITER),
    PrometheusMetric("limiter_store_latency_seconds_bucket", _LIMITER),
    # Requests a rule matches but cannot key (the limiter's work on unkeyed requests adds this counter).
    PrometheusMetric("limiter_requests_without_key_total", _LIMITER),
    PrometheusMetric("istio_request_duration_milliseconds_bucket", _ISTIO),
)
