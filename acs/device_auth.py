"""Who may open a CWMP session: HTTP authentication of the phone, then admission of the DeviceId it claims.

Two steps, because the HTTP layer authenticates a *credential* and only the Inform says which *device* speaks:

1. :meth:`DeviceAuthenticator.authenticate` checks the Authorization header (Digest MD5/SHA-256, Basic only over TLS)
   against stored HA1 digests, or the operator's shared bootstrap secret.
2. :meth:`DeviceAuthenticator.admit` checks that the authenticated credential belongs to the DeviceId in the Inform
   (one phone cannot speak for another), that the device is enrolled, and that a bootstrap secret is used at most
   once per device. Every refusal is audited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from cwmp_models.httpauth import ha1
from cwmp_models.httpauth_server import DigestVerifier
from cwmp_models.messages import DeviceId

from .store import Store, normalise_serial


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller. ``serial_number`` is the serial a per-device credential is bound to."""

    kind: str  # 'device', 'bootstrap' or 'anonymous' (authentication disabled)
    username: str | None = None
    serial_number: str | None = None


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    identity: Identity | None
    reason: str
    stale: bool = False
    attempted: bool = False  # an Authorization header was offered (a failure worth logging, unlike a bare challenge)


@dataclass(frozen=True, slots=True)
class Admission:
    ok: bool
    reason: str = ""


class DeviceAuthenticator:
    def __init__(
        self,
        store: Store,
        *,
        enabled: bool = True,
        realm: str = "wp820-acs",
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
        basic_over_tls: bool = True,
        nonce_ttl: float = 300.0,
        bootstrap_username: str | None = None,
        bootstrap_password: str | None = None,
        bootstrap_allow_unenrolled: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.enabled = enabled
        self.realm = realm
        self.basic_over_tls = basic_over_tls
        self.verifier = DigestVerifier(realm, algorithms=algorithms, nonce_ttl=nonce_ttl, clock=clock)
        self._bootstrap_username = bootstrap_username if bootstrap_password else None
        # The shared secret is kept only as its digests, like every other credential.
        self._bootstrap_ha1 = (
            {alg: ha1(bootstrap_username, realm, bootstrap_password, alg) for alg in ("MD5", "SHA-256")}
            if bootstrap_username and bootstrap_password
            else {}
        )
        self.bootstrap_allow_unenrolled = bootstrap_allow_unenrolled

    @property
    def bootstrap_enabled(self) -> bool:
        return bool(self._bootstrap_ha1)

    def challenge(self, *, is_tls: bool, stale: bool = False) -> list[str]:
        return self.verifier.challenge(stale=stale, basic=is_tls and self.basic_over_tls)

    def authenticate(self, method: str, uri: str, authorization: str | None, *, is_tls: bool) -> AuthOutcome:
        if not self.enabled:
            return AuthOutcome(Identity("anonymous"), "authentication disabled")
        result = self.verifier.verify(
            method, uri, authorization, self._lookup_ha1, is_tls=is_tls, allow_basic=self.basic_over_tls
        )
        if not result.ok:
            return AuthOutcome(None, str(result.reason), stale=result.stale, attempted=authorization is not None)
        username = result.username
        if username == self._bootstrap_username:
            return AuthOutcome(Identity("bootstrap", username), "bootstrap secret")
        credential = self.store.credentials.by_username(username)
        if credential is None:  # retired between lookup and now
            return AuthOutcome(None, "unknown user", attempted=True)
        return AuthOutcome(Identity("device", username, credential.serial_number), "ok")

    def _lookup_ha1(self, username: str, algorithm: str) -> str | None:
        if username == self._bootstrap_username:
            return self._bootstrap_ha1.get(algorithm)
        credential = self.store.credentials.by_username(username)
        if credential is None or credential.realm != self.realm:
            return None
        return credential.ha1(algorithm)

    def admit(self, identity: Identity, device_id: DeviceId, *, remote_ip: str | None = None) -> Admission:
        """May this identity open a session as ``device_id``? Refusals are audited here."""
        if identity.kind == "anonymous":
            return Admission(True, "authentication disabled")
        serial = normalise_serial(device_id.serial_number)
        enrolment = self.store.credentials.enrolment(serial)
        if identity.kind == "device":
            if identity.serial_number != serial:
                return self._refuse(identity, device_id, remote_ip, "credential belongs to another device")
            if enrolment is None:
                return self._refuse(identity, device_id, remote_ip, "device is not enrolled")
            if not _matches(enrolment.oui, device_id.oui) or not _matches(enrolment.product_class, device_id.product_class):
                return self._refuse(identity, device_id, remote_ip, "DeviceId does not match the enrolment")
            if enrolment.bootstrap_used_at is None:
                # The phone has switched to its own credential: the shared secret closes for it.
                self.store.credentials.mark_bootstrap_used(serial)
            return Admission(True)
        if identity.kind == "bootstrap":
            if enrolment is None:
                if not self.bootstrap_allow_unenrolled:
                    return self._refuse(identity, device_id, remote_ip, "device is not enrolled")
                self.store.credentials.enrol(
                    serial, by="bootstrap", oui=device_id.oui, product_class=device_id.product_class
                )
                self.store.audit.record(
                    "acs:bootstrap", "enrol", device_id=device_id.key, detail={"remote_ip": remote_ip},
                    reason="first contact with the bootstrap secret",
                )
            elif enrolment.bootstrap_used_at is not None:
                return self._refuse(identity, device_id, remote_ip, "bootstrap secret already used by this device")
            elif not _matches(enrolment.oui, device_id.oui) or not _matches(
                enrolment.product_class, device_id.product_class
            ):
                return self._refuse(identity, device_id, remote_ip, "DeviceId does not match the enrolment")
            return Admission(True, "bootstrap")
        return self._refuse(identity, device_id, remote_ip, f"unknown identity kind {identity.kind}")

    def _refuse(self, identity: Identity, device_id: DeviceId, remote_ip: str | None, reason: str) -> Admission:
        self.store.audit.record(
            f"remote:{remote_ip or '?'}",
            "session-refused",
            device_id=device_id.key,
            detail={"username": identity.username, "kind": identity.kind},
            reason=reason,
        )
        return Admission(False, reason)


def _matches(expected: str | None, actual: str) -> bool:
    return expected is None or expected == actual
