"""Plain value types the layers take: what a stack's config declares, already validated.

They live beside the components (not in stack_config.py) so that another program can import a layer
and build these values from its own configuration.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeGroup:
    name: str
    instance_types: tuple[str, ...]
    min_size: int
    desired_size: int
    max_size: int
    capacity_type: str
    disk_size_gib: int


@dataclass(frozen=True)
class Microservice:
    """A service run in the mesh (stack config `microservices`; docs/add-a-microservice.md).

    Every field after `path_prefix` has a default; the defaults are the hardened ones.
    """

    name: str
    """DNS label; names the Deployment, Service, ServiceAccount, HPA, PDB and route."""
    image: str
    """Container image; pin it by digest (repo@sha256:...) to keep nodes from re-pulling a tag."""
    port: int
    """The container's HTTP port."""
    path_prefix: str
    """Routed on both ingress gateways on whole path segments (/orders: /orders and /orders/...)."""
    min_replicas: int = 2
    """HPA lower bound."""
    max_replicas: int = 10
    """HPA upper bound."""
    cpu: str = "250m"
    """CPU request and limit."""
    memory: str = "256Mi"
    """Memory request and limit."""
    target_cpu_utilization: int = 70
    """HPA CPU target, percent of the request."""
    env: tuple[tuple[str, str], ...] = ()
    """Plain environment variables (name, value); none by default. Never put a secret here: use `secrets`."""
    tables: tuple[str, ...] = ()
    """App tables (stack config `appTables` names) the service uses: its IAM role gets item access to exactly
    these tables and their indexes, and it receives each table's physical name as TABLE_<NAME>. None by
    default: then the service has no AWS permission at all."""
    secrets: tuple[tuple[str, str], ...] = ()
    """(env var, ARN) of Secrets Manager secrets or SSM parameters its role may read; the env var holds the
    ARN (the value is read at run time, never stored in the pod spec). None by default."""
    readiness_path: str | None = None
    """HTTP path of the readiness probe; None (default) probes the TCP port."""
    liveness_path: str | None = None
    """HTTP path of the liveness probe; None (default) probes the TCP port."""
    command: tuple[str, ...] | None = None
    """Overrides the image's ENTRYPOINT; None (default) keeps it."""
    args: tuple[str, ...] | None = None
    """Overrides the image's CMD; None (default) keeps it."""
    tmp_size: str = "256Mi"
    """Size limit of the writable /tmp (an emptyDir; the root filesystem is always read-only)."""


@dataclass(frozen=True)
class Gsi:
    name: str
    hash_key: str
    range_key: str | None
    projection_type: str


@dataclass(frozen=True)
class AppTable:
    name: str
    hash_key: str
    range_key: str | None
    attributes: tuple[tuple[str, str], ...]
    gsis: tuple[Gsi, ...]
    billing_mode: str
    ttl_attribute: str | None


@dataclass(frozen=True)
class Autoscaling:
    """Capacity bounds and target for every PROVISIONED table and GSI (reads and writes alike)."""

    min_capacity: int
    max_capacity: int
    target_utilization: int


@dataclass(frozen=True)
class ApiConsumer:
    name: str
    rate_limit: int
    burst_limit: int
    quota_per_day: int


@dataclass(frozen=True)
class ChartVersions:
    istio: str
    load_balancer_controller: str
    cluster_autoscaler: str
    metrics_server: str
