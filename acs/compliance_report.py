"""The operator's view of compliance: the fleet, each rule, each device, and one device's evidence.

The report reads what the ACS last verified — the stored compliance rows, each with the evidence behind it (value
read, when, in which session, how) — not a fresh evaluation: a report says what was checked on the phone, not what
the ACS would conclude now. :func:`refresh` re-evaluates from the stored readings first, on request.

Two things are taken live rather than from the rows, because they are the operator's, not the device's:

* exemptions: a rule the operator exempted for a device is ``exempt`` from that moment; a stored ``exempt`` whose
  exemption has since been removed is ``unknown`` until the next evaluation;
* the policy: a rule with no stored row (a device never evaluated, or a rule added since) is ``unknown``; rows of
  rules no longer in the policy are ignored. Advisory rules are always ``not_applicable``.

A device is compliant when every applicable rule is compliant or exempt, unknown when none is non-compliant but some
are unknown, and non-compliant otherwise. A device never evaluated is unknown.

The JSON shapes built here are a published interface (docs/compliance-json.md); ``SCHEMA_VERSION`` changes with any
incompatible change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from .policy.advisories import Advisory, PortRule, advisories
from .policy.evaluate import Status
from .policy.rules import Policy, Rule
from .policy.service import PolicyService
from .store import BackoffRow, ComplianceRow, DeviceRecord, Exemption, FaultRecord, Store

SCHEMA_VERSION = 1
STATUS_ORDER = (Status.COMPLIANT, Status.NON_COMPLIANT, Status.UNKNOWN, Status.NOT_APPLICABLE, Status.EXEMPT)
RECENT_FAULTS = 10
_VARIABLE = re.compile(r"\$\{([a-z_][a-z0-9_]*)\}")


class ReportError(LookupError):
    """The report was asked about something that does not exist (a device, a rule); the message names it."""


# ---- status rules (pure) --------------------------------------------------------------------------------------------


def rule_status(rule: Rule, stored: str | None, exempt: bool) -> tuple[Status, str]:
    """A rule's status on one device, from its stored verdict and the operator's current exemption, with a note."""
    if rule.kind == "advisory":
        return Status.NOT_APPLICABLE, "advisory: the ACS cannot verify this"
    if exempt:
        return Status.EXEMPT, ""
    if stored is None:
        return Status.UNKNOWN, "not evaluated yet"
    if stored == Status.EXEMPT.value:
        return Status.UNKNOWN, "exemption removed since the last evaluation"
    try:
        return Status(stored), ""
    except ValueError:
        return Status.UNKNOWN, f"stored status {stored!r} is not one this program knows"


def device_status(statuses: Iterable[Status]) -> Status:
    """Roll a device's rule statuses up into one."""
    seen = set(statuses)
    if Status.NON_COMPLIANT in seen:
        return Status.NON_COMPLIANT
    if Status.UNKNOWN in seen:
        return Status.UNKNOWN
    return Status.COMPLIANT


def empty_counts() -> dict[str, int]:
    return {status.value: 0 for status in STATUS_ORDER}


# ---- fleet ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceSummary:
    device: DeviceRecord
    status: Status
    rules: dict[str, Status]  # rule id -> effective status, every rule of the policy
    evaluated: bool  # the ACS has evaluated this device at least once

    def rules_with(self, status: Status) -> list[str]:
        return [rule_id for rule_id, s in self.rules.items() if s is status]


@dataclass(frozen=True)
class RuleSummary:
    rule: Rule
    counts: dict[str, int]  # status -> number of devices


@dataclass(frozen=True)
class FleetReport:
    policy: Policy
    generated_at: float
    devices: list[DeviceSummary]
    rules: list[RuleSummary]

    def devices_with(self, status: Status) -> int:
        return sum(1 for d in self.devices if d.status is status)


def fleet_report(store: Store, policy: Policy, *, now: float | None = None) -> FleetReport:
    stored: dict[str, dict[str, str]] = {}
    for device_id, rule_id, status in store.policy_state.compliance_statuses():
        stored.setdefault(device_id, {})[rule_id] = status
    devices = []
    for device in store.devices.all():
        exempt = {e.rule_id for e in store.policy_state.exemptions(device.id)}
        rows = stored.get(device.id, {})
        statuses = {rule.id: rule_status(rule, rows.get(rule.id), rule.id in exempt)[0] for rule in policy.rules}
        devices.append(DeviceSummary(device, device_status(statuses.values()) if rows else Status.UNKNOWN,
                                     statuses, bool(rows)))
    rules = []
    for rule in policy.rules:
        counts = empty_counts()
        for summary in devices:
            counts[summary.rules[rule.id].value] += 1
        rules.append(RuleSummary(rule, counts))
    return FleetReport(policy, store.clock() if now is None else now, devices, rules)


# ---- one device -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckEvidence:
    key: str
    status: str
    expected: str
    value: Any  # None for secrets: never stored, never shown
    read_at: float | None
    session_id: str | None
    via: str | None
    channel: str
    note: str


@dataclass(frozen=True)
class InstanceEvidence:
    instance: int | None
    status: str
    note: str
    checks: list[CheckEvidence]


@dataclass(frozen=True)
class RuleEvidence:
    rule: Rule
    status: Status  # effective (exemptions applied)
    stored_status: str | None  # what the last evaluation recorded
    note: str
    evaluated_at: float | None
    session_id: str | None  # the session in which the ACS last evaluated it
    instances: list[InstanceEvidence]
    exemption: Exemption | None


@dataclass(frozen=True)
class DeviceReport:
    device: DeviceRecord
    status: Status
    generated_at: float
    evaluated_at: float | None
    rules: list[RuleEvidence]
    backoff: list[BackoffRow]
    faults: list[FaultRecord]
    escrow: list[tuple[str, str]]  # (secret name, "active" | "pending"); never a value
    advisories: list[Advisory] = field(default_factory=list)


def find_device(store: Store, text: str) -> DeviceRecord:
    """The device an operator named by id or serial number."""
    found = store.devices.find(text)
    if not found:
        raise ReportError(f"no device {text!r} (name a device by its id or serial number)")
    if len(found) > 1:
        raise ReportError(f"{text!r} names several devices: {', '.join(d.id for d in found)}; use the device id")
    return found[0]


def find_rule(policy: Policy, rule_id: str) -> Rule:
    try:
        return policy.rule(rule_id)
    except KeyError:
        raise ReportError(f"no rule {rule_id!r} in policy {policy.id} (`acs compliance` lists the rule ids)") from None


def rule_evidence(rule: Rule, row: ComplianceRow | None, exemption: Exemption | None,
                  settings: Mapping[str, Any] | None = None) -> RuleEvidence:
    """``settings`` (the device's resolved policy settings) spell out ``${name}`` in expectations."""
    status, note = rule_status(rule, row.status if row else None, exemption is not None)
    detail = row.detail if row else {}
    return RuleEvidence(
        rule=rule,
        status=status,
        stored_status=row.status if row else None,
        note=note or (exemption.reason if exemption else "") or str(detail.get("note", "")),
        evaluated_at=row.evaluated_at if row else None,
        session_id=row.session_id if row else None,
        instances=[_instance(i, settings or {}) for i in detail.get("instances", [])],
        exemption=exemption,
    )


def spell_out(expected: str, settings: Mapping[str, Any]) -> str:
    """"= ${srtp_key_length}" -> "= AES128And256 (srtp_key_length)": what the check wanted, in values."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        return f"{settings[name]} ({name})" if settings.get(name) not in (None, "") else match.group(0)

    return _VARIABLE.sub(value, expected)


def _instance(stored: dict, settings: Mapping[str, Any]) -> InstanceEvidence:
    return InstanceEvidence(
        instance=stored.get("instance"),
        status=str(stored.get("status", "")),
        note=str(stored.get("note", "")),
        checks=[
            CheckEvidence(
                key=str(c.get("key", "")),
                status=str(c.get("status", "")),
                expected=spell_out(str(c.get("expected", "")), settings),
                value=c.get("value"),
                read_at=c.get("read_at"),
                session_id=c.get("session_id"),
                via=c.get("via"),
                channel=str(c.get("channel", "")),
                note=str(c.get("note", "")),
            )
            for c in stored.get("checks", [])
        ],
    )


def device_report(service: PolicyService, device: DeviceRecord, *, now: float | None = None) -> DeviceReport:
    store, policy = service.store, service.policy
    rows = {row.rule_id: row for row in store.policy_state.compliance(device.id)}
    exemptions = {e.rule_id: e for e in store.policy_state.exemptions(device.id)}
    settings = service.settings_for(device)
    rules = [rule_evidence(rule, rows.get(rule.id), exemptions.get(rule.id), settings) for rule in policy.rules]
    return DeviceReport(
        device=device,
        status=device_status(r.status for r in rules) if rows else Status.UNKNOWN,
        generated_at=store.clock() if now is None else now,
        evaluated_at=max((row.evaluated_at for row in rows.values()), default=None),
        rules=rules,
        backoff=sorted(store.policy_state.backoff(device.id), key=lambda b: (b.rule_id, b.key)),
        faults=store.history.faults(device.id, limit=RECENT_FAULTS),
        escrow=store.secrets.names(device.id),
        advisories=advisories(policy, service.facts(device).readings),
    )


# ---- one rule across the fleet --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleReport:
    summary: RuleSummary
    devices: list[tuple[DeviceRecord, RuleEvidence]]


def rule_report(service: PolicyService, fleet: FleetReport, rule_id: str) -> RuleReport:
    store = service.store
    rule = find_rule(fleet.policy, rule_id)
    summary = next(s for s in fleet.rules if s.rule.id == rule.id)
    devices = []
    for entry in fleet.devices:
        row = next((r for r in store.policy_state.compliance(entry.device.id) if r.rule_id == rule.id), None)
        exemption = next((e for e in store.policy_state.exemptions(entry.device.id) if e.rule_id == rule.id), None)
        devices.append((entry.device, rule_evidence(rule, row, exemption, service.settings_for(entry.device))))
    return RuleReport(summary, devices)


def refresh(service: PolicyService, device_ids: Iterable[str]) -> int:
    """Re-evaluate devices from their stored readings and record the result; returns how many."""
    count = 0
    for device_id in device_ids:
        service.record_compliance(device_id)
        count += 1
    return count


# ---- JSON (docs/compliance-json.md) ---------------------------------------------------------------------------------


def iso(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def fleet_json(report: FleetReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": iso(report.generated_at),
        "policy": {"id": report.policy.id, "revision": report.policy.revision, "title": report.policy.title},
        "devices_total": len(report.devices),
        "devices_compliant": report.devices_with(Status.COMPLIANT),
        "devices_non_compliant": report.devices_with(Status.NON_COMPLIANT),
        "devices_unknown": report.devices_with(Status.UNKNOWN),
        "rules": [_rule_summary_json(summary) for summary in report.rules],
        "devices": [
            {
                "id": d.device.id,
                "serial_number": d.device.serial_number,
                "site": d.device.site,
                "group": d.device.device_group,
                "status": d.status.value,
                "evaluated": d.evaluated,
                "last_inform": iso(d.device.last_inform),
                "non_compliant_rules": d.rules_with(Status.NON_COMPLIANT),
                "unknown_rules": d.rules_with(Status.UNKNOWN),
                "exempt_rules": d.rules_with(Status.EXEMPT),
            }
            for d in report.devices
        ],
    }


def _rule_summary_json(summary: RuleSummary) -> dict[str, Any]:
    rule = summary.rule
    return {"id": rule.id, "title": rule.title, "severity": rule.severity, "kind": rule.kind, "section": rule.section,
            **summary.counts}


def device_json(report: DeviceReport) -> dict[str, Any]:
    device = report.device
    return {
        "id": device.id,
        "serial_number": device.serial_number,
        "site": device.site,
        "group": device.device_group,
        "ip": device.ip,
        "software_version": device.software_version,
        "last_inform": iso(device.last_inform),
        "status": report.status.value,
        "evaluated_at": iso(report.evaluated_at),
        "rules": [rule_evidence_json(r) for r in report.rules],
        "backoff": [
            {"rule": b.rule_id, "key": b.key, "attempts": b.attempts, "next_attempt_at": iso(b.next_attempt_at),
             "due": b.next_attempt_at <= report.generated_at, "fault_code": b.fault_code, "fault_text": b.fault_text}
            for b in report.backoff
        ],
        "faults": [
            {"at": iso(f.at), "session_id": f.session_id, "source": f.source, "code": f.code, "message": f.message,
             "parameter": f.parameter}
            for f in report.faults
        ],
        "escrow": [{"name": name, "state": state} for name, state in report.escrow],
        "advisories": [advisory_json(a) for a in report.advisories],
    }


def rule_evidence_json(evidence: RuleEvidence) -> dict[str, Any]:
    rule = evidence.rule
    exemption = evidence.exemption
    return {
        "id": rule.id,
        "title": rule.title,
        "severity": rule.severity,
        "kind": rule.kind,
        "status": evidence.status.value,
        "stored_status": evidence.stored_status,
        "note": evidence.note,
        "evaluated_at": iso(evidence.evaluated_at),
        "session_id": evidence.session_id,
        "exemption": None if exemption is None else {
            "reason": exemption.reason, "by": exemption.created_by, "at": iso(exemption.created_at)},
        "instances": [
            {
                "instance": i.instance,
                "status": i.status,
                "note": i.note,
                "checks": [
                    {"key": c.key, "status": c.status, "expected": c.expected, "value": c.value,
                     "read_at": iso(c.read_at), "session_id": c.session_id, "via": c.via, "channel": c.channel,
                     "note": c.note}
                    for c in i.checks
                ],
            }
            for i in evidence.instances
        ],
    }


def advisory_json(advisory: Advisory) -> dict[str, Any]:
    return {
        "id": advisory.rule_id,
        "title": advisory.title,
        "section": advisory.section,
        "severity": advisory.severity,
        "advice": advisory.advice,
        "firewall_ports": None if advisory.firewall_ports is None else [
            port_json(p) for p in advisory.firewall_ports],
    }


def port_json(rule: PortRule) -> dict[str, Any]:
    return {
        "protocol": rule.protocol,
        "port": rule.port,
        "port_end": rule.port_end,
        "direction": rule.direction,
        "purpose": rule.purpose,
        "account": rule.account,
        "action": rule.action,
        "open_to": rule.open_to,
        "keys": list(rule.keys),
        "defaulted": list(rule.defaulted),
        "read_at": iso(rule.read_at),
    }


def rule_json(report: RuleReport) -> dict[str, Any]:
    return {
        **_rule_summary_json(report.summary),
        "advice": report.summary.rule.advice,
        "devices": [
            {"device_id": device.id, "serial_number": device.serial_number, **_without_rule(rule_evidence_json(e))}
            for device, e in report.devices
        ],
    }


def _without_rule(evidence: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in evidence.items() if k not in ("id", "title", "severity", "kind")}
