"""Connection requests: asking a phone to open a session now (TR-069 section 3.2.2; TR-111 behind NAT).

``ConnectionRequestService.kick(device_id, by=..., reason=...) -> Deferred[KickResult]`` decides, sends and records
one request; ``kick_many`` does it for many devices at ``rate`` per second. Campaigns, the CLI (``acs kick``) and the
operator API all go through ``kick``.

Theory of operation
-------------------
1. **Refusals before the wire.** Unknown device; an open session (the CWMP resource's registry, and the store for
   sessions of other processes): ``in_session`` — TR-069 forbids a connection request into a session; fewer than
   ``min_interval`` seconds since the last request that went out to this phone, or one in flight: ``too_soon``.
2. **Durable first.** A ``pending`` row in ``connection_requests`` exists before anything is sent, so a session that
   answers the request is linked to it (``session_started``) even when it arrives before the phone's HTTP answer.
3. **Where to.** The URL is the newest ConnectionRequestURL the phone itself reported (Inform or read-back), never
   one the ACS guessed. After the policy moved the connection-request port and read the new port back, the old
   URL is stale and is not used (``no_url`` until the phone's next Inform brings the new URL, or the UDP path). A
   URL that is not plain ``http(s)://<IP address>[:port]/…``, or that points at loopback while the phone does
   not, is not used (``no_url``, the detail says why): the device must not make the ACS request arbitrary addresses.
4. **Credentials.** Username: the ConnectionRequestUsername read back from the phone, else its serial number (what
   the policy sets). Password: the escrowed ``acs.connection_request_password``. The policy stores a new password
   as *pending* before sending it and promotes it when the phone accepts; if that answer was lost the phone may
   already use the pending one, so on a 401 the pending password is tried after the active one. No escrowed
   password: ``no_credentials`` (the ACS never knows factory credentials).
5. **HTTP** (``acs.connreq_http``): Digest, short timeouts, one retry on a reset connection. At most ``concurrency``
   requests are in flight; the rest wait their turn.
6. **UDP (TR-111).** When the URL is unreachable (``refused``, ``offline``, ``timeout``, ``reset``) or unknown, and
   the phone has a UDPConnectionRequestAddress (from its Informs, or from its STUN bindings), the request goes by
   UDP, signed with the same credentials, ``udp_repeats`` times from the STUN server's port — the only source the
   NAT lets in. Outcome ``sent``: UDP has no answer; delivery shows as the session. A process without the STUN
   port (``acs kick`` beside a running ACS) hands the request over through the store (``queued``); the ACS process
   sends it within ``relay_interval`` (``start_relay``) or marks it ``expired`` after ``relay_ttl``.
7. **Delivered** means a ``6 CONNECTION REQUEST`` session arrived: ``session_started`` (the handler's hook, inside
   the Inform's transaction) links the newest deliverable request of the last ``delivery_window`` seconds.

Every kick leaves a row and an audit entry (actor ``by``, action ``connection-request``); logs and rows never hold a
password.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import structlog
from twisted.internet import defer, task

from cwmp_models import messages as m

from .connreq_http import UNREACHABLE, HttpAttempt, send_http_request
from .store import DeviceRecord, Store

__all__ = [
    "ConnectionRequestService",
    "KickResult",
    "Route",
    "plan_route",
    "parse_udp_address",
    "format_udp_address",
]

CONNECTION_REQUEST_EVENT = "6 CONNECTION REQUEST"
PASSWORD_SECRET = "acs.connection_request_password"
_ROOTS = ("Device", "InternetGatewayDevice")
# Outcomes that mean the request went out as far as the ACS can tell.
SUCCESSFUL = frozenset({"accepted", "sent", "queued"})

log = structlog.get_logger("acs.connreq")


@dataclass(frozen=True)
class KickResult:
    device_id: str
    outcome: str
    request_id: int | None = None
    method: str | None = None
    url: str | None = None
    http_status: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome in SUCCESSFUL


@dataclass(frozen=True)
class Route:
    url: str | None
    udp_address: tuple[str, int] | None
    why_no_url: str = ""


def parse_udp_address(text: str | None) -> tuple[str, int] | None:
    """"host:port" or "[v6]:port" (UDPConnectionRequestAddress) as (IP, port); None when it is not one."""
    if not text:
        return None
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit():
        return None
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    port = int(port_text)
    return (str(address), port) if 0 < port < 65536 else None


def format_udp_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _url_problem(url: str, device_ip: str | None) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"scheme {parts.scheme!r} is not http or https"
    if parts.username is not None or parts.password is not None:
        return "it carries credentials"
    try:
        host = ipaddress.ip_address(parts.hostname or "")
        port = parts.port
    except ValueError:
        return "the host is not an IP address (the ACS does not resolve names a device reports)"
    if port == 0:
        return "port 0"
    if host.is_loopback or host.is_unspecified:
        try:
            own = device_ip is not None and ipaddress.ip_address(device_ip).is_loopback
        except ValueError:
            own = False
        if not own:
            return "it points at the ACS host itself"
    return None


def _url_port(url: str) -> int | None:
    parts = urlsplit(url)
    try:
        return parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None


def plan_route(
    *,
    url: str | None,
    url_observed_at: float | None,
    port_reading: tuple[str | None, float] | None,
    device_ip: str | None,
    udp_address: str | None,
    udp_possible: bool,
) -> Route:
    """Where a connection request may go (pure). ``port_reading`` is the X_GRANDSTREAM_ConnectionRequestPort value
    read back from the phone and when; a newer reading that disagrees with the URL makes the URL stale."""
    udp = parse_udp_address(udp_address) if udp_possible else None
    if not url:
        return Route(None, udp, "the phone has reported no ConnectionRequestURL")
    problem = _url_problem(url, device_ip)
    if problem:
        return Route(None, udp, f"ConnectionRequestURL refused: {problem}")
    if port_reading is not None and port_reading[0] is not None:
        value, read_at = port_reading
        if (url_observed_at is None or read_at > url_observed_at) and str(_url_port(url)) != value.strip():
            return Route(None, udp, f"the connection-request port moved to {value}; the phone's next Inform "
                                    "brings the new URL")
    return Route(url, udp)


class ConnectionRequestService:
    def __init__(
        self,
        store: Store,
        vault: Any,
        *,
        reactor: Any,
        timeout: float = 5.0,
        concurrency: int = 50,
        min_interval: float = 30.0,
        rate: float = 20.0,
        allow_basic: bool = False,
        udp_repeats: int = 3,
        udp_interval: float = 0.5,
        stun_server: Any = None,
        udp_handover: bool = False,
        is_session_open: Callable[[str], bool] | None = None,
        delivery_window: float = 300.0,
        session_stale_after: float = 600.0,
        relay_ttl: float = 30.0,
    ) -> None:
        if concurrency < 1 or rate <= 0 or timeout <= 0 or min_interval < 0 or udp_repeats < 1:
            raise ValueError("concurrency, rate, timeout and udp_repeats must be positive; min_interval not negative")
        self.store = store
        self.vault = vault
        self.reactor = reactor
        self.timeout = timeout
        self.min_interval = min_interval
        self.rate = rate
        self.allow_basic = allow_basic
        self.udp_repeats = udp_repeats
        self.udp_interval = udp_interval
        self.stun_server = stun_server
        self.udp_handover = udp_handover
        self._is_session_open = is_session_open
        self.delivery_window = delivery_window
        self.session_stale_after = session_stale_after
        self.relay_ttl = relay_ttl
        self._slots = defer.DeferredSemaphore(concurrency)
        self._in_flight: set[str] = set()
        self._next_bulk_slot = 0.0

    # ---- the handler's hook -----------------------------------------------------------------------------------------

    def session_started(self, device_id: str, session_id: str, inform: m.Inform) -> int | None:
        """A session began (inside its Inform's transaction): the id of the request it answers, marked delivered."""
        if CONNECTION_REQUEST_EVENT not in inform.event_codes:
            return None
        since = self.store.clock() - self.delivery_window
        request_id = self.store.connection_requests.link_delivery(device_id, session_id, since=since)
        if request_id is not None:
            log.info("connection request delivered", device_id=device_id, session_id=session_id, request=request_id)
        return request_id

    # ---- kicking ----------------------------------------------------------------------------------------------------

    def kick(self, device_id: str, *, by: str, reason: str = "") -> defer.Deferred[KickResult]:
        return defer.ensureDeferred(self._kick(device_id, by, reason))

    def kick_many(self, device_ids: Iterable[str], *, by: str, reason: str = "") -> defer.Deferred[list[KickResult]]:
        """Kick each device once, starting them ``rate`` per second (shared by every bulk run of this service) and
        at most ``concurrency`` at a time. Fires with the results in the order given."""
        return defer.ensureDeferred(self._kick_many(list(dict.fromkeys(device_ids)), by, reason))

    async def _kick_many(self, device_ids: list[str], by: str, reason: str) -> list[KickResult]:
        started: list[defer.Deferred[KickResult]] = []
        for device_id in device_ids:
            delay = self._bulk_delay()
            if delay > 0:
                await task.deferLater(self.reactor, delay, lambda: None)
            started.append(self.kick(device_id, by=by, reason=reason))
        return list(await defer.gatherResults(started))

    def _bulk_delay(self) -> float:
        now = self.reactor.seconds()
        slot = max(now, self._next_bulk_slot)
        self._next_bulk_slot = slot + 1.0 / self.rate
        return slot - now

    def session_open(self, device_id: str) -> bool:
        if self._is_session_open is not None and self._is_session_open(device_id):
            return True
        since = self.store.clock() - self.session_stale_after
        return self.store.connection_requests.session_open(device_id, since=since)

    async def _kick(self, device_id: str, by: str, reason: str) -> KickResult:
        device = self.store.devices.get(device_id)
        if device is None:
            return KickResult(device_id, "unknown_device", detail="no such device")
        refusal = self._refusal(device_id)
        if refusal is not None:
            outcome, detail = refusal
            request_id = self.store.connection_requests.create(device_id, by=by, reason=reason, outcome=outcome,
                                                               detail=detail)
            return self._done(KickResult(device_id, outcome, request_id, detail=detail), by, reason)
        request_id = self.store.connection_requests.create(device_id, by=by, reason=reason)
        self._in_flight.add(device_id)
        try:
            result = await self._slots.run(lambda: defer.ensureDeferred(self._attempt(device, request_id)))
        except Exception as exc:  # a bug must not leave the row pending or the device blocked
            log.exception("connection request failed", device_id=device_id)
            result = KickResult(device_id, "error", request_id, detail=type(exc).__name__)
            self.store.connection_requests.update(request_id, outcome="error", detail=result.detail)
        finally:
            self._in_flight.discard(device_id)
        return self._done(result, by, reason)

    def _refusal(self, device_id: str) -> tuple[str, str] | None:
        if self.session_open(device_id):
            return "in_session", "the phone is in a session with the ACS"
        if device_id in self._in_flight:
            return "too_soon", "a connection request to this phone is in flight"
        last = self.store.connection_requests.last_sent_at(device_id)
        if last is not None and self.store.clock() - last < self.min_interval:
            wait = self.min_interval - (self.store.clock() - last)
            return "too_soon", f"the last request was less than {self.min_interval:g} s ago; retry in {wait:.0f} s"
        return None

    def _done(self, result: KickResult, by: str, reason: str) -> KickResult:
        self.store.audit.record(
            by, "connection-request", device_id=result.device_id,
            detail={"request": result.request_id, "outcome": result.outcome, "method": result.method,
                    "http_status": result.http_status},
            reason=reason,
        )
        log.info("connection request", device_id=result.device_id, request=result.request_id,
                 outcome=result.outcome, method=result.method, status=result.http_status, detail=result.detail)
        return result

    async def _attempt(self, device: DeviceRecord, request_id: int) -> KickResult:
        requests = self.store.connection_requests

        def finish(outcome: str, *, method: str | None = None, url: str | None = None, status: int | None = None,
                   detail: str = "", final: bool = True) -> KickResult:
            requests.update(request_id, outcome=outcome, method=method, url=url, http_status=status, detail=detail,
                            final=final)
            return KickResult(device.id, outcome, request_id, method, url, status, detail)

        if self.session_open(device.id):  # a session may have begun while this request waited for a slot
            return finish("in_session", detail="the phone is in a session with the ACS")
        credentials, problem = self.credentials(device)
        if not credentials:
            return finish("no_credentials", detail=problem)
        route = self.route(device)
        http: HttpAttempt | None = None
        if route.url is not None:
            requests.update(request_id, outcome="pending", method="http", url=route.url, final=False)
            http = await send_http_request(self.reactor, route.url, credentials, timeout=self.timeout,
                                           allow_basic=self.allow_basic)
            if http.outcome not in UNREACHABLE or route.udp_address is None:
                return finish(http.outcome, method="http", url=route.url, status=http.status, detail=http.detail)
        elif route.udp_address is None:
            return finish("no_url", detail=route.why_no_url)
        why_udp = f"HTTP {http.outcome}: {http.detail}" if http is not None else route.why_no_url
        address = format_udp_address(*route.udp_address)
        if self.stun_server is None:
            # Only the process holding the STUN port can get through the NAT: hand the request over.
            return finish("queued", method="udp", url=address, detail=f"{why_udp}; queued for the STUN port",
                          final=False)
        return await self._send_udp(device, request_id, route.udp_address, credentials, why_udp)

    async def _send_udp(self, device: DeviceRecord, request_id: int, address: tuple[str, int],
                        credentials: list[tuple[str, str]], why: str) -> KickResult:
        text = format_udp_address(*address)
        try:
            # One request per password the phone may hold; it acts on the one whose signature verifies.
            for username, password in credentials:
                await self.stun_server.send_connection_request(address, username, password, repeats=self.udp_repeats,
                                                               interval=self.udp_interval)
        except Exception as exc:  # StunServerNotListening, a bad address, a failed send
            detail = f"{why}; UDP send failed: {type(exc).__name__}"
            self.store.connection_requests.update(request_id, outcome="error", method="udp", url=text, detail=detail)
            return KickResult(device.id, "error", request_id, "udp", text, None, detail)
        detail = f"{why}; sent by UDP x{self.udp_repeats}"
        self.store.connection_requests.update(request_id, outcome="sent", method="udp", url=text, detail=detail)
        return KickResult(device.id, "sent", request_id, "udp", text, None, detail)

    # ---- facts ------------------------------------------------------------------------------------------------------

    def _readings(self, device: DeviceRecord, *names: str) -> dict[str, tuple[str | None, float]]:
        paths = {f"{root}.ManagementServer.{name}": name for root in _ROOTS for name in names}
        found: dict[str, tuple[str | None, float]] = {}
        for path, row in self.store.parameters.get(device.id, paths).items():
            name = paths[path]
            if name not in found or row.observed_at > found[name][1]:
                found[name] = (row.value, row.observed_at)
        return found

    def route(self, device: DeviceRecord) -> Route:
        readings = self._readings(device, "ConnectionRequestURL", "X_GRANDSTREAM_ConnectionRequestPort")
        url_reading = readings.get("ConnectionRequestURL")
        url = url_reading[0] if url_reading and url_reading[0] else device.connection_request_url
        return plan_route(
            url=url,
            url_observed_at=url_reading[1] if url_reading else device.last_inform,
            port_reading=readings.get("X_GRANDSTREAM_ConnectionRequestPort"),
            device_ip=device.ip,
            udp_address=device.udp_connection_request_address,
            udp_possible=self.stun_server is not None or self.udp_handover,
        )

    def credentials(self, device: DeviceRecord) -> tuple[list[tuple[str, str]], str]:
        """(username, password) pairs to try, active password first; or no pairs and why."""
        if self.vault is None:
            return [], "no vault (secrets.key_file): the ACS holds no connection-request password"
        username_reading = self._readings(device, "ConnectionRequestUsername").get("ConnectionRequestUsername")
        username = (username_reading[0] if username_reading else None) or device.serial_number
        passwords: list[str] = []
        for state in ("active", "pending"):
            blob = self.store.secrets.get(device.id, PASSWORD_SECRET, state=state)
            if blob is None:
                continue
            try:
                password = self.vault.open(device.id, PASSWORD_SECRET, blob)
            except Exception as exc:  # VaultError: another key, altered data
                log.error("escrowed password does not open", device_id=device.id, state=state,
                          error=type(exc).__name__)
                continue
            if password not in passwords:
                passwords.append(password)
        if not passwords:
            return [], "no escrowed connection-request password (the policy sets one)"
        return [(username, password) for password in passwords], ""

    # ---- the UDP hand-over, run by the process holding the STUN port -----------------------------------------------

    def start_relay(self, interval: float = 1.0) -> task.LoopingCall:
        loop = task.LoopingCall(self._relay_tick)
        loop.clock = self.reactor
        loop.start(interval, now=False)
        return loop

    def _relay_tick(self) -> defer.Deferred[None]:
        def failed(failure: Any) -> None:  # keep the loop alive: the next tick may succeed
            log.error("relaying queued UDP connection requests failed", error=failure.getErrorMessage())

        return defer.ensureDeferred(self.relay_queued()).addCallbacks(lambda _: None, failed)

    async def relay_queued(self) -> int:
        """Send the UDP requests other processes queued; returns how many went out."""
        if self.stun_server is None:
            return 0
        requests = self.store.connection_requests
        now = self.store.clock()
        requests.expire_queued(before=now - self.relay_ttl)
        sent = 0
        for record in requests.queued(since=now - self.relay_ttl):
            if not requests.claim_queued(record.id):
                continue
            device = self.store.devices.get(record.device_id)
            address = parse_udp_address(record.url)
            credentials, problem = self.credentials(device) if device is not None else ([], "device deleted")
            if device is None or address is None or not credentials:
                requests.update(record.id, outcome="error", detail=problem or "no UDP address")
                continue
            result = await self._send_udp(device, record.id, address, credentials, record.detail)
            sent += result.outcome == "sent"
        return sent
