"""Hardened Kubernetes manifests shared by the workload layers (the limiter and the microservices).

Every workload gets the same defaults: a non-root user, a read-only root filesystem, no capabilities,
the runtime's seccomp profile, no Kubernetes API token, a sidecar, spread over zones then nodes, no
`replicas` (the HPA owns the count), a PodDisruptionBudget that never blocks a drain, and a
NetworkPolicy that admits only the named namespaces on the app port.

The platform's namespaces are named here because every layer needs them (the mesh admits callers from
them, the workloads live in them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

ISTIO_NAMESPACE = "istio-system"
INGRESS_NAMESPACE = "istio-ingress"
LIMITER_NAMESPACE = "limiter"
APPS_NAMESPACE = "apps"

# A non-root user with a high UID (a collision with a host user is then unlikely).
RUN_AS_USER = 10001

# The sidecar's merged Prometheus/health port (15020) and Envoy's own stats (15090).
SIDECAR_OPEN_PORTS = (15020, 15090)


def labels(app: str) -> dict[str, str]:
    """The recommended labels (app.kubernetes.io/*) every object of the platform carries."""
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/part-of": "ratelimited-platform",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def container_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def spread_constraints(selector: Mapping[str, str]) -> list[dict[str, Any]]:
    """Spread over zones, then nodes. ScheduleAnyway: a zone short of capacity must not stop a scale-out."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(selector)},
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def namespace(
    resource_name: str, name: str, extra_labels: Mapping[str, str], opts: pulumi.ResourceOptions
) -> k8s.core.v1.Namespace:
    return k8s.core.v1.Namespace(
        resource_name, metadata={"name": name, "labels": {**labels(name), **extra_labels}}, opts=opts
    )


def deployment(
    resource_name: str,
    *,
    name: str,
    namespace: str,
    labels: dict[str, str],
    container: dict,
    annotations: Mapping[str, Any],
    service_account: str | None,
    volumes: list[dict],
    opts: pulumi.ResourceOptions,
) -> k8s.apps.v1.Deployment:
    selector = {"app": labels["app"]}
    pod_labels = {**labels, "sidecar.istio.io/inject": "true"}
    spec: dict[str, Any] = {
        # No `replicas`: the HPA owns the count (server-side apply leaves the field to it).
        "selector": {"matchLabels": selector},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
        "template": {
            "metadata": {"labels": pod_labels, "annotations": dict(annotations)},
            "spec": {
                # No Kubernetes API access needed: IRSA and the sidecar use their own projected tokens.
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": RUN_AS_USER,
                    "runAsGroup": RUN_AS_USER,
                    "fsGroup": RUN_AS_USER,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
                "volumes": volumes,
                "topologySpreadConstraints": spread_constraints(selector),
                "terminationGracePeriodSeconds": 30,
            },
        },
    }
    if service_account:
        spec["template"]["spec"]["serviceAccountName"] = service_account
    return k8s.apps.v1.Deployment(
        resource_name, metadata={"name": name, "namespace": namespace, "labels": labels}, spec=spec, opts=opts
    )


def service(
    resource_name: str, *, name: str, namespace: str, labels: dict[str, str], port: int, opts: pulumi.ResourceOptions
) -> k8s.core.v1.Service:
    return k8s.core.v1.Service(
        resource_name,
        metadata={"name": name, "namespace": namespace, "labels": labels},
        spec={
            "type": "ClusterIP",
            "selector": {"app": labels["app"]},
            # Named and typed http so that Istio routes and authorizes it as HTTP.
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}],
        },
        opts=opts,
    )


def hpa(
    resource_name: str,
    *,
    name: str,
    namespace: str,
    labels: dict[str, str],
    min_replicas: int,
    max_replicas: int,
    cpu_target: int,
    opts: pulumi.ResourceOptions,
) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
    return k8s.autoscaling.v2.HorizontalPodAutoscaler(
        resource_name,
        metadata={"name": name, "namespace": namespace, "labels": labels},
        spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu_target}},
                }
            ],
        },
        opts=opts,
    )


def pdb(
    resource_name: str, *, name: str, namespace: str, labels: dict[str, str], opts: pulumi.ResourceOptions
) -> k8s.policy.v1.PodDisruptionBudget:
    # maxUnavailable (not minAvailable) so that a node drain is never blocked, even at one replica.
    return k8s.policy.v1.PodDisruptionBudget(
        resource_name,
        metadata={"name": name, "namespace": namespace, "labels": labels},
        spec={"maxUnavailable": 1, "selector": {"matchLabels": {"app": labels["app"]}}},
        opts=opts,
    )


def network_policy(
    resource_name: str,
    *,
    name: str,
    namespace: str,
    labels: dict[str, str],
    port: int,
    from_namespaces: Sequence[str],
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """Ingress only from the named namespaces on the app port; the sidecar's health/metrics ports from anywhere.

    Enforced once the cluster's CNI enforces NetworkPolicy (VPC CNI: enableNetworkPolicy); egress stays
    open (DynamoDB, STS, istiod). Kubelet probes reach the pod on 15020: the injector rewrites HTTP probes.
    """
    return k8s.networking.v1.NetworkPolicy(
        resource_name,
        metadata={"name": name, "namespace": namespace, "labels": labels},
        spec={
            "podSelector": {"matchLabels": {"app": labels["app"]}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                        for ns in from_namespaces
                    ],
                    "ports": [{"protocol": "TCP", "port": port}],
                },
                {"ports": [{"protocol": "TCP", "port": p} for p in SIDECAR_OPEN_PORTS]},
            ],
        },
        opts=opts,
    )
