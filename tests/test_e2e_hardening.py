"""The assembled ACS (acs.app: HTTPS, device authentication, policy, file endpoint) and simulated WP820s over real
sockets on loopback: a factory-default phone reaches verified compliance in at most three sessions, and phones with
the quirks of other CPE stacks (FIELD-NOTES) get there too."""

from __future__ import annotations

import time

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from acs.app import AcsApp
from acs.compliance_report import fleet_report
from acs.demo import prepare_site
from acs.policy.evaluate import Status
from wp820_sim.agent import AgentSettings
from wp820_sim.fleet import Fleet, FleetConfig, identity
from wp820_sim.quirks import Quirks

VERIFIED_VIA = {"TR-069", "config upload", "accepted by the device"}


async def harden(tmp_path, *, quirks: str = "", first_index: int = 0, overrides: tuple[str, ...] = ()):
    """Start the ACS and one phone, wait until the phone is compliant (or 30 s); return (app, device id, the time
    compliance was first seen)."""
    config, ca_file, credentials = prepare_site(tmp_path / "site", phones=1, first_index=first_index,
                                                overrides=overrides)
    app = AcsApp(config, reactor)
    await app.start()
    fleet = Fleet(
        FleetConfig(
            acs_url=config.cwmp.public_url, phones=1, state_dir=tmp_path / "phones", ca_file=ca_file,
            credentials=credentials, quirks=Quirks.parse(quirks), first_index=first_index,
            agent=AgentSettings(retry_scale=0.01),
        ),
        reactor=reactor,
    )
    await fleet.start()
    device_id = f"000B82-WP820-{identity(first_index).serial}"
    deadline = time.monotonic() + 30
    compliant_at = None
    try:
        while time.monotonic() < deadline and compliant_at is None:
            report = fleet_report(app.store, app.policy.policy)
            if report.devices and report.devices[0].status is Status.COMPLIANT:
                compliant_at = time.time()
            else:
                await task.deferLater(reactor, 0.05, lambda: None)
        await task.deferLater(reactor, 0.3, lambda: None)  # let the last TransferComplete session finish
    finally:
        await fleet.stop()
        await app.stop(grace=2.0)
    return app, device_id, compliant_at


def evaluated(app, device_id):
    from acs.policy.service import PolicyService
    from acs.store import Store

    store = Store(app.config.store.path)
    service = PolicyService(store, app.policy.policy, vault=None, acs_url=app.config.cwmp.public_url)
    return store, service.evaluate_device(device_id)


@pytest_twisted.ensureDeferred
async def test_factory_default_phone_reaches_verified_compliance_in_at_most_three_sessions(tmp_path):
    app, device_id, compliant_at = await harden(tmp_path)
    assert compliant_at is not None
    store, results = evaluated(app, device_id)
    try:
        for result in results:
            assert result.status in (Status.COMPLIANT, Status.NOT_APPLICABLE), (result.rule_id, result)
            for instance in result.instances:
                for check in instance.checks:
                    assert check.via in VERIFIED_VIA, (result.rule_id, check)
        sessions = store.history.sessions(device_id)
        assert all(s.outcome == "ok" for s in sessions)
        before = [s for s in sessions if s.started_at <= compliant_at]
        assert 1 <= len(before) <= 3, [(s.events, s.rpc_count) for s in sessions]
        # It all went over HTTPS with the phone's own credentials, and the config files through the file endpoint.
        assert {e.action for e in store.audit.entries(device_id=device_id)} >= {
            "set-parameter-values", "download-config", "file-served", "file-received"}
    finally:
        store.close()


QUIRKS = [
    "no_cookies",
    "basic_only",
    "reuse_digest_nonce",
    "soap_env_prefix,padded_array_counts",
    "xml_declaration",
    "reject_xml_declaration",
    "cwmp=1.0",
    "cwmp=1.4",
    "versioned_namespace,cwmp=1.4",
    "kdf=sha256",
]


@pytest.mark.parametrize("quirks", QUIRKS)
@pytest_twisted.ensureDeferred
async def test_phones_with_other_stacks_quirks_are_hardened_too(quirks, tmp_path):
    # A firmware that derives config-file keys with SHA-256 needs the ACS configured to match.
    overrides = ("files.config_kdf=sha256",) if quirks == "kdf=sha256" else ()
    app, device_id, compliant_at = await harden(tmp_path, quirks=quirks, first_index=10 + QUIRKS.index(quirks),
                                                overrides=overrides)
    assert compliant_at is not None
    store, results = evaluated(app, device_id)
    try:
        failing = {r.rule_id: r.status for r in results if r.status not in (Status.COMPLIANT, Status.NOT_APPLICABLE)}
        assert failing == {}
        assert all(s.outcome == "ok" for s in store.history.sessions(device_id))
    finally:
        store.close()
