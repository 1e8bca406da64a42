"""Test program: two data layers, one PROVISIONED (a table with two GSIs) and one PAY_PER_REQUEST."""

import pulumi
import pulumi_aws as aws

from components.data import Data, DataArgs
from components.specs import AppTable, Autoscaling, Gsi

provider = aws.Provider("aws-eu-west-1", region="eu-west-1")
orders = AppTable(
    name="orders",
    hash_key="pk",
    range_key="sk",
    attributes=(("pk", "S"), ("sk", "S"), ("customer", "S"), ("status", "S")),
    gsis=(Gsi("by-customer", "customer", "sk", "ALL"), Gsi("by-status", "status", None, "KEYS_ONLY")),
    billing_mode="PROVISIONED",
    ttl_attribute=None,
)
provisioned = Data(
    "prov",
    DataArgs(
        region="eu-west-1",
        counters_billing_mode="PROVISIONED",
        autoscaling=Autoscaling(5, 500, 65),
        app_tables=(orders,),
        deletion_protection=True,
        tags={"Owner": "test"},
    ),
    opts=pulumi.ResourceOptions(providers={"aws": provider}),
)
on_demand = Data(
    "ondemand",
    DataArgs(
        region="eu-west-1",
        counters_billing_mode="PAY_PER_REQUEST",
        app_tables=(AppTable("events", "id", None, (("id", "S"),), (), "PAY_PER_REQUEST", "expires_at"),),
        deletion_protection=False,
    ),
    opts=pulumi.ResourceOptions(providers={"aws": provider}),
)
pulumi.export("limiterPolicy", provisioned.limiter_policy_json)
pulumi.export("countersArn", provisioned.counters_table_arn)
pulumi.export("kmsKeyArn", provisioned.kms_key_arn)
