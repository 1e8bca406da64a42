"""The services layer under mocks: each microservice's identity, least-privilege role and hardened workload.

Runs the workloads program (tests/components/programs/mesh_region.py) with the dev config and with a set of
services that uses every field of the spec, and checks the real `__main__.py` for dev and prod.
"""

from __future__ import annotations

import json

import pytest

from components import services as services_mod
from components.specs import Microservice
from tests.components.programs.mesh_runs import OVERLAPPING_SERVICES
from tests.components.programs.workload_helpers import DEPLOYMENT, component, config, helm_release, k8s
from tools.records import RecordedStack

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


@pytest.fixture(scope="module")
def rich(runs) -> RecordedStack:
    return runs["dev-overlapping-routes"]


def _container(stack: RecordedStack, name: str, *, under: str | None = None) -> dict:
    deployment = k8s(stack, DEPLOYMENT, name, "apps", under=under)
    (container,) = deployment["inputs"]["spec"]["template"]["spec"]["containers"]
    return container


def _role_and_policy(stack: RecordedStack, service: str, *, under: str | None = None) -> tuple[dict, dict]:
    """The IRSA role that the service's ServiceAccount names, and its one inline policy document."""
    account = k8s(stack, "kubernetes:core/v1:ServiceAccount", service, "apps", under=under)
    arn = account["inputs"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    (role,) = [r for r in stack.of_type(ROLE) if r["outputs"]["arn"] == arn]
    policies = [p for p in stack.of_type(ROLE_POLICY) if p["inputs"]["role"] == role["id"]]
    assert len(policies) == 1, "the inline policy is the role's only permission"
    assert not [a for a in stack.of_type("aws:iam/rolePolicyAttachment:*") if a["inputs"]["role"] == role["id"]]
    return role, json.loads(policies[0]["inputs"]["policy"])


def _resources(document: dict) -> dict[str, set[str]]:
    """Every action the document allows, with the resources it allows it on."""
    allowed: dict[str, set[str]] = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in statement["Action"]:
            allowed.setdefault(action, set()).update(resources)
    return allowed


# -- workloads ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["dev", "dev-cloudfront-no-api", "dev-overlapping-routes"])
def test_each_microservice_gets_a_hardened_autoscaled_workload(runs, variant):
    stack = runs[variant]
    services = config(stack, "microservices")
    assert services
    for svc in services:
        name = svc["name"]
        deployment = k8s(stack, DEPLOYMENT, name, "apps")
        pod = deployment["inputs"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == svc["image"] and container["ports"][0]["containerPort"] == svc["port"]
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] and sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"]
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert pod["serviceAccountName"] == name and pod["automountServiceAccountToken"] is False
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        (tmp,) = [v for v in pod["volumes"] if v["name"] == mounts["/tmp"]]
        assert tmp["emptyDir"] == {"sizeLimit": svc.get("tmpSize", "256Mi")}, "a writable /tmp"
        assert "replicas" not in deployment["inputs"]["spec"]
        service = k8s(stack, "kubernetes:core/v1:Service", name, "apps")["inputs"]["spec"]
        assert service["ports"][0]["name"] == "http" and service["selector"] == {"app": name}
        hpa = k8s(stack, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", name, "apps")["inputs"]["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (svc.get("minReplicas", 2), svc.get("maxReplicas", 10))
        # No pod down during a rollout; one at a time in a drain; spread over zones, then nodes.
        assert deployment["inputs"]["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
        }
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert pod["topologySpreadConstraints"] == [
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app": name}},
            }
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ]
        pdb = k8s(stack, "kubernetes:policy/v1:PodDisruptionBudget", name, "apps")["inputs"]["spec"]
        assert pdb == {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}}
        policy = k8s(stack, "kubernetes:networking.k8s.io/v1:NetworkPolicy", name, "apps")["inputs"]["spec"]
        # The whole ingress: the app port from the gateways and the other services only, the sidecar's
        # health and stats ports.
        assert policy["ingress"] == [
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                    for ns in ("istio-ingress", "apps")
                ],
                "ports": [{"protocol": "TCP", "port": svc["port"]}],
            },
            {"ports": [{"protocol": "TCP", "port": 15020}, {"protocol": "TCP", "port": 15090}]},
        ]
    namespace = k8s(stack, "kubernetes:core/v1:Namespace", "apps")["inputs"]["metadata"]
    assert namespace["labels"]["istio-injection"] == "enabled"


def test_pods_wait_for_istiod_and_the_node_groups(runs):
    stack = runs["dev"]
    nodes = stack.named("eu-west-1-nodes")
    for svc in config(stack, "microservices"):
        deployment = k8s(stack, DEPLOYMENT, svc["name"], "apps")
        assert stack.depends_on(deployment, helm_release(stack, "istiod"))
        assert nodes["urn"] in deployment["dependencies"]


def test_the_spec_reaches_the_container(rich):
    spec = next(s for s in OVERLAPPING_SERVICES if s["name"] == "orders-v2")
    container = _container(rich, "orders-v2")
    assert container["command"] == spec["command"] and container["args"] == spec["args"]
    assert container["readinessProbe"]["httpGet"] == {"path": spec["readinessPath"], "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": spec["livenessPath"], "port": "http"}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {
        **spec["env"],
        **spec["secrets"],  # the ARNs, never the secret values
        "TABLE_ORDERS": "eu-west-1-data-app-orders-0123456",
        "AWS_REGION": "eu-west-1",
        "AWS_STS_REGIONAL_ENDPOINTS": "regional",
    }
    # Defaults: TCP probes, the image's own entrypoint, no env, no role.
    catalog = _container(rich, "catalog")
    assert catalog["readinessProbe"]["tcpSocket"] == {"port": "http"}
    assert "command" not in catalog and "args" not in catalog and "env" not in catalog
    account = k8s(rich, "kubernetes:core/v1:ServiceAccount", "catalog", "apps")
    assert "eks.amazonaws.com/role-arn" not in account["inputs"]["metadata"]["annotations"]
    # No Kubernetes API token in the pods by default (the IRSA web identity token is mounted apart).
    assert account["inputs"]["automountServiceAccountToken"] is False


def test_a_service_role_reads_exactly_its_secrets_and_touches_exactly_its_tables(rich):
    spec = next(s for s in OVERLAPPING_SERVICES if s["name"] == "orders-v2")
    role, document = _role_and_policy(rich, "orders-v2")
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    condition = statement["Condition"]["StringEquals"]
    issuer = "oidc.eks.eu-west-1.amazonaws.com/id/ABC"
    assert condition == {f"{issuer}:sub": "system:serviceaccount:apps:orders-v2", f"{issuer}:aud": "sts.amazonaws.com"}
    allowed = _resources(document)
    secret, parameter = spec["secrets"]["PAYMENT_KEY_ARN"], spec["secrets"]["SIGNING_KEY_PARAM"]
    assert allowed["secretsmanager:GetSecretValue"] == {secret}
    assert allowed["ssm:GetParameter"] == {parameter}
    table = "arn:aws:dynamodb:eu-west-1:123456789012:table/eu-west-1-data-app-orders-0123456"
    assert allowed["dynamodb:PutItem"] == {table}
    assert allowed["dynamodb:Query"] == {table, f"{table}/index/by-customer", f"{table}/index/by-status"}


# -- the real program: the dev orders service ------------------------------------------------------------------
def test_main_dev_orders_role_can_touch_the_orders_table_and_nothing_else(dev_stack):
    services = component(dev_stack, "Services")
    (orders,) = [t for t in dev_stack.of_type("aws:dynamodb/table:Table") if "-app-orders" in t["name"]]
    arn, name = orders["outputs"]["arn"], orders["outputs"]["name"]
    indexes = {f"{arn}/index/{g['name']}" for g in orders["inputs"]["globalSecondaryIndexes"]}
    assert len(indexes) == 2
    data = component(dev_stack, "Data")
    (key,) = [k["outputs"]["arn"] for k in dev_stack.of_type("aws:kms/key:Key", under=data["name"])]
    role, document = _role_and_policy(dev_stack, "orders", under=services["name"])
    assert dev_stack.is_below(role, services["name"])
    allowed = _resources(document)
    everything = set().union(*allowed.values())
    assert everything == {arn, *indexes, key}, "no other table, index, key or wildcard"
    dynamodb = {a for a in allowed if a.startswith("dynamodb:")}
    assert dynamodb == set(services_mod.TABLE_ACTIONS)
    assert all(allowed[a] <= {arn, *indexes} for a in dynamodb)
    assert {r for a in services_mod.INDEX_ACTIONS for r in allowed[a]} == {arn, *indexes}
    assert all(allowed[a] == {arn} for a in dynamodb - set(services_mod.INDEX_ACTIONS))
    assert {a for a in allowed if allowed[a] == {key}} == set(services_mod.TABLE_KEY_ACTIONS)
    (key_statement,) = [s for s in document["Statement"] if s["Resource"] == key]
    assert key_statement["Condition"] == {"StringEquals": {"kms:ViaService": "dynamodb.eu-west-1.amazonaws.com"}}
    env = {e["name"]: e["value"] for e in _container(dev_stack, "orders", under=services["name"])["env"]}
    assert env["TABLE_ORDERS"] == name


def test_main_services_without_tables_have_no_aws_permission(main_stack):
    for services in main_stack.of_type("ratelimited:index:Services"):
        declared = {s["name"]: s.get("tables", []) for s in config(main_stack, "microservices")}
        roles = main_stack.of_type(ROLE, under=services["name"])
        assert len(roles) == sum(1 for tables in declared.values() if tables)
        for name, tables in declared.items():
            account = k8s(main_stack, "kubernetes:core/v1:ServiceAccount", name, "apps", under=services["name"])
            annotated = "eks.amazonaws.com/role-arn" in account["inputs"]["metadata"]["annotations"]
            assert annotated == bool(tables), name


@pytest.fixture(params=["dev", "prod"])
def main_stack(request) -> RecordedStack:
    return request.getfixturevalue(f"{request.param}_stack")


# -- argument validation --------------------------------------------------------------------------------------
def _args(*services: Microservice, **changes) -> services_mod.ServicesArgs:
    base = {
        "region": "eu-west-1",
        "microservices": list(services),
        "oidc_provider_arn": "a",
        "oidc_issuer": "oidc.eks.eu-west-1.amazonaws.com/id/X",
        "mesh": object(),
        "table_names": {"orders": "orders-123"},
        "table_arns": {"orders": "arn:aws:dynamodb:eu-west-1:123456789012:table/orders-123"},
        "table_indexes": {"orders": ["by-customer"]},
        "tables_kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/k",
    }
    base.update(changes)
    return services_mod.ServicesArgs(**base)


def _svc(**changes) -> Microservice:
    return Microservice(**{"name": "orders", "image": "i", "port": 8080, "path_prefix": "/orders", **changes})


def test_valid_args_pass():
    services_mod._validate(_args(_svc(tables=("orders",)), _svc(name="catalog", path_prefix="/catalog")))


@pytest.mark.parametrize(
    ("services", "changes", "message"),
    [
        ((_svc(), _svc()), {}, r"ServicesArgs\.microservices must have unique names"),
        ((_svc(name="limiter"),), {}, r"ServicesArgs\.microservices name 'limiter'"),
        ((_svc(tables=("payments",)),), {}, r"ServicesArgs\.microservices 'orders' tables \['payments'\]"),
        ((_svc(tables=("orders",)),), {"tables_kms_key_arn": None}, r"ServicesArgs\.tables_kms_key_arn is required"),
        ((_svc(secrets=(("K", "nope"),)),), {}, r"ServicesArgs\.microservices 'orders' secret K"),
        ((_svc(env=(("1BAD", "v"),)),), {}, r"'orders' env var name '1BAD' must match"),
        ((_svc(env=(("AWS_REGION", "x"),)),), {}, r"'orders' env var AWS_REGION is set by the platform"),
        # One name in env and again as a secret: exactly two uses is already one too many.
        (
            (_svc(env=(("K", "v"),), secrets=(("K", "arn:aws:ssm:eu-west-1:123456789012:parameter/k"),)),),
            {},
            r"'orders' sets env var\(s\) K twice",
        ),
        ((_svc(min_replicas=3, max_replicas=2),), {}, r"min_replicas <= max_replicas"),
        # A probe path without its slash would make the kubelet probe a URL the service never serves.
        ((_svc(readiness_path="ready"),), {}, r"'orders' readiness_path must be a path starting with '/'"),
        ((_svc(liveness_path="live"),), {}, r"'orders' liveness_path must be a path starting with '/'"),
        ((_svc(),), {"mesh": None}, r"ServicesArgs\.mesh"),
    ],
)
def test_invalid_args_fail_naming_the_input(services, changes, message):
    with pytest.raises(ValueError, match=message):
        services_mod._validate(_args(*services, **changes))


def test_table_env_names():
    assert services_mod.table_env_name("orders") == "TABLE_ORDERS"
    assert services_mod.table_env_name("order-items") == "TABLE_ORDER_ITEMS"


def test_the_documented_defaults_are_the_specs():
    """docs/add-a-microservice.md is where users read what a field left out means: it must match the code."""
    import dataclasses
    import re
    from pathlib import Path

    from stack_config import _camel

    text = (Path(__file__).resolve().parents[2] / "docs" / "add-a-microservice.md").read_text()
    documented = {}
    for names, defaults in re.findall(r"^\| ((?:`\w+`(?: / )?)+) \| ([^|]+) \|", text, re.M):
        names, values = re.findall(r"`(\w+)`", names), re.findall(r"`([^`]+)`", defaults)
        if len(names) == len(values):
            documented.update(zip(names, values, strict=True))
    in_code = {
        _camel(f.name): str(f.default)
        for f in dataclasses.fields(Microservice)
        if f.default is not dataclasses.MISSING and isinstance(f.default, int | str)
    }
    assert in_code == documented
    assert set(in_code) == {"minReplicas", "maxReplicas", "cpu", "memory", "targetCpuUtilization", "tmpSize"}


def test_the_longest_service_name_documented_deploys_in_the_longest_region():
    """docs/add-a-microservice.md promises names of up to N characters: such a name fits every name AWS limits
    (the IRSA role's 64) with the longest region, as the preflight checks them, and one more is refused."""
    import re

    from tools import stack_files
    from tools.mocked_run import MockedRunError, run_stack
    from tools.preflight import names
    from tools.preflight.names import LONGEST_REGION

    doc = (stack_files.ROOT / "docs" / "add-a-microservice.md").read_text()
    (documented,) = re.findall(r"DNS label of at most (\d+) characters", doc)

    def service(name: str) -> dict:
        return {"name": name, "image": "nginxinc/nginx-unprivileged:1.27-alpine", "port": 8080,
                "pathPrefix": "/longest", "tables": ["orders"]}  # fmt: skip

    longest = "s" * int(documented)
    overrides = {"regions": [LONGEST_REGION], "microservices": [service(longest)]}
    record = run_stack("dev", preview=True, config_overrides=overrides)
    stack = RecordedStack(record)
    assert stack.named(f"{LONGEST_REGION}-services-{longest}-role")
    assert [f.message for f in names.check(record)] == []
    with pytest.raises(MockedRunError, match=f"at most {documented} characters"):
        run_stack("dev", preview=True, config_overrides={**overrides, "microservices": [service(longest + "s")]})
