"""Preflight: what AWS, IAM, Helm or Kubernetes would refuse at `pulumi up`, found in a mocked run.

The offline preview runs it over the program's registrations with outputs known (an update under the
project's mocks), and reports each finding as an error (exit 1), like a mandatory policy violation.

    from tools import preflight
    findings = preflight.run(record)      # record: tools.mocked_run.run_stack(...)

Each module holds one area's rules with their upstream sources: names.py (physical names), iam.py (policy
grammar, actions, IRSA trust), kubernetes.py (Istio objects against the upstream CRDs, the gateway chart's
values against its schema), teardown.py (deletion guards), values.py (other values an AWS API refuses:
VPC DNS for EKS, ECR lifecycle rules, integration timeouts, log retention).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.preflight import iam, kubernetes, names, teardown, values
from tools.preflight.findings import Finding

_MODULES = (names, iam, kubernetes, teardown, values)

RULES: list[tuple[str, str]] = [rule for module in _MODULES for rule in module.RULES]

__all__ = ["RULES", "Finding", "run"]


def run(record: Mapping[str, Any]) -> list[Finding]:
    """Every finding of every rule over the recorded registrations, in registration order per module."""
    return [finding for module in _MODULES for finding in module.check(record)]
