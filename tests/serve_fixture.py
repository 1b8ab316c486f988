"""`acs serve` as a real child process, for tests: its files (config, TLS, secrets key, enrolled store), a fake
systemd notification socket, its log, a synchronous scripted phone over real HTTP(S), and a bounded teardown.

Every wait here is bounded and ends early on success; none measures how long something took.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from acs.config import toml_string
from cwmp_models import codec
from cwmp_models import messages as m
from cwmp_models.datamodel import load_model
from cwmp_models.envelope import Envelope
from cwmp_models.httpauth_client import DigestClient
from wp820_sim.phone import Phone
from wp820_sim.state import PhoneState

# The console script installed next to the interpreter running the tests: the same command systemd runs.
ACS = str(Path(sys.executable).with_name("acs"))
WAIT = 20.0  # upper bound of any single wait: generous for a loaded 2-core machine, never reached when all is well
SERIAL = "c074ad000001"
MODEL = load_model()


def run_acs(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """A short-lived `acs` command (tls, secrets, enrol, or a serve that must fail at once)."""
    return subprocess.run([ACS, *args], capture_output=True, text=True, timeout=WAIT, check=False,
                          env=dict(os.environ if env is None else env), cwd=cwd)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (the kernel's choice). The config has no "port 0", so the test picks one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def listener(host: str, port: int) -> str:
    """The config spelling of a listener: "[::1]:port" for IPv6."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen_backlog(port: int) -> list[int]:
    """The accept-queue limit of every socket listening on TCP ``port``, from `ss`: for a listening socket, Send-Q
    is the backlog the kernel applied (the listen() argument, capped by net.core.somaxconn)."""
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=WAIT,
                         check=True).stdout
    return [int(line.split()[2]) for line in out.splitlines() if line.startswith("LISTEN")]


def connects(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT)
        return sock.connect_ex((host, port)) == 0


# ---- files ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Material:
    """What an administrator makes once, with the `acs` commands: CA and server certificate, secrets key, and a
    store with one enrolled phone (its issued password in ``password``)."""

    directory: Path
    password: str

    @property
    def ca(self) -> Path:
        return self.directory / "tls" / "ca.crt"

    @property
    def cert(self) -> Path:
        return self.directory / "tls" / "tls.crt"

    @property
    def key(self) -> Path:
        return self.directory / "tls" / "tls.key"

    @property
    def secrets_key(self) -> Path:
        return self.directory / "secrets.key"

    @property
    def enrolled_store(self) -> Path:
        return self.directory / "enrolled.sqlite"


def make_material(directory: Path) -> Material:
    """Run the administrator's first-time commands: `acs tls ca`, `acs secrets keygen`, `acs enrol`."""
    steps = [
        ["tls", "ca", "--host", "127.0.0.1", "--host", "::1", "--out", str(directory / "tls")],
        ["secrets", "keygen", "--out", str(directory / "secrets.key")],
    ]
    for args in steps:
        done = run_acs(*args)
        assert done.returncode == 0, done.stderr
    material = Material(directory, password="")
    (directory / "phones.csv").write_text(f"serial,oui,product_class\n{SERIAL},000B82,WP820\n")
    # enrol reads the same configuration file as serve (for the store and the realm).
    config = directory / "enrol.toml"
    config.write_text(toml_document(site_config(material, directory, cwmp={"https": ["127.0.0.1:7549"]},
                                                store={"path": str(material.enrolled_store)})))
    creds = directory / "creds.csv"
    done = run_acs("enrol", str(directory / "phones.csv"), "--config", str(config), "--out", str(creds))
    assert done.returncode == 0, done.stderr
    header, row = creds.read_text().splitlines()
    assert header == "serial,username,password"
    serial, username, password = row.split(",")
    assert (serial, username) == (SERIAL, SERIAL)
    return Material(directory, password)


def toml_document(sections: Mapping[str, Mapping[str, Any]]) -> str:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return toml_string(str(value))


def site_config(material: Material, state: Path, **sections: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A configuration like an administrator's: TLS, secrets key, a store in ``state`` (a copy of the enrolled one),
    with ``sections`` merged over it key by key."""
    state.mkdir(parents=True, exist_ok=True)
    store = state / "acs.sqlite"
    if not store.exists() and material.enrolled_store.exists():
        shutil.copyfile(material.enrolled_store, store)
    config: dict[str, dict[str, Any]] = {
        "cwmp": {"http": [], "https": []},
        "tls": {"cert": str(material.cert), "key": str(material.key)},
        "store": {"path": str(store)},
        "secrets": {"key_file": str(material.secrets_key)},
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


def client_tls(material: Material, *, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client that verifies the ACS against the generated CA (host name included)."""
    context = ssl.create_default_context(cafile=str(material.ca))
    if maximum is not None:
        context.maximum_version = maximum
    return context


# ---- systemd's side of the notification protocol --------------------------------------------------------------------


class FakeSystemd:
    """An AF_UNIX datagram socket in the abstract namespace (no path-length limit), given as $NOTIFY_SOCKET."""

    def __init__(self) -> None:
        self.address = f"@wp820-acs-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.address[1:])
        self.received: list[str] = []

    def wait_for(self, assignment: str, *, after: int = 0, alive: Callable[[], bool] = lambda: True) -> int:
        """Read notifications until one (among those from index ``after``) carries ``assignment``; its index.
        Gives up early once ``alive`` says the sender is gone and nothing is left to read."""
        deadline = time.monotonic() + WAIT
        while True:
            for index in range(after, len(self.received)):
                if assignment in self.received[index].split("\n"):
                    return index
            remaining = deadline - time.monotonic()
            running = alive()
            if remaining <= 0 or not running and not self._read_one(0.0):
                raise AssertionError(f"no {assignment} notification; received {self.received}")
            self._read_one(min(remaining, 0.5))

    def _read_one(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            self.received.append(self.sock.recv(65536).decode())
        except (TimeoutError, BlockingIOError):
            return False
        return True

    def assignments(self, start: int = 0, stop: int | None = None) -> list[str]:
        return [line for datagram in self.received[start:stop] for line in datagram.split("\n")]

    def close(self) -> None:
        self.sock.close()


# ---- the server process ---------------------------------------------------------------------------------------------


class ServerProcess:
    """`acs serve --config FILE` with its merged stdout/stderr read line by line on a thread."""

    def __init__(self, config: Path, *, args: Iterable[str] = (), env: Mapping[str, str] | None = None,
                 notify: FakeSystemd | None = None, command: list[str] | None = None,
                 pass_fds: tuple[int, ...] = ()) -> None:
        self.notify = notify or FakeSystemd()
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("ACS_", "LISTEN_", "WATCHDOG_"))}
        environment.update({"NOTIFY_SOCKET": self.notify.address, **(env or {})})
        self.process = subprocess.Popen(
            command or [ACS, "serve", "--config", str(config), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment,
            pass_fds=pass_fds, start_new_session=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def records(self) -> list[dict[str, Any]]:
        """The log as JSON objects (a line that is not JSON fails the test: services log JSON lines)."""
        with self._changed:
            lines = list(self.lines)
        return [json.loads(line) for line in lines]

    def wait_log(self, predicate: Callable[[dict[str, Any]], bool], *, after: int = 0) -> int:
        """Wait until a log record from index ``after`` satisfies ``predicate``; its index."""
        deadline = time.monotonic() + WAIT
        with self._changed:
            while True:
                for index in range(after, len(self.lines)):
                    if predicate(json.loads(self.lines[index])):
                        return index
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._reader.is_alive():
                    raise AssertionError("log line not found; the log:\n" + "\n".join(self.lines))
                self._changed.wait(remaining)

    def wait_event(self, event: str, *, after: int = 0) -> tuple[int, dict[str, Any]]:
        """Wait for a log record whose event is ``event``; its index and the record."""
        index = self.wait_log(lambda record: record.get("event") == event, after=after)
        with self._changed:
            return index, json.loads(self.lines[index])

    def wait_notify(self, assignment: str, *, after: int = 0) -> int:
        """Wait for a notification carrying ``assignment`` (see FakeSystemd.wait_for); fails with the log."""
        try:
            return self.notify.wait_for(assignment, after=after, alive=lambda: self.process.poll() is None)
        except AssertionError as exc:
            self._reader.join(timeout=1.0)
            raise AssertionError(f"{exc}; the log:\n" + "\n".join(self.lines)) from None

    def ready(self) -> ServerProcess:
        self.wait_notify("READY=1")
        return self

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def wait(self) -> int:
        """The exit code, once the process has ended and its output is read."""
        code = self.process.wait(timeout=WAIT)
        self._reader.join(timeout=WAIT)
        return code

    def stop(self) -> int:
        self.signal(signal.SIGTERM)
        return self.wait()

    def close(self) -> None:
        """Teardown: whatever happened, the child is gone afterwards."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT)
        self._reader.join(timeout=WAIT)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.notify.close()


# ---- a phone over real HTTP -----------------------------------------------------------------------------------------


class HttpCpe:
    """One persistent HTTP(S) connection, answering a 401 once with Digest, returning the session cookie."""

    def __init__(self, url: str, username: str, password: str, *, tls: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        if parts.scheme == "https":
            self.connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=WAIT, context=tls)
        else:
            self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=WAIT)
        self.digest = DigestClient(username, password)
        self.cookie: str | None = None

    def post(self, envelope: Envelope | None) -> tuple[int, Envelope | None]:
        body = codec.serialize(envelope) if envelope is not None else b""
        status, headers, data = self.send(body, None)
        if status == 401:
            challenges = headers.get_all("www-authenticate") or []
            status, headers, data = self.send(body, self.digest.authorization("POST", self.path, challenges))
        return status, codec.parse(data) if status == 200 and data else None

    def send(self, body: bytes, authorization: str | None = None) -> tuple[int, Any, bytes]:
        """One POST as given (no answer to a challenge): status, headers, body."""
        headers = {"Content-Type": 'text/xml; charset="utf-8"'}
        if authorization:
            headers["Authorization"] = authorization
        if self.cookie:
            headers["Cookie"] = self.cookie
        self.connection.request("POST", self.path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        for cookie in response.headers.get_all("set-cookie") or []:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, response.headers, data

    def close(self) -> None:
        self.connection.close()


def new_phone() -> Phone:
    state = PhoneState.factory(MODEL, serial=SERIAL, mac=SERIAL)
    phone = Phone(MODEL, state, clock=time.time, ip="127.0.0.1")
    phone.reboot()
    return phone


@dataclass
class PhoneSession:
    """One CWMP session of a simulated phone, stepped by the test."""

    cpe: HttpCpe
    phone: Phone
    pending: Envelope | None = None  # the ACS request the phone has not answered yet
    requests: list[m.Message] = field(default_factory=list)

    def open(self, events: tuple[str, ...] = ("1 BOOT",)) -> None:
        """Inform answered and the first ACS request received (``pending``; None if the ACS has nothing to ask)."""
        status, answer = self.cpe.post(Envelope(self.phone.start_session(events), id="inform"))
        assert status == 200 and answer is not None and isinstance(answer.body, m.InformResponse), (status, answer)
        self.phone.inform_delivered()
        for request in self.phone.pending_cpe_requests():
            status, _ = self.cpe.post(Envelope(request, id="cpe"))
            assert status == 200
            self.phone.cpe_request_acknowledged(request)
        self._receive(*self.cpe.post(None))

    def step(self) -> None:
        assert self.pending is not None and self.pending.body is not None
        reply = self.phone.handle(self.pending.body)
        self._receive(*self.cpe.post(Envelope(reply, id=self.pending.id)))

    def finish(self) -> list[str]:
        """Answer every ACS request until the ACS ends the session (204); the names of all requests."""
        while self.pending is not None:
            self.step()
        self.phone.session_ended(succeeded=True)
        return [request.NAME for request in self.requests]

    def _receive(self, status: int, answer: Envelope | None) -> None:
        assert status in (200, 204), status
        self.pending = answer if status == 200 else None
        if answer is not None and answer.body is not None:
            self.requests.append(answer.body)
