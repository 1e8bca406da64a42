"""Synthetic recorded stacks for the policy tests, in the format of `tools.mocked_run.run_stack`.

`platform(preview=...)` builds a happy-path stack shaped like the program's (an Edge with an
internet-facing ALB, its WAF association, listeners and log bucket; Data with a provisioned table
with two GSIs and its six scalable targets and policies, plus an on-demand table; EKS, ECR, an API
Gateway stage, CloudFront and Route 53). In preview every computed output (arn, id, an unnamed
table's name) is the engine's unknown sentinel and the inputs built from it are unknown too, with
the property dependencies the SDK records; in update the same values are known. Tests change one
thing and run the real analyzer servicer through `tools.analyzer`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tools.analyzer import UNKNOWN, AnalysisResult, analyze_record

PROJECT = "ratelimited-platform"
REGION = "eu-west-1"


@dataclass(frozen=True)
class Ref:
    """An input derived from another resource's output (optionally through a format string)."""

    resource: dict[str, Any]
    output: str
    template: str = "{}"


class StackRecord:
    """A recorded stack under construction."""

    def __init__(self, preview: bool, stack: str = "test") -> None:
        self.preview = preview
        self.stack = stack
        self.resources: list[dict[str, Any]] = []
        self.root = self._register("pulumi:pulumi:Stack", f"{PROJECT}-{stack}", {}, {}, None, custom=False)

    # -- building -------------------------------------------------------------------------

    def urn(self, type_: str, name: str, parent: dict[str, Any] | None) -> str:
        chain = ""
        if parent is not None and parent["type"] != "pulumi:pulumi:Stack":
            qualified = parent["urn"].split("::")[2]
            chain = qualified + "$"
        return f"urn:pulumi:{self.stack}::{PROJECT}::{chain}{type_}::{name}"

    def _register(
        self,
        type_: str,
        name: str,
        inputs: dict[str, Any],
        computed: dict[str, Any],
        parent: dict[str, Any] | None,
        custom: bool = True,
        remote: bool = False,
        provider: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        property_dependencies: dict[str, list[str]] = {}
        resolved: dict[str, Any] = {}
        for key, value in inputs.items():
            resolved[key] = self._resolve(value, key, property_dependencies)
        urn = self.urn(type_, name, parent)
        outputs = dict(resolved)
        if custom:
            for key, value in computed.items():
                outputs[key] = UNKNOWN if self.preview else value
        resource = {
            "urn": urn,
            "type": type_,
            "name": name,
            "custom": custom,
            "remote": remote,
            "parent": parent["urn"] if parent else "",
            "provider": f"{provider['urn']}::{provider['id']}" if provider else "",
            "dependencies": sorted({u for urns in property_dependencies.values() for u in urns}),
            "property_dependencies": property_dependencies,
            "inputs": resolved,
            "outputs": outputs,
            "id": (UNKNOWN if self.preview else f"{name}-id") if custom else "",
        }
        self.resources.append(resource)
        return resource

    def _resolve(self, value: Any, key: str, deps: dict[str, list[str]]) -> Any:
        if isinstance(value, Ref):
            deps.setdefault(key, [])
            if value.resource["urn"] not in deps[key]:
                deps[key].append(value.resource["urn"])
            known = value.resource["outputs"].get(value.output)
            return UNKNOWN if known is None or known == UNKNOWN else value.template.format(known)
        if isinstance(value, dict):
            return {k: self._resolve(v, key, deps) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, key, deps) for v in value]
        return value

    def provider(self, name: str) -> dict[str, Any]:
        resource = self._register("pulumi:providers:aws", name, {"region": REGION}, {}, None)
        resource["id"] = UNKNOWN if self.preview else f"{name}-provider-id"
        return resource

    def component(self, type_: str, name: str, inputs: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        return self._register(type_, name, inputs or {}, {}, kw.pop("parent", self.root), custom=False, **kw)

    def add(
        self,
        type_: str,
        name: str,
        inputs: dict[str, Any] | None = None,
        parent: dict[str, Any] | None = None,
        computed: dict[str, Any] | None = None,
        provider: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        service = type_.split(":")[1].split("/")[0]
        defaults = {"arn": f"arn:aws:{service}:{REGION}:123456789012:{name}", "id": f"{name}-id"}
        defaults.update(computed or {})
        return self._register(type_, name, inputs or {}, defaults, parent or self.root, provider=provider)

    @staticmethod
    def ref(resource: dict[str, Any], output: str, template: str = "{}") -> Ref:
        """An input derived from `resource`'s `output` (recorded as a property dependency)."""
        return Ref(resource, output, template)

    def add_api_stage(self, stage_name: str) -> dict[str, Any]:
        """Another stage of the region's REST API, `<region>-api-stage-<stage_name>`, with no WAF or alarm."""
        rest_api = self.get(f"{REGION}-api-rest")
        return self.add(
            "aws:apigateway/stage:Stage",
            f"{REGION}-api-stage-{stage_name}",
            {"restApi": self.ref(rest_api, "id"), "stageName": stage_name},
        )

    # -- changing -------------------------------------------------------------------------

    def get(self, name: str) -> dict[str, Any]:
        for resource in self.resources:
            if resource["name"] == name:
                return resource
        raise KeyError(name)

    def remove(self, name: str) -> None:
        self.resources.remove(self.get(name))

    def set_input(self, name: str, key: str, value: Any) -> None:
        """Change an input (and the matching output), as if the program had passed another value."""
        resource = self.get(name)
        for bag in ("inputs", "outputs"):
            if value is None:
                resource[bag].pop(key, None)
            else:
                resource[bag][key] = copy.deepcopy(value)
        resource["property_dependencies"].pop(key, None)

    def record(self) -> dict[str, Any]:
        return {
            "project": PROJECT,
            "stack": self.stack,
            "preview": self.preview,
            "config": {f"{PROJECT}:regions": f'["{REGION}"]'},
            "resources": copy.deepcopy(self.resources),
            "exports": {},
        }

    def analyze(self, **kwargs: Any) -> AnalysisResult:
        return analyze_record(self.record(), **kwargs)


GSIS = ("by-customer", "by-status")
DIMENSIONS = {
    ("table", "read"): "dynamodb:table:ReadCapacityUnits",
    ("table", "write"): "dynamodb:table:WriteCapacityUnits",
    ("index", "read"): "dynamodb:index:ReadCapacityUnits",
    ("index", "write"): "dynamodb:index:WriteCapacityUnits",
}


def add_autoscaled_table(
    stack: StackRecord, data: dict[str, Any], name: str, named: bool, gsis: tuple[str, ...] = GSIS
) -> dict[str, Any]:
    """A provisioned table with read/write targets and target-tracking policies on it and every GSI."""
    inputs: dict[str, Any] = {
        "billingMode": "PROVISIONED",
        "hashKey": "pk",
        "readCapacity": 1.0,
        "writeCapacity": 1.0,
        "attributes": [{"name": "pk", "type": "S"}],
        "globalSecondaryIndexes": [
            {"name": g, "hashKey": "pk", "projectionType": "ALL", "readCapacity": 1.0, "writeCapacity": 1.0}
            for g in gsis
        ],
        "serverSideEncryption": {"enabled": True},
        "pointInTimeRecovery": {"enabled": True},
    }
    computed: dict[str, Any] = {}
    if named:
        inputs["name"] = name
    else:
        computed["name"] = f"{name}-1a2b3c"
    table = stack.add("aws:dynamodb/table:Table", name, inputs, parent=data, computed=computed)
    for index in (None, *gsis):
        for mode in ("read", "write"):
            suffix = f"{mode}" if index is None else f"{index}-{mode}"
            template = "table/{}" if index is None else "table/{}/index/" + index
            target = stack.add(
                "aws:appautoscaling/target:Target",
                f"{name}-{suffix}-target",
                {
                    "serviceNamespace": "dynamodb",
                    "resourceId": Ref(table, "name", template),
                    "scalableDimension": DIMENSIONS[("table" if index is None else "index", mode)],
                    "minCapacity": 1.0,
                    "maxCapacity": 50.0,
                },
                parent=data,
            )
            stack.add(
                "aws:appautoscaling/policy:Policy",
                f"{name}-{suffix}-policy",
                {
                    "policyType": "TargetTrackingScaling",
                    "resourceId": Ref(target, "resourceId"),
                    "scalableDimension": Ref(target, "scalableDimension"),
                    "serviceNamespace": Ref(target, "serviceNamespace"),
                    "targetTrackingScalingPolicyConfiguration": {
                        "targetValue": 70.0,
                        "predefinedMetricSpecification": {
                            "predefinedMetricType": f"DynamoDB{mode.capitalize()}CapacityUtilization"
                        },
                    },
                },
                parent=data,
            )
    return table


def build_platform(preview: bool, named_tables: bool = True) -> StackRecord:
    """The happy-path stack: every policy of the pack passes."""
    stack = StackRecord(preview)
    provider = stack.provider(f"aws-{REGION}")

    # Edge: internet-facing ALB behind a regional WAF, HTTPS + redirecting HTTP, logs to a private bucket.
    edge = stack.component("ratelimited:index:Edge", f"{REGION}-edge")
    bucket = stack.add(
        "aws:s3/bucketV2:BucketV2",
        f"{REGION}-edge-logs",
        {"forceDestroy": True},
        edge,
        {"bucket": "logs-abc"},
        provider,
    )
    stack.add(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        f"{REGION}-edge-logs-block",
        {
            "bucket": Ref(bucket, "id"),
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        },
        edge,
    )
    alb = stack.add(
        "aws:lb/loadBalancer:LoadBalancer",
        f"{REGION}-edge-alb",
        {
            "loadBalancerType": "application",
            "internal": False,
            "dropInvalidHeaderFields": True,
            "accessLogs": {"bucket": Ref(bucket, "id"), "enabled": True},
        },
        edge,
        computed={"arnSuffix": f"app/{REGION}-edge-alb/50dc6c495c0c9188"},
        provider=provider,
    )
    acl = stack.add("aws:wafv2/webAcl:WebAcl", f"{REGION}-edge-waf", {"scope": "REGIONAL"}, edge)
    stack.add(
        "aws:wafv2/webAclAssociation:WebAclAssociation",
        f"{REGION}-edge-waf-association",
        {"resourceArn": Ref(alb, "arn"), "webAclArn": Ref(acl, "arn")},
        edge,
    )
    stack.add(
        "aws:lb/listener:Listener",
        f"{REGION}-edge-https",
        {
            "loadBalancerArn": Ref(alb, "arn"),
            "port": 443.0,
            "protocol": "HTTPS",
            "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc",
            "defaultActions": [{"type": "fixed-response", "fixedResponse": {"contentType": "text/plain"}}],
        },
        edge,
    )
    stack.add(
        "aws:lb/listener:Listener",
        f"{REGION}-edge-http",
        {
            "loadBalancerArn": Ref(alb, "arn"),
            "port": 80.0,
            "protocol": "HTTP",
            "defaultActions": [
                {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
            ],
        },
        edge,
    )

    # API Gateway: a REGIONAL REST API whose stage has its own association, and an internal NLB.
    api = stack.component("ratelimited:index:ApiGateway", f"{REGION}-api")
    rest_api = stack.add(
        "aws:apigateway/restApi:RestApi",
        f"{REGION}-api-rest",
        {"endpointConfiguration": {"types": "REGIONAL"}},
        api,
        computed={"name": f"{REGION}-api-rest-1a2b3c"},
    )
    stage = stack.add(
        "aws:apigateway/stage:Stage", f"{REGION}-api-stage", {"restApi": Ref(rest_api, "id"), "stageName": "v1"}, api
    )
    stack.add(
        "aws:wafv2/webAclAssociation:WebAclAssociation",
        f"{REGION}-api-waf-association",
        {"resourceArn": Ref(stage, "arn"), "webAclArn": Ref(acl, "arn")},
        api,
    )
    nlb = stack.add(
        "aws:lb/loadBalancer:LoadBalancer", f"{REGION}-api-nlb", {"loadBalancerType": "network", "internal": True}, api
    )
    stack.add(
        "aws:lb/listener:Listener",
        f"{REGION}-api-nlb-tcp",
        {"loadBalancerArn": Ref(nlb, "arn"), "port": 443.0, "protocol": "TCP", "defaultActions": [{"type": "forward"}]},
        api,
    )

    # Data: the counters table (provisioned, autoscaled, two GSIs) and an on-demand app table.
    data = stack.component("ratelimited:index:Data", f"{REGION}-data")
    counters = add_autoscaled_table(stack, data, f"{REGION}-data-counters", named_tables)
    orders = stack.add(
        "aws:dynamodb/table:Table",
        f"{REGION}-data-orders",
        {
            "billingMode": "PAY_PER_REQUEST",
            "name": f"{REGION}-orders",
            "hashKey": "pk",
            "globalSecondaryIndexes": [{"name": "by-customer", "hashKey": "customer"}],
            "serverSideEncryption": {"enabled": True},
            "pointInTimeRecovery": {"enabled": True},
        },
        data,
    )

    # EKS (remote component: only its inputs) and the limiter's ECR repository.
    eks = stack.component("ratelimited:index:EksCluster", f"{REGION}-eks")
    key = stack.add("aws:kms/key:Key", f"{REGION}-eks-secrets-key", {"enableKeyRotation": True}, eks)
    stack.component(
        "eks:index:Cluster",
        f"{REGION}-eks-cluster",
        {
            "endpointPrivateAccess": True,
            "endpointPublicAccess": False,
            "encryptionConfigKeyArn": Ref(key, "arn"),
            "version": "1.34",
        },
        parent=eks,
        remote=True,
    )
    stack.add(
        "aws:ecr/repository:Repository",
        f"{REGION}-mesh-limiter-repo",
        {"imageTagMutability": "IMMUTABLE", "imageScanningConfiguration": {"scanOnPush": True}},
        eks,
    )

    # Global: CloudFront behind a CLOUDFRONT-scope ACL, and a latency record with a health check.
    edge_global = stack.component("ratelimited:index:GlobalEdge", "global-edge")
    global_acl = stack.add("aws:wafv2/webAcl:WebAcl", "global-edge-waf", {"scope": "CLOUDFRONT"}, edge_global)
    stack.add(
        "aws:cloudfront/distribution:Distribution",
        "global-edge-cdn",
        {
            "enabled": True,
            "webAclId": Ref(global_acl, "arn"),
            "defaultCacheBehavior": {"viewerProtocolPolicy": "redirect-to-https", "targetOriginId": "origin"},
            "orderedCacheBehaviors": [{"pathPattern": "/static/*", "viewerProtocolPolicy": "https-only"}],
            "viewerCertificate": {
                "acmCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/cdn",
                "minimumProtocolVersion": "TLSv1.2_2021",
                "sslSupportMethod": "sni-only",
            },
        },
        edge_global,
        computed={"arn": "arn:aws:cloudfront::123456789012:distribution/E1"},
    )
    check = stack.add(
        "aws:route53/healthCheck:HealthCheck",
        f"{REGION}-edge-health",
        {"type": "HTTPS", "resourcePath": "/healthz"},
        edge,
    )
    stack.add(
        "aws:route53/record:Record",
        f"{REGION}-edge-origin-record",
        {
            "name": "origin.dev.example.com",
            "type": "A",
            "setIdentifier": REGION,
            "latencyRoutingPolicies": [{"region": REGION}],
            "healthCheckId": Ref(check, "id"),
            "aliases": [{"name": Ref(alb, "dnsName"), "zoneId": Ref(alb, "zoneId"), "evaluateTargetHealth": True}],
        },
        edge,
    )

    # Observability: at least one alarm bound (through outputs) to the ALB, each table and the stage.
    obs = stack.component("ratelimited:index:RegionalObservability", f"{REGION}-obs")
    alarm = "aws:cloudwatch/metricAlarm:MetricAlarm"
    stack.add(
        alarm,
        f"{REGION}-obs-alb-elb-5xx",
        {"namespace": "AWS/ApplicationELB", "metricName": "HTTPCode_ELB_5XX_Count",
         "dimensions": {"LoadBalancer": Ref(alb, "arnSuffix")}},
        obs,
    )  # fmt: skip
    for key, table in (("counters", counters), ("orders", orders)):
        throttles = [
            {"id": f"m{i}", "metric": {"namespace": "AWS/DynamoDB", "metricName": m,
                                       "dimensions": {"TableName": Ref(table, "name")}}}
            for i, m in enumerate(("ReadThrottleEvents", "WriteThrottleEvents"))
        ]  # fmt: skip
        stack.add(alarm, f"{REGION}-obs-ddb-{key}-throttles", {"metricQueries": throttles}, obs)
    stack.add(
        alarm,
        f"{REGION}-obs-api-5xx",
        {"namespace": "AWS/ApiGateway", "metricName": "5XXError",
         "dimensions": {"ApiName": Ref(rest_api, "name"), "Stage": Ref(stage, "stageName")}},
        obs,
    )  # fmt: skip
    return stack


@pytest.fixture(params=[True, False], ids=["preview", "update"])
def preview(request: pytest.FixtureRequest) -> bool:
    """Each policy test runs in preview (unknown computed values) and in update (known values)."""
    return bool(request.param)


@pytest.fixture
def platform(preview: bool) -> StackRecord:
    """The happy-path stack in the mode of the test."""
    return build_platform(preview)


@pytest.fixture
def build() -> Callable[..., StackRecord]:
    """The stack builder itself, for tests that need a variant."""
    return build_platform


def violations(result: AnalysisResult, policy: str) -> list[tuple[str, str]]:
    """(resource name, message) of every diagnostic of one policy."""
    return [(d.resource_name, d.message) for d in result.for_policy(policy)]


@pytest.fixture
def found() -> Callable[[AnalysisResult, str], list[tuple[str, str]]]:
    return violations
