"""alb-https-listeners, alb-drop-invalid-headers, alb-access-logs, cloudfront-viewer-https and
route53-latency-health-check through the real analyzer, in preview and in update."""

from __future__ import annotations

import pytest

from tools.analyzer import UNKNOWN

ALB = "eu-west-1-edge-alb"
HTTPS = "eu-west-1-edge-https"
HTTP = "eu-west-1-edge-http"
CDN = "global-edge-cdn"
RECORD = "eu-west-1-edge-origin-record"


def only(result, policy):
    """The names of the resources a policy reported, and the level of each report."""
    return [(d.resource_name, d.enforcement_level) for d in result.for_policy(policy)]


@pytest.mark.parametrize(
    "ssl_policy",
    ["ELBSecurityPolicy-2016-08", "ELBSecurityPolicy-TLS-1-1-2017-01", "ELBSecurityPolicy-TLS13-1-0-2021-06"],
)
def test_https_listener_with_pre_tls12_policy_is_a_violation(platform, found, ssl_policy):
    platform.set_input(HTTPS, "sslPolicy", ssl_policy)

    [(name, message)] = found(platform.analyze(), "alb-https-listeners")

    assert name == HTTPS
    assert f"uses ssl_policy {ssl_policy!r}, which accepts TLS versions older than 1.2" in message


@pytest.mark.parametrize(
    "ssl_policy",
    [
        "ELBSecurityPolicy-TLS13-1-3-2021-06",
        "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
        "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    ],
)
def test_https_listener_with_tls12_policy_passes(platform, found, ssl_policy):
    platform.set_input(HTTPS, "sslPolicy", ssl_policy)

    assert found(platform.analyze(), "alb-https-listeners") == []


def test_https_listener_without_ssl_policy_gets_the_old_default(platform, found):
    platform.set_input(HTTPS, "sslPolicy", None)

    [(name, message)] = found(platform.analyze(), "alb-https-listeners")

    assert name == HTTPS
    assert "sets no ssl_policy, so it gets the provider default ELBSecurityPolicy-2016-08" in message


def test_https_listener_with_unknown_ssl_policy_passes_in_preview_without_a_skip(platform, found):
    platform.set_input(HTTPS, "sslPolicy", UNKNOWN)

    result = platform.analyze()

    assert found(result, "alb-https-listeners") == []
    assert result.preview_skips == []


def test_allowed_ssl_policies_can_be_narrowed_in_config(platform, found):
    config = {"alb-https-listeners": {"allowedSslPolicies": ["ELBSecurityPolicy-TLS13-1-3-2021-06"]}}

    assert [name for name, _ in found(platform.analyze(policy_config=config), "alb-https-listeners")] == [HTTPS]


def test_http_listener_that_forwards_is_a_violation(platform, found):
    platform.set_input(HTTP, "defaultActions", [{"type": "forward", "targetGroupArn": "arn:tg"}])

    [(name, message)] = found(platform.analyze(), "alb-https-listeners")

    assert name == HTTP
    assert "serves traffic without TLS. Make every default action a redirect to HTTPS" in message


def test_http_redirect_to_http_is_a_violation(platform, found):
    platform.set_input(
        HTTP, "defaultActions", [{"type": "redirect", "redirect": {"protocol": "HTTP", "statusCode": "HTTP_301"}}]
    )

    assert [name for name, _ in found(platform.analyze(), "alb-https-listeners")] == [HTTP]


def test_listener_without_protocol_counts_as_http(platform, found):
    platform.set_input(HTTP, "protocol", None)
    platform.set_input(HTTP, "defaultActions", [{"type": "forward"}])

    [(name, message)] = found(platform.analyze(), "alb-https-listeners")
    assert name == HTTP and f"\nThe HTTP listener '{HTTP}' serves traffic without TLS." in message


FORWARD = [{"type": "forward", "targetGroupArn": "arn:tg"}]
REDIRECT = [{"type": "redirect", "redirect": {"protocol": "HTTPS", "statusCode": "HTTP_301"}}]


@pytest.mark.parametrize(
    ("ssl_policy", "actions", "reported"),
    [
        ("ELBSecurityPolicy-TLS13-1-2-2021-06", FORWARD, False),  # TLS 1.2+ whatever the protocol turns out
        (UNKNOWN, FORWARD, False),  # may be TLS 1.2+: known at the update
        (None, REDIRECT, False),  # only redirects to HTTPS
        (None, FORWARD, True),  # plain HTTP at best
        ("ELBSecurityPolicy-2016-08", FORWARD, True),  # TLS 1.0 at best
    ],
)
def test_a_listener_whose_protocol_is_unknown_needs_a_tls12_policy_or_only_redirects(
    platform, found, ssl_policy, actions, reported
):
    platform.set_input(HTTP, "protocol", UNKNOWN)
    platform.set_input(HTTP, "sslPolicy", ssl_policy)
    platform.set_input(HTTP, "defaultActions", actions)

    findings = found(platform.analyze(), "alb-https-listeners")

    assert [name for name, _ in findings] == ([HTTP] if reported else [])
    if reported:
        assert "has a protocol that is unknown until the update" in findings[0][1]


def test_tcp_listener_of_the_internal_nlb_is_not_judged(platform, found):
    assert platform.get("eu-west-1-api-nlb-tcp")["inputs"]["protocol"] == "TCP"

    assert found(platform.analyze(), "alb-https-listeners") == []


def test_alb_that_keeps_invalid_headers_is_a_violation(platform):
    platform.set_input(ALB, "dropInvalidHeaderFields", None)

    assert only(platform.analyze(), "alb-drop-invalid-headers") == [(ALB, "mandatory")]


def test_alb_with_unknown_drop_invalid_headers_passes_in_preview(platform):
    platform.set_input(ALB, "dropInvalidHeaderFields", UNKNOWN)

    result = platform.analyze()

    assert only(result, "alb-drop-invalid-headers") == []
    assert result.preview_skips == []


def test_nlb_is_not_judged_for_headers_or_logs(platform):
    nlb = platform.get("eu-west-1-api-nlb")
    assert "dropInvalidHeaderFields" not in nlb["inputs"]

    result = platform.analyze()

    assert only(result, "alb-drop-invalid-headers") == []
    assert only(result, "alb-access-logs") == []


def test_alb_without_access_logs_is_an_advisory(platform, found):
    platform.set_input(ALB, "accessLogs", None)

    result = platform.analyze()

    assert only(result, "alb-access-logs") == [(ALB, "advisory")]
    assert result.mandatory == []


def test_alb_with_disabled_access_logs_is_an_advisory(platform, found):
    platform.set_input(ALB, "accessLogs", {"bucket": "logs", "enabled": False})

    [(name, message)] = found(platform.analyze(), "alb-access-logs")

    assert name == ALB
    assert "access_logs.enabled is False" in message


def test_cloudfront_allowing_plain_http_is_a_violation(platform, found):
    behaviors = [{"pathPattern": "/static/*", "viewerProtocolPolicy": "allow-all"}]
    platform.set_input(CDN, "orderedCacheBehaviors", behaviors)

    [(name, message)] = found(platform.analyze(), "cloudfront-viewer-https")

    assert name == CDN
    assert "lets viewers use plain HTTP in the cache behavior '/static/*'" in message


def test_cloudfront_with_old_minimum_tls_is_a_violation(platform, found):
    platform.set_input(
        CDN,
        "viewerCertificate",
        {"acmCertificateArn": "arn:aws:acm:us-east-1:1:certificate/x", "minimumProtocolVersion": "TLSv1.1_2016"},
    )

    [(name, message)] = found(platform.analyze(), "cloudfront-viewer-https")

    assert name == CDN
    assert "minimum_protocol_version is 'TLSv1.1_2016'" in message


def test_cloudfront_default_certificate_is_a_violation_unless_allowed(platform, found):
    platform.set_input(CDN, "viewerCertificate", {"cloudfrontDefaultCertificate": True})

    assert [name for name, _ in found(platform.analyze(), "cloudfront-viewer-https")] == [CDN]
    allowed = {"cloudfront-viewer-https": {"allowDefaultCertificate": True}}
    assert found(platform.analyze(policy_config=allowed), "cloudfront-viewer-https") == []


def test_latency_record_without_health_check_is_a_violation(platform, found):
    platform.set_input(RECORD, "healthCheckId", None)

    [(name, message)] = found(platform.analyze(), "route53-latency-health-check")

    assert name == RECORD
    assert "has no health check" in message
    assert "'origin.dev.example.com'" in message


def test_an_exempt_latency_record_is_not_judged(platform, found):
    platform.set_input(RECORD, "healthCheckId", None)
    config = {"route53-latency-health-check": {"exemptResources": [RECORD]}}

    assert found(platform.analyze(policy_config=config), "route53-latency-health-check") == []


def test_alias_target_health_counts_only_when_configured(platform, found):
    platform.set_input(RECORD, "healthCheckId", None)
    config = {"route53-latency-health-check": {"acceptEvaluateTargetHealth": True}}

    assert found(platform.analyze(policy_config=config), "route53-latency-health-check") == []


def test_simple_record_needs_no_health_check(platform, found):
    platform.set_input(RECORD, "latencyRoutingPolicies", None)
    platform.set_input(RECORD, "healthCheckId", None)

    assert found(platform.analyze(), "route53-latency-health-check") == []


def test_a_distribution_without_a_default_behavior_is_left_to_the_provider(platform, found):
    # The provider refuses a distribution without default_cache_behavior; this policy reports only what it sees.
    platform.set_input(CDN, "defaultCacheBehavior", None)

    assert found(platform.analyze(), "cloudfront-viewer-https") == []
