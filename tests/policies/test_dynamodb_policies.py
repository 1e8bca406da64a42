"""dynamodb-autoscaling, dynamodb-encryption and dynamodb-point-in-time-recovery through the real analyzer.

The counters table is provisioned with GSIs 'by-customer' and 'by-status'. Each test runs in
preview (targets' resource ids unknown; only property dependencies tie them to the table, and
policies to their targets) and in update (known ids). `unnamed` variants leave the table name to
the provider, so even its name is unknown in preview and GSI targets can only be counted.
"""

from __future__ import annotations

import pytest

from tools.analyzer import UNKNOWN

TABLE = "eu-west-1-data-counters"
POLICY = "dynamodb-autoscaling"


@pytest.fixture(params=[True, False], ids=["named", "unnamed"])
def stack(request, preview, build):
    return build(preview, named_tables=request.param)


def names(result):
    return [d.resource_name for d in result.for_policy(POLICY)]


def messages(result):
    return [d.message.split("\n", 1)[1] for d in result.for_policy(POLICY)]


def test_autoscaled_table_and_on_demand_table_pass(stack):
    result = stack.analyze()

    assert result.diagnostics == []
    assert result.preview_skips == []


def test_table_with_only_a_read_target_lacks_write_autoscaling(stack):
    stack.remove(f"{TABLE}-write-target")
    stack.remove(f"{TABLE}-write-policy")

    result = stack.analyze()

    assert names(result) == [TABLE]
    [message] = messages(result)
    assert message.startswith(
        f"The provisioned DynamoDB table '{TABLE}' has no write capacity autoscaling for the table."
    )
    assert "scalable_dimension 'dynamodb:table:WriteCapacityUnits'" in message
    assert [d.enforcement_level for d in result.for_policy(POLICY)] == ["mandatory"]


def test_gsi_without_targets_is_a_violation(stack):
    for mode in ("read", "write"):
        stack.remove(f"{TABLE}-by-status-{mode}-target")
        stack.remove(f"{TABLE}-by-status-{mode}-policy")

    result = stack.analyze()

    assert names(result) == [TABLE, TABLE]
    found = messages(result)
    if stack.preview and "name" not in stack.get(TABLE)["inputs"]:
        # Table name unknown: the targets' ids are unknown, so the index cannot be named.
        assert all("2 global secondary indexes (by-customer, by-status), but 1 of them lacks" in m for m in found)
    else:
        assert "no read capacity autoscaling for its global secondary index 'by-status'" in found[0]
        assert "no write capacity autoscaling for its global secondary index 'by-status'" in found[1]


def test_one_gsi_target_removed_is_caught(stack):
    stack.remove(f"{TABLE}-by-customer-write-target")

    result = stack.analyze()

    assert names(result) == [TABLE]
    [message] = messages(result)
    assert "write" in message
    if not (stack.preview and "name" not in stack.get(TABLE)["inputs"]):
        assert "'by-customer'" in message


def test_target_without_policy_does_not_count(stack):
    stack.remove(f"{TABLE}-read-policy")

    [message] = messages(stack.analyze())

    assert f"the read scalable target '{TABLE}-read-target' of the table has no TargetTrackingScaling policy" in message


def test_step_scaling_policy_does_not_count(stack):
    stack.set_input(f"{TABLE}-by-customer-read-policy", "policyType", "StepScaling")

    result = stack.analyze()

    assert names(result) == [TABLE]
    assert "no TargetTrackingScaling policy" in messages(result)[0]


def test_policy_with_default_type_does_not_count(stack):
    stack.set_input(f"{TABLE}-write-policy", "policyType", None)

    assert names(stack.analyze()) == [TABLE]


def test_policy_matched_by_known_values_without_property_dependencies(build):
    stack = build(preview=False)
    for resource in stack.resources:
        if resource["type"] == "aws:appautoscaling/policy:Policy":
            resource["property_dependencies"] = {}

    assert names(stack.analyze()) == []


def test_a_target_of_unknown_index_does_not_take_the_slot_a_known_target_needs(build):
    """A read target whose index is unknown (its id derived from an unknown output) comes first and could
    fill either GSI's read slot; the by-customer target that follows can fill only its own. Every slot is
    covered only if the first one gives way (a maximum matching, not first come first served)."""
    stack = build(preview=True, named_tables=True)
    unknown = stack.get(f"{TABLE}-by-status-read-target")
    stack.set_input(unknown["name"], "resourceId", UNKNOWN)
    unknown["property_dependencies"]["resourceId"] = [stack.get(TABLE)["urn"]]
    stack.resources.remove(unknown)
    stack.resources.insert(stack.resources.index(stack.get(f"{TABLE}-by-customer-read-target")), unknown)

    assert names(stack.analyze()) == []

    # Not leniency: without the known one, one of the two GSI read slots is empty.
    stack.remove(f"{TABLE}-by-customer-read-target")
    [message] = messages(stack.analyze())
    assert "but 1 of them lacks a read scalable target" in message


def test_on_demand_table_passes(stack):
    for resource in list(stack.resources):
        if resource["type"].startswith("aws:appautoscaling/"):
            stack.remove(resource["name"])
    stack.set_input(TABLE, "billingMode", "PAY_PER_REQUEST")

    assert names(stack.analyze()) == []


def test_on_demand_table_is_reported_when_config_disallows_it(stack):
    result = stack.analyze(policy_config={POLICY: {"onDemandAllowed": False}})

    assert names(result) == ["eu-west-1-data-orders"]
    assert "is on-demand (PAY_PER_REQUEST)" in messages(result)[0]


def test_missing_billing_mode_counts_as_provisioned(stack):
    stack.set_input("eu-west-1-data-orders", "billingMode", None)

    result = stack.analyze()

    assert set(names(result)) == {"eu-west-1-data-orders"}
    assert len(names(result)) == 4  # read and write for the table and its GSI


def test_unknown_billing_mode_counts_as_provisioned(stack):
    stack.set_input("eu-west-1-data-orders", "billingMode", UNKNOWN)

    assert set(names(stack.analyze())) == {"eu-west-1-data-orders"}


def test_target_of_another_table_does_not_count(build):
    stack = build(preview=True, named_tables=True)
    stack.remove(f"{TABLE}-read-target")
    stack.remove(f"{TABLE}-read-policy")
    other = stack.add(
        "aws:dynamodb/table:Table", "eu-west-1-data-other", {"billingMode": "PAY_PER_REQUEST", "name": "x"}
    )
    target = stack.add(
        "aws:appautoscaling/target:Target",
        "eu-west-1-data-other-read-target",
        {
            "serviceNamespace": "dynamodb",
            "resourceId": stack.ref(other, "name", "table/{}"),
            "scalableDimension": "dynamodb:table:ReadCapacityUnits",
        },
    )
    stack.add(
        "aws:appautoscaling/policy:Policy",
        "eu-west-1-data-other-read-policy",
        {"policyType": "TargetTrackingScaling", "resourceId": stack.ref(target, "resourceId")},
    )

    assert names(stack.analyze()) == [TABLE]


def test_exempt_table_is_skipped(stack):
    stack.remove(f"{TABLE}-read-target")

    result = stack.analyze(policy_config={POLICY: {"exemptResources": [TABLE]}})

    assert names(result) == []


def test_table_without_encryption_is_an_advisory(platform, found):
    platform.set_input(TABLE, "serverSideEncryption", None)

    result = platform.analyze()

    [(name, message)] = found(result, "dynamodb-encryption")
    assert name == TABLE
    assert "Set server_side_encryption={'enabled': True}" in message
    assert [d.enforcement_level for d in result.for_policy("dynamodb-encryption")] == ["advisory"]


def test_customer_managed_key_can_be_required(platform, found):
    result = platform.analyze(policy_config={"dynamodb-encryption": {"requireCustomerManagedKey": True}})

    assert sorted(name for name, _ in found(result, "dynamodb-encryption")) == [
        "eu-west-1-data-counters",
        "eu-west-1-data-orders",
    ]


def test_table_without_point_in_time_recovery_is_an_advisory(platform, found):
    platform.set_input(TABLE, "pointInTimeRecovery", {"enabled": False})

    [(name, message)] = found(platform.analyze(), "dynamodb-point-in-time-recovery")

    assert name == TABLE
    assert "point_in_time_recovery.enabled is False" in message


def test_unknown_point_in_time_recovery_passes_in_preview(platform, found):
    platform.set_input(TABLE, "pointInTimeRecovery", {"enabled": UNKNOWN})

    result = platform.analyze()

    assert found(result, "dynamodb-point-in-time-recovery") == []
    assert result.preview_skips == []


def test_a_scalable_target_of_another_service_does_not_count(build):
    stack = build(preview=False)
    stack.remove(f"{TABLE}-read-policy")
    stack.set_input(f"{TABLE}-read-target", "serviceNamespace", "ecs")  # the same resource id, not DynamoDB's
    stack.add(
        "aws:appautoscaling/policy:Policy",
        f"{TABLE}-ecs-policy",
        {
            "policyType": "TargetTrackingScaling",
            "resourceId": stack.ref(stack.get(f"{TABLE}-read-target"), "resourceId"),
        },
    )

    [message] = messages(stack.analyze())
    assert message.startswith(
        f"The provisioned DynamoDB table '{TABLE}' has no read capacity autoscaling for the table."
    )


def test_every_table_is_judged_after_an_on_demand_one(stack):
    # The on-demand orders table comes first; a provisioned table registered after it is still judged.
    stack.add(
        "aws:dynamodb/table:Table",
        "eu-west-1-data-late",
        {"billingMode": "PROVISIONED", "name": "late", "hashKey": "pk", "readCapacity": 1.0, "writeCapacity": 1.0},
    )

    assert set(names(stack.analyze())) == {"eu-west-1-data-late"}


def test_each_mode_is_reported_once_when_the_indexes_cannot_be_named(build):
    """Unnamed table in a first preview: the GSI targets' ids are unknown, so the missing ones are counted per
    mode. Reads are missing on two of three GSIs and writes on one: one finding per mode."""
    from tests.policies.conftest import add_autoscaled_table

    stack = build(True, named_tables=False)
    wide = "eu-west-1-data-wide"
    add_autoscaled_table(stack, stack.get("eu-west-1-data"), wide, named=False, gsis=("g1", "g2", "g3"))
    for gsi, mode in (("g1", "read"), ("g2", "read"), ("g2", "write")):
        stack.remove(f"{wide}-{gsi}-{mode}-target")
        stack.remove(f"{wide}-{gsi}-{mode}-policy")

    found = [d.message for d in stack.analyze().for_policy(POLICY) if d.resource_name == wide]

    assert len(found) == 2, found
    assert any("3 global secondary indexes (g1, g2, g3), but 2 of them lack a read" in m for m in found)
    assert any("but 1 of them lacks a write" in m for m in found)


def test_a_policy_tied_to_its_target_by_one_property_counts(stack):
    """A policy that names its dimension as a literal and takes only the resource id from the target (or the
    reverse) is that target's policy, in preview as after the update."""
    from tests.policies.conftest import DIMENSIONS

    for resource in list(stack.resources):
        if resource["type"] == "aws:appautoscaling/policy:Policy" and resource["name"].endswith("-read-policy"):
            index = "table" if resource["name"] == f"{TABLE}-read-policy" else "index"
            stack.set_input(resource["name"], "scalableDimension", DIMENSIONS[(index, "read")])
        elif resource["type"] == "aws:appautoscaling/policy:Policy":
            target = stack.get(resource["name"].removesuffix("-policy") + "-target")
            stack.set_input(resource["name"], "resourceId", target["outputs"].get("resourceId", UNKNOWN))

    assert names(stack.analyze()) == []


def test_a_known_index_id_of_a_table_whose_name_is_unknown_fills_only_that_index(build):
    """Unnamed table, first preview: a target whose id is known and tied to the table fills the slot its id
    names. Here the table's and by-status's read targets have known ids, by-customer's is unknown: every slot
    is covered only if the by-status id is read as that index, not as the table."""
    stack = build(True, named_tables=False)
    table = stack.get(TABLE)
    for suffix, resource_id in (("read", "table/counters"), ("by-status-read", "table/counters/index/by-status")):
        target = f"{TABLE}-{suffix}-target"
        stack.set_input(target, "resourceId", resource_id)
        stack.get(target)["property_dependencies"]["resourceId"] = [table["urn"]]

    assert names(stack.analyze()) == []
