"""The data layer: tables, encryption, TTL, PITR, autoscaling for every PROVISIONED table and GSI."""

from __future__ import annotations

import json

import pytest

from tools.mocked_run import run_stack
from tools.records import RecordedStack, is_unknown

PROGRAM = "tests/components/programs/data_layers.py"


@pytest.fixture(scope="module")
def stack() -> RecordedStack:
    return RecordedStack(run_stack("dev", program=PROGRAM))


@pytest.fixture(scope="module")
def preview() -> RecordedStack:
    return RecordedStack(run_stack("dev", program=PROGRAM, preview=True))


def _table(stack, name):
    return stack.named(name)


def test_table_with_two_gsis_gets_six_targets_each_with_a_target_tracking_policy(stack):
    table = _table(stack, "prov-app-orders")
    table_name = table["outputs"]["name"]
    targets = [
        t
        for t in stack.of_type("aws:appautoscaling/target:Target", under="prov")
        if t["inputs"]["resourceId"].startswith(f"table/{table_name}")
    ]
    got = sorted((t["inputs"]["resourceId"], t["inputs"]["scalableDimension"]) for t in targets)
    assert got == sorted(
        [
            (f"table/{table_name}", "dynamodb:table:ReadCapacityUnits"),
            (f"table/{table_name}", "dynamodb:table:WriteCapacityUnits"),
            (f"table/{table_name}/index/by-customer", "dynamodb:index:ReadCapacityUnits"),
            (f"table/{table_name}/index/by-customer", "dynamodb:index:WriteCapacityUnits"),
            (f"table/{table_name}/index/by-status", "dynamodb:index:ReadCapacityUnits"),
            (f"table/{table_name}/index/by-status", "dynamodb:index:WriteCapacityUnits"),
        ]
    )
    policies = stack.of_type("aws:appautoscaling/policy:Policy", under="prov")
    for target in targets:
        assert target["inputs"]["serviceNamespace"] == "dynamodb"
        assert (target["inputs"]["minCapacity"], target["inputs"]["maxCapacity"]) == (5, 500)
        assert stack.depends_on(target, table, "resourceId")
        mine = [p for p in policies if stack.depends_on(p, target, "resourceId")]
        assert len(mine) == 1, target["name"]
        policy = mine[0]["inputs"]
        assert policy["policyType"] == "TargetTrackingScaling"
        assert (policy["resourceId"], policy["scalableDimension"]) == (
            target["inputs"]["resourceId"],
            target["inputs"]["scalableDimension"],
        )
        tracking = policy["targetTrackingScalingPolicyConfiguration"]
        assert tracking["targetValue"] == 65
        kind = "Read" if "Read" in policy["scalableDimension"] else "Write"
        assert tracking["predefinedMetricSpecification"]["predefinedMetricType"] == f"DynamoDB{kind}CapacityUtilization"


def test_provisioned_capacities_are_left_to_autoscaling(stack):
    table = _table(stack, "prov-app-orders")
    assert set(table["ignore_changes"]) == {
        "readCapacity",
        "writeCapacity",
        "globalSecondaryIndexes[*].readCapacity",
        "globalSecondaryIndexes[*].writeCapacity",
    }
    assert all(g["readCapacity"] == 5 for g in table["inputs"]["globalSecondaryIndexes"])


def test_counters_table_matches_the_limiter_schema_and_is_autoscaled(stack):
    counters = _table(stack, "prov-counters")
    inputs = counters["inputs"]
    assert inputs["hashKey"] == "pk" and "rangeKey" not in inputs
    assert inputs["attributes"] == [{"name": "pk", "type": "S"}]
    assert inputs["ttl"] == {"attributeName": "expires_at", "enabled": True}
    dims = sorted(
        t["inputs"]["scalableDimension"]
        for t in stack.of_type("aws:appautoscaling/target:Target")
        if t["inputs"]["resourceId"] == f"table/{counters['outputs']['name']}"
    )
    assert dims == ["dynamodb:table:ReadCapacityUnits", "dynamodb:table:WriteCapacityUnits"]


def test_every_table_is_encrypted_with_the_layer_key_and_has_pitr(stack):
    for layer in ("prov", "ondemand"):
        key = stack.named(f"{layer}-tables-key")
        assert key["inputs"]["enableKeyRotation"] is True
        for table in stack.of_type("aws:dynamodb/table:Table", under=layer):
            sse = table["inputs"]["serverSideEncryption"]
            assert sse["enabled"] is True and sse["kmsKeyArn"] == key["outputs"]["arn"], table["name"]
            assert table["inputs"]["pointInTimeRecovery"] == {"enabled": True}


def test_deletion_protection_follows_the_args(stack):
    for table in stack.of_type("aws:dynamodb/table:Table", under="prov"):
        assert table["inputs"]["deletionProtectionEnabled"] is True and table["protect"] is True
    for table in stack.of_type("aws:dynamodb/table:Table", under="ondemand"):
        assert table["inputs"]["deletionProtectionEnabled"] is False and table["protect"] is False
    # Protected, so that `pulumi destroy` stops at its preview instead of deleting half the stack.
    assert stack.named("prov-tables-key")["protect"] is True
    assert stack.named("ondemand-tables-key")["protect"] is False
    assert not any(r["retain_on_delete"] for r in stack.resources)


def test_key_aliases_are_unique_per_stack(dev_stack, prod_stack):
    # KMS aliases are unique per account and region: dev and prod of the same region must not collide.
    names = {s.named("eu-west-1-data-tables-key-alias")["inputs"]["name"] for s in (dev_stack, prod_stack)}
    assert names == {
        "alias/ratelimited-platform/dev/eu-west-1-data-tables",
        "alias/ratelimited-platform/prod/eu-west-1-data-tables",
    }


def test_counters_table_is_on_demand_by_default():
    from components.data import DataArgs

    assert DataArgs(region="eu-west-1").counters_billing_mode == "PAY_PER_REQUEST"


def test_on_demand_tables_have_no_capacity_and_no_scaling(stack):
    tables = stack.of_type("aws:dynamodb/table:Table", under="ondemand")
    assert {t["name"] for t in tables} == {"ondemand-counters", "ondemand-app-events"}
    for table in tables:
        assert table["inputs"]["billingMode"] == "PAY_PER_REQUEST"
        assert "readCapacity" not in table["inputs"] and not table["ignore_changes"]
    assert stack.of_type("aws:appautoscaling/*", under="ondemand") == []


def test_limiter_policy_names_only_the_counters_table(stack):
    policy = json.loads(stack.exports()["limiterPolicy"])
    counters_arn = stack.named("prov-counters")["outputs"]["arn"]
    dynamo = [s for s in policy["Statement"] if any(a.startswith("dynamodb:") for a in s["Action"])]
    assert len(dynamo) == 1
    assert dynamo[0]["Resource"] == counters_arn
    assert sorted(dynamo[0]["Action"]) == ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert "*" not in json.dumps(policy)
    kms = [s for s in policy["Statement"] if s not in dynamo]
    assert kms[0]["Resource"] == stack.exports()["kmsKeyArn"]
    assert kms[0]["Condition"] == {"StringEquals": {"kms:ViaService": "dynamodb.eu-west-1.amazonaws.com"}}


def test_in_preview_targets_still_depend_on_their_table(preview):
    table = preview.named("prov-app-orders")
    targets = [
        t
        for t in preview.of_type("aws:appautoscaling/target:Target", under="prov")
        if preview.depends_on(t, table, "resourceId")
    ]
    assert len(targets) == 6
    assert all(is_unknown(t["inputs"]["resourceId"]) for t in targets)


def test_bad_args_are_refused_by_name():
    from components.data import DataArgs, _validate
    from components.specs import Autoscaling

    with pytest.raises(ValueError, match="counters_billing_mode"):
        _validate(DataArgs(region="eu-west-1", counters_billing_mode="ON_DEMAND"))
    with pytest.raises(ValueError, match="min_capacity <= max_capacity"):
        _validate(DataArgs(region="eu-west-1", autoscaling=Autoscaling(10, 5, 70)))
    # A provisioned table has at least one capacity unit: scaling to 0 is refused by DynamoDB.
    with pytest.raises(ValueError, match="1 <= min_capacity"):
        _validate(DataArgs(region="eu-west-1", autoscaling=Autoscaling(0, 5, 70)))
    _validate(DataArgs(region="eu-west-1", autoscaling=Autoscaling(1, 1, 70)))
    with pytest.raises(ValueError, match="'counters' is the limiter's"):
        from components.specs import AppTable

        _validate(
            DataArgs(
                region="eu-west-1",
                app_tables=(AppTable("counters", "id", None, (("id", "S"),), (), "PAY_PER_REQUEST", None),),
            )
        )


def test_the_components_autoscaling_defaults_are_the_projects():
    """DataArgs used on its own scales like a stack that leaves the dynamodb* keys unset (Pulumi.yaml)."""
    from pathlib import Path

    import yaml

    from components.data import DataArgs

    declared = yaml.safe_load((Path(__file__).resolve().parents[2] / "Pulumi.yaml").read_text())["config"]
    defaults = DataArgs(region="eu-west-1")
    assert defaults.deletion_protection is True  # tables hold state: a component user opts out, never in
    scaling = defaults.autoscaling
    assert (scaling.min_capacity, scaling.max_capacity, scaling.target_utilization) == tuple(
        declared[k]["default"] for k in ("dynamodbMinCapacity", "dynamodbMaxCapacity", "dynamodbTargetUtilization")
    )


def test_an_index_name_is_read_back_from_the_tables_own_list_whatever_its_order():
    """The provider keeps GSIs as a set: the name for each configured index is looked up, not taken by position
    (the observability layer's "GSI #i" alarm watches the i-th configured index by it)."""
    from types import SimpleNamespace

    from components.data import _gsi_name

    reported = [SimpleNamespace(name="by-status"), SimpleNamespace(name="by-customer")]
    assert [_gsi_name(reported, n) for n in ("by-customer", "by-status")] == ["by-customer", "by-status"]
    with pytest.raises(ValueError, match="no global secondary index named 'by-region'"):
        _gsi_name(reported, "by-region")
