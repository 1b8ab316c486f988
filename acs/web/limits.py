"""Request-size limits enforced while the body arrives, and bounded decompression of gzip/deflate bodies."""

from __future__ import annotations

import zlib

from twisted.web import server

_TOO_LARGE = (
    b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n"
    b"Connection: close\r\n\r\nrequest body too large\r\n"
)


class BodyError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class LimitedRequest(server.Request):
    """A Request that refuses a body larger than the site's ``max_body_bytes`` as soon as that is known: from
    Content-Length before anything is buffered, or mid-stream for chunked bodies. The refusal is a 413 and the
    connection is closed (the rest of the body is not worth reading)."""

    refused = False
    _received = 0

    def gotLength(self, length):
        limit = self.channel.site.max_body_bytes
        if length is not None and length > limit:
            self._refuse()
            length = 0
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self.refused:
            return
        self._received += len(data)
        if self._received > self.channel.site.max_body_bytes:
            self._refuse()
            return
        super().handleContentChunk(data)

    def process(self):
        if self.refused:
            return
        super().process()

    def _refuse(self) -> None:
        if self.refused:
            return
        self.refused = True
        site = self.channel.site
        if site.on_refused_body is not None:
            site.on_refused_body(self)
        transport = self.channel.transport
        transport.write(_TOO_LARGE)
        transport.loseConnection()


def read_body(request: server.Request, *, max_decompressed: int) -> bytes:
    request.content.seek(0)
    raw = request.content.read()
    encoding = (request.getHeader(b"content-encoding") or b"identity").decode("latin-1").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip"):
        return _inflate(raw, zlib.MAX_WBITS | 16, max_decompressed)
    if encoding == "deflate":
        # "deflate" means zlib-wrapped by the RFC, raw deflate by many implementations: accept both.
        try:
            return _inflate(raw, zlib.MAX_WBITS, max_decompressed)
        except BodyError as exc:
            if exc.status == 413:
                raise
            return _inflate(raw, -zlib.MAX_WBITS, max_decompressed)
    raise BodyError(415, f"unsupported Content-Encoding {encoding!r}")


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise BodyError(400, "corrupt compressed body") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyError(413, f"decompressed body larger than {limit} bytes")
    if not inflater.eof:
        raise BodyError(400, "truncated compressed body")
    return out
