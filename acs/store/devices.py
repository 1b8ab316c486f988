"""Devices as the ACS knows them: identity and the facts each Inform refreshes."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .base import Database


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    id: str
    oui: str
    product_class: str
    serial_number: str
    manufacturer: str = ""
    software_version: str | None = None
    hardware_version: str | None = None
    ip: str | None = None
    connection_request_url: str | None = None
    udp_connection_request_address: str | None = None
    parameter_key: str | None = None
    cwmp_version: str | None = None
    first_inform: float | None = None
    last_inform: float | None = None
    last_boot: float | None = None
    last_bootstrap: float | None = None
    site: str | None = None
    device_group: str | None = None

    @property
    def model_key(self) -> str:
        """What a GetParameterNames result is cached by: the same model and firmware expose the same tree."""
        return f"{self.oui}/{self.product_class}/{self.software_version or '?'}"


_COLUMNS = [f.name for f in fields(DeviceRecord)]


@dataclass(frozen=True, slots=True)
class InformFacts:
    """What one Inform tells about a device. None means "not reported": the stored value is kept."""

    device_id: str
    oui: str
    product_class: str
    serial_number: str
    manufacturer: str
    at: float
    ip: str | None = None
    software_version: str | None = None
    hardware_version: str | None = None
    connection_request_url: str | None = None
    udp_connection_request_address: str | None = None
    parameter_key: str | None = None
    cwmp_version: str | None = None
    booted: bool = False
    bootstrapped: bool = False
    site: str | None = None
    device_group: str | None = None


class Devices:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record_inform(self, facts: InformFacts) -> DeviceRecord:
        """Insert or refresh the device from an Inform, in one statement (values not reported are kept)."""
        with self._db.transaction() as conn:
            row = conn.execute(
                f"""
                INSERT INTO devices (id, oui, product_class, serial_number, manufacturer, first_inform, last_inform,
                                     ip, software_version, hardware_version, connection_request_url,
                                     udp_connection_request_address, parameter_key, cwmp_version, last_boot,
                                     last_bootstrap, site, device_group)
                VALUES (:device_id, :oui, :product_class, :serial_number, :manufacturer, :at, :at, :ip,
                        :software_version, :hardware_version, :connection_request_url,
                        :udp_connection_request_address, :parameter_key, :cwmp_version,
                        CASE WHEN :booted THEN :at END, CASE WHEN :bootstrapped THEN :at END, :site, :device_group)
                ON CONFLICT (id) DO UPDATE SET
                    manufacturer = excluded.manufacturer,
                    last_inform = excluded.last_inform,
                    ip = coalesce(excluded.ip, ip),
                    software_version = coalesce(excluded.software_version, software_version),
                    hardware_version = coalesce(excluded.hardware_version, hardware_version),
                    connection_request_url = coalesce(excluded.connection_request_url, connection_request_url),
                    udp_connection_request_address =
                        coalesce(excluded.udp_connection_request_address, udp_connection_request_address),
                    parameter_key = coalesce(excluded.parameter_key, parameter_key),
                    cwmp_version = coalesce(excluded.cwmp_version, cwmp_version),
                    last_boot = coalesce(excluded.last_boot, last_boot),
                    last_bootstrap = coalesce(excluded.last_bootstrap, last_bootstrap)
                RETURNING {', '.join(_COLUMNS)}
                """,
                {
                    "device_id": facts.device_id, "oui": facts.oui, "product_class": facts.product_class,
                    "serial_number": facts.serial_number, "manufacturer": facts.manufacturer, "at": facts.at,
                    "ip": facts.ip, "software_version": facts.software_version,
                    "hardware_version": facts.hardware_version,
                    "connection_request_url": facts.connection_request_url,
                    "udp_connection_request_address": facts.udp_connection_request_address,
                    "parameter_key": facts.parameter_key, "cwmp_version": facts.cwmp_version,
                    "booted": facts.booted, "bootstrapped": facts.bootstrapped, "site": facts.site,
                    "device_group": facts.device_group,
                },
            ).fetchone()
        return DeviceRecord(*row)

    def get(self, device_id: str) -> DeviceRecord | None:
        row = self._db.query_one(f"SELECT {', '.join(_COLUMNS)} FROM devices WHERE id = ?", (device_id,))
        return None if row is None else DeviceRecord(*row)

    def all(self) -> list[DeviceRecord]:
        rows = self._db.query(f"SELECT {', '.join(_COLUMNS)} FROM devices ORDER BY id")
        return [DeviceRecord(*row) for row in rows]

    def count(self) -> int:
        return self._db.query_one("SELECT count(*) FROM devices")[0]

    def find(self, text: str) -> list[DeviceRecord]:
        """Devices whose id or serial number is ``text`` (case-insensitive) — how operators name a device."""
        rows = self._db.query(
            f"SELECT {', '.join(_COLUMNS)} FROM devices WHERE id = ? OR lower(serial_number) = lower(?)",
            (text, text),
        )
        return [DeviceRecord(*row) for row in rows]

    def set_parameter_key(self, device_id: str, parameter_key: str) -> None:
        """The device accepted a write carrying this ParameterKey (it reports it from its next Inform on)."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE devices SET parameter_key = ? WHERE id = ?", (parameter_key, device_id))

    def set_udp_connection_request_address(self, device_id: str, address: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("UPDATE devices SET udp_connection_request_address = ? WHERE id = ?", (address, device_id))
