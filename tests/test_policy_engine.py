"""The policy file and the pure engine (evaluation and planning), with no store and no sockets."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from acs.policy import plan as p
from acs.policy.evaluate import Backoff, DeviceFacts, Reading, Status, evaluate
from acs.policy.rules import PolicyError, load_policy, parse_policy
from acs.policy.service import next_window_start
from cwmp_models.datamodel import load_model

POLICY = load_policy()
MODEL = load_model()
NOW = 1_800_000_000.0


def factory_facts(**changes) -> DeviceFacts:
    readings = {
        key: Reading(spec.default, NOW - 10, "s0", "TR-069" if spec.path else "config upload")
        for key, spec in MODEL.parameters.items()
        if not spec.secret and spec.exposed
    }
    settings = POLICY.resolve_settings(
        {}, {"device_username": "c074ad000001", "acs_url": "https://acs.example.net:7549/cwmp", "stun_server": ""}
    )
    facts = DeviceFacts(
        device_id="000B82-WP820-c074ad000001",
        now=NOW,
        settings=settings,
        readings=readings,
        discovered={spec.path: spec.writable for spec in MODEL.parameters.values() if spec.path},
    )
    for name, value in changes.items():
        setattr(facts, name, value)
    return facts


def statuses(facts: DeviceFacts) -> dict[str, Status]:
    return {r.rule_id: r.status for r in evaluate(POLICY, facts)}


# ---- the policy file ------------------------------------------------------------------------------------------------

GUIDELINE_RULES = {
    "web-https", "web-port", "web-admin-password", "web-user-password", "ssh-disabled", "ssh-port",
    "keypad-constraint-mode", "sip-unused-accounts-off", "sip-tls", "sip-sips", "sip-check-domain-certificate",
    "sip-validate-certificate-chain", "sip-block-anonymous", "sip-known-servers-only", "sip-check-user-id",
    "sip-authenticate-invite", "sip-notify-authentication", "srtp-forced", "srtp-key-length", "openvpn-port",
    "bluetooth-off", "config-https", "config-credentials", "config-authenticate", "config-xml-password",
    "upgrade-validate-certificates", "firmware-https", "firmware-credentials", "tr069-acs-https",
    "tr069-connection-request-port", "tr069-connection-request-credentials", "ldaps", "syslog-tls",
    "adb-ftp-advisory", "router-sip-alg-advisory", "firewall-advisory", "8021x-advisory",
}


def test_policy_covers_every_recommendation_the_issue_lists():
    ids = {rule.id for rule in POLICY.rules}
    assert GUIDELINE_RULES <= ids
    for rule in POLICY.rules:
        assert rule.section and rule.title and rule.severity
        assert rule.kind == "advisory" or rule.checks


def test_policy_digest_and_parameter_key():
    settings = POLICY.resolve_settings({}, {"device_username": "x", "acs_url": "", "stun_server": ""})
    key = POLICY.parameter_key(settings)
    assert len(key) <= 32 and key == POLICY.parameter_key(dict(settings))
    assert POLICY.parameter_key({**settings, "web_port": 9443}) != key


@pytest.mark.parametrize(
    "edit,message",
    [
        (('key = "web.access_method"', 'key = "web.no_such_thing"'), "not a parameter of model wp820"),
        (('equals = "HTTPS", set = "HTTPS"', 'equals = "HTTPX", set = "HTTPS"'), "equals"),
        (('set = "${web_port}"', 'set = "${no_such_setting}"'), "unknown setting"),
        (('requires = ["web-admin-password"]\ncheck = [{ key = "keypad', 'requires = ["nope"]\ncheck = [{ key = "keypad'),
         "requires unknown rule"),
        (('severity = "high"', 'severity = "urgent"'), "severity must be one of"),
        (("default = 8443", "default = 80"), "must not be 80"),
    ],
)
def test_policy_errors_name_the_problem(edit, message):
    text = POLICY.source.replace(edit[0], edit[1], 1)
    assert text != POLICY.source
    with pytest.raises(PolicyError, match=message):
        parse_policy(text)


def test_overrides_are_validated():
    with pytest.raises(PolicyError, match="web_port: must not be 443"):
        POLICY.resolve_settings({"web_port": 443}, {})
    with pytest.raises(PolicyError, match="no such setting"):
        POLICY.resolve_settings({"nonsense": 1}, {})


# ---- evaluation -----------------------------------------------------------------------------------------------------


def test_factory_default_phone():
    result = statuses(factory_facts())
    for rule_id in ("web-https", "web-port", "web-admin-password", "ssh-disabled", "keypad-constraint-mode",
                    "sip-tls", "srtp-forced", "ldaps", "syslog-tls", "tr069-connection-request-port",
                    "config-xml-password", "sip-unused-accounts-off"):
        assert result[rule_id] is Status.NON_COMPLIANT, rule_id
    # Guide defaults that are already right.
    assert result["config-https"] is Status.COMPLIANT
    assert result["firmware-https"] is Status.COMPLIANT
    assert result["sip-notify-authentication"] is Status.COMPLIANT
    # Conditions and exposure.
    assert result["ssh-port"] is Status.NOT_APPLICABLE  # SSH is to be disabled, not moved
    assert result["openvpn-port"] is Status.NOT_APPLICABLE  # OpenVPN is off
    assert result["bluetooth-off"] is Status.NOT_APPLICABLE  # no known switch on the WP820
    assert result["tr069-stun"] is Status.NOT_APPLICABLE
    assert result["firewall-advisory"] is Status.NOT_APPLICABLE


def test_unread_values_are_unknown_not_compliant():
    assert statuses(factory_facts(readings={}))["web-https"] is Status.UNKNOWN


def test_evidence_carries_value_time_and_session():
    results = {r.rule_id: r for r in evaluate(POLICY, factory_facts())}
    (check,) = results["web-https"].instances[0].checks
    assert (check.value, check.session_id, check.via, check.at) == ("HTTP", "s0", "TR-069", NOW - 10)


def test_secret_compliance_needs_escrow_and_a_trusted_parameter_key():
    facts = factory_facts(escrow={"web.admin_password": "active"}, secrets_trusted=True)
    assert statuses(facts)["web-admin-password"] is Status.COMPLIANT
    facts.secrets_trusted = False
    assert statuses(facts)["web-admin-password"] is Status.UNKNOWN
    facts.escrow = {"web.admin_password": "pending"}
    assert statuses(facts)["web-admin-password"] is Status.UNKNOWN


def test_per_account_rules_take_the_worst_instance():
    facts = factory_facts()
    facts.readings["sip.1.transport"] = Reading("TLS", NOW, "s1", "TR-069")
    results = {r.rule_id: r for r in evaluate(POLICY, facts)}
    assert [i.status for i in results["sip-tls"].instances] == [Status.COMPLIANT, Status.NON_COMPLIANT]
    assert results["sip-tls"].status is Status.NON_COMPLIANT


def test_unused_accounts_follow_the_operator_setting():
    facts = factory_facts()
    result = {r.rule_id: r for r in evaluate(POLICY, facts)}["sip-unused-accounts-off"]
    assert [i.status for i in result.instances] == [Status.NOT_APPLICABLE, Status.NON_COMPLIANT]


def test_exemption():
    facts = factory_facts(exemptions={"ldaps": "no LDAP server on this site"})
    assert statuses(facts)["ldaps"] is Status.EXEMPT


def test_paths_the_device_does_not_expose_go_through_the_config_file():
    facts = factory_facts()
    facts.discovered = {path: w for path, w in facts.discovered.items() if "AccessMethod" not in path}
    check = {r.rule_id: r for r in evaluate(POLICY, facts)}["web-https"].instances[0].checks[0]
    assert check.channel.value == "config"


# ---- planning -------------------------------------------------------------------------------------------------------


def test_discovery_comes_first_and_only_once():
    facts = factory_facts(discovered=None)
    progress = p.Progress()
    assert p.next_action(POLICY, p.PlanInput(facts), progress) == p.Discover()
    progress.discovery_attempted = True
    assert p.next_action(POLICY, p.PlanInput(facts), progress) is None


def test_read_is_one_batch_and_skipped_when_fresh():
    facts = factory_facts()
    action = p.next_action(POLICY, p.PlanInput(facts), p.Progress(events=("1 BOOT",)))
    assert isinstance(action, p.Read) and len(action.paths) > 20
    assert not any("Password" in path for path in action.paths)  # secrets read back empty: never asked
    assert not isinstance(p.next_action(POLICY, p.PlanInput(facts), p.Progress()), p.Read)


def test_watch_then_one_write_batch_with_generated_secrets():
    facts = factory_facts()
    progress = p.Progress(read_done=True)
    watch = p.next_action(POLICY, p.PlanInput(facts), progress)
    assert isinstance(watch, p.Watch) and "Device.UserInterface.X_GRANDSTREAM_AccessMethod" in watch.paths
    progress.watch_done = True
    write = p.next_action(POLICY, p.PlanInput(facts), progress)
    assert isinstance(write, p.Write)
    by_key = {item.key: item for item in write.items}
    assert by_key["web.access_method"].value == "HTTPS"
    assert by_key["web.port"].value == 8443
    assert by_key["acs.connection_request_port"].value == 58547
    assert by_key["web.admin_password"].generate is not None and by_key["web.admin_password"].value is None
    assert write.parameter_key == POLICY.parameter_key(facts.settings)
    # Ordering: "Authenticate config file" waits for the admin password to be in escrow.
    assert "config.authenticate" not in by_key
    # Only TR-069 paths go into SetParameterValues.
    assert "keypad.menu_access" not in by_key and all(item.path for item in write.items)


def test_config_values_never_read_are_pushed_then_read_back():
    facts = factory_facts()
    for key, spec in MODEL.parameters.items():
        if spec.path is None:
            facts.readings.pop(key, None)
    facts.escrow = {"web.admin_password": "active"}
    progress = p.Progress(read_done=True, watch_done=True, write_rounds=p.MAX_WRITE_ROUNDS)
    push = p.next_action(POLICY, p.PlanInput(facts), progress)
    assert isinstance(push, p.PushConfig) and {i.key for i in push.items} >= {"ldap.connection_mode"}
    progress.config_pushed = True
    assert p.next_action(POLICY, p.PlanInput(facts), progress) == p.PullConfig()


def test_config_values_read_back_right_are_not_pushed():
    facts = factory_facts(escrow={"web.admin_password": "active"})
    facts.readings["ldap.connection_mode"] = Reading("LDAPS", NOW, "s1", "config upload")
    progress = p.Progress(read_done=True, watch_done=True, write_rounds=p.MAX_WRITE_ROUNDS)
    push = p.next_action(POLICY, p.PlanInput(facts), progress)
    assert "ldap.connection_mode" not in {i.key for i in push.items}


def test_constraint_mode_never_before_escrow():
    facts = factory_facts()
    progress = p.Progress(read_done=True, watch_done=True, write_rounds=p.MAX_WRITE_ROUNDS)
    push = p.next_action(POLICY, p.PlanInput(facts), progress)
    assert isinstance(push, p.PushConfig)
    assert "keypad.menu_access" not in {item.key for item in push.items}
    facts.escrow = {"web.admin_password": "active"}
    push = p.next_action(POLICY, p.PlanInput(facts), p.Progress(read_done=True, watch_done=True, write_rounds=3))
    assert {item.key: item.value for item in push.items}["keypad.menu_access"] == "ConstraintMode"


def test_authenticate_config_is_written_once_the_admin_password_is_escrowed():
    facts = factory_facts(escrow={"web.admin_password": "active"})
    write = p.next_action(POLICY, p.PlanInput(facts), p.Progress(read_done=True, watch_done=True))
    assert "config.authenticate" in {item.key for item in write.items}


def test_config_file_waits_for_the_secrets_it_needs():
    facts = factory_facts(escrow={"config.xml_password": "pending"})
    progress = p.Progress(read_done=True, watch_done=True, write_rounds=3)
    assert not isinstance(p.next_action(POLICY, p.PlanInput(facts), progress), p.PushConfig)
    facts = factory_facts(escrow={"config.xml_password": "active"})
    facts.readings["config.authenticate"] = Reading(True, NOW, "s1", "TR-069")
    push = p.next_action(POLICY, p.PlanInput(facts), p.Progress(read_done=True, watch_done=True, write_rounds=3))
    assert not isinstance(push, p.PushConfig)  # P1 needs the admin password, which the ACS does not hold
    facts.escrow["web.admin_password"] = "active"
    push = p.next_action(POLICY, p.PlanInput(facts), p.Progress(read_done=True, watch_done=True, write_rounds=3))
    assert isinstance(push, p.PushConfig) and push.encrypt and push.include_admin_password


def test_backing_off_parameters_are_not_written():
    facts = factory_facts(backoff={("web-port", "web.port"): Backoff(NOW + 3600, 1, 9007, "Invalid value")})
    write = p.next_action(POLICY, p.PlanInput(facts), p.Progress(read_done=True, watch_done=True))
    assert "web.port" not in {item.key for item in write.items}
    assert "web.access_method" in {item.key for item in write.items}


def test_untrusted_parameter_key_rewrites_secrets():
    facts = factory_facts(escrow={"web.admin_password": "active"}, secrets_trusted=False)
    write = p.next_action(POLICY, p.PlanInput(facts), p.Progress(read_done=True, watch_done=True))
    assert "web.admin_password" in {item.key for item in write.items}


def test_written_paths_are_verified_by_reading_back():
    facts = factory_facts()
    progress = p.Progress(read_done=True, watch_done=True, write_rounds=3,
                          written_paths={"Device.UserInterface.X_GRANDSTREAM_AccessMethod",
                                         "Device.UserInterface.X_GRANDSTREAM_AdminLoginPassword"})
    action = p.next_action(POLICY, p.PlanInput(facts), progress)
    assert action == p.Read(("Device.UserInterface.X_GRANDSTREAM_AccessMethod",), verify=True)


def test_push_then_pull_in_one_session_and_nothing_more():
    facts = factory_facts(escrow={"web.admin_password": "active"})
    progress = p.Progress(read_done=True, watch_done=True, write_rounds=3)
    assert isinstance(p.next_action(POLICY, p.PlanInput(facts), progress), p.PushConfig)
    progress.config_pushed = True
    assert isinstance(p.next_action(POLICY, p.PlanInput(facts), progress), p.PullConfig)
    progress.config_pulled = True
    assert p.next_action(POLICY, p.PlanInput(facts), progress) is None


def test_audit_mode_reads_but_never_writes():
    facts = factory_facts()
    data = p.PlanInput(facts, enforce=False)
    progress = p.Progress(read_done=True)
    action = p.next_action(POLICY, data, progress)
    assert action is None or isinstance(action, p.PullConfig)


def test_maintenance_window():
    def at(text: str) -> float:
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()

    assert next_window_start("02:00-04:00", at("2026-11-27T10:00:00")) == at("2026-11-28T02:00:00")
    assert next_window_start("02:00-04:00", at("2026-11-27T01:00:00")) == at("2026-11-27T02:00:00")
    assert next_window_start("02:00-04:00", at("2026-11-27T03:00:00")) == at("2026-11-27T03:00:00")
    assert next_window_start("23:00-01:00", at("2026-11-27T00:30:00")) == at("2026-11-27T00:30:00")
