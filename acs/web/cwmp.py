"""The CPE-facing CWMP endpoint: a thin twisted.web adapter around acs.handler.

Per POST: find the session (cookie, else TCP connection) → with none, check capacity and authenticate first → read
the body within limits → parse → for an Inform, admit a new session (DeviceId binding, one session per device) → let
the handler answer → serialize. Authenticating before the body is touched means nothing an unauthenticated caller
sends is ever decompressed or parsed, and the 401 that opens nearly every session costs no XML. Every refusal is an
HTTP status with a short plain-text reason, logged once with device (when known) and reason; no traceback ever
reaches a device.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable

import structlog
from twisted.internet import task
from twisted.web import http, resource, server

from cwmp_models import codec
from cwmp_models import messages as m
from cwmp_models.envelope import Envelope

from ..device_auth import DeviceAuthenticator, Identity
from ..handler import ActiveSession, SessionHandler
from .limits import BodyError, LimitedRequest, read_body
from .registry import SessionRegistry

COOKIE = b"acs_session"


@dataclass(frozen=True)
class CwmpLimits:
    max_sessions: int = 500
    max_body_bytes: int = 1 << 20
    max_decompressed_bytes: int = 4 << 20
    retry_after_min: int = 30
    retry_after_max: int = 120


class CwmpChannel(http.HTTPChannel):
    """HTTP/1.1 channel that tells the site when its connection opens and closes (sessions tracked by connection;
    a graceful stop closes the open ones cleanly so answers already written reach the phone)."""

    def connectionMade(self):
        super().connectionMade()
        site = getattr(self, "site", None)
        if site is not None:
            site.open_channels.add(self)

    def connectionLost(self, reason):
        site = getattr(self, "site", None)
        if site is not None:
            site.open_channels.discard(self)
            if site.on_channel_closed is not None:
                site.on_channel_closed(self)
        super().connectionLost(reason)


class CwmpSite(server.Site):
    protocol = CwmpChannel
    requestFactory = LimitedRequest
    displayTracebacks = False

    def __init__(self, root: resource.Resource, *, max_body_bytes: int, timeout: float = 60.0):
        try:
            super().__init__(root, timeout=timeout, parsePOSTFormSubmission=False)
        except TypeError:  # Twisted older than 26.10 always parses form bodies; harmless for text/xml
            super().__init__(root, timeout=timeout)
        self.max_body_bytes = max_body_bytes
        self.open_channels: set[CwmpChannel] = set()
        self.on_channel_closed: Callable[[Any], None] | None = None
        self.on_refused_body: Callable[[Any], None] | None = None

    def log(self, request):  # our own structured log says what matters; no access log per POST
        pass


class CwmpResource(resource.Resource):
    isLeaf = True

    def __init__(
        self,
        handler: SessionHandler,
        authenticator: DeviceAuthenticator,
        *,
        limits: CwmpLimits = CwmpLimits(),
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        self.handler = handler
        self.authenticator = authenticator
        self.limits = limits
        self.clock = clock
        self.registry = SessionRegistry()
        self.accepting = True
        self._rng = rng or random.Random()
        self.log = structlog.get_logger("acs.cwmp")
        self.counters: dict[str, int] = {}
        previous_end = handler.on_session_end
        self._previous_session_end = previous_end
        handler.on_session_end = self._session_ended

    # ---- wiring to the site -----------------------------------------------------------------------------------------

    def attach(self, site: CwmpSite) -> None:
        site.on_channel_closed = self.registry.channel_closed
        site.on_refused_body = self._body_refused

    def start_sweeper(self, clock: Any, interval: float = 1.0) -> task.LoopingCall:
        sweeper = task.LoopingCall(self.expire_sessions)
        sweeper.clock = clock
        sweeper.start(interval, now=False)
        return sweeper

    def expire_sessions(self) -> int:
        expired = self.registry.expired(self.clock())
        for active in expired:
            self.handler.end(active, "timeout")
            self._count("session_timeout")
        return len(expired)

    # ---- HTTP -------------------------------------------------------------------------------------------------------

    def render(self, request: server.Request) -> bytes:
        if request.method != b"POST":
            request.setHeader(b"allow", b"POST")
            return self._plain(request, 405, "CWMP takes POST only")
        try:
            return self._render_post(request)
        except Exception:  # a bug must not leak a traceback to a device or kill the listener
            self.log.exception("internal error while handling a CWMP POST")
            active = self.registry.find(self._cookie(request), request.channel)
            if active is not None:
                self.handler.end(active, "internal-error")
            return self._plain(request, 500, "internal error")

    def _render_post(self, request: server.Request) -> bytes:
        remote_ip = _peer_ip(request)
        active = self.registry.find(self._cookie(request), request.channel)
        identity: Identity | None = None
        if active is None:
            # Only an Inform can open a session, and only an authenticated caller may open one: a stranger is
            # answered here, before its body is decompressed or parsed.
            gate = self._gate(request, remote_ip)
            if isinstance(gate, bytes):
                return gate
            identity = gate
        try:
            body = read_body(request, max_decompressed=self.limits.max_decompressed_bytes)
        except BodyError as exc:
            return self._refuse(request, exc.status, exc.reason, active, remote_ip)
        envelope: Envelope | None = None
        if body.strip():
            try:
                envelope = codec.parse(body, max_size=self.limits.max_decompressed_bytes)
            except codec.CwmpParseError as exc:
                return self._refuse(request, 400, f"not a CWMP envelope: {exc.reason}", active, remote_ip)

        if envelope is not None and isinstance(envelope.body, m.Inform):
            if active is not None:
                # Some stacks start over with a new Inform mid-session: the old session is over, and the new one is
                # admitted like any other (through the gate, which it has not passed yet).
                self.handler.end(active, "superseded")
                self.registry.remove(active)
            admitted = self._admit(request, envelope, remote_ip, identity)
            if isinstance(admitted, bytes):
                return admitted
            active = admitted
        elif active is None:
            return self._refuse(request, 400, "no session: a CWMP session starts with an Inform", None, remote_ip)
        else:
            self.registry.attach_channel(active, request.channel)

        answer = self.handler.handle(active, envelope)
        if active.machine.finished:
            self.registry.remove(active)
        if answer is None:
            request.setResponseCode(204)
            return b""
        request.setResponseCode(200)
        request.setHeader(b"content-type", b'text/xml; charset="utf-8"')
        request.setHeader(b"soapaction", b"")
        return codec.serialize(answer)

    def _gate(self, request: server.Request, remote_ip: str) -> Identity | bytes:
        """May a new session open at all, and who is asking? The identity, or the refusal to send (503 or 401)."""
        if not self.accepting:
            return self._busy(request, "shutting down", None, remote_ip)
        if len(self.registry) >= self.limits.max_sessions:
            return self._busy(request, "session limit reached", None, remote_ip)
        is_tls = request.isSecure()
        outcome = self.authenticator.authenticate(
            "POST", request.uri.decode("utf-8", "surrogateescape"), _header(request, b"authorization"),
            is_tls=is_tls,
        )
        if outcome.identity is None:
            if outcome.attempted:
                self._count("auth_failed")
                self.log.warning("authentication failed", ip=remote_ip, reason=outcome.reason)
            for value in self.authenticator.challenge(is_tls=is_tls, stale=outcome.stale):
                request.responseHeaders.addRawHeader(b"www-authenticate", value.encode("utf-8"))
            return self._plain(request, 401, "authentication required")
        return outcome.identity

    def _admit(
        self, request: server.Request, envelope: Envelope, remote_ip: str, identity: Identity | None
    ) -> ActiveSession | bytes:
        """Open a session for this Inform; ``identity`` is None when the request has not been through the gate."""
        if identity is None:
            gate = self._gate(request, remote_ip)
            if isinstance(gate, bytes):
                return gate
            identity = gate
        inform: m.Inform = envelope.body  # type: ignore[assignment]
        device = inform.device_id.key
        admission = self.authenticator.admit(identity, inform.device_id, remote_ip=remote_ip)
        if not admission.ok:
            self._count("admission_refused")
            self.log.warning("session refused", device_id=device, ip=remote_ip, reason=admission.reason)
            return self._plain(request, 403, admission.reason)
        if self.registry.device_session(device) is not None:
            return self._busy(request, "a session with this device is already open", device, remote_ip)
        active = self.handler.new_session(remote_ip=remote_ip, identity_kind=identity.kind)
        cookie = self.registry.add(active, request.channel)
        self.registry.bind_device(active, device)
        request.addCookie(COOKIE, cookie.encode("ascii"), path=b"/", httpOnly=True, secure=request.isSecure())
        return active

    # ---- refusals ---------------------------------------------------------------------------------------------------

    def _busy(self, request: server.Request, reason: str, device: str | None, remote_ip: str) -> bytes:
        retry_after = self._rng.randint(self.limits.retry_after_min, self.limits.retry_after_max)
        request.setHeader(b"retry-after", str(retry_after).encode())
        self._count("busy")
        self.log.info("busy", device_id=device, ip=remote_ip, reason=reason, retry_after=retry_after)
        return self._plain(request, 503, reason)

    def _refuse(
        self, request: server.Request, status: int, reason: str, active: ActiveSession | None, remote_ip: str
    ) -> bytes:
        self._count(f"http_{status}")
        device = active.device_id if active is not None else None
        self.log.warning("request refused", status=status, reason=reason, device_id=device, ip=remote_ip)
        if active is not None:
            self.handler.end(active, "protocol-error")
            self.registry.remove(active)
        return self._plain(request, status, reason)

    def _body_refused(self, request: server.Request) -> None:
        self._count("http_413")
        active = self.registry.find(self._cookie(request), request.channel)
        self.log.warning(
            "request refused", status=413, reason="body larger than the limit",
            device_id=active.device_id if active else None, ip=_peer_ip(request),
        )
        if active is not None:
            self.handler.end(active, "protocol-error")
            self.registry.remove(active)

    @staticmethod
    def _plain(request: server.Request, status: int, text: str) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return (text + "\n").encode("utf-8")

    # ---- helpers ----------------------------------------------------------------------------------------------------

    def _session_ended(self, active: ActiveSession) -> None:
        self.registry.remove(active)
        if self._previous_session_end is not None:
            self._previous_session_end(active)

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    @staticmethod
    def _cookie(request: server.Request) -> str | None:
        value = request.getCookie(COOKIE)
        return value.decode("ascii", "replace") if value else None


def _header(request: server.Request, name: bytes) -> str | None:
    value = request.getHeader(name)
    return None if value is None else value.decode("utf-8", "surrogateescape")


def _peer_ip(request: server.Request) -> str:
    peer = request.getClientAddress()
    return getattr(peer, "host", None) or "?"
