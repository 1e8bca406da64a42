"""The mesh layer of one region: Istio, its two ingress gateways, the rate limiter and the microservices.

Request path inside the cluster (../shared/ARCHITECTURE.md sections 2 and 2a):

    ALB -> TargetGroupBinding -> web ingress gateway --ext_authz (mTLS)--> limiter --> DynamoDB
    NLB -> TargetGroupBinding -> api ingress gateway --^         \\--> microservice (VirtualService)

- Istio comes from its official Helm charts (`base`, `istiod`, `gateway`) as `helm.v3.Release`s, so that
  their values are visible to the tests and to the policy pack. The objects those charts render are not
  registered as individual Pulumi resources.
- Each entry path has its own ingress gateway, because `numTrustedProxies` (how many hops of
  X-Forwarded-For to trust) differs per path: ALB (1), CloudFront + ALB (2), API Gateway + NLB (its own).
  The gateways' Services are ClusterIP: the load balancers are Pulumi-managed and reach the gateway pods
  through TargetGroupBindings (IP targets), never through a controller-made load balancer.
- The gateways call the limiter for every request through Envoy's ext_authz (HTTP), configured as an
  `envoyExtAuthzHttp` extension provider in istiod's meshConfig plus a CUSTOM AuthorizationPolicy per
  gateway. The limiter has a sidecar, mTLS is STRICT mesh-wide, a DestinationRule pins ISTIO_MUTUAL for
  the limiter's host, and an ALLOW policy admits only the gateways' identities (and the apps namespace,
  for the decision API), so the check travels over mutual TLS and cannot be spoofed from elsewhere.
- The limiter image is built from `limiter_service/` and pushed to a private, immutable, scanned ECR
  repository; the tag is a content hash of that folder (immutable tags never collide) and the Deployment
  pins the pushed digest.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build
import pulumi_kubernetes as k8s
import yaml

from components.irsa import irsa_role
from components.specs import Microservice

ISTIO_REPOSITORY = "https://istio-release.storage.googleapis.com/charts"
# security.istio.io/v1 and networking.istio.io/v1 (used below) are served from Istio 1.22 on.
MIN_ISTIO_VERSION = (1, 22)

ISTIO_NAMESPACE = "istio-system"
INGRESS_NAMESPACE = "istio-ingress"
LIMITER_NAMESPACE = "limiter"
APPS_NAMESPACE = "apps"

LIMITER_NAME = "limiter"
LIMITER_PORT = 8080
LIMITER_RULES_DIR = "/etc/limiter"
LIMITER_RULES_FILE = f"{LIMITER_RULES_DIR}/rules.yaml"
LIMITER_HOST = f"{LIMITER_NAME}.{LIMITER_NAMESPACE}.svc.cluster.local"
EXT_AUTHZ_PROVIDER = "ratelimit-ext-authz"
EXT_AUTHZ_PATH_PREFIX = "/authz"
RULES_CHECKSUM_ANNOTATION = "checksum/rate-limit-rules"

# The gateway pods' readiness port; the load balancers health-check it (HTTP /healthz/ready).
GATEWAY_STATUS_PORT = 15021
# Ports the sidecar/gateway proxies use themselves; a traffic port must not collide with them.
ISTIO_RESERVED_PORTS = frozenset(
    {15000, 15001, 15004, 15006, 15008, 15009, 15010, 15012, 15014, 15017, 15020, 15021, 15053, 15090}
)

# Headers the limiter needs besides the four Envoy always sends (Authorization, method, path, Host): the
# client address Envoy derived with numTrustedProxies, the raw chain, and the usual API key.
BASE_CHECK_HEADERS = ("x-envoy-external-address", "x-forwarded-for", "x-api-key")
# What a denied client sees from the limiter's 429 (ARCHITECTURE 2a), and the RateLimit fields also on allow.
DOWNSTREAM_ON_DENY = ("content-type", "retry-after", "ratelimit", "ratelimit-policy")
DOWNSTREAM_ON_ALLOW = ("ratelimit", "ratelimit-policy")

# The sidecar's merged Prometheus/health port (15020) and Envoy's own stats (15090).
SIDECAR_OPEN_PORTS = (15020, 15090)

# Hops of X-Forwarded-For to trust on the API path: a REGIONAL API Gateway appends the caller's address;
# the VPC link and the internal NLB (TCP) add none.
API_GATEWAY_TRUSTED_PROXIES = 1
# On the web path the ALB appends the client's address, and CloudFront (when on) the viewer's before it.
ALB_TRUSTED_PROXIES = 1
CLOUDFRONT_AND_ALB_TRUSTED_PROXIES = 2

# A non-root user with a high UID (a collision with a host user is then unlikely).
RUN_AS_USER = 10001

_K8S_VERSION_RE = re.compile(r"^1\.\d{2}$")
_SEMVER_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)([-+][0-9A-Za-z.-]+)?$")
_DNS_LABEL_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_HEADER_KEY_PREFIX = "header:"


@dataclass(frozen=True)
class GatewayScaling:
    """Replica bounds of one ingress gateway (HPA on CPU)."""

    min_replicas: int = 2
    """Lower bound; at least 2 so that a zone or node loss keeps the entry path up."""
    max_replicas: int = 10
    """Upper bound."""
    target_cpu_utilization: int = 70
    """HPA CPU target, percent of the request."""


@dataclass(frozen=True)
class MeshArgs:
    """Inputs of the mesh layer of one region."""

    region: str
    """The AWS region (the providers come through opts; this names the limiter's AWS_REGION)."""
    kubernetes_version: str
    """The cluster's Kubernetes version (major.minor)."""
    cluster_name: pulumi.Input[str]
    """The EKS cluster's name (for tags and descriptions)."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider ARN (IRSA trust)."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer without https:// (IRSA trust conditions)."""
    load_balancer_controller: pulumi.Resource
    """The AWS Load Balancer Controller's Helm release: TargetGroupBindings need its webhooks on create and
    its finalizer on delete."""
    web_target_group_arn: pulumi.Input[str]
    """The ALB's target group (IP targets) for the web ingress gateway."""
    web_lb_security_group_ids: Sequence[pulumi.Input[str]]
    """The ALB's security groups, admitted to the web gateway pods on the traffic and status ports."""
    web_traffic_port: int
    """The port the load balancers send traffic to on the gateway pods (plain HTTP; TLS ends at the ALB)."""
    web_trusted_proxies: int
    """Proxies in front of the web gateway: 1 (ALB) or 2 (CloudFront + ALB)."""
    api_target_group_arn: pulumi.Input[str] | None
    """The internal NLB's target group for the API gateway; None when API Gateway is off (no API gateway)."""
    api_lb_security_group_id: pulumi.Input[str] | None
    """The NLB's security group; required with api_target_group_arn."""
    api_trusted_proxies: int
    """Proxies in front of the API gateway (API Gateway, then the NLB)."""
    counters_table_name: pulumi.Input[str]
    """The limiter's DynamoDB counters table."""
    limiter_policy_json: pulumi.Input[str]
    """The data layer's least-privilege policy: the limiter role's only permission."""
    rate_limit_rules: Sequence[Mapping[str, Any]]
    """The limiter's rules, in its rules-file format."""
    istio_chart_version: str
    """Version of the Istio Helm charts (base, istiod, gateway); 1.22 or later."""
    limiter_min_replicas: int
    """Lower bound of the limiter's HPA."""
    limiter_max_replicas: int
    """Upper bound of the limiter's HPA."""
    ext_authz_fail_open: bool
    """Let requests through when the gateway cannot get a decision from the limiter at all."""
    ext_authz_timeout_ms: int
    """How long the gateway waits for the limiter's decision."""
    microservices: Sequence[Microservice]
    """The services run in the mesh, each routed by its path prefix on both gateways."""
    tags: Mapping[str, str]
    """Tags for every AWS resource."""
    image_platforms: Sequence[str] = ("linux/amd64",)
    """Platforms of the limiter image; match the node groups' architectures (see `platforms_for_instance_types`)."""
    limiter_source_dir: str = "limiter_service"
    """The limiter's build context, relative to the Pulumi project directory; its Dockerfile is inside."""
    health_check_paths: Sequence[str] = ("/healthz/ready",)
    """Health-check paths (the edge's Route 53 check through the ALB): the web gateway answers them itself
    with 200, and no gateway asks the limiter about them."""
    gateway_scaling: GatewayScaling = field(default_factory=GatewayScaling)
    """Replica bounds of each ingress gateway."""
    api_stage_path_prefix: str | None = None
    """The segment API Gateway puts before every path on the API entry (its stage, e.g. "/apigw"): the API
    gateway's routes strip it, and the limiter matches rules on the path without it."""


class Mesh(pulumi.ComponentResource):
    """Istio with two ingress gateways, ext_authz to the rate limiter, the limiter itself, and the microservices."""

    limiter_image_ref: pulumi.Output[str]
    limiter_role_arn: pulumi.Output[str]
    limiter_repository_url: pulumi.Output[str]
    web_gateway_service: str
    api_gateway_service: str | None

    def __init__(self, name: str, args: MeshArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("ratelimited:index:Mesh", name, None, opts)
        self._name = name
        self._args = args
        self._rules_yaml = render_rules(args.rate_limit_rules)

        namespaces = self._create_namespaces()
        istiod = self._create_istio(namespaces)
        self._create_mesh_security(istiod)

        gateways: dict[str, pulumi.Resource] = {}
        gateways["web"] = self._create_gateway(
            "web",
            args.web_trusted_proxies,
            args.web_target_group_arn,
            list(args.web_lb_security_group_ids),
            istiod,
            namespaces[INGRESS_NAMESPACE],
        )
        if args.api_target_group_arn is not None:
            gateways["api"] = self._create_gateway(
                "api",
                args.api_trusted_proxies,
                args.api_target_group_arn,
                [args.api_lb_security_group_id],
                istiod,
                namespaces[INGRESS_NAMESPACE],
            )
        self.web_gateway_service = gateway_service_name("web")
        self.api_gateway_service = gateway_service_name("api") if "api" in gateways else None

        self._create_limiter(namespaces[LIMITER_NAMESPACE], istiod, sorted(gateways))
        for service in args.microservices:
            self._create_microservice(service, namespaces[APPS_NAMESPACE], istiod, sorted(gateways))

        self.register_outputs(
            {
                "limiterImageRef": self.limiter_image_ref,
                "limiterRoleArn": self.limiter_role_arn,
                "limiterRepositoryUrl": self.limiter_repository_url,
                "webGatewayService": self.web_gateway_service,
                "apiGatewayService": self.api_gateway_service,
            }
        )

    # -- helpers ---------------------------------------------------------------------------------
    def _opts(self, *, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))

    def _labels(self, app: str) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": app,
            "app.kubernetes.io/part-of": "ratelimited-platform",
            "app.kubernetes.io/managed-by": "pulumi",
        }

    # -- namespaces --------------------------------------------------------------------------------
    def _create_namespaces(self) -> dict[str, k8s.core.v1.Namespace]:
        inject = {"istio-injection": "enabled"}
        labels = {
            ISTIO_NAMESPACE: {},
            # The load balancer controller holds a new gateway pod unready until the target group has
            # registered it, so a rollout never leaves the ALB without healthy targets.
            INGRESS_NAMESPACE: {**inject, "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"},
            LIMITER_NAMESPACE: inject,
            APPS_NAMESPACE: inject,
        }
        return {
            ns: k8s.core.v1.Namespace(
                f"{self._name}-ns-{ns}",
                metadata={"name": ns, "labels": {**self._labels(ns), **extra}},
                opts=self._opts(),
            )
            for ns, extra in labels.items()
        }

    # -- Istio control plane --------------------------------------------------------------------------
    def _create_istio(self, namespaces: Mapping[str, pulumi.Resource]) -> pulumi.Resource:
        """`base` (CRDs, default revision), then `istiod`; everything Istio-related then depends on istiod."""
        args = self._args
        repo = k8s.helm.v3.RepositoryOptsArgs(repo=ISTIO_REPOSITORY)
        base = k8s.helm.v3.Release(
            f"{self._name}-istio-base",
            name="istio-base",
            chart="base",
            version=args.istio_chart_version,
            repository_opts=repo,
            namespace=ISTIO_NAMESPACE,
            values={"defaultRevision": "default"},
            opts=self._opts(depends_on=[namespaces[ISTIO_NAMESPACE]]),
        )
        istiod = k8s.helm.v3.Release(
            f"{self._name}-istiod",
            name="istiod",
            chart="istiod",
            version=args.istio_chart_version,
            repository_opts=repo,
            namespace=ISTIO_NAMESPACE,
            values=istiod_values(args),
            # The CRDs and the default revision's webhook come from `base`.
            opts=self._opts(depends_on=[base]),
        )
        return istiod

    def _create_mesh_security(self, istiod: pulumi.Resource) -> None:
        # Mesh-wide (the root namespace): every workload with a sidecar accepts only mutual TLS.
        k8s.apiextensions.CustomResource(
            f"{self._name}-mtls-strict",
            api_version="security.istio.io/v1",
            kind="PeerAuthentication",
            metadata={"name": "default", "namespace": ISTIO_NAMESPACE, "labels": self._labels("istio")},
            spec={"mtls": {"mode": "STRICT"}},
            opts=self._opts(depends_on=[istiod]),
        )

    # -- ingress gateways ----------------------------------------------------------------------------
    def _create_gateway(
        self,
        kind: str,
        trusted_proxies: int,
        target_group_arn: pulumi.Input[str],
        lb_security_group_ids: list[pulumi.Input[str]],
        istiod: pulumi.Resource,
        namespace: pulumi.Resource,
    ) -> pulumi.Resource:
        args = self._args
        service = gateway_service_name(kind)
        selector = gateway_selector(kind)
        release = k8s.helm.v3.Release(
            f"{self._name}-gateway-{kind}",
            name=service,
            chart="gateway",
            version=args.istio_chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=ISTIO_REPOSITORY),
            namespace=INGRESS_NAMESPACE,
            values=gateway_values(kind, trusted_proxies, args.web_traffic_port, args.gateway_scaling),
            # Gateway pods are injected by istiod's webhook ("gateway" template): istiod must be up first.
            opts=self._opts(depends_on=[istiod, namespace]),
        )
        # Binds the gateway's port to the Service port the load balancer targets; TLS ended at the ALB.
        k8s.apiextensions.CustomResource(
            f"{self._name}-gateway-{kind}-binding",
            api_version="networking.istio.io/v1",
            kind="Gateway",
            metadata={"name": kind, "namespace": INGRESS_NAMESPACE, "labels": self._labels(service)},
            spec={
                "selector": selector,
                "servers": [
                    {
                        "port": {"number": args.web_traffic_port, "name": "http", "protocol": "HTTP"},
                        "hosts": ["*"],
                    }
                ],
            },
            opts=self._opts(depends_on=[istiod, release]),
        )
        if kind == "web":
            # Route 53 checks each region through its ALB on the health path (with no origin header): the
            # gateway answers it itself, so a 200 means ALB and gateway serve; the limiter is not asked.
            k8s.apiextensions.CustomResource(
                f"{self._name}-gateway-{kind}-health",
                api_version="networking.istio.io/v1",
                kind="VirtualService",
                metadata={"name": f"{kind}-health", "namespace": INGRESS_NAMESPACE, "labels": self._labels(service)},
                spec={
                    "hosts": ["*"],
                    "gateways": [kind],
                    "http": [
                        {
                            "name": "health",
                            "match": [{"uri": {"exact": path}} for path in args.health_check_paths],
                            "directResponse": {"status": 200, "body": {"string": "ok"}},
                        }
                    ],
                },
                opts=self._opts(depends_on=[istiod, release]),
            )
        # Every request through this gateway asks the limiter first, except the health checks.
        k8s.apiextensions.CustomResource(
            f"{self._name}-gateway-{kind}-ratelimit",
            api_version="security.istio.io/v1",
            kind="AuthorizationPolicy",
            metadata={"name": f"{kind}-ratelimit", "namespace": INGRESS_NAMESPACE, "labels": self._labels(service)},
            spec={
                "selector": {"matchLabels": selector},
                "action": "CUSTOM",
                "provider": {"name": EXT_AUTHZ_PROVIDER},
                # A CUSTOM policy without rules never matches; this rule matches every request but health checks.
                "rules": [{"to": [{"operation": {"notPaths": list(args.health_check_paths)}}]}],
            },
            opts=self._opts(depends_on=[istiod]),
        )
        ports = [{"protocol": "TCP", "port": args.web_traffic_port}, {"protocol": "TCP", "port": GATEWAY_STATUS_PORT}]
        k8s.apiextensions.CustomResource(
            f"{self._name}-gateway-{kind}-tgb",
            api_version="elbv2.k8s.aws/v1beta1",
            kind="TargetGroupBinding",
            metadata={"name": service, "namespace": INGRESS_NAMESPACE, "labels": self._labels(service)},
            spec={
                "targetGroupARN": target_group_arn,
                "targetType": "ip",
                "serviceRef": {"name": service, "port": args.web_traffic_port},
                # The controller opens the pods' security group to the load balancer on these ports only.
                "networking": {
                    "ingress": [
                        {
                            "from": [{"securityGroup": {"groupID": sg}} for sg in lb_security_group_ids],
                            "ports": ports,
                        }
                    ]
                },
            },
            # The controller's webhooks must exist on create, and its finalizer must still run on delete.
            opts=self._opts(depends_on=[args.load_balancer_controller, release]),
        )
        return release

    # -- the rate limiter -----------------------------------------------------------------------------
    def _create_limiter(self, namespace: pulumi.Resource, istiod: pulumi.Resource, gateway_kinds: list[str]) -> None:
        args = self._args
        image_ref = self._create_limiter_image()
        role = irsa_role(
            f"{self._name}-limiter",
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            namespace=LIMITER_NAMESPACE,
            service_account=LIMITER_NAME,
            policy_json=args.limiter_policy_json,
            tags=args.tags,
            parent=self,
        )
        self.limiter_role_arn = role.arn
        labels = {"app": LIMITER_NAME, **self._labels(LIMITER_NAME)}
        meta = {"namespace": LIMITER_NAMESPACE, "labels": labels}
        ns_dep = [namespace]

        account = k8s.core.v1.ServiceAccount(
            f"{self._name}-limiter-sa",
            metadata={**meta, "name": LIMITER_NAME, "annotations": {"eks.amazonaws.com/role-arn": role.arn}},
            automount_service_account_token=False,
            opts=self._opts(depends_on=ns_dep),
        )
        rules = k8s.core.v1.ConfigMap(
            f"{self._name}-limiter-rules",
            metadata={**meta, "name": "limiter-rules"},
            data={"rules.yaml": self._rules_yaml},
            opts=self._opts(depends_on=ns_dep),
        )
        container = {
            "name": LIMITER_NAME,
            "image": image_ref,
            # Pinned by digest: the node never needs to re-check a tag.
            "imagePullPolicy": "IfNotPresent",
            "command": ["python", "-m", "limiter_service"],
            "args": ["--host", "0.0.0.0", "--port", str(LIMITER_PORT)],
            "ports": [{"name": "http", "containerPort": LIMITER_PORT, "protocol": "TCP"}],
            "env": [
                {"name": "LIMITER_RULES_FILE", "value": LIMITER_RULES_FILE},
                {"name": "LIMITER_STORE", "value": "dynamodb"},
                {"name": "LIMITER_TABLE", "value": args.counters_table_name},
                {"name": "AWS_REGION", "value": args.region},
                {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
                *(
                    [{"name": "LIMITER_STRIP_PATH_PREFIXES", "value": json.dumps([args.api_stage_path_prefix])}]
                    if args.api_stage_path_prefix
                    else []
                ),
            ],
            # Readiness reports whether this replica can decide; liveness only whether the process serves.
            "readinessProbe": {
                "httpGet": {"path": "/readyz", "port": "http"},
                "periodSeconds": 5,
                "timeoutSeconds": 2,
                "failureThreshold": 3,
            },
            "livenessProbe": {
                "httpGet": {"path": "/healthz", "port": "http"},
                "initialDelaySeconds": 10,
                "periodSeconds": 10,
                "timeoutSeconds": 2,
                "failureThreshold": 3,
            },
            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
            "securityContext": container_security_context(),
            "volumeMounts": [
                {"name": "rules", "mountPath": LIMITER_RULES_DIR, "readOnly": True},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }
        pod_annotations = {
            # A change of the rules changes this value, and so rolls the pods onto the new rules file.
            RULES_CHECKSUM_ANNOTATION: rules_checksum(self._rules_yaml),
            # The limiter calls DynamoDB at start-up: let the sidecar come up first.
            "proxy.istio.io/config": json.dumps({"holdApplicationUntilProxyStarts": True}),
        }
        deployment = self._deployment(
            "limiter",
            LIMITER_NAME,
            LIMITER_NAMESPACE,
            labels,
            container,
            pod_annotations,
            service_account=LIMITER_NAME,
            volumes=[
                {"name": "rules", "configMap": {"name": "limiter-rules"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            ],
            depends_on=[istiod, account, rules, *ns_dep],
        )
        self._service("limiter", LIMITER_NAME, LIMITER_NAMESPACE, labels, LIMITER_PORT, ns_dep)
        self._hpa(
            "limiter",
            LIMITER_NAME,
            LIMITER_NAMESPACE,
            labels,
            args.limiter_min_replicas,
            args.limiter_max_replicas,
            70,
            [deployment],
        )
        self._pdb("limiter", LIMITER_NAME, LIMITER_NAMESPACE, labels, ns_dep)
        self._network_policy(
            "limiter",
            LIMITER_NAME,
            LIMITER_NAMESPACE,
            labels,
            LIMITER_PORT,
            [INGRESS_NAMESPACE, APPS_NAMESPACE],
            ns_dep,
        )

        # ext_authz from the gateways is plain HTTP to the limiter's host; Istio's outbound cluster for that
        # host wraps it in mutual TLS. Pin that explicitly, and admit only the gateways' identities (and the
        # apps, for the decision API): with STRICT mTLS the principal cannot be forged.
        k8s.apiextensions.CustomResource(
            f"{self._name}-limiter-mtls",
            api_version="networking.istio.io/v1",
            kind="DestinationRule",
            metadata={"name": LIMITER_NAME, "namespace": LIMITER_NAMESPACE, "labels": labels},
            spec={
                "host": LIMITER_HOST,
                "trafficPolicy": {
                    "tls": {"mode": "ISTIO_MUTUAL"},
                    # A replica that keeps failing is taken out of the gateways' pool for a while.
                    "outlierDetection": {
                        "consecutive5xxErrors": 5,
                        "interval": "10s",
                        "baseEjectionTime": "30s",
                        "maxEjectionPercent": 50,
                    },
                },
            },
            opts=self._opts(depends_on=[istiod, *ns_dep]),
        )
        k8s.apiextensions.CustomResource(
            f"{self._name}-limiter-callers",
            api_version="security.istio.io/v1",
            kind="AuthorizationPolicy",
            metadata={"name": f"{LIMITER_NAME}-callers", "namespace": LIMITER_NAMESPACE, "labels": labels},
            spec={
                "selector": {"matchLabels": {"app": LIMITER_NAME}},
                "action": "ALLOW",
                "rules": [
                    {"from": [{"source": {"principals": [gateway_principal(k) for k in gateway_kinds]}}]},
                    {"from": [{"source": {"namespaces": [APPS_NAMESPACE]}}]},
                ],
            },
            opts=self._opts(depends_on=[istiod, *ns_dep]),
        )

    def _create_limiter_image(self) -> pulumi.Output[str]:
        args = self._args
        repository = aws.ecr.Repository(
            f"{self._name}-limiter",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS")],
            force_delete=False,
            tags=dict(args.tags),
            opts=self._opts(),
        )
        aws.ecr.LifecyclePolicy(
            f"{self._name}-limiter-lifecycle",
            repository=repository.name,
            policy=json.dumps(lifecycle_policy()),
            opts=self._opts(),
        )
        self.limiter_repository_url = repository.repository_url
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        tag = image_tag(source_digest(args.limiter_source_dir), args.image_platforms)
        context = args.limiter_source_dir
        image = docker_build.Image(
            f"{self._name}-limiter-image",
            context=docker_build.BuildContextArgs(location=context),
            dockerfile=docker_build.DockerfileArgs(location=f"{context}/Dockerfile"),
            platforms=[docker_build.Platform(p) for p in args.image_platforms],
            push=True,
            # Previews need no Docker daemon (CI without one can preview); `up` builds and pushes.
            build_on_preview=False,
            registries=[
                docker_build.RegistryArgs(
                    address=repository.repository_url,
                    username=token.user_name,
                    password=token.password,
                )
            ],
            tags=[pulumi.Output.concat(repository.repository_url, ":", tag)],
            opts=self._opts(),
        )
        self.limiter_image_ref = pulumi.Output.concat(repository.repository_url, "@", image.digest)
        return self.limiter_image_ref

    # -- microservices ---------------------------------------------------------------------------------
    def _create_microservice(
        self, service: Microservice, namespace: pulumi.Resource, istiod: pulumi.Resource, gateway_kinds: list[str]
    ) -> None:
        labels = {"app": service.name, **self._labels(service.name)}
        ns_dep = [namespace]
        container = {
            "name": service.name,
            "image": service.image,
            # By digest the node may keep its copy; by tag it must re-check the registry.
            "imagePullPolicy": "IfNotPresent" if "@sha256:" in service.image else "Always",
            "ports": [{"name": "http", "containerPort": service.port, "protocol": "TCP"}],
            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 5, "failureThreshold": 3},
            "livenessProbe": {
                "tcpSocket": {"port": "http"},
                "initialDelaySeconds": 10,
                "periodSeconds": 10,
                "failureThreshold": 3,
            },
            "resources": {
                "requests": {"cpu": service.cpu, "memory": service.memory},
                "limits": {"cpu": service.cpu, "memory": service.memory},
            },
            "securityContext": container_security_context(),
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }
        suffix = f"svc-{service.name}"
        deployment = self._deployment(
            suffix,
            service.name,
            APPS_NAMESPACE,
            labels,
            container,
            {},
            service_account=None,
            volumes=[{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
            depends_on=[istiod, *ns_dep],
        )
        self._service(suffix, service.name, APPS_NAMESPACE, labels, service.port, ns_dep)
        self._hpa(
            suffix,
            service.name,
            APPS_NAMESPACE,
            labels,
            service.min_replicas,
            service.max_replicas,
            service.target_cpu_utilization,
            [deployment],
        )
        self._pdb(suffix, service.name, APPS_NAMESPACE, labels, ns_dep)
        self._network_policy(
            suffix, service.name, APPS_NAMESPACE, labels, service.port, [INGRESS_NAMESPACE, APPS_NAMESPACE], ns_dep
        )
        destination = [
            {
                "destination": {
                    "host": f"{service.name}.{APPS_NAMESPACE}.svc.cluster.local",
                    "port": {"number": service.port},
                }
            }
        ]
        k8s.apiextensions.CustomResource(
            f"{self._name}-{suffix}-route",
            api_version="networking.istio.io/v1",
            kind="VirtualService",
            metadata={"name": service.name, "namespace": APPS_NAMESPACE, "labels": labels},
            spec={
                "hosts": ["*"],
                "gateways": [f"{INGRESS_NAMESPACE}/{kind}" for kind in gateway_kinds],
                "http": [
                    *self._staged_routes(service, destination, gateway_kinds),
                    {"name": service.name, "match": route_matches(service.path_prefix), "route": destination},
                ],
            },
            opts=self._opts(depends_on=[istiod, *ns_dep]),
        )

    def _staged_routes(self, service: Microservice, destination: list[dict], gateway_kinds: list[str]) -> list[dict]:
        """On the API gateway only: /<stage>/orders[/...] goes to the orders service as /orders[/...].

        API Gateway's private integrations may put the stage before the path; both forms are routed, so the
        service sees its own paths either way (ARCHITECTURE 2a).
        """
        stage = self._args.api_stage_path_prefix
        if not stage or "api" not in gateway_kinds:
            return []
        api_gateway = f"{INGRESS_NAMESPACE}/api"
        base = service.path_prefix.rstrip("/")
        routes = [
            {
                "name": f"{service.name}-api-stage",
                "match": [{"uri": {"prefix": f"{stage}{base}/"}, "gateways": [api_gateway]}],
                "rewrite": {"uri": f"{base}/"},
                "route": destination,
            }
        ]
        if base:
            routes.insert(
                0,
                {
                    "name": f"{service.name}-api-stage-exact",
                    "match": [{"uri": {"exact": f"{stage}{base}"}, "gateways": [api_gateway]}],
                    "rewrite": {"uri": base},
                    "route": destination,
                },
            )
        return routes

    # -- workload building blocks ---------------------------------------------------------------------
    def _deployment(
        self,
        suffix: str,
        name: str,
        namespace: str,
        labels: dict[str, str],
        container: dict,
        annotations: dict[str, str],
        *,
        service_account: str | None,
        volumes: list[dict],
        depends_on: Sequence[pulumi.Resource],
    ) -> k8s.apps.v1.Deployment:
        selector = {"app": labels["app"]}
        pod_labels = {**labels, "sidecar.istio.io/inject": "true"}
        spec: dict[str, Any] = {
            # No `replicas`: the HPA owns the count (server-side apply leaves the field to it).
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": annotations},
                "spec": {
                    # No Kubernetes API access needed: IRSA and the sidecar use their own projected tokens.
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS_USER,
                        "runAsGroup": RUN_AS_USER,
                        "fsGroup": RUN_AS_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": volumes,
                    "topologySpreadConstraints": spread_constraints(selector),
                    "terminationGracePeriodSeconds": 30,
                },
            },
        }
        if service_account:
            spec["template"]["spec"]["serviceAccountName"] = service_account
        return k8s.apps.v1.Deployment(
            f"{self._name}-{suffix}",
            metadata={"name": name, "namespace": namespace, "labels": labels},
            spec=spec,
            opts=self._opts(depends_on=depends_on),
        )

    def _service(
        self,
        suffix: str,
        name: str,
        namespace: str,
        labels: dict[str, str],
        port: int,
        depends_on: Sequence[pulumi.Resource],
    ) -> None:
        k8s.core.v1.Service(
            f"{self._name}-{suffix}-service",
            metadata={"name": name, "namespace": namespace, "labels": labels},
            spec={
                "type": "ClusterIP",
                "selector": {"app": labels["app"]},
                # Named and typed http so that Istio routes and authorizes it as HTTP.
                "ports": [
                    {"name": "http", "port": port, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}
                ],
            },
            opts=self._opts(depends_on=depends_on),
        )

    def _hpa(
        self,
        suffix: str,
        name: str,
        namespace: str,
        labels: dict[str, str],
        min_replicas: int,
        max_replicas: int,
        cpu_target: int,
        depends_on: Sequence[pulumi.Resource],
    ) -> None:
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{self._name}-{suffix}-hpa",
            metadata={"name": name, "namespace": namespace, "labels": labels},
            spec={
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": min_replicas,
                "maxReplicas": max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": cpu_target},
                        },
                    }
                ],
            },
            opts=self._opts(depends_on=depends_on),
        )

    def _pdb(
        self, suffix: str, name: str, namespace: str, labels: dict[str, str], depends_on: Sequence[pulumi.Resource]
    ) -> None:
        # maxUnavailable (not minAvailable) so that a node drain is never blocked, even at one replica.
        k8s.policy.v1.PodDisruptionBudget(
            f"{self._name}-{suffix}-pdb",
            metadata={"name": name, "namespace": namespace, "labels": labels},
            spec={"maxUnavailable": 1, "selector": {"matchLabels": {"app": labels["app"]}}},
            opts=self._opts(depends_on=depends_on),
        )

    def _network_policy(
        self,
        suffix: str,
        name: str,
        namespace: str,
        labels: dict[str, str],
        port: int,
        from_namespaces: Sequence[str],
        depends_on: Sequence[pulumi.Resource],
    ) -> None:
        """Ingress only from the named namespaces on the app port; the sidecar's health/metrics ports from anywhere.

        Enforced once the cluster's CNI enforces NetworkPolicy (VPC CNI: enableNetworkPolicy); egress stays
        open (DynamoDB, STS, istiod). Kubelet probes reach the pod on 15020: the injector rewrites HTTP probes.
        """
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-{suffix}-netpol",
            metadata={"name": name, "namespace": namespace, "labels": labels},
            spec={
                "podSelector": {"matchLabels": {"app": labels["app"]}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                            for ns in from_namespaces
                        ],
                        "ports": [{"protocol": "TCP", "port": port}],
                    },
                    {"ports": [{"protocol": "TCP", "port": p} for p in SIDECAR_OPEN_PORTS]},
                ],
            },
            opts=self._opts(depends_on=depends_on),
        )


# -- pure functions (values the tests and other layers can compute too) -------------------------------
def gateway_service_name(kind: str) -> str:
    """The ingress gateway's Helm release, Deployment, Service and ServiceAccount name."""
    return f"istio-ingress-{kind}"


def gateway_selector(kind: str) -> dict[str, str]:
    """The pod labels that Istio Gateways and AuthorizationPolicies select a gateway by."""
    return {"istio": f"ingress-{kind}"}


def gateway_principal(kind: str) -> str:
    """The SPIFFE identity of a gateway's pods (its ServiceAccount), as AuthorizationPolicy principals name it."""
    return f"cluster.local/ns/{INGRESS_NAMESPACE}/sa/{gateway_service_name(kind)}"


def route_matches(path_prefix: str) -> list[dict[str, Any]]:
    """URI matches for a path prefix on segment boundaries: /orders and /orders/..., never /orders-admin."""
    base = path_prefix.rstrip("/")
    if not base:
        return [{"uri": {"prefix": "/"}}]
    return [{"uri": {"exact": base}}, {"uri": {"prefix": f"{base}/"}}]


def spread_constraints(selector: Mapping[str, str]) -> list[dict[str, Any]]:
    """Spread over zones, then nodes. ScheduleAnyway: a zone short of capacity must not stop a scale-out."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(selector)},
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def container_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def check_headers(rules: Sequence[Mapping[str, Any]]) -> list[str]:
    """The request headers the limiter must see: the base set plus every `header:<name>` a rule keys on."""
    headers = list(BASE_CHECK_HEADERS)
    for rule in rules:
        for part in rule.get("key", []) or []:
            if isinstance(part, str) and part.startswith(_HEADER_KEY_PREFIX):
                name = part.removeprefix(_HEADER_KEY_PREFIX).strip().lower()
                if name and name not in headers:
                    headers.append(name)
    return headers


def ext_authz_provider(args: MeshArgs) -> dict[str, Any]:
    """The istiod meshConfig extension provider that sends every gateway request to the limiter."""
    return {
        "name": EXT_AUTHZ_PROVIDER,
        "envoyExtAuthzHttp": {
            "service": LIMITER_HOST,
            "port": LIMITER_PORT,
            # The limiter receives /authz + the original path and query.
            "pathPrefix": EXT_AUTHZ_PATH_PREFIX,
            # Explicit: Envoy's default is 600 s (protobuf Duration in seconds).
            "timeout": f"{args.ext_authz_timeout_ms / 1000:.3f}s",
            "failOpen": args.ext_authz_fail_open,
            # The limiter answers 429 when limiting, never 5xx; an error is the limiter being unavailable.
            "statusOnError": "503",
            "includeRequestHeadersInCheck": check_headers(args.rate_limit_rules),
            "headersToDownstreamOnDeny": list(DOWNSTREAM_ON_DENY),
            "headersToDownstreamOnAllow": list(DOWNSTREAM_ON_ALLOW),
        },
    }


def istiod_values(args: MeshArgs) -> dict[str, Any]:
    """Values of the `istiod` chart (1.22+ reads them at the top level; `pilot.*` is the legacy spelling)."""
    selector = {"app": "istiod"}
    return {
        "autoscaleEnabled": True,
        "autoscaleMin": 2,
        "autoscaleMax": 5,
        "replicaCount": 2,
        "resources": {"requests": {"cpu": "500m", "memory": "2048Mi"}},
        "topologySpreadConstraints": spread_constraints(selector),
        "global": {
            "istioNamespace": ISTIO_NAMESPACE,
            # PodDisruptionBudget (minAvailable 1) for istiod.
            "defaultPodDisruptionBudget": {"enabled": True},
            "logAsJson": True,
        },
        "meshConfig": {
            "accessLogFile": "/dev/stdout",
            "accessLogEncoding": "JSON",
            "enablePrometheusMerge": True,
            # Apps start only once their sidecar can carry (m)TLS traffic.
            "defaultConfig": {"holdApplicationUntilProxyStarts": True},
            "extensionProviders": [ext_authz_provider(args)],
        },
    }


def gateway_values(kind: str, trusted_proxies: int, traffic_port: int, scaling: GatewayScaling) -> dict[str, Any]:
    """Values of one `gateway` chart release."""
    service = gateway_service_name(kind)
    selector = gateway_selector(kind)
    return {
        "name": service,
        "labels": {**selector, "app": service},
        "service": {
            # Not LoadBalancer: the load balancer controller would create an extra NLB. The Pulumi-managed
            # load balancers reach the pods through TargetGroupBindings.
            "type": "ClusterIP",
            "ports": [
                {
                    "name": "status-port",
                    "port": GATEWAY_STATUS_PORT,
                    "protocol": "TCP",
                    "targetPort": GATEWAY_STATUS_PORT,
                },
                {"name": "http", "port": traffic_port, "protocol": "TCP", "targetPort": traffic_port},
            ],
        },
        "podAnnotations": {
            "prometheus.io/port": "15020",
            "prometheus.io/scrape": "true",
            "prometheus.io/path": "/stats/prometheus",
            "inject.istio.io/templates": "gateway",
            "sidecar.istio.io/inject": "true",
            # How many X-Forwarded-For hops to trust: picks the real client address for the limiter.
            "proxy.istio.io/config": json.dumps({"gatewayTopology": {"numTrustedProxies": trusted_proxies}}),
        },
        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
        "autoscaling": {
            "enabled": True,
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "targetCPUUtilizationPercentage": scaling.target_cpu_utilization,
        },
        "podDisruptionBudget": {"maxUnavailable": 1},
        "topologySpreadConstraints": spread_constraints({"app": service, **selector}),
    }


def render_rules(rules: Sequence[Mapping[str, Any]]) -> str:
    """The limiter's rules file (YAML), validated by the limiter's own parser when it is importable."""
    document = {"rules": [_plain(r) for r in rules]}
    try:
        from limiter_service.rules import parse_rules
    except ImportError:  # another program may use this layer without the limiter's sources
        parse_rules = None
    if parse_rules is not None:
        try:
            parse_rules(document)
        except ValueError as exc:
            raise ValueError(f"MeshArgs.rate_limit_rules is invalid: {exc}") from exc
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def rules_checksum(rules_yaml: str) -> str:
    """The pod-template annotation value that changes whenever the rendered rules change."""
    return hashlib.sha256(rules_yaml.encode()).hexdigest()


def lifecycle_policy() -> dict[str, Any]:
    """Untagged layers go after a week; of the tagged images, the 30 newest are kept (rollbacks)."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": "Expire untagged images after 7 days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": "Keep the 30 newest tagged images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 30,
                },
                "action": {"type": "expire"},
            },
        ]
    }


_SKIP_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv", "node_modules"})


def source_digest(directory: str | os.PathLike[str]) -> str:
    """sha256 over the names and contents of the files the build would see.

    Caches, bytecode and whatever the context's .dockerignore excludes do not count (the Dockerfile and
    .dockerignore themselves always do), so an edit that cannot change the image does not mint a new tag.
    """
    root = Path(directory)
    if not root.is_dir():
        raise ValueError(f"MeshArgs.limiter_source_dir {str(directory)!r} is not a directory.")
    patterns = _dockerignore_patterns(root)
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in _SKIP_DIRS for part in rel.parts[:-1]) or not path.is_file():
            continue
        if path.suffix in (".pyc", ".pyo"):
            continue
        if rel.as_posix() not in ("Dockerfile", ".dockerignore") and _docker_ignored(rel.as_posix(), patterns):
            continue
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _dockerignore_patterns(root: Path) -> list[tuple[bool, str]]:
    """(negated, pattern) pairs of the context's .dockerignore, in order."""
    path = root / ".dockerignore"
    if not path.is_file():
        return []
    patterns = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        patterns.append((negated, pattern.removeprefix("./")))
    return patterns


def _docker_ignored(rel: str, patterns: Sequence[tuple[bool, str]]) -> bool:
    """Docker's rule, simplified: a pattern matches the path or one of its parent folders; the last match wins."""
    parts = rel.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for negated, pattern in patterns:
        bare = pattern.removeprefix("**/")
        for candidate in candidates:
            tails = ["/".join(candidate.split("/")[i:]) for i in range(len(candidate.split("/")))]
            if fnmatch.fnmatchcase(candidate, pattern) or (
                pattern.startswith("**/") and any(fnmatch.fnmatchcase(t, bare) for t in tails)
            ):
                ignored = not negated
                break
    return ignored


def image_tag(source_sha256: str, platforms: Sequence[str]) -> str:
    """An immutable tag: the same sources for the same platforms give the same tag, any change a new one."""
    salted = hashlib.sha256(f"{source_sha256}|{','.join(sorted(platforms))}".encode()).hexdigest()
    return f"src-{salted[:20]}"


def platforms_for_instance_types(instance_types: Sequence[str]) -> tuple[str, ...]:
    """linux/arm64 for Graviton families (m7g, c7gn, t4g, ...), linux/amd64 for the rest; both if mixed."""
    platforms = set()
    for itype in instance_types:
        family = itype.split(".", 1)[0]
        match = re.match(r"^[a-z]+\d+([a-z-]*)$", family)
        platforms.add("linux/arm64" if match and "g" in match.group(1) else "linux/amd64")
    return tuple(sorted(platforms)) or ("linux/amd64",)


def _plain(value: Any) -> Any:
    """Config values as plain YAML-safe data (mappings may be read-only proxies; integral floats become ints)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _validate(args: MeshArgs) -> None:
    if not args.region:
        raise ValueError("MeshArgs.region must not be empty.")
    if not _K8S_VERSION_RE.match(args.kubernetes_version):
        raise ValueError(f"MeshArgs.kubernetes_version must look like 1.34, not {args.kubernetes_version!r}.")
    if args.load_balancer_controller is None:
        raise ValueError("MeshArgs.load_balancer_controller must be the controller's Helm release.")
    if not args.web_lb_security_group_ids:
        raise ValueError("MeshArgs.web_lb_security_group_ids must list the ALB's security group(s).")
    port = args.web_traffic_port
    if not isinstance(port, int) or not 1 <= port <= 65535 or port in ISTIO_RESERVED_PORTS:
        raise ValueError(
            f"MeshArgs.web_traffic_port must be a port from 1 to 65535 that Istio does not use itself, not {port!r}."
        )
    for field_name in ("web_trusted_proxies", "api_trusted_proxies"):
        value = getattr(args, field_name)
        if not isinstance(value, int) or not 1 <= value <= 5:
            raise ValueError(f"MeshArgs.{field_name} must be the number of proxies in front (1 to 5), not {value!r}.")
    if (args.api_target_group_arn is None) != (args.api_lb_security_group_id is None):
        raise ValueError(
            "MeshArgs.api_target_group_arn and api_lb_security_group_id must be given together (API Gateway on) "
            "or both be None (off)."
        )
    if not args.rate_limit_rules:
        raise ValueError("MeshArgs.rate_limit_rules must list at least one rule.")
    version = _SEMVER_RE.match(args.istio_chart_version)
    if not version or (int(version.group(1)), int(version.group(2))) < MIN_ISTIO_VERSION:
        raise ValueError(
            f"MeshArgs.istio_chart_version must be a chart version 1.22.0 or later (the v1 Istio APIs), "
            f"not {args.istio_chart_version!r}."
        )
    if not 1 <= args.limiter_min_replicas <= args.limiter_max_replicas:
        raise ValueError("MeshArgs.limiter_min_replicas must be at least 1 and not exceed limiter_max_replicas.")
    if not 10 <= args.ext_authz_timeout_ms <= 10_000:
        raise ValueError(f"MeshArgs.ext_authz_timeout_ms must be 10 to 10000, not {args.ext_authz_timeout_ms!r}.")
    s = args.gateway_scaling
    if not 1 <= s.min_replicas <= s.max_replicas or not 10 <= s.target_cpu_utilization <= 95:
        raise ValueError("MeshArgs.gateway_scaling needs 1 <= min_replicas <= max_replicas and a CPU target of 10-95.")
    names = [m.name for m in args.microservices]
    if len(set(names)) != len(names):
        raise ValueError("MeshArgs.microservices must have unique names.")
    for m in args.microservices:
        if not _DNS_LABEL_RE.match(m.name) or m.name == LIMITER_NAME:
            raise ValueError(f"MeshArgs.microservices name {m.name!r} must be a DNS label other than 'limiter'.")
        if not m.path_prefix.startswith("/"):
            raise ValueError(f"MeshArgs.microservices '{m.name}' path_prefix must start with '/'.")
    for path in args.health_check_paths:
        if not path.startswith("/"):
            raise ValueError(f"MeshArgs.health_check_paths has {path!r}; each must start with '/'.")
    stage = args.api_stage_path_prefix
    if stage is not None:
        if not re.match(r"^/[A-Za-z0-9_-]+$", stage):
            raise ValueError(f"MeshArgs.api_stage_path_prefix must be one path segment like '/apigw', not {stage!r}.")
        clash = [m.name for m in args.microservices if (m.path_prefix.rstrip("/") + "/").startswith(stage + "/")]
        if clash:
            raise ValueError(
                f"MeshArgs.microservices {clash} route under {stage!r}, the API stage segment the API gateway strips."
            )
    if not args.image_platforms or any(p not in ("linux/amd64", "linux/arm64") for p in args.image_platforms):
        raise ValueError("MeshArgs.image_platforms must list linux/amd64 and/or linux/arm64.")
