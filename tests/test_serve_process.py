"""`acs serve` as a real process, as systemd runs it: configuration sources and errors, the HTTP/HTTPS/IPv6
listeners and their backlog, the notification protocol (READY after listen, WATCHDOG, STOPPING), a whole CWMP session
and its log, SIGTERM in the middle of a session, socket activation, SIGHUP reload, and restarts keeping the state.

Each test starts `acs serve` (the console script next to this interpreter) with its own configuration and a copy of
a store in which `acs enrol` enrolled one phone; the phone is the simulator's, driven over real HTTP(S) on loopback.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from acs.logs import is_secret_name
from acs.store import Store
from acs.store.history import SessionRecord
from acs.vault import Vault
from cwmp_models import codec
from cwmp_models import messages as m
from cwmp_models.envelope import Envelope
from tests.serve_fixture import (
    ACS,
    SERIAL,
    WAIT,
    HttpCpe,
    Material,
    PhoneSession,
    ServerProcess,
    client_tls,
    connects,
    free_port,
    listen_backlog,
    listener,
    make_material,
    new_phone,
    run_acs,
    site_config,
    toml_document,
)

POLICY = Path(__file__).resolve().parent.parent / "policies" / "wp820-hardening.toml"
DEVICE_ID = f"000B82-WP820-{SERIAL}"
HAND_OVER = """
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    return make_material(tmp_path_factory.mktemp("material"))


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    """Every server a test starts is killed at teardown, whatever the test did. Its log is printed, for pytest to
    show when the test failed."""
    started: list[ServerProcess] = []
    yield started
    for number, server in enumerate(started, start=1):
        server.close()
        print(f"--- log of server {number} (pid {server.pid}) ---", *server.lines, sep="\n")


def start(servers: list[ServerProcess], config: Path, **kwargs) -> ServerProcess:
    server = ServerProcess(config, **kwargs)
    servers.append(server)
    return server


def write_config(path: Path, config: dict) -> Path:
    path.write_text(toml_document(config))
    return path


def https_url(port: int, host: str = "127.0.0.1") -> str:
    return f"https://{listener(host, port)}/cwmp"


def phone_session(material: Material, url: str, phone=None) -> PhoneSession:
    tls = client_tls(material) if url.startswith("https:") else None
    return PhoneSession(HttpCpe(url, SERIAL, material.password, tls=tls), phone or new_phone())


def unauthenticated_inform(url: str, tls: ssl.SSLContext | None = None) -> tuple[int, list[str]]:
    """A phone's first POST, without credentials: the status and the WWW-Authenticate challenges."""
    cpe = HttpCpe(url, "nobody", "nothing", tls=tls)
    try:
        inform = Envelope(new_phone().start_session(("1 BOOT",)), id="1")
        status, headers, _ = cpe.send(codec.serialize(inform))
        return status, headers.get_all("www-authenticate") or []
    finally:
        cpe.close()


# ---- configuration --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_text", "env", "key"),
    [
        ('[cwmp]\nhtps = ["127.0.0.1:17549"]\n', {}, "cwmp.htps"),
        ('[cwmp]\nbacklog = "big"\n', {}, "cwmp.backlog"),
        ("[log]\nlevel = \"info\"\n", {"ACS_CWMP_MAX_SESSIONS": "lots"}, "cwmp.max_sessions"),
    ],
    ids=["unknown-key", "bad-value", "bad-environment-value"],
)
def test_a_bad_key_stops_the_start_with_one_line_naming_it(tmp_path, file_text, env, key):
    config = tmp_path / "acs.toml"
    config.write_text(file_text)

    done = run_acs("serve", "--config", str(config), env={**_clean_environment(), **env}, cwd=tmp_path)

    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and key in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "var").exists()  # nothing was started, not even the store


def _clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ACS_")}


def test_environment_overrides_the_file_and_set_overrides_both(tmp_path, material, servers):
    file_port, env_port, https_port = free_port(), free_port(), free_port()
    config = write_config(tmp_path / "acs.toml", site_config(material, tmp_path / "state", cwmp={
        "http": [listener("127.0.0.1", file_port)], "https": [listener("127.0.0.1", https_port)], "backlog": 1100,
    }))

    environment = {"ACS_CWMP_HTTP": listener("127.0.0.1", env_port), "ACS_CWMP_BACKLOG": "1200"}
    server = start(servers, config, env=environment,
                   args=["--set", "cwmp.backlog=1536", "--set", "tls.min_version=1.3"]).ready()

    assert not connects("127.0.0.1", file_port)  # the environment replaced the file's listener
    expected = min(1536, int(Path("/proc/sys/net/core/somaxconn").read_text()))
    assert listen_backlog(env_port) == [expected]  # --set beat both the environment and the file
    assert listen_backlog(https_port) == [expected]
    with pytest.raises(ssl.SSLError):  # tls.min_version=1.3 from --set: a TLS 1.2 client is refused
        unauthenticated_inform(https_url(https_port), client_tls(material, maximum=ssl.TLSVersion.TLSv1_2))
    assert unauthenticated_inform(https_url(https_port), client_tls(material))[0] == 401
    assert server.stop() == 0


# ---- listeners and the notification protocol -------------------------------------------------------------------------


def test_http_https_and_ipv6_listeners_answer_with_a_backlog_of_1024(tmp_path, material, servers):
    ports = {"http4": free_port(), "http6": free_port("::1"), "https4": free_port(), "https6": free_port("::1")}
    config = write_config(tmp_path / "acs.toml", site_config(material, tmp_path / "state", cwmp={
        "http": [listener("127.0.0.1", ports["http4"]), listener("::1", ports["http6"])],
        "https": [listener("127.0.0.1", ports["https4"]), listener("::1", ports["https6"])],
    }))
    server = start(servers, config)

    ready = server.wait_notify("READY=1")
    # READY=1 is sent only once every listener is up: each one accepts a connection as soon as READY is read.
    for name, port in ports.items():
        assert connects("::1" if name.endswith("6") else "127.0.0.1", port), name
    # No WATCHDOG_USEC, no pings (the first one would precede READY=1).
    assert "WATCHDOG=1" not in server.notify.assignments(0, ready + 1)

    for name, port in ports.items():
        host = "::1" if name.endswith("6") else "127.0.0.1"
        scheme = "https" if name.startswith("https") else "http"
        tls = client_tls(material, maximum=ssl.TLSVersion.TLSv1_2) if scheme == "https" else None
        status, challenges = unauthenticated_inform(f"{scheme}://{listener(host, port)}/cwmp", tls)
        assert status == 401 and any(c.startswith("Digest ") and 'realm="wp820-acs"' in c for c in challenges), name
        assert listen_backlog(port) == [1024], name  # the default cwmp.backlog, below somaxconn here
    assert server.stop() == 0
    records = server.records()  # "auto" on a pipe: JSON lines
    assert {r["listener"] for r in records if r["event"] == "listening"} == {
        "http://127.0.0.1:%d" % ports["http4"], "http://[::1]:%d" % ports["http6"],
        "https://127.0.0.1:%d" % ports["https4"], "https://[::1]:%d" % ports["https6"],
    }


def test_notify_ready_watchdog_and_stopping(tmp_path, material, servers):
    port = free_port()
    config = write_config(tmp_path / "acs.toml", site_config(material, tmp_path / "state", cwmp={
        "https": [listener("127.0.0.1", port)]}))
    server = start(servers, config, env={"WATCHDOG_USEC": "200000"})  # pings every 0.1 s

    ready = server.wait_notify("READY=1")
    assert connects("127.0.0.1", port)
    first_ping = server.wait_notify("WATCHDOG=1", after=ready + 1)
    server.wait_notify("WATCHDOG=1", after=first_ping + 1)  # pings keep coming after start-up, not just one
    server.signal(signal.SIGTERM)
    server.wait_notify("STOPPING=1", after=ready + 1)
    assert server.wait() == 0
    assert any(a.startswith("STATUS=") for a in server.notify.assignments())


def test_a_listener_that_cannot_bind_fails_the_start(tmp_path, material, servers):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = write_config(tmp_path / "acs.toml", site_config(material, tmp_path / "state", cwmp={
            "https": [listener("127.0.0.1", taken.getsockname()[1])]}))
        server = start(servers, config)

        assert server.wait() == 1
    failures = [r for r in server.records() if r["event"] == "start failed"]
    assert len(failures) == 1 and "Address already in use" in failures[0]["error"]
    assert "READY=1" not in server.notify.assignments()


# ---- a session and its log ------------------------------------------------------------------------------------------


def escrowed_secrets(material: Material, store_path: Path) -> list[str]:
    store = Store(store_path)
    try:
        vault = Vault.from_key_file(material.secrets_key)
        return [vault.open(DEVICE_ID, name, store.secrets.get(DEVICE_ID, name, state=state))
                for name, state in store.secrets.names(DEVICE_ID)]
    finally:
        store.close()


def secrets_sent(requests: list[m.Message]) -> list[str]:
    """Secret values the ACS sent the phone: SetParameterValues of secret-named parameters, and each one-time file
    URL's token and password."""
    found = []
    for request in requests:
        if isinstance(request, m.SetParameterValues):
            found += [str(p.value) for p in request.parameter_list if is_secret_name(p.name) and str(p.value)]
        if isinstance(request, (m.Download, m.Upload)):
            found += [request.url.rsplit("/", 1)[1], request.password]
    return found


@dataclass(frozen=True)
class LoggedSession:
    records: list[dict]  # the whole log, parsed
    text: str  # the whole log, as written
    rpcs: list[str]
    stored: SessionRecord
    secrets: set[str]
    escrowed: list[str]


@pytest.fixture(scope="module")
def logged_session(tmp_path_factory: pytest.TempPathFactory, material: Material) -> Iterator[LoggedSession]:
    """One hardening session of a factory-fresh phone over HTTPS, logged at debug level, the server then stopped."""
    directory = tmp_path_factory.mktemp("logged")
    port = free_port()
    config = write_config(directory / "acs.toml", site_config(material, directory / "state", cwmp={
        "https": [listener("127.0.0.1", port)], "public_url": https_url(port)}, log={"level": "debug"}))
    server = ServerProcess(config)
    try:
        server.ready()
        session = phone_session(material, https_url(port))
        session.open()
        rpcs = session.finish()
        session.cpe.close()
        assert server.stop() == 0
    finally:
        server.close()
    store = Store(directory / "state" / "acs.sqlite")
    try:
        [stored] = store.history.sessions(DEVICE_ID)
    finally:
        store.close()
    escrowed = escrowed_secrets(material, directory / "state" / "acs.sqlite")
    secrets = {material.password, *escrowed, *secrets_sent(session.requests)}
    yield LoggedSession(server.records(), "\n".join(server.lines), rpcs, stored, secrets, escrowed)


def test_every_log_line_of_a_session_carries_its_device_and_session_ids(logged_session):
    records = logged_session.records
    opened = [i for i, r in enumerate(records) if r["event"] == "session opened"]
    ended = [i for i, r in enumerate(records) if r["event"] == "session ended"]
    assert len(opened) == len(ended) == 1
    lines = records[opened[0]:ended[0] + 1]
    # One line per ACS request at debug level, plus the opening and the end: all bound to the device and session.
    assert len(lines) >= len(logged_session.rpcs) + 2
    ids = (DEVICE_ID, logged_session.stored.id)
    assert [r for r in lines if (r.get("device_id"), r.get("session_id")) != ids] == []


def test_a_session_logs_no_password_and_no_escrowed_secret(logged_session):
    assert "SetParameterValues" in logged_session.rpcs, logged_session.rpcs  # the policy really hardened the phone
    assert (logged_session.stored.outcome, logged_session.stored.rpc_count) == ("ok", len(logged_session.rpcs))
    assert len(logged_session.escrowed) >= 3
    assert all(len(secret) >= 6 for secret in logged_session.secrets)  # long enough not to match by chance
    assert [secret for secret in logged_session.secrets if secret in logged_session.text] == []


# ---- stop, restart ---------------------------------------------------------------------------------------------------


def test_sigterm_in_mid_session_loses_nothing_and_a_restart_keeps_all_state(tmp_path, material, servers):
    port = free_port()
    config = write_config(tmp_path / "acs.toml", site_config(material, tmp_path / "state", cwmp={
        "https": [listener("127.0.0.1", port)], "public_url": https_url(port)}))
    store_path = tmp_path / "state" / "acs.sqlite"
    server = start(servers, config).ready()
    phone = new_phone()
    session = phone_session(material, https_url(port), phone)
    session.open()
    assert session.pending is not None  # Inform answered, an ACS request outstanding

    server.signal(signal.SIGTERM)
    server.wait_notify("STOPPING=1")
    _wait_until_refused("127.0.0.1", port)  # no new connections ...
    rpcs = session.finish()  # ... while the running session goes on to its end
    session.cpe.close()
    assert server.wait() == 0

    store = Store(store_path)
    try:
        [first] = store.history.sessions(DEVICE_ID)
        assert (first.outcome, first.rpc_count) == ("ok", len(rpcs))
        assert sorted(code for _, code, _, _ in store.history.events(DEVICE_ID)) == ["0 BOOTSTRAP", "1 BOOT"]
        before = _state_snapshot(store)
    finally:
        store.close()

    again = start(servers, config).ready()
    assert again.wait_event("ready")[1]["devices"] == 1
    second = phone_session(material, https_url(port), phone)  # the same phone and credential after the restart
    second.open(("2 PERIODIC",))
    second_rpcs = second.finish()
    second.cpe.close()
    assert again.stop() == 0

    assert "GetParameterNames" not in second_rpcs  # the restarted ACS remembers what it learnt of the phone
    store = Store(store_path)
    try:
        after = _state_snapshot(store)
        sessions = store.history.sessions(DEVICE_ID)
    finally:
        store.close()
    assert [s.outcome for s in sessions] == ["ok", "ok"]
    assert after["audit"][: len(before["audit"])] == before["audit"]
    assert after["devices"] == before["devices"] and after["credentials"] == before["credentials"]
    assert set(before["secrets"]) <= set(after["secrets"])


def _wait_until_refused(host: str, port: int) -> None:
    """The listening socket closes within a reactor turn of STOPPING=1; wait (bounded) for connects to fail."""
    deadline = time.monotonic() + WAIT
    while connects(host, port):
        assert time.monotonic() < deadline, "still accepting connections after STOPPING=1"
        time.sleep(0.05)


def _state_snapshot(store: Store) -> dict:
    return {
        "devices": [(d.id, d.serial_number) for d in store.devices.all()],
        "credentials": [tuple(row) for table in ("enrolments", "cpe_credentials")
                        for row in store.db.query(f"SELECT * FROM {table} ORDER BY 1")],
        "audit": [(e.actor, e.action, e.device_id) for e in reversed(store.audit.entries())],
        "secrets": store.secrets.names(DEVICE_ID),
    }


def test_a_killed_server_marks_the_open_session_interrupted_at_restart(tmp_path, material, servers):
    port = free_port()
    config = write_config(tmp_path / "acs.toml", site_config(material, tmp_path / "state", cwmp={
        "https": [listener("127.0.0.1", port)]}))
    server = start(servers, config).ready()
    session = phone_session(material, https_url(port))
    session.open()
    server.signal(signal.SIGKILL)
    assert server.wait() == -signal.SIGKILL
    session.cpe.close()

    again = start(servers, config).ready()
    assert again.wait_event("sessions interrupted by the previous stop")[1]["count"] == 1
    assert again.stop() == 0
    store = Store(tmp_path / "state" / "acs.sqlite")
    try:
        [record] = store.history.sessions(DEVICE_ID)
        assert record.outcome == "interrupted" and record.ended_at is not None
        assert {code for _, code, _, _ in store.history.events(DEVICE_ID)} == {"0 BOOTSTRAP", "1 BOOT"}
    finally:
        store.close()


# ---- socket activation and reload ------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["::1", "127.0.0.1"], ids=["AF_INET6", "AF_INET"])
def test_socket_activation_serves_tls_cwmp_on_the_passed_descriptor(tmp_path, material, servers, host):
    config = write_config(tmp_path / "acs.toml", site_config(material, tmp_path / "state",
                                                             cwmp={"systemd_socket": "cwmp"}))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as activated:
        activated.bind((host, 0))
        activated.listen(1024)
        port = activated.getsockname()[1]
        fd = activated.fileno()
        # systemd's hand-over: the socket as fd 3 and LISTEN_PID = the service's own pid. A small wrapper moves the
        # descriptor and execs acs in place, keeping its pid.
        command = [sys.executable, "-c", HAND_OVER, str(fd), ACS, "serve", "--config", str(config)]
        server = start(servers, config, command=command, pass_fds=(fd,),
                       env={"LISTEN_FDS": "1", "LISTEN_FDNAMES": "cwmp"}).ready()
    # The test's copy is closed: only the server holds the listening socket now.
    session = phone_session(material, https_url(port, host))
    session.open()
    rpcs = session.finish()
    session.cpe.close()
    assert server.stop() == 0

    assert rpcs and session.requests
    [record] = [r for r in server.records() if r["event"] == "listening"]
    assert record["listener"] == "systemd:cwmp" and str(port) in record["address"]


def test_sighup_reloads_the_policy_without_dropping_a_session(tmp_path, material, servers):
    policy = tmp_path / "policy.toml"
    original = POLICY.read_text()
    revision = re.search(r'^revision = "([^"]+)"', original, re.MULTILINE)
    assert revision is not None
    policy.write_text(original)
    port = free_port()
    config = write_config(tmp_path / "acs.toml", site_config(material, tmp_path / "state", cwmp={
        "https": [listener("127.0.0.1", port)]}, policy={"files": [str(policy)]}))
    server = start(servers, config).ready()
    session = phone_session(material, https_url(port))
    session.open()
    session.step()

    policy.write_text(original.replace(revision.group(0), 'revision = "reloaded-by-test"', 1))
    mark = len(server.notify.received)
    server.signal(signal.SIGHUP)
    reloaded, record = server.wait_event("policy reloaded")
    assert record["revision"] == "reloaded-by-test"
    reloading = server.wait_notify("RELOADING=1", after=mark)
    assert any(a.startswith("MONOTONIC_USEC=") for a in server.notify.assignments(reloading, reloading + 1))
    server.wait_notify("READY=1", after=reloading + 1)

    policy.write_text("[policy\n")  # a broken file: the reload fails, the server keeps the policy it has
    server.signal(signal.SIGHUP)
    _, failure = server.wait_event("policy reload failed; keeping the current policy", after=reloaded + 1)
    assert str(policy) in failure["error"]

    rpcs = session.finish()  # the session opened before both reloads runs to its end
    session.cpe.close()
    assert server.stop() == 0
    store = Store(tmp_path / "state" / "acs.sqlite")
    try:
        [record] = store.history.sessions(DEVICE_ID)
    finally:
        store.close()
    assert (record.outcome, record.rpc_count) == ("ok", len(rpcs))
    assert len(rpcs) > 2


def test_socket_activation_without_the_named_socket_fails_the_start_naming_the_key(tmp_path, material, servers):
    config = write_config(tmp_path / "acs.toml", site_config(material, tmp_path / "state",
                                                             cwmp={"systemd_socket": "cwmp"}))
    server = start(servers, config)

    assert server.wait() == 1
    [failure] = [r for r in server.records() if r["event"] == "start failed"]
    assert failure["error"].startswith("cwmp.systemd_socket: ") and "'cwmp'" in failure["error"]
