"""Drives one CWMP session against the store and the work sources. No Twisted here: the HTTP adapter feeds it parsed
envelopes and sends back what it returns.

Every answer that tells the device something is preceded by a commit: the Inform's events and parameters before the
InformResponse, a transfer's outcome before the TransferCompleteResponse, a work step's state before its request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

import structlog

from cwmp_models import messages as m
from cwmp_models.envelope import Envelope

from . import session as s
from .store import InformFacts, Store
from .work import DeviceContext, Step, WorkSource, WorkSourceFactory

# The methods this ACS implements for CPEs (answer to a CPE's GetRPCMethods).
ACS_METHODS = [
    "Inform",
    "GetRPCMethods",
    "TransferComplete",
    "AutonomousTransferComplete",
    "RequestDownload",
    "Kicked",
    "DUStateChangeComplete",
    "AutonomousDUStateChangeComplete",
]

_INFORM_FACTS = {
    "DeviceInfo.SoftwareVersion": "software_version",
    "DeviceInfo.HardwareVersion": "hardware_version",
    "ManagementServer.ConnectionRequestURL": "connection_request_url",
    "ManagementServer.ParameterKey": "parameter_key",
    "ManagementServer.UDPConnectionRequestAddress": "udp_connection_request_address",
}


def device_facts(inform: m.Inform, *, at: float, ip: str | None, cwmp_version: str) -> InformFacts:
    """What an Inform says about the device, whatever its root object (Device. or InternetGatewayDevice.)."""
    found: dict[str, Any] = {}
    for item in inform.parameter_list:
        suffix = item.name.partition(".")[2]
        attr = _INFORM_FACTS.get(suffix)
        if attr is not None:
            found[attr] = str(item.value)
    codes = inform.event_codes
    device_id = inform.device_id
    return InformFacts(
        device_id=device_id.key,
        oui=device_id.oui,
        product_class=device_id.product_class,
        serial_number=device_id.serial_number,
        manufacturer=device_id.manufacturer,
        at=at,
        ip=ip,
        cwmp_version=cwmp_version,
        booted="1 BOOT" in codes,
        bootstrapped="0 BOOTSTRAP" in codes,
        **found,
    )


@dataclass
class ActiveSession:
    """A running session with what the handler keeps beside the pure machine."""

    machine: s.CwmpSession
    device_id: str | None = None
    remote_ip: str | None = None
    identity_kind: str = "device"
    context: DeviceContext | None = None
    sources: list[WorkSource] = field(default_factory=list)
    current: Step | None = None
    connection_request_id: int | None = None
    log: Any = None


class SessionHandler:
    def __init__(
        self,
        store: Store,
        *,
        work: Iterable[WorkSourceFactory] = (),
        max_rpcs: int = 64,
        session_timeout: float = s.DEFAULT_SESSION_TIMEOUT,
        clock: Callable[[], float] = time.time,
        auth_disabled: bool = False,
        on_session_end: Callable[[ActiveSession], None] | None = None,
        on_session_start: Callable[[str, str, m.Inform], int | None] | None = None,
    ) -> None:
        self.store = store
        self.work_factories = list(work)
        self.max_rpcs = max_rpcs
        self.session_timeout = session_timeout
        self.clock = clock
        self.auth_disabled = auth_disabled
        self.on_session_end = on_session_end
        # Called inside the Inform's transaction with (device_id, session_id, inform); may return the id of the
        # connection request this session answers, which is stored with the session.
        self.on_session_start = on_session_start
        self.log = structlog.get_logger("acs.session")

    # ---- entry points for the adapter -------------------------------------------------------------------------------

    def new_session(self, *, remote_ip: str | None, identity_kind: str = "device") -> ActiveSession:
        # The device's own SessionTimeout header, when it sends one, replaces this default (acs.session).
        machine = s.CwmpSession(max_rpcs=self.max_rpcs, timeout=self.session_timeout)
        return ActiveSession(machine, remote_ip=remote_ip, identity_kind=identity_kind)

    def handle(self, active: ActiveSession, envelope: Envelope | None) -> Envelope | None:
        """One POST in, the answer out (None: 204 No Content, the session is over).

        Everything one POST changes is one transaction, committed before the answer is returned: whatever the device
        is about to be told is durable first, in one commit rather than one per repository call."""
        with self.store.transaction():
            return self._handle(active, envelope)

    def _handle(self, active: ActiveSession, envelope: Envelope | None) -> Envelope | None:
        event = active.machine.receive(envelope, self.clock())
        if isinstance(event, s.InformReceived):
            return self._on_inform(active, event)
        if isinstance(event, s.CpeRequestReceived):
            return active.machine.answer(self._answer_cpe_request(active, event.request))
        if isinstance(event, s.ReplyReceived):
            self._deliver_reply(active, event.reply)
            return self._next_request(active)
        if isinstance(event, s.AcsTurn):
            return self._next_request(active)
        if isinstance(event, s.ProtocolViolation):
            return self._on_violation(active, event)
        if isinstance(event, s.InformRestartsSession):
            raise AssertionError("the adapter restarts sessions before calling handle()")
        raise AssertionError(f"unhandled event {event!r}")

    def end(self, active: ActiveSession, outcome: str | None = None) -> None:
        """Release a session that is over (finished, timed out, superseded or dropped by the adapter)."""
        machine = active.machine
        if not machine.finished:
            if outcome == "timeout":
                machine.expire()
            else:
                machine._end(outcome or "aborted")  # noqa: SLF001 - the adapter knows why the session died
        if active.current is not None:
            active.current.on_abandoned()
            active.current = None
        if active.device_id is not None:
            self.store.history.end_session(
                machine.session_id, at=self.clock(), outcome=machine.outcome or "ok", rpc_count=machine.rpc_count
            )
            if active.log is not None:
                active.log.info("session ended", outcome=machine.outcome, rpcs=machine.rpc_count)
        if self.on_session_end is not None:
            self.on_session_end(active)

    # ---- the Inform -------------------------------------------------------------------------------------------------

    def _on_inform(self, active: ActiveSession, event: s.InformReceived) -> Envelope:
        inform = event.inform
        now = self.clock()
        machine = active.machine
        facts = device_facts(inform, at=now, ip=active.remote_ip, cwmp_version=event.envelope.protocol_version)
        enrolment = self.store.credentials.enrolment(facts.serial_number)
        if enrolment is not None:
            facts = _with_enrolment_labels(facts, enrolment.site, enrolment.device_group)
        with self.store.transaction():
            device = self.store.devices.record_inform(facts)
            if facts.bootstrapped:
                # A new or factory-reset device: everything we knew about its values is void.
                self.store.parameters.forget(device.id)
            if self.on_session_start is not None:
                active.connection_request_id = self.on_session_start(device.id, machine.session_id, inform)
            self.store.history.start_session(
                machine.session_id,
                device.id,
                at=now,
                remote_ip=active.remote_ip,
                events=[(e.event_code, e.command_key) for e in inform.event],
                cwmp_version=facts.cwmp_version,
                connection_request_id=active.connection_request_id,
            )
            self.store.parameters.record_values(
                device.id,
                [(p.name, p.value, p.type) for p in inform.parameter_list],
                at=now,
                session_id=machine.session_id,
            )
            # Requests sent in an earlier session that died before the reply are due again.
            self.store.tasks.requeue_unanswered(device.id, keep_kinds=("transfer",))
        active.device_id = device.id
        active.log = self.log.bind(device_id=device.id, session_id=machine.session_id)
        if self.auth_disabled:
            active.log.warning("device authentication is DISABLED (auth.enabled = false); lab use only")
        active.log.info("session opened", events=inform.event_codes, ip=active.remote_ip)
        active.context = DeviceContext(
            store=self.store,
            device=device,
            session_id=machine.session_id,
            inform=inform,
            now=now,
            identity_kind=active.identity_kind,
            log=active.log,
        )
        active.sources = [factory(active.context) for factory in self.work_factories]
        return machine.accept_inform()

    # ---- CPE requests -----------------------------------------------------------------------------------------------

    def _answer_cpe_request(self, active: ActiveSession, request: m.Message) -> m.Message:
        if isinstance(request, m.GetRPCMethods):
            return m.GetRPCMethodsResponse(list(ACS_METHODS))
        if isinstance(request, m.TransferComplete):
            self._on_transfer_complete(active, request)
            return m.TransferCompleteResponse()
        if isinstance(request, m.AutonomousTransferComplete):
            self._record_transfer_fault(active, "AutonomousTransferComplete", request.fault_struct)
            self.store.audit.record(
                f"device:{active.device_id}",
                "autonomous-transfer",
                device_id=active.device_id,
                detail={"file_type": request.file_type, "url": request.transfer_url,
                        "fault": request.fault_struct.fault_code},
            )
            return m.AutonomousTransferCompleteResponse()
        if isinstance(request, m.RequestDownload):
            self.store.audit.record(
                f"device:{active.device_id}",
                "request-download",
                device_id=active.device_id,
                detail={"file_type": request.file_type, "args": {a.name: a.value for a in request.file_type_arg}},
            )
            return m.RequestDownloadResponse()
        if isinstance(request, m.Kicked):
            # This ACS runs no kick portal: send the browser back where the device said it was going.
            return m.KickedResponse(request.next)
        if isinstance(request, (m.DUStateChangeComplete, m.AutonomousDUStateChangeComplete)):
            for result in request.results:
                if result.fault.fault_code:
                    self._record_fault(active, request.NAME, result.fault.fault_code, result.fault.fault_string or "")
            return m.DUStateChangeCompleteResponse() if isinstance(request, m.DUStateChangeComplete) else (
                m.AutonomousDUStateChangeCompleteResponse()
            )
        raise AssertionError(f"{request.NAME} is not a CPE request the machine lets through")

    def _on_transfer_complete(self, active: ActiveSession, message: m.TransferComplete) -> None:
        assert active.context is not None
        with self.store.transaction():
            self._record_transfer_fault(active, "TransferComplete", message.fault_struct)
            owned = any(source.on_transfer_complete(active.context, message) for source in active.sources)
            if not owned:
                task = self.store.tasks.by_command_key(active.device_id, message.command_key)
                if task is not None and task.status in ("pending", "sent"):
                    if message.fault_struct.fault_code:
                        self.store.tasks.fail(task.id, _fault_text(message.fault_struct), retry_at=None)
                    else:
                        self.store.tasks.complete(task.id, "transfer complete")

    def _record_transfer_fault(self, active: ActiveSession, source: str, fault: m.FaultStruct) -> None:
        if fault.fault_code:
            self._record_fault(active, source, fault.fault_code, fault.fault_string)

    # ---- ACS requests -----------------------------------------------------------------------------------------------

    def _next_request(self, active: ActiveSession) -> Envelope | None:
        machine = active.machine
        assert active.context is not None
        active.context.now = self.clock()
        for source in active.sources:
            step = source.next_step(active.context)
            if step is None:
                continue
            with self.store.transaction():
                envelope = machine.send(step.request)
                if envelope is None:  # the RPC cap: the step waits for the next session
                    break
                step.on_sent(envelope.id)
            active.current = step
            active.log.debug("request", rpc=step.request.NAME, purpose=step.purpose, id=envelope.id)
            return envelope
        if not machine.finished:
            machine.finish()
        self.end(active)
        return None

    def _deliver_reply(self, active: ActiveSession, reply: m.Message) -> None:
        step, active.current = active.current, None
        if isinstance(reply, m.Fault):
            self._record_fault(
                active, step.request.NAME if step else "?", reply.fault_code, reply.fault_string,
                spv_faults=reply.set_parameter_values_faults,
            )
        if step is not None:
            with self.store.transaction():
                step.on_reply(reply)

    # ---- faults and violations --------------------------------------------------------------------------------------

    def _on_violation(self, active: ActiveSession, event: s.ProtocolViolation) -> Envelope | None:
        if active.device_id is not None:
            self._record_fault(active, "protocol", None, event.reason)
        (active.log or self.log).warning("protocol violation", reason=event.reason, fatal=event.fatal)
        if event.fatal:
            self.end(active)
        return event.response

    def _record_fault(
        self,
        active: ActiveSession,
        source: str,
        code: int | None,
        message: str,
        *,
        spv_faults: Iterable[m.SetParameterValuesFault] = (),
    ) -> None:
        if active.device_id is None:
            return
        now = self.clock()
        with self.store.transaction():
            self.store.history.record_fault(
                active.device_id, session_id=active.machine.session_id, source=source, code=code, message=message,
                at=now,
            )
            for fault in spv_faults:
                self.store.history.record_fault(
                    active.device_id, session_id=active.machine.session_id, source=source, code=fault.fault_code,
                    message=fault.fault_string, parameter=fault.parameter_name, at=now,
                )
        if active.log is not None:
            active.log.info("fault", source=source, code=code, fault=message)


def _fault_text(fault: m.FaultStruct) -> str:
    return f"{fault.fault_code} {fault.fault_string}".strip()


def _with_enrolment_labels(facts: InformFacts, site: str | None, group: str | None) -> InformFacts:
    return replace(facts, site=facts.site or site, device_group=facts.device_group or group)
