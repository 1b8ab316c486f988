"""A minimal scripted ACS: just enough of a real one to drive simulated phones in tests and benchmarks.

``MiniAcs`` is a leaf ``twisted.web`` resource. It does what a careful ACS must do on the wire and nothing else:

* authenticates every request with HTTP Digest (``cwmp_models.httpauth_server.DigestVerifier``; a stale or replayed
  nonce is answered with ``stale=true`` so stacks that reuse one nonce recover), Basic only over TLS
  (``offer_digest=False`` offers Basic alone, as some ACSs do on HTTPS);
* tracks a session by its cookie, and by its TCP connection for stacks that never return cookies; an Inform always
  starts a new session;
* answers the Inform with ``MaxEnvelopes`` 1 in the namespace the device used (``UseCWMPVersion`` when it offered
  ``SupportedCWMPVersions``), CPE requests (TransferComplete, GetRPCMethods; anything else gets Fault 8000), then
  replays the device's queue of ACS requests one per HTTP response and records each answer; ``204`` ends the session;
* refuses new sessions on demand (``refuse``: 503 + Retry-After, or any status) to exercise retry behaviour;
* serves files for Download (``/files/<name>``) and accepts Upload PUTs (``/uploads/<name>``), each optionally behind
  its own credentials.

Scripting::

    acs = MiniAcs(credentials={"user": "pass"})
    acs.enqueue("c074ad000001", GetParameterValues(["Device.DeviceInfo."]), hold_until(d), ...)
    port = reactor.listenTCP(0, acs.site(), backlog=1024, interface="127.0.0.1")
    session = (await acs.wait_sessions(1))[0]     # AcsSession: inform, exchanges, cpe_requests, ...

A queued step is a ``Message`` (sent as is) or a callable ``step(session) -> Message | None`` that may return a
Deferred: the HTTP response waits for it, which holds the session open. ``None`` skips the step. ``on_inform``
(``session -> iterable of steps``) adds steps for every session, e.g. for a benchmark's standard session.
"""

from __future__ import annotations

import secrets
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.http import Request
from twisted.web.resource import Resource

from cwmp_models import codec
from cwmp_models import messages as m
from cwmp_models.envelope import Envelope, negotiate_version
from cwmp_models.httpauth import ha1
from cwmp_models.httpauth_server import AuthResult, DigestVerifier

__all__ = ["AcsSession", "Exchange", "MiniAcs", "Step", "COOKIE_NAME"]

COOKIE_NAME = b"mini_acs_session"
ACS_METHODS = ["Inform", "TransferComplete", "GetRPCMethods"]

Step = m.Message | Callable[["AcsSession"], "m.Message | None | defer.Deferred[m.Message | None]"]


@dataclass
class Exchange:
    """One ACS request and what the phone answered (its response or a Fault)."""

    request: m.Message
    response: m.Message | None = None


@dataclass(eq=False)
class AcsSession:
    number: int
    tls: bool
    client_ip: str = ""
    inform: m.Inform | None = None
    namespace: str = ""
    protocol_version: str = ""
    auth_schemes: set[str] = field(default_factory=set)
    username: str = ""  # who authenticated the session's requests
    cookie_returned: int = 0  # later requests of the session that carried the session cookie
    tracked_by_connection: int = 0  # later requests recognised only by their TCP connection
    stale_nonce_retries: int = 0  # requests refused as stale/replayed and then authenticated afresh
    cpe_requests: list[m.Message] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)  # raw request bodies, when the ACS keeps them
    errors: list[str] = field(default_factory=list)
    complete: bool = False
    _outstanding: tuple[str, Exchange] | None = None
    _cookie: bytes = b""
    _acs_turn: bool = False
    _channels: list[object] = field(default_factory=list)

    @property
    def serial(self) -> str:
        return self.inform.device_id.serial_number if self.inform else ""

    @property
    def events(self) -> list[tuple[str, str]]:
        return [(e.event_code, e.command_key) for e in self.inform.event] if self.inform else []

    @property
    def event_codes(self) -> list[str]:
        return [code for code, _ in self.events]

    def response_to(self, request_type: type[m.Message]) -> m.Message | None:
        """The phone's answer to the first request of this type in the session."""
        for exchange in self.exchanges:
            if isinstance(exchange.request, request_type):
                return exchange.response
        return None


@dataclass
class _File:
    data: bytes
    username: str | None
    password: str | None


class _QuietSite(server.Site):
    """No access log: thousands of phones would drown any real output, and formatting costs CPU per request."""

    def log(self, request: Request) -> None:
        pass


class MiniAcs(Resource):
    isLeaf = True

    def __init__(
        self,
        *,
        credentials: Mapping[str, str] | None = None,
        realm: str = "mini-acs",
        algorithms: Iterable[str] = ("SHA-256", "MD5"),
        on_inform: Callable[[AcsSession], Iterable[Step]] | None = None,
        xml_declaration: bool = False,
        keep_bodies: bool = False,
        offer_digest: bool = True,
        verifier: DigestVerifier | None = None,
    ) -> None:
        super().__init__()
        self._credentials = dict(credentials or {})
        self._verifier = verifier or DigestVerifier(realm, algorithms=tuple(algorithms))
        self._ha1_cache: dict[tuple[str, str, str], str] = {}
        self._on_inform = on_inform
        self._xml_declaration = xml_declaration
        self._keep_bodies = keep_bodies
        self._offer_digest = offer_digest
        self._queues: dict[str, deque[Step]] = {}
        self._by_cookie: dict[bytes, AcsSession] = {}
        self._by_channel: dict[object, AcsSession] = {}
        self._refusals: deque[tuple[int, int | None]] = deque()
        self._files: dict[str, _File] = {}
        self._upload_credentials: tuple[str, str] | None = None
        self._waiters: list[tuple[int, defer.Deferred[list[AcsSession]]]] = []
        self._ids = 0
        self.sessions: list[AcsSession] = []
        self.completed: list[AcsSession] = []
        self.uploads: dict[str, bytes] = {}
        self.downloads: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()

    # -- scripting ---------------------------------------------------------------------------------------------

    def site(self) -> server.Site:
        # parsePOSTFormSubmission=False: CWMP bodies are XML, never forms, and parsing them as such costs ~100 µs.
        site = _QuietSite(self, parsePOSTFormSubmission=False)
        site.noisy = False
        return site

    def set_credentials(self, username: str, password: str) -> None:
        self._credentials[username] = password

    def enqueue(self, serial: str, *steps: Step) -> None:
        """Queue ACS requests for the device; it gets them the next times the ACS has the turn."""
        self._queues.setdefault(serial, deque()).extend(steps)

    def refuse(self, count: int = 1, *, status: int = 503, retry_after: int | None = None) -> None:
        """Refuse the next ``count`` attempts to open a session with ``status`` (and Retry-After when given)."""
        self._refusals.extend([(status, retry_after)] * count)

    def add_file(self, name: str, data: bytes, *, username: str | None = None, password: str | None = None) -> str:
        """Serve ``data`` at ``/files/<name>`` (behind credentials when given); returns the path."""
        self._files[name] = _File(data, username, password)
        return f"/files/{name}"

    def require_upload_credentials(self, username: str, password: str) -> None:
        self._upload_credentials = (username, password)

    def wait_sessions(self, count: int) -> defer.Deferred[list[AcsSession]]:
        """Fires with the completed sessions once at least ``count`` sessions have ended with 204."""
        d: defer.Deferred[list[AcsSession]] = defer.Deferred()
        self._waiters.append((count, d))
        self._fire_waiters()
        return d

    def sessions_of(self, serial: str) -> list[AcsSession]:
        return [s for s in self.completed if s.serial == serial]

    # -- HTTP --------------------------------------------------------------------------------------------------

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        path = request.path.decode("utf-8", "replace")
        if not path.startswith("/files/"):
            return _status(request, 405)
        entry = self._files.get(path.removeprefix("/files/"))
        if entry is None:
            return _status(request, 404)
        if entry.username is not None and not self._file_auth_ok(request, entry.username, entry.password or ""):
            return b""
        self.downloads[path.removeprefix("/files/")] += 1
        request.setHeader(b"content-type", b"application/octet-stream")
        return entry.data

    def render_PUT(self, request: Request) -> bytes:  # noqa: N802
        path = request.path.decode("utf-8", "replace")
        if not path.startswith("/uploads/"):
            return _status(request, 405)
        if self._upload_credentials is not None and not self._file_auth_ok(request, *self._upload_credentials):
            return b""
        self.uploads[path.removeprefix("/uploads/")] = request.content.read()
        return _status(request, 200)

    def render_POST(self, request: Request) -> bytes | int:  # noqa: N802
        self.counters["requests"] += 1
        body = request.content.read()
        session = self._find_session(request)
        if session is None and self._refusals:
            status, retry_after = self._refusals.popleft()
            self.counters[f"refused_{status}"] += 1
            if retry_after is not None:
                request.setHeader(b"retry-after", str(retry_after).encode())
            return _status(request, status)

        auth = self._authenticate(request)
        if not auth.ok:
            if auth.stale and session is not None:
                session.stale_nonce_retries += 1
            self.counters["challenged"] += 1
            self._challenge(request, stale=auth.stale)
            return _status(request, 401)

        try:
            envelope = codec.parse(body) if body.strip() else None
        except codec.CwmpParseError as exc:
            return self._reject(request, session, f"unparseable request: {exc.reason}")

        if envelope is not None and isinstance(envelope.body, m.Inform):
            session = self._open_session(request, envelope)
        elif session is None:
            return self._reject(request, None, "request outside any session (no cookie, unknown connection)")
        session.auth_schemes.add(auth.scheme or "")
        session.username = auth.username or ""
        if self._keep_bodies:
            session.bodies.append(body)
        return self._continue(request, session, envelope)

    # -- sessions ----------------------------------------------------------------------------------------------

    def _find_session(self, request: Request) -> AcsSession | None:
        cookie = request.getCookie(COOKIE_NAME)
        session = self._by_cookie.get(cookie) if cookie else None
        if session is not None:
            session.cookie_returned += 1
            return session
        session = self._by_channel.get(request.channel)
        if session is not None:
            session.tracked_by_connection += 1
        return session

    def _open_session(self, request: Request, envelope: Envelope) -> AcsSession:
        previous = self._by_channel.pop(request.channel, None)
        if previous is not None:  # a new Inform inside an open session: FIELD-NOTES says treat it as a new session
            self._forget(previous)
        inform = envelope.body
        assert isinstance(inform, m.Inform)
        session = AcsSession(
            number=len(self.sessions) + 1,
            tls=request.isSecure(),
            client_ip=request.getClientAddress().host,
            inform=inform,
            namespace=envelope.namespace,
            protocol_version=envelope.protocol_version,
        )
        session._cookie = secrets.token_hex(12).encode()
        self.sessions.append(session)
        self._by_cookie[session._cookie] = session
        self._by_channel[request.channel] = session
        session._channels.append(request.channel)
        if self._on_inform is not None:
            self.enqueue(session.serial, *self._on_inform(session))
        request.addCookie(COOKIE_NAME, session._cookie, path=b"/", httpOnly=True)
        return session

    def _continue(self, request: Request, session: AcsSession, envelope: Envelope | None) -> bytes | int:
        message = envelope.body if envelope is not None else None
        if isinstance(message, m.Inform):
            use_version = None
            if envelope is not None and envelope.supported_cwmp_versions:
                use_version = negotiate_version(envelope.supported_cwmp_versions)
            return self._reply(
                request, session, m.InformResponse(max_envelopes=1), envelope.id if envelope else None, use_version
            )
        if message is None:
            session._acs_turn = True
            return self._next_step(request, session)
        if session._outstanding is not None:
            request_id, exchange = session._outstanding
            try:
                exchange.response = codec.check_reply(envelope, (request_id, type(exchange.request)))
            except codec.CwmpProtocolError as exc:
                return self._reject(request, session, exc.reason)
            session._outstanding = None
            return self._next_step(request, session)
        if session._acs_turn or message.is_response or isinstance(message, m.Fault):
            return self._reject(request, session, f"unexpected {message.NAME}")
        session.cpe_requests.append(message)
        return self._reply(request, session, _answer_cpe_request(message), envelope.id if envelope else None)

    def _next_step(self, request: Request, session: AcsSession) -> bytes | int:
        queue = self._queues.get(session.serial)
        while queue:
            step = queue.popleft()
            if isinstance(step, m.Message):
                return self._send_request(request, session, step)
            produced = defer.maybeDeferred(step, session)
            if produced.called:
                outcome: list[m.Message | None | Failure] = []
                produced.addBoth(outcome.append)
                if isinstance(outcome[0], Failure):
                    return self._reject(request, session, f"script step failed: {outcome[0].getErrorMessage()}")
                if outcome[0] is None:
                    continue
                return self._send_request(request, session, outcome[0])
            produced.addCallbacks(
                lambda result: self._finish_later(request, session, result),
                lambda failure: self._finish_rejected(request, session, failure),
            )
            return server.NOT_DONE_YET
        return self._end_session(request, session)

    def _finish_later(self, request: Request, session: AcsSession, message: m.Message | None) -> None:
        if message is not None:
            body = self._send_request(request, session, message)
        else:
            body = self._next_step(request, session)
        if body is not server.NOT_DONE_YET:
            _write_and_finish(request, body)

    def _finish_rejected(self, request: Request, session: AcsSession, failure: Failure) -> None:
        _write_and_finish(request, self._reject(request, session, f"script step failed: {failure.getErrorMessage()}"))

    def _send_request(self, request: Request, session: AcsSession, message: m.Message) -> bytes:
        self._ids += 1
        request_id = f"mini-{self._ids}"
        exchange = Exchange(message)
        session.exchanges.append(exchange)
        session._outstanding = (request_id, exchange)
        return self._reply(request, session, message, request_id)

    def _end_session(self, request: Request, session: AcsSession) -> bytes:
        session.complete = True
        self.completed.append(session)
        self.counters["sessions"] += 1
        self._forget(session)
        request.setResponseCode(204)
        self._fire_waiters()
        return b""

    def _forget(self, session: AcsSession) -> None:
        self._by_cookie.pop(session._cookie, None)
        for channel in session._channels:
            if self._by_channel.get(channel) is session:
                del self._by_channel[channel]
        session._channels.clear()

    def _reject(self, request: Request, session: AcsSession | None, reason: str) -> bytes:
        self.counters["rejected"] += 1
        if session is not None:
            session.errors.append(reason)
            self._forget(session)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setResponseCode(400)
        return reason.encode() + b"\n"

    def _reply(
        self,
        request: Request,
        session: AcsSession,
        message: m.Message,
        request_id: str | None,
        use_version: str | None = None,
    ) -> bytes:
        envelope = Envelope(message, id=request_id, namespace=session.namespace, use_cwmp_version=use_version)
        request.setHeader(b"content-type", b'text/xml; charset="utf-8"')
        return codec.serialize(envelope, xml_declaration=self._xml_declaration)

    def _fire_waiters(self) -> None:
        ready = [(count, d) for count, d in self._waiters if len(self.completed) >= count]
        for entry in ready:
            self._waiters.remove(entry)
            entry[1].callback(list(self.completed))

    # -- authentication ----------------------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> AuthResult:
        return self._verify(request, self._lookup(self._credentials))

    def _file_auth_ok(self, request: Request, username: str, password: str) -> bool:
        result = self._verify(request, self._lookup({username: password}))
        if not result.ok:
            self._challenge(request, stale=result.stale)
            request.setResponseCode(401)
        return result.ok

    def _challenge(self, request: Request, *, stale: bool) -> None:
        for value in self._verifier.challenge(stale=stale, basic=request.isSecure()):
            if self._offer_digest or value.startswith("Basic "):
                request.responseHeaders.addRawHeader(b"www-authenticate", value.encode())

    def _verify(self, request: Request, lookup: Callable[[str, str], str | None]) -> AuthResult:
        header = request.getHeader(b"authorization")
        return self._verifier.verify(
            request.method.decode("ascii", "replace"),
            request.uri.decode("utf-8", "replace"),
            header.decode("utf-8", "replace") if header is not None else None,
            lookup,
            is_tls=request.isSecure(),
        )

    def _lookup(self, credentials: Mapping[str, str]) -> Callable[[str, str], str | None]:
        def lookup(username: str, algorithm: str) -> str | None:
            password = credentials.get(username)
            if password is None:
                return None
            key = (username, password, algorithm)
            cached = self._ha1_cache.get(key)
            if cached is None:
                cached = self._ha1_cache[key] = ha1(username, self._verifier.realm, password, algorithm)
            return cached

        return lookup


def _answer_cpe_request(message: m.Message) -> m.Message:
    if isinstance(message, m.TransferComplete):
        return m.TransferCompleteResponse()
    if isinstance(message, m.GetRPCMethods):
        return m.GetRPCMethodsResponse(list(ACS_METHODS))
    return m.Fault.of(8000)


def _status(request: Request, code: int) -> bytes:
    request.setResponseCode(code)
    return b""


def _write_and_finish(request: Request, body: bytes) -> None:
    if request.finished or request.channel is None:  # the phone gave up (session timeout) while we waited
        return
    request.write(body)
    request.finish()
