"""The files an adopting team reads: the license, the changelog, the how-tos in docs/ and the references
between files.

The how-tos are tested where they can be: every YAML fragment of a stack file is merged into that stack's
config (list-valued keys get the fragment's items appended, other keys replaced), validated, and previewed
under mocks with the policy pack judging; every config key, stack output and link they name exists; the
policy pack page is what tools/policy_docs.py generates from the pack.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import stack_config
from tools import policy_docs, stack_files
from tools.analyzer import analyze_record
from tools.mocked_run import run_stack
from tools.records import RecordedStack

ROOT = stack_files.ROOT
DOCS = ROOT / "docs"
PROJECT = stack_files.project()["name"]
HOW_TOS = sorted(p.name for p in DOCS.glob("*.md"))
_FENCE = re.compile(r"```yaml\n(.*?)```", re.S)
_LIST_KEYS = {"microservices", "appTables", "rateLimitRules", "apiConsumers", "nodeGroups"}


def _fragments(page: str) -> list[dict]:
    """The stack-config fragments (YAML blocks with a top-level `config:`) of a page."""
    found = []
    for block in _FENCE.findall((DOCS / page).read_text()):
        data = yaml.safe_load(block)
        if isinstance(data, dict) and "config" in data:
            found.append({k.removeprefix(f"{PROJECT}:"): v for k, v in data["config"].items()})
    return found


def _merged(stack: str, fragment: dict) -> tuple[dict, dict]:
    """(the stack's merged config with the fragment, the overrides that make it)."""
    base = copy.deepcopy(stack_files.merged_config(stack))
    overrides = {}
    for key, value in fragment.items():
        overrides[key] = base[key] + value if key in _LIST_KEYS and key in base else value
    return {**base, **overrides}, overrides


def test_license_is_apache_2():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 150


def test_changelog_has_an_unreleased_section():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog") and "## [Unreleased]" in text


def test_the_how_tos_exist_and_are_indexed():
    expected = {
        "add-a-microservice.md", "rate-limit-rules.md", "deploy.md", "after-deploy.md", "teardown.md",
        "upgrade.md", "policy-pack.md",
    }  # fmt: skip
    assert expected <= set(HOW_TOS)
    index = (DOCS / "README.md").read_text()
    for page in expected:
        assert f"]({page})" in index, page


# -- config fragments parse and preview --------------------------------------------------------------------
# Fragments of Pulumi.dev.yaml; deploy.md's is a new stack over the project defaults (tested below).
FRAGMENT_PAGES = {"add-a-microservice.md": "dev", "rate-limit-rules.md": "dev", "upgrade.md": "dev"}


@pytest.mark.parametrize(("page", "stack"), sorted(FRAGMENT_PAGES.items()))
def test_config_fragments_parse(page, stack):
    fragments = _fragments(page)
    assert fragments, f"{page} has no stack-config fragment"
    for fragment in fragments:
        merged, _ = _merged(stack, fragment)
        stack_config.parse(merged, stack=stack)


def test_the_deploy_fragment_is_a_whole_stack_that_previews():
    (fragment,) = _fragments("deploy.md")
    defaults = {k: d["default"] for k, d in stack_files.project()["config"].items()}
    cfg = stack_config.parse({**defaults, **fragment}, stack="staging")
    assert cfg.regions == ("eu-central-1",) and cfg.domain == "staging.example.com"
    # A stack file with only the fragment: every other key at its default (the dev file's values overridden).
    stack = RecordedStack(run_stack("dev", preview=True, config_overrides={**defaults, **fragment}))
    assert [c["name"] for c in stack.of_type("ratelimited:index:Services")] == ["eu-central-1-services"]
    assert not stack.of_type("ratelimited:index:ApiGateway")


@pytest.fixture(scope="module")
def microservice_preview() -> tuple[RecordedStack, dict]:
    (fragment,) = _fragments("add-a-microservice.md")
    _, overrides = _merged("dev", fragment)
    return RecordedStack(run_stack("dev", preview=True, config_overrides=overrides)), fragment


def test_the_microservice_fragment_previews_with_its_role_and_route(microservice_preview):
    stack, fragment = microservice_preview
    (spec,) = fragment["microservices"]
    names = {r["name"] for r in stack}
    assert "eu-west-1-services-payments-deployment" in names
    assert "eu-west-1-services-payments-role" in names, "tables and secrets give it an IRSA role"
    assert "eu-west-1-data-app-payments" in names
    (table,) = [
        r for r in stack.of_type("kubernetes:networking.istio.io/v1:VirtualService") if r["name"].endswith("web-routes")
    ]
    assert spec["name"] in [e["name"] for e in table["inputs"]["spec"]["http"]]


def test_the_microservice_fragment_passes_the_policy_pack(microservice_preview):
    stack, _ = microservice_preview
    result = analyze_record(stack.record)
    assert not result.mandatory, [d.message for d in result.mandatory]


def test_the_rule_fragment_reaches_the_limiter():
    (fragment,) = _fragments("rate-limit-rules.md")
    merged, _ = _merged("dev", fragment)
    rules = stack_config.parse(merged, stack="dev").rate_limit_rules
    (rule,) = [r for r in rules if r["name"] == "search-per-ip"]
    assert rule["match"]["hosts"] == ["dev.example.com", "www.dev.example.com", "origin.dev.example.com"]


# -- names in the docs exist ---------------------------------------------------------------------------------
def _all_docs_text() -> str:
    return "\n".join((DOCS / page).read_text() for page in HOW_TOS) + (ROOT / "README.md").read_text()


def test_config_keys_named_in_the_docs_are_declared():
    declared = set(stack_files.project()["config"])
    text = _all_docs_text()
    named = set(re.findall(rf"{PROJECT}:([A-Za-z]+)", text))
    named |= set(re.findall(r"pulumi config set (?:--path ')?([A-Za-z]+)", text))
    assert named and named <= declared, sorted(named - declared)


def test_stack_outputs_named_in_the_docs_are_exported(dev_stack, prod_stack):
    exported = set(dev_stack.exports()) | set(prod_stack.exports())
    named = set(re.findall(r"pulumi stack output ([A-Za-z]+)", _all_docs_text()))
    assert named and named <= exported, sorted(named - exported)
    regional = set(next(iter(prod_stack.exports()["regional"].values())))
    assert {"albDnsName", "apiRegionalDomain", "clusterName"} <= regional


def test_links_in_the_docs_resolve():
    for page in [*(DOCS / p for p in HOW_TOS), ROOT / "README.md"]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith("http"):
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_the_microservice_page_documents_every_field_with_its_default():
    text = (DOCS / "add-a-microservice.md").read_text()
    for field in stack_config.MICROSERVICE_FIELDS:
        assert re.search(rf"^\| `{field}`( / `\w+`)? \| [^|]+ \|", text, re.M) or re.search(
            rf"^\| `\w+` / `{field}` \|", text, re.M
        ), f"{field} has no row with its default"


# -- the policy pack page -----------------------------------------------------------------------------------
def test_the_policy_pack_page_is_generated_from_the_pack():
    assert (DOCS / "policy-pack.md").read_text() == policy_docs.render(), "run python -m tools.policy_docs"


def test_the_policy_pack_page_names_every_policy_with_its_level():
    from policies import all_policies

    text = (DOCS / "policy-pack.md").read_text()
    for policy in all_policies():
        level = str(getattr(policy.enforcement_level, "value", policy.enforcement_level)).lower()
        assert f"| [`{policy.name}`](#{policy.name}) | {level} |" in text


def test_the_generator_refuses_a_policy_without_a_reason(monkeypatch):
    from policies import storage

    monkeypatch.setattr(storage, "__doc__", "Policies for S3.\n")
    with pytest.raises(ValueError, match="s3-block-public-access"):
        policy_docs.render()


# -- no file points to a file that is not in the repository ----------------------------------------------------
# Each entry is a reference in a file another change owns, to be fixed there; the test fails when the
# reference is gone, so that the entry goes too.
OWNED_ELSEWHERE: set[tuple[str, str]] = set()
# Names of files a command writes, not references.
_OUTPUT_NAMES = {"plan.md", "dev.md", "broken.md", "-request.md"}


def _tracked_text_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [p for p in listed.split() if Path(p).suffix in (".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".txt")]


def test_no_file_points_to_a_file_outside_the_repository():
    files = _tracked_text_files()
    basenames = {Path(p).name for p in files} | {Path(p).name for p in map(str, DOCS.glob("*.md"))}
    found = set()
    for path in files:
        if path == "tests/test_docs.py":  # names the references above on purpose
            continue
        text = (ROOT / path).read_text(errors="replace")
        for ref in re.findall(r"(?:\.\./)*[A-Za-z0-9_./-]*[A-Za-z0-9_-]+\.md\b", text):
            name = Path(ref).name
            outside = ref.startswith("../") and not (ROOT / path).parent.joinpath(ref).resolve().is_relative_to(ROOT)
            if outside or (name not in basenames and name not in _OUTPUT_NAMES):
                found.add((path, ref))
        if re.search(r"\bARCHITECTURE\b", text):
            found.add((path, "ARCHITECTURE.md" if "ARCHITECTURE.md" in text else "ARCHITECTURE"))
    unexpected = sorted(found - OWNED_ELSEWHERE)
    assert not unexpected, f"references to files not in the repository: {unexpected}"
    fixed = sorted(OWNED_ELSEWHERE - found)
    assert not fixed, f"fixed: remove from OWNED_ELSEWHERE: {fixed}"


def test_the_offline_preview_takes_the_flags_the_docs_use():
    """deploy.md and upgrade.md run `python -m tools.preview --stack ... --set KEY=JSON`."""
    proc = subprocess.run(
        [sys.executable, "-m", "tools.preview", "--help"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "--stack" in proc.stdout and "--set" in proc.stdout
