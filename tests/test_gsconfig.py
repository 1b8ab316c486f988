"""Grandstream XML config files: building, hardened parsing, OpenSSL-compatible encryption, the P1 rule."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from cwmp_models.gsconfig import (
    KDFS,
    ConfigFileError,
    GsConfig,
    build_config,
    check_authentication,
    decrypt_config,
    encrypt_config,
    is_encrypted,
    parse_config,
)

# Characters XML 1.0 can carry, written out independently of the module's own pattern.
_XML_SPECIALS = "<&>\"'\t\n\r ]]>"
xml_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(_XML_SPECIALS),
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"),
    ),
    max_size=30,
)
pvalue_names = st.integers(min_value=0, max_value=10**6).map(lambda n: f"P{n}")
pvalue_dicts = st.dictionaries(pvalue_names, xml_text, max_size=15)
macs = st.text(alphabet="0123456789abcdefABCDEF", min_size=12, max_size=12)
passwords = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1
)
FAST_ITERATIONS = 10  # PBKDF2 work is irrelevant to what the round-trip properties check

SECRET = "S3cretAdmin"


def _config(body: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><gs_provision version="1">{body}</gs_provision>'.encode()


def _reason(data: bytes) -> str:
    with pytest.raises(ConfigFileError) as caught:
        parse_config(data)
    return caught.value.reason


# --- building ---------------------------------------------------------------------------------------------------


def test_build_matches_the_documented_shape_in_numeric_order() -> None:
    data = build_config({"P276": "1", "P10": "x", "P2": ""}, mac="C074AD000001")
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<gs_provision version="1">')
    root = etree.fromstring(data)
    assert [child.tag for child in root] == ["mac", "config"]
    assert root.find("mac").text == "c074ad000001"
    config = root.find("config")
    assert config.get("version") == "1"
    assert [(e.tag, e.text or "") for e in config] == [("P2", ""), ("P10", "x"), ("P276", "1")]


def test_build_without_mac_has_no_mac_element() -> None:
    root = etree.fromstring(build_config({"P1": "a"}))
    assert root.find("mac") is None


@given(pvalue_dicts)
def test_build_does_not_depend_on_mapping_order(pvalues: dict[str, str]) -> None:
    reversed_order = dict(reversed(list(pvalues.items())))
    assert build_config(pvalues) == build_config(reversed_order)


@given(pvalue_dicts, st.one_of(st.none(), macs))
def test_build_then_parse_round_trips(pvalues: dict[str, str], mac: str | None) -> None:
    parsed = parse_config(build_config(pvalues, mac=mac))
    assert parsed == GsConfig(mac=None if mac is None else mac.lower(), pvalues=pvalues)


@pytest.mark.parametrize("name", ["P", "p1", "P01", "P1a", "Q1", " P1", "P1\n", "P\u0661", "", 1])
def test_build_rejects_names_that_are_not_pvalues(name: object) -> None:
    with pytest.raises(ConfigFileError, match="not a P-value name"):
        build_config({name: "1"})  # type: ignore[dict-item]


def test_build_rejects_non_text_values() -> None:
    with pytest.raises(ConfigFileError, match="P2: value must be text"):
        build_config({"P2": 1})  # type: ignore[dict-item]


@given(xml_text, st.sampled_from("\x00\x01\x08\x0b\x0c\x0e\x1f\ud800\ufffe\uffff"), xml_text)
def test_build_rejects_characters_xml_cannot_carry_without_quoting_the_value(
    before: str, bad: str, after: str
) -> None:
    with pytest.raises(ConfigFileError) as caught:
        build_config({"P2": before + SECRET + bad + after})
    assert caught.value.reason == (
        f"P2: value has a character XML 1.0 cannot carry at index {len(before) + len(SECRET)}"
    )


@pytest.mark.parametrize("mac", ["c0:74:ad:00:00:01", "c074ad00000", "c074ad0000011", "g074ad000001"])
def test_build_rejects_malformed_macs(mac: str) -> None:
    with pytest.raises(ConfigFileError, match="mac must be 12 hexadecimal digits"):
        build_config({}, mac=mac)


# --- parsing --------------------------------------------------------------------------------------------------------


def test_parse_accepts_the_guide_example_without_declaration_or_versions() -> None:
    data = (
        b"<gs_provision>\n <mac>000B82123456</mac>\n <config>\n"
        b"  <P271>0</P271>\n  <P270>Account name</P270>\n </config>\n</gs_provision>"
    )
    assert parse_config(data) == GsConfig(mac="000b82123456", pvalues={"P271": "0", "P270": "Account name"})


def test_parse_keeps_values_exactly_and_treats_empty_mac_as_none() -> None:
    data = _config("<mac> </mac><config><P1>  a b  </P1><P2/><P3><![CDATA[<&>]]></P3></config>")
    assert parse_config(data) == GsConfig(mac=None, pvalues={"P1": "  a b  ", "P2": "", "P3": "<&>"})


def test_parse_ignores_comments_and_processing_instructions_inside_values() -> None:
    data = _config("<config><P1>a<!-- note -->b</P1><P2>c<?pi x?>d</P2></config>")
    assert parse_config(data).pvalues == {"P1": "ab", "P2": "cd"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<config><P1>1</P1><P1>2</P1></config>", "P1 is given more than once"),
        ("<config><P1>1</P1><Item>2</Item></config>", "element Item in config is not a P-value"),
        ("<config><P01>1</P01></config>", "element P01 in config is not a P-value"),
        ("<config><P1><b>1</b></P1></config>", "P1 has child elements"),
        ("<config>junk<P1>1</P1></config>", "unexpected text directly inside config"),
        ("<config><P1>1</P1>junk</config>", "unexpected text directly inside config"),
        ('<config version="2"><P1>1</P1></config>', "config version '2' is not supported"),
        ("<mac>c074ad000001</mac>", "gs_provision has no config element"),
        ("<config/><config/>", "unexpected or repeated element config"),
        ("<mac/><mac/><config/>", "unexpected or repeated element mac"),
        ("<extra/><config/>", "unexpected or repeated element extra"),
        ("<mac>c074ad00000z</mac><config/>", "mac must be 12 hexadecimal digits"),
        ("<mac><x/></mac><config/>", "mac element has child elements"),
        ("text<config/>", "unexpected text directly inside gs_provision"),
    ],
)
def test_parse_rejects_content_outside_the_format(body: str, expected: str) -> None:
    assert expected in _reason(_config(body))


def test_parse_rejects_wrong_root_and_wrong_format_version() -> None:
    assert "root element is config, not gs_provision" in _reason(b"<config><P1>1</P1></config>")
    assert "root element is {urn:x}gs_provision" in _reason(b'<gs_provision xmlns="urn:x"><config/></gs_provision>')
    assert "gs_provision version '2' is not supported" in _reason(b'<gs_provision version="2"><config/></gs_provision>')


def test_parse_rejects_an_entity_expansion_bomb() -> None:
    laughs = "".join(f'<!ENTITY l{i} "{"&l%d;" % (i - 1) * 10}">' for i in range(1, 10))
    data = f'<?xml version="1.0"?><!DOCTYPE gs_provision [<!ENTITY l0 "lol">{laughs}]>'
    data += "<gs_provision><config><P1>&l9;</P1></config></gs_provision>"
    # libxml2 may stop it first (amplification limit); either way it is refused, never expanded.
    reason = _reason(data.encode())
    assert reason == "file has a DOCTYPE (not allowed)" or reason.startswith("not well-formed XML")


def test_parse_rejects_internal_entities() -> None:
    data = b'<!DOCTYPE gs_provision [<!ENTITY pw "x">]><gs_provision><config><P1>&pw;</P1></config></gs_provision>'
    assert _reason(data) == "file has a DOCTYPE (not allowed)"


def test_parse_rejects_external_entities(tmp_path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("leaked")
    data = f'<!DOCTYPE gs_provision [<!ENTITY x SYSTEM "file://{secret_file}">]>'
    data += "<gs_provision><config><P1>&x;</P1></config></gs_provision>"
    assert _reason(data.encode()) == "file has a DOCTYPE (not allowed)"


def test_parse_rejects_a_bare_doctype() -> None:
    assert _reason(b"<!DOCTYPE gs_provision><gs_provision><config/></gs_provision>") == (
        "file has a DOCTYPE (not allowed)"
    )


def test_parse_rejects_input_over_the_size_cap_before_parsing() -> None:
    data = build_config({"P2": "x" * 2000})
    assert parse_config(data, max_size=len(data)).pvalues == {"P2": "x" * 2000}
    with pytest.raises(ConfigFileError, match=f"larger than {len(data) - 1} bytes"):
        parse_config(data, max_size=len(data) - 1)
    assert "larger than 1048576 bytes" in _reason(b" " * ((1 << 20) + 1))


def test_parse_rejects_deep_nesting() -> None:
    data = _config("<config><P1>" + "<a>" * 5000 + "</a>" * 5000 + "</P1></config>")
    assert "not well-formed XML" in _reason(data)


def test_parse_rejects_invalid_utf8_without_quoting_the_bytes() -> None:
    reason = _reason(_config("<config><P2>pass</P2></config>").replace(b"pass", b"pa\xffss"))
    assert reason.startswith("file is not valid UTF-8 (byte offset ")
    assert "\\xff" not in reason and "0xff" not in reason


def test_parse_reads_utf8_even_when_the_declaration_says_otherwise() -> None:
    data = b'<?xml version="1.0" encoding="ISO-8859-1"?>'
    data += b"<gs_provision><config><P2>\xc3\xa9</P2></config></gs_provision>"
    assert parse_config(data).pvalues == {"P2": "\u00e9"}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not xml",
        b"<gs_provision><config>",
        b"<gs_provision><config><P2>&S3cretAdmin;</P2></config></gs_provision>",
    ],
)
def test_parse_reports_malformed_xml_by_position_only(data: bytes) -> None:
    reason = _reason(data)
    assert reason.startswith("not well-formed XML (line ")
    assert SECRET not in reason


# --- encryption -----------------------------------------------------------------------------------------------------


@settings(max_examples=50)
@given(st.sampled_from(KDFS), xml_text.map(lambda t: ("<" + t).encode()), passwords)
def test_encrypt_then_decrypt_round_trips(kdf: str, plaintext: bytes, password: str) -> None:
    blob = encrypt_config(plaintext, password, kdf=kdf, iterations=FAST_ITERATIONS)
    assert is_encrypted(blob)
    assert not is_encrypted(plaintext)
    assert (len(blob) - 16) % 16 == 0 and len(blob) > len(plaintext) + 16
    assert decrypt_config(blob, password, kdf=kdf, iterations=FAST_ITERATIONS) == plaintext


def test_each_encryption_uses_a_fresh_salt() -> None:
    plaintext = build_config({"P1": SECRET})
    assert encrypt_config(plaintext, SECRET) != encrypt_config(plaintext, SECRET)


@settings(max_examples=100)
@given(st.sampled_from(KDFS), passwords, passwords)
def test_a_wrong_password_is_refused_never_accepted(kdf: str, right: str, wrong: str) -> None:
    plaintext = build_config({"P1": SECRET, "P276": "1"})
    blob = encrypt_config(plaintext, right, kdf=kdf, iterations=FAST_ITERATIONS)
    assume(wrong != right)
    with pytest.raises(ConfigFileError, match="wrong password or key derivation") as caught:
        decrypt_config(blob, wrong, kdf=kdf, iterations=FAST_ITERATIONS)
    assert caught.value.reason in {
        "wrong password or key derivation, or corrupted file (bad padding)",
        "wrong password or key derivation, or corrupted file (plaintext is not XML)",
    }


@pytest.mark.parametrize(("used", "tried"), [("md5", "sha256"), ("sha256", "md5"), ("sha256", "pbkdf2-sha256")])
def test_a_wrong_key_derivation_is_refused(used: str, tried: str) -> None:
    blob = encrypt_config(build_config({"P1": "1"}), SECRET, kdf=used)  # type: ignore[arg-type]
    with pytest.raises(ConfigFileError, match="wrong password or key derivation"):
        decrypt_config(blob, SECRET, kdf=tried)  # type: ignore[arg-type]


def test_a_wrong_pbkdf2_iteration_count_is_refused() -> None:
    blob = encrypt_config(build_config({"P1": "1"}), SECRET, kdf="pbkdf2-sha256", iterations=1000)
    with pytest.raises(ConfigFileError, match="wrong password or key derivation"):
        decrypt_config(blob, SECRET, kdf="pbkdf2-sha256", iterations=1001)


@pytest.mark.parametrize("plaintext", [b"\x9c\x00 binary", b"valid UTF-8 but no markup"])
def test_plaintext_that_is_not_xml_is_refused_even_with_valid_padding(plaintext: bytes) -> None:
    # What a wrong key that happens to produce valid padding looks like (about 1 in 256 wrong passwords).
    blob = encrypt_config(plaintext, SECRET)
    with pytest.raises(ConfigFileError, match=r"\(plaintext is not XML\)"):
        decrypt_config(blob, SECRET)


def test_truncated_and_foreign_blobs_are_refused_with_a_reason() -> None:
    blob = encrypt_config(build_config({"P1": "1"}), SECRET)
    cases = {
        b"": "no 'Salted__' header",
        b"<gs_provision/>": "no 'Salted__' header",
        b"Salted_X" + blob[8:]: "no 'Salted__' header",
        blob[:12]: "truncated inside its salt",
        blob[:16]: "ciphertext is truncated",
        blob[:-1]: "ciphertext is truncated",
        blob[:-16]: "wrong password or key derivation",  # whole blocks survive: the padding check catches it
    }
    for data, expected in cases.items():
        with pytest.raises(ConfigFileError, match=expected):
            decrypt_config(data, SECRET)


def test_decrypt_refuses_blobs_longer_than_any_encryption_of_the_cap() -> None:
    plaintext = build_config({"P2": "x" * 100})
    blob = encrypt_config(plaintext, SECRET)
    assert decrypt_config(blob, SECRET, max_size=len(plaintext)) == plaintext
    with pytest.raises(ConfigFileError, match="larger than any encryption of 10 bytes"):
        decrypt_config(blob, SECRET, max_size=10)


@pytest.mark.parametrize(
    ("password", "expected"),
    [("", "password is empty"), ("a\x00b", "password contains a NUL"), ("a\ud800", "not encodable as UTF-8")],
)
def test_unusable_passwords_are_refused(password: str, expected: str) -> None:
    with pytest.raises(ConfigFileError, match=expected):
        encrypt_config(b"<x/>", password)


def test_unknown_kdf_and_bad_iteration_counts_are_refused() -> None:
    with pytest.raises(ConfigFileError, match="unknown key derivation 'sha1'"):
        encrypt_config(b"<x/>", SECRET, kdf="sha1")  # type: ignore[arg-type]
    with pytest.raises(ConfigFileError, match="iteration count must be at least 1"):
        encrypt_config(b"<x/>", SECRET, kdf="pbkdf2-sha256", iterations=0)


# --- interoperability with the openssl binary --------------------------------------------------------------------

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl binary is not installed")
_OPENSSL_KDFS = [
    ("md5", 10000, ["-md", "md5"]),
    ("sha256", 10000, ["-md", "sha256"]),
    ("pbkdf2-sha256", 10000, ["-md", "sha256", "-pbkdf2"]),
    ("pbkdf2-sha256", 1234, ["-md", "sha256", "-pbkdf2", "-iter", "1234"]),
]
_OPENSSL_PASSWORDS = ["S3cret", "p@ss\"w'rd $`!\\;|&<>", "m\u00f6t d\u00e9 pass\u20ac\U0001f511"]


def _openssl(args: list[str], data: bytes, password: str) -> bytes:
    # The password goes through the environment, never the command line (visible in ps).
    env = {b"PATH": os.environb.get(b"PATH", b"/usr/bin:/bin"), b"GSCONFIG_TEST_PASSWORD": password.encode("utf-8")}
    result = subprocess.run(
        ["openssl", "enc", "-aes-256-cbc", "-salt", *args, "-pass", "env:GSCONFIG_TEST_PASSWORD"],
        input=data,
        capture_output=True,
        env=env,
        check=True,
        timeout=30,
    )
    return result.stdout


@needs_openssl
@pytest.mark.parametrize("password", _OPENSSL_PASSWORDS)
@pytest.mark.parametrize(("kdf", "iterations", "args"), _OPENSSL_KDFS)
def test_openssl_decrypts_what_we_encrypt(kdf: str, iterations: int, args: list[str], password: str) -> None:
    plaintext = build_config({"P1": password, "P276": "1", "P1359": password})
    blob = encrypt_config(plaintext, password, kdf=kdf, iterations=iterations)  # type: ignore[arg-type]
    assert _openssl([*args, "-d"], blob, password) == plaintext


@needs_openssl
@pytest.mark.parametrize("password", _OPENSSL_PASSWORDS)
@pytest.mark.parametrize(("kdf", "iterations", "args"), _OPENSSL_KDFS)
def test_we_decrypt_what_openssl_encrypts(kdf: str, iterations: int, args: list[str], password: str) -> None:
    plaintext = build_config({"P1": password, "P276": "1"}, mac="c074ad000001")
    blob = _openssl([*args, "-e"], plaintext, password)
    assert is_encrypted(blob)
    assert decrypt_config(blob, password, kdf=kdf, iterations=iterations) == plaintext  # type: ignore[arg-type]


# --- the P1 authentication rule -------------------------------------------------------------------------------------


def test_authentication_needs_p1_equal_to_the_admin_password() -> None:
    assert check_authentication(GsConfig(mac=None, pvalues={"P1": SECRET, "P276": "1"}), SECRET)
    assert not check_authentication(GsConfig(mac=None, pvalues={"P1": SECRET + "x"}), SECRET)
    assert not check_authentication(GsConfig(mac=None, pvalues={"P1": SECRET.lower()}), SECRET)
    assert not check_authentication(GsConfig(mac=None, pvalues={"P1": ""}), SECRET)
    assert not check_authentication(GsConfig(mac=None, pvalues={"P2": SECRET}), SECRET)
    assert not check_authentication(GsConfig(mac=None, pvalues={}), SECRET)


@given(xml_text, xml_text)
def test_authentication_is_exact_equality_of_text(offered: str, admin: str) -> None:
    cfg = parse_config(build_config({"P1": offered}))
    assert check_authentication(cfg, admin) == (offered == admin)


def test_authentication_survives_an_unencodable_admin_password() -> None:
    assert not check_authentication(GsConfig(mac=None, pvalues={"P1": "a"}), "a\ud800")
