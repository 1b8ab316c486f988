"""Per-session throughput of the assembled ACS against a bare twisted.web + lxml floor measured in the same run.

Run by hand from the repository root (not part of the test suite):

    .venv/bin/python bench/session.py [--sessions N] [--concurrency C] [--rounds R] [--storm S] [--max-sessions M]
    .venv/bin/python bench/session.py --profile acs.pstats   # instead: cProfile of the ACS child (authentication on)
    .venv/bin/python bench/session.py --breakdown            # instead: the ACS's parts timed in process, no HTTP

One CWMP session is what a WP820 does on a periodic Inform that the ACS uses for a policy read and write:

    Inform (-> 401, Digest retry, when authentication is on) -> InformResponse
    empty POST -> GetParameterValues (40 WP820 paths)
    GetParameterValuesResponse -> SetParameterValues (10 values)
    SetParameterValuesResponse -> 204 No Content

Three servers, each a child process pinned to one core (CPU 0), answer the same sessions:

* floor: a bare twisted.web Resource that parses each request body with ``lxml.etree.fromstring`` and returns canned
  bytes (the answers the ACS would send); no session, no database, no authentication;
* acs: the real assembly (CwmpSite, CwmpResource, SessionHandler, DeviceAuthenticator, Store on a SQLite file in WAL
  mode, JSON logs at info level written to /dev/null) with authentication off;
* acs-auth: the same with Digest authentication on, every device enrolled with its own credential.

Both use ``Site(..., parsePOSTFormSubmission=False)`` and no access log. The ACS's work sources are the real task
queue (empty) followed by a bench-only source that sends the GetParameterValues and SetParameterValues with the store
work a policy does around them (values recorded; ParameterKey issued and write audited before the request leaves;
ParameterKey recorded on success).

The load generator runs in this process on the other core (CPU 1): C concurrent sessions, each on a new keep-alive
HTTP/1.1 connection to 127.0.0.1 (as phones open one per session), raw asyncio protocol. Each device is used by one
worker only, so no two sessions of one device overlap. Before the rounds, every device runs one unmeasured session on
each server (first contact, enrolment bookkeeping, caches). Then R rounds alternate floor, acs and acs-auth; each
reports sessions/s (wall clock) and server CPU per session (utime + stime of the server process from /proc, which
does not depend on how fast the client is). The best round of each is kept, as in bench/codec.py: a shared machine
only ever makes things slower.

Boot storm: S sessions (default 2,000) with "1 BOOT" started at once against acs-auth (listen backlog 1024; session
limit ``cwmp.max_sessions``, 500 unless ``--max-sessions``), each retrying a failed connection up to three times;
reports connection retries, 503 answers (session limit reached: the phone is told to come back after Retry-After) and
failures.

Every phase is bounded (``--time-limit`` seconds); unfinished sessions count as errors. The exit status is 1 when a
session failed or a storm connection needed a retry. No timing is asserted. Results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cwmp_models import codec  # noqa: E402
from cwmp_models import messages as m  # noqa: E402
from cwmp_models.datamodel import load_model  # noqa: E402
from cwmp_models.envelope import NS_CWMP_1_0, Envelope  # noqa: E402
from cwmp_models.httpauth_client import DigestClient  # noqa: E402

REALM = "wp820-acs"
CWMP_PATH = "/cwmp"
SERVER_CPU, CLIENT_CPU = 0, 1
GPV_COUNT = 40
ID_PLACEHOLDER = "@@ID@@"
_NOW = datetime(2026, 11, 27, 8, 30, 15, tzinfo=timezone.utc)

# What a hardening policy writes on a WP820: ten settings of the model, with values its constraints accept.
SPV_VALUES: list[tuple[str, Any]] = [
    ("Device.ManagementServer.PeriodicInformEnable", True),
    ("Device.ManagementServer.PeriodicInformInterval", 3600),
    ("Device.ManagementServer.X_GRANDSTREAM_ConnectionRequestPort", 7547),
    ("Device.ManagementServer.STUNEnable", False),
    ("Device.UserInterface.X_GRANDSTREAM_AccessMethod", "HTTPS"),
    ("Device.UserInterface.X_GRANDSTREAM_Port", 443),
    ("Device.UserInterface.X_GRANDSTREAM_DisableSSH", True),
    ("Device.UserInterface.X_GRANDSTREAM_SSHPort", 22),
    ("Device.Services.VoiceService.1.VoiceProfile.1.SIP.X_GRANDSTREAM_SipRegistration", True),
    ("Device.Services.VoiceService.1.VoiceProfile.2.SIP.X_GRANDSTREAM_SipRegistration", True),
]
SPV_PARAMETER_KEY = "bench-policy-1"


# ---- the messages of a session ------------------------------------------------------------------------------------


def serial_number(index: int) -> str:
    return f"c074ad{index:06x}"


@functools.cache
def gpv_request() -> m.GetParameterValues:
    """40 WP820 paths a policy reads: the model's non-secret parameters, in model order."""
    model = load_model("wp820")
    paths = [spec.path for spec in model.parameters.values() if spec.path and not spec.secret]
    if len(paths) < GPV_COUNT:
        raise SystemExit(f"the WP820 model has only {len(paths)} readable paths; the bench needs {GPV_COUNT}")
    return m.GetParameterValues(paths[:GPV_COUNT])


@functools.cache
def spv_request() -> m.SetParameterValues:
    model = load_model("wp820")
    items = []
    for path, value in SPV_VALUES:
        spec = model.by_path(path)
        if spec is None or not spec.writable:
            raise SystemExit(f"{path} is not a writable WP820 path of the model; update SPV_VALUES")
        spec.validate(value)
        items.append(m.ParameterValueStruct(path, value, spec.type))
    return m.SetParameterValues(items, SPV_PARAMETER_KEY)


def inform_bytes(serial: str, event: str) -> bytes:
    model = load_model("wp820")
    parameters = [m.ParameterValueStruct(spec.path, spec.default, spec.type) for spec in model.forced_inform()]
    inform = m.Inform(
        m.DeviceId("Grandstream", "000B82", "WP820", serial), [m.EventStruct(event)], 1, _NOW, 0, parameters
    )
    return codec.serialize(Envelope(inform, id="1", namespace=NS_CWMP_1_0))


def gpv_response_template() -> tuple[bytes, bytes]:
    """The GetParameterValuesResponse as the bytes before and after its cwmp:ID (the ACS chooses the ID)."""
    model = load_model("wp820")
    values = []
    for path in gpv_request().parameter_names:
        spec = model.by_path(path)
        assert spec is not None
        values.append(m.ParameterValueStruct(path, spec.default, spec.type))
    return _split_at_id(Envelope(m.GetParameterValuesResponse(values), id=ID_PLACEHOLDER, namespace=NS_CWMP_1_0))


def spv_response_template() -> tuple[bytes, bytes]:
    return _split_at_id(Envelope(m.SetParameterValuesResponse(0), id=ID_PLACEHOLDER, namespace=NS_CWMP_1_0))


def _split_at_id(envelope: Envelope) -> tuple[bytes, bytes]:
    before, placeholder, after = codec.serialize(envelope).partition(ID_PLACEHOLDER.encode())
    assert placeholder, "the placeholder ID must appear verbatim"
    return before, after


# ---- the servers (child processes) --------------------------------------------------------------------------------


class BenchWorkSource:
    """One GetParameterValues, then one SetParameterValues, per session, with a policy's store work around them."""

    name = "bench"

    def __init__(self, ctx: Any) -> None:
        self._steps: list[Callable[[Any], Any]] = [self._read, self._write]

    def next_step(self, ctx: Any) -> Any:
        return self._steps.pop(0)(ctx) if self._steps else None

    def on_transfer_complete(self, ctx: Any, message: m.TransferComplete) -> bool:
        return False

    def _read(self, ctx: Any) -> Any:
        from acs.work import Step

        def replied(reply: m.Message) -> None:
            if isinstance(reply, m.GetParameterValuesResponse):
                ctx.store.parameters.record_values(
                    ctx.device.id, [(i.name, i.value, i.type) for i in reply.parameter_list], at=ctx.now,
                    session_id=ctx.session_id,
                )

        return Step(gpv_request(), on_reply=replied, purpose="bench: read")

    def _write(self, ctx: Any) -> Any:
        from acs.work import Step

        request = spv_request()

        def sent(request_id: str) -> None:
            ctx.store.policy_state.issue_parameter_key(ctx.device.id, SPV_PARAMETER_KEY)
            ctx.store.audit.record(
                "acs:bench", "set-parameter-values", device_id=ctx.device.id,
                detail={"values": {i.name: i.value for i in request.parameter_list}, "request": request_id},
                reason="bench policy",
            )

        def replied(reply: m.Message) -> None:
            if not isinstance(reply, m.Fault):
                ctx.store.devices.set_parameter_key(ctx.device.id, SPV_PARAMETER_KEY)

        return Step(request, on_sent=sent, on_reply=replied, purpose="bench: write")


def acs_site(db_path: str, *, auth: bool, max_sessions: int | None) -> Any:
    from twisted.web import resource

    from acs.device_auth import DeviceAuthenticator
    from acs.handler import SessionHandler
    from acs.store import Store
    from acs.tasks import TaskQueueSource
    from acs.web.cwmp import CwmpLimits, CwmpResource, CwmpSite

    store = Store(db_path)
    authenticator = DeviceAuthenticator(store, enabled=auth, realm=REALM)
    handler = SessionHandler(store, work=[TaskQueueSource, BenchWorkSource], auth_disabled=not auth)
    limits = CwmpLimits() if max_sessions is None else CwmpLimits(max_sessions=max_sessions)
    cwmp = CwmpResource(handler, authenticator, limits=limits)
    root = resource.Resource()
    root.putChild(CWMP_PATH.strip("/").encode(), cwmp)
    site = CwmpSite(root, max_body_bytes=limits.max_body_bytes)
    cwmp.attach(site)
    return site


def floor_site() -> Any:
    """A bare responder: lxml parses each request, the answer is canned; same Site options as the ACS."""
    from lxml import etree
    from twisted.web import resource, server

    inform_answer = codec.serialize(Envelope(m.InformResponse(1), id="1", namespace=NS_CWMP_1_0))
    gpv = codec.serialize(Envelope(gpv_request(), id="acs-1", namespace=NS_CWMP_1_0))
    spv = codec.serialize(Envelope(spv_request(), id="acs-2", namespace=NS_CWMP_1_0))
    ns = "{" + NS_CWMP_1_0 + "}"
    answers = {f"{ns}Inform": inform_answer, f"{ns}GetParameterValuesResponse": spv,
               f"{ns}SetParameterValuesResponse": None}

    class Floor(resource.Resource):
        isLeaf = True

        def render_POST(self, request: server.Request) -> bytes:
            body = request.content.read()
            if body.strip():
                tag = etree.fromstring(body)[-1][0].tag  # the first element of soap:Body
                answer = answers[tag]
                if answer is inform_answer:
                    request.addCookie(b"acs_session", b"floor", path=b"/", httpOnly=True)
            else:
                answer = gpv
            if answer is None:
                request.setResponseCode(204)
                return b""
            request.setHeader(b"content-type", b'text/xml; charset="utf-8"')
            request.setHeader(b"soapaction", b"")
            return answer

    class QuietSite(server.Site):
        def log(self, request: server.Request) -> None:
            pass

    root = resource.Resource()
    root.putChild(CWMP_PATH.strip("/").encode(), Floor())
    return QuietSite(root, parsePOSTFormSubmission=False)


def serve(kind: str, db_path: str, profile_path: str | None, max_sessions: int | None) -> None:
    """Child process: listen on 127.0.0.1, print the port, serve until stdin closes; 'profile' on stdin starts
    cProfile (written to ``profile_path`` at the end)."""
    import cProfile

    from twisted.internet import reactor, stdio
    from twisted.protocols.basic import LineReceiver

    from acs.logs import configure_logging

    _pin_to_cpu(SERVER_CPU)
    _raise_open_files_limit()
    configure_logging("json", "info", stream=open(os.devnull, "w"))
    site = floor_site() if kind == "floor" else acs_site(db_path, auth=kind == "acs-auth", max_sessions=max_sessions)
    port = reactor.listenTCP(0, site, interface="127.0.0.1", backlog=1024)
    profiler = cProfile.Profile()

    class Control(LineReceiver):
        delimiter = b"\n"

        def connectionMade(self) -> None:
            self.sendLine(f"listening {port.getHost().port}".encode())

        def lineReceived(self, line: bytes) -> None:
            if line == b"profile":
                profiler.enable()

        def connectionLost(self, reason: Any = None) -> None:
            reactor.stop()

    stdio.StandardIO(Control())
    reactor.run()
    profiler.disable()
    if profile_path:
        profiler.dump_stats(profile_path)


def _pin_to_cpu(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu in os.sched_getaffinity(0) and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {cpu})


def _raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


@dataclass
class ServerProcess:
    kind: str
    db_path: str
    profile_path: str | None = None
    max_sessions: int | None = None
    process: subprocess.Popen = field(init=False)
    port: int = field(init=False)

    def start(self) -> "ServerProcess":
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", self.kind, "--db", self.db_path]
        if self.profile_path:
            command += ["--profile", self.profile_path]
        if self.max_sessions is not None:
            command += ["--max-sessions", str(self.max_sessions)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.process.stdout.readline().decode().split()
        if line[:1] != ["listening"]:
            self.stop()
            raise SystemExit(f"the {self.kind} server did not start (exit status {self.process.poll()})")
        self.port = int(line[1])
        return self

    def send(self, command: str) -> None:
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (all its threads)."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def enrol_devices(path: str, devices: int) -> dict[str, DigestClient]:
    """A fresh store with ``devices`` phones enrolled, each with its own credential; returns each phone's client."""
    from acs.credentials import issue
    from acs.store import Store

    store = Store(path)
    clients = {}
    with store.transaction():
        for index in range(devices):
            serial = serial_number(index)
            store.credentials.enrol(serial, by="bench", oui="000B82", product_class="WP820")
            username, password = issue(store, serial, realm=REALM)
            clients[serial] = DigestClient(username, password)
    store.close()
    return clients


# ---- the load generator -------------------------------------------------------------------------------------------


class SessionError(Exception):
    """A session that did not go as a phone expects; the message is the reason counted."""


@dataclass
class Response:
    status: int
    headers: dict[bytes, list[bytes]]
    body: bytes


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 client connection, one request at a time (all a CWMP session needs)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(SessionError("connection closed by the server"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        headers: dict[bytes, list[bytes]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        if b"transfer-encoding" in headers:
            self.waiter.set_exception(SessionError("chunked response (not expected from the servers under test)"))
            return
        total = end + 4 + int(headers.get(b"content-length", [b"0"])[0])
        if len(self.buffer) < total:
            return
        body = bytes(self.buffer[end + 4:total])
        del self.buffer[:total]
        self.waiter.set_result(Response(int(lines[0].split(b" ", 2)[1]), headers, body))

    async def post(self, body: bytes, headers: bytes = b"") -> Response:
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(
            b"POST " + CWMP_PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Type: text/xml; charset="utf-8"\r\nContent-Length: ' + str(len(body)).encode() + b"\r\n"
            + headers + b"\r\n" + body
        )
        return await self.waiter


_ID = re.compile(rb"<cwmp:ID[^>]*>([^<]*)</cwmp:ID>")


@dataclass
class Phones:
    """Everything a simulated phone sends, prepared once so the client spends its time on the exchange."""

    informs: dict[str, bytes]
    storm_informs: dict[str, bytes]
    clients: dict[str, DigestClient]
    gpv_response: tuple[bytes, bytes]
    spv_response: tuple[bytes, bytes]

    @classmethod
    def build(cls, serials: list[str], storm_serials: list[str], clients: dict[str, DigestClient]) -> "Phones":
        return cls(
            {serial: inform_bytes(serial, "2 PERIODIC") for serial in serials},
            {serial: inform_bytes(serial, "1 BOOT") for serial in storm_serials},
            clients, gpv_response_template(), spv_response_template(),
        )


@dataclass
class Tally:
    sessions: int = 0
    connect_retries: int = 0
    busy: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


async def connect(port: int, tally: Tally, retries: int) -> tuple[asyncio.Transport, HttpConnection]:
    loop = asyncio.get_running_loop()
    for attempt in range(retries + 1):
        try:
            return await loop.create_connection(HttpConnection, "127.0.0.1", port)  # type: ignore[return-value]
        except OSError as exc:
            if attempt == retries:
                raise SessionError(f"connect failed: {exc.strerror or exc}") from None
            tally.connect_retries += 1
            await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


async def one_session(port: int, phones: Phones, serial: str, inform: bytes, tally: Tally, retries: int = 0) -> None:
    transport, conn = await connect(port, tally, retries)
    try:
        reply = await conn.post(inform)
        if reply.status == 401:
            client = phones.clients.get(serial)
            if client is None:
                raise SessionError("401 for a device without credentials")
            challenges = [value.decode() for value in reply.headers.get(b"www-authenticate", [])]
            authorization = client.authorization("POST", CWMP_PATH, challenges)
            reply = await conn.post(inform, b"Authorization: " + authorization.encode() + b"\r\n")
        if reply.status == 503:
            tally.busy += 1
            return
        _expect(reply, 200, b"InformResponse")
        cookie = b"Cookie: " + reply.headers[b"set-cookie"][0].split(b";", 1)[0] + b"\r\n"
        reply = await conn.post(b"", cookie)
        _expect(reply, 200, b"GetParameterValues")
        before, after = phones.gpv_response
        reply = await conn.post(before + _request_id(reply) + after, cookie)
        _expect(reply, 200, b"SetParameterValues")
        before, after = phones.spv_response
        reply = await conn.post(before + _request_id(reply) + after, cookie)
        _expect(reply, 204, b"")
        tally.sessions += 1
    finally:
        transport.close()


def _expect(reply: Response, status: int, rpc: bytes) -> None:
    if reply.status != status:
        raise SessionError(f"HTTP {reply.status} where {status} was expected ({reply.body[:60]!r})")
    if rpc and b":" + rpc + b">" not in reply.body:
        raise SessionError(f"no {rpc.decode()} in the answer")


def _request_id(reply: Response) -> bytes:
    found = _ID.search(reply.body)
    if found is None:
        raise SessionError("no cwmp:ID in the ACS request")
    return found.group(1)


async def _guarded(session: Any, tally: Tally) -> None:
    try:
        await session
    except SessionError as exc:
        tally.error(str(exc))
    except Exception as exc:  # anything else a server's answer caused is counted, not allowed to stop a worker
        tally.error(f"{type(exc).__name__}: {exc}")


async def run_load(port: int, phones: Phones, serials: list[str], sessions: int, concurrency: int,
                   time_limit: float) -> Tally:
    """``sessions`` sessions by ``concurrency`` workers; worker w owns serials[w::concurrency], in turn."""
    tally = Tally()
    counts = [sessions // concurrency + (w < sessions % concurrency) for w in range(concurrency)]

    async def worker(index: int) -> None:
        own = serials[index::concurrency]
        for n in range(counts[index]):
            serial = own[n % len(own)]
            await _guarded(one_session(port, phones, serial, phones.informs[serial], tally), tally)

    tasks = [asyncio.ensure_future(worker(w)) for w in range(concurrency)]
    done, pending = await asyncio.wait(tasks, timeout=time_limit)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        tally.error(f"time limit of {time_limit:.0f} s reached")
    return tally


async def run_storm(port: int, phones: Phones, time_limit: float) -> Tally:
    """Every phone of the storm starts its session at the same moment; a failed connect is retried 3 times."""
    tally = Tally()
    tasks = [
        asyncio.ensure_future(_guarded(one_session(port, phones, serial, inform, tally, retries=3), tally))
        for serial, inform in phones.storm_informs.items()
    ]
    done, pending = await asyncio.wait(tasks, timeout=time_limit)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        tally.errors[f"unfinished after {time_limit:.0f} s"] = len(pending)
    return tally


# ---- measurement --------------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    rate: float  # sessions/s, wall clock
    server_us: float  # server CPU per completed session
    server_share: float  # server CPU / wall time: below 1.0, the server waited (or other work had its core)
    client_busy: float  # client CPU / wall time (near 1.0: the client, not the server, set the pace)
    errors: int


def measure(server: ServerProcess, load: Callable[[], Any]) -> tuple[Tally, float, float, float]:
    cpu_before, client_before, wall_before = server.cpu_seconds(), time.process_time(), time.perf_counter()
    tally = asyncio.run(load())
    wall = time.perf_counter() - wall_before
    return tally, wall, server.cpu_seconds() - cpu_before, time.process_time() - client_before


def run_round(server: ServerProcess, phones: Phones, serials: list[str], options: argparse.Namespace) -> Measurement:
    tally, wall, server_cpu, client_cpu = measure(
        server, lambda: run_load(server.port, phones, serials, options.sessions, options.concurrency,
                                 options.time_limit)
    )
    if tally.errors:
        print(f"  {server.kind}: errors {tally.errors}", file=sys.stderr)
    done = max(tally.sessions, 1)
    return Measurement(tally.sessions / wall, server_cpu / done * 1e6, server_cpu / wall, client_cpu / wall,
                       tally.error_count)


def warm_up(server: ServerProcess, phones: Phones, serials: list[str], options: argparse.Namespace) -> None:
    tally = asyncio.run(run_load(server.port, phones, serials, len(serials), options.concurrency, options.time_limit))
    if tally.errors:
        raise SystemExit(f"{server.kind}: warm-up sessions failed: {tally.errors}")


def profile(options: argparse.Namespace, workdir: Path, phones: Phones, serials: list[str]) -> int:
    import pstats

    server = ServerProcess("acs-auth", str(workdir / "acs-auth.sqlite"), str(Path(options.profile).resolve()),
                           options.max_sessions)
    server.start()
    try:
        warm_up(server, phones, serials, options)
        server.send("profile")
        tally = asyncio.run(run_load(server.port, phones, serials, options.sessions, options.concurrency,
                                     options.time_limit))
    finally:
        server.stop()
    print(f"profiled {tally.sessions} sessions of acs-auth ({tally.error_count} errors) -> {options.profile}")
    stats = pstats.Stats(options.profile)
    per_session = 1e6 / max(tally.sessions, 1)
    print("own time by component (cProfile, wall clock, inflated by the profiler; shares matter, not totals)")
    components = _by_component(stats)
    total = sum(components.values())
    for name, seconds in sorted(components.items(), key=lambda item: -item[1])[:20]:
        print(f"  {name:44} {seconds * per_session:8.0f} us/session {seconds / total:6.1%}")
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(r"acs/|cwmp_models/", 30)
    return 0


def _by_component(stats: Any) -> dict[str, float]:
    """Own time summed per package (twisted, structlog), per project module, or per C method (sqlite, socket)."""
    root = str(Path(__file__).resolve().parent.parent) + "/"
    totals: dict[str, float] = {}
    for (filename, _, function), (_, _, own, _, _) in stats.stats.items():
        if "site-packages/" in filename:
            name = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        elif filename.startswith(root):
            name = filename[len(root):]
        elif filename == "~":
            found = re.search(r"of '(\w+)\.", function)
            name = f"C: {found.group(1)}" if found else "C: other built-ins"
        else:
            name = "standard library"
        totals[name] = totals.get(name, 0.0) + own
    return totals


def breakdown(options: argparse.Namespace, workdir: Path) -> int:
    """In process, without HTTP: what the parts of one ACS session cost (process CPU time, best of repeats)."""
    import itertools

    from lxml import etree

    from acs.device_auth import DeviceAuthenticator
    from acs.handler import SessionHandler
    from acs.logs import configure_logging
    from acs.store import Store
    from acs.tasks import TaskQueueSource
    from acs.work import Step

    class ReadWriteOnly(BenchWorkSource):
        """The same two requests without the store work around them."""

        def next_step(self, ctx: Any) -> Any:
            step = super().next_step(ctx)
            return None if step is None else Step(step.request, purpose=step.purpose)

    number, repeat = 300, 7
    devnull = open(os.devnull, "w")
    configure_logging("json", "info", stream=devnull)
    serials = [serial_number(i) for i in range(options.devices)]
    clients = enrol_devices(str(workdir / "parts.sqlite"), options.devices)
    informs = [inform_bytes(serial, "2 PERIODIC") for serial in serials]
    gpv_before, gpv_after = gpv_response_template()
    spv_before, spv_after = spv_response_template()
    requests = [informs[0], gpv_before + b"acs-1" + gpv_after, spv_before + b"acs-2" + spv_after]
    answers = [Envelope(m.InformResponse(1), id="1", namespace=NS_CWMP_1_0),
               Envelope(gpv_request(), id="acs-1", namespace=NS_CWMP_1_0),
               Envelope(spv_request(), id="acs-2", namespace=NS_CWMP_1_0)]
    parsed_informs = [codec.parse(data) for data in informs]
    gpv_reply, spv_reply = codec.parse(requests[1]).body, codec.parse(requests[2]).body

    def run_once(function: Callable[[], Any]) -> float:
        start = time.process_time()
        for _ in range(number):
            function()
        return time.process_time() - start

    def best_us(function: Callable[[], Any]) -> float:
        run_once(function)  # warm-up
        return min(run_once(function) for _ in range(repeat)) / number * 1e6

    def handler_session(store_path: str, work: list[Any]) -> Callable[[], None]:
        handler = SessionHandler(Store(store_path), work=work)
        cycle = itertools.cycle(parsed_informs)

        def session() -> None:
            active = handler.new_session(remote_ip="127.0.0.1")
            handler.handle(active, next(cycle))
            request = handler.handle(active, None)
            request = handler.handle(active, Envelope(gpv_reply, id=request.id, namespace=NS_CWMP_1_0))
            if handler.handle(active, Envelope(spv_reply, id=request.id, namespace=NS_CWMP_1_0)) is not None:
                raise SystemExit("the bench session did not end after the SetParameterValuesResponse")

        return session

    rows = [
        ("lxml.etree.fromstring of the 3 request bodies (the floor's parsing)",
         best_us(lambda: [etree.fromstring(data) for data in requests])),
        ("codec.parse of the 3 request bodies", best_us(lambda: [codec.parse(data) for data in requests])),
        ("  of which the Inform", best_us(lambda: codec.parse(requests[0]))),
        ("codec.serialize of the 3 answers", best_us(lambda: [codec.serialize(answer) for answer in answers])),
        ("SessionHandler + Store (SQLite file), logs at info",
         best_us(handler_session(str(workdir / "h1.sqlite"), [TaskQueueSource, BenchWorkSource]))),
        ("  the same, store in memory",
         best_us(handler_session(":memory:", [TaskQueueSource, BenchWorkSource]))),
        ("  the same, without the task queue source",
         best_us(handler_session(str(workdir / "h2.sqlite"), [BenchWorkSource]))),
        ("  the same, without the bench source's store work",
         best_us(handler_session(str(workdir / "h3.sqlite"), [TaskQueueSource, ReadWriteOnly]))),
    ]
    configure_logging("json", "warning", stream=devnull)
    rows.append(("  the same, logs at warning (no info lines)",
                 best_us(handler_session(str(workdir / "h4.sqlite"), [TaskQueueSource, BenchWorkSource]))))

    store = Store(str(workdir / "parts.sqlite"))
    authenticator = DeviceAuthenticator(store, enabled=True, realm=REALM)
    device = m.DeviceId("Grandstream", "000B82", "WP820", serials[0])
    client = clients[serials[0]]
    # Each answer to a challenge is good once (nonce-count replay protection): prepare one per call.
    answered = iter([client.authorization("POST", CWMP_PATH, authenticator.challenge(is_tls=False))
                     for _ in range(number * (repeat + 1) + 1)])

    def authenticate() -> Any:
        outcome = authenticator.authenticate("POST", CWMP_PATH, next(answered), is_tls=False)
        if outcome.identity is None:
            raise SystemExit(f"the bench's Digest answer was refused: {outcome.reason}")
        return outcome.identity

    identity = authenticate()
    rows += [
        ("DeviceAuthenticator.challenge (the 401's headers)", best_us(lambda: authenticator.challenge(is_tls=False))),
        ("DeviceAuthenticator.authenticate (Digest check, credential lookups)",
         best_us(authenticate)),
        ("DeviceAuthenticator.admit", best_us(lambda: authenticator.admit(identity, device, remote_ip="127.0.0.1"))),
    ]
    print(f"python {platform.python_version()}; in process, best of {repeat} x {number}, process CPU time")
    for label, us in rows:
        print(f"{label:72} {us:8.1f} us")
    return 0


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--sessions", type=int, default=3000, help="measured sessions per round (default 3000)")
    arguments.add_argument("--concurrency", type=int, default=32, help="sessions in flight (default 32)")
    arguments.add_argument("--devices", type=int, default=1000, help="distinct phones (default 1000)")
    arguments.add_argument("--rounds", type=int, default=3, help="rounds; the best of each is kept (default 3)")
    arguments.add_argument("--storm", type=int, default=2000, help="boot-storm sessions, 0 to skip (default 2000)")
    arguments.add_argument("--time-limit", type=float, default=120.0, help="seconds per phase (default 120)")
    arguments.add_argument("--max-sessions", type=int, help="the ACS's session limit (default: CwmpLimits', 500)")
    arguments.add_argument("--profile", metavar="FILE", help="profile acs-auth into FILE instead of benchmarking")
    arguments.add_argument("--breakdown", action="store_true", help="time the ACS's parts in process instead")
    arguments.add_argument("--serve", choices=("floor", "acs", "acs-auth"), help=argparse.SUPPRESS)
    arguments.add_argument("--db", help=argparse.SUPPRESS)
    options = arguments.parse_args()
    if options.serve:
        serve(options.serve, options.db, options.profile, options.max_sessions)
        return 0
    if options.devices < options.concurrency:
        arguments.error("--devices must be at least --concurrency (one session per device at a time)")

    _pin_to_cpu(CLIENT_CPU)
    _raise_open_files_limit()
    with tempfile.TemporaryDirectory(prefix="bench-session-") as tmp:
        workdir = Path(tmp)
        if options.breakdown:
            return breakdown(options, workdir)
        serials = [serial_number(i) for i in range(options.devices)]
        clients = enrol_devices(str(workdir / "acs-auth.sqlite"), max(options.devices, options.storm))
        phones = Phones.build(serials, [serial_number(i) for i in range(options.storm)], clients)
        if options.profile:
            return profile(options, workdir, phones, serials)
        return benchmark(options, workdir, phones, serials)


def benchmark(options: argparse.Namespace, workdir: Path, phones: Phones, serials: list[str]) -> int:
    kinds = ("floor", "acs", "acs-auth")
    servers = [ServerProcess(kind, str(workdir / f"{kind}.sqlite"), max_sessions=options.max_sessions)
               for kind in kinds]
    results: dict[str, list[Measurement]] = {kind: [] for kind in kinds}
    storm: tuple[Tally, float] | None = None
    try:
        for server in servers:
            server.start()
            warm_up(server, phones, serials, options)
        for round_number in range(options.rounds):
            for server in servers:
                results[server.kind].append(run_round(server, phones, serials, options))
            print(f"round {round_number + 1}/{options.rounds}: " + ", ".join(
                f"{kind} {results[kind][-1].rate:,.0f}/s {results[kind][-1].server_us:,.0f} us" for kind in kinds
            ), file=sys.stderr)
        if options.storm:
            acs_auth = servers[2]
            tally, wall, _, _ = measure(acs_auth, lambda: run_storm(acs_auth.port, phones, options.time_limit))
            storm = (tally, wall)
    finally:
        for server in servers:
            server.stop()
    report(options, results, storm)
    failed = any(r.errors for rounds in results.values() for r in rounds)
    return 1 if failed or (storm is not None and (storm[0].error_count or storm[0].connect_retries)) else 0


def report(options: argparse.Namespace, results: dict[str, list[Measurement]], storm: tuple[Tally, float] | None
           ) -> None:
    import lxml.etree
    import twisted

    print(f"python {platform.python_version()}, twisted {twisted.__version__}, lxml {lxml.etree.__version__}, "
          f"nproc {os.cpu_count()}; server on CPU {SERVER_CPU}, client on CPU {CLIENT_CPU}")
    if options.rounds:
        print(f"{options.rounds} rounds x {options.sessions} sessions, concurrency {options.concurrency}, "
              f"{options.devices} devices; best round of each")
        floor_rate = max(r.rate for r in results["floor"])
        floor_us = min(r.server_us for r in results["floor"])
        header = (f"{'server':10} {'sessions/s':>10} {'x floor':>8} {'CPU us/session':>15} {'x floor':>8} "
                  f"{'per core':>9} {'server busy':>12} {'client busy':>12} {'errors':>7}")
        print(header)
        print("-" * len(header))
        for kind, rounds in results.items():
            rate = max(r.rate for r in rounds)
            us = min(r.server_us for r in rounds)
            print(f"{kind:10} {rate:10,.0f} {rate / floor_rate:8.2f} {us:15,.0f} {floor_us / us:8.2f} {1e6 / us:9,.0f} "
                  f"{max(r.server_share for r in rounds):12.2f} {max(r.client_busy for r in rounds):12.2f} "
                  f"{sum(r.errors for r in rounds):7}")
        print("x floor: sessions/s over the floor's, and the floor's CPU per session over this one's (the steadier "
              "ratio); per core = 1e6 / CPU us; busy = CPU / wall time")
    if storm is not None:
        tally, wall = storm
        from acs.web.cwmp import CwmpLimits

        limit = options.max_sessions or f"{CwmpLimits().max_sessions} (default)"
        print(f"boot storm: {options.storm} sessions at once against acs-auth (session limit {limit}, backlog 1024): "
              f"{tally.sessions} completed in {wall:.2f} s, {tally.busy} answered 503 + Retry-After, "
              f"{tally.connect_retries} connection retries, {tally.error_count} failed {tally.errors or ''}")


if __name__ == "__main__":
    sys.exit(main())
