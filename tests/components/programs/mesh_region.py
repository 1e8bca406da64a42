"""A small program around the cluster workloads alone: the mesh, the limiter and the microservices of one
region, with the stack's validated config, plain strings for the edge's ARNs, the tables and the cluster's
OIDC values, and stand-ins for the load balancer controller's release and a node group.

Run under mocks by tests/components/test_mesh.py (tools.mocked_run.run_stack(..., program=this file)).
Mirrors what `__main__.py` passes per region, without the EKS, data and edge layers.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

import stack_config
from components.limiter import Limiter, LimiterArgs, platforms_for_instance_types
from components.mesh import (
    ALB_TRUSTED_PROXIES,
    API_GATEWAY_TRUSTED_PROXIES,
    CLOUDFRONT_AND_ALB_TRUSTED_PROXIES,
    Mesh,
    MeshArgs,
)
from components.services import Services, ServicesArgs, routes_for

cfg = stack_config.load()
region = cfg.regions[0]
account = "123456789012"
issuer = f"oidc.eks.{region}.amazonaws.com/id/ABC"

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
# Stands in for the region's managed node groups (anything with pods must wait for them).
nodes = aws.iam.Role(f"{region}-nodes", assume_role_policy="{}", opts=pulumi.ResourceOptions(provider=provider))
opts = pulumi.ResourceOptions(providers={"aws": provider, "kubernetes": k8s_provider})
stage = "/apigw" if cfg.api_gateway_enabled else None

mesh = Mesh(
    f"{region}-mesh",
    MeshArgs(
        load_balancer_controller=lbc,
        web_target_group_arn=f"arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/web/0123456789abcdef",
        web_lb_security_group_ids=["sg-0alb00000000000a", "sg-0alb00000000000b"],
        web_traffic_port=80,
        web_trusted_proxies=CLOUDFRONT_AND_ALB_TRUSTED_PROXIES if cfg.cloudfront_enabled else ALB_TRUSTED_PROXIES,
        api_target_group_arn=(
            f"arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/api/fedcba9876543210"
            if cfg.api_gateway_enabled
            else None
        ),
        api_lb_security_group_id="sg-0nlb00000000000a" if cfg.api_gateway_enabled else None,
        api_trusted_proxies=API_GATEWAY_TRUSTED_PROXIES,
        rate_limit_rules=cfg.rate_limit_rules,
        istio_chart_version=cfg.charts.istio,
        ext_authz_fail_open=cfg.ext_authz_fail_open,
        ext_authz_timeout_ms=cfg.ext_authz_timeout_ms,
        routes=routes_for(cfg.microservices),
        node_groups=[nodes],
        api_stage_path_prefix=stage,
    ),
    opts=opts,
)
limiter = Limiter(
    f"{region}-limiter",
    LimiterArgs(
        region=region,
        oidc_provider_arn=f"arn:aws:iam::{account}:oidc-provider/{issuer}",
        oidc_issuer=issuer,
        counters_table_name=f"{region}-counters",
        limiter_policy_json=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["dynamodb:UpdateItem"], '
            f'"Resource": "arn:aws:dynamodb:{region}:{account}:table/{region}-counters"}}]}}'
        ),
        rate_limit_rules=cfg.rate_limit_rules,
        caller_principals=mesh.gateway_principals,
        mesh=mesh.istiod,
        min_replicas=cfg.limiter_min_replicas,
        max_replicas=cfg.limiter_max_replicas,
        node_groups=[nodes],
        image_platforms=platforms_for_instance_types([t for g in cfg.node_groups for t in g.instance_types]),
        api_stage_path_prefix=stage,
        deletion_protection=cfg.deletion_protection,
        tags={"Project": "ratelimited-platform", "Region": region},
    ),
    opts=opts,
)
services = Services(
    f"{region}-services",
    ServicesArgs(
        region=region,
        microservices=cfg.microservices,
        oidc_provider_arn=f"arn:aws:iam::{account}:oidc-provider/{issuer}",
        oidc_issuer=issuer,
        mesh=mesh.istiod,
        table_names={t.name: f"{region}-data-app-{t.name}-0123456" for t in cfg.app_tables},
        table_arns={
            t.name: f"arn:aws:dynamodb:{region}:{account}:table/{region}-data-app-{t.name}-0123456"
            for t in cfg.app_tables
        },
        table_indexes={t.name: [g.name for g in t.gsis] for t in cfg.app_tables},
        tables_kms_key_arn=f"arn:aws:kms:{region}:{account}:key/11111111-2222-3333-4444-555555555555",
        node_groups=[nodes],
        tags={"Project": "ratelimited-platform", "Region": region},
    ),
    opts=opts,
)
pulumi.export("limiterImage", limiter.image_ref)
