"""A monthly estimate of a recorded stack's fixed costs, from the dated price table tools/prices.yaml.

Fixed costs are what the stack costs with no traffic: control planes, nodes (desired count, first
instance type, on-demand prices), NAT gateways and their addresses, load balancers, web ACLs and
rules, health checks, the hosted zone, KMS keys, DynamoDB provisioned capacity at its autoscaling
minimum, alarms. Traffic-dependent costs are listed as excluded with their unit prices.

Each line names the resource, its region (the region of the AWS provider it is created through),
the quantity, the price used (id, unit, region, source) and the monthly amount. A resource whose
price is missing from the table for its region or instance type gets an `unpriced` line, never a
guess. Every type in the record is either priced here or listed under `no_fixed_cost` in the
table; anything else is reported as `unclassified`.

JSON form (the `cost` key of the preview document):

    {"as_of", "currency", "hours_per_month", "price_table",
     "lines": [{"urn", "name", "type", "region", "item", "quantity", "unit", "unit_price",
                "price_id", "price_region", "source", "monthly_usd", "note"}],
     "by_region": {region: usd}, "total_monthly_usd",
     "unpriced": [{"urn", "name", "type", "region", "reason"}],
     "no_charge": [{"urn", "name", "type", "region", "reason"}]  (priced types free as configured),
     "unclassified": [type], "excluded": [{"id", "description", "unit", "regions", "source"}]}
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

PRICE_TABLE = Path(__file__).resolve().parent / "prices.yaml"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

Resource = Mapping[str, Any]


def load_table(path: Path = PRICE_TABLE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


class _Context:
    def __init__(self, record: Mapping[str, Any], table: Mapping[str, Any]) -> None:
        self.resources: list[Resource] = list(record["resources"])
        self.by_urn = {r["urn"]: r for r in self.resources}
        self.table = table
        self.hours = float(table.get("hours_per_month", 730))

    def region(self, resource: Resource) -> str:
        """The region of the AWS provider a resource is created through (its own or a parent's)."""
        current: Resource | None = resource
        while current is not None:
            reference = (current.get("providers") or {}).get("aws") or ""
            own = current.get("provider") or ""
            if not reference and "pulumi:providers:aws::" in own:
                reference = own
            if reference:
                provider = self.by_urn.get(reference.rsplit("::", 1)[0] if reference.count("::") > 3 else reference)
                if provider is not None:
                    region = (provider.get("inputs") or {}).get("region")
                    if isinstance(region, str) and region != UNKNOWN:
                        return region
            current = self.by_urn.get(current.get("parent") or "")
        return "global"

    def price(self, price_id: str, region: str, key: str | None = None) -> tuple[float, str] | None:
        """(unit price, the region it is listed for) or None when the table has no such price."""
        entry = self.table["prices"].get(price_id)
        if entry is None:
            return None
        regions = entry.get("regions") or {}
        for where in (region, "*"):
            value = regions.get(where)
            if key is not None and isinstance(value, Mapping):
                value = value.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value), where
        return None

    def dependents(self, target: Resource, type_: str, prop: str) -> list[Resource]:
        return [
            r
            for r in self.resources
            if r["type"] == type_ and target["urn"] in (r.get("property_dependencies") or {}).get(prop, [])
        ]


class _Estimate:
    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.lines: list[dict[str, Any]] = []
        self.unpriced: list[dict[str, str]] = []
        self.no_charge: list[dict[str, str]] = []

    def free(self, resource: Resource, reason: str) -> None:
        """A resource of a priced type that has no fixed cost in this configuration, and why."""
        self.no_charge.append(
            {
                "urn": resource["urn"],
                "name": resource["name"],
                "type": resource["type"],
                "region": self.ctx.region(resource),
                "reason": reason,
            }
        )

    def add(
        self,
        resource: Resource,
        item: str,
        price_id: str,
        quantity: float,
        *,
        key: str | None = None,
        hourly: bool = True,
        note: str = "",
        region: str | None = None,
    ) -> None:
        region = region or self.ctx.region(resource)
        found = self.ctx.price(price_id, region, key)
        if found is None:
            what = f"{price_id}{'/' + key if key else ''}"
            self.unpriced.append(
                {
                    "urn": resource["urn"],
                    "name": resource["name"],
                    "type": resource["type"],
                    "region": region,
                    "reason": f"no price '{what}' for {region} in the price table",
                }
            )
            return
        unit_price, price_region = found
        entry = self.ctx.table["prices"][price_id]
        monthly = quantity * unit_price * (self.ctx.hours if hourly else 1.0)
        self.lines.append(
            {
                "urn": resource["urn"],
                "name": resource["name"],
                "type": resource["type"],
                "region": region,
                "item": item,
                "quantity": quantity,
                "unit": entry["unit"],
                "unit_price": unit_price,
                "price_id": price_id if key is None else f"{price_id}/{key}",
                "price_region": price_region,
                "source": entry["source"],
                "monthly_usd": round(monthly, 2),
                "note": note,
            }
        )


# --- pricing rules, by type token ----------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _eks_cluster(est: _Estimate, resource: Resource) -> None:
    est.add(resource, "EKS control plane", "eks-cluster", 1)


def _node_group(est: _Estimate, resource: Resource) -> None:
    inputs = resource.get("inputs") or {}
    types = [t for t in inputs.get("instanceTypes") or [] if isinstance(t, str) and t != UNKNOWN]
    scaling = inputs.get("scalingConfig") or {}
    desired = _number(scaling.get("desiredSize"))
    if not types or desired is None:
        est.unpriced.append(
            {
                "urn": resource["urn"],
                "name": resource["name"],
                "type": resource["type"],
                "region": est.ctx.region(resource),
                "reason": "instance types or desired size unknown in the record",
            }
        )
        return
    spot = inputs.get("capacityType") == "SPOT"
    note = "first listed instance type, on-demand price"
    if spot:
        note = "SPOT capacity priced at the on-demand rate of the first listed type (an upper bound)"
    est.add(resource, f"{int(desired)} x {types[0]} nodes", "ec2-instance", desired, key=types[0], note=note)
    disk = _number(inputs.get("diskSize"))
    if disk:
        est.add(
            resource,
            f"{int(desired)} x {int(disk)} GiB node root volumes",
            "ebs-gp3",
            desired * disk,
            hourly=False,
            note="gp3 assumed",
        )


def _nat_gateway(est: _Estimate, resource: Resource) -> None:
    est.add(resource, "NAT gateway", "nat-gateway", 1)


def _eip(est: _Estimate, resource: Resource) -> None:
    est.add(resource, "public IPv4 address", "public-ipv4", 1)


def _load_balancer(est: _Estimate, resource: Resource) -> None:
    kind = (resource.get("inputs") or {}).get("loadBalancerType") or "application"
    if kind == "network":
        est.add(resource, "Network Load Balancer", "nlb", 1)
    elif kind == "application":
        est.add(resource, "Application Load Balancer", "alb", 1)
    else:
        est.add(resource, f"{kind} load balancer", f"{kind}-lb", 1)


def _web_acl(est: _Estimate, resource: Resource) -> None:
    est.add(resource, "WAF web ACL", "waf-web-acl", 1, hourly=False)
    rules = (resource.get("inputs") or {}).get("rules") or []
    if isinstance(rules, list) and rules:
        est.add(resource, f"{len(rules)} WAF rules", "waf-rule", len(rules), hourly=False)


def _health_check(est: _Estimate, resource: Resource) -> None:
    inputs = resource.get("inputs") or {}
    # An endpoint derived from an AWS resource (a load balancer's DNS name) is an AWS endpoint.
    on_aws = any(
        str(est.ctx.by_urn.get(urn, {}).get("type", "")).startswith("aws:")
        for prop in ("fqdn", "ipAddress")
        for urn in (resource.get("property_dependencies") or {}).get(prop, [])
    )
    kind = str(inputs.get("type") or "")
    if kind in ("CALCULATED", "CLOUDWATCH_METRIC"):
        on_aws = True
    base, feature = (
        ("route53-health-check", "route53-health-check-feature")
        if on_aws
        else ("route53-health-check-external", "route53-health-check-external-feature")
    )
    est.add(resource, "Route 53 health check", base, 1, hourly=False)
    features = []
    if kind.startswith("HTTPS"):
        features.append("HTTPS")
    if kind.endswith("STR_MATCH"):
        features.append("string matching")
    if _number(inputs.get("requestInterval")) == 10:
        features.append("fast interval")
    if inputs.get("measureLatency") is True:
        features.append("latency measurement")
    if features:
        est.add(resource, f"health check features: {', '.join(features)}", feature, len(features), hourly=False)


def _hosted_zone(est: _Estimate, resource: Resource) -> None:
    est.add(resource, "Route 53 hosted zone", "route53-hosted-zone", 1, hourly=False)


def _kms_key(est: _Estimate, resource: Resource) -> None:
    est.add(resource, "KMS customer managed key", "kms-key", 1, hourly=False)


def _table(est: _Estimate, resource: Resource) -> None:
    inputs = resource.get("inputs") or {}
    if inputs.get("billingMode") == "PAY_PER_REQUEST":
        est.free(resource, "on-demand table: requests and storage are usage (excluded)")
        return
    units = {"Read": 0.0, "Write": 0.0}
    targets = est.ctx.dependents(resource, "aws:appautoscaling/target:Target", "resourceId")
    scaled = {"Read": False, "Write": False}
    for target in targets:
        dimension = str((target.get("inputs") or {}).get("scalableDimension") or "")
        minimum = _number((target.get("inputs") or {}).get("minCapacity"))
        for mode in units:
            if dimension.endswith(f"{mode}CapacityUnits") and minimum is not None:
                units[mode] += minimum
                scaled[mode] = True
    # Without autoscaling, the table's (and its indexes') provisioned capacity is the fixed capacity.
    for mode in units:
        if not scaled[mode]:
            own = _number(inputs.get(f"{mode.lower()}Capacity")) or 0.0
            indexes = sum(
                _number(index.get(f"{mode.lower()}Capacity")) or 0.0
                for index in inputs.get("globalSecondaryIndexes") or []
                if isinstance(index, Mapping)
            )
            units[mode] = own + indexes
    note = "autoscaling minimum, table and indexes" if any(scaled.values()) else "provisioned capacity"
    if units["Read"]:
        est.add(resource, f"{units['Read']:g} RCU", "dynamodb-rcu", units["Read"], note=note)
    if units["Write"]:
        est.add(resource, f"{units['Write']:g} WCU", "dynamodb-wcu", units["Write"], note=note)


def _alarm(est: _Estimate, resource: Resource) -> None:
    period = _number((resource.get("inputs") or {}).get("period"))
    if period is not None and period < 60:
        est.add(resource, "CloudWatch high-resolution alarm", "cloudwatch-alarm-high-resolution", 1, hourly=False)
    else:
        est.add(resource, "CloudWatch alarm", "cloudwatch-alarm", 1, hourly=False)


def _composite_alarm(est: _Estimate, resource: Resource) -> None:
    est.add(resource, "CloudWatch composite alarm", "cloudwatch-composite-alarm", 1, hourly=False)


def _vpc_endpoint(est: _Estimate, resource: Resource) -> None:
    inputs = resource.get("inputs") or {}
    if inputs.get("vpcEndpointType", "Gateway") == "Gateway":
        est.free(resource, "gateway endpoints (DynamoDB, S3) have no charge")
        return
    zones = len(inputs.get("subnetIds") or []) or 1
    est.add(resource, f"interface endpoint in {zones} zone(s)", "vpc-interface-endpoint", zones)


def _secret(est: _Estimate, resource: Resource) -> None:
    est.add(resource, "Secrets Manager secret", "secretsmanager-secret", 1, hourly=False)


def _dashboard(est: _Estimate, resource: Resource) -> None:
    est.add(resource, "CloudWatch dashboard", "cloudwatch-dashboard", 1, hourly=False)


RULES: dict[str, Callable[[_Estimate, Resource], None]] = {
    "eks:index:Cluster": _eks_cluster,
    "aws:eks/cluster:Cluster": _eks_cluster,
    "eks:index:ManagedNodeGroup": _node_group,
    "aws:eks/nodeGroup:NodeGroup": _node_group,
    "aws:ec2/natGateway:NatGateway": _nat_gateway,
    "aws:ec2/eip:Eip": _eip,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:alb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:wafv2/webAcl:WebAcl": _web_acl,
    "aws:route53/healthCheck:HealthCheck": _health_check,
    "aws:route53/zone:Zone": _hosted_zone,
    "aws:kms/key:Key": _kms_key,
    "aws:dynamodb/table:Table": _table,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _alarm,
    "aws:cloudwatch/dashboard:Dashboard": _dashboard,
    "aws:cloudwatch/compositeAlarm:CompositeAlarm": _composite_alarm,
    "aws:ec2/vpcEndpoint:VpcEndpoint": _vpc_endpoint,
    "aws:secretsmanager/secret:Secret": _secret,
}


def classify(type_: str, table: Mapping[str, Any]) -> str:
    """'priced', 'no fixed cost' or 'unclassified' for a type token."""
    if type_ in RULES:
        return "priced"
    if any(fnmatch.fnmatchcase(type_, pattern) for pattern in table.get("no_fixed_cost") or {}):
        return "no fixed cost"
    return "unclassified"


def estimate(record: Mapping[str, Any], table: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fixed-cost estimate of a recorded stack (schema in the module docstring)."""
    table = table or load_table()
    ctx = _Context(record, table)
    est = _Estimate(ctx)
    unclassified: set[str] = set()
    for resource in ctx.resources:
        rule = RULES.get(resource["type"])
        if rule is not None:
            rule(est, resource)
        elif classify(resource["type"], table) == "unclassified":
            unclassified.add(resource["type"])
    _used_zone(est, ctx)
    by_region: dict[str, float] = defaultdict(float)
    for line in est.lines:
        by_region[line["region"]] += line["monthly_usd"]
    return {
        "as_of": table.get("as_of"),
        "currency": table.get("currency", "USD"),
        "hours_per_month": ctx.hours,
        "price_table": "tools/prices.yaml",
        "lines": est.lines,
        "by_region": {region: round(total, 2) for region, total in sorted(by_region.items())},
        "total_monthly_usd": round(sum(line["monthly_usd"] for line in est.lines), 2),
        "unpriced": est.unpriced,
        "no_charge": est.no_charge,
        "unclassified": sorted(unclassified),
        "excluded": list(table.get("excluded") or []),
    }


def _used_zone(est: _Estimate, ctx: _Context) -> None:
    """The hosted zone the records go into, when the stack uses an existing zone instead of creating one."""
    if any(r["type"] == "aws:route53/zone:Zone" for r in ctx.resources):
        return
    records = [r for r in ctx.resources if r["type"] == "aws:route53/record:Record"]
    zones = sorted(
        {str((r.get("inputs") or {}).get("zoneId")) for r in records if (r.get("inputs") or {}).get("zoneId")}
    )
    for zone in zones:
        first = next(r for r in records if str((r.get("inputs") or {}).get("zoneId")) == zone)
        est.add(
            {
                **first,
                "name": f"hosted zone {zone if zone != UNKNOWN else '(id unknown)'}",
                "type": "aws:route53/zone:Zone",
            },
            "Route 53 hosted zone (existing)",
            "route53-hosted-zone",
            1,
            hourly=False,
            note="the zone the records go into; looked up, not created by this stack",
            region="global",
        )


# --- text ----------------------------------------------------------------------------------


def text_lines(cost: Mapping[str, Any]) -> list[str]:
    """The estimate for the human report: by region, by resource, then what is excluded."""
    lines = [
        f"Cost: estimated fixed monthly cost, {cost['currency']} list prices as of {cost['as_of']} "
        f"({cost['price_table']}; {cost['hours_per_month']:g} h a month; no traffic)"
    ]
    rows = sorted(cost["lines"], key=lambda line: (line["region"], -line["monthly_usd"], line["name"]))
    name_width = max([len(r["name"]) for r in rows] + [8])
    item_width = max([len(r["item"]) for r in rows] + [4])
    for region, items in _grouped(rows):
        lines.append(f"    {region}: ${cost['by_region'].get(region, 0):,.2f}")
        for row in items:
            price = f"{row['unit_price']:g}/{row['unit']}"
            note = f"  ({row['note']})" if row["note"] else ""
            lines.append(
                f"      {row['name'].ljust(name_width)}  {row['item'].ljust(item_width)}  "
                f"{price:>24}  ${row['monthly_usd']:>10,.2f}{note}"
            )
    lines.append(f"    total: ${cost['total_monthly_usd']:,.2f} per month")
    for item in cost.get("no_charge") or []:
        lines.append(f"    no fixed cost: {item['name']} ({item['type']}): {item['reason']}")
    for item in cost["unpriced"]:
        lines.append(f"    unpriced: {item['name']} ({item['type']}, {item['region']}): {item['reason']}")
    for type_ in cost["unclassified"]:
        lines.append(f"    unclassified: {type_} is neither priced nor listed as having no fixed cost")
    lines.append("    Excluded (depend on traffic), unit prices to extend the estimate:")
    for item in cost["excluded"]:
        regions = ", ".join(
            f"{price:g} ({'all regions' if region == '*' else region})" for region, price in item["regions"].items()
        )
        lines.append(f"      {item['description']}: {regions} per {item['unit']}")
    return lines


def _grouped(rows: list[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    regions: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        regions.setdefault(row["region"], []).append(row)
    yield from regions.items()
