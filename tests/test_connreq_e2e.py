"""Connection requests end to end (issue 6): the assembled ACS (``acs.app.AcsApp``: CWMP over HTTP, policy, STUN
server, connection-request service) and simulated phones (``wp820_sim.fleet``), all on real loopback sockets.

The ACS runs a policy made of the packaged policy's connection-request rules only (port, credentials, STUN), so a
phone's first session is exactly "move the port, set per-device credentials (and STUN)". Every wait is bounded and
ends as soon as its condition holds; no assertion depends on how fast the machine is.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task, utils

from acs.app import AcsApp
from acs.config import load_config
from acs.store import Store
from acs.vault import generate_key_file
from cwmp_models import messages as m
from cwmp_models.envelope import Envelope
from tests.acs_harness import enrol_device
from tests.cwmp_client import ScriptedCpe
from tests.test_sim_agent import (  # noqa: F401 (fixtures)
    FAST,
    GUARD,
    first_index_for,
    nothing_left_behind,
    within,
)
from wp820_sim.agent import AgentState
from wp820_sim.fleet import Fleet, FleetConfig, identity
from wp820_sim.phone import Credentials

PHONE_PASSWORD = "phone-to-acs-password"
NEW_PORT = 60547  # connreq.port: not the policy's own default (58547), so the wiring shows
RULES = ("tr069-connection-request-port", "tr069-connection-request-credentials", "tr069-stun")
SECRET = "acs.connection_request_password"


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def connreq_policy(*, stun: bool) -> str:
    """The packaged policy's header, settings and connection-request rules, nothing else."""
    text = resources.files("policies").joinpath("wp820-hardening.toml").read_text("utf-8")
    head, *blocks = text.split("\n[[rule]]\n")
    kept = [block for block in blocks if re.search(r'^id = "([^"]+)"', block, re.M).group(1) in RULES]
    assert len(kept) == len(RULES)
    head = head.replace('[settings.stun]\ndefault = false', f'[settings.stun]\ndefault = {str(stun).lower()}')
    return "\n[[rule]]\n".join([head, *kept])


async def until(predicate, what: str) -> None:
    for _ in range(int(GUARD / 0.02)):
        if predicate():
            return
        await task.deferLater(reactor, 0.02, lambda: None)
    raise AssertionError(f"not reached within {GUARD} s: {what}")


class Rig:
    """One ACS and a fleet of phones enrolled with it."""

    def __init__(self, tmp_path: Path, nodeid: str) -> None:
        self.tmp = tmp_path
        self.first_index = first_index_for(nodeid)
        self.app: AcsApp | None = None
        self.fleet: Fleet | None = None

    def write_config(self, *, stun: bool, connreq: dict[str, Any]) -> Path:
        http_port = free_port(socket.SOCK_STREAM)
        generate_key_file(self.tmp / "secrets.key")
        (self.tmp / "policy.toml").write_text(connreq_policy(stun=stun), "utf-8")
        lines = [
            "[cwmp]", f'http = ["127.0.0.1:{http_port}"]', "https = []",
            f'public_url = "http://127.0.0.1:{http_port}/cwmp"',
            "[store]", f'path = "{self.tmp / "acs.sqlite"}"',
            "[secrets]", f'key_file = "{self.tmp / "secrets.key"}"',
            "[policy]", f'files = ["{self.tmp / "policy.toml"}"]',
            "[stun]", f"enabled = {str(stun).lower()}", f'listen = "127.0.0.1:{free_port(socket.SOCK_DGRAM)}"',
            'public_host = "127.0.0.1"',
            "[connreq]", *(f"{key} = {value}" for key, value in connreq.items()),
        ]
        path = self.tmp / "acs.toml"
        path.write_text("\n".join(lines) + "\n", "utf-8")
        return path

    async def start(self, *, phones: int = 1, stun: bool = False, nat: bool = False, cr_min_interval: float = 0.0,
                    **connreq: Any) -> None:
        connreq = {"port": NEW_PORT, "timeout": 2.0, "min_interval": 0.0, "udp_repeats": 3, **connreq}
        self.config_path = self.write_config(stun=stun, connreq=connreq)
        config = load_config(str(self.config_path))
        serials = [identity(self.first_index + i).serial for i in range(phones)]
        store = Store(config.store.path)
        for serial in serials:
            enrol_device(store, serial, PHONE_PASSWORD)
        store.close()
        self.app = AcsApp(config, reactor)
        await self.app.start()
        stun_port = int(config.stun.listen.rsplit(":", 1)[1])
        self.fleet = Fleet(FleetConfig(
            acs_url=config.cwmp.public_url, phones=phones, state_dir=self.tmp / "phones",
            credentials={serial: Credentials(serial, PHONE_PASSWORD) for serial in serials},
            first_index=self.first_index, agent=FAST, cr_min_interval=cr_min_interval, nat=nat,
            stun_server=("127.0.0.1", stun_port) if nat else None,
        ))
        await self.fleet.start()

    @property
    def store(self) -> Store:
        return self.app.store

    def device_id(self, n: int = 0) -> str:
        return f"000B82-WP820-{identity(self.first_index + n).serial}"

    def agent(self, n: int = 0):
        return self.fleet.agent(identity(self.first_index + n).serial)

    def idle(self, n: int = 0) -> bool:
        return self.agent(n).state is AgentState.IDLE and len(self.app.cwmp.registry) == 0

    async def provisioned(self, n: int = 0) -> str:
        """Wait until the policy moved the phone's port and the phone reported its new URL; returns that URL."""
        device_id = self.device_id(n)

        def reported() -> bool:
            device = self.store.devices.get(device_id)
            return device is not None and f":{NEW_PORT}/" in (device.connection_request_url or "")

        await until(lambda: reported() and self.store.secrets.names(device_id) and self.idle(n), "port moved")
        return self.store.devices.get(device_id).connection_request_url

    async def delivered(self, request_id: int):
        await until(lambda: self.store.connection_requests.get(request_id).delivered_session_id, "delivered")
        return self.store.connection_requests.get(request_id)

    def wrong_escrow(self, n: int = 0) -> None:
        device_id = self.device_id(n)
        self.store.secrets.put(device_id, SECRET, self.app.vault.seal(device_id, SECRET, "not-the-password"),
                               state="active")

    async def stop(self) -> None:
        if self.fleet is not None:
            await self.fleet.stop()
        if self.app is not None:
            await self.app.stop(grace=1.0)


@pytest.fixture
def rig(tmp_path, request):
    rig = Rig(tmp_path, request.node.nodeid)
    yield rig
    pytest_twisted.blockon(defer.ensureDeferred(rig.stop()))


# ---- HTTP -----------------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_port_moved_and_the_next_request_goes_to_the_new_port(rig):
    await rig.start()
    device_id = rig.device_id()
    url = await rig.provisioned()
    assert url == f"http://{identity(rig.first_index).ip}:{NEW_PORT}/"
    phone = rig.agent().phone
    assert phone.connection_request_port == NEW_PORT
    assert phone.connection_request_credentials.username == identity(rig.first_index).serial
    assert [state for name, state in rig.store.secrets.names(device_id) if name == SECRET] == ["active"]

    result = await within(rig.app.connreq.kick(device_id, by="operator:test", reason="e2e"))
    assert (result.outcome, result.method, result.url, result.http_status) == ("accepted", "http", url, 200)
    record = await rig.delivered(result.request_id)
    session = rig.store.history.session(record.delivered_session_id)
    assert session.connection_request_id == result.request_id and "6 CONNECTION REQUEST" in session.events
    assert rig.fleet.counters["cr_received"] == 2  # the bare GET and the one answering the challenge


@pytest_twisted.ensureDeferred
async def test_wrong_credentials(rig):
    await rig.start()
    await rig.provisioned()
    rig.wrong_escrow()
    result = await within(rig.app.connreq.kick(rig.device_id(), by="t"))
    assert (result.outcome, result.http_status) == ("auth_failed", 401)
    assert rig.fleet.counters["cr_unauthorized"] == 2 and rig.fleet.counters.get("connection_requests_accepted", 0) == 0


@pytest_twisted.ensureDeferred
async def test_a_busy_phone_answers_503(rig):
    await rig.start(cr_min_interval=3600.0)  # the phone rate-limits; the ACS does not
    await rig.provisioned()
    first = await within(rig.app.connreq.kick(rig.device_id(), by="t"))
    await rig.delivered(first.request_id)
    await until(rig.idle, "session over")
    busy = await within(rig.app.connreq.kick(rig.device_id(), by="t"))
    assert (busy.outcome, busy.http_status) == ("busy", 503) and busy.detail.startswith("retry after")
    assert rig.fleet.counters["cr_rate_limited"] == 1


@pytest_twisted.ensureDeferred
async def test_an_offline_phone(rig):
    await rig.start()
    await rig.provisioned()
    await rig.agent().stop()
    result = await within(rig.app.connreq.kick(rig.device_id(), by="t"))
    assert (result.outcome, result.method) == ("refused", "http")
    assert rig.store.connection_requests.get(result.request_id).delivered_session_id is None


@pytest_twisted.ensureDeferred
async def test_rate_limits(rig):
    await rig.start(phones=3, min_interval=3600.0, concurrency=1, rate=50.0)
    for n in range(3):
        await rig.provisioned(n)
    devices = [rig.device_id(n) for n in range(3)]
    results = await within(rig.app.connreq.kick_many(devices + devices[:1], by="campaign:1"))
    assert [r.outcome for r in results] == ["accepted"] * 3
    for result in results:
        await rig.delivered(result.request_id)
    await until(lambda: all(rig.idle(n) for n in range(3)), "sessions over")
    received = rig.fleet.counters["cr_received"]
    again = await within(rig.app.connreq.kick(devices[0], by="t"))
    assert again.outcome == "too_soon" and rig.fleet.counters["cr_received"] == received  # never reached the phone


@pytest_twisted.ensureDeferred
async def test_no_request_into_an_open_session(rig):
    await rig.start()
    url = await rig.provisioned()
    serial = identity(rig.first_index).serial
    # The phone's identity in a session that stays open: its Inform is answered, nothing more is posted.
    holder = ScriptedCpe(rig.app.config.cwmp.public_url, username=serial, password=PHONE_PASSWORD)
    inform = m.Inform(m.DeviceId("Grandstream", "000B82", "WP820", serial), [m.EventStruct("2 PERIODIC")],
                      parameter_list=[m.ParameterValueStruct("Device.ManagementServer.ConnectionRequestURL", url)])
    try:
        assert (await within(holder.post(Envelope(inform, id="1")))).status == 200
        result = await within(rig.app.connreq.kick(rig.device_id(), by="t"))
    finally:
        await holder.close()
    assert result.outcome == "in_session" and rig.fleet.counters.get("cr_received", 0) == 0


# ---- NAT (TR-111) ---------------------------------------------------------------------------------------------------


async def nat_phone(rig: Rig) -> str:
    await rig.start(stun=True, nat=True)
    device_id = rig.device_id()

    def bound() -> bool:
        device = rig.store.devices.get(device_id)
        return device is not None and bool(device.udp_connection_request_address)

    await rig.provisioned()
    await until(lambda: bound() and rig.idle(), "STUN binding stored")
    return device_id


@pytest_twisted.ensureDeferred
async def test_a_phone_behind_nat_is_reached_only_through_udp(rig):
    device_id = await nat_phone(rig)
    assert ("acs.stun_password", "active") in rig.store.secrets.names(device_id)
    # The phone's first bindings, before the policy gave it STUN credentials, were refused and not stored.
    assert rig.app.stun.counters["unauthorized"] >= 1 and rig.app.stun.counters["bound"] >= 1
    result = await within(rig.app.connreq.kick(device_id, by="t"))
    assert (result.outcome, result.method) == ("sent", "udp") and result.detail.startswith("HTTP refused")
    assert result.url == rig.store.devices.get(device_id).udp_connection_request_address
    record = await rig.delivered(result.request_id)
    assert rig.store.history.session(record.delivered_session_id).connection_request_id == result.request_id
    await until(lambda: rig.fleet.counters.get("udp_cr_ignored_replayed", 0) == 2, "every copy arrived")
    assert rig.fleet.counters["udp_cr_accepted"] == 1


@pytest_twisted.ensureDeferred
async def test_a_forged_udp_request_is_ignored_by_the_phone(rig):
    device_id = await nat_phone(rig)
    rig.wrong_escrow()
    result = await within(rig.app.connreq.kick(device_id, by="t"))
    assert result.outcome == "sent"  # UDP has no answer: the ACS cannot know
    await until(lambda: rig.fleet.counters.get("udp_cr_ignored_bad_signature", 0) == 3, "all copies checked")
    assert rig.fleet.counters.get("udp_cr_accepted", 0) == 0 and rig.idle()
    assert rig.store.connection_requests.get(result.request_id).delivered_session_id is None


# ---- acs kick -------------------------------------------------------------------------------------------------------


async def acs_kick(rig: Rig, *names: str) -> tuple[int, list[str]]:
    """`acs kick` in its own process, against the ACS and phones of this test process."""
    command = str(Path(sys.executable).with_name("acs"))
    out, err, code = await within(utils.getProcessOutputAndValue(
        command, ["kick", "--config", str(rig.config_path), "--wait", str(GUARD), *names], env=dict(os.environ),
    ))
    return code, out.decode().splitlines() + [f"stderr: {line}" for line in err.decode().splitlines()]


@pytest_twisted.ensureDeferred
async def test_acs_kick_reports_delivery_per_device(rig):
    await rig.start()
    await rig.provisioned()
    serial = identity(rig.first_index).serial
    code, lines = await acs_kick(rig, serial, "no-such-phone")
    assert code == 1, lines
    assert lines[0] == "no-such-phone  unknown device"
    assert re.fullmatch(rf"{rig.device_id()}  accepted, delivered \(session [0-9a-f]{{8}}… opened\)", lines[1]), lines
    entry = rig.store.audit.entries(device_id=rig.device_id(), action="connection-request")[0]
    assert entry.actor.startswith("operator:")


@pytest_twisted.ensureDeferred
async def test_acs_kick_hands_udp_to_the_acs_holding_the_stun_port(rig):
    device_id = await nat_phone(rig)
    code, lines = await acs_kick(rig, device_id)
    assert code == 0, lines
    assert lines == [f"{device_id}  queued for the ACS's STUN port, delivered "
                     f"(session {rig.store.connection_requests.for_device(device_id)[0].delivered_session_id[:8]}… "
                     "opened)"], lines
    assert rig.fleet.counters["udp_cr_accepted"] == 1
