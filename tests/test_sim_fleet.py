"""Fleets: deterministic identities, credentials, a thousand phones in one process, state across a restart."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from cwmp_models import messages as m
from cwmp_models.types import XsdType
from tests.test_sim_agent import (  # noqa: F401 (fixtures)
    Acs,
    acs,
    first_index_for,
    make_acs,
    nothing_left_behind,
    one_session,
    start_fleet,
    within,
)
from wp820_sim import fleet as fleet_module
from wp820_sim.agent import AgentState
from wp820_sim.fleet import (
    MAX_INDEX,
    Fleet,
    FleetConfig,
    FleetError,
    StateWriter,
    identity,
    load_credentials_csv,
    raise_open_file_limit,
)
from wp820_sim.phone import Credentials
from wp820_sim.state import state_path

INTERVAL = "Device.ManagementServer.PeriodicInformInterval"


# -- identities and configuration (no sockets) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "mac", "ip"),
    [
        (0, "C074AD000001", "127.0.0.2"),
        (252, "C074AD0000FD", "127.0.0.254"),
        (253, "C074AD0000FE", "127.0.1.1"),
        (254 * 256 - 1, "C074AD00FE00", "127.1.0.1"),
        (19_999, "C074AD004E20", "127.0.78.189"),
    ],
)
def test_identities_are_deterministic_and_skip_network_and_broadcast_octets(index: int, mac: str, ip: str) -> None:
    ident = identity(index)
    assert (ident.mac, ident.serial, ident.ip) == (mac, mac.lower(), ip)


def test_twenty_thousand_identities_are_distinct_and_never_127_0_0_1() -> None:
    idents = [identity(i) for i in range(20_000)]
    ips = {ident.ip for ident in idents}
    assert len(ips) == len({ident.serial for ident in idents}) == 20_000
    assert "127.0.0.1" not in ips
    assert all(not ip.endswith((".0", ".255")) for ip in ips)


def test_identity_index_out_of_range_is_refused() -> None:
    with pytest.raises(FleetError, match="outside"):
        identity(MAX_INDEX + 1)
    with pytest.raises(FleetError, match="outside"):
        identity(-1)


def test_credentials_csv_is_read_case_insensitively(tmp_path: Path) -> None:
    path = tmp_path / "creds.csv"
    path.write_text("serial,username,password\nC074AD000001,u1,p1\nc074ad000002,u2,p2\n")
    assert load_credentials_csv(path) == {
        "c074ad000001": Credentials("u1", "p1"),
        "c074ad000002": Credentials("u2", "p2"),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("serial,password\nc074ad000001,s3cret-pw\n", "lacks column"),
        ("serial,username,password\nc074ad000001,,s3cret-pw\n", "line 2: serial and username are required"),
        ("serial,username,password\nc074ad000001,u,s3cret-pw\nC074AD000001,v,s3cret-pw\n", "appears twice"),
    ],
)
def test_bad_credentials_csv_is_refused_naming_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "creds.csv"
    path.write_text(text)
    with pytest.raises(FleetError, match=message) as raised:
        load_credentials_csv(path)
    assert "s3cret-pw" not in str(raised.value)


def test_missing_credentials_file_is_a_fleet_error(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="cannot read credentials file"):
        load_credentials_csv(tmp_path / "absent.csv")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"phones": 0}, "at least one phone"),
        ({"phones": 2, "first_index": MAX_INDEX}, "exceed"),
        ({"ramp": -1.0}, "ramp"),
        ({"bootstrap": Credentials("u", "p"), "credentials": {}}, "either"),
    ],
)
def test_impossible_fleet_configurations_are_refused(tmp_path: Path, options: dict, message: str) -> None:
    config = {"acs_url": "http://127.0.0.1:1/", "phones": 1, "state_dir": tmp_path} | options
    with pytest.raises(FleetError, match=message):
        FleetConfig(**config)


def test_open_file_limit_is_raised_as_far_as_allowed() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, soft + 16)
    assert raise_open_file_limit(wanted) >= wanted
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= wanted


@pytest_twisted.ensureDeferred
async def test_only_nat_fleets_need_a_descriptor_per_phone(request, tmp_path: Path, monkeypatch) -> None:
    """Phones not behind the NAT share their connection-request socket: a fleet larger than the open-file limit
    starts; one behind the NAT (a UDP socket per phone) is refused, naming the limit."""
    monkeypatch.setattr(fleet_module, "raise_open_file_limit", lambda wanted: 1000)
    options = {"acs_url": "http://127.0.0.1:1/", "phones": 2000, "first_index": first_index_for(request.node.nodeid)}
    with pytest.raises(FleetError, match="behind the simulated NAT need at least 2064 open files .* only 1000"):
        await Fleet(FleetConfig(state_dir=tmp_path / "nat", nat=True, **options), clock=task.Clock()).start()
    fleet = Fleet(FleetConfig(state_dir=tmp_path / "plain", ramp=60.0, **options), clock=task.Clock())
    await fleet.start()  # the clock never advances: no phone boots
    assert len(fleet.serials) == 2000 and fleet.open_file_limit == 1000
    await fleet.stop()


@pytest_twisted.ensureDeferred
async def test_state_writer_keeps_the_newest_snapshot_and_reports_failures(tmp_path: Path) -> None:
    failures: list[tuple[Path, str]] = []
    writer = StateWriter(reactor, fsync=True, on_error=lambda path, reason: failures.append((path, reason)))
    target = tmp_path / "c074ad000001.json"
    for version in range(50):
        writer.submit(target, b'{"version": %d}' % version)
    writer.submit(tmp_path / "missing-dir" / "x.json", b"{}")
    await within(writer.drain())
    await writer.close()
    assert target.read_bytes() == b'{"version": 49}'
    assert [path.name for path in tmp_path.iterdir()] == [target.name]  # no temporary file left behind
    missing = tmp_path / "missing-dir" / "x.json"
    assert failures == [(missing, "cannot write: No such file or directory")]


# -- fleets on the wire --------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_thousand_phones_each_complete_a_session(acs: Acs, start_fleet) -> None:
    fleet = await start_fleet(acs.url, phones=1000)
    await within(fleet.wait_sessions(1000), guard=120)  # a hang guard for a loaded machine, not a speed target
    sessions = acs.acs.completed
    assert len(sessions) == 1000
    assert {s.serial for s in sessions} == set(fleet.serials)
    assert len({s.client_ip for s in sessions}) == 1000  # every phone from its own address
    assert all(s.event_codes == ["0 BOOTSTRAP", "1 BOOT"] for s in sessions)
    assert fleet.counters.get("sessions_failed", 0) == 0


@pytest_twisted.ensureDeferred
async def test_boots_are_spread_over_the_ramp(acs: Acs, start_fleet) -> None:
    clock = task.Clock()
    fleet = await start_fleet(acs.url, phones=3, clock=clock, ramp=30.0)
    states = lambda: [fleet.agent(serial).state for serial in fleet.serials]  # noqa: E731
    assert len(clock.getDelayedCalls()) == 1 and len(fleet.scheduler) == 3  # three boots, one reactor timer
    clock.advance(0)
    assert states()[1:] == [AgentState.REBOOTING, AgentState.REBOOTING]
    clock.advance(10)
    assert states()[2] is AgentState.REBOOTING and states()[1] is not AgentState.REBOOTING
    clock.advance(10)
    await within(fleet.wait_sessions(3))
    assert sorted(s.serial for s in acs.acs.completed) == sorted(fleet.serials)


@pytest_twisted.ensureDeferred
async def test_a_restarted_fleet_remembers_changes_and_does_not_bootstrap_again(
    request, acs: Acs, start_fleet, tmp_path: Path
) -> None:
    first_index = first_index_for(request.node.nodeid)
    changed = identity(first_index).serial
    acs.acs.enqueue(changed, m.SetParameterValues([m.ParameterValueStruct(INTERVAL, 600, XsdType.UNSIGNED_INT)], "v2"))
    first = await start_fleet(acs.url, phones=2)
    await within(first.wait_sessions(2))
    await first.stop()
    assert all(state_path(tmp_path / "state", serial).exists() for serial in first.serials)

    acs.acs.enqueue(changed, m.GetParameterValues([INTERVAL, "Device.ManagementServer.ParameterKey"]))
    second = await start_fleet(acs.url, phones=2)
    sessions = await within(acs.acs.wait_sessions(4))
    after_restart = sessions[2:]
    assert sorted(s.event_codes for s in after_restart) == [["1 BOOT"], ["1 BOOT"]]
    (read_back,) = [s.response_to(m.GetParameterValues) for s in after_restart if s.serial == changed]
    assert [p.value for p in read_back.parameter_list] == [600, "v2"]
    assert second.phone(changed).value(INTERVAL) == 600


@pytest_twisted.ensureDeferred
async def test_each_phone_uses_its_own_credentials_from_the_csv(request, make_acs, start_fleet) -> None:
    first_index = first_index_for(request.node.nodeid)
    serials = [identity(first_index + i).serial for i in range(2)]
    credentials = {serial: Credentials(f"user-{n}", f"pass-{n}") for n, serial in enumerate(serials)}
    acs = make_acs()
    for username, password in credentials.values():
        acs.acs.set_credentials(username, password)
    fleet = await start_fleet(acs.url, phones=2, bootstrap=None, credentials=credentials)
    await within(fleet.wait_sessions(2))
    assert {s.serial: s.username for s in acs.acs.completed} == {
        serial: cred.username for serial, cred in credentials.items()
    }


@pytest_twisted.ensureDeferred
async def test_a_phone_missing_from_the_credentials_file_stops_the_start(request, acs: Acs, tmp_path: Path) -> None:
    config = FleetConfig(
        acs_url=acs.url,
        phones=1,
        state_dir=tmp_path,
        credentials={},
        first_index=first_index_for(request.node.nodeid),
    )
    with pytest.raises(FleetError, match="no row for serial"):
        await Fleet(config).start()


@pytest_twisted.ensureDeferred
async def test_a_damaged_state_file_stops_the_start_naming_the_file(request, acs: Acs, tmp_path: Path) -> None:
    ident = identity(first_index_for(request.node.nodeid))
    state_path(tmp_path, ident.serial).write_text("{not json")
    config = FleetConfig(acs_url=acs.url, phones=1, state_dir=tmp_path, first_index=ident.index)
    with pytest.raises(FleetError, match=f"{ident.serial}.json: not JSON"):
        await Fleet(config).start()
