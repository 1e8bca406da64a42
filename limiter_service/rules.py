"""Rate-limit rules as data: parsing and validation of the rules file.

This module is imported by the Pulumi program (the mesh layer validates the rules it renders), so it
must stay cheap to import: standard library only at import time (PyYAML is imported lazily by
:func:`load_rules_file`), never FastAPI or boto3.

Format (a top-level ``rules:`` list)::

    rules:
      - name: api-per-key            # unique
        match:                       # every field optional; an empty match matches everything
          hosts: ["api.example.com"]
          path_prefix: "/api/"
          methods: ["GET", "POST"]
        key: ["header:x-api-key"]    # one or more of header:<name>, client_ip
        limit: 100
        window_seconds: 60
        algorithm: fixed_window      # or sliding_window
        shadow: false
        failure_mode: open           # or closed
        lease: 0
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_RULES",
    "Algorithm",
    "FailureMode",
    "KeyPart",
    "Match",
    "Rule",
    "RuleError",
    "default_rules",
    "load_rules_file",
    "parse_rules",
]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# RFC 9110 token, used for header names and methods.
TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
MAX_LIMIT = 1_000_000_000
MAX_WINDOW_SECONDS = 31 * 24 * 3600
RULE_FIELDS = frozenset(
    {"name", "match", "key", "limit", "window_seconds", "algorithm", "shadow", "failure_mode", "lease"}
)
MATCH_FIELDS = frozenset({"hosts", "path_prefix", "methods"})


class RuleError(ValueError):
    """An invalid rule; the message names the rule and the field."""

    def __init__(
        self, message: str, *, rule: str | None = None, field: str | None = None, errors: Sequence[RuleError] = ()
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self.field = field
        #: Every error found, when several were (a file is checked whole); else just this one.
        self.errors: list[RuleError] = list(errors) or [self]

    @classmethod
    def combine(cls, errors: Sequence[RuleError]) -> RuleError:
        """One error for several: the message has one line per error; ``rule``/``field`` are the first's."""
        if len(errors) == 1:
            return errors[0]
        return cls("\n".join(str(e) for e in errors), rule=errors[0].rule, field=errors[0].field, errors=errors)


class Algorithm(StrEnum):
    FIXED_WINDOW = "fixed_window"
    SLIDING_WINDOW = "sliding_window"


class FailureMode(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class KeyPart:
    """One part of a rate-limit key: a request header (lower-cased name) or the client address."""

    kind: str  # "header" or "client_ip"
    header: str | None = None

    def __str__(self) -> str:
        return f"header:{self.header}" if self.kind == "header" else "client_ip"


@dataclass(frozen=True, slots=True)
class Match:
    """Which requests a rule applies to (for the ext_authz endpoint); empty matches everything."""

    hosts: tuple[str, ...] = ()
    path_prefix: str | None = None
    methods: tuple[str, ...] = ()

    def matches(self, method: str, path: str, host: str) -> bool:
        if self.methods and method.upper() not in self.methods:
            return False
        if self.path_prefix is not None and not path.startswith(self.path_prefix):
            return False
        if self.hosts:
            bare = _strip_port(host).lower()
            return any(_host_matches(pattern, bare) for pattern in self.hosts)
        return True


@dataclass(frozen=True, slots=True)
class Rule:
    """One rate-limit rule: ``limit`` units per ``window_seconds`` per key."""

    name: str
    key: tuple[KeyPart, ...]
    limit: int
    window_seconds: int
    match: Match = field(default_factory=Match)
    algorithm: Algorithm = Algorithm.FIXED_WINDOW
    shadow: bool = False
    failure_mode: FailureMode = FailureMode.OPEN
    lease: int = 0


def _strip_port(host: str) -> str:
    if host.startswith("["):  # [v6]:port
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    head, sep, tail = host.rpartition(":")
    return head if sep and tail.isdigit() else host


def _host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


class _Ctx:
    def __init__(self, index: int, name: str | None) -> None:
        self.index = index
        self.name = name

    def error(self, fld: str, message: str) -> RuleError:
        label = f"rules[{self.index}]" + (f" ('{self.name}')" if self.name else "")
        return RuleError(f"{label}: field '{fld}': {message}", rule=self.name, field=fld)


def _int(ctx: _Ctx, raw: Mapping[str, Any], fld: str, lo: int, hi: int, default: int | None = None) -> int:
    value = raw.get(fld, default)
    if value is None:
        raise ctx.error(fld, "is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.error(fld, f"must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ctx.error(fld, f"must be between {lo} and {hi}, got {value}")
    return int(value)


def _str_list(ctx: _Ctx, value: Any, fld: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ctx.error(fld, f"must be a list of strings, got {value!r}")
    for item in value:
        if not isinstance(item, str) or not item:
            raise ctx.error(fld, f"must be a list of non-empty strings, got item {item!r}")
    return list(value)


def _parse_match(ctx: _Ctx, raw: Any) -> Match:
    if raw is None:
        return Match()
    if not isinstance(raw, Mapping):
        raise ctx.error("match", f"must be a mapping, got {raw!r}")
    unknown = sorted(set(map(str, raw)) - MATCH_FIELDS)
    if unknown:
        raise ctx.error(f"match.{unknown[0]}", f"is not a known field (known: {', '.join(sorted(MATCH_FIELDS))})")
    hosts: tuple[str, ...] = ()
    if raw.get("hosts") is not None:
        hosts = tuple(h.lower() for h in _str_list(ctx, raw["hosts"], "match.hosts"))
        for host in hosts:
            if any(c in host for c in " /\t") or "*" in host.removeprefix("*."):
                raise ctx.error("match.hosts", f"invalid host {host!r} (a name, or *.suffix)")
    path_prefix = raw.get("path_prefix")
    if path_prefix is not None and (not isinstance(path_prefix, str) or not path_prefix.startswith("/")):
        raise ctx.error("match.path_prefix", f"must be a string starting with '/', got {path_prefix!r}")
    methods: tuple[str, ...] = ()
    if raw.get("methods") is not None:
        methods = tuple(m.upper() for m in _str_list(ctx, raw["methods"], "match.methods"))
        for method in methods:
            if not TOKEN_RE.match(method):
                raise ctx.error("match.methods", f"invalid HTTP method {method!r}")
    return Match(hosts=hosts, path_prefix=path_prefix, methods=methods)


def _parse_key(ctx: _Ctx, raw: Any) -> tuple[KeyPart, ...]:
    if raw is None:
        raise ctx.error("key", "is required (one or more of header:<name>, client_ip)")
    parts_raw = [raw] if isinstance(raw, str) else raw
    items = _str_list(ctx, parts_raw, "key")
    if not items:
        raise ctx.error("key", "must name at least one of header:<name>, client_ip")
    parts: list[KeyPart] = []
    for item in items:
        if item == "client_ip":
            parts.append(KeyPart("client_ip"))
        elif item.startswith("header:") and TOKEN_RE.match(item[len("header:") :]):
            parts.append(KeyPart("header", item[len("header:") :].lower()))
        else:
            raise ctx.error("key", f"invalid key part {item!r} (one of header:<name>, client_ip)")
    if len(set(parts)) != len(parts):
        raise ctx.error("key", "lists the same key part twice")
    return tuple(parts)


def _enum(ctx: _Ctx, raw: Mapping[str, Any], fld: str, enum: type[StrEnum], default: StrEnum) -> Any:
    value = raw.get(fld, default.value)
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise ctx.error(fld, f"must be one of {allowed}, got {value!r}") from None


def _parse_rule(raw: Any, index: int) -> tuple[Rule | None, list[RuleError]]:
    """The rule, or None and every error found in it (each field is checked, not only the first)."""
    if not isinstance(raw, Mapping):
        return None, [RuleError(f"rules[{index}]: must be a mapping, got {raw!r}", field=None)]
    errors: list[RuleError] = []

    def check(parse: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return parse(*args, **kwargs)
        except RuleError as exc:
            errors.append(exc)
            return None

    name = raw.get("name")
    ctx = _Ctx(index, name if isinstance(name, str) else None)
    if not isinstance(name, str) or not NAME_RE.match(name):
        errors.append(ctx.error("name", f"must match {NAME_RE.pattern} (letters, digits, . _ -), got {name!r}"))
    for unknown in sorted(set(map(str, raw)) - RULE_FIELDS):
        errors.append(ctx.error(unknown, f"is not a known field (known: {', '.join(sorted(RULE_FIELDS))})"))
    limit = check(_int, ctx, raw, "limit", 1, MAX_LIMIT)
    window = check(_int, ctx, raw, "window_seconds", 1, MAX_WINDOW_SECONDS)
    algorithm = check(_enum, ctx, raw, "algorithm", Algorithm, Algorithm.FIXED_WINDOW)
    failure_mode = check(_enum, ctx, raw, "failure_mode", FailureMode, FailureMode.OPEN)
    shadow = raw.get("shadow", False)
    if not isinstance(shadow, bool):
        errors.append(ctx.error("shadow", f"must be true or false, got {shadow!r}"))
    lease = check(_int, ctx, raw, "lease", 0, limit if limit is not None else MAX_LIMIT, default=0)
    if lease and algorithm is not None and algorithm is not Algorithm.FIXED_WINDOW:
        errors.append(ctx.error("lease", "leases are supported with algorithm fixed_window only"))
    key = check(_parse_key, ctx, raw.get("key"))
    match = check(_parse_match, ctx, raw.get("match"))
    if errors:
        return None, errors
    assert isinstance(name, str)
    rule = Rule(
        name=name,
        key=key,
        limit=limit,
        window_seconds=window,
        match=match,
        algorithm=algorithm,
        shadow=shadow,
        failure_mode=failure_mode,
        lease=lease,
    )
    return rule, []


def parse_rules(data: Any) -> list[Rule]:
    """Validate a rules document (``{"rules": [...]}``) and return its rules.

    Raises :class:`RuleError` (a ``ValueError``) whose message names the rule and the field of every
    error in the document, one per line (``errors`` lists them; ``rule`` and ``field`` are the first's).
    """
    if not isinstance(data, Mapping):
        raise RuleError(f"the rules document must be a mapping with a 'rules' list, got {data!r}")
    errors: list[RuleError] = [
        RuleError(f"unknown top-level field '{unknown}' (only 'rules' is allowed)", field=unknown)
        for unknown in sorted(set(map(str, data)) - {"rules"})
    ]
    raw_rules = data.get("rules")
    if isinstance(raw_rules, str) or not isinstance(raw_rules, Sequence):
        errors.append(RuleError(f"field 'rules' must be a list of rules, got {raw_rules!r}", field="rules"))
        raise RuleError.combine(errors)
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_rules):
        rule, rule_errors = _parse_rule(raw, i)
        errors.extend(rule_errors)
        name = raw.get("name") if isinstance(raw, Mapping) else None
        if isinstance(name, str) and NAME_RE.match(name):
            if name in seen:
                errors.append(
                    RuleError(
                        f"rules[{i}] ('{name}'): field 'name': duplicates rules[{seen[name]}]", rule=name, field="name"
                    )
                )
            else:
                seen[name] = i
        if rule is not None:
            rules.append(rule)
    if errors:
        raise RuleError.combine(errors)
    return rules


def load_rules_file(path: str | Path) -> list[Rule]:
    """Read and validate a YAML rules file; errors name the file, the rule and the field."""
    import yaml  # type: ignore[import-untyped,unused-ignore]  # lazy: keep this module cheap to import

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: cannot read the rules file: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return parse_rules(data)
    except RuleError as exc:
        located = [RuleError(f"{path}: {e}", rule=e.rule, field=e.field) for e in exc.errors]
        raise RuleError.combine(located) from exc


#: The rule set used when no rules file is configured (documented in README.md).
DEFAULT_RULES: dict[str, Any] = {
    "rules": [
        {
            "name": "default-per-client-ip",
            "key": ["client_ip"],
            "limit": 1200,
            "window_seconds": 60,
            "algorithm": "fixed_window",
            "failure_mode": "open",
        },
        {
            "name": "default-per-api-key",
            "key": ["header:x-api-key"],
            "limit": 6000,
            "window_seconds": 60,
            "algorithm": "sliding_window",
            "failure_mode": "open",
        },
    ]
}


def default_rules() -> list[Rule]:
    return parse_rules(DEFAULT_RULES)
