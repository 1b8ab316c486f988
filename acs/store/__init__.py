"""The ACS's embedded store: SQLite in WAL mode behind small repositories. All SQL of the project lives in this
package (DESIGN "Scale path": a server database can replace it behind the same interface)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from .audit import Audit, AuditEntry, redact
from .base import Database, StoreError
from .connection_requests import ConnectionRequestRecord, ConnectionRequests
from .credentials import CpeCredential, Credentials, Enrolment, normalise_serial
from .devices import DeviceRecord, Devices, InformFacts
from .history import FaultRecord, History, SessionRecord
from .parameters import Discovery, Parameters, StoredParameter, wire_text
from .schema import LATEST_VERSION
from .policy_state import BackoffRow, ComplianceRow, Exemption, PolicyState
from .sealed import SealedSecrets
from .tasks import Task, Tasks
from .transfers import CommandKeyInUse, TransferRecord, Transfers

__all__ = [
    "Store",
    "StoreError",
    "ConnectionRequestRecord",
    "DeviceRecord",
    "InformFacts",
    "StoredParameter",
    "SessionRecord",
    "FaultRecord",
    "Task",
    "TransferRecord",
    "CommandKeyInUse",
    "AuditEntry",
    "Enrolment",
    "CpeCredential",
    "normalise_serial",
    "redact",
    "wire_text",
    "LATEST_VERSION",
    "ComplianceRow",
    "BackoffRow",
    "Exemption",
]


class Store:
    """One database and its repositories. ``store.transaction()`` groups writes of several repositories into one
    commit (they join it)."""

    def __init__(
        self, path: str | Path, *, synchronous: str = "normal", clock: Callable[[], float] = time.time
    ) -> None:
        self.db = Database(path, synchronous=synchronous, clock=clock)
        self.devices = Devices(self.db)
        self.parameters = Parameters(self.db)
        self.discovery = Discovery(self.db)
        self.history = History(self.db)
        self.tasks = Tasks(self.db)
        self.audit = Audit(self.db)
        self.credentials = Credentials(self.db)
        self.secrets = SealedSecrets(self.db)
        self.policy_state = PolicyState(self.db)
        self.transfers = Transfers(self.db)
        self.connection_requests = ConnectionRequests(self.db)

    @property
    def clock(self) -> Callable[[], float]:
        return self.db.clock

    def transaction(self):
        return self.db.transaction()

    @property
    def schema_version(self) -> int:
        return self.db.schema_version

    def close(self) -> None:
        self.db.close()
