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
    name: str
    image: str
    port: int
    path_prefix: str
    min_replicas: int
    max_replicas: int
    cpu: str
    memory: str
    target_cpu_utilization: int


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
