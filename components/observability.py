"""Observability: alarm notifications, AWS-native alarms, the limiter's Prometheus alerts, one dashboard.

Three components:

`AlarmTopic`, once per region that has alarms (every stack region, and us-east-1 for the Route 53
health-check alarms): an SNS topic encrypted with a customer-managed KMS key, a topic policy that lets
CloudWatch and Amazon Managed Service for Prometheus publish, and the e-mail subscriptions from config.
Or, when config names an existing topic for the region, that topic and nothing else. One topic per
region, not one per stack: a CloudWatch alarm and an AMP alert manager notify a topic in their own
region.

`RegionalObservability`, once per region:
- CloudWatch alarms, each notifying the topic on ALARM and on OK, with dimensions taken from the
  resources' outputs (so each alarm depends on the resource it watches): per DynamoDB table read+write
  throttle events and system errors, per GSI read+write throttle events (DynamoDB reports SystemErrors
  per table and operation, not per index); per ALB ELB 5xx, target 5xx and unhealthy hosts; per API
  Gateway stage 5xx and p99 latency; the regional web ACL's blocked-request surge (informational).
  The API NLB's healthy-hosts alarm already exists (it drives the api.<domain> health check) and is
  given the topic through ApiGatewaySettings instead of a second alarm.
- The limiter's and Istio's metrics: an AMP workspace, a managed (agentless) scraper on the EKS cluster
  scraping the limiter pods and the ingress gateways (through the sidecars' merged Prometheus port
  15020), the Kubernetes RBAC the scraper's identity needs, alert rules in the workspace and an alert
  manager that routes them (firing and resolved) to the region's topic.

`GlobalObservability`, once per stack, with the us-east-1 provider: the Route 53 health-check alarms
(their metrics exist only in us-east-1), CloudFront's 5xx rate and its web ACL's blocked-request surge
when CloudFront is on, and one dashboard along the request path with the regions side by side.

Every alarm's description names what it means and links the runbook (docs/runbook.md).

What the collection needs from the mesh: mTLS is STRICT, so the scraper (outside the mesh) reaches a pod
only on the sidecar's merged port 15020, which the NetworkPolicies leave open. Istio merges an
application's own metrics into it only when the pod template carries `prometheus.io/scrape: "true"`,
`prometheus.io/port` and `prometheus.io/path` for the application (for the limiter: 8080, /metrics).
Until the limiter's pod template carries them, the scraper collects Istio's metrics of the limiter
(its request latency, which the latency alert reads) but not the limiter's own `limiter_*` series.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from components.metrics_catalog import documented

# The Kubernetes user name the AMP managed scraper acts as inside the cluster (AMP user guide,
# "Configuring your Amazon EKS cluster"); the service creates the EKS access entry for its role.
SCRAPER_K8S_USER = "aps-collector-user"
# The merged Prometheus endpoint of an Istio sidecar or gateway (Envoy stats, Istio's standard metrics,
# and the application's own metrics when the pod carries prometheus.io annotations).
ISTIO_MERGED_METRICS_PORT = 15020
ISTIO_MERGED_METRICS_PATH = "/stats/prometheus"
DEFAULT_RUNBOOK_URL = "docs/runbook.md"
# Decision outcomes that are answers by a rule's failure mode: the store failed (error_*) or the replica shed
# the call under overload (shed_*); see limiter_service/metrics.py.
FAILURE_MODE_OUTCOMES = "error_allowed|error_denied|shed_allowed|shed_denied"
# Store-error reasons that are the replica's own overload, not the store's failure.
PROCESS_OVERLOAD_REASONS = "overloaded|stalled"

# Operations whose SystemErrors are summed per table: the item and query calls the limiter and the apps make.
_DDB_OPERATIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SNS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}$")
_DASHBOARD_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


@dataclass(frozen=True)
class AlarmThresholds:
    """Alarm thresholds; every field can be overridden in stack config (`alarmThresholds`, camelCase)."""

    dynamodb_throttle_events: int = 0
    """Read+write throttle events per minute on a table or GSI above which a minute counts as bad."""
    dynamodb_system_errors: int = 0
    """DynamoDB system errors per minute on a table above which a minute counts as bad."""
    alb_elb_5xx: int = 10
    """5xx answers per minute that the ALB itself generated."""
    alb_target_5xx: int = 25
    """5xx answers per minute from the ALB's targets (the web ingress gateway)."""
    alb_unhealthy_hosts: int = 0
    """Unhealthy targets (web ingress gateway pods) above which a minute counts as bad."""
    api_5xx: int = 10
    """5xx answers per minute of an API Gateway stage."""
    api_latency_p99_ms: int = 2500
    """p99 latency (ms) of an API Gateway stage."""
    waf_blocked_requests: int = 1000
    """Requests per 5 minutes a web ACL blocks before the informational surge alarm fires."""
    cloudfront_5xx_rate_percent: int = 5
    """CloudFront's 5xx error rate (percent of requests)."""
    limiter_deny_ratio: float = 0.25
    """Deny ratio (denied / all decisions over 5 min) that, when also 3x last hour's, is a jump."""
    limiter_latency_fraction: float = 0.8
    """Fraction of the ext_authz timeout that the limiter's p99 latency must stay below."""
    evaluation_minutes: int = 5
    """Minutes each CloudWatch alarm looks at; it fires when 3 of them (or all, if fewer) are bad."""


@dataclass(frozen=True)
class AlarmTopicArgs:
    """Inputs of one region's alarm topic."""

    region: str
    """The region (the provider comes through opts); names the topic's description."""
    emails: tuple[str, ...] = ()
    """E-mail addresses subscribed to the topic (each must confirm the subscription)."""
    existing_topic_arn: str | None = None
    """Use this topic (in `region`) instead of creating one; its policies are then its owner's."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every resource."""


class AlarmTopic(pulumi.ComponentResource):
    """The SNS topic every alarm and alert of one region notifies (KMS-encrypted), with its subscriptions."""

    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AlarmTopicArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ratelimited:index:AlarmTopic", name, None, opts)
        _validate_topic(args)
        if args.existing_topic_arn:
            self.topic_arn = pulumi.Output.from_input(args.existing_topic_arn)
        else:
            self.topic_arn = self._create_topic(name, args)
        self.register_outputs({"topicArn": self.topic_arn})

    def _create_topic(self, name: str, args: AlarmTopicArgs) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self)).account_id
        publishers = ["cloudwatch.amazonaws.com", "aps.amazonaws.com"]
        # CloudWatch and AMP publish to an encrypted topic only if the key lets them (SNS developer guide,
        # "Enable compatibility between event sources and encrypted topics").
        key = aws.kms.Key(
            f"{name}-key",
            description=f"Encrypts the alarm topic {name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=account.apply(
                lambda acct: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "AccountAdmin",
                                "Effect": "Allow",
                                "Principal": {"AWS": f"arn:aws:iam::{acct}:root"},
                                "Action": "kms:*",
                                "Resource": "*",
                            },
                            {
                                "Sid": "AlarmPublishers",
                                "Effect": "Allow",
                                "Principal": {"Service": publishers},
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                                "Resource": "*",
                                "Condition": {"StringEquals": {"aws:SourceAccount": acct}},
                            },
                        ],
                    }
                )
            ),
            tags=tags,
            opts=child,
        )
        topic = aws.sns.Topic(
            f"{name}-topic",
            kms_master_key_id=key.arn,
            tags=tags,
            opts=child,
        )
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, account).apply(
                lambda v: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "AccountOwner",
                                "Effect": "Allow",
                                "Principal": {"AWS": f"arn:aws:iam::{v[1]}:root"},
                                "Action": ["sns:GetTopicAttributes", "sns:Subscribe", "sns:Publish"],
                                "Resource": v[0],
                            },
                            {
                                "Sid": "AlarmPublishers",
                                "Effect": "Allow",
                                "Principal": {"Service": publishers},
                                "Action": "sns:Publish",
                                "Resource": v[0],
                                "Condition": {"StringEquals": {"aws:SourceAccount": v[1]}},
                            },
                        ],
                    }
                )
            ),
            opts=child,
        )
        for email in args.emails:
            # Named by a digest of the address, so that reordering the list replaces nothing.
            aws.sns.TopicSubscription(
                f"{name}-email-{hashlib.sha256(email.encode()).hexdigest()[:8]}",
                topic=topic.arn,
                protocol="email",
                endpoint=email,
                opts=child,
            )
        return topic.arn


def _validate_topic(args: AlarmTopicArgs) -> None:
    for email in args.emails:
        if not _EMAIL_RE.match(email):
            raise ValueError(f"AlarmTopicArgs.emails has {email!r}, which is not an e-mail address.")
    if args.existing_topic_arn is not None:
        match = _SNS_ARN_RE.match(args.existing_topic_arn)
        if not match:
            raise ValueError(f"AlarmTopicArgs.existing_topic_arn {args.existing_topic_arn!r} is not an SNS topic ARN.")
        if match.group(1) != args.region:
            raise ValueError(
                f"AlarmTopicArgs.existing_topic_arn is in {match.group(1)}, but alarms in {args.region} can only "
                "notify a topic in their own region."
            )
        if args.emails:
            raise ValueError("AlarmTopicArgs: give emails or existing_topic_arn, not both.")


# --- regional ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchedTable:
    """A DynamoDB table and its GSIs, by their outputs."""

    key: str
    """Stable short name for child names ("counters", or the app table's config name)."""
    name: pulumi.Input[str]
    """The table's name (its output)."""
    gsi_names: tuple[pulumi.Input[str], ...] = ()
    """Its GSIs' names (read from the table's outputs)."""


@dataclass(frozen=True)
class WatchedApiStage:
    """An API Gateway REST stage and the API it belongs to, by their outputs."""

    api_name: pulumi.Input[str]
    """The REST API's name (the ApiName dimension)."""
    stage_name: pulumi.Input[str]
    """The stage's name (the Stage dimension)."""


@dataclass(frozen=True)
class PrometheusCollection:
    """What the AMP managed scraper scrapes, and the cluster it runs against."""

    cluster_arn: pulumi.Input[str]
    """The EKS cluster (its private endpoint must be on)."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """The cluster's private subnets (two zones at least): the scraper's ENIs go there."""
    security_group_ids: Sequence[pulumi.Input[str]]
    """Security groups for the scraper's ENIs: the cluster's, which the nodes admit."""
    ext_authz_timeout_ms: int
    """The ingress gateways' ext_authz timeout: the limiter's p99 latency alert is set below it."""
    limiter_namespace: str = "limiter"
    """Namespace of the limiter pods."""
    limiter_app_label: str = "limiter"
    """Value of the limiter pods' `app` label."""
    gateway_namespace: str = "istio-ingress"
    """Namespace of the ingress gateway pods."""
    scrape_interval_seconds: int = 30
    """How often the scraper collects."""


@dataclass(frozen=True)
class RegionalObservabilityArgs:
    """Inputs of one region's observability."""

    region: str
    """The region (the providers come through opts)."""
    topic_arn: pulumi.Input[str]
    """The region's alarm topic (AlarmTopic.topic_arn)."""
    tables: tuple[WatchedTable, ...]
    """Every DynamoDB table of the region."""
    alb_arn_suffix: pulumi.Input[str]
    """The internet-facing ALB (LoadBalancer dimension)."""
    web_target_group_arn_suffix: pulumi.Input[str]
    """The ALB's target group (TargetGroup dimension)."""
    web_acl_metric_name: pulumi.Input[str]
    """The regional web ACL's metric name (WebACL dimension)."""
    api_stage: WatchedApiStage | None = None
    """The API Gateway stage, when API Gateway is on."""
    prometheus: PrometheusCollection | None = None
    """Collect and alert on the limiter's and Istio's metrics (AMP); None: no collection."""
    thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)
    """Alarm thresholds."""
    runbook_url: str = DEFAULT_RUNBOOK_URL
    """The runbook, linked (with a section anchor) from every alarm's description."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every resource."""


@dataclass(frozen=True)
class RegionView:
    """What the stack's dashboard shows of one region."""

    region: str
    """The region (a column of the dashboard)."""
    tables: tuple[WatchedTable, ...]
    """Its DynamoDB tables."""
    alb_arn_suffix: pulumi.Input[str]
    """Its ALB (LoadBalancer dimension)."""
    web_acl_metric_name: pulumi.Input[str]
    """Its regional web ACL's metric name (WebACL dimension)."""
    api_stage: WatchedApiStage | None
    """Its API Gateway stage, when API Gateway is on."""
    health_check_ids: Mapping[str, pulumi.Input[str]]
    """Its Route 53 health checks by kind ("origin", "api"); each gets an alarm in us-east-1."""
    workspace_id: pulumi.Input[str] | None
    """Its AMP workspace, where the limiter's metrics are."""

    def health_checks_sorted(self) -> list[tuple[str, pulumi.Input[str]]]:
        """(kind, health check id) pairs, in a stable order."""
        return sorted(self.health_check_ids.items())


class RegionalObservability(pulumi.ComponentResource):
    """One region's alarms (tables, GSIs, ALB, API stage, WAF) and the limiter's Prometheus collection and alerts."""

    alarm_arns: dict[str, pulumi.Output[str]]
    workspace_id: pulumi.Output[str] | None
    workspace_endpoint: pulumi.Output[str] | None

    def __init__(self, name: str, args: RegionalObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate_regional(args)
        super().__init__("ratelimited:index:RegionalObservability", name, None, opts)
        self._name = name
        self._alarms = Alarms(self, name, args.topic_arn, args.thresholds, args.runbook_url, args.tags)
        self._create_alarms(args)
        self.alarm_arns = self._alarms.arns
        self.workspace_id = None
        self.workspace_endpoint = None
        if args.prometheus is not None:
            workspace = self._create_prometheus(args, args.prometheus)
            self.workspace_id = workspace.id
            self.workspace_endpoint = workspace.prometheus_endpoint
        self.register_outputs({"alarmArns": self.alarm_arns, "workspaceId": self.workspace_id})

    def _create_alarms(self, args: RegionalObservabilityArgs) -> None:
        t, a = args.thresholds, self._alarms
        for table in args.tables:
            a.throttles(f"ddb-{table.key}-throttles", f"DynamoDB table {table.key}", {"TableName": table.name})
            a.metric_math(
                f"ddb-{table.key}-system-errors",
                f"DynamoDB table {table.key}: system errors (HTTP 500 from DynamoDB) on item calls",
                "AWS/DynamoDB",
                "SystemErrors",
                [{"TableName": table.name, "Operation": op} for op in _DDB_OPERATIONS],
                threshold=t.dynamodb_system_errors,
                anchor="dynamodb-system-errors",
            )
            for i, gsi in enumerate(table.gsi_names):
                a.throttles(
                    f"ddb-{table.key}-gsi{i}-throttles",
                    f"DynamoDB table {table.key}, GSI #{i}",
                    {"TableName": table.name, "GlobalSecondaryIndexName": gsi},
                )
        lb = {"LoadBalancer": args.alb_arn_suffix}
        a.single(
            "alb-elb-5xx",
            "The ALB answered 5xx itself (no healthy target, target connection errors, timeouts)",
            "AWS/ApplicationELB",
            "HTTPCode_ELB_5XX_Count",
            lb,
            "Sum",
            t.alb_elb_5xx,
            anchor="alb-5xx",
        )
        a.single(
            "alb-target-5xx",
            "The web ingress gateway (or the services behind it) answered 5xx through the ALB",
            "AWS/ApplicationELB",
            "HTTPCode_Target_5XX_Count",
            lb,
            "Sum",
            t.alb_target_5xx,
            anchor="alb-5xx",
        )
        a.single(
            "alb-unhealthy-hosts",
            "Web ingress gateway pods fail the ALB's health check (15021 /healthz/ready)",
            "AWS/ApplicationELB",
            "UnHealthyHostCount",
            {"TargetGroup": args.web_target_group_arn_suffix, **lb},
            "Maximum",
            t.alb_unhealthy_hosts,
            anchor="alb-unhealthy-hosts",
        )
        if args.api_stage is not None:
            stage = {"ApiName": args.api_stage.api_name, "Stage": args.api_stage.stage_name}
            a.single(
                "api-5xx",
                "The API Gateway stage answered 5xx (integration errors: VPC link, NLB, API ingress gateway)",
                "AWS/ApiGateway",
                "5XXError",
                stage,
                "Sum",
                t.api_5xx,
                anchor="api-5xx",
            )
            a.single(
                "api-latency-p99",
                "The API Gateway stage's p99 latency is high",
                "AWS/ApiGateway",
                "Latency",
                stage,
                "p99",
                t.api_latency_p99_ms,
                anchor="api-latency",
            )
        a.waf_surge("waf-blocked-surge", {"WebACL": args.web_acl_metric_name, "Region": args.region, "Rule": "ALL"})

    # -- the limiter's and Istio's metrics: AMP -------------------------------------------------
    def _create_prometheus(self, args: RegionalObservabilityArgs, prom: PrometheusCollection) -> aws.amp.Workspace:
        name, tags = self._name, dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        workspace = aws.amp.Workspace(f"{name}-amp", alias=f"{name}-amp", tags=tags, opts=child)
        # The scraper's identity reads pods and endpoints to discover targets and fetches /metrics.
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-scraper-role",
            metadata={"name": "aps-collector-role"},
            rules=[
                {
                    "apiGroups": [""],
                    "resources": ["nodes", "nodes/proxy", "nodes/metrics", "services", "endpoints", "pods"],
                    "verbs": ["get", "list", "watch"],
                },
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            ],
            opts=child,
        )
        binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-scraper-binding",
            metadata={"name": "aps-collector-user-role-binding"},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "aps-collector-role"},
            subjects=[{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": SCRAPER_K8S_USER}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role]),
        )
        aws.amp.Scraper(
            f"{name}-scraper",
            alias=f"{name}-scraper",
            source=aws.amp.ScraperSourceArgs(
                eks=aws.amp.ScraperSourceEksArgs(
                    cluster_arn=prom.cluster_arn,
                    subnet_ids=list(prom.subnet_ids),
                    security_group_ids=list(prom.security_group_ids),
                )
            ),
            destination=aws.amp.ScraperDestinationArgs(
                amp=aws.amp.ScraperDestinationAmpArgs(workspace_arn=workspace.arn)
            ),
            scrape_configuration=scrape_configuration(prom),
            tags=tags,
            # The scraper adds the AMPAgentlessScraper tag to its workspace (terraform-provider-aws docs).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[binding]),
        )
        aws.amp.RuleGroupNamespace(
            f"{name}-rules",
            name="limiter",
            workspace_id=workspace.id,
            data=alert_rules_yaml(prom.ext_authz_timeout_ms, args.thresholds, args.runbook_url),
            opts=child,
        )
        aws.amp.AlertManagerDefinition(
            f"{name}-alertmanager",
            workspace_id=workspace.id,
            definition=pulumi.Output.from_input(args.topic_arn).apply(
                lambda arn: alert_manager_definition(arn, args.region)
            ),
            opts=child,
        )
        return workspace


# --- global ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GlobalObservabilityArgs:
    """Inputs of the stack-wide observability (create it with the us-east-1 provider)."""

    topic_arn: pulumi.Input[str]
    """The us-east-1 alarm topic."""
    dashboard_name: str
    """The dashboard's name (one per stack; letters, digits, '-' and '_')."""
    regions: tuple[RegionView, ...]
    """What each region shows on the dashboard; their health checks get alarms here."""
    cloudfront_distribution_id: pulumi.Input[str] | None = None
    """The CloudFront distribution, when on."""
    cloudfront_acl_metric_name: pulumi.Input[str] | None = None
    """The CLOUDFRONT-scope web ACL's metric name, when CloudFront is on."""
    thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)
    """Alarm thresholds."""
    runbook_url: str = DEFAULT_RUNBOOK_URL
    """The runbook, linked from every alarm's description."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every resource."""


class GlobalObservability(pulumi.ComponentResource):
    """Route 53 health-check alarms, CloudFront's alarms, and the stack's dashboard (us-east-1)."""

    alarm_arns: dict[str, pulumi.Output[str]]
    dashboard_name: pulumi.Output[str]

    def __init__(self, name: str, args: GlobalObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ratelimited:index:GlobalObservability", name, None, opts)
        validate_thresholds("GlobalObservabilityArgs.thresholds", args.thresholds)
        if not _DASHBOARD_NAME_RE.match(args.dashboard_name):
            raise ValueError(
                f"GlobalObservabilityArgs.dashboard_name {args.dashboard_name!r} must be 1-255 letters, digits, "
                "'-' or '_'."
            )
        if not args.regions:
            raise ValueError("GlobalObservabilityArgs.regions must list at least one region.")
        if (args.cloudfront_distribution_id is None) != (args.cloudfront_acl_metric_name is None):
            raise ValueError("GlobalObservabilityArgs: give both CloudFront fields or neither.")
        alarms = Alarms(self, name, args.topic_arn, args.thresholds, args.runbook_url, args.tags)
        for view in args.regions:
            for kind, check_id in view.health_checks_sorted():
                alarms.single(
                    f"{view.region}-{kind}-health",
                    f"Route 53 sees {kind} in {view.region} as unhealthy: latency routing sends clients elsewhere",
                    "AWS/Route53",
                    "HealthCheckStatus",
                    {"HealthCheckId": check_id},
                    "Minimum",
                    1,
                    comparison="LessThanThreshold",
                    anchor="route53-health-check",
                )
        if args.cloudfront_distribution_id is not None:
            alarms.single(
                "cloudfront-5xx-rate",
                "CloudFront answers 5xx to viewers (origin unreachable, or every region failing)",
                "AWS/CloudFront",
                "5xxErrorRate",
                {"DistributionId": args.cloudfront_distribution_id, "Region": "Global"},
                "Average",
                args.thresholds.cloudfront_5xx_rate_percent,
                anchor="cloudfront-5xx",
            )
            alarms.waf_surge("cloudfront-waf-blocked-surge", {"WebACL": args.cloudfront_acl_metric_name, "Rule": "ALL"})
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.dashboard_name,
            dashboard_body=pulumi.Output.json_dumps(
                dashboard_body(args.regions, args.cloudfront_distribution_id, args.cloudfront_acl_metric_name)
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.alarm_arns = alarms.arns
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs({"alarmArns": self.alarm_arns, "dashboardName": self.dashboard_name})


# --- alarms ------------------------------------------------------------------------------------


class Alarms:
    """Builds CloudWatch alarms for one component: every one notifies the topic on ALARM and OK."""

    def __init__(
        self,
        parent: pulumi.Resource,
        name: str,
        topic_arn: pulumi.Input[str],
        thresholds: AlarmThresholds,
        runbook_url: str,
        tags: Mapping[str, str],
    ) -> None:
        self._parent, self._name, self._topic = parent, name, topic_arn
        self._t, self._runbook, self._tags = thresholds, runbook_url, dict(tags)
        self.arns: dict[str, pulumi.Output[str]] = {}

    def _create(self, suffix: str, description: str, anchor: str, **kwargs: Any) -> None:
        # M of N: an alarm fires when 3 of its evaluation periods (or all, if fewer) breach.
        periods = kwargs.pop("evaluation_periods", self._t.evaluation_minutes)
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{suffix}",
            alarm_description=f"{description}. Runbook: {self._runbook}#{anchor}",
            evaluation_periods=periods,
            datapoints_to_alarm=min(3, periods),
            treat_missing_data=kwargs.pop("treat_missing_data", "notBreaching"),
            alarm_actions=[self._topic],
            ok_actions=[self._topic],
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self._parent),
            **kwargs,
        )
        self.arns[suffix] = alarm.arn

    def single(
        self,
        suffix: str,
        description: str,
        namespace: str,
        metric: str,
        dimensions: Mapping[str, pulumi.Input[str]],
        statistic: str,
        threshold: float,
        *,
        comparison: str = "GreaterThanThreshold",
        anchor: str,
        period: int = 60,
        evaluation_periods: int | None = None,
    ) -> None:
        """An alarm on one metric; `statistic` pNN becomes an extended statistic."""
        _check_documented(namespace, metric, dimensions)
        stat = {"extended_statistic": statistic} if statistic.startswith("p") else {"statistic": statistic}
        extra = {"evaluation_periods": evaluation_periods} if evaluation_periods else {}
        self._create(
            suffix,
            description,
            anchor,
            namespace=namespace,
            metric_name=metric,
            dimensions=dict(dimensions),
            period=period,
            threshold=threshold,
            comparison_operator=comparison,
            **stat,
            **extra,
        )

    def metric_math(
        self,
        suffix: str,
        description: str,
        namespace: str,
        metric: str,
        dimension_sets: Sequence[Mapping[str, pulumi.Input[str]]],
        *,
        threshold: float,
        anchor: str,
    ) -> None:
        """An alarm on the sum of one metric over several dimension sets."""
        self._sum_alarm(suffix, description, [(namespace, metric, d) for d in dimension_sets], threshold, anchor)

    def throttles(self, suffix: str, what: str, dimensions: Mapping[str, pulumi.Input[str]]) -> None:
        """Read plus write throttle events of a table or GSI."""
        self._sum_alarm(
            suffix,
            f"{what}: DynamoDB throttles reads or writes (capacity, hot partition, or autoscaling too slow)",
            [("AWS/DynamoDB", m, dimensions) for m in ("ReadThrottleEvents", "WriteThrottleEvents")],
            self._t.dynamodb_throttle_events,
            "dynamodb-throttles",
        )

    def waf_surge(self, suffix: str, dimensions: Mapping[str, pulumi.Input[str] | None]) -> None:
        """Informational: the web ACL blocks far more than usual (an attack, or a rule misfiring)."""
        self.single(
            suffix,
            "Informational: the web ACL blocks an unusual number of requests",
            "AWS/WAFV2",
            "BlockedRequests",
            {k: v for k, v in dimensions.items() if v is not None},
            "Sum",
            self._t.waf_blocked_requests,
            anchor="waf-blocked-surge",
            period=300,
            evaluation_periods=1,
        )

    def _sum_alarm(
        self,
        suffix: str,
        description: str,
        metrics: Sequence[tuple[str, str, Mapping[str, pulumi.Input[str]]]],
        threshold: float,
        anchor: str,
    ) -> None:
        queries = []
        for i, (namespace, metric, dimensions) in enumerate(metrics):
            _check_documented(namespace, metric, dimensions)
            queries.append(
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id=f"m{i}",
                    metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                        namespace=namespace,
                        metric_name=metric,
                        dimensions=dict(dimensions),
                        period=60,
                        stat="Sum",
                    ),
                    return_data=False,
                )
            )
        queries.append(
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id="total",
                expression=f"SUM([{', '.join(q.id for q in queries)}])",
                label="total",
                return_data=True,
            )
        )
        self._create(
            suffix,
            description,
            anchor,
            metric_queries=queries,
            threshold=threshold,
            comparison_operator="GreaterThanThreshold",
        )


def _check_documented(namespace: str, metric: str, dimension_names: Iterable[str]) -> None:
    names = tuple(dimension_names)
    if not documented(namespace, metric, names):
        raise ValueError(
            f"{namespace} {metric} with dimensions {sorted(names)} is not in components/metrics_catalog.py; "
            "add it there with its AWS documentation source."
        )


def validate_thresholds(what: str, t: AlarmThresholds) -> None:
    """Refuse thresholds no alarm can use, naming the field (`what` names the holder)."""
    counts = ("dynamodb_throttle_events", "dynamodb_system_errors", "alb_elb_5xx", "alb_target_5xx")
    for name in (*counts, "alb_unhealthy_hosts", "api_5xx"):
        if getattr(t, name) < 0:
            raise ValueError(f"{what}.{name} must be 0 or more.")
    if not 1 <= t.api_latency_p99_ms <= 29_000:
        raise ValueError(f"{what}.api_latency_p99_ms must be 1-29000 (API Gateway's integration timeout is 29 s).")
    if t.waf_blocked_requests < 1:
        raise ValueError(f"{what}.waf_blocked_requests must be at least 1.")
    if not 1 <= t.cloudfront_5xx_rate_percent <= 100:
        raise ValueError(f"{what}.cloudfront_5xx_rate_percent must be 1-100.")
    if not 0 < t.limiter_deny_ratio < 1:
        raise ValueError(f"{what}.limiter_deny_ratio must be between 0 and 1 (exclusive).")
    if not 0 < t.limiter_latency_fraction < 1:
        raise ValueError(f"{what}.limiter_latency_fraction must be between 0 and 1 (exclusive).")
    if not 1 <= t.evaluation_minutes <= 60:
        raise ValueError(f"{what}.evaluation_minutes must be 1-60.")


# --- Prometheus: scrape configuration, alert rules, alert manager -----------------------------


def scrape_configuration(prom: PrometheusCollection) -> str:
    """The scraper's Prometheus configuration: the limiter pods and the ingress gateways, via Istio's merged port.

    Istio's injector points every injected pod's prometheus.io annotations at the sidecar's merged endpoint
    (15020 /stats/prometheus), which serves Envoy's and Istio's metrics and, when the pod template carried
    prometheus.io annotations for the application, the application's own metrics too. Mesh mTLS is
    STRICT, so the application port itself cannot be scraped from outside the mesh.
    """

    def job(job_name: str, namespace: str, keep_app: str | None) -> dict[str, Any]:
        relabel: list[dict[str, Any]] = []
        if keep_app:
            relabel.append({"source_labels": ["__meta_kubernetes_pod_label_app"], "regex": keep_app, "action": "keep"})
        relabel += [
            {"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Running", "action": "keep"},
            {
                "source_labels": ["__meta_kubernetes_pod_ip"],
                "regex": "(.+)",
                "replacement": f"$1:{ISTIO_MERGED_METRICS_PORT}",
                "target_label": "__address__",
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_pod_label_app"], "target_label": "app"},
        ]
        return {
            "job_name": job_name,
            "metrics_path": ISTIO_MERGED_METRICS_PATH,
            "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [namespace]}}],
            "relabel_configs": relabel,
        }

    interval = f"{prom.scrape_interval_seconds}s"
    return yaml.safe_dump(
        {
            "global": {"scrape_interval": interval, "scrape_timeout": "10s"},
            "scrape_configs": [
                job("limiter", prom.limiter_namespace, prom.limiter_app_label),
                job("ingress-gateways", prom.gateway_namespace, None),
            ],
        },
        sort_keys=False,
    )


def alert_rules(ext_authz_timeout_ms: int, thresholds: AlarmThresholds, runbook_url: str) -> dict[str, Any]:
    """The limiter's alert rules (Prometheus rule-file format), each linking its runbook section."""
    decisions = "limiter_decisions_total"
    ratio_now = f'sum(rate({decisions}{{outcome="denied"}}[5m])) / sum(rate({decisions}[5m]))'
    ratio_before = f'sum(rate({decisions}{{outcome="denied"}}[1h] offset 1h)) / sum(rate({decisions}[1h] offset 1h))'
    latency_limit = thresholds.limiter_latency_fraction * ext_authz_timeout_ms
    latency = (
        "histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket"
        '{reporter="destination", destination_workload="limiter"}[5m])))'
    )

    def rule(alert: str, expr: str, for_: str, severity: str, summary: str, anchor: str) -> dict[str, Any]:
        return {
            "alert": alert,
            "expr": expr,
            "for": for_,
            "labels": {"severity": severity},
            "annotations": {"summary": summary, "runbook_url": f"{runbook_url}#{anchor}"},
        }

    return {
        "groups": [
            {
                "name": "limiter",
                "rules": [
                    rule(
                        "LimiterFailureModeAnswers",
                        f'sum(rate({decisions}{{outcome=~"{FAILURE_MODE_OUTCOMES}"}}[5m])) > 0',
                        "5m",
                        "critical",
                        "The limiter answers by failure mode (its store fails): limits are not enforced, or every "
                        "request is denied, depending on each rule's failure mode.",
                        "limiter-failure-mode",
                    ),
                    rule(
                        "LimiterStoreErrors",
                        f'sum(rate(limiter_store_errors_total{{reason!~"{PROCESS_OVERLOAD_REASONS}"}}[5m])) > 0 '
                        "or min(limiter_store_up) == 0",
                        "5m",
                        "critical",
                        "The limiter's store (DynamoDB) calls fail, or a replica's store is down.",
                        "limiter-store-errors",
                    ),
                    rule(
                        "LimiterDenyRatioJump",
                        f"({ratio_now}) > {thresholds.limiter_deny_ratio} and ({ratio_now}) > 3 * ({ratio_before})",
                        "10m",
                        "warning",
                        "The share of denied requests jumped: an attack, a misbehaving client, or a mis-set limit.",
                        "limiter-deny-ratio",
                    ),
                    rule(
                        "LimiterRequestsWithoutKey",
                        "sum(rate(limiter_requests_without_key_total[5m])) > 0",
                        "10m",
                        "warning",
                        "Requests reach the limiter without the header or address a rule keys on: they are not "
                        "limited per client.",
                        "limiter-requests-without-key",
                    ),
                    rule(
                        "LimiterLatencyNearTimeout",
                        f"{latency} > {latency_limit:g}",
                        "10m",
                        "critical",
                        f"The limiter's p99 latency is above {latency_limit:g} ms, near the gateways' ext_authz "
                        f"timeout ({ext_authz_timeout_ms} ms): soon requests fail open or closed on timeout.",
                        "limiter-latency",
                    ),
                ],
            }
        ]
    }


def alert_rules_yaml(ext_authz_timeout_ms: int, thresholds: AlarmThresholds, runbook_url: str) -> str:
    """`alert_rules` as the YAML an AMP rule group namespace takes."""
    return yaml.safe_dump(alert_rules(ext_authz_timeout_ms, thresholds, runbook_url), sort_keys=False)


def alert_manager_definition(topic_arn: str, region: str) -> str:
    """Every alert, firing and resolved, to the region's SNS topic (AMP alert manager, SNS receiver)."""
    return yaml.safe_dump(
        {
            "alertmanager_config": yaml.safe_dump(
                {
                    "route": {"receiver": "sns", "group_by": ["alertname"], "repeat_interval": "4h"},
                    "receivers": [
                        {
                            "name": "sns",
                            "sns_configs": [
                                {
                                    "topic_arn": topic_arn,
                                    "sigv4": {"region": region},
                                    "send_resolved": True,
                                    "subject": "{{ .CommonLabels.alertname }}",
                                }
                            ],
                        }
                    ],
                },
                sort_keys=False,
            )
        },
        sort_keys=False,
    )


# --- the dashboard -------------------------------------------------------------------------------

_ROW_HEIGHT = 6


def _validate_regional(args: RegionalObservabilityArgs) -> None:
    validate_thresholds("RegionalObservabilityArgs.thresholds", args.thresholds)
    # The AMP scraper puts its network interfaces in at least two subnets of different zones (CreateScraper).
    if args.prometheus is not None and len(args.prometheus.subnet_ids) < 2:
        raise ValueError("RegionalObservabilityArgs.prometheus.subnet_ids must list two subnets in two zones.")


def dashboard_body(
    regions: Sequence[RegionView],
    cloudfront_distribution_id: pulumi.Input[str] | None,
    cloudfront_acl_metric_name: pulumi.Input[str] | None,
) -> dict[str, Any]:
    """The dashboard along the request path: one row per hop, the regions side by side (may hold Outputs)."""
    width = max(24 // len(regions), 6)
    widgets: list[dict[str, Any]] = []
    y = 0

    def metric_row(title: str, per_region: Any) -> None:
        nonlocal y
        for col, view in enumerate(regions):
            metrics, region = per_region(view)
            if not metrics:
                continue
            widgets.append(_metric_widget(f"{title} - {view.region}", region, metrics, col * width, y, width))
        y += _ROW_HEIGHT

    metric_row(
        "Route 53 health",
        lambda v: (
            [
                ["AWS/Route53", "HealthCheckStatus", "HealthCheckId", hc, {"label": kind}]
                for kind, hc in v.health_checks_sorted()
            ],
            "us-east-1",
        ),
    )
    metric_row(
        "WAF allowed / blocked",
        lambda v: (
            [
                ["AWS/WAFV2", m, "WebACL", v.web_acl_metric_name, "Region", v.region, "Rule", "ALL"]
                for m in ("AllowedRequests", "BlockedRequests")
            ],
            v.region,
        ),
    )
    if cloudfront_distribution_id is not None:
        widgets.append(
            _metric_widget(
                "CloudFront requests and error rates",
                "us-east-1",
                [
                    ["AWS/CloudFront", m, "DistributionId", cloudfront_distribution_id, "Region", "Global"]
                    for m in ("Requests", "4xxErrorRate", "5xxErrorRate")
                ]
                + [
                    ["AWS/WAFV2", m, "WebACL", cloudfront_acl_metric_name, "Rule", "ALL"]
                    for m in ("AllowedRequests", "BlockedRequests")
                ],
                0,
                y,
                24,
            )
        )
        y += _ROW_HEIGHT
    metric_row(
        "ALB requests, latency, 5xx",
        lambda v: (
            [
                ["AWS/ApplicationELB", m, "LoadBalancer", v.alb_arn_suffix]
                for m in ("RequestCount", "HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count")
            ]
            + [
                [
                    "AWS/ApplicationELB",
                    "TargetResponseTime",
                    "LoadBalancer",
                    v.alb_arn_suffix,
                    {"stat": "p99", "yAxis": "right"},
                ]
            ],
            v.region,
        ),
    )
    metric_row(
        "API Gateway count, latency, 4xx, 5xx",
        lambda v: (
            [
                ["AWS/ApiGateway", m, "ApiName", v.api_stage.api_name, "Stage", v.api_stage.stage_name]
                for m in ("Count", "4XXError", "5XXError")
            ]
            + [
                [
                    "AWS/ApiGateway",
                    "Latency",
                    "ApiName",
                    v.api_stage.api_name,
                    "Stage",
                    v.api_stage.stage_name,
                    {"stat": "p99", "yAxis": "right"},
                ]
            ]
            if v.api_stage
            else [],
            v.region,
        ),
    )
    # CloudWatch dashboards cannot query an AMP workspace: the limiter's decisions are a PromQL query there.
    for col, view in enumerate(regions):
        if view.workspace_id is None:
            continue
        widgets.append(
            {
                "type": "text",
                "x": col * width,
                "y": y,
                "width": width,
                "height": _ROW_HEIGHT,
                "properties": {
                    "markdown": pulumi.Output.concat(
                        f"### Limiter decisions by outcome - {view.region}\n\n",
                        "In the AMP workspace `",
                        view.workspace_id,
                        "` (Managed Grafana or `awscurl` on its query endpoint):\n\n",
                        "`sum by (outcome) (rate(limiter_decisions_total[5m]))`\n\n",
                        "Alerts: rule group namespace `limiter` in the same workspace.",
                    )
                },
            }
        )
    y += _ROW_HEIGHT
    metric_row(
        "DynamoDB consumed capacity and throttles",
        lambda v: (
            [
                ["AWS/DynamoDB", m, "TableName", t.name, {"label": f"{t.key} {m}"}]
                for t in v.tables
                for m in (
                    "ConsumedReadCapacityUnits",
                    "ConsumedWriteCapacityUnits",
                    "ReadThrottleEvents",
                    "WriteThrottleEvents",
                )
            ],
            v.region,
        ),
    )
    return {"widgets": widgets}


def _metric_widget(title: str, region: str, metrics: list, x: int, y: int, width: int) -> dict[str, Any]:
    for m in metrics:
        # [namespace, metric, name1, value1, name2, value2, ..., {render options}]
        dims = [d for d in m[2:] if not isinstance(d, dict)]
        _check_documented(m[0], m[1], dims[::2])
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": width,
        "height": _ROW_HEIGHT,
        "properties": {
            "title": title,
            "region": region,
            "view": "timeSeries",
            "stat": "Sum",
            "period": 60,
            "metrics": metrics,
        },
    }
