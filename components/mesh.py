"""The mesh layer of one region: Istio, its two ingress gateways, ext_authz to the limiter, mTLS, routes.

Request path inside the cluster:

    ALB -> TargetGroupBinding -> web ingress gateway --ext_authz (mTLS)--> limiter --> DynamoDB
    NLB -> TargetGroupBinding -> api ingress gateway --^         \\--> microservice (route table)

- Istio comes from its official Helm charts (`base`, `istiod`, `gateway`) as `helm.v3.Release`s, so that
  their values are visible to the tests and to the policy pack. The objects those charts render are not
  registered as individual Pulumi resources. Every release with pods waits for the region's node groups
  (a release waits for its pods to be ready, which needs nodes that have joined).
- Each entry path has its own ingress gateway, because `numTrustedProxies` (how many hops of
  X-Forwarded-For to trust) differs per path: ALB (1), CloudFront + ALB (2), API Gateway + NLB (its own).
  The gateways' Services are ClusterIP: the load balancers are Pulumi-managed and reach the gateway pods
  through TargetGroupBindings (IP targets), never through a controller-made load balancer.
- The gateways call the limiter (components/limiter.py) for every request through Envoy's ext_authz
  (HTTP), configured as an `envoyExtAuthzHttp` extension provider in istiod's meshConfig plus a CUSTOM
  AuthorizationPolicy per gateway. mTLS is STRICT mesh-wide.
- Each gateway has exactly one route table (one VirtualService): the health path first (web gateway),
  then the routes ordered longest path first, so overlapping prefixes (`/orders` and `/orders/v2`, a
  catch-all `/`) never depend on the order in which Istio merges several VirtualServices.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import manifests
from components.limiter import LIMITER_HOST, LIMITER_PORT
from components.manifests import INGRESS_NAMESPACE, ISTIO_NAMESPACE, spread_constraints

ISTIO_REPOSITORY = "https://istio-release.storage.googleapis.com/charts"
# security.istio.io/v1 and networking.istio.io/v1 (used below) are served from Istio 1.22 on.
MIN_ISTIO_VERSION = (1, 22)

EXT_AUTHZ_PROVIDER = "ratelimit-ext-authz"
EXT_AUTHZ_PATH_PREFIX = "/authz"

# The gateway pods' readiness port; the load balancers health-check it (HTTP /healthz/ready).
GATEWAY_STATUS_PORT = 15021
# Where the gateway pods serve Prometheus metrics (the pod annotations below say the same).
GATEWAY_METRICS_PORT = 15020
GATEWAY_METRICS_PATH = "/stats/prometheus"
# Ports the sidecar/gateway proxies use themselves; a traffic port must not collide with them.
ISTIO_RESERVED_PORTS = frozenset(
    {15000, 15001, 15004, 15006, 15008, 15009, 15010, 15012, 15014, 15017, 15020, 15021, 15053, 15090}
)

# Headers the limiter needs besides the four Envoy always sends (Authorization, method, path, Host): the
# client address Envoy derived with numTrustedProxies, the raw chain, and the usual API key.
BASE_CHECK_HEADERS = ("x-envoy-external-address", "x-forwarded-for", "x-api-key")
# What a denied client sees from the limiter's 429, and the RateLimit fields also on allow.
DOWNSTREAM_ON_DENY = ("content-type", "retry-after", "ratelimit", "ratelimit-policy")
DOWNSTREAM_ON_ALLOW = ("ratelimit", "ratelimit-policy")

# Hops of X-Forwarded-For to trust on the API path: a REGIONAL API Gateway appends the caller's address;
# the VPC link and the internal NLB (TCP) add none.
API_GATEWAY_TRUSTED_PROXIES = 1
# On the web path the ALB appends the client's address, and CloudFront (when on) the viewer's before it.
ALB_TRUSTED_PROXIES = 1
CLOUDFRONT_AND_ALB_TRUSTED_PROXIES = 2

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
class Route:
    """One path prefix routed on every gateway to a Service in the cluster."""

    name: str
    """The route's name (a DNS label; the service's name)."""
    path_prefix: str
    """Matched on whole path segments: /orders matches /orders and /orders/..., never /orders-admin."""
    host: str
    """The destination Service's cluster DNS name."""
    port: int
    """The destination Service's port."""


@dataclass(frozen=True)
class MeshArgs:
    """Inputs of the mesh layer of one region."""

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
    rate_limit_rules: Sequence[Mapping[str, Any]]
    """The limiter's rules: every header a rule keys on is sent to the limiter with each check."""
    istio_chart_version: str
    """Version of the Istio Helm charts (base, istiod, gateway); 1.22 or later."""
    ext_authz_fail_open: bool
    """Let requests through when the gateway cannot get a decision from the limiter at all."""
    ext_authz_timeout_ms: int
    """How long the gateway waits for the limiter's decision."""
    routes: Sequence[Route] = ()
    """Path prefixes routed on both gateways (see `components.services.routes_for`)."""
    node_groups: Sequence[pulumi.Resource] = ()
    """The region's managed node groups: every Helm release (and so every pod) waits for them."""
    health_check_paths: Sequence[str] = ("/healthz/ready",)
    """Health-check paths (the edge's Route 53 check through the ALB): the web gateway answers them itself
    with 200, no gateway asks the limiter about them, and no route may claim them."""
    gateway_scaling: GatewayScaling = field(default_factory=GatewayScaling)
    """Replica bounds of each ingress gateway."""
    api_stage_path_prefix: str | None = None
    """The segment API Gateway puts before every path on the API entry (its stage, e.g. "/apigw"): the API
    gateway's routes strip it."""


class Mesh(pulumi.ComponentResource):
    """Istio with two ingress gateways, ext_authz to the rate limiter, STRICT mTLS and one route table per gateway."""

    istiod: pulumi.Resource
    gateway_principals: list[str]

    def __init__(self, name: str, args: MeshArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("ratelimited:index:Mesh", name, None, opts)
        self._name = name
        self._args = args

        namespaces = self._create_namespaces()
        self.istiod = self._create_istio(namespaces)
        self._create_mesh_security()

        ingress = namespaces[INGRESS_NAMESPACE]
        self._create_gateway(
            "web", args.web_trusted_proxies, args.web_target_group_arn, list(args.web_lb_security_group_ids), ingress
        )
        kinds = ["web"]
        if args.api_target_group_arn is not None:
            self._create_gateway(
                "api", args.api_trusted_proxies, args.api_target_group_arn, [args.api_lb_security_group_id], ingress
            )
            kinds.append("api")
        self.gateway_principals = [gateway_principal(k) for k in sorted(kinds)]

        self.register_outputs({"gatewayPrincipals": self.gateway_principals})

    # -- helpers ---------------------------------------------------------------------------------
    def _opts(self, *, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))

    def _create_namespaces(self) -> dict[str, k8s.core.v1.Namespace]:
        extra = {
            ISTIO_NAMESPACE: {},
            # The load balancer controller holds a new gateway pod unready until the target group has
            # registered it, so a rollout never leaves the ALB without healthy targets.
            INGRESS_NAMESPACE: {"istio-injection": "enabled", "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"},
        }
        return {
            ns: manifests.namespace(f"{self._name}-ns-{ns}", ns, labels, self._opts()) for ns, labels in extra.items()
        }

    # -- Istio control plane --------------------------------------------------------------------------
    def _create_istio(self, namespaces: Mapping[str, pulumi.Resource]) -> pulumi.Resource:
        """`base` (CRDs, default revision), then `istiod`; everything Istio-related then depends on istiod."""
        args = self._args
        nodes = list(args.node_groups)
        repo = k8s.helm.v3.RepositoryOptsArgs(repo=ISTIO_REPOSITORY)
        base = k8s.helm.v3.Release(
            f"{self._name}-istio-base",
            name="istio-base",
            chart="base",
            version=args.istio_chart_version,
            repository_opts=repo,
            namespace=ISTIO_NAMESPACE,
            values={"defaultRevision": "default"},
            opts=self._opts(depends_on=[namespaces[ISTIO_NAMESPACE], *nodes]),
        )
        return k8s.helm.v3.Release(
            f"{self._name}-istiod",
            name="istiod",
            chart="istiod",
            version=args.istio_chart_version,
            repository_opts=repo,
            namespace=ISTIO_NAMESPACE,
            values=istiod_values(args),
            # The CRDs and the default revision's webhook come from `base`; its pods need nodes.
            opts=self._opts(depends_on=[base, *nodes]),
        )

    def _create_mesh_security(self) -> None:
        # Mesh-wide (the root namespace): every workload with a sidecar accepts only mutual TLS.
        k8s.apiextensions.CustomResource(
            f"{self._name}-mtls-strict",
            api_version="security.istio.io/v1",
            kind="PeerAuthentication",
            metadata={"name": "default", "namespace": ISTIO_NAMESPACE, "labels": manifests.labels("istio")},
            spec={"mtls": {"mode": "STRICT"}},
            opts=self._opts(depends_on=[self.istiod]),
        )

    # -- ingress gateways ----------------------------------------------------------------------------
    def _create_gateway(
        self,
        kind: str,
        trusted_proxies: int,
        target_group_arn: pulumi.Input[str],
        lb_security_group_ids: list[pulumi.Input[str]],
        namespace: pulumi.Resource,
    ) -> pulumi.Resource:
        """The gateway's Helm release and the objects around it, all in the istio-ingress namespace."""
        args = self._args
        istiod = self.istiod
        service = gateway_service_name(kind)
        selector = gateway_selector(kind)
        labels = manifests.labels(service)
        release = k8s.helm.v3.Release(
            f"{self._name}-gateway-{kind}",
            name=service,
            chart="gateway",
            version=args.istio_chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=ISTIO_REPOSITORY),
            namespace=INGRESS_NAMESPACE,
            values=gateway_values(kind, trusted_proxies, args.web_traffic_port, args.gateway_scaling),
            # Gateway pods are injected by istiod's webhook ("gateway" template), and need nodes.
            opts=self._opts(depends_on=[istiod, namespace, *args.node_groups]),
        )
        # Binds the gateway's port to the Service port the load balancer targets; TLS ended at the ALB.
        k8s.apiextensions.CustomResource(
            f"{self._name}-gateway-{kind}-binding",
            api_version="networking.istio.io/v1",
            kind="Gateway",
            metadata={"name": kind, "namespace": INGRESS_NAMESPACE, "labels": labels},
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
        # The gateway's one route table (see route_table).
        k8s.apiextensions.CustomResource(
            f"{self._name}-gateway-{kind}-routes",
            api_version="networking.istio.io/v1",
            kind="VirtualService",
            metadata={"name": f"{kind}-routes", "namespace": INGRESS_NAMESPACE, "labels": labels},
            spec={
                "hosts": ["*"],
                "gateways": [kind],
                "http": route_table(
                    kind,
                    args.routes,
                    health_check_paths=args.health_check_paths,
                    api_stage_path_prefix=args.api_stage_path_prefix,
                ),
            },
            opts=self._opts(depends_on=[istiod, release]),
        )
        # Every request through this gateway asks the limiter first, except the health checks.
        k8s.apiextensions.CustomResource(
            f"{self._name}-gateway-{kind}-ratelimit",
            api_version="security.istio.io/v1",
            kind="AuthorizationPolicy",
            metadata={"name": f"{kind}-ratelimit", "namespace": INGRESS_NAMESPACE, "labels": labels},
            spec={
                "selector": {"matchLabels": selector},
                "action": "CUSTOM",
                "provider": {"name": EXT_AUTHZ_PROVIDER},
                # A CUSTOM policy without rules never matches; this rule matches every request but health checks.
                "rules": [{"to": [{"operation": {"notPaths": list(args.health_check_paths)}}]}],
            },
            opts=self._opts(depends_on=[istiod, namespace]),
        )
        ports = [{"protocol": "TCP", "port": args.web_traffic_port}, {"protocol": "TCP", "port": GATEWAY_STATUS_PORT}]
        k8s.apiextensions.CustomResource(
            f"{self._name}-gateway-{kind}-tgb",
            api_version="elbv2.k8s.aws/v1beta1",
            kind="TargetGroupBinding",
            metadata={"name": service, "namespace": INGRESS_NAMESPACE, "labels": labels},
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


def route_table(
    kind: str,
    routes: Sequence[Route],
    *,
    health_check_paths: Sequence[str] = (),
    api_stage_path_prefix: str | None = None,
) -> list[dict[str, Any]]:
    """The `http` list of one gateway's VirtualService.

    Istio tries the entries in order and takes the first match. The web gateway answers the health paths
    itself first (Route 53 checks each region through its ALB: a 200 means ALB and gateway serve). Then
    every route's matches, longest path first, so /orders/v2 wins over /orders and a catch-all / comes
    last, whatever the order of the config. On the API gateway, API Gateway's private integration may
    put the stage before the path: /<stage>/orders[/...] is routed to the orders service as
    /orders[/...] too.
    """
    entries: list[tuple[int, dict[str, Any]]] = []
    for route in routes:
        destination = [{"destination": {"host": route.host, "port": {"number": route.port}}}]
        base = route.path_prefix.rstrip("/")
        if kind == "api" and api_stage_path_prefix:
            stage = api_stage_path_prefix
            if base:
                entries.append(
                    (
                        len(f"{stage}{base}"),
                        {
                            "name": f"{route.name}-api-stage-exact",
                            "match": [{"uri": {"exact": f"{stage}{base}"}}],
                            "rewrite": {"uri": base},
                            "route": destination,
                        },
                    )
                )
            entries.append(
                (
                    len(f"{stage}{base}/"),
                    {
                        "name": f"{route.name}-api-stage",
                        "match": [{"uri": {"prefix": f"{stage}{base}/"}}],
                        "rewrite": {"uri": f"{base}/"},
                        "route": destination,
                    },
                )
            )
        entries.append(
            (len(base) + 1, {"name": route.name, "match": route_matches(route.path_prefix), "route": destination})
        )
    # Longest first; sorted() is stable, so equal lengths keep the order they were built in.
    table = [entry for _, entry in sorted(entries, key=lambda e: -e[0])]
    if kind == "web" and health_check_paths:
        table.insert(
            0,
            {
                "name": "health",
                "match": [{"uri": {"exact": path}} for path in health_check_paths],
                "directResponse": {"status": 200, "body": {"string": "ok"}},
            },
        )
    return table


def path_clashes_with(path_prefix: str, path: str) -> bool:
    """True if a route on `path_prefix` would claim `path` or a path below it (the catch-all / excepted)."""
    base = path_prefix.rstrip("/")
    if not base:
        return False
    return path == base or path.startswith(base + "/") or base.startswith(path.rstrip("/") + "/")


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
            "prometheus.io/port": str(GATEWAY_METRICS_PORT),
            "prometheus.io/scrape": "true",
            "prometheus.io/path": GATEWAY_METRICS_PATH,
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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True would pass as port or hop count 1


def _validate(args: MeshArgs) -> None:
    if args.load_balancer_controller is None:
        raise ValueError("MeshArgs.load_balancer_controller must be the controller's Helm release.")
    if not args.web_lb_security_group_ids:
        raise ValueError("MeshArgs.web_lb_security_group_ids must list the ALB's security group(s).")
    port = args.web_traffic_port
    if not _is_int(port) or not 1 <= port <= 65535 or port in ISTIO_RESERVED_PORTS:
        raise ValueError(
            f"MeshArgs.web_traffic_port must be a port from 1 to 65535 that Istio does not use itself, not {port!r}."
        )
    for field_name in ("web_trusted_proxies", "api_trusted_proxies"):
        value = getattr(args, field_name)
        if not _is_int(value) or not 1 <= value <= 5:
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
    if not 10 <= args.ext_authz_timeout_ms <= 10_000:
        raise ValueError(f"MeshArgs.ext_authz_timeout_ms must be 10 to 10000, not {args.ext_authz_timeout_ms!r}.")
    s = args.gateway_scaling
    if not 1 <= s.min_replicas <= s.max_replicas or not 10 <= s.target_cpu_utilization <= 95:
        raise ValueError("MeshArgs.gateway_scaling needs 1 <= min_replicas <= max_replicas and a CPU target of 10-95.")
    for path in args.health_check_paths:
        if not path.startswith("/"):
            raise ValueError(f"MeshArgs.health_check_paths has {path!r}; each must start with '/'.")
    _validate_routes(args)


def _validate_routes(args: MeshArgs) -> None:
    names = [r.name for r in args.routes]
    if len(set(names)) != len(names):
        raise ValueError("MeshArgs.routes must have unique names.")
    seen: dict[str, str] = {}
    for r in args.routes:
        if not _DNS_LABEL_RE.match(r.name):
            raise ValueError(f"MeshArgs.routes name {r.name!r} must be a DNS label.")
        if not r.path_prefix.startswith("/"):
            raise ValueError(f"MeshArgs.routes '{r.name}' path_prefix must start with '/', not {r.path_prefix!r}.")
        base = r.path_prefix.rstrip("/") or "/"
        if base in seen:
            raise ValueError(
                f"MeshArgs.routes '{r.name}' path_prefix {r.path_prefix!r} is already routed to '{seen[base]}'."
            )
        seen[base] = r.name
        for path in args.health_check_paths:
            if path_clashes_with(r.path_prefix, path):
                raise ValueError(
                    f"MeshArgs.routes '{r.name}' path_prefix {r.path_prefix!r} clashes with the health-check path "
                    f"{path!r}, which the web gateway answers itself and the limiter never sees."
                )
    stage = args.api_stage_path_prefix
    if stage is not None:
        if not re.match(r"^/[A-Za-z0-9_-]+$", stage):
            raise ValueError(f"MeshArgs.api_stage_path_prefix must be one path segment like '/apigw', not {stage!r}.")
        clash = [r.name for r in args.routes if (r.path_prefix.rstrip("/") + "/").startswith(stage + "/")]
        if clash:
            raise ValueError(
                f"MeshArgs.routes {clash} route under {stage!r}, the API stage segment the API gateway strips."
            )
