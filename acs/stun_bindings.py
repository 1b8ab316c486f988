"""What the STUN server (``acs.stun_server``) asks of the rest of the ACS: a phone's STUN password, and where to keep
the binding address it learned.

The policy (rule ``tr069-stun``) sets each phone's STUNUsername to its serial number and a generated STUNPassword,
held in escrow like every per-device secret. ``credentials(username)`` finds the device by serial number and opens
that password (the active one; the pending one while the phone has not confirmed it yet, since a phone starts
binding with whatever it was last told). Unknown users, or users without a password, get None: the server answers
401.

``on_binding(info)`` stores the binding's public address as the device's UDPConnectionRequestAddress, only for
authenticated bindings carrying CONNECTION-REQUEST-BINDING (TR-111 CPEs probe NAT lifetimes from a second port
without it; that port is not where they listen), and only when it changed (a keep-alive every 30-60 s per phone
must not cost a write).
"""

from __future__ import annotations

from typing import Any

import structlog

from .connreq import format_udp_address
from .stun_server import BindingInfo
from .store import DeviceRecord, Store

__all__ = ["StunBindings", "STUN_PASSWORD_SECRET"]

STUN_PASSWORD_SECRET = "acs.stun_password"

log = structlog.get_logger("acs.stun")


class StunBindings:
    def __init__(self, store: Store, vault: Any) -> None:
        self.store = store
        self.vault = vault

    def _device(self, username: str | None) -> DeviceRecord | None:
        if not username:
            return None
        found = self.store.devices.find(username)
        # A username naming two devices (the same serial under two OUIs) identifies neither.
        return found[0] if len(found) == 1 else None

    def credentials(self, username: str) -> bytes | None:
        device = self._device(username)
        if device is None or self.vault is None:
            return None
        for state in ("active", "pending"):
            blob = self.store.secrets.get(device.id, STUN_PASSWORD_SECRET, state=state)
            if blob is not None:
                return self.vault.open(device.id, STUN_PASSWORD_SECRET, blob).encode("utf-8")
        return None

    def on_binding(self, info: BindingInfo) -> None:
        if not info.authenticated or not info.connection_request_binding:
            return
        device = self._device(info.username)
        if device is None:
            return
        address = format_udp_address(*info.address)
        if device.udp_connection_request_address == address:
            return
        self.store.devices.set_udp_connection_request_address(device.id, address)
        log.info("STUN binding", device_id=device.id, address=address, binding_change=info.binding_change)
