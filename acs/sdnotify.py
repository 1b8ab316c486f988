"""The systemd notification protocol (sd_notify) and the service watchdog, without libsystemd.

The whole protocol is one datagram: newline-separated ``KEY=VALUE`` assignments sent over an AF_UNIX SOCK_DGRAM socket
to the address in ``$NOTIFY_SOCKET`` (a path, or an abstract-namespace name written with a leading ``@``). systemd
learns the sender's PID from the kernel, so nothing else travels with it.

Sending never blocks and never raises on a missing or broken socket: a service must run the same with or without a
supervisor, and a notification must never stall the reactor that sends it. Only a malformed assignment, which is a
programming error, raises.

Twisted is imported lazily so that the protocol can be used (and tested) without a reactor.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime
    from twisted.internet.task import LoopingCall

READY = "READY=1"
STOPPING = "STOPPING=1"
RELOADING = "RELOADING=1"
WATCHDOG = "WATCHDOG=1"


class NotifyStateError(ValueError):
    """An assignment that systemd would misread: not ``KEY=VALUE``, or spanning several lines."""


class WatchdogConfigError(ValueError):
    """``WATCHDOG_USEC`` or ``WATCHDOG_PID`` holds something other than a positive integer."""


def status(text: str) -> str:
    """A ``STATUS=`` assignment for free text, folded onto one line.

    A line break inside the text would otherwise be read by systemd as the start of another assignment.
    """
    return "STATUS=" + " ".join(text.split())


def monotonic_usec() -> str:
    """The ``MONOTONIC_USEC=`` assignment that must accompany ``RELOADING=1`` (CLOCK_MONOTONIC, microseconds)."""
    return f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"


def notify(*states: str, env: Mapping[str, str] = os.environ) -> bool:
    """Send ``states`` as one notification to ``$NOTIFY_SOCKET``.

    Returns True when the datagram was handed to the kernel, False when there is no usable socket (unset, not an
    absolute path or ``@`` name, nobody listening, queue full).
    """
    if not states:
        raise NotifyStateError("no assignment to send")
    for state in states:
        if "=" not in state or state.startswith("=") or "\n" in state:
            raise NotifyStateError(f"not a single-line KEY=VALUE assignment: {state[:40]!r}")
    address = _socket_address(env.get("NOTIFY_SOCKET", ""))
    if address is None:
        return False
    datagram = "\n".join(states).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # MSG_DONTWAIT: a full queue at the receiver must cost a lost ping, not a frozen reactor.
            sock.sendto(datagram, socket.MSG_DONTWAIT, address)
    except OSError:
        return False
    return True


def _socket_address(value: str) -> str | None:
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    # Anything else (empty, relative, vsock: of newer systemd) is not a socket this module can reach.
    return None


def watchdog_interval(env: Mapping[str, str] = os.environ) -> float | None:
    """The watchdog timeout in seconds that systemd expects this process to honour, or None when it has none.

    ``WATCHDOG_PID``, when present, names the process the watchdog is meant for; any other process (a child that
    inherited the environment) must not ping. Pings should be sent at half this interval.
    """
    usec_text = env.get("WATCHDOG_USEC")
    if usec_text is None:
        return None
    usec = _positive_int("WATCHDOG_USEC", usec_text)
    pid_text = env.get("WATCHDOG_PID")
    if pid_text is not None and _positive_int("WATCHDOG_PID", pid_text) != os.getpid():
        return None
    return usec / 1_000_000


def _positive_int(name: str, text: str) -> int:
    try:
        number = int(text, 10)
    except ValueError:
        raise WatchdogConfigError(f"{name} is not an integer: {text[:40]!r}") from None
    if number <= 0:
        raise WatchdogConfigError(f"{name} must be positive, got {number}")
    return number


def start_watchdog(clock: IReactorTime, env: Mapping[str, str] = os.environ) -> LoopingCall | None:
    """Ping ``WATCHDOG=1`` every half watchdog interval from ``clock`` (the reactor), first ping at once.

    The pings run on the reactor thread on purpose: a reactor blocked by a stuck callback stops pinging, and systemd
    then kills and restarts the service. Returns the running LoopingCall (stop it on shutdown), or None when systemd
    asked for no watchdog.
    """
    interval = watchdog_interval(env)
    if interval is None:
        return None
    from twisted.internet.task import LoopingCall

    pinger = LoopingCall(notify, WATCHDOG, env=env)
    pinger.clock = clock
    pinger.start(interval / 2, now=True)
    return pinger
