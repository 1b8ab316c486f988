"""Where the requests the ACS sends come from.

A session asks its work sources, in priority order, for the next :class:`Step`. A step is one ACS request plus what
to do around it: ``on_sent`` runs (inside the transaction that is committed before the request leaves) so whatever
the device is about to be told is durable first; ``on_reply`` gets the response or Fault; ``on_abandoned`` runs when
the session ends before the reply came back. Operator tasks, the hardening policy and campaigns are all work
sources, so none of them touches the transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

from cwmp_models import messages as m

if TYPE_CHECKING:
    from acs.store import DeviceRecord, Store


def _nothing(*_: Any) -> None:
    return None


@dataclass
class Step:
    request: m.Message
    on_sent: Callable[[str], None] = _nothing
    on_reply: Callable[[m.Message], None] = _nothing
    on_abandoned: Callable[[], None] = _nothing
    # Shown in logs and the audit trail: which rule, task or operator wanted this request.
    purpose: str = ""


@dataclass
class DeviceContext:
    """What a work source may look at while planning the next step of a session."""

    store: "Store"
    device: "DeviceRecord"
    session_id: str
    inform: m.Inform
    now: float
    identity_kind: str = "device"
    log: Any = None
    # Work sources may leave notes for each other within one session (e.g. "credentials rotated").
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def events(self) -> list[str]:
        return self.inform.event_codes


class WorkSource(Protocol):
    name: str

    def next_step(self, ctx: DeviceContext) -> Step | None:
        """The next request this source wants sent now, or None when it has nothing (more) for this session."""

    def on_transfer_complete(self, ctx: DeviceContext, message: m.TransferComplete) -> bool:
        """A TransferComplete arrived; return True when this source owned its CommandKey."""


class WorkSourceFactory(Protocol):
    def __call__(self, ctx: DeviceContext) -> WorkSource: ...
