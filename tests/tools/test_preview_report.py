"""The offline preview's report and command line: what it shows, what it refuses, and its exit codes.

Runs of the real program come from the session fixtures in tests/conftest.py; the command-line
tests of bad input patch `run_stack` where they fail before it would matter, so they stay fast.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools import preflight, preview, preview_report
from tools.analyzer import analyze_record
from tools.records import unsecret

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "ratelimited-platform"


def build(stack, **kwargs):
    from tools import cost

    record = stack.record
    result = analyze_record(record, policy_config=kwargs.pop("policy_config", None))
    return preview_report.document(record, result, cost=cost.estimate(record), **kwargs)


@pytest.fixture(scope="module")
def dev_doc(dev_preview):
    return build(dev_preview)


@pytest.fixture(scope="module")
def dev_text(dev_doc):
    return preview_report.text(dev_doc)


# --- the plan ------------------------------------------------------------------------------


def test_tree_lists_every_resource_with_type_name_and_create(dev_preview, dev_text):
    rows = [line for line in dev_text.splitlines() if line.startswith(" +   ")]
    shown = {(row.split()[-3], row.split()[-2]) for row in rows if row.endswith(" create")}

    assert len(rows) == len(dev_preview.resources)
    assert shown == {(preview_report.simplify_type(r["type"]), r["name"]) for r in dev_preview.resources}
    # children sit under their component: the ALB under the regional edge component
    edge = next(i for i, row in enumerate(rows) if row.split()[-2:] == ["eu-west-1-edge", "create"])
    alb = next(i for i, row in enumerate(rows) if " eu-west-1-edge-alb " in row)
    assert alb > edge
    assert re.match(r" \+   [│ ]+[├└]─ aws:lb:LoadBalancer ", rows[alb]), rows[alb]


def test_pulumi_style_type_names():
    assert preview_report.simplify_type("aws:s3/bucket:Bucket") == "aws:s3:Bucket"
    assert preview_report.simplify_type("aws:lb/loadBalancer:LoadBalancer") == "aws:lb:LoadBalancer"
    assert preview_report.simplify_type("kubernetes:apps/v1:Deployment") == "kubernetes:apps/v1:Deployment"
    assert preview_report.simplify_type("pulumi:pulumi:Stack") == "pulumi:pulumi:Stack"


def test_summary_counts_add_up(dev_preview, dev_doc, dev_text):
    summary = dev_doc["summary"]

    assert summary["resources"] == len(dev_preview.resources) == summary["operations"]["create"]
    assert sum(summary["kinds"].values()) == summary["resources"]
    match = re.search(
        r"\+ (\d+) to create\n    \((\d+) resources: (\d+) custom, (\d+) components, (\d+) providers, (\d+) stack\)",
        dev_text,
    )
    assert match, dev_text[-800:]
    create, total, *kinds = map(int, match.groups())
    assert create == total == sum(kinds) == len(dev_preview.resources)


def test_outputs_are_shown_and_secrets_masked_everywhere(dev_stack):
    doc = build(dev_stack)
    text = preview_report.text(doc, details=["*apigw-key-*", "*-eks-k8s"])
    document = json.dumps(doc)
    secrets = [
        unsecret(value)
        for resource in dev_stack.resources
        for value in resource["inputs"].values()
        if isinstance(value, dict) and unsecret(value) is not value
    ]

    assert doc["outputs"]["apiKeys"] == {"secret": True}
    assert doc["outputs"]["kubeconfigs"] == {"secret": True}
    assert doc["outputs"]["regions"] == ["eu-west-1"]
    assert re.search(r"^    apiKeys\s*: \[secret\]$", text, re.M)
    assert secrets, "the dev stack registers secret inputs (API key values, the kubeconfig)"
    for secret in secrets:
        assert str(secret) not in document
        assert str(secret) not in text
    assert re.search(r"^      value\s*: \[secret\]$", text, re.M)


def _pack_policies():
    from policies import all_policies

    return all_policies()


def test_policy_results_name_the_pack_version_and_what_each_policy_judged(dev_preview, dev_doc, dev_text):
    [pack] = dev_doc["policies"]["packs"]
    by_name = {p["name"]: p for p in pack["policies"]}
    albs = [r["urn"] for r in dev_preview.of_type("aws:lb/loadBalancer:LoadBalancer")]

    assert pack["version"] == "0.1.0"  # policies/PulumiPolicy.yaml, as the CLI reports it
    levels = [p["default_enforcement_level"] for p in pack["policies"]]
    assert len(levels) == len(_pack_policies()) and set(levels) == {"mandatory", "advisory"}
    assert (
        f"{pack['name']}@v0.1.0: {len(levels)} policies "
        f"({levels.count('mandatory')} mandatory, {levels.count('advisory')} advisory)" in dev_text
    )
    assert set(albs) <= set(by_name["waf-before-alb"]["judged"])
    assert by_name["waf-before-alb"]["judged_by_type"]["aws:lb/loadBalancer:LoadBalancer"] == len(albs)
    assert re.search(r"waf-before-alb\s+mandatory: judged 2 aws:lb:LoadBalancer, .*0 violations", dev_text)
    # dev has no CloudFront: the policy says so instead of a silent pass
    assert by_name["waf-before-cloudfront"]["judged"] == []
    assert re.search(r"waf-before-cloudfront\s+mandatory: nothing to judge, 0 violations", dev_text)


def test_an_exempt_resource_is_not_judged(dev_preview):
    encryption = build(dev_preview, policy_config={"dynamodb-encryption": {"exemptResources": ["*-counters"]}})
    judged = next(p for p in encryption["policies"]["packs"][0]["policies"] if p["name"] == "dynamodb-encryption")

    assert [dev_preview.by_urn[u]["name"] for u in judged["judged"]] == ["eu-west-1-data-app-orders"]


def test_policy_config_is_reflected_in_the_header_and_the_json(dev_preview):
    doc = build(
        dev_preview,
        policy_config={
            "all": "mandatory",
            "ecr-scan-on-push": "disabled",
            "dynamodb-encryption": {"requireCustomerManagedKey": True},
        },
    )
    text = preview_report.text(doc)
    by_name = {p["name"]: p for p in doc["policies"]["packs"][0]["policies"]}

    count = len(_pack_policies())
    assert f"{count} policies ({count - 1} mandatory, 1 disabled)" in text
    assert by_name["alb-access-logs"]["enforcement_level"] == "mandatory"
    assert by_name["alb-access-logs"]["default_enforcement_level"] == "advisory"
    assert re.search(r"alb-access-logs\s+mandatory \(default advisory\):", text)
    assert by_name["ecr-scan-on-push"]["enforcement_level"] == "disabled"
    assert by_name["dynamodb-encryption"]["config"] == {"exemptResources": [], "requireCustomerManagedKey": True}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"waf-before-alb": {"exemptResources": "eu-west-1-edge-alb"}}, 'exemptResources to "eu-west-1-edge-alb"'),
        ({"dynamodb-autoscaling": {"onDemandAllowed": "no"}}, "must be a boolean"),
        ({"waf-before-alb": {"exemptResource": ["x"]}}, "did you mean 'exemptResources'?"),
        ({"waf-before-al": "mandatory"}, "did you mean 'waf-before-alb'?"),
        ({"waf-before-alb": 3}, "give an enforcement level"),
        ({"all": {"exemptResources": ["x"]}}, "'all' takes only an enforcement level"),
        (["waf-before-alb"], "must be a JSON object"),
    ],
)
def test_policy_config_outside_the_schema_is_refused(config, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        analyze_record({"project": PROJECT, "stack": "dev", "resources": []}, policy_config=config)


def test_details_show_the_inputs_of_matching_resources(dev_doc):
    lines = preview_report.details_lines(dev_doc, ["eu-west-1-edge-alb"])
    text = "\n".join(lines)

    assert lines[0] == "  + aws:lb/loadBalancer:LoadBalancer: (create)"
    assert "[urn=urn:pulumi:dev::ratelimited-platform::" in text
    assert re.search(r"dropInvalidHeaderFields\s*: true", text)
    assert re.search(r"subnets\s*: \[\n\s+\[0\]: \[unknown\]", text)


# --- JSON ----------------------------------------------------------------------------------


def test_json_lists_every_resource_with_the_documented_keys(dev_preview, dev_doc):
    keys = {
        "urn",
        "type",
        "name",
        "parent",
        "provider",
        "custom",
        "component",
        "region",
        "operation",
        "inputs",
        "dependencies",
        "property_dependencies",
    }

    assert dev_doc["schema_version"] == 1
    assert [r["urn"] for r in dev_doc["resources"]] == [r["urn"] for r in dev_preview.resources]
    assert all(set(r) == keys for r in dev_doc["resources"])
    association = next(r for r in dev_doc["resources"] if r["name"] == "eu-west-1-edge-alb-waf")
    alb = dev_preview.named("eu-west-1-edge-alb")
    assert association["property_dependencies"]["resourceArn"] == [alb["urn"]]
    assert association["inputs"]["resourceArn"] == {"unknown": True}
    assert association["provider"].endswith("pulumi:providers:aws::aws-eu-west-1")
    assert association["region"] == "eu-west-1"
    assert set(dev_doc) == {
        "schema_version",
        "project",
        "stack",
        "mode",
        "config",
        "without",
        "resources",
        "outputs",
        "policies",
        "preflight",
        "cost",
        "summary",
    }
    assert dev_doc["config"]["regions"] == ["eu-west-1"]
    assert dev_doc["config"]["kubernetesVersion"] == "1.34"  # a string key stays a string
    assert dev_doc["config"]["deletionProtection"] is False
    json.dumps(dev_doc)  # serialisable as is


def test_readme_documents_every_json_key(dev_doc):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### The JSON document", 1)[1].split("\n## ", 1)[0]

    missing = [key for key in dev_doc if f"`{key}`" not in section]
    missing += [key for key in dev_doc["summary"] if f"`{key}`" not in section]
    assert missing == []


# --- --without ------------------------------------------------------------------------------


def test_without_warns_when_a_kept_resource_references_the_dropped_one(dev_preview):
    record, dropped = preview_report.without(dev_preview.record, ["eu-west-1-edge-waf"])

    found = preview_report.dangling(dev_preview.record, record)

    assert "eu-west-1-edge-waf" in dropped
    by_name = {item["name"]: item for item in found}
    assert {"name": "eu-west-1-edge-waf", "via": "webAclArn"} in [
        {k: r[k] for k in ("name", "via")} for r in by_name["eu-west-1-edge-alb-waf"]["references"]
    ]
    doc = build_without(dev_preview, record, dropped, found)
    text = preview_report.text(doc)
    assert "warning: 'eu-west-1-edge-alb-waf' (aws:wafv2/webAclAssociation:WebAclAssociation) is kept" in text
    assert doc["without"]["dangling"] == found


def build_without(stack, record, dropped, found):
    result = analyze_record(record)
    return preview_report.document(
        record, result, patterns=["eu-west-1-edge-waf"], dropped=dropped, dangling_refs=found
    )


def test_without_a_leaf_resource_warns_about_nothing(dev_preview):
    record, _ = preview_report.without(dev_preview.record, ["eu-west-1-edge-alb-waf"])

    assert preview_report.dangling(dev_preview.record, record) == []


# --- preflight ------------------------------------------------------------------------------


def finding(stack):
    alb = stack.named("eu-west-1-edge-alb")
    return preflight.Finding(
        rule="name-length",
        urn=alb["urn"],
        name=alb["name"],
        type=alb["type"],
        message="The load balancer 'eu-west-1-edge-alb' gets a name longer than 32 characters.",
        source="terraform-provider-aws internal/service/elbv2/validate.go",
    )


@pytest.fixture
def patched_run(monkeypatch, dev_preview):
    monkeypatch.setattr("tools.mocked_run.run_stack", lambda *a, **k: json.loads(json.dumps(dev_preview.record)))


def test_a_preflight_error_fails_the_run_like_a_mandatory_violation(monkeypatch, capsys, patched_run, dev_preview):
    monkeypatch.setattr("tools.preflight.run", lambda record: [finding(dev_preview)])
    monkeypatch.setattr("tools.preflight.RULES", [("name-length", "Names fit the type's maximum length.")])

    assert preview.main(["--stack", "dev"]) == 1
    text = capsys.readouterr().out
    assert f"Preflight: 1 rules over {len(dev_preview.resources)} resources, 1 error(s)" in text
    assert (
        "    error  [name-length] The load balancer 'eu-west-1-edge-alb' gets a name longer than 32 characters.\n"
        "           source: terraform-provider-aws internal/service/elbv2/validate.go\n"
    ) in text
    assert "Preflight: 1 error(s)" in text and "Result: fails (exit 1)" in text

    assert preview.main(["--stack", "dev", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["preflight"]["rules"] == [{"id": "name-length", "description": "Names fit the type's maximum length."}]
    assert [(e["rule"], e["name"]) for e in data["preflight"]["errors"]] == [("name-length", "eu-west-1-edge-alb")]
    assert data["preflight"]["errors"][0]["severity"] == "error"
    assert (data["summary"]["preflight_errors"], data["summary"]["exit_code"]) == (1, 1)


def test_no_preflight_finding_passes(monkeypatch, capsys, patched_run):
    monkeypatch.setattr("tools.preflight.run", lambda record: [])

    assert preview.main(["--stack", "dev"]) == 0
    assert "Result: passes (exit 0)" in capsys.readouterr().out


# --- bad input: one line, exit 2 -------------------------------------------------------------


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--policy-config", "{missing}"], "--policy-config {missing}: no such file"),
        (["--policy-config", "{bad}"], "--policy-config {bad} line 1, column 2: invalid JSON"),
        (["--policy-config", "{string}"], 'exemptResources to "eu-*", which does not fit its config schema'),
        (["--set", "regions=eu-west-1"], "--set regions=eu-west-1: 'regions' takes an array of strings"),
        (
            ["--set", "cloudFrontEnabled=true"],
            "--set cloudFrontEnabled: unknown config key; did you mean 'cloudfrontEnabled'?",
        ),
        (["--set", "deletionProtection=yes"], "'deletionProtection' takes a boolean (true or false)"),
        (["--set", 'wafRateLimit="many"'], "'wafRateLimit' takes an integer, not the string 'many'"),
        (["--set", "aws:region=eu-west-1"], "--set aws:region: only this project's keys can be set"),
        (["--set", "domain"], "--set 'domain': expected KEY=VALUE"),
        (
            ["--stack", "prd"],
            "--stack prd: no stack file Pulumi.prd.yaml; stacks here: dev, prod; did you mean 'prod'?",
        ),
        (["--without", "no-such-*"], "--without no-such-*: matched no resource name"),
        (["--details", "no-such-*"], "--details no-such-*: matched no resource name or URN"),
        (["--program", "no_such_program.py"], "--program no_such_program.py: no such file"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, patched_run, args, expected):
    files = {
        "missing": str(tmp_path / "absent.json"),
        "bad": write(tmp_path, "bad.json", "{waf-before-alb: mandatory}"),
        "string": write(tmp_path, "string.json", '{"waf-before-alb": {"exemptResources": "eu-*"}}'),
    }
    args = [a.format(**files) for a in args]
    expected = expected.format(**files)

    try:
        code = preview.main(args)
    except SystemExit as exc:  # argparse
        code = exc.code
    captured = capsys.readouterr()

    assert code == 2
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("error: ") and expected in line, line


def test_set_with_the_project_prefix_sets_the_key(capsys, monkeypatch, dev_preview):
    seen = {}

    def fake_run(stack, **kwargs):
        seen.update(kwargs["config_overrides"])
        return json.loads(json.dumps(dev_preview.record))

    monkeypatch.setattr("tools.mocked_run.run_stack", fake_run)

    assert preview.main(["--set", f"{PROJECT}:domain=dev2.example.com", "--set", "kubernetesVersion=1.30"]) == 0
    assert seen == {"domain": "dev2.example.com", "kubernetesVersion": "1.30"}


@pytest.fixture
def project_dir(tmp_path, monkeypatch):
    """A copy of Pulumi.yaml in a temporary project directory, for stack files with mistakes."""
    from tools import stack_files

    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    monkeypatch.setattr(stack_files, "ROOT", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("stack_file", "expected"),
    [
        (
            "config:\n  ratelimited-platform:regions: [eu-west-1\n  ratelimited-platform:domain: x.example.com\n",
            "Pulumi.broken.yaml line 3, column 30: invalid YAML: expected ',' or ']', but got ':' "
            "(while parsing a flow sequence)",
        ),
        (
            "config:\n  ratelimited-platform:domain: x.example.com\n  ratelimited-platform:cloudFrontEnabled: true\n",
            "Pulumi.broken.yaml line 3: unknown config key 'ratelimited-platform:cloudFrontEnabled'; "
            "did you mean 'cloudfrontEnabled'? (every key is declared in Pulumi.yaml)",
        ),
        (
            "config:\n  ratelimited-platform:kubernetesVersion: 1.30\n",
            "Pulumi.broken.yaml line 2: 'kubernetesVersion' takes a string, not the number 1.3; YAML reads an "
            'unquoted 1.30 as a number: quote it, kubernetesVersion: "1.30"',
        ),
        (
            "config:\n  ratelimited-platform:wafRateLimit: lots\n",
            "Pulumi.broken.yaml line 2: 'wafRateLimit' takes an integer, not the string 'lots'",
        ),
    ],
)
def test_stack_file_mistakes_name_the_file_and_line(project_dir, capsys, stack_file, expected):
    (project_dir / "Pulumi.broken.yaml").write_text(stack_file)

    assert preview.main(["--stack", "broken"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == f"error: {expected}"


@pytest.mark.slow
def test_a_program_bug_names_the_file_and_line_and_verbose_gives_the_traceback(tmp_path):
    program = tmp_path / "buggy.py"
    program.write_text(
        "import stack_config\n\n\ndef ratio(cfg):\n    return cfg.waf_rate_limit / 0\n\n\nratio(stack_config.load())\n"
    )

    def run(*extra):
        return subprocess.run(
            [sys.executable, "-m", "tools.preview", "--program", str(program), *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    plain = run()
    assert plain.returncode == 2
    [line] = plain.stderr.splitlines()
    assert line == (
        f"error: the program failed under mocks at {program}:5 in ratio: ZeroDivisionError: division by zero; "
        "--verbose shows the traceback"
    )
    verbose = run("--verbose")
    assert verbose.returncode == 2
    assert "Traceback (most recent call last)" in verbose.stderr
    assert verbose.stderr.rstrip().splitlines()[-1].startswith(f"error: the program failed under mocks at {program}:5")


# --- scripts/preview.sh ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "stack"),
    [(["--help"], None), (["prod", "--help"], None), (["--stack", "prd"], "prd"), (["prd"], "prd")],
)
def test_preview_script_takes_flags_with_or_without_a_stack_first(args, stack):
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "preview.sh"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    if stack is None:
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("usage: python -m tools.preview")
    else:
        assert done.returncode == 2
        assert done.stderr.splitlines()[-1].startswith(f"error: --stack {stack}: no stack file Pulumi.{stack}.yaml")


def test_the_preview_installs_only_the_program_and_preview_requirements():
    preview_reqs = (ROOT / "requirements-preview.txt").read_text().splitlines()
    packages = {line.split(">")[0].split("<")[0].split("[")[0] for line in preview_reqs if line and line[0].isalpha()}

    assert "-r requirements-preview.txt" in (ROOT / "requirements.txt").read_text().splitlines()
    assert packages == {
        "pulumi",
        "pulumi-aws",
        "pulumi-eks",
        "pulumi-kubernetes",
        "pulumi-docker-build",
        "pulumi-random",
        "pyyaml",
        "pulumi-policy",
        "jsonschema",
        "policy_sentry",
    }
    script = (ROOT / "scripts" / "preview.sh").read_text()
    assert "scripts/setup.sh --preview-only" in script
    # npm: the preview installs the package's "dependencies" only (npm ci --omit=dev), the preflight's
    package = json.loads((ROOT / "package.json").read_text())
    assert set(package["dependencies"]) == {"@kubernetes-models/istio", "typescript"}
    assert {"dynalite", "mermaid", "jsdom"} <= set(package["devDependencies"])
    assert "npm ci --omit=dev" in (ROOT / "scripts" / "setup.sh").read_text()


def test_a_config_error_in_the_program_is_one_line_naming_the_stack_file(monkeypatch, capsys):
    from tools.mocked_run import MockedRunError

    def refuse(*args, **kwargs):
        raise MockedRunError(
            "ConfigError: Config key 'clusterPublicAccessCidrs' must not contain 0.0.0.0/0.",
            kind="ConfigError",
            details="Traceback (most recent call last):\n  ...\nstack_config.ConfigError: ...\n",
        )

    monkeypatch.setattr("tools.mocked_run.run_stack", refuse)

    assert preview.main(["--stack", "dev"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "error: stack config (Pulumi.dev.yaml): Config key 'clusterPublicAccessCidrs' must not contain 0.0.0.0/0.\n"
    )


def test_a_bug_in_the_preview_itself_is_one_line_and_exit_2(monkeypatch, capsys, patched_run):
    def broken(record):
        return {}["lines"]

    monkeypatch.setattr("tools.cost.estimate", broken)

    assert preview.main(["--stack", "dev"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: the offline preview itself failed at tools/preview.py:")
    assert line.endswith("KeyError: 'lines'; --verbose shows the traceback")
