"""Mermaid diagrams of a recorded stack: the request path (default) and the dependency view.

The request path follows a request from DNS to the tables, found in the record by type token and
Kubernetes kind, never by module layout or resource name:

    Route 53 alias records -> CloudFront (+ its web ACL) -> origin records -> regional web ACL
    -> load balancer -> (listeners, target groups, TargetGroupBinding) -> Istio gateway
    -> ext_authz -> limiter Deployment -> its tables; gateway -> VirtualService routes -> service
    Deployments -> their tables (through their IRSA role policies); and
    Route 53 -> API Gateway custom domain -> web ACL -> stage -> VPC link -> NLB -> gateway.

Regions are subgraphs named by the region; global resources stand outside them. Labels carry the
real logical names. `fenced()` wraps a diagram for Markdown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tools.preview_report import COMPONENT_PREFIX, UNKNOWN, placement

Resource = Mapping[str, Any]

RECORD = "aws:route53/record:Record"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
LISTENER_RULES = ("aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule")
API_DOMAIN = "aws:apigateway/domainName:DomainName"
API_STAGE = "aws:apigateway/stage:Stage"
API_INTEGRATION = "aws:apigateway/integration:Integration"
VPC_LINKS = ("aws:apigatewayv2/vpcLink:VpcLink", "aws:apigateway/vpcLink:VpcLink")
TABLE = "aws:dynamodb/table:Table"
HELM = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
IAM_ROLE = "aws:iam/role:Role"

_LABELS = {
    DISTRIBUTION: "CloudFront",
    WEB_ACL: "WAF web ACL",
    API_DOMAIN: "API Gateway domain",
    API_STAGE: "API Gateway stage",
    TABLE: "DynamoDB table",
}


def fenced(diagram: str) -> str:
    """The diagram inside a ```mermaid fence, so that Markdown renders it."""
    return "```mermaid\n" + diagram.rstrip("\n") + "\n```\n"


def _kind(resource: Resource) -> str:
    """The Kubernetes kind of a kubernetes:<group>/<version>:<Kind> resource ("" otherwise)."""
    type_ = str(resource["type"])
    return type_.rsplit(":", 1)[-1] if type_.startswith("kubernetes:") else ""


def _meta(resource: Resource) -> tuple[str, str]:
    metadata = (resource.get("inputs") or {}).get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def _spec(resource: Resource) -> Mapping[str, Any]:
    spec = (resource.get("inputs") or {}).get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _default_label(resource: Resource) -> str:
    inputs = resource.get("inputs") or {}
    if resource["type"] in LOAD_BALANCERS:
        kind = "NLB" if inputs.get("loadBalancerType") == "network" else "ALB"
        kind = f"internal {kind}" if inputs.get("internal") is True else kind
        return f"{kind}<br/>{resource['name']}"
    if resource["type"] == WEB_ACL:
        scope = inputs.get("scope")
        scope_text = f" ({scope})" if isinstance(scope, str) and scope != UNKNOWN else ""
        return f"WAF web ACL{scope_text}<br/>{resource['name']}"
    return f"{_LABELS.get(resource['type'], resource['type'].rsplit(':', 1)[-1])}<br/>{resource['name']}"


def _label(text: str) -> str:
    return text.replace('"', "'")


class _Graph:
    def __init__(self, record: Mapping[str, Any]) -> None:
        self.resources: list[Resource] = list(record["resources"])
        self.by_urn = {r["urn"]: r for r in self.resources}
        self.places = placement(record)
        self.nodes: dict[str, tuple[str, str]] = {}  # key -> (label, region)
        self.order: list[str] = []
        self.edges: list[tuple[str, str, str]] = []

    # -- lookups ---------------------------------------------------------------------------

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources if r["type"] in types]

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if _kind(r) == kind]

    def deps(self, resource: Resource, prop: str | None = None, types: Iterable[str] = ()) -> list[Resource]:
        wanted = set(types)
        pds = resource.get("property_dependencies") or {}
        urns = pds.get(prop, []) if prop else [u for v in pds.values() for u in v]
        if prop is None:
            urns = [*urns, *(resource.get("dependencies") or [])]
        found = []
        for urn in dict.fromkeys(urns):
            other = self.by_urn.get(urn)
            if other is not None and (not wanted or other["type"] in wanted):
                found.append(other)
        return found

    def dependents(self, target: Resource, types: Iterable[str], prop: str | None = None) -> list[Resource]:
        return [r for r in self.of_type(*types) if any(d["urn"] == target["urn"] for d in self.deps(r, prop))]

    def region(self, resource: Resource) -> str:
        return self.places[resource["urn"]][0]

    # -- drawing ---------------------------------------------------------------------------

    def node(self, resource: Resource, label: str | None = None, key: str | None = None) -> str:
        key = key or resource["urn"]
        if key not in self.nodes:
            self.nodes[key] = (label or _default_label(resource), self.region(resource))
            self.order.append(key)
        return key

    def edge(self, source: str, target: str, label: str = "") -> None:
        if source != target and (source, target, label) not in self.edges:
            self.edges.append((source, target, label))


def request_path(record: Mapping[str, Any]) -> str:
    """A Mermaid flowchart of the request path (see the module docstring)."""
    g = _Graph(record)
    protector = _protectors(g)

    def enter(source: str, target: Resource, label: str = "") -> None:
        """source -> (the web ACL protecting target) -> target."""
        acl = protector.get(target["urn"])
        if acl is not None:
            # One node per protected entry: a web ACL shared by the ALB and the API stage would
            # otherwise draw a path from one entry to the other.
            waf = g.node(acl, key=f"{acl['urn']}|{target['urn']}")
            g.edge(source, waf, label)
            g.edge(waf, g.node(target))
        else:
            g.edge(source, g.node(target), label)

    # Route 53 alias records, one node per (DNS names, latency region, targets).
    record_nodes: dict[str, list[str]] = {}  # DNS name -> node keys
    groups: dict[tuple[tuple[str, ...], str], list[Resource]] = {}
    for record_ in g.of_type(RECORD):
        targets = tuple(sorted(d["urn"] for d in g.deps(record_, "aliases")))
        if not (record_.get("inputs") or {}).get("aliases"):
            continue
        latency = [p.get("region", "") for p in (record_["inputs"].get("latencyRoutingPolicies") or [])]
        groups.setdefault((targets, ",".join(map(str, latency))), []).append(record_)
    for (targets, latency), records in groups.items():
        names = sorted(
            {str(r["inputs"].get("name")) for r in records if r["inputs"].get("name") not in (None, UNKNOWN)}
        )
        text = "Route 53<br/>" + ", ".join(names) + (f"<br/>latency {latency}" if latency else "")
        key = g.node(records[0], text)
        for name in names:
            record_nodes.setdefault(name, []).append(key)
        for target in targets:
            enter(key, g.by_urn[target], "alias")
    # An alias to another record of the zone (e.g. <domain> -> the origin.<domain> latency set).
    for (targets, _), records in groups.items():
        if targets:
            continue
        source = records[0]["urn"]
        for record_ in records:
            for alias in record_["inputs"].get("aliases") or []:
                for key in record_nodes.get(str(alias.get("name")), []):
                    g.edge(source, key, "alias")

    for distribution in g.of_type(DISTRIBUTION):
        g.node(distribution)
        for origin in (distribution.get("inputs") or {}).get("origins") or []:
            for key in record_nodes.get(str(origin.get("domainName")), []):
                g.edge(distribution["urn"], key, "origin")

    gateways = _gateways(g)
    # Load balancers -> listeners (and rules) -> target groups -> TargetGroupBinding -> gateway.
    for lb in g.of_type(*LOAD_BALANCERS):
        g.node(lb)
        groups_ = set()
        for listener in g.dependents(lb, LISTENERS, "loadBalancerArn"):
            groups_.update(d["urn"] for d in g.deps(listener, "defaultActions"))
            for rule in g.dependents(listener, LISTENER_RULES, "listenerArn"):
                groups_.update(d["urn"] for d in g.deps(rule, "actions"))
        for binding in g.of_kind("TargetGroupBinding"):
            if any(d["urn"] in groups_ for d in g.deps(binding, "spec")):
                gateway = gateways.get(binding["urn"])
                if gateway is not None:
                    g.edge(lb["urn"], g.node(gateway, f"Istio gateway<br/>{_gateway_name(gateway)}"), "target group")

    # API Gateway: custom domain -> stage (through the base path mapping) -> VPC link -> NLB.
    for domain in g.of_type(API_DOMAIN):
        g.node(domain)
        for mapping in g.dependents(domain, ("aws:apigateway/basePathMapping:BasePathMapping",), "domainName"):
            for stage in g.deps(mapping, "stageName", (API_STAGE,)):
                enter(domain["urn"], stage)
    for stage in g.of_type(API_STAGE):
        apis = {d["urn"] for d in g.deps(stage, "restApi")}
        for integration in g.of_type(API_INTEGRATION):
            if not apis & {d["urn"] for d in g.deps(integration, "restApi")}:
                continue
            for link in g.deps(integration, "connectionId", VPC_LINKS):
                g.edge(g.node(stage), g.node(link, f"VPC link<br/>{link['name']}"), "integration")
                for lb in g.deps(integration, "integrationTarget", LOAD_BALANCERS):
                    g.edge(link["urn"], g.node(lb))

    # Gateway -> limiter (ext_authz) and -> services (routes); workloads -> their tables.
    for gateway, (selector, refs) in _gateway_objects(g, gateways).items():
        key = g.node(g.by_urn[gateway], f"Istio gateway<br/>{_gateway_name(g.by_urn[gateway])}")
        region = g.region(g.by_urn[gateway])
        for deployment in _ext_authz_targets(g, selector, region):
            g.edge(key, g.node(deployment, f"limiter<br/>{deployment['name']}"), "ext_authz")
        for deployment in _routed(g, refs, region):
            g.edge(key, g.node(deployment, f"service<br/>{deployment['name']}"), "route")
    for key in list(g.order):
        resource = g.by_urn.get(key)
        if resource is not None and _kind(resource) == "Deployment":
            for table in _tables_of(g, resource):
                g.edge(key, g.node(table), "")

    return _render(g)


def _protectors(g: _Graph) -> dict[str, Resource]:
    """Protected resource URN -> the web ACL in front of it (association or CloudFront webAclId)."""
    found: dict[str, Resource] = {}
    for association in g.of_type(ASSOCIATION):
        acls = g.deps(association, "webAclArn", (WEB_ACL,))
        for target in g.deps(association, "resourceArn"):
            if acls:
                found[target["urn"]] = acls[0]
    for distribution in g.of_type(DISTRIBUTION):
        acls = g.deps(distribution, "webAclId", (WEB_ACL,))
        if acls:
            found[distribution["urn"]] = acls[0]
    return found


def _gateway_name(release: Resource) -> str:
    name = (release.get("inputs") or {}).get("name")
    return f"{name} ({release['name']})" if isinstance(name, str) and name != release["name"] else release["name"]


def _gateways(g: _Graph) -> dict[str, Resource]:
    """TargetGroupBinding URN -> the gateway it sends to: the Helm release named as its serviceRef."""
    found: dict[str, Resource] = {}
    for binding in g.of_kind("TargetGroupBinding"):
        releases = [r for r in g.of_type(*HELM) if g.region(r) == g.region(binding)]
        namespace, _ = _meta(binding)
        service = str((_spec(binding).get("serviceRef") or {}).get("name") or "")
        match = [
            r
            for r in releases
            if (r.get("inputs") or {}).get("name") == service
            and (r.get("inputs") or {}).get("namespace") in (namespace, None)
        ]
        match = match or [d for d in g.deps(binding) if d["type"] in HELM]
        if match:
            found[binding["urn"]] = match[0]
    return found


def _gateway_objects(g: _Graph, gateways: Mapping[str, Resource]) -> dict[str, tuple[dict[str, Any], set[str]]]:
    """Gateway release URN -> (its pods' selector, the 'namespace/name' of its Istio Gateway objects)."""
    found: dict[str, tuple[dict[str, Any], set[str]]] = {}
    for release in {r["urn"]: r for r in gateways.values()}.values():
        selector: dict[str, Any] = {}
        refs: set[str] = set()
        for obj in g.of_kind("Gateway"):
            if not str(obj["type"]).startswith("kubernetes:networking.istio.io/"):
                continue
            if any(d["urn"] == release["urn"] for d in g.deps(obj)):
                namespace, name = _meta(obj)
                selector.update(_spec(obj).get("selector") or {})
                refs.update({f"{namespace}/{name}", name})
        found[release["urn"]] = (selector, refs)
    return found


def _ext_authz_targets(g: _Graph, selector: Mapping[str, Any], region: str) -> list[Resource]:
    """Deployments behind the CUSTOM AuthorizationPolicies that select these gateway pods (same cluster)."""
    if not selector:
        return []
    providers = set()
    for policy in g.of_kind("AuthorizationPolicy"):
        if g.region(policy) != region:
            continue
        spec = _spec(policy)
        labels = (spec.get("selector") or {}).get("matchLabels") or {}
        if spec.get("action") == "CUSTOM" and labels and all(selector.get(k) == v for k, v in labels.items()):
            providers.add(str((spec.get("provider") or {}).get("name")))
    hosts = set()
    for release in g.of_type(*HELM):
        if g.region(release) != region:
            continue
        values = (release.get("inputs") or {}).get("values") or {}
        mesh = values.get("meshConfig") if isinstance(values, Mapping) else None
        for provider in (mesh or {}).get("extensionProviders") or []:
            if provider.get("name") in providers:
                for config in provider.values():
                    if isinstance(config, Mapping) and config.get("service"):
                        hosts.add(str(config["service"]))
    return [d for host in sorted(hosts) for d in _deployments_for_host(g, host, region)]


def _routed(g: _Graph, gateway_refs: set[str], region: str) -> list[Resource]:
    """Deployments behind the VirtualService routes bound to these Istio Gateway objects (same cluster)."""
    found: dict[str, Resource] = {}
    for service in g.of_kind("VirtualService"):
        if g.region(service) != region:
            continue
        namespace, _ = _meta(service)
        spec = _spec(service)
        for route in spec.get("http") or []:
            bound = list(spec.get("gateways") or [])
            for match in route.get("match") or []:
                bound += match.get("gateways") or []
            if not any(ref in gateway_refs or f"{namespace}/{ref}" in gateway_refs for ref in bound):
                continue
            for destination in route.get("route") or []:
                host = str((destination.get("destination") or {}).get("host") or "")
                for deployment in _deployments_for_host(g, host, region, namespace):
                    found[deployment["urn"]] = deployment
    return list(found.values())


def _deployments_for_host(g: _Graph, host: str, region: str, default_namespace: str = "") -> list[Resource]:
    """The Deployments behind a Kubernetes service host (name[.namespace[.svc...]]) in one region's cluster."""
    parts = host.split(".")
    name, namespace = parts[0], parts[1] if len(parts) > 1 else default_namespace
    found = []
    for service in g.of_kind("Service"):
        if not str(service["type"]).startswith("kubernetes:core/") or g.region(service) != region:
            continue
        s_namespace, s_name = _meta(service)
        if s_name != name or (namespace and s_namespace and s_namespace != namespace):
            continue
        selector = _spec(service).get("selector") or {}
        for deployment in g.of_kind("Deployment"):
            if g.region(deployment) != region:
                continue
            d_namespace, _ = _meta(deployment)
            labels = ((_spec(deployment).get("template") or {}).get("metadata") or {}).get("labels") or {}
            if d_namespace in (s_namespace, "") and selector and all(labels.get(k) == v for k, v in selector.items()):
                found.append(deployment)
    return found


def _tables_of(g: _Graph, deployment: Resource) -> list[Resource]:
    """Tables a workload uses: derived into its spec, or granted to its IRSA role's policies."""
    tables = {t["urn"]: t for t in g.deps(deployment, None, (TABLE,))}
    roles: list[Resource] = []
    for account in g.of_kind("ServiceAccount"):
        if g.region(account) != g.region(deployment):
            continue
        _, name = _meta(account)
        pod = (_spec(deployment).get("template") or {}).get("spec") or {}
        if (name and name == pod.get("serviceAccountName")) or account["urn"] in (deployment.get("dependencies") or []):
            roles += g.deps(account, None, (IAM_ROLE,))
    for role in roles:
        for policy in g.resources:
            if str(policy["type"]).startswith("aws:iam/") and any(
                d["urn"] == role["urn"] for d in g.deps(policy, "role")
            ):
                tables.update({t["urn"]: t for t in g.deps(policy, None, (TABLE,))})
    return list(tables.values())


def _render(g: _Graph) -> str:
    ids = {key: f"n{i}" for i, key in enumerate(g.order)}
    lines = ["flowchart LR"]
    regions = sorted({region for _, region in g.nodes.values()})
    for region in regions:
        members = [key for key in g.order if g.nodes[key][1] == region]
        indent = "  "
        if region != "global":
            lines.append(f'  subgraph {_slug(region)}["{_label(region)}"]')
            lines.append("    direction LR")
            indent = "    "
        for key in members:
            label, _ = g.nodes[key]
            shape = ('[("', '")]') if "DynamoDB table" in label else ('["', '"]')
            lines.append(f"{indent}{ids[key]}{shape[0]}{_label(label)}{shape[1]}")
        if region != "global":
            lines.append("  end")
    for source, target, label in g.edges:
        arrow = f" -->|{_label(label)}| " if label else " --> "
        lines.append(f"  {ids[source]}{arrow}{ids[target]}")
    return "\n".join(lines) + "\n"


def _slug(text: str) -> str:
    return "r_" + re.sub(r"[^A-Za-z0-9_]", "_", text)


# --- the dependency view -----------------------------------------------------------------

_MAIN_TYPES = {
    "aws:lb/loadBalancer:LoadBalancer": "ALB/NLB",
    "aws:alb/loadBalancer:LoadBalancer": "ALB",
    "aws:lb/listener:Listener": "listener",
    "aws:wafv2/webAcl:WebAcl": "WAF web ACL",
    "aws:wafv2/webAclAssociation:WebAclAssociation": "WAF association",
    "aws:cloudfront/distribution:Distribution": "CloudFront",
    "aws:apigateway/restApi:RestApi": "REST API",
    "aws:apigateway/stage:Stage": "API stage",
    "aws:dynamodb/table:Table": "DynamoDB table",
    "eks:index:Cluster": "EKS cluster",
    "eks:index:ManagedNodeGroup": "node group",
    "aws:eks/cluster:Cluster": "EKS cluster",
    "aws:ecr/repository:Repository": "ECR repository",
    "aws:route53/record:Record": "Route 53 record",
    "aws:route53/healthCheck:HealthCheck": "health check",
    "aws:s3/bucket:Bucket": "S3 bucket",
    "aws:s3/bucketV2:BucketV2": "S3 bucket",
    "aws:ec2/vpc:Vpc": "VPC",
    "aws:kms/key:Key": "KMS key",
    "kubernetes:helm.sh/v3:Release": "Helm release",
    "kubernetes:helm.sh/v4:Chart": "Helm chart",
    "docker-build:index:Image": "image",
}


def dependencies(record: Mapping[str, Any]) -> str:
    """The dependency view: regions, their components and main resources, property dependencies as edges."""
    resources = record["resources"]
    places = placement(record)
    ids = {r["urn"]: f"n{i}" for i, r in enumerate(resources)}
    shown = [r for r in resources if _is_main(r)]
    components = [r for r in resources if str(r["type"]).startswith(COMPONENT_PREFIX)]
    by_urn = {r["urn"]: r for r in resources}

    def owner(resource: Resource) -> str:
        current = by_urn.get(resource.get("parent") or "")
        while current is not None and not str(current["type"]).startswith(COMPONENT_PREFIX):
            current = by_urn.get(current.get("parent") or "")
        return current["urn"] if current is not None else ""

    lines = ["flowchart LR"]
    regions = sorted({places[r["urn"]][0] for r in [*components, *shown]})
    for region in regions:
        lines.append(f'  subgraph {_slug(region)}["{_label(region)}"]')
        for component in (c for c in components if places[c["urn"]][0] == region):
            layer = places[component["urn"]][1]
            lines.append(f'    subgraph {ids[component["urn"]]}["{_label(layer)}: {_label(component["name"])}"]')
            for resource in (r for r in shown if owner(r) == component["urn"]):
                kind = _MAIN_TYPES[resource["type"]]
                lines.append(f'      {ids[resource["urn"]]}["{_label(kind)}<br/>{_label(resource["name"])}"]')
            lines.append("    end")
        for resource in (r for r in shown if not owner(r) and places[r["urn"]][0] == region):
            kind = _MAIN_TYPES[resource["type"]]
            lines.append(f'    {ids[resource["urn"]]}["{_label(kind)}<br/>{_label(resource["name"])}"]')
        lines.append("  end")
    shown_urns = {r["urn"] for r in shown}
    edges: set[tuple[str, str, str]] = set()
    for resource in shown:
        for prop, urns in (resource.get("property_dependencies") or {}).items():
            for urn in urns:
                if urn in shown_urns and urn != resource["urn"]:
                    edges.add((ids[resource["urn"]], ids[urn], prop))
    for source, target, prop in sorted(edges):
        lines.append(f"  {source} -->|{_label(prop)}| {target}")
    return "\n".join(lines) + "\n"


def _is_main(resource: Resource) -> bool:
    """Main resources for the dependency view; of the DNS records, only those on the request path (aliases)."""
    if resource["type"] not in _MAIN_TYPES:
        return False
    if resource["type"] == RECORD:
        return bool((resource.get("inputs") or {}).get("aliases"))
    return True
