"""Which session a POST belongs to, and the limits on how many run at once.

Sessions are found by cookie, or — for stacks that never return cookies — by the TCP connection the POST arrived on.
One session per device at a time: a second one gets 503 while the first is alive.
"""

from __future__ import annotations

import secrets
from typing import Any

from acs.handler import ActiveSession


class SessionRegistry:
    def __init__(self) -> None:
        self._by_cookie: dict[str, ActiveSession] = {}
        self._by_channel: dict[int, ActiveSession] = {}
        self._by_device: dict[str, ActiveSession] = {}
        self._keys: dict[int, tuple[str, int | None]] = {}  # id(session) -> (cookie, channel id)

    def __len__(self) -> int:
        return len(self._keys)

    def sessions(self) -> list[ActiveSession]:
        return list(self._by_cookie.values())

    def find(self, cookie: str | None, channel: Any) -> ActiveSession | None:
        active = self._by_cookie.get(cookie) if cookie else None
        if active is None:
            active = self._by_channel.get(id(channel))
        if active is not None and active.machine.finished:
            self.remove(active)
            return None
        return active

    def add(self, active: ActiveSession, channel: Any) -> str:
        cookie = secrets.token_hex(16)
        self._by_cookie[cookie] = active
        self._by_channel[id(channel)] = active
        self._keys[id(active)] = (cookie, id(channel))
        return cookie

    def attach_channel(self, active: ActiveSession, channel: Any) -> None:
        """A cookie-bearing POST on a new connection: follow the session there too."""
        cookie, old = self._keys[id(active)]
        if old != id(channel):
            if old is not None and self._by_channel.get(old) is active:
                del self._by_channel[old]
            self._by_channel[id(channel)] = active
            self._keys[id(active)] = (cookie, id(channel))

    def device_session(self, device_id: str) -> ActiveSession | None:
        active = self._by_device.get(device_id)
        if active is not None and active.machine.finished:
            self.remove(active)
            return None
        return active

    def bind_device(self, active: ActiveSession, device_id: str) -> None:
        self._by_device[device_id] = active

    def channel_closed(self, channel: Any) -> None:
        active = self._by_channel.pop(id(channel), None)
        if active is not None and id(active) in self._keys:
            cookie, _ = self._keys[id(active)]
            self._keys[id(active)] = (cookie, None)

    def remove(self, active: ActiveSession) -> None:
        keys = self._keys.pop(id(active), None)
        if keys is None:
            return
        cookie, channel = keys
        self._by_cookie.pop(cookie, None)
        if channel is not None and self._by_channel.get(channel) is active:
            del self._by_channel[channel]
        if active.device_id is not None and self._by_device.get(active.device_id) is active:
            del self._by_device[active.device_id]

    def expired(self, now: float) -> list[ActiveSession]:
        return [active for active in self.sessions() if active.machine.is_expired(now)]
