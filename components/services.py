"""The microservices of one region: each a hardened workload in the `apps` namespace, with its own identity.

Per service (components.specs.Microservice, from stack config `microservices`):
- a ServiceAccount (its mesh identity) and, when it uses tables or secrets, an IRSA role that only this
  ServiceAccount can assume, allowed item access to exactly its tables and their indexes (and the tables'
  KMS key through DynamoDB only) and reads of exactly its secrets; without tables or secrets it has no
  AWS permission at all;
- a Deployment (non-root, read-only root filesystem with a writable /tmp emptyDir, no capabilities, no
  API token, sidecar injected, spread over zones), a ClusterIP Service, an HPA, a PDB and a NetworkPolicy
  admitting only the ingress gateways (and the other apps) on its port.

Routing is the mesh's: `routes_for` turns the services into the mesh's routes (components/mesh.py builds
one ordered route table per gateway from them).
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
from components.irsa import irsa_role
from components.manifests import APPS_NAMESPACE, INGRESS_NAMESPACE
from components.mesh import Route
from components.specs import Microservice

# Item actions a service may perform on its own tables, and the read actions on their indexes.
TABLE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
)
INDEX_ACTIONS = ("dynamodb:Query", "dynamodb:Scan")
SECRET_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
PARAMETER_ACTIONS = ("ssm:GetParameter", "ssm:GetParameters")
TABLE_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey")

SECRET_ARN_RE = re.compile(r"^arn:aws:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
PARAMETER_ARN_RE = re.compile(r"^arn:aws:ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9/_.-]+$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# IAM role names are at most 64 characters; the role's logical name is "<region>-services-<service>-role"
# and pulumi-aws appends 8 more: with the longest region name (14) a service name fits in 25.
MAX_SERVICE_NAME = 25
_DNS_LABEL_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")
# Set by the platform for every service with a role; a service may not set them itself.
_PLATFORM_ENV = ("AWS_REGION", "AWS_STS_REGIONAL_ENDPOINTS")


@dataclass(frozen=True)
class ServicesArgs:
    """Inputs of the microservices of one region."""

    region: str
    """The AWS region (the providers come through opts; this names AWS_REGION and the KMS condition)."""
    microservices: Sequence[Microservice]
    """The services to run."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider ARN (IRSA trust)."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer without https:// (IRSA trust conditions)."""
    mesh: pulumi.Resource
    """istiod's Helm release (the mesh's `istiod`): its sidecar injector must exist before the pods."""
    table_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Physical name of every app table, by its config name (the data layer's `app_table_names`)."""
    table_arns: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """ARN of every app table, by its config name (the data layer's `app_table_arns`)."""
    table_indexes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """The GSI names of every app table, by its config name."""
    tables_kms_key_arn: pulumi.Input[str] | None = None
    """The KMS key the app tables are encrypted with (the data layer's `kms_key_arn`)."""
    node_groups: Sequence[pulumi.Resource] = ()
    """The region's managed node groups: the pods wait for nodes that have joined."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every AWS resource."""


class Services(pulumi.ComponentResource):
    """The microservices: identity, least-privilege IAM, and a hardened, autoscaled workload each."""

    role_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("ratelimited:index:Services", name, None, opts)
        self._name = name
        self._args = args
        self.role_arns = {}

        namespace = manifests.namespace(
            f"{name}-ns", APPS_NAMESPACE, {"istio-injection": "enabled"}, self._opts(depends_on=[args.mesh])
        )
        for service in args.microservices:
            self._create_service(service, namespace)

        self.register_outputs({"roleArns": self.role_arns})

    def _opts(self, *, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))

    def _create_service(self, service: Microservice, namespace: pulumi.Resource) -> None:
        args = self._args
        prefix = f"{self._name}-{service.name}"
        labels = {"app": service.name, **manifests.labels(service.name)}
        common = {"name": service.name, "namespace": APPS_NAMESPACE, "labels": labels}
        ns_dep = [namespace]

        annotations: dict[str, Any] = {}
        env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in service.env]
        if service.tables or service.secrets:
            role = irsa_role(
                prefix,
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer=args.oidc_issuer,
                namespace=APPS_NAMESPACE,
                service_account=service.name,
                policy_json=service_policy_document(
                    region=args.region,
                    tables=[(args.table_arns[t], args.table_indexes.get(t, ())) for t in service.tables],
                    kms_key_arn=args.tables_kms_key_arn if service.tables else None,
                    secret_arns=[arn for _, arn in service.secrets],
                ),
                tags=dict(args.tags),
                parent=self,
            )
            self.role_arns[service.name] = role.arn
            annotations["eks.amazonaws.com/role-arn"] = role.arn
            env += [
                {"name": "AWS_REGION", "value": args.region},
                {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
            ]
        env += [{"name": table_env_name(t), "value": args.table_names[t]} for t in service.tables]
        env += [{"name": k, "value": arn} for k, arn in service.secrets]

        account = k8s.core.v1.ServiceAccount(
            f"{prefix}-sa",
            metadata={**common, "annotations": annotations},
            automount_service_account_token=False,
            opts=self._opts(depends_on=ns_dep),
        )
        container: dict[str, Any] = {
            "name": service.name,
            "image": service.image,
            # By digest the node may keep its copy; by tag it must re-check the registry.
            "imagePullPolicy": "IfNotPresent" if "@sha256:" in service.image else "Always",
            "ports": [{"name": "http", "containerPort": service.port, "protocol": "TCP"}],
            "readinessProbe": {**_probe(service.readiness_path), "periodSeconds": 5, "failureThreshold": 3},
            "livenessProbe": {
                **_probe(service.liveness_path),
                "initialDelaySeconds": 10,
                "periodSeconds": 10,
                "failureThreshold": 3,
            },
            "resources": {
                "requests": {"cpu": service.cpu, "memory": service.memory},
                "limits": {"cpu": service.cpu, "memory": service.memory},
            },
            "securityContext": manifests.container_security_context(),
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }
        if env:
            container["env"] = env
        if service.command is not None:
            container["command"] = list(service.command)
        if service.args is not None:
            container["args"] = list(service.args)
        deployment = manifests.deployment(
            f"{prefix}-deployment",
            container=container,
            annotations={},
            service_account=service.name,
            volumes=[{"name": "tmp", "emptyDir": {"sizeLimit": service.tmp_size}}],
            # Pods need the sidecar injector (istiod) and nodes to run on.
            opts=self._opts(depends_on=[args.mesh, *args.node_groups, account, *ns_dep]),
            **common,
        )
        manifests.service(f"{prefix}-service", port=service.port, opts=self._opts(depends_on=ns_dep), **common)
        manifests.hpa(
            f"{prefix}-hpa",
            min_replicas=service.min_replicas,
            max_replicas=service.max_replicas,
            cpu_target=service.target_cpu_utilization,
            opts=self._opts(depends_on=[deployment]),
            **common,
        )
        manifests.pdb(f"{prefix}-pdb", opts=self._opts(depends_on=ns_dep), **common)
        manifests.network_policy(
            f"{prefix}-netpol",
            port=service.port,
            from_namespaces=[INGRESS_NAMESPACE, APPS_NAMESPACE],
            opts=self._opts(depends_on=ns_dep),
            **common,
        )


# -- pure functions -------------------------------------------------------------------------------------
def routes_for(microservices: Sequence[Microservice]) -> list[Route]:
    """The mesh routes of the services: each path prefix to its Service."""
    return [
        Route(
            name=m.name,
            path_prefix=m.path_prefix,
            host=f"{m.name}.{APPS_NAMESPACE}.svc.cluster.local",
            port=m.port,
        )
        for m in microservices
    ]


def table_env_name(table: str) -> str:
    """The env var that carries a table's physical name: orders -> TABLE_ORDERS, order-items -> TABLE_ORDER_ITEMS."""
    return "TABLE_" + re.sub(r"[^A-Za-z0-9]", "_", table).upper()


def service_policy_document(
    *,
    region: str,
    tables: Sequence[tuple[pulumi.Input[str], Sequence[str]]],
    kms_key_arn: pulumi.Input[str] | None,
    secret_arns: Sequence[str],
) -> pulumi.Output[str]:
    """Least privilege for one service: item access to its tables and their indexes, reads of its secrets.

    `tables` holds each table's ARN with the names of its GSIs, so an index cannot be paired with another
    table's ARN.
    """

    def build(values: list[Any]) -> str:
        arns, key = values[: len(tables)], values[len(tables)]
        statements: list[dict[str, Any]] = []
        if arns:
            statements.append({"Sid": "Tables", "Effect": "Allow", "Action": list(TABLE_ACTIONS), "Resource": arns})
            indexes = [f"{arns[i]}/index/{gsi}" for i, (_, gsis) in enumerate(tables) for gsi in gsis]
            if indexes:
                statements.append(
                    {"Sid": "Indexes", "Effect": "Allow", "Action": list(INDEX_ACTIONS), "Resource": indexes}
                )
            if key:
                statements.append(
                    {
                        "Sid": "TablesKey",
                        "Effect": "Allow",
                        "Action": list(TABLE_KEY_ACTIONS),
                        "Resource": key,
                        "Condition": {"StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}},
                    }
                )
        secrets = [a for a in secret_arns if SECRET_ARN_RE.match(a)]
        parameters = [a for a in secret_arns if PARAMETER_ARN_RE.match(a)]
        if secrets:
            statements.append(
                {"Sid": "Secrets", "Effect": "Allow", "Action": list(SECRET_ACTIONS), "Resource": secrets}
            )
        if parameters:
            statements.append(
                {"Sid": "Parameters", "Effect": "Allow", "Action": list(PARAMETER_ACTIONS), "Resource": parameters}
            )
        return json.dumps({"Version": "2012-10-17", "Statement": statements})

    return pulumi.Output.all(*(arn for arn, _ in tables), kms_key_arn).apply(build)


def _probe(path: str | None) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}} if path else {"tcpSocket": {"port": "http"}}


def validate_microservice(m: Microservice, *, where: str, tables: Mapping[str, Any] | None = None) -> None:
    """Raise ValueError naming `where` and the field if the spec is not one the platform can run."""
    if not _DNS_LABEL_RE.match(m.name) or len(m.name) > MAX_SERVICE_NAME or m.name == "limiter":
        raise ValueError(
            f"{where} name {m.name!r} must be a DNS label of at most {MAX_SERVICE_NAME} characters (its IAM role "
            "name must fit in 64) other than 'limiter'."
        )
    if not _PATH_RE.match(m.path_prefix):
        raise ValueError(f"{where} '{m.name}' path_prefix must be a path starting with '/', not {m.path_prefix!r}.")
    if not 1 <= m.min_replicas <= m.max_replicas:
        raise ValueError(f"{where} '{m.name}' needs 1 <= min_replicas <= max_replicas.")
    for field_name in ("readiness_path", "liveness_path"):
        path = getattr(m, field_name)
        if path is not None and not _PATH_RE.match(path):
            raise ValueError(f"{where} '{m.name}' {field_name} must be a path starting with '/', not {path!r}.")
    for field_name in ("command", "args"):
        value = getattr(m, field_name)
        if value is not None and (not value or not all(isinstance(v, str) and v for v in value)):
            raise ValueError(f"{where} '{m.name}' {field_name} must be a non-empty list of non-empty strings.")
    if len(set(m.tables)) != len(m.tables):
        raise ValueError(f"{where} '{m.name}' tables lists a table twice.")
    if tables is not None:
        unknown = [t for t in m.tables if t not in tables]
        if unknown:
            raise ValueError(
                f"{where} '{m.name}' tables {unknown} are not app tables of this stack; known: {sorted(tables)}."
            )
    for env_name, arn in m.secrets:
        if not (SECRET_ARN_RE.match(arn) or PARAMETER_ARN_RE.match(arn)):
            raise ValueError(
                f"{where} '{m.name}' secret {env_name} has {arn!r}; expected a Secrets Manager secret ARN "
                "(arn:aws:secretsmanager:<region>:<account>:secret:<name>) or an SSM parameter ARN "
                "(arn:aws:ssm:<region>:<account>:parameter/<name>)."
            )
    names = [k for k, _ in m.env] + [k for k, _ in m.secrets] + [table_env_name(t) for t in m.tables]
    for env_name in names:
        if not ENV_NAME_RE.match(env_name):
            raise ValueError(f"{where} '{m.name}' env var name {env_name!r} must match {ENV_NAME_RE.pattern}.")
        if env_name in _PLATFORM_ENV:
            raise ValueError(f"{where} '{m.name}' env var {env_name} is set by the platform.")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(
            f"{where} '{m.name}' sets env var(s) {', '.join(dupes)} twice (env, secrets and TABLE_<name> share one "
            "namespace)."
        )


def _validate(args: ServicesArgs) -> None:
    if args.mesh is None:
        raise ValueError("ServicesArgs.mesh must be istiod's Helm release (the mesh's `istiod`).")
    names = [m.name for m in args.microservices]
    if len(set(names)) != len(names):
        raise ValueError("ServicesArgs.microservices must have unique names.")
    for m in args.microservices:
        validate_microservice(m, where="ServicesArgs.microservices", tables=args.table_arns)
        missing = [t for t in m.tables if t not in args.table_names]
        if missing:
            raise ValueError(f"ServicesArgs.table_names has no physical name for {missing} (used by '{m.name}').")
        if m.tables and args.tables_kms_key_arn is None:
            raise ValueError(
                f"ServicesArgs.tables_kms_key_arn is required: '{m.name}' uses tables encrypted with that key."
            )
