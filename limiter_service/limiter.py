"""The limiter: rules -> strategy per algorithm -> store, with failure modes, shadow mode and metrics."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from limiter_service.algorithms import Decision, FixedWindow, SlidingWindow, window_start
from limiter_service.clock import Clock
from limiter_service.metrics import Metrics
from limiter_service.rules import Algorithm, FailureMode, KeyPart, Rule
from limiter_service.stores.base import Store, StoreError

log = logging.getLogger(__name__)

MAX_KEY_BYTES = 512
#: Store errors that are this replica's own overload, answered by the failure mode as "shed".
SHED_REASONS = frozenset({"overloaded", "stalled"})
#: Retry-After advertised when a fail-closed rule denies because the store is failing.
STORE_FAILURE_RETRY_AFTER = 1.0


@dataclass(frozen=True, slots=True)
class RuleDecision:
    rule: Rule
    decision: Decision

    @property
    def enforced_allowed(self) -> bool:
        """The answer to give: a shadow rule never denies."""
        return self.decision.allowed or self.rule.shadow


class Limiter:
    def __init__(self, rules: Sequence[Rule], store: Store, clock: Clock, metrics: Metrics, cache_size: int) -> None:
        self.rules: dict[str, Rule] = {r.name: r for r in rules}
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self._fixed = FixedWindow(store, clock, cache_size)
        self._sliding = SlidingWindow(store, clock, cache_size)
        self._children: dict[tuple[str, str], Any] = {}
        metrics.rules_loaded.set(len(self.rules))

    @property
    def all_fail_closed(self) -> bool:
        return bool(self.rules) and all(r.failure_mode is FailureMode.CLOSED for r in self.rules.values())

    async def check(self, rule: Rule, key: str, cost: int = 1) -> RuleDecision:
        """Decide one (rule, key, cost). Store failures are answered by the rule's failure mode."""
        strategy = self._fixed if rule.algorithm is Algorithm.FIXED_WINDOW else self._sliding
        try:
            decision = await strategy.decide(rule, key, cost)
        except StoreError as exc:
            log.debug("store error for rule %s: %s", rule.name, exc)
            decision = self._on_failure(rule)
            # Shed: this replica's own overload (too many calls in progress, or it stalled past the
            # deadline), not the store's failure.
            kind = "shed" if exc.reason in SHED_REASONS else "error"
            outcome = f"{kind}_allowed" if decision.allowed else f"{kind}_denied"
        else:
            if decision.source in ("over_limit_cache", "lease"):
                self.metrics.local_hits.labels(rule.name, decision.source.removesuffix("_cache")).inc()
            outcome = "allowed" if decision.allowed else "shadow_denied" if rule.shadow else "denied"
        self._decision_counter(rule.name, outcome).inc()
        return RuleDecision(rule, decision)

    def _without_key(self, rule: Rule, headers: Mapping[str, str], client_ip: str | None) -> None:
        """A request the rule matches but cannot key: it is not limited by this rule. Counted, because a
        mesh that stops sending the client address (a wrong trusted-proxy count) silently switches off
        every per-IP limit."""
        missing = [str(p) for p in rule.key if not _key_part(p, headers, client_ip)]
        self.metrics.requests_without_key.labels(rule.name, ",".join(missing)).inc()
        log.debug("rule %s matches the request but it carries no %s: not limited by it", rule.name, ", ".join(missing))

    def _decision_counter(self, rule: str, outcome: str) -> Any:
        """The labelled child counter, cached (``labels()`` costs a lock and a validation per call)."""
        child = self._children.get((rule, outcome))
        if child is None:
            child = self._children[(rule, outcome)] = self.metrics.decisions.labels(rule, outcome)
        return child

    def _on_failure(self, rule: Rule) -> Decision:
        now = self.clock()
        reset = window_start(now, rule.window_seconds) + rule.window_seconds - now
        if rule.failure_mode is FailureMode.OPEN:
            return Decision(True, rule.limit, 0, reset, None, "error")
        return Decision(False, rule.limit, 0, reset, STORE_FAILURE_RETRY_AFTER, "error")

    # -- ext_authz ---------------------------------------------------------------------------
    def matching(self, method: str, path: str, host: str) -> list[Rule]:
        return [r for r in self.rules.values() if r.match.matches(method, path, host)]

    async def check_request(
        self, method: str, path: str, host: str, headers: Mapping[str, str], client_ip: str | None
    ) -> list[RuleDecision]:
        """Check a request against every rule that matches it and whose key parts it carries."""
        checks: list[tuple[Rule, str]] = []
        for rule in self.matching(method, path, host):
            key = request_key(rule, headers, client_ip)
            if key is not None:
                checks.append((rule, key))
            else:
                self._without_key(rule, headers, client_ip)
        if not checks:
            return []
        if len(checks) == 1:
            return [await self.check(*checks[0])]
        return list(await asyncio.gather(*(self.check(rule, key) for rule, key in checks)))


def _key_part(part: KeyPart, headers: Mapping[str, str], client_ip: str | None) -> str:
    """The stripped value of one key part in a request ('' when absent or blank)."""
    value = client_ip if part.kind == "client_ip" else headers.get(part.header or "")
    return value.strip() if value else ""


def request_key(rule: Rule, headers: Mapping[str, str], client_ip: str | None) -> str | None:
    """The rule's key for a request, or None if a key part is absent (the rule does not apply)."""
    parts: list[str] = []
    for part in rule.key:
        value = _key_part(part, headers, client_ip)
        if not value:
            return None
        parts.append(value)
    key = "\x1f".join(parts) if len(parts) > 1 else parts[0]
    raw = key.encode("utf-8", "surrogateescape")
    if len(raw) > MAX_KEY_BYTES:
        # Long header values share the key space through a digest instead of failing.
        key = "sha256:" + hashlib.sha256(raw).hexdigest()
    return key
