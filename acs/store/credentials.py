"""Enrolment (which devices may talk to the ACS at all) and the credentials CPEs authenticate with.

Only HTTP Digest HA1 values are stored (H(username:realm:password) for MD5 and SHA-256): enough to verify Digest
and Basic, useless to log in elsewhere with.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Database


def normalise_serial(serial: str) -> str:
    """Serial numbers are usually the MAC; compare them case- and separator-insensitively."""
    return serial.strip().lower().replace(":", "").replace("-", "")


@dataclass(frozen=True, slots=True)
class Enrolment:
    serial_number: str
    mac: str | None
    oui: str | None
    product_class: str | None
    site: str | None
    device_group: str | None
    enrolled_at: float
    enrolled_by: str
    bootstrap_used_at: float | None


@dataclass(frozen=True, slots=True)
class CpeCredential:
    username: str
    serial_number: str
    ha1_md5: str
    ha1_sha256: str
    realm: str
    kind: str  # 'device' or 'bootstrap'
    created_at: float
    retired_at: float | None

    def ha1(self, algorithm: str) -> str | None:
        return {"MD5": self.ha1_md5, "SHA-256": self.ha1_sha256}.get(algorithm)


class Credentials:
    def __init__(self, db: Database) -> None:
        self._db = db

    def enrol(
        self,
        serial_number: str,
        *,
        by: str,
        mac: str | None = None,
        oui: str | None = None,
        product_class: str | None = None,
        site: str | None = None,
        device_group: str | None = None,
    ) -> Enrolment:
        serial = normalise_serial(serial_number)
        with self._db.transaction() as conn:
            conn.execute(
                """INSERT INTO enrolments (serial_number, mac, oui, product_class, site, device_group, enrolled_at,
                                           enrolled_by)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (serial_number) DO UPDATE SET
                       mac = coalesce(excluded.mac, mac), oui = coalesce(excluded.oui, oui),
                       product_class = coalesce(excluded.product_class, product_class),
                       site = coalesce(excluded.site, site), device_group = coalesce(excluded.device_group, device_group)
                """,
                (serial, mac, oui, product_class, site, device_group, self._db.clock(), by),
            )
        enrolment = self.enrolment(serial)
        assert enrolment is not None
        return enrolment

    def enrolment(self, serial_number: str) -> Enrolment | None:
        row = self._db.query_one("SELECT * FROM enrolments WHERE serial_number = ?", (normalise_serial(serial_number),))
        return None if row is None else Enrolment(*row)

    def enrolments(self) -> list[Enrolment]:
        return [Enrolment(*row) for row in self._db.query("SELECT * FROM enrolments ORDER BY serial_number")]

    def mark_bootstrap_used(self, serial_number: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE enrolments SET bootstrap_used_at = ? WHERE serial_number = ? AND bootstrap_used_at IS NULL",
                (self._db.clock(), normalise_serial(serial_number)),
            )

    def add(
        self, username: str, serial_number: str, *, ha1_md5: str, ha1_sha256: str, realm: str, kind: str = "device"
    ) -> CpeCredential:
        with self._db.transaction() as conn:
            conn.execute(
                """INSERT INTO cpe_credentials (username, serial_number, ha1_md5, ha1_sha256, realm, kind, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (username) DO UPDATE SET serial_number = excluded.serial_number,
                       ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256, realm = excluded.realm,
                       kind = excluded.kind, created_at = excluded.created_at, retired_at = NULL""",
                (username, normalise_serial(serial_number), ha1_md5, ha1_sha256, realm, kind, self._db.clock()),
            )
        credential = self.by_username(username)
        assert credential is not None
        return credential

    def by_username(self, username: str) -> CpeCredential | None:
        row = self._db.query_one(
            "SELECT * FROM cpe_credentials WHERE username = ? AND retired_at IS NULL", (username,)
        )
        return None if row is None else CpeCredential(*row)

    def for_serial(self, serial_number: str) -> list[CpeCredential]:
        rows = self._db.query(
            "SELECT * FROM cpe_credentials WHERE serial_number = ? AND retired_at IS NULL ORDER BY created_at",
            (normalise_serial(serial_number),),
        )
        return [CpeCredential(*row) for row in rows]

    def retire(self, username: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE cpe_credentials SET retired_at = ? WHERE username = ? AND retired_at IS NULL",
                (self._db.clock(), username),
            )
