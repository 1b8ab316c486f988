"""The policy against the simulated phone, in-process (tests/policy_driver.py): from factory defaults to verified
compliance, each rule alone, drift, device faults without retry storms, and the safety ordering."""

from __future__ import annotations

import pytest

from acs.policy.evaluate import Status
from acs.policy.rules import load_policy
from cwmp_models import messages as m
from cwmp_models.datamodel import load_model
from tests.policy_driver import build_rig

MODEL = load_model()
VERIFIED_VIA = {"TR-069", "config upload", "accepted by the device"}


def results(rig):
    return {r.rule_id: r for r in rig.policy.evaluate_device(rig.device_id)}


def statuses(rig) -> dict[str, Status]:
    return {rule_id: r.status for rule_id, r in results(rig).items()}


def converge(rig, sessions=3):
    rig.session(("1 BOOT",))
    for _ in range(sessions - 1):
        rig.transfers()
        rig.session()


def test_factory_default_phone_reaches_full_compliance_in_at_most_three_sessions(tmp_path):
    rig = build_rig(tmp_path)
    first = rig.session(("1 BOOT",))
    # Discover, read, watch, write (the escrow-gated setting in a second round), verify, then the config file: push
    # what has no TR-069 path, and read it back.
    assert first == ["GetParameterNames", "GetParameterValues", "SetParameterAttributes", "SetParameterValues",
                     "SetParameterValues", "GetParameterValues", "Download", "Upload"]
    assert rig.transfers() == ["download", "upload"]
    assert rig.session() == []  # the TransferCompletes
    assert len(rig.sessions) <= 3
    for rule_id, result in results(rig).items():
        assert result.status in (Status.COMPLIANT, Status.NOT_APPLICABLE), (rule_id, result)
        for instance in result.instances:
            for check in instance.checks:
                # Every verdict rests on a read-back (or, for secrets, the device's acceptance), never on a send.
                assert check.via in VERIFIED_VIA, (rule_id, check)
    # The stored compliance (what `acs compliance` reports) says the same.
    stored = {row.rule_id: row.status for row in rig.store.policy_state.compliance(rig.device_id)}
    assert stored == {rule_id: s.value for rule_id, s in statuses(rig).items()}


def test_a_compliant_phone_gets_reads_only(tmp_path):
    rig = build_rig(tmp_path)
    converge(rig)
    rig.now[0] += 2 * 24 * 3600  # past the re-verification interval
    assert rig.session() == ["GetParameterValues", "Upload"]
    rig.transfers()
    assert rig.session() == []


def test_secrets_are_escrowed_encrypted_and_match_the_phone(tmp_path):
    rig = build_rig(tmp_path)
    converge(rig)
    device = rig.device_id
    for key in ("web.admin_password", "config.xml_password", "acs.connection_request_password"):
        blob = rig.store.secrets.get(device, key)
        assert blob is not None and rig.phone.value(key).encode() not in blob
        assert rig.policy.vault.open(device, key, blob) == rig.phone.value(key)
    admin = rig.phone.value("web.admin_password")
    assert 6 <= len(admin) <= 32 and admin.isalnum() and admin != "admin"


# ---- each rule alone --------------------------------------------------------------------------------------------------

# Rules that apply to a phone at the operator's default settings and set readable (non-secret) values; the
# conditional rules and the secret ones have their own tests.
SETTING_RULES = [
    rule for rule in load_policy().rules
    if rule.kind == "setting" and rule.when is None or rule.id == "sip-unused-accounts-off"
]
PLAIN_RULES = [
    rule for rule in SETTING_RULES
    if not any(MODEL.parameters[check.key.replace("{n}", "1")].secret for check in rule.checks)
    and MODEL.parameters[rule.checks[0].key.replace("{n}", "1")].exposed
]


def _first_key(rule) -> str:
    # Account 2: every per-account rule applies to it (account 1 is "in use", so it stays active).
    return rule.checks[0].key.replace("{n}", "2")


def _drifted(spec, good):
    """A value a user could set on the keypad that breaks the rule."""
    if isinstance(good, bool):
        return not good
    if spec.default != good:
        return spec.default
    return next(value for value in spec.enum if value != good)


def _compliant_value(rig, key):
    """The value a compliant phone has for ``key`` (what the ACS itself wrote on the reference phone)."""
    return rig.phone.value(key)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    rig = build_rig(tmp_path_factory.mktemp("reference"))
    converge(rig)
    return rig


@pytest.mark.parametrize("rule", PLAIN_RULES, ids=lambda rule: rule.id)
def test_each_rule_already_compliant_is_left_alone(rule, reference, tmp_path):
    keys = [check.key.replace("{n}", str(n)) for check in rule.checks
            for n in ([1, 2] if "{n}" in check.key else [None])]
    preset = {key: _compliant_value(reference, key) for key in keys}
    rig = build_rig(tmp_path, settings=preset)
    converge(rig)
    assert statuses(rig)[rule.id] is Status.COMPLIANT
    # A TR-069 setting read back right is never written.
    written = [entry.detail for entry in rig.store.audit.entries(action="set-parameter-values")]
    assert all(key not in detail.get("values", {}) for detail in written for key in keys)
    # A config-file setting can only be known right once read back; from then on it is never pushed again.
    rig.now[0] += 2 * 24 * 3600
    pushed = len(rig.store.audit.entries(action="download-config"))
    converge(rig)
    later = rig.store.audit.entries(action="download-config")[: len(rig.store.audit.entries(action="download-config")) - pushed]
    assert all(key not in entry.detail.get("keys", []) for entry in later for key in keys)


@pytest.mark.parametrize("rule", PLAIN_RULES, ids=lambda rule: rule.id)
def test_each_rule_drifted_on_the_keypad_is_corrected(rule, tmp_path):
    key = _first_key(rule)
    spec = MODEL.parameters[key]
    rig = build_rig(tmp_path)
    converge(rig)
    good = rig.phone.value(key)
    drifted = _drifted(spec, good)
    level = rig.phone.local_change(key, drifted)
    if spec.path is not None:
        assert level == 2  # the ACS asked for active notification: the phone calls in at once
        rig.session(("4 VALUE CHANGE",))
        assert rig.store.parameters.get(rig.device_id)[spec.path].value is not None
    else:
        rig.now[0] += 2 * 24 * 3600  # no TR-069 path: seen at the next config read-back
        rig.session()
    rig.transfers()
    rig.session()
    rig.transfers()
    rig.session()
    assert rig.phone.value(key) == good, (key, rig.sessions[-3:])
    assert statuses(rig)[rule.id] is Status.COMPLIANT


def test_drift_is_detected_from_the_value_change_inform(tmp_path):
    rig = build_rig(tmp_path)
    converge(rig)
    rig.phone.local_change("ssh.disabled", False)
    rpcs = rig.session(("4 VALUE CHANGE",))
    # The Inform itself carried the new value: the ACS corrects it without reading first.
    assert rpcs[0] == "SetParameterValues"
    assert rig.phone.value("ssh.disabled") is True
    assert statuses(rig)["ssh-disabled"] is Status.COMPLIANT


# ---- faults -----------------------------------------------------------------------------------------------------------


def writes_of(rig, key) -> int:
    return sum(1 for e in rig.store.audit.entries(action="set-parameter-values") if key in e.detail["values"])


def rejecting(rig, path, code=9007):
    """Make the phone refuse one parameter (a firmware whose validator is stricter than the model's)."""
    original = rig.phone.handle

    def handle(request):
        if isinstance(request, m.SetParameterValues) and any(p.name == path for p in request.parameter_list):
            return m.Fault.of(9003, set_parameter_values_faults=[m.SetParameterValuesFault(path, code, "refused")])
        return original(request)

    rig.phone.handle = handle


def test_a_rejected_value_keeps_the_rule_non_compliant_with_the_fault_and_no_retry_storm(tmp_path):
    rig = build_rig(tmp_path)
    path = MODEL.parameters["web.port"].path
    rejecting(rig, path)
    rig.session(("1 BOOT",))
    result = statuses(rig)
    assert result["web-port"] is Status.NON_COMPLIANT
    assert result["web-https"] is Status.COMPLIANT  # the rest went through in the next write round
    (backoff,) = [b for b in rig.store.policy_state.backoff(rig.device_id) if b.key == "web.port"]
    assert backoff.fault_code == 9007 and backoff.attempts == 1
    assert any(f.parameter == path and f.code == 9007 for f in rig.store.history.faults(rig.device_id))
    # The next sessions, within the backoff, do not try again.
    for _ in range(3):
        rig.transfers()
        rig.session()
    assert writes_of(rig, "web.port") == 1
    # After the backoff it is tried once more.
    rig.now[0] += 3601
    rig.session()
    assert writes_of(rig, "web.port") == 2


def test_a_failed_config_file_backs_off_its_rules(tmp_path):
    rig = build_rig(tmp_path)
    original = rig.phone.complete_download

    def broken(transfer_id, data, fault=None, start=None, end=None):
        return original(transfer_id, None, (9018, "file corrupted"), start, end)

    rig.phone.complete_download = broken
    converge(rig)
    assert statuses(rig)["ldaps"] is Status.NON_COMPLIANT
    assert any(b.key == "ldap.connection_mode" and b.fault_code == 9018
               for b in rig.store.policy_state.backoff(rig.device_id))
    downloads = len(rig.store.audit.entries(action="download-config"))
    rig.transfers()
    rig.session()
    assert len(rig.store.audit.entries(action="download-config")) == downloads  # no retry within the backoff


# ---- ordering ---------------------------------------------------------------------------------------------------------


def test_constraint_mode_is_never_applied_before_the_admin_password_is_escrowed(tmp_path):
    rig = build_rig(tmp_path)
    rejecting(rig, MODEL.parameters["web.admin_password"].path)
    for _ in range(3):
        rig.session(("1 BOOT",) if not rig.sessions else ("2 PERIODIC",))
        rig.transfers()
    assert rig.phone.value("keypad.menu_access") != "ConstraintMode"
    assert statuses(rig)["keypad-constraint-mode"] is not Status.COMPLIANT
    assert rig.store.secrets.get(rig.device_id, "web.admin_password") is None
    for entry in rig.store.audit.entries(action="download-config"):
        assert "keypad.menu_access" not in entry.detail["keys"]


def test_escrow_is_durable_before_the_password_is_sent(tmp_path):
    rig = build_rig(tmp_path)
    seen = {}
    original = rig.phone.handle

    def handle(request):
        if isinstance(request, m.SetParameterValues):
            names = {p.name for p in request.parameter_list}
            if MODEL.parameters["web.admin_password"].path in names:
                seen["pending"] = rig.store.secrets.get(rig.device_id, "web.admin_password", state="pending")
        return original(request)

    rig.phone.handle = handle
    rig.session(("1 BOOT",))
    assert seen["pending"] is not None
    assert rig.policy.vault.open(rig.device_id, "web.admin_password", seen["pending"]) == \
        rig.phone.value("web.admin_password")


def test_factory_reset_phone_is_re_hardened(tmp_path):
    rig = build_rig(tmp_path)
    converge(rig)
    rig.phone.factory_reset()
    rig.session()  # 0 BOOTSTRAP + 1 BOOT: the ACS forgets what it knew and starts over
    for _ in range(2):
        rig.transfers()
        rig.session()
    assert rig.phone.value("web.admin_password") != "admin"
    assert all(s in (Status.COMPLIANT, Status.NOT_APPLICABLE) for s in statuses(rig).values())


def refusing_pvalue(rig, pvalue):
    """Make the phone refuse any config file that sets one P-value (a firmware that does not accept it)."""
    from cwmp_models import gsconfig

    original = rig.phone.complete_download

    def complete(transfer_id, data, fault=None, start=None, end=None):
        if data is not None:
            plain = data
            if gsconfig.is_encrypted(data):
                plain = gsconfig.decrypt_config(data, rig.phone.value("config.xml_password"))
            if pvalue in gsconfig.parse_config(plain).pvalues:
                return original(transfer_id, None, (9018, f"{pvalue} refused"), start, end)
        return original(transfer_id, data, fault, start, end)

    rig.phone.complete_download = complete


@pytest.mark.parametrize("rule", PLAIN_RULES, ids=lambda rule: rule.id)
def test_each_rule_faulted_stays_non_compliant_with_its_fault_and_is_not_retried_at_once(rule, reference, tmp_path):
    key = _first_key(rule)
    spec = MODEL.parameters[key]
    # Start from a wrong value (some rules hold at factory defaults), which the phone then refuses to change. Both
    # accounts alike: the model refuses per-account P-values written to one account only.
    template = rule.checks[0].key
    siblings = [template.replace("{n}", str(n)) for n in (1, 2)] if "{n}" in template else [key]
    wrong = _drifted(spec, _compliant_value(reference, key))
    rig = build_rig(tmp_path, settings={sibling: wrong for sibling in siblings})
    if spec.path is not None:
        rejecting(rig, spec.path)
    else:
        refusing_pvalue(rig, spec.pvalue)
    converge(rig)
    result = results(rig)[rule.id]
    assert result.status is Status.NON_COMPLIANT
    backoff = {b.key: b for b in rig.store.policy_state.backoff(rig.device_id)}
    assert key in backoff and backoff[key].fault_code in (9007, 9018) and backoff[key].attempts == 1
    # The fault is on record for the operator, and more sessions within the backoff do not try again.
    assert any(f.code in (9007, 9018) for f in rig.store.history.faults(rig.device_id))
    writes = writes_of(rig, key) + sum(key in e.detail.get("keys", [])
                                       for e in rig.store.audit.entries(action="download-config"))
    for _ in range(3):
        rig.transfers()
        rig.session()
    again = writes_of(rig, key) + sum(key in e.detail.get("keys", [])
                                      for e in rig.store.audit.entries(action="download-config"))
    assert again == writes


def test_a_change_that_needs_a_reboot_is_scheduled_in_the_maintenance_window_not_now(tmp_path):
    from datetime import datetime, timezone

    rig = build_rig(tmp_path)
    # 10:00 UTC: outside the default window (02:00-04:00).
    rig.now[0] = datetime(2027, 1, 15, 10, 0, tzinfo=timezone.utc).timestamp()
    original = rig.phone.handle

    def handle(request):
        reply = original(request)
        if isinstance(request, m.SetParameterValues) and isinstance(reply, m.SetParameterValuesResponse):
            return m.SetParameterValuesResponse(1)  # applied; takes effect after a reboot
        return reply

    rig.phone.handle = handle
    first = rig.session(("1 BOOT",))
    assert "Reboot" not in first
    (reboot,) = [t for t in rig.store.tasks.for_device(rig.device_id) if t.command_key == "policy-reboot"]
    window = datetime(2027, 1, 16, 2, 0, tzinfo=timezone.utc).timestamp()
    assert reboot.status == "pending" and reboot.not_before == window
    rig.transfers()
    assert "Reboot" not in rig.session()  # still outside the window: nothing is rebooted
    assert len([t for t in rig.store.tasks.for_device(rig.device_id) if t.command_key == "policy-reboot"]) == 1
    rig.now[0] = window + 60
    assert "Reboot" in rig.session()
