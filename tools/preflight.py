"""Preflight: what AWS itself validates at `pulumi up`, checked on the recorded stack.

Interface used by the offline preview: `run(record)` returns the findings (each one an error),
`RULES` lists (rule id, one-line description).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    rule: str
    urn: str
    name: str
    type: str
    message: str
    source: str


RULES: list[tuple[str, str]] = []


def run(record: dict[str, Any]) -> list[Finding]:
    return []
