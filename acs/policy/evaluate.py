"""Evaluate a policy against what the ACS knows about one device. Pure: facts in, results out.

Compliance is decided only from values read back from the device (GetParameterValues, the Inform, or a config file
the device uploaded) — never from what the ACS sent. Secrets read back empty, so an escrowed secret counts as verified
when the device accepted it (the pending copy was promoted) and the device still reports a ParameterKey the ACS
issued (nobody else has written to it since).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

from cwmp_models.datamodel import InvalidValue, ParameterSpec
from cwmp_models.types import CwmpValue

from .rules import Check, Condition, Policy, Rule, variable_name


class Status(str, enum.Enum):
    COMPLIANT = "compliant"
    NON_COMPLIANT = "non_compliant"
    UNKNOWN = "unknown"
    NOT_APPLICABLE = "not_applicable"
    EXEMPT = "exempt"


# When several checks or instances make up one result, the worst one wins.
_SEVERITY_ORDER = {Status.NON_COMPLIANT: 0, Status.UNKNOWN: 1, Status.COMPLIANT: 2, Status.NOT_APPLICABLE: 3}


def worst(statuses: list[Status]) -> Status:
    if not statuses:
        return Status.NOT_APPLICABLE
    return min(statuses, key=lambda s: _SEVERITY_ORDER.get(s, 9))


class Channel(str, enum.Enum):
    TR069 = "tr069"  # the device exposes the TR-069 path (per GetParameterNames)
    CONFIG = "config"  # a vendor config file carries the P-value
    UNDISCOVERED = "undiscovered"  # not yet known whether the path exists
    NONE = "none"  # no way to reach it


@dataclass(frozen=True)
class Reading:
    value: CwmpValue
    at: float
    session_id: str | None
    via: str  # "GetParameterValues", "Inform", "config upload"


@dataclass(frozen=True)
class Backoff:
    next_attempt_at: float
    attempts: int
    fault_code: int | None
    fault_text: str


@dataclass
class DeviceFacts:
    """Everything the evaluator and the planner may look at, gathered from the store by acs.policy.source."""

    device_id: str
    now: float
    settings: Mapping[str, Any]
    readings: dict[str, Reading] = field(default_factory=dict)  # by model key
    discovered: Mapping[str, bool] | None = None  # path -> writable; None: never discovered
    escrow: dict[str, str] = field(default_factory=dict)  # secret key -> "active" | "pending"
    secrets_trusted: bool = True
    backoff: dict[tuple[str, str], Backoff] = field(default_factory=dict)  # (rule id, key) -> backoff
    exemptions: dict[str, str] = field(default_factory=dict)  # rule id -> reason


@dataclass(frozen=True)
class CheckResult:
    key: str
    status: Status
    expected: str
    channel: Channel
    value: Any = None  # the value read (None for secrets: never reported)
    at: float | None = None
    session_id: str | None = None
    via: str | None = None
    note: str = ""


@dataclass(frozen=True)
class InstanceResult:
    instance: int | None
    status: Status
    checks: tuple[CheckResult, ...]
    note: str = ""


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    status: Status
    instances: tuple[InstanceResult, ...]
    note: str = ""

    @property
    def rule_id(self) -> str:
        return self.rule.id


def channel_for(spec: ParameterSpec, discovered: Mapping[str, bool] | None) -> Channel:
    if spec.path is not None:
        if discovered is None:
            return Channel.UNDISCOVERED
        if spec.path in discovered:
            return Channel.TR069
    if spec.pvalue is not None:
        return Channel.CONFIG
    return Channel.NONE


def resolve(value: Any, settings: Mapping[str, Any]) -> tuple[Any, str | None]:
    """A literal or ``${setting}`` → (value, None), or (None, why it cannot be resolved)."""
    name = variable_name(value)
    if name is None:
        return value, None
    resolved = settings.get(name)
    if resolved is None or resolved == "":
        return None, f"setting {name} is not configured"
    return resolved, None


def typed_for(spec: ParameterSpec, value: Any) -> Any:
    """A setting's value in the parameter's type (settings are TOML values; ports are ints, flags bools)."""
    if isinstance(value, str) and spec.type.value != "string":
        return spec.parse(value)
    return value


def evaluate(policy: Policy, facts: DeviceFacts) -> list[RuleResult]:
    return [evaluate_rule(policy, rule, facts) for rule in policy.rules]


def evaluate_rule(policy: Policy, rule: Rule, facts: DeviceFacts) -> RuleResult:
    if rule.kind == "advisory":
        return RuleResult(rule, Status.NOT_APPLICABLE, (), note="advisory: the ACS cannot verify this")
    if rule.id in facts.exemptions:
        return RuleResult(rule, Status.EXEMPT, (), note=facts.exemptions[rule.id])
    instances = tuple(_instance(policy, rule, n, facts) for n in policy.instance_numbers(rule))
    return RuleResult(rule, worst([i.status for i in instances]), instances)


def _instance(policy: Policy, rule: Rule, n: int | None, facts: DeviceFacts) -> InstanceResult:
    applicable, note = applies(policy, rule, n, facts)
    if applicable is None:
        return InstanceResult(n, Status.UNKNOWN, (), note)
    if not applicable:
        return InstanceResult(n, Status.NOT_APPLICABLE, (), note)
    results = tuple(check_status(policy, rule, check.for_instance(n), facts) for check in rule.checks)
    return InstanceResult(n, worst([r.status for r in results]), results)


def applies(policy: Policy, rule: Rule, n: int | None, facts: DeviceFacts) -> tuple[bool | None, str]:
    """Whether the rule applies to instance ``n`` (None: cannot tell yet), and why not."""
    for check in rule.checks:
        spec = policy.model.parameters[check.for_instance(n).key]
        if not spec.exposed:
            return False, f"{spec.key} is not exposed by {policy.model.name}"
    condition = rule.when
    if condition is None:
        return True, ""
    return _condition_holds(policy, condition, n, facts)


def _condition_holds(policy: Policy, condition: Condition, n: int | None, facts: DeviceFacts) -> tuple[bool | None, str]:
    if condition.setting is not None:
        value = facts.settings.get(condition.setting)
        return value == condition.equals, f"setting {condition.setting} is {value!r}"
    if condition.instance_not_in_setting is not None:
        in_use = facts.settings.get(condition.instance_not_in_setting) or []
        return n not in in_use, f"account {n} is in use ({condition.instance_not_in_setting})"
    key = condition.key.replace("{n}", str(n)) if n is not None else condition.key
    reading = facts.readings.get(key)
    if reading is None:
        return None, f"{key} not read yet"
    return reading.value == condition.equals, f"{key} is {reading.value!r}"


def check_status(policy: Policy, rule: Rule, check: Check, facts: DeviceFacts) -> CheckResult:
    spec = policy.model.parameters[check.key]
    channel = channel_for(spec, facts.discovered)
    expected = check.describe()
    if check.escrowed:
        state = facts.escrow.get(check.key)
        if state == "active" and facts.secrets_trusted:
            return CheckResult(check.key, Status.COMPLIANT, expected, channel, via="accepted by the device")
        if state == "active":
            note = "the device reports a ParameterKey the ACS did not issue: its secrets may have been changed"
        elif state == "pending":
            note = "sent, not yet confirmed by the device"
        else:
            note = "not set by the ACS"
        return CheckResult(check.key, Status.NON_COMPLIANT if state is None else Status.UNKNOWN, expected, channel,
                           note=note)
    reading = facts.readings.get(check.key)
    if reading is None:
        why = "not read yet" if channel is not Channel.NONE else "no way to read it on this device"
        return CheckResult(check.key, Status.UNKNOWN, expected, channel, note=why)
    verdict, note = satisfies(spec, check, reading.value, facts.settings)
    evidence = dict(value=None if spec.secret else reading.value, at=reading.at, session_id=reading.session_id,
                    via=reading.via)
    if verdict is None:
        return CheckResult(check.key, Status.UNKNOWN, expected, channel, note=note, **evidence)
    return CheckResult(check.key, Status.COMPLIANT if verdict else Status.NON_COMPLIANT, expected, channel,
                       note=note, **evidence)


def satisfies(spec: ParameterSpec, check: Check, value: Any, settings: Mapping[str, Any]) -> tuple[bool | None, str]:
    """Does ``value`` meet the check? None when a setting it needs is not configured."""
    if check.has_equals:
        wanted, problem = resolve(check.equals, settings)
        if problem:
            return None, problem
        try:
            wanted = typed_for(spec, wanted)
        except InvalidValue as exc:
            return None, f"setting for {spec.key} is invalid: {exc.reason}"
        if value != wanted:
            return False, ""
    if check.one_of is not None and value not in check.one_of:
        return False, ""
    if check.not_in is not None and value in check.not_in:
        return False, ""
    if check.min is not None and (not isinstance(value, int) or value < check.min):
        return False, ""
    if check.max is not None and (not isinstance(value, int) or value > check.max):
        return False, ""
    if check.nonempty and (value is None or value == ""):
        return False, ""
    if check.prefix and not (isinstance(value, str) and value.startswith(check.prefix)):
        return False, ""
    return True, ""
