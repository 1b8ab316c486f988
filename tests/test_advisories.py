"""The advisory data, pure: the firewall port table from a phone's read values (the guide's deployment table), and the
advisory rules' text."""

from __future__ import annotations

import dataclasses

import pytest

from acs.policy.advisories import (KEEP_CLOSED, OPEN, AdvisoryError, PortRule, advisories, advisory_for,
                                   firewall_ports)
from acs.policy.evaluate import Reading
from acs.policy.rules import load_policy
from cwmp_models.datamodel import load_model

MODEL = load_model()
POLICY = load_policy()
AT = 1_800_000_000.0


def read(**values) -> dict[str, Reading]:
    """Readings as the ACS stores them; keyword names use __ for dots (sip__1__local_port)."""
    return {key.replace("__", "."): Reading(value, AT + i, f"s{i}", "TR-069") for i, (key, value) in
            enumerate(values.items())}


def row(rows: list[PortRule], purpose_start: str, account: int | None = None) -> PortRule:
    (found,) = [r for r in rows if r.purpose.startswith(purpose_start) and r.account == account]
    return found


def test_factory_defaults_give_the_guides_table_and_say_every_value_is_a_default():
    rows = firewall_ports({}, MODEL)
    expected = {
        # (purpose, account): (protocol, ports, action) — the guide's table for a factory-reset phone (UDP transport)
        ("SIP signalling", 1): ("UDP", "5060", OPEN),
        ("SIP over TLS", 1): ("TCP", "5061", KEEP_CLOSED),
        ("audio RTP/RTCP", 1): ("UDP", "50040-50041", OPEN),
        ("FEC RTP/RTCP", 1): ("UDP", "50044-50045", OPEN),
        ("SIP signalling", 2): ("UDP", "5062", OPEN),
        ("SIP over TLS", 2): ("TCP", "5063", KEEP_CLOSED),
        ("audio RTP/RTCP", 2): ("UDP", "50050-50051", OPEN),
        ("FEC RTP/RTCP", 2): ("UDP", "50054-50055", OPEN),
        ("TR-069 connection requests", None): ("TCP", "7547", OPEN),
        ("web UI", None): ("TCP", "80", KEEP_CLOSED),
        ("SSH", None): ("TCP", "22", KEEP_CLOSED),
    }
    got = {(r.purpose.split(",")[0].split(" (")[0], r.account): (r.protocol, r.ports, r.action) for r in rows}
    assert got == expected
    for r in rows:
        assert r.defaulted == r.keys and r.read_at is None
        assert r.note == f"{', '.join(r.keys)} never read: documented default used"


def test_ports_come_from_the_values_read_not_the_defaults():
    readings = read(sip__1__local_port=5070, sip__1__transport="UDP", sip__1__active="Enabled",
                    sip__2__local_port=6000, sip__2__transport="TCP", sip__2__active="Enabled",
                    sip__1__rtp_port_min=40000, acs__connection_request_port=58547, web__port=8443,
                    web__access_method="HTTPS", ssh__port=2222, ssh__disabled=True)
    rows = firewall_ports(readings, MODEL)
    assert row(rows, "SIP signalling", 1).ports == "5070" and row(rows, "SIP signalling", 1).protocol == "UDP"
    assert row(rows, "SIP over TLS", 1).ports == "5071"
    assert row(rows, "SIP signalling", 2).ports == "6000" and row(rows, "SIP signalling", 2).protocol == "TCP"
    assert row(rows, "SIP over TLS", 2).ports == "6001"
    # One phone-wide RTP base: account 2 is 10 above it, RTCP +1, FEC +4/+5.
    assert row(rows, "audio RTP/RTCP", 1).ports == "40000-40001"
    assert row(rows, "FEC RTP/RTCP", 1).ports == "40004-40005"
    assert row(rows, "audio RTP/RTCP", 2).ports == "40010-40011"
    assert row(rows, "FEC RTP/RTCP", 2).ports == "40014-40015"
    connection = row(rows, "TR-069 connection requests")
    assert (connection.port, connection.action, connection.open_to) == (58547, OPEN, "the ACS's address only")
    web = row(rows, "web UI")
    assert (web.port, web.action, web.purpose) == (8443, KEEP_CLOSED, "web UI (HTTPS)")
    assert "never the public network" in web.open_to
    ssh = row(rows, "SSH")
    assert (ssh.port, ssh.open_to) == (2222, "nobody: SSH is disabled")
    for r in rows:
        assert r.defaulted == () and r.note == ""
        assert r.read_at == min(readings[key].at for key in r.keys)


def test_tls_transport_opens_the_tls_port_and_closes_the_plain_one():
    rows = firewall_ports(read(sip__1__transport="TLS", sip__1__local_port=5060), MODEL)
    plain, tls = row(rows, "SIP signalling", 1), row(rows, "SIP over TLS", 1)
    assert (plain.protocol, plain.port, plain.action) == ("UDP/TCP", 5060, KEEP_CLOSED)
    assert plain.open_to == "nobody: the account uses TLS"
    assert (tls.protocol, tls.port, tls.action) == ("TCP", 5061, OPEN)
    # Only the account's active flag was never read here.
    assert tls.defaulted == ("sip.1.active",)


def test_a_deactivated_account_keeps_all_its_ports_closed():
    rows = firewall_ports(read(sip__2__active="Disabled", sip__2__transport="TLS"), MODEL)
    account_2 = [r for r in rows if r.account == 2]
    assert len(account_2) == 4
    assert all(r.action == KEEP_CLOSED and r.open_to == "nobody: account 2 is deactivated" for r in account_2)
    assert all(r.action == OPEN for r in rows if r.account == 1 and not r.purpose.startswith("SIP over TLS"))


def test_the_rtp_base_read_for_account_2_serves_account_1_too():
    rows = firewall_ports(read(sip__2__rtp_port_min=30000), MODEL)
    assert row(rows, "audio RTP/RTCP", 1).ports == "30000-30001"
    assert row(rows, "audio RTP/RTCP", 2).ports == "30010-30011"
    assert "sip.2.rtp_port_min" not in row(rows, "audio RTP/RTCP", 1).defaulted


def test_ssh_kept_for_troubleshooting_is_for_the_management_network_only():
    ssh = row(firewall_ports(read(ssh__disabled=False, ssh__port=2222), MODEL), "SSH")
    assert (ssh.port, ssh.action) == (2222, KEEP_CLOSED)
    assert ssh.open_to.startswith("the management network only") and "never the public network" in ssh.open_to


@pytest.mark.parametrize(("address", "port"), [
    ("stun.example.net", 3478),
    ("stun.example.net:3479", 3479),
    ("[2001:db8::1]:3480", 3480),
    ("2001:db8::1", 3478),
    ("stun.example.net:99999", 3478),
])
def test_stun_on_adds_the_outbound_stun_port(address, port):
    rows = firewall_ports(read(acs__stun_enable=True, acs__stun_server_address=address), MODEL)
    stun = row(rows, "STUN")
    assert (stun.protocol, stun.port, stun.direction, stun.action) == ("UDP", port, "outbound", OPEN)


def test_stun_off_adds_no_stun_line():
    assert not [r for r in firewall_ports(read(acs__stun_enable=False), MODEL) if r.purpose.startswith("STUN")]


def test_every_advisory_rule_has_its_advice_and_the_firewall_one_its_table():
    found = advisories(POLICY, read(web__port=8443))
    assert [a.rule_id for a in found] == [r.id for r in POLICY.rules if r.kind == "advisory"]
    for advisory in found:
        assert advisory.advice == POLICY.rule(advisory.rule_id).advice and advisory.advice
        assert (advisory.firewall_ports is not None) == (advisory.data_name == "firewall_ports")
    (firewall,) = [a for a in found if a.firewall_ports is not None]
    assert row(list(firewall.firewall_ports), "web UI").port == 8443


def test_advisory_errors_name_the_rule():
    with pytest.raises(AdvisoryError, match="rule web-https is not an advisory"):
        advisory_for(POLICY.rule("web-https"), {}, MODEL)
    odd = dataclasses.replace(POLICY.rule("firewall-advisory"), data="router_acl")
    with pytest.raises(AdvisoryError, match="rule firewall-advisory: unknown advisory data 'router_acl'"):
        advisory_for(odd, {}, MODEL)
