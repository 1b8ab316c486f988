"""HTTP Digest and Basic authentication: the shared grammar, the verifier and the client, driven without sockets."""

from __future__ import annotations

import base64
import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cwmp_models.httpauth import (
    AuthElement,
    AuthHeaderError,
    NoUsableChallengeError,
    UnsupportedAlgorithmError,
    ha1,
    parse_challenges,
    parse_credentials,
    quote,
)
from cwmp_models.httpauth_client import DigestClient
from cwmp_models.httpauth_server import AuthResult, DigestVerifier, Reason

REALM = "acs@example.net"
URI = "/cwmp"
PASSWORDS = {
    "000B82-WP820-001": "phone one secret",
    "000B82-WP820-002": "phone two secret",
    "Jäsøn Doe": "Secret, or not?",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Store:
    """Stored HA1 values only, as the ACS keeps them; remembers which algorithms were asked for."""

    def __init__(self, realm: str = REALM) -> None:
        self.ha1s = {
            (user, algorithm): ha1(user, realm, password, algorithm)
            for user, password in PASSWORDS.items()
            for algorithm in ("MD5", "SHA-256")
        }
        self.asked: list[tuple[str, str]] = []

    def __call__(self, username: str, algorithm: str) -> str | None:
        self.asked.append((username, algorithm))
        return self.ha1s.get((username, algorithm))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def verifier(clock: FakeClock) -> DigestVerifier:
    return DigestVerifier(REALM, clock=clock)


def verify(verifier: DigestVerifier, header: str | None, *, uri: str = URI, is_tls: bool = False,
           method: str = "POST", allow_basic: bool = True) -> AuthResult:
    return verifier.verify(method, uri, header, Store(), is_tls=is_tls, allow_basic=allow_basic)


def answer(verifier: DigestVerifier, user: str = "000B82-WP820-001", password: str | None = None,
           *, method: str = "POST", uri: str = URI) -> str:
    client = DigestClient(user, PASSWORDS.get(user, "x") if password is None else password)
    return client.authorization(method, uri, verifier.challenge())


def with_param(header: str, name: str, value: str) -> str:
    """``header`` with one Digest parameter replaced (or added), keeping the rest as sent."""
    credentials = parse_credentials(header)
    params = {**credentials.params, name: value}
    return "Digest " + ", ".join(f"{key}={quote(val)}" for key, val in params.items())


# --- RFC 7616 section 3.9.1 -------------------------------------------------------------------------------------

RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def rfc_challenge(algorithm: str) -> str:
    # The RFC folds these over several lines; on the wire obs-fold becomes spaces.
    return (
        f'Digest\n       realm="http-auth@example.org",\n       qop="auth, auth-int",\n       algorithm={algorithm},'
        f'\n       nonce="{RFC_NONCE}",\n       opaque="{RFC_OPAQUE}"'
    ).replace("\n", " ")


@pytest.mark.parametrize(
    ("offered", "algorithm", "response"),
    [
        (["SHA-256", "MD5"], "SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        (["MD5"], "MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_client_reproduces_rfc7616_example(offered: list[str], algorithm: str, response: str) -> None:
    client = DigestClient("Mufasa", "Circle of Life", cnonce_factory=lambda: RFC_CNONCE)
    header = client.authorization("GET", "/dir/index.html", [rfc_challenge(name) for name in offered])
    assert header == (
        f'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm={algorithm}, '
        f'nonce="{RFC_NONCE}", nc=00000001, cnonce="{RFC_CNONCE}", qop=auth, response="{response}", '
        f'opaque="{RFC_OPAQUE}"'
    )


def test_ha1_refuses_session_and_unknown_algorithms() -> None:
    with pytest.raises(UnsupportedAlgorithmError, match="MD5-sess"):
        ha1("u", "r", "p", "MD5-sess")
    with pytest.raises(UnsupportedAlgorithmError, match="SHA-1"):
        ha1("u", "r", "p", "SHA-1")
    assert ha1("u", "r", "p", "md5") == ha1("u", "r", "p", "MD5")


# --- verifier: accepting -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"])
def test_verifier_accepts_client_for_each_algorithm(clock: FakeClock, algorithm: str) -> None:
    verifier = DigestVerifier(REALM, algorithms=(algorithm,), clock=clock)
    store = Store()
    header = answer(verifier)
    assert f"algorithm={algorithm}," in header
    result = verifier.verify("POST", URI, header, store, is_tls=False)
    assert result == AuthResult(True, "000B82-WP820-001", Reason.OK, stale=False, scheme="digest")
    assert store.asked == [("000B82-WP820-001", algorithm.removesuffix("-sess"))]


def test_client_prefers_sha256_and_falls_back_to_md5(verifier: DigestVerifier) -> None:
    challenges = verifier.challenge()
    assert "algorithm=SHA-256" in challenges[0] and "algorithm=MD5" in challenges[1]
    client = DigestClient("u", "p")
    assert "algorithm=SHA-256," in client.authorization("GET", "/", list(reversed(challenges)))
    assert "algorithm=MD5," in client.authorization("GET", "/", [challenges[1]])
    md5, sha256 = challenges[1], challenges[0]
    sess_first = [md5.replace("MD5", "MD5-sess"), md5, sha256.replace("SHA-256", "SHA-256-sess")]
    assert "algorithm=SHA-256-sess," in client.authorization("GET", "/", sess_first)


def test_preemptive_requests_count_up_and_are_accepted(verifier: DigestVerifier) -> None:
    client = DigestClient("000B82-WP820-001", PASSWORDS["000B82-WP820-001"])
    headers = [client.authorization("POST", URI, verifier.challenge())]
    headers += [client.authorization("POST", URI) for _ in range(3)]
    assert [parse_credentials(h).params["nc"] for h in headers] == ["00000001", "00000002", "00000003", "00000004"]
    assert [verify(verifier, h).ok for h in headers] == [True, True, True, True]


def test_non_ascii_username_travels_as_username_star(verifier: DigestVerifier) -> None:
    header = answer(verifier, "Jäsøn Doe")
    assert "username*=UTF-8''J%C3%A4s%C3%B8n%20Doe" in header
    result = verify(verifier, header)
    assert (result.ok, result.username) == (True, "Jäsøn Doe")


def test_utf8_username_in_quoted_string_verifies_when_decoded_as_advised(verifier: DigestVerifier) -> None:
    # Stacks predating RFC 7616 send the raw UTF-8 bytes inside the quotes instead of username*.
    header = with_param(answer(verifier, "Jäsøn Doe"), "username", "Jäsøn Doe").replace("username*", "x-dropped")
    wire = header.encode("utf-8")
    result = verify(verifier, wire.decode("utf-8", "surrogateescape"))
    assert (result.ok, result.username) == (True, "Jäsøn Doe")


def test_undecodable_header_bytes_are_refused_without_raising(verifier: DigestVerifier) -> None:
    header = with_param(answer(verifier), "username", "a\udcffb\ud800")
    assert verify(verifier, header).reason == Reason.UNKNOWN_USER
    header = with_param(answer(verifier), "uri", URI + "\udcff")
    assert verify(verifier, header, uri=URI + "\udcff").reason == Reason.BAD_CREDENTIALS


def test_absolute_form_uri_matches_request_path(verifier: DigestVerifier) -> None:
    header = answer(verifier, uri="https://acs.example.net:7547/cwmp?x=1")
    assert verify(verifier, header, uri="/cwmp?x=1").ok
    header = answer(verifier, uri="https://acs.example.net:7547/cwmp?x=1")
    assert verify(verifier, header, uri="/cwmp?x=2").reason == Reason.URI_MISMATCH


def test_urllib_digest_client_interoperates(verifier: DigestVerifier) -> None:
    # An independent implementation (the standard library's, MD5 only) must be accepted too.
    handler = urllib.request.HTTPDigestAuthHandler()
    handler.add_password(REALM, "http://acs.example.net/", "000B82-WP820-001", PASSWORDS["000B82-WP820-001"])
    md5_challenge = parse_challenges(verifier.challenge())[1]
    assert md5_challenge.params["algorithm"] == "MD5"
    request = urllib.request.Request("http://acs.example.net/cwmp", method="GET")
    header = "Digest " + handler.get_authorization(request, dict(md5_challenge.params))
    assert verify(verifier, header, method="GET").ok


# --- verifier: refusing ------------------------------------------------------------------------------------------


def test_wrong_password(verifier: DigestVerifier) -> None:
    result = verify(verifier, answer(verifier, password="guess"))
    assert result == AuthResult(False, None, Reason.BAD_CREDENTIALS, stale=False, scheme="digest")


def test_one_device_cannot_speak_for_another(verifier: DigestVerifier) -> None:
    header = with_param(answer(verifier, "000B82-WP820-001"), "username", "000B82-WP820-002")
    assert verify(verifier, header).reason == Reason.BAD_CREDENTIALS


def test_unknown_user(verifier: DigestVerifier) -> None:
    assert verify(verifier, answer(verifier, "nobody", "x")).reason == Reason.UNKNOWN_USER


def test_replayed_request_is_refused_as_stale(verifier: DigestVerifier) -> None:
    header = answer(verifier)
    assert verify(verifier, header).ok
    assert verify(verifier, header) == AuthResult(False, None, Reason.REPLAYED_NONCE_COUNT, stale=True, scheme="digest")


def test_nonce_count_going_backwards_is_refused(verifier: DigestVerifier) -> None:
    client = DigestClient("000B82-WP820-001", PASSWORDS["000B82-WP820-001"])
    first = client.authorization("POST", URI, verifier.challenge())
    second = client.authorization("POST", URI)
    assert verify(verifier, second).ok
    assert verify(verifier, first).reason == Reason.REPLAYED_NONCE_COUNT


def test_failed_attempts_do_not_burn_nonce_counts(verifier: DigestVerifier) -> None:
    # Someone who saw the nonce but lacks the password must not be able to push the count past the device's.
    header = answer(verifier)
    forged = with_param(with_param(header, "nc", "ffffffff"), "response", "0" * 64)
    assert verify(verifier, forged).reason == Reason.BAD_CREDENTIALS
    assert verify(verifier, header).ok


def test_expired_nonce_is_stale_only_with_the_right_password(verifier: DigestVerifier, clock: FakeClock) -> None:
    good, bad = answer(verifier), answer(verifier, password="guess")
    clock.now += 301
    assert verify(verifier, good) == AuthResult(False, None, Reason.STALE_NONCE, stale=True, scheme="digest")
    assert verify(verifier, bad) == AuthResult(False, None, Reason.BAD_CREDENTIALS, stale=False, scheme="digest")


def test_nonce_is_valid_until_its_ttl(verifier: DigestVerifier, clock: FakeClock) -> None:
    header = answer(verifier)
    clock.now += 299
    assert verify(verifier, header).ok


@pytest.mark.parametrize(
    "forge",
    [
        lambda nonce: DigestVerifier(REALM).challenge()[0].split('nonce="')[1].split('"')[0],  # another secret
        lambda nonce: nonce[:10] + ("A" if nonce[10] != "A" else "B") + nonce[11:],  # tampered issue time
        lambda nonce: nonce[:-1] + ("A" if nonce[-1] != "A" else "B"),  # tampered MAC
        lambda nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        lambda nonce: "",
    ],
    ids=["other-secret", "tampered-time", "tampered-mac", "foreign", "empty"],
)
def test_forged_nonce_is_invalid(verifier: DigestVerifier, forge) -> None:
    header = answer(verifier)
    nonce = parse_credentials(header).params["nonce"]
    client = DigestClient("000B82-WP820-001", PASSWORDS["000B82-WP820-001"])
    forged_challenge = f'Digest realm="{REALM}", qop="auth", algorithm=SHA-256, nonce="{forge(nonce)}"'
    result = verify(verifier, client.authorization("POST", URI, [forged_challenge]))
    assert result == AuthResult(False, None, Reason.INVALID_NONCE, stale=False, scheme="digest")


def test_nonce_of_another_realm_is_invalid_even_with_the_same_secret(clock: FakeClock) -> None:
    ours = DigestVerifier(REALM, secret=b"shared", clock=clock)
    theirs = DigestVerifier("other", secret=b"shared", clock=clock)
    challenge = theirs.challenge()[0].replace('realm="other"', f'realm="{REALM}"')
    header = DigestClient("000B82-WP820-001", PASSWORDS["000B82-WP820-001"]).authorization("POST", URI, [challenge])
    assert verify(ours, header).reason == Reason.INVALID_NONCE
    assert verify(DigestVerifier(REALM, secret=b"shared", clock=clock), answer(ours)).ok


def test_nonce_from_the_future_is_invalid(clock: FakeClock) -> None:
    # Only a process sharing the secret with a clock ahead of ours could mint it: not a nonce we can vouch for.
    ahead = FakeClock()
    ahead.now = clock.now + 5
    minted_ahead = answer(DigestVerifier(REALM, secret=b"shared", clock=ahead))
    assert verify(DigestVerifier(REALM, secret=b"shared", clock=clock), minted_ahead).reason == Reason.INVALID_NONCE


def test_uri_mismatch(verifier: DigestVerifier) -> None:
    assert verify(verifier, answer(verifier, uri="/other"), uri=URI).reason == Reason.URI_MISMATCH


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("nc", "1", Reason.MALFORMED),
        ("nc", "0000000g", Reason.MALFORMED),
        ("response", "abc", Reason.MALFORMED),
        ("response", "z" * 64, Reason.MALFORMED),
        ("algorithm", "SHA-512-256", Reason.UNSUPPORTED_ALGORITHM),
        ("algorithm", "MD5-sess", Reason.UNSUPPORTED_ALGORITHM),  # not offered by this verifier
        ("qop", "auth-int", Reason.UNSUPPORTED_QOP),
        ("userhash", "true", Reason.USERHASH_UNSUPPORTED),
        ("realm", "other", Reason.REALM_MISMATCH),
        ("username*", "UTF-8''x", Reason.MALFORMED),  # both username forms
    ],
)
def test_bad_parameters(verifier: DigestVerifier, name: str, value: str, reason: Reason) -> None:
    result = verify(verifier, with_param(answer(verifier), name, value))
    assert (result.ok, result.reason) == (False, reason)


@pytest.mark.parametrize("missing", ["username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce"])
def test_missing_parameter_is_malformed(verifier: DigestVerifier, missing: str) -> None:
    credentials = parse_credentials(answer(verifier))
    header = "Digest " + ", ".join(f"{k}={quote(v)}" for k, v in credentials.params.items() if k != missing)
    assert verify(verifier, header).reason == Reason.MALFORMED


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, Reason.MISSING),
        ("", Reason.MISSING),
        ("Digest", Reason.MALFORMED),
        ('Digest username="a', Reason.MALFORMED),
        ("Bearer abc.def", Reason.UNSUPPORTED_SCHEME),
        ("Digest a=1, Basic abc", Reason.MALFORMED),
    ],
)
def test_unusable_headers(verifier: DigestVerifier, header: str | None, reason: Reason) -> None:
    assert verify(verifier, header).reason == reason


def test_lowercase_algorithm_and_uppercase_response_are_accepted(verifier: DigestVerifier) -> None:
    header = answer(verifier)
    params = parse_credentials(header).params
    header = with_param(with_param(header, "algorithm", "sha-256"), "response", params["response"].upper())
    assert verify(verifier, header).ok


# --- the field quirk: one nonce reused with nc=00000001 --------------------------------------------------------


def test_stack_reusing_nonce_with_nc_one_recovers_through_stale_challenge(verifier: DigestVerifier) -> None:
    password = PASSWORDS["000B82-WP820-001"]

    def quirky_request(challenges: list[str]) -> str:
        # A fresh client per request: the stack forgets its count and always sends nc=00000001.
        return DigestClient("000B82-WP820-001", password).authorization("POST", URI, challenges)

    first_challenge = verifier.challenge()
    assert verify(verifier, quirky_request(first_challenge)).ok

    repeat = quirky_request(first_challenge)
    assert parse_credentials(repeat).params["nc"] == "00000001"
    refused = verify(verifier, repeat)
    assert (refused.ok, refused.reason, refused.stale) == (False, Reason.REPLAYED_NONCE_COUNT, True)

    fresh_challenge = verifier.challenge(stale=refused.stale)
    assert all(value.endswith(", stale=true") for value in fresh_challenge)
    assert verify(verifier, quirky_request(fresh_challenge)).ok


# --- nonce table bounds ------------------------------------------------------------------------------------------


def test_evicted_nonce_is_refused_but_newer_nonces_work(clock: FakeClock) -> None:
    verifier = DigestVerifier(REALM, clock=clock, max_tracked_nonces=1)
    client_a = DigestClient("000B82-WP820-001", PASSWORDS["000B82-WP820-001"])
    client_b = DigestClient("000B82-WP820-002", PASSWORDS["000B82-WP820-002"])
    assert verify(verifier, client_a.authorization("POST", URI, verifier.challenge())).ok
    clock.now += 1
    assert verify(verifier, client_b.authorization("POST", URI, verifier.challenge())).ok  # evicts a's nonce
    evicted = verify(verifier, client_a.authorization("POST", URI))
    assert (evicted.reason, evicted.stale) == (Reason.EVICTED_NONCE, True)
    clock.now += 1
    assert verify(verifier, client_a.authorization("POST", URI, verifier.challenge())).ok
    assert verify(verifier, client_a.authorization("POST", URI)).ok  # the tracked nonce keeps counting


def test_expired_nonces_leave_the_table(verifier: DigestVerifier, clock: FakeClock) -> None:
    assert verify(verifier, answer(verifier)).ok
    assert verify(verifier, answer(verifier)).ok
    assert verifier.tracked_nonces == 2
    clock.now += 301
    assert verify(verifier, answer(verifier)).ok
    assert verifier.tracked_nonces == 1


# --- Basic -------------------------------------------------------------------------------------------------------


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_accepted_over_tls_only(verifier: DigestVerifier) -> None:
    header = basic("000B82-WP820-002", PASSWORDS["000B82-WP820-002"])
    assert verify(verifier, header, is_tls=True) == AuthResult(True, "000B82-WP820-002", Reason.OK, scheme="basic")
    assert verify(verifier, header, is_tls=False).reason == Reason.BASIC_WITHOUT_TLS
    assert verify(verifier, header, is_tls=True, allow_basic=False).reason == Reason.BASIC_NOT_ALLOWED


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (basic("000B82-WP820-002", "guess"), Reason.BAD_CREDENTIALS),
        (basic("nobody", "x"), Reason.UNKNOWN_USER),
        ("Basic !!!!", Reason.MALFORMED),
        ("Basic " + base64.b64encode(b"no-colon").decode(), Reason.MALFORMED),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), Reason.MALFORMED),
        ("Basic", Reason.MALFORMED),
    ],
)
def test_basic_refusals(verifier: DigestVerifier, header: str, reason: Reason) -> None:
    assert verify(verifier, header, is_tls=True).reason == reason


def test_basic_works_against_md5_only_storage(clock: FakeClock) -> None:
    verifier = DigestVerifier(REALM, algorithms=("MD5",), clock=clock)
    store = Store()
    result = verifier.verify("POST", URI, basic("Jäsøn Doe", PASSWORDS["Jäsøn Doe"]), store, is_tls=True)
    assert result.ok and store.asked == [("Jäsøn Doe", "MD5")]


# --- challenges and client choices -------------------------------------------------------------------------------


def test_challenge_shape(verifier: DigestVerifier) -> None:
    values = verifier.challenge(basic=True)
    challenges = parse_challenges(values)
    assert [c.scheme for c in challenges] == ["digest", "digest", "basic"]
    assert [c.params.get("algorithm") for c in challenges[:2]] == ["SHA-256", "MD5"]
    assert challenges[0].params["nonce"] == challenges[1].params["nonce"]
    assert all(c.params["realm"] == REALM for c in challenges)
    assert all(c.params["qop"] == "auth" and "stale" not in c.params for c in challenges[:2])
    assert challenges[0].params["nonce"] != parse_challenges(verifier.challenge())[0].params["nonce"]


def test_client_basic_only_when_allowed() -> None:
    challenges = ['Basic realm="phone"']
    with pytest.raises(NoUsableChallengeError, match="basic") as raised:
        DigestClient("admin", "hunter2").authorization("GET", "/", challenges)
    assert "hunter2" not in str(raised.value)
    assert DigestClient("admin", "hunter2", allow_basic=True).authorization("GET", "/", challenges) == basic(
        "admin", "hunter2"
    )
    both = ['Basic realm="phone"', 'Digest realm="phone", qop="auth", nonce="n"']
    assert DigestClient("admin", "pw", allow_basic=True).authorization("GET", "/", both).startswith("Digest ")


def test_client_rejects_basic_with_colon_in_username() -> None:
    with pytest.raises(ValueError, match="':'"):
        DigestClient("a:b", "pw", allow_basic=True)


@pytest.mark.parametrize(
    "challenges",
    [
        ['Digest realm="r", qop="auth-int", nonce="n"'],
        ['Digest realm="r", nonce="n"'],  # RFC 2069 style, no qop: no replay protection, refused
        ['Digest realm="r", qop="auth", algorithm=SHA-512-256, nonce="n"'],
        ['Digest realm="r", qop="auth"'],
        ["Negotiate", "garbage ="],
        [],
    ],
)
def test_client_without_usable_challenge(challenges: list[str]) -> None:
    with pytest.raises(NoUsableChallengeError, match="no usable challenge"):
        DigestClient("u", "p").authorization("GET", "/", challenges)


def test_client_needs_a_challenge_before_preemptive_use() -> None:
    with pytest.raises(NoUsableChallengeError, match="no challenge received yet"):
        DigestClient("u", "p").authorization("GET", "/")


def test_client_skips_malformed_values_and_ignores_userhash_and_unknown_params(verifier: DigestVerifier) -> None:
    decorated = [v + ', userhash=true, domain="/cwmp /x", x-vendor=1' for v in verifier.challenge()]
    header = DigestClient("000B82-WP820-001", PASSWORDS["000B82-WP820-001"]).authorization(
        "POST", URI, ['Digest realm="unterminated', *decorated]
    )
    assert "userhash" not in header and "domain" not in header
    assert verify(verifier, header).ok


def test_client_counts_per_nonce() -> None:
    client = DigestClient("u", "p")
    nonce_a = ['Digest realm="r", qop="auth", nonce="a"']
    nonce_b = ['Digest realm="r", qop="auth", nonce="b"']
    counts = [
        parse_credentials(client.authorization("GET", "/", challenges)).params["nc"]
        for challenges in (nonce_a, nonce_a, nonce_b, nonce_a)
    ]
    assert counts == ["00000001", "00000002", "00000001", "00000003"]


def test_client_repr_hides_password() -> None:
    assert "hunter2" not in repr(DigestClient("admin", "hunter2"))


# --- header grammar ----------------------------------------------------------------------------------------------


def test_several_challenges_in_one_header_with_tricky_values() -> None:
    header = (
        'Newauth realm="apps", type=1,  title="Login to \\"apps\\"", Basic realm="simple" ,'
        ' Digest  realm = "a, b" , qop="auth,auth-int",nonce=abc,   x-unknown="1,2", Bearer dG9rZW4=='
    )
    assert parse_challenges([header]) == [
        AuthElement("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
        AuthElement("basic", {"realm": "simple"}),
        AuthElement("digest", {"realm": "a, b", "qop": "auth,auth-int", "nonce": "abc", "x-unknown": "1,2"}),
        AuthElement("bearer", {}, "dG9rZW4=="),
    ]


def test_challenges_across_several_headers_keep_order() -> None:
    assert [c.scheme for c in parse_challenges(["Basic realm=a", "Digest realm=b, Negotiate", ""])] == [
        "basic",
        "digest",
        "negotiate",
    ]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("realm=x", "before any auth scheme"),
        ('Digest realm="x', "malformed parameter value"),
        ("Digest realm=", None),  # a token68 "realm=", valid grammar
        ("Digest a=1 b=2", "expected ','"),
        ("Digest a=1, A=2", "repeated"),
        ("Basic abc, x=1", "after a token68"),
        ('"x"', "unexpected character"),
        ("Digest\x00", "after auth scheme"),
        ('Digest a="line\nbreak"', "malformed parameter value"),
    ],
)
def test_grammar_errors(header: str, message: str | None) -> None:
    if message is None:
        assert parse_challenges([header]) == [AuthElement("digest", {}, "realm=")]
    else:
        with pytest.raises(AuthHeaderError, match=message):
            parse_challenges([header])


def test_credentials_must_be_exactly_one() -> None:
    with pytest.raises(AuthHeaderError, match="found 2"):
        parse_credentials("Basic abc, Basic def")


def test_quote_refuses_control_characters() -> None:
    with pytest.raises(AuthHeaderError, match="control character"):
        quote("a\r\nSet-Cookie: x")


def test_verifier_validates_its_configuration() -> None:
    with pytest.raises(AuthHeaderError):
        DigestVerifier("realm\n")
    with pytest.raises(UnsupportedAlgorithmError):
        DigestVerifier(REALM, algorithms=("SHA-1",))
    with pytest.raises(ValueError, match="at least one"):
        DigestVerifier(REALM, algorithms=())
    with pytest.raises(ValueError, match="nonce_ttl"):
        DigestVerifier(REALM, nonce_ttl=0)
    with pytest.raises(ValueError, match="max_tracked_nonces"):
        DigestVerifier(REALM, max_tracked_nonces=0)


# --- properties --------------------------------------------------------------------------------------------------


@given(st.text(alphabet=st.characters(max_codepoint=127)))
@settings(max_examples=400, deadline=None)
def test_ascii_garbage_never_authenticates_or_raises(garbage: str) -> None:
    verifier = DigestVerifier(REALM)
    for header in (garbage, "Digest " + garbage, "Basic " + garbage):
        assert verifier.verify("POST", URI, header, Store(), is_tls=True).ok is False


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_parser_raises_only_its_own_error(text: str) -> None:
    try:
        parse_challenges([text])
    except AuthHeaderError:
        pass


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc",))))
@settings(max_examples=200, deadline=None)
def test_quoted_values_round_trip(value: str) -> None:
    assert parse_credentials(f"X a={quote(value)}, b=c").params == {"a": value, "b": "c"}


_VALID_VERIFIER = DigestVerifier(REALM, secret=b"fixed")
_VALID_HEADER = DigestClient("000B82-WP820-001", PASSWORDS["000B82-WP820-001"]).authorization(
    "POST", URI, _VALID_VERIFIER.challenge()
)


@given(
    st.dictionaries(
        st.sampled_from(sorted(parse_credentials(_VALID_HEADER).params) + ["username*", "userhash", "x"]),
        st.text(alphabet=st.characters(blacklist_categories=("Cc",)), max_size=80),
        min_size=1,
    )
)
@settings(max_examples=300, deadline=None)
def test_mutated_valid_headers_never_raise(replacements: dict[str, str]) -> None:
    header = _VALID_HEADER
    for name, value in replacements.items():
        header = with_param(header, name, value)
    result = _VALID_VERIFIER.verify("POST", URI, header, Store(), is_tls=False)
    assert isinstance(result.reason, Reason)
    if result.ok:  # only replacements that keep the digest intact can pass, and only once per count
        assert result.username == "000B82-WP820-001"
