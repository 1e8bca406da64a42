"""Stack config: every declared key is read, the stack files parse, and each bad value names its key."""

from __future__ import annotations

import copy

import pytest

import stack_config
from stack_config import ConfigError, parse
from tools import stack_files


def _raw(stack: str = "dev", **changes):
    raw = copy.deepcopy(stack_files.merged_config(stack))
    for key, value in changes.items():
        if value is _DELETE:
            del raw[key]
        else:
            raw[key] = value
    return raw


_DELETE = object()


def test_pulumi_yaml_declares_every_key_with_description_and_default():
    declared = stack_files.project()["config"]
    assert set(declared) == set(stack_config.CONFIG_KEYS)
    for key, decl in declared.items():
        assert decl.get("description"), f"{key} has no description"
        assert "default" in decl, f"{key} has no default"
        if key not in stack_config._STRUCTURED_KEYS:
            assert decl.get("type") in ("string", "integer", "boolean", "array"), f"{key} has no type"
        if decl.get("type") == "string":
            assert key in stack_config._STRING_KEYS, f"{key} is a string in Pulumi.yaml but read as JSON"


_PY_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list}


def test_declarations_follow_the_pulumi_project_schema():
    """What the CLI checks when it loads Pulumi.yaml: known attributes only; arrays name their items; a typed
    default has its type (untyped declarations, for object values, carry only description and default)."""
    for key, decl in stack_files.project()["config"].items():
        assert set(decl) <= {"type", "items", "description", "secret", "default"}, key
        if "type" not in decl:
            continue
        assert isinstance(decl["default"], _PY_TYPES[decl["type"]]), key
        if decl["type"] == "array":
            item_type = _PY_TYPES[decl["items"]["type"]]
            assert all(isinstance(v, item_type) for v in decl["default"]), key


def test_project_defaults_are_a_valid_stack_once_the_endpoint_exposure_is_chosen():
    raw = stack_files.merged_config("dev")
    defaults = {k: d["default"] for k, d in stack_files.project()["config"].items()}
    assert set(raw) == set(defaults)
    # Neither a public range nor an explicit private-only choice: refused, with the reason.
    with pytest.raises(ConfigError, match="outside the VPC this stack creates"):
        parse(defaults, stack="any")
    cfg = parse({**defaults, "clusterEndpointPrivateOnly": True}, stack="any")
    assert cfg.cluster_public_access_cidrs == () and cfg.cluster_endpoint_private_only
    cfg = parse({**defaults, "clusterPublicAccessCidrs": ["192.168.10.0/24"]}, stack="any")
    assert cfg.cluster_public_access_cidrs == ("192.168.10.0/24",) and not cfg.cluster_endpoint_private_only
    assert cfg.deletion_protection is True
    assert cfg.nat_gateways == "perZone"
    assert cfg.counters_billing_mode == "PAY_PER_REQUEST" and cfg.dynamodb_billing_mode == "PROVISIONED"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_sample_stacks_ship_a_placeholder_range_that_only_up_refuses(stack):
    cfg = parse(stack_files.merged_config(stack), stack=stack)
    assert cfg.counters_billing_mode == "PAY_PER_REQUEST"
    (cidr,) = cfg.cluster_public_access_cidrs
    with pytest.raises(ConfigError, match=f"still holds the placeholder {cidr}"):
        stack_config.check_deployable(cfg)
    mine = parse({**stack_files.merged_config(stack), "clusterPublicAccessCidrs": ["198.18.7.0/24"]}, stack=stack)
    stack_config.check_deployable(mine)  # a real range passes


def test_pulumi_up_refuses_the_placeholder_before_creating_anything(monkeypatch):
    from tools.mocked_run import MockedRunError, run_stack

    # Offline runs stand in for an update and keep the placeholder; a real `up` is not a mocked run.
    monkeypatch.setenv(stack_config.MOCKED_RUN_ENV, "0")
    with pytest.raises(MockedRunError, match=r"still holds the placeholder 203\.0\.113\.0/24"):
        run_stack("dev")
    run_stack("dev", preview=True)  # a preview of the same config passes


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_files_parse(stack):
    cfg = parse(stack_files.merged_config(stack), stack=stack)
    assert cfg.stack == stack
    assert cfg.rate_limit_rules


def test_dev_is_one_small_region_and_prod_two_with_cloudfront_and_protection():
    dev = parse(stack_files.merged_config("dev"), stack="dev")
    prod = parse(stack_files.merged_config("prod"), stack="prod")
    assert len(dev.regions) == 1 and dev.nat_gateways == "single" and not dev.cloudfront_enabled
    assert not dev.deletion_protection
    assert len(prod.regions) == 2 and prod.cloudfront_enabled and prod.deletion_protection
    assert prod.nat_gateways == "perZone"


def test_tags_carry_project_stack_and_region():
    cfg = parse(stack_files.merged_config("dev"), stack="dev")
    assert cfg.tags_for("eu-west-1") == {
        "Project": "ratelimited-platform",
        "Stack": "dev",
        "Environment": "dev",
        "CostCenter": "platform",
        "Region": "eu-west-1",
    }


BAD_VALUES = [
    ({"regions": []}, "'regions' must list at least 1"),
    ({"regions": ["eu-west-1", "eu-west-1"]}, "'regions' lists a region twice"),
    ({"regions": ["europe"]}, "'regions' has 'europe'; expected an AWS region"),
    ({"regions": "eu-west-1"}, "'regions' must be a list of strings"),
    ({"domain": "Example.COM"}, "'domain' has 'Example.COM'"),
    ({"hostedZoneId": "zone-1"}, "'hostedZoneId' has 'zone-1'"),
    ({"kubernetesVersion": "1.9"}, "'kubernetesVersion' has '1.9'"),
    ({"vpcCidr": "10.0.0.0/24"}, "'vpcCidr' must be a /16 to /20"),
    ({"vpcCidr": "10.0.0.1/16"}, "'vpcCidr' has '10.0.0.1/16', which is not a CIDR block"),
    ({"natGateways": "two"}, "'natGateways' has 'two'; allowed: perZone, single"),
    ({"clusterPublicAccessCidrs": ["0.0.0.0/0"]}, "must not contain 0.0.0.0/0"),
    ({"clusterPublicAccessCidrs": ["10.1.2.3"]}, ""),  # a host is a valid /32: no error
    ({"clusterAdminRoleArns": ["admin"]}, "'clusterAdminRoleArns' has 'admin', which is not an IAM role ARN"),
    ({"cloudfrontEnabled": "yes"}, "'cloudfrontEnabled' must be true or false"),
    ({"cloudfrontPriceClass": "cheap"}, "'cloudfrontPriceClass' has 'cheap'; allowed"),
    (
        {"dynamodbBillingMode": "ON_DEMAND"},
        "'dynamodbBillingMode' has 'ON_DEMAND'; allowed: PROVISIONED, PAY_PER_REQUEST",
    ),
    ({"dynamodbMinCapacity": 0}, "'dynamodbMinCapacity' must be between 1 and 40000, not 0"),
    ({"dynamodbMinCapacity": 100, "dynamodbMaxCapacity": 50}, "'dynamodbMinCapacity' must not exceed"),
    ({"dynamodbTargetUtilization": 99}, "'dynamodbTargetUtilization' must be between 20 and 90"),
    ({"dynamodbMaxCapacity": 1.5}, "'dynamodbMaxCapacity' must be a whole number"),
    ({"limiterMinReplicas": 1}, "'limiterMinReplicas' must be between 2 and 500"),
    ({"limiterMinReplicas": 9, "limiterMaxReplicas": 4}, "'limiterMinReplicas' must not exceed"),
    ({"extAuthzTimeoutMs": 0}, "'extAuthzTimeoutMs' must be between 10 and 5000"),
    ({"wafRateLimit": "lots"}, "'wafRateLimit' must be a whole number"),
    ({"nodeGroups": []}, "'nodeGroups' must list at least 1"),
    (
        {"nodeGroups": [{"name": "a", "instanceTypes": ["t3.large"], "minSize": 3, "desiredSize": 2, "maxSize": 4}]},
        "'nodeGroups' item 0 ('a') must have minSize <= desiredSize <= maxSize",
    ),
    (
        {"nodeGroups": [{"name": "a", "instanceTypes": [], "minSize": 1, "desiredSize": 1, "maxSize": 1}]},
        "'nodeGroups' item 0 ('a') field 'instanceTypes'",
    ),
    (
        {
            "nodeGroups": [
                {
                    "name": "a",
                    "instanceTypes": ["t3.large"],
                    "minSize": 1,
                    "desiredSize": 1,
                    "maxSize": 1,
                    "capacityType": "CHEAP",
                }
            ]
        },
        "field 'capacityType' has 'CHEAP'; allowed: ON_DEMAND, SPOT",
    ),
    (
        {
            "nodeGroups": [
                {"name": "a", "instanceTypes": ["t3.large"], "minSize": 1, "desiredSize": 1, "maxSize": 1, "size": 3}
            ]
        },
        "'nodeGroups' item 0 ('a') has unknown field(s) size",
    ),
    ({"microservices": [{"name": "svc", "image": "x", "port": 80}]}, "item 0 ('svc') is missing field 'pathPrefix'"),
    (
        {"microservices": [{"name": "svc", "image": "x", "port": 70000, "pathPrefix": "/a"}]},
        "field 'port' must be between 1 and 65535",
    ),
    ({"microservices": [{"name": "limiter", "image": "x", "port": 80, "pathPrefix": "/a"}]}, "'limiter' is reserved"),
    (
        {
            "microservices": [
                {"name": "a", "image": "x", "port": 80, "pathPrefix": "/a"},
                {"name": "b", "image": "x", "port": 80, "pathPrefix": "/a"},
            ]
        },
        "is already routed to 'a'",
    ),
    (
        {
            "microservices": [
                {"name": "a", "image": "x", "port": 80, "pathPrefix": "/a"},
                {"name": "a", "image": "x", "port": 80, "pathPrefix": "/b"},
            ]
        },
        "duplicate name(s): a",
    ),
    ({"microservices": [{"name": "a", "image": "x", "port": 80, "pathPrefix": "a"}]}, "field 'pathPrefix' has 'a'"),
    ({"microservices": ["orders"]}, "'microservices' item 0 must be an object"),
    (
        {"appTables": [{"name": "t", "hashKey": "id", "attributes": [{"name": "pk", "type": "S"}]}]},
        "uses key attribute(s) id not listed in 'attributes'",
    ),
    (
        {
            "appTables": [
                {"name": "t", "hashKey": "id", "attributes": [{"name": "id", "type": "S"}, {"name": "x", "type": "S"}]}
            ]
        },
        "field 'attributes' lists x, which no key or GSI uses",
    ),
    (
        {"appTables": [{"name": "t", "hashKey": "id", "attributes": [{"name": "id", "type": "STRING"}]}]},
        "each must be {name, type} with type S, N or B",
    ),
    (
        {
            "appTables": [
                {
                    "name": "t",
                    "hashKey": "id",
                    "attributes": [{"name": "id", "type": "S"}],
                    "gsis": [{"name": "g", "hashKey": "id", "projectionType": "SOME"}],
                }
            ]
        },
        "GSI 'g' field 'projectionType' has 'SOME'",
    ),
    (
        {"apiConsumers": [{"name": "p", "rateLimit": 0, "burstLimit": 1, "quotaPerDay": 1}]},
        "'apiConsumers' item 0 ('p') field 'rateLimit' must be between 1",
    ),
    ({"rateLimitRules": []}, "'rateLimitRules' must list at least 1"),
    (
        {"rateLimitRules": [{"name": "r", "key": ["client_ip"], "limit": 0, "window_seconds": 60}]},
        "Config key 'rateLimitRules':",
    ),
    ({"tags": ["a"]}, "'tags' must be an object"),
    ({"tags": {"aws:owner": "me"}}, "the 'aws:' prefix is reserved"),
    ({"tags": {"Owner": 5}}, "keys and values must be strings"),
    ({"domain": _DELETE}, "Config key 'domain' is missing"),
    ({"colour": "blue"}, "Unknown config key(s) 'colour'"),
    ({"clusterEndpointPrivateOnly": True}, "contradict each other"),
    (
        {"countersBillingMode": "ON_DEMAND"},
        "'countersBillingMode' has 'ON_DEMAND'; allowed: PAY_PER_REQUEST, PROVISIONED",
    ),
]


@pytest.mark.parametrize(("changes", "message"), BAD_VALUES, ids=[str(c)[:60] for c, _ in BAD_VALUES])
def test_bad_values_are_refused_with_a_message_naming_the_key(changes, message):
    raw = _raw(**changes)
    if message == "":
        parse(raw, stack="dev")  # accepted
        return
    with pytest.raises(ConfigError) as err:
        parse(raw, stack="dev")
    assert message in str(err.value)


def test_rule_errors_name_the_rule_and_field():
    raw = _raw(
        rateLimitRules=[
            {"name": "burst", "key": ["client_ip"], "limit": 10, "window_seconds": 60, "algorithm": "token_bucket"}
        ]
    )
    with pytest.raises(ConfigError) as err:
        parse(raw, stack="dev")
    assert "burst" in str(err.value) and "algorithm" in str(err.value)


def test_the_program_reports_a_bad_value_before_creating_anything():
    from tools.mocked_run import MockedRunError, run_stack

    with pytest.raises(MockedRunError) as err:
        run_stack("dev", config_overrides={"clusterPublicAccessCidrs": ["0.0.0.0/0"]})
    assert "ConfigError: Config key 'clusterPublicAccessCidrs' must not contain 0.0.0.0/0" in str(err.value)


def test_readme_config_reference_lists_every_key():
    readme = (stack_files.ROOT / "README.md").read_text()
    reference = readme.split("## Configuration reference", 1)[1]
    missing = [key for key in stack_config.CONFIG_KEYS if f"| `{key}` |" not in reference]
    assert not missing, f"README's configuration reference lacks {missing}"


def test_a_service_path_under_the_api_stage_segment_is_refused():
    raw = _raw(microservices=[{"name": "a", "image": "x", "port": 8080, "pathPrefix": "/apigw/orders"}])
    with pytest.raises(ConfigError) as err:
        parse(raw, stack="dev")
    assert "'/apigw' is the API Gateway stage segment" in str(err.value)
