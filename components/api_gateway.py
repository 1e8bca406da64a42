"""The API entry of one region: API Gateway (REST, regional) -> VPC link v2 -> internal NLB -> API ingress gateway.

Why each piece is what it is:

- REST, not HTTP API: WAF attaches only to REST stages (AWS WAF developer guide). The regional web ACL that
  guards the ALB is associated with the stage too (`stage.arn`).
- VPC link v2 (`aws.apigatewayv2.VpcLink`) with `Integration.integration_target` = the NLB's ARN:
  REST APIs take v2 links since late 2025 and pulumi-aws 7.51 has `integration_target`; v1
  (`aws.apigateway.VpcLink`) is legacy and rides on a PrivateLink endpoint service per NLB. A v2 link
  puts ENIs with their own security group into the private subnets, so the NLB's security group admits
  exactly that group and nothing else.
- The NLB is internal, in the private subnets, TCP on port 80 to an IP target group that the mesh binds
  (TargetGroupBinding) to the API ingress gateway's pods; health check HTTP 15021 /healthz/ready.
  Traffic between API Gateway and the gateway pods stays in the VPC, in plain HTTP: TLS there would need
  a publicly trusted certificate for the `uri` host inside the cluster (follow-up if required).
- The integration URI is `http://api.<domain>/{proxy}`: its host is the Host header the gateway sees,
  its path comes from the `{proxy}` path parameter. Clients call `https://api.<domain>/...` (the custom
  domain's base path mapping hides the stage from them), but AWS documents that a private integration
  sends the stage in front of the path (`/<stage>/path`, API Gateway developer guide). REST has no request-parameter
  override of the whole path for an HTTP_PROXY integration (HTTP API's `overwrite:path`); the
  `$context.requestOverride` route needs a mapping template, i.e. a non-proxy integration that would
  rewrite bodies. So the design's other option applies: the API ingress gateway routes on it. The stage
  is named `apigw` (API_STAGE_NAME), a segment no application path starts with, and `stage_path_prefix`
  ("/apigw") tells the mesh which prefix to strip (an Istio rewrite on the API gateway only; a request
  without it passes unchanged, so the route is right either way). Only a real deploy can show which
  form arrives; the integration test must call a path through api.<domain>.
- An explicit Stage (pulumi-aws v7 removed `stage_name` from Deployment); the Deployment's `triggers`
  hash every method/integration input, so a change redeploys, and the Stage moves to the new one.
- Throttling is MethodSettings on `*/*` (the stage-wide REST form); each consumer gets a usage plan
  (throttle + daily quota) and an API key; methods require a key when consumers are configured. Key
  values come from `consumer_api_keys` (once per stack), so a consumer's key works in every region that
  `api.<domain>` latency routing may send it to.
- Access logs go to a CloudWatch log group in JSON. API Gateway writes them with the role set on the
  account-level `aws.apigateway.Account` (one setting per account and region, shared by every API
  there; see ApiGatewaySettings.manage_account_logging_role).
- The custom domain `api.<domain>` (regional endpoint, regional ACM certificate, TLS 1.2) and the
  latency alias record for it (set identifier = region) live here, beside the API they name. Its health
  check follows a CloudWatch alarm on the NLB target group's healthy hosts (see _create_health_check).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.certificates import validated_certificate
from components.specs import ApiConsumer

# The port the NLB sends traffic to on the API ingress gateway's pods: the `gateway` chart's Service
# maps port 80 to targetPort 80 (the chart lets the pod bind it through the
# net.ipv4.ip_unprivileged_port_start sysctl); a TargetGroupBinding with serviceRef port 80 registers
# pod-IP:80. The Istio Gateway resource binds port 80 with protocol HTTP.
API_TRAFFIC_PORT = 80
GATEWAY_READY_PORT = 15021
GATEWAY_READY_PATH = "/healthz/ready"
API_KEY_HEADER = "x-api-key"
API_STAGE_NAME = "apigw"
# Load balancers and target groups are named by the provider from these prefixes ("web-" + 26 characters):
# their names have at most 32 characters (terraform-provider-aws elbv2/validate.go), too few for
# "<logical name>-<7 hex>" with a long region, and a name_prefix has at most 6.
LB_NAME_PREFIXES = {"web": "web-", "api": "api-"}

_ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "apiKeyId": "$context.identity.apiKeyId",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "domainName": "$context.domainName",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integration.status",
    "integrationLatency": "$context.integration.latency",
    "integrationError": "$context.integration.error",
    "wafStatus": "$context.waf.status",
    "throttleReason": "$context.error.messageString",
}, separators=(",", ":"))  # fmt: skip


def gateway_health_check() -> aws.lb.TargetGroupHealthCheckArgs:
    """How a load balancer judges an Istio ingress gateway pod (the ALB's and the NLB's target groups alike):
    its readiness endpoint, which answers 200 while the proxy can take traffic. Two failures 10 s apart take
    a pod out, two successes bring it back."""
    return aws.lb.TargetGroupHealthCheckArgs(
        enabled=True,
        protocol="HTTP",
        port=str(GATEWAY_READY_PORT),
        path=GATEWAY_READY_PATH,
        matcher="200",
        interval=10,
        timeout=5,
        healthy_threshold=2,
        unhealthy_threshold=2,
    )


@dataclass(frozen=True)
class ApiGatewaySettings:
    """What the stack config says about the API entry (None in RegionalEdgeArgs turns it off)."""

    throttle_rate_limit: int
    """Stage-wide steady-state requests per second (MethodSettings on */*)."""
    throttle_burst_limit: int
    """Stage-wide burst (requests)."""
    consumers: tuple[ApiConsumer, ...] = ()
    """One usage plan and API key each; when any exist, every method requires an API key."""
    api_key_values: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Key value per consumer name (from consumer_api_keys), identical in every region; missing: AWS generates one."""
    stage_name: str = API_STAGE_NAME
    """Name of the stage: hidden from clients by the base path mapping; a path prefix no application uses."""
    log_retention_days: int = 90
    """Retention of the stage's access log group."""
    manage_account_logging_role: bool = True
    """Set the account/region-wide API Gateway CloudWatch role (needed once per account and region)."""
    alarm_topic_arn: pulumi.Input[str] | None = None
    """SNS topic the NLB healthy-hosts alarm notifies on ALARM and OK (the observability layer's); None: silent."""
    alarm_runbook_url: str = ""
    """Runbook section for the NLB healthy-hosts alarm, added to its description when set."""


@dataclass(frozen=True)
class ApiGatewayArgs:
    """Inputs of the API entry of one region."""

    region: str
    """The AWS region (the provider comes through opts; this names the latency record's region)."""
    domain: str
    """The platform's domain; the API answers on api.<domain>."""
    zone_id: pulumi.Input[str]
    """Route 53 public hosted zone of the domain."""
    vpc_id: pulumi.Input[str]
    """The region's VPC."""
    vpc_cidr: str
    """The VPC's CIDR: the NLB may reach the gateway pods (and their health port) inside it only."""
    private_subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets (three zones) for the NLB and the VPC link's ENIs."""
    web_acl_arn: pulumi.Input[str]
    """The region's REGIONAL web ACL, associated with the stage."""
    settings: ApiGatewaySettings
    """Throttling, consumers and stage settings from config."""
    deletion_protection: bool = True
    """Deletion protection on the NLB."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every resource."""


def consumer_api_keys(
    name: str, consumers: Sequence[ApiConsumer], parent: pulumi.Resource | None = None
) -> dict[str, pulumi.Output[str]]:
    """One API key value per consumer, made once per stack (secrets), to give every region's ApiKey."""
    return {
        c.name: random.RandomPassword(
            f"{name}-{c.name}",
            length=40,
            special=False,
            opts=pulumi.ResourceOptions(parent=parent),
        ).result
        for c in consumers
    }


class ApiGateway(pulumi.ComponentResource):
    """REST API (regional) with WAF, throttling, usage plans, API keys and a custom domain, over a VPC link v2."""

    target_group_arn: pulumi.Output[str]
    lb_security_group_id: pulumi.Output[str]
    rest_api_id: pulumi.Output[str]
    stage_arn: pulumi.Output[str]
    stage_path_prefix: str
    regional_domain: pulumi.Output[str]
    rest_api_name: pulumi.Output[str]
    stage_name: pulumi.Output[str]
    health_check_id: pulumi.Output[str]

    def __init__(self, name: str, args: ApiGatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ratelimited:index:ApiGateway", name, None, opts)
        _validate(args)
        self._name = name
        self._args = args
        self._tags = dict(args.tags)
        # What a private integration may put in front of every backend path (see the module docstring).
        self.stage_path_prefix = f"/{args.settings.stage_name}"

        nlb, target_group, nlb_sg, link = self._create_network()
        rest_api, stage = self._create_api(nlb, link)
        self._create_consumers(rest_api, stage)
        health_check = self._create_health_check(nlb, target_group)
        domain = self._create_domain(rest_api, stage, health_check)

        aws.wafv2.WebAclAssociation(
            f"{name}-stage-waf",
            resource_arn=stage.arn,
            web_acl_arn=args.web_acl_arn,
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.target_group_arn = target_group.arn
        self.lb_security_group_id = nlb_sg.id
        self.rest_api_id = rest_api.id
        self.stage_arn = stage.arn
        self.regional_domain = domain.regional_domain_name
        self.rest_api_name = rest_api.name
        self.stage_name = stage.stage_name
        self.health_check_id = health_check.id
        self.register_outputs(
            {
                "targetGroupArn": self.target_group_arn,
                "lbSecurityGroupId": self.lb_security_group_id,
                "restApiId": self.rest_api_id,
                "stageArn": self.stage_arn,
                "regionalDomain": self.regional_domain,
            }
        )

    # -- the private path: VPC link v2 -> internal NLB -> API ingress gateway ---------------------
    def _create_network(
        self,
    ) -> tuple[aws.lb.LoadBalancer, aws.lb.TargetGroup, aws.ec2.SecurityGroup, aws.apigatewayv2.VpcLink]:
        name, args, tags = self._name, self._args, self._tags
        child = pulumi.ResourceOptions(parent=self)
        link_sg = aws.ec2.SecurityGroup(
            f"{name}-vpc-link-sg",
            vpc_id=args.vpc_id,
            description="API Gateway VPC link ENIs: out to the internal NLB only",
            tags={**tags, "Name": f"{name}-vpc-link"},
            opts=child,
        )
        nlb_sg = aws.ec2.SecurityGroup(
            f"{name}-nlb-sg",
            vpc_id=args.vpc_id,
            description="Internal API NLB: in from the VPC link, out to the API ingress gateway pods",
            tags={**tags, "Name": f"{name}-nlb"},
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-vpc-link-to-nlb",
            security_group_id=link_sg.id,
            referenced_security_group_id=nlb_sg.id,
            ip_protocol="tcp",
            from_port=API_TRAFFIC_PORT,
            to_port=API_TRAFFIC_PORT,
            description="to the internal NLB listener",
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-nlb-from-vpc-link",
            security_group_id=nlb_sg.id,
            referenced_security_group_id=link_sg.id,
            ip_protocol="tcp",
            from_port=API_TRAFFIC_PORT,
            to_port=API_TRAFFIC_PORT,
            description="from the API Gateway VPC link",
            opts=child,
        )
        for port, what in ((API_TRAFFIC_PORT, "traffic"), (GATEWAY_READY_PORT, "health")):
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-nlb-to-gateway-{what}",
                security_group_id=nlb_sg.id,
                cidr_ipv4=args.vpc_cidr,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"to the API ingress gateway pods ({what})",
                opts=child,
            )

        nlb = aws.lb.LoadBalancer(
            f"{name}-nlb",
            # At most 32 characters: "<region>-edge-apigw-nlb-<7 hex>" would not fit (see LB_NAME_PREFIXES).
            name_prefix=LB_NAME_PREFIXES["api"],
            load_balancer_type="network",
            internal=True,
            subnets=list(args.private_subnet_ids),
            security_groups=[nlb_sg.id],
            enable_cross_zone_load_balancing=True,
            enable_deletion_protection=args.deletion_protection,
            ip_address_type="ipv4",
            tags=tags,
            # AWS refuses to delete a protected load balancer: stop `pulumi destroy` at its preview instead.
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-api-tg",
            name_prefix=LB_NAME_PREFIXES["api"],
            target_type="ip",
            protocol="TCP",
            port=API_TRAFFIC_PORT,
            vpc_id=args.vpc_id,
            deregistration_delay="30",
            connection_termination=True,
            health_check=gateway_health_check(),
            tags=tags,
            opts=child,
        )
        aws.lb.Listener(
            f"{name}-nlb-listener",
            load_balancer_arn=nlb.arn,
            port=API_TRAFFIC_PORT,
            protocol="TCP",
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)],
            tags=tags,
            opts=child,
        )
        link = aws.apigatewayv2.VpcLink(
            f"{name}-vpc-link",
            subnet_ids=list(args.private_subnet_ids),
            security_group_ids=[link_sg.id],
            tags=tags,
            opts=child,
        )
        return nlb, target_group, nlb_sg, link

    # -- the REST API, its deployment and stage -------------------------------------------------
    def _create_api(
        self, nlb: aws.lb.LoadBalancer, link: aws.apigatewayv2.VpcLink
    ) -> tuple[aws.apigateway.RestApi, aws.apigateway.Stage]:
        name, args, tags = self._name, self._args, self._tags
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        key_required = bool(settings.consumers)
        backend = f"http://api.{args.domain}"

        rest_api = aws.apigateway.RestApi(
            f"{name}-api",
            # The API's name is the ApiName dimension of its CloudWatch metrics: unique per project and
            # stack, so that two stacks in one account and region never share an alarm's metric.
            name=f"{pulumi.get_project()}-{pulumi.get_stack()}-{name}",
            description=f"API entry of {name}: every path goes through the mesh's API ingress gateway",
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            # Clients use api.<domain>; the execute-api URL would be a second, unmapped door.
            disable_execute_api_endpoint=True,
            api_key_source="HEADER",
            tags=tags,
            opts=child,
        )
        proxy = aws.apigateway.Resource(
            f"{name}-proxy",
            rest_api=rest_api.id,
            parent_id=rest_api.root_resource_id,
            path_part="{proxy+}",
            opts=child,
        )
        methods_and_integrations: list[pulumi.Resource] = []
        trigger_inputs: list[pulumi.Input[str]] = [backend, str(key_required), nlb.arn, link.id]
        for suffix, resource_id, uri, params in (
            ("root", rest_api.root_resource_id, f"{backend}/", None),
            ("proxy", proxy.id, f"{backend}/{{proxy}}", "proxy"),
        ):
            method = aws.apigateway.Method(
                f"{name}-{suffix}-any",
                rest_api=rest_api.id,
                resource_id=resource_id,
                http_method="ANY",
                authorization="NONE",
                api_key_required=key_required,
                request_parameters={"method.request.path.proxy": True} if params else None,
                opts=child,
            )
            integration = aws.apigateway.Integration(
                f"{name}-{suffix}-integration",
                rest_api=rest_api.id,
                resource_id=resource_id,
                http_method=method.http_method,
                type="HTTP_PROXY",
                integration_http_method="ANY",
                uri=uri,
                connection_type="VPC_LINK",
                connection_id=link.id,
                integration_target=nlb.arn,
                request_parameters={"integration.request.path.proxy": "method.request.path.proxy"} if params else None,
                timeout_milliseconds=29000,
                opts=child,
            )
            methods_and_integrations += [method, integration]
            trigger_inputs += [suffix, uri, str(params)]

        # A new Deployment whenever anything the deployment snapshots changes; the Stage then points at it.
        redeploy = pulumi.Output.all(*trigger_inputs).apply(
            lambda parts: hashlib.sha256(json.dumps(parts).encode()).hexdigest()
        )
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=rest_api.id,
            description="Managed by Pulumi",
            triggers={"redeployment": redeploy},
            opts=pulumi.ResourceOptions(parent=self, depends_on=methods_and_integrations),
        )

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name_prefix=f"/aws/apigateway/{name}-",
            retention_in_days=settings.log_retention_days,
            tags=tags,
            opts=child,
        )
        stage_deps: list[pulumi.Resource] = []
        if settings.manage_account_logging_role:
            stage_deps.append(self._create_account_logging_role())
        stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=rest_api.id,
            deployment=deployment.id,
            stage_name=settings.stage_name,
            xray_tracing_enabled=True,
            access_log_settings=aws.apigateway.StageAccessLogSettingsArgs(
                destination_arn=log_group.arn,
                format=_ACCESS_LOG_FORMAT,
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=stage_deps),
        )
        aws.apigateway.MethodSettings(
            f"{name}-throttling",
            rest_api=rest_api.id,
            stage_name=stage.stage_name,
            method_path="*/*",
            settings=aws.apigateway.MethodSettingsSettingsArgs(
                throttling_rate_limit=float(settings.throttle_rate_limit),
                throttling_burst_limit=settings.throttle_burst_limit,
                metrics_enabled=True,
                logging_level="ERROR",
                data_trace_enabled=False,  # full request/response logging would write API keys and bodies
            ),
            opts=child,
        )
        return rest_api, stage

    def _create_account_logging_role(self) -> aws.apigateway.Account:
        """The role API Gateway uses to write logs: one setting per account and region (not per API)."""
        name = self._name
        role = aws.iam.Role(
            f"{name}-cloudwatch-role",
            description="Lets API Gateway write access and execution logs to CloudWatch Logs",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "apigateway.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-cloudwatch-role-policy",
            role=role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.apigateway.Account(
            f"{name}-account",
            cloudwatch_role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment]),
        )

    # -- consumers: usage plans and API keys ----------------------------------------------------
    def _create_consumers(self, rest_api: aws.apigateway.RestApi, stage: aws.apigateway.Stage) -> None:
        name, settings, tags = self._name, self._args.settings, self._tags
        child = pulumi.ResourceOptions(parent=self)
        for consumer in settings.consumers:
            plan = aws.apigateway.UsagePlan(
                f"{name}-plan-{consumer.name}",
                description=f"Usage plan of API consumer {consumer.name}",
                api_stages=[aws.apigateway.UsagePlanApiStageArgs(api_id=rest_api.id, stage=stage.stage_name)],
                throttle_settings=aws.apigateway.UsagePlanThrottleSettingsArgs(
                    rate_limit=float(consumer.rate_limit), burst_limit=consumer.burst_limit
                ),
                quota_settings=aws.apigateway.UsagePlanQuotaSettingsArgs(limit=consumer.quota_per_day, period="DAY"),
                tags=tags,
                opts=child,
            )
            key = aws.apigateway.ApiKey(
                f"{name}-key-{consumer.name}",
                description=f"API key of consumer {consumer.name}",
                enabled=True,
                value=settings.api_key_values.get(consumer.name),
                tags={**tags, "Consumer": consumer.name},
                opts=child,
            )
            aws.apigateway.UsagePlanKey(
                f"{name}-plan-key-{consumer.name}",
                key_id=key.id,
                key_type="API_KEY",
                usage_plan_id=plan.id,
                opts=child,
            )

    # -- the region's health for the api.<domain> latency set ----------------------------------
    def _create_health_check(
        self, nlb: aws.lb.LoadBalancer, target_group: aws.lb.TargetGroup
    ) -> aws.route53.HealthCheck:
        """Healthy while the API ingress gateway has a healthy pod behind the NLB (a CloudWatch alarm).

        An HTTPS check cannot judge one region here: `api.<domain>` resolves to whichever region is
        closest to the checker, the regional execute-api name answers only with SNI/Host api.<domain>,
        and every method requires an API key. API Gateway itself is a regional managed service; what
        fails in a region is what this program runs behind it, so the check follows the NLB target
        group's HealthyHostCount (missing data counts as unhealthy: no targets registered).
        """
        name, args = self._name, self._args
        alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-api-targets-unhealthy",
            alarm_description=f"No healthy API ingress gateway pod behind the internal NLB of {name}"
            + (f". Runbook: {args.settings.alarm_runbook_url}" if args.settings.alarm_runbook_url else ""),
            namespace="AWS/NetworkELB",
            metric_name="HealthyHostCount",
            dimensions={"TargetGroup": target_group.arn_suffix, "LoadBalancer": nlb.arn_suffix},
            statistic="Minimum",
            period=60,
            evaluation_periods=2,
            threshold=1,
            comparison_operator="LessThanThreshold",
            treat_missing_data="breaching",
            # The observability layer reuses this alarm for the NLB's unhealthy hosts: it notifies too.
            alarm_actions=[args.settings.alarm_topic_arn] if args.settings.alarm_topic_arn else None,
            ok_actions=[args.settings.alarm_topic_arn] if args.settings.alarm_topic_arn else None,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        health_check = aws.route53.HealthCheck(
            f"{name}-api-health",
            type="CLOUDWATCH_METRIC",
            cloudwatch_alarm_name=alarm.name,
            cloudwatch_alarm_region=args.region,
            insufficient_data_health_status="LastKnownStatus",
            tags={**self._tags, "Name": f"api.{args.domain} {args.region}"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return health_check

    # -- api.<domain>: custom domain, base path mapping, latency record -------------------------
    def _create_domain(
        self, rest_api: aws.apigateway.RestApi, stage: aws.apigateway.Stage, health_check: aws.route53.HealthCheck
    ) -> aws.apigateway.DomainName:
        name, args, tags = self._name, self._args, self._tags
        api_name = f"api.{args.domain}"
        cert_arn = validated_certificate(f"{name}-api", domain=api_name, zone_id=args.zone_id, tags=tags, parent=self)
        domain = aws.apigateway.DomainName(
            f"{name}-domain",
            domain_name=api_name,
            regional_certificate_arn=cert_arn,
            endpoint_configuration=aws.apigateway.DomainNameEndpointConfigurationArgs(types="REGIONAL"),
            security_policy="TLS_1_2",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.apigateway.BasePathMapping(
            f"{name}-mapping",
            domain_name=domain.domain_name,
            rest_api=rest_api.id,
            stage_name=stage.stage_name,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.route53.Record(
            f"{name}-api-latency",
            zone_id=args.zone_id,
            name=api_name,
            type="A",
            set_identifier=args.region,
            latency_routing_policies=[aws.route53.RecordLatencyRoutingPolicyArgs(region=args.region)],
            health_check_id=health_check.id,
            aliases=[
                aws.route53.RecordAliasArgs(
                    name=domain.regional_domain_name,
                    zone_id=domain.regional_zone_id,
                    evaluate_target_health=True,
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        return domain


def _validate(args: ApiGatewayArgs) -> None:
    s = args.settings
    if len(args.private_subnet_ids) < 2:
        raise ValueError("ApiGatewayArgs.private_subnet_ids must list at least two subnets (one per zone).")
    if not 1 <= s.throttle_rate_limit <= 1_000_000:
        raise ValueError("ApiGatewaySettings.throttle_rate_limit must be between 1 and 1000000 requests/s.")
    if not 1 <= s.throttle_burst_limit <= 1_000_000:
        raise ValueError("ApiGatewaySettings.throttle_burst_limit must be between 1 and 1000000 requests.")
    names = [c.name for c in s.consumers]
    if len(set(names)) != len(names):
        raise ValueError("ApiGatewaySettings.consumers must have unique names.")
    unknown = sorted(set(s.api_key_values) - set(names))
    if unknown:
        raise ValueError(f"ApiGatewaySettings.api_key_values names unknown consumer(s): {', '.join(unknown)}.")
    if not s.stage_name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"ApiGatewaySettings.stage_name must be letters, digits, '-' or '_', not {s.stage_name!r}.")
    if s.log_retention_days not in _LOG_RETENTION_DAYS:
        raise ValueError(f"ApiGatewaySettings.log_retention_days must be one of {_LOG_RETENTION_DAYS}.")


_LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
