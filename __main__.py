"""The platform: the stack's config, composed into layers once per region, then the global edge.

Each region gets an explicit AWS provider, so a layer never falls back to the ambient region; the
Kubernetes resources use the region's cluster provider.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

import stack_config
from components.data import Data, DataArgs
from components.eks import EksCluster, EksClusterArgs

cfg = stack_config.load()

regional_exports: dict[str, dict[str, pulumi.Output]] = {}

for region in cfg.regions:
    tags = cfg.tags_for(region)
    provider = aws.Provider(f"aws-{region}", region=region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags))
    aws_opts = pulumi.ResourceOptions(providers={"aws": provider})

    eks = EksCluster(
        f"{region}-eks",
        EksClusterArgs(
            region=region,
            kubernetes_version=cfg.kubernetes_version,
            vpc_cidr=cfg.vpc_cidr,
            nat_gateways=cfg.nat_gateways,
            public_access_cidrs=cfg.cluster_public_access_cidrs,
            admin_role_arns=cfg.cluster_admin_role_arns,
            node_groups=cfg.node_groups,
            charts=cfg.charts,
            tags=tags,
        ),
        opts=aws_opts,
    )

    data = Data(
        f"{region}-data",
        DataArgs(
            region=region,
            counters_billing_mode=cfg.dynamodb_billing_mode,
            autoscaling=cfg.autoscaling,
            app_tables=cfg.app_tables,
            deletion_protection=cfg.deletion_protection,
            tags=tags,
        ),
        opts=aws_opts,
    )

    # <edge-regional>
    # </edge-regional>

    # <mesh>
    # </mesh>

    regional_exports[region] = {
        "clusterName": eks.cluster_name,
        "kubeconfig": eks.kubeconfig,
        "vpcId": eks.vpc_id,
        "countersTable": data.counters_table_name,
        "appTables": data.app_table_names,
    }

# <edge-global>
# </edge-global>

pulumi.export("regions", list(cfg.regions))
pulumi.export("regional", regional_exports)
