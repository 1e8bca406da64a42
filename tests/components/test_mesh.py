"""The mesh layer under mocks: Istio values, gateways, TargetGroupBindings, ext_authz, mTLS and route tables.

Most tests run the workloads program (tests/components/programs/mesh_region.py: the stack's config, plain
strings for the edge's ARNs and security groups, a stand-in load balancer controller release and node group)
in several variants; the `main_*` tests check the same things on the real `__main__.py` for dev and prod.
"""

from __future__ import annotations

import json

import pytest

from components import mesh as mesh_mod
from tests.components.programs.workload_helpers import (
    AUTHZ,
    RELEASE,
    TGB,
    component,
    config,
    helm_release,
    k8s,
    route_table,
)
from tools import stack_files
from tools.records import RecordedStack

WEB_TG = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0123456789abcdef"
API_TG = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api/fedcba9876543210"


def _lbc(stack: RecordedStack) -> dict:
    found = [r for r in stack.of_type(RELEASE) if r["inputs"]["chart"] == "aws-load-balancer-controller"]
    assert len(found) == 1
    return found[0]


def _trusted_proxies(release: dict) -> int:
    config = json.loads(release["inputs"]["values"]["podAnnotations"]["proxy.istio.io/config"])
    return config["gatewayTopology"]["numTrustedProxies"]


def _provider(stack: RecordedStack) -> dict:
    values = helm_release(stack, "istiod")["inputs"]["values"]
    # Apps (the limiter too) start only once their sidecar is ready: with STRICT mTLS and the egress
    # NetworkPolicies, a call made before the proxy runs would fail (e.g. the limiter's store warm-up).
    assert values["meshConfig"]["defaultConfig"]["holdApplicationUntilProxyStarts"] is True
    providers = values["meshConfig"]["extensionProviders"]
    assert len(providers) == 1
    return providers[0]


# -- Istio --------------------------------------------------------------------------------------------------
def test_istio_charts_come_from_the_official_repository_in_order(dev, runs):
    base, istiod = helm_release(dev, "base"), helm_release(dev, "istiod")
    for release in (base, istiod, helm_release(dev, "gateway", "istio-ingress-web")):
        assert release["inputs"]["repositoryOpts"]["repo"] == "https://istio-release.storage.googleapis.com/charts"
        assert release["inputs"]["version"] == "1.28.1"  # the project default, which every sample keeps
    # Another version in config reaches every Istio release (every sample keeps the default).
    other = runs["dev-fail-closed"]
    assert {
        r["inputs"]["version"] for r in other.of_type(RELEASE) if r["inputs"]["chart"] in ("base", "istiod", "gateway")
    } == {"1.27.3"}
    assert dev.depends_on(istiod, base)
    for gateway in dev.of_type(RELEASE):
        if gateway["inputs"]["chart"] == "gateway":
            assert dev.depends_on(gateway, istiod), "gateway pods are injected by istiod's webhook"


def test_istiod_ext_authz_provider_points_at_the_limiter_service(dev):
    service = k8s(dev, "kubernetes:core/v1:Service", "limiter")
    meta, port = service["inputs"]["metadata"], service["inputs"]["spec"]["ports"][0]
    http = _provider(dev)["envoyExtAuthzHttp"]
    assert http["service"] == f"{meta['name']}.{meta['namespace']}.svc.cluster.local"
    assert http["port"] == port["port"] == 8080 and port["name"] == "http"
    assert http["pathPrefix"] == "/authz"
    assert http["timeout"] == f"{config(dev, 'extAuthzTimeoutMs') / 1000:.3f}s"
    assert http["failOpen"] is config(dev, "extAuthzFailOpen")
    assert http["statusOnError"] == "503"
    assert http["includeRequestHeadersInCheck"] == ["x-envoy-external-address", "x-forwarded-for", "x-api-key"]
    assert set(http["headersToDownstreamOnDeny"]) == {"content-type", "retry-after", "ratelimit", "ratelimit-policy"}


def test_ext_authz_failure_mode_and_timeout_follow_config(runs):
    """The samples all keep the defaults (fail open, 200 ms): a variant turns both, so neither can be fixed."""
    default, closed = (
        _provider(runs["dev"])["envoyExtAuthzHttp"],
        _provider(runs["dev-fail-closed"])["envoyExtAuthzHttp"],
    )
    assert (default["failOpen"], default["timeout"]) == (True, "0.200s")
    assert (closed["failOpen"], closed["timeout"]) == (False, "0.350s")


def test_check_headers_include_every_header_a_rule_keys_on(runs):
    http = _provider(runs["dev-rules-changed"])["envoyExtAuthzHttp"]
    assert "x-tenant-id" in http["includeRequestHeadersInCheck"]
    headers = mesh_mod.check_headers([{"key": ["header:X-Api-Key", "header:x-user", "client_ip"]}])
    assert headers == ["x-envoy-external-address", "x-forwarded-for", "x-api-key", "x-user"]


def test_istiod_runs_highly_available(dev):
    values = helm_release(dev, "istiod")["inputs"]["values"]
    # Two from the start (replicaCount) and never fewer (autoscaleMin): one istiod pod is a single point of
    # failure for every sidecar's configuration and certificates.
    assert (values["autoscaleEnabled"], values["replicaCount"], values["autoscaleMin"], values["autoscaleMax"]) == (
        True,
        2,
        2,
        5,
    )
    assert values["global"]["defaultPodDisruptionBudget"]["enabled"] is True
    keys = {c["topologyKey"] for c in values["topologySpreadConstraints"]}
    assert "topology.kubernetes.io/zone" in keys


def test_the_mesh_logs_json_lines_to_stdout(dev):
    """Envoy's access logs and istiod's own logs are one JSON object per line on stdout: what `kubectl logs`
    shows, any node-level collector ships, and the runbook's `jq` filter on `response_code` reads."""
    values = helm_release(dev, "istiod")["inputs"]["values"]
    mesh = values["meshConfig"]
    assert (mesh["accessLogFile"], mesh["accessLogEncoding"]) == ("/dev/stdout", "JSON")
    assert values["global"]["logAsJson"] is True
    runbook = (stack_files.ROOT / "docs" / "runbook.md").read_text()
    command = f"kubectl -n {mesh_mod.INGRESS_NAMESPACE} logs deploy/{mesh_mod.gateway_service_name('web')} | jq"
    assert command in runbook


def test_mesh_wide_mtls_is_strict(dev):
    peer = k8s(dev, "kubernetes:security.istio.io/v1:PeerAuthentication", "default", "istio-system")
    assert peer["inputs"]["spec"] == {"mtls": {"mode": "STRICT"}}
    assert "selector" not in peer["inputs"]["spec"]


# -- gateways -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variant", "web", "api"),
    [("dev", 1, 1), ("dev-cloudfront-no-api", 2, None)],
)
def test_gateways_are_cluster_ip_with_their_own_trusted_proxies(runs, variant, web, api):
    stack = runs[variant]
    expected = {"istio-ingress-web": web, "istio-ingress-api": api}
    for name, proxies in expected.items():
        found = [r for r in stack.of_type(RELEASE) if r["inputs"].get("name") == name]
        if proxies is None:
            assert not found, f"{name} must not exist when API Gateway is off"
            continue
        (release,) = found
        values = release["inputs"]["values"]
        assert release["inputs"]["chart"] == "gateway" and release["inputs"]["namespace"] == "istio-ingress"
        assert values["service"]["type"] == "ClusterIP"
        assert _trusted_proxies(release) == proxies
        assert values["autoscaling"]["enabled"] and values["autoscaling"]["minReplicas"] >= 2
        assert values["podDisruptionBudget"] == {"maxUnavailable": 1}
        assert {15021, 80} == {p["port"] for p in values["service"]["ports"]}


def test_istio_gateway_binds_the_traffic_port_for_the_gateway_pods(dev):
    for kind in ("web", "api"):
        gateway = k8s(dev, "kubernetes:networking.istio.io/v1:Gateway", kind, "istio-ingress")
        release = helm_release(dev, "gateway", f"istio-ingress-{kind}")
        labels = release["inputs"]["values"]["labels"]
        spec = gateway["inputs"]["spec"]
        assert spec["selector"].items() <= labels.items()
        assert [s["port"] for s in spec["servers"]] == [{"number": 80, "name": "http", "protocol": "HTTP"}]


def test_each_gateway_has_a_custom_authorization_policy_with_the_provider(dev):
    provider = _provider(dev)["name"]
    policies = {r["inputs"]["metadata"]["name"]: r["inputs"]["spec"] for r in dev.of_type(AUTHZ)}
    for kind in ("web", "api"):
        spec = policies[f"{kind}-ratelimit"]
        labels = helm_release(dev, "gateway", f"istio-ingress-{kind}")["inputs"]["values"]["labels"]
        assert spec["action"] == "CUSTOM" and spec["provider"] == {"name": provider}
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        assert spec["rules"], "a CUSTOM policy without rules never matches"
        (rule,) = spec["rules"]
        assert set(rule) == {"to"} and rule["to"][0]["operation"]["notPaths"] == ["/healthz/ready"]


def test_web_gateway_answers_the_health_path_itself_before_any_route(dev):
    health, *_ = route_table(dev, "web")
    assert health["match"] == [{"uri": {"exact": "/healthz/ready"}}]
    assert health["directResponse"]["status"] == 200
    assert all(e["name"] != "health" for e in route_table(dev, "api")), "only the ALB health-checks the mesh"


def test_each_gateway_has_exactly_one_route_table(runs):
    for variant, kinds in (("dev", {"web", "api"}), ("dev-cloudfront-no-api", {"web"})):
        stack = runs[variant]
        tables = stack.of_type("kubernetes:networking.istio.io/v1:VirtualService")
        by_gateway = {}
        for table in tables:
            spec = table["inputs"]["spec"]
            assert spec["hosts"] == ["*"]
            (gateway,) = spec["gateways"]
            assert gateway not in by_gateway, f"two VirtualServices on gateway {gateway}: Istio's merge order decides"
            by_gateway[gateway] = table
        assert set(by_gateway) == kinds
        for kind, table in by_gateway.items():
            assert table["inputs"]["metadata"] == {**table["inputs"]["metadata"], "namespace": "istio-ingress"}
            assert table["inputs"]["metadata"]["name"] == f"{kind}-routes"


def test_target_group_bindings_name_the_right_target_groups_and_wait_for_the_controller(dev):
    lbc = _lbc(dev)
    bindings = {r["inputs"]["metadata"]["name"]: r for r in dev.of_type(TGB)}
    assert set(bindings) == {"istio-ingress-web", "istio-ingress-api"}
    expected = {
        "istio-ingress-web": (WEB_TG, {"sg-0alb00000000000a", "sg-0alb00000000000b"}),
        "istio-ingress-api": (API_TG, {"sg-0nlb00000000000a"}),
    }
    for name, (arn, groups) in expected.items():
        binding = bindings[name]
        spec = binding["inputs"]["spec"]
        assert spec["targetGroupARN"] == arn and spec["targetType"] == "ip"
        assert spec["serviceRef"] == {"name": name, "port": 80}
        (rule,) = spec["networking"]["ingress"]
        assert {p["securityGroup"]["groupID"] for p in rule["from"]} == groups
        assert {(p["protocol"], p["port"]) for p in rule["ports"]} == {("TCP", 80), ("TCP", 15021)}
        assert lbc["urn"] in binding["dependencies"], "webhooks on create, finalizer on delete"
        assert dev.depends_on(binding, helm_release(dev, "gateway", name))


# -- route tables --------------------------------------------------------------------------------------------
def test_routes_match_whole_path_segments():
    assert mesh_mod.route_matches("/orders/") == [{"uri": {"exact": "/orders"}}, {"uri": {"prefix": "/orders/"}}]
    assert mesh_mod.route_matches("/") == [{"uri": {"prefix": "/"}}]


def _route(name: str, prefix: str) -> mesh_mod.Route:
    return mesh_mod.Route(name, prefix, f"{name}.apps.svc.cluster.local", 8080)


@pytest.mark.parametrize(
    "order",
    [["root", "orders", "orders-v2", "catalog"], ["orders-v2", "catalog", "root", "orders"]],
)
def test_route_table_tries_the_longest_path_first_whatever_the_config_order(order):
    """/orders/v2 must win over /orders and a catch-all / must come last, in any config order."""
    prefixes = {"root": "/", "orders": "/orders", "orders-v2": "/orders/v2", "catalog": "/catalog"}
    routes = [_route(n, prefixes[n]) for n in order]
    web = mesh_mod.route_table("web", routes, health_check_paths=["/healthz/ready"])
    assert [e["name"] for e in web] == ["health", "orders-v2", "catalog", "orders", "root"]

    # The first entry that matches a path is the one Envoy takes: check what each path reaches.
    def first_match(table, path):
        for entry in table:
            for m in entry["match"]:
                uri = m["uri"]
                if uri.get("exact") == path or ("prefix" in uri and path.startswith(uri["prefix"])):
                    return entry["name"]
        return None

    assert first_match(web, "/orders/v2/items") == "orders-v2"
    assert first_match(web, "/orders/v2") == "orders-v2"
    assert first_match(web, "/orders/1") == "orders"
    assert first_match(web, "/orders-admin") == "root"
    assert first_match(web, "/healthz/ready") == "health"
    api = mesh_mod.route_table("api", routes, health_check_paths=["/healthz/ready"], api_stage_path_prefix="/apigw")
    assert first_match(api, "/apigw/orders/v2/x") == "orders-v2-api-stage"
    assert first_match(api, "/apigw/orders/1") == "orders-api-stage"
    assert first_match(api, "/apigw/other") == "root-api-stage"
    assert first_match(api, "/healthz/ready") == "root"


def test_route_tables_of_the_program_are_ordered_longest_first(runs):
    stack = runs["dev-overlapping-routes"]
    web = [e["name"] for e in route_table(stack, "web")]
    assert web == ["health", "orders-v2", "catalog", "orders", "home"]


def test_resources_use_the_regional_and_cluster_providers(dev):
    checked = 0
    for layer in ("Mesh", "Limiter", "Services"):
        top = component(dev, layer)
        for resource in dev:
            if not dev.is_below(resource, top["name"]) or not resource["custom"]:
                continue
            package = resource["type"].split(":")[0]
            expected = {"aws": "aws-eu-west-1", "kubernetes": "eu-west-1-k8s"}.get(package)
            if expected:
                assert dev.provider_name(resource, package) == expected, resource["name"]
                checked += 1
    assert checked > 30


def test_every_release_with_pods_waits_for_the_node_groups(dev):
    nodes = dev.named("eu-west-1-nodes")
    releases = dev.of_type(RELEASE, under=component(dev, "Mesh")["name"])
    assert {r["inputs"]["chart"] for r in releases} == {"base", "istiod", "gateway"}
    for r in releases:
        assert nodes["urn"] in r["dependencies"], r["name"]


# -- argument validation ----------------------------------------------------------------------------------------
def _args(**changes) -> mesh_mod.MeshArgs:
    base = {
        "load_balancer_controller": object(), "web_target_group_arn": "tg",
        "web_lb_security_group_ids": ["sg-1"], "web_traffic_port": 8080, "web_trusted_proxies": 1,
        "api_target_group_arn": None, "api_lb_security_group_id": None, "api_trusted_proxies": 2,
        "rate_limit_rules": [{"name": "r", "key": ["client_ip"], "limit": 1, "window_seconds": 1}],
        "istio_chart_version": "1.28.1", "ext_authz_fail_open": True, "ext_authz_timeout_ms": 200,
        "routes": [_route("orders", "/orders")],
    }  # fmt: skip
    base.update(changes)
    return mesh_mod.MeshArgs(**base)


def test_valid_args_pass():
    mesh_mod._validate(_args())
    mesh_mod._validate(_args(routes=[_route("home", "/"), _route("orders", "/orders")]))


@pytest.mark.parametrize("port", [1, 80, 14999, 15022, 65535])
def test_every_port_istio_leaves_free_is_a_valid_traffic_port(port):
    mesh_mod._validate(_args(web_traffic_port=port))


@pytest.mark.parametrize("proxies", [1, 5])
def test_one_to_five_trusted_proxies_are_accepted(proxies):
    mesh_mod._validate(_args(web_trusted_proxies=proxies, api_trusted_proxies=proxies))


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"web_traffic_port": 15021}, "web_traffic_port"),
        ({"web_traffic_port": 15006}, "web_traffic_port"),
        ({"web_traffic_port": 0}, "web_traffic_port"),
        ({"web_traffic_port": 65536}, "web_traffic_port"),
        ({"web_traffic_port": "8080"}, "web_traffic_port"),
        ({"web_traffic_port": True}, "web_traffic_port"),
        ({"web_trusted_proxies": 0}, "web_trusted_proxies"),
        ({"web_trusted_proxies": 6}, "web_trusted_proxies"),
        ({"api_trusted_proxies": True}, "api_trusted_proxies"),
        ({"api_target_group_arn": "tg"}, "api_target_group_arn"),
        ({"istio_chart_version": "1.20.3"}, "istio_chart_version"),
        ({"web_lb_security_group_ids": []}, "web_lb_security_group_ids"),
        ({"rate_limit_rules": []}, "rate_limit_rules"),
        ({"routes": [_route("Orders", "/x")]}, "routes"),
        ({"routes": [_route("a", "/orders"), _route("b", "/orders/")]}, "routes"),
        ({"routes": [_route("a", "/healthz")]}, "routes"),
        ({"routes": [_route("a", "/healthz/ready")]}, "routes"),
        ({"routes": [_route("a", "/healthz/ready/deep")]}, "routes"),
        ({"api_stage_path_prefix": "apigw"}, "api_stage_path_prefix"),
        ({"api_stage_path_prefix": "/apigw", "routes": [_route("x", "/apigw/x")]}, "routes"),
    ],
)
def test_invalid_args_fail_naming_the_input(changes, named):
    with pytest.raises(ValueError, match=rf"MeshArgs\.{named}"):
        mesh_mod._validate(_args(**changes))


def test_a_route_on_the_health_path_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="clashes with the health-check path '/healthz/ready'"):
        mesh_mod._validate(_args(routes=[_route("probe", "/healthz")]))


# -- the real program --------------------------------------------------------------------------------------------
@pytest.fixture(params=["dev", "prod"])
def main_stack(request) -> RecordedStack:
    return request.getfixturevalue(f"{request.param}_stack")


def test_main_wires_a_mesh_per_region_with_its_edges_target_groups(main_stack):
    regions = config(main_stack, "regions")
    meshes = main_stack.of_type("ratelimited:index:Mesh")
    assert len(meshes) == len(regions)
    target_groups = {r["outputs"]["arn"] for r in main_stack.of_type("aws:lb/targetGroup:TargetGroup")}
    bindings = main_stack.of_type(TGB)
    assert bindings and {b["inputs"]["spec"]["targetGroupARN"] for b in bindings} <= target_groups
    lbcs = {r["urn"] for r in main_stack.of_type(RELEASE) if r["inputs"]["chart"] == "aws-load-balancer-controller"}
    for binding in bindings:
        assert lbcs & set(binding["dependencies"])


def test_main_trusted_proxies_follow_cloudfront(main_stack):
    expected = 2 if config(main_stack, "cloudfrontEnabled") else 1
    web = [r for r in main_stack.of_type(RELEASE) if r["inputs"].get("name") == "istio-ingress-web"]
    assert web and all(_trusted_proxies(r) == expected for r in web)
    api = [r for r in main_stack.of_type(RELEASE) if r["inputs"].get("name") == "istio-ingress-api"]
    assert len(api) == (len(web) if config(main_stack, "apiGatewayEnabled") else 0)
    assert all(_trusted_proxies(r) == 1 for r in api), "a REGIONAL API Gateway adds one X-Forwarded-For hop"


def test_main_routes_every_microservice_on_every_gateway_in_every_region(main_stack):
    services = config(main_stack, "microservices")
    assert services
    for mesh in main_stack.of_type("ratelimited:index:Mesh"):
        kinds = ["web", "api"] if config(main_stack, "apiGatewayEnabled") else ["web"]
        for kind in kinds:
            table = route_table(main_stack, kind, under=mesh["name"])
            for svc in services:
                (entry,) = [e for e in table if e["name"] == svc["name"]]
                base = svc["pathPrefix"].rstrip("/")
                assert entry["match"] == [{"uri": {"exact": base}}, {"uri": {"prefix": f"{base}/"}}]
                assert entry["route"] == [
                    {"destination": {"host": f"{svc['name']}.apps.svc.cluster.local", "port": {"number": svc["port"]}}}
                ]


def test_main_istio_waits_for_the_regions_node_groups(main_stack):
    """istiod, the gateways (and so their pods) wait for that region's managed node groups."""
    for mesh in main_stack.of_type("ratelimited:index:Mesh"):
        region = mesh["name"].removesuffix("-mesh")
        groups = {g["urn"] for g in main_stack.of_type("eks:index:ManagedNodeGroup") if g["name"].startswith(region)}
        assert len(groups) == len(config(main_stack, "nodeGroups"))
        releases = main_stack.of_type(RELEASE, under=mesh["name"])
        assert {r["inputs"]["chart"] for r in releases} >= {"istiod", "gateway"}
        for r in releases:
            assert groups <= set(r["dependencies"]), r["name"]


def test_main_api_gateway_strips_the_stage_segment_before_routing(main_stack):
    stage = "/apigw"
    for mesh in main_stack.of_type("ratelimited:index:Mesh"):
        table = route_table(main_stack, "api", under=mesh["name"])
        for svc in config(main_stack, "microservices"):
            base = svc["pathPrefix"].rstrip("/")
            staged = [h for h in table if h["name"].startswith(f"{svc['name']}-api-stage")]
            assert sorted((json.dumps(h["match"]), h["rewrite"]["uri"]) for h in staged) == sorted(
                [
                    (json.dumps([{"uri": {"exact": f"{stage}{base}"}}]), base),
                    (json.dumps([{"uri": {"prefix": f"{stage}{base}/"}}]), f"{base}/"),
                ]
            )


def test_every_namespaced_object_waits_for_its_namespace(runs):
    """Helm releases and objects in a namespace the program creates must be created after it (and deleted
    before it): a missing dependency is a race on the first `pulumi up`."""
    stack = runs["dev"]
    namespaces = {r["inputs"]["metadata"]["name"]: r["urn"] for r in stack.of_type("kubernetes:core/v1:Namespace")}
    assert {"istio-system", "istio-ingress", "limiter", "apps"} <= set(namespaces)

    def depends_transitively(resource: dict, urn: str) -> bool:
        seen, todo = set(), [resource["urn"]]
        while todo:
            current = stack.by_urn[todo.pop()]
            deps = set(current["dependencies"]) | {u for us in current["property_dependencies"].values() for u in us}
            if urn in deps:
                return True
            todo += [d for d in deps - seen if d in stack.by_urn]
            seen |= deps
        return False

    checked = 0
    for resource in stack.of_type("kubernetes:*"):
        inputs = resource["inputs"]
        namespace = inputs.get("namespace") or (inputs.get("metadata") or {}).get("namespace")
        if namespace in namespaces:
            assert depends_transitively(resource, namespaces[namespace]), (resource["name"], namespace)
            checked += 1
    assert checked > 25
