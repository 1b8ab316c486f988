"""The compliance report's aggregation: a rule's effective status, the device rollup, the fleet and per-rule counts,
from stored compliance rows and the operator's exemptions (no phone needed; the in-process flow is in
test_compliance_cli.py)."""

from __future__ import annotations

import pytest

from acs.compliance_report import (device_status, empty_counts, fleet_json, fleet_report, iso, rule_status,
                                   spell_out)
from acs.policy.evaluate import Status
from acs.policy.rules import load_policy
from acs.store import InformFacts, Store

POLICY = load_policy()
SETTING_RULES = [r.id for r in POLICY.rules if r.kind == "setting"]
ADVISORY = next(r for r in POLICY.rules if r.kind == "advisory")
AT = 1_800_000_000.0

C, N, U, NA, E = (Status.COMPLIANT, Status.NON_COMPLIANT, Status.UNKNOWN, Status.NOT_APPLICABLE, Status.EXEMPT)


@pytest.mark.parametrize(("stored", "exempt", "expected"), [
    ("compliant", False, C),
    ("non_compliant", False, N),
    ("unknown", False, U),
    ("not_applicable", False, NA),
    (None, False, U),  # never evaluated
    ("non_compliant", True, E),  # the operator's exemption wins over the stored verdict
    (None, True, E),
    ("exempt", False, U),  # exempt when evaluated, exemption removed since
    ("exempt", True, E),
    ("bogus", False, U),
])
def test_rule_status(stored, exempt, expected):
    status, note = rule_status(POLICY.rule("web-https"), stored, exempt)
    assert status is expected
    assert bool(note) == (expected is U and stored != "unknown")  # says why the stored verdict does not stand


@pytest.mark.parametrize("stored", ["compliant", "non_compliant", None])
def test_advisory_rules_are_never_counted_as_anything_but_not_applicable(stored):
    assert rule_status(ADVISORY, stored, True)[0] is NA


@pytest.mark.parametrize(("statuses", "expected"), [
    ([C, C, NA], C),
    ([C, E, NA], C),
    ([NA, NA], C),  # nothing applies: nothing fails
    ([C, U, NA], U),
    ([C, U, E], U),
    ([C, U, N], N),
    ([N, E], N),
])
def test_device_rollup(statuses, expected):
    assert device_status(statuses) is expected


def _device(store: Store, serial: str) -> str:
    device_id = f"000B82-WP820-{serial}"
    store.devices.record_inform(InformFacts(device_id, "000B82", "WP820", serial, "Grandstream", AT))
    return device_id


def _record(store: Store, device_id: str, **changes: str) -> None:
    """Stored rows for every rule: settings compliant, advisories not applicable, except ``changes``."""
    statuses = {r.id: ("not_applicable" if r.kind == "advisory" else "compliant") for r in POLICY.rules}
    statuses.update({key.replace("_", "-"): value for key, value in changes.items()})
    store.policy_state.record_compliance(device_id, [(rule_id, s, {}) for rule_id, s in statuses.items()],
                                         session_id="s1")


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "acs.sqlite", clock=lambda: AT)
    yield store
    store.close()


def test_fleet_counts_and_device_rollup(store):
    good = _device(store, "000000000001")
    _record(store, good, ssh_port="not_applicable")
    bad = _device(store, "000000000002")
    _record(store, bad, web_port="non_compliant", ldaps="unknown")
    unsure = _device(store, "000000000003")
    _record(store, unsure, ldaps="unknown")
    excused = _device(store, "000000000004")
    _record(store, excused, web_port="non_compliant")
    store.policy_state.exempt(excused, "web-port", reason="kiosk behind a proxy on 80", by="operator:alice")
    never = _device(store, "000000000005")

    report = fleet_report(store, POLICY)
    by_device = {d.device.id: d for d in report.devices}
    assert {device_id: by_device[device_id].status for device_id in by_device} == {
        good: C, bad: N, unsure: U, excused: C, never: U}
    assert by_device[never].evaluated is False and by_device[good].evaluated is True
    assert by_device[bad].rules_with(N) == ["web-port"] and by_device[bad].rules_with(U) == ["ldaps"]
    assert by_device[excused].rules_with(E) == ["web-port"]

    counts = {s.rule.id: s.counts for s in report.rules}
    assert counts["web-port"] == {**empty_counts(), "compliant": 2, "non_compliant": 1, "exempt": 1, "unknown": 1}
    assert counts["ldaps"] == {**empty_counts(), "compliant": 2, "unknown": 3}
    assert counts["ssh-port"] == {**empty_counts(), "compliant": 3, "not_applicable": 1, "unknown": 1}
    assert counts[ADVISORY.id] == {**empty_counts(), "not_applicable": 5}
    for summary in report.rules:  # every device is counted once under every rule
        assert sum(summary.counts.values()) == 5

    document = fleet_json(report)
    assert (document["devices_total"], document["devices_compliant"], document["devices_non_compliant"],
            document["devices_unknown"]) == (5, 2, 1, 2)


def test_a_rule_missing_from_the_stored_rows_is_unknown_and_rows_of_retired_rules_are_ignored(store):
    device = _device(store, "000000000001")
    rows = [(r.id, "not_applicable" if r.kind == "advisory" else "compliant", {}) for r in POLICY.rules
            if r.id != "syslog-tls"] + [("retired-rule", "non_compliant", {})]
    store.policy_state.record_compliance(device, rows, session_id=None)
    (summary,) = fleet_report(store, POLICY).devices
    assert summary.status is U and summary.rules_with(U) == ["syslog-tls"]
    assert "retired-rule" not in summary.rules


def test_removing_an_exemption_makes_a_stored_exempt_unknown_until_reevaluated(store):
    device = _device(store, "000000000001")
    _record(store, device, web_port="exempt")
    assert fleet_report(store, POLICY).devices[0].rules["web-port"] is U
    store.policy_state.exempt(device, "web-port", reason="r", by="operator:bob")
    assert fleet_report(store, POLICY).devices[0].rules["web-port"] is E


def test_expectations_spell_out_the_settings_they_name():
    settings = {"srtp_key_length": "AES256", "acs_url": ""}
    assert spell_out("= ${srtp_key_length}", settings) == "= AES256 (srtp_key_length)"
    assert spell_out("= ${acs_url} and starts with https://", settings) == "= ${acs_url} and starts with https://"
    assert spell_out("not 80, 443", settings) == "not 80, 443"


def test_times_are_iso_8601_utc():
    assert iso(1_800_000_000.0) == "2027-01-15T08:00:00Z"
    assert iso(None) is None
