"""Stack config that cannot silently switch a limit off: rule hosts follow the domain, the layers of limits
nest (WAF backstop, usage plans, per-key rules), account-wide settings are owned by one stack, other AWS
partitions are refused, and the microservice spec refuses what the platform cannot run."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from stack_config import ConfigError, parse, per_five_minutes, served_hosts
from tools import stack_files


def _raw(stack: str = "dev", **changes):
    raw = copy.deepcopy(stack_files.merged_config(stack))
    raw.update(copy.deepcopy(changes))
    return raw


def _rule(cfg, name: str) -> dict:
    (rule,) = [r for r in cfg.rate_limit_rules if r["name"] == name]
    return rule


# -- rule hosts follow the domain ----------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_sample_rule_with_hosts_matches_hosts_the_stack_serves(stack):
    cfg = parse(_raw(stack), stack=stack)
    served = served_hosts(cfg.domain, api_gateway_enabled=cfg.api_gateway_enabled)
    everything = {h for hosts in served.values() for h in hosts}
    for rule in cfg.rate_limit_rules:
        hosts = (rule.get("match") or {}).get("hosts")
        if hosts is not None:
            assert hosts and set(hosts) <= everything, rule["name"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_changing_the_domain_keeps_every_rule_in_force(stack):
    """`pulumi config set domain mycorp.io` (the README's first deploy step) must move every limit along."""
    before = parse(_raw(stack), stack=stack)
    after = parse(_raw(stack, domain="mycorp.io"), stack=stack)
    assert _rule(after, "api-per-key")["match"]["hosts"] == ["api.mycorp.io"]
    assert _rule(after, "per-client-ip")["match"]["hosts"] == ["mycorp.io", "www.mycorp.io", "origin.mycorp.io"]
    for old, new in zip(before.rate_limit_rules, after.rate_limit_rules, strict=True):
        old_hosts = (old.get("match") or {}).get("hosts") or []
        new_hosts = (new.get("match") or {}).get("hosts") or []
        assert [h.replace(before.domain, "mycorp.io") for h in old_hosts] == new_hosts, old["name"]


def test_a_literal_host_of_another_domain_is_refused():
    rules = _raw("dev")["rateLimitRules"]
    rules[1]["match"] = {"hosts": ["api.dev.example.com"]}
    parse(_raw("dev", rateLimitRules=rules), stack="dev")  # served by this stack: accepted
    with pytest.raises(ConfigError, match=r"'api-per-key'.*match\.hosts.*'api\.dev\.example\.com'.*does not serve"):
        parse(_raw("dev", rateLimitRules=rules, domain="mycorp.io"), stack="dev")


def test_domain_placeholders_and_wildcards_render_from_the_domain():
    rules = _raw("dev")["rateLimitRules"]
    rules[0]["match"] = {"hosts": ["{domain}", "*.{domain}"]}
    cfg = parse(_raw("dev", rateLimitRules=rules, domain="mycorp.io"), stack="dev")
    assert cfg.rate_limit_rules[0]["match"]["hosts"] == ["mycorp.io", "*.mycorp.io"]
    rules[0]["match"] = {"hosts": ["*.example.org"]}
    with pytest.raises(ConfigError, match=r"'\*\.example\.org', which this stack does not serve"):
        parse(_raw("dev", rateLimitRules=rules), stack="dev")


@pytest.mark.parametrize(
    ("match", "message"),
    [
        ({"entry": "admin"}, r"'match\.entry' has 'admin'; allowed: api, web"),
        ({"entry": "web", "hosts": ["{domain}"]}, r"'entry' or 'hosts', not both"),
    ],
)
def test_bad_entries_are_refused(match, message):
    rules = _raw("dev")["rateLimitRules"]
    rules[0]["match"] = match
    with pytest.raises(ConfigError, match=message):
        parse(_raw("dev", rateLimitRules=rules), stack="dev")


def test_a_rule_on_the_api_entry_without_api_gateway_is_refused():
    with pytest.raises(ConfigError, match=r"'api-per-key'.*'apiGatewayEnabled' is false: the rule\s+would match"):
        parse(_raw("dev", apiGatewayEnabled=False), stack="dev")


# -- the layers of limits nest --------------------------------------------------------------------------------
def test_scaling_to_the_waf_window():
    assert per_five_minutes(300, 60) == 1500
    assert per_five_minutes(7, 60) == 35
    assert per_five_minutes(10, 7) == 429  # ceil(10 * 300 / 7)
    assert per_five_minutes(1000, 3600) == 1000  # a longer window may admit all of it within 5 minutes


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_waf_backstop_sits_above_every_per_ip_rule_and_plan(stack):
    cfg = parse(_raw(stack), stack=stack)
    per_ip = [r for r in cfg.rate_limit_rules if list(r["key"]) == ["client_ip"]]
    assert per_ip
    for rule in per_ip:
        assert cfg.waf_rate_limit >= per_five_minutes(rule["limit"], rule["window_seconds"]), rule["name"]
    for consumer in cfg.api_consumers:
        assert cfg.waf_rate_limit >= consumer.rate_limit * 300


def test_a_waf_backstop_below_a_per_ip_rule_is_refused():
    """Dev had WAF at 1,000 per 5 minutes under a 300-per-minute per-IP rule (1,500 per 5 minutes)."""
    with pytest.raises(ConfigError, match=r"'wafRateLimit' \(1000 per 5 minutes\).*'per-client-ip'.*at least 1500"):
        parse(_raw("dev", wafRateLimit=1000), stack="dev")


def test_a_waf_backstop_below_a_consumer_plan_is_refused():
    consumers = [{"name": "fast", "rateLimit": 10, "burstLimit": 20, "quotaPerDay": 1000}]
    rules = _raw("dev")["rateLimitRules"]
    rules[1]["limit"] = 600
    with pytest.raises(ConfigError, match=r"'wafRateLimit' \(2000.*consumer 'fast'.*3000 per 5 minutes"):
        parse(_raw("dev", apiConsumers=consumers, rateLimitRules=rules), stack="dev")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_per_key_rules_admit_every_consumers_plan(stack):
    cfg = parse(_raw(stack), stack=stack)
    per_key = [r for r in cfg.rate_limit_rules if "header:x-api-key" in r["key"]]
    assert per_key and cfg.api_consumers
    for rule in per_key:
        for consumer in cfg.api_consumers:
            assert rule["limit"] >= consumer.rate_limit * rule["window_seconds"], (rule["name"], consumer.name)


def test_a_per_key_rule_below_a_consumer_plan_is_refused():
    """Dev had partner-a's plan at 50 rps against api-per-key at 100 per minute."""
    consumers = [{"name": "partner-a", "rateLimit": 50, "burstLimit": 100, "quotaPerDay": 100000}]
    with pytest.raises(ConfigError, match=r"rule 'api-per-key' \(300 per 60 s per API key\).*'partner-a'.*3000"):
        parse(_raw("dev", apiConsumers=consumers, wafRateLimit=20000), stack="dev")


def test_a_per_ip_rule_on_the_api_entry_must_admit_the_plans():
    rules = _raw("prod")["rateLimitRules"]
    del rules[0]["match"]  # per-client-ip on every entry
    with pytest.raises(ConfigError, match=r"'per-client-ip'.*applies to the API entry.*'partner-a'"):
        parse(_raw("prod", rateLimitRules=rules), stack="prod")


def test_the_relation_is_documented_where_consumers_are_configured():
    text = (stack_files.ROOT / "docs" / "rate-limit-rules.md").read_text()
    assert "usage plan" in text and "wafRateLimit" in text and "rateLimit" in text


# -- account-wide settings ---------------------------------------------------------------------------------------
def test_one_sample_stack_per_region_manages_the_api_gateway_logging_role():
    owners: dict[str, list[str]] = {}
    for stack in stack_files.stack_names():
        cfg = parse(_raw(stack), stack=stack)
        if cfg.api_gateway_enabled and cfg.api_gateway_account_logging_role:
            for region in cfg.regions:
                owners.setdefault(region, []).append(stack)
    assert owners and all(len(stacks) == 1 for stacks in owners.values()), owners


def test_the_stack_that_leaves_the_logging_role_says_why():
    for stack in stack_files.stack_names():
        text = (stack_files.ROOT / f"Pulumi.{stack}.yaml").read_text()
        value = yaml.safe_load(text)["config"].get("ratelimited-platform:apiGatewayAccountLoggingRole")
        assert value is not None, f"Pulumi.{stack}.yaml must say who manages the account-wide role"
        lines = text.splitlines()
        (index,) = [i for i, line in enumerate(lines) if "apiGatewayAccountLoggingRole" in line]
        assert lines[index - 1].strip().startswith("#"), f"Pulumi.{stack}.yaml: say why above the setting"


# -- partitions -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("region", ["us-gov-west-1", "us-gov-east-1", "cn-north-1", "cn-northwest-1"])
def test_regions_of_other_partitions_are_refused_clearly(region):
    with pytest.raises(ConfigError, match=rf"'regions' has '{region}', a region of another AWS partition"):
        parse(_raw("dev", regions=[region]), stack="dev")


def test_admin_roles_of_other_partitions_are_refused():
    arn = "arn:aws-us-gov:iam::123456789012:role/admin"
    with pytest.raises(ConfigError, match=r"'clusterAdminRoleArns'.*aws partition"):
        parse(_raw("dev", clusterAdminRoleArns=[arn]), stack="dev")


# -- the microservice spec ---------------------------------------------------------------------------------------
def test_the_dev_orders_service_declares_the_orders_table():
    cfg = parse(_raw("dev"), stack="dev")
    orders = next(m for m in cfg.microservices if m.name == "orders")
    assert orders.tables == ("orders",)
    assert {t.name for t in cfg.app_tables} >= {"orders"}


def _service(**fields):
    base = {"name": "orders", "image": "img", "port": 8080, "pathPrefix": "/orders"}
    return _raw("dev", microservices=[{**base, **fields}])


def test_a_full_spec_parses_with_its_defaults_documented():
    cfg = parse(
        _service(
            env={"LOG_LEVEL": "info"},
            tables=["orders"],
            secrets={"API_KEY_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders/api-AbCdEf"},
            readinessPath="/ready",
            livenessPath="/live",
            command=["/srv"],
            args=["--port", "8080"],
            tmpSize="64Mi",
        ),
        stack="dev",
    )
    (m,) = cfg.microservices
    assert m.env == (("LOG_LEVEL", "info"),) and m.tables == ("orders",) and m.command == ("/srv",)
    assert m.readiness_path == "/ready" and m.liveness_path == "/live" and m.args == ("--port", "8080")
    (bare,) = parse(_service(), stack="dev").microservices
    assert (bare.env, bare.tables, bare.secrets, bare.command, bare.args) == ((), (), (), None, None)
    assert (bare.readiness_path, bare.liveness_path, bare.tmp_size) == (None, None, "256Mi")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"tables": ["payments"]},
            r"field 'tables' names payments, which 'appTables' does not declare; declared: orders\.",
        ),
        ({"secrets": {"KEY": "arn:aws:s3:::bucket/key"}}, r"secret KEY has 'arn:aws:s3:::bucket/key'"),
        ({"env": {"AWS_REGION": "x"}}, r"env var AWS_REGION is set by the platform"),
        ({"env": {"TABLE_ORDERS": "x"}, "tables": ["orders"]}, r"sets env var\(s\) TABLE_ORDERS twice"),
        ({"env": {"1BAD": "x"}}, r"env var name '1BAD'"),
        ({"env": {"A": 1}}, r"field 'env' must be an object of string values"),
        ({"command": []}, r"command must be a non-empty list"),
        ({"readinessPath": "ready"}, r"field 'readinessPath' has 'ready'"),
        ({"pathPrefix": "/healthz"}, r"clashes with the edge's health path '/healthz/ready'"),
        ({"pathPrefix": "/healthz/ready/x"}, r"clashes with the edge's health path"),
        ({"name": "a-service-name-that-is-too-long"}, r"at most 25 characters"),
        ({"probes": True}, r"unknown field\(s\) probes"),
    ],
)
def test_bad_microservice_fields_are_refused_naming_the_field(fields, message):
    with pytest.raises(ConfigError, match=r"Config key 'microservices' item 0 .*" + message):
        parse(_service(**fields), stack="dev")


def test_overlapping_prefixes_are_allowed_and_duplicates_refused():
    services = [
        {"name": "home", "image": "i", "port": 80, "pathPrefix": "/"},
        {"name": "orders", "image": "i", "port": 80, "pathPrefix": "/orders"},
        {"name": "orders-v2", "image": "i", "port": 80, "pathPrefix": "/orders/v2"},
    ]
    assert len(parse(_raw("dev", microservices=services), stack="dev").microservices) == 3
    services.append({"name": "again", "image": "i", "port": 80, "pathPrefix": "/orders/"})
    with pytest.raises(ConfigError, match=re.escape("'/orders/' is already routed to 'orders'")):
        parse(_raw("dev", microservices=services), stack="dev")
