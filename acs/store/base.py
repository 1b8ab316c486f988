"""The connection, transactions and migrations shared by every repository of the store."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable

import sqlite_utils

from .schema import LATEST_VERSION, MIGRATIONS


class StoreError(RuntimeError):
    """The database cannot be used (newer schema than this code, unreadable file, ...)."""


class Database:
    """One SQLite connection in WAL mode with foreign keys on and explicit transactions.

    ``synchronous`` is NORMAL by default: in WAL mode a committed transaction survives the process being killed at
    any moment (the promise the ACS makes), and only an OS crash or power loss can lose the last commits. Set
    "full" to survive those too, at the cost of an fsync per commit.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "normal", clock: Callable[[], float] = time.time):
        self.path = str(path)
        self.clock = clock
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        self.conn.row_factory = sqlite3.Row
        self.utils = sqlite_utils.Database(self.conn)
        self._depth = 0
        self._lock = threading.RLock()
        try:
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute(f"PRAGMA synchronous = {_synchronous(synchronous)}")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA busy_timeout = 5000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreError(f"cannot use database {self.path}: {exc}") from None

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        current = self.schema_version
        if current > LATEST_VERSION:
            raise StoreError(
                f"database {self.path} has schema version {current}, newer than this program ({LATEST_VERSION})"
            )
        for version in range(current, LATEST_VERSION):
            with self.transaction():
                MIGRATIONS[version](self.conn)
                self.conn.execute(f"PRAGMA user_version = {version + 1}")

    def transaction(self) -> "_Transaction":
        """A write transaction; nested uses join the outermost one, so repository methods compose atomically.
        (A small class rather than @contextmanager: it is entered dozens of times per session.)"""
        return _Transaction(self)

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def close(self) -> None:
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass  # another process holds the WAL; it checkpoints later
        self.conn.close()


class _Transaction:
    __slots__ = ("_db", "_outermost")

    def __init__(self, db: "Database") -> None:
        self._db = db
        self._outermost = False

    def __enter__(self) -> sqlite3.Connection:
        db = self._db
        db._lock.acquire()
        if db._depth:
            db._depth += 1
            return db.conn
        try:
            db.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            db._lock.release()
            raise
        db._depth = 1
        self._outermost = True
        return db.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        db = self._db
        try:
            if not self._outermost:
                db._depth -= 1
                return
            db._depth = 0
            db.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
        finally:
            db._lock.release()


def _synchronous(value: str) -> str:
    value = value.lower()
    if value not in ("normal", "full"):
        raise StoreError(f"synchronous must be 'normal' or 'full', not {value!r}")
    return value.upper()
