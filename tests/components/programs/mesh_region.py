"""A small program around the mesh layer alone: the stack's config, plain strings for the edge's ARNs and
security groups, and a stand-in Helm release for the load balancer controller.

Run under mocks by tests/components/test_mesh.py (tools.mocked_run.run_stack(..., program=this file)).
Mirrors what `__main__.py` passes to `Mesh` per region, without the EKS, data and edge layers.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.mesh import (
    ALB_TRUSTED_PROXIES,
    API_GATEWAY_TRUSTED_PROXIES,
    CLOUDFRONT_AND_ALB_TRUSTED_PROXIES,
    Mesh,
    MeshArgs,
    platforms_for_instance_types,
)
from components.specs import Microservice

config = pulumi.Config()
region = (config.get_object("regions") or ["eu-west-1"])[0]
cloudfront = config.get_bool("cloudfrontEnabled") or False
api_gateway = config.get_bool("apiGatewayEnabled") or False
node_groups = config.get_object("nodeGroups") or [{"instanceTypes": ["m7i.large"]}]

microservices = [
    Microservice(
        name=m["name"],
        image=m["image"],
        port=int(m["port"]),
        path_prefix=m["pathPrefix"],
        min_replicas=int(m.get("minReplicas", 2)),
        max_replicas=int(m.get("maxReplicas", 10)),
        cpu=m.get("cpu", "250m"),
        memory=m.get("memory", "256Mi"),
        target_cpu_utilization=int(m.get("targetCpuUtilization", 70)),
    )
    for m in config.get_object("microservices") or []
]

provider = aws.Provider(f"aws-{region}", region=region)
k8s_provider = k8s.Provider(f"{region}-k8s", kubeconfig="{}")
lbc = k8s.helm.v3.Release(
    f"{region}-lbc",
    chart="aws-load-balancer-controller",
    version="1.14.1",
    namespace="kube-system",
    repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo="https://aws.github.io/eks-charts"),
    opts=pulumi.ResourceOptions(provider=k8s_provider),
)
account = "123456789012"
mesh = Mesh(
    f"{region}-mesh",
    MeshArgs(
        region=region,
        kubernetes_version=config.get("kubernetesVersion") or "1.34",
        cluster_name=f"{region}-cluster",
        oidc_provider_arn=f"arn:aws:iam::{account}:oidc-provider/oidc.eks.{region}.amazonaws.com/id/ABC",
        oidc_issuer=f"oidc.eks.{region}.amazonaws.com/id/ABC",
        load_balancer_controller=lbc,
        web_target_group_arn=f"arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/web/0123456789abcdef",
        web_lb_security_group_ids=["sg-0alb00000000000a", "sg-0alb00000000000b"],
        web_traffic_port=80,
        web_trusted_proxies=CLOUDFRONT_AND_ALB_TRUSTED_PROXIES if cloudfront else ALB_TRUSTED_PROXIES,
        api_target_group_arn=(
            f"arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/api/fedcba9876543210" if api_gateway else None
        ),
        api_lb_security_group_id="sg-0nlb00000000000a" if api_gateway else None,
        api_trusted_proxies=API_GATEWAY_TRUSTED_PROXIES,
        counters_table_name=f"{region}-counters",
        limiter_policy_json=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["dynamodb:UpdateItem"], '
            f'"Resource": "arn:aws:dynamodb:{region}:{account}:table/{region}-counters"}}]}}'
        ),
        rate_limit_rules=config.get_object("rateLimitRules") or [],
        istio_chart_version=config.get("istioChartVersion") or "1.28.1",
        limiter_min_replicas=config.get_int("limiterMinReplicas") or 3,
        limiter_max_replicas=config.get_int("limiterMaxReplicas") or 20,
        ext_authz_fail_open=config.get_bool("extAuthzFailOpen") if config.get("extAuthzFailOpen") else True,
        ext_authz_timeout_ms=config.get_int("extAuthzTimeoutMs") or 200,
        microservices=microservices,
        image_platforms=platforms_for_instance_types([t for g in node_groups for t in g["instanceTypes"]]),
        tags={"Project": "ratelimited-platform", "Region": region},
    ),
    opts=pulumi.ResourceOptions(providers={"aws": provider, "kubernetes": k8s_provider}),
)
pulumi.export("limiterImage", mesh.limiter_image_ref)
