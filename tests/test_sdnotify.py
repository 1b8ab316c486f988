"""acs.sdnotify against a real AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.internet.task import Clock

from acs import sdnotify
from acs.sdnotify import (
    READY,
    RELOADING,
    STOPPING,
    WATCHDOG,
    NotifyStateError,
    WatchdogConfigError,
    monotonic_usec,
    notify,
    start_watchdog,
    status,
    watchdog_interval,
)


class FakeSystemd:
    """The receiving end of the notification socket."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address  # as written in $NOTIFY_SOCKET

    def received(self) -> list[bytes]:
        """Every datagram queued so far. Sending is synchronous on AF_UNIX, so nothing is still in flight."""
        datagrams = []
        while True:
            try:
                datagrams.append(self.sock.recv(65536, socket.MSG_DONTWAIT))
            except BlockingIOError:
                return datagrams


@pytest.fixture
def path_systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        yield FakeSystemd(sock, str(path))


@pytest.fixture
def abstract_systemd() -> Iterator[FakeSystemd]:
    name = f"wp820-acs-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        yield FakeSystemd(sock, "@" + name)


@pytest.fixture(params=["path", "abstract"])
def systemd(request: pytest.FixtureRequest) -> FakeSystemd:
    return request.getfixturevalue(f"{request.param}_systemd")


def test_each_call_sends_one_datagram_of_newline_joined_states(systemd: FakeSystemd) -> None:
    env = {"NOTIFY_SOCKET": systemd.address}

    assert notify(READY, status("listening on [::]:7549, database open"), env=env) is True
    assert notify(WATCHDOG, env=env) is True
    assert notify(STOPPING, status("draining 3 sessions"), env=env) is True

    assert systemd.received() == [
        b"READY=1\nSTATUS=listening on [::]:7549, database open",
        b"WATCHDOG=1",
        b"STOPPING=1\nSTATUS=draining 3 sessions",
    ]


def test_reloading_carries_the_monotonic_clock(path_systemd: FakeSystemd) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notify(RELOADING, monotonic_usec(), env={"NOTIFY_SOCKET": path_systemd.address})
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000

    [datagram] = path_systemd.received()
    reloading, stamp = datagram.decode().split("\n")
    key, value = stamp.split("=")
    assert reloading == "RELOADING=1"
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_reads_the_process_environment_by_default(
    path_systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", path_systemd.address)

    assert notify(READY) is True
    assert path_systemd.received() == [b"READY=1"]


def test_utf8_status_text(path_systemd: FakeSystemd) -> None:
    notify(status("bereit – 2 000 Telefone"), env={"NOTIFY_SOCKET": path_systemd.address})

    assert path_systemd.received() == ["STATUS=bereit – 2 000 Telefone".encode()]


@pytest.mark.parametrize("value", [None, "", "relative/notify", "vsock:2:1234"])
def test_no_usable_socket_address_is_a_quiet_no_op(value: str | None) -> None:
    env = {} if value is None else {"NOTIFY_SOCKET": value}

    assert notify(READY, env=env) is False


def test_missing_socket_file(tmp_path: Path) -> None:
    assert notify(READY, env={"NOTIFY_SOCKET": str(tmp_path / "absent")}) is False


def test_socket_path_that_is_a_regular_file(tmp_path: Path) -> None:
    not_a_socket = tmp_path / "notify"
    not_a_socket.write_text("")

    assert notify(READY, env={"NOTIFY_SOCKET": str(not_a_socket)}) is False


def test_socket_whose_listener_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
    # The file stays behind; sending to it is refused.

    assert notify(READY, env={"NOTIFY_SOCKET": str(path)}) is False


def test_abstract_name_nobody_listens_on() -> None:
    assert notify(READY, env={"NOTIFY_SOCKET": f"@wp820-acs-test-{uuid.uuid4().hex}"}) is False


def test_full_receiver_queue_returns_false_instead_of_blocking(path_systemd: FakeSystemd) -> None:
    env = {"NOTIFY_SOCKET": path_systemd.address}
    # The kernel queues at most net.unix.max_dgram_qlen datagrams (512 by default) for a reader that never reads.
    # A blocking send would hang here until pytest-timeout fires.
    results = [notify(WATCHDOG, env=env) for _ in range(5000)]

    assert results[0] is True
    assert results[-1] is False


@pytest.mark.parametrize(
    "states",
    [(), ("READY",), ("=1",), ("STATUS=one\nREADY=1",), (READY, "STATUS=a\nb")],
    ids=["nothing", "no-equals", "no-key", "newline", "newline-in-second"],
)
def test_malformed_assignments_raise_even_without_a_socket(states: tuple[str, ...]) -> None:
    with pytest.raises(NotifyStateError):
        notify(*states, env={})


def test_status_folds_text_onto_one_line() -> None:
    assert status("database\nlocked:  retrying\t") == "STATUS=database locked: retrying"


def test_watchdog_interval_absent() -> None:
    assert watchdog_interval({}) is None


def test_watchdog_interval_in_seconds() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "1500"}) == 0.0015


def test_watchdog_interval_for_this_process() -> None:
    env = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}

    assert watchdog_interval(env) == 30.0


def test_watchdog_meant_for_another_process_is_ignored() -> None:
    env = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}

    assert watchdog_interval(env) is None


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"WATCHDOG_USEC": "thirty"}, "WATCHDOG_USEC"),
        ({"WATCHDOG_USEC": ""}, "WATCHDOG_USEC"),
        ({"WATCHDOG_USEC": "0"}, "WATCHDOG_USEC"),
        ({"WATCHDOG_USEC": "-5"}, "WATCHDOG_USEC"),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "init"}, "WATCHDOG_PID"),
    ],
)
def test_watchdog_variables_that_are_not_positive_integers(env: dict[str, str], named: str) -> None:
    with pytest.raises(WatchdogConfigError, match=named):
        watchdog_interval(env)


def test_watchdog_pings_at_once_then_every_half_interval(path_systemd: FakeSystemd) -> None:
    clock = Clock()
    env = {"NOTIFY_SOCKET": path_systemd.address, "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}

    pinger = start_watchdog(clock, env=env)
    assert pinger is not None
    assert path_systemd.received() == [b"WATCHDOG=1"]

    clock.advance(4)
    assert path_systemd.received() == []
    clock.advance(1)
    assert path_systemd.received() == [b"WATCHDOG=1"]
    clock.advance(5)
    assert path_systemd.received() == [b"WATCHDOG=1"]

    pinger.stop()
    clock.advance(60)
    assert path_systemd.received() == []


@pytest.mark.parametrize(
    "env", [{}, {"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid() + 1)}], ids=["unset", "other-pid"]
)
def test_no_watchdog_requested(path_systemd: FakeSystemd, env: dict[str, str]) -> None:
    clock = Clock()

    assert start_watchdog(clock, env={"NOTIFY_SOCKET": path_systemd.address, **env}) is None
    assert clock.getDelayedCalls() == []
    assert path_systemd.received() == []


def test_importing_the_module_does_not_import_twisted() -> None:
    probe = f"import sys, {sdnotify.__name__}; sys.exit('twisted' in sys.modules)"

    assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0
