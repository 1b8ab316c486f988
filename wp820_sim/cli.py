"""``wp820-sim``: run a fleet of simulated WP820 phones against an ACS, and play a phone's keypad.

    wp820-sim run --acs-url http://127.0.0.1:7547/ --phones 100 --state-dir ./phones \\
        --bootstrap-user acs --bootstrap-password-file ./bootstrap.pw --ramp 10 --control 127.0.0.1:8800
    wp820-sim keypad --control 127.0.0.1:8800 c074ad000001 Device.ManagementServer.PeriodicInformInterval 600

``run`` keeps going until interrupted (SIGINT/SIGTERM), then powers the phones off and saves their state. Errors are
one line on stderr with a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import sys
import urllib.error
import urllib.request
from typing import Any
from pathlib import Path
from urllib.parse import quote, urlsplit

import click
import structlog

from wp820_sim.agent import AgentSettings, TlsConfigError
from wp820_sim.control import ControlError, listen_control, parse_address
from wp820_sim.fleet import Fleet, FleetConfig, FleetError, load_credentials_csv
from wp820_sim.phone import Credentials
from wp820_sim.quirks import QuirkError, Quirks

__all__ = ["main"]

_LEVELS = ("debug", "info", "warning", "error")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Simulated Grandstream WP820 phones speaking TR-069 (CWMP)."""


@main.command()
@click.option("--acs-url", required=True, help="The ACS URL every new phone is provisioned with (loopback host).")
@click.option("--ca", "ca_file", type=click.Path(dir_okay=False), help="PEM CA certificate(s) to validate HTTPS with.")
@click.option("--phones", type=click.IntRange(min=1), required=True, help="How many phones to run.")
@click.option("--state-dir", type=click.Path(file_okay=False), required=True, help="One state file per phone.")
@click.option("--credentials", "credentials_file", type=click.Path(dir_okay=False),
              help="CSV with serial,username,password per phone (as 'acs enrol' writes it).")
@click.option("--bootstrap-user", help="One ACS username shared by every phone.")
@click.option("--bootstrap-password-file", type=click.Path(dir_okay=False),
              help="File holding the shared ACS password (first line).")
@click.option("--quirks", "quirks_spec", default="", help="E.g. no_cookies,basic_only,cwmp=1.0 (see wp820_sim.quirks).")
@click.option("--nat", is_flag=True, help="Put every phone behind a simulated NAT (TR-111: STUN, UDP requests).")
@click.option("--stun-server", help="HOST:PORT of the ACS's STUN server (with --nat; default: ACS host, port 3478).")
@click.option("--ramp", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Spread the phones' boots over this many seconds.")
@click.option("--periodic-interval", type=click.IntRange(min=1), help="Enable periodic Informs every S seconds.")
@click.option("--control", "control_address", help="Open the control endpoint on this loopback HOST:PORT.")
@click.option("--first-index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Index of the first phone (to run disjoint fleets side by side).")
@click.option("--log-level", type=click.Choice(_LEVELS), default="warning", show_default=True)
def run(control_address: str | None, log_level: str, **fleet_options: Any) -> None:
    """Run a fleet of phones until interrupted."""
    config = _fleet_config(**fleet_options)  # the remaining options are exactly _fleet_config's parameters
    if control_address is not None:
        try:
            parse_address(control_address)
        except ControlError as exc:
            raise click.BadParameter(str(exc), param_hint="--control") from None
    try:
        fleet = Fleet(config)
    except (FleetError, TlsConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    _configure_logging(log_level)  # only now: a refused invocation leaves the process's logging untouched
    failure = _serve(fleet, control_address)
    if failure is not None:
        raise click.ClickException(failure)


def _fleet_config(
    *,
    acs_url: str,
    ca_file: str | None,
    phones: int,
    state_dir: str,
    credentials_file: str | None,
    bootstrap_user: str | None,
    bootstrap_password_file: str | None,
    quirks_spec: str,
    nat: bool,
    stun_server: str | None,
    ramp: float,
    periodic_interval: int | None,
    first_index: int,
) -> FleetConfig:
    _check_acs_url(acs_url)
    try:
        quirks = Quirks.parse(quirks_spec)
    except QuirkError as exc:
        raise click.BadParameter(str(exc), param_hint="--quirks") from None
    if credentials_file is not None and (bootstrap_user is not None or bootstrap_password_file is not None):
        raise click.UsageError("use either --credentials or --bootstrap-user/--bootstrap-password-file, not both")
    if (bootstrap_user is None) != (bootstrap_password_file is None):
        raise click.UsageError("--bootstrap-user and --bootstrap-password-file go together")
    if stun_server is not None and not nat:
        raise click.UsageError("--stun-server only makes sense with --nat")
    try:
        credentials = load_credentials_csv(credentials_file) if credentials_file is not None else None
    except FleetError as exc:
        raise click.BadParameter(str(exc), param_hint="--credentials") from None
    bootstrap = None
    if bootstrap_user is not None and bootstrap_password_file is not None:
        bootstrap = Credentials(bootstrap_user, _read_password(bootstrap_password_file))
    try:
        return FleetConfig(
            acs_url=acs_url,
            phones=phones,
            state_dir=Path(state_dir),
            ca_file=Path(ca_file) if ca_file is not None else None,
            credentials=credentials,
            bootstrap=bootstrap,
            quirks=quirks,
            nat=nat,
            stun_server=_parse_stun_server(stun_server) if stun_server is not None else None,
            ramp=ramp,
            periodic_interval=periodic_interval,
            first_index=first_index,
            agent=AgentSettings(),
        )
    except FleetError as exc:
        raise click.UsageError(str(exc)) from None


def _check_acs_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        raise click.BadParameter(f"{url!r} is not a URL", param_hint="--acs-url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{url!r} is not an http:// or https:// URL", param_hint="--acs-url")
    try:
        loopback = ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise click.BadParameter(
            "the simulated phones live on 127.x.y.z addresses and can only reach an ACS on a loopback IP address",
            param_hint="--acs-url",
        )


def _read_password(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path!r}: {exc.strerror or exc}", param_hint="--bootstrap-password-file")
    except UnicodeDecodeError:
        raise click.BadParameter(f"{path!r} is not UTF-8 text", param_hint="--bootstrap-password-file") from None
    password = text.split("\n", 1)[0].rstrip("\r")
    if not password:
        raise click.BadParameter(
            f"{path!r} holds no password on its first line", param_hint="--bootstrap-password-file"
        )
    return password


def _parse_stun_server(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{text!r} is not HOST:PORT", param_hint="--stun-server")
    return host, int(port)


def _serve(fleet: Fleet, control_address: str | None) -> str | None:
    """Run the reactor with the fleet; returns an error message if the fleet could not start."""
    from twisted.internet import defer, error as net_error, reactor

    failure: list[str] = []

    async def start() -> None:
        control = ""
        try:
            if control_address is not None:  # first: a port in use must stop us before any phone boots
                bound = listen_control(reactor, fleet, control_address).getHost()
                control = f", control endpoint on {bound.host}:{bound.port}"
            await fleet.start()
        except (FleetError, net_error.CannotListenError, OSError) as exc:
            failure.append(_describe(exc))
            reactor.stop()
            return
        click.echo(f"wp820-sim: {len(fleet.serials)} phones running{control}", err=True)

    def stop() -> defer.Deferred[None]:
        return defer.ensureDeferred(fleet.stop())

    reactor.addSystemEventTrigger("before", "shutdown", stop)
    reactor.callWhenRunning(lambda: defer.ensureDeferred(start()))
    reactor.run()
    return failure[0] if failure else None


def _describe(exc: Exception) -> str:
    socket_error = getattr(exc, "socketError", None)
    if socket_error is not None:
        return f"cannot listen on {getattr(exc, 'interface', '')}:{getattr(exc, 'port', '')}: {socket_error.strerror}"
    return str(exc)


@main.command()
@click.option("--control", "control_address", required=True, help="The fleet's control endpoint, HOST:PORT.")
@click.argument("serial")
@click.argument("key")
@click.argument("value")
def keypad(control_address: str, serial: str, key: str, value: str) -> None:
    """Change KEY (model key, TR-069 path or P-value) to VALUE on phone SERIAL, as its user would on the keypad."""
    try:
        host, port = parse_address(control_address)
    except ControlError as exc:
        raise click.BadParameter(str(exc), param_hint="--control") from None
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    request = urllib.request.Request(
        f"http://{authority}/phones/{quote(serial, safe='')}/keypad",
        data=json.dumps({"key_or_path": key, "value": value}).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise click.ClickException(_error_of(exc)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise click.ClickException(f"cannot reach the control endpoint at {control_address}: {reason}") from None
    except ValueError:
        raise click.ClickException("the control endpoint answered something that is not JSON") from None
    level = answer.get("notification", 0)
    outcome = {0: "no notification", 1: "passive notification (next Inform)", 2: "active notification (session now)"}
    click.echo(f"{serial}: {key} changed; {outcome.get(level, level)}")


def _error_of(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read())["error"])
    except (ValueError, KeyError, TypeError):
        return f"the control endpoint answered HTTP {exc.code}"


def _configure_logging(level: str) -> None:
    """One line per event on stderr, Twisted's own events included; an exception is one ``error=`` field, its
    traceback only at debug level (a user of the command never sees a raw traceback)."""
    from acs.logs import route_twisted_logs

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info if level == "debug" else _exception_in_one_line,
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
        ],
    )
    route_twisted_logs()


def _exception_in_one_line(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    info = event.pop("exc_info", None)
    if info:
        if info is True:
            info = sys.exc_info()
        value = info[1] if isinstance(info, tuple) else info
        event["error"] = f"{type(value).__name__}: {value}".rstrip(": ")
    return event


if __name__ == "__main__":
    main()
