"""The limiter layer under mocks: its image, IAM role, rules, Deployment and the policies that guard it.

Runs the workloads program (tests/components/programs/mesh_region.py) in several variants, and checks
the same on the real `__main__.py` for dev and prod.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import yaml

import stack_config
from components import limiter as limiter_mod
from tests.components.programs.mesh_runs import CHANGED_RULES
from tests.components.programs.workload_helpers import AUTHZ, DEPLOYMENT, component, config, helm_release, k8s
from tools import stack_files
from tools.preflight import values
from tools.records import RecordedStack, is_unknown


def _provider(stack: RecordedStack) -> dict:
    (provider,) = helm_release(stack, "istiod")["inputs"]["values"]["meshConfig"]["extensionProviders"]
    return provider


def _rendered_rules(stack: str, overrides: dict | None = None) -> list:
    merged = stack_files.merged_config(stack, overrides)
    return [dict(r) for r in stack_config.parse(merged, stack=stack).rate_limit_rules]


def test_limiter_role_has_only_the_data_layer_policy_and_trusts_one_service_account(dev):
    limiter = component(dev, "Limiter")
    roles = dev.of_type("aws:iam/role:Role", under=limiter["name"])
    assert len(roles) == 1
    role = roles[0]
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    conditions = statement["Condition"]["StringEquals"]
    assert "system:serviceaccount:limiter:limiter" in conditions.values()
    policies = [p for p in dev.of_type("aws:iam/rolePolicy:RolePolicy") if p["inputs"]["role"] == role["id"]]
    assert len(policies) == 1
    assert not dev.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment", under=limiter["name"])
    document = json.loads(policies[0]["inputs"]["policy"])
    resources = {s["Resource"] for s in document["Statement"]}
    assert resources == {f"arn:aws:dynamodb:eu-west-1:123456789012:table/{'eu-west-1'}-counters"}
    account = k8s(dev, "kubernetes:core/v1:ServiceAccount", "limiter", "limiter")
    assert account["inputs"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role["outputs"]["arn"]
    # The limiter never calls the Kubernetes API: no pod of this account gets an API token (IRSA's web
    # identity token is a separate projected volume, mounted by the EKS pod identity webhook).
    assert account["inputs"]["automountServiceAccountToken"] is False


def test_limiter_image_is_built_from_the_sources_and_pushed_to_a_hardened_repository(dev):
    (repo,) = dev.of_type("aws:ecr/repository:Repository")
    inputs = repo["inputs"]
    assert inputs["imageTagMutability"] == "IMMUTABLE"
    assert inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert inputs["encryptionConfigurations"][0]["encryptionType"] == "KMS"
    # dev turns deletion protection off: the repository may then be deleted with its images.
    assert config(dev, "deletionProtection") is False
    assert inputs["forceDelete"] is True and repo["protect"] is False
    (lifecycle,) = dev.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    rules = json.loads(lifecycle["inputs"]["policy"])["rules"]
    assert {r["selection"]["tagStatus"] for r in rules} == {"untagged", "tagged"}
    # What ECR's PutLifecyclePolicy would refuse (unique priorities, `any` last, tag lists), checked offline.
    assert values.ecr_lifecycle_errors({"rules": rules}) == []
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


def test_with_deletion_protection_the_repository_is_protected_and_never_force_deleted(prod_stack):
    repos = prod_stack.of_type("aws:ecr/repository:Repository")
    assert len(repos) == 2 and config(prod_stack, "deletionProtection") is True
    for repo in repos:
        assert repo["inputs"]["forceDelete"] is False and repo["protect"] is True


def test_image_tag_follows_the_sources_and_platforms(tmp_path):
    (tmp_path / "app.py").write_text("print(1)\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    first = limiter_mod.source_digest(tmp_path)
    (tmp_path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\1")
    assert limiter_mod.source_digest(tmp_path) == first, "bytecode must not change the tag"
    (tmp_path / "app.pyc").write_bytes(b"\0")  # `compileall -b` writes bytecode beside the source
    assert limiter_mod.source_digest(tmp_path) == first, "bytecode must not change the tag"
    (tmp_path / "api" / ".mypy_cache").mkdir(parents=True)  # tool caches at any depth
    (tmp_path / "api" / ".mypy_cache" / "x.json").write_text("{}")
    assert limiter_mod.source_digest(tmp_path) == first, "a tool cache must not change the tag"
    (tmp_path / "app.py").write_text("print(2)\n")
    assert limiter_mod.source_digest(tmp_path) != first
    # Comments and blank lines may come first; the patterns after them still count.
    (tmp_path / ".dockerignore").write_text("# build context\n\n**/__pycache__\n*.md\ndocs\n!docs/keep.txt\n")
    with_ignore = limiter_mod.source_digest(tmp_path)
    (tmp_path / "README.md").write_text("notes\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("a\n")
    assert limiter_mod.source_digest(tmp_path) == with_ignore, ".dockerignore'd files must not change the tag"
    (tmp_path / "docs" / "keep.txt").write_text("k\n")
    assert limiter_mod.source_digest(tmp_path) != with_ignore, "a negated pattern re-includes the file"
    assert limiter_mod.image_tag(first, ["linux/amd64"]) != limiter_mod.image_tag(first, ["linux/arm64"])
    assert limiter_mod.platforms_for_instance_types(["m7g.large", "t4g.small"]) == ("linux/arm64",)
    assert limiter_mod.platforms_for_instance_types(["m7i.large", "c7gn.xlarge"]) == ("linux/amd64", "linux/arm64")
    assert limiter_mod.platforms_for_instance_types(["t3.large", "m7a.xlarge"]) == ("linux/amd64",)


def test_limiter_deployment_uses_the_image_by_digest(dev):
    (repo,) = dev.of_type("aws:ecr/repository:Repository")
    (image,) = dev.of_type("docker-build:index:Image")
    deployment = k8s(dev, DEPLOYMENT, "limiter", "limiter")
    (container,) = deployment["inputs"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{repo['outputs']['repositoryUrl']}@{image['outputs']['digest']}"
    assert container["image"].split("@")[1].startswith("sha256:")
    assert dev.depends_on(deployment, image)


def test_limiter_container_follows_the_limiter_contract(dev):
    deployment = k8s(dev, DEPLOYMENT, "limiter", "limiter")
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
    assert dev.depends_on(deployment, helm_release(dev, "istiod")), "the sidecar injector must exist first"


def test_limiter_metrics_are_merged_onto_the_sidecars_open_port(dev):
    """Istio merges the app's metrics (prometheus.io annotations) into :15020/stats/prometheus, which the
    NetworkPolicy admits from anywhere; the app port itself takes only the gateways, the apps and mTLS."""
    deployment = k8s(dev, DEPLOYMENT, "limiter", "limiter")
    annotations = deployment["inputs"]["spec"]["template"]["metadata"]["annotations"]
    assert {k: annotations[k] for k in ("prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path")} == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
    }
    assert helm_release(dev, "istiod")["inputs"]["values"]["meshConfig"]["enablePrometheusMerge"] is True
    policy = k8s(dev, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "limiter", "limiter")["inputs"]["spec"]
    assert {"ports": [{"protocol": "TCP", "port": 15020}, {"protocol": "TCP", "port": 15090}]} in policy["ingress"]


def test_rules_configmap_and_checksum_roll_the_pods_when_rules_change(runs):
    checksums = {}
    for variant, overrides in (("dev", {}), ("dev-rules-changed", {"rateLimitRules": CHANGED_RULES})):
        stack = runs[variant]
        configmap = k8s(stack, "kubernetes:core/v1:ConfigMap", "limiter-rules", "limiter")
        text = configmap["inputs"]["data"]["rules.yaml"]
        # The stack's rules as validated, with their hosts rendered from the domain.
        assert yaml.safe_load(text) == {"rules": _rendered_rules("dev", overrides)}
        deployment = k8s(stack, DEPLOYMENT, "limiter", "limiter")
        annotations = deployment["inputs"]["spec"]["template"]["metadata"]["annotations"]
        checksums[variant] = annotations["checksum/rate-limit-rules"]
        assert checksums[variant] == hashlib.sha256(text.encode()).hexdigest()
    assert checksums["dev"] != checksums["dev-rules-changed"]
    assert yaml.safe_load(
        k8s(runs["dev-rules-changed"], "kubernetes:core/v1:ConfigMap", "limiter-rules")["inputs"]["data"]["rules.yaml"]
    ) == {"rules": CHANGED_RULES}


def test_rendered_rules_follow_the_domain(runs):
    """After `pulumi config set domain mycorp.io` every limit still matches the hosts the stack serves."""
    hosts = {}
    for variant in ("dev", "dev-domain-changed"):
        configmap = k8s(runs[variant], "kubernetes:core/v1:ConfigMap", "limiter-rules", "limiter")
        rules = yaml.safe_load(configmap["inputs"]["data"]["rules.yaml"])["rules"]
        hosts[variant] = {r["name"]: r.get("match", {}).get("hosts") for r in rules}
    assert hosts["dev"] == {
        "per-client-ip": ["dev.example.com", "www.dev.example.com", "origin.dev.example.com"],
        "api-per-key": ["api.dev.example.com"],
    }
    assert hosts["dev-domain-changed"] == {
        "per-client-ip": ["mycorp.io", "www.mycorp.io", "origin.mycorp.io"],
        "api-per-key": ["api.mycorp.io"],
    }


def test_limiter_scales_and_survives_disruptions(dev):
    hpa = k8s(dev, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "limiter", "limiter")["inputs"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
        config(dev, "limiterMinReplicas"),
        config(dev, "limiterMaxReplicas"),
    )
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "limiter"}
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    pdb = k8s(dev, "kubernetes:policy/v1:PodDisruptionBudget", "limiter", "limiter")["inputs"]["spec"]
    assert pdb["selector"]["matchLabels"] == {"app": "limiter"}


def test_ext_authz_reaches_the_limiter_over_mutual_tls_from_the_gateways_and_the_apps_only(dev):
    rule = k8s(dev, "kubernetes:networking.istio.io/v1:DestinationRule", "limiter", "limiter")["inputs"]["spec"]
    assert rule["host"] == _provider(dev)["envoyExtAuthzHttp"]["service"]
    assert rule["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"
    policy = k8s(dev, AUTHZ, "limiter-callers", "limiter")["inputs"]["spec"]
    # The whole policy: one more rule (or a wider one) would let other callers reach the limiter.
    assert policy == {
        "selector": {"matchLabels": {"app": "limiter"}},
        "action": "ALLOW",
        "rules": [
            {
                "from": [
                    {
                        "source": {
                            "principals": [
                                "cluster.local/ns/istio-ingress/sa/istio-ingress-api",
                                "cluster.local/ns/istio-ingress/sa/istio-ingress-web",
                            ]
                        }
                    }
                ]
            },
            # the microservices ask /check themselves (the apps namespace, nothing wider)
            {"from": [{"source": {"namespaces": ["apps"]}}]},
        ],
    }
    namespace = k8s(dev, "kubernetes:core/v1:Namespace", "limiter")["inputs"]["metadata"]
    assert namespace["labels"]["istio-injection"] == "enabled"


def test_preview_runs_with_the_image_digest_unknown(runs):
    preview = runs["dev-preview"]
    deployment = k8s(preview, DEPLOYMENT, "limiter", "limiter")
    (container,) = deployment["inputs"]["spec"]["template"]["spec"]["containers"]
    assert is_unknown(container["image"])


def test_limiter_pods_wait_for_istiod_and_the_node_groups(dev):
    deployment = k8s(dev, DEPLOYMENT, "limiter", "limiter")
    nodes = dev.named("eu-west-1-nodes")
    assert dev.depends_on(deployment, helm_release(dev, "istiod")), "the sidecar injector must exist first"
    assert nodes["urn"] in deployment["dependencies"], "pods need nodes that have joined"


# -- argument validation ----------------------------------------------------------------------------------------
def _args(**changes) -> limiter_mod.LimiterArgs:
    base = {
        "region": "eu-west-1", "oidc_provider_arn": "a", "oidc_issuer": "oidc.eks.eu-west-1.amazonaws.com/id/X",
        "counters_table_name": "t", "limiter_policy_json": "{}",
        "rate_limit_rules": [{"name": "r", "key": ["client_ip"], "limit": 1, "window_seconds": 1}],
        "caller_principals": ["cluster.local/ns/istio-ingress/sa/istio-ingress-web"], "mesh": object(),
        "min_replicas": 2, "max_replicas": 4,
    }  # fmt: skip
    base.update(changes)
    return limiter_mod.LimiterArgs(**base)


def test_valid_args_pass():
    limiter_mod._validate(_args())


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"min_replicas": 5}, "min_replicas"),
        ({"rate_limit_rules": []}, "rate_limit_rules"),
        ({"image_platforms": ("linux/s390x",)}, "image_platforms"),
        ({"api_stage_path_prefix": "apigw"}, "api_stage_path_prefix"),
        ({"caller_principals": []}, "caller_principals"),
        ({"mesh": None}, "mesh"),
    ],
)
def test_invalid_args_fail_naming_the_input(changes, named):
    with pytest.raises(ValueError, match=rf"LimiterArgs\.{named}"):
        limiter_mod._validate(_args(**changes))


def test_invalid_rules_fail_with_the_limiters_message():
    with pytest.raises(ValueError, match=r"LimiterArgs\.rate_limit_rules is invalid"):
        limiter_mod.render_rules([{"name": "r", "key": ["nonsense"], "limit": 1, "window_seconds": 1}])


def test_rules_from_config_render_as_plain_yaml_the_limiter_accepts():
    """Pulumi hands config objects over as read-only mappings with JSON numbers as floats; the limiter's parser
    takes only ints for limits and windows, so the rendered file must hold plain mappings and ints."""
    from types import MappingProxyType

    rule = MappingProxyType(
        {"name": "r", "key": ("client_ip",), "limit": 300.0, "window_seconds": 60.0,
         "match": MappingProxyType({"path_prefix": "/api/"})}
    )  # fmt: skip
    rendered = yaml.safe_load(limiter_mod.render_rules([rule]))
    assert rendered == {
        "rules": [
            {"name": "r", "key": ["client_ip"], "limit": 300, "window_seconds": 60, "match": {"path_prefix": "/api/"}}
        ]
    }
    assert type(rendered["rules"][0]["limit"]) is int


# -- the real program --------------------------------------------------------------------------------------------
@pytest.fixture(params=["dev", "prod"])
def main_stack(request) -> RecordedStack:
    return request.getfixturevalue(f"{request.param}_stack")


def test_main_limiter_policy_grants_only_the_counters_table(main_stack):
    tables = {t["outputs"]["arn"]: t for t in main_stack.of_type("aws:dynamodb/table:Table")}
    limiters = main_stack.of_type("ratelimited:index:Limiter")
    assert len(limiters) == len(config(main_stack, "regions"))
    for limiter in limiters:
        (role,) = main_stack.of_type("aws:iam/role:Role", under=limiter["name"])
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


def test_main_limiter_strips_the_stage_segment_before_matching_rules(main_stack):
    for limiter in main_stack.of_type("ratelimited:index:Limiter"):
        deployment = next(
            r
            for r in main_stack.of_type(DEPLOYMENT, under=limiter["name"])
            if r["inputs"]["metadata"]["name"] == "limiter"
        )
        env = {e["name"]: e["value"] for e in deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert json.loads(env["LIMITER_STRIP_PATH_PREFIXES"]) == ["/apigw"]
