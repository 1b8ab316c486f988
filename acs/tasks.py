"""Operator tasks: prepared ACS requests (Reboot, Download, GetParameterValues, ...) queued per device and sent in
the device's next session. Requests are stored as CWMP XML, so a queued task is exactly what will go on the wire.
"""

from __future__ import annotations

import base64

from cwmp_models import codec
from cwmp_models import messages as m
from cwmp_models.envelope import Envelope

from .logs import is_secret_name
from .store import Store, Task
from .vault import VaultError
from .work import DeviceContext, Step

# Requests whose real outcome arrives later, in a TransferComplete carrying their CommandKey.
TRANSFERS = (m.Download, m.Upload, m.ScheduleDownload)

# CPE faults worth retrying later (the device was busy or short of resources); anything else will fail again.
RETRYABLE_FAULTS = frozenset({9002, 9004})
RETRY_DELAYS = (60.0, 300.0, 1800.0, 7200.0)


SEALED = "sealed:"
TASK_SECRET_NAME = "task-payload"


def carries_secret(message: m.Message) -> bool:
    """Whether the request holds a password (Download/Upload credentials, a secret parameter being set)."""
    if getattr(message, "password", ""):
        return True
    if isinstance(message, m.SetParameterValues):
        return any(is_secret_name(item.name.rsplit(".", 1)[-1]) for item in message.parameter_list)
    if isinstance(message, m.ChangeDUState):
        return any(getattr(op, "password", None) for op in message.operations)
    return False


def encode_request(message: m.Message, *, device_id: str = "", vault=None) -> str:
    """The request as stored in the queue: CWMP XML, sealed by the vault when one is configured (always when the
    request holds a password: nothing secret is kept in plaintext at rest)."""
    xml = codec.serialize(Envelope(message)).decode("utf-8")
    if vault is not None:
        return SEALED + base64.b64encode(vault.seal(device_id, TASK_SECRET_NAME, xml)).decode("ascii")
    if carries_secret(message):
        raise ValueError(f"{message.NAME} carries a password: queueing it needs the secrets vault (secrets.key_file)")
    return xml


def decode_request(payload: str, *, device_id: str = "", vault=None) -> m.Message:
    if payload.startswith(SEALED):
        if vault is None:
            raise codec.CwmpParseError("sealed task payload and no secrets vault to open it")
        payload = vault.open(device_id, TASK_SECRET_NAME, base64.b64decode(payload[len(SEALED):]))
    body = codec.parse(payload.encode("utf-8")).body
    if body is None or isinstance(body, m.Fault) or body.is_response or body.SENDER == "cpe":
        raise codec.CwmpParseError("task payload is not an ACS request")
    return body


def enqueue(
    store: Store,
    device_id: str,
    message: m.Message,
    *,
    created_by: str,
    reason: str = "",
    not_before: float = 0.0,
    campaign_id: int | None = None,
    vault=None,
) -> int:
    """Queue ``message`` for the device's next session, with an audit record of who asked and why."""
    payload = encode_request(message, device_id=device_id, vault=vault)  # refuses what could never be sent
    kind = "transfer" if isinstance(message, TRANSFERS) else "rpc"
    command_key = getattr(message, "command_key", None) or None
    with store.transaction():
        task_id = store.tasks.add(
            device_id,
            kind,
            payload,
            created_by=created_by,
            command_key=command_key,
            not_before=not_before,
            campaign_id=campaign_id,
        )
        store.audit.record(
            created_by, "task-created", device_id=device_id,
            detail={"task": task_id, "rpc": message.NAME, "command_key": command_key}, reason=reason,
        )
    return task_id


class TaskQueueSource:
    """Drains the device's due tasks, oldest first, one request per step."""

    name = "tasks"

    def __init__(self, ctx: DeviceContext, *, vault=None) -> None:
        self._vault = vault
        # Read once per session: a task queued while the session runs waits for the next one (a connection request
        # brings it at once).
        self._due: list[Task] | None = None

    def next_step(self, ctx: DeviceContext) -> Step | None:
        if self._due is None:
            self._due = ctx.store.tasks.due(ctx.device.id, ctx.now)
        while self._due:
            task = self._due.pop(0)
            if task.kind not in ("rpc", "transfer"):
                continue
            try:
                request = decode_request(task.payload, device_id=task.device_id, vault=self._vault)
            except (codec.CwmpError, ValueError, VaultError) as exc:
                ctx.store.tasks.fail(task.id, f"unreadable task: {getattr(exc, 'reason', exc)}", retry_at=None)
                continue
            return self._step(ctx, task, request)
        return None

    def _step(self, ctx: DeviceContext, task: Task, request: m.Message) -> Step:
        store = ctx.store

        def sent(request_id: str) -> None:
            store.tasks.mark_sent(task.id, session_id=ctx.session_id, request_id=request_id)
            store.audit.record(
                task.created_by, f"sent {request.NAME}", device_id=ctx.device.id,
                detail={"task": task.id, "session": ctx.session_id},
            )

        def replied(reply: m.Message) -> None:
            if isinstance(reply, m.Fault):
                attempt = task.attempts  # attempts before this one
                retry_at = None
                if reply.fault_code in RETRYABLE_FAULTS:
                    retry_at = ctx.now + RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                store.tasks.fail(task.id, f"{reply.fault_code} {reply.fault_string}", retry_at=retry_at)
                return
            if isinstance(request, TRANSFERS) and getattr(reply, "status", 0) == 1:
                return  # still 'sent': the TransferComplete will settle it
            store.tasks.complete(task.id, reply.NAME)

        return Step(request, on_sent=sent, on_reply=replied, purpose=f"task {task.id}")

    def on_transfer_complete(self, ctx: DeviceContext, message: m.TransferComplete) -> bool:
        return False  # the handler settles transfer tasks by CommandKey
