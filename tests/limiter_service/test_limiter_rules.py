"""Rules as data: the documented format parses; every invalid field is named with its rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from limiter_service.rules import (
    Algorithm,
    FailureMode,
    KeyPart,
    RuleError,
    default_rules,
    load_rules_file,
    parse_rules,
)
from tests.limiter_service.limiter_testutil import REPO

ISSUE_EXAMPLE = """
rules:
  - name: api-per-key            # unique
    match:                       # every field optional; an empty match matches everything
      hosts: ["api.example.com"]
      path_prefix: "/api/"
      methods: ["GET", "POST"]
    key: ["header:x-api-key"]    # one or more of header:<name>, client_ip
    limit: 100
    window_seconds: 60           # any whole number of seconds
    algorithm: fixed_window      # or sliding_window
    shadow: false                # decide and report, never deny
    failure_mode: open           # or closed: the answer when the store fails
    lease: 0                     # tokens a replica takes per write; 0 = none
"""


def good(**overrides: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"name": "r1", "key": ["client_ip"], "limit": 10, "window_seconds": 60}
    rule.update(overrides)
    return {"rules": [rule]}


def test_the_issue_example_parses(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(ISSUE_EXAMPLE)
    (rule,) = load_rules_file(path)
    assert rule.name == "api-per-key"
    assert rule.key == (KeyPart("header", "x-api-key"),)
    assert rule.match.hosts == ("api.example.com",) and rule.match.methods == ("GET", "POST")
    assert (rule.limit, rule.window_seconds, rule.lease) == (100, 60, 0)
    assert rule.algorithm is Algorithm.FIXED_WINDOW and rule.failure_mode is FailureMode.OPEN
    assert rule.match.matches("GET", "/api/v1", "API.example.com:8443")
    assert not rule.match.matches("DELETE", "/api/v1", "api.example.com")
    assert not rule.match.matches("GET", "/web", "api.example.com")
    assert not rule.match.matches("GET", "/api/v1", "other.example.com")


def test_defaults_and_the_default_rule_set() -> None:
    (rule,) = parse_rules(good())
    assert rule.algorithm is Algorithm.FIXED_WINDOW and rule.failure_mode is FailureMode.OPEN
    assert not rule.shadow and rule.lease == 0 and rule.match.matches("PUT", "/x", "any")
    names = [r.name for r in default_rules()]
    assert names == ["default-per-client-ip", "default-per-api-key"]


def test_the_readme_documents_the_default_rule_set() -> None:
    """What a limiter without a rules file enforces is in limiter_service/README.md, rule for rule."""
    import re

    text = (Path(__file__).resolve().parents[2] / "limiter_service" / "README.md").read_text()
    section = text.split("### Default rule set", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([\w.-]+)` \| `([^`]+)` \| (\d+) / (\d+) s \| (\w+) \| (\w+) \|", section, re.M)
    in_code = [
        (r.name, ", ".join(str(k) for k in r.key), str(r.limit), str(r.window_seconds), r.algorithm.value,
         r.failure_mode.value)
        for r in default_rules()
    ]  # fmt: skip
    assert documented == in_code


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "bad name"}, "name"),
        ({"limit": 0}, "limit"),
        ({"limit": "100"}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": None}, "limit"),
        ({"window_seconds": 1.5}, "window_seconds"),
        ({"window_seconds": 0}, "window_seconds"),
        ({"algorithm": "token_bucket"}, "algorithm"),
        ({"failure_mode": "maybe"}, "failure_mode"),
        ({"shadow": "no"}, "shadow"),
        ({"lease": -1}, "lease"),
        ({"lease": 11}, "lease"),
        ({"lease": 5, "algorithm": "sliding_window"}, "lease"),
        ({"key": []}, "key"),
        ({"key": ["cookie:x"]}, "key"),
        ({"key": ["header:bad header"]}, "key"),
        ({"key": ["client_ip", "client_ip"]}, "key"),
        ({"key": None}, "key"),
        ({"key": [""]}, "key"),
        ({"key": [5]}, "key"),
        ({"match": {"methods": ["GET", ""]}}, "match.methods"),
        ({"match": ["x"]}, "match"),
        ({"match": {"path_prefix": "api"}}, "match.path_prefix"),
        ({"match": {"methods": "GET"}}, "match.methods"),
        ({"match": {"methods": ["G E T"]}}, "match.methods"),
        ({"match": {"hosts": ["a/b"]}}, "match.hosts"),
        ({"match": {"host": ["a"]}}, "match.host"),
        ({"limits": 5}, "limits"),
    ],
)
def test_invalid_fields_are_named_with_their_rule(overrides: dict[str, Any], field: str) -> None:
    data = good(**overrides)
    if overrides.get("key", "") is None or overrides.get("limit", "") is None:
        data["rules"][0] = {k: v for k, v in data["rules"][0].items() if v is not None}
    with pytest.raises(RuleError) as info:
        parse_rules(data)
    assert info.value.field == field
    assert f"field '{field}'" in str(info.value)
    if field != "name":
        assert info.value.rule == "r1" and "'r1'" in str(info.value)


def test_duplicate_names_and_document_shape() -> None:
    rule = good()["rules"][0]
    with pytest.raises(RuleError, match=r"rules\[1\] \('r1'\): field 'name': duplicates rules\[0\]"):
        parse_rules({"rules": [rule, dict(rule)]})
    for doc in (None, [], {"rules": "x"}, {"rules": None}, {"rule": []}):
        with pytest.raises(RuleError):
            parse_rules(doc)
    with pytest.raises(RuleError, match=r"rules\[0\]: must be a mapping"):
        parse_rules({"rules": ["x"]})
    assert parse_rules({"rules": []}) == []


def test_a_misspelt_rules_key_gets_exactly_two_errors_naming_both_keys() -> None:
    with pytest.raises(RuleError) as info:
        parse_rules({"rule": [good()["rules"][0]]})
    assert [e.field for e in info.value.errors] == ["rule", "rules"]
    assert "unknown top-level field 'rule'" in str(info.value)
    assert "field 'rules' must be a list of rules, got None" in str(info.value)


def test_parsed_rules_are_immutable_values() -> None:
    """Rules are shared by every request in flight: none may change one (and they can key caches)."""
    import dataclasses

    [rule] = parse_rules(good())
    for value in (rule, rule.match, rule.key[0]):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, dataclasses.fields(value)[0].name, None)
        assert hash(value) == hash(dataclasses.replace(value))


def test_unreadable_and_invalid_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="cannot read"):
        load_rules_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [\n")
    with pytest.raises(RuleError, match="not valid YAML"):
        load_rules_file(bad)


def test_importing_rules_pulls_in_neither_fastapi_nor_boto3() -> None:
    code = (
        "import sys, limiter_service.rules; print(sorted(m for m in ('fastapi', 'boto3', 'yaml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_invalid_rules_file_stops_the_service_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: api\n    key: [client_ip]\n    limit: -3\n    window_seconds: 60\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "LIMITER_RULES_FILE": str(path)}
    proc = subprocess.run(
        [sys.executable, "-m", "limiter_service", "--port", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "rules[0] ('api'): field 'limit'" in proc.stderr
    check = subprocess.run(
        [sys.executable, "-m", "limiter_service", "check-rules", str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 2 and "field 'limit'" in check.stderr
