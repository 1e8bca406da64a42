"""Policies for DynamoDB.

Enforcement levels, and why:

- `dynamodb-autoscaling`: MANDATORY. A provisioned table without autoscaling throttles the rate
  limiter (and so every request) at the first traffic peak, and a GSI without it throttles the
  table's writes too. On-demand tables scale by themselves and pass, unless the policy's
  `onDemandAllowed` config is set to false. It relates tables, scalable targets and policies, so
  it is a stack policy: in a first preview the table name, and so every target's `resource_id`,
  is unknown, and targets are matched to their table through the property dependency of
  `resource_id` on the table (and to their index by the known part of the id, or by count when
  no part is known). A target counts only with an attached TargetTrackingScaling policy. Counting
  has a blind spot: two targets for the same index can hide a missing one in a first preview; the
  update, where the ids are known, names the index.
- `dynamodb-encryption`: ADVISORY. DynamoDB encrypts every table at rest with an AWS-owned key
  whatever the program says; this policy asks for a KMS key (AWS-managed or, with
  `requireCustomerManagedKey`, customer-managed) so that key use is auditable and revocable.
- `dynamodb-point-in-time-recovery`: ADVISORY. Durability of data, not exposure; the counters
  table holds only short-lived windows, but the application tables need it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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

from .graph import StackView, both_known, depends_on
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

TABLE = "aws:dynamodb/table:Table"
SCALABLE_TARGET = "aws:appautoscaling/target:Target"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"

_DIMENSIONS = {
    "dynamodb:table:ReadCapacityUnits": ("table", "read"),
    "dynamodb:table:WriteCapacityUnits": ("table", "write"),
    "dynamodb:index:ReadCapacityUnits": ("index", "read"),
    "dynamodb:index:WriteCapacityUnits": ("index", "write"),
}
_DIMENSION_OF = {value: key for key, value in _DIMENSIONS.items()}

Slot = tuple[str | None, str]  # (GSI name or None for the table, "read" | "write")


@dataclass
class _Candidate:
    target: PolicyResource
    ambiguous_index: bool = False
    covered: bool = False
    compatible: list[Slot] = field(default_factory=list)


def _is_provisioned(props: dict[str, Any]) -> bool:
    mode = props.get("billingMode")
    return mode is None or is_unknown(mode) or mode == "PROVISIONED"


def _table_name(props: dict[str, Any]) -> Any:
    name = props.get("name")
    return UNKNOWN if name is None or is_unknown(name) or name == "" else name


def _policy_covers(view: StackView, policy: PolicyResource, target: PolicyResource) -> bool:
    """True when a TargetTrackingScaling policy is attached to the scalable target."""
    props = view.props(policy)
    policy_type = props.get("policyType")  # the provider default is StepScaling
    if policy_type is None or (not is_unknown(policy_type) and policy_type != "TargetTrackingScaling"):
        return False
    target_props = view.props(target)
    resource_id, target_id = props.get("resourceId"), target_props.get("resourceId")
    dimension, target_dimension = props.get("scalableDimension"), target_props.get("scalableDimension")
    if both_known(dimension, target_dimension) and dimension != target_dimension:
        return False
    if both_known(resource_id, target_id):
        return resource_id == target_id
    return depends_on(policy, "resourceId", target) or depends_on(policy, "scalableDimension", target)


def _target_slots(
    props: dict[str, Any], table: PolicyResource, target: PolicyResource, name: Any, gsis: list[str]
) -> tuple[list[Slot], bool] | None:
    """The (index, read/write) slots a scalable target can fill for this table, or None if unrelated."""
    namespace = props.get("serviceNamespace")
    if namespace is not None and not is_unknown(namespace) and namespace != "dynamodb":
        return None
    resource_id = props.get("resourceId")
    if both_known(resource_id, name):
        if resource_id == f"table/{name}":
            kinds: list[str | None] = [None]
        elif str(resource_id).startswith(f"table/{name}/index/"):
            kinds = [str(resource_id)[len(f"table/{name}/index/") :]]
        else:
            return None
        ambiguous = False
    elif depends_on(target, "resourceId", table):
        if not is_unknown(resource_id) and resource_id is not None and "/index/" in str(resource_id):
            kinds = [str(resource_id).split("/index/", 1)[1]]
            ambiguous = False
        elif not is_unknown(resource_id) and resource_id is not None:
            kinds = [None]
            ambiguous = False
        else:
            kinds = [None, *gsis]
            ambiguous = True
    else:
        return None
    # Required by pulumi-aws (appautoscaling.Target scalable_dimension): unknown in a preview, never missing.
    dimension = props.get("scalableDimension")
    if is_unknown(dimension):
        modes = ["read", "write"]
        levels = ("table", "index")
    elif dimension in _DIMENSIONS:
        level, mode = _DIMENSIONS[dimension]
        modes, levels = [mode], (level,)
    else:
        return None
    slots: list[Slot] = []
    for kind in kinds:
        level = "table" if kind is None else "index"
        if level in levels:
            slots.extend((kind, mode) for mode in modes)
    return slots, ambiguous and "index" in levels


def _match(candidates: list[_Candidate], slots: list[Slot]) -> dict[Slot, _Candidate]:
    """Assign covered targets to slots (maximum bipartite matching, Kuhn's algorithm)."""
    owner: dict[Slot, _Candidate] = {}

    def assign(candidate: _Candidate, seen: set[Slot]) -> bool:
        for slot in candidate.compatible:
            if slot in seen:
                continue
            seen.add(slot)
            if slot not in owner or assign(owner[slot], seen):
                owner[slot] = candidate
                return True
        return False

    for candidate in candidates:
        if candidate.covered:
            assign(candidate, set())
    return {slot: owner[slot] for slot in slots if slot in owner}


def _check_table(
    view: StackView,
    table: PolicyResource,
    targets: list[PolicyResource],
    policies: list[PolicyResource],
    report_violation: ReportViolation,
) -> None:
    props = view.props(table)
    name = _table_name(props)
    gsi_entries = items(props.get("globalSecondaryIndexes"))
    gsis = [str(get(g, "name")) for g in gsi_entries if not is_unknown(g) and not is_unknown(get(g, "name"))]
    slots: list[Slot] = [(None, "read"), (None, "write")] + [(g, m) for g in gsis for m in ("read", "write")]
    candidates: list[_Candidate] = []
    for target in targets:
        found = _target_slots(view.props(target), table, target, name, gsis)
        if found is None:
            continue
        compatible, ambiguous = found
        covered = any(_policy_covers(view, policy, target) for policy in policies)
        candidates.append(_Candidate(target, ambiguous, covered, [s for s in compatible if s in slots]))
    owners = _match(candidates, slots)
    missing = [slot for slot in slots if slot not in owners]
    reported_ambiguous: set[str] = set()
    for index, mode in missing:
        dimension = _DIMENSION_OF[("table" if index is None else "index", mode)]
        uncovered = [c for c in candidates if not c.covered and (index, mode) in c.compatible]
        where = "the table" if index is None else f"its global secondary index '{index}'"
        if index is not None and any(c.ambiguous_index for c in candidates if (index, mode) in c.compatible):
            if mode in reported_ambiguous:
                continue
            reported_ambiguous.add(mode)
            lacking = sum(1 for g, m in missing if g is not None and m == mode)
            unattached = sorted(
                {c.target.name for c in candidates if not c.covered and any(s[1] == mode for s in c.compatible)}
            )
            without_policy = (
                f" The scalable target(s) {', '.join(repr(n) for n in unattached)} have no "
                "TargetTrackingScaling policy."
                if unattached
                else ""
            )
            report_violation(
                f"The provisioned DynamoDB table '{table.name}' has {len(gsis)} global secondary indexes "
                f"({', '.join(gsis)}), but {lacking} of them {'lacks' if lacking == 1 else 'lack'} a {mode} "
                "scalable target with a "
                "TargetTrackingScaling policy (the targets' resource ids are unknown until the update, so "
                f"the index cannot be named).{without_policy} Give every index an aws.appautoscaling.Target "
                f"with scalable_dimension '{dimension}' and resource_id 'table/<table>/index/<index>', each "
                "with an aws.appautoscaling.Policy of policy_type 'TargetTrackingScaling'.",
                table.urn,
            )
            continue
        shown_id = "table/<table>" if index is None else f"table/<table>/index/{index}"
        if uncovered:
            report_violation(
                f"The provisioned DynamoDB table '{table.name}': the {mode} scalable target "
                f"'{uncovered[0].target.name}' of {where} has no TargetTrackingScaling policy, so it never "
                "scales. Attach an aws.appautoscaling.Policy with policy_type 'TargetTrackingScaling' whose "
                "resource_id and scalable_dimension come from that target.",
                table.urn,
            )
        else:
            report_violation(
                f"The provisioned DynamoDB table '{table.name}' has no {mode} capacity autoscaling for "
                f"{where}. Create an aws.appautoscaling.Target with service_namespace 'dynamodb', "
                f"resource_id '{shown_id}' and scalable_dimension '{dimension}', and an "
                "aws.appautoscaling.Policy of policy_type 'TargetTrackingScaling' on it (or switch the "
                "table to billing_mode 'PAY_PER_REQUEST').",
                table.urn,
            )


ON_DEMAND_ALLOWED = Option(
    "onDemandAllowed",
    {
        "type": "boolean",
        "default": True,
        "description": "Let on-demand (PAY_PER_REQUEST) tables pass; false reports them.",
    },
)


def _validate_dynamodb_autoscaling(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    view = StackView(args.resources)
    targets = view.of_type(SCALABLE_TARGET)
    policies = view.of_type(SCALING_POLICY)
    on_demand_allowed = bool(ON_DEMAND_ALLOWED.value(args))
    for table in view.of_type(TABLE):
        if is_exempt(args, table.name):
            continue
        props = view.props(table)
        if not _is_provisioned(props):
            if not on_demand_allowed:
                report_violation(
                    f"The DynamoDB table '{table.name}' is on-demand (PAY_PER_REQUEST), and this stack's "
                    "policy config sets onDemandAllowed to false. Switch it to billing_mode 'PROVISIONED' "
                    "with autoscaling for reads and writes on the table and every GSI.",
                    table.urn,
                )
            continue
        _check_table(view, table, targets, policies, report_violation)


dynamodb_autoscaling = StackValidationPolicy(
    name="dynamodb-autoscaling",
    description=(
        "Every provisioned DynamoDB table has read and write autoscaling (a scalable target with a "
        "TargetTrackingScaling policy) for the table and for every global secondary index."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_validate_dynamodb_autoscaling,
    config_schema=config_schema(ON_DEMAND_ALLOWED),
)


# --- Resource policies --------------------------------------------------------------------


REQUIRE_CUSTOMER_MANAGED_KEY = Option(
    "requireCustomerManagedKey",
    {
        "type": "boolean",
        "default": False,
        "description": "Require server_side_encryption.kms_key_arn (a customer-managed key).",
    },
)


@for_types(TABLE)
def _validate_dynamodb_encryption(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    sse = first(plain(args.props).get("serverSideEncryption"))
    if is_unknown(sse):
        return
    enabled = get(sse, "enabled")
    if not (is_unknown(enabled) or is_true(enabled)):
        report_violation(
            f"The DynamoDB table '{args.name}' is encrypted only with an AWS-owned key "
            f"(server_side_encryption.enabled is {describe(enabled)}). Set server_side_encryption="
            "{'enabled': True} (optionally with kms_key_arn of a customer-managed key)."
        )
        return
    key = get(sse, "kmsKeyArn")
    if REQUIRE_CUSTOMER_MANAGED_KEY.value(args) and (key is None or key == ""):
        report_violation(
            f"The DynamoDB table '{args.name}' uses the AWS-managed KMS key, and this stack's policy "
            "config requires a customer-managed one. Set server_side_encryption.kms_key_arn to a KMS key "
            "of this stack."
        )


@for_types(TABLE)
def _validate_dynamodb_pitr(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    pitr = first(plain(args.props).get("pointInTimeRecovery"))
    enabled = get(pitr, "enabled") if pitr is not None else None
    if is_unknown(pitr) or is_unknown(enabled) or is_true(enabled):
        return
    report_violation(
        f"The DynamoDB table '{args.name}' has no point-in-time recovery (point_in_time_recovery.enabled "
        f"is {describe(enabled)}). Set point_in_time_recovery={{'enabled': True}}."
    )


dynamodb_encryption = ResourceValidationPolicy(
    name="dynamodb-encryption",
    description="DynamoDB tables are encrypted with a KMS key (server-side encryption enabled).",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_validate_dynamodb_encryption,
    config_schema=config_schema(REQUIRE_CUSTOMER_MANAGED_KEY),
)

dynamodb_point_in_time_recovery = ResourceValidationPolicy(
    name="dynamodb-point-in-time-recovery",
    description="DynamoDB tables have point-in-time recovery enabled.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_validate_dynamodb_pitr,
    config_schema=config_schema(),
)

POLICIES = [dynamodb_autoscaling, dynamodb_encryption, dynamodb_point_in_time_recovery]
