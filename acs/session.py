"""The CWMP session state machine, from the ACS's side. Pure: no I/O, no Twisted, no clock of its own.

Two rules, borrowed from h11:

1. Everything that affects transitions lives in this file. Whether a POST is allowed, what it means, and what the
   ACS may say next is decided here and only here; the HTTP adapter and the handler that talks to the store follow.
2. This file does not know what the ACS wants from the device. It neither reads the store nor decides which RPCs to
   send: a driver (acs.handler) reacts to the events the machine reports and tells it what to answer.

Theory of operation
-------------------
A CWMP session is a strict ping-pong over HTTP POSTs, always opened by the CPE::

    AWAITING_INFORM --Inform--> INFORM_RECEIVED --accept_inform()--> CPE_TURN
    CPE_TURN --CPE request--> CPE_REQUEST_RECEIVED --answer()--> CPE_TURN
    CPE_TURN --empty POST--> ACS_TURN
    ACS_TURN --send(request)--> AWAITING_REPLY --matching reply--> ACS_TURN
    ACS_TURN --finish()--> DONE            (the adapter answers 204 No Content)

Each call that returns an envelope hands the adapter the one HTTP response for the POST it is answering. Each POST
goes through :meth:`CwmpSession.receive`, which returns exactly one event telling the driver what happened. Errors by
the device (a reply with the wrong ID, a request when none is allowed) are *events*, never exceptions: the device is
wrong, the server is fine. Calling a driver method in the wrong state is a bug in the driver and raises
:class:`LocalProtocolError`.
"""

from __future__ import annotations

import enum
import itertools
import secrets
from dataclasses import dataclass, field

from cwmp_models import messages as m
from cwmp_models.envelope import NS_CWMP_1_2, Envelope, negotiate_version

__all__ = [
    "State",
    "CwmpSession",
    "LocalProtocolError",
    "InformReceived",
    "CpeRequestReceived",
    "AcsTurn",
    "ReplyReceived",
    "ProtocolViolation",
    "InformRestartsSession",
    "DEFAULT_SESSION_TIMEOUT",
    "CPE_REQUESTS",
]

DEFAULT_SESSION_TIMEOUT = 30.0

# What a CPE may ask of the ACS (TR-069 Amendment 6, A.4). Anything else gets fault 8000.
CPE_REQUESTS: frozenset[type[m.Message]] = frozenset(
    {
        m.GetRPCMethods,
        m.TransferComplete,
        m.AutonomousTransferComplete,
        m.RequestDownload,
        m.Kicked,
        m.DUStateChangeComplete,
        m.AutonomousDUStateChangeComplete,
    }
)


class State(enum.Enum):
    AWAITING_INFORM = "awaiting-inform"
    INFORM_RECEIVED = "inform-received"
    CPE_TURN = "cpe-turn"
    CPE_REQUEST_RECEIVED = "cpe-request-received"
    ACS_TURN = "acs-turn"
    AWAITING_REPLY = "awaiting-reply"
    DONE = "done"


class LocalProtocolError(RuntimeError):
    """The driver asked the machine for something the current state does not allow (a programming error)."""


# ---- events reported to the driver ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InformReceived:
    """A session opened. Persist the Inform, then call accept_inform() (or reject_inform())."""

    inform: m.Inform
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class CpeRequestReceived:
    """The CPE asked something (TransferComplete, GetRPCMethods, ...). Act on it, then call answer()."""

    request: m.Message


@dataclass(frozen=True, slots=True)
class AcsTurn:
    """The CPE has nothing more to ask. Call send(request) or finish()."""


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    """The CPE answered our outstanding request (a response or a Fault). Call send() or finish() next."""

    request: m.Message
    reply: m.Message


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The device broke the protocol. Record it against the device; ``response`` is what to send back (None: end
    the session with 204). ``fatal`` says the session is over."""

    reason: str
    response: Envelope | None
    fatal: bool


@dataclass(frozen=True, slots=True)
class InformRestartsSession:
    """An Inform arrived in the middle of a session. Some stacks do this after a local timeout: the old session is
    over (end it as superseded) and the Inform opens a new one, which the caller feeds to a fresh machine."""

    envelope: Envelope


Event = InformReceived | CpeRequestReceived | AcsTurn | ReplyReceived | ProtocolViolation | InformRestartsSession


# ---- how an incoming POST is classified ----------------------------------------------------------------------------


class _Input(enum.Enum):
    INFORM = "Inform"
    CPE_REQUEST = "CPE request"
    UNKNOWN_REQUEST = "unsupported request"
    REPLY = "reply"
    EMPTY = "empty POST"


def _classify(envelope: Envelope | None) -> _Input:
    body = None if envelope is None else envelope.body
    if body is None:
        return _Input.EMPTY
    if isinstance(body, m.Inform):
        return _Input.INFORM
    if isinstance(body, m.Fault) or body.is_response:
        return _Input.REPLY
    if type(body) in CPE_REQUESTS:
        return _Input.CPE_REQUEST
    return _Input.UNKNOWN_REQUEST


# (state, input) -> handler name. Pairs not listed are protocol violations. This table is the whole machine.
_TRANSITIONS: dict[tuple[State, _Input], str] = {
    (State.AWAITING_INFORM, _Input.INFORM): "_on_inform",
    (State.CPE_TURN, _Input.CPE_REQUEST): "_on_cpe_request",
    (State.CPE_TURN, _Input.UNKNOWN_REQUEST): "_on_unknown_request",
    (State.CPE_TURN, _Input.EMPTY): "_on_cpe_done",
    (State.CPE_TURN, _Input.INFORM): "_on_inform_mid_session",
    (State.AWAITING_REPLY, _Input.REPLY): "_on_reply",
    (State.AWAITING_REPLY, _Input.INFORM): "_on_inform_mid_session",
    (State.ACS_TURN, _Input.INFORM): "_on_inform_mid_session",
    (State.DONE, _Input.INFORM): "_on_inform_mid_session",
}

# What the driver may call in which state.
_DRIVER_CALLS: dict[str, frozenset[State]] = {
    "accept_inform": frozenset({State.INFORM_RECEIVED}),
    "reject_inform": frozenset({State.INFORM_RECEIVED}),
    "answer": frozenset({State.CPE_REQUEST_RECEIVED}),
    "send": frozenset({State.ACS_TURN}),
    "finish": frozenset({State.ACS_TURN, State.CPE_TURN, State.AWAITING_REPLY, State.INFORM_RECEIVED}),
}

_session_numbers = itertools.count(1)


@dataclass
class CwmpSession:
    """One CWMP session. ``max_rpcs`` caps the ACS requests sent in it (a runaway plan must not hold a device)."""

    session_id: str = field(default_factory=lambda: secrets.token_hex(8))
    max_rpcs: int = 64
    state: State = State.AWAITING_INFORM
    inform: m.Inform | None = None
    namespace: str = NS_CWMP_1_2
    supported_versions: str | None = None
    timeout: float = DEFAULT_SESSION_TIMEOUT
    hold_requests: bool = False
    rpc_count: int = 0
    last_activity: float = 0.0
    outcome: str | None = None
    violations: list[str] = field(default_factory=list)
    _outstanding: tuple[str, m.Message] | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _incoming_id: str | None = None

    # ---- input ------------------------------------------------------------------------------------------------------

    def receive(self, envelope: Envelope | None, now: float) -> Event:
        """Feed one POST (None or an envelope with an empty Body: the empty POST). Returns what it means."""
        self.last_activity = now
        kind = _classify(envelope)
        self._incoming_id = None if envelope is None else envelope.id
        handler = _TRANSITIONS.get((self.state, kind))
        if handler is None:
            return self._violation_for(kind, envelope)
        return getattr(self, handler)(envelope)

    def _on_inform(self, envelope: Envelope) -> Event:
        self.inform = envelope.body  # type: ignore[assignment]
        self.namespace = envelope.namespace
        self.supported_versions = envelope.supported_cwmp_versions
        if envelope.session_timeout:
            self.timeout = float(envelope.session_timeout)
        self.state = State.INFORM_RECEIVED
        return InformReceived(self.inform, envelope)  # type: ignore[arg-type]

    def _on_inform_mid_session(self, envelope: Envelope) -> Event:
        self._end("superseded")
        return InformRestartsSession(envelope)

    def _on_cpe_request(self, envelope: Envelope) -> Event:
        if self.hold_requests:
            # We asked the CPE to hold its requests; it did not. Refuse this one and keep the session.
            return self._violation(
                f"{envelope.body.NAME} sent while HoldRequests was set",  # type: ignore[union-attr]
                self._reply_envelope(m.Fault.of(8001, "Requests are held")),
                fatal=False,
            )
        self.state = State.CPE_REQUEST_RECEIVED
        return CpeRequestReceived(envelope.body)  # type: ignore[arg-type]

    def _on_unknown_request(self, envelope: Envelope) -> Event:
        name = envelope.body.NAME  # type: ignore[union-attr]
        return self._violation(
            f"unsupported CPE request {name}", self._reply_envelope(m.Fault.of(8000)), fatal=False
        )

    def _on_cpe_done(self, envelope: Envelope | None) -> Event:
        self.state = State.ACS_TURN
        return AcsTurn()

    def _on_reply(self, envelope: Envelope) -> Event:
        assert self._outstanding is not None
        request_id, request = self._outstanding
        reply = envelope.body
        if envelope.id is not None and envelope.id != request_id:
            return self._fatal(f"reply ID {envelope.id!r} does not match request ID {request_id!r}")
        if not isinstance(reply, m.Fault) and type(reply) is not request.RESPONSE:
            return self._fatal(f"{reply.NAME} does not answer {request.NAME}")  # type: ignore[union-attr]
        self._outstanding = None
        self.state = State.ACS_TURN
        return ReplyReceived(request, reply)  # type: ignore[arg-type]

    def _violation_for(self, kind: _Input, envelope: Envelope | None) -> Event:
        if self.state is State.AWAITING_INFORM:
            return self._fatal(f"session must open with an Inform, got {kind.value}", fault=8003)
        if self.state is State.DONE:
            return self._fatal(f"{kind.value} after the session ended")
        if self.state is State.AWAITING_REPLY and kind is _Input.EMPTY:
            request = self._outstanding[1].NAME if self._outstanding else "request"
            return self._fatal(f"empty POST instead of a reply to {request}")
        if self.state is State.AWAITING_REPLY and kind in (_Input.CPE_REQUEST, _Input.UNKNOWN_REQUEST):
            return self._fatal(f"{envelope.body.NAME} instead of a reply")  # type: ignore[union-attr]
        return self._fatal(f"unexpected {kind.value} in state {self.state.value}")

    def _violation(self, reason: str, response: Envelope | None, *, fatal: bool) -> ProtocolViolation:
        self.violations.append(reason)
        return ProtocolViolation(reason, response, fatal)

    def _fatal(self, reason: str, fault: int | None = None) -> ProtocolViolation:
        # A device that lost track of the exchange cannot be steered back; end cleanly and let it call again.
        response = self._reply_envelope(m.Fault.of(fault, reason)) if fault else None
        self._end("protocol-error")
        return self._violation(reason, response, fatal=True)

    # ---- driver calls -----------------------------------------------------------------------------------------------

    def accept_inform(self, *, hold_requests: bool = False) -> Envelope:
        """The InformResponse (MaxEnvelopes 1), with UseCWMPVersion when the CPE offered SupportedCWMPVersions.
        Call only after the Inform's events and parameters are durable."""
        self._require("accept_inform")
        envelope = self._reply_envelope(m.InformResponse(1))
        offered = self.supported_versions
        if offered:
            version = negotiate_version(offered)
            if version is None:
                return self.reject_inform(m.Fault.of(8006))
            envelope.use_cwmp_version = version
        self.hold_requests = hold_requests
        envelope.hold_requests = True if hold_requests else None
        self.state = State.CPE_TURN
        return envelope

    def reject_inform(self, fault: m.Fault) -> Envelope:
        """Refuse the session (e.g. 8005 Retry request under load). The session ends."""
        self._require("reject_inform")
        envelope = self._reply_envelope(fault)
        self._end("rejected")
        return envelope

    def answer(self, response: m.Message) -> Envelope:
        """Answer the CPE request just received (its Response message, or a Fault)."""
        self._require("answer")
        self.state = State.CPE_TURN
        return self._reply_envelope(response)

    def send(self, request: m.Message, *, hold_requests: bool | None = None) -> Envelope | None:
        """Send the next ACS request. Returns None (end with 204) once the RPC cap is reached: the request is not
        sent, and the caller keeps it for the next session."""
        self._require("send")
        if request.SENDER not in ("acs", "both") or request.is_response or isinstance(request, m.Fault):
            raise LocalProtocolError(f"{type(request).__name__} is not an ACS request")
        if self.rpc_count >= self.max_rpcs:
            self._end("rpc-cap")
            return None
        if hold_requests is not None:
            self.hold_requests = hold_requests
        self.rpc_count += 1
        request_id = f"{self.session_id[:8]}-{next(self._ids)}"
        self._outstanding = (request_id, request)
        self.state = State.AWAITING_REPLY
        return Envelope(
            request,
            id=request_id,
            hold_requests=True if self.hold_requests else None,
            namespace=self.namespace,
        )

    def finish(self, outcome: str = "ok") -> None:
        """End the session: the adapter answers 204 No Content."""
        self._require("finish")
        self._end(outcome)

    def expire(self) -> None:
        """The session timed out (no POST within ``timeout``): release it."""
        if self.state is not State.DONE:
            self._end("timeout")

    def is_expired(self, now: float) -> bool:
        return self.state is not State.DONE and now - self.last_activity > self.timeout

    @property
    def outstanding(self) -> m.Message | None:
        return None if self._outstanding is None else self._outstanding[1]

    @property
    def finished(self) -> bool:
        return self.state is State.DONE

    # ---- internals --------------------------------------------------------------------------------------------------

    def _require(self, call: str) -> None:
        if self.state not in _DRIVER_CALLS[call]:
            raise LocalProtocolError(f"{call}() is not allowed in state {self.state.value}")

    def _reply_envelope(self, body: m.Message) -> Envelope:
        # A response carries the ID of the request it answers (TR-069 3.7.1.5).
        return Envelope(body, id=self._incoming_id, namespace=self.namespace)

    def _end(self, outcome: str) -> None:
        self.state = State.DONE
        self._outstanding = None
        if self.outcome is None:
            self.outcome = outcome
