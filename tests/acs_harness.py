"""A CWMP server assembled for tests: a temporary store, device authentication, the handler and the resource,
listening on 127.0.0.1 on an ephemeral port."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from twisted.internet import reactor
from twisted.web import resource

from acs.device_auth import DeviceAuthenticator
from acs.handler import SessionHandler
from acs.store import Store
from acs.tasks import TaskQueueSource
from acs.web.cwmp import CwmpLimits, CwmpResource, CwmpSite
from cwmp_models.httpauth import ha1
from cwmp_models.messages import DeviceId

REALM = "wp820-acs"


def device(serial: str = "c074ad000001") -> DeviceId:
    return DeviceId("Grandstream", "000B82", "WP820", serial)


def enrol_device(store: Store, serial: str, password: str, *, username: str | None = None) -> str:
    username = username or serial
    store.credentials.enrol(serial, by="test", oui="000B82", product_class="WP820")
    store.credentials.add(
        username, serial, ha1_md5=ha1(username, REALM, password, "MD5"),
        ha1_sha256=ha1(username, REALM, password, "SHA-256"), realm=REALM,
    )
    return username


@dataclass
class Harness:
    store: Store
    resource: CwmpResource
    handler: SessionHandler
    port: object
    url: str
    db_path: Path
    extra: dict = field(default_factory=dict)

    async def stop(self) -> None:
        await self.port.stopListening()
        self.store.close()


def build(
    db_path: Path,
    *,
    limits: CwmpLimits = CwmpLimits(),
    auth_enabled: bool = True,
    bootstrap: tuple[str, str] | None = None,
    clock=None,
    work=(TaskQueueSource,),
    max_rpcs: int = 64,
    bootstrap_allow_unenrolled: bool = False,
) -> Harness:
    store = Store(db_path)
    authenticator = DeviceAuthenticator(
        store,
        enabled=auth_enabled,
        realm=REALM,
        bootstrap_username=bootstrap[0] if bootstrap else None,
        bootstrap_password=bootstrap[1] if bootstrap else None,
        bootstrap_allow_unenrolled=bootstrap_allow_unenrolled,
    )
    handler_kwargs = {"clock": clock} if clock else {}
    handler = SessionHandler(store, work=work, max_rpcs=max_rpcs, auth_disabled=not auth_enabled, **handler_kwargs)
    resource_kwargs = {"clock": clock} if clock else {}
    cwmp = CwmpResource(handler, authenticator, limits=limits, **resource_kwargs)
    root = resource.Resource()
    root.putChild(b"cwmp", cwmp)
    site = CwmpSite(root, max_body_bytes=limits.max_body_bytes)
    cwmp.attach(site)
    port = reactor.listenTCP(0, site, interface="127.0.0.1", backlog=1024)
    url = f"http://127.0.0.1:{port.getHost().port}/cwmp"
    return Harness(store, cwmp, handler, port, url, db_path)
