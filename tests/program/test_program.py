"""The whole program under mocks: each regional layer once per region, on that region's provider."""

from __future__ import annotations

import json

import pytest

from tools.mocked_run import run_stack

REGIONAL_LAYERS = ("ratelimited:index:EksCluster", "ratelimited:index:Data")


def _aws_providers(stack):
    return {p["name"]: p["inputs"].get("region") for p in stack.of_type("pulumi:providers:aws")}


def test_dev_creates_each_regional_layer_once(dev_stack):
    for layer in REGIONAL_LAYERS:
        assert [c["name"].split("-")[:3] for c in dev_stack.of_type(layer)] == [["eu", "west", "1"]]


def test_prod_creates_each_regional_layer_twice_with_the_regional_providers(prod_stack):
    providers = _aws_providers(prod_stack)
    assert providers["aws-eu-west-1"] == "eu-west-1" and providers["aws-us-east-1"] == "us-east-1"
    for layer in REGIONAL_LAYERS:
        components = prod_stack.of_type(layer)
        assert len(components) == 2
        for component in components:
            region = component["name"].rsplit("-", 1)[0]
            assert prod_stack.provider_name(component) == f"aws-{region}"


@pytest.mark.parametrize("stack_name", ["dev_stack", "prod_stack"])
def test_every_aws_resource_of_a_region_uses_that_regions_provider(stack_name, request):
    stack = request.getfixturevalue(stack_name)
    checked = 0
    for resource in stack:
        if not resource["type"].startswith(("aws:", "eks:")):
            continue
        regional = [a for a in stack.ancestors(resource) if a["type"] in REGIONAL_LAYERS]
        if not regional:
            continue
        region = regional[0]["name"].rsplit("-", 1)[0]
        assert stack.provider_name(resource) == f"aws-{region}", resource["name"]
        checked += 1
    assert checked > 40


def test_kubernetes_resources_use_their_regions_cluster(prod_stack):
    for resource in prod_stack.of_type("kubernetes:*"):
        region = next(
            a["name"].rsplit("-", 1)[0]
            for a in prod_stack.ancestors(resource)
            if a["type"].startswith("ratelimited:index:")
        )
        assert resource["provider"].split("::")[3] == f"{region}-eks-k8s", resource["name"]


def test_prod_regions_do_not_share_tables_or_clusters(prod_stack):
    names = [t["outputs"]["name"] for t in prod_stack.of_type("aws:dynamodb/table:Table")]
    assert len(names) == len(set(names)) == 6  # counters + orders + catalog, per region


def test_exports_name_the_regions_and_keep_the_kubeconfigs_secret(prod_stack):
    exports = prod_stack.exports()
    assert exports["regions"] == ["eu-west-1", "us-east-1"]
    assert exports["kubeconfigs"] == {"secret": True}
    for region in ("eu-west-1", "us-east-1"):
        regional = exports["regional"][region]
        assert regional["clusterName"].startswith(f"{region}-eks-cluster")
        assert regional["countersTable"].startswith(f"{region}-data-counters")
        assert set(regional["appTables"]) == {"orders", "catalog"}


def test_repeated_runs_register_the_same_stack():
    """Registration order and dict order may vary between runs (the runtime is concurrent); content may not."""
    first, second = run_stack("dev"), run_stack("dev")

    def shape(record):
        return {
            r["urn"]: json.dumps(
                [
                    r["inputs"],
                    r["outputs"],
                    sorted(r["dependencies"]),
                    {k: sorted(v) for k, v in r["property_dependencies"].items()},
                    r["parent"],
                    r["provider"],
                ],
                sort_keys=True,
            )
            for r in record["resources"]
        }

    assert shape(first) == shape(second)
    assert len(first["resources"]) > 50


def test_a_resource_with_its_own_provider_is_attributed_to_it(prod_stack):
    # The Kubernetes provider is passed to resources directly (not through a parent's providers map).
    release = prod_stack.of_type("kubernetes:helm.sh/v3:Release", under="us-east-1-eks")[0]
    assert release["provider"]
    assert prod_stack.provider_name(release, "kubernetes") == "us-east-1-eks-k8s"


# What AWS itself refuses to delete: the resource's own guard (LB and table deletion protection, a bucket that
# still holds objects without force_destroy: the preflight's rule), and a distribution's web ACL and certificate
# while it uses them.
def _aws_refuses_delete(resource) -> bool:
    from tools.preflight.teardown import aws_refuses_delete

    return aws_refuses_delete(resource) is not None or resource["type"] == "aws:cloudfront/distribution:Distribution"


def test_deletion_protection_stops_a_destroy_at_its_preview(prod_stack):
    guarded = [r for r in prod_stack if r["custom"] and _aws_refuses_delete(r)]
    assert {r["type"] for r in guarded} >= {
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:dynamodb/table:Table",
        "aws:s3/bucket:Bucket",
        "aws:cloudfront/distribution:Distribution",
    }
    # `protect` fails the destroy's preview, before anything is deleted; otherwise the destroy would delete
    # everything else first and then stop at the first resource AWS refuses to delete.
    assert [r["name"] for r in guarded if not r["protect"]] == []
    # Retaining instead would leave the distribution using the web ACL and certificate that the same destroy
    # deletes (AWS refuses both): only DNS validation records, shared by design, are retained.
    assert {r["type"] for r in prod_stack if r["retain_on_delete"]} == {"aws:route53/record:Record"}


def test_without_deletion_protection_teardown_completes(dev_stack):
    assert [r["name"] for r in dev_stack if r["custom"] and _aws_refuses_delete(r)] == []
    assert [r["name"] for r in dev_stack if r["protect"]] == []
    assert {r["type"] for r in dev_stack if r["retain_on_delete"]} <= {"aws:route53/record:Record"}


# Names unique only within another resource of the stack: an AMP rule groups namespace within its workspace
# (AMP API reference, CreateRuleGroupsNamespace: /workspaces/{workspaceId}/rulegroupsnamespaces).
_NAMED_WITHIN_PARENT = frozenset({"aws:amp/ruleGroupNamespace:RuleGroupNamespace"})


def test_two_stacks_in_one_account_and_region_share_no_physical_name(dev_stack, prod_stack):
    """dev and prod both run in eu-west-1: an explicit name in an account- or region-wide namespace (a KMS
    alias, a table, a log group) must differ between them, or be auto-named (random suffix)."""

    def explicit_names(stack):
        names = {}
        for r in stack.resources:
            if not r["type"].startswith("aws:") or not r["custom"] or r["type"] in _NAMED_WITHIN_PARENT:
                continue
            inputs = r["inputs"]
            for field in ("name", "bucket", "namePrefix", "bucketPrefix"):
                value = inputs.get(field)
                # A value derived from another resource (a bucket's auto-name) is that resource's, not a name.
                if isinstance(value, str) and not r["property_dependencies"].get(field):
                    names[(r["type"], field, value)] = r["name"]
        return names

    dev, prod = explicit_names(dev_stack), explicit_names(prod_stack)
    # A name prefix gets a unique suffix from the provider; only fixed names can collide.
    shared = {k: v for k, v in dev.items() if k in prod and not k[1].endswith(("Prefix", "prefix"))}
    assert shared == {}
