"""The mesh layer under mocks: Istio values, gateways, TargetGroupBindings, the limiter and the microservices.

Most tests run the mesh program (tests/components/programs/mesh_region.py: the stack's config, plain
strings for the edge's ARNs and security groups, a stand-in load balancer controller release) in several
variants; the `main_*` tests check the same things on the real `__main__.py` for dev and prod once the mesh
is wired into it (they skip until then).
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import yaml

from components import mesh as mesh_mod
from components.specs import Microservice
from tests.components.programs.mesh_runs import CHANGED_RULES, mesh_runs
from tools.records import RecordedStack, is_unknown

TGB = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
RELEASE = "kubernetes:helm.sh/v3:Release"
AUTHZ = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
WEB_TG = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0123456789abcdef"
API_TG = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api/fedcba9876543210"


@pytest.fixture(scope="module")
def runs() -> dict[str, RecordedStack]:
    return mesh_runs()


@pytest.fixture(scope="module")
def dev(runs) -> RecordedStack:
    return runs["dev"]


def _config(stack: RecordedStack, key: str):
    value = stack.record["config"][f"{stack.record['project']}:{key}"]
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _k8s(stack: RecordedStack, typ: str, name: str, namespace: str | None = None) -> dict:
    found = [
        r
        for r in stack.of_type(typ)
        if r["inputs"]["metadata"]["name"] == name
        and (namespace is None or r["inputs"]["metadata"].get("namespace") == namespace)
    ]
    assert len(found) == 1, f"expected one {typ} {namespace}/{name}, found {len(found)}"
    return found[0]


def _release(stack: RecordedStack, chart: str, release_name: str | None = None) -> dict:
    found = [
        r
        for r in stack.of_type(RELEASE, under=_mesh(stack)["name"])
        if r["inputs"]["chart"] == chart and (release_name is None or r["inputs"].get("name") == release_name)
    ]
    assert len(found) == 1, f"expected one {chart} release {release_name or ''}, found {len(found)}"
    return found[0]


def _mesh(stack: RecordedStack) -> dict:
    meshes = stack.of_type("ratelimited:index:Mesh")
    assert meshes, "no Mesh component registered"
    return meshes[0]


def _lbc(stack: RecordedStack) -> dict:
    found = [r for r in stack.of_type(RELEASE) if r["inputs"]["chart"] == "aws-load-balancer-controller"]
    assert len(found) == 1
    return found[0]


def _trusted_proxies(release: dict) -> int:
    config = json.loads(release["inputs"]["values"]["podAnnotations"]["proxy.istio.io/config"])
    return config["gatewayTopology"]["numTrustedProxies"]


def _provider(stack: RecordedStack) -> dict:
    values = _release(stack, "istiod")["inputs"]["values"]
    providers = values["meshConfig"]["extensionProviders"]
    assert len(providers) == 1
    return providers[0]


# -- Istio --------------------------------------------------------------------------------------------------
def test_istio_charts_come_from_the_official_repository_in_order(dev):
    version = _config(dev, "istioChartVersion")
    base, istiod = _release(dev, "base"), _release(dev, "istiod")
    for release in (base, istiod, _release(dev, "gateway", "istio-ingress-web")):
        assert release["inputs"]["repositoryOpts"]["repo"] == "https://istio-release.storage.googleapis.com/charts"
        assert release["inputs"]["version"] == version
    assert dev.depends_on(istiod, base)
    for gateway in dev.of_type(RELEASE):
        if gateway["inputs"]["chart"] == "gateway":
            assert dev.depends_on(gateway, istiod), "gateway pods are injected by istiod's webhook"


def test_istiod_ext_authz_provider_points_at_the_limiter_service(dev):
    service = _k8s(dev, "kubernetes:core/v1:Service", "limiter")
    meta, port = service["inputs"]["metadata"], service["inputs"]["spec"]["ports"][0]
    http = _provider(dev)["envoyExtAuthzHttp"]
    assert http["service"] == f"{meta['name']}.{meta['namespace']}.svc.cluster.local"
    assert http["port"] == port["port"] == 8080 and port["name"] == "http"
    assert http["pathPrefix"] == "/authz"
    assert http["timeout"] == f"{_config(dev, 'extAuthzTimeoutMs') / 1000:.3f}s"
    assert http["failOpen"] is _config(dev, "extAuthzFailOpen")
    assert http["statusOnError"] == "503"
    assert {"x-envoy-external-address", "x-forwarded-for", "x-api-key"} <= set(http["includeRequestHeadersInCheck"])
    assert set(http["headersToDownstreamOnDeny"]) == {"content-type", "retry-after", "ratelimit", "ratelimit-policy"}


def test_check_headers_include_every_header_a_rule_keys_on(runs):
    http = _provider(runs["dev-rules-changed"])["envoyExtAuthzHttp"]
    assert "x-tenant-id" in http["includeRequestHeadersInCheck"]
    headers = mesh_mod.check_headers([{"key": ["header:X-Api-Key", "header:x-user", "client_ip"]}])
    assert headers == ["x-envoy-external-address", "x-forwarded-for", "x-api-key", "x-user"]


def test_istiod_runs_highly_available(dev):
    values = _release(dev, "istiod")["inputs"]["values"]
    assert values["autoscaleEnabled"] is True and values["autoscaleMin"] >= 2
    assert values["global"]["defaultPodDisruptionBudget"]["enabled"] is True
    keys = {c["topologyKey"] for c in values["topologySpreadConstraints"]}
    assert "topology.kubernetes.io/zone" in keys


def test_mesh_wide_mtls_is_strict(dev):
    peer = _k8s(dev, "kubernetes:security.istio.io/v1:PeerAuthentication", "default", "istio-system")
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
        gateway = _k8s(dev, "kubernetes:networking.istio.io/v1:Gateway", kind, "istio-ingress")
        release = _release(dev, "gateway", f"istio-ingress-{kind}")
        labels = release["inputs"]["values"]["labels"]
        spec = gateway["inputs"]["spec"]
        assert spec["selector"].items() <= labels.items()
        assert [s["port"] for s in spec["servers"]] == [{"number": 80, "name": "http", "protocol": "HTTP"}]


def test_each_gateway_has_a_custom_authorization_policy_with_the_provider(dev):
    provider = _provider(dev)["name"]
    policies = {r["inputs"]["metadata"]["name"]: r["inputs"]["spec"] for r in dev.of_type(AUTHZ)}
    for kind in ("web", "api"):
        spec = policies[f"{kind}-ratelimit"]
        labels = _release(dev, "gateway", f"istio-ingress-{kind}")["inputs"]["values"]["labels"]
        assert spec["action"] == "CUSTOM" and spec["provider"] == {"name": provider}
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        assert spec["rules"], "a CUSTOM policy without rules never matches"
        (rule,) = spec["rules"]
        assert set(rule) == {"to"} and rule["to"][0]["operation"]["notPaths"] == ["/healthz/ready"]


def test_web_gateway_answers_the_health_path_itself(dev):
    route = _k8s(dev, "kubernetes:networking.istio.io/v1:VirtualService", "web-health", "istio-ingress")
    spec = route["inputs"]["spec"]
    assert spec["gateways"] == ["web"]
    (http,) = spec["http"]
    assert http["match"] == [{"uri": {"exact": "/healthz/ready"}}]
    assert http["directResponse"]["status"] == 200


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
        assert dev.depends_on(binding, _release(dev, "gateway", name))


# -- the limiter ------------------------------------------------------------------------------------------------
def test_limiter_role_has_only_the_data_layer_policy_and_trusts_one_service_account(dev):
    mesh = _mesh(dev)
    roles = dev.of_type("aws:iam/role:Role", under=mesh["name"])
    assert len(roles) == 1
    role = roles[0]
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    conditions = statement["Condition"]["StringEquals"]
    assert "system:serviceaccount:limiter:limiter" in conditions.values()
    policies = [p for p in dev.of_type("aws:iam/rolePolicy:RolePolicy") if p["inputs"]["role"] == role["id"]]
    assert len(policies) == 1
    assert not dev.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment", under=mesh["name"])
    document = json.loads(policies[0]["inputs"]["policy"])
    resources = {s["Resource"] for s in document["Statement"]}
    assert resources == {f"arn:aws:dynamodb:eu-west-1:123456789012:table/{'eu-west-1'}-counters"}
    account = _k8s(dev, "kubernetes:core/v1:ServiceAccount", "limiter", "limiter")
    assert account["inputs"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role["outputs"]["arn"]


def test_limiter_image_is_built_from_the_sources_and_pushed_to_a_hardened_repository(dev):
    (repo,) = dev.of_type("aws:ecr/repository:Repository")
    inputs = repo["inputs"]
    assert inputs["imageTagMutability"] == "IMMUTABLE"
    assert inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert inputs["encryptionConfigurations"][0]["encryptionType"] == "KMS"
    assert inputs["forceDelete"] is False
    (lifecycle,) = dev.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    rules = json.loads(lifecycle["inputs"]["policy"])["rules"]
    assert {r["selection"]["tagStatus"] for r in rules} == {"untagged", "tagged"}
    assert lifecycle["inputs"]["repository"] == repo["outputs"]["name"]

    (image,) = dev.of_type("docker-build:index:Image")
    i = image["inputs"]
    assert i["push"] is True
    assert i["context"]["location"] == "limiter_service"
    assert i["dockerfile"]["location"] == "limiter_service/Dockerfile"
    assert i["platforms"] == ["linux/amd64"]  # dev nodes are t3/t3a
    url = repo["outputs"]["repositoryUrl"]
    assert i["registries"][0]["address"] == url
    # The tag is image_tag(source_digest(limiter_service/), platforms): see the next test.
    (tag,) = i["tags"]
    assert re.fullmatch(rf"{re.escape(url)}:src-[0-9a-f]{{20}}", tag)


def test_image_tag_follows_the_sources_and_platforms(tmp_path):
    (tmp_path / "app.py").write_text("print(1)\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    first = mesh_mod.source_digest(tmp_path)
    (tmp_path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\1")
    assert mesh_mod.source_digest(tmp_path) == first, "bytecode must not change the tag"
    (tmp_path / "app.py").write_text("print(2)\n")
    assert mesh_mod.source_digest(tmp_path) != first
    (tmp_path / ".dockerignore").write_text("**/__pycache__\n*.md\ndocs\n!docs/keep.txt\n")
    with_ignore = mesh_mod.source_digest(tmp_path)
    (tmp_path / "README.md").write_text("notes\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("a\n")
    assert mesh_mod.source_digest(tmp_path) == with_ignore, ".dockerignore'd files must not change the tag"
    (tmp_path / "docs" / "keep.txt").write_text("k\n")
    assert mesh_mod.source_digest(tmp_path) != with_ignore, "a negated pattern re-includes the file"
    assert mesh_mod.image_tag(first, ["linux/amd64"]) != mesh_mod.image_tag(first, ["linux/arm64"])
    assert mesh_mod.platforms_for_instance_types(["m7g.large", "t4g.small"]) == ("linux/arm64",)
    assert mesh_mod.platforms_for_instance_types(["m7i.large", "c7gn.xlarge"]) == ("linux/amd64", "linux/arm64")
    assert mesh_mod.platforms_for_instance_types(["t3.large", "m7a.xlarge"]) == ("linux/amd64",)


def test_limiter_deployment_uses_the_image_by_digest(dev):
    (repo,) = dev.of_type("aws:ecr/repository:Repository")
    (image,) = dev.of_type("docker-build:index:Image")
    deployment = _k8s(dev, DEPLOYMENT, "limiter", "limiter")
    (container,) = deployment["inputs"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{repo['outputs']['repositoryUrl']}@{image['outputs']['digest']}"
    assert container["image"].split("@")[1].startswith("sha256:")
    assert dev.depends_on(deployment, image)


def test_limiter_container_follows_the_limiter_contract(dev):
    deployment = _k8s(dev, DEPLOYMENT, "limiter", "limiter")
    pod = deployment["inputs"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] + container["args"] == [
        "python", "-m", "limiter_service", "--host", "0.0.0.0", "--port", "8080",
    ]  # fmt: skip
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["LIMITER_RULES_FILE"] == "/etc/limiter/rules.yaml"
    assert env["LIMITER_STORE"] == "dynamodb"
    assert env["LIMITER_TABLE"] == "eu-west-1-counters"
    assert env["AWS_REGION"] == "eu-west-1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/tmp"]]["emptyDir"] is not None
    assert volumes[mounts["/etc/limiter"]]["configMap"]["name"] == "limiter-rules"
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] and sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["serviceAccountName"] == "limiter" and pod["automountServiceAccountToken"] is False
    assert "topology.kubernetes.io/zone" in {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert "replicas" not in deployment["inputs"]["spec"], "the HPA owns the replica count"
    labels = deployment["inputs"]["spec"]["template"]["metadata"]["labels"]
    assert labels["sidecar.istio.io/inject"] == "true"
    assert dev.depends_on(deployment, _release(dev, "istiod")), "the sidecar injector must exist first"


def test_rules_configmap_and_checksum_roll_the_pods_when_rules_change(runs):
    checksums = {}
    for variant in ("dev", "dev-rules-changed"):
        stack = runs[variant]
        configmap = _k8s(stack, "kubernetes:core/v1:ConfigMap", "limiter-rules", "limiter")
        text = configmap["inputs"]["data"]["rules.yaml"]
        assert yaml.safe_load(text) == {"rules": _config(stack, "rateLimitRules")}
        deployment = _k8s(stack, DEPLOYMENT, "limiter", "limiter")
        annotations = deployment["inputs"]["spec"]["template"]["metadata"]["annotations"]
        checksums[variant] = annotations["checksum/rate-limit-rules"]
        assert checksums[variant] == hashlib.sha256(text.encode()).hexdigest()
    assert checksums["dev"] != checksums["dev-rules-changed"]
    assert yaml.safe_load(
        _k8s(runs["dev-rules-changed"], "kubernetes:core/v1:ConfigMap", "limiter-rules")["inputs"]["data"]["rules.yaml"]
    ) == {"rules": CHANGED_RULES}


def test_limiter_scales_and_survives_disruptions(dev):
    hpa = _k8s(dev, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "limiter", "limiter")["inputs"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
        _config(dev, "limiterMinReplicas"),
        _config(dev, "limiterMaxReplicas"),
    )
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "limiter"}
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    pdb = _k8s(dev, "kubernetes:policy/v1:PodDisruptionBudget", "limiter", "limiter")["inputs"]["spec"]
    assert pdb["selector"]["matchLabels"] == {"app": "limiter"}


def test_ext_authz_reaches_the_limiter_over_mutual_tls_from_the_gateways_only(dev):
    rule = _k8s(dev, "kubernetes:networking.istio.io/v1:DestinationRule", "limiter", "limiter")["inputs"]["spec"]
    assert rule["host"] == _provider(dev)["envoyExtAuthzHttp"]["service"]
    assert rule["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"
    policy = _k8s(dev, AUTHZ, "limiter-callers", "limiter")["inputs"]["spec"]
    assert policy["action"] == "ALLOW"
    principals = policy["rules"][0]["from"][0]["source"]["principals"]
    assert principals == [
        "cluster.local/ns/istio-ingress/sa/istio-ingress-api",
        "cluster.local/ns/istio-ingress/sa/istio-ingress-web",
    ]
    namespace = _k8s(dev, "kubernetes:core/v1:Namespace", "limiter")["inputs"]["metadata"]
    assert namespace["labels"]["istio-injection"] == "enabled"


# -- microservices ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["dev", "dev-cloudfront-no-api"])
def test_each_microservice_gets_deployment_service_hpa_pdb_and_route(runs, variant):
    stack = runs[variant]
    services = _config(stack, "microservices")
    assert services
    gateways = (
        ["istio-ingress/api", "istio-ingress/web"] if variant != "dev-cloudfront-no-api" else ["istio-ingress/web"]
    )
    for svc in services:
        name = svc["name"]
        deployment = _k8s(stack, DEPLOYMENT, name, "apps")["inputs"]["spec"]
        (container,) = deployment["template"]["spec"]["containers"]
        assert container["image"] == svc["image"] and container["ports"][0]["containerPort"] == svc["port"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        service = _k8s(stack, "kubernetes:core/v1:Service", name, "apps")["inputs"]["spec"]
        assert service["ports"][0]["name"] == "http" and service["selector"] == {"app": name}
        hpa = _k8s(stack, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", name, "apps")["inputs"]["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (svc.get("minReplicas", 2), svc.get("maxReplicas", 10))
        _k8s(stack, "kubernetes:policy/v1:PodDisruptionBudget", name, "apps")
        route = _k8s(stack, "kubernetes:networking.istio.io/v1:VirtualService", name, "apps")["inputs"]["spec"]
        assert route["gateways"] == gateways
        (http,) = route["http"]
        prefix = svc["pathPrefix"].rstrip("/")
        assert http["match"] == [{"uri": {"exact": prefix}}, {"uri": {"prefix": f"{prefix}/"}}]
        assert http["route"][0]["destination"] == {
            "host": f"{name}.apps.svc.cluster.local",
            "port": {"number": service["ports"][0]["port"]},
        }
    namespace = _k8s(stack, "kubernetes:core/v1:Namespace", "apps")["inputs"]["metadata"]
    assert namespace["labels"]["istio-injection"] == "enabled"


def test_routes_match_whole_path_segments():
    assert mesh_mod.route_matches("/orders/") == [{"uri": {"exact": "/orders"}}, {"uri": {"prefix": "/orders/"}}]
    assert mesh_mod.route_matches("/") == [{"uri": {"prefix": "/"}}]


def test_resources_use_the_regional_and_cluster_providers(dev):
    mesh = _mesh(dev)
    for resource in dev:
        if not dev.is_below(resource, mesh["name"]) or not resource["custom"]:
            continue
        package = resource["type"].split(":")[0]
        expected = {"aws": "aws-eu-west-1", "kubernetes": "eu-west-1-k8s"}.get(package)
        if expected:
            assert dev.provider_name(resource, package) == expected, resource["name"]


def test_preview_runs_with_the_image_digest_unknown(runs):
    preview = runs["dev-preview"]
    deployment = _k8s(preview, DEPLOYMENT, "limiter", "limiter")
    (container,) = deployment["inputs"]["spec"]["template"]["spec"]["containers"]
    assert is_unknown(container["image"])


# -- argument validation ----------------------------------------------------------------------------------------
def _args(**changes) -> mesh_mod.MeshArgs:
    base = {
        "region": "eu-west-1", "kubernetes_version": "1.34", "cluster_name": "c", "oidc_provider_arn": "a",
        "oidc_issuer": "u", "load_balancer_controller": object(), "web_target_group_arn": "tg",
        "web_lb_security_group_ids": ["sg-1"], "web_traffic_port": 8080, "web_trusted_proxies": 1,
        "api_target_group_arn": None, "api_lb_security_group_id": None, "api_trusted_proxies": 2,
        "counters_table_name": "t", "limiter_policy_json": "{}",
        "rate_limit_rules": [{"name": "r", "key": ["client_ip"], "limit": 1, "window_seconds": 1}],
        "istio_chart_version": "1.28.1", "limiter_min_replicas": 2, "limiter_max_replicas": 4,
        "ext_authz_fail_open": True, "ext_authz_timeout_ms": 200,
        "microservices": [Microservice("orders", "img", 8080, "/orders", 2, 4, "250m", "256Mi", 70)],
        "tags": {},
    }  # fmt: skip
    base.update(changes)
    return mesh_mod.MeshArgs(**base)


def test_valid_args_pass():
    mesh_mod._validate(_args())


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"web_traffic_port": 15021}, "web_traffic_port"),
        ({"web_trusted_proxies": 0}, "web_trusted_proxies"),
        ({"api_target_group_arn": "tg"}, "api_target_group_arn"),
        ({"istio_chart_version": "1.20.3"}, "istio_chart_version"),
        ({"limiter_min_replicas": 5}, "limiter_min_replicas"),
        ({"web_lb_security_group_ids": []}, "web_lb_security_group_ids"),
        ({"kubernetes_version": "v1.34"}, "kubernetes_version"),
        ({"rate_limit_rules": []}, "rate_limit_rules"),
        ({"image_platforms": ("linux/s390x",)}, "image_platforms"),
        ({"microservices": [Microservice("limiter", "i", 80, "/x", 1, 2, "1", "1Mi", 70)]}, "microservices"),
        ({"api_stage_path_prefix": "apigw"}, "api_stage_path_prefix"),
        (
            {
                "api_stage_path_prefix": "/apigw",
                "microservices": [Microservice("x", "i", 80, "/apigw/x", 1, 2, "1", "1Mi", 70)],
            },
            "microservices",
        ),
    ],
)
def test_invalid_args_fail_naming_the_input(changes, named):
    with pytest.raises(ValueError, match=rf"MeshArgs\.{named}"):
        mesh_mod._validate(_args(**changes))


def test_invalid_rules_fail_with_the_limiters_message():
    with pytest.raises(ValueError, match=r"MeshArgs\.rate_limit_rules is invalid"):
        mesh_mod.render_rules([{"name": "r", "key": ["nonsense"], "limit": 1, "window_seconds": 1}])


# -- the real program --------------------------------------------------------------------------------------------
@pytest.fixture(params=["dev", "prod"])
def main_stack(request) -> RecordedStack:
    return request.getfixturevalue(f"{request.param}_stack")


def test_main_wires_a_mesh_per_region_with_its_edges_target_groups(main_stack):
    regions = _config(main_stack, "regions")
    meshes = main_stack.of_type("ratelimited:index:Mesh")
    assert len(meshes) == len(regions)
    target_groups = {r["outputs"]["arn"] for r in main_stack.of_type("aws:lb/targetGroup:TargetGroup")}
    bindings = main_stack.of_type(TGB)
    assert bindings and {b["inputs"]["spec"]["targetGroupARN"] for b in bindings} <= target_groups
    lbcs = {r["urn"] for r in main_stack.of_type(RELEASE) if r["inputs"]["chart"] == "aws-load-balancer-controller"}
    for binding in bindings:
        assert lbcs & set(binding["dependencies"])


def test_main_limiter_policy_grants_only_the_counters_table(main_stack):
    tables = {t["outputs"]["arn"]: t for t in main_stack.of_type("aws:dynamodb/table:Table")}
    for mesh in main_stack.of_type("ratelimited:index:Mesh"):
        (role,) = main_stack.of_type("aws:iam/role:Role", under=mesh["name"])
        (policy,) = [
            p for p in main_stack.of_type("aws:iam/rolePolicy:RolePolicy") if p["inputs"]["role"] == role["id"]
        ]
        document = json.loads(policy["inputs"]["policy"])
        assert all("*" not in json.dumps(s["Resource"]) for s in document["Statement"])
        table_arns = {
            s["Resource"] for s in document["Statement"] if any(a.startswith("dynamodb:") for a in s["Action"])
        }
        assert len(table_arns) == 1
        (arn,) = table_arns
        assert arn in tables and tables[arn]["name"].endswith("-counters")


def test_main_trusted_proxies_follow_cloudfront(main_stack):
    expected = 2 if _config(main_stack, "cloudfrontEnabled") else 1
    web = [r for r in main_stack.of_type(RELEASE) if r["inputs"].get("name") == "istio-ingress-web"]
    assert web and all(_trusted_proxies(r) == expected for r in web)
    api = [r for r in main_stack.of_type(RELEASE) if r["inputs"].get("name") == "istio-ingress-api"]
    assert len(api) == (len(web) if _config(main_stack, "apiGatewayEnabled") else 0)
    assert all(_trusted_proxies(r) == 1 for r in api), "a REGIONAL API Gateway adds one X-Forwarded-For hop"


def test_main_deploys_every_microservice_with_its_route_in_every_region(main_stack):
    services = _config(main_stack, "microservices")
    kinds = ("apps/v1:Deployment", "core/v1:Service", "autoscaling/v2:HorizontalPodAutoscaler",
             "policy/v1:PodDisruptionBudget", "networking.istio.io/v1:VirtualService")  # fmt: skip
    for mesh in main_stack.of_type("ratelimited:index:Mesh"):
        for kind in kinds:
            names = {
                r["inputs"]["metadata"]["name"]
                for r in main_stack.of_type(f"kubernetes:{kind}", under=mesh["name"])
                if r["inputs"]["metadata"]["namespace"] == "apps"
            }
            assert names == {s["name"] for s in services}, (mesh["name"], kind)


def test_main_api_gateway_strips_the_stage_segment_before_routing_and_limiting(main_stack):
    stage = "/apigw"
    for mesh in main_stack.of_type("ratelimited:index:Mesh"):
        for svc in _config(main_stack, "microservices"):
            route = next(
                r["inputs"]["spec"]
                for r in main_stack.of_type("kubernetes:networking.istio.io/v1:VirtualService", under=mesh["name"])
                if r["inputs"]["metadata"]["name"] == svc["name"]
            )
            base = svc["pathPrefix"].rstrip("/")
            staged = [h for h in route["http"] if h["name"].startswith(f"{svc['name']}-api-stage")]
            assert [(h["match"], h["rewrite"]) for h in staged] == [
                ([{"uri": {"exact": f"{stage}{base}"}, "gateways": ["istio-ingress/api"]}], {"uri": base}),
                ([{"uri": {"prefix": f"{stage}{base}/"}, "gateways": ["istio-ingress/api"]}], {"uri": f"{base}/"}),
            ]
            assert route["http"][-1]["match"] == [{"uri": {"exact": base}}, {"uri": {"prefix": f"{base}/"}}]
        limiter = next(
            r
            for r in main_stack.of_type(DEPLOYMENT, under=mesh["name"])
            if r["inputs"]["metadata"]["name"] == "limiter"
        )
        env = {e["name"]: e["value"] for e in limiter["inputs"]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert json.loads(env["LIMITER_STRIP_PATH_PREFIXES"]) == [stage]
