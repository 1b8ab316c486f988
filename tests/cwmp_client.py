"""A small scripted CPE for server tests: real HTTP over loopback, Digest/Basic, cookies, one TCP connection."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from io import BytesIO

from twisted.internet import reactor
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IPolicyForHTTPS

from cwmp_models import codec
from cwmp_models.envelope import Envelope
from cwmp_models.httpauth_client import DigestClient


@dataclass
class Reply:
    status: int
    headers: Headers
    body: bytes
    envelope: Envelope | None = None

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None


@dataclass
class ScriptedCpe:
    url: str
    username: str | None = None
    password: str | None = None
    use_cookies: bool = True
    basic: bool = False
    tls_policy: IPolicyForHTTPS | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    persistent: bool = True

    def __post_init__(self) -> None:
        self.pool = HTTPConnectionPool(reactor, persistent=self.persistent)
        self.pool.maxPersistentPerHost = 1
        self.pool.retryAutomatically = False
        kwargs = {"pool": self.pool}
        if self.tls_policy is not None:
            kwargs["contextFactory"] = self.tls_policy
        self.agent = Agent(reactor, **kwargs)
        self.digest = DigestClient(self.username or "", self.password or "", allow_basic=self.basic)
        self._challenge: list[str] | None = None
        self.last_authorization: str | None = None

    async def post(
        self,
        message: Envelope | bytes | None,
        *,
        headers: dict[str, str] | None = None,
        authenticate: bool = True,
        authorization: str | None = None,
    ) -> Reply:
        """POST an envelope (or raw bytes, or None for the empty POST). Answers a 401 once with credentials."""
        body = codec.serialize(message) if isinstance(message, Envelope) else (message or b"")
        reply = await self._send(body, headers or {}, authorization)
        if reply.status == 401 and authenticate and self.username is not None and authorization is None:
            self._challenge = reply.headers.getRawHeaders("www-authenticate") or []
            reply = await self._send(body, headers or {}, self._authorization())
        return reply

    def _authorization(self) -> str:
        if self.basic:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return f"Basic {token}"
        return self.digest.authorization("POST", self._path(), self._challenge)

    def _path(self) -> str:
        path = self.url.split("://", 1)[1]
        return "/" + path.split("/", 1)[1] if "/" in path else "/"

    async def _send(self, body: bytes, extra: dict[str, str], authorization: str | None) -> Reply:
        headers = Headers({"content-type": ['text/xml; charset="utf-8"']})
        for name, value in extra.items():
            headers.setRawHeaders(name, [value])
        if authorization:
            headers.setRawHeaders("authorization", [authorization])
            self.last_authorization = authorization
        if self.use_cookies and self.cookies:
            headers.setRawHeaders("cookie", ["; ".join(f"{k}={v}" for k, v in self.cookies.items())])
        producer = FileBodyProducer(BytesIO(body)) if body else None
        response = await self.agent.request(b"POST", self.url.encode(), headers, producer)
        data = await readBody(response)
        for cookie in response.headers.getRawHeaders("set-cookie") or []:
            name, _, rest = cookie.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        envelope = None
        if response.code == 200 and data:
            envelope = codec.parse(data)
        return Reply(response.code, response.headers, data, envelope)

    async def close(self) -> None:
        await self.pool.closeCachedConnections()
