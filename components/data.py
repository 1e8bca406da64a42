"""The data layer of one region: the limiter's counters table and the application tables.

Every table is encrypted with a customer-managed KMS key and has point-in-time recovery. PROVISIONED
tables get Application Auto Scaling targets and target-tracking policies for reads and writes, on
the table and on every GSI; the program then ignores the capacities it set first, so that scaling
and `pulumi up` do not fight. PAY_PER_REQUEST tables scale by themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.specs import AppTable, Autoscaling

# The counters table's schema is the limiter's contract (limiter_service/README.md): one string
# partition key, and a TTL attribute (epoch seconds) so that expired windows disappear by themselves.
COUNTERS_HASH_KEY = "pk"
COUNTERS_TTL_ATTRIBUTE = "expires_at"

# The item actions the limiter performs on its counters, and nothing else: conditional UpdateItem
# for windows and leases, GetItem for the previous sliding window, DescribeTable for readiness.
LIMITER_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DescribeTable")

_READ, _WRITE = "Read", "Write"


@dataclass(frozen=True)
class DataArgs:
    """Inputs of the data layer of one region."""

    region: str
    """The AWS region (the provider comes through opts; this names the KMS condition)."""
    counters_billing_mode: str = "PAY_PER_REQUEST"
    """PROVISIONED (autoscaled) or PAY_PER_REQUEST for the counters table."""
    autoscaling: Autoscaling = field(default_factory=lambda: Autoscaling(5, 1000, 70))
    """Bounds and target utilisation for every PROVISIONED table and GSI."""
    app_tables: tuple[AppTable, ...] = ()
    """The application tables that config declares."""
    deletion_protection: bool = True
    """Refuse deletes of the tables (and retain the KMS key) when on."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every resource."""


class Data(pulumi.ComponentResource):
    """DynamoDB tables with encryption, PITR and (for PROVISIONED) autoscaling."""

    counters_table_name: pulumi.Output[str]
    counters_table_arn: pulumi.Output[str]
    app_table_names: dict[str, pulumi.Output[str]]
    app_table_arns: dict[str, pulumi.Output[str]]
    kms_key_arn: pulumi.Output[str]
    limiter_policy_json: pulumi.Output[str]

    def __init__(self, name: str, args: DataArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ratelimited:index:Data", name, None, opts)
        _validate(args)
        self._name = name
        self._args = args
        tags = dict(args.tags)

        key = aws.kms.Key(
            f"{name}-tables-key",
            description=f"Encrypts the DynamoDB tables of {name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
        )
        aws.kms.Alias(
            f"{name}-tables-key-alias",
            # Aliases are unique per account and region: the project and stack keep dev and prod apart.
            name=f"alias/{pulumi.get_project()}/{pulumi.get_stack()}/{name}-tables",
            target_key_id=key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.kms_key_arn = key.arn

        counters = self._create_table(
            "counters",
            hash_key=COUNTERS_HASH_KEY,
            range_key=None,
            attributes=((COUNTERS_HASH_KEY, "S"),),
            gsis=(),
            billing_mode=args.counters_billing_mode,
            ttl_attribute=COUNTERS_TTL_ATTRIBUTE,
            key=key,
        )
        self.counters_table_name = counters.name
        self.counters_table_arn = counters.arn

        self.app_table_names = {}
        self.app_table_arns = {}
        for spec in args.app_tables:
            table = self._create_table(
                f"app-{spec.name}",
                hash_key=spec.hash_key,
                range_key=spec.range_key,
                attributes=spec.attributes,
                gsis=spec.gsis,
                billing_mode=spec.billing_mode,
                ttl_attribute=spec.ttl_attribute,
                key=key,
            )
            self.app_table_names[spec.name] = table.name
            self.app_table_arns[spec.name] = table.arn

        self.limiter_policy_json = limiter_policy_document(counters.arn, key.arn, args.region)

        self.register_outputs(
            {
                "countersTableName": self.counters_table_name,
                "countersTableArn": self.counters_table_arn,
                "appTableNames": self.app_table_names,
                "kmsKeyArn": self.kms_key_arn,
            }
        )

    def _create_table(
        self,
        suffix: str,
        *,
        hash_key: str,
        range_key: str | None,
        attributes: tuple[tuple[str, str], ...],
        gsis: tuple,
        billing_mode: str,
        ttl_attribute: str | None,
        key: aws.kms.Key,
    ) -> aws.dynamodb.Table:
        args = self._args
        provisioned = billing_mode == "PROVISIONED"
        start = args.autoscaling.min_capacity
        capacity = {"read_capacity": start, "write_capacity": start} if provisioned else {}
        table = aws.dynamodb.Table(
            f"{self._name}-{suffix}",
            billing_mode=billing_mode,
            hash_key=hash_key,
            range_key=range_key,
            attributes=[aws.dynamodb.TableAttributeArgs(name=n, type=t) for n, t in attributes],
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=g.name,
                    key_schemas=[
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=attr, key_type=kind)
                        for attr, kind in ((g.hash_key, "HASH"), (g.range_key, "RANGE"))
                        if attr
                    ],
                    projection_type=g.projection_type,
                    **capacity,
                )
                for g in gsis
            ]
            or None,
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=ttl_attribute, enabled=True) if ttl_attribute else None,
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True, kms_key_arn=key.arn),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            deletion_protection_enabled=args.deletion_protection,
            tags=dict(args.tags),
            **capacity,
            # Autoscaling owns the capacities after creation; without this every `pulumi up` would
            # reset them to the starting value.
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.deletion_protection,
                ignore_changes=[
                    "readCapacity",
                    "writeCapacity",
                    "globalSecondaryIndexes[*].readCapacity",
                    "globalSecondaryIndexes[*].writeCapacity",
                ]
                if provisioned
                else None,
            ),
        )
        if provisioned:
            self._autoscale(suffix, table, None)
            for gsi in gsis:
                self._autoscale(f"{suffix}-{gsi.name}", table, gsi.name)
        return table

    def _autoscale(self, suffix: str, table: aws.dynamodb.Table, index: str | None) -> None:
        """A scalable target and a target-tracking policy for reads and for writes."""
        scaling = self._args.autoscaling
        kind = "index" if index else "table"
        resource_id = table.name.apply(lambda n: f"table/{n}/index/{index}" if index else f"table/{n}")
        for mode in (_READ, _WRITE):
            target = aws.appautoscaling.Target(
                f"{self._name}-{suffix}-{mode.lower()}-target",
                service_namespace="dynamodb",
                resource_id=resource_id,
                scalable_dimension=f"dynamodb:{kind}:{mode}CapacityUnits",
                min_capacity=scaling.min_capacity,
                max_capacity=scaling.max_capacity,
                tags=dict(self._args.tags),
                opts=pulumi.ResourceOptions(parent=self),
            )
            aws.appautoscaling.Policy(
                f"{self._name}-{suffix}-{mode.lower()}-policy",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                resource_id=target.resource_id,
                scalable_dimension=target.scalable_dimension,
                target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                    target_value=float(scaling.target_utilization),
                    predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type=f"DynamoDB{mode}CapacityUtilization",
                    ),
                    scale_in_cooldown=60,
                    scale_out_cooldown=60,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )


def limiter_policy_document(
    table_arn: pulumi.Input[str], key_arn: pulumi.Input[str], region: str
) -> pulumi.Output[str]:
    """Least privilege for the limiter: its item actions on the counters table, and the table's key via DynamoDB."""
    return pulumi.Output.all(table_arn, key_arn).apply(
        lambda arns: json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "CountersTable",
                        "Effect": "Allow",
                        "Action": list(LIMITER_TABLE_ACTIONS),
                        "Resource": arns[0],
                    },
                    {
                        "Sid": "CountersTableKey",
                        "Effect": "Allow",
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                        "Resource": arns[1],
                        "Condition": {"StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}},
                    },
                ],
            }
        )
    )


def _validate(args: DataArgs) -> None:
    if args.counters_billing_mode not in ("PROVISIONED", "PAY_PER_REQUEST"):
        raise ValueError(
            "DataArgs.counters_billing_mode must be PROVISIONED or PAY_PER_REQUEST, "
            f"not {args.counters_billing_mode!r}."
        )
    s = args.autoscaling
    if not 1 <= s.min_capacity <= s.max_capacity:
        raise ValueError("DataArgs.autoscaling needs 1 <= min_capacity <= max_capacity.")
    if not 20 <= s.target_utilization <= 90:
        raise ValueError("DataArgs.autoscaling.target_utilization must be between 20 and 90 (percent).")
    names = [t.name for t in args.app_tables]
    if len(set(names)) != len(names) or "counters" in names:
        raise ValueError("DataArgs.app_tables must have unique names, and 'counters' is the limiter's.")
