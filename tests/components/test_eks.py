"""The EKS layer: private endpoint, encryption, node groups in private subnets, add-ons with scoped IRSA."""

from __future__ import annotations

import ipaddress
import json

import pytest

from tools.mocked_run import MockedRunError, run_stack
from tools.records import RecordedStack, unsecret

REGION = "eu-west-1"
L = f"{REGION}-eks"


@pytest.fixture(scope="module")
def public_admin_stack() -> RecordedStack:
    """dev with a public endpoint limited to one range, and an admin role."""
    return RecordedStack(
        run_stack(
            "dev",
            config_overrides={
                "clusterPublicAccessCidrs": ["203.0.113.0/24"],
                "clusterAdminRoleArns": ["arn:aws:iam::123456789012:role/platform-admin"],
            },
        )
    )


def _cluster(stack):
    return stack.named(f"{L}-cluster")["inputs"]


def test_sample_stacks_reach_the_endpoint_from_their_configured_range_only(dev_stack, prod_stack):
    # `pulumi up` applies the Kubernetes objects from outside the VPC: a private-only endpoint would time out.
    for stack, cidr in ((dev_stack, "203.0.113.0/24"), (prod_stack, "198.51.100.0/24")):
        for cluster in stack.of_type("eks:index:Cluster"):
            assert cluster["inputs"]["endpointPrivateAccess"] is True
            assert cluster["inputs"]["endpointPublicAccess"] is True
            assert cluster["inputs"]["publicAccessCidrs"] == [cidr]


def test_a_private_only_endpoint_is_an_explicit_choice():
    stack = RecordedStack(
        run_stack("dev", config_overrides={"clusterPublicAccessCidrs": [], "clusterEndpointPrivateOnly": True})
    )
    cluster = _cluster(stack)
    assert cluster["endpointPrivateAccess"] is True and cluster["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in cluster
    with pytest.raises(MockedRunError, match="'clusterPublicAccessCidrs' is empty, so the EKS API endpoint"):
        run_stack("dev", config_overrides={"clusterPublicAccessCidrs": []})


def test_zones_are_ones_eks_supports_never_local_zones(prod_stack):
    # The mocked us-east-1 account maps us-east-1a to use1-az3 (EKS refuses it) and has opted into a Local
    # Zone (tools/mocks.py): neither may carry a subnet.
    from tools.mocks import availability_zones

    for region in ("eu-west-1", "us-east-1"):
        listed = availability_zones(region, {})
        zone_id = dict(zip(listed["names"], listed["zoneIds"], strict=True))
        subnets = prod_stack.of_type("aws:ec2/subnet:Subnet", under=f"{region}-eks")
        zones = {s["inputs"]["availabilityZone"] for s in subnets}
        assert len(zones) == 3, zones
        assert not {zone_id[z] for z in zones} & {"use1-az3", "usw1-az2", "cac1-az3"}
        assert all(z[-1].isalpha() and z[:-1] == region for z in zones), zones  # no Local Zone


def test_a_region_with_two_zones_eks_supports_gets_two():
    # us-west-1 offers an account three zones, one of which EKS refuses (usw1-az2, "us-west-1a" in the mock).
    stack = RecordedStack(run_stack("dev", config_overrides={"regions": ["us-west-1"]}))
    zones = {s["inputs"]["availabilityZone"] for s in stack.of_type("aws:ec2/subnet:Subnet")}
    assert zones == {"us-west-1b", "us-west-1c"}


def test_the_deploying_role_cannot_be_listed_as_admin_again(monkeypatch):
    # pulumi-eks already makes the creator an admin; a second access entry would fail with 409 at `up`.
    monkeypatch.setenv("RATELIMITED_MOCK_CALLER_ARN", "arn:aws:sts::123456789012:assumed-role/platform-admin/ci")
    with pytest.raises(MockedRunError, match=r"clusterAdminRoleArns lists .*platform-admin, the role that runs"):
        run_stack(
            "dev", config_overrides={"clusterAdminRoleArns": ["arn:aws:iam::123456789012:role/team/platform-admin"]}
        )
    # another account's role of the same name is a different principal
    stack = RecordedStack(
        run_stack("dev", config_overrides={"clusterAdminRoleArns": ["arn:aws:iam::210987654321:role/platform-admin"]})
    )
    assert _cluster(stack)["accessEntries"]["admin-0"]["principalArn"].startswith("arn:aws:iam::210987654321:")


def test_role_of_caller_reads_sts_arns():
    from components.eks import role_of_caller

    assert role_of_caller("arn:aws:sts::123456789012:assumed-role/deployer/session-1") == ("123456789012", "deployer")
    assert role_of_caller("arn:aws:iam::123456789012:user/alice") is None
    assert role_of_caller("arn:aws:iam::123456789012:root") is None


def test_dynamodb_traffic_bypasses_nat_through_a_gateway_endpoint(dev_stack, prod_stack):
    for stack in (dev_stack, prod_stack):
        for region in stack.exports()["regions"]:
            (endpoint,) = stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint", under=f"{region}-eks")
            inputs = endpoint["inputs"]
            assert inputs["serviceName"] == f"com.amazonaws.{region}.dynamodb"
            assert inputs["vpcEndpointType"] == "Gateway"
            assert inputs["vpcId"] == stack.named(f"{region}-eks-vpc")["id"]
            private_tables = [
                rt["id"]
                for rt in stack.of_type("aws:ec2/routeTable:RouteTable", under=f"{region}-eks")
                if "-private-" in rt["name"]
            ]
            assert len(private_tables) == 3 and sorted(inputs["routeTableIds"]) == sorted(private_tables)


def test_public_endpoint_only_for_configured_ranges(public_admin_stack):
    cluster = _cluster(public_admin_stack)
    assert cluster["endpointPublicAccess"] is True
    assert cluster["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_access_entries_use_authentication_mode_api(dev_stack, public_admin_stack):
    assert _cluster(dev_stack)["authenticationMode"] == "API"
    entries = _cluster(public_admin_stack)["accessEntries"]
    assert entries == {
        "admin-0": {
            "principalArn": "arn:aws:iam::123456789012:role/platform-admin",
            "accessPolicies": {
                "cluster-admin": {
                    "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                    "accessScope": {"type": "cluster"},
                }
            },
        }
    }


def test_secrets_encrypted_logs_on_oidc_on(dev_stack):
    cluster = _cluster(dev_stack)
    key = dev_stack.named(f"{L}-secrets-key")
    assert cluster["encryptionConfigKeyArn"] == key["outputs"]["arn"]
    assert key["inputs"]["enableKeyRotation"] is True
    # A key scheduled for deletion by mistake can be cancelled for 30 days, the longest AWS allows (7-30):
    # once it is gone, so are the cluster's secrets.
    assert key["inputs"]["deletionWindowInDays"] == 30
    assert sorted(cluster["enabledClusterLogTypes"]) == [
        "api",
        "audit",
        "authenticator",
        "controllerManager",
        "scheduler",
    ]
    assert cluster["createOidcProvider"] is True and cluster["skipDefaultNodeGroup"] is True
    assert cluster["version"] == "1.34"


def _subnets(stack, kind):
    return [s for s in stack.of_type("aws:ec2/subnet:Subnet", under=L) if f"-{kind}-" in s["name"]]


def test_three_zones_of_public_and_private_subnets_tagged_for_load_balancers(dev_stack):
    vpc = dev_stack.named(f"{L}-vpc")
    network = ipaddress.ip_network(vpc["inputs"]["cidrBlock"])
    public, private = _subnets(dev_stack, "public"), _subnets(dev_stack, "private")
    assert len(public) == len(private) == 3
    for group, tag in ((public, "kubernetes.io/role/elb"), (private, "kubernetes.io/role/internal-elb")):
        assert len({s["inputs"]["availabilityZone"] for s in group}) == 3
        assert all(s["inputs"]["tags"][tag] == "1" for s in group)
    cidrs = [ipaddress.ip_network(s["inputs"]["cidrBlock"]) for s in public + private]
    assert all(c.subnet_of(network) for c in cidrs)
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1 :])
    assert all(s["inputs"]["mapPublicIpOnLaunch"] is False for s in public)
    # The private endpoint and IRSA resolve through the VPC's DNS: both settings are required by EKS.
    assert (vpc["inputs"]["enableDnsHostnames"], vpc["inputs"]["enableDnsSupport"]) == (True, True)


@pytest.mark.parametrize(
    ("vpc", "private", "public"),
    [
        (
            "10.0.0.0/16",
            ["10.0.0.0/18", "10.0.64.0/18", "10.0.128.0/18"],
            ["10.0.192.0/20", "10.0.208.0/20", "10.0.224.0/20"],
        ),
        (
            "10.20.0.0/20",
            ["10.20.0.0/22", "10.20.4.0/22", "10.20.8.0/22"],
            ["10.20.12.0/24", "10.20.13.0/24", "10.20.14.0/24"],
        ),
    ],
)
def test_subnet_plan_gives_pods_three_quarters_and_load_balancers_a_sixteenth_each(vpc, private, public):
    from components.eks import subnet_plan

    assert subnet_plan(vpc) == (private, public)


def test_node_groups_run_in_the_private_subnets_only(dev_stack, prod_stack):
    for stack, groups in ((dev_stack, ["general"]), (prod_stack, ["system", "workloads"])):
        private_ids = sorted(s["id"] for s in _subnets(stack, "private"))
        public_ids = {s["id"] for s in _subnets(stack, "public")}
        for group in groups:
            ng = stack.named(f"{L}-ng-{group}")["inputs"]
            assert sorted(ng["subnetIds"]) == private_ids
            assert not public_ids & set(ng["subnetIds"])
            assert ng["ignoreScalingChanges"] is True
        # No node gets a public address, even if a group were ever put in a public subnet.
        assert stack.named(f"{L}-cluster")["inputs"]["nodeAssociatePublicIpAddress"] is False


def test_node_group_sizes_come_from_config(prod_stack):
    ng = prod_stack.named(f"{L}-ng-workloads")["inputs"]
    assert ng["scalingConfig"] == {"minSize": 3, "desiredSize": 6, "maxSize": 30}
    assert ng["instanceTypes"] == ["m7i.xlarge", "m6i.xlarge", "m7a.xlarge"]
    assert ng["capacityType"] == "ON_DEMAND"


def _nat_routes(stack):
    nats = {n["id"]: n for n in stack.of_type("aws:ec2/natGateway:NatGateway", under=L)}
    routes = {}
    for rt in stack.of_type("aws:ec2/routeTable:RouteTable", under=L):
        if "-private-" in rt["name"]:
            (route,) = rt["inputs"]["routes"]
            assert route["cidrBlock"] == "0.0.0.0/0"
            routes[rt["name"]] = route["natGatewayId"]
    return nats, routes


def test_single_nat_in_dev_and_one_per_zone_in_prod(dev_stack, prod_stack):
    nats, routes = _nat_routes(dev_stack)
    assert len(nats) == 1 and set(routes.values()) == set(nats) and len(routes) == 3
    nats, routes = _nat_routes(prod_stack)
    assert len(nats) == 3 and set(routes.values()) == set(nats)
    # each private route table goes through the NAT of its own zone
    subnet_zone = {s["id"]: s["inputs"]["availabilityZone"] for s in prod_stack.of_type("aws:ec2/subnet:Subnet")}
    for rt_name, nat_id in routes.items():
        index = rt_name.split("-private-")[1].split("-")[0]
        private = prod_stack.named(f"{L}-private-{index}")
        assert subnet_zone[nats[nat_id]["inputs"]["subnetId"]] == private["inputs"]["availabilityZone"]


def _trust(stack, role_name):
    role = stack.named(role_name)
    return json.loads(role["inputs"]["assumeRolePolicy"])["Statement"][0]


def test_addons_are_helm_releases_on_the_cluster_provider(dev_stack):
    releases = {r["inputs"]["chart"]: r for r in dev_stack.of_type("kubernetes:helm.sh/v3:Release", under=L)}
    assert set(releases) == {"aws-load-balancer-controller", "cluster-autoscaler", "metrics-server"}
    for release in releases.values():
        assert release["provider"].split("::")[3] == f"{L}-k8s"
        assert release["inputs"]["namespace"] == "kube-system"
    vpc_id = dev_stack.named(f"{L}-vpc")["id"]
    lbc = releases["aws-load-balancer-controller"]["inputs"]["values"]
    assert lbc["region"] == REGION and lbc["vpcId"] == vpc_id
    assert lbc["clusterName"] == dev_stack.named(f"{L}-cluster")["outputs"]["eksCluster"]
    # Drains take at most one controller replica at a time: its webhooks never all go away.
    assert lbc["podDisruptionBudget"]["maxUnavailable"] < lbc["replicaCount"]
    # Server-side apply: fields the controllers write to these objects (HPA replicas, LBC bindings) are not
    # reverted by the next update, and conflicts are reported instead of overwritten.
    provider = dev_stack.named(f"{L}-k8s")
    assert provider["inputs"]["enableServerSideApply"] == "true"  # provider inputs are strings
    # The chart must create the service account the IRSA role trusts (it is not made elsewhere).
    assert lbc["serviceAccount"]["create"] is True
    assert lbc["serviceAccount"]["name"] == "aws-load-balancer-controller"
    autoscaler = releases["cluster-autoscaler"]["inputs"]["values"]["rbac"]["serviceAccount"]
    assert (autoscaler["create"], autoscaler["name"]) == (True, "cluster-autoscaler")
    role = dev_stack.named(f"{L}-cluster-autoscaler-role")["outputs"]["arn"]
    assert autoscaler["annotations"] == {"eks.amazonaws.com/role-arn": role}


def test_irsa_roles_are_bound_to_one_service_account_each(dev_stack):
    cluster = dev_stack.named(f"{L}-cluster")["outputs"]
    # IAM refuses condition keys with a scheme; pulumi-eks's oidcProviderUrl carries one, oidcIssuer does not.
    oidc = cluster["oidcIssuer"]
    assert cluster["oidcProviderUrl"] == f"https://{oidc}"
    for role, sa in (
        (f"{L}-lbc-role", "aws-load-balancer-controller"),
        (f"{L}-cluster-autoscaler-role", "cluster-autoscaler"),
    ):
        trust = _trust(dev_stack, role)
        assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert trust["Principal"] == {"Federated": cluster["oidcProviderArn"]}
        assert not any(key.startswith("https://") for key in trust["Condition"]["StringEquals"])
        assert trust["Condition"]["StringEquals"] == {
            f"{oidc}:sub": f"system:serviceaccount:kube-system:{sa}",
            f"{oidc}:aud": "sts.amazonaws.com",
        }


def test_load_balancer_controller_cannot_create_load_balancers(dev_stack):
    policy = json.loads(dev_stack.named(f"{L}-lbc-policy")["inputs"]["policy"])
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert "elasticloadbalancing:RegisterTargets" in actions
    assert not {a for a in actions if a.split(":")[1].startswith(("Create", "Delete", "Modify"))}
    vpc_id = dev_stack.named(f"{L}-vpc")["id"]
    sg_statement = next(s for s in policy["Statement"] if "ec2:AuthorizeSecurityGroupIngress" in s["Action"])
    assert sg_statement["Resource"] == f"arn:aws:ec2:{REGION}:*:security-group/*"
    assert sg_statement["Condition"] == {"ArnLike": {"ec2:Vpc": f"arn:aws:ec2:{REGION}:*:vpc/{vpc_id}"}}


def test_network_policies_are_enforced(dev_stack):
    assert _cluster(dev_stack)["vpcCniOptions"]["enableNetworkPolicy"] is True


def test_cluster_autoscaler_scales_only_this_clusters_groups(dev_stack):
    policy = json.loads(dev_stack.named(f"{L}-cluster-autoscaler-policy")["inputs"]["policy"])
    scale = next(s for s in policy["Statement"] if "autoscaling:SetDesiredCapacity" in s["Action"])
    ((tag, value),) = scale["Condition"]["StringEquals"].items()
    assert tag.startswith("aws:ResourceTag/k8s.io/cluster-autoscaler/") and value == "owned"
    assert tag.endswith("/" + dev_stack.named(f"{L}-cluster")["outputs"]["eksCluster"])


def test_cluster_autoscaler_can_empty_nodes_that_run_kube_system_pods(dev_stack):
    """Almost every node runs some kube-system pod (CoreDNS, metrics-server, the controllers); with the default
    (skip them) those nodes would never be scaled in. Their pods are evicted and rescheduled like any other,
    within their disruption budgets (the load balancer controller's keeps a replica)."""
    args = next(
        r for r in dev_stack.of_type("kubernetes:helm.sh/v3:Release") if r["inputs"]["chart"] == "cluster-autoscaler"
    )
    extra = args["inputs"]["values"]["extraArgs"]
    assert extra["skip-nodes-with-system-pods"] is False and extra["balance-similar-node-groups"] is True


def test_kubeconfig_is_a_secret(dev_stack):
    provider = dev_stack.named(f"{L}-k8s")
    kubeconfig = provider["inputs"]["kubeconfig"]
    assert unsecret(kubeconfig) != kubeconfig  # wire-form secret
    assert json.loads(unsecret(kubeconfig))["users"][0]["user"]["exec"]["command"] == "aws"
    assert dev_stack.exports()["kubeconfigs"] == {"secret": True}
    assert "kubeconfig" not in dev_stack.exports()["regional"]["eu-west-1"]


def test_bad_args_are_refused_by_name():
    from components.eks import EksClusterArgs, _validate
    from components.specs import ChartVersions, NodeGroup

    charts = ChartVersions("1", "1", "1", "1")
    group = NodeGroup("a", ("t3.large",), 1, 1, 1, "ON_DEMAND", 20)
    with pytest.raises(ValueError, match="endpoint_private_only=True if it runs inside the VPC"):
        _validate(EksClusterArgs("eu-west-1", (group,), charts))
    with pytest.raises(ValueError, match=r"public_access_cidrs must not contain 0\.0\.0\.0/0"):
        _validate(EksClusterArgs("eu-west-1", (group,), charts, public_access_cidrs=("0.0.0.0/0",)))
    with pytest.raises(ValueError, match="node_groups"):
        _validate(EksClusterArgs("eu-west-1", (), charts, endpoint_private_only=True))
    with pytest.raises(ValueError, match="nat_gateways"):
        _validate(EksClusterArgs("eu-west-1", (group,), charts, nat_gateways="none", endpoint_private_only=True))


def test_a_region_with_too_few_zones_is_refused_naming_them(monkeypatch):
    from types import SimpleNamespace

    from components import eks

    monkeypatch.setattr(eks.aws, "get_availability_zones", lambda **kwargs: SimpleNamespace(names=["xx-east-1b"]))
    with pytest.raises(ValueError, match=r"offers 1 that EKS supports \(xx-east-1b\); choose another region"):
        eks.eks_zones(None)
    monkeypatch.setattr(eks.aws, "get_availability_zones", lambda **kwargs: SimpleNamespace(names=[]))
    with pytest.raises(ValueError, match=r"offers 0 that EKS supports \(none\)"):
        eks.eks_zones(None)


def test_pulumi_eks_components_are_sent_their_regions_aws_provider(prod_stack):
    """The remote Cluster and ManagedNodeGroups create the control plane and the nodes with the providers the
    engine sends them: each must get its own region's, or a second region's cluster lands in the first."""
    remote = prod_stack.of_type("eks:index:Cluster") + prod_stack.of_type("eks:index:ManagedNodeGroup")
    regions = prod_stack.exports()["regions"]
    assert len(remote) == len(regions) * 3 and len(regions) == 2
    for resource in remote:
        region = next(r for r in regions if resource["name"].startswith(f"{r}-eks-"))
        assert resource["remote"] is True
        assert resource["providers"]["aws"].split("::")[3] == f"aws-{region}", resource["name"]
