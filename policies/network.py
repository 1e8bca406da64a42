"""Policies for the edge: WAF, load balancers, CloudFront and Route 53.

Enforcement levels, and why:

- `waf-before-alb`, `waf-before-api-stage`, `waf-before-cloudfront`: MANDATORY. Every
  internet-facing entry must sit behind a WAFv2 web ACL (the design puts one before each); an entry
  without one is open to the whole internet with no rate-based backstop. They relate resources,
  so they are stack policies that match through property dependencies and judge a first preview.
- `alb-https-listeners`: MANDATORY. A listener that serves plain HTTP or accepts TLS 1.0/1.1
  exposes credentials and API keys in transit.
- `alb-drop-invalid-headers`: MANDATORY. Forwarding malformed headers to Envoy invites request
  smuggling, and the limiter keys on headers.
- `alb-access-logs`: ADVISORY. Missing logs cost auditability, not exposure; a throwaway stack may
  reasonably go without.
- `cloudfront-viewer-https`: MANDATORY, for the same reason as the ALB listeners.
- `route53-latency-health-check`: MANDATORY. The latency set is the design's only regional
  failover; a record without a health check keeps sending clients to a dead region.

Matching an association to its load balancer or stage: when both ARNs are known (update), they
decide; otherwise the association's `resourceArn` must have been derived from the resource (its
property dependency). A property dependency only says "derived from": an association whose
`resourceArn` was computed from two load balancers counts for both until the update, where the
known ARN decides. A stack policy judges the stack only once every resource is registered, so it
cannot stop a single create the way a resource policy can: the preview (which `pulumi up` runs
first unless told to skip it, and which the offline preview runs in CI) is where these policies
stop an unsafe stack.

Unknown values follow the rules in `props.py`: an unknown `internal` flag or load balancer type
counts as an internet-facing application load balancer; an unknown `sslPolicy`, redirect
protocol, `dropInvalidHeaderFields` or viewer protocol policy passes in preview because `pulumi
up` judges the resolved value before it creates the resource.
"""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .graph import StackView, both_known, dependencies_of_type, depends_on
from .props import (
    UNKNOWN,
    Option,
    config_schema,
    describe,
    first,
    for_types,
    get,
    is_exempt,
    is_true,
    is_unknown,
    items,
    plain,
)

LOAD_BALANCER_TYPES = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
LISTENER_TYPES = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WEB_ACL_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
API_STAGE = "aws:apigateway/stage:Stage"
REST_API = "aws:apigateway/restApi:RestApi"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
ROUTE53_RECORD = "aws:route53/record:Record"
STACK_REFERENCE = "pulumi:pulumi:StackReference"

# Listener security policies that refuse anything older than TLS 1.2, recognised by name:
# ELBSecurityPolicy-TLS13-1-2-*, -TLS13-1-3-*, -TLS-1-2-*, -FS-1-2-* (and their FIPS/PQ/Res/Ext
# variants). The provider's default, ELBSecurityPolicy-2016-08, still accepts TLS 1.0.
_TLS12_POLICY = re.compile(r"^ELBSecurityPolicy-(TLS13-1-[23]|TLS-1-2|FS-1-2)(-|$)")
_RECOMMENDED_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# CloudFront viewer certificate minimum protocol versions that require TLS 1.2 or newer.
_CLOUDFRONT_MODERN_TLS = re.compile(r"^TLSv1\.[23]_\d{4}$")
_HTTPS_VIEWER_POLICIES = ("redirect-to-https", "https-only")


# --- WAF: stack policies -----------------------------------------------------------------


def _is_internet_facing_alb(props: dict[str, Any]) -> bool:
    """Application load balancers that are not known to be internal (unknown counts as public)."""
    lb_type = props.get("loadBalancerType")
    if lb_type is not None and not is_unknown(lb_type) and lb_type != "application":
        return False
    return not is_true(props.get("internal"))


def _associated(view: StackView, protected: PolicyResource, associations: list[PolicyResource]) -> bool:
    """True when one association's `resourceArn` is this resource (known ARNs, else property dependency)."""
    arn = view.props(protected).get("arn")
    for association in associations:
        props = view.props(association)
        acl = props.get("webAclArn")
        if acl is None or acl == "":
            continue
        resource_arn = props.get("resourceArn")
        if both_known(resource_arn, arn):
            if resource_arn == arn:
                return True
        elif depends_on(association, "resourceArn", protected):
            return True
    return False


def _validate_waf_before_alb(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    view = StackView(args.resources)
    associations = view.of_type(WEB_ACL_ASSOCIATION)
    for alb in view.of_type(*LOAD_BALANCER_TYPES):
        props = view.props(alb)
        if is_exempt(args, alb.name) or not _is_internet_facing_alb(props):
            continue
        if _associated(view, alb, associations):
            continue
        why = ""
        if is_unknown(props.get("internal")):
            why = " Its 'internal' flag is unknown until the update, so it is treated as internet-facing."
        report_violation(
            f"The internet-facing ALB '{alb.name}' has no WAFv2 web ACL associated. Create an "
            "aws.wafv2.WebAclAssociation whose resource_arn is this load balancer's arn and whose "
            f"web_acl_arn is a REGIONAL web ACL, or make the load balancer internal.{why}",
            alb.urn,
        )


def _is_private_api(view: StackView, stage: PolicyResource) -> bool:
    """True when the stage's REST API is known to be PRIVATE (reachable only through VPC endpoints)."""
    for api in dependencies_of_type(stage, "restApi", REST_API):
        types = get(view.props(api), "endpointConfiguration.types")
        values = [types] if isinstance(types, str) else items(types)
        if values and all(not is_unknown(v) and v == "PRIVATE" for v in values):
            return True
    return False


def _validate_waf_before_api_stage(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    view = StackView(args.resources)
    associations = view.of_type(WEB_ACL_ASSOCIATION)
    for stage in view.of_type(API_STAGE):
        if is_exempt(args, stage.name) or _is_private_api(view, stage):
            continue
        if _associated(view, stage, associations):
            continue
        report_violation(
            f"The API Gateway stage '{stage.name}' has no WAFv2 web ACL associated. Create an "
            "aws.wafv2.WebAclAssociation whose resource_arn is this stage's arn and whose web_acl_arn "
            "is a REGIONAL web ACL (WAF attaches to REST API stages only).",
            stage.urn,
        )


def _validate_waf_before_cloudfront(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    view = StackView(args.resources)
    for distribution in view.of_type(DISTRIBUTION):
        if is_exempt(args, distribution.name):
            continue
        acl = view.props(distribution).get("webAclId")
        if is_unknown(acl):
            if dependencies_of_type(distribution, "webAclId", WEB_ACL, STACK_REFERENCE):
                continue
            report_violation(
                f"The CloudFront distribution '{distribution.name}' has a web_acl_id that is unknown "
                "until the update and not derived from any aws.wafv2.WebAcl in this stack. Set "
                "web_acl_id to the arn of a CLOUDFRONT-scope WAFv2 web ACL (created in us-east-1).",
                distribution.urn,
            )
        elif not acl:
            report_violation(
                f"The CloudFront distribution '{distribution.name}' has no WAFv2 web ACL. Set web_acl_id "
                "to the arn of a CLOUDFRONT-scope WAFv2 web ACL (created in us-east-1).",
                distribution.urn,
            )
        elif ":wafv2:" not in str(acl):
            report_violation(
                f"The CloudFront distribution '{distribution.name}' has web_acl_id {acl!r}, which is not "
                "a WAFv2 web ACL arn (WAF Classic is retired). Set web_acl_id to the arn of a "
                "CLOUDFRONT-scope WAFv2 web ACL.",
                distribution.urn,
            )


waf_before_alb = StackValidationPolicy(
    name="waf-before-alb",
    description="Every internet-facing application load balancer has a WAFv2 web ACL associated.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_waf_before_alb,
    config_schema=config_schema(),
)

waf_before_api_stage = StackValidationPolicy(
    name="waf-before-api-stage",
    description="Every API Gateway REST stage that is not PRIVATE has a WAFv2 web ACL associated.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_waf_before_api_stage,
    config_schema=config_schema(),
)

waf_before_cloudfront = StackValidationPolicy(
    name="waf-before-cloudfront",
    description="Every CloudFront distribution has a WAFv2 web ACL (web_acl_id).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_waf_before_cloudfront,
    config_schema=config_schema(),
)


# --- Load balancers: resource policies ---------------------------------------------------


ALLOWED_SSL_POLICIES = Option(
    "allowedSslPolicies",
    {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "description": (
            "Listener security policies to accept. Empty accepts every ELBSecurityPolicy that "
            "requires TLS 1.2 or newer (TLS13-1-2/TLS13-1-3/TLS-1-2/FS-1-2 families)."
        ),
    },
)


def _ssl_policy_ok(args: ResourceValidationArgs, policy: Any) -> bool:
    allowed = ALLOWED_SSL_POLICIES.value(args) or []
    if allowed:
        return policy in allowed
    return bool(_TLS12_POLICY.match(str(policy)))


def _redirects_to_https(actions: Any) -> bool:
    """True when every default action is a redirect to HTTPS (unknown parts pass in preview)."""
    entries = items(actions)
    if not entries:
        return False
    for action in entries:
        if is_unknown(action):
            continue
        action_type = action.get("type") if isinstance(action, dict) else None
        if is_unknown(action_type):
            continue
        if action_type != "redirect":
            return False
        protocol = get(action, "redirect.protocol")
        if is_unknown(protocol):
            continue
        if protocol != "HTTPS":
            return False
    return True


@for_types(*LISTENER_TYPES)
def _validate_alb_https_listener(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    protocol = props.get("protocol")
    if protocol in ("TCP", "UDP", "TCP_UDP", "GENEVE"):
        return  # network or gateway load balancer listener: no HTTP to judge
    ssl_policy = props.get("sslPolicy")
    if is_unknown(protocol):
        ssl_ok = is_unknown(ssl_policy) or (ssl_policy is not None and _ssl_policy_ok(args, ssl_policy))
        if not (ssl_ok or _redirects_to_https(props.get("defaultActions"))):
            report_violation(
                f"The listener '{args.name}' has a protocol that is unknown until the update and neither "
                f"a TLS 1.2+ ssl_policy nor only redirects to HTTPS. Set protocol='HTTPS' with "
                f"ssl_policy='{_RECOMMENDED_SSL_POLICY}', or make every default action a redirect to HTTPS.",
            )
        return
    if protocol in ("HTTPS", "TLS"):
        if ssl_policy is None or ssl_policy == "":
            report_violation(
                f"The {protocol} listener '{args.name}' sets no ssl_policy, so it gets the provider default "
                f"ELBSecurityPolicy-2016-08, which accepts TLS 1.0. Set ssl_policy='{_RECOMMENDED_SSL_POLICY}' "
                "or another policy that requires TLS 1.2 or newer."
            )
        elif not is_unknown(ssl_policy) and not _ssl_policy_ok(args, ssl_policy):
            report_violation(
                f"The {protocol} listener '{args.name}' uses ssl_policy {ssl_policy!r}, which accepts TLS "
                f"versions older than 1.2. Set ssl_policy='{_RECOMMENDED_SSL_POLICY}' or another policy that "
                "requires TLS 1.2 or newer."
            )
        return
    # HTTP, or no protocol (an ALB listener then defaults to HTTP): only redirects are acceptable.
    if not _redirects_to_https(props.get("defaultActions")):
        shown = "HTTP" if protocol is None else protocol
        report_violation(
            f"The {shown} listener '{args.name}' serves traffic without TLS. Make every default action "
            "a redirect to HTTPS (type 'redirect', redirect.protocol 'HTTPS', status_code 'HTTP_301'), "
            f"or serve HTTPS with ssl_policy='{_RECOMMENDED_SSL_POLICY}'."
        )


def _is_application_lb(props: dict[str, Any]) -> bool:
    lb_type = props.get("loadBalancerType")
    return lb_type is None or is_unknown(lb_type) or lb_type == "application"


@for_types(*LOAD_BALANCER_TYPES)
def _validate_alb_drop_invalid_headers(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    if not _is_application_lb(props):
        return
    drop = props.get("dropInvalidHeaderFields")
    if is_unknown(drop) or is_true(drop):
        return
    report_violation(
        f"The ALB '{args.name}' forwards HTTP headers with invalid names "
        f"(drop_invalid_header_fields is {describe(drop)}). Set drop_invalid_header_fields=True."
    )


@for_types(*LOAD_BALANCER_TYPES)
def _validate_alb_access_logs(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    if not _is_application_lb(props):
        return
    logs = first(props.get("accessLogs"))
    if is_unknown(logs):
        return
    enabled = get(logs, "enabled")
    bucket = get(logs, "bucket")
    if (is_unknown(enabled) or is_true(enabled)) and bucket is not None and bucket != "":
        return
    report_violation(
        f"The ALB '{args.name}' does not log access (access_logs.enabled is {describe(enabled)}, "
        f"access_logs.bucket is {describe(bucket)}). Set access_logs={{'bucket': <log bucket>, "
        "'enabled': True}; the bucket must block public access and allow the regional ELB log delivery."
    )


alb_https_listeners = ResourceValidationPolicy(
    name="alb-https-listeners",
    description="Load balancer listeners serve HTTPS/TLS with a TLS 1.2+ policy, or only redirect HTTP to HTTPS.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_alb_https_listener,
    config_schema=config_schema(ALLOWED_SSL_POLICIES),
)

alb_drop_invalid_headers = ResourceValidationPolicy(
    name="alb-drop-invalid-headers",
    description="Application load balancers drop HTTP headers with invalid names.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_alb_drop_invalid_headers,
    config_schema=config_schema(),
)

alb_access_logs = ResourceValidationPolicy(
    name="alb-access-logs",
    description="Application load balancers write access logs to S3.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_validate_alb_access_logs,
    config_schema=config_schema(),
)


# --- CloudFront and Route 53: resource policies ------------------------------------------


ALLOW_DEFAULT_CERTIFICATE = Option(
    "allowDefaultCertificate",
    {
        "type": "boolean",
        "default": False,
        "description": "Accept the default *.cloudfront.net certificate (which allows TLS 1.0).",
    },
)


@for_types(DISTRIBUTION)
def _validate_cloudfront_viewer_https(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    behaviors = [("the default cache behavior", first(props.get("defaultCacheBehavior")))]
    for behavior in items(props.get("orderedCacheBehaviors")):
        pattern = get(behavior, "pathPattern", UNKNOWN)
        label = "an ordered cache behavior" if is_unknown(pattern) else f"the cache behavior '{pattern}'"
        behaviors.append((label, behavior))
    for label, behavior in behaviors:
        if behavior is None or is_unknown(behavior):
            continue
        policy = get(behavior, "viewerProtocolPolicy")
        if not is_unknown(policy) and policy not in _HTTPS_VIEWER_POLICIES:
            report_violation(
                f"The CloudFront distribution '{args.name}' lets viewers use plain HTTP in {label} "
                f"(viewer_protocol_policy is {describe(policy)}). Set viewer_protocol_policy to "
                "'redirect-to-https' or 'https-only'."
            )
    certificate = first(props.get("viewerCertificate"))
    if is_unknown(certificate):
        return
    allow_default = bool(ALLOW_DEFAULT_CERTIFICATE.value(args))
    if is_true(get(certificate, "cloudfrontDefaultCertificate")) and not allow_default:
        report_violation(
            f"The CloudFront distribution '{args.name}' uses the default *.cloudfront.net certificate, "
            "which accepts TLS 1.0. Give it an ACM certificate from us-east-1 (viewer_certificate."
            "acm_certificate_arn, ssl_support_method 'sni-only') with minimum_protocol_version "
            "'TLSv1.2_2021'."
        )
        return
    version = get(certificate, "minimumProtocolVersion")
    if is_unknown(version) or (version is not None and _CLOUDFRONT_MODERN_TLS.match(str(version))):
        return
    if is_true(get(certificate, "cloudfrontDefaultCertificate")):
        return  # allowed by config; CloudFront ignores the minimum version for the default certificate
    report_violation(
        f"The CloudFront distribution '{args.name}' accepts TLS older than 1.2 "
        f"(viewer_certificate.minimum_protocol_version is {describe(version)}, and the provider default "
        "is TLSv1). Set minimum_protocol_version='TLSv1.2_2021' or newer."
    )


ACCEPT_EVALUATE_TARGET_HEALTH = Option(
    "acceptEvaluateTargetHealth",
    {
        "type": "boolean",
        "default": False,
        "description": (
            "Accept an alias record with evaluate_target_health instead of a health check. Off "
            "by default: for an ALB it reflects only its target groups, not the path through WAF."
        ),
    },
)


@for_types(ROUTE53_RECORD)
def _validate_route53_latency_health_check(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    policies = items(props.get("latencyRoutingPolicies"))
    if not policies:
        return
    health_check = props.get("healthCheckId")
    if is_unknown(health_check) or (health_check is not None and health_check != ""):
        return
    if ACCEPT_EVALUATE_TARGET_HEALTH.value(args):
        aliases = items(props.get("aliases"))
        if any(is_unknown(a) or is_true(get(a, "evaluateTargetHealth")) for a in aliases):
            return
    record_name = props.get("name")
    shown = "" if record_name is None or is_unknown(record_name) else f" for {record_name!r}"
    report_violation(
        f"The latency record '{args.name}'{shown} has no health check, so Route 53 keeps sending "
        "clients to its region when that region fails. Set health_check_id to an "
        "aws.route53.HealthCheck of the region's entry point."
    )


cloudfront_viewer_https = ResourceValidationPolicy(
    name="cloudfront-viewer-https",
    description="CloudFront distributions serve viewers over HTTPS only, with TLS 1.2 or newer.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_cloudfront_viewer_https,
    config_schema=config_schema(ALLOW_DEFAULT_CERTIFICATE),
)

route53_latency_health_check = ResourceValidationPolicy(
    name="route53-latency-health-check",
    description="Route 53 latency-based records carry a health check.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_route53_latency_health_check,
    config_schema=config_schema(ACCEPT_EVALUATE_TARGET_HEALTH),
)

POLICIES = [
    waf_before_alb,
    waf_before_api_stage,
    waf_before_cloudfront,
    alb_https_listeners,
    alb_drop_invalid_headers,
    alb_access_logs,
    cloudfront_viewer_https,
    route53_latency_health_check,
]
