"""``wp820-sim``: one-line errors for bad invocations, the control endpoint's keypad hook, and a real run in a child
process against the mini ACS (started, driven through ``wp820-sim keypad``, stopped with SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from click.testing import CliRunner
from twisted.internet import defer, reactor, task

from cwmp_models import messages as m
from tests.test_sim_agent import (  # noqa: F401 (fixtures)
    GUARD,
    PASSWORD,
    USER,
    Acs,
    acs,
    first_index_for,
    make_acs,
    nothing_left_behind,
    one_session,
    start_fleet,
    within,
)
from wp820_sim.agent import HttpClient, HttpReply, TlsPolicy
from wp820_sim.cli import main
from wp820_sim.control import listen_control
from wp820_sim.fleet import identity
from wp820_sim.state import state_path

INTERVAL = "Device.ManagementServer.PeriodicInformInterval"
ACTIVE = m.SetParameterAttributes([m.SetParameterAttributesStruct(INTERVAL, True, 2)])


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "bootstrap.pw"
    path.write_text(PASSWORD + "\n")
    return path


def base_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "--acs-url", "http://127.0.0.1:1/cwmp", "--phones", "1", "--state-dir", str(tmp_path / "s"), *extra]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--acs-url", "http://10.1.2.3/cwmp"], "loopback IP address"),
        (["--acs-url", "ftp://127.0.0.1/"], "not an http:// or https:// URL"),
        (["--quirks", "no_cookies,teleport"], "unknown quirk 'teleport'"),
        (["--quirks", "cwmp=2.0"], "cwmp version '2.0'"),
        (["--bootstrap-user", "u"], "go together"),
        (["--credentials", "x.csv", "--bootstrap-user", "u", "--bootstrap-password-file", "f"], "not both"),
        (["--stun-server", "127.0.0.1:3478"], "only makes sense with --nat"),
        (["--nat", "--stun-server", "127.0.0.1"], "is not HOST:PORT"),
        (["--control", "192.0.2.1:8800"], "not a loopback address"),
        (["--control", "localhost:8800"], "must be an IP address"),
        (["--phones", "0"], "x>=1"),
    ],
)
def test_bad_invocations_fail_with_one_line_and_no_traceback(tmp_path: Path, extra: list[str], message: str) -> None:
    result = run_cli(*base_args(tmp_path), *extra)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s").exists()


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    missing_pw = run_cli(*base_args(tmp_path, "--bootstrap-user", "u", "--bootstrap-password-file", "nope.pw"))
    assert missing_pw.exit_code == 2 and "cannot read 'nope.pw'" in missing_pw.output
    missing_csv = run_cli(*base_args(tmp_path, "--credentials", str(tmp_path / "nope.csv")))
    assert missing_csv.exit_code == 2 and "cannot read credentials file" in missing_csv.output
    missing_ca = run_cli(*base_args(tmp_path, "--ca", str(tmp_path / "ca.pem")))
    assert missing_ca.exit_code == 1 and "cannot read CA file" in missing_ca.output
    (tmp_path / "ca.pem").write_text("not a certificate")
    bad_ca = run_cli(*base_args(tmp_path, "--ca", str(tmp_path / "ca.pem")))
    assert bad_ca.exit_code == 1 and "holds no PEM certificate" in bad_ca.output
    for result in (missing_pw, missing_csv, missing_ca, bad_ca):
        assert "Traceback" not in result.output


def test_keypad_without_a_running_endpoint_says_so() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    result = run_cli("keypad", "--control", f"127.0.0.1:{port}", "c074ad000001", INTERVAL, "600")
    assert result.exit_code == 1
    assert "cannot reach the control endpoint" in result.output and "Traceback" not in result.output


# -- the control endpoint, in process -----------------------------------------------------------------------------


async def http(method: bytes, url: str, body: bytes | None = None, content_type: bytes | None = None) -> HttpReply:
    client = HttpClient(
        reactor, bind_ip="127.0.0.1", username="", password="", tls_policy=TlsPolicy(), timeout=5.0, max_body=1 << 20
    )
    headers = {b"content-type": content_type} if content_type else {}
    try:
        return await client.request(method, url, body, headers)
    finally:
        await client.close()


@pytest.fixture
def control_of():
    ports = []

    def open_for(fleet: Any) -> str:
        port = listen_control(reactor, fleet, "127.0.0.1:0")
        ports.append(port)
        return f"http://127.0.0.1:{port.getHost().port}"

    yield open_for
    pytest_twisted.blockon(defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in ports]))


@pytest_twisted.ensureDeferred
async def test_control_lists_phones_and_applies_keypad_changes(request, acs: Acs, start_fleet, control_of) -> None:
    serial = identity(first_index_for(request.node.nodeid)).serial
    acs.acs.enqueue(serial, ACTIVE)  # the ACS watches the interval (active notification), as a drift check would
    fleet = await start_fleet(acs.url)
    await one_session(acs, 1, fleet)
    base = control_of(fleet)

    listing = json.loads((await within(http(b"GET", base + "/phones"))).body)
    assert [(p["serial"], p["state"], p["sessions_ok"]) for p in listing["phones"]] == [(serial, "idle", 1)]
    assert listing["counters"]["sessions_ok"] == 1

    change = json.dumps({"key_or_path": INTERVAL, "value": "600"}).encode()
    reply = await within(http(b"POST", f"{base}/phones/{serial}/keypad", change, b"application/json"))
    assert (reply.status, json.loads(reply.body)) == (200, {"serial": serial, "notification": 2})
    session = await one_session(acs, 2, fleet)
    assert session.event_codes == ["4 VALUE CHANGE"]
    assert session.inform.parameter(INTERVAL) == 600


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status", "error"),
    [
        ("/phones/{serial}/keypad", b'{"key_or_path": "x", "value": 1}', b"text/plain", 415, "application/json"),
        ("/phones/c0ffee000000/keypad", b'{"key_or_path": "x", "value": 1}', b"application/json", 404, "no such"),
        ("/phones/{serial}/keypad", b"{not json", b"application/json", 400, "not JSON"),
        ("/phones/{serial}/keypad", b'{"value": 1}', b"application/json", 400, "key_or_path"),
        ("/phones/{serial}/keypad", b'{"key_or_path": "Device.Nope", "value": 1}', b"application/json", 400, "unknown"),
        (
            "/phones/{serial}/keypad",
            b'{"key_or_path": "Device.ManagementServer.PeriodicInformInterval", "value": "soon"}',
            b"application/json",
            400,
            "acs.periodic_inform_interval",
        ),
        ("/elsewhere", b"{}", b"application/json", 404, "not found"),
    ],
    ids=["content-type", "unknown-phone", "bad-json", "missing-key", "unknown-setting", "invalid-value", "path"],
)
@pytest_twisted.ensureDeferred
async def test_control_refuses_bad_requests_with_a_reason(
    request, acs: Acs, start_fleet, control_of, path: str, body: bytes, content_type: bytes, status: int, error: str
) -> None:
    serial = identity(first_index_for(request.node.nodeid)).serial
    fleet = await start_fleet(acs.url)
    await one_session(acs, 1, fleet)
    reply = await within(http(b"POST", control_of(fleet) + path.format(serial=serial), body, content_type))
    assert reply.status == status and error in json.loads(reply.body)["error"]
    assert fleet.phone(serial).value(INTERVAL) == 86400


# -- a real run in a child process ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def until(condition: Any, what: str) -> None:
    for _ in range(int(GUARD / 0.05)):
        if condition():
            return
        await task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"gave up waiting for {what}")


async def exited(process: subprocess.Popen) -> int:
    await until(lambda: process.poll() is not None, "the simulator to exit")
    return process.returncode


@pytest_twisted.ensureDeferred
async def test_run_keypad_and_sigterm_end_to_end(request, acs: Acs, tmp_path: Path, password_file: Path) -> None:
    first_index = first_index_for(request.node.nodeid)
    serial = identity(first_index).serial
    acs.acs.enqueue(serial, ACTIVE)
    control = f"127.0.0.1:{free_port()}"
    state_dir = tmp_path / "phones"
    command = [
        sys.executable, "-m", "wp820_sim.cli", "run",
        "--acs-url", acs.url, "--phones", "2", "--state-dir", str(state_dir),
        "--bootstrap-user", USER, "--bootstrap-password-file", str(password_file),
        "--control", control, "--first-index", str(first_index),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        await within(acs.acs.wait_sessions(2))
        # Blocking is fine here: the control endpoint answers from the child process.
        keypad = subprocess.run(
            [sys.executable, "-m", "wp820_sim.cli", "keypad", "--control", control, serial, INTERVAL, "900"],
            capture_output=True,
            text=True,
            timeout=GUARD,
        )
        assert keypad.returncode == 0, keypad.stderr
        assert keypad.stdout.strip() == f"{serial}: {INTERVAL} changed; active notification (session now)"
        session = await one_session(acs, 3)
        assert session.serial == serial and session.event_codes == ["4 VALUE CHANGE"]
        assert session.inform.parameter(INTERVAL) == 900
    finally:
        process.send_signal(signal.SIGTERM)
        code = await exited(process)
        stdout, stderr = process.communicate()
    assert code == 0, stderr
    assert b"2 phones running, control endpoint on " + control.encode() in stderr
    assert b"Traceback" not in stderr + stdout
    assert all(state_path(state_dir, identity(first_index + i).serial).exists() for i in range(2))


def test_a_control_port_in_use_stops_the_run_with_one_line(tmp_path: Path, password_file: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [
            sys.executable, "-m", "wp820_sim.cli", "run", "--acs-url", "http://127.0.0.1:1/cwmp",
            "--phones", "1", "--state-dir", str(tmp_path / "phones"), "--control", f"127.0.0.1:{port}",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=GUARD)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_an_unhandled_twisted_error_is_logged_in_one_line_without_a_traceback():
    import subprocess
    import sys

    script = (
        "from wp820_sim import cli; cli._configure_logging('info')\n"
        "from twisted.internet import defer\n"
        "d = defer.Deferred(); d.cancel(); del d\n"
        "import gc; gc.collect()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "Unhandled error in Deferred" in done.stderr and "error='CancelledError'" in done.stderr
    assert "Traceback" not in done.stderr
