"""The simulator's control endpoint: a loopback-only HTTP API for an operator or a demo to play the phone's user.

Opt-in (``wp820-sim run --control 127.0.0.1:PORT``); it refuses any address that is not loopback, because it has no
authentication of its own: whoever can reach it can change phones' settings.

* ``GET /phones``: one JSON object per phone (serial, address, agent state, session counts, last error, ParameterKey)
  plus the fleet's counters.
* ``POST /phones/<serial>/keypad`` with ``{"key_or_path": "...", "value": ...}``: a change "on the phone's keypad"
  (``Phone.local_change``: a model key, TR-069 path or P-value). A parameter with active notification opens a VALUE
  CHANGE session at once; passive notification waits for the next Inform. Answers ``{"serial", "notification"}``
  (the pending notification level, 0-2).

Requests must say ``Content-Type: application/json``: a web page cannot send that cross-origin without a CORS
preflight this endpoint never answers, so a browser on the same machine cannot be used to drive it.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from twisted.web import server
from twisted.web.http import Request
from twisted.web.resource import Resource

from cwmp_models.datamodel import InvalidValue
from wp820_sim.fleet import Fleet, FleetError
from wp820_sim.phone import PhoneError

__all__ = ["ControlError", "ControlResource", "listen_control", "parse_address"]

MAX_BODY = 64 * 1024


class ControlError(ValueError):
    """A control address that cannot be used."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) on a loopback address; port 0 picks a free one."""
    host, colon, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ControlError(f"control address {text!r} is not HOST:PORT")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ControlError(f"control address {text!r}: the host must be an IP address") from None
    if not address.is_loopback:
        raise ControlError(f"control address {text!r} is not a loopback address; the endpoint has no authentication")
    return host, int(port_text)


class ControlResource(Resource):
    isLeaf = True

    def __init__(self, fleet: Fleet) -> None:
        super().__init__()
        self._fleet = fleet

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        if request.postpath != [b"phones"]:
            return _json(request, 404, {"error": "not found"})
        return _json(request, 200, {"phones": self._fleet.summary(), "counters": self._fleet.counters})

    def render_POST(self, request: Request) -> bytes:  # noqa: N802
        path = request.postpath
        if len(path) != 3 or path[0] != b"phones" or path[2] != b"keypad":
            return _json(request, 404, {"error": "not found"})
        content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if content_type != b"application/json":
            return _json(request, 415, {"error": "Content-Type must be application/json"})
        try:
            agent = self._fleet.agent(path[1].decode("utf-8"))
        except (FleetError, UnicodeDecodeError):
            return _json(request, 404, {"error": "no such phone"})
        body = request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return _json(request, 413, {"error": "request body too large"})
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _json(request, 400, {"error": "body is not JSON"})
        if (
            not isinstance(document, dict)
            or not isinstance(document.get("key_or_path"), str)
            or "value" not in document
        ):
            return _json(request, 400, {"error": 'expected {"key_or_path": "...", "value": ...}'})
        value = document["value"]
        if not isinstance(value, (str, int, bool)):
            return _json(request, 400, {"error": "value must be a string, number or boolean"})
        try:
            level = agent.local_change(document["key_or_path"], value)
        except (PhoneError, InvalidValue) as exc:
            return _json(request, 400, {"error": str(exc)})
        return _json(request, 200, {"serial": path[1].decode("utf-8"), "notification": level})


def listen_control(reactor: Any, fleet: Fleet, address: str) -> Any:
    """Open the control endpoint on a loopback ``HOST:PORT``; returns the listening port."""
    host, port = parse_address(address)
    site = server.Site(ControlResource(fleet))
    site.noisy = False
    return reactor.listenTCP(port, site, interface=host)


def _json(request: Request, code: int, document: dict[str, Any]) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(document).encode("utf-8") + b"\n"
