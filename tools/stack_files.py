"""Read Pulumi.yaml and Pulumi.<stack>.yaml the way the Pulumi CLI merges them into the program's config.

Bad input raises StackFileError with one line that names the file (and line) or the flag, what was
given and what is allowed: a YAML syntax error, a key Pulumi.yaml does not declare (with a "did you
mean"), a value of the wrong type (an unquoted `1.30` for a string key is the number 1.3 in YAML,
and the message says to quote it).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


class StackFileError(ValueError):
    """A stack file, Pulumi.yaml or a --set override is invalid; the message is one line naming it."""


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise StackFileError(_yaml_error(path, exc)) from exc


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"{path.name} line {mark.line + 1}, column {mark.column + 1}" if mark is not None else path.name
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    return f"{where}: invalid YAML: {problem}" + (f" ({context})" if context else "")


def project() -> dict[str, Any]:
    data = _load(ROOT / "Pulumi.yaml")
    if not isinstance(data, dict) or "name" not in data:
        raise StackFileError("Pulumi.yaml: expected a mapping with a 'name' (the project file)")
    return data


def declarations() -> dict[str, Any]:
    """Config key -> its declaration in Pulumi.yaml."""
    return dict(project().get("config") or {})


def stack_names() -> list[str]:
    return sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


def did_you_mean(given: str, choices: Any) -> str:
    close = difflib.get_close_matches(given, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {str(c).lower(): c for c in choices}
        close = [lowered[given.lower()]] if given.lower() in lowered else []
    return f"; did you mean '{close[0]}'?" if close else ""


def _lines(path: Path) -> dict[str, tuple[int, str]]:
    """config key -> (line, the scalar's text as written) in a stack file."""
    found: dict[str, tuple[int, str]] = {}
    node = yaml.compose(path.read_text())
    if not isinstance(node, yaml.MappingNode):
        return found
    for key, value in node.value:
        if getattr(key, "value", None) == "config" and isinstance(value, yaml.MappingNode):
            for k, v in value.value:
                text = v.value if isinstance(v, yaml.ScalarNode) else ""
                found[str(k.value)] = (k.start_mark.line + 1, text)
    return found


def _type_words(declaration: dict[str, Any]) -> str:
    kind = declaration.get("type")
    if kind == "array":
        return f"an array of {(declaration.get('items') or {}).get('type', 'value')}s"
    if kind in ("integer", "boolean", "string"):
        return {"integer": "an integer", "boolean": "a boolean (true or false)", "string": "a string"}[kind]
    default = declaration.get("default")
    return "a list" if isinstance(default, list) else "an object" if isinstance(default, dict) else "a value"


def _typename(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null"


def check_value(key: str, value: Any, declaration: dict[str, Any], where: str, written: str = "") -> None:
    """Refuse a value whose type is not the declared one, naming `where`, the key and the type it takes."""
    kind = declaration.get("type")
    ok = True
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "array":
        item = (declaration.get("items") or {}).get("type")
        ok = isinstance(value, list) and (item != "string" or all(isinstance(v, str) for v in value))
    elif isinstance(declaration.get("default"), list):
        ok = isinstance(value, list)
    elif isinstance(declaration.get("default"), dict):
        ok = isinstance(value, dict)
    if ok:
        return
    message = f"{where}: '{key}' takes {_type_words(declaration)}, not {_typename(value)}"
    if kind == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        text = written or repr(value)
        message += f'; YAML reads an unquoted {text} as a number: quote it, {key}: "{text}"'
    raise StackFileError(message)


def merged_config(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Project defaults, then the stack file, then overrides: {key without project prefix: value}."""
    proj = project()
    name = proj["name"]
    declared = dict(proj.get("config") or {})
    values: dict[str, Any] = {}
    for key, decl in declared.items():
        if isinstance(decl, dict) and "default" in decl:
            values[key] = decl["default"]
    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise StackFileError(
            f"--stack {stack}: no stack file {path.name}; stacks here: {', '.join(stack_names())}"
            f"{did_you_mean(stack, stack_names())}"
        )
    data = _load(path) or {}
    if not isinstance(data, dict) or not isinstance(data.get("config") or {}, dict):
        raise StackFileError(f"{path.name}: expected a mapping with a 'config' mapping")
    lines = _lines(path)
    for full_key, value in (data.get("config") or {}).items():
        ns, sep, key = str(full_key).partition(":")
        if not sep:
            ns, key = name, str(full_key)  # a key without namespace belongs to the project
        if ns != name:
            continue  # another package's config (aws:region, ...): not the program's
        line, written = lines.get(str(full_key), (0, ""))
        where = f"{path.name} line {line}" if line else path.name
        if key not in declared:
            raise StackFileError(
                f"{where}: unknown config key '{full_key}'{did_you_mean(key, declared)} "
                "(every key is declared in Pulumi.yaml)"
            )
        check_value(key, value, declared[key] or {}, where, written)
        values[key] = value
    for key, value in (overrides or {}).items():
        if key not in declared:
            raise StackFileError(f"--set {key}: unknown config key{did_you_mean(key, declared)}")
        check_value(key, value, declared[key] or {}, f"--set {key}")
        values[key] = value
    return values


def parse_set(item: str) -> tuple[str, Any]:
    """A `--set KEY=VALUE` override: the key (project prefix optional) and its value.

    VALUE is JSON (true, 5, ["eu-west-1"], {...}); for a key declared as a string, plain text is
    the value itself (--set domain=example.org).
    """
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise StackFileError(f"--set {item!r}: expected KEY=VALUE, e.g. --set cloudfrontEnabled=true")
    name = project()["name"]
    ns, colon, bare = key.partition(":")
    if colon:
        if ns != name:
            raise StackFileError(f"--set {key}: only this project's keys can be set ('{name}:<key>' or '<key>')")
        key = bare
    declared = declarations()
    if key not in declared:
        raise StackFileError(f"--set {key}: unknown config key{did_you_mean(key, declared)}")
    declaration = declared[key] or {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        if declaration.get("type") == "string":
            return key, text
        raise StackFileError(
            f"--set {key}={text}: '{key}' takes {_type_words(declaration)} written as JSON"
            + (', e.g. ["eu-west-1"]' if declaration.get("type") == "array" else "")
            + f"; {text!r} is not JSON"
        ) from None
    if declaration.get("type") == "string" and not isinstance(value, str):
        return key, text  # --set kubernetesVersion=1.30 means the text "1.30"
    check_value(key, value, declaration, f"--set {key}")
    return key, value


def engine_config(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, str]:
    """The config as the engine hands it to a program: '<project>:<key>' -> string (JSON for non-strings)."""
    name = project()["name"]
    return {
        f"{name}:{key}": value if isinstance(value, str) else json.dumps(value)
        for key, value in merged_config(stack, overrides).items()
    }
