"""Sealed (encrypted) per-device secrets. This module stores ciphertext only; acs.vault seals and opens it.

A secret has at most two versions: ``active`` (what the device is believed to hold) and ``pending`` (generated and
about to be sent, not yet confirmed by the device). Generating a pending version before sending it, and promoting it
only after the device confirms, is how the ACS never loses a password it pushed (DESIGN: durable before
acknowledged).
"""

from __future__ import annotations

from .base import Database


class SealedSecrets:
    def __init__(self, db: Database) -> None:
        self._db = db

    def put(self, device_id: str, name: str, ciphertext: bytes, *, state: str = "pending") -> None:
        with self._db.transaction() as conn:
            conn.execute(
                """INSERT INTO secrets (device_id, name, ciphertext, state, created_at) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (device_id, name, state) DO UPDATE SET ciphertext = excluded.ciphertext,
                       created_at = excluded.created_at, confirmed_at = NULL""",
                (device_id, name, ciphertext, state, self._db.clock()),
            )

    def get(self, device_id: str, name: str, *, state: str = "active") -> bytes | None:
        row = self._db.query_one(
            "SELECT ciphertext FROM secrets WHERE device_id = ? AND name = ? AND state = ?", (device_id, name, state)
        )
        return None if row is None else bytes(row[0])

    def promote(self, device_id: str, name: str) -> bool:
        """The device confirmed the pending version: it becomes the active one. False when nothing was pending."""
        with self._db.transaction() as conn:
            pending = conn.execute(
                "SELECT ciphertext FROM secrets WHERE device_id = ? AND name = ? AND state = 'pending'",
                (device_id, name),
            ).fetchone()
            if pending is None:
                return False
            conn.execute("DELETE FROM secrets WHERE device_id = ? AND name = ?", (device_id, name))
            conn.execute(
                """INSERT INTO secrets (device_id, name, ciphertext, state, created_at, confirmed_at)
                   VALUES (?, ?, ?, 'active', ?, ?)""",
                (device_id, name, pending[0], self._db.clock(), self._db.clock()),
            )
            return True

    def names(self, device_id: str) -> list[tuple[str, str]]:
        rows = self._db.query("SELECT name, state FROM secrets WHERE device_id = ? ORDER BY name, state", (device_id,))
        return [(row[0], row[1]) for row in rows]

    def discard_pending(self, device_id: str, name: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM secrets WHERE device_id = ? AND name = ? AND state = 'pending'", (device_id, name))
