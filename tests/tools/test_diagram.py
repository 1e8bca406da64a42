"""The Mermaid request path: what it connects, found by type and kind, and that Mermaid itself parses it.

The parse test runs the `mermaid` npm package's parser under jsdom (tests/tools/mermaid_parse.mjs);
`npm ci` installs both (package.json). Without them the test fails: a diagram nobody parses could
be broken in every README it is pasted into.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tools import diagram

ROOT = Path(__file__).resolve().parents[2]
PARSER = ROOT / "tests" / "tools" / "mermaid_parse.mjs"


def graph(text):
    """(labels by node id, edges as (source label, edge label, target label), subgraph titles)."""
    labels = dict(re.findall(r"^\s+(n\d+)\[\(?\"(.*?)\"\)?\]$", text, re.M))
    edges = [
        (labels[a], label or "", labels[b])
        for a, label, b in re.findall(r"^\s+(n\d+) -->(?:\|(.*?)\|)? (n\d+)$", text, re.M)
    ]
    subgraphs = re.findall(r'^\s+subgraph \w+\["(.*?)"\]$', text, re.M)
    return labels, edges, subgraphs


def reaches(edges, start, goal):
    """True when a path leads from the node labelled `start` to the one labelled `goal`."""
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node in seen:
            continue
        seen.add(node)
        todo += [target for source, _, target in edges if source == node]
    return False


def test_prod_request_path_from_route53_to_the_tables(prod_preview):
    labels, edges, subgraphs = graph(diagram.request_path(prod_preview.record))

    assert subgraphs == ["eu-west-1", "us-east-1"]
    assert (
        "Route 53<br/>example.com, www.example.com",
        "alias",
        "WAF web ACL (CLOUDFRONT)<br/>global-edge-cloudfront-waf",
    ) in edges
    assert ("WAF web ACL (CLOUDFRONT)<br/>global-edge-cloudfront-waf", "", "CloudFront<br/>global-edge-cdn") in edges
    for region in ("eu-west-1", "us-east-1"):
        origin = f"Route 53<br/>origin.example.com<br/>latency {region}"
        waf = f"WAF web ACL (REGIONAL)<br/>{region}-edge-waf"
        alb = f"ALB<br/>{region}-edge-alb"
        web = f"Istio gateway<br/>istio-ingress-web ({region}-mesh-gateway-web)"
        api = f"Istio gateway<br/>istio-ingress-api ({region}-mesh-gateway-api)"
        limiter = f"limiter<br/>{region}-limiter-deployment"
        counters = f"DynamoDB table<br/>{region}-data-counters"
        assert ("CloudFront<br/>global-edge-cdn", "origin", origin) in edges
        assert (origin, "alias", waf) in edges and (waf, "", alb) in edges
        assert (alb, "target group", web) in edges
        assert (web, "ext_authz", limiter) in edges and (limiter, "", counters) in edges
        assert (web, "route", f"service<br/>{region}-services-orders-deployment") in edges
        # the API path: custom domain -> its WAF -> stage -> VPC link -> internal NLB -> API gateway
        stage = f"API Gateway stage<br/>{region}-edge-apigw-stage"
        link = f"VPC link<br/>{region}-edge-apigw-vpc-link"
        nlb = f"internal NLB<br/>{region}-edge-apigw-nlb"
        assert (stage, "integration", link) in edges and (link, "", nlb) in edges
        assert (nlb, "target group", api) in edges and (api, "ext_authz", limiter) in edges
        assert reaches(edges, f"Route 53<br/>api.example.com<br/>latency {region}", stage)
        assert reaches(edges, f"API Gateway domain<br/>{region}-edge-apigw-domain", waf)
    # a region's gateways reach only their own region's workloads
    assert not reaches(edges, "ALB<br/>eu-west-1-edge-alb", "DynamoDB table<br/>us-east-1-data-counters")
    assert len(labels) == len(set(re.findall(r"^\s+(n\d+)\[", diagram.request_path(prod_preview.record), re.M)))


def test_dev_request_path_without_cloudfront(dev_preview):
    _, edges, subgraphs = graph(diagram.request_path(dev_preview.record))

    assert subgraphs == ["eu-west-1"]
    assert not any("CloudFront" in source or "CloudFront" in target for source, _, target in edges)
    # <domain> aliases the origin latency set, which aliases the ALB behind its web ACL
    assert (
        "Route 53<br/>dev.example.com, www.dev.example.com",
        "alias",
        "Route 53<br/>origin.dev.example.com<br/>latency eu-west-1",
    ) in edges
    assert reaches(
        edges, "Route 53<br/>dev.example.com, www.dev.example.com", "DynamoDB table<br/>eu-west-1-data-counters"
    )


def test_fenced_for_markdown(dev_preview):
    text = diagram.fenced(diagram.request_path(dev_preview.record))

    assert text.startswith("```mermaid\nflowchart LR\n")
    assert text.endswith("\n```\n")


def parse(files):
    node = shutil.which("node")
    assert node, "node is needed to parse the diagrams with the mermaid package"
    assert (ROOT / "node_modules" / "mermaid").is_dir(), "run `npm ci`: the mermaid and jsdom packages are missing"
    done = subprocess.run(
        [node, str(PARSER), *map(str, files)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


@pytest.mark.slow
def test_mermaid_parses_every_diagram_and_rejects_a_broken_one(tmp_path, dev_preview, prod_preview):
    files = []
    for name, stack in (("dev", dev_preview), ("prod", prod_preview)):
        request = tmp_path / f"{name}-request.md"
        request.write_text(diagram.fenced(diagram.request_path(stack.record)))
        dependencies = tmp_path / f"{name}-dependencies.mmd"
        dependencies.write_text(diagram.dependencies(stack.record))
        files += [request, dependencies]
    broken = tmp_path / "broken.md"
    broken.write_text(diagram.fenced(diagram.request_path(dev_preview.record).replace('"]', '"', 1)))

    code, results, stderr = parse([*files, broken])

    assert code == 1, stderr
    assert [r["ok"] for r in results] == [True] * len(files) + [False], results
    assert {r.get("diagramType") for r in results[:-1]} == {"flowchart-v2"}
