"""Per-device CWMP credentials: issued by the operator at enrolment, or in a device's first session when it came in
with the shared bootstrap secret.

Only HA1 digests are stored. A password exists in plaintext only in the enrolment output the operator provisions
phones with, and in the one SetParameterValues that hands a bootstrap phone its own password.
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass
from typing import Iterable

from cwmp_models import messages as m
from cwmp_models.httpauth import ha1

from .store import Store, normalise_serial
from .work import DeviceContext, Step

PASSWORD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
PASSWORD_LENGTH = 24
CREDENTIALS_PARAMETER_KEY = "acs-device-credentials"
ACS_USERNAME_PATH = "Device.ManagementServer.Username"
ACS_PASSWORD_PATH = "Device.ManagementServer.Password"


class EnrolmentError(ValueError):
    """An enrolment CSV the operator must fix; the message names the line."""


def new_password() -> str:
    # Letters and digits only: TR-069 setters on Grandstream phones refuse anything else (fault 9007).
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def issue(store: Store, serial: str, *, realm: str, username: str | None = None) -> tuple[str, str]:
    """Create (or replace) the device credential for ``serial``; returns (username, password) — shown once."""
    username = username or normalise_serial(serial)
    password = new_password()
    store.credentials.add(
        username, serial, ha1_md5=ha1(username, realm, password, "MD5"),
        ha1_sha256=ha1(username, realm, password, "SHA-256"), realm=realm,
    )
    return username, password


@dataclass(frozen=True)
class EnrolmentRow:
    serial: str
    mac: str | None = None
    oui: str | None = None
    product_class: str | None = None
    site: str | None = None
    group: str | None = None


def read_enrolment_csv(text: str) -> list[EnrolmentRow]:
    """Rows of serial (or mac), with optional oui, product_class, site, group columns. Header required."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise EnrolmentError("the CSV is empty")
    columns = {name.strip().lower() for name in reader.fieldnames}
    if not columns & {"serial", "mac"}:
        raise EnrolmentError("the CSV needs a 'serial' or 'mac' column")
    rows = []
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        serial = row.get("serial") or row.get("mac")
        if not serial:
            raise EnrolmentError(f"line {line}: no serial or mac")
        normalised = normalise_serial(serial)
        if not normalised.isalnum() or len(normalised) > 64:
            raise EnrolmentError(f"line {line}: {serial!r} is not a serial number or MAC")
        rows.append(EnrolmentRow(normalised, row.get("mac") or None, row.get("oui") or None,
                                 row.get("product_class") or None, row.get("site") or None, row.get("group") or None))
    return rows


def enrol(store: Store, rows: Iterable[EnrolmentRow], *, realm: str, operator: str) -> list[tuple[str, str, str]]:
    """Enrol devices and issue each a credential. Returns (serial, username, password) per device."""
    issued = []
    with store.transaction():
        for row in rows:
            store.credentials.enrol(row.serial, by=operator, mac=row.mac, oui=row.oui,
                                    product_class=row.product_class, site=row.site, device_group=row.group)
            username, password = issue(store, row.serial, realm=realm)
            store.audit.record(operator, "enrol", detail={"serial": row.serial, "site": row.site,
                                                          "group": row.group}, reason="acs enrol")
            issued.append((row.serial, username, password))
    return issued


def credentials_csv(issued: Iterable[tuple[str, str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["serial", "username", "password"])
    writer.writerows(issued)
    return out.getvalue()


class BootstrapCredentialSource:
    """A device that authenticated with the shared bootstrap secret gets its own credential, first thing."""

    name = "bootstrap-credentials"

    def __init__(self, ctx: DeviceContext, *, realm: str) -> None:
        self.realm = realm
        self.done = ctx.identity_kind != "bootstrap"

    def next_step(self, ctx: DeviceContext) -> Step | None:
        if self.done:
            return None
        self.done = True
        serial = ctx.device.serial_number
        username = normalise_serial(serial)
        password = new_password()
        store = ctx.store
        request = m.SetParameterValues(
            [m.ParameterValueStruct(ACS_USERNAME_PATH, username), m.ParameterValueStruct(ACS_PASSWORD_PATH, password)],
            CREDENTIALS_PARAMETER_KEY,
        )

        def sent(request_id: str) -> None:
            # Stored before the device is told: if the reply is lost, the phone may already use the new password.
            store.credentials.add(
                username, serial, ha1_md5=ha1(username, self.realm, password, "MD5"),
                ha1_sha256=ha1(username, self.realm, password, "SHA-256"), realm=self.realm,
            )
            store.policy_state.issue_parameter_key(ctx.device.id, CREDENTIALS_PARAMETER_KEY)
            store.audit.record("acs:bootstrap", "issue-credentials", device_id=ctx.device.id,
                               detail={"username": username, "request": request_id},
                               reason="device used the shared bootstrap secret")

        def replied(reply: m.Message) -> None:
            if isinstance(reply, m.Fault):
                store.audit.record("acs:bootstrap", "issue-credentials-failed", device_id=ctx.device.id,
                                   detail={"fault": reply.fault_code}, reason=reply.fault_string)
            else:
                store.devices.set_parameter_key(ctx.device.id, CREDENTIALS_PARAMETER_KEY)

        return Step(request, on_sent=sent, on_reply=replied, purpose="per-device CWMP credentials")

    def on_transfer_complete(self, ctx: DeviceContext, message: m.TransferComplete) -> bool:
        return False
