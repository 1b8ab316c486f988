"""What the policy engine remembers per device: the last compliance verdicts with their evidence, rules backing off
after a device fault, the ParameterKeys the ACS issued, and operator exemptions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable

from .base import Database

# Delays after consecutive faults on one rule and parameter: never a tight retry loop against a device that refuses.
BACKOFF_DELAYS = (3600.0, 4 * 3600.0, 24 * 3600.0, 3 * 24 * 3600.0, 7 * 24 * 3600.0)


@dataclass(frozen=True, slots=True)
class ComplianceRow:
    device_id: str
    rule_id: str
    status: str
    detail: dict
    evaluated_at: float
    session_id: str | None


@dataclass(frozen=True, slots=True)
class BackoffRow:
    rule_id: str
    key: str
    attempts: int
    next_attempt_at: float
    fault_code: int | None
    fault_text: str


@dataclass(frozen=True, slots=True)
class Exemption:
    device_id: str
    rule_id: str
    reason: str
    created_by: str
    created_at: float


class PolicyState:
    def __init__(self, db: Database) -> None:
        self._db = db

    # ---- compliance -------------------------------------------------------------------------------------------------

    def record_compliance(
        self, device_id: str, rows: Iterable[tuple[str, str, dict]], *, session_id: str | None
    ) -> None:
        now = self._db.clock()
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM compliance WHERE device_id = ?", (device_id,))
            conn.executemany(
                """INSERT INTO compliance (device_id, rule_id, status, detail, evaluated_at, session_id)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                [(device_id, rule_id, status, json.dumps(detail, sort_keys=True, default=str), now, session_id)
                 for rule_id, status, detail in rows],
            )

    def compliance(self, device_id: str | None = None) -> list[ComplianceRow]:
        where, params = ("WHERE device_id = ?", (device_id,)) if device_id else ("", ())
        rows = self._db.query(
            f"SELECT device_id, rule_id, status, detail, evaluated_at, session_id FROM compliance {where} "
            "ORDER BY device_id, rule_id",
            params,
        )
        return [ComplianceRow(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    def compliance_statuses(self) -> list[tuple[str, str, str]]:
        """(device_id, rule_id, status) for the whole fleet, without evidence: what fleet summaries need."""
        return [tuple(r) for r in self._db.query("SELECT device_id, rule_id, status FROM compliance")]

    # ---- backoff ----------------------------------------------------------------------------------------------------

    def backoff(self, device_id: str) -> list[BackoffRow]:
        rows = self._db.query(
            """SELECT rule_id, key, attempts, next_attempt_at, fault_code, fault_text FROM rule_backoff
               WHERE device_id = ?""",
            (device_id,),
        )
        return [BackoffRow(*row) for row in rows]

    def record_fault(self, device_id: str, rule_id: str, key: str, code: int | None, text: str) -> float:
        """Count a fault against (rule, parameter) and return when the next attempt is due."""
        now = self._db.clock()
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT attempts FROM rule_backoff WHERE device_id = ? AND rule_id = ? AND key = ?",
                (device_id, rule_id, key),
            ).fetchone()
            attempts = (row[0] if row else 0) + 1
            next_at = now + BACKOFF_DELAYS[min(attempts - 1, len(BACKOFF_DELAYS) - 1)]
            conn.execute(
                """INSERT INTO rule_backoff (device_id, rule_id, key, attempts, next_attempt_at, fault_code,
                                             fault_text, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (device_id, rule_id, key) DO UPDATE SET attempts = excluded.attempts,
                       next_attempt_at = excluded.next_attempt_at, fault_code = excluded.fault_code,
                       fault_text = excluded.fault_text, updated_at = excluded.updated_at""",
                (device_id, rule_id, key, attempts, next_at, code, text, now),
            )
        return next_at

    def clear_backoff(self, device_id: str, pairs: Iterable[tuple[str, str]]) -> None:
        with self._db.transaction() as conn:
            conn.executemany(
                "DELETE FROM rule_backoff WHERE device_id = ? AND rule_id = ? AND key = ?",
                [(device_id, rule_id, key) for rule_id, key in pairs],
            )

    # ---- ParameterKeys ----------------------------------------------------------------------------------------------

    def issue_parameter_key(self, device_id: str, parameter_key: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO issued_parameter_keys (device_id, parameter_key, issued_at) VALUES (?, ?, ?)",
                (device_id, parameter_key, self._db.clock()),
            )

    def issued_parameter_keys(self, device_id: str) -> set[str]:
        rows = self._db.query("SELECT parameter_key FROM issued_parameter_keys WHERE device_id = ?", (device_id,))
        return {row[0] for row in rows}

    # ---- exemptions -------------------------------------------------------------------------------------------------

    def exempt(self, device_id: str, rule_id: str, *, reason: str, by: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                """INSERT INTO exemptions (device_id, rule_id, reason, created_by, created_at) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (device_id, rule_id) DO UPDATE SET reason = excluded.reason,
                       created_by = excluded.created_by, created_at = excluded.created_at""",
                (device_id, rule_id, reason, by, self._db.clock()),
            )

    def unexempt(self, device_id: str, rule_id: str) -> bool:
        with self._db.transaction() as conn:
            return conn.execute(
                "DELETE FROM exemptions WHERE device_id = ? AND rule_id = ?", (device_id, rule_id)
            ).rowcount > 0

    def exemptions(self, device_id: str) -> list[Exemption]:
        rows = self._db.query("SELECT * FROM exemptions WHERE device_id = ? ORDER BY rule_id", (device_id,))
        return [Exemption(*row) for row in rows]
