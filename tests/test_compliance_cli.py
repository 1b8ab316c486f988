"""`acs compliance`, `acs exempt` and `acs secrets show|list` over a store the real policy engine filled: one phone
hardened to compliance and one half-hardened (its web port write refused, its config file never fetched), driven
in-process by tests/policy_driver.py. The JSON shape is pinned here on purpose: changing it must break a test (and
bump docs/compliance-json.md's schema_version)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from acs.cli import cli
from acs.store import Store
from acs.store.audit import Audit
from acs.vault import Vault, generate_key_file
from cwmp_models import messages as m
from cwmp_models.datamodel import load_model
from tests.policy_driver import ACS_URL, build_rig

MODEL = load_model()
GOOD_SERIAL, HALF_SERIAL = "c074ad000001", "c074ad000002"
GOOD, HALF = f"000B82-WP820-{GOOD_SERIAL}", f"000B82-WP820-{HALF_SERIAL}"


def _refuse_web_port(rig) -> None:
    """The phone refuses the web port (a firmware stricter than the model), as in test_policy_flow."""
    path = MODEL.parameters["web.port"].path
    original = rig.phone.handle

    def handle(request):
        if isinstance(request, m.SetParameterValues) and any(p.name == path for p in request.parameter_list):
            return m.Fault.of(9003, set_parameter_values_faults=[m.SetParameterValuesFault(path, 9007, "refused")])
        return original(request)

    rig.phone.handle = handle


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """The built store (closed, checkpointed), the vault key file, and what the good phone holds."""
    directory = tmp_path_factory.mktemp("fleet")
    key_file = generate_key_file(directory / "vault.key")
    vault = Vault.from_key_file(key_file)
    good = build_rig(directory, serial=GOOD_SERIAL)
    good.policy.vault = vault
    good.session(("1 BOOT",))
    for _ in range(2):  # the config file read, then written and read back (test_policy_flow)
        good.transfers()
        good.session()
    half = build_rig(directory, serial=HALF_SERIAL)
    half.policy.vault = vault
    _refuse_web_port(half)
    half.session(("1 BOOT",))
    phone_secrets = {name: good.phone.value(name) for name, _ in good.store.secrets.names(GOOD)}
    half_sessions = {s.id for s in half.store.history.sessions(HALF)}
    good.store.close()
    half.store.close()
    return {"db": directory / "acs.sqlite", "key": key_file, "secrets": phone_secrets, "half_sessions": half_sessions}


@pytest.fixture
def db(fleet, tmp_path) -> Path:
    """A private copy of the fleet's store: commands here write (audit, exemptions, refreshed verdicts)."""
    copy = tmp_path / "acs.sqlite"
    shutil.copy(fleet["db"], copy)
    return copy


def acs(db: Path, key: Path | str, *args: str) -> Result:
    options = ["--set", f"store.path={db}", "--set", "cwmp.https=", "--set", "cwmp.http=127.0.0.1:7548",
               "--set", f"cwmp.public_url={ACS_URL}", "--set", f"secrets.key_file={key}"]
    command = list(args)
    # The shared --config/--set options belong to the subcommand: after its name (and the group's, for secrets).
    at = 2 if command[0] in ("secrets",) else 1
    return CliRunner().invoke(cli, command[:at] + options + command[at:], prog_name="acs")


def report(db, fleet, *args) -> dict:
    result = acs(db, fleet["key"], "compliance", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def audit(db, action) -> list:
    store = Store(db)
    try:
        return store.audit.entries(action=action)
    finally:
        store.close()


# ---- acs compliance -------------------------------------------------------------------------------------------------


def test_fleet_tables(db, fleet):
    result = acs(db, fleet["key"], "compliance")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "2 device(s), 1 compliant, 1 non-compliant, 0 unknown" in lines[0]
    rows = {line.split()[0]: line.split() for line in lines if line and line.split()[0] in ("web-port", "web-https")}
    assert rows["web-port"] == ["web-port", "medium", "1", "1", "0", "0", "0"]
    assert rows["web-https"] == ["web-https", "high", "2", "0", "0", "0", "0"]
    devices = {line.split()[0]: line for line in lines if line.startswith("000B82-")}
    assert "  compliant  " in devices[GOOD]
    assert "  NON-COMPLIANT  " in devices[HALF] and " web-port " in devices[HALF] + " "
    assert "(ldaps)" in devices[HALF]  # never read back: its config file was never fetched


TOP_KEYS = {"schema_version": int, "generated_at": str, "policy": dict, "devices_total": int,
            "devices_compliant": int, "devices_non_compliant": int, "devices_unknown": int, "rules": list,
            "devices": list}
RULE_KEYS = {"id": str, "title": str, "severity": str, "kind": str, "section": str, "compliant": int,
             "non_compliant": int, "unknown": int, "not_applicable": int, "exempt": int}
DEVICE_KEYS = {"id": str, "serial_number": str, "site": (str, type(None)), "group": (str, type(None)),
               "status": str, "evaluated": bool, "last_inform": (str, type(None)), "non_compliant_rules": list,
               "unknown_rules": list, "exempt_rules": list}


def _pinned(obj: dict, keys: dict, where: str) -> None:
    assert set(obj) == set(keys), where
    for key, kind in keys.items():
        assert isinstance(obj[key], kind), (where, key, obj[key])


def test_json_shape_is_pinned(db, fleet):
    document = report(db, fleet)
    _pinned(document, TOP_KEYS, "top")
    assert document["schema_version"] == 1
    assert set(document["policy"]) == {"id", "revision", "title"}
    for rule in document["rules"]:
        _pinned(rule, RULE_KEYS, rule["id"])
        assert sum(rule[s] for s in ("compliant", "non_compliant", "unknown", "not_applicable", "exempt")) == 2
    for device in document["devices"]:
        _pinned(device, DEVICE_KEYS, device["id"])
    assert (document["devices_total"], document["devices_compliant"], document["devices_non_compliant"],
            document["devices_unknown"]) == (2, 1, 1, 0)
    devices = {d["id"]: d for d in document["devices"]}
    assert devices[GOOD]["status"] == "compliant" and devices[GOOD]["non_compliant_rules"] == []
    assert devices[HALF]["status"] == "non_compliant" and devices[HALF]["non_compliant_rules"] == ["web-port"]
    assert "ldaps" in devices[HALF]["unknown_rules"]


DETAIL_KEYS = {"id", "serial_number", "site", "group", "ip", "software_version", "last_inform", "status",
               "evaluated_at", "rules", "backoff", "faults", "escrow", "advisories"}
EVIDENCE_KEYS = {"id", "title", "severity", "kind", "status", "stored_status", "note", "evaluated_at", "session_id",
                 "exemption", "instances"}
CHECK_KEYS = {"key", "status", "expected", "value", "read_at", "session_id", "via", "channel", "note"}
PORT_KEYS = {"protocol", "port", "port_end", "direction", "purpose", "account", "action", "open_to", "keys",
             "defaulted", "read_at"}


def test_device_json_carries_the_evidence_the_backoff_and_the_firewall_table(db, fleet):
    document = report(db, fleet, "--device", HALF_SERIAL)
    _pinned(document, {**TOP_KEYS, "device": dict}, "top with --device")
    device = document["device"]
    assert set(device) == DETAIL_KEYS and device["id"] == HALF and device["status"] == "non_compliant"
    rules = {r["id"]: r for r in device["rules"]}
    for rule in rules.values():
        assert set(rule) == EVIDENCE_KEYS
        for instance in rule["instances"]:
            assert set(instance) == {"instance", "status", "note", "checks"}
            assert all(set(check) == CHECK_KEYS for check in instance["checks"])
    web_port = rules["web-port"]
    assert web_port["status"] == "non_compliant" and web_port["session_id"] in fleet["half_sessions"]
    (check,) = web_port["instances"][0]["checks"]
    assert (check["key"], check["value"], check["expected"], check["via"]) == ("web.port", 80, "not 80, 443", "TR-069")
    assert check["session_id"] in fleet["half_sessions"] and check["read_at"].endswith("Z")
    assert rules["ldaps"]["status"] == "unknown"
    (backoff,) = [b for b in device["backoff"] if b["key"] == "web.port"]
    assert (backoff["rule"], backoff["fault_code"], backoff["attempts"]) == ("web-port", 9007, 1)
    assert any(f["code"] == 9007 for f in device["faults"])
    assert {e["name"] for e in device["escrow"]} >= {"web.admin_password"}
    assert all(set(e) == {"name", "state"} for e in device["escrow"])
    advisories = {a["id"]: a for a in device["advisories"]}
    assert advisories["router-sip-alg-advisory"]["firewall_ports"] is None
    ports = advisories["firewall-advisory"]["firewall_ports"]
    assert all(set(p) == PORT_KEYS for p in ports)
    (web_ui,) = [p for p in ports if p["purpose"].startswith("web UI")]
    # The port the phone actually has (it refused 8443), read this session, not a default.
    assert (web_ui["port"], web_ui["action"], web_ui["defaulted"]) == (80, "keep closed", [])


def test_device_text_shows_evidence_backoff_and_firewall_table(db, fleet):
    result = acs(db, fleet["key"], "compliance", "--device", GOOD)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith(f"device {GOOD}  serial {GOOD_SERIAL}  status compliant")
    assert "web.port [compliant] expected not 80, 443; read 8443 at " in text
    assert "web.admin_password [compliant] expected set by the ACS and held in escrow; accepted by the device" in text
    assert "expected = AES128And256 (srtp_key_length)" in text
    assert "PROTO" in text and "TCP      8443" in text and "TCP      58547" in text
    assert "never the public network" in text
    for value in fleet["secrets"].values():
        assert value not in text
    half = acs(db, fleet["key"], "compliance", "--device", HALF).stdout
    assert "web-port web.port: fault 9007 'refused', 1 attempt(s), next " in half


def test_rule_view(db, fleet):
    result = acs(db, fleet["key"], "compliance", "--rule", "web-port")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "web-port: Web UI not on a well-known port"
    (half,) = [line for line in lines if line.startswith(HALF)]
    assert "NON-COMPLIANT" in half and "web.port=80 (wants not 80, 443)" in half
    rule = report(db, fleet, "--rule", "web-port")["rule"]
    assert (rule["id"], rule["compliant"], rule["non_compliant"]) == ("web-port", 1, 1)
    assert {d["device_id"]: d["status"] for d in rule["devices"]} == {GOOD: "compliant", HALF: "non_compliant"}


@pytest.mark.parametrize(("args", "code"), [
    ((), 0),
    (("--fail-on", "non_compliant"), 3),
    (("--fail-on", "unknown"), 3),
    (("--device", GOOD, "--fail-on", "unknown"), 0),
    (("--device", HALF, "--fail-on", "non_compliant"), 3),
    (("--rule", "web-https", "--fail-on", "unknown"), 0),
    (("--rule", "web-port", "--fail-on", "non_compliant"), 3),
    (("--json", "--fail-on", "non_compliant"), 3),
])
def test_exit_code_is_0_for_a_report_and_3_only_when_asked(db, fleet, args, code):
    result = acs(db, fleet["key"], "compliance", *args)
    assert result.exit_code == code, result.output
    assert result.stdout  # the report is printed either way


def test_refresh_re_evaluates_from_stored_readings(db, fleet):
    web_port = MODEL.parameters["web.port"]
    store = Store(db)
    try:  # A reading the ACS stored after its last evaluation (say, a value-change Inform).
        store.parameters.record_values(GOOD, [(web_port.path, 80, web_port.type)], at=store.clock(), session_id="later")
    finally:
        store.close()
    assert {d["id"]: d["status"] for d in report(db, fleet)["devices"]}[GOOD] == "compliant"  # what was verified
    result = acs(db, fleet["key"], "compliance", "--json", "--refresh")
    assert result.exit_code == 0 and "re-evaluated 2 device(s)" in result.stderr
    good = {d["id"]: d for d in json.loads(result.stdout)["devices"]}[GOOD]
    # The same conclusion the running ACS draws (its URL and settings): only the web port fails, nothing unknown.
    assert (good["status"], good["non_compliant_rules"], good["unknown_rules"]) == ("non_compliant", ["web-port"], [])


def test_unknown_device_or_rule_is_a_one_line_error(db, fleet):
    result = acs(db, fleet["key"], "compliance", "--device", "nope")
    assert result.exit_code == 1 and "no device 'nope'" in result.stderr
    result = acs(db, fleet["key"], "compliance", "--rule", "nope")
    assert result.exit_code == 2 and "no rule 'nope' in policy wp820-hardening" in result.stderr


def test_a_missing_store_is_refused_not_created(tmp_path, fleet):
    missing = tmp_path / "elsewhere" / "acs.sqlite"
    result = acs(missing, fleet["key"], "compliance")
    assert result.exit_code == 1 and f"no store at {missing}" in result.stderr
    assert not missing.exists()


# ---- acs exempt -----------------------------------------------------------------------------------------------------


def test_exemption_makes_the_rule_exempt_in_the_report_and_is_audited(db, fleet):
    result = acs(db, fleet["key"], "exempt", HALF_SERIAL, "web-port", "--reason", "kiosk proxy needs 80",
                 "--operator", "alice")
    assert result.exit_code == 0, result.output
    document = report(db, fleet, "--device", HALF)
    half = {d["id"]: d for d in document["devices"]}[HALF]
    assert half["exempt_rules"] == ["web-port"] and half["non_compliant_rules"] == []
    assert half["status"] == "unknown"  # web-port no longer fails; unread config-file settings remain unknown
    assert {r["id"]: r for r in document["rules"]}["web-port"]["exempt"] == 1
    (evidence,) = [r for r in document["device"]["rules"] if r["id"] == "web-port"]
    assert evidence["status"] == "exempt" and evidence["stored_status"] == "non_compliant"
    assert evidence["exemption"]["reason"] == "kiosk proxy needs 80" and evidence["exemption"]["by"] == "operator:alice"
    (entry,) = audit(db, "rule-exempted")
    assert (entry.actor, entry.device_id, entry.detail["rule"], entry.reason) == (
        "operator:alice", HALF, "web-port", "kiosk proxy needs 80")

    result = acs(db, fleet["key"], "exempt", "--remove", HALF, "web-port", "--operator", "bob")
    assert result.exit_code == 0 and "exemption from web-port removed" in result.stdout
    half = {d["id"]: d for d in report(db, fleet)["devices"]}[HALF]
    assert half["status"] == "non_compliant" and half["exempt_rules"] == []
    (entry,) = audit(db, "rule-exemption-removed")
    assert entry.actor == "operator:bob"


@pytest.mark.parametrize(("args", "code", "message"), [
    ((HALF, "web-port"), 2, "--reason is required"),
    ((HALF, "web-port", "--reason", "  "), 2, "--reason must not be empty"),
    ((HALF, "nope", "--reason", "r"), 2, "no rule 'nope'"),
    ((HALF, "firewall-advisory", "--reason", "r"), 2, "is an advisory"),
    (("nope", "web-port", "--reason", "r"), 1, "no device 'nope'"),
])
def test_exempt_refusals(db, fleet, args, code, message):
    result = acs(db, fleet["key"], "exempt", *args)
    assert result.exit_code == code and message in result.stderr, result.output
    assert audit(db, "rule-exempted") == []


# ---- acs secrets ----------------------------------------------------------------------------------------------------


def test_secrets_show_audits_first_then_reveals(db, fleet, monkeypatch):
    events: list[tuple[str, str]] = []
    record, echo = Audit.record, click.echo

    def recording(self, *args, **kwargs):
        events.append(("audit", args[1]))
        return record(self, *args, **kwargs)

    def echoing(message=None, *args, **kwargs):
        events.append(("echo", str(message)))
        return echo(message, *args, **kwargs)

    monkeypatch.setattr(Audit, "record", recording)
    monkeypatch.setattr(click, "echo", echoing)
    result = acs(db, fleet["key"], "secrets", "show", GOOD_SERIAL, "--reason", "phone locked, ticket 4711",
                 "--operator", "alice")
    monkeypatch.undo()
    assert result.exit_code == 0, result.output
    revealing = [i for i, (kind, text) in enumerate(events) if kind == "echo" and any(
        value in text for value in fleet["secrets"].values())]
    assert events.index(("audit", "secret-revealed")) < min(revealing)
    shown = dict(line.split(" (active): ") for line in result.stdout.splitlines())
    assert shown == fleet["secrets"] and len(shown) == 6
    (entry,) = audit(db, "secret-revealed")
    assert (entry.actor, entry.device_id, entry.reason) == ("operator:alice", GOOD, "phone locked, ticket 4711")
    assert entry.detail["names"] == sorted(fleet["secrets"])
    stored = json.dumps([entry.detail, entry.reason])
    assert not any(value in stored for value in fleet["secrets"].values())
    assert f"audit record {entry.id}" in result.stderr


def test_secrets_show_one_name_with_its_pending_version_labelled(db, fleet):
    store = Store(db)
    vault = Vault.from_key_file(fleet["key"])
    try:
        store.secrets.put(GOOD, "web.admin_password", vault.seal(GOOD, "web.admin_password", "NextOne123"),
                          state="pending")
    finally:
        store.close()
    result = acs(db, fleet["key"], "secrets", "show", GOOD, "web.admin_password", "--reason", "r", "--operator", "a")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"web.admin_password (active): {fleet['secrets']['web.admin_password']}",
        "web.admin_password (pending: sent, not yet confirmed by the device): NextOne123",
    ]
    (entry,) = audit(db, "secret-revealed")
    assert entry.detail == {"names": ["web.admin_password"],
                            "versions": ["web.admin_password (active)", "web.admin_password (pending)"]}


def test_secrets_show_refusals_reveal_nothing_and_record_nothing(db, fleet, tmp_path):
    other_key = generate_key_file(tmp_path / "other.key")
    cases = [
        ((fleet["key"], "secrets", "show", GOOD), 2, "Missing option '--reason'"),
        ((fleet["key"], "secrets", "show", GOOD, "--reason", " "), 2, "--reason must not be empty"),
        (("", "secrets", "show", GOOD, "--reason", "r"), 1, "secrets.key_file is not set"),
        ((other_key, "secrets", "show", GOOD, "--reason", "r"), 1, "does not open"),
        ((fleet["key"], "secrets", "show", GOOD, "sip.1.password", "--reason", "r"), 1,
         "has no escrowed secret 'sip.1.password' (escrowed: acs.connection_request_password, "),
        ((fleet["key"], "secrets", "show", "nope", "--reason", "r"), 1, "no device 'nope'"),
    ]
    for (key, *args), code, message in cases:
        result = acs(db, key, *args)
        assert result.exit_code == code and message in result.stderr, (args, result.output)
        assert result.stdout == ""
    assert audit(db, "secret-revealed") == []


def test_secrets_list_names_states_only(db, fleet):
    result = acs(db, fleet["key"], "secrets", "list", GOOD)
    assert result.exit_code == 0, result.output
    assert [line.split("\t") for line in result.stdout.splitlines()] == [
        [name, "active"] for name in sorted(fleet["secrets"])]
    assert not any(value in result.stdout for value in fleet["secrets"].values())
    assert audit(db, "secret-revealed") == []
