"""Pulumi mocks for this program: realistic computed outputs, and a monitor that records everything.

`PlatformMocks` answers registrations and invokes the way AWS and the providers would: ARNs, ids,
DNS names and the outputs of pulumi-eks's remote components that the program reads (`kubeconfig`,
`eksCluster` as a real resource reference, `core`, the OIDC values). In preview mode it returns only
the inputs, so every computed output is unknown, as in a first `pulumi preview`.

`RecordingMonitor` wraps the stock MockMonitor:
- it records every registration (type, name, parent, provider, dependencies, property dependencies,
  inputs in wire form, and the mock's outputs), which tests and the offline preview inspect;
- it replaces resource references in a request by plain strings before the base class deserializes
  them (with the stock monitor, remote components that take resources as inputs made runs flaky:
  "Future attached to a different loop", or a hang: the stock monitor re-hydrates the referenced
  resources on its worker thread);
- it implements `Call`, which the stock monitor lacks, by routing to `Mocks.call`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any

from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, resource_pb2
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

ACCOUNT = "123456789012"
DEFAULT_CALLER_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/platform-deployer/deploy"
UNKNOWN = rpc.UNKNOWN
_SIG = rpc._special_sig_key
_RESOURCE_SIG = rpc._special_resource_sig
_SECRET_SIG = rpc._special_secret_sig

# Route 53 hosted zone ids that AWS publishes for alias targets (AWS General Reference, "Service endpoints
# and quotas": Elastic Load Balancing (ALB, NLB) and Amazon API Gateway regional endpoints). Regions not
# listed fall back to us-east-2's ids, which have the same shape.
_ELB_ZONE_IDS = {
    "eu-west-1": "Z32O12XQLNTSW2", "us-east-1": "Z35SXDOTRQ7X7K", "us-west-2": "Z1H1FL5HABSF5",
    "ap-southeast-1": "Z1LMS91P8CMLE5", "ap-northeast-1": "Z14GRHDCWA56QT", "us-west-1": "Z368ELLRRE2KJ0",
}  # fmt: skip
_NLB_ZONE_IDS = {
    "eu-west-1": "Z2IFOLAFXWLO4F", "us-east-1": "Z26RNL4JYFTOTI", "us-west-2": "Z18D5FSROUN65G",
    "ap-southeast-1": "ZKVM4W9LS7TM", "ap-northeast-1": "Z31USIVHYNEOWT", "us-west-1": "Z24FKFUX50B4VW",
}  # fmt: skip
_APIGW_ZONE_IDS = {
    "eu-west-1": "ZLY8HYME6SFDD", "us-east-1": "Z1UJRXOUMOOFQ8", "us-west-2": "Z2OJLYMUO9EFXC",
    "ap-southeast-1": "ZL327KTPIQFUL", "ap-northeast-1": "Z1YSHQZHG15GKL", "us-west-1": "Z2MOQ5HBTXKDBI",
}  # fmt: skip
_FALLBACK_ZONE_IDS = {"alb": "Z3AADJGX6KTTL2", "nlb": "ZLMOA37VPKANP", "apigw": "ZOJJZC49E0EPZ"}
_CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"
# The ids of AWS-managed CloudFront policies are fixed (CloudFront developer guide, "Use managed cache
# policies", "Use managed origin request policies", "Use managed response headers policies").
_CLOUDFRONT_MANAGED_POLICY_IDS = {
    "Managed-CachingOptimized": "658327ea-f89d-4fab-a63d-7e88639e58f6",
    "Managed-CachingDisabled": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
    "Managed-AllViewerExceptHostHeader": "b689b0a8-53d0-40ab-baf2-68738e2966ac",
    "Managed-SecurityHeadersPolicy": "67f7725c-6f97-4210-82d7-5512b31e9d03",
}


# DescribeAvailabilityZones as an account sees it (EC2 API reference; zone names map to zone ids per
# account, so a region's "a" zone may be the one EKS refuses). Each region lists its zones as
# (name, zone id, zone type, opt-in status); us-east-1 and us-west-2 include a Local Zone the account
# opted into, which `state=available` also returns.
_ZONES: dict[str, list[tuple[str, str, str, str]]] = {
    "us-east-1": [
        ("us-east-1a", "use1-az3", "availability-zone", "opt-in-not-required"),
        ("us-east-1b", "use1-az6", "availability-zone", "opt-in-not-required"),
        ("us-east-1c", "use1-az1", "availability-zone", "opt-in-not-required"),
        ("us-east-1d", "use1-az2", "availability-zone", "opt-in-not-required"),
        ("us-east-1e", "use1-az4", "availability-zone", "opt-in-not-required"),
        ("us-east-1f", "use1-az5", "availability-zone", "opt-in-not-required"),
        ("us-east-1-bos-1a", "use1-bos1-az1", "local-zone", "opted-in"),
    ],
    "us-west-1": [
        ("us-west-1a", "usw1-az2", "availability-zone", "opt-in-not-required"),
        ("us-west-1b", "usw1-az1", "availability-zone", "opt-in-not-required"),
        ("us-west-1c", "usw1-az3", "availability-zone", "opt-in-not-required"),
    ],
    "us-west-2": [
        ("us-west-2-lax-1a", "usw2-lax1-az1", "local-zone", "opted-in"),
        ("us-west-2a", "usw2-az2", "availability-zone", "opt-in-not-required"),
        ("us-west-2b", "usw2-az1", "availability-zone", "opt-in-not-required"),
        ("us-west-2c", "usw2-az3", "availability-zone", "opt-in-not-required"),
        ("us-west-2d", "usw2-az4", "availability-zone", "opt-in-not-required"),
    ],
    "ca-central-1": [
        ("ca-central-1a", "cac1-az1", "availability-zone", "opt-in-not-required"),
        ("ca-central-1b", "cac1-az3", "availability-zone", "opt-in-not-required"),
        ("ca-central-1d", "cac1-az4", "availability-zone", "opt-in-not-required"),
    ],
}


_DIRECTIONS = {
    "central": "c", "north": "n", "south": "s", "east": "e", "west": "w",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
}  # fmt: skip


def availability_zones(region: str, args: dict[str, Any]) -> dict[str, Any]:
    """aws.getAvailabilityZones as the provider answers it: `state`, `excludeZoneIds`, `excludeNames`
    and the DescribeAvailabilityZones filters `zone-type`, `opt-in-status`, `zone-id`, `zone-name`
    applied (terraform-provider-aws ec2/availability_zones_data_source.go)."""
    area, direction, number = region.split("-")  # zone ids: euw1-az1, apse1-az2 (AWS RAM user guide, AZ ids)
    short = area + _DIRECTIONS.get(direction, direction[0]) + number
    zones = _ZONES.get(region) or [
        (f"{region}{letter}", f"{short}-az{i}", "availability-zone", "opt-in-not-required")
        for i, letter in enumerate("abc", start=1)
    ]
    filters = {str(f["name"]): {str(v) for v in f["values"]} for f in args.get("filters") or []}
    fields = {"zone-name": 0, "zone-id": 1, "zone-type": 2, "opt-in-status": 3}
    unknown = set(filters) - set(fields)
    if unknown:
        raise NotImplementedError(f"PlatformMocks: no getAvailabilityZones filter {sorted(unknown)}")
    kept = [
        z
        for z in zones
        if z[1] not in set(args.get("excludeZoneIds") or [])
        and z[0] not in set(args.get("excludeNames") or [])
        and all(z[fields[name]] in values for name, values in filters.items())
    ]
    return {
        "names": [z[0] for z in kept],
        "zoneIds": [z[1] for z in kept],
        "groupNames": [region if z[2] == "availability-zone" else z[0][:-1] for z in kept],
        "id": region,
    }


def _physical_name(inputs: dict[str, Any], logical: str, h: str) -> str:
    """The name a pulumi-aws resource gets: `name`, else `namePrefix` + a 26-character unique suffix
    (terraform-plugin-sdk id.PrefixedUniqueId: a timestamp and a counter, UniqueIDSuffixLength 26),
    else the bridge's auto-name `<logical name>-<7 hex>` (pulumi-terraform-bridge tfbridge AutoName)."""
    if inputs.get("name"):
        return str(inputs["name"])
    if inputs.get("namePrefix"):
        return f"{inputs['namePrefix']}20261130120000{int(h[:8], 16) % 10**12:012d}"
    return f"{logical}-{h[:7]}"


def _digest(*parts: str, n: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


class PlatformMocks(pulumi_mocks.Mocks):
    """Computed outputs by type token, deterministic (derived from names), region-aware."""

    def __init__(
        self, *, preview: bool = False, default_region: str = "eu-west-1", caller_arn: str | None = None
    ) -> None:
        self.preview = preview
        self.default_region = default_region
        # Who runs `pulumi up`: a role session by default; tests set another through the environment.
        self.caller_arn = caller_arn or os.environ.get("RATELIMITED_MOCK_CALLER_ARN") or DEFAULT_CALLER_ARN
        self.monitor: RecordingMonitor | None = None
        self._provider_regions: dict[str, str] = {}
        self._component_providers: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- invokes ------------------------------------------------------------------------------
    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]]]:
        result, failures = self._call(args)
        return result, failures or []

    def _call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        region = self._region(args.provider)
        token = args.token
        a = args.args
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            # STS GetCallerIdentity (API reference): a role session's Arn is
            # arn:aws:sts::<account>:assumed-role/<role name>/<session>, its UserId "<role id>:<session>".
            return {
                "accountId": ACCOUNT,
                "arn": self.caller_arn,
                "userId": "AROA3XFRBF23EXAMPLE:deploy",
                "id": ACCOUNT,
            }, None
        if token == "aws:index/getRegion:getRegion":
            return {"name": region, "region": region, "id": region, "endpoint": f"ec2.{region}.amazonaws.com"}, None
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, None
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return availability_zones(region, a), None
        if token == "aws:route53/getZone:getZone":
            name = str(a.get("name") or "example.com").rstrip(".")
            zone_id = a.get("zoneId") or "Z" + _digest(name, n=12).upper()
            return {
                "zoneId": zone_id,
                "id": zone_id,
                "name": name,
                "arn": f"arn:aws:route53:::hostedzone/{zone_id}",
            }, None
        if token == "aws:ec2/getManagedPrefixList:getManagedPrefixList":
            name = str(a.get("name") or "")
            max_entries = 55 if "cloudfront" in name else 25
            pl_id = "pl-" + _digest(region, name)
            return {
                "id": pl_id,
                "name": name,
                "maxEntries": max_entries,
                "arn": f"arn:aws:ec2:{region}:aws:prefix-list/{pl_id}",
                "addressFamily": "IPv4",
                "entries": [],
            }, None
        if token == "aws:elb/getServiceAccount:getServiceAccount":
            return {"arn": "arn:aws:iam::156460612806:root", "id": "156460612806"}, None
        if token in (
            "aws:cloudfront/getCachePolicy:getCachePolicy",
            "aws:cloudfront/getOriginRequestPolicy:getOriginRequestPolicy",
            "aws:cloudfront/getResponseHeadersPolicy:getResponseHeadersPolicy",
        ):
            name = str(a.get("name") or "")
            if name not in _CLOUDFRONT_MANAGED_POLICY_IDS:
                # The provider's lookup fails for a name that does not exist.
                return {}, [("name", f"no CloudFront managed policy named {name!r}")]
            return {"id": _CLOUDFRONT_MANAGED_POLICY_IDS[name], "name": name}, None
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {
                "userName": "AWS",
                "password": "mock-ecr-token",
                "authorizationToken": "QVdTOm1vY2s=",
                "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{region}.amazonaws.com",
                "id": region,
            }, None
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            return {
                "json": json.dumps({"Version": "2012-10-17", "Statement": a.get("statements", [])}),
                "id": "doc",
            }, None
        if token.startswith("eks:index:Cluster/getKubeconfig"):
            return {"result": json.dumps(self._kubeconfig("mock"))}, None
        raise NotImplementedError(f"PlatformMocks has no canned result for invoke {token}; add one in tools/mocks.py.")

    # -- resources ----------------------------------------------------------------------------
    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict]:
        typ, name, inputs = args.typ, args.name, dict(args.inputs)
        if typ.startswith("pulumi:providers:"):
            region = inputs.get("region") or self.default_region
            with self._lock:
                self._provider_regions[name] = str(region)
            return f"{name}-provider-id", inputs
        if not args.custom and not typ.startswith(("eks:", "kubernetes:helm.sh/v4:Chart")):
            return None, inputs  # a plain component: no outputs of its own
        if self.preview:
            # A first preview knows only the inputs: ids, ARNs and other computed outputs are unknown.
            return None, inputs
        # A remote component (pulumi-eks) gets its AWS provider through `providers`, not `provider`.
        with self._lock:
            component_provider = self._component_providers.get(name)
        region = self._region(args.provider or component_provider)
        return self._outputs(typ, name, inputs, region)

    def _region(self, provider_ref: str | None) -> str:
        if provider_ref:
            # "urn:pulumi:<stack>::<project>::pulumi:providers:aws::<name>::<id>"
            parts = provider_ref.split("::")
            if len(parts) >= 4:
                with self._lock:
                    region = self._provider_regions.get(parts[3])
                if region:
                    return region
        return self.default_region

    def _outputs(self, typ: str, name: str, inputs: dict, region: str) -> tuple[str, dict]:
        h = _digest(typ, name, region)
        state = dict(inputs)
        arn_prefix = f"arn:aws:{{}}:{region}:{ACCOUNT}:"
        module = typ.split(":")[1].split("/")[0] if ":" in typ else ""

        def arn(service: str, resource: str, global_: bool = False) -> str:
            if global_:
                return f"arn:aws:{service}::{ACCOUNT}:{resource}"
            return arn_prefix.format(service) + resource

        rid = f"{name}-{h}"
        long_h = _digest(typ, name, region, "long", n=17)  # EC2 ids: a prefix and 17 hex characters
        uuid = "-".join(
            (
                _digest(h, "u", n=8),
                _digest(h, "u1", n=4),
                _digest(h, "u2", n=4),
                _digest(h, "u3", n=4),
                _digest(h, "u4", n=12),
            )
        )
        if typ == "aws:ec2/vpc:Vpc":
            rid = f"vpc-{long_h}"
            state.update(
                arn=arn("ec2", f"vpc/{rid}"),
                defaultSecurityGroupId=f"sg-{_digest(h, 'def')}",
                mainRouteTableId=f"rtb-{h}",
            )
        elif typ == "aws:ec2/subnet:Subnet":
            rid = f"subnet-{long_h}"
            state.update(arn=arn("ec2", f"subnet/{rid}"))
        elif typ == "aws:ec2/securityGroup:SecurityGroup":
            rid = f"sg-{long_h}"
            state.update(arn=arn("ec2", f"security-group/{rid}"), name=_physical_name(inputs, name, h))
        elif typ == "aws:ec2/eip:Eip":
            # EC2 AllocateAddress: an allocation id eipalloc-<17 hex> and a public IPv4 (a TEST-NET-3 address here).
            rid = f"eipalloc-{long_h}"
            state.update(publicIp=f"203.0.113.{int(h[:2], 16) % 250 + 1}", allocationId=rid)
        elif typ in (
            "aws:ec2/natGateway:NatGateway",
            "aws:ec2/internetGateway:InternetGateway",
            "aws:ec2/routeTable:RouteTable",
        ):
            prefix = {"NatGateway": "nat", "InternetGateway": "igw", "RouteTable": "rtb"}[typ.rsplit(":", 1)[1]]
            rid = f"{prefix}-{long_h}"
            kind = {"nat": "natgateway", "igw": "internet-gateway", "rtb": "route-table"}[prefix]
            state.update(arn=arn("ec2", f"{kind}/{rid}"))
        elif typ == "aws:ec2/vpcEndpoint:VpcEndpoint":
            rid = f"vpce-{long_h}"
            state.update(arn=arn("ec2", f"vpc-endpoint/{rid}"), prefixListId=f"pl-{h}", state="available")
        elif typ == "aws:kms/key:Key":
            # KMS CreateKey: KeyId is a UUID, Arn arn:aws:kms:<region>:<account>:key/<KeyId>.
            rid = f"{h}-{_digest(h, 'k', n=4)}-4a4a-8b8b-{_digest(h, 'kk', n=12)}"
            state.update(arn=arn("kms", f"key/{rid}"), keyId=rid)
        elif typ == "aws:kms/alias:Alias":
            # KMS ListAliases: AliasArn arn:aws:kms:<region>:<account>:alias/<name>.
            state.update(arn=arn("kms", str(inputs.get("name") or f"alias/{name}")))
        elif typ == "aws:iam/role:Role":
            # IAM CreateRole: Arn arn:aws:iam::<account>:role/<name>, RoleId AROA...; the id is the name.
            role_name = _physical_name(inputs, name, h)
            rid = role_name
            state.update(arn=arn("iam", f"role/{role_name}", global_=True), name=role_name, uniqueId=f"AROA{h.upper()}")
        elif typ == "aws:iam/policy:Policy":
            # IAM CreatePolicy: Arn arn:aws:iam::<account>:policy/<name>; the id is the ARN.
            policy_name = _physical_name(inputs, name, h)
            state.update(arn=arn("iam", f"policy/{policy_name}", global_=True), name=policy_name)
            rid = state["arn"]
        elif typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            # IAM CreateOpenIDConnectProvider: arn:aws:iam::<account>:oidc-provider/<url without https://>.
            url = str(inputs.get("url", "")).removeprefix("https://")
            state.update(arn=arn("iam", f"oidc-provider/{url}", global_=True))
            rid = state["arn"]
        elif typ == "aws:dynamodb/table:Table":
            # DynamoDB DescribeTable: TableArn arn:aws:dynamodb:<region>:<account>:table/<name>; the id is the name.
            table = _physical_name(inputs, name, h)
            rid = table
            state.update(name=table, arn=arn("dynamodb", f"table/{table}"))
            if inputs.get("streamEnabled"):
                # DynamoDB DescribeTable LatestStreamArn: only a table with a stream has one.
                state["streamArn"] = arn("dynamodb", f"table/{table}/stream/2026-11-30T12:00:00.000")
        elif typ in ("aws:appautoscaling/target:Target",):
            # terraform-provider-aws appautoscaling/target.go: the id is the resource id.
            rid = str(inputs.get("resourceId"))
            state.update(arn=arn("application-autoscaling", f"scalable-target/{_digest(h, 'st', n=36)}"))
        elif typ == "aws:appautoscaling/policy:Policy":
            policy_name = _physical_name(inputs, name, h)
            resource = f"{inputs.get('serviceNamespace')}/{inputs.get('resourceId')}"
            state.update(
                name=policy_name,
                # Application Auto Scaling API reference, PutScalingPolicy PolicyARN.
                arn=arn("autoscaling", f"scalingPolicy:{uuid}:resource/{resource}:policyName/{policy_name}"),
                alarmArns=[],
            )
            rid = policy_name
        elif typ == "aws:lb/loadBalancer:LoadBalancer":
            kind = "net" if inputs.get("loadBalancerType") == "network" else "app"
            lb_name = _physical_name(inputs, name, h)
            lb_id = _digest(h, "lb", n=16)  # ELB API reference: .../loadbalancer/app/<name>/<16 hex>
            state.update(
                arn=arn("elasticloadbalancing", f"loadbalancer/{kind}/{lb_name}/{lb_id}"),
                arnSuffix=f"{kind}/{lb_name}/{lb_id}",
                name=lb_name,
                dnsName=f"{'internal-' if inputs.get('internal') else ''}{lb_name}-{int(h, 16) % 10**9}"
                f".{region}.elb.amazonaws.com",
                zoneId=(_NLB_ZONE_IDS if kind == "net" else _ELB_ZONE_IDS).get(
                    region, _FALLBACK_ZONE_IDS["nlb" if kind == "net" else "alb"]
                ),
            )
            rid = state["arn"]
        elif typ == "aws:lb/targetGroup:TargetGroup":
            tg_name = _physical_name(inputs, name, h)
            tg_id = _digest(h, "tg", n=16)
            state.update(
                arn=arn("elasticloadbalancing", f"targetgroup/{tg_name}/{tg_id}"),
                arnSuffix=f"targetgroup/{tg_name}/{tg_id}",
                name=tg_name,
            )
            rid = state["arn"]
        elif typ == "aws:lb/listener:Listener":
            # ELB API reference: listener/<app|net>/<lb name>/<lb id>/<listener id>, under the LB's ARN.
            lb = str(
                inputs.get("loadBalancerArn") or f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:loadbalancer/app/x/0"
            )
            state.update(arn=lb.replace(":loadbalancer/", ":listener/") + "/" + _digest(h, "l", n=16))
            rid = state["arn"]
        elif typ == "aws:lb/listenerRule:ListenerRule":
            listener = str(
                inputs.get("listenerArn") or f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:listener/app/x/0/0"
            )
            state.update(arn=listener.replace(":listener/", ":listener-rule/") + "/" + _digest(h, "r", n=16))
            rid = state["arn"]
        elif typ == "aws:acm/certificate:Certificate":
            domain = str(inputs.get("domainName", "example.com"))
            # ACM DescribeCertificate: one DomainValidation per distinct name; a wildcard and its apex share
            # the apex's CNAME (terraform-provider-aws acm/certificate.go flattens them into a set).
            names = list(dict.fromkeys([domain, *inputs.get("subjectAlternativeNames", [])]))
            state.update(
                arn=arn("acm", f"certificate/{uuid}"),
                domainValidationOptions=[
                    {
                        "domainName": d,
                        "resourceRecordName": f"_{_digest(d.removeprefix('*.'), n=32)}.{d.removeprefix('*.')}.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": f"_{_digest(d.removeprefix('*.'), 'v', n=32)}.acm-validations.aws.",
                    }
                    for d in names
                ],
                status="ISSUED",
            )
            rid = state["arn"]
        elif typ == "aws:acm/certificateValidation:CertificateValidation":
            # terraform-provider-aws acm/certificate_validation.go: the id is the certificate ARN.
            rid = str(inputs.get("certificateArn", name))
        elif typ == "aws:wafv2/webAcl:WebAcl":
            scope = "global" if inputs.get("scope") == "CLOUDFRONT" else "regional"
            acl_name = _physical_name(inputs, name, h)
            # WAFV2 API reference: arn:aws:wafv2:<region>:<account>:<scope>/webacl/<name>/<uuid>; CLOUDFRONT
            # scope lives in us-east-1.
            acl_region = "us-east-1" if scope == "global" else region
            state.update(
                name=acl_name,
                arn=f"arn:aws:wafv2:{acl_region}:{ACCOUNT}:{scope}/webacl/{acl_name}/{uuid}",
                capacity=700,
            )
            rid = uuid
        elif typ == "aws:wafv2/webAclAssociation:WebAclAssociation":
            # terraform-provider-aws wafv2/web_acl_association.go: the id is "<web ACL ARN>,<resource ARN>".
            rid = f"{inputs.get('webAclArn')},{inputs.get('resourceArn')}"
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            # CloudWatch Logs: arn:aws:logs:<region>:<account>:log-group:<name>; the id is the name.
            lg = _physical_name(inputs, name, h)
            state.update(name=lg, arn=arn("logs", f"log-group:{lg}"))
            rid = lg
        elif typ in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
            # pulumi-aws s3 Bucket: AutoNameTransform(bucket, 63, lower); arn:aws:s3:::<bucket>; the id is the bucket.
            bucket = inputs.get("bucket") or _physical_name({"namePrefix": inputs.get("bucketPrefix")}, name, h)
            state.update(
                bucket=bucket,
                arn=f"arn:aws:s3:::{bucket}",
                bucketDomainName=f"{bucket}.s3.amazonaws.com",
                bucketRegionalDomainName=f"{bucket}.s3.{region}.amazonaws.com",
                region=region,
            )
            rid = bucket
        elif typ == "aws:ecr/repository:Repository":
            # ECR CreateRepository: repositoryUri <account>.dkr.ecr.<region>.amazonaws.com/<name>.
            repo = _physical_name(inputs, name, h)
            state.update(
                name=repo,
                arn=arn("ecr", f"repository/{repo}"),
                repositoryUrl=f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{repo}",
                registryId=ACCOUNT,
            )
            rid = repo
        elif typ == "docker-build:index:Image":
            # pulumi-docker-build SDK docstring: `ref` is one pushed tag with the digest, "<tag>@sha256:...".
            digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
            tags = [t for t in inputs.get("tags") or [] if isinstance(t, str)]
            state.update(digest=digest, ref=f"{tags[0]}@{digest}" if tags else digest)
        elif typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
            # CloudWatch DescribeAlarms: AlarmArn arn:aws:cloudwatch:<region>:<account>:alarm:<name>.
            alarm = _physical_name(inputs, name, h)
            state.update(name=alarm, arn=arn("cloudwatch", f"alarm:{alarm}"))
            rid = alarm
        elif typ == "aws:route53/healthCheck:HealthCheck":
            # Route 53 CreateHealthCheck: Id is a UUID; the ARN has no region or account.
            rid = f"{h}-{_digest(h, 'hc', n=4)}-4c4c-9d9d-{_digest(h, 'hc2', n=12)}"
            state.update(arn=f"arn:aws:route53:::healthcheck/{rid}")
        elif typ == "aws:route53/record:Record":
            # terraform-provider-aws route53/record.go: the id is "<zone id>_<name>_<type>[_<set identifier>]".
            rid = f"Z_{inputs.get('name')}_{inputs.get('type')}_{inputs.get('setIdentifier', '')}"
            state.update(fqdn=inputs.get("name"))
        elif typ == "aws:cloudfront/distribution:Distribution":
            rid = "E" + _digest(h, "cf", n=13).upper()  # CloudFront API reference: E + 13 characters
            state.update(
                arn=f"arn:aws:cloudfront::{ACCOUNT}:distribution/{rid}",
                domainName=f"d{h}.cloudfront.net",
                hostedZoneId=_CLOUDFRONT_ZONE_ID,
                status="Deployed",
                etag="E" + h.upper(),
            )
        elif typ == "aws:apigateway/restApi:RestApi":
            # API Gateway CreateRestApi: id and rootResourceId of 10 lower-case characters.
            rid = h[:10]
            state.update(
                rootResourceId=_digest(h, "root", n=10),
                executionArn=arn("execute-api", rid),
                arn=f"arn:aws:apigateway:{region}::/restapis/{rid}",
            )
        elif typ == "aws:apigateway/stage:Stage":
            # API Gateway stages: arn:aws:apigateway:<region>::/restapis/<id>/stages/<name> (API Gateway ARNs).
            api = inputs.get("restApi")
            stage = inputs.get("stageName")
            state.update(
                arn=f"arn:aws:apigateway:{region}::/restapis/{api}/stages/{stage}",
                invokeUrl=f"https://{api}.execute-api.{region}.amazonaws.com/{stage}",
                executionArn=arn("execute-api", f"{api}/{stage}"),
            )
            rid = f"ags-{api}-{stage}"
        elif typ == "aws:apigateway/domainName:DomainName":
            # API Gateway CreateDomainName: regionalDomainName d-<id>.execute-api.<region>.amazonaws.com and the
            # region's API Gateway hosted zone id (AWS General Reference, API Gateway endpoints).
            state.update(
                regionalDomainName=f"d-{h}.execute-api.{region}.amazonaws.com",
                regionalZoneId=_APIGW_ZONE_IDS.get(region, _FALLBACK_ZONE_IDS["apigw"]),
                arn=f"arn:aws:apigateway:{region}::/domainnames/{inputs.get('domainName')}",
            )
            rid = str(inputs.get("domainName"))
        elif typ == "aws:apigateway/apiKey:ApiKey":
            # API Gateway CreateApiKey: the generated value is a 40-character string; here a stand-in.
            state.update(value=f"mock-key-{h}", arn=f"arn:aws:apigateway:{region}::/apikeys/{h}")
        elif typ == "aws:apigatewayv2/vpcLink:VpcLink":
            # API Gateway v2 CreateVpcLink: arn:aws:apigateway:<region>::/vpclinks/<id>.
            state.update(arn=f"arn:aws:apigateway:{region}::/vpclinks/{h[:6]}")
            rid = h[:6]
        # -- observability (components/observability.py) --------------------------------------------
        elif typ == "aws:sns/topic:Topic":
            # sns/topic.py docstring: `arn` is "a clone of `id`"; `name` is auto-named `<logical>-<7 hex>`.
            topic = inputs.get("name") or f"{name}-{h[:7]}"
            state.update(name=topic, arn=arn("sns", topic), owner=ACCOUNT)
            rid = state["arn"]
        elif typ == "aws:sns/topicPolicy:TopicPolicy":
            # sns/topic_policy.py docstring: the id is the topic ARN; `owner` is the topic owner's account.
            rid = str(inputs.get("arn"))
            state.update(owner=ACCOUNT)
        elif typ == "aws:sns/topicSubscription:TopicSubscription":
            # sns/topic_subscription.py: `arn` of the subscription (topic ARN + ":" + a UUID); e-mail ones stay
            # "pending confirmation" until confirmed (SNS API Subscribe: "pending confirmation").
            state.update(arn=f"{inputs.get('topic')}:{h}-{_digest(h, 's', n=4)}", pendingConfirmation=True)
            rid = state["arn"]
        elif typ == "aws:cloudwatch/dashboard:Dashboard":
            # cloudwatch/dashboard.py: `dashboard_arn`; the id is the dashboard name. Dashboards are global
            # (arn:aws:cloudwatch::<account>:dashboard/<name>, CloudWatch API reference PutDashboard).
            rid = str(inputs.get("dashboardName"))
            state.update(dashboardArn=f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{rid}")
        elif typ == "aws:amp/workspace:Workspace":
            # amp/workspace.py: `arn`, `prometheus_endpoint`; ids look like ws-<uuid> (AMP API CreateWorkspace).
            rid = f"ws-{h}-{_digest(h, 'w', n=4)}-4e4e-8f8f-{_digest(h, 'ws', n=12)}"
            state.update(
                arn=arn("aps", f"workspace/{rid}"),
                prometheusEndpoint=f"https://aps-workspaces.{region}.amazonaws.com/workspaces/{rid}/",
            )
        elif typ == "aws:amp/scraper:Scraper":
            # amp/scraper.py: `arn`, `role_arn`, `status`; ids look like s-<uuid> (AMP API ScraperDescription);
            # the role is the service-linked AWSServiceRoleForAmazonPrometheusScraper_<id>.
            rid = f"s-{h}-{_digest(h, 's', n=4)}-4f4f-9a9a-{_digest(h, 'sc', n=12)}"
            state.update(
                arn=arn("aps", f"scraper/{rid}"),
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/scraper.aps.amazonaws.com/"
                f"AWSServiceRoleForAmazonPrometheusScraper_{h[:7]}",
                status="ACTIVE",
            )
        elif typ == "aws:amp/ruleGroupNamespace:RuleGroupNamespace":
            # amp/rule_group_namespace.py: `arn` (arn:aws:aps:<region>:<account>:rulegroupsnamespace/<ws>/<name>).
            state.update(arn=arn("aps", f"rulegroupsnamespace/{inputs.get('workspaceId')}/{inputs.get('name')}"))
            rid = state["arn"]
        elif typ == "aws:amp/alertManagerDefinition:AlertManagerDefinition":
            # amp/alert_manager_definition.py: no computed output besides the id, which is the workspace id.
            rid = str(inputs.get("workspaceId"))
        elif typ.startswith("random:"):
            state.update(result=f"mock-{h}{_digest(h, 'r', n=24)}")
        elif typ == "eks:index:Cluster":
            return self._eks_cluster(name, inputs, region)
        elif typ == "eks:index:ManagedNodeGroup":
            # pulumi-eks ManagedNodeGroup: its output `nodeGroup` is the aws.eks.NodeGroup, not read by the program.
            state.update(nodeGroup=None)
        elif typ == "kubernetes:helm.sh/v3:Release":
            # pulumi-kubernetes helm/v3 Release: an unnamed release is "<logical>-<8 random characters>".
            release = str(inputs.get("name") or f"{name}-{_digest(h, 'rel')}")
            state.update(name=release, status={"name": release, "namespace": inputs.get("namespace") or "default"})
            rid = f"{inputs.get('namespace') or 'default'}/{release}"
        elif typ.startswith("kubernetes:"):
            meta = dict(inputs.get("metadata") or {})
            # pulumi-kubernetes auto-names an object "<logical>-<8 random characters>".
            meta.setdefault("name", f"{name}-{_digest(h, 'k8s')}")
            meta.setdefault("uid", f"{h}-{_digest(h, 'uid', n=4)}")
            state["metadata"] = meta
            ns = meta.get("namespace")
            rid = f"{ns}/{meta['name']}" if ns else meta["name"]
        elif "arn" not in state and module not in ("", "index"):
            state["arn"] = arn(module, f"{name}/{h}")
        return rid, state

    def _kubeconfig(self, cluster_name: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "aws",
            "clusters": [
                {
                    "name": "kubernetes",
                    "cluster": {
                        "server": f"https://{_digest(cluster_name, n=32).upper()}.gr7.eks.amazonaws.com",
                        "certificate-authority-data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t",
                    },
                }
            ],
            "contexts": [{"name": "aws", "context": {"cluster": "kubernetes", "user": "aws"}}],
            "users": [
                {
                    "name": "aws",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--output", "json"],
                        }
                    },
                }
            ],
        }

    def _eks_cluster(self, name: str, inputs: dict, region: str) -> tuple[str, dict]:
        """pulumi-eks's Cluster is a remote component: the mock stands in for what its provider returns."""
        h = _digest("eks", name, region)
        cluster_name = str(inputs.get("name") or f"{name}-eksCluster-{h[:7]}")
        # EKS's DescribeCluster `identity.oidc.issuer` is an https URL (AWS EKS API reference, OIDC).
        issuer = f"https://oidc.eks.{region}.amazonaws.com/id/{_digest(cluster_name, n=32).upper()}"
        issuer_host_path = issuer.removeprefix("https://")
        node_sg = f"sg-{_digest(h, 'nodes')}"
        cluster_sg = f"sg-{_digest(h, 'cluster')}"
        eks_state = {
            "name": cluster_name,
            "arn": f"arn:aws:eks:{region}:{ACCOUNT}:cluster/{cluster_name}",
            "endpoint": f"https://{_digest(cluster_name, n=32).upper()}.gr7.eks.amazonaws.com",
            "version": inputs.get("version"),
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{name}-eksRole",
            "identities": [{"oidcs": [{"issuer": issuer}]}],
            "vpcConfig": {
                "vpcId": inputs.get("vpcId"),
                "clusterSecurityGroupId": cluster_sg,
                "endpointPrivateAccess": inputs.get("endpointPrivateAccess"),
                "endpointPublicAccess": inputs.get("endpointPublicAccess"),
                "publicAccessCidrs": inputs.get("publicAccessCidrs", []),
                "subnetIds": inputs.get("privateSubnetIds", []),
            },
            "certificateAuthority": {"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"},
        }
        eks_ref = (
            self.monitor.add_resource("aws:eks/cluster:Cluster", f"{name}-eksCluster", cluster_name, eks_state)
            if self.monitor
            else None
        )
        kubeconfig = self._kubeconfig(cluster_name)
        state = dict(inputs)
        state.update(
            kubeconfig=kubeconfig,
            kubeconfigJson=json.dumps(kubeconfig),
            eksCluster=eks_ref,
            clusterSecurityGroupId=cluster_sg,
            nodeSecurityGroupId=node_sg,
            # IAM names an OIDC provider by its URL without the scheme (IAM API reference,
            # CreateOpenIDConnectProvider: "arn:aws:iam::<account>:oidc-provider/<host/path>").
            oidcProviderArn=f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer_host_path}",
            # pulumi-eks cluster.ts: `oidcProviderUrl` is `identities[0].oidcs[0].issuer`, the URL *with*
            # https:// (SDK docstring: "Issuer URL for the OpenID Connect identity provider").
            oidcProviderUrl=issuer,
            # pulumi-eks SDK docstring of `oidc_issuer`: "OIDC Provider URL without leading `https://`".
            oidcIssuer=issuer_host_path,
            core={
                "cluster": eks_ref,
                "vpcId": inputs.get("vpcId"),
                "subnetIds": inputs.get("privateSubnetIds", []),
                "privateSubnetIds": inputs.get("privateSubnetIds", []),
                "publicSubnetIds": inputs.get("publicSubnetIds", []),
                "endpoint": eks_state["endpoint"],
                "clusterSecurityGroupId": cluster_sg,
                "oidcProvider": None,
                "tags": inputs.get("tags", {}),
                "nodeGroupOptions": {},
                "provider": None,
                "kubeconfig": kubeconfig,
                "awsProvider": None,
                "clusterIamRole": None,
                "accessEntries": [],
                "storageClasses": {},
            },
        )
        return f"{cluster_name}", state


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that records every registration and is safe with remote components."""

    def __init__(self, mocks: PlatformMocks) -> None:
        super().__init__(mocks)
        mocks.monitor = self
        self.records: list[dict[str, Any]] = []
        self.stack_outputs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def add_resource(self, typ: str, name: str, id_: str, state: dict) -> dict:
        """Register a resource the mock invents (a remote component's child) and return a reference to it."""
        urn = self.make_urn("", typ, name)
        with self._lock:
            self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, id_, state)
        return {_SIG: _RESOURCE_SIG, "urn": urn, "id": id_, "packageVersion": ""}

    def RegisterResource(self, request):
        if request.remote and "aws" in request.providers:
            with self.mocks._lock:
                self.mocks._component_providers[request.name] = request.providers["aws"]
        inputs = _to_plain(request.object)
        if _has_resource_ref(inputs):
            request = _copy_with_object(request, _strip_refs(inputs))
        response = super().RegisterResource(request)
        urn = response.urn
        record = {
            "urn": urn,
            "type": request.type,
            "name": request.name,
            "custom": bool(request.custom),
            "remote": bool(request.remote),
            "parent": request.parent,
            "provider": request.provider,
            "providers": dict(request.providers),
            "dependencies": list(request.dependencies),
            "property_dependencies": {k: list(v.urns) for k, v in request.propertyDependencies.items()},
            "inputs": _strip_refs(inputs),
            "outputs": _strip_refs(_to_plain(response.object)) if response.object else {},
            "id": response.id,
            "ignore_changes": list(request.ignoreChanges),
            "protect": bool(request.protect),
            "retain_on_delete": bool(request.retainOnDelete),
            "additional_secret_outputs": list(request.additionalSecretOutputs),
        }
        with self._lock:
            self.records.append(record)
        return response

    def RegisterResourceOutputs(self, request):
        if request.urn.split("::")[2:3] == ["pulumi:pulumi:Stack"]:
            with self._lock:
                self.stack_outputs.update(_to_plain(request.outputs))
        return super().RegisterResourceOutputs(request)

    def Call(self, request):
        _ensure_event_loop()
        args = rpc.deserialize_properties(request.args)
        ret, failures = self.mocks.call(
            pulumi_mocks.MockCallArgs(token=request.tok, args=args, provider=request.provider)
        )
        ret_proto = _sync_await(rpc.serialize_properties(ret, {}))
        return resource_pb2.CallResponse(
            **{"return": ret_proto},
            failures=[provider_pb2.CheckFailure(property=p, reason=r) for p, r in (failures or [])],
        )


def _to_plain(struct: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(struct)


def _is_ref(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SIG) == _RESOURCE_SIG


def _has_resource_ref(value: Any) -> bool:
    if _is_ref(value):
        return True
    if isinstance(value, dict):
        return any(_has_resource_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_resource_ref(v) for v in value)
    return False


def _strip_refs(value: Any) -> Any:
    """Replace resource references by their id (custom resources) or URN (components)."""
    if _is_ref(value):
        return value.get("id") or value.get("urn")
    if isinstance(value, dict):
        return {k: _strip_refs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_refs(v) for v in value]
    return value


def _copy_with_object(request, obj: dict[str, Any]):
    copy = type(request)()
    copy.CopyFrom(request)
    copy.object.Clear()
    copy.object.update(obj)
    return copy
