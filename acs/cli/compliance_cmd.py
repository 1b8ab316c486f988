"""``acs compliance``: what the ACS last verified on the fleet, per rule and per device, as tables or as JSON.

A report, not a check: the exit code is 0 whatever the fleet's state, unless ``--fail-on`` asks for 3 when devices
in scope are non-compliant (``non_compliant``) or not verified compliant (``unknown``: unknown or non-compliant).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click

from .config_cmd import config_options, load_from_options

if TYPE_CHECKING:
    from acs.compliance_report import (CheckEvidence, DeviceReport, DeviceSummary, FleetReport, RuleEvidence,
                                       RuleReport)
    from acs.policy.advisories import PortRule

FAIL_EXIT_CODE = 3
_SHORT = {"compliant": "compliant", "non_compliant": "NON-COMPLIANT", "unknown": "unknown",
          "not_applicable": "n/a", "exempt": "exempt"}


@click.command(name="compliance")
@config_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object (docs/compliance-json.md) instead of tables.")
@click.option("--device", "device_name", metavar="DEVICE", help="Full evidence for one device (id or serial number).")
@click.option("--rule", "rule_id", metavar="RULE", help="One rule across the fleet: each device's status for it.")
@click.option("--refresh", is_flag=True, help="Re-evaluate from the stored readings before reporting.")
@click.option("--fail-on", type=click.Choice(["non_compliant", "unknown"]),
              help="Exit 3 when devices in scope are non-compliant (or, for 'unknown', not verified compliant).")
def command(config_path: str | None, overrides: tuple[str, ...], as_json: bool, device_name: str | None,
            rule_id: str | None, refresh: bool, fail_on: str | None) -> None:
    """Print the fleet's compliance with the hardening policy: fleet line, rules, devices."""
    from acs import compliance_report as report
    from acs.policy.evaluate import Status

    from . import CliError
    from .operator import device as find_device
    from .operator import open_store, policy_service

    if device_name and rule_id:
        raise CliError("--device and --rule do not combine: use one", 2)
    config = load_from_options(config_path, overrides)
    store = open_store(config)
    try:
        service = policy_service(config, store)
        device = find_device(store, device_name) if device_name else None
        if rule_id:
            try:
                report.find_rule(service.policy, rule_id)
            except report.ReportError as exc:
                raise CliError(str(exc), 2) from None
        if refresh:
            ids = [device.id] if device else [d.id for d in store.devices.all()]
            click.echo(f"re-evaluated {report.refresh(service, ids)} device(s) from stored readings", err=True)
        fleet = report.fleet_report(store, service.policy)
        detail = report.device_report(service, device, now=fleet.generated_at) if device else None
        by_rule = report.rule_report(service, fleet, rule_id) if rule_id else None
    finally:
        store.close()

    if as_json:
        document = report.fleet_json(fleet)
        if detail is not None:
            document["device"] = report.device_json(detail)
        if by_rule is not None:
            document["rule"] = report.rule_json(by_rule)
        click.echo(json.dumps(document, indent=2, default=str))
    elif detail is not None:
        click.echo(render_device(detail))
    elif by_rule is not None:
        click.echo(render_rule(fleet, by_rule))
    else:
        click.echo(render_fleet(fleet))

    if fail_on:
        if detail is not None:
            statuses = [detail.status]
        elif by_rule is not None:
            statuses = [evidence.status for _, evidence in by_rule.devices]
        else:
            statuses = [d.status for d in fleet.devices]
        failing = {Status.NON_COMPLIANT} | ({Status.UNKNOWN} if fail_on == "unknown" else set())
        if failing & set(statuses):
            raise click.exceptions.Exit(FAIL_EXIT_CODE)


# ---- text -----------------------------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[Any]], *, right: frozenset[int] = frozenset()) -> str:
    cells = [[str(c) if c is not None else "-" for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths)))

    return "\n".join(line(values).rstrip() for values in [headers, *cells])


def _when(at: float | None) -> str:
    from acs.compliance_report import iso

    return iso(at) or "never"


def fleet_line(fleet: FleetReport) -> str:
    from acs.policy.evaluate import Status

    return (f"policy {fleet.policy.id} {fleet.policy.revision}: {len(fleet.devices)} device(s), "
            f"{fleet.devices_with(Status.COMPLIANT)} compliant, {fleet.devices_with(Status.NON_COMPLIANT)} "
            f"non-compliant, {fleet.devices_with(Status.UNKNOWN)} unknown (as of {_when(fleet.generated_at)})")


def render_fleet(fleet: FleetReport) -> str:
    from acs.compliance_report import STATUS_ORDER

    rules = table(
        ["RULE", "SEVERITY", "COMPLIANT", "NON-COMPLIANT", "UNKNOWN", "N/A", "EXEMPT"],
        [[s.rule.id, s.rule.severity, *(s.counts[status.value] for status in STATUS_ORDER)] for s in fleet.rules],
        right=frozenset({2, 3, 4, 5, 6}),
    )
    devices = table(
        ["DEVICE", "SERIAL", "SITE", "GROUP", "STATUS", "LAST INFORM", "NOT COMPLIANT (UNKNOWN)"],
        [[d.device.id, d.device.serial_number, d.device.site, d.device.device_group, _SHORT[d.status.value],
          _when(d.device.last_inform), _failing(d)]
         for d in fleet.devices],
    ) if fleet.devices else "no devices"
    return f"{fleet_line(fleet)}\n\n{rules}\n\n{devices}"


def _failing(summary: DeviceSummary) -> str:
    from acs.policy.evaluate import Status

    if not summary.evaluated:
        return "(never evaluated)"
    bad = summary.rules_with(Status.NON_COMPLIANT)
    unknown = summary.rules_with(Status.UNKNOWN)
    return " ".join(bad + [f"({rule_id})" for rule_id in unknown]) or "-"


def render_rule(fleet: FleetReport, by_rule: RuleReport) -> str:
    rule = by_rule.summary.rule
    counts = ", ".join(f"{n} {_SHORT[status]}" for status, n in by_rule.summary.counts.items() if n)
    lines = [f"{rule.id}: {rule.title}", f"  severity {rule.severity}; {rule.section}", f"  {counts or 'no devices'}",
             ""]
    rows = []
    for device, evidence in by_rule.devices:
        rows.append([device.id, device.serial_number, _SHORT[evidence.status.value], _when(evidence.evaluated_at),
                     _evidence_summary(evidence)])
    lines.append(table(["DEVICE", "SERIAL", "STATUS", "EVALUATED", "EVIDENCE"], rows) if rows else "no devices")
    return "\n".join(lines)


def _evidence_summary(evidence: RuleEvidence) -> str:
    if evidence.exemption is not None:
        return f"exempt: {evidence.exemption.reason}"
    parts = []
    for instance in evidence.instances:
        for check in instance.checks:
            if check.status != "compliant":
                parts.append(f"{check.key}={_value(check)} (wants {check.expected})")
        if not instance.checks and instance.note:
            parts.append(instance.note)
    return "; ".join(parts) or evidence.note or "-"


def _value(check: CheckEvidence) -> str:
    if check.value is None:
        return "(not read)" if check.read_at is None else "(secret)"
    if isinstance(check.value, bool):
        return "true" if check.value else "false"
    return json.dumps(check.value) if isinstance(check.value, str) else str(check.value)


def render_device(detail: DeviceReport) -> str:
    device = detail.device
    out = [
        f"device {device.id}  serial {device.serial_number}  status {_SHORT[detail.status.value]}",
        f"  site {device.site or '-'}  group {device.device_group or '-'}  ip {device.ip or '-'}  "
        f"firmware {device.software_version or '-'}",
        f"  last inform {_when(device.last_inform)}  last evaluated {_when(detail.evaluated_at)}",
        "",
        "RULES",
    ]
    for evidence in detail.rules:
        rule = evidence.rule
        out.append(f"  [{_SHORT[evidence.status.value]}] {rule.id} ({rule.severity}): {rule.title}")
        if evidence.exemption is not None:
            e = evidence.exemption
            out.append(f"      exempted by {e.created_by} at {_when(e.created_at)}: {e.reason}")
        elif evidence.note and rule.kind != "advisory":
            out.append(f"      {evidence.note}")
        if evidence.evaluated_at is not None and rule.kind != "advisory":
            out.append(f"      evaluated {_when(evidence.evaluated_at)} in session {evidence.session_id or '-'}")
        for instance in evidence.instances:
            prefix = f"account {instance.instance}: " if instance.instance is not None else ""
            if not instance.checks:
                out.append(f"      {prefix}{instance.status}{': ' + instance.note if instance.note else ''}")
            for check in instance.checks:
                read = (f"read {_value(check)} at {_when(check.read_at)} via {check.via}"
                        f"{' in session ' + check.session_id if check.session_id else ''}"
                        if check.read_at is not None else (check.via or "not read"))
                note = f" ({check.note})" if check.note else ""
                out.append(f"      {prefix}{check.key} [{check.status}] expected {check.expected}; {read}{note}")
    out += ["", "BACKOFF (writes the device refused; retried after the time shown)"]
    out += [f"  {b.rule_id} {b.key}: fault {b.fault_code} {b.fault_text!r}, {b.attempts} attempt(s), next "
            f"{'due now' if b.next_attempt_at <= detail.generated_at else _when(b.next_attempt_at)}"
            for b in detail.backoff] or ["  none"]
    out += ["", f"RECENT FAULTS (last {len(detail.faults)})" if detail.faults else "RECENT FAULTS"]
    out += [f"  {_when(f.at)} {f.source} {f.code} {f.message}{' (' + f.parameter + ')' if f.parameter else ''}"
            for f in detail.faults] or ["  none"]
    out += ["", "ESCROWED SECRETS (acs secrets show reveals them, audited)"]
    out += [f"  {name}: {state}" for name, state in detail.escrow] or ["  none"]
    out += ["", "ADVISORIES (the ACS cannot act on these)"]
    for advisory in detail.advisories:
        out.append(f"  {advisory.rule_id}: {advisory.title}")
        out.append(f"      {advisory.advice}")
        if advisory.firewall_ports is not None:
            out.append("")
            out.append(_indent(render_ports(advisory.firewall_ports), "      "))
            out.append("")
    return "\n".join(out).rstrip()


def render_ports(ports: Iterable[PortRule]) -> str:
    return table(
        ["PROTO", "PORT(S)", "DIRECTION", "ACTION", "ALLOW", "PURPOSE", "SOURCE"],
        [[p.protocol, p.ports, p.direction, p.action, p.open_to, p.purpose,
          f"read {_when(p.read_at)}" if not p.defaulted else p.note] for p in ports],
    )


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())
