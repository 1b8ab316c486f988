"""``acs kick``: send connection requests to phones now and report, per phone, whether its session came.

Runs in its own process against the ACS's database (SQLite in WAL mode: the running ACS and this command read and
write it side by side). HTTP requests go out from here; a UDP request (TR-111) must leave from the STUN port, which
the running ACS holds, so it is handed to the ACS through the database (``queued``) and sent by it within a second.
"Delivered" is read from the database: the ACS links the phone's ``6 CONNECTION REQUEST`` session to the request.
"""

from __future__ import annotations

import getpass

import click

from .config_cmd import config_options, load_from_options

POLL_SECONDS = 0.2


@click.command(name="kick")
@config_options
@click.argument("devices", nargs=-1, required=True, metavar="DEVICE...")
@click.option("--wait", "wait", default=15.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds to wait for the phones' sessions (0: do not wait).")
@click.option("--reason", default="", help="Why (recorded in the audit log).")
@click.option("--operator", default=None, help="Who is asking (for the audit log); default: the login name.")
def command(config_path: str | None, overrides: tuple[str, ...], devices: tuple[str, ...], wait: float,
            reason: str, operator: str | None) -> None:
    """Ask each DEVICE (a device id or a serial number) to open a session with the ACS now.

    Prints one line per device; exits 1 if any request failed (a request the phone accepted but whose session has
    not arrived yet is not a failure)."""
    from twisted.internet import defer, reactor
    from twisted.python.failure import Failure

    from acs.logs import configure_logging
    from acs.store import Store

    config = load_from_options(config_path, overrides)
    configure_logging("console", "warning")  # the per-device lines are the output; warnings go to stderr
    store = Store(config.store.path, synchronous=config.store.synchronous)
    try:
        service = build_service(store, config, reactor)
        outcome: list = []

        def run() -> None:
            d = defer.ensureDeferred(kick_and_report(reactor, store, service, devices, wait=wait, reason=reason,
                                                     by=f"operator:{operator or getpass.getuser()}"))
            d.addBoth(outcome.append)
            d.addBoth(lambda _: reactor.stop())

        reactor.callWhenRunning(run)
        reactor.run(installSignalHandlers=True)
    finally:
        store.close()
    if not outcome:
        raise click.ClickException("interrupted")
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    lines, failed = outcome[0]
    for line in lines:
        click.echo(line)
    raise SystemExit(1 if failed else 0)


def build_service(store, config, reactor):
    from acs.connreq import ConnectionRequestService

    return ConnectionRequestService(
        store, _vault(config), reactor=reactor, timeout=config.connreq.timeout,
        concurrency=config.connreq.concurrency, min_interval=config.connreq.min_interval, rate=config.connreq.rate,
        allow_basic=config.connreq.allow_basic, udp_repeats=config.connreq.udp_repeats,
        udp_handover=config.stun.enabled,
    )


async def kick_and_report(reactor, store, service, names, *, wait: float, reason: str, by: str) -> tuple[list[str], bool]:
    """Kick the named devices and wait up to ``wait`` seconds for their sessions. Returns (lines, any failed)."""
    lines: dict[str, str] = {}
    targets: list[str] = []
    for name in dict.fromkeys(names):
        found = store.devices.find(name)
        if len(found) == 1:
            targets.append(found[0].id)
        else:
            lines[name] = f"{name}  unknown device" if not found else f"{name}  ambiguous: {len(found)} devices"
    results = await service.kick_many(targets, by=by, reason=reason) if targets else []
    delivered = await _wait_for_sessions(reactor, store, [r for r in results if r.ok], wait)
    for result in results:
        lines[result.device_id] = f"{result.device_id}  {_describe(result, delivered.get(result.request_id))}"
    failed = len(lines) > len(results) or any(not r.ok for r in results)
    return list(lines.values()), failed


def _vault(config):
    if not config.secrets.key_file:
        return None
    from acs.vault import Vault

    return Vault.from_key_file(config.secrets.key_file)


async def _wait_for_sessions(reactor, store, results, wait: float) -> dict[int, str]:
    from twisted.internet import task

    delivered: dict[int, str] = {}
    deadline = reactor.seconds() + wait
    while True:
        for result in results:
            record = store.connection_requests.get(result.request_id)
            if record is not None and record.delivered_session_id:
                delivered[result.request_id] = record.delivered_session_id
        if len(delivered) == len(results) or reactor.seconds() >= deadline:
            return delivered
        await task.deferLater(reactor, POLL_SECONDS, lambda: None)


def _describe(result, session_id: str | None) -> str:
    if not result.ok:
        return f"{result.outcome}: {result.detail}" if result.detail else result.outcome
    how = {"accepted": "accepted", "sent": "sent by UDP", "queued": "queued for the ACS's STUN port"}[result.outcome]
    if session_id:
        return f"{how}, delivered (session {session_id[:8]}… opened)"
    return f"{how}, no session yet"
