"""Files the ACS offers to or accepts from a device on a one-time URL (vendor configuration files, DESIGN "file
endpoint"). This module stores rows only; acs.files decides, seals and opens.

Nothing usable is kept in plaintext: the URL token is stored as its SHA-256 (the database alone does not give a
working URL), the per-transfer password as HTTP Digest HA1 values only, and the file content sealed by acs.vault.
A download's content is dropped the moment it is served: it is needed exactly once.

A transfer is *active* while offered, served (download awaiting TransferComplete) or received (upload awaiting
TransferComplete); a CommandKey is unique per device among active transfers, so a TransferComplete names one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from .base import Database

ACTIVE = ("offered", "served", "received")
DIRECTIONS = ("download", "upload")


@dataclass(frozen=True, slots=True)
class TransferRecord:
    id: int
    device_id: str
    direction: str  # 'download' or 'upload'
    file_type: str
    command_key: str
    username: str
    status: str  # 'offered', 'served', 'received', 'completed', 'failed' or 'expired'
    created_at: float
    expires_at: float
    served_at: float | None
    received_at: float | None
    completed_at: float | None
    remote_ip: str | None  # who fetched or sent the file
    size: int | None  # bytes of the plaintext content, once known
    media_type: str | None
    fault_code: int | None
    fault_text: str | None
    detail: dict[str, Any]
    session_id: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass(frozen=True, slots=True)
class TransferCredentials:
    username: str
    realm: str
    ha1_md5: str
    ha1_sha256: str

    def ha1(self, algorithm: str) -> str | None:
        return {"MD5": self.ha1_md5, "SHA-256": self.ha1_sha256}.get(algorithm)


_COLUMNS = ", ".join(f.name for f in fields(TransferRecord))


def _record(row: Any) -> TransferRecord:
    values = list(row)
    detail_index = [f.name for f in fields(TransferRecord)].index("detail")
    values[detail_index] = json.loads(values[detail_index])
    return TransferRecord(*values)


class CommandKeyInUse(ValueError):
    """Another active transfer of the same device already carries this CommandKey."""


class Transfers:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        *,
        token_hash: str,
        device_id: str,
        direction: str,
        file_type: str,
        command_key: str,
        credentials: TransferCredentials,
        created_at: float,
        expires_at: float,
        content: bytes | None = None,
        size: int | None = None,
        media_type: str | None = None,
        detail: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> TransferRecord:
        """A new offered transfer. ``content`` is already sealed. Raises CommandKeyInUse on a clash."""
        with self._db.transaction() as conn:
            clash = conn.execute(
                f"""SELECT 1 FROM transfers WHERE device_id = ? AND command_key = ?
                    AND status IN ({_placeholders(ACTIVE)})""",
                (device_id, command_key, *ACTIVE),
            ).fetchone()
            if clash is not None:
                raise CommandKeyInUse(
                    f"CommandKey {command_key!r} is already used by an active transfer of {device_id}"
                )
            cursor = conn.execute(
                """INSERT INTO transfers (token_hash, device_id, direction, file_type, command_key, username, realm,
                                          ha1_md5, ha1_sha256, content, size, media_type, created_at, expires_at,
                                          status, detail, session_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'offered', ?, ?)""",
                (
                    token_hash, device_id, direction, file_type, command_key, credentials.username,
                    credentials.realm, credentials.ha1_md5, credentials.ha1_sha256, content, size, media_type,
                    created_at, expires_at, json.dumps(detail or {}, sort_keys=True), session_id,
                ),
            )
            record = self.get(cursor.lastrowid)
        assert record is not None
        return record

    def get(self, transfer_id: int) -> TransferRecord | None:
        row = self._db.query_one(f"SELECT {_COLUMNS} FROM transfers WHERE id = ?", (transfer_id,))
        return None if row is None else _record(row)

    def by_token_hash(self, token_hash: str) -> TransferRecord | None:
        row = self._db.query_one(f"SELECT {_COLUMNS} FROM transfers WHERE token_hash = ?", (token_hash,))
        return None if row is None else _record(row)

    def by_command_key(self, device_id: str, command_key: str) -> TransferRecord | None:
        """The transfer a TransferComplete refers to: the active one with that CommandKey, else the newest."""
        row = self._db.query_one(
            f"""SELECT {_COLUMNS} FROM transfers WHERE device_id = ? AND command_key = ?
                ORDER BY status IN ({_placeholders(ACTIVE)}) DESC, id DESC LIMIT 1""",
            (device_id, command_key, *ACTIVE),
        )
        return None if row is None else _record(row)

    def for_device(self, device_id: str, *, active_only: bool = False) -> list[TransferRecord]:
        condition = f"AND status IN ({_placeholders(ACTIVE)})" if active_only else ""
        params = (device_id, *ACTIVE) if active_only else (device_id,)
        rows = self._db.query(f"SELECT {_COLUMNS} FROM transfers WHERE device_id = ? {condition} ORDER BY id", params)
        return [_record(row) for row in rows]

    def credentials(self, transfer_id: int) -> TransferCredentials | None:
        row = self._db.query_one(
            "SELECT username, realm, ha1_md5, ha1_sha256 FROM transfers WHERE id = ?", (transfer_id,)
        )
        return None if row is None else TransferCredentials(*row)

    def content(self, transfer_id: int) -> bytes | None:
        row = self._db.query_one("SELECT content FROM transfers WHERE id = ?", (transfer_id,))
        return None if row is None or row[0] is None else bytes(row[0])

    def set_content(self, transfer_id: int, content: bytes) -> None:
        """Attach a download's sealed content (sealed after the row exists: the seal is bound to its id)."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE transfers SET content = ? WHERE id = ? AND status = 'offered'", (content, transfer_id))

    def mark_served(self, transfer_id: int, *, now: float, remote_ip: str | None) -> bytes | None:
        """Claim an offered download for serving: it becomes 'served' and its sealed content is returned and dropped
        from the row. None when it was not offered (already served, finished or expired): the claim is a
        conditional update, so two fetches racing (even from two processes) cannot both win."""
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT content FROM transfers WHERE id = ? AND status = 'offered' AND direction = 'download'",
                (transfer_id,),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                """UPDATE transfers SET status = 'served', served_at = ?, remote_ip = ?, content = NULL
                   WHERE id = ?""",
                (now, remote_ip, transfer_id),
            )
            return None if row[0] is None else bytes(row[0])

    def mark_received(
        self, transfer_id: int, content: bytes, *, size: int, now: float, remote_ip: str | None
    ) -> bool:
        """Store an upload's sealed content; False when the transfer was not an offered upload."""
        with self._db.transaction() as conn:
            cursor = conn.execute(
                """UPDATE transfers SET status = 'received', received_at = ?, remote_ip = ?, content = ?, size = ?
                   WHERE id = ? AND status = 'offered' AND direction = 'upload'""",
                (now, remote_ip, content, size, transfer_id),
            )
            return cursor.rowcount == 1

    def finish(
        self, transfer_id: int, status: str, *, now: float, fault_code: int | None, fault_text: str | None
    ) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                """UPDATE transfers SET status = ?, completed_at = ?, fault_code = ?, fault_text = ?,
                       content = CASE WHEN direction = 'download' THEN NULL ELSE content END
                   WHERE id = ?""",
                (status, now, fault_code, fault_text, transfer_id),
            )

    def expire(self, now: float, transfer_id: int | None = None) -> list[TransferRecord]:
        """Offered transfers whose URL has expired (all, or just ``transfer_id``) become 'expired' and lose their
        content; returns them as they are now."""
        condition = "AND id = ?" if transfer_id is not None else ""
        params = (now,) + ((transfer_id,) if transfer_id is not None else ())
        with self._db.transaction() as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    f"SELECT id FROM transfers WHERE status = 'offered' AND expires_at <= ? {condition}", params
                ).fetchall()
            ]
            for expired_id in ids:
                conn.execute(
                    "UPDATE transfers SET status = 'expired', completed_at = ?, content = NULL WHERE id = ?",
                    (now, expired_id),
                )
            records = [self.get(expired_id) for expired_id in ids]
        return [record for record in records if record is not None]


def _placeholders(values: tuple) -> str:
    return ", ".join("?" * len(values))
