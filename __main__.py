"""The platform: the stack's config, composed into layers once per region, then the global edge.

Each region gets an explicit AWS provider, so a layer never falls back to the ambient region; the
Kubernetes resources use the region's cluster provider.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

import stack_config
from components.api_gateway import ApiGatewaySettings, consumer_api_keys
from components.data import Data, DataArgs
from components.edge import GlobalEdge, GlobalEdgeArgs, RegionalEdge, RegionalEdgeArgs, origin_header_secret
from components.eks import EksCluster, EksClusterArgs
from components.limiter import Limiter, LimiterArgs, platforms_for_instance_types
from components.mesh import (
    ALB_TRUSTED_PROXIES,
    API_GATEWAY_TRUSTED_PROXIES,
    CLOUDFRONT_AND_ALB_TRUSTED_PROXIES,
    Mesh,
    MeshArgs,
)
from components.observability import (
    AlarmTopic,
    AlarmTopicArgs,
    GlobalObservability,
    GlobalObservabilityArgs,
    PrometheusCollection,
    RegionalObservability,
    RegionalObservabilityArgs,
    RegionView,
    WatchedApiStage,
    WatchedTable,
)
from components.services import Services, ServicesArgs, routes_for

cfg = stack_config.load()

# Edge secrets, once per stack: the header CloudFront sends to every region's ALB, and one API key
# per consumer, identical in every region that api.<domain> latency routing may pick.
origin_secret = origin_header_secret("origin-header").result if cfg.cloudfront_enabled else None
api_key_values = consumer_api_keys("api-key", cfg.api_consumers) if cfg.api_gateway_enabled else {}
# CloudFront's certificate and web ACL must live in us-east-1, whatever the stack's regions; Route 53
# (global) is looked up through the same provider.
global_provider = aws.Provider(
    "aws-global", region="us-east-1", default_tags=aws.ProviderDefaultTagsArgs(tags=cfg.tags_for())
)
zone_id = (
    cfg.hosted_zone_id
    or aws.route53.get_zone_output(
        name=cfg.domain, private_zone=False, opts=pulumi.InvokeOptions(provider=global_provider)
    ).zone_id
)
regional_edges: list[RegionalEdge] = []
# Observability: one alarm topic per region that has alarms (an alarm notifies a topic in its own region).
alarm_topics: dict[str, AlarmTopic] = {}
region_views: list[RegionView] = []

regional_exports: dict[str, dict[str, pulumi.Output]] = {}
kubeconfigs: dict[str, pulumi.Output[str]] = {}

for region in cfg.regions:
    tags = cfg.tags_for(region)
    provider = aws.Provider(f"aws-{region}", region=region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags))
    aws_opts = pulumi.ResourceOptions(providers={"aws": provider})
    if cfg.observability_enabled:
        alarm_topics[region] = AlarmTopic(
            f"{region}-alarms",
            AlarmTopicArgs(
                region=region,
                emails=cfg.alarm_emails,
                existing_topic_arn=cfg.alarm_topic_arns.get(region),
                tags=tags,
            ),
            opts=aws_opts,
        )

    eks = EksCluster(
        f"{region}-eks",
        EksClusterArgs(
            region=region,
            kubernetes_version=cfg.kubernetes_version,
            vpc_cidr=cfg.vpc_cidr,
            nat_gateways=cfg.nat_gateways,
            public_access_cidrs=cfg.cluster_public_access_cidrs,
            endpoint_private_only=cfg.cluster_endpoint_private_only,
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
            counters_billing_mode=cfg.counters_billing_mode,
            autoscaling=cfg.autoscaling,
            app_tables=cfg.app_tables,
            deletion_protection=cfg.deletion_protection,
            tags=tags,
        ),
        opts=aws_opts,
    )

    edge = RegionalEdge(
        f"{region}-edge",
        RegionalEdgeArgs(
            region=region,
            domain=cfg.domain,
            zone_id=zone_id,
            vpc_id=eks.vpc_id,
            vpc_cidr=eks.vpc_cidr,
            public_subnet_ids=eks.public_subnet_ids,
            private_subnet_ids=eks.private_subnet_ids,
            cloudfront_enabled=cfg.cloudfront_enabled,
            origin_secret=origin_secret,
            waf_rate_limit=cfg.waf_rate_limit,
            api_gateway=ApiGatewaySettings(
                throttle_rate_limit=cfg.api_throttle_rate_limit,
                throttle_burst_limit=cfg.api_throttle_burst_limit,
                consumers=cfg.api_consumers,
                api_key_values=api_key_values,
                manage_account_logging_role=cfg.api_gateway_account_logging_role,
                alarm_topic_arn=alarm_topics[region].topic_arn if cfg.observability_enabled else None,
                alarm_runbook_url=f"{cfg.runbook_url}#api-nlb-unhealthy" if cfg.observability_enabled else "",
            )
            if cfg.api_gateway_enabled
            else None,
            deletion_protection=cfg.deletion_protection,
            tags=tags,
        ),
        opts=aws_opts,
    )
    regional_edges.append(edge)

    # The cluster's Kubernetes provider for everything in it; anything with pods waits for the node groups.
    k8s_opts = pulumi.ResourceOptions(providers={"aws": provider, "kubernetes": eks.k8s_provider})
    mesh = Mesh(
        f"{region}-mesh",
        MeshArgs(
            load_balancer_controller=eks.load_balancer_controller,
            web_target_group_arn=edge.web_target_group_arn,
            web_lb_security_group_ids=edge.alb_security_group_ids,
            web_traffic_port=edge.web_traffic_port,
            web_trusted_proxies=CLOUDFRONT_AND_ALB_TRUSTED_PROXIES if cfg.cloudfront_enabled else ALB_TRUSTED_PROXIES,
            api_target_group_arn=edge.api_target_group_arn,
            api_lb_security_group_id=edge.api_lb_security_group_id,
            api_trusted_proxies=API_GATEWAY_TRUSTED_PROXIES,
            rate_limit_rules=cfg.rate_limit_rules,
            istio_chart_version=cfg.charts.istio,
            ext_authz_fail_open=cfg.ext_authz_fail_open,
            ext_authz_timeout_ms=cfg.ext_authz_timeout_ms,
            routes=routes_for(cfg.microservices),
            node_groups=eks.node_groups,
            health_check_paths=(edge.health_check_path,),
            api_stage_path_prefix=edge.api_stage_path_prefix,
        ),
        opts=k8s_opts,
    )
    limiter = Limiter(
        f"{region}-limiter",
        LimiterArgs(
            region=region,
            oidc_provider_arn=eks.oidc_provider_arn,
            oidc_issuer=eks.oidc_issuer,
            counters_table_name=data.counters_table_name,
            limiter_policy_json=data.limiter_policy_json,
            rate_limit_rules=cfg.rate_limit_rules,
            caller_principals=mesh.gateway_principals,
            mesh=mesh.istiod,
            min_replicas=cfg.limiter_min_replicas,
            max_replicas=cfg.limiter_max_replicas,
            node_groups=eks.node_groups,
            image_platforms=platforms_for_instance_types([t for g in cfg.node_groups for t in g.instance_types]),
            api_stage_path_prefix=edge.api_stage_path_prefix,
            deletion_protection=cfg.deletion_protection,
            tags=tags,
        ),
        opts=k8s_opts,
    )
    Services(
        f"{region}-services",
        ServicesArgs(
            region=region,
            microservices=cfg.microservices,
            oidc_provider_arn=eks.oidc_provider_arn,
            oidc_issuer=eks.oidc_issuer,
            mesh=mesh.istiod,
            table_names=data.app_table_names,
            table_arns=data.app_table_arns,
            table_indexes={t.name: [g.name for g in t.gsis] for t in cfg.app_tables},
            tables_kms_key_arn=data.kms_key_arn,
            node_groups=eks.node_groups,
            tags=tags,
        ),
        opts=k8s_opts,
    )

    if cfg.observability_enabled:
        tables = (
            WatchedTable("counters", data.counters_table_name),
            *(
                WatchedTable(spec.name, data.app_table_names[spec.name], tuple(data.app_table_gsi_names[spec.name]))
                for spec in cfg.app_tables
            ),
        )
        api_stage = (
            WatchedApiStage(api_name=edge.api_name, stage_name=edge.api_stage_name)
            if edge.api_name is not None and edge.api_stage_name is not None
            else None
        )
        observability = RegionalObservability(
            f"{region}-obs",
            RegionalObservabilityArgs(
                region=region,
                topic_arn=alarm_topics[region].topic_arn,
                tables=tables,
                alb_arn_suffix=edge.alb_arn_suffix,
                web_target_group_arn_suffix=edge.web_target_group_arn_suffix,
                web_acl_metric_name=edge.web_acl_metric_name,
                api_stage=api_stage,
                prometheus=PrometheusCollection(
                    cluster_arn=eks.cluster_arn,
                    subnet_ids=eks.private_subnet_ids,
                    security_group_ids=[eks.cluster_security_group_id],
                    ext_authz_timeout_ms=cfg.ext_authz_timeout_ms,
                ),
                thresholds=cfg.alarm_thresholds,
                runbook_url=cfg.runbook_url,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(providers={"aws": provider, "kubernetes": eks.k8s_provider}),
        )
        health_checks = {"origin": edge.origin_health_check_id}
        if edge.api_health_check_id is not None:
            health_checks["api"] = edge.api_health_check_id
        region_views.append(
            RegionView(
                region=region,
                tables=tables,
                alb_arn_suffix=edge.alb_arn_suffix,
                web_acl_metric_name=edge.web_acl_metric_name,
                api_stage=api_stage,
                health_check_ids=health_checks,
                workspace_id=observability.workspace_id,
            )
        )

    kubeconfigs[region] = eks.kubeconfig
    regional_exports[region] = {
        "clusterName": eks.cluster_name,
        "vpcId": eks.vpc_id,
        "countersTable": data.counters_table_name,
        "appTables": data.app_table_names,
        "albDnsName": edge.alb_dns_name,
        "webAclArn": edge.web_acl_arn,
        "apiRegionalDomain": edge.api_regional_domain,
        "limiterImage": limiter.image_ref,
    }

global_edge = GlobalEdge(
    "global-edge",
    GlobalEdgeArgs(
        domain=cfg.domain,
        zone_id=zone_id,
        regions=cfg.regions,
        cloudfront_enabled=cfg.cloudfront_enabled,
        price_class=cfg.cloudfront_price_class,
        origin_secret=origin_secret,
        waf_rate_limit=cfg.waf_rate_limit,
        deletion_protection=cfg.deletion_protection,
        tags=cfg.tags_for(),
    ),
    # Without CloudFront, <domain> aliases the origin.<domain> latency set, which must exist first.
    opts=pulumi.ResourceOptions(providers={"aws": global_provider}, depends_on=regional_edges),
)
if global_edge.distribution_domain is not None:
    pulumi.export("distributionDomain", global_edge.distribution_domain)
if api_key_values:
    pulumi.export("apiKeys", pulumi.Output.secret(api_key_values))

if cfg.observability_enabled:
    if "us-east-1" not in alarm_topics:
        alarm_topics["us-east-1"] = AlarmTopic(
            "global-alarms",
            AlarmTopicArgs(
                region="us-east-1",
                emails=cfg.alarm_emails,
                existing_topic_arn=cfg.alarm_topic_arns.get("us-east-1"),
                tags=cfg.tags_for(),
            ),
            opts=pulumi.ResourceOptions(providers={"aws": global_provider}),
        )
    global_observability = GlobalObservability(
        "global-obs",
        GlobalObservabilityArgs(
            topic_arn=alarm_topics["us-east-1"].topic_arn,
            dashboard_name=f"{cfg.project}-{cfg.stack}",
            regions=tuple(region_views),
            cloudfront_distribution_id=global_edge.distribution_id,
            cloudfront_acl_metric_name=global_edge.cloudfront_acl_metric_name,
            thresholds=cfg.alarm_thresholds,
            runbook_url=cfg.runbook_url,
            tags=cfg.tags_for(),
        ),
        opts=pulumi.ResourceOptions(providers={"aws": global_provider}),
    )
    pulumi.export("dashboard", global_observability.dashboard_name)
    pulumi.export("alarmTopics", {region: topic.topic_arn for region, topic in alarm_topics.items()})

pulumi.export("regions", list(cfg.regions))
pulumi.export("regional", regional_exports)
# Kept apart from "regional" so that a secret kubeconfig does not hide the plain outputs.
pulumi.export("kubeconfigs", pulumi.Output.secret(kubeconfigs))
