"""Read Pulumi.yaml and Pulumi.<stack>.yaml the way the Pulumi CLI merges them into the program's config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def project() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


def stack_names() -> list[str]:
    return sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


def merged_config(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Project defaults, then the stack file, then overrides: {key without project prefix: value}."""
    proj = project()
    name = proj["name"]
    values: dict[str, Any] = {}
    for key, decl in (proj.get("config") or {}).items():
        if isinstance(decl, dict) and "default" in decl:
            values[key] = decl["default"]
    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"No stack file {path.name}; stacks here: {', '.join(stack_names())}.")
    for full_key, value in ((yaml.safe_load(path.read_text()) or {}).get("config") or {}).items():
        ns, _, key = full_key.partition(":")
        if ns == name:
            values[key] = value
    values.update(overrides or {})
    return values


def engine_config(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, str]:
    """The config as the engine hands it to a program: '<project>:<key>' -> string (JSON for non-strings)."""
    name = project()["name"]
    return {
        f"{name}:{key}": value if isinstance(value, str) else json.dumps(value)
        for key, value in merged_config(stack, overrides).items()
    }
