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


# --- observability keys -------------------------------------------------------------------------------------

_TOPICS = {r: f"arn:aws:sns:{r}:123456789012:pager" for r in ("eu-west-1", "us-east-1")}
OBSERVABILITY_BAD_VALUES = [
    ({"observabilityEnabled": "sometimes"}, "Config key 'observabilityEnabled' must be true or false"),
    ({"alarmEmails": ["not-an-address"]}, "Config key 'alarmEmails' has 'not-an-address'; expected an e-mail address"),
    ({"alarmTopicArns": ["arn"]}, "Config key 'alarmTopicArns' must be an object {region: topic ARN}"),
    ({"alarmTopicArns": {"eu-west-1": _TOPICS["eu-west-1"]}}, "missing: us-east-1, extra: none."),
    ({"alarmTopicArns": {**_TOPICS, "ap-south-1": "arn:aws:sns:ap-south-1:123456789012:pager"}},
     "missing: none, extra: ap-south-1."),
    ({"alarmTopicArns": {**_TOPICS, "eu-west-1": "arn:aws:sns:eu-west-2:123456789012:pager"}},
     "expected an SNS topic ARN in eu-west-1"),
    ({"alarmTopicArns": _TOPICS, "alarmEmails": ["a@example.com"]},
     "'alarmEmails' and 'alarmTopicArns' exclude each other"),
    ({"alarmThresholds": {"albElb5XX": 3}},
     "Config key 'alarmThresholds' has unknown field 'albElb5XX'; allowed: albElb5xx"),
    ({"alarmThresholds": {"apiLatencyP99Ms": 40000}},
     "Config key 'alarmThresholds' field 'apiLatencyP99Ms' must be 1-29000"),
    ({"alarmThresholds": {"limiterDenyRatio": 1.5}},
     "Config key 'alarmThresholds' field 'limiterDenyRatio' must be between 0 and 1"),
    ({"alarmThresholds": {"albTarget5xx": "many"}}, "field 'albTarget5xx' must be a whole number"),
    ({"runbookUrl": ""}, "Config key 'runbookUrl' must not be empty"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"), OBSERVABILITY_BAD_VALUES, ids=[str(c)[:60] for c, _ in OBSERVABILITY_BAD_VALUES]
)
def test_bad_observability_values_are_refused_naming_the_key(changes, message):
    with pytest.raises(ConfigError) as err:
        parse(_raw(**changes), stack="dev")
    assert message in str(err.value)


def test_observability_is_on_by_default_with_overridable_thresholds():
    defaults = parse(_raw(), stack="dev")
    assert defaults.observability_enabled is True
    assert defaults.alarm_thresholds == stack_config.AlarmThresholds()
    assert defaults.runbook_url == "docs/runbook.md"

    cfg = parse(
        _raw(alarmThresholds={"albElb5xx": 42, "limiterLatencyFraction": 0.6}, alarmTopicArns=_TOPICS), stack="dev"
    )
    assert (cfg.alarm_thresholds.alb_elb_5xx, cfg.alarm_thresholds.limiter_latency_fraction) == (42, 0.6)
    assert cfg.alarm_thresholds.api_5xx == stack_config.AlarmThresholds().api_5xx
    assert cfg.alarm_topic_arns == _TOPICS


# --- load(): what the program reads from the engine's config ---------------------------------


@pytest.fixture
def engine_config(monkeypatch):
    """Set the engine's config for stack_config.load() (as `pulumi up` would), restored afterwards."""
    import pulumi
    from pulumi.runtime import settings

    saved = (settings.get_project(), settings.get_stack())
    settings._set_project("ratelimited-platform")
    settings._set_stack("dev")
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    # As under tools.mocked_run: the sample stacks' placeholder CIDR is refused only by a real `pulumi up`.
    monkeypatch.setenv(stack_config.MOCKED_RUN_ENV, "1")

    def set_config(**changes):
        config = stack_files.engine_config("dev")
        for key, value in changes.items():
            config[f"ratelimited-platform:{key}"] = value
        pulumi.runtime.set_all_config(config, [])

    yield set_config
    pulumi.runtime.set_all_config({}, [])
    settings._set_project(saved[0])
    settings._set_stack(saved[1])


def test_load_refuses_a_key_pulumi_yaml_does_not_declare(engine_config):
    engine_config(cloudFrontEnabled="true")

    with pytest.raises(ConfigError) as err:
        stack_config.load()

    assert str(err.value) == (
        "Unknown config key 'ratelimited-platform:cloudFrontEnabled' (did you mean 'cloudfrontEnabled'?); "
        "every key is declared in Pulumi.yaml."
    )


def test_load_reads_the_declared_keys_from_pulumi_yaml_when_it_runs(engine_config, monkeypatch):
    declarations = stack_config.declared()
    engine_config(newFeatureFlag="true")
    with pytest.raises(ConfigError, match="Unknown config key 'ratelimited-platform:newFeatureFlag'"):
        stack_config.load()

    # Declared in Pulumi.yaml (as another change would add it), the key is no longer refused by load().
    monkeypatch.setattr(stack_config, "declared", lambda: {**declarations, "newFeatureFlag": {"type": "boolean"}})
    monkeypatch.setattr(stack_config, "CONFIG_KEYS", (*stack_config.CONFIG_KEYS, "newFeatureFlag"))
    monkeypatch.setattr(stack_config, "parse", lambda raw, **kw: raw)
    assert stack_config.load()["newFeatureFlag"] is True


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("regions", "eu-west-1", "Config key 'regions' must be an array of strings (JSON e.g. [\"eu-west-1\"])"),
        ("wafRateLimit", "lots", "Config key 'wafRateLimit' must be an integer, not 'lots'."),
        ("deletionProtection", "yes", "Config key 'deletionProtection' must be a boolean (true or false), not 'yes'."),
        ("nodeGroups", "general", "Config key 'nodeGroups' must be a list (YAML in the stack file, or JSON)"),
        ("tags", "{Environment", "Config key 'tags' must be an object (YAML in the stack file, or JSON)"),
    ],
)
def test_load_type_errors_name_the_type_the_key_takes(engine_config, key, text, expected):
    engine_config(**{key: text})

    with pytest.raises(ConfigError) as err:
        stack_config.load()

    assert str(err.value).startswith(expected), str(err.value)


@pytest.mark.parametrize("value", [1.3, "1.3"])
def test_an_unquoted_kubernetes_version_is_told_to_quote_it(value):
    with pytest.raises(ConfigError) as err:
        parse(_raw(kubernetesVersion=value), stack="dev")

    assert str(err.value) == (
        "Config key 'kubernetesVersion' has '1.3', which is what YAML makes of an unquoted 1.30 (a number); "
        'quote it in the stack file: kubernetesVersion: "1.30".'
    )


def _refusal(**changes) -> str:
    with pytest.raises(ConfigError) as err:
        parse(_raw(**changes), stack="dev")
    return str(err.value)


def test_number_bounds_are_inclusive_and_a_non_number_is_named():
    def consumers(rate):
        return [{"name": "partner-a", "rateLimit": rate, "burstLimit": 10, "quotaPerDay": 100000}]

    # 1,000,000 is a valid plan (refused only by the WAF backstop below it), 1,000,001 is not
    assert "field 'rateLimit' must be between" not in _refusal(apiConsumers=consumers(1_000_000))
    assert "field 'rateLimit' must be between 1 and 1000000, not 1000001" in _refusal(apiConsumers=consumers(1_000_001))
    assert "field 'rateLimit' must be a whole number, not 'five'" in _refusal(apiConsumers=consumers("five"))
    parse(_raw(alarmThresholds={"albElb5xx": 0}), stack="dev")
    assert "field 'albElb5xx' must be between 0 and 1000000000, not -1" in _refusal(alarmThresholds={"albElb5xx": -1})


def test_tag_keys_and_values_up_to_the_aws_maximum_lengths():
    parse(_raw(tags={"k" * 128: "v" * 256}), stack="dev")
    for tags in ({"k" * 129: "v"}, {"k": "v" * 257}, {"": "v"}):
        assert "keys and values must be strings (128/256 max)" in _refusal(tags=tags)


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("false", False), ("TRUE", True), (False, False)])
def test_booleans_accept_yaml_and_cli_strings(value, expected):
    assert parse(_raw(extAuthzFailOpen=value), stack="dev").ext_authz_fail_open is expected


def test_a_boolean_that_is_not_one_is_refused():
    assert _refusal(extAuthzFailOpen="yes") == "Config key 'extAuthzFailOpen' must be true or false, not 'yes'."


def test_a_rule_may_select_an_entry_or_hosts_not_both():
    rule = {"name": "r", "key": ["client_ip"], "limit": 100, "window_seconds": 60,
            "match": {"entry": "web", "hosts": ["dev.example.com"]}}  # fmt: skip
    assert "field 'match' may have 'entry' or 'hosts', not both." in _refusal(rateLimitRules=[rule])


def test_the_waf_backstop_must_stay_above_every_per_client_ip_rule():
    message = _refusal(wafRateLimit=100)
    assert message.startswith("Config key 'wafRateLimit' (100 per 5 minutes) is below rate-limit rule 'per-client-ip'")
    parse(_raw(wafRateLimit=1500), stack="dev")  # exactly per-client-ip's 300 per 60 s
    # A rule keyed on something else than the client IP alone says nothing about one client's traffic.
    rules = _raw()["rateLimitRules"] + [
        {"name": "per-key-burst", "match": {"entry": "api"}, "key": ["header:x-api-key", "client_ip"],
         "limit": 100_000, "window_seconds": 60}
    ]  # fmt: skip
    parse(_raw(wafRateLimit=1500, rateLimitRules=rules), stack="dev")


def test_the_parsed_config_cannot_be_changed():
    """One StackConfig feeds every region's components: none may alter it for the others."""
    import dataclasses

    cfg = parse(stack_files.merged_config("dev"), stack="dev")
    for value in (cfg, *cfg.microservices, *cfg.app_tables):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, dataclasses.fields(value)[0].name, None)


def test_did_you_mean_hints_a_near_miss_or_a_case_slip():
    from stack_config import did_you_mean

    assert did_you_mean("regoins", ["regions", "domain"]) == " (did you mean 'regions'?)"
    assert did_you_mean("WAFRATELIMIT", ["wafRateLimit"]) == " (did you mean 'wafRateLimit'?)"
    assert did_you_mean("zzz", ["regions", "domain"]) == ""


def test_a_pattern_without_words_is_shown_as_the_pattern_itself():
    """Every key of the program says what it expects in words; a pattern given without them still names the
    rule the value broke, never an empty 'expected .'."""
    import re

    from stack_config import _Item, _Reader

    digits = re.compile(r"^\d+$")
    reader = _Reader({"k": "x1", "ks": ["1", "x2"]})
    for call in (lambda: reader.str("k", pattern=digits), lambda: reader.str_list("ks", pattern=digits),
                 lambda: _Item("items", 0, {"f": "x3"}).str("f", pattern=digits)):  # fmt: skip
        with pytest.raises(ConfigError, match=r"; expected \^\\d\+\$\.$"):
            call()
    with pytest.raises(ConfigError, match=r"expected digits\.$"):
        reader.str("k", pattern=digits, what="digits")


def test_a_microservice_with_only_its_required_fields_gets_the_specs_defaults():
    """A field left out means what the services layer means by it (the defaults docs/add-a-microservice.md lists)."""
    from components.specs import Microservice

    item = {"name": "svc", "image": "registry/svc:1", "port": 8080, "pathPrefix": "/svc"}
    (service,) = parse(_raw(microservices=[item]), stack="dev").microservices
    assert service == Microservice(name="svc", image="registry/svc:1", port=8080, path_prefix="/svc")
