"""docs/tuning.md tells the truth: each row's value is read from what the program registers (dev and prod).

The values come from the recorded resources, never from the constants in components/, so a value changed in
the code without its row (or the reverse) fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

import pytest
import yaml

from tools import stack_files
from tools.records import RecordedStack

DOC = stack_files.ROOT / "docs" / "tuning.md"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _rows() -> dict[str, str]:
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| ([^|]+?) \|", DOC.read_text(), re.M)
    assert rows, "docs/tuning.md has no rows"
    return dict(rows)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _one(values: Iterable[str], what: str) -> str:
    found = set(values)
    assert len(found) == 1, f"{what}: the program sets {sorted(found)}, not one value"
    return found.pop()


def _containers(stack: RecordedStack) -> list[dict]:
    """The main container of the limiter's and every service's Deployment."""
    return [d["inputs"]["spec"]["template"]["spec"]["containers"][0] for d in stack.of_type(DEPLOYMENT)]


def _release(stack: RecordedStack, chart: str) -> list[dict]:
    return [r["inputs"]["values"] for r in stack.of_type(RELEASE) if r["inputs"]["chart"] == chart]


def _of(stack: RecordedStack, type_: str, key: str) -> list:
    return [r["inputs"][key] for r in stack.of_type(type_)]


def _ecr_rules(stack: RecordedStack) -> list[dict]:
    policies = _of(stack, "aws:ecr/lifecyclePolicy:LifecyclePolicy", "policy")
    return [rule for policy in policies for rule in json.loads(policy)["rules"]]


READERS: dict[str, Callable[[RecordedStack], Iterable[str]]] = {
    "acm-validation-ttl": lambda s: (
        _num(r["inputs"]["ttl"]) for r in s.of_type("aws:route53/record:Record") if "-cert-validation-" in r["name"]
    ),
    "kms-deletion-window": lambda s: map(_num, _of(s, "aws:kms/key:Key", "deletionWindowInDays")),
    "log-retention": lambda s: [
        *map(_num, _of(s, "aws:cloudwatch/logGroup:LogGroup", "retentionInDays")),
        *(
            _num(rule["expiration"]["days"])
            for rules in _of(s, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "rules")
            for rule in rules
        ),
    ],
    "incomplete-upload-abort": lambda s: (
        _num(rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"])
        for rules in _of(s, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "rules")
        for rule in rules
    ),
    "dynamodb-scaling-cooldown": lambda s: (
        _num(c[k])
        for c in _of(s, "aws:appautoscaling/policy:Policy", "targetTrackingScalingPolicyConfiguration")
        for k in ("scaleInCooldown", "scaleOutCooldown")
    ),
    "liveness-probe": lambda s: (
        " / ".join(_num(p[k]) for k in ("initialDelaySeconds", "periodSeconds", "failureThreshold"))
        for p in (c["livenessProbe"] for c in _containers(s))
    ),
    "readiness-probe": lambda s: (
        " / ".join(_num(p[k]) for k in ("periodSeconds", "failureThreshold"))
        for p in (c["readinessProbe"] for c in _containers(s))
    ),
    "termination-grace": lambda s: (
        _num(d["inputs"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]) for d in s.of_type(DEPLOYMENT)
    ),
    "hpa-cpu-target": lambda s: [
        *(
            _num(h["inputs"]["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"])
            for h in s.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
            if h["name"].endswith("-limiter-hpa")
        ),
        *(_num(v["autoscaling"]["targetCPUUtilizationPercentage"]) for v in _release(s, "gateway")),
    ],
    "gateway-replicas": lambda s: (
        f"{_num(v['autoscaling']['minReplicas'])} to {_num(v['autoscaling']['maxReplicas'])}"
        for v in _release(s, "gateway")
    ),
    "istiod-replicas": lambda s: (
        f"{_num(v['autoscaleMin'])} to {_num(v['autoscaleMax'])}" for v in _release(s, "istiod")
    ),
    "load-balancer-controller-replicas": lambda s: (
        _num(v["replicaCount"]) for v in _release(s, "aws-load-balancer-controller")
    ),
    "scrape-interval": lambda s: (
        yaml.safe_load(c)["global"]["scrape_interval"].removesuffix("s")
        for c in _of(s, "aws:amp/scraper:Scraper", "scrapeConfiguration")
    ),
    "api-targets-alarm": lambda s: (
        f"{_num(r['inputs']['evaluationPeriods'])} x {_num(r['inputs']['period'])}"
        for r in s.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if r["name"].endswith("-api-targets-unhealthy")
    ),
    "cloudfront-origin-timeouts": lambda s: (
        f"{_num(c['originReadTimeout'])} / {_num(c['originKeepaliveTimeout'])}"
        for origins in _of(s, "aws:cloudfront/distribution:Distribution", "origins")
        for c in (o.get("customOriginConfig") for o in origins)
        if c
    ),
    "ecr-untagged-expiry": lambda s: (
        _num(rule["selection"]["countNumber"]) for rule in _ecr_rules(s) if rule["selection"]["tagStatus"] == "untagged"
    ),
    "ecr-tagged-kept": lambda s: (
        _num(rule["selection"]["countNumber"]) for rule in _ecr_rules(s) if rule["selection"]["tagStatus"] == "tagged"
    ),
    "origin-secret-length": lambda s: (
        _num(r["inputs"]["length"])
        for r in s.of_type("random:index/randomPassword:RandomPassword")
        if r["name"] == "origin-header"
    ),
    "api-key-length": lambda s: (
        _num(r["inputs"]["length"])
        for r in s.of_type("random:index/randomPassword:RandomPassword")
        if r["name"].startswith("api-key-")
    ),
}


def test_every_row_has_a_reader_and_every_reader_a_row():
    assert set(_rows()) == set(READERS)


@pytest.mark.parametrize("key", sorted(READERS))
def test_each_row_is_what_the_program_sets(key, dev_stack, prod_stack):
    documented = _rows()[key]
    # prod has CloudFront and every layer; dev reads the rows its layers have (one row may be prod-only).
    values = [*READERS[key](prod_stack), *READERS[key](dev_stack)]
    assert values, f"{key}: the program registers nothing this row describes"
    assert _one(values, key) == documented
