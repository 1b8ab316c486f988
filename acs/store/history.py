"""What happened: sessions, the events each Inform delivered, and faults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .base import Database


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    device_id: str
    started_at: float
    ended_at: float | None
    outcome: str | None
    rpc_count: int
    remote_ip: str | None
    events: str
    cwmp_version: str | None
    connection_request_id: int | None


@dataclass(frozen=True, slots=True)
class FaultRecord:
    id: int
    device_id: str
    session_id: str | None
    source: str
    code: int | None
    message: str
    parameter: str | None
    at: float


class History:
    def __init__(self, db: Database) -> None:
        self._db = db

    def start_session(
        self,
        session_id: str,
        device_id: str,
        *,
        at: float,
        remote_ip: str | None,
        events: Iterable[tuple[str, str]],
        cwmp_version: str | None,
        connection_request_id: int | None = None,
    ) -> None:
        events = list(events)
        with self._db.transaction() as conn:
            conn.execute(
                """INSERT INTO sessions (id, device_id, started_at, remote_ip, events, cwmp_version,
                                         connection_request_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (session_id, device_id, at, remote_ip, ",".join(code for code, _ in events), cwmp_version,
                 connection_request_id),
            )
            conn.executemany(
                "INSERT INTO events (device_id, session_id, code, command_key, received_at) VALUES (?, ?, ?, ?, ?)",
                [(device_id, session_id, code, key, at) for code, key in events],
            )

    def end_session(self, session_id: str, *, at: float, outcome: str, rpc_count: int) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE sessions SET ended_at = ?, outcome = ?, rpc_count = ? WHERE id = ? AND ended_at IS NULL",
                (at, outcome, rpc_count, session_id),
            )

    def session(self, session_id: str) -> SessionRecord | None:
        row = self._db.query_one("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return None if row is None else SessionRecord(*row)

    def sessions(self, device_id: str, limit: int = 50) -> list[SessionRecord]:
        rows = self._db.query(
            "SELECT * FROM sessions WHERE device_id = ? ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (device_id, limit),
        )
        return [SessionRecord(*row) for row in rows]

    def close_abandoned_sessions(self, *, at: float) -> int:
        """Sessions left open by a previous process (killed mid-session) end as 'interrupted'."""
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE sessions SET ended_at = ?, outcome = 'interrupted' WHERE ended_at IS NULL", (at,)
            )
            return cursor.rowcount

    def events(self, device_id: str, limit: int = 100) -> list[tuple[str, str, str, float]]:
        rows = self._db.query(
            """SELECT session_id, code, command_key, received_at FROM events WHERE device_id = ?
               ORDER BY id DESC LIMIT ?""",
            (device_id, limit),
        )
        return [tuple(row) for row in rows]

    def record_fault(
        self,
        device_id: str,
        *,
        session_id: str | None,
        source: str,
        code: int | None,
        message: str,
        at: float,
        parameter: str | None = None,
    ) -> int:
        with self._db.transaction() as conn:
            cursor = conn.execute(
                """INSERT INTO faults (device_id, session_id, source, code, message, parameter, at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (device_id, session_id, source, code, message, parameter, at),
            )
            return cursor.lastrowid

    def faults(self, device_id: str, limit: int = 100) -> list[FaultRecord]:
        rows = self._db.query("SELECT * FROM faults WHERE device_id = ? ORDER BY id DESC LIMIT ?", (device_id, limit))
        return [FaultRecord(*row) for row in rows]
