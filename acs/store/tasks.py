"""The queue of pending work per device. Whatever the ACS will send a device is a task first, so it survives a
restart, and so that policy, operators and campaigns all feed one queue the transport drains."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .base import Database

ACTIVE = ("pending", "sent")


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    device_id: str
    kind: str
    payload: str
    status: str
    created_at: float
    created_by: str
    not_before: float
    attempts: int
    max_attempts: int
    command_key: str | None
    session_id: str | None
    request_id: str | None
    result: str | None
    updated_at: float
    campaign_id: int | None


_COLUMNS = ", ".join(f.name for f in fields(Task))


class Tasks:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        device_id: str,
        kind: str,
        payload: str = "",
        *,
        created_by: str,
        command_key: str | None = None,
        not_before: float = 0.0,
        max_attempts: int = 5,
        campaign_id: int | None = None,
    ) -> int:
        now = self._db.clock()
        with self._db.transaction() as conn:
            cursor = conn.execute(
                """INSERT INTO tasks (device_id, kind, payload, status, created_at, created_by, not_before,
                                      max_attempts, command_key, updated_at, campaign_id)
                   VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)""",
                (device_id, kind, payload, now, created_by, not_before, max_attempts, command_key, now, campaign_id),
            )
            return cursor.lastrowid

    def get(self, task_id: int) -> Task | None:
        row = self._db.query_one(f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", (task_id,))
        return None if row is None else Task(*row)

    def due(self, device_id: str, now: float) -> list[Task]:
        rows = self._db.query(
            f"""SELECT {_COLUMNS} FROM tasks WHERE device_id = ? AND status = 'pending' AND not_before <= ?
                ORDER BY id""",
            (device_id, now),
        )
        return [Task(*row) for row in rows]

    def for_device(self, device_id: str, *, active_only: bool = False) -> list[Task]:
        condition = "AND status IN ('pending', 'sent')" if active_only else ""
        rows = self._db.query(f"SELECT {_COLUMNS} FROM tasks WHERE device_id = ? {condition} ORDER BY id", (device_id,))
        return [Task(*row) for row in rows]

    def devices_with_due_tasks(self, now: float) -> list[str]:
        rows = self._db.query(
            "SELECT DISTINCT device_id FROM tasks WHERE status = 'pending' AND not_before <= ?", (now,)
        )
        return [row[0] for row in rows]

    def mark_sent(self, task_id: int, *, session_id: str, request_id: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                """UPDATE tasks SET status = 'sent', attempts = attempts + 1, session_id = ?, request_id = ?,
                   updated_at = ? WHERE id = ?""",
                (session_id, request_id, self._db.clock(), task_id),
            )

    def complete(self, task_id: int, result: str = "") -> None:
        self._finish(task_id, "done", result)

    def cancel(self, task_id: int, result: str = "cancelled") -> None:
        self._finish(task_id, "cancelled", result)

    def fail(self, task_id: int, result: str, *, retry_at: float | None) -> str:
        """Record a failure. With ``retry_at`` and attempts left, the task goes back to pending until then;
        otherwise it fails for good. Returns the new status."""
        task = self.get(task_id)
        if task is None:
            return "missing"
        if retry_at is not None and task.attempts < task.max_attempts:
            with self._db.transaction() as conn:
                conn.execute(
                    """UPDATE tasks SET status = 'pending', not_before = ?, result = ?, updated_at = ?
                       WHERE id = ?""",
                    (retry_at, result, self._db.clock(), task_id),
                )
            return "pending"
        self._finish(task_id, "failed", result)
        return "failed"

    def by_command_key(self, device_id: str, command_key: str) -> Task | None:
        """The task a TransferComplete (or M-event) refers to: the newest one with that CommandKey."""
        row = self._db.query_one(
            f"SELECT {_COLUMNS} FROM tasks WHERE device_id = ? AND command_key = ? ORDER BY id DESC LIMIT 1",
            (device_id, command_key),
        )
        return None if row is None else Task(*row)

    def requeue_unanswered(self, device_id: str | None = None, *, keep_kinds: tuple[str, ...] = ()) -> int:
        """Tasks sent in a session that ended before their reply came back go back to pending (every ACS request
        we queue is safe to repeat). Tasks of ``keep_kinds`` (transfers awaiting TransferComplete) stay sent."""
        placeholders = ",".join("?" * len(keep_kinds)) or "''"
        condition = "device_id = ? AND" if device_id else ""
        params: tuple = (self._db.clock(),) + ((device_id,) if device_id else ()) + tuple(keep_kinds)
        with self._db.transaction() as conn:
            cursor = conn.execute(
                f"""UPDATE tasks SET status = 'pending', updated_at = ?
                    WHERE {condition} status = 'sent' AND kind NOT IN ({placeholders})""",
                params,
            )
            return cursor.rowcount

    def _finish(self, task_id: int, status: str, result: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE tasks SET status = ?, result = ?, updated_at = ? WHERE id = ?",
                (status, result, self._db.clock(), task_id),
            )
