"""The audit log: who did what to which device, when and why — every change pushed to a device and every operator
action. Details are structured; anything that looks like a secret is masked before it is written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..logs import is_secret_name
from .base import Database

def redact(detail: Any) -> Any:
    """Mask values under secret-looking keys (the same rule as the logs: ``password``, ``secret``, ``api_key`` ...,
    but not ``command_key`` or ``parameter_key``), at any depth."""
    if isinstance(detail, dict):
        return {
            key: "***" if is_secret_name(str(key)) and value else redact(value)
            for key, value in detail.items()
        }
    if isinstance(detail, (list, tuple)):
        return [redact(item) for item in detail]
    return detail


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    device_id: str | None
    detail: dict
    reason: str


class Audit:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self, actor: str, action: str, *, device_id: str | None = None, detail: dict | None = None, reason: str = ""
    ) -> int:
        text = json.dumps(redact(detail or {}), sort_keys=True, default=str)
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO audit (at, actor, action, device_id, detail, reason) VALUES (?, ?, ?, ?, ?, ?)",
                (self._db.clock(), actor, action, device_id, text, reason),
            )
            return cursor.lastrowid

    def entries(self, *, device_id: str | None = None, action: str | None = None, limit: int = 200) -> list[AuditEntry]:
        clauses, params = [], []
        if device_id is not None:
            clauses.append("device_id = ?")
            params.append(device_id)
        if action is not None:
            clauses.append("action = ?")
            params.append(action)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.query(f"SELECT * FROM audit {where} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]
