"""One simulated phone's CWMP client: sessions with the ACS over Twisted, retries, timers and the actions that follow.

The phone's behaviour (what to put in an Inform, how to answer each RPC, what its state becomes) lives in the pure
``wp820_sim.phone.Phone``; this module only moves its messages over HTTP(S) and keeps time, like the gs_cpe daemon
around a real WP820's settings.

Theory of operation
-------------------
A ``PhoneAgent`` is in one of five states: OFF, IDLE, SESSION, WAITING (for a retry), REBOOTING. Anything that wants
a session (boot, periodic timer, connection request, keypad change, ScheduleInform, a finished transfer) calls
``request_session(events)``. In IDLE that starts a session at once; in SESSION or WAITING the events are kept for the
next session (a connection request cuts a retry wait short: the ACS evidently wants the phone now); while REBOOTING or
OFF they wait for the boot. A session wanted only to deliver something (a VALUE CHANGE, a TransferComplete) waits
for the phone's running transfers, so their TransferComplete travels in the same session.

A session (TR-069 section 3.7): POST the Inform, get the InformResponse (then the phone's events count as
delivered), POST the phone's own requests (TransferComplete), then an empty POST hands the turn to the ACS; each ACS
request is answered in the next POST until the ACS answers ``204`` (or an empty 200). Each HTTP exchange must be
answered within ``session_timeout``. One TCP connection carries the whole session (a per-session
``HTTPConnectionPool`` keeping one persistent connection, bound to the phone's own loopback address) and is closed
when the session ends, so an idle phone holds no client socket.

Authentication: the first request goes out bare; a ``401`` is answered through ``cwmp_models.httpauth_client``
(Digest preferred, Basic only over TLS or with the ``basic_only`` quirk), and later requests authenticate
pre-emptively with the next nonce-count. A second ``401`` with ``stale=true`` is answered once more; anything else
fails the session. Cookies set by the ACS are returned for the rest of the session (unless ``no_cookies``).

Failure (unreachable ACS, timeout, HTTP error, unparseable answer, Fault to the Inform) makes the phone wait and
retry while it still has something to deliver (``Phone.session_wanted``), with ``RetryCount`` + 1: a random wait in
``Phone.retry_window`` (TR-069 3.2.1.1: 5-10 s, doubling up to 2560-5120 s), multiplied by
``AgentSettings.retry_scale`` so tests can shrink it. A ``503`` with ``Retry-After`` waits exactly that long instead.

Timers: every phone's timers (retries, periodic Informs, reboots, ScheduleInform, STUN keep-alives) live in one
``Scheduler`` heap per fleet, so 20,000 idle phones cost one reactor DelayedCall, not 20,000.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog
from twisted.internet import defer, error as net_error, ssl
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol as StreamProtocol
from twisted.python.failure import Failure
from twisted.web.client import URI, Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory, IBodyProducer, IResponse
from zope.interface import implementer

from cwmp_models import codec
from cwmp_models import messages as m
from cwmp_models.envelope import Envelope
from cwmp_models.httpauth import HttpAuthError
from cwmp_models.httpauth_client import DigestClient
from wp820_sim.phone import (
    CONNECTION_REQUEST,
    PERIODIC,
    Action,
    DownloadAction,
    FactoryResetAction,
    Phone,
    RebootAction,
    ScheduleInformAction,
    UploadAction,
)
from wp820_sim.quirks import serialize_for

__all__ = [
    "AgentSettings",
    "AgentState",
    "Attachment",
    "HttpClient",
    "HttpReply",
    "PhoneAgent",
    "Scheduler",
    "SessionError",
    "Stats",
    "Timer",
    "TlsConfigError",
    "TlsPolicy",
]

log = structlog.get_logger(__name__)

USER_AGENT = b"wp820-sim"


# --------------------------------------------------------------------------------------------------------------------
# Shared machinery: counters, one timer heap, TLS trust
# --------------------------------------------------------------------------------------------------------------------


class Stats:
    """Counters shared by every phone of a fleet, with Deferreds that fire when a counter reaches a value."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._waiters: list[tuple[str, int, defer.Deferred[int]]] = []

    def __getitem__(self, name: str) -> int:
        return self.counts[name]

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] += amount
        if self._waiters:
            self._fire(name)

    def failure(self, name: str, event: str, **fields: Any) -> None:
        """Count a failure and log it: the first of its kind as a warning, the rest at debug level, so a boot storm
        hitting a limit does not print ten thousand identical lines (the counter says how many)."""
        self.add(name)
        (log.warning if self.counts[name] == 1 else log.debug)(event, **fields)

    def wait_for(self, name: str, value: int) -> defer.Deferred[int]:
        d: defer.Deferred[int] = defer.Deferred()
        self._waiters.append((name, value, d))
        self._fire(name)
        return d

    def _fire(self, name: str) -> None:
        current = self.counts[name]
        ready = [w for w in self._waiters if w[0] == name and current >= w[1]]
        for waiter in ready:
            self._waiters.remove(waiter)
            waiter[2].callback(current)


class Timer:
    __slots__ = ("when", "_call", "cancelled")

    def __init__(self, when: float, call: Callable[[], Any]) -> None:
        self.when = when
        self._call = call
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """Many timers on one reactor DelayedCall: a heap ordered by due time; cancelled timers are dropped lazily."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._sequence = itertools.count()
        self._delayed: IDelayedCall | None = None
        self._armed_for: float | None = None

    def __len__(self) -> int:
        return sum(1 for _, _, timer in self._heap if not timer.cancelled)

    def seconds(self) -> float:
        return self.clock.seconds()

    def call_later(self, delay: float, call: Callable[[], Any]) -> Timer:
        return self.call_at(self.clock.seconds() + max(0.0, delay), call)

    def call_at(self, when: float, call: Callable[[], Any]) -> Timer:
        timer = Timer(when, call)
        heapq.heappush(self._heap, (when, next(self._sequence), timer))
        if self._armed_for is None or when < self._armed_for:
            self._arm()
        return timer

    def stop(self) -> None:
        """Forget every timer (the fleet is shutting down)."""
        for _, _, timer in self._heap:
            timer.cancel()
        self._heap.clear()
        self._disarm()

    def _arm(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        if not self._heap:
            self._disarm()
            return
        when = self._heap[0][0]
        if self._armed_for == when:
            return
        self._disarm()
        self._armed_for = when
        self._delayed = self.clock.callLater(max(0.0, when - self.clock.seconds()), self._run_due)

    def _disarm(self) -> None:
        if self._delayed is not None and self._delayed.active():
            self._delayed.cancel()
        self._delayed = None
        self._armed_for = None

    def _run_due(self) -> None:
        self._delayed = None
        self._armed_for = None
        now = self.clock.seconds()
        while self._heap and self._heap[0][0] <= now:
            _, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            timer.cancelled = True  # fired: a later cancel() is harmless
            try:
                timer._call()
            except Exception:
                log.exception("sim.timer_failed")
        self._arm()


class TlsConfigError(ValueError):
    """A CA file that cannot be used to validate the ACS certificate."""


_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


@implementer(IBodyProducer)
class _BytesProducer:
    """A request body written in one go (FileBodyProducer would schedule a cooperator task per request)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.length = len(data)

    def startProducing(self, consumer: Any) -> defer.Deferred[None]:  # noqa: N802 (Twisted's names)
        if self._data:
            consumer.write(self._data)
        return defer.succeed(None)

    def pauseProducing(self) -> None:  # noqa: N802
        pass

    def resumeProducing(self) -> None:  # noqa: N802
        pass

    def stopProducing(self) -> None:  # noqa: N802
        pass


class TlsPolicy(BrowserLikePolicyForHTTPS):
    """Validate servers against the given CA certificates (or the platform's), caching one TLS context per host:
    building an OpenSSL context per connection would cost milliseconds per phone session."""

    def __init__(self, ca_file: str | Path | None = None) -> None:
        super().__init__(trustRoot=_load_trust_root(ca_file) if ca_file is not None else None)
        self._creators: dict[tuple[bytes, int], Any] = {}

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:  # noqa: N802
        creator = self._creators.get((hostname, port))
        if creator is None:
            creator = self._creators[(hostname, port)] = super().creatorForNetloc(hostname, port)
        return creator


def _load_trust_root(ca_file: str | Path) -> Any:
    path = Path(ca_file)
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"cannot read CA file {str(path)!r}: {exc.strerror or exc}") from None
    blocks = _PEM_CERTIFICATE.findall(pem)
    if not blocks:
        raise TlsConfigError(f"CA file {str(path)!r} holds no PEM certificate")
    try:
        certificates = [ssl.Certificate.loadPEM(block) for block in blocks]
    except Exception:  # pyOpenSSL raises its own untyped errors for a damaged certificate
        raise TlsConfigError(f"CA file {str(path)!r} holds a certificate that does not parse") from None
    return ssl.trustRootFromCertificates(certificates)


# --------------------------------------------------------------------------------------------------------------------
# HTTP: one session's (or one transfer's) client with auth, cookies, limits
# --------------------------------------------------------------------------------------------------------------------


class SessionError(Exception):
    """Why a session (or transfer) failed; ``reason`` is short and carries no secret."""

    def __init__(self, reason: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: Headers
    body: bytes


class _BodyTooLarge(Exception):
    pass


class _Collector(StreamProtocol):
    def __init__(self, limit: int, finished: defer.Deferred[bytes]) -> None:
        self._limit = limit
        self._finished = finished
        self._parts: list[bytes] = []
        self._size = 0

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self._size += len(data)
        if self._size > self._limit:
            self.transport.stopProducing()
            if not self._finished.called:
                self._finished.errback(_BodyTooLarge())
            return
        self._parts.append(data)

    def connectionLost(self, reason: Failure = net_error.ConnectionDone()) -> None:  # noqa: N802
        if self._finished.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self._finished.callback(b"".join(self._parts))
        else:
            self._finished.errback(reason)


@implementer(IAgentEndpointFactory)
class _EndpointFactory:
    """Connections from the phone's own address. An IP-literal host is connected to directly: the standard
    HostnameEndpoint sends even ``127.0.0.1`` through the resolver's small thread pool, which makes a thousand
    phones booting together queue for seconds before their first SYN."""

    def __init__(self, reactor: Any, tls_policy: TlsPolicy, bind_ip: str, timeout: float) -> None:
        self._reactor = reactor
        self._tls_policy = tls_policy
        self._bind_ip = bind_ip
        self._timeout = timeout

    def endpointForURI(self, uri: URI) -> Any:  # noqa: N802 (Twisted's name)
        host = uri.host.decode("ascii").strip("[]")
        if isIPv6Address(host):
            endpoint: Any = TCP6ClientEndpoint(self._reactor, host, uri.port, timeout=self._timeout)
        elif isIPAddress(host):
            endpoint = TCP4ClientEndpoint(
                self._reactor, host, uri.port, timeout=self._timeout, bindAddress=(self._bind_ip, 0)
            )
        else:
            endpoint = HostnameEndpoint(
                self._reactor, host, uri.port, timeout=self._timeout, bindAddress=(self._bind_ip, 0)
            )
        if uri.scheme == b"https":
            return wrapClientTLS(self._tls_policy.creatorForNetloc(uri.host, uri.port), endpoint)
        return endpoint


class HttpClient:
    """HTTP for one CWMP session or one file transfer: a single persistent connection from the phone's address,
    authentication answered as the phone's stack would, cookies kept until ``close``."""

    def __init__(
        self,
        reactor: Any,
        *,
        bind_ip: str,
        username: str,
        password: str,
        tls_policy: TlsPolicy,
        timeout: float,
        max_body: int,
        basic_only: bool = False,
        reuse_nonce: bool = False,
        cookies: bool = True,
    ) -> None:
        self._reactor = reactor
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = 1
        self._pool.retryAutomatically = False  # a silent retry on a new connection would break connection tracking
        self._agent = Agent.usingEndpointFactory(
            reactor, _EndpointFactory(reactor, tls_policy, bind_ip, timeout), pool=self._pool
        )
        self._username = username
        self._password = password
        self._timeout = timeout
        self._max_body = max_body
        self._basic_only = basic_only
        self._reuse_nonce = reuse_nonce
        self._use_cookies = cookies
        self._cookies: dict[str, str] = {}
        self._digest: DigestClient | None = None
        self._challenges: list[str] | None = None

    async def request(self, method: bytes, url: str, body: bytes | None, headers: dict[bytes, bytes]) -> HttpReply:
        """Send one request, answering up to two authentication challenges (the second for a stale nonce)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SessionError(f"unsupported URL scheme {parts.scheme!r}")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        is_tls = parts.scheme == "https"
        verb = method.decode("ascii")
        authorization = self._preemptive(verb, target, is_tls)
        for attempt in range(3):
            request_headers = Headers({name: [value] for name, value in headers.items()})
            if self._use_cookies and self._cookies:
                cookie = "; ".join(f"{name}={value}" for name, value in self._cookies.items())
                request_headers.setRawHeaders(b"cookie", [cookie.encode("latin-1")])
            if authorization is not None:
                request_headers.setRawHeaders(b"authorization", [authorization.encode("utf-8")])
            reply = await self._send(method, url.encode("utf-8"), request_headers, body)
            if reply.status != 401 or attempt == 2:
                return reply
            challenges = [value.decode("latin-1") for value in reply.headers.getRawHeaders(b"www-authenticate", [])]
            if attempt > 0 and not any("stale=true" in value.lower() for value in challenges):
                return reply  # our credentials were refused: a new nonce would not help
            authorization = self._answer(challenges, verb, target, is_tls)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        # Closing is best effort: when the phone powers off mid-exchange the pool's connections are being torn down
        # already and their close Deferreds fail with CancelledError (through gatherResults, as FirstError); the
        # session's outcome is decided elsewhere, and a failed close must not turn into a "session bug".
        try:
            await self._pool.closeCachedConnections()
        except (defer.FirstError, defer.CancelledError):
            pass

    def _answer(self, challenges: Sequence[str], method: str, target: str, is_tls: bool) -> str:
        """The Authorization for a 401's challenges; remembered for pre-emptive use on the next requests."""
        if self._basic_only:
            challenges = [value for value in challenges if value.lstrip().lower().startswith("basic")]
        self._challenges = list(challenges)
        self._digest = DigestClient(self._username, self._password, allow_basic=is_tls or self._basic_only)
        try:
            value = self._digest.authorization(method, target, self._challenges)
        except (HttpAuthError, ValueError) as exc:  # ValueError: a Basic username containing ':'
            raise SessionError(f"authentication: {exc}") from None
        return value

    def _preemptive(self, method: str, target: str, is_tls: bool) -> str | None:
        if self._digest is None or self._challenges is None:
            return None
        if self._reuse_nonce:
            # The quirk: a fresh client per request answers the same challenge again, so nc=00000001 every time.
            client = DigestClient(self._username, self._password, allow_basic=is_tls or self._basic_only)
            return client.authorization(method, target, self._challenges)
        return self._digest.authorization(method, target)

    async def _send(self, method: bytes, url: bytes, headers: Headers, body: bytes | None) -> HttpReply:
        producer = _BytesProducer(body) if body is not None else None
        timed_out: list[bool] = []
        pending: list[defer.Deferred[Any]] = []

        def expire() -> None:
            timed_out.append(True)
            pending[-1].cancel()

        # One deadline for the whole exchange (request, response and body), as the phone waits for the ACS.
        deadline = self._reactor.callLater(self._timeout, expire)
        try:
            pending.append(self._agent.request(method, url, headers, producer))
            response: IResponse = await pending[-1]
            pending.append(defer.Deferred())
            response.deliverBody(_Collector(self._max_body, pending[-1]))
            data = await pending[-1]
        except Exception as exc:
            if timed_out:
                raise SessionError("timed out waiting for the server") from None
            raise _session_error(exc) from None
        finally:
            if deadline.active():
                deadline.cancel()
        if self._use_cookies:
            self._store_cookies(response.headers.getRawHeaders(b"set-cookie", []))
        return HttpReply(response.code, response.headers, data)

    def _store_cookies(self, values: Iterable[bytes]) -> None:
        for raw in values:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(raw.decode("latin-1"))
            except CookieError:
                continue
            for name, morsel in jar.items():
                if morsel["max-age"] in ("0", "-1") or _expired(morsel["expires"]):
                    self._cookies.pop(name, None)
                else:
                    self._cookies[name] = morsel.coded_value


def _expired(expires: str) -> bool:
    if not expires:
        return False
    try:
        return parsedate_to_datetime(expires) <= datetime.now(timezone.utc)
    except (TypeError, ValueError):
        return False


def _session_error(exc: Exception) -> SessionError:
    if isinstance(exc, _BodyTooLarge):
        return SessionError("response too large")
    if isinstance(exc, net_error.ConnectError):
        return SessionError(f"cannot connect: {type(exc).__name__}")
    # ResponseFailed / ResponseNeverReceived / RequestGenerationFailed wrap TLS and parse errors in lists.
    return SessionError(f"HTTP exchange failed: {_describe_failure(exc)}")


def _describe_failure(exc: Exception) -> str:
    reasons = getattr(exc, "reasons", None)
    if reasons:
        inner = reasons[0]
        value = inner.value if isinstance(inner, Failure) else inner
        return f"{type(exc).__name__}({type(value).__name__})"
    return type(exc).__name__


def _retry_after(headers: Headers, now: float) -> float | None:
    value = headers.getRawHeaders(b"retry-after", [None])[0]
    if value is None:
        return None
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------------------------------
# The agent
# --------------------------------------------------------------------------------------------------------------------


class AgentState(enum.Enum):
    OFF = "off"
    IDLE = "idle"
    SESSION = "session"
    WAITING = "waiting"
    REBOOTING = "rebooting"


class Attachment(Protocol):
    """Something that follows the phone's settings: its connection-request listener, its STUN binding."""

    def reconcile(self) -> None: ...  # after boot and after every session: apply the phone's current settings

    def suspend(self) -> defer.Deferred[None]: ...  # the phone goes down (reboot, shutdown): close its sockets


@dataclass(frozen=True)
class AgentSettings:
    """What every phone of a fleet shares; the defaults are a real phone's.

    ``retry_scale`` multiplies the phone's TR-069 retry window (5-10 s, doubling): 0.01 makes it 50-100 ms for tests.
    """

    session_timeout: float = 30.0
    retry_scale: float = 1.0
    reboot_delay: float = 5.0
    max_body: int = 1 << 20
    transfer_timeout: float = 60.0


SessionEvent = str | m.EventStruct


class PhoneAgent:
    def __init__(
        self,
        phone: Phone,
        *,
        reactor: Any,
        scheduler: Scheduler,
        settings: AgentSettings,
        stats: Stats,
        tls_policy: TlsPolicy,
        rng: random.Random,
        persist: Callable[[], None] | None = None,
    ) -> None:
        self.phone = phone
        self.ip = phone.ip
        self._reactor = reactor
        self._scheduler = scheduler
        self._settings = settings
        self._stats = stats
        self._tls_policy = tls_policy
        self._rng = rng
        self._persist = persist or (lambda: None)
        self.attachments: list[Attachment] = []
        self.state = AgentState.OFF
        self.sessions_ok = 0
        self.sessions_failed = 0
        self.last_error: str | None = None
        self._events: list[SessionEvent] = []
        self._retry_timer: Timer | None = None
        self._periodic_timer: Timer | None = None
        self._periodic_key: tuple[Any, ...] | None = None
        self._boot_timer: Timer | None = None
        self._epoch = 0  # bumped at every boot: a transfer begun before a reboot must not report after it
        self._running: defer.Deferred[None] | None = None
        self._transfers: set[defer.Deferred[None]] = set()
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"<PhoneAgent {self.phone.state.serial} {self.state.value}>"

    # -- public ------------------------------------------------------------------------------------------------

    @property
    def in_session(self) -> bool:
        return self.state is AgentState.SESSION

    def power_on(self, delay: float = 0.0) -> None:
        """Boot the phone after ``delay`` seconds (the fleet's start-up ramp)."""
        if self.state is not AgentState.OFF:
            return
        self.state = AgentState.REBOOTING
        self._boot_timer = self._scheduler.call_later(delay, lambda: self._boot(self.phone.reboot))

    def request_session(self, events: Iterable[SessionEvent] = ()) -> None:
        """Ask for a session carrying ``events`` (``"2 PERIODIC"``, EventStructs of a ScheduleInform); without
        events, a session starts only if the phone has something to deliver (``Phone.session_wanted``) and no
        transfer is running: what it has (a VALUE CHANGE, say) then travels with the transfer's TransferComplete
        in one session rather than two."""
        for event in events:
            if event not in self._events:
                self._events.append(event)
        if self.state is not AgentState.IDLE or not self.phone.cwmp_enabled:
            return
        if self._events or (not self._transfers and self.phone.session_wanted()):
            self._start_session()

    def accept_connection_request(self) -> bool:
        """A validated connection request (HTTP or UDP). False while the phone is in a session or not running."""
        if self.state not in (AgentState.IDLE, AgentState.WAITING):
            return False
        self._stats.add("connection_requests_accepted")
        if self.state is AgentState.WAITING:  # the ACS is evidently up and wants the phone now
            _cancel(self._retry_timer)
            self.state = AgentState.IDLE
        self.request_session([CONNECTION_REQUEST])
        return True

    def local_change(self, target: str, value: Any) -> int:
        """The keypad hook: change a setting on the phone itself. An active notification opens a session now, a
        passive one waits for the next Inform. Returns the phone's ``value_change_pending`` level. Raises the
        core's PhoneError / InvalidValue for an unknown setting or a refused value."""
        level = self.phone.local_change(target, value)
        self._persist()
        if level == 2:
            self.request_session()
        return level

    async def stop(self) -> None:
        """Power off: cancel timers, let an open session's exchange end, close sockets."""
        previous, self.state = self.state, AgentState.OFF
        for timer in (self._retry_timer, self._periodic_timer, self._boot_timer):
            _cancel(timer)
        running = [self._running] if previous is AgentState.SESSION and self._running is not None else []
        running += list(self._transfers)
        for work in running:
            work.cancel()  # aborts the HTTP exchange in flight; the coroutine sees it as a failed session
        await defer.DeferredList(running, consumeErrors=True)
        await defer.gatherResults([attachment.suspend() for attachment in self.attachments])

    # -- boot, reboot, timers ----------------------------------------------------------------------------------

    def _boot(self, restart: Callable[[], None]) -> None:
        """The phone comes up: ``restart`` is ``Phone.reboot`` or ``Phone.factory_reset`` (which reboots)."""
        if self.state is AgentState.OFF:
            return
        restart()
        self._epoch += 1
        if restart != self.phone.reboot:
            # A factory reset must survive a crash before the next session ends; a plain reboot is idempotent
            # (the saved state reboots into the same one).
            self._persist()
        self.state = AgentState.IDLE
        self._periodic_key = None
        if not self.phone.cwmp_enabled:
            return  # TR-069 switched off: the phone never talks to the ACS again until someone turns it back on
        self._reconcile()
        self._perform(self.phone.take_actions())  # transfers interrupted by the reboot start over
        self.request_session()

    def _reconcile(self) -> None:
        for attachment in self.attachments:
            try:
                attachment.reconcile()
            except Exception:
                log.exception("sim.attachment_failed", phone=self.ip)
        self._schedule_periodic()

    def _schedule_periodic(self) -> None:
        key = tuple(self.phone.periodic_inform)
        if key == self._periodic_key:
            return
        self._periodic_key = key
        _cancel(self._periodic_timer)
        self._periodic_timer = None
        delay = self.phone.next_periodic_inform(self._scheduler.seconds())
        if delay is not None:
            self._periodic_timer = self._scheduler.call_later(delay, self._periodic_due)

    def _periodic_due(self) -> None:
        self._periodic_key = None
        if self.state in (AgentState.OFF, AgentState.REBOOTING):
            return
        self._schedule_periodic()
        self.request_session([PERIODIC])

    def _go_down(self, restart: Callable[[], None]) -> None:
        """Reboot (or factory reset): off the network for ``reboot_delay``, then boot."""
        self.state = AgentState.REBOOTING
        for timer in (self._retry_timer, self._periodic_timer):
            _cancel(timer)
        self._events = [event for event in self._events if event != CONNECTION_REQUEST]
        for attachment in self.attachments:
            attachment.suspend()
        self._boot_timer = self._scheduler.call_later(self._settings.reboot_delay, lambda: self._boot(restart))

    # -- sessions ----------------------------------------------------------------------------------------------

    def _start_session(self) -> None:
        self.state = AgentState.SESSION
        events, self._events = self._events, []
        self._running = defer.ensureDeferred(self._session(events))

    async def _session(self, events: list[SessionEvent]) -> None:
        outcome: SessionError | None = None
        try:
            await self._exchange_session(events)
        except SessionError as exc:
            outcome = exc
        except Exception as exc:  # a bug must cost one session, not the whole fleet
            log.exception("sim.session_bug", phone=self.ip)
            outcome = SessionError(f"internal error: {type(exc).__name__}")
        self.phone.session_ended(succeeded=outcome is None)
        self._persist()
        if self.state is AgentState.OFF:
            return
        if outcome is None:
            self._session_succeeded()
        else:
            self._session_failed(outcome)

    def _session_succeeded(self) -> None:
        self.sessions_ok += 1
        self.last_error = None
        self.state = AgentState.IDLE
        self._reconcile()
        self._perform(self.phone.take_actions())
        self._stats.add("sessions_ok")  # counted once the phone has acted on the session: waiters see the aftermath
        self.request_session()

    def _session_failed(self, error: SessionError) -> None:
        self.sessions_failed += 1
        self.last_error = error.reason
        if error.status == 503:
            self._stats.add("http_503")
        self.state = AgentState.IDLE
        self._reconcile()  # e.g. a connection-request port changed before the session broke
        if self.phone.session_wanted() or self._events:
            if error.retry_after is not None:
                delay = error.retry_after
            else:
                low, high = self.phone.retry_window()
                delay = self._rng.uniform(low, high) * self._settings.retry_scale
            self._stats.add("retries")
            log.debug("sim.session_failed", phone=self.ip, reason=error.reason, retry_in=round(delay, 3))
            self.state = AgentState.WAITING
            self._retry_timer = self._scheduler.call_later(delay, self._retry_due)
        self._stats.add("sessions_failed")  # last, so a waiter sees the retry already planned

    def _retry_due(self) -> None:
        if self.state is AgentState.WAITING:
            self.state = AgentState.IDLE
            self._start_session()

    async def _exchange_session(self, events: list[SessionEvent]) -> None:
        phone = self.phone
        quirks = phone.quirks
        url = phone.acs_url
        credentials = phone.acs_credentials
        client = HttpClient(
            self._reactor,
            bind_ip=self.ip,
            username=credentials.username,
            password=credentials.password,
            tls_policy=self._tls_policy,
            timeout=self._settings.session_timeout,
            max_body=self._settings.max_body,
            basic_only=quirks.basic_only,
            reuse_nonce=quirks.reuse_digest_nonce,
            cookies=not quirks.no_cookies,
        )
        try:
            await self._call(client, url, phone.start_session(events))
            phone.inform_delivered()
            for request in phone.pending_cpe_requests():
                await self._call(client, url, request)
                phone.cpe_request_acknowledged(request)
            answer: Envelope | None = None
            while True:
                envelope = await self._post(client, url, answer)
                if envelope is None:
                    return
                request = envelope.body
                if request is None or request.is_response or isinstance(request, m.Fault) or request.SENDER == "cpe":
                    name = request.NAME if request is not None else "an empty envelope"
                    raise SessionError(f"ACS sent {name} where a request was expected")
                answer = Envelope(phone.handle(request), id=envelope.id)
        finally:
            await client.close()

    async def _call(self, client: HttpClient, url: str, request: m.Message) -> m.Message:
        """Send one of the phone's own requests and check the ACS's response to it."""
        request_id = str(next(self._ids))
        envelope = await self._post(client, url, Envelope(request, id=request_id))
        if envelope is None:
            raise SessionError(f"ACS ended the session instead of answering {request.NAME}")
        try:
            reply = codec.check_reply(envelope, (request_id, type(request)))
        except codec.CwmpProtocolError as exc:
            raise SessionError(f"ACS answered {request.NAME} wrongly: {exc.reason}") from None
        if isinstance(reply, m.Fault):
            raise SessionError(f"ACS answered {request.NAME} with fault {reply.fault_code}")
        return reply

    async def _post(self, client: HttpClient, url: str, envelope: Envelope | None) -> Envelope | None:
        """One HTTP POST of the session (None = the empty POST); returns None when the ACS ended the session."""
        quirks = self.phone.quirks
        headers = {b"user-agent": USER_AGENT}
        body = b""
        if envelope is not None:
            try:
                body = serialize_for(quirks, envelope)
            except codec.CwmpSerializeError as exc:
                raise SessionError(f"cannot encode {envelope.body.NAME}: {exc.reason}") from None
            headers[b"content-type"] = b'text/xml; charset="utf-8"'
            if isinstance(envelope.body, (m.Inform, m.TransferComplete)):
                headers[b"soapaction"] = b'""'
        reply = await client.request(b"POST", url, body, headers)
        if reply.status == 204 or (reply.status == 200 and not reply.body.strip()):
            return None
        if reply.status != 200:
            retry_after = _retry_after(reply.headers, self._scheduler.seconds()) if reply.status == 503 else None
            raise SessionError(f"ACS answered HTTP {reply.status}", status=reply.status, retry_after=retry_after)
        refusal = quirks.refusal(reply.body)
        if refusal is not None:
            raise SessionError(f"refused the ACS's message: {refusal}")
        try:
            return codec.parse(reply.body, max_size=self._settings.max_body)
        except codec.CwmpParseError as exc:
            raise SessionError(f"unparseable ACS message: {exc.reason}") from None

    # -- actions after a session -------------------------------------------------------------------------------

    def _perform(self, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, RebootAction):
                self._go_down(self.phone.reboot)
                return  # unfinished transfers are offered again after the reboot
            if isinstance(action, FactoryResetAction):
                self._go_down(self.phone.factory_reset)
                return
            # Timers die with a reboot, as on a phone that keeps them in memory (transfers are offered again).
            epoch = self._epoch
            if isinstance(action, ScheduleInformAction):
                self._scheduler.call_later(action.delay_seconds, lambda a=action: self._scheduled_inform(a, epoch))
            elif isinstance(action, (DownloadAction, UploadAction)):
                if action.delay_seconds:
                    self._scheduler.call_later(action.delay_seconds, lambda a=action: self._start_transfer(a, epoch))
                else:
                    self._start_transfer(action, epoch)  # now, so the session after this one waits for it

    def _scheduled_inform(self, action: ScheduleInformAction, epoch: int) -> None:
        if epoch == self._epoch and self.state not in (AgentState.OFF, AgentState.REBOOTING):
            self.request_session(action.events)

    def _start_transfer(self, action: DownloadAction | UploadAction, epoch: int) -> None:
        if epoch != self._epoch or self.state in (AgentState.OFF, AgentState.REBOOTING):
            return
        if not self.phone.begin_transfer(action.transfer_id):
            return  # cancelled by CancelTransfer meanwhile
        running = defer.ensureDeferred(self._transfer(action, epoch))
        self._transfers.add(running)
        running.addErrback(lambda failure: log.error("sim.transfer_bug", phone=self.ip, error=repr(failure.value)))
        running.addBoth(lambda _: self._transfer_done(running))

    def _transfer_done(self, running: defer.Deferred[None]) -> None:
        self._transfers.discard(running)
        self.request_session()  # its TransferComplete, and whatever waited for the transfers to finish

    async def _transfer(self, action: DownloadAction | UploadAction, epoch: int) -> None:
        start = _utc_now(self._scheduler)
        fault: tuple[int, str] | None = None
        data: bytes | None = None
        is_download = isinstance(action, DownloadAction)
        client = HttpClient(
            self._reactor,
            bind_ip=self.ip,
            username=action.username,
            password=action.password,
            tls_policy=self._tls_policy,
            timeout=self._settings.transfer_timeout,
            max_body=self._settings.max_body,
        )
        try:
            if is_download:
                reply = await client.request(b"GET", action.url, None, {b"user-agent": USER_AGENT})
                if reply.status == 200:
                    data = reply.body
                else:
                    fault = _transfer_fault(reply.status, is_download=True)
            else:
                headers = {b"user-agent": USER_AGENT, b"content-type": b"application/octet-stream"}
                reply = await client.request(b"PUT", action.url, self.phone.export_config(), headers)
                if reply.status not in (200, 201, 204):
                    fault = _transfer_fault(reply.status, is_download=False)
        except SessionError as exc:
            fault = (9015 if is_download else 9011, _clip(f"transfer failed: {exc.reason}"))
        finally:
            await client.close()
        if epoch != self._epoch or self.state is AgentState.OFF:
            return  # the phone rebooted meanwhile; the transfer will be offered again
        end = _utc_now(self._scheduler)
        if is_download:
            result = self.phone.complete_download(action.transfer_id, data, fault, start, end)
        else:
            result = self.phone.complete_upload(action.transfer_id, fault, start, end)
        self._stats.add("transfers_ok" if result.fault_code == 0 else "transfers_failed")
        self._persist()
        self._perform(self.phone.take_actions())  # a firmware image reboots the phone at once


def _transfer_fault(status: int, *, is_download: bool) -> tuple[int, str]:
    if status in (401, 403):
        return 9012, f"file server refused the credentials (HTTP {status})"
    if is_download:
        return 9016 if status == 404 else 9010, f"file server answered HTTP {status}"
    return 9011, f"file server answered HTTP {status}"


def _clip(text: str) -> str:
    return text if len(text) <= 256 else text[:253] + "..."


def _utc_now(scheduler: Scheduler) -> datetime:
    return datetime.fromtimestamp(scheduler.seconds(), timezone.utc)


def _cancel(timer: Timer | None) -> None:
    if timer is not None:
        timer.cancel()
