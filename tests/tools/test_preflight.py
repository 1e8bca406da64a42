"""The preflight: each rule refuses a bad value, and the real program passes every rule in every region."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools import preflight
from tools.mocked_run import run_stack
from tools.preflight import names, teardown, values

ROOT = Path(__file__).resolve().parents[2]


def _resource(type_: str, name: str, inputs: dict | None = None, **extra) -> dict:
    resource = {
        "urn": f"urn:pulumi:dev::ratelimited-platform::{type_}::{name}",
        "type": type_,
        "name": name,
        "custom": True,
        "inputs": inputs or {},
        "property_dependencies": {},
        "protect": False,
        "retain_on_delete": False,
    }
    resource.update(extra)
    return resource


def _rules(*resources: dict) -> list[tuple[str, str]]:
    return [(f.rule, f.name) for f in preflight.run({"resources": list(resources)})]


# --- the real program ------------------------------------------------------------------------


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack"])
def test_the_sample_stacks_pass_every_rule(stack_name, request):
    stack = request.getfixturevalue(stack_name)
    assert [f.message for f in preflight.run(stack.record)] == []


def test_the_program_passes_in_the_regions_with_the_longest_names():
    record = run_stack("dev", config_overrides={"regions": ["ap-southeast-1", "ap-northeast-1"]})
    assert [f.message for f in preflight.run(record)] == []


def test_every_rule_is_listed_once_with_a_description():
    ids = [rule for rule, _ in preflight.RULES]
    assert len(ids) == len(set(ids))
    assert {"name-length", "name-characters", "waf-log-destination", "deletion-guard", "retained-user"} <= set(ids)
    assert all(text for _, text in preflight.RULES)
    # ... and documented: the README's table of what the preflight checks names every rule.
    readme = (ROOT / "README.md").read_text()
    assert [rule for rule in ids if f"`{rule}`" not in readme] == []


# --- names -------------------------------------------------------------------------------------


def test_an_auto_name_over_the_types_limit_is_refused():
    # The API target group this program once had: "<region>-edge-apigw-api-tg-" + 7 hex is 35 > 32.
    bad = _resource("aws:lb/targetGroup:TargetGroup", "eu-west-1-edge-apigw-api-tg")
    (finding,) = preflight.run({"resources": [bad]})
    assert finding.rule == "name-length" and finding.name == "eu-west-1-edge-apigw-api-tg"
    assert "at most 32" in finding.message and "elbv2/validate.go" in finding.source
    assert _rules(_resource("aws:lb/targetGroup:TargetGroup", "edge-tg")) == []


def test_a_name_is_judged_with_the_longest_region_name():
    # 50 characters in eu-west-1, 55 in ap-southeast-1: Helm allows 53.
    release = _resource("kubernetes:helm.sh/v3:Release", "eu-west-1-eks-aws-load-balancer-controller")
    assert _rules(release) == [("name-length", release["name"])]
    assert names.longest_region_variant("eu-west-1-eks") == "ap-southeast-1-eks"
    explicit = _resource("kubernetes:helm.sh/v3:Release", release["name"], {"name": "aws-load-balancer-controller"})
    assert _rules(explicit) == []


def test_prefixes_and_characters_are_checked():
    lb = "aws:lb/loadBalancer:LoadBalancer"
    assert _rules(_resource(lb, "a", {"namePrefix": "web-"})) == []
    assert _rules(_resource(lb, "a", {"namePrefix": "toolong-"})) == [("name-length", "a")]
    assert _rules(_resource(lb, "a", {"name": "internal-web"})) == [("name-characters", "a")]
    assert _rules(_resource(lb, "a", {"name": "web_lb"})) == [("name-characters", "a")]
    bucket = "aws:s3/bucket:Bucket"
    assert _rules(_resource(bucket, "b", {"bucket": "My-Logs", "forceDestroy": True})) == [("name-characters", "b")]
    assert _rules(_resource(bucket, "Logs", {"forceDestroy": True})) == []  # the auto-name is lower-cased
    assert _rules(_resource("aws:kms/alias:Alias", "k", {"name": "tables"})) == [
        ("name-characters", "k"),
        ("name-characters", "k"),
    ]
    assert _rules(_resource("aws:kms/alias:Alias", "k", {"name": "alias/aws/tables"})) == [("name-characters", "k")]
    long_role = "x" * 57  # + "-" + 7 hex = 65 > 64
    assert _rules(_resource("aws:iam/role:Role", long_role)) == [("name-length", long_role)]
    assert _rules(_resource("aws:iam/role:Role", "x" * 56)) == []


def test_unknown_explicit_names_are_left_to_apply_time():
    from tools.mocks import UNKNOWN

    assert _rules(_resource("aws:lb/targetGroup:TargetGroup", "x" * 40, {"name": UNKNOWN})) == []


def test_kubernetes_names_are_dns_names():
    svc = "kubernetes:core/v1:Service"
    assert _rules(_resource(svc, "s", {"kind": "Service", "metadata": {"name": "web", "namespace": "apps"}})) == []
    assert _rules(_resource(svc, "s", {"kind": "Service", "metadata": {"name": "9web"}})) == [("name-characters", "s")]
    assert _rules(_resource(svc, "s", {"kind": "Service", "metadata": {"name": "w" * 64}})) == [("name-length", "s")]
    cm = "kubernetes:core/v1:ConfigMap"
    assert _rules(_resource(cm, "c", {"kind": "ConfigMap", "metadata": {"name": "a.b-c"}})) == []
    assert _rules(_resource(cm, "c", {"kind": "ConfigMap", "metadata": {"name": "Rules"}})) == [
        ("name-characters", "c")
    ]
    assert _rules(_resource(cm, "c", {"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "Apps"}})) == [
        ("name-characters", "c")
    ]
    # auto-named: "<logical>-<8 characters>"
    assert _rules(_resource(cm, "eu-west-1-mesh-RULES", {"kind": "ConfigMap", "metadata": {}})) == [
        ("name-characters", "eu-west-1-mesh-RULES")
    ]


def test_waf_logs_go_to_aws_waf_logs_groups_only():
    group = _resource("aws:cloudwatch/logGroup:LogGroup", "acl-logs", {"namePrefix": "acl-logs-"})
    config = _resource(
        "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
        "acl-logging",
        property_dependencies={"logDestinationConfigs": [group["urn"]]},
    )
    assert _rules(group, config) == [("waf-log-destination", "acl-logging")]
    group["inputs"]["namePrefix"] = "aws-waf-logs-acl-"
    assert _rules(group, config) == []


# --- teardown ------------------------------------------------------------------------------------


def test_what_aws_refuses_to_delete_must_be_protected():
    alb = _resource("aws:lb/loadBalancer:LoadBalancer", "alb", {"namePrefix": "web-", "enableDeletionProtection": True})
    table = _resource("aws:dynamodb/table:Table", "t", {"deletionProtectionEnabled": True})
    bucket = _resource("aws:s3/bucket:Bucket", "logs")
    assert _rules(alb, table, bucket) == [
        ("deletion-guard", "alb"),
        ("deletion-guard", "t"),
        ("deletion-guard", "logs"),
    ]
    for resource in (alb, table, bucket):
        resource["protect"] = True
    assert _rules(alb, table, bucket) == []
    assert _rules(_resource("aws:s3/bucket:Bucket", "tmp", {"forceDestroy": True})) == []
    assert teardown.aws_refuses_delete(_resource("aws:lb/loadBalancer:LoadBalancer", "x")) is None


def test_a_retained_resource_must_not_use_what_the_destroy_deletes():
    acl = _resource("aws:wafv2/webAcl:WebAcl", "acl")
    cdn = _resource(
        "aws:cloudfront/distribution:Distribution",
        "cdn",
        retain_on_delete=True,
        property_dependencies={"webAclId": [acl["urn"]]},
    )
    assert _rules(acl, cdn) == [("retained-user", "cdn")]
    cdn["retain_on_delete"], cdn["protect"] = False, True
    assert _rules(acl, cdn) == []


# --- values the AWS APIs refuse ---------------------------------------------------------------------


def test_an_eks_vpc_needs_dns_support_and_hostnames():
    vpc = _resource("aws:ec2/vpc:Vpc", "vpc", {"enableDnsSupport": True}, id="vpc-0123456789abcdef0")
    cluster = _resource("eks:index:Cluster", "cluster", {"vpcId": "vpc-0123456789abcdef0"}, custom=False)
    # pulumi-aws defaults enableDnsHostnames to false (ec2.Vpc docstring), so leaving it out is refused.
    assert _rules(vpc, cluster) == [("vpc-dns", "vpc")]
    vpc["inputs"]["enableDnsHostnames"] = True
    assert _rules(vpc, cluster) == []
    vpc["inputs"]["enableDnsSupport"] = False
    assert _rules(vpc, cluster) == [("vpc-dns", "vpc")]
    # A VPC without a cluster is none of this rule's business, nor one whose id nobody names.
    assert _rules(vpc) == []
    assert _rules(_resource("aws:ec2/vpc:Vpc", "other"), _resource("eks:index:Cluster", "c2", custom=False)) == []


def _lifecycle(*rules: dict) -> dict:
    return {"rules": list(rules)}


def _rule(priority, status="untagged", **selection) -> dict:
    base = {"tagStatus": status, "countType": "imageCountMoreThan", "countNumber": 5}
    return {"rulePriority": priority, "selection": {**base, **selection}, "action": {"type": "expire"}}


def test_ecr_lifecycle_policies_are_judged_by_ecrs_rules():
    assert values.ecr_lifecycle_errors(_lifecycle(_rule(1), _rule(2, "tagged", tagPatternList=["*"]))) == []
    assert values.ecr_lifecycle_errors(_lifecycle(_rule(1), _rule(1, "tagged", tagPatternList=["*"]))) == [
        "rule priorities must be unique, not [1, 1]"
    ]
    assert values.ecr_lifecycle_errors(_lifecycle(_rule(1, "any"), _rule(2))) == [
        "rule 1: the rule with tagStatus any must have the highest rulePriority"
    ]
    assert values.ecr_lifecycle_errors(_lifecycle(_rule(1, "tagged"))) == [
        "rule 1: a tagged rule needs tagPrefixList or tagPatternList"
    ]
    assert values.ecr_lifecycle_errors(_lifecycle(_rule(1, tagPrefixList=["v"]))) == [
        "rule 1: an untagged rule takes no tag list"
    ]
    assert values.ecr_lifecycle_errors(_lifecycle(_rule(0, countNumber=0))) == [
        "every rulePriority must be a positive integer, not [0]",
        "rule 0: countNumber must be a positive integer, not 0",
    ]
    assert values.ecr_lifecycle_errors({}) == ["it has no `rules` list"]
    policy = _resource("aws:ecr/lifecyclePolicy:LifecyclePolicy", "lp", {"policy": "{not json"})
    assert _rules(policy) == [("ecr-lifecycle-policy", "lp")]


def test_integration_timeouts_and_log_retention_are_values_aws_takes():
    def integration(ms):
        return _resource("aws:apigateway/integration:Integration", f"i{ms}", {"timeoutMilliseconds": ms})

    # Mocked records carry numbers as floats (the engine's JSON numbers).
    assert _rules(integration(49), integration(50.0), integration(29000.0), integration(29001)) == [
        ("api-integration-timeout", "i49"),
        ("api-integration-timeout", "i29001"),
    ]

    def logs(days):
        return _resource("aws:cloudwatch/logGroup:LogGroup", f"l{days}", {"retentionInDays": days})

    assert _rules(logs(0), logs(90.0), logs(3653), logs(10), logs(3654)) == [
        ("log-retention", "l10"),
        ("log-retention", "l3654"),
    ]


def test_alarm_periods_are_ones_cloudwatch_takes():
    def alarm(name, **inputs):
        return _resource("aws:cloudwatch/metricAlarm:MetricAlarm", name, inputs)

    queries = [{"id": "m0", "metric": {"period": 61.0}}, {"id": "total", "expression": "SUM([m0])"}]
    assert _rules(
        alarm("ok60", period=60.0, evaluationPeriods=5.0), alarm("ok10", period=10, evaluationPeriods=3),
        alarm("odd", period=61, evaluationPeriods=1), alarm("math", metricQueries=queries, evaluationPeriods=1),
        alarm("long", period=300, evaluationPeriods=289), alarm("week", period=3600, evaluationPeriods=168),
    ) == [("alarm-period", "odd"), ("alarm-period", "math"), ("alarm-period", "long")]  # fmt: skip


def test_waf_priorities_are_distinct_and_not_negative():
    transform = {"byteMatchStatement": {"textTransformations": [{"priority": 0, "type": "NONE"}]}}
    good = [{"name": "a", "priority": 10.0, "statement": {"notStatement": {"statement": transform}}},
            {"name": "b", "priority": 20, "statement": {}}]  # fmt: skip
    assert values.waf_priority_errors(good) == []
    assert values.waf_priority_errors([{**good[0], "priority": 20}, good[1]]) == [
        "rule priorities must all be different, not [20, 20]"
    ]
    negative = {"byteMatchStatement": {"textTransformations": [{"priority": -1, "type": "NONE"}]}}
    assert values.waf_priority_errors(
        [{"name": "a", "priority": 0, "statement": {"notStatement": {"statement": negative}}}]
    ) == ["rule 'a''s text transformation priorities must be whole numbers of 0 or more, not [-1]"]
    twice = {"textTransformations": [{"priority": 1, "type": "LOWERCASE"}, {"priority": 1, "type": "NONE"}]}
    acl = _resource("aws:wafv2/webAcl:WebAcl", "acl", {"rules": [{"name": "x", "priority": 1, "statement": twice}]})
    assert _rules(acl) == [("waf-priorities", "acl")]


def test_the_log_retention_table_is_botocores():
    # The table is literal (the preview does not install botocore); this keeps it in step with the API model.
    import re

    import botocore.session  # the limiter's dependency, so always in the test environment

    shape = botocore.session.get_session().get_service_model("logs").operation_model("PutRetentionPolicy")
    doc = shape.input_shape.members["retentionInDays"].documentation
    listed = re.search(r"Possible values are: ([\d, and]+)\.", doc)
    assert listed, doc
    assert {int(d) for d in re.findall(r"\d+", listed.group(1))} | {0} == values.LOG_RETENTION_DAYS


# --- through the offline preview -------------------------------------------------------------------


def _preview(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.preview", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


BROKEN = "tests/tools/programs/broken_deploy.py"


def test_the_preview_fails_and_names_each_resource_of_a_broken_program():
    proc = _preview("--program", BROKEN, "--json")
    assert proc.returncode == 1, proc.stderr
    errors = {(e["rule"], e["name"]) for e in json.loads(proc.stdout)["preflight"]["errors"]}
    assert errors >= {
        ("name-length", "eu-west-1-edge-apigw-api-tg"),  # a name over its limit
        ("name-length", "eu-west-1-eks-aws-load-balancer-controller"),  # ... with the longest region name
        ("iam-condition", "eu-west-1-broken-irsa-role"),  # a scheme in an IRSA condition key
        ("irsa-service-account", "eu-west-1-broken-irsa-role"),
        ("iam-action", "eu-west-1-broken-policy"),  # an unknown IAM action
        ("istio-crd-unknown-field", "eu-west-1-broken-authz"),  # an Istio object with an unknown field
        ("log-retention", "eu-west-1-broken-logs"),  # 10 days: not a period CloudWatch Logs offers
        ("api-integration-timeout", "eu-west-1-broken-integration"),  # 30 s
        ("ecr-lifecycle-policy", "eu-west-1-broken-lifecycle"),  # two rules of priority 1
    }, errors
    text = _preview("--program", BROKEN)
    assert text.returncode == 1
    assert "error  [name-length] aws:lb/targetGroup:TargetGroup 'eu-west-1-edge-apigw-api-tg'" in text.stdout
    assert "dynamodb:UpdateItems" in text.stdout and "notPath" in text.stdout
