"""The database schema as a list of forward migrations, applied in order and recorded in ``PRAGMA user_version``.

Never edit a migration that has shipped: add a new one. Each runs in its own transaction, so a crash mid-upgrade
leaves the database at the previous version.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

Migration = Callable[[sqlite3.Connection], None]


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run statements one by one: executescript() would COMMIT the surrounding migration transaction first."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError("migration script ends with an incomplete statement")


def _v1_initial(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE devices (
            id TEXT PRIMARY KEY,                 -- OUI-ProductClass-SerialNumber, TR-069's device identity
            oui TEXT NOT NULL,
            product_class TEXT NOT NULL,
            serial_number TEXT NOT NULL,
            manufacturer TEXT NOT NULL DEFAULT '',
            software_version TEXT,
            hardware_version TEXT,
            ip TEXT,
            connection_request_url TEXT,
            udp_connection_request_address TEXT,
            parameter_key TEXT,
            cwmp_version TEXT,
            first_inform REAL,
            last_inform REAL,
            last_boot REAL,
            last_bootstrap REAL,
            site TEXT,
            device_group TEXT,
            UNIQUE (serial_number, oui, product_class)
        );

        -- Operator-enrolled devices: who may speak to the ACS at all.
        CREATE TABLE enrolments (
            serial_number TEXT PRIMARY KEY,      -- normalised (lower case); usually the MAC
            mac TEXT,
            oui TEXT,                            -- NULL: any OUI
            product_class TEXT,                  -- NULL: any product class
            site TEXT,
            device_group TEXT,
            enrolled_at REAL NOT NULL,
            enrolled_by TEXT NOT NULL,
            bootstrap_used_at REAL               -- the shared bootstrap secret is accepted until this is set
        );

        -- Credentials a CPE uses to authenticate to the ACS: digests only, never the password.
        CREATE TABLE cpe_credentials (
            username TEXT PRIMARY KEY,
            serial_number TEXT NOT NULL REFERENCES enrolments(serial_number) ON DELETE CASCADE,
            ha1_md5 TEXT NOT NULL,
            ha1_sha256 TEXT NOT NULL,
            realm TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('device', 'bootstrap')),
            created_at REAL NOT NULL,
            retired_at REAL
        );
        CREATE INDEX cpe_credentials_serial ON cpe_credentials(serial_number);

        -- Per-device secrets (passwords the ACS generated and must remember), encrypted by acs.vault.
        CREATE TABLE secrets (
            device_id TEXT NOT NULL,
            name TEXT NOT NULL,
            ciphertext BLOB NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'active')),
            created_at REAL NOT NULL,
            confirmed_at REAL,
            PRIMARY KEY (device_id, name, state)
        );

        CREATE TABLE parameters (
            device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            value TEXT,
            type TEXT NOT NULL DEFAULT 'string',
            writable INTEGER,
            notification INTEGER,
            observed_at REAL NOT NULL,
            session_id TEXT,
            PRIMARY KEY (device_id, path)
        ) WITHOUT ROWID;

        -- GetParameterNames results, cached per model and firmware (DESIGN: discover once per model and firmware).
        CREATE TABLE discovered_names (
            model_key TEXT NOT NULL,
            path TEXT NOT NULL,
            writable INTEGER NOT NULL,
            discovered_at REAL NOT NULL,
            PRIMARY KEY (model_key, path)
        ) WITHOUT ROWID;
        CREATE TABLE discovered_models (
            model_key TEXT PRIMARY KEY,
            root TEXT NOT NULL,
            discovered_at REAL NOT NULL
        );

        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
            started_at REAL NOT NULL,
            ended_at REAL,
            outcome TEXT,
            rpc_count INTEGER NOT NULL DEFAULT 0,
            remote_ip TEXT,
            events TEXT NOT NULL DEFAULT '',
            cwmp_version TEXT,
            connection_request_id INTEGER
        );
        CREATE INDEX sessions_device ON sessions(device_id, started_at);

        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
            session_id TEXT NOT NULL,
            code TEXT NOT NULL,
            command_key TEXT NOT NULL DEFAULT '',
            received_at REAL NOT NULL
        );
        CREATE INDEX events_device ON events(device_id, received_at);

        CREATE TABLE faults (
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
            session_id TEXT,
            source TEXT NOT NULL,                -- the RPC or transfer that failed, or 'protocol'
            code INTEGER,
            message TEXT NOT NULL DEFAULT '',
            parameter TEXT,
            at REAL NOT NULL
        );
        CREATE INDEX faults_device ON faults(device_id, at);

        CREATE TABLE tasks (
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL,
            kind TEXT NOT NULL,                  -- 'rpc' (a prepared ACS request) or a named task
            payload TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'done', 'failed', 'cancelled')),
            created_at REAL NOT NULL,
            created_by TEXT NOT NULL,
            not_before REAL NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL DEFAULT 5,
            command_key TEXT,
            session_id TEXT,
            request_id TEXT,
            result TEXT,
            updated_at REAL NOT NULL,
            campaign_id INTEGER
        );
        CREATE INDEX tasks_due ON tasks(device_id, status, not_before);
        CREATE INDEX tasks_command_key ON tasks(device_id, command_key);

        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            device_id TEXT,
            detail TEXT NOT NULL DEFAULT '{}',
            reason TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX audit_device ON audit(device_id, at);
        """
    )


def _v2_transfers(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        -- Files offered to or accepted from a device on a one-time URL (acs.store.transfers says what is kept how).
        CREATE TABLE transfers (
            id INTEGER PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,     -- SHA-256 of the URL token, never the token
            device_id TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('download', 'upload')),
            file_type TEXT NOT NULL,
            command_key TEXT NOT NULL CHECK (length(command_key) BETWEEN 1 AND 32),
            username TEXT NOT NULL,
            realm TEXT NOT NULL,
            ha1_md5 TEXT NOT NULL,               -- Digest HA1 of the per-transfer password, never the password
            ha1_sha256 TEXT NOT NULL,
            content BLOB,                        -- sealed by acs.vault; NULL once a download is served
            size INTEGER,
            media_type TEXT,
            status TEXT NOT NULL
                CHECK (status IN ('offered', 'served', 'received', 'completed', 'failed', 'expired')),
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            served_at REAL,
            received_at REAL,
            completed_at REAL,
            remote_ip TEXT,
            fault_code INTEGER,
            fault_text TEXT,
            detail TEXT NOT NULL DEFAULT '{}',
            session_id TEXT
        );
        CREATE UNIQUE INDEX transfers_active_command_key ON transfers(device_id, command_key)
            WHERE status IN ('offered', 'served', 'received');
        CREATE INDEX transfers_device ON transfers(device_id, status);
        CREATE INDEX transfers_offered_expiry ON transfers(expires_at) WHERE status = 'offered';
        """
    )


def _v3_policy_state(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE compliance (
            device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
            rule_id TEXT NOT NULL,
            status TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',   -- per instance and check: expected, value read, when, session
            evaluated_at REAL NOT NULL,
            session_id TEXT,
            PRIMARY KEY (device_id, rule_id)
        ) WITHOUT ROWID;

        CREATE TABLE rule_backoff (
            device_id TEXT NOT NULL,
            rule_id TEXT NOT NULL,
            key TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt_at REAL NOT NULL,
            fault_code INTEGER,
            fault_text TEXT NOT NULL DEFAULT '',
            updated_at REAL NOT NULL,
            PRIMARY KEY (device_id, rule_id, key)
        ) WITHOUT ROWID;

        CREATE TABLE issued_parameter_keys (
            device_id TEXT NOT NULL,
            parameter_key TEXT NOT NULL,
            issued_at REAL NOT NULL,
            PRIMARY KEY (device_id, parameter_key)
        ) WITHOUT ROWID;

        CREATE TABLE exemptions (
            device_id TEXT NOT NULL,
            rule_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (device_id, rule_id)
        ) WITHOUT ROWID;
        """,
    )


MIGRATIONS: list[Migration] = [_v1_initial, _v2_transfers, _v3_policy_state]
LATEST_VERSION = len(MIGRATIONS)


def _v4_connection_requests(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        -- Every connection request the ACS made (acs.connreq): how it went, and the session that answered it.
        CREATE TABLE connection_requests (
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
            requested_at REAL NOT NULL,
            requested_by TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            method TEXT CHECK (method IN ('http', 'udp')),   -- NULL: nothing was sent (in_session, too_soon, ...)
            url TEXT,                                        -- the HTTP URL, or host:port of a UDP request
            outcome TEXT NOT NULL,                           -- 'pending' until the attempt is over
            http_status INTEGER,
            detail TEXT NOT NULL DEFAULT '',
            completed_at REAL,
            delivered_session_id TEXT,
            delivered_at REAL
        );
        CREATE INDEX connection_requests_device ON connection_requests(device_id, requested_at);
        -- UDP requests another process (acs kick) hands to the one holding the STUN port.
        CREATE INDEX connection_requests_queued ON connection_requests(requested_at) WHERE outcome = 'queued';
        """,
    )


MIGRATIONS.append(_v4_connection_requests)
LATEST_VERSION = len(MIGRATIONS)
