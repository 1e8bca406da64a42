"""The rate limiter of one region: its image, IAM role, Deployment and the objects that keep it available.

- The image is built from `limiter_service/` and pushed to a private, immutable, scanned ECR repository;
  the tag is a content hash of that folder (immutable tags never collide) and the Deployment pins the
  pushed digest.
- Its only AWS permission is the data layer's least-privilege policy on the counters table, through an
  IRSA role that one ServiceAccount can assume.
- The rules come from stack config, rendered into a ConfigMap; a checksum of them on the pod template
  rolls the pods whenever they change.
- It scales horizontally (HPA), survives drains (PDB), spreads over zones, and admits traffic only from
  the ingress gateways' identities (and the apps namespace, for the decision API) over mutual TLS.

The mesh (components/mesh.py) points its ext_authz provider at LIMITER_HOST:LIMITER_PORT.
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

from components import manifests
from components.irsa import irsa_role
from components.manifests import APPS_NAMESPACE, INGRESS_NAMESPACE, LIMITER_NAMESPACE

LIMITER_NAME = "limiter"
LIMITER_PORT = 8080
LIMITER_RULES_DIR = "/etc/limiter"
LIMITER_RULES_FILE = f"{LIMITER_RULES_DIR}/rules.yaml"
LIMITER_HOST = f"{LIMITER_NAME}.{LIMITER_NAMESPACE}.svc.cluster.local"
# The pod label every limiter object selects by (the Prometheus scrape of the observability layer too).
LIMITER_SELECTOR = {"app": LIMITER_NAME}
# Where the limiter serves its Prometheus metrics (limiter_service/README.md).
LIMITER_METRICS_PATH = "/metrics"
RULES_CHECKSUM_ANNOTATION = "checksum/rate-limit-rules"


@dataclass(frozen=True)
class LimiterArgs:
    """Inputs of the rate limiter of one region."""

    region: str
    """The AWS region (the providers come through opts; this names the limiter's AWS_REGION)."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider ARN (IRSA trust)."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer without https:// (IRSA trust conditions)."""
    counters_table_name: pulumi.Input[str]
    """The limiter's DynamoDB counters table."""
    limiter_policy_json: pulumi.Input[str]
    """The data layer's least-privilege policy: the limiter role's only permission."""
    rate_limit_rules: Sequence[Mapping[str, Any]]
    """The limiter's rules, in its rules-file format."""
    caller_principals: Sequence[str]
    """SPIFFE identities allowed to call the limiter (the ingress gateways'; the mesh's `gateway_principals`)."""
    mesh: pulumi.Resource
    """istiod's Helm release (the mesh's `istiod`): its sidecar injector must exist before the pods."""
    min_replicas: int = 3
    """Lower bound of the limiter's HPA."""
    max_replicas: int = 20
    """Upper bound of the limiter's HPA."""
    node_groups: Sequence[pulumi.Resource] = ()
    """The region's managed node groups: the pods wait for nodes that have joined."""
    image_platforms: Sequence[str] = ("linux/amd64",)
    """Platforms of the limiter image; match the node groups' architectures (see `platforms_for_instance_types`)."""
    source_dir: str = "limiter_service"
    """The limiter's build context, relative to the Pulumi project directory; its Dockerfile is inside."""
    api_stage_path_prefix: str | None = None
    """The segment API Gateway puts before every path on the API entry (e.g. "/apigw"): the limiter matches
    rules on the path without it."""
    deletion_protection: bool = True
    """Keep the image repository from being deleted with its images (protected, no force delete); off lets
    `pulumi destroy` delete it and the images in it."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every AWS resource."""


class Limiter(pulumi.ComponentResource):
    """The rate limiter: ECR repository and image, IRSA role, rules ConfigMap, Deployment, HPA, PDB, policies."""

    image_ref: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    repository_url: pulumi.Output[str]

    def __init__(self, name: str, args: LimiterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _validate(args)
        super().__init__("ratelimited:index:Limiter", name, None, opts)
        self._name = name
        self._args = args
        self._tags = dict(args.tags)
        self._rules_yaml = render_rules(args.rate_limit_rules)

        namespace = manifests.namespace(
            f"{name}-ns", LIMITER_NAMESPACE, {"istio-injection": "enabled"}, self._opts(depends_on=[args.mesh])
        )
        self._create_image()
        self._create_workload(namespace)
        self._create_mesh_policies(namespace)

        self.register_outputs(
            {"imageRef": self.image_ref, "roleArn": self.role_arn, "repositoryUrl": self.repository_url}
        )

    def _opts(self, *, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))

    def _create_image(self) -> None:
        args = self._args
        repository = aws.ecr.Repository(
            f"{self._name}-repo",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS")],
            # ECR refuses to delete a repository that holds images unless forced: with protection on, the
            # repository is protected, so `pulumi destroy` stops at its preview instead of half-way.
            force_delete=not args.deletion_protection,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )
        aws.ecr.LifecyclePolicy(
            f"{self._name}-lifecycle",
            repository=repository.name,
            policy=json.dumps(lifecycle_policy()),
            opts=self._opts(),
        )
        self.repository_url = repository.repository_url
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        tag = image_tag(source_digest(args.source_dir), args.image_platforms)
        context = args.source_dir
        image = docker_build.Image(
            f"{self._name}-image",
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
        self.image_ref = pulumi.Output.concat(repository.repository_url, "@", image.digest)

    def _create_workload(self, namespace: pulumi.Resource) -> None:
        args = self._args
        role = irsa_role(
            self._name,
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            namespace=LIMITER_NAMESPACE,
            service_account=LIMITER_NAME,
            policy_json=args.limiter_policy_json,
            tags=self._tags,
            parent=self,
        )
        self.role_arn = role.arn
        labels = {**LIMITER_SELECTOR, **manifests.labels(LIMITER_NAME)}
        meta = {"namespace": LIMITER_NAMESPACE, "labels": labels}
        ns_dep = [namespace]

        account = k8s.core.v1.ServiceAccount(
            f"{self._name}-sa",
            metadata={**meta, "name": LIMITER_NAME, "annotations": {"eks.amazonaws.com/role-arn": role.arn}},
            automount_service_account_token=False,
            opts=self._opts(depends_on=ns_dep),
        )
        rules = k8s.core.v1.ConfigMap(
            f"{self._name}-rules",
            metadata={**meta, "name": "limiter-rules"},
            data={"rules.yaml": self._rules_yaml},
            opts=self._opts(depends_on=ns_dep),
        )
        container = {
            "name": LIMITER_NAME,
            "image": self.image_ref,
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
            "securityContext": manifests.container_security_context(),
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
            # Istio's metrics merging (meshConfig.enablePrometheusMerge) serves these with the sidecar's own on
            # the plain-text port 15020 (/stats/prometheus), which the NetworkPolicy admits: the app port
            # takes only mutual TLS, so a scraper outside the mesh could not read it there.
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(LIMITER_PORT),
            "prometheus.io/path": LIMITER_METRICS_PATH,
        }
        deployment = manifests.deployment(
            f"{self._name}-deployment",
            name=LIMITER_NAME,
            namespace=LIMITER_NAMESPACE,
            labels=labels,
            container=container,
            annotations=pod_annotations,
            service_account=LIMITER_NAME,
            volumes=[
                {"name": "rules", "configMap": {"name": "limiter-rules"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            ],
            # Pods need the sidecar injector (istiod) and nodes to run on.
            opts=self._opts(depends_on=[args.mesh, *args.node_groups, account, rules, *ns_dep]),
        )
        common = {"name": LIMITER_NAME, "namespace": LIMITER_NAMESPACE, "labels": labels}
        manifests.service(f"{self._name}-service", port=LIMITER_PORT, opts=self._opts(depends_on=ns_dep), **common)
        manifests.hpa(
            f"{self._name}-hpa",
            min_replicas=args.min_replicas,
            max_replicas=args.max_replicas,
            cpu_target=70,
            opts=self._opts(depends_on=[deployment]),
            **common,
        )
        manifests.pdb(f"{self._name}-pdb", opts=self._opts(depends_on=ns_dep), **common)
        manifests.network_policy(
            f"{self._name}-netpol",
            port=LIMITER_PORT,
            from_namespaces=[INGRESS_NAMESPACE, APPS_NAMESPACE],
            opts=self._opts(depends_on=ns_dep),
            **common,
        )

    def _create_mesh_policies(self, namespace: pulumi.Resource) -> None:
        # ext_authz from the gateways is plain HTTP to the limiter's host; Istio's outbound cluster for that
        # host wraps it in mutual TLS. Pin that explicitly, and admit only the gateways' identities (and the
        # apps, for the decision API): with STRICT mTLS the principal cannot be forged.
        args = self._args
        labels = {**LIMITER_SELECTOR, **manifests.labels(LIMITER_NAME)}
        deps = [args.mesh, namespace]
        k8s.apiextensions.CustomResource(
            f"{self._name}-mtls",
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
            opts=self._opts(depends_on=deps),
        )
        k8s.apiextensions.CustomResource(
            f"{self._name}-callers",
            api_version="security.istio.io/v1",
            kind="AuthorizationPolicy",
            metadata={"name": f"{LIMITER_NAME}-callers", "namespace": LIMITER_NAMESPACE, "labels": labels},
            spec={
                "selector": {"matchLabels": dict(LIMITER_SELECTOR)},
                "action": "ALLOW",
                "rules": [
                    {"from": [{"source": {"principals": sorted(args.caller_principals)}}]},
                    {"from": [{"source": {"namespaces": [APPS_NAMESPACE]}}]},
                ],
            },
            opts=self._opts(depends_on=deps),
        )


# -- pure functions (values the tests and other layers can compute too) -------------------------------
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
            raise ValueError(f"LimiterArgs.rate_limit_rules is invalid: {exc}") from exc
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
        raise ValueError(f"LimiterArgs.source_dir {str(directory)!r} is not a directory.")
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


def _validate(args: LimiterArgs) -> None:
    if not args.region:
        raise ValueError("LimiterArgs.region must not be empty.")
    if not args.rate_limit_rules:
        raise ValueError("LimiterArgs.rate_limit_rules must list at least one rule.")
    if not 1 <= args.min_replicas <= args.max_replicas:
        raise ValueError("LimiterArgs.min_replicas must be at least 1 and not exceed max_replicas.")
    if not args.caller_principals:
        raise ValueError("LimiterArgs.caller_principals must name the ingress gateways' identities.")
    if args.mesh is None:
        raise ValueError("LimiterArgs.mesh must be istiod's Helm release (the mesh's `istiod`).")
    stage = args.api_stage_path_prefix
    if stage is not None and not re.match(r"^/[A-Za-z0-9_-]+$", stage):
        raise ValueError(f"LimiterArgs.api_stage_path_prefix must be one path segment like '/apigw', not {stage!r}.")
    if not args.image_platforms or any(p not in ("linux/amd64", "linux/arm64") for p in args.image_platforms):
        raise ValueError("LimiterArgs.image_platforms must list linux/amd64 and/or linux/arm64.")
