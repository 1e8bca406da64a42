"""The EKS layer of one region: VPC over three zones, the cluster, managed node groups, add-ons.

- VPC: public subnets (load balancers, NAT) and private subnets (nodes, pods) in three zones;
  NAT per zone (survives a zone outage) or one NAT (cheaper) by config.
- Cluster (pulumi-eks): authentication mode API with access entries; private endpoint on; public
  endpoint off unless CIDRs are configured (never 0.0.0.0/0 by default); Kubernetes secrets
  encrypted with a KMS key; all control-plane log types; the OIDC provider for IRSA.
- Managed node groups in the private subnets only.
- Add-ons by Helm, each with an IRSA role scoped to what it does:
  * AWS Load Balancer Controller: only binds the program's own target groups to pods
    (TargetGroupBinding); it never creates load balancers, so its policy is the describe calls,
    target (de)registration and the security-group rules for the node group.
  * Cluster Autoscaler (not Karpenter): the platform runs EKS managed node groups, which Cluster
    Autoscaler scales through their auto-scaling groups (EKS tags them for auto-discovery), with a
    small documented policy. Karpenter would replace the node groups with its own NodePools and
    needs an interruption queue, EventBridge rules, a node role access entry and CRDs: more moving
    parts for no gain at this platform's scale.
  * metrics-server: feeds the HorizontalPodAutoscalers; it calls no AWS API, so it has no role.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from components.irsa import irsa_role
from components.specs import ChartVersions, NodeGroup

_ZONES = 3
_MIN_ZONES = 2  # EKS needs control-plane subnets in at least two zones
# Zone ids where EKS refuses control-plane subnets (UnsupportedAvailabilityZoneException): EKS user guide,
# "View Amazon EKS networking requirements for VPC and subnets", subnet requirements for clusters.
EKS_UNSUPPORTED_ZONE_IDS = ("use1-az3", "usw1-az2", "cac1-az3")
_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
_NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
)
_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
_KUBE_SYSTEM = "kube-system"


@dataclass(frozen=True)
class EksClusterArgs:
    """Inputs of the EKS layer of one region."""

    region: str
    """The AWS region (the provider comes through opts; this names IAM conditions and Helm values)."""
    node_groups: Sequence[NodeGroup]
    """Managed node groups, all in the private subnets."""
    charts: ChartVersions
    """Helm chart versions of the add-ons."""
    kubernetes_version: str = "1.34"
    """EKS Kubernetes version."""
    vpc_cidr: str = "10.0.0.0/16"
    """CIDR of the VPC; split into three private and three public subnets."""
    nat_gateways: str = "perZone"
    """perZone or single."""
    public_access_cidrs: Sequence[str] = ()
    """CIDRs allowed to the public API endpoint; must include where `pulumi up` runs (it applies the
    Kubernetes objects). Empty only together with `endpoint_private_only`."""
    endpoint_private_only: bool = False
    """Turn the public API endpoint off: only for deployers inside the VPC (over a VPN or peering)."""
    admin_role_arns: Sequence[str] = ()
    """IAM roles given cluster-admin through access entries."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every AWS resource."""


class EksCluster(pulumi.ComponentResource):
    """A private EKS cluster with its VPC, node groups and add-ons."""

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ratelimited:index:EksCluster", name, None, opts)
        _validate(args)
        self._name = name
        self._args = args
        self._tags = dict(args.tags)
        self._create_vpc()
        # pulumi-eks's Cluster and ManagedNodeGroup are remote components: the SDK sends them the providers map
        # this component inherited (pulumi Resource.__init__ merges the parent's into opts.providers), so they
        # and their children use the region's AWS provider without passing it again.
        self._create_cluster()
        self._create_node_groups()
        self._create_addons()

        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "clusterName": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "oidcProviderArn": self.oidc_provider_arn,
            }
        )

    # -- network ------------------------------------------------------------------------------
    def _create_vpc(self) -> None:
        args, name = self._args, self._name
        zones = eks_zones(self)
        private_cidrs, public_cidrs = subnet_plan(args.vpc_cidr)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={**self._tags, "Name": f"{name}-vpc"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=self._tags, opts=pulumi.ResourceOptions(parent=vpc)
        )
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={**self._tags, "Name": f"{name}-public"},
            opts=pulumi.ResourceOptions(parent=vpc),
        )
        public, private, nats, private_route_tables = [], [], [], []
        for i, zone in enumerate(zones):
            subnet = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=vpc.id,
                cidr_block=public_cidrs[i],
                availability_zone=zone,
                map_public_ip_on_launch=False,
                # Lets load balancers (and the AWS Load Balancer Controller) find the public subnets.
                tags={**self._tags, "Name": f"{name}-public-{zone}", "kubernetes.io/role/elb": "1"},
                opts=pulumi.ResourceOptions(parent=vpc),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}-rta",
                subnet_id=subnet.id,
                route_table_id=public_rt.id,
                opts=pulumi.ResourceOptions(parent=subnet),
            )
            public.append(subnet)
            if args.nat_gateways == "perZone" or i == 0:
                eip = aws.ec2.Eip(
                    f"{name}-nat-{i}-eip", domain="vpc", tags=self._tags, opts=pulumi.ResourceOptions(parent=subnet)
                )
                nats.append(
                    aws.ec2.NatGateway(
                        f"{name}-nat-{i}",
                        subnet_id=subnet.id,
                        allocation_id=eip.id,
                        tags={**self._tags, "Name": f"{name}-nat-{zone}"},
                        opts=pulumi.ResourceOptions(parent=subnet, depends_on=[igw]),
                    )
                )
        for i, zone in enumerate(zones):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                cidr_block=private_cidrs[i],
                availability_zone=zone,
                tags={**self._tags, "Name": f"{name}-private-{zone}", "kubernetes.io/role/internal-elb": "1"},
                opts=pulumi.ResourceOptions(parent=vpc),
            )
            nat = nats[i] if args.nat_gateways == "perZone" else nats[0]
            rt = aws.ec2.RouteTable(
                f"{name}-private-{i}-rt",
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags={**self._tags, "Name": f"{name}-private-{zone}"},
                opts=pulumi.ResourceOptions(parent=subnet),
            )
            private_route_tables.append(rt)
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}-rta",
                subnet_id=subnet.id,
                route_table_id=rt.id,
                opts=pulumi.ResourceOptions(parent=subnet),
            )
            private.append(subnet)
        # DynamoDB traffic (the limiter's hot path, the services' tables) stays on the AWS network
        # instead of crossing NAT, which would bill it per GB and add a hop. Gateway endpoints are free.
        aws.ec2.VpcEndpoint(
            f"{name}-dynamodb-endpoint",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.dynamodb",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_route_tables],
            tags={**self._tags, "Name": f"{name}-dynamodb"},
            opts=pulumi.ResourceOptions(parent=vpc),
        )
        self.vpc_id: pulumi.Output[str] = vpc.id
        self.vpc_cidr: str = args.vpc_cidr
        self.public_subnet_ids: list[pulumi.Output[str]] = [s.id for s in public]
        self.private_subnet_ids: list[pulumi.Output[str]] = [s.id for s in private]

    # -- control plane ------------------------------------------------------------------------
    def _create_cluster(self) -> None:
        args, name = self._args, self._name
        secrets_key = aws.kms.Key(
            f"{name}-secrets-key",
            description=f"Encrypts the Kubernetes secrets of {name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        public = bool(args.public_access_cidrs)
        _refuse_creator_as_admin(args.admin_role_arns, self)
        access_entries = {
            f"admin-{i}": eks.AccessEntryArgs(
                principal_arn=arn,
                access_policies={
                    "cluster-admin": eks.AccessPolicyAssociationArgs(
                        policy_arn=_ADMIN_POLICY,
                        access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    )
                },
            )
            for i, arn in enumerate(args.admin_role_arns)
        }
        self._cluster = eks.Cluster(
            f"{name}-cluster",
            version=args.kubernetes_version,
            vpc_id=self.vpc_id,
            private_subnet_ids=self.private_subnet_ids,
            public_subnet_ids=self.public_subnet_ids,
            node_associate_public_ip_address=False,
            endpoint_private_access=True,
            endpoint_public_access=public,
            public_access_cidrs=list(args.public_access_cidrs) if public else None,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries=access_entries or None,
            encryption_config_key_arn=secrets_key.arn,
            enabled_cluster_log_types=_LOG_TYPES,
            create_oidc_provider=True,
            skip_default_node_group=True,
            # The VPC CNI's network-policy agent enforces the mesh layer's NetworkPolicies.
            vpc_cni_options=eks.VpcCniOptionsArgs(enable_network_policy=True),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        cluster = self._cluster
        self.cluster_name: pulumi.Output[str] = cluster.eks_cluster.name
        self.cluster_arn: pulumi.Output[str] = cluster.eks_cluster.arn
        self.kubernetes_version: str = args.kubernetes_version
        # The kubeconfig holds no credential (it runs `aws eks get-token`), but it names the
        # endpoint and CA of a private cluster: keep it a secret in state and outputs.
        self.kubeconfig: pulumi.Output[str] = pulumi.Output.secret(cluster.kubeconfig_json)
        self.oidc_provider_arn: pulumi.Output[str] = cluster.oidc_provider_arn
        # Without "https://": what IRSA condition keys are built from (pulumi-eks SDK docstring).
        self.oidc_issuer: pulumi.Output[str] = cluster.oidc_issuer
        self.node_security_group_id: pulumi.Output[str] = cluster.node_security_group_id
        self.cluster_security_group_id: pulumi.Output[str] = cluster.cluster_security_group_id
        self.k8s_provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_node_groups(self) -> None:
        name = self._name
        role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
                    ],
                }
            ),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-role-{arn.rsplit('/', 1)[1]}",
                role=role.name,
                policy_arn=arn,
                opts=pulumi.ResourceOptions(parent=role),
            )
            for arn in _NODE_POLICIES
        ]
        self.node_groups: list[eks.ManagedNodeGroup] = []
        for group in self._args.node_groups:
            self.node_groups.append(
                eks.ManagedNodeGroup(
                    f"{name}-ng-{group.name}",
                    cluster=self._cluster,
                    node_role_arn=role.arn,
                    subnet_ids=self.private_subnet_ids,
                    instance_types=list(group.instance_types),
                    capacity_type=group.capacity_type,
                    disk_size=group.disk_size_gib,
                    scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                        min_size=group.min_size,
                        desired_size=group.desired_size,
                        max_size=group.max_size,
                    ),
                    # Cluster Autoscaler owns the desired size once the group exists.
                    ignore_scaling_changes=True,
                    labels={"ratelimited.io/node-group": group.name},
                    tags=self._tags,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
                )
            )

    # -- add-ons ------------------------------------------------------------------------------
    def _create_addons(self) -> None:
        args, name = self._args, self._name
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.k8s_provider, depends_on=self.node_groups)
        # Release names are explicit: an auto-name "<region>-eks-<chart>-<8 characters>" passes Helm's limit of
        # 53 in eu-west-1 but not in ap-southeast-1. One release per chart and cluster, so no collision.
        common = {
            "oidc_provider_arn": self.oidc_provider_arn,
            "oidc_issuer": self.oidc_issuer,
            "tags": self._tags,
            "parent": self,
        }

        lbc_role = irsa_role(
            f"{name}-lbc",
            namespace=_KUBE_SYSTEM,
            service_account="aws-load-balancer-controller",
            policy_json=load_balancer_controller_policy(args.region, self.vpc_id),
            **common,
        )
        self.load_balancer_controller = k8s.helm.v3.Release(
            f"{name}-aws-load-balancer-controller",
            name="aws-load-balancer-controller",
            chart="aws-load-balancer-controller",
            version=args.charts.load_balancer_controller,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo="https://aws.github.io/eks-charts"),
            namespace=_KUBE_SYSTEM,
            values={
                "clusterName": self.cluster_name,
                # Explicit: the controller must not depend on IMDS, which pods cannot reach (hop limit).
                "region": args.region,
                "vpcId": self.vpc_id,
                "replicaCount": 2,
                "serviceAccount": {
                    "create": True,
                    "name": "aws-load-balancer-controller",
                    "annotations": {"eks.amazonaws.com/role-arn": lbc_role.arn},
                },
                # The program owns its load balancers; Services of type LoadBalancer stay untouched.
                "enableServiceMutatorWebhook": False,
                "podDisruptionBudget": {"maxUnavailable": 1},
            },
            opts=k8s_opts,
        )

        ca_role = irsa_role(
            f"{name}-cluster-autoscaler",
            namespace=_KUBE_SYSTEM,
            service_account="cluster-autoscaler",
            policy_json=self.cluster_name.apply(cluster_autoscaler_policy),
            **common,
        )
        self.cluster_autoscaler = k8s.helm.v3.Release(
            f"{name}-cluster-autoscaler",
            name="cluster-autoscaler",
            chart="cluster-autoscaler",
            version=args.charts.cluster_autoscaler,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo="https://kubernetes.github.io/autoscaler"),
            namespace=_KUBE_SYSTEM,
            values={
                "autoDiscovery": {"clusterName": self.cluster_name},
                "awsRegion": args.region,
                "rbac": {
                    "serviceAccount": {
                        "create": True,
                        "name": "cluster-autoscaler",
                        "annotations": {"eks.amazonaws.com/role-arn": ca_role.arn},
                    }
                },
                "extraArgs": {
                    "balance-similar-node-groups": True,
                    "skip-nodes-with-system-pods": False,
                    "expander": "least-waste",
                },
            },
            opts=k8s_opts,
        )

        self.metrics_server = k8s.helm.v3.Release(
            f"{name}-metrics-server",
            name="metrics-server",
            chart="metrics-server",
            version=args.charts.metrics_server,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo="https://kubernetes-sigs.github.io/metrics-server"),
            namespace=_KUBE_SYSTEM,
            values={"replicas": 2, "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1}},
            opts=k8s_opts,
        )


def eks_zones(parent: pulumi.Resource) -> list[str]:
    """Up to three zones of the region where EKS accepts control-plane subnets.

    Not the first three by position: the list can start with a zone EKS refuses (its zone ids differ
    per account, so `us-east-1a` may be `use1-az3`), and `state=available` also returns the Local and
    Wavelength Zones the account opted into, where EKS control planes and NAT gateways cannot go.
    """
    result = aws.get_availability_zones(
        state="available",
        exclude_zone_ids=list(EKS_UNSUPPORTED_ZONE_IDS),
        filters=[
            aws.GetAvailabilityZonesFilterArgs(name="zone-type", values=["availability-zone"]),
            aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"]),
        ],
        opts=pulumi.InvokeOptions(parent=parent),
    )
    zones = sorted(result.names)[:_ZONES]
    if len(zones) < _MIN_ZONES:
        raise ValueError(
            f"EKS needs subnets in at least {_MIN_ZONES} availability zones, but this region offers "
            f"{len(zones)} that EKS supports ({', '.join(zones) or 'none'}); choose another region."
        )
    return zones


def _refuse_creator_as_admin(admin_role_arns: Sequence[str], parent: pulumi.Resource) -> None:
    """pulumi-eks creates the cluster with bootstrapClusterCreatorAdminPermissions, so the role running
    `pulumi up` is already a cluster admin; an access entry for it again makes EKS answer 409
    (ResourceInUseException) halfway through the deployment. The caller is known at preview, so say it then.
    """
    if not admin_role_arns:
        return
    caller = aws.get_caller_identity(opts=pulumi.InvokeOptions(parent=parent)).arn
    creator = role_of_caller(caller)
    for arn in admin_role_arns:
        if creator is not None and _role_key(arn) == creator:
            raise ValueError(
                f"clusterAdminRoleArns lists {arn}, the role that runs this deployment ({caller}). EKS already "
                "makes the cluster creator an admin (pulumi-eks bootstrapClusterCreatorAdminPermissions), and a "
                "second access entry for it fails with 409 ResourceInUseException: remove it from the list."
            )


def role_of_caller(caller_arn: str) -> tuple[str, str] | None:
    """(account, role name) of an STS caller ARN `arn:<partition>:sts::<account>:assumed-role/<role>/<session>`.

    The assumed-role ARN drops the role's path (STS API reference, GetCallerIdentity), so roles are
    compared by account and name. An IAM user or root caller is no role: None.
    """
    parts = caller_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        return parts[4], parts[5].split("/")[1]
    return None


def _role_key(role_arn: str) -> tuple[str, str]:
    parts = role_arn.split(":", 5)
    return parts[4], parts[5].rsplit("/", 1)[-1]


def subnet_plan(vpc_cidr: str) -> tuple[list[str], list[str]]:
    """Three large private subnets (pods take VPC addresses) and three small public ones.

    The VPC is cut in quarters: the first three are the private subnets; the last quarter is cut in
    four again for the public subnets (load balancers and NAT only).
    """
    net = ipaddress.ip_network(vpc_cidr)
    quarters = list(net.subnets(prefixlen_diff=2))
    public = list(quarters[3].subnets(prefixlen_diff=2))[:_ZONES]
    return [str(q) for q in quarters[:_ZONES]], [str(p) for p in public]


def load_balancer_controller_policy(region: str, vpc_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """What the controller needs to bind pods to the program's target groups, and nothing more.

    It reads load balancers and the network, (de)registers targets, and opens the pods' security group
    to the load balancers (TargetGroupBinding `networking`). Which group that is (the EKS-made cluster
    group that managed nodes use, or another group tagged for the cluster) is decided by the controller
    at run time, so the rule changes are allowed on the security groups of this cluster's VPC only. It
    cannot create or delete load balancers, listeners or target groups: the program owns those.
    """
    describe = [
        "ec2:DescribeAvailabilityZones",
        "ec2:DescribeInstances",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
        "ec2:DescribeTags",
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetGroupAttributes",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeTags",
    ]
    return pulumi.Output.from_input(vpc_id).apply(
        lambda vpc: json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "Describe", "Effect": "Allow", "Resource": "*", "Action": describe},
                    {
                        "Sid": "Targets",
                        "Effect": "Allow",
                        "Action": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
                        "Resource": f"arn:aws:elasticloadbalancing:{region}:*:targetgroup/*/*",
                    },
                    {
                        "Sid": "PodSecurityGroupRules",
                        "Effect": "Allow",
                        "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
                        "Resource": f"arn:aws:ec2:{region}:*:security-group/*",
                        "Condition": {"ArnLike": {"ec2:Vpc": f"arn:aws:ec2:{region}:*:vpc/{vpc}"}},
                    },
                ],
            }
        )
    )


def cluster_autoscaler_policy(cluster_name: str) -> str:
    """The policy from the cluster-autoscaler chart's README: scaling only node groups tagged for this cluster."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Describe",
                    "Effect": "Allow",
                    "Resource": "*",
                    "Action": [
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeAutoScalingInstances",
                        "autoscaling:DescribeLaunchConfigurations",
                        "autoscaling:DescribeScalingActivities",
                        "autoscaling:DescribeTags",
                        "ec2:DescribeImages",
                        "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplateVersions",
                        "ec2:GetInstanceTypesFromInstanceRequirements",
                        "eks:DescribeNodegroup",
                    ],
                },
                {
                    "Sid": "ScaleOwnGroups",
                    "Effect": "Allow",
                    "Resource": "*",
                    "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
                    "Condition": {
                        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}
                    },
                },
            ],
        }
    )


def _validate(args: EksClusterArgs) -> None:
    if args.nat_gateways not in ("perZone", "single"):
        raise ValueError(f"EksClusterArgs.nat_gateways must be 'perZone' or 'single', not {args.nat_gateways!r}.")
    if not args.node_groups:
        raise ValueError("EksClusterArgs.node_groups must list at least one node group.")
    if not args.public_access_cidrs and not args.endpoint_private_only:
        raise ValueError(
            "EksClusterArgs.public_access_cidrs is empty, which makes the API endpoint private only, but the "
            "Kubernetes objects are applied from where `pulumi up` runs: list that machine's CIDR, or set "
            "endpoint_private_only=True if it runs inside the VPC."
        )
    if args.public_access_cidrs and args.endpoint_private_only:
        raise ValueError("EksClusterArgs.endpoint_private_only contradicts the public_access_cidrs it is given.")
    for cidr in args.public_access_cidrs:
        if ipaddress.ip_network(cidr, strict=False).prefixlen == 0:
            raise ValueError("EksClusterArgs.public_access_cidrs must not contain 0.0.0.0/0.")
    net = ipaddress.ip_network(args.vpc_cidr)
    if not 16 <= net.prefixlen <= 20:
        raise ValueError(f"EksClusterArgs.vpc_cidr must be a /16 to /20 network, not {args.vpc_cidr}.")
