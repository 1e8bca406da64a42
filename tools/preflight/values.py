"""Values an AWS API refuses at `pulumi up` (besides names and IAM), each rule with its upstream source.

- `vpc-dns`: EKS nodes register, and the private endpoint resolves, only in a VPC with DNS support and DNS
  hostnames on (EKS user guide, "View Amazon EKS networking requirements for VPC and subnets" and "Cluster
  API server endpoint"). pulumi-aws defaults `enableDnsHostnames` to false, so it must be set.
- `ecr-lifecycle-policy`: ECR's PutLifecyclePolicy refuses two rules with one `rulePriority`, an `any` rule
  that is not last, and a `tagged` rule without a tag list (ECR user guide, "Lifecycle policy properties").
- `api-integration-timeout`: an API Gateway REST integration's timeout is 50 to 29,000 ms (botocore
  `apigateway` PutIntegration `timeoutInMillis`; longer only for Regional or private APIs after a quota
  increase, which the program does not ask for).
- `waf-priorities`: a web ACL's rules have distinct priorities of 0 or more, and so have the text
  transformations of each statement (AWS WAF API reference, `Rule` and `TextTransformation`: "Priority ...
  Valid Range: Minimum value of 0"; rule priorities "must all be different", as must the transformations').
- `log-retention`: CloudWatch Logs takes only the listed retention periods (botocore `logs` PutRetentionPolicy
  `retentionInDays`), and pulumi-aws takes 0 for "never expire" (`cloudwatch.LogGroup` docstring).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tools.preflight.findings import Finding

RULES = [
    ("vpc-dns", "the VPC of an EKS cluster has DNS support and DNS hostnames on"),
    (
        "ecr-lifecycle-policy",
        "ECR lifecycle policies: unique rule priorities, an `any` rule last, tag lists where needed",
    ),
    ("api-integration-timeout", "API Gateway integration timeouts are within 50 to 29,000 ms"),
    ("waf-priorities", "WAF rules, and the text transformations of each statement, have distinct priorities >= 0"),
    ("log-retention", "CloudWatch log groups keep their events for a period CloudWatch Logs accepts"),
    ("alarm-period", "CloudWatch alarm periods are 10, 20, 30 s or a multiple of 60, within the evaluation range"),
]

#: botocore logs PutRetentionPolicy `retentionInDays`: "Possible values are: 1, 3, ..., and 3653"; 0 is
#: pulumi-aws's "never expire" (it deletes the retention policy).
LOG_RETENTION_DAYS = frozenset(
    (0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
)
INTEGRATION_TIMEOUT_MS = (50, 29_000)

_EKS_SOURCE = "EKS user guide: networking requirements for VPC and subnets; cluster API server endpoint"
_ECR_SOURCE = "ECR user guide: lifecycle policy properties (rulePriority, tagStatus, tagPatternList/tagPrefixList)"
_APIGW_SOURCE = "botocore apigateway PutIntegration timeoutInMillis (50 to 29,000 ms)"
_WAF_SOURCE = "AWS WAF API reference: Rule.Priority, TextTransformation.Priority (minimum 0, distinct)"
_ALARM_SOURCE = (
    "CloudWatch API reference, PutMetricAlarm Period: 10, 20, 30 or any multiple of 60; Period x EvaluationPeriods "
    "at most one day for a period under an hour, seven days otherwise"
)
_LOGS_SOURCE = "botocore logs PutRetentionPolicy retentionInDays; pulumi-aws cloudwatch.LogGroup (0: never expire)"


def ecr_lifecycle_errors(policy: Mapping[str, Any]) -> list[str]:
    """What ECR would refuse in a lifecycle policy document, one sentence each (empty: it is valid)."""
    rules = policy.get("rules")
    if not isinstance(rules, list) or not rules:
        return ["it has no `rules` list"]
    errors = []
    priorities = [r.get("rulePriority") for r in rules]
    if any(not isinstance(p, int) or isinstance(p, bool) or p < 1 for p in priorities):
        errors.append(f"every rulePriority must be a positive integer, not {priorities}")
    elif len(set(priorities)) != len(priorities):
        errors.append(f"rule priorities must be unique, not {priorities}")
    highest = max((p for p in priorities if isinstance(p, int)), default=None)
    for rule in rules:
        selection = rule.get("selection") or {}
        status = selection.get("tagStatus")
        where = f"rule {rule.get('rulePriority')}"
        if status not in ("tagged", "untagged", "any"):
            errors.append(f"{where}: tagStatus must be tagged, untagged or any, not {status!r}")
        has_tags = bool(selection.get("tagPrefixList") or selection.get("tagPatternList"))
        if status == "tagged" and not has_tags:
            errors.append(f"{where}: a tagged rule needs tagPrefixList or tagPatternList")
        if status == "untagged" and has_tags:
            errors.append(f"{where}: an untagged rule takes no tag list")
        if status == "any" and isinstance(rule.get("rulePriority"), int) and rule["rulePriority"] != highest:
            errors.append(f"{where}: the rule with tagStatus any must have the highest rulePriority")
        number = selection.get("countNumber")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            errors.append(f"{where}: countNumber must be a positive integer, not {number!r}")
    return errors


def waf_priority_errors(rules: Any) -> list[str]:
    """What WAF would refuse in a web ACL's rule priorities and text transformation priorities."""
    errors = []

    def check(priorities: list[Any], what: str) -> None:
        numbers = [_number(p) for p in priorities]
        if any(n is None or n < 0 or not n.is_integer() for n in numbers):
            errors.append(f"{what} priorities must be whole numbers of 0 or more, not {priorities}")
        elif len(set(numbers)) != len(numbers):
            errors.append(f"{what} priorities must all be different, not {priorities}")

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            transformations = value.get("textTransformations")
            if isinstance(transformations, list):
                check(
                    [t.get("priority") for t in transformations if isinstance(t, dict)],
                    f"{where}'s text transformation",
                )
            for child in value.values():
                walk(child, where)
        elif isinstance(value, list):
            for child in value:
                walk(child, where)

    if isinstance(rules, list):
        check([r.get("priority") for r in rules if isinstance(r, dict)], "rule")
        for rule in rules:
            if isinstance(rule, dict):
                walk(rule.get("statement"), f"rule {rule.get('name')!r}")
    return errors


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def alarm_period_errors(inputs: Mapping[str, Any]) -> list[str]:
    """What PutMetricAlarm would refuse in an alarm's period(s): its own, or each metric query's."""
    periods = [_number(inputs.get("period"))]
    for query in inputs.get("metricQueries") or []:
        metric = query.get("metric") if isinstance(query, Mapping) else None
        if isinstance(metric, Mapping):
            periods.append(_number(metric.get("period")))
    errors = []
    evaluations = _number(inputs.get("evaluationPeriods"))
    for period in (p for p in periods if p is not None):
        if period not in (10, 20, 30) and (period <= 0 or period % 60):
            errors.append(f"period {period:g} s is not 10, 20, 30 or a multiple of 60")
        elif evaluations is not None and period * evaluations > (86_400 if period < 3600 else 604_800):
            errors.append(f"period {period:g} s x {evaluations:g} evaluation periods is longer than CloudWatch allows")
    return errors


def check(record: Mapping[str, Any]) -> list[Finding]:
    resources = [r for r in record["resources"] if r.get("custom")]
    found = []

    def finding(rule: str, resource: Mapping[str, Any], message: str, source: str) -> None:
        found.append(Finding.about(rule, resource, f"{resource['type']} '{resource['name']}' {message}", source))

    # A cluster names its VPC by id (known in an update) and depends on it by URN; neither is ever None.
    clusters = [r for r in record["resources"] if r["type"] == "eks:index:Cluster"]
    cluster_vpcs = {
        *(r["inputs"].get("vpcId") for r in clusters),
        *(urn for r in clusters for urn in (r.get("property_dependencies") or {}).get("vpcId", [])),
    } - {None}
    for r in resources:
        inputs = r.get("inputs") or {}
        if r["type"] == "aws:ec2/vpc:Vpc" and (r.get("id") in cluster_vpcs or r["urn"] in cluster_vpcs):
            off = [
                key
                for key, default in (("enableDnsSupport", True), ("enableDnsHostnames", False))
                if inputs.get(key, default) is not True
            ]
            if off:
                finding(
                    "vpc-dns",
                    r,
                    f"holds an EKS cluster but has {' and '.join(off)} off: nodes could not register with the "
                    "cluster and its private endpoint would not resolve. Set both to true.",
                    _EKS_SOURCE,
                )
        elif r["type"] == "aws:ecr/lifecyclePolicy:LifecyclePolicy" and isinstance(inputs.get("policy"), str):
            try:
                errors = ecr_lifecycle_errors(json.loads(inputs["policy"]))
            except json.JSONDecodeError as e:
                errors = [f"its policy is not JSON ({e})"]
            for error in errors:
                finding("ecr-lifecycle-policy", r, f"would be refused by ECR: {error}.", _ECR_SOURCE)
        elif r["type"] == "aws:apigateway/integration:Integration":
            timeout = _number(inputs.get("timeoutMilliseconds"))
            low, high = INTEGRATION_TIMEOUT_MS
            if timeout is not None and not low <= timeout <= high:
                finding(
                    "api-integration-timeout",
                    r,
                    f"has timeoutMilliseconds {timeout:g}; API Gateway takes {low} to {high:,} ms (more only for a "
                    "Regional or private API after a quota increase).",
                    _APIGW_SOURCE,
                )
        elif r["type"] == "aws:wafv2/webAcl:WebAcl":
            for error in waf_priority_errors(inputs.get("rules")):
                finding("waf-priorities", r, f"would be refused by WAF: {error}.", _WAF_SOURCE)
        elif r["type"] == "aws:cloudwatch/metricAlarm:MetricAlarm":
            for error in alarm_period_errors(inputs):
                finding("alarm-period", r, f"would be refused by CloudWatch: {error}.", _ALARM_SOURCE)
        elif r["type"] == "aws:cloudwatch/logGroup:LogGroup":
            days = _number(inputs.get("retentionInDays"))
            if days is not None and days not in LOG_RETENTION_DAYS:
                finding(
                    "log-retention",
                    r,
                    f"has retentionInDays {days:g}, which CloudWatch Logs refuses; it takes "
                    f"{', '.join(str(d) for d in sorted(LOG_RETENTION_DAYS))}.",
                    _LOGS_SOURCE,
                )
    return found
