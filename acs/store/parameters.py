"""Latest parameter values per device, and the GetParameterNames cache per model and firmware."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from cwmp_models.types import CwmpValue, XsdType, format_value, parse_value

from .base import Database


@dataclass(frozen=True, slots=True)
class StoredParameter:
    path: str
    value: str | None  # wire text, exactly as the device reported it (None: name known, value never read)
    type: XsdType
    writable: bool | None
    observed_at: float
    session_id: str | None

    @property
    def typed(self) -> CwmpValue | None:
        """The value as its Python type; the raw text when it does not fit its declared type."""
        if self.value is None:
            return None
        try:
            return parse_value(self.type, self.value)
        except ValueError:
            return self.value


def wire_text(value: CwmpValue, value_type: XsdType) -> str:
    if value_type is XsdType.STRING and type(value) is str:
        return value  # the common case, kept cheap: most parameters are strings
    try:
        return format_value(value_type, value)
    except ValueError:
        return str(value)


_TYPE_NAMES = {value_type: value_type.value for value_type in XsdType}


class Parameters:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record_values(
        self, device_id: str, values: Iterable[tuple[str, CwmpValue, XsdType]], *, at: float, session_id: str | None
    ) -> None:
        rows = [(device_id, path, wire_text(value, value_type), _TYPE_NAMES[value_type], at, session_id)
                for path, value, value_type in values]
        with self._db.transaction() as conn:
            conn.executemany(
                """
                INSERT INTO parameters (device_id, path, value, type, observed_at, session_id)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (device_id, path) DO UPDATE SET
                    value = excluded.value, type = excluded.type,
                    observed_at = excluded.observed_at, session_id = excluded.session_id
                """,
                rows,
            )

    def record_names(self, device_id: str, names: Iterable[tuple[str, bool]], *, at: float) -> None:
        rows = [(device_id, path, int(writable), at) for path, writable in names]
        with self._db.transaction() as conn:
            conn.executemany(
                """
                INSERT INTO parameters (device_id, path, writable, observed_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (device_id, path) DO UPDATE SET writable = excluded.writable
                """,
                rows,
            )

    def get(self, device_id: str, paths: Iterable[str] | None = None) -> dict[str, StoredParameter]:
        sql = "SELECT path, value, type, writable, observed_at, session_id FROM parameters WHERE device_id = ?"
        rows = self._db.query(sql, (device_id,))
        wanted = None if paths is None else set(paths)
        result = {}
        for path, value, value_type, writable, observed_at, session_id in rows:
            if wanted is not None and path not in wanted:
                continue
            result[path] = StoredParameter(
                path,
                value,
                XsdType.from_wire(value_type),
                None if writable is None else bool(writable),
                observed_at,
                session_id,
            )
        return result

    def record_notifications(self, device_id: str, paths: Iterable[str], level: int) -> None:
        with self._db.transaction() as conn:
            conn.executemany(
                "UPDATE parameters SET notification = ? WHERE device_id = ? AND path = ?",
                [(level, device_id, path) for path in paths],
            )

    def notifications(self, device_id: str) -> dict[str, int]:
        rows = self._db.query(
            "SELECT path, notification FROM parameters WHERE device_id = ? AND notification IS NOT NULL", (device_id,)
        )
        return {path: level for path, level in rows}

    def forget(self, device_id: str, paths: Iterable[str] | None = None) -> None:
        """Drop cached values: all of them (a factory-reset device, ``0 BOOTSTRAP``) or named ones (fault 9005)."""
        with self._db.transaction() as conn:
            if paths is None:
                conn.execute("DELETE FROM parameters WHERE device_id = ?", (device_id,))
            else:
                conn.executemany(
                    "DELETE FROM parameters WHERE device_id = ? AND path = ?", [(device_id, p) for p in paths]
                )


class Discovery:
    """GetParameterNames results cached per model key (OUI/ProductClass/SoftwareVersion)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, model_key: str, root: str, names: Iterable[tuple[str, bool]], *, at: float) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM discovered_names WHERE model_key = ?", (model_key,))
            conn.executemany(
                "INSERT OR REPLACE INTO discovered_names (model_key, path, writable, discovered_at) VALUES (?,?,?,?)",
                [(model_key, path, int(writable), at) for path, writable in names],
            )
            conn.execute(
                "INSERT OR REPLACE INTO discovered_models (model_key, root, discovered_at) VALUES (?, ?, ?)",
                (model_key, root, at),
            )

    def names(self, model_key: str) -> dict[str, bool] | None:
        """The known paths and their writability, or None when this model and firmware were never discovered."""
        if self._db.query_one("SELECT 1 FROM discovered_models WHERE model_key = ?", (model_key,)) is None:
            return None
        rows = self._db.query("SELECT path, writable FROM discovered_names WHERE model_key = ?", (model_key,))
        return {path: bool(writable) for path, writable in rows}

    def forget_path(self, model_key: str, path: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM discovered_names WHERE model_key = ? AND path = ?", (model_key, path))

    def invalidate(self, model_key: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM discovered_models WHERE model_key = ?", (model_key,))
            conn.execute("DELETE FROM discovered_names WHERE model_key = ?", (model_key,))
