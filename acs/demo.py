"""The end-to-end demo: the ACS and a simulated WP820 fleet, factory defaults to verified compliance.

Everything is real and on loopback: the ACS listens on HTTPS with a certificate from a demo CA, the phones validate
it, authenticate with per-device credentials from ``acs enrol``, and speak CWMP through the same code the service
runs. The store is the embedded SQLite default. Two phases:

1. **Audit.** The policy only reads (GetParameterNames, GetParameterValues, an Upload of each config file): the
   fleet's real starting point, phone by phone.
2. **Enforce.** The policy remediates at each phone's next periodic Inform; the demo prints compliance as the
   read-backs come in, then kicks one phone with a connection request on its new port and credentials, and prints
   the summary table.
"""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path
from typing import Callable

from twisted.internet import defer, task

PHASE_TIMEOUT = 180.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Demo:
    def __init__(self, *, phones: int, workdir: Path | None, periodic: int, echo: Callable[[str], None]):
        self.phones = phones
        self.periodic = periodic
        self.echo = echo
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="wp820-acs-demo-"))
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        self.echo(f"[{time.monotonic() - self.started:5.1f}s] {text}")

    def prepare(self):
        return prepare_site(self.workdir, phones=self.phones)

    async def run(self, reactor) -> bool:
        from acs.app import AcsApp
        from acs.compliance_report import fleet_report
        from acs.cli.compliance_cmd import render_fleet
        from acs.logs import configure_logging
        from wp820_sim.fleet import Fleet, FleetConfig

        configure_logging("console", "error")
        config, ca_file, credentials = self.prepare()
        app = AcsApp(config, reactor)
        app.policy.enforce = False  # phase 1 only reads
        await app.start()
        self.echo(f"WP820 hardening demo: {self.phones} simulated phones (factory defaults) against the ACS at "
                  f"{config.cwmp.public_url}")
        self.echo(f"  state, keys and the SQLite store are in {self.workdir}")
        fleet = Fleet(
            FleetConfig(
                acs_url=config.cwmp.public_url,
                phones=self.phones,
                state_dir=self.workdir / "phones",
                ca_file=ca_file,
                credentials=credentials,
                ramp=2.0,
                periodic_interval=self.periodic,
            ),
            reactor=reactor,
        )
        await fleet.start()
        try:
            policy = app.policy.policy
            self.say(f"phase 1 — audit: policy {policy.id} {policy.revision} reads every phone, changes nothing")
            await self._until(reactor, app, lambda r: all(d.evaluated for d in r.devices) and len(r.devices) ==
                              self.phones and _nothing_unknown(r, config_keys_only=True))
            report = fleet_report(app.store, policy)
            self.say("before: " + _fleet_line(report))
            self.echo(_worst_rules(report))
            self.say("phase 2 — enforce: remediation at each phone's next periodic Inform, verified by read-back")
            app.policy.enforce = True
            done = await self._until(reactor, app, lambda r: r.devices_with(_status("compliant")) == self.phones,
                                     progress=True)
            report = fleet_report(app.store, policy)
            self.say("after: " + _fleet_line(report))
            await self._kick_one(app, fleet)
            self.echo("")
            self.echo(render_fleet(report))
            return done
        finally:
            await fleet.stop()
            await app.stop(grace=2.0)

    async def _until(self, reactor, app, condition, *, progress: bool = False) -> bool:
        from acs.compliance_report import fleet_report

        deadline = time.monotonic() + PHASE_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            report = fleet_report(app.store, app.policy.policy)
            line = _fleet_line(report)
            if progress and line != last:
                self.say(line)
                last = line
            if report.devices and condition(report):
                return True
            await task.deferLater(reactor, 0.5, lambda: None)
        self.say("timed out waiting; the summary shows where the fleet stands")
        return False

    async def _kick_one(self, app, fleet) -> None:
        device = app.store.devices.all()[0]
        before = fleet.counters.get("connection_requests_accepted", 0)
        result = await app.connreq.kick(device.id, by="operator:demo", reason="demo: call in now")
        self.say(f"connection request to {device.id} on {result.url or '?'}: {result.outcome}")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            session = app.store.history.sessions(device.id, limit=1)
            if session and session[0].connection_request_id is not None:
                self.say(f"delivered: session {session[0].id} opened with 6 CONNECTION REQUEST")
                return
            await task.deferLater(app.reactor, 0.25, lambda: None)
        del before


def prepare_site(workdir: Path, *, phones: int, overrides: tuple[str, ...] = (), first_index: int = 0):
    """Keys, a certificate from a fresh CA, the enrolment of ``phones`` simulated phones and a configuration for an
    ACS on a free loopback HTTPS port — what an administrator makes, in ``workdir``. Returns (config, CA certificate
    path, the phones' credentials by serial)."""
    from acs.config import load_config
    from acs.credentials import EnrolmentRow, enrol
    from acs.store import Store
    from acs.tls import generate_ca_and_server
    from acs.vault import generate_key_file
    from wp820_sim.fleet import identity, load_credentials_csv

    workdir.mkdir(parents=True, exist_ok=True)
    tls = generate_ca_and_server(["127.0.0.1"], workdir / "tls", overwrite=True)
    key_file = workdir / "secrets.key"
    if not key_file.exists():
        generate_key_file(key_file)
    port = _free_port()
    url = f"https://127.0.0.1:{port}/cwmp"
    config = load_config(
        None,
        env={},
        overrides=[
            f"cwmp.https=127.0.0.1:{port}",
            f"cwmp.public_url={url}",
            f"tls.cert={tls.cert}",
            f"tls.key={tls.key}",
            f"secrets.key_file={key_file}",
            f"store.path={workdir / 'acs.sqlite'}",
            "log.level=warning",
            "connreq.min_interval=1",
            *overrides,
        ],
    )
    store = Store(config.store.path)
    try:
        rows = [EnrolmentRow(identity(first_index + i).serial, oui="000B82", product_class="WP820")
                for i in range(phones)]
        issued = enrol(store, rows, realm=config.auth.realm, operator="operator:demo")
    finally:
        store.close()
    credentials_csv = workdir / "credentials.csv"
    credentials_csv.write_text("serial,username,password\n" + "".join(f"{s},{u},{p}\n" for s, u, p in issued))
    credentials_csv.chmod(0o600)
    return config, tls.ca_cert, load_credentials_csv(credentials_csv)


def _status(name: str):
    from acs.policy.evaluate import Status

    return Status(name)


def _fleet_line(report) -> str:
    counts = {name: report.devices_with(_status(name)) for name in ("compliant", "non_compliant", "unknown")}
    total = len(report.devices)
    return (f"{counts['compliant']}/{total} phones compliant, {counts['non_compliant']} non-compliant, "
            f"{counts['unknown']} unknown")


def _nothing_unknown(report, *, config_keys_only: bool) -> bool:
    unknown = _status("unknown")
    # Secrets stay unknown-or-worse in audit mode (the ACS holds none yet); wait for everything else to be read.
    return all(summary.rules.get(rule.rule.id) is not unknown for summary in report.devices for rule in report.rules
               if rule.rule.kind == "setting" and not any(c.escrowed for c in rule.rule.checks))


def _worst_rules(report) -> str:
    failing = [(r.counts["non_compliant"], r.rule.id, r.rule.title) for r in report.rules if r.counts["non_compliant"]]
    failing.sort(reverse=True)
    lines = [f"  {len(failing)} rules fail on factory defaults, e.g.:"]
    lines += [f"    {rule_id:38} {title}" for _, rule_id, title in failing[:8]]
    return "\n".join(lines)


def main(*, phones: int, workdir: Path | None, periodic: int, echo: Callable[[str], None]) -> int:
    from twisted.internet import reactor

    demo = Demo(phones=phones, workdir=workdir, periodic=periodic, echo=echo)
    outcome = {"ok": False}

    async def go():
        try:
            outcome["ok"] = await demo.run(reactor)
        finally:
            reactor.stop()

    def failed(failure):
        echo(f"demo failed: {failure.getErrorMessage()}")

    reactor.callWhenRunning(lambda: defer.ensureDeferred(go()).addErrback(failed))
    reactor.run()
    return 0 if outcome["ok"] else 1
