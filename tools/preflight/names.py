"""Physical names: what the providers would name each resource, checked against the type's limits.

A name is explicit (an input), made from a prefix (`namePrefix`, `bucketPrefix`) or auto-named from the
logical name:
- pulumi-aws: `<logical>-<7 random hex>` (pulumi-terraform-bridge tfbridge.AutoName; the provider refuses
  "name '<logical>-' plus 7 random chars is longer than maximum length N" at preview), the maximum per
  type in pulumi-aws provider/resources.go (255 where it sets none: provider/autonaming.go);
- from a prefix: `<prefix><26 characters>` (terraform-plugin-sdk id.PrefixedUniqueId, UniqueIDSuffixLength);
- pulumi-kubernetes, Helm releases included: `<logical>-<8 random characters>` (metadata.name / release name).

Logical names carry the stack's region; every name is evaluated with the longest commercial region name
(14 characters, e.g. ap-southeast-1) in its place, so a stack that passes here passes in every region.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tools.mocks import UNKNOWN
from tools.preflight.findings import Finding

LONGEST_REGION = "ap-southeast-1"
_REGION = re.compile(r"(?<![a-z])[a-z]{2}-(?:gov-)?[a-z]+-\d+(?![0-9])")
_AWS_RANDOM = "-" + "a" * 7
_K8S_RANDOM = "-" + "a" * 8
_PREFIX_SUFFIX = 26

_ELBV2 = "terraform-provider-aws internal/service/elbv2/validate.go; pulumi-aws provider/resources.go AutoName 32"
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class NameRule:
    """The limits of one type's physical name."""

    type: str
    field: str
    max_length: int
    pattern: re.Pattern[str] | None
    what: str
    source: str
    prefix_field: str | None = None
    prefix_max: int | None = None
    must_start: str | None = None
    must_not_start: tuple[str, ...] = ()
    lowercase_auto_name: bool = False


# Each rule's source is where the limit is enforced: the provider refuses it at preview or AWS at `up`.
RULES_BY_TYPE: dict[str, NameRule] = {
    r.type: r
    for r in (
        NameRule(
            "aws:lb/loadBalancer:LoadBalancer",
            "name",
            32,
            re.compile(r"^[0-9A-Za-z]([0-9A-Za-z-]*[0-9A-Za-z])?$"),
            "letters, digits and hyphens, not at either end",
            _ELBV2,
            prefix_field="namePrefix",
            prefix_max=6,
            must_not_start=("internal-",),
        ),
        NameRule(
            "aws:lb/targetGroup:TargetGroup",
            "name",
            32,
            re.compile(r"^[0-9A-Za-z]([0-9A-Za-z-]*[0-9A-Za-z])?$"),
            "letters, digits and hyphens, not at either end",
            _ELBV2,
            prefix_field="namePrefix",
            prefix_max=6,
        ),
        NameRule(
            "aws:iam/role:Role",
            "name",
            64,
            re.compile(r"^[\w+=,.@-]+$"),
            "letters, digits and +=,.@_-",
            "IAM API reference CreateRole RoleName; pulumi-aws provider/resources.go AutoName 64",
            prefix_field="namePrefix",
            prefix_max=38,
        ),
        NameRule(
            "aws:iam/policy:Policy",
            "name",
            128,
            re.compile(r"^[\w+=,.@-]+$"),
            "letters, digits and +=,.@_-",
            "IAM API reference CreatePolicy PolicyName",
            prefix_field="namePrefix",
            prefix_max=102,
        ),
        NameRule(
            "aws:iam/rolePolicy:RolePolicy",
            "name",
            128,
            re.compile(r"^[\w+=,.@-]+$"),
            "letters, digits and +=,.@_-",
            "IAM API reference PutRolePolicy PolicyName",
            prefix_field="namePrefix",
            prefix_max=102,
        ),
        NameRule(
            "aws:s3/bucket:Bucket",
            "bucket",
            63,
            re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
            "3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit",
            "S3 user guide, general purpose bucket naming rules; pulumi-aws AutoNameTransform(bucket, 63, lower)",
            prefix_field="bucketPrefix",
            prefix_max=37,
            must_not_start=("xn--", "sthree-"),
            lowercase_auto_name=True,
        ),
        NameRule(
            "aws:dynamodb/table:Table",
            "name",
            255,
            re.compile(r"^[A-Za-z0-9_.-]{3,255}$"),
            "3 to 255 letters, digits and _.-",
            "DynamoDB API reference CreateTable TableName",
        ),
        NameRule(
            "aws:ecr/repository:Repository",
            "name",
            256,
            re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$"),
            "lower-case letters, digits and ._-/ separators",
            "ECR API reference CreateRepository repositoryName",
        ),
        NameRule(
            "aws:cloudwatch/logGroup:LogGroup",
            "name",
            512,
            re.compile(r"^[\w#/.-]+$"),
            "letters, digits and _-/.#",
            "CloudWatch Logs API reference CreateLogGroup logGroupName",
            prefix_field="namePrefix",
            prefix_max=483,
        ),
        NameRule(
            "aws:wafv2/webAcl:WebAcl",
            "name",
            128,
            re.compile(r"^[\w-]{1,128}$"),
            "letters, digits, _ and -",
            "WAFV2 API reference CreateWebACL Name",
            prefix_field="namePrefix",
            prefix_max=102,
        ),
        NameRule(
            "aws:kms/alias:Alias",
            "name",
            256,
            re.compile(r"^alias/[A-Za-z0-9/_-]+$"),
            "alias/ then letters, digits and /_-",
            "KMS API reference CreateAlias AliasName",
            prefix_field="namePrefix",
            prefix_max=230,
            must_start="alias/",
            must_not_start=("alias/aws/",),
        ),
        NameRule(
            "aws:ec2/securityGroup:SecurityGroup",
            "name",
            255,
            re.compile(r"^[\x20-\x7e]+$"),
            "ASCII",
            "EC2 API reference CreateSecurityGroup GroupName",
            prefix_field="namePrefix",
            prefix_max=229,
            must_not_start=("sg-",),
        ),
        NameRule(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "name",
            255,
            re.compile(r"^[\x20-\x7e]+$"),
            "ASCII",
            "CloudWatch API reference PutMetricAlarm AlarmName",
        ),
        NameRule(
            "aws:sns/topic:Topic",
            "name",
            256,
            re.compile(r"^[\w-]+(\.fifo)?$"),
            "letters, digits, _ and -",
            "SNS API reference CreateTopic Name",
            prefix_field="namePrefix",
            prefix_max=230,
        ),
        NameRule(
            "aws:apigatewayv2/vpcLink:VpcLink",
            "name",
            128,
            None,
            "",
            "API Gateway v2 API reference CreateVpcLink name",
        ),
        NameRule(
            "aws:appautoscaling/policy:Policy",
            "name",
            256,
            re.compile(r"^[\x20-\x7e]+$"),
            "printable ASCII",
            "Application Auto Scaling API reference PutScalingPolicy PolicyName",
        ),
        NameRule(
            "kubernetes:helm.sh/v3:Release",
            "name",
            53,
            _DNS1123_LABEL,
            "a DNS-1123 label (lower-case letters, digits, hyphens)",
            "Helm 3 pkg/chartutil ValidateReleaseName (maxReleaseNameLen 53)",
        ),
    )
}

# Kinds whose names are labels (DNS-1123, or DNS-1035 for Services), not subdomains.
_K8S_LABEL_KINDS = {"Namespace": _DNS1123_LABEL, "Service": _DNS1035_LABEL}
_K8S_SOURCE = "Kubernetes apimachinery validation: IsDNS1123Subdomain / IsDNS1123Label / IsDNS1035Label"

RULES: list[tuple[str, str]] = [
    ("name-length", "physical names (explicit, from a prefix, or auto-named) fit their type's limit in every region"),
    ("name-characters", "physical names use the characters and prefixes their type allows"),
    ("waf-log-destination", "WAF logs go to a log group whose name begins aws-waf-logs-"),
]


def longest_region_variant(name: str) -> str:
    """The name as it would be in the longest commercial region."""
    return _REGION.sub(LONGEST_REGION, name)


def check(record: Mapping[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    for resource in record["resources"]:
        typ = str(resource["type"])
        if typ.startswith("kubernetes:") and typ != "kubernetes:helm.sh/v3:Release":
            findings += _check_kubernetes(resource)
        elif typ in RULES_BY_TYPE:
            findings += _check_with_rule(resource, RULES_BY_TYPE[typ])
        elif typ.startswith("aws:") and resource.get("custom") and "name" in _inputs(resource):
            findings += _check_default_aws(resource)
    findings += _check_waf_log_destinations(record)
    return findings


def _inputs(resource: Mapping[str, Any]) -> dict[str, Any]:
    return dict(resource.get("inputs") or {})


def _known_str(value: Any) -> str | None:
    if isinstance(value, str) and value != UNKNOWN:
        return value
    return None


def _effective(resource: Mapping[str, Any], rule: NameRule) -> Iterator[tuple[str, str, str]]:
    """(how, name to check, what the check describes) for the name this resource would get."""
    inputs = _inputs(resource)
    explicit = _known_str(inputs.get(rule.field))
    prefix = _known_str(inputs.get(rule.prefix_field)) if rule.prefix_field else None
    if inputs.get(rule.field) is not None and explicit is None:
        return  # unknown until apply: nothing to check offline
    if explicit is not None:
        yield "explicit", longest_region_variant(explicit), f"{rule.field} {explicit!r}"
    elif prefix is not None:
        yield "prefix", longest_region_variant(prefix), f"{rule.prefix_field} {prefix!r}"
    else:
        logical = longest_region_variant(str(resource["name"]))
        suffix = _K8S_RANDOM if str(resource["type"]).startswith("kubernetes:") else _AWS_RANDOM
        auto = logical + suffix
        yield "auto", auto.lower() if rule.lowercase_auto_name else auto, f"auto-name '{resource['name']}-' + random"


def _check_with_rule(resource: Mapping[str, Any], rule: NameRule) -> list[Finding]:
    found = []
    for how, name, described in _effective(resource, rule):
        if how == "prefix":
            if rule.prefix_max is not None and len(name) > rule.prefix_max:
                found.append(
                    _finding(
                        resource,
                        "name-length",
                        f"{described} is {len(name)} characters; {rule.type} allows a prefix of at most "
                        f"{rule.prefix_max} (the provider adds {_PREFIX_SUFFIX}).",
                        rule.source,
                    )
                )
            full = name + "0" * _PREFIX_SUFFIX
        else:
            full = name
            if len(full) > rule.max_length:
                where = " with the longest region name" if full != _as_given(resource, rule) else ""
                found.append(
                    _finding(
                        resource,
                        "name-length",
                        f"The {described} gives a name of {len(full)} characters{where} ({full!r}); "
                        f"{rule.type} allows at most {rule.max_length}.",
                        rule.source,
                    )
                )
        if rule.pattern is not None and not rule.pattern.match(full[: rule.max_length]):
            found.append(
                _finding(
                    resource,
                    "name-characters",
                    f"The {described} gives {full!r}, which {rule.type} refuses: {rule.what}.",
                    rule.source,
                )
            )
        if rule.must_start and not full.startswith(rule.must_start):
            found.append(
                _finding(
                    resource, "name-characters", f"The {described} must begin with {rule.must_start!r}.", rule.source
                )
            )
        for bad in rule.must_not_start:
            if full.startswith(bad):
                found.append(
                    _finding(resource, "name-characters", f"The {described} must not begin with {bad!r}.", rule.source)
                )
    return found


def _as_given(resource: Mapping[str, Any], rule: NameRule) -> str:
    explicit = _known_str(_inputs(resource).get(rule.field))
    return explicit if explicit is not None else str(resource["name"]) + _AWS_RANDOM


def _check_default_aws(resource: Mapping[str, Any]) -> list[Finding]:
    rule = NameRule(
        str(resource["type"]),
        "name",
        255,
        None,
        "",
        "pulumi-aws provider/autonaming.go: AutoName(name, 255) where resources.go sets no other limit",
        prefix_field="namePrefix",
    )
    return _check_with_rule(resource, rule)


def _check_kubernetes(resource: Mapping[str, Any]) -> list[Finding]:
    inputs = _inputs(resource)
    meta = inputs.get("metadata") if isinstance(inputs.get("metadata"), dict) else {}
    kind = str(inputs.get("kind") or str(resource["type"]).rsplit(":", 1)[-1])
    explicit = _known_str(meta.get("name"))
    if meta.get("name") is not None and explicit is None:
        return []
    name = explicit if explicit is not None else longest_region_variant(str(resource["name"])) + _K8S_RANDOM
    described = f"metadata.name {explicit!r}" if explicit is not None else f"auto-name '{resource['name']}-' + random"
    found = []
    label = _K8S_LABEL_KINDS.get(kind)
    limit, pattern, what = (
        (63, label, "a DNS label") if label is not None else (253, _DNS1123_SUBDOMAIN, "a DNS-1123 subdomain")
    )
    if len(name) > limit:
        found.append(
            _finding(
                resource,
                "name-length",
                f"The {described} gives a {kind} name of {len(name)} characters; at most {limit}.",
                _K8S_SOURCE,
            )
        )
    if not pattern.match(name):
        found.append(
            _finding(resource, "name-characters", f"The {described} gives {name!r}, which is not {what}.", _K8S_SOURCE)
        )
    namespace = _known_str(meta.get("namespace"))
    if namespace is not None and (len(namespace) > 63 or not _DNS1123_LABEL.match(namespace)):
        found.append(
            _finding(
                resource,
                "name-characters",
                f"metadata.namespace {namespace!r} is not a DNS-1123 label of at most 63 characters.",
                _K8S_SOURCE,
            )
        )
    return found


def _check_waf_log_destinations(record: Mapping[str, Any]) -> list[Finding]:
    """WAF refuses a logging destination whose name does not begin aws-waf-logs- (WAF developer guide,
    "Sending web ACL traffic logs to an Amazon CloudWatch Logs log group")."""
    by_urn = {r["urn"]: r for r in record["resources"]}
    found = []
    for config in record["resources"]:
        if config["type"] != "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration":
            continue
        for urn in (config.get("property_dependencies") or {}).get("logDestinationConfigs", []):
            target = by_urn.get(urn)
            if target is None or target["type"] != "aws:cloudwatch/logGroup:LogGroup":
                continue
            inputs = _inputs(target)
            name = _known_str(inputs.get("name")) or _known_str(inputs.get("namePrefix")) or str(target["name"])
            if not name.startswith("aws-waf-logs-"):
                found.append(
                    _finding(
                        config,
                        "waf-log-destination",
                        f"The WAF logging configuration '{config['name']}' sends logs to log group "
                        f"'{target['name']}' ({name!r}); WAF accepts only log groups whose name begins "
                        "'aws-waf-logs-'.",
                        "AWS WAF developer guide: CloudWatch Logs log group destinations",
                    )
                )
    return found


def _finding(resource: Mapping[str, Any], rule: str, message: str, source: str) -> Finding:
    return Finding.about(rule, resource, f"{resource['type']} '{resource['name']}': {message}", source)
