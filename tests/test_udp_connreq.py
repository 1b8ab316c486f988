"""UDP connection requests (TR-069 Annex G): datagram format, parsing and the CPE's checks."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cwmp_models.udp_connreq import (
    DEFAULT_WINDOW,
    ReplayGuard,
    UdpConnectionRequest,
    UdpConnReqError,
    Verdict,
    build_request,
    parse_request,
    signature,
    verify,
)

NOW = 1_750_000_000


def _request(**overrides: object) -> bytes:
    arguments: dict = dict(
        host="203.0.113.7", port=40123, username="cpe-user", password="cr-pass", ts=NOW, id="1234", cnonce="abc"
    )
    arguments.update(overrides)
    host, port, username, password = (arguments.pop(k) for k in ("host", "port", "username", "password"))
    return build_request(host, port, username, password, **arguments)


def test_signature_is_hmac_sha1_of_ts_id_un_cn_concatenated() -> None:
    # The example values of TR-069 Annex G.
    expected = hmac.new(b"pw", b"1120673700" b"1234" b"CPE57689" b"XTGRWIPC6D3IPXS3", hashlib.sha1).hexdigest()
    assert signature("pw", 1120673700, "1234", "CPE57689", "XTGRWIPC6D3IPXS3") == expected


def test_datagram_layout() -> None:
    datagram = _request()
    sig = signature("cr-pass", NOW, "1234", "cpe-user", "abc")
    assert datagram == (
        f"GET http://203.0.113.7:40123?ts={NOW}&id=1234&un=cpe-user&cn=abc&sig={sig} HTTP/1.1\r\n"
        "Host: 203.0.113.7:40123\r\n\r\n"
    ).encode()


def test_ipv6_host_is_bracketed() -> None:
    datagram = _request(host="2001:db8::7")
    assert datagram.startswith(b"GET http://[2001:db8::7]:40123?")
    assert parse_request(datagram).host == "2001:db8::7"


usernames = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(username=usernames, password=usernames, cnonce=usernames.filter(bool), ts=st.integers(0, 2**40))
def test_build_parse_verify_round_trip(username: str, password: str, cnonce: str, ts: int) -> None:
    request = parse_request(_request(username=username, password=password, cnonce=cnonce, ts=ts))
    assert (request.host, request.port, request.ts, request.id, request.username, request.cnonce) == (
        "203.0.113.7",
        40123,
        ts,
        "1234",
        username,
        cnonce,
    )
    assert verify(request, username, password, now=ts, guard=ReplayGuard()) is Verdict.ACCEPTED


def test_genieacs_style_datagram_with_upper_case_signature_verifies() -> None:
    sig = signature("secret", NOW, "77", "cpe", "c0ffee").upper()
    datagram = f"GET http://10.1.1.1:8080?ts={NOW}&id=77&un=cpe&cn=c0ffee&sig={sig} HTTP/1.1\r\n\r\n".encode()
    request = parse_request(datagram)
    assert request.signature == sig
    assert verify(request, "cpe", "secret", now=NOW + 3, guard=ReplayGuard())


def test_wrong_username_is_rejected() -> None:
    request = parse_request(_request())
    assert verify(request, "someone-else", "cr-pass", now=NOW, guard=ReplayGuard()) is Verdict.WRONG_USERNAME


@pytest.mark.parametrize("now", [NOW + DEFAULT_WINDOW + 1, NOW - DEFAULT_WINDOW - 1])
def test_timestamp_outside_the_window_is_rejected(now: float) -> None:
    request = parse_request(_request())
    assert verify(request, "cpe-user", "cr-pass", now=now, guard=ReplayGuard()) is Verdict.STALE


def test_timestamp_at_the_window_edge_is_accepted() -> None:
    request = parse_request(_request())
    assert verify(request, "cpe-user", "cr-pass", now=NOW + DEFAULT_WINDOW, guard=ReplayGuard())


def test_wrong_password_is_rejected() -> None:
    request = parse_request(_request())
    assert verify(request, "cpe-user", "other", now=NOW, guard=ReplayGuard()) is Verdict.BAD_SIGNATURE


def test_tampered_field_breaks_the_signature() -> None:
    tampered = _request().replace(b"cn=abc", b"cn=abd")
    assert verify(parse_request(tampered), "cpe-user", "cr-pass", now=NOW, guard=ReplayGuard()) is Verdict.BAD_SIGNATURE


def test_replayed_id_is_rejected_and_a_new_id_accepted() -> None:
    guard = ReplayGuard()
    first = parse_request(_request(id="42"))
    assert verify(first, "cpe-user", "cr-pass", now=NOW, guard=guard) is Verdict.ACCEPTED
    # The ACS's repeats of the same request: acted on once.
    assert verify(first, "cpe-user", "cr-pass", now=NOW + 1, guard=guard) is Verdict.REPLAYED
    assert verify(parse_request(_request(id="43")), "cpe-user", "cr-pass", now=NOW + 1, guard=guard)


def test_rejected_requests_do_not_burn_their_id() -> None:
    guard = ReplayGuard()
    forged = parse_request(_request(id="9", password="guess"))
    assert verify(forged, "cpe-user", "cr-pass", now=NOW, guard=guard) is Verdict.BAD_SIGNATURE
    assert verify(parse_request(_request(id="9")), "cpe-user", "cr-pass", now=NOW, guard=guard)


def test_guard_forgets_ids_once_their_timestamp_left_the_window() -> None:
    guard = ReplayGuard(window=60)
    assert guard.first_sight("5", NOW, NOW)
    assert not guard.first_sight("5", NOW, NOW + 60)
    later = NOW + 600
    assert guard.first_sight("5", later, later)


@pytest.mark.parametrize(
    ("datagram", "problem"),
    [
        (b"POST http://h:1?ts=1&id=1&un=u&cn=c&sig=" + b"0" * 40 + b" HTTP/1.1\r\n\r\n", "request line"),
        (b"GET http://h:1?ts=1&id=1&un=u&cn=c&sig=" + b"0" * 40 + b"\r\n\r\n", "request line"),
        (b"GET http://h:1?ts=1&id=1&un=u&cn=c HTTP/1.1\r\n\r\n", "missing parameters: sig"),
        (b"GET http://h:1?ts=1&ts=2&id=1&un=u&cn=c&sig=" + b"0" * 40 + b" HTTP/1.1\r\n\r\n", "'ts' appears twice"),
        (b"GET http://h:1?ts=x1&id=1&un=u&cn=c&sig=" + b"0" * 40 + b" HTTP/1.1\r\n\r\n", "ts is not a decimal"),
        (b"GET http://h:1?ts=1&id=&un=u&cn=c&sig=" + b"0" * 40 + b" HTTP/1.1\r\n\r\n", "id is empty"),
        (b"GET http://h:1?ts=1&id=1&un=u&cn=c&sig=xyz HTTP/1.1\r\n\r\n", "sig is not 40 hex digits"),
        (b"GET https://h:1?ts=1&id=1&un=u&cn=c&sig=" + b"0" * 40 + b" HTTP/1.1\r\n\r\n", "absolute http URI"),
        (b"GET http://h:99999?ts=1&id=1&un=u&cn=c&sig=" + b"0" * 40 + b" HTTP/1.1\r\n\r\n", "malformed request URI"),
        (b"GET http://h:1?ts=1&&garbage HTTP/1.1\r\n\r\n", "malformed request URI"),
        (b"\xff\xfe", "not UTF-8"),
        (b"GET " + b"a" * 4000, "too large"),
    ],
)
def test_malformed_requests_raise(datagram: bytes, problem: str) -> None:
    with pytest.raises(UdpConnReqError, match=problem):
        parse_request(datagram)


def test_build_rejects_impossible_requests() -> None:
    with pytest.raises(UdpConnReqError, match="port"):
        _request(port=0)
    with pytest.raises(UdpConnReqError, match="id"):
        _request(id="")


def test_constructed_request_with_non_ascii_signature_is_just_bad() -> None:
    request = UdpConnectionRequest("h", 1, NOW, "1", "u", "c", "\u00e9" * 40)
    assert verify(request, "u", "p", now=NOW, guard=ReplayGuard()) is Verdict.BAD_SIGNATURE
