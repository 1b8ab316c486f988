"""Advisories: what the guideline asks of the network or of settings the phone does not expose, with the data an
administrator needs to act on it. Pure: a policy and a device's readings in, text and tables out.

The firewall table follows the guide's "Security Guidelines for WP820 Deployment" table, computed from the phone's
actual values rather than the factory ones:

* SIP, per account: the account's local SIP port for UDP/TCP, that port + 1 for TLS;
* RTP, per account N (0 for account 1, 1 for account 2): audio RTP at base + 10*N, RTCP + 1, FEC RTP + 4,
  FEC RTCP + 5, where the base is the phone-wide "Local RTP port" (P39; the model maps every account's
  ``sip.{n}.rtp_port_min`` to it, so any account's reading is the base);
* the TR-069 connection-request port (open to the ACS only), the web UI and SSH ports (never from the public network).

A value the ACS never read falls back to the model's documented default, and the row says so: a table computed from
defaults is a guess about the phone, not a fact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from cwmp_models.datamodel import DeviceModel

from .evaluate import Reading
from .rules import Policy, Rule

OPEN = "open"
KEEP_CLOSED = "keep closed"
STUN_DEFAULT_PORT = 3478  # RFC 5389
RTP_ACCOUNT_STRIDE = 10
RTCP_OFFSET, FEC_RTP_OFFSET, FEC_RTCP_OFFSET = 1, 4, 5


class AdvisoryError(ValueError):
    """An advisory rule asks for data this module cannot compute; the message names the rule."""


@dataclass(frozen=True)
class PortRule:
    """One line of the firewall table."""

    protocol: str  # "UDP", "TCP" or "UDP/TCP"
    port: int
    port_end: int | None  # last port of a range; None for a single port
    direction: str  # "inbound" (to the phone) or "outbound" (from the phone)
    purpose: str
    account: int | None  # SIP account, for per-account lines
    action: str  # OPEN or KEEP_CLOSED
    open_to: str  # who may reach the port (or why it stays closed)
    keys: tuple[str, ...]  # the model keys the line was computed from
    defaulted: tuple[str, ...] = ()  # those of ``keys`` never read: their documented defaults were used
    read_at: float | None = None  # when the oldest value read among ``keys`` was read

    @property
    def ports(self) -> str:
        return str(self.port) if self.port_end is None else f"{self.port}-{self.port_end}"

    @property
    def note(self) -> str:
        if not self.defaulted:
            return ""
        return f"{', '.join(self.defaulted)} never read: documented default used"


@dataclass(frozen=True)
class Advisory:
    rule_id: str
    title: str
    section: str
    severity: str
    advice: str
    data_name: str | None
    firewall_ports: tuple[PortRule, ...] | None = None  # when data_name == "firewall_ports"


class _Values:
    """Read values with the model's defaults behind them, remembering which keys were defaulted."""

    def __init__(self, readings: Mapping[str, Reading], model: DeviceModel) -> None:
        self.readings = readings
        self.model = model

    def get(self, key: str) -> Any:
        reading = self.readings.get(key)
        return self.model.parameters[key].default if reading is None else reading.value

    def rule(self, keys: tuple[str, ...], **fields: Any) -> PortRule:
        read = [self.readings[key] for key in keys if key in self.readings]
        return PortRule(
            keys=keys,
            defaulted=tuple(key for key in keys if key not in self.readings),
            read_at=min((r.at for r in read), default=None),
            **fields,
        )


def firewall_ports(readings: Mapping[str, Reading], model: DeviceModel) -> list[PortRule]:
    """The firewall table for one phone, from its read values (``DeviceFacts.readings``)."""
    values = _Values(readings, model)
    rows: list[PortRule] = []
    accounts = [spec.instance for spec in model.instances_of("sip.{n}.local_port") if spec.instance is not None]
    rtp_base_key = _rtp_base_key(readings, model)
    for n in accounts:
        rows.extend(_sip_rows(values, n))
        rows.extend(_rtp_rows(values, n, accounts.index(n), rtp_base_key))
    rows.extend(_management_rows(values))
    return rows


def _sip_rows(values: _Values, n: int) -> list[PortRule]:
    active_key, transport_key, port_key = f"sip.{n}.active", f"sip.{n}.transport", f"sip.{n}.local_port"
    active = values.get(active_key) != "Disabled"
    transport = values.get(transport_key)
    port = values.get(port_key)
    keys = (port_key, transport_key, active_key)
    signalling = "the SIP server(s) of the account only"
    if not active:
        closed = f"nobody: account {n} is deactivated"
        plain = dict(action=KEEP_CLOSED, open_to=closed, protocol="UDP/TCP")
        tls = dict(action=KEEP_CLOSED, open_to=closed)
    elif transport == "TLS":
        plain = dict(action=KEEP_CLOSED, open_to="nobody: the account uses TLS", protocol="UDP/TCP")
        tls = dict(action=OPEN, open_to=signalling)
    else:
        plain = dict(action=OPEN, open_to=signalling, protocol=transport)
        tls = dict(action=KEEP_CLOSED, open_to=f"nobody: the account uses {transport}, not TLS")
    return [
        values.rule(keys, port=port, port_end=None, direction="inbound", account=n,
                    purpose=f"SIP signalling, account {n} (local SIP port)", **plain),
        values.rule(keys, protocol="TCP", port=port + 1, port_end=None, direction="inbound", account=n,
                    purpose=f"SIP over TLS, account {n} (local SIP port + 1)", **tls),
    ]


def _rtp_base_key(readings: Mapping[str, Reading], model: DeviceModel) -> str:
    """Which ``sip.{n}.rtp_port_min`` holds the phone-wide RTP base: the first one read, else account 1's."""
    keys = [spec.key for spec in model.instances_of("sip.{n}.rtp_port_min")]
    return next((key for key in keys if key in readings), keys[0])


def _rtp_rows(values: _Values, n: int, index: int, base_key: str) -> list[PortRule]:
    active_key = f"sip.{n}.active"
    active = values.get(active_key) != "Disabled"
    base = values.get(base_key) + RTP_ACCOUNT_STRIDE * index
    guidance = (dict(action=OPEN, open_to="the account's media peers (media server or relay, call peers)") if active
                else dict(action=KEEP_CLOSED, open_to=f"nobody: account {n} is deactivated"))
    keys = (base_key, active_key)
    return [
        values.rule(keys, protocol="UDP", port=base, port_end=base + RTCP_OFFSET, direction="inbound", account=n,
                    purpose=f"audio RTP/RTCP, account {n} (local RTP port + {RTP_ACCOUNT_STRIDE * index})",
                    **guidance),
        values.rule(keys, protocol="UDP", port=base + FEC_RTP_OFFSET, port_end=base + FEC_RTCP_OFFSET,
                    direction="inbound", account=n, purpose=f"FEC RTP/RTCP, account {n}", **guidance),
    ]


def _management_rows(values: _Values) -> list[PortRule]:
    rows = [
        values.rule(("acs.connection_request_port",), protocol="TCP", port=values.get("acs.connection_request_port"),
                    port_end=None, direction="inbound", account=None, purpose="TR-069 connection requests",
                    action=OPEN, open_to="the ACS's address only"),
        values.rule(("web.port", "web.access_method"), protocol="TCP", port=values.get("web.port"), port_end=None,
                    direction="inbound", account=None, purpose=f"web UI ({values.get('web.access_method')})",
                    action=KEEP_CLOSED, open_to="the management network only, never the public network"),
    ]
    ssh_open = values.get("ssh.disabled") is False
    rows.append(values.rule(
        ("ssh.port", "ssh.disabled"), protocol="TCP", port=values.get("ssh.port"), port_end=None, direction="inbound",
        account=None, purpose="SSH", action=KEEP_CLOSED,
        open_to=("the management network only, while troubleshooting; never the public network" if ssh_open
                 else "nobody: SSH is disabled"),
    ))
    if values.get("acs.stun_enable") is True:
        rows.append(values.rule(
            ("acs.stun_enable", "acs.stun_server_address"), protocol="UDP",
            port=_stun_port(values.get("acs.stun_server_address")), port_end=None, direction="outbound",
            account=None, purpose="STUN (TR-111): keeps the NAT binding UDP connection requests come back through",
            action=OPEN, open_to="the ACS's STUN server only",
        ))
    return rows


def _stun_port(address: Any) -> int:
    """The port of a STUNServerAddress ("host", "host:port", "[v6]:port" or a bare IPv6 address)."""
    text = str(address or "")
    if text.startswith("["):
        _, _, port = text.partition("]:")
    elif text.count(":") == 1:
        _, _, port = text.partition(":")
    else:
        port = ""
    return int(port) if port.isdigit() and 0 < int(port) < 65536 else STUN_DEFAULT_PORT


# ---- advisory rules -------------------------------------------------------------------------------------------------

_DATA: dict[str, Callable[[Mapping[str, Reading], DeviceModel], list[PortRule]]] = {"firewall_ports": firewall_ports}


def advisory_for(rule: Rule, readings: Mapping[str, Reading], model: DeviceModel) -> Advisory:
    """An advisory rule's text and, when it names data, that data computed for one device."""
    if rule.kind != "advisory":
        raise AdvisoryError(f"rule {rule.id} is not an advisory")
    if rule.data is not None and rule.data not in _DATA:
        raise AdvisoryError(f"rule {rule.id}: unknown advisory data {rule.data!r} (known: {', '.join(_DATA)})")
    ports = tuple(_DATA[rule.data](readings, model)) if rule.data else None
    return Advisory(rule.id, rule.title, rule.section, rule.severity, rule.advice, rule.data, ports)


def advisories(policy: Policy, readings: Mapping[str, Reading]) -> list[Advisory]:
    """Every advisory rule of the policy, for one device, in policy order."""
    return [advisory_for(rule, readings, policy.model) for rule in policy.rules if rule.kind == "advisory"]
