"""The stack's configuration, read once, validated, and returned as typed objects.

Every key is declared in Pulumi.yaml with its description and default; the Pulumi CLI merges those
defaults with Pulumi.<stack>.yaml before the program runs (tools/stack_files.py does the same for
the offline runs). `parse` takes that merged mapping, so it is testable without Pulumi. A bad value
raises ConfigError naming the key (and the field inside it) and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from components.api_gateway import API_KEY_HEADER, API_STAGE_NAME
from components.edge import HEALTH_PATH
from components.mesh import path_clashes_with
from components.observability import DEFAULT_RUNBOOK_URL, AlarmThresholds, validate_thresholds
from components.services import MAX_SERVICE_NAME, validate_microservice
from components.specs import (
    ApiConsumer,
    AppTable,
    Autoscaling,
    ChartVersions,
    Gsi,
    Microservice,
    NodeGroup,
)

PROJECT = "ratelimited-platform"
MOCKED_RUN_ENV = "RATELIMITED_MOCKED_RUN"  # set by tools.mocked_run: the program runs under mocks

# Regions where EKS, ALB, WAF, API Gateway and DynamoDB autoscaling are all available; a typo in a
# region name should fail here, not halfway through a deployment.
_REGION_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# Regions of the aws-us-gov and aws-cn partitions.
_OTHER_PARTITION_RE = re.compile(r"^(us-gov-|cn-)")
_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
_DOMAIN_RE = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_K8S_VERSION_RE = re.compile(r"^1\.(2[89]|3\d)$")
_PATH_PREFIX_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_QUANTITY_CPU_RE = re.compile(r"^\d+m$|^\d+(\.\d+)?$")
_QUANTITY_MEM_RE = re.compile(r"^\d+(Ki|Mi|Gi)$")


class ConfigError(ValueError):
    """A stack config value is missing or invalid; the message names the key."""


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    regions: tuple[str, ...]
    domain: str
    hosted_zone_id: str
    kubernetes_version: str
    vpc_cidr: str
    nat_gateways: str
    cluster_public_access_cidrs: tuple[str, ...]
    cluster_endpoint_private_only: bool
    cluster_admin_role_arns: tuple[str, ...]
    node_groups: tuple[NodeGroup, ...]
    charts: ChartVersions
    cloudfront_enabled: bool
    cloudfront_price_class: str
    api_gateway_enabled: bool
    api_gateway_account_logging_role: bool
    api_throttle_rate_limit: int
    api_throttle_burst_limit: int
    api_consumers: tuple[ApiConsumer, ...]
    waf_rate_limit: int
    deletion_protection: bool
    dynamodb_billing_mode: str
    counters_billing_mode: str
    autoscaling: Autoscaling
    app_tables: tuple[AppTable, ...]
    limiter_min_replicas: int
    limiter_max_replicas: int
    ext_authz_fail_open: bool
    ext_authz_timeout_ms: int
    microservices: tuple[Microservice, ...]
    rate_limit_rules: tuple[Mapping[str, Any], ...]
    tags: Mapping[str, str] = field(default_factory=dict)
    observability_enabled: bool = True
    alarm_emails: tuple[str, ...] = ()
    alarm_topic_arns: Mapping[str, str] = field(default_factory=dict)
    alarm_thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)
    runbook_url: str = DEFAULT_RUNBOOK_URL

    def tags_for(self, region: str | None = None) -> dict[str, str]:
        """The tags every AWS resource of this stack carries."""
        tags = {"Project": self.project, "Stack": self.stack, **self.tags}
        if region:
            tags["Region"] = region
        return tags


# --- reading ---------------------------------------------------------------------------------

CONFIG_KEYS = (
    "regions", "domain", "hostedZoneId", "kubernetesVersion", "vpcCidr", "natGateways",
    "clusterPublicAccessCidrs", "clusterAdminRoleArns", "nodeAutoscalerChartVersion",
    "loadBalancerControllerChartVersion", "metricsServerChartVersion", "istioChartVersion",
    "cloudfrontEnabled", "cloudfrontPriceClass", "apiGatewayEnabled", "apiGatewayAccountLoggingRole",
    "apiThrottleRateLimit", "apiThrottleBurstLimit", "wafRateLimit", "deletionProtection", "dynamodbBillingMode",
    "dynamodbMinCapacity", "dynamodbMaxCapacity", "dynamodbTargetUtilization", "limiterMinReplicas",
    "limiterMaxReplicas", "extAuthzFailOpen", "extAuthzTimeoutMs", "nodeGroups", "microservices",
    "rateLimitRules", "appTables", "apiConsumers", "tags", "clusterEndpointPrivateOnly", "countersBillingMode",
    "observabilityEnabled", "alarmEmails", "alarmTopicArns", "alarmThresholds", "runbookUrl",
)  # fmt: skip

# RFC 5737 documentation ranges: the sample stacks use one as a placeholder for the deployer's CIDR.
DOCUMENTATION_RANGES = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


# Keys whose values are plain strings; every other key arrives from the engine as JSON text.
_STRING_KEYS = frozenset(
    {
        "domain",
        "hostedZoneId",
        "kubernetesVersion",
        "vpcCidr",
        "natGateways",
        "nodeAutoscalerChartVersion",
        "loadBalancerControllerChartVersion",
        "metricsServerChartVersion",
        "istioChartVersion",
        "cloudfrontPriceClass",
        "dynamodbBillingMode",
        "countersBillingMode",
        "runbookUrl",
    }
)


def load() -> StackConfig:
    """Read every key the stack sets, refuse keys Pulumi.yaml does not declare, and validate."""
    project = pulumi.get_project()
    declarations = declared()
    given = sorted(
        key.split(":", 1)[1]
        for key in {*pulumi.runtime.config.CONFIG.get(), *pulumi.runtime.config.get_config_env()}
        if key.startswith(f"{project}:")
    )
    for key in given:
        if key not in declarations:
            raise ConfigError(f"Unknown config key '{project}:{key}'{did_you_mean(key, declarations)}; {_DECLARED}")
    config = pulumi.Config()
    raw: dict[str, Any] = {}
    for key in declarations:
        text = config.get(key)
        if text is None:
            continue
        if key in _STRING_KEYS or (declarations[key] or {}).get("type") == "string":
            raw[key] = text
            continue
        try:
            raw[key] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"Config key '{key}' must be {expected_type(key, declarations)}, not {text!r}.") from exc
    cfg = parse(raw, stack=pulumi.get_stack(), project=project)
    # A real `pulumi up`, not a preview and not the offline runs under mocks (tools.mocked_run), which stand
    # in for an update to show what it would create.
    if not pulumi.runtime.is_dry_run() and os.environ.get(MOCKED_RUN_ENV) != "1":
        check_deployable(cfg)
    return cfg


def check_deployable(cfg: StackConfig) -> None:
    """What only `pulumi up` must refuse: a placeholder the sample stacks ship so that they preview.

    The EKS API endpoint of a documentation range is unreachable from anywhere, so every Helm release
    would time out after the cluster, VPC and node groups were created. Refuse before anything is.
    """
    placeholders = [c for c in cfg.cluster_public_access_cidrs if _is_documentation_range(c)]
    if placeholders:
        raise ConfigError(
            f"Config key 'clusterPublicAccessCidrs' still holds the placeholder {', '.join(placeholders)} "
            "(a documentation range). Set the CIDR of the machine that runs `pulumi up`, e.g. "
            "`pulumi config set --path 'clusterPublicAccessCidrs[0]' $(curl -s https://checkip.amazonaws.com)/32`."
        )


def _is_documentation_range(cidr: str) -> bool:
    net = ipaddress.ip_network(cidr)  # parsed strictly already (_check_cidr): no host bits
    return any(net.version == doc.version and net.subnet_of(doc) for doc in DOCUMENTATION_RANGES)


_DECLARED = "every key is declared in Pulumi.yaml."
# Keys whose values are objects or lists of objects: Pulumi.yaml cannot give them a schema type.
_STRUCTURED_KEYS = frozenset(
    {"nodeGroups", "microservices", "rateLimitRules", "appTables", "apiConsumers", "tags", "alarmTopicArns",
     "alarmThresholds"}
)  # fmt: skip


def declared() -> dict[str, Any]:
    """The config keys Pulumi.yaml declares, with their declarations, read when the program runs."""
    import yaml

    path = Path(__file__).resolve().parent / "Pulumi.yaml"
    return dict((yaml.safe_load(path.read_text()) or {}).get("config") or {})


def did_you_mean(key: str, choices: Any) -> str:
    """A " (did you mean ...?)" hint naming the closest choice, or "" when none is close."""
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {str(c).lower(): c for c in choices}
        close = [lowered[key.lower()]] if key.lower() in lowered else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def expected_type(key: str, declarations: Mapping[str, Any] | None = None) -> str:
    """The type a key takes, in words, from its declaration in Pulumi.yaml."""
    declaration = (declarations if declarations is not None else declared()).get(key) or {}
    kind = declaration.get("type")
    if kind == "array":
        item = (declaration.get("items") or {}).get("type", "value")
        example = ' e.g. ["eu-west-1"]' if item == "string" else ""
        return f"an array of {item}s (JSON{example})"
    if kind in ("integer", "boolean", "string"):
        return {"integer": "an integer", "boolean": "a boolean (true or false)", "string": "a string"}[kind]
    default = declaration.get("default")
    if isinstance(default, list):
        return "a list (YAML in the stack file, or JSON)"
    if isinstance(default, dict):
        return "an object (YAML in the stack file, or JSON)"
    return "JSON"


def parse(raw: Mapping[str, Any], *, stack: str, project: str = PROJECT) -> StackConfig:
    """Validate the merged config (Pulumi.yaml defaults + stack values) into a StackConfig."""
    unknown = sorted(set(raw) - set(CONFIG_KEYS))
    if unknown:
        hint = did_you_mean(unknown[0], CONFIG_KEYS) if len(unknown) == 1 else ""
        raise ConfigError(f"Unknown config key(s) {', '.join(map(repr, unknown))}{hint}; {_DECLARED}")
    _check_kubernetes_version(raw.get("kubernetesVersion"))
    r = _Reader(raw)
    regions = r.str_list("regions", min_items=1, pattern=_REGION_RE, what="an AWS region like eu-west-1")
    if len(set(regions)) != len(regions):
        raise ConfigError("Config key 'regions' lists a region twice.")
    for region in regions:
        if _OTHER_PARTITION_RE.match(region):
            raise ConfigError(
                f"Config key 'regions' has {region!r}, a region of another AWS partition (GovCloud or China). "
                "This program supports the commercial partition (aws) only: its ARNs, CloudFront's us-east-1 "
                "certificate and web ACL, and the managed prefix lists are those of the aws partition."
            )
    public_cidrs = r.str_list("clusterPublicAccessCidrs")
    for cidr in public_cidrs:
        _check_cidr("clusterPublicAccessCidrs", cidr)
        if ipaddress.ip_network(cidr).prefixlen == 0:
            raise ConfigError(
                "Config key 'clusterPublicAccessCidrs' must not contain 0.0.0.0/0: it would expose the EKS "
                "API to the whole internet. List your office or VPN ranges, or leave it empty."
            )
    private_only = r.bool("clusterEndpointPrivateOnly")
    if private_only and public_cidrs:
        raise ConfigError(
            "Config keys 'clusterEndpointPrivateOnly' and 'clusterPublicAccessCidrs' contradict each other: "
            "a private-only endpoint has no public CIDRs. Set one of them."
        )
    if not private_only and not public_cidrs:
        raise ConfigError(
            "Config key 'clusterPublicAccessCidrs' is empty, so the EKS API endpoint would be private only, but "
            "`pulumi up` applies every Helm release and Kubernetes object from the machine it runs on, which is "
            "outside the VPC this stack creates: the first release would time out. List that machine's CIDR "
            "(never 0.0.0.0/0), or set 'clusterEndpointPrivateOnly' to true if `pulumi up` runs inside the VPC "
            "(e.g. a runner reaching it over a VPN or peering)."
        )
    admin_arns = r.str_list("clusterAdminRoleArns")
    for arn in admin_arns:
        if not re.match(r"^arn:aws:iam::\d{12}:role/.+$", arn):
            raise ConfigError(
                f"Config key 'clusterAdminRoleArns' has {arn!r}, which is not an IAM role ARN of the aws partition "
                "(arn:aws:iam::<account>:role/<name>)."
            )
    vpc_cidr = r.str("vpcCidr")
    _check_cidr("vpcCidr", vpc_cidr)
    if not 16 <= ipaddress.ip_network(vpc_cidr).prefixlen <= 20:
        raise ConfigError("Config key 'vpcCidr' must be a /16 to /20 network, to leave room for six subnets.")

    autoscaling = Autoscaling(
        min_capacity=r.int("dynamodbMinCapacity", minimum=1, maximum=40000),
        max_capacity=r.int("dynamodbMaxCapacity", minimum=1, maximum=40000),
        target_utilization=r.int("dynamodbTargetUtilization", minimum=20, maximum=90),
    )
    if autoscaling.min_capacity > autoscaling.max_capacity:
        raise ConfigError("Config key 'dynamodbMinCapacity' must not exceed 'dynamodbMaxCapacity'.")
    billing_mode = r.choice("dynamodbBillingMode", ("PROVISIONED", "PAY_PER_REQUEST"))

    limiter_min = r.int("limiterMinReplicas", minimum=2, maximum=500)
    limiter_max = r.int("limiterMaxReplicas", minimum=2, maximum=500)
    if limiter_min > limiter_max:
        raise ConfigError("Config key 'limiterMinReplicas' must not exceed 'limiterMaxReplicas'.")

    domain = r.str("domain", pattern=_DOMAIN_RE, what="a lower-case DNS name like example.com")
    api_gateway_enabled = r.bool("apiGatewayEnabled")
    app_tables = tuple(_app_tables(r.list_of_objects("appTables"), billing_mode))
    rules = tuple(
        _rate_limit_rules(
            r.list_of_objects("rateLimitRules", min_items=1), domain=domain, api_gateway_enabled=api_gateway_enabled
        )
    )
    config = StackConfig(
        project=project,
        stack=stack,
        regions=tuple(regions),
        domain=domain,
        hosted_zone_id=r.str(
            "hostedZoneId",
            allow_empty=True,
            pattern=re.compile(r"^(Z[A-Z0-9]{1,31})?$"),
            what="a Route 53 zone id like Z0123456789ABC, or empty",
        ),
        kubernetes_version=r.str("kubernetesVersion", pattern=_K8S_VERSION_RE, what="1.28 to 1.39"),
        vpc_cidr=vpc_cidr,
        nat_gateways=r.choice("natGateways", ("perZone", "single")),
        cluster_public_access_cidrs=tuple(public_cidrs),
        cluster_endpoint_private_only=private_only,
        cluster_admin_role_arns=tuple(admin_arns),
        node_groups=tuple(_node_groups(r.list_of_objects("nodeGroups", min_items=1))),
        charts=ChartVersions(
            istio=r.str("istioChartVersion", pattern=_SEMVER_RE, what="a chart version like 1.28.1"),
            load_balancer_controller=r.str(
                "loadBalancerControllerChartVersion", pattern=_SEMVER_RE, what="a chart version like 1.14.1"
            ),
            cluster_autoscaler=r.str(
                "nodeAutoscalerChartVersion", pattern=_SEMVER_RE, what="a chart version like 9.52.1"
            ),
            metrics_server=r.str("metricsServerChartVersion", pattern=_SEMVER_RE, what="a chart version like 3.13.0"),
        ),
        cloudfront_enabled=r.bool("cloudfrontEnabled"),
        cloudfront_price_class=r.choice("cloudfrontPriceClass", ("PriceClass_100", "PriceClass_200", "PriceClass_All")),
        api_gateway_enabled=api_gateway_enabled,
        api_gateway_account_logging_role=r.bool("apiGatewayAccountLoggingRole"),
        api_throttle_rate_limit=r.int("apiThrottleRateLimit", minimum=1, maximum=1_000_000),
        api_throttle_burst_limit=r.int("apiThrottleBurstLimit", minimum=1, maximum=1_000_000),
        api_consumers=tuple(_api_consumers(r.list_of_objects("apiConsumers"))),
        waf_rate_limit=r.int("wafRateLimit", minimum=10, maximum=2_000_000_000),
        deletion_protection=r.bool("deletionProtection"),
        dynamodb_billing_mode=billing_mode,
        counters_billing_mode=r.choice("countersBillingMode", ("PAY_PER_REQUEST", "PROVISIONED")),
        autoscaling=autoscaling,
        app_tables=app_tables,
        limiter_min_replicas=limiter_min,
        limiter_max_replicas=limiter_max,
        ext_authz_fail_open=r.bool("extAuthzFailOpen"),
        ext_authz_timeout_ms=r.int("extAuthzTimeoutMs", minimum=10, maximum=5000),
        microservices=tuple(_microservices(r.list_of_objects("microservices"), app_tables)),
        rate_limit_rules=rules,
        tags=_tags(r.get("tags")),
        observability_enabled=r.bool("observabilityEnabled"),
        alarm_emails=tuple(
            r.str_list("alarmEmails", pattern=re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), what="an e-mail address")
        ),
        alarm_topic_arns=_alarm_topic_arns(r, regions),
        alarm_thresholds=_alarm_thresholds(r.get("alarmThresholds")),
        runbook_url=r.str("runbookUrl"),
    )
    _check_limits_cohere(config)
    return config


def _check_kubernetes_version(value: Any) -> None:
    """1.30 unquoted in YAML is the number 1.3: say exactly that instead of "expected 1.28 to 1.39"."""
    text = repr(value) if isinstance(value, float) else value
    if isinstance(text, str) and re.fullmatch(r"1\.[0-9]", text) and _K8S_VERSION_RE.match(text + "0"):
        raise ConfigError(
            f"Config key 'kubernetesVersion' has {text!r}, which is what YAML makes of an unquoted "
            f'{text}0 (a number); quote it in the stack file: kubernetesVersion: "{text}0".'
        )


_SEMVER_RE = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


class _Reader:
    """Typed access to the raw mapping; every error names the key."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw

    def get(self, key: str) -> Any:
        if key not in self._raw:
            raise ConfigError(f"Config key '{key}' is missing; it is declared with a default in Pulumi.yaml.")
        return self._raw[key]

    def str(
        self, key: str, *, allow_empty: bool = False, pattern: re.Pattern[str] | None = None, what: str = ""
    ) -> str:
        value = self.get(key)
        if not isinstance(value, str):
            raise ConfigError(f"Config key '{key}' must be a string, not {_typename(value)}.")
        if not value and not allow_empty:
            raise ConfigError(f"Config key '{key}' must not be empty.")
        if pattern is not None and not pattern.match(value):
            raise ConfigError(f"Config key '{key}' has {value!r}; expected {what or pattern.pattern}.")
        return value

    def choice(self, key: str, allowed: Sequence[str]) -> str:
        value = self.str(key)
        if value not in allowed:
            raise ConfigError(f"Config key '{key}' has {value!r}; allowed: {', '.join(allowed)}.")
        return value

    def bool(self, key: str) -> bool:
        value = self.get(key)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"Config key '{key}' must be true or false, not {value!r}.")

    def int(self, key: str, *, minimum: int, maximum: int) -> int:
        return _int(self.get(key), f"Config key '{key}'", minimum, maximum)

    def str_list(
        self, key: str, *, min_items: int = 0, pattern: re.Pattern[str] | None = None, what: str = ""
    ) -> list[str]:
        value = self.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"Config key '{key}' must be a list of strings.")
        if len(value) < min_items:
            raise ConfigError(f"Config key '{key}' must list at least {min_items} item(s).")
        for v in value:
            if pattern is not None and not pattern.match(v):
                raise ConfigError(f"Config key '{key}' has {v!r}; expected {what or pattern.pattern}.")
        return value

    def list_of_objects(self, key: str, *, min_items: int = 0) -> list[_Item]:
        value = self.get(key)
        if not isinstance(value, list):
            raise ConfigError(f"Config key '{key}' must be a list, not {_typename(value)}.")
        if len(value) < min_items:
            raise ConfigError(f"Config key '{key}' must list at least {min_items} item(s).")
        items = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ConfigError(f"Config key '{key}' item {i} must be an object, not {_typename(item)}.")
            items.append(_Item(key, i, item))
        names = [item.name_hint for item in items if item.name_hint]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"Config key '{key}' has duplicate name(s): {', '.join(dupes)}.")
        return items


class _Item:
    """One object inside a list-valued key; errors name key, item and field."""

    def __init__(self, key: str, index: int, data: dict[str, Any]) -> None:
        self.key, self.index, self.data = key, index, data
        name = data.get("name")
        self.name_hint = name if isinstance(name, str) else None
        self.where = f"Config key '{key}' item {index}" + (f" ('{name}')" if self.name_hint else "")

    def check_fields(self, allowed: Sequence[str]) -> None:
        extra = sorted(set(self.data) - set(allowed))
        if extra:
            raise ConfigError(f"{self.where} has unknown field(s) {', '.join(extra)}; allowed: {', '.join(allowed)}.")

    def str(self, name: str, default: Any = ..., *, pattern: re.Pattern[str] | None = None, what: str = "") -> Any:
        value = self.data.get(name, default)
        if value is ...:
            raise ConfigError(f"{self.where} is missing field '{name}'.")
        if value is None and default is None:
            return None
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.where} field '{name}' must be a non-empty string.")
        if pattern is not None and not pattern.match(value):
            raise ConfigError(f"{self.where} field '{name}' has {value!r}; expected {what or pattern.pattern}.")
        return value

    def int(self, name: str, default: Any = ..., *, minimum: int, maximum: int) -> int:
        value = self.data.get(name, default)
        if value is ...:
            raise ConfigError(f"{self.where} is missing field '{name}'.")
        return _int(value, f"{self.where} field '{name}'", minimum, maximum)

    def str_list(self, name: str, default: Any = ()) -> list[str] | None:
        value = self.data.get(name, default)
        if value is None and default is None:
            return None
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{self.where} field '{name}' must be a list of non-empty strings.")
        return list(value)

    def str_map(self, name: str) -> tuple[tuple[str, str], ...]:
        value = self.data.get(name, {})
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ConfigError(f"{self.where} field '{name}' must be an object of string values.")
        return tuple(value.items())

    def choice(self, name: str, allowed: Sequence[str], default: Any = ...) -> str:
        value = self.str(name, default)
        if value not in allowed:
            raise ConfigError(f"{self.where} field '{name}' has {value!r}; allowed: {', '.join(allowed)}.")
        return value


def _int(value: Any, where: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{where} must be a whole number, not {value!r}.")
    try:
        number = int(value) if not isinstance(value, float) or value.is_integer() else None
    except ValueError:
        number = None
    if number is None:
        raise ConfigError(f"{where} must be a whole number, not {value!r}.")
    if not minimum <= number <= maximum:
        raise ConfigError(f"{where} must be between {minimum} and {maximum}, not {number}.")
    return number


def _typename(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _check_cidr(key: str, cidr: str) -> None:
    try:
        ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise ConfigError(f"Config key '{key}' has {cidr!r}, which is not a CIDR block: {exc}.") from exc


def _node_groups(items: list[_Item]) -> list[NodeGroup]:
    groups = []
    for item in items:
        item.check_fields(("name", "instanceTypes", "minSize", "desiredSize", "maxSize", "capacityType", "diskSizeGiB"))
        types = item.data.get("instanceTypes")
        if (
            not isinstance(types, list)
            or not types
            or not all(isinstance(t, str) and re.match(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", t) for t in types)
        ):
            raise ConfigError(f"{item.where} field 'instanceTypes' must be a non-empty list like [\"m7i.large\"].")
        group = NodeGroup(
            name=item.str("name", pattern=_NAME_RE, what="lower-case letters, digits and '-'"),
            instance_types=tuple(types),
            min_size=item.int("minSize", minimum=0, maximum=450),
            desired_size=item.int("desiredSize", minimum=0, maximum=450),
            max_size=item.int("maxSize", minimum=1, maximum=450),
            capacity_type=item.choice("capacityType", ("ON_DEMAND", "SPOT"), "ON_DEMAND"),
            disk_size_gib=item.int("diskSizeGiB", 50, minimum=20, maximum=16384),
        )
        if not group.min_size <= group.desired_size <= group.max_size:
            raise ConfigError(f"{item.where} must have minSize <= desiredSize <= maxSize.")
        groups.append(group)
    return groups


MICROSERVICE_FIELDS = (
    "name", "image", "port", "pathPrefix", "minReplicas", "maxReplicas", "cpu", "memory", "targetCpuUtilization",
    "env", "tables", "secrets", "readinessPath", "livenessPath", "command", "args", "tmpSize",
)  # fmt: skip


def _default(spec: type, field_name: str) -> Any:
    """The spec's own default: a field left out of the config means what the component means by it."""
    return next(f.default for f in dataclasses.fields(spec) if f.name == field_name)


def _microservices(items: list[_Item], app_tables: Sequence[AppTable]) -> list[Microservice]:
    services = []
    prefixes: dict[str, str] = {}
    tables = {t.name: t for t in app_tables}
    for item in items:
        item.check_fields(MICROSERVICE_FIELDS)
        name = item.str("name", pattern=_NAME_RE, what="a DNS label: lower-case letters, digits and '-'")
        if len(name) > MAX_SERVICE_NAME:
            raise ConfigError(
                f"{item.where} field 'name' must have at most {MAX_SERVICE_NAME} characters (its IAM role name "
                "must fit in 64 with the longest region name)."
            )
        service = Microservice(
            name=name,
            image=item.str("image", pattern=re.compile(r"^\S+$"), what="an image reference without spaces"),
            port=item.int("port", minimum=1, maximum=65535),
            path_prefix=item.str("pathPrefix", pattern=_PATH_PREFIX_RE, what="a path starting with '/'"),
            min_replicas=item.int("minReplicas", _default(Microservice, "min_replicas"), minimum=1, maximum=500),
            max_replicas=item.int("maxReplicas", _default(Microservice, "max_replicas"), minimum=1, maximum=500),
            cpu=item.str(
                "cpu", _default(Microservice, "cpu"), pattern=_QUANTITY_CPU_RE, what="a CPU quantity like 250m"
            ),
            memory=item.str(
                "memory",
                _default(Microservice, "memory"),
                pattern=_QUANTITY_MEM_RE,
                what="a memory quantity like 256Mi",
            ),
            target_cpu_utilization=item.int(
                "targetCpuUtilization", _default(Microservice, "target_cpu_utilization"), minimum=10, maximum=95
            ),
            env=item.str_map("env"),
            tables=tuple(item.str_list("tables")),
            secrets=item.str_map("secrets"),
            readiness_path=item.str("readinessPath", None, pattern=_PATH_PREFIX_RE, what="a path starting with '/'"),
            liveness_path=item.str("livenessPath", None, pattern=_PATH_PREFIX_RE, what="a path starting with '/'"),
            command=_optional_tuple(item.str_list("command", None)),
            args=_optional_tuple(item.str_list("args", None)),
            tmp_size=item.str(
                "tmpSize", _default(Microservice, "tmp_size"), pattern=_QUANTITY_MEM_RE, what="a size like 256Mi"
            ),
        )
        if service.name == "limiter":
            raise ConfigError(f"{item.where} field 'name': 'limiter' is reserved for the rate limiter.")
        if service.min_replicas > service.max_replicas:
            raise ConfigError(f"{item.where} must have minReplicas <= maxReplicas.")
        unknown = [t for t in service.tables if t not in tables]
        if unknown:
            raise ConfigError(
                f"{item.where} field 'tables' names {', '.join(unknown)}, which 'appTables' does not declare; "
                f"declared: {', '.join(sorted(tables)) or 'none'}."
            )
        if service.path_prefix.split("/")[1] == API_STAGE_NAME:
            raise ConfigError(
                f"{item.where} field 'pathPrefix' {service.path_prefix!r}: '/{API_STAGE_NAME}' is the API Gateway "
                "stage segment, which the API ingress gateway strips; choose another prefix."
            )
        if path_clashes_with(service.path_prefix, HEALTH_PATH):
            raise ConfigError(
                f"{item.where} field 'pathPrefix' {service.path_prefix!r} clashes with the edge's health path "
                f"{HEALTH_PATH!r}: the web gateway answers it itself, unlimited and without the origin header."
            )
        base = service.path_prefix.rstrip("/") or "/"
        if base in prefixes:
            raise ConfigError(
                f"{item.where} field 'pathPrefix' {service.path_prefix!r} is already routed to '{prefixes[base]}'."
            )
        prefixes[base] = service.name
        try:
            validate_microservice(service, where=item.where, tables=tables)
        except ValueError as exc:
            raise ConfigError(str(exc).replace(f"{item.where} '{service.name}'", item.where)) from exc
        services.append(service)
    return services


def _optional_tuple(value: list[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


_ATTRIBUTE_TYPES = ("S", "N", "B")
_PROJECTIONS = ("ALL", "KEYS_ONLY")


def _app_tables(items: list[_Item], default_billing: str) -> list[AppTable]:
    tables = []
    for item in items:
        item.check_fields(("name", "hashKey", "rangeKey", "attributes", "gsis", "billingMode", "ttlAttribute"))
        attrs_raw = item.data.get("attributes")
        if not isinstance(attrs_raw, list) or not attrs_raw:
            raise ConfigError(f"{item.where} field 'attributes' must list the key attributes as [{{name, type}}].")
        attributes: dict[str, str] = {}
        for a in attrs_raw:
            if not isinstance(a, dict) or not isinstance(a.get("name"), str) or a.get("type") not in _ATTRIBUTE_TYPES:
                raise ConfigError(
                    f"{item.where} field 'attributes' has {a!r}; each must be {{name, type}} with type S, N or B."
                )
            attributes[a["name"]] = a["type"]
        hash_key = item.str("hashKey")
        range_key = item.str("rangeKey", None)
        gsis = []
        for g in item.data.get("gsis", []) or []:
            if not isinstance(g, dict) or not isinstance(g.get("name"), str) or not isinstance(g.get("hashKey"), str):
                raise ConfigError(f"{item.where} field 'gsis' has {g!r}; each must have name and hashKey.")
            projection = g.get("projectionType", "ALL")
            if projection not in _PROJECTIONS:
                raise ConfigError(
                    f"{item.where} GSI '{g['name']}' field 'projectionType' has {projection!r}; "
                    f"allowed: {', '.join(_PROJECTIONS)}."
                )
            gsis.append(Gsi(g["name"], g["hashKey"], g.get("rangeKey"), projection))
        if len({g.name for g in gsis}) != len(gsis):
            raise ConfigError(f"{item.where} field 'gsis' names a GSI twice.")
        used = {hash_key, range_key} | {g.hash_key for g in gsis} | {g.range_key for g in gsis}
        used.discard(None)
        missing = sorted(k for k in used if k not in attributes)
        if missing:
            raise ConfigError(f"{item.where} uses key attribute(s) {', '.join(missing)} not listed in 'attributes'.")
        unused = sorted(set(attributes) - used)
        if unused:
            # DynamoDB refuses attribute definitions that no key or index uses.
            raise ConfigError(f"{item.where} field 'attributes' lists {', '.join(unused)}, which no key or GSI uses.")
        tables.append(
            AppTable(
                name=item.str("name", pattern=_NAME_RE, what="lower-case letters, digits and '-'"),
                hash_key=hash_key,
                range_key=range_key,
                attributes=tuple(attributes.items()),
                gsis=tuple(gsis),
                billing_mode=item.choice("billingMode", ("PROVISIONED", "PAY_PER_REQUEST"), default_billing),
                ttl_attribute=item.str("ttlAttribute", None),
            )
        )
    return tables


def _api_consumers(items: list[_Item]) -> list[ApiConsumer]:
    consumers = []
    for item in items:
        item.check_fields(("name", "rateLimit", "burstLimit", "quotaPerDay"))
        consumers.append(
            ApiConsumer(
                name=item.str("name", pattern=_NAME_RE, what="lower-case letters, digits and '-'"),
                rate_limit=item.int("rateLimit", minimum=1, maximum=1_000_000),
                burst_limit=item.int("burstLimit", minimum=1, maximum=1_000_000),
                quota_per_day=item.int("quotaPerDay", minimum=1, maximum=2_000_000_000),
            )
        )
    return consumers


# What a rule's `match.entry` selects: the Host headers each entry's ingress gateway sees. API Gateway calls
# the mesh with Host api.<domain> (components/api_gateway.py); the ALB serves <domain> and www.<domain>
# (without CloudFront) and origin.<domain> (CloudFront's origin, also without it).
ENTRIES = ("api", "web")


def served_hosts(domain: str, *, api_gateway_enabled: bool) -> dict[str, tuple[str, ...]]:
    """The hosts each entry of the stack serves, by entry."""
    hosts = {"web": (domain, f"www.{domain}", f"origin.{domain}")}
    if api_gateway_enabled:
        hosts["api"] = (f"api.{domain}",)
    return hosts


def _rate_limit_rules(items: list[_Item], *, domain: str, api_gateway_enabled: bool) -> list[Mapping[str, Any]]:
    """Render each rule's hosts from the domain, refuse hosts this stack does not serve, then check the rules
    with the limiter's own parser, so a bad rule fails at preview, not at pod start.

    A rule selects hosts by `match.entry` (api or web), or by `match.hosts` where `{domain}` stands for the
    stack's domain; a literal host must still be one this stack serves, so changing `domain` can never leave
    a limit matching nothing.
    """
    from limiter_service.rules import RuleError, parse_rules

    served = served_hosts(domain, api_gateway_enabled=api_gateway_enabled)
    all_served = [h for hosts in served.values() for h in hosts]
    rules = []
    for item in items:
        rule = dict(item.data)
        match = rule.get("match")
        if isinstance(match, Mapping) and ("entry" in match or "hosts" in match):
            match = dict(match)
            if "entry" in match and "hosts" in match:
                raise ConfigError(f"{item.where} field 'match' may have 'entry' or 'hosts', not both.")
            if "entry" in match:
                entry = match.pop("entry")
                if entry not in ENTRIES:
                    raise ConfigError(f"{item.where} field 'match.entry' has {entry!r}; allowed: {', '.join(ENTRIES)}.")
                if entry not in served:
                    raise ConfigError(
                        f"{item.where} field 'match.entry' is 'api', but 'apiGatewayEnabled' is false: the rule "
                        "would match nothing."
                    )
                match["hosts"] = list(served[entry])
            else:
                hosts = match["hosts"]
                if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
                    raise ConfigError(f"{item.where} field 'match.hosts' must be a list of host names.")
                rendered = [h.replace("{domain}", domain).lower() for h in hosts]
                for host in rendered:
                    if not any(_serves(host, h) for h in all_served):
                        raise ConfigError(
                            f"{item.where} field 'match.hosts' has {host!r}, which this stack does not serve "
                            f"(it serves {', '.join(all_served)}); select an entry with 'match.entry: api|web' "
                            "or write hosts with '{domain}'."
                        )
                match["hosts"] = rendered
            rule["match"] = match
        rules.append(rule)
    try:
        parse_rules({"rules": rules})
    except RuleError as exc:
        raise ConfigError(f"Config key 'rateLimitRules': {exc}") from exc
    return rules


def _serves(pattern: str, host: str) -> bool:
    """Whether a rule's host pattern matches `host`, as the limiter matches it (names, or *.suffix)."""
    from limiter_service.rules import Match

    return Match(hosts=(pattern.lower(),)).matches("GET", "/", host)


def _applies_to(rule: Mapping[str, Any], host: str) -> bool:
    hosts = (rule.get("match") or {}).get("hosts")
    return not hosts or any(_serves(h, host) for h in hosts)


# The window of WAF's rate-based rules.
WAF_WINDOW_SECONDS = 300


def per_five_minutes(limit: int, window_seconds: int) -> int:
    """What a rule admits per key in 5 minutes: its limit scaled to 300 s (all of it if its window is longer)."""
    if window_seconds >= WAF_WINDOW_SECONDS:
        return limit
    return math.ceil(limit * WAF_WINDOW_SECONDS / window_seconds)


def _check_limits_cohere(cfg: StackConfig) -> None:
    """The layers of limits must nest: WAF's per-IP backstop above what the limiter admits per IP and what a
    consumer's plan allows; the limiter's per-key rules at or above every consumer's usage-plan rate.

    - WAF's rate-based rule (per client IP, per 5 minutes) is the coarse backstop under the limiter: were it
      below a per-IP rule scaled to 5 minutes, WAF would block clients the limiter admits (and for the rest
      of WAF's window, with a 403 instead of the limiter's 429). The regional web ACL also covers the API
      stage, so a consumer calling at its plan's rate from one address must stay under it too.
    - A consumer's usage plan is what it was sold: `rateLimit` requests per second, enforced by API Gateway
      (best effort). A limiter rule keyed on the API key is the hard cap behind it and must not cut a
      consumer below its plan: its limit per window is at least the fastest plan's rate over that window.
    """
    for rule in cfg.rate_limit_rules:
        key = list(rule.get("key") or [])
        name = rule.get("name")
        limit, window = int(rule["limit"]), int(rule["window_seconds"])
        if key == ["client_ip"] and cfg.api_gateway_enabled and _applies_to(rule, f"api.{cfg.domain}"):
            for consumer in cfg.api_consumers:
                if limit < consumer.rate_limit * window:
                    raise ConfigError(
                        f"Config key 'rateLimitRules' rule '{name}' ({limit} per {window} s per client IP) applies "
                        f"to the API entry and is below consumer '{consumer.name}''s usage plan "
                        f"({consumer.rate_limit} requests/s): select the web entry ('match.entry: web') or raise it."
                    )
        if key == ["client_ip"]:
            scaled = per_five_minutes(limit, window)
            if cfg.waf_rate_limit < scaled:
                raise ConfigError(
                    f"Config key 'wafRateLimit' ({cfg.waf_rate_limit} per 5 minutes) is below rate-limit rule "
                    f"'{name}' ({limit} per {window} s per client IP = {scaled} per 5 minutes): WAF would block "
                    f"clients the limiter admits. Set 'wafRateLimit' to at least {scaled}."
                )
        if cfg.api_gateway_enabled and f"header:{API_KEY_HEADER}" in [str(k).lower() for k in key]:
            for consumer in cfg.api_consumers:
                needed = consumer.rate_limit * window
                if limit < needed:
                    raise ConfigError(
                        f"Config key 'rateLimitRules' rule '{name}' ({limit} per {window} s per API key) is below "
                        f"consumer '{consumer.name}''s usage plan in 'apiConsumers' ({consumer.rate_limit} "
                        f"requests/s = {needed} per {window} s). Raise the rule's limit to at least {needed} or "
                        "lower the plan's rateLimit."
                    )
    if cfg.api_gateway_enabled:
        for consumer in cfg.api_consumers:
            needed = consumer.rate_limit * WAF_WINDOW_SECONDS
            if cfg.waf_rate_limit < needed:
                raise ConfigError(
                    f"Config key 'wafRateLimit' ({cfg.waf_rate_limit} per 5 minutes) is below consumer "
                    f"'{consumer.name}''s usage plan in 'apiConsumers' ({consumer.rate_limit} requests/s = "
                    f"{needed} per 5 minutes from one address): WAF would block it first. Set 'wafRateLimit' to "
                    f"at least {needed} or lower the plan's rateLimit."
                )


def _tags(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"Config key 'tags' must be an object of string values, not {_typename(value)}.")
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str) or not k or len(k) > 128 or len(v) > 256:
            raise ConfigError(f"Config key 'tags' has {k!r}: {v!r}; keys and values must be strings (128/256 max).")
        if k.lower().startswith("aws:"):
            raise ConfigError(f"Config key 'tags' has {k!r}; the 'aws:' prefix is reserved by AWS.")
    return dict(value)


def _alarm_topic_arns(r: _Reader, regions: Sequence[str]) -> dict[str, str]:
    """Existing SNS topics per region, instead of the stack's own; every alarm region needs one, or none is given."""
    value = r.get("alarmTopicArns")
    if not isinstance(value, dict):
        raise ConfigError(
            f"Config key 'alarmTopicArns' must be an object {{region: topic ARN}}, not {_typename(value)}."
        )
    if not value:
        return {}
    if r.get("alarmEmails"):
        raise ConfigError("Config keys 'alarmEmails' and 'alarmTopicArns' exclude each other: subscribe the emails to "
                          "your own topics, or leave 'alarmTopicArns' empty.")  # fmt: skip
    needed = tuple(dict.fromkeys((*regions, "us-east-1")))
    missing = [region for region in needed if region not in value]
    extra = sorted(set(value) - set(needed))
    if missing or extra:
        raise ConfigError(
            f"Config key 'alarmTopicArns' must name a topic for exactly the regions {', '.join(needed)} (the stack's "
            f"and us-east-1 for Route 53 health checks); missing: {', '.join(missing) or 'none'}, "
            f"extra: {', '.join(extra) or 'none'}."
        )
    for region, arn in value.items():
        match = re.match(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}$", str(arn))
        if not match or match.group(1) != region:
            raise ConfigError(
                f"Config key 'alarmTopicArns' has {region}: {arn!r}; expected an SNS topic ARN in {region} (alarms "
                "notify a topic in their own region)."
            )
    return dict(value)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _alarm_thresholds(value: Any) -> AlarmThresholds:
    """Overrides of AlarmThresholds' defaults, keyed by camelCase field name."""
    if not isinstance(value, dict):
        raise ConfigError(f"Config key 'alarmThresholds' must be an object, not {_typename(value)}.")
    defaults = AlarmThresholds()
    allowed = {_camel(f): f for f in AlarmThresholds.__dataclass_fields__}
    overrides: dict[str, Any] = {}
    for key, raw in value.items():
        if key not in allowed:
            raise ConfigError(
                f"Config key 'alarmThresholds' has unknown field {key!r}; allowed: {', '.join(sorted(allowed))}."
            )
        field_name = allowed[key]
        if isinstance(getattr(defaults, field_name), float):
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise ConfigError(f"Config key 'alarmThresholds' field '{key}' must be a number, not {raw!r}.")
            overrides[field_name] = float(raw)
        else:
            overrides[field_name] = _int(raw, f"Config key 'alarmThresholds' field '{key}'", 0, 1_000_000_000)
    thresholds = AlarmThresholds(**overrides)
    what = "Config key 'alarmThresholds'"
    try:
        validate_thresholds(what, thresholds)
    except ValueError as exc:
        # Name the fields as config spells them (camelCase), not as the dataclass does.
        message = str(exc)
        for camel, snake in allowed.items():
            message = message.replace(f"{what}.{snake}", f"{what} field '{camel}'").replace(snake, camel)
        raise ConfigError(message) from exc
    return thresholds
