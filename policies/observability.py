"""Policies for observability: every entry and every table is watched.

Enforcement levels, and why:

- `alarm-per-resource`: ADVISORY. Every internet-facing ALB, every API Gateway stage that is not
  PRIVATE and every DynamoDB table must have at least one CloudWatch metric alarm bound to it. A stack
  without alarms is not unsafe the way a stack without WAF is, so the default only warns; a stack that
  runs production traffic should refuse it: `{"alarm-per-resource": "mandatory"}` in the pack's config.

Binding: an alarm is bound to a resource when its `dimensions` or `metricQueries` were derived from
that resource's outputs (the property dependency, the only link in a first preview, where the
load balancer's ARN suffix, the table's name and the stage's name are unknown), or, when both sides
are known (update), when one of its dimension values is the resource's identifier: the ALB's
`arnSuffix` (LoadBalancer), the table's `name` (TableName), the stage's `stageName` (Stage) with its
REST API's `name` (ApiName). An alarm with typed names matches only in the update, so a first
preview reports it: bind alarms through outputs.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from .graph import StackView, dependencies_of_type, depends_on
from .network import API_STAGE, LOAD_BALANCER_TYPES, REST_API, _is_internet_facing_alb, _is_private_api
from .props import config_schema, get, is_exempt, is_unknown, items

METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TABLE = "aws:dynamodb/table:Table"
_BINDING_PROPS = ("dimensions", "metricQueries")


def _dimension_sets(props: dict[str, Any]) -> list[dict[str, Any]]:
    """Every dimensions mapping of an alarm: its own and those of its metric queries."""
    sets = []
    own = props.get("dimensions")
    if isinstance(own, dict):
        sets.append(own)
    for query in items(props.get("metricQueries")):
        dims = get(query, "metric.dimensions")
        if isinstance(dims, dict):
            sets.append(dims)
    return sets


def _known(value: Any) -> bool:
    return value is not None and value != "" and not is_unknown(value)


class _Alarms:
    def __init__(self, view: StackView) -> None:
        self.view = view
        self.alarms = view.of_type(METRIC_ALARM)

    def derived_from(self, resource: PolicyResource) -> bool:
        return any(depends_on(a, prop, resource) for a in self.alarms for prop in _BINDING_PROPS)

    def with_dimensions(self, wanted: dict[str, Any]) -> bool:
        """True when an alarm has dimension values equal to every known one in `wanted`."""
        if not all(_known(v) for v in wanted.values()):
            return False
        for alarm in self.alarms:
            for dims in _dimension_sets(self.view.props(alarm)):
                if all(dims.get(k) == v for k, v in wanted.items()):
                    return True
        return False


def _report(report_violation: ReportViolation, what: str, resource: PolicyResource, dimension: str) -> None:
    report_violation(
        f"The {what} '{resource.name}' has no CloudWatch alarm bound to it. Create an "
        f"aws.cloudwatch.MetricAlarm whose {dimension} dimension is derived from this resource's outputs "
        "(the observability layer's RegionalObservability does this for the program's resources), so that "
        "someone is told when it fails.",
        resource.urn,
    )


def _validate_alarm_per_resource(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    view = StackView(args.resources)
    alarms = _Alarms(view)
    for alb in view.of_type(*LOAD_BALANCER_TYPES):
        props = view.props(alb)
        if is_exempt(args, alb.name) or not _is_internet_facing_alb(props):
            continue
        if alarms.derived_from(alb) or alarms.with_dimensions({"LoadBalancer": props.get("arnSuffix")}):
            continue
        _report(report_violation, "internet-facing ALB", alb, "LoadBalancer (its arn_suffix)")
    for table in view.of_type(TABLE):
        if is_exempt(args, table.name):
            continue
        if alarms.derived_from(table) or alarms.with_dimensions({"TableName": view.props(table).get("name")}):
            continue
        _report(report_violation, "DynamoDB table", table, "TableName (its name)")
    for stage in view.of_type(API_STAGE):
        if is_exempt(args, stage.name) or _is_private_api(view, stage):
            continue
        if alarms.derived_from(stage):
            continue
        apis = dependencies_of_type(stage, "restApi", REST_API)
        stage_name = view.props(stage).get("stageName")
        if any(alarms.with_dimensions({"ApiName": view.props(api).get("name"), "Stage": stage_name}) for api in apis):
            continue
        _report(report_violation, "API Gateway stage", stage, "Stage (its stage_name, with ApiName)")


alarm_per_resource = StackValidationPolicy(
    name="alarm-per-resource",
    description="Every internet-facing ALB, public API Gateway stage and DynamoDB table has a CloudWatch alarm.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_validate_alarm_per_resource,
    config_schema=config_schema(),
)

POLICIES = [alarm_per_resource]
