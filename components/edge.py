"""The edge of the request path: Route 53, WAF, CloudFront, the ALB and (through api_gateway.py) API Gateway.

Two components:

`RegionalEdge`, once per region, with that region's provider:
- a REGIONAL WAFv2 web ACL (AWS managed rule groups common, known bad inputs, IP reputation; a per-IP
  rate-based rule answering 429; logging to an `aws-waf-logs-` log group, the origin secret and API
  keys redacted), associated with the ALB and with the API Gateway stage;
- an internet-facing ALB in the public subnets: HTTPS (TLS 1.2+ policy, a DNS-validated certificate
  for origin.<domain>, <domain> and www.<domain>), HTTP redirecting to HTTPS, invalid headers dropped,
  access logs to a private, encrypted S3 bucket with lifecycle expiry, deletion protection from config;
  an IP target group (health check HTTP 15021 /healthz/ready) that the mesh binds to the web ingress
  gateway;
- with CloudFront on: the HTTPS listener answers 403 unless the request carries the secret origin
  header (`x-origin-verify`), except the health path; the ALB's security groups admit only CloudFront's
  origin-facing prefix list and, in a separate group, the Route 53 health checkers' prefix list (a
  prefix list counts as its maximum entries against the 60-rule quota: 55 + 25 do not fit in one
  group). With CloudFront off, the ALB admits 0.0.0.0/0 on 80/443;
- Route 53, per region: a health check of this region's ALB and the latency alias record
  `origin.<domain>` (set identifier = region, evaluate target health, health check id). The records
  live here because each belongs to one region's ALB and must go when the region goes;
- API Gateway when configured (components/api_gateway.py), including its `api.<domain>` latency record.

`GlobalEdge`, once per stack, with the us-east-1 provider:
- CloudFront when on: a CLOUDFRONT-scope web ACL, a us-east-1 certificate for <domain> and www.<domain>,
  origin `origin.<domain>` over HTTPS only (TLSv1.2) with the secret header, viewers HTTPS only with
  TLSv1.2_2021, static paths cached (Managed-CachingOptimized), everything else (the API paths) not
  cached (Managed-CachingDisabled) with every viewer header but Host forwarded
  (Managed-AllViewerExceptHostHeader: the origin sees Host origin.<domain>);
- the public names `<domain>` and `www.<domain>`: aliases to CloudFront when it is on, else to the
  `origin.<domain>` latency set (so the program must create GlobalEdge after the RegionalEdges).

Health checks. Route 53 must judge one region's ALB, so the check targets that ALB's DNS name, not
origin.<domain> (which resolves to whichever region is closest to the checker). It is HTTPS on 443 with
SNI; Route 53 does not validate the certificate, so the ALB answering with its default certificate
(origin.<domain>) is fine. The checkers send no custom header, so the listener lets the health path
through without the origin header, and its Host is the ALB's DNS name: the mesh routes HEALTH_PATH on
the web gateway for any host (to the gateway's own readiness, 15021), and the limiter's
AuthorizationPolicy excludes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.api_gateway import (
    GATEWAY_READY_PORT,
    LB_NAME_PREFIXES,
    ApiGateway,
    ApiGatewayArgs,
    ApiGatewaySettings,
    gateway_health_check,
)
from components.certificates import validated_certificate

__all__ = [
    "HEALTH_PATH", "ORIGIN_HEADER", "WEB_TRAFFIC_PORT", "ApiGatewaySettings", "GlobalEdge", "GlobalEdgeArgs",
    "RegionalEdge", "RegionalEdgeArgs", "origin_header_secret",
]  # fmt: skip

# The header CloudFront adds to every origin request; the ALB forwards only requests that carry it.
ORIGIN_HEADER = "x-origin-verify"
# The path Route 53 checks on each ALB; let through without the origin header. The mesh routes it on the
# web gateway to the gateway's readiness endpoint.
HEALTH_PATH = "/healthz/ready"
# The port the ALB's target group sends traffic to on the web ingress gateway's pods: the `gateway`
# chart's Service maps port 80 to targetPort 80, so a TargetGroupBinding with serviceRef port 80
# registers pod-IP:80; the Istio Gateway resource binds port 80, protocol HTTP (the ALB terminates TLS).
WEB_TRAFFIC_PORT = 80
# TLS 1.3 and 1.2 only, forward-secret ciphers.
ALB_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
CLOUDFRONT_TLS_POLICY = "TLSv1.2_2021"
CLOUDFRONT_PREFIX_LIST = "com.amazonaws.global.cloudfront.origin-facing"
STATIC_PATHS = ("/static/*", "/assets/*", "/favicon.ico")

_DOMAIN_RE = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_PRICE_CLASSES = ("PriceClass_100", "PriceClass_200", "PriceClass_All")
# Regions opened before August 2022 deliver ALB access logs as the regional ELB account (looked up with
# aws.elb.get_service_account); newer regions use the log-delivery service principal.
_LEGACY_ELB_LOG_REGIONS = frozenset({
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-east-1", "ap-south-1",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ca-central-1",
    "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1", "eu-north-1", "me-south-1",
    "sa-east-1", "us-gov-west-1", "us-gov-east-1", "cn-north-1", "cn-northwest-1",
})  # fmt: skip
_ACCESS_LOG_PREFIX = "alb"


def route53_healthcheck_prefix_list(region: str) -> str:
    """Name of the AWS-managed prefix list of the Route 53 health checkers, as seen from `region`."""
    return f"com.amazonaws.{region}.route53-healthchecks"


def origin_header_secret(name: str, parent: pulumi.Resource | None = None) -> random.RandomPassword:
    """The secret origin header value, once per stack; `.result` is a Pulumi secret.

    Letters and digits only: ALB header conditions treat `*` and `?` as wildcards.
    """
    return random.RandomPassword(name, length=48, special=False, opts=pulumi.ResourceOptions(parent=parent))


# --- regional ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionalEdgeArgs:
    """Inputs of the edge of one region."""

    region: str
    """The AWS region (the provider comes through opts; this names prefix lists and latency records)."""
    domain: str
    """The platform's domain, e.g. example.com; the ALB serves origin.<domain>, <domain> and www.<domain>."""
    zone_id: pulumi.Input[str]
    """Route 53 public hosted zone of the domain."""
    vpc_id: pulumi.Input[str]
    """The region's VPC."""
    vpc_cidr: str
    """The VPC's CIDR: the load balancers reach the gateway pods (and their health port) inside it only."""
    public_subnet_ids: Sequence[pulumi.Input[str]]
    """Public subnets (three zones) for the ALB."""
    private_subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets (three zones) for the API Gateway NLB and VPC link."""
    cloudfront_enabled: bool = False
    """CloudFront is in front: the ALB then admits only CloudFront (and Route 53 health checks)."""
    origin_secret: pulumi.Input[str] | None = None
    """The secret origin header value (from origin_header_secret); required when cloudfront_enabled."""
    waf_rate_limit: int = 3000
    """Requests per client IP per 5 minutes before WAF answers 429 (a coarse backstop under the limiter)."""
    api_gateway: ApiGatewaySettings | None = None
    """API Gateway settings; None: no API Gateway in this region."""
    deletion_protection: bool = True
    """Deletion protection on the load balancers; keep the access log bucket's objects on delete."""
    access_log_retention_days: int = 90
    """Days the ALB access logs (and WAF logs) are kept."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every resource."""


class RegionalEdge(pulumi.ComponentResource):
    """The entry of one region: WAF, ALB, access logs, Route 53 latency record + health check, API Gateway."""

    alb_arn: pulumi.Output[str]
    alb_dns_name: pulumi.Output[str]
    alb_zone_id: pulumi.Output[str]
    alb_security_group_ids: list[pulumi.Output[str]]
    web_target_group_arn: pulumi.Output[str]
    web_traffic_port: int
    health_check_path: str
    api_target_group_arn: pulumi.Output[str] | None
    api_lb_security_group_id: pulumi.Output[str] | None
    api_stage_path_prefix: str | None
    web_acl_arn: pulumi.Output[str]
    api_regional_domain: pulumi.Output[str] | None
    alb_arn_suffix: pulumi.Output[str]
    web_target_group_arn_suffix: pulumi.Output[str]
    web_acl_metric_name: pulumi.Output[str]
    origin_health_check_id: pulumi.Output[str]
    api_name: pulumi.Output[str] | None
    api_stage_name: pulumi.Output[str] | None
    api_health_check_id: pulumi.Output[str] | None

    def __init__(self, name: str, args: RegionalEdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ratelimited:index:RegionalEdge", name, None, opts)
        _validate_regional(args)
        self._name = name
        self._args = args
        self._tags = dict(args.tags)
        self.web_traffic_port = WEB_TRAFFIC_PORT
        self.health_check_path = HEALTH_PATH

        acl = web_acl(
            f"{name}-waf",
            scope="REGIONAL",
            rate_limit=args.waf_rate_limit,
            # Behind CloudFront the ALB sees CloudFront's addresses, not the client's: requests carrying
            # the origin secret were rate-limited per client IP by the CloudFront ACL already, so the
            # per-IP rule here counts only the rest (API Gateway clients, and anyone bypassing CloudFront).
            exempt_origin_secret=args.origin_secret if args.cloudfront_enabled else None,
            retention_days=args.access_log_retention_days,
            tags=self._tags,
            parent=self,
        )
        security_group_ids = self._create_security_groups()
        log_bucket, log_bucket_ready = self._create_access_log_bucket()
        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            # Load balancer names have at most 32 characters: "<logical name>-<7 hex>" overflows with a long
            # region or component name, so the provider makes "web-<26 characters>" (a 6-character prefix at most).
            name_prefix=LB_NAME_PREFIXES["web"],
            load_balancer_type="application",
            internal=False,
            subnets=list(args.public_subnet_ids),
            security_groups=security_group_ids,
            ip_address_type="ipv4",
            drop_invalid_header_fields=True,
            desync_mitigation_mode="defensive",
            enable_http2=True,
            idle_timeout=60,
            enable_deletion_protection=args.deletion_protection,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(
                bucket=log_bucket.bucket, prefix=_ACCESS_LOG_PREFIX, enabled=True
            ),
            tags=self._tags,
            # ELB checks that it may write to the bucket when access logs are turned on. AWS refuses to
            # delete a load balancer with deletion protection: `protect` stops `pulumi destroy` at its
            # preview instead, before anything is deleted.
            opts=pulumi.ResourceOptions(parent=self, depends_on=log_bucket_ready, protect=args.deletion_protection),
        )
        aws.wafv2.WebAclAssociation(
            f"{name}-alb-waf",
            resource_arn=alb.arn,
            web_acl_arn=acl.arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        target_group = self._create_listeners(alb)
        origin_health_check = self._create_dns(alb)

        api = None
        if args.api_gateway is not None:
            api = ApiGateway(
                f"{name}-apigw",
                ApiGatewayArgs(
                    region=args.region,
                    domain=args.domain,
                    zone_id=args.zone_id,
                    vpc_id=args.vpc_id,
                    vpc_cidr=args.vpc_cidr,
                    private_subnet_ids=args.private_subnet_ids,
                    web_acl_arn=acl.arn,
                    settings=args.api_gateway,
                    deletion_protection=args.deletion_protection,
                    tags=self._tags,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.alb_arn = alb.arn
        self.alb_dns_name = alb.dns_name
        self.alb_zone_id = alb.zone_id
        self.alb_security_group_ids = security_group_ids
        self.web_target_group_arn = target_group.arn
        self.web_acl_arn = acl.arn
        self.api_target_group_arn = api.target_group_arn if api else None
        self.api_lb_security_group_id = api.lb_security_group_id if api else None
        self.api_stage_path_prefix = api.stage_path_prefix if api else None
        self.api_regional_domain = api.regional_domain if api else None
        # What the observability layer binds its alarms and dashboard to (CloudWatch dimensions).
        self.alb_arn_suffix = alb.arn_suffix
        self.web_target_group_arn_suffix = target_group.arn_suffix
        self.web_acl_metric_name = acl_metric_name(acl)
        self.origin_health_check_id = origin_health_check.id
        self.api_name = api.rest_api_name if api else None
        self.api_stage_name = api.stage_name if api else None
        self.api_health_check_id = api.health_check_id if api else None
        self.register_outputs(
            {
                "albArn": self.alb_arn,
                "albDnsName": self.alb_dns_name,
                "webTargetGroupArn": self.web_target_group_arn,
                "webAclArn": self.web_acl_arn,
                "apiTargetGroupArn": self.api_target_group_arn,
                "apiRegionalDomain": self.api_regional_domain,
            }
        )

    # -- security groups ------------------------------------------------------------------------
    def _create_security_groups(self) -> list[pulumi.Output[str]]:
        """The ALB's groups: the first always (egress to the gateway pods); ingress as CloudFront decides."""
        name, args, tags = self._name, self._args, self._tags
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        main = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            vpc_id=args.vpc_id,
            description="ALB: out to the web ingress gateway pods"
            + ("" if args.cloudfront_enabled else "; in from the internet on 80/443"),
            tags={**tags, "Name": f"{name}-alb"},
            opts=child,
        )
        for port, what in ((WEB_TRAFFIC_PORT, "traffic"), (GATEWAY_READY_PORT, "health")):
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-alb-to-gateway-{what}",
                security_group_id=main.id,
                cidr_ipv4=args.vpc_cidr,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"to the web ingress gateway pods ({what})",
                opts=child,
            )
        if not args.cloudfront_enabled:
            for port in (443, 80):
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-alb-from-internet-{port}",
                    security_group_id=main.id,
                    cidr_ipv4="0.0.0.0/0",
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    description="clients (no CloudFront in front)",
                    opts=child,
                )
            return [main.id]

        # A managed prefix list counts as its max entries against the 60-rule quota of a group:
        # CloudFront's 55 and Route 53's 25 go in two groups. Both are looked up in this region.
        groups = [main.id]
        for suffix, list_name, what in (
            ("cloudfront", CLOUDFRONT_PREFIX_LIST, "CloudFront origin-facing servers"),
            ("healthchecks", route53_healthcheck_prefix_list(args.region), "Route 53 health checkers"),
        ):
            prefix_list = aws.ec2.get_managed_prefix_list_output(name=list_name, opts=invoke)
            group = aws.ec2.SecurityGroup(
                f"{name}-alb-{suffix}-sg",
                vpc_id=args.vpc_id,
                description=f"ALB: HTTPS from the {what} only",
                tags={**tags, "Name": f"{name}-alb-{suffix}"},
                opts=child,
            )
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-alb-from-{suffix}",
                security_group_id=group.id,
                prefix_list_id=prefix_list.id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description=what,
                opts=child,
            )
            groups.append(group.id)
        return groups

    # -- access logs ----------------------------------------------------------------------------
    def _create_access_log_bucket(self) -> tuple[aws.s3.Bucket, list[pulumi.Resource]]:
        """The bucket, and what the ALB must wait for before it turns access logs on."""
        name, args, tags = self._name, self._args, self._tags
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            f"{name}-alb-logs",
            force_destroy=not args.deletion_protection,
            tags=tags,
            # Without force_destroy S3 refuses to delete the bucket while it holds logs: stop at preview.
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-alb-logs-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-alb-logs-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        # ALB access logs support SSE-S3 only (not SSE-KMS).
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-alb-logs-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    ),
                )
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-alb-logs-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-access-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=args.access_log_retention_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=7
                    ),
                )
            ],
            opts=child,
        )
        policy = aws.s3.BucketPolicy(
            f"{name}-alb-logs-policy",
            bucket=bucket.id,
            policy=self._log_bucket_policy(bucket),
            # A bucket policy is refused while the public access block is being set up.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        return bucket, [policy, ownership, encryption]

    def _log_bucket_policy(self, bucket: aws.s3.Bucket) -> pulumi.Output[str]:
        """ELB log delivery may write under alb/AWSLogs/<account>/; nothing may use plain HTTP."""
        region = self._args.region
        invoke = pulumi.InvokeOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        if region in _LEGACY_ELB_LOG_REGIONS:
            principal: pulumi.Input[Any] = aws.elb.get_service_account_output(opts=invoke).arn.apply(
                lambda arn: {"AWS": arn}
            )
        else:
            principal = {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
        return pulumi.Output.all(bucket.arn, account, principal).apply(
            lambda v: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "ElbLogDelivery",
                            "Effect": "Allow",
                            "Principal": v[2],
                            "Action": "s3:PutObject",
                            "Resource": f"{v[0]}/{_ACCESS_LOG_PREFIX}/AWSLogs/{v[1]}/*",
                        },
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [v[0], f"{v[0]}/*"],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                    ],
                }
            )
        )

    # -- listeners and the web target group -----------------------------------------------------
    def _create_listeners(self, alb: aws.lb.LoadBalancer) -> aws.lb.TargetGroup:
        name, args, tags = self._name, self._args, self._tags
        child = pulumi.ResourceOptions(parent=self)
        target_group = aws.lb.TargetGroup(
            f"{name}-web-tg",
            name_prefix=LB_NAME_PREFIXES["web"],  # at most 32 characters, as for the load balancer
            target_type="ip",
            protocol="HTTP",
            protocol_version="HTTP1",
            port=WEB_TRAFFIC_PORT,
            vpc_id=args.vpc_id,
            deregistration_delay="30",
            health_check=gateway_health_check(),
            tags=tags,
            opts=child,
        )
        forward = aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)
        forbidden = aws.lb.ListenerDefaultActionArgs(
            type="fixed-response",
            fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
                content_type="text/plain", message_body="Forbidden", status_code="403"
            ),
        )
        cert_arn = validated_certificate(
            f"{name}-origin",
            domain=f"origin.{args.domain}",
            alternative_names=[args.domain, f"www.{args.domain}"],
            zone_id=args.zone_id,
            tags=tags,
            parent=self,
        )
        https = aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=alb.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=ALB_SSL_POLICY,
            certificate_arn=cert_arn,
            default_actions=[forbidden if args.cloudfront_enabled else forward],
            tags=tags,
            opts=child,
        )
        aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=alb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        protocol="HTTPS", port="443", status_code="HTTP_301"
                    ),
                )
            ],
            tags=tags,
            opts=child,
        )
        if args.cloudfront_enabled:
            action = [aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=target_group.arn)]
            aws.lb.ListenerRule(
                f"{name}-https-origin-verified",
                listener_arn=https.arn,
                priority=10,
                conditions=[
                    aws.lb.ListenerRuleConditionArgs(
                        http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(
                            http_header_name=ORIGIN_HEADER, values=[args.origin_secret]
                        ),
                    )
                ],
                actions=action,
                tags=tags,
                opts=child,
            )
            # Route 53 health checkers cannot send the header; only the health path goes through without it.
            aws.lb.ListenerRule(
                f"{name}-https-health",
                listener_arn=https.arn,
                priority=20,
                conditions=[
                    aws.lb.ListenerRuleConditionArgs(
                        path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=[HEALTH_PATH]),
                    )
                ],
                actions=action,
                tags=tags,
                opts=child,
            )
        return target_group

    # -- Route 53: this region's member of the origin.<domain> latency set ----------------------
    def _create_dns(self, alb: aws.lb.LoadBalancer) -> aws.route53.HealthCheck:
        name, args, tags = self._name, self._args, self._tags
        origin_name = f"origin.{args.domain}"
        health_check = aws.route53.HealthCheck(
            f"{name}-origin-health",
            type="HTTPS",
            fqdn=alb.dns_name,
            port=443,
            resource_path=HEALTH_PATH,
            enable_sni=True,
            request_interval=30,
            failure_threshold=3,
            tags={**tags, "Name": f"{origin_name} {args.region}"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.route53.Record(
            f"{name}-origin-latency",
            zone_id=args.zone_id,
            name=origin_name,
            type="A",
            set_identifier=args.region,
            latency_routing_policies=[aws.route53.RecordLatencyRoutingPolicyArgs(region=args.region)],
            health_check_id=health_check.id,
            aliases=[aws.route53.RecordAliasArgs(name=alb.dns_name, zone_id=alb.zone_id, evaluate_target_health=True)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        return health_check


def _validate_regional(args: RegionalEdgeArgs) -> None:
    _validate_domain("RegionalEdgeArgs.domain", args.domain)
    if not re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d$", args.region):
        raise ValueError(f"RegionalEdgeArgs.region must be an AWS region like eu-west-1, not {args.region!r}.")
    for field_name in ("public_subnet_ids", "private_subnet_ids"):
        if len(getattr(args, field_name)) < 2:
            raise ValueError(f"RegionalEdgeArgs.{field_name} must list at least two subnets (one per zone).")
    if args.cloudfront_enabled and args.origin_secret is None:
        raise ValueError("RegionalEdgeArgs.origin_secret is required when cloudfront_enabled is true.")
    _validate_rate_limit("RegionalEdgeArgs.waf_rate_limit", args.waf_rate_limit)
    if args.access_log_retention_days < 1:
        raise ValueError("RegionalEdgeArgs.access_log_retention_days must be at least 1.")


# --- global ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GlobalEdgeArgs:
    """Inputs of the stack-wide edge (create it with the us-east-1 provider, after the RegionalEdges)."""

    domain: str
    """The platform's domain; GlobalEdge owns <domain> and www.<domain>."""
    zone_id: pulumi.Input[str]
    """Route 53 public hosted zone of the domain."""
    regions: Sequence[str]
    """The stack's regions (each has a RegionalEdge and an origin.<domain> latency record)."""
    cloudfront_enabled: bool = False
    """Put CloudFront with a global web ACL in front of origin.<domain>."""
    price_class: str = "PriceClass_100"
    """CloudFront price class."""
    origin_secret: pulumi.Input[str] | None = None
    """The secret origin header value CloudFront sends; required when cloudfront_enabled."""
    waf_rate_limit: int = 3000
    """Requests per client IP per 5 minutes before the CloudFront web ACL answers 429."""
    deletion_protection: bool = True
    """Keep the distribution (retain on delete) when on."""
    static_paths: tuple[str, ...] = STATIC_PATHS
    """Path patterns CloudFront caches; everything else goes to the origin uncached."""
    log_retention_days: int = 90
    """Days the CloudFront web ACL's logs are kept."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every resource."""


class GlobalEdge(pulumi.ComponentResource):
    """CloudFront and its global WAF (when on) and the public names <domain> and www.<domain>."""

    distribution_domain: pulumi.Output[str] | None
    distribution_id: pulumi.Output[str] | None
    cloudfront_acl_metric_name: pulumi.Output[str] | None

    def __init__(self, name: str, args: GlobalEdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ratelimited:index:GlobalEdge", name, None, opts)
        _validate_global(args)
        self._name = name
        self._args = args
        self._tags = dict(args.tags)

        self.cloudfront_acl_metric_name = None
        if args.cloudfront_enabled:
            distribution = self._create_cloudfront()
            self.distribution_domain = distribution.domain_name
            self.distribution_id = distribution.id
            target = (distribution.domain_name, distribution.hosted_zone_id, False)
            record_types = ("A", "AAAA")
        else:
            self.distribution_domain = None
            self.distribution_id = None
            # An alias to the latency set in the same zone: clients get the closest healthy region.
            target = (f"origin.{args.domain}", args.zone_id, True)
            record_types = ("A",)
        for label, dns_name in (("apex", args.domain), ("www", f"www.{args.domain}")):
            for record_type in record_types:
                aws.route53.Record(
                    f"{name}-{label}-{record_type.lower()}",
                    zone_id=args.zone_id,
                    name=dns_name,
                    type=record_type,
                    aliases=[
                        aws.route53.RecordAliasArgs(name=target[0], zone_id=target[1], evaluate_target_health=target[2])
                    ],
                    opts=pulumi.ResourceOptions(parent=self),
                )
        self.register_outputs({"distributionDomain": self.distribution_domain})

    def _create_cloudfront(self) -> aws.cloudfront.Distribution:
        name, args, tags = self._name, self._args, self._tags
        invoke = pulumi.InvokeOptions(parent=self)
        acl = web_acl(
            f"{name}-cloudfront-waf",
            scope="CLOUDFRONT",
            rate_limit=args.waf_rate_limit,
            exempt_origin_secret=None,
            retention_days=args.log_retention_days,
            tags=tags,
            parent=self,
        )
        self.cloudfront_acl_metric_name = acl_metric_name(acl)
        cert_arn = validated_certificate(
            f"{name}-cloudfront",
            domain=args.domain,
            alternative_names=[f"www.{args.domain}"],
            zone_id=args.zone_id,
            tags=tags,
            parent=self,
        )
        cached = aws.cloudfront.get_cache_policy_output(name="Managed-CachingOptimized", opts=invoke)
        uncached = aws.cloudfront.get_cache_policy_output(name="Managed-CachingDisabled", opts=invoke)
        all_but_host = aws.cloudfront.get_origin_request_policy_output(
            name="Managed-AllViewerExceptHostHeader", opts=invoke
        )
        # HSTS, X-Content-Type-Options, X-Frame-Options, Referrer-Policy, X-XSS-Protection on every answer.
        security_headers = aws.cloudfront.get_response_headers_policy_output(
            name="Managed-SecurityHeadersPolicy", opts=invoke
        )
        origin_id = "regional-albs"
        return aws.cloudfront.Distribution(
            f"{name}-cdn",
            enabled=True,
            comment=f"{args.domain}: static paths cached, the rest to origin.{args.domain} uncached",
            aliases=[args.domain, f"www.{args.domain}"],
            price_class=args.price_class,
            http_version="http2and3",
            is_ipv6_enabled=True,
            web_acl_id=acl.arn,
            origins=[
                aws.cloudfront.DistributionOriginArgs(
                    origin_id=origin_id,
                    domain_name=f"origin.{args.domain}",
                    custom_origin_config=aws.cloudfront.DistributionOriginCustomOriginConfigArgs(
                        http_port=80,
                        https_port=443,
                        origin_protocol_policy="https-only",
                        origin_ssl_protocols=["TLSv1.2"],
                        origin_read_timeout=30,
                        origin_keepalive_timeout=5,
                    ),
                    custom_headers=[
                        aws.cloudfront.DistributionOriginCustomHeaderArgs(name=ORIGIN_HEADER, value=args.origin_secret)
                    ],
                )
            ],
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id=origin_id,
                viewer_protocol_policy="https-only",
                allowed_methods=["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
                cached_methods=["GET", "HEAD"],
                cache_policy_id=uncached.id,
                origin_request_policy_id=all_but_host.id,
                response_headers_policy_id=security_headers.id,
                compress=True,
            ),
            ordered_cache_behaviors=[
                aws.cloudfront.DistributionOrderedCacheBehaviorArgs(
                    path_pattern=pattern,
                    target_origin_id=origin_id,
                    viewer_protocol_policy="https-only",
                    allowed_methods=["GET", "HEAD", "OPTIONS"],
                    cached_methods=["GET", "HEAD"],
                    cache_policy_id=cached.id,
                    response_headers_policy_id=security_headers.id,
                    compress=True,
                )
                for pattern in args.static_paths
            ],
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(restriction_type="none"),
            ),
            viewer_certificate=aws.cloudfront.DistributionViewerCertificateArgs(
                acm_certificate_arn=cert_arn,
                ssl_support_method="sni-only",
                minimum_protocol_version=CLOUDFRONT_TLS_POLICY,
            ),
            tags=tags,
            # Protected, not retained: a retained distribution would keep using the web ACL and certificate
            # that the same destroy deletes, and AWS refuses both, so teardown would stop half-way.
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )


def _validate_global(args: GlobalEdgeArgs) -> None:
    _validate_domain("GlobalEdgeArgs.domain", args.domain)
    if not args.regions:
        raise ValueError("GlobalEdgeArgs.regions must list at least one region.")
    if args.price_class not in _PRICE_CLASSES:
        raise ValueError(
            f"GlobalEdgeArgs.price_class must be one of {', '.join(_PRICE_CLASSES)}, not {args.price_class!r}."
        )
    if args.cloudfront_enabled and args.origin_secret is None:
        raise ValueError("GlobalEdgeArgs.origin_secret is required when cloudfront_enabled is true.")
    _validate_rate_limit("GlobalEdgeArgs.waf_rate_limit", args.waf_rate_limit)
    for pattern in args.static_paths:
        if not pattern.startswith("/"):
            raise ValueError(f"GlobalEdgeArgs.static_paths has {pattern!r}; each must start with '/'.")


def _validate_domain(what: str, domain: str) -> None:
    if not _DOMAIN_RE.match(domain):
        raise ValueError(f"{what} must be a lower-case DNS name like example.com, not {domain!r}.")


def _validate_rate_limit(what: str, limit: int) -> None:
    if not 10 <= limit <= 2_000_000_000:
        raise ValueError(f"{what} must be between 10 and 2000000000 (WAF's bounds), not {limit}.")


# --- WAF ---------------------------------------------------------------------------------------

_MANAGED_RULE_GROUPS = (
    # (priority, name): reputation first (cheap, drops known-bad sources before the costlier groups).
    (10, "AWSManagedRulesAmazonIpReputationList"),
    (30, "AWSManagedRulesCommonRuleSet"),
    (40, "AWSManagedRulesKnownBadInputsRuleSet"),
)
_RATE_RULE_PRIORITY = 20


def acl_metric_name(acl: aws.wafv2.WebAcl) -> pulumi.Output[str]:
    """The web ACL's CloudWatch metric name (the `WebACL` dimension of AWS/WAFV2), read from its outputs."""
    return acl.visibility_config.apply(lambda v: v.metric_name)


def web_acl(
    name: str,
    *,
    scope: str,
    rate_limit: int,
    exempt_origin_secret: pulumi.Input[str] | None,
    retention_days: int,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.wafv2.WebAcl:
    """A web ACL with the managed rule groups, a per-IP rate rule (429) and logging to `aws-waf-logs-*`.

    `exempt_origin_secret`: requests whose origin header equals it are left out of the rate rule
    (they come through CloudFront, whose ACL counted them per client IP).
    """
    child = pulumi.ResourceOptions(parent=parent)
    metric = re.sub(r"[^A-Za-z0-9_-]", "-", name)

    def visibility(suffix: str) -> dict[str, Any]:
        return {
            "cloudwatch_metrics_enabled": True,
            "metric_name": f"{metric}-{suffix}",
            "sampled_requests_enabled": True,
        }

    rate: dict[str, Any] = {"aggregate_key_type": "IP", "limit": rate_limit, "evaluation_window_sec": 300}
    if exempt_origin_secret is not None:
        rate["scope_down_statement"] = {
            "not_statement": {
                "statement": {
                    "byte_match_statement": {
                        "field_to_match": {"single_header": {"name": ORIGIN_HEADER}},
                        "positional_constraint": "EXACTLY",
                        "search_string": exempt_origin_secret,
                        "text_transformations": [{"priority": 0, "type": "NONE"}],
                    }
                }
            }
        }
    rules: list[dict[str, Any]] = [
        {
            "name": "rate-per-ip",
            "priority": _RATE_RULE_PRIORITY,
            "action": {"block": {"custom_response": {"response_code": 429}}},
            "statement": {"rate_based_statement": rate},
            "visibility_config": visibility("rate-per-ip"),
        },
        *(
            {
                "name": group,
                "priority": priority,
                "override_action": {"none": {}},
                "statement": {"managed_rule_group_statement": {"vendor_name": "AWS", "name": group}},
                "visibility_config": visibility(group),
            }
            for priority, group in _MANAGED_RULE_GROUPS
        ),
    ]
    acl = aws.wafv2.WebAcl(
        name,
        scope=scope,
        description=f"{scope} web ACL: AWS managed rules and a per-IP rate backstop",
        default_action={"allow": {}},
        rules=sorted(rules, key=lambda r: r["priority"]),
        visibility_config=visibility("acl"),
        tags=dict(tags),
        opts=child,
    )
    # WAF requires the log group's name to start with aws-waf-logs-; for CLOUDFRONT scope it must be in
    # us-east-1, which the parent's provider is.
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        name_prefix=f"aws-waf-logs-{name}-",
        retention_in_days=retention_days,
        tags=dict(tags),
        opts=child,
    )
    aws.wafv2.WebAclLoggingConfiguration(
        f"{name}-logging",
        resource_arn=acl.arn,
        log_destination_configs=[log_group.arn],
        # The origin secret and the API keys must not end up in the logs.
        redacted_fields=[
            {"single_header": {"name": ORIGIN_HEADER}},
            {"single_header": {"name": "x-api-key"}},
            {"single_header": {"name": "authorization"}},
        ],
        opts=child,
    )
    return acl
