"""The ACS process: every component built from one Config, the listeners, and an orderly start and stop.

Start: open the store → build authentication, policy, handler and resources → listen on every configured listener
(HTTP, HTTPS, a socket-activated one) → tell systemd READY=1 (only now) and start the watchdog from the reactor.
Stop (SIGTERM): STOPPING=1 → stop listening and refuse new sessions → let running sessions finish within a bound →
end the rest cleanly → close the store (WAL checkpoint). SIGHUP re-reads the policy files without dropping sessions.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from twisted.internet import defer, endpoints, task
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web import resource

from . import sdnotify
from .config import Config, ConfigError, parse_listener
from .connreq import ConnectionRequestService
from .credentials import BootstrapCredentialSource
from .device_auth import DeviceAuthenticator
from .handler import SessionHandler
from .policy.loading import acs_settings, load_policy_files
from .policy.rules import PolicyError
from .policy.service import PolicyService
from .store import Store
from .tasks import TaskQueueSource
from .web.cwmp import CwmpLimits, CwmpResource, CwmpSite


def _mount(root: resource.Resource, path: str, child: resource.Resource) -> None:
    parts = [part.encode() for part in path.strip("/").split("/") if part]
    node = root
    for part in parts[:-1]:
        nxt = node.children.get(part)
        if nxt is None:
            nxt = resource.Resource()
            node.putChild(part, nxt)
        node = nxt
    node.putChild(parts[-1], child)


@dataclass
class AcsApp:
    config: Config
    reactor: Any
    store: Store = field(init=False)
    ports: list = field(default_factory=list)

    def __post_init__(self) -> None:
        config = self.config
        self.log = structlog.get_logger("acs")
        self.store = Store(config.store.path, synchronous=config.store.synchronous)
        interrupted = self.store.history.close_abandoned_sessions(at=time.time())
        if interrupted:
            self.log.warning("sessions interrupted by the previous stop", count=interrupted)
        self.vault = self._vault()
        self.authenticator = DeviceAuthenticator(
            self.store,
            enabled=config.auth.enabled,
            realm=config.auth.realm,
            algorithms=tuple(config.auth.algorithms),
            basic_over_tls=config.auth.basic_over_tls,
            nonce_ttl=config.auth.nonce_ttl,
            bootstrap_username=config.auth.bootstrap_username if config.auth.bootstrap_enabled else None,
            bootstrap_password=self._bootstrap_password(),
            bootstrap_allow_unenrolled=config.auth.bootstrap_allow_unenrolled,
        )
        self.files = self._file_service()
        policy, overrides = load_policy_files(config)
        self.policy = PolicyService(
            self.store, policy, vault=self.vault, files=self.files, overrides=overrides,
            **acs_settings(config),
            enforce=self.vault is not None,
            config_kdf=config.files.config_kdf,
        )
        if self.vault is None:
            self.log.warning("secrets.key_file is not set: the policy runs in audit mode (no secrets can be escrowed)")
        self.stun = self._stun_server()
        self.connreq = ConnectionRequestService(
            self.store, self.vault, reactor=self.reactor, timeout=config.connreq.timeout,
            concurrency=config.connreq.concurrency, min_interval=config.connreq.min_interval,
            rate=config.connreq.rate, allow_basic=config.connreq.allow_basic, udp_repeats=config.connreq.udp_repeats,
            stun_server=self.stun,
            is_session_open=lambda device_id: self.cwmp.registry.device_session(device_id) is not None,
        )
        realm = config.auth.realm
        self.handler = SessionHandler(
            self.store,
            work=[
                lambda ctx: BootstrapCredentialSource(ctx, realm=realm),
                lambda ctx: TaskQueueSource(ctx, vault=self.vault),
                self.policy.source,
            ],
            max_rpcs=config.cwmp.max_rpcs_per_session,
            session_timeout=float(config.cwmp.session_timeout),
            auth_disabled=not config.auth.enabled,
            on_session_start=self.connreq.session_started,
        )
        self.cwmp = CwmpResource(
            self.handler,
            self.authenticator,
            limits=CwmpLimits(
                max_sessions=config.cwmp.max_sessions,
                max_body_bytes=config.cwmp.max_body_bytes,
                max_decompressed_bytes=config.cwmp.max_decompressed_bytes,
                retry_after_min=config.cwmp.retry_after_min,
                retry_after_max=config.cwmp.retry_after_max,
            ),
        )
        root = resource.Resource()
        _mount(root, config.cwmp.path, self.cwmp)
        if self.files is not None:
            from .web.files import FileResource

            root.putChild(b"files", FileResource(self.files))
        self.site = CwmpSite(root, max_body_bytes=config.cwmp.max_body_bytes)
        self.cwmp.attach(self.site)
        self._sweeper: task.LoopingCall | None = None
        self._expiry: task.LoopingCall | None = None
        self._relay: task.LoopingCall | None = None
        self._watchdog: task.LoopingCall | None = None

    # ---- components -------------------------------------------------------------------------------------------------

    def _vault(self):
        if not self.config.secrets.key_file:
            return None
        from .vault import Vault

        return Vault.from_key_file(self.config.secrets.key_file)

    def _bootstrap_password(self) -> str | None:
        if not self.config.auth.bootstrap_enabled:
            return None
        return Path(self.config.auth.bootstrap_secret_file).read_text("utf-8").strip()

    def _file_service(self):
        base_url = self.config.files.base_url
        if not base_url or self.vault is None:
            return None
        from .files import FileService

        return FileService(
            self.store, base_url=base_url.rstrip("/") + "/files", ttl=self.config.files.url_ttl,
            seal=self.vault.seal, open=self.vault.open,
        )

    def _stun_server(self):
        if not self.config.stun.enabled:
            return None
        from .stun_bindings import StunBindings
        from .stun_server import StunServer

        bindings = StunBindings(self.store, self.vault)
        # Without a vault no phone has a STUN password: the server answers everyone and stores no binding.
        return StunServer(on_binding=bindings.on_binding, credentials=bindings.credentials if self.vault else None,
                          clock=self.reactor)

    def _tls(self):
        if not self.config.tls.cert:
            return None
        from .tls import server_context_factory

        return server_context_factory(self.config.tls.cert, self.config.tls.key,
                                      min_version=self.config.tls.min_version)

    # ---- lifecycle --------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        tls = self._tls()
        sdnotify.notify(sdnotify.status("opening listeners"))
        listeners: list[tuple[str, Any, Any]] = []
        for address in config.cwmp.http:
            listeners.append((f"http://{address}", self._endpoint(address), self.site))
        for address in config.cwmp.https:
            listeners.append((f"https://{address}", self._endpoint(address), TLSMemoryBIOFactory(tls, False, self.site)))
        if config.cwmp.systemd_socket:
            endpoint = self._activated_endpoint(config.cwmp.systemd_socket)
            factory = TLSMemoryBIOFactory(tls, False, self.site) if tls else self.site
            listeners.append((f"systemd:{config.cwmp.systemd_socket}", endpoint, factory))
        for name, endpoint, factory in listeners:
            port = await endpoint.listen(factory)
            self.ports.append(port)
            self.log.info("listening", listener=name, address=str(port.getHost()))
        if self.stun is not None:
            host, port = parse_listener(config.stun.listen)
            self.ports.append(self.reactor.listenUDP(port, self.stun, interface=host))
            self.log.info("listening", listener=f"stun:{config.stun.listen}", address=str(self.ports[-1].getHost()))
            self._relay = self.connreq.start_relay()  # UDP connection requests queued by `acs kick`
        self._sweeper = self.cwmp.start_sweeper(self.reactor)
        if self.files is not None:
            # One-time URLs nobody used expire; their rows say so (served ones wait for their TransferComplete).
            self._expiry = task.LoopingCall(self.files.expire)
            self._expiry.clock = self.reactor
            self._expiry.start(60.0, now=False)
        self._watchdog = sdnotify.start_watchdog(self.reactor)
        sdnotify.notify(sdnotify.READY, sdnotify.status(f"serving {len(self.ports)} listener(s)"))
        self.log.info("ready", devices=self.store.devices.count(), policy=self.policy.policy.id,
                      revision=self.policy.policy.revision, enforce=self.policy.enforce)

    def _activated_endpoint(self, name: str):
        """The listening socket systemd passed under FileDescriptorName ``name``. Twisted takes the address family from
        the descriptor itself, so an IPv4-only socket unit (``0.0.0.0:7549``) works as well as ``[::]:7549``."""
        try:
            return endpoints.serverFromString(self.reactor, f"systemd:domain=INET6:name={name}")
        except KeyError:
            # Twisted already removed LISTEN_PID/LISTEN_FDS from the environment; LISTEN_FDNAMES stays.
            passed = os.environ.get("LISTEN_FDNAMES", "")
            raise ConfigError(f"cwmp.systemd_socket: systemd passed no socket named {name!r} "
                              f"(LISTEN_FDNAMES={passed!r}); start the service through its socket unit") from None

    def _endpoint(self, address: str):
        host, port = parse_listener(address)
        cls = endpoints.TCP6ServerEndpoint if ":" in host else endpoints.TCP4ServerEndpoint
        return cls(self.reactor, port, backlog=self.config.cwmp.backlog, interface=host)

    async def stop(self, grace: float | None = None) -> None:
        """Graceful stop: no new sessions, running ones get ``grace`` seconds (cwmp.stop_grace), then everything is
        closed."""
        grace = float(self.config.cwmp.stop_grace) if grace is None else grace
        sdnotify.notify(sdnotify.STOPPING, sdnotify.status("stopping: finishing open sessions"))
        self.cwmp.accepting = False
        if self._relay is not None and self._relay.running:
            self._relay.stop()  # before the STUN port closes under it
        await defer.gatherResults([defer.maybeDeferred(port.stopListening) for port in self.ports])
        self.ports.clear()
        deadline = time.monotonic() + grace
        while len(self.cwmp.registry) and time.monotonic() < deadline:
            await task.deferLater(self.reactor, 0.1, lambda: None)
        for active in self.cwmp.registry.sessions():
            self.handler.end(active, "shutdown")
        # Close the remaining connections cleanly: an answer already written (a session's last 204) is flushed to the
        # phone first, which a reactor stop alone would not do.
        for channel in list(self.site.open_channels):
            channel.transport.loseConnection()
        flush_deadline = time.monotonic() + 2.0
        while self.site.open_channels and time.monotonic() < flush_deadline:
            await task.deferLater(self.reactor, 0.02, lambda: None)
        for loop in (self._sweeper, self._watchdog, self._expiry):
            if loop is not None and loop.running:
                loop.stop()
        self.store.close()
        self.log.info("stopped")

    def reload(self) -> bool:
        """SIGHUP: re-read the policy and its overrides. Running sessions keep the policy they started with."""
        try:
            policy, overrides = load_policy_files(self.config)
        except PolicyError as exc:
            self.log.error("policy reload failed; keeping the current policy", error=str(exc))
            return False
        sdnotify.notify(sdnotify.RELOADING, sdnotify.monotonic_usec())
        self.policy.policy = policy
        self.policy.overrides = overrides
        sdnotify.notify(sdnotify.READY, sdnotify.status(f"policy {policy.id} {policy.revision}"))
        self.log.info("policy reloaded", policy=policy.id, revision=policy.revision)
        return True


def run(config: Config) -> int:
    """Run the ACS until SIGTERM/SIGINT. Returns the process exit code."""
    import signal

    from twisted.internet import reactor

    from .logs import configure_logging, route_twisted_logs

    configure_logging(config.log.format, config.log.level)
    route_twisted_logs()
    log = structlog.get_logger("acs")
    for warning in config.warnings:
        log.warning("configuration", advice=warning)
    app = AcsApp(config, reactor)
    outcome = {"code": 0}

    def started_failed(failure):
        log.error("start failed", error=failure.getErrorMessage())
        outcome["code"] = 1
        reactor.stop()

    # Started from the running reactor: a listener that fails synchronously (address in use) then stops a running
    # reactor instead of raising ReactorNotRunning into nothing and leaving the process hanging.
    reactor.callWhenRunning(lambda: defer.ensureDeferred(app.start()).addErrback(started_failed))
    reactor.addSystemEventTrigger("before", "shutdown", lambda: defer.ensureDeferred(app.stop()))
    signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(app.reload))
    reactor.run()
    return outcome["code"]
