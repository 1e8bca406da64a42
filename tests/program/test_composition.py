"""How `__main__.py` composes the cluster layers: one obvious place per layer, nothing left of the build."""

from __future__ import annotations

import re

import pytest

from tools import stack_files

LAYERS = {
    "ratelimited:index:Mesh": {
        "kubernetes:helm.sh/v3:Release",
        "kubernetes:networking.istio.io/v1:Gateway",
        "kubernetes:networking.istio.io/v1:VirtualService",
        "kubernetes:security.istio.io/v1:AuthorizationPolicy",
        "kubernetes:security.istio.io/v1:PeerAuthentication",
        "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding",
        "kubernetes:core/v1:Namespace",
    },
    "ratelimited:index:Limiter": {
        "aws:ecr/repository:Repository",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        "docker-build:index:Image",
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "kubernetes:core/v1:Namespace",
        "kubernetes:core/v1:ServiceAccount",
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:core/v1:Service",
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "kubernetes:policy/v1:PodDisruptionBudget",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "kubernetes:networking.istio.io/v1:DestinationRule",
        "kubernetes:security.istio.io/v1:AuthorizationPolicy",
    },
    "ratelimited:index:Services": {
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "kubernetes:core/v1:Namespace",
        "kubernetes:core/v1:ServiceAccount",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:core/v1:Service",
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "kubernetes:policy/v1:PodDisruptionBudget",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    },
}


def test_main_has_no_layout_markers():
    text = (stack_files.ROOT / "__main__.py").read_text()
    assert not re.findall(r"#\s*</?[a-z-]+>", text)


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack"])
def test_each_region_gets_a_mesh_a_limiter_and_services_each_holding_only_its_layer(stack_name, request):
    stack = request.getfixturevalue(stack_name)
    regions = stack.exports()["regions"]
    for layer, allowed in LAYERS.items():
        components = stack.of_type(layer)
        assert sorted(c["name"].rsplit("-", 1)[0] for c in components) == sorted(regions), layer
        for component in components:
            types = {r["type"] for r in stack if r["custom"] and stack.is_below(r, component["name"])}
            assert types and types <= allowed, (component["name"], sorted(types - allowed))
            assert stack.parent_of(component)["type"] == "pulumi:pulumi:Stack", "composed by __main__.py"
