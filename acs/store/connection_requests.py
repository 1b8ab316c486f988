"""Connection requests the ACS made, their outcomes, and the session each one brought (acs.connreq decides; this
module only keeps the record).

A row is written ``pending`` before anything goes on the wire (durable before acknowledged), so a session that
answers the request can be linked to it even when it arrives before the phone's HTTP answer is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Database

# Outcomes after which the phone may open a "6 CONNECTION REQUEST" session for this request. A timed-out request may
# have reached the phone and only its answer been lost.
DELIVERABLE = ("pending", "accepted", "sent", "timeout")


@dataclass(frozen=True, slots=True)
class ConnectionRequestRecord:
    id: int
    device_id: str
    requested_at: float
    requested_by: str
    reason: str
    method: str | None
    url: str | None
    outcome: str
    http_status: int | None
    detail: str
    completed_at: float | None
    delivered_session_id: str | None
    delivered_at: float | None


_COLUMNS = ", ".join(ConnectionRequestRecord.__slots__)


class ConnectionRequests:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(
        self, device_id: str, *, by: str, reason: str = "", outcome: str = "pending", detail: str = ""
    ) -> int:
        """A new request; any outcome but ``pending`` is final (a refusal recorded before anything was sent)."""
        now = self._db.clock()
        with self._db.transaction() as conn:
            cursor = conn.execute(
                """INSERT INTO connection_requests (device_id, requested_at, requested_by, reason, outcome, detail,
                                                    completed_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (device_id, now, by, reason, outcome, detail, None if outcome == "pending" else now),
            )
            return cursor.lastrowid

    def update(
        self,
        request_id: int,
        *,
        outcome: str,
        method: str | None = None,
        url: str | None = None,
        http_status: int | None = None,
        detail: str = "",
        final: bool = True,
    ) -> None:
        """Record where an attempt stands; ``final`` stamps completed_at. Never touches the delivery fields, which
        the answering session may have set meanwhile."""
        with self._db.transaction() as conn:
            conn.execute(
                """UPDATE connection_requests SET outcome = ?, method = coalesce(?, method), url = coalesce(?, url),
                       http_status = coalesce(?, http_status), detail = ?, completed_at = ?
                   WHERE id = ?""",
                (outcome, method, url, http_status, detail, self._db.clock() if final else None, request_id),
            )

    def get(self, request_id: int) -> ConnectionRequestRecord | None:
        row = self._db.query_one(f"SELECT {_COLUMNS} FROM connection_requests WHERE id = ?", (request_id,))
        return None if row is None else ConnectionRequestRecord(*row)

    def for_device(self, device_id: str, limit: int = 50) -> list[ConnectionRequestRecord]:
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM connection_requests WHERE device_id = ? ORDER BY id DESC LIMIT ?",
            (device_id, limit),
        )
        return [ConnectionRequestRecord(*row) for row in rows]

    def last_sent_at(self, device_id: str) -> float | None:
        """When the newest request that went (or is going) on the wire to this device was made."""
        row = self._db.query_one(
            """SELECT max(requested_at) FROM connection_requests
               WHERE device_id = ? AND (method IS NOT NULL OR outcome IN ('pending', 'queued'))""",
            (device_id,),
        )
        return None if row is None else row[0]

    def link_delivery(self, device_id: str, session_id: str, *, since: float) -> int | None:
        """A "6 CONNECTION REQUEST" session started: mark the newest deliverable request since ``since`` as
        delivered by it and return its id (None when no request of ours explains the session)."""
        placeholders = ", ".join("?" for _ in DELIVERABLE)
        with self._db.transaction() as conn:
            row = conn.execute(
                f"""SELECT id FROM connection_requests
                    WHERE device_id = ? AND requested_at >= ? AND delivered_session_id IS NULL
                      AND outcome IN ({placeholders})
                    ORDER BY id DESC LIMIT 1""",
                (device_id, since, *DELIVERABLE),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE connection_requests SET delivered_session_id = ?, delivered_at = ? WHERE id = ?",
                (session_id, self._db.clock(), row[0]),
            )
            return row[0]

    def queued(self, *, since: float) -> list[ConnectionRequestRecord]:
        """UDP requests handed over by another process, oldest first (older than ``since``: see ``expire_queued``)."""
        rows = self._db.query(
            f"""SELECT {_COLUMNS} FROM connection_requests WHERE outcome = 'queued' AND requested_at >= ?
                ORDER BY requested_at""",
            (since,),
        )
        return [ConnectionRequestRecord(*row) for row in rows]

    def claim_queued(self, request_id: int) -> bool:
        """Take a queued request for sending; False when another process took it first."""
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE connection_requests SET outcome = 'pending' WHERE id = ? AND outcome = 'queued'",
                (request_id,),
            )
            return cursor.rowcount == 1

    def expire_queued(self, *, before: float) -> int:
        with self._db.transaction() as conn:
            cursor = conn.execute(
                """UPDATE connection_requests SET outcome = 'expired', completed_at = ?,
                       detail = 'no ACS process with the STUN port sent it in time'
                   WHERE outcome = 'queued' AND requested_at < ?""",
                (self._db.clock(), before),
            )
            return cursor.rowcount

    def session_open(self, device_id: str, *, since: float) -> bool:
        """A session of this device started after ``since`` and has not ended (as recorded by any ACS process)."""
        row = self._db.query_one(
            "SELECT 1 FROM sessions WHERE device_id = ? AND ended_at IS NULL AND started_at >= ? LIMIT 1",
            (device_id, since),
        )
        return row is not None
