"""The IAM preflight: each rule fails on a bad document and passes on a good one, then the real program.

Hand-made records hold one resource per case; the real program's records come from the session fixtures
(`dev_stack`, `prod_stack`: outputs known, as the preview's preflight sees them).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tools.mocks import UNKNOWN
from tools.preflight import iam

ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/46EA407288052C22E291F3C2E65D2CBE"
PROVIDER = f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"
ROLE_ARN = "arn:aws:iam::123456789012:role/lbc-role-1234567"


def resource(type_: str, name: str, inputs: dict[str, Any], outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:dev::ratelimited-platform::{type_}::{name}",
        "type": type_,
        "name": name,
        "inputs": inputs,
        "outputs": outputs or {},
        "property_dependencies": {},
    }


def record(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"project": "ratelimited-platform", "stack": "dev", "preview": False, "resources": list(resources)}


def role_policy(statements: Any, **top: Any) -> dict[str, Any]:
    doc = {"Version": "2012-10-17", "Statement": statements, **top}
    return resource("aws:iam/rolePolicy:RolePolicy", "p", {"policy": json.dumps(doc), "role": "r"})


def bucket_policy(statements: Any) -> dict[str, Any]:
    doc = {"Version": "2012-10-17", "Statement": statements}
    return resource("aws:s3/bucketPolicy:BucketPolicy", "b", {"policy": json.dumps(doc), "bucket": "b"})


def trust_role(statement: dict[str, Any], name: str = "role", arn: str = ROLE_ARN) -> dict[str, Any]:
    doc = {"Version": "2012-10-17", "Statement": [statement]}
    return resource("aws:iam/role:Role", name, {"assumeRolePolicy": json.dumps(doc)}, {"arn": arn})


def irsa_statement(sub: Any = "system:serviceaccount:kube-system:lbc", aud: Any = "sts.amazonaws.com", issuer=ISSUER):
    condition = {"StringEquals": {}}
    if sub is not None:
        condition["StringEquals"][f"{issuer}:sub"] = sub
    if aud is not None:
        condition["StringEquals"][f"{issuer}:aud"] = aud
    return {
        "Effect": "Allow",
        "Principal": {"Federated": PROVIDER},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    }


def service_account(namespace: str = "kube-system", name: str = "lbc", arn: str = ROLE_ARN) -> dict[str, Any]:
    meta = {"namespace": namespace, "name": name, "annotations": {iam.ROLE_ARN_ANNOTATION: arn}}
    return resource("kubernetes:core/v1:ServiceAccount", "sa", {"metadata": meta})


def deployment(namespace: str = "kube-system", account: str | None = "lbc") -> dict[str, Any]:
    pod = {"containers": [{"name": "c", "image": "i"}]} | ({"serviceAccountName": account} if account else {})
    spec = {"template": {"spec": pod}}
    return resource("kubernetes:apps/v1:Deployment", "dep", {"metadata": {"namespace": namespace}, "spec": spec})


def helm_release(values: dict[str, Any], namespace: str = "kube-system") -> dict[str, Any]:
    return resource("kubernetes:helm.sh/v3:Release", "rel", {"namespace": namespace, "chart": "c", "values": values})


GOOD_IDENTITY = {"Sid": "Read", "Effect": "Allow", "Action": ["ec2:Describe*", "s3:GetObject"], "Resource": "*"}


def rules(findings: list[iam.Finding]) -> list[str]:
    return [f.rule for f in findings]


def test_rules_are_listed_with_their_sources():
    ids = [rule for rule, _ in iam.RULES]
    assert ids == ["iam-grammar", "iam-condition", "iam-action", "irsa-service-account"]
    for source in (iam.GRAMMAR_SOURCE, iam.CONDITION_SOURCE, iam.ACTION_SOURCE, iam.IRSA_SOURCE):
        assert "https://docs.aws.amazon.com/" in source


# --- iam-grammar ------------------------------------------------------------------------------------


def test_good_identity_policy_passes():
    assert iam.check(record(role_policy([GOOD_IDENTITY]))) == []
    assert iam.check(record(role_policy(GOOD_IDENTITY))) == []  # a single statement object is allowed


@pytest.mark.parametrize(
    ("statement", "top", "expected"),
    [
        (GOOD_IDENTITY, {"Version": "2012-10-18"}, "Version '2012-10-18'"),
        (GOOD_IDENTITY, {"Versoin": "2012-10-17"}, "unknown element 'Versoin'"),
        ({**GOOD_IDENTITY, "Effect": "allow"}, {}, "Effect 'allow'"),
        ({k: v for k, v in GOOD_IDENTITY.items() if k != "Action"}, {}, "needs Action or NotAction"),
        ({**GOOD_IDENTITY, "NotAction": "s3:PutObject"}, {}, "both Action and NotAction"),
        ({k: v for k, v in GOOD_IDENTITY.items() if k != "Resource"}, {}, "needs Resource or NotResource"),
        ({**GOOD_IDENTITY, "Principal": "*"}, {}, "must not name a Principal"),
        ({**GOOD_IDENTITY, "Sid": "read-all"}, {}, "Sid 'read-all'"),
        ({**GOOD_IDENTITY, "Resources": "*"}, {}, "unknown element 'Resources'"),
        ({**GOOD_IDENTITY, "Action": []}, {}, "Action must be a string or a non-empty list"),
        ({**GOOD_IDENTITY, "Condition": ["x"]}, {}, "Condition must be an object"),
    ],
)
def test_identity_policy_grammar_errors(statement, top, expected):
    findings = iam.check(record(role_policy([statement], **top)))
    assert rules(findings) == ["iam-grammar"], findings
    assert expected in findings[0].message
    assert findings[0].name == "p" and findings[0].type == "aws:iam/rolePolicy:RolePolicy"


def test_not_json_and_empty_statement_are_errors():
    broken = resource("aws:iam/policy:Policy", "pol", {"policy": "{'Version': '2012-10-17'"})
    empty = resource(
        "aws:iam/policy:Policy", "pol2", {"policy": json.dumps({"Version": "2012-10-17", "Statement": []})}
    )
    findings = iam.check(record(broken, empty))
    assert [(f.rule, f.name) for f in findings] == [("iam-grammar", "pol"), ("iam-grammar", "pol2")]
    assert "is not JSON" in findings[0].message and "must have a Statement" in findings[1].message


def test_trust_policy_grammar():
    good = {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    assert iam.check(record(trust_role(good))) == []
    with_resource = trust_role({**good, "Resource": "*"})
    no_principal = trust_role({k: v for k, v in good.items() if k != "Principal"}, name="role2")
    bad_type = trust_role({**good, "Principal": {"Services": "ec2.amazonaws.com"}}, name="role3")
    findings = iam.check(record(with_resource, no_principal, bad_type))
    assert [(f.rule, f.name) for f in findings] == [
        ("iam-grammar", "role"),
        ("iam-grammar", "role2"),
        ("iam-grammar", "role3"),
    ]
    assert "must not name a Resource" in findings[0].message
    assert "needs Principal or NotPrincipal" in findings[1].message
    assert "unknown principal type 'Services'" in findings[2].message


def test_resource_policy_needs_principal_and_resource():
    good = {"Sid": "Deliver logs", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::156460612806:root"}}
    good |= {"Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}
    assert iam.check(record(bucket_policy([good]))) == []  # S3 Sids may hold spaces; IAM's may not
    no_resource = {k: v for k, v in good.items() if k != "Resource"}
    findings = iam.check(record(bucket_policy([no_resource])))
    assert rules(findings) == ["iam-grammar"] and "needs Resource or NotResource" in findings[0].message


def test_a_document_in_an_unlisted_input_is_still_checked():
    doc = {"Version": "2012-10-17", "Statement": [{**GOOD_IDENTITY, "Action": "s3:GetObjekt"}]}
    res = resource(
        "aws:ssoadmin/permissionSetInlinePolicy:PermissionSetInlinePolicy", "ps", {"inlinePolicy": json.dumps(doc)}
    )
    findings = iam.check(record(res))
    assert rules(findings) == ["iam-action"] and "inlinePolicy" in findings[0].message


def test_role_inline_policies_are_identity_policies():
    doc = {"Version": "2012-10-17", "Statement": [{**GOOD_IDENTITY, "Resource": None}]}
    res = resource("aws:iam/role:Role", "r", {"inlinePolicies": [{"name": "x", "policy": json.dumps(doc)}]})
    findings = iam.check(record(res))
    assert rules(findings) == ["iam-grammar"] and "inlinePolicies[0].policy" in findings[0].message


# --- iam-condition ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operator",
    ["StringEquals", "StringLikeIfExists", "ForAllValues:StringEquals", "ForAnyValue:ArnLikeIfExists", "Null", "Bool"],
)
def test_known_condition_operators_pass(operator):
    statement = {**GOOD_IDENTITY, "Condition": {operator: {"aws:PrincipalTag/team": "x"}}}
    assert iam.check(record(role_policy([statement]))) == []


@pytest.mark.parametrize("operator", ["StringEqual", "NullIfExists", "ForEachValue:StringEquals", "stringequals"])
def test_unknown_condition_operators_fail(operator):
    statement = {**GOOD_IDENTITY, "Condition": {operator: {"aws:PrincipalTag/team": "x"}}}
    findings = iam.check(record(role_policy([statement])))
    assert rules(findings) == ["iam-condition"] and repr(operator) in findings[0].message


@pytest.mark.parametrize(
    "key",
    [f"https://{ISSUER}:sub", "SecureTransport", ":sub", "aws:"],
)
def test_malformed_condition_keys_fail(key):
    statement = {**GOOD_IDENTITY, "Condition": {"StringEquals": {key: "x"}}}
    findings = iam.check(record(role_policy([statement])))
    assert rules(findings) == ["iam-condition"] and repr(key) in findings[0].message


def test_condition_keys_of_real_forms_pass():
    keys = [
        f"{ISSUER}:sub",
        "aws:ResourceTag/k8s.io/cluster-autoscaler/my-cluster",
        "aws:ResourceTag/aws:cloudformation:stack-name",
        "aws:ResourceTag/Cost Center",
        "accounts.google.com:aud",
        "kms:ViaService",
    ]
    statement = {**GOOD_IDENTITY, "Condition": {"StringEquals": dict.fromkeys(keys, "x")}}
    assert iam.check(record(role_policy([statement]))) == []


# --- iam-action -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action", ["*", "s3:*", "ec2:Describe*", "DYNAMODB:updateitem", "sts:AssumeRoleWithWebIdentity"]
)
def test_existing_actions_pass(action):
    assert iam.check(record(role_policy([{**GOOD_IDENTITY, "Action": action}]))) == []


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("dynamodb:UpdateItems", "is not an action of the service 'dynamodb'"),
        ("ec2:Descirbe*", "matches no action"),
        ("dynamo:GetItem", "service prefix 'dynamo'"),
        ("GetItem", "is not of the form"),
    ],
)
def test_unknown_actions_fail(action, expected):
    findings = iam.check(record(role_policy([{**GOOD_IDENTITY, "Action": action}])))
    assert rules(findings) == ["iam-action"]
    assert expected in findings[0].message and repr(action) in findings[0].message


def test_not_action_is_checked_too():
    statement = {k: v for k, v in GOOD_IDENTITY.items() if k != "Action"} | {"NotAction": "iam:CreateUsr"}
    findings = iam.check(record(role_policy([statement])))
    assert rules(findings) == ["iam-action"] and "NotAction 'iam:CreateUsr'" in findings[0].message


# --- irsa-service-account ---------------------------------------------------------------------------


def test_irsa_role_used_by_its_service_account_passes():
    assert iam.check(record(trust_role(irsa_statement()), service_account(), deployment())) == []


def test_irsa_role_used_through_helm_values_passes():
    lbc = helm_release({"serviceAccount": {"name": "lbc", "annotations": {iam.ROLE_ARN_ANNOTATION: ROLE_ARN}}})
    assert iam.check(record(trust_role(irsa_statement()), lbc)) == []
    autoscaler_arn = "arn:aws:iam::123456789012:role/ca-role-7654321"
    ca = helm_release(
        {"rbac": {"serviceAccount": {"name": "ca", "annotations": {iam.ROLE_ARN_ANNOTATION: autoscaler_arn}}}}
    )
    role = trust_role(irsa_statement(sub="system:serviceaccount:kube-system:ca"), arn=autoscaler_arn)
    assert iam.check(record(role, ca)) == []


def test_irsa_key_with_scheme_fails():
    """The defect of components/irsa.py: keys built from oidc_provider_url, which carries https://."""
    role = trust_role(irsa_statement(issuer=f"https://{ISSUER}"))
    findings = iam.check(record(role, service_account(), deployment()))
    assert "iam-condition" in rules(findings) and "irsa-service-account" in rules(findings)
    assert all(f.name == "role" for f in findings)
    assert any(f"'https://{ISSUER}:sub'" in f.message for f in findings)


@pytest.mark.parametrize(
    ("account", "expected"),
    [
        (
            service_account(name="other"),
            "ServiceAccounts annotated with its ARN are ['system:serviceaccount:kube-system:other']",
        ),
        (service_account(namespace="default"), "are ['system:serviceaccount:default:lbc']"),
        (service_account(arn=ROLE_ARN + "x"), "on no ServiceAccount or Helm release"),
    ],
)
def test_irsa_subject_must_be_the_annotated_service_account(account, expected):
    meta = account["inputs"]["metadata"]
    workload = deployment(namespace=meta["namespace"], account=meta["name"])
    findings = iam.check(record(trust_role(irsa_statement()), account, workload))
    assert rules(findings) == ["irsa-service-account"] and expected in findings[0].message


def test_irsa_statements_of_one_role_are_judged_together():
    """One role trusted by two clusters: each statement names one of the two annotated ServiceAccounts."""
    other_issuer = "oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
    second = irsa_statement(sub="system:serviceaccount:apps:lbc", issuer=other_issuer)
    second["Principal"] = {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{other_issuer}"}
    doc = {"Version": "2012-10-17", "Statement": [irsa_statement(), second]}
    role = resource("aws:iam/role:Role", "role", {"assumeRolePolicy": json.dumps(doc)}, {"arn": ROLE_ARN})
    both = (service_account(), service_account(namespace="apps"), deployment(), deployment(namespace="apps"))
    assert iam.check(record(role, *both)) == []
    findings = iam.check(record(role, service_account(), deployment()))
    assert rules(findings) == ["irsa-service-account"] and "system:serviceaccount:apps:lbc" in findings[0].message


@pytest.mark.parametrize(
    "workload",
    [deployment(account="other"), deployment(namespace="default"), deployment(account=None)],
)
def test_annotated_service_account_must_be_run_as_by_a_workload(workload):
    findings = iam.check(record(trust_role(irsa_statement()), service_account(), workload))
    assert rules(findings) == ["irsa-service-account"]
    assert "'kube-system/lbc'" in findings[0].message and findings[0].type == "kubernetes:core/v1:ServiceAccount"


def test_irsa_helm_release_namespace_counts():
    lbc = helm_release({"serviceAccount": {"name": "lbc", "annotations": {iam.ROLE_ARN_ANNOTATION: ROLE_ARN}}}, "lbc")
    findings = iam.check(record(trust_role(irsa_statement()), lbc))
    assert rules(findings) == ["irsa-service-account"] and "system:serviceaccount:lbc:lbc" in findings[0].message


def test_irsa_audience_and_subject_are_required():
    no_aud = iam.check(record(trust_role(irsa_statement(aud=None)), service_account(), deployment()))
    assert rules(no_aud) == ["irsa-service-account"] and "sts.amazonaws.com" in no_aud[0].message
    wrong_aud = iam.check(record(trust_role(irsa_statement(aud="sts")), service_account(), deployment()))
    assert rules(wrong_aud) == ["irsa-service-account"]
    no_sub = iam.check(record(trust_role(irsa_statement(sub=None)), service_account(), deployment()))
    assert rules(no_sub) == ["irsa-service-account"] and "has no" in no_sub[0].message


def test_unknown_values_are_skipped_one_by_one():
    unknown_doc = resource("aws:iam/role:Role", "r", {"assumeRolePolicy": UNKNOWN}, {"arn": UNKNOWN})
    assert iam.check(record(unknown_doc)) == []
    # An unknown action or condition key is skipped, the rest of the same document still checked.
    statement = {
        "Effect": "Allow",
        "Action": [UNKNOWN, "s3:GetObjekt"],
        "Resource": UNKNOWN,
        "Condition": {"StringEquals": {f"{UNKNOWN}:sub": "x", "https://x:aud": "y"}},
    }
    findings = iam.check(record(role_policy([statement])))
    assert sorted(rules(findings)) == ["iam-action", "iam-condition"]


# --- the real program -------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev_stack", "prod_stack"])
def test_real_program_has_no_iam_findings(stack, request):
    recorded = request.getfixturevalue(stack).record
    documents = [d for res in recorded["resources"] for d in iam._documents(res)]
    kinds = {kind for _, kind, _ in documents}
    # Preconditions: the program's documents of every kind are there to be judged.
    assert kinds == {iam.TRUST, iam.IDENTITY, iam.RESOURCE}, kinds
    # Every role trusted by an EKS OIDC provider is recognised as IRSA (per region: LBC, autoscaler, limiter, and
    # each microservice that uses tables or secrets).
    irsa_roles = [
        res
        for res in recorded["resources"]
        if res["type"] == "aws:iam/role:Role"
        and list(iam._irsa_statements(json.loads(res["inputs"]["assumeRolePolicy"])))
    ]
    regions = recorded["config"].get("ratelimited-platform:regions")
    services = json.loads(recorded["config"].get("ratelimited-platform:microservices") or "[]")
    with_role = sum(1 for m in services if m.get("tables") or m.get("secrets"))
    assert with_role, "the sample's orders service uses the orders table"
    assert len(irsa_roles) == (3 + with_role) * len(json.loads(regions) if isinstance(regions, str) else regions)
    assert iam.check(recorded) == []


def _mutated(recorded: dict[str, Any], name_part: str, edit) -> dict[str, Any]:
    changed = copy.deepcopy(recorded)
    [res] = [r for r in changed["resources"] if r["type"] == "aws:iam/role:Role" and name_part in r["name"]]
    edit(res)
    return changed


def test_real_lbc_role_with_a_scheme_in_its_keys_fails(dev_stack):
    def add_scheme(res):
        res["inputs"]["assumeRolePolicy"] = res["inputs"]["assumeRolePolicy"].replace(
            '"oidc.eks.', '"https://oidc.eks.'
        )

    findings = iam.check(_mutated(dev_stack.record, "eks-lbc-role", add_scheme))
    assert findings and {f.name for f in findings} == {"eu-west-1-eks-lbc-role"}
    assert "iam-condition" in rules(findings)


def test_real_autoscaler_role_naming_another_account_fails(dev_stack):
    def rename(res):
        res["inputs"]["assumeRolePolicy"] = res["inputs"]["assumeRolePolicy"].replace(
            "kube-system:cluster-autoscaler", "kube-system:autoscaler"
        )

    findings = iam.check(_mutated(dev_stack.record, "cluster-autoscaler-role", rename))
    assert rules(findings) == ["irsa-service-account"]
    assert "system:serviceaccount:kube-system:cluster-autoscaler" in findings[0].message


def test_real_limiter_running_as_another_account_fails(dev_stack):
    changed = copy.deepcopy(dev_stack.record)
    [limiter] = [
        r
        for r in changed["resources"]
        if r["type"] == "kubernetes:apps/v1:Deployment" and r["inputs"]["metadata"]["name"] == "limiter"
    ]
    limiter["inputs"]["spec"]["template"]["spec"]["serviceAccountName"] = "default"
    findings = iam.check(changed)
    assert [(f.rule, f.type) for f in findings] == [("irsa-service-account", "kubernetes:core/v1:ServiceAccount")]
    assert "'limiter/limiter'" in findings[0].message
