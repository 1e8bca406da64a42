"""The fixed-cost estimate: the price table covers what the program creates, and the arithmetic holds."""

from __future__ import annotations

import datetime
import re

import pytest

from tools import cost

RUNS = ["dev_preview", "prod_preview", "dev_stack", "prod_stack"]
HOURS = 730


@pytest.fixture(scope="module")
def table():
    return cost.load_table()


@pytest.mark.parametrize("run", RUNS)
def test_the_price_table_covers_every_type_the_program_creates(request, table, run):
    """A new resource type must be priced or listed as having no fixed cost; a new region or
    instance type in a sample stack must have its price in the table."""
    stack = request.getfixturevalue(run)

    estimate = cost.estimate(stack.record, table)

    assert estimate["unclassified"] == []
    assert estimate["unpriced"] == []
    priced = {r["urn"] for r in stack.resources if cost.classify(r["type"], table) == "priced"}
    accounted = {line["urn"] for line in estimate["lines"]} | {item["urn"] for item in estimate["no_charge"]}
    assert priced <= accounted


def test_every_price_is_dated_sourced_and_regional(table):
    assert datetime.date.fromisoformat(table["as_of"])
    for price_id, entry in table["prices"].items():
        assert entry["source"].startswith("https://aws.amazon.com/"), price_id
        assert entry["unit"] and entry["description"], price_id
        assert entry["regions"], price_id
    for entry in table["excluded"]:
        assert entry["source"].startswith("https://aws.amazon.com/"), entry["id"]
        assert entry["regions"] and entry["unit"], entry["id"]


def test_every_priced_type_has_a_rule_and_every_listed_free_type_has_a_reason(table):
    assert all(isinstance(reason, str) and reason for reason in table["no_fixed_cost"].values())
    assert not {t for t in cost.RULES if cost.classify(t, {**table, "no_fixed_cost": {}}) != "priced"}


def test_prod_estimate_by_region_adds_up(prod_preview):
    estimate = cost.estimate(prod_preview.record)

    assert set(estimate["by_region"]) == {"eu-west-1", "us-east-1", "global"}
    assert sum(estimate["by_region"].values()) == pytest.approx(estimate["total_monthly_usd"], abs=0.05)
    nodes = [
        line for line in estimate["lines"] if line["name"] == "us-east-1-eks-ng-workloads" and "nodes" in line["item"]
    ]
    assert [(n["item"], n["unit_price"], n["monthly_usd"]) for n in nodes] == [
        ("6 x m7i.xlarge nodes", 0.2016, round(6 * 0.2016 * HOURS, 2))
    ]
    nat = [line for line in estimate["lines"] if line["type"] == "aws:ec2/natGateway:NatGateway"]
    assert (
        sorted((n["region"], n["monthly_usd"]) for n in nat)
        == [("eu-west-1", round(0.048 * HOURS, 2))] * 3 + [("us-east-1", round(0.045 * HOURS, 2))] * 3
    )
    # the CloudFront web ACL is billed through the us-east-1 provider that creates it
    cloudfront_acl = [line for line in estimate["lines"] if line["name"] == "global-edge-cloudfront-waf"]
    assert {(line["region"], line["item"]) for line in cloudfront_acl} == {
        ("us-east-1", "WAF web ACL"),
        ("us-east-1", "4 WAF rules"),
    }


def test_dynamodb_is_priced_at_its_autoscaling_minimum(prod_preview):
    estimate = cost.estimate(prod_preview.record)
    table = prod_preview.named("eu-west-1-data-app-orders")
    targets = [
        t
        for t in prod_preview.of_type("aws:appautoscaling/target:Target")
        if prod_preview.depends_on(t, table, "resourceId")
    ]
    reads = sum(t["inputs"]["minCapacity"] for t in targets if "Read" in t["inputs"]["scalableDimension"])

    [line] = [x for x in estimate["lines"] if x["name"] == table["name"] and x["price_id"] == "dynamodb-rcu"]

    assert reads == 75  # table + two GSIs at prod's dynamodbMinCapacity of 25
    assert line["quantity"] == reads
    assert line["monthly_usd"] == round(reads * 0.000147 * HOURS, 2)
    # an on-demand table has no fixed cost, and the estimate says so
    assert not [x for x in estimate["lines"] if x["name"] == "eu-west-1-data-app-catalog"]
    assert {
        "name": "eu-west-1-data-app-catalog",
        "reason": "on-demand table: requests and storage are usage (excluded)",
    } in [{k: x[k] for k in ("name", "reason")} for x in estimate["no_charge"]]


def synthetic(instance_type="m7i.large", capacity="ON_DEMAND", region="us-east-1"):
    provider = {
        "urn": f"urn:pulumi:s::p::pulumi:providers:aws::aws-{region}",
        "type": "pulumi:providers:aws",
        "name": f"aws-{region}",
        "parent": "",
        "provider": "",
        "inputs": {"region": region},
        "property_dependencies": {},
    }
    group = {
        "urn": "urn:pulumi:s::p::eks:index:ManagedNodeGroup::ng",
        "type": "eks:index:ManagedNodeGroup",
        "name": "ng",
        "parent": "",
        "provider": "",
        "providers": {"aws": f"{provider['urn']}::id"},
        "inputs": {
            "instanceTypes": [instance_type, "m6i.large"],
            "scalingConfig": {"desiredSize": 3.0, "minSize": 1.0, "maxSize": 9.0},
            "capacityType": capacity,
        },
        "property_dependencies": {},
    }
    return {"resources": [provider, group]}


def test_nodes_are_desired_count_times_the_first_type_and_spot_says_so():
    [on_demand] = cost.estimate(synthetic())["lines"]
    [spot] = cost.estimate(synthetic(capacity="SPOT"))["lines"]

    assert (on_demand["item"], on_demand["monthly_usd"]) == ("3 x m7i.large nodes", round(3 * 0.1008 * HOURS, 2))
    assert on_demand["note"] == "first listed instance type, on-demand price"
    assert spot["monthly_usd"] == on_demand["monthly_usd"]
    assert "SPOT" in spot["note"] and "on-demand rate" in spot["note"]


def test_a_missing_price_is_reported_not_guessed():
    estimate = cost.estimate(synthetic(instance_type="x8g.large", region="ap-southeast-1"))

    assert estimate["lines"] == []
    assert estimate["total_monthly_usd"] == 0
    [unpriced] = estimate["unpriced"]
    assert unpriced["reason"] == "no price 'ec2-instance/x8g.large' for ap-southeast-1 in the price table"
    assert "unpriced: ng (eks:index:ManagedNodeGroup, ap-southeast-1)" in "\n".join(cost.text_lines(estimate))


def test_an_unknown_type_is_unclassified(table):
    record = synthetic()
    record["resources"].append({**record["resources"][1], "type": "aws:rds/cluster:Cluster", "urn": "u", "name": "db"})

    assert cost.estimate(record, table)["unclassified"] == ["aws:rds/cluster:Cluster"]


def test_text_lists_regions_resources_total_and_excluded_unit_prices(dev_preview):
    text = "\n".join(cost.text_lines(cost.estimate(dev_preview.record)))

    assert re.search(r"^Cost: estimated fixed monthly cost, USD list prices as of \d{4}-\d\d-\d\d", text)
    assert re.search(r"^    eu-west-1: \$[\d,]+\.\d\d$", text, re.M)
    assert re.search(r"eu-west-1-eks-cluster\s+EKS control plane\s+0\.1/cluster-hour\s+\$\s+73\.00", text)
    assert re.search(r"^    total: \$[\d,]+\.\d\d per month$", text, re.M)
    assert "Excluded (depend on traffic)" in text
    assert "NAT gateway data processed: 0.045 (us-east-1), 0.048 (eu-west-1) per GB" in text


def test_a_gateway_endpoint_is_free_and_an_interface_endpoint_is_priced_per_zone():
    record = synthetic(region="eu-west-1")
    group = record["resources"].pop()
    endpoint = {**group, "type": "aws:ec2/vpcEndpoint:VpcEndpoint", "name": "ep", "urn": "ep"}
    record["resources"] += [
        {**endpoint, "inputs": {"vpcEndpointType": "Gateway", "serviceName": "com.amazonaws.eu-west-1.dynamodb"}},
        {
            **endpoint,
            "urn": "ep2",
            "name": "ep2",
            "inputs": {"vpcEndpointType": "Interface", "subnetIds": ["a", "b", "c"]},
        },
    ]

    [line] = cost.estimate(record)["lines"]

    assert (line["name"], line["quantity"], line["monthly_usd"]) == ("ep2", 3, round(3 * 0.011 * HOURS, 2))
