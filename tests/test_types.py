"""CWMP value types: exact text on output, lenient reading on input (cwmp_models.types)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cwmp_models.types import (
    _format_datetime_general,
    UNKNOWN_TIME,
    VALUE_FORMATTERS,
    VALUE_PARSERS,
    VALUE_READERS,
    ValueRangeError,
    XsdType,
    format_datetime,
    format_value,
    parse_bool,
    parse_datetime,
    parse_value,
)

UTC = timezone.utc


def offset(hours: int = 0, minutes: int = 0) -> timezone:
    return timezone(timedelta(hours=hours, minutes=minutes))


# --------------------------------------------------------------------------------------------------------------------
# dateTime
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fraction,microsecond",
    [
        ("1", 100000),
        ("12", 120000),
        ("123", 123000),
        ("1234", 123400),
        ("12345", 123450),
        ("123456", 123456),
        ("1234567", 123456),  # Python holds microseconds: further digits are dropped, not rounded
        ("12345678", 123456),
        ("123456789", 123456),
        ("000001", 1),
        ("999999999", 999999),
    ],
)
def test_fractions_of_one_to_nine_digits(fraction, microsecond):
    parsed = parse_datetime(f"2026-11-27T08:30:15.{fraction}Z")
    assert parsed == datetime(2026, 11, 27, 8, 30, 15, microsecond, tzinfo=UTC)


@pytest.mark.parametrize(
    "text,zone",
    [
        ("2026-11-27T08:30:15Z", UTC),
        ("2026-11-27T08:30:15z", UTC),
        ("2026-11-27T08:30:15+00:00", UTC),
        ("2026-11-27T08:30:15+01:00", offset(1)),
        ("2026-11-27T08:30:15+0100", offset(1)),
        ("2026-11-27T08:30:15+05:45", offset(5, 45)),
        ("2026-11-27T08:30:15-05:00", offset(-5)),
        ("2026-11-27T08:30:15-0330", offset(-3, -30)),
        ("2026-11-27T08:30:15-00:30", offset(0, -30)),
        ("2026-11-27T08:30:15+14:00", offset(14)),
        ("2026-11-27T08:30:15-12:00", offset(-12)),
    ],
)
def test_zones(text, zone):
    parsed = parse_datetime(text)
    assert parsed.replace(tzinfo=None) == datetime(2026, 11, 27, 8, 30, 15)
    assert parsed.utcoffset() == zone.utcoffset(None)


def test_no_zone_gives_a_naive_datetime():
    parsed = parse_datetime("2026-11-27T08:30:15")
    assert parsed == datetime(2026, 11, 27, 8, 30, 15)
    assert parsed.tzinfo is None


@pytest.mark.parametrize(
    "text,expected",
    [
        (" 2026-11-27T08:30:15Z\n", datetime(2026, 11, 27, 8, 30, 15, tzinfo=UTC)),  # pretty-printed
        ("2026-11-27 08:30:15Z", datetime(2026, 11, 27, 8, 30, 15, tzinfo=UTC)),  # space for T
        ("2026-11-27T08:30:15,5Z", datetime(2026, 11, 27, 8, 30, 15, 500000, tzinfo=UTC)),  # decimal comma
        ("0001-01-01T00:00:09", datetime(1, 1, 1, 0, 0, 9)),  # time since boot (TR-069: year before 1000)
    ],
)
def test_lenient_forms(text, expected):
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


def test_a_leap_second_becomes_the_next_second():
    assert parse_datetime("2016-12-31T23:59:60Z") == datetime(2017, 1, 1, tzinfo=UTC)
    assert parse_datetime("2016-12-31T23:59:60.5+01:00") == datetime(2017, 1, 1, 0, 0, 0, 500000, tzinfo=offset(1))


def test_a_leap_second_with_no_successor_is_a_value_error():
    with pytest.raises(ValueError):
        parse_datetime("9999-12-31T23:59:60Z")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "now",
        "2026-11-27",
        "08:30:15",
        "2026-11-27T08:30",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-11-27T24:00:01Z",
        "2026-11-27T08:61:00Z",
        "2026-11-27T08:30:61Z",
        "2026-11-27T08:30:15+24:00",
        "2026-11-27T08:30:15+1",
        "2026-11-27T08:30:15.Z",
        "0000-01-01T00:00:00Z",
        "-0001-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "2026-11-27T08:30:15Z trailing",
    ],
)
def test_malformed_datetimes_are_value_errors(text):
    with pytest.raises(ValueError):
        parse_datetime(text)


@pytest.mark.parametrize(
    "value,text",
    [
        (datetime(2026, 11, 27, 8, 30, 15, tzinfo=UTC), "2026-11-27T08:30:15Z"),
        (datetime(2026, 11, 27, 8, 30, 15), "2026-11-27T08:30:15"),
        (datetime(2026, 11, 27, 8, 30, 15, 250000, tzinfo=offset(1)), "2026-11-27T08:30:15.25+01:00"),
        (datetime(2026, 11, 27, 8, 30, 15, 1, tzinfo=offset(-5)), "2026-11-27T08:30:15.000001-05:00"),
        (datetime(2026, 11, 27, 8, 30, 15, tzinfo=offset(-3, -30)), "2026-11-27T08:30:15-03:30"),
        (datetime(2026, 11, 27, 8, 30, 15, tzinfo=offset(0, -30)), "2026-11-27T08:30:15-00:30"),
        (datetime(999, 1, 2, 3, 4, 5), "0999-01-02T03:04:05"),
        (UNKNOWN_TIME, "0001-01-01T00:00:00Z"),
    ],
)
def test_format_datetime_canonical_form(value, text):
    assert format_datetime(value) == text
    parsed = parse_datetime(text)
    assert parsed == value and parsed.utcoffset() == value.utcoffset()


def test_format_datetime_fast_path_writes_what_the_general_path_writes():
    zones = st.one_of(
        st.none(),
        st.just(UTC),
        st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)).map(
            timezone
        ),
        st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda minutes: offset(minutes=minutes)),
    )

    @settings(max_examples=500, deadline=None)
    @given(st.datetimes(timezones=zones), st.booleans())
    def check(value, whole_seconds):
        if whole_seconds:
            value = value.replace(microsecond=0)
        assert format_datetime(value) == _format_datetime_general(value)

    check()


def test_the_unknown_time():
    assert UNKNOWN_TIME == datetime(1, 1, 1, tzinfo=UTC)
    assert parse_datetime("0001-01-01T00:00:00Z") == UNKNOWN_TIME
    assert parse_value(XsdType.DATETIME, "0001-01-01T00:00:00Z") == UNKNOWN_TIME
    assert format_value(XsdType.DATETIME, UNKNOWN_TIME) == "0001-01-01T00:00:00Z"


# --------------------------------------------------------------------------------------------------------------------
# boolean
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,value",
    [
        ("true", True), ("false", False), ("1", True), ("0", False),
        ("TRUE", True), ("False", False), ("tRuE", True), (" 1 ", True), ("\tfalse\n", False),
    ],
)
def test_parse_bool_variants(text, value):
    assert parse_bool(text) is value
    assert parse_value(XsdType.BOOLEAN, text) is value


@pytest.mark.parametrize("text", ["", "yes", "no", "on", "2", "-1", "t", "f", "1.0", "true false", "０"])
def test_parse_bool_refuses_everything_else(text):
    with pytest.raises(ValueError):
        parse_bool(text)


def test_format_bool():
    assert format_value(XsdType.BOOLEAN, True) == "true"
    assert format_value(XsdType.BOOLEAN, False) == "false"
    assert format_value(XsdType.BOOLEAN, " 1 ") == "true"  # a literal is re-read, then written canonically
    with pytest.raises(ValueRangeError):
        format_value(XsdType.BOOLEAN, 1)
    with pytest.raises(ValueError):
        format_value(XsdType.BOOLEAN, "yes")


# --------------------------------------------------------------------------------------------------------------------
# integers
# --------------------------------------------------------------------------------------------------------------------

INTEGER_RANGES = [
    (XsdType.INT, -(2**31), 2**31 - 1),
    (XsdType.UNSIGNED_INT, 0, 2**32 - 1),
    (XsdType.LONG, -(2**63), 2**63 - 1),
    (XsdType.UNSIGNED_LONG, 0, 2**64 - 1),
]


@pytest.mark.parametrize("xsd_type,low,high", INTEGER_RANGES, ids=lambda v: getattr(v, "value", None))
def test_integer_range_on_input(xsd_type, low, high):
    assert parse_value(xsd_type, str(low)) == low
    assert parse_value(xsd_type, str(high)) == high
    assert parse_value(xsd_type, f" {high}\n") == high
    for outside in (low - 1, high + 1):
        with pytest.raises(ValueRangeError, match=xsd_type.value):
            parse_value(xsd_type, str(outside))


@pytest.mark.parametrize("xsd_type,low,high", INTEGER_RANGES, ids=lambda v: getattr(v, "value", None))
def test_integer_range_on_output(xsd_type, low, high):
    assert format_value(xsd_type, low) == str(low)
    assert format_value(xsd_type, high) == str(high)
    assert format_value(xsd_type, f" {high} ") == str(high)  # a literal is checked and written canonically
    for outside in (low - 1, high + 1, str(high + 1)):
        with pytest.raises(ValueRangeError):
            format_value(xsd_type, outside)
    for not_an_integer in (True, 1.0, b"1", None):
        with pytest.raises(ValueRangeError):
            format_value(xsd_type, not_an_integer)


@pytest.mark.parametrize("text", ["", " ", "4.2", "1e3", "0x10", "ten", "1 2"])
def test_integers_refuse_non_integer_text(text):
    with pytest.raises(ValueError):
        parse_value(XsdType.INT, text)


def test_integer_signs():
    assert parse_value(XsdType.INT, "+7") == 7
    assert parse_value(XsdType.INT, "-7") == -7
    assert parse_value(XsdType.UNSIGNED_INT, "-0") == 0


def test_value_range_error_is_a_value_error():
    assert issubclass(ValueRangeError, ValueError)


# --------------------------------------------------------------------------------------------------------------------
# base64 and hexBinary
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["AAECAwQ=", "AAEC\nAwQ=", "  AAEC AwQ=  ", "AA\r\nEC\tAw\nQ="])
def test_base64_ignores_whitespace(text):
    assert parse_value(XsdType.BASE64, text) == b"\x00\x01\x02\x03\x04"


@pytest.mark.parametrize("text", ["AAE", "!!!!", "AAECAwQ=x", "AA=C"])
def test_base64_refuses_broken_text(text):
    with pytest.raises(ValueError):
        parse_value(XsdType.BASE64, text)


def test_base64_output():
    assert format_value(XsdType.BASE64, b"\x00\x01\x02\x03\x04") == "AAECAwQ="
    assert format_value(XsdType.BASE64, b"") == ""
    assert parse_value(XsdType.BASE64, "") == b""
    with pytest.raises(ValueRangeError):
        format_value(XsdType.BASE64, bytearray(b"x"))


@pytest.mark.parametrize("text", ["deadbeef", "DEADBEEF", "DeAdBeEf", " deadbeef\n", "de ad be ef"])
def test_hex_binary_in_either_case(text):
    assert parse_value(XsdType.HEXBINARY, text) == b"\xde\xad\xbe\xef"


@pytest.mark.parametrize("text", ["abc", "0g", "de-ad", "0x00"])
def test_hex_binary_refuses_broken_text(text):
    with pytest.raises(ValueError):
        parse_value(XsdType.HEXBINARY, text)


def test_hex_binary_output():
    assert format_value(XsdType.HEXBINARY, b"\xde\xad\xbe\xef") == "deadbeef"
    with pytest.raises(ValueRangeError):
        format_value(XsdType.HEXBINARY, 3735928559)


# --------------------------------------------------------------------------------------------------------------------
# strings and type names
# --------------------------------------------------------------------------------------------------------------------


def test_strings_are_kept_exactly():
    assert parse_value(XsdType.STRING, "  a <b> \n") == "  a <b> \n"
    assert parse_value(XsdType.STRING, None) == ""
    assert format_value(XsdType.STRING, "x") == "x"
    with pytest.raises(ValueRangeError):
        format_value(XsdType.STRING, 5)


@pytest.mark.parametrize(
    "declared,xsd_type",
    [
        ("xsd:string", XsdType.STRING),
        ("string", XsdType.STRING),
        ("soap-enc:string", XsdType.STRING),
        ("xs:int", XsdType.INT),
        ("xsd:UnsignedInt", XsdType.UNSIGNED_INT),
        ("xsd:unsignedint", XsdType.UNSIGNED_INT),
        ("UNSIGNEDLONG", XsdType.UNSIGNED_LONG),
        ("xsd:long", XsdType.LONG),
        ("XSD:DATETIME", XsdType.DATETIME),
        ("xsd:boolean", XsdType.BOOLEAN),
        ("xsd:base64Binary", XsdType.BASE64),
        ("xsd:base64", XsdType.BASE64),
        ("soap-enc:base64", XsdType.BASE64),
        ("SOAP-ENC:base64binary", XsdType.BASE64),
        ("xsd:hexBinary", XsdType.HEXBINARY),
        ("a:b:int", XsdType.INT),
        ("xsd:anySimpleType", XsdType.STRING),
        ("cwmp:ParameterValueStruct", XsdType.STRING),
        ("", XsdType.STRING),
        (None, XsdType.STRING),
    ],
)
def test_xsd_type_from_wire(declared, xsd_type):
    assert XsdType.from_wire(declared) is xsd_type


def test_wire_names_are_xml_schema_types():
    assert XsdType.BASE64.wire_name == "base64Binary"
    assert {t.wire_name for t in XsdType if t is not XsdType.BASE64} == {t.value for t in XsdType} - {"base64"}
    for xsd_type in XsdType:
        assert XsdType.from_wire(f"xsd:{xsd_type.wire_name}") is xsd_type


def test_every_type_has_a_parser_and_a_formatter():
    assert set(VALUE_PARSERS) == set(XsdType)
    assert set(VALUE_FORMATTERS) == set(XsdType)


def test_iso_week_dates_are_not_xsd_datetimes():
    with pytest.raises(ValueError):
        parse_datetime("2026-W48-5T05:30:15")


# --------------------------------------------------------------------------------------------------------------------
# readers (what the codec applies to each received Value)
# --------------------------------------------------------------------------------------------------------------------

_READER_TEXTS = [
    "", " ", "0", "1", "-1", " 42 ", "1_000", "٣", "2147483648", "4294967296", "-9223372036854775809",
    "18446744073709551616", "true", "FALSE", " 0 ", "yes", "2026-11-27T08:30:15Z", "2026-11-27T08:30:60Z",
    "2026-02-30T00:00:00Z", "0001-01-01T00:00:00Z", "AAEC", "AA=C", "00ff", "0g", "text",
]


@pytest.mark.parametrize("xsd_type", list(XsdType), ids=lambda t: t.value)
def test_readers_give_the_parsed_value_or_keep_the_text(xsd_type):
    read = VALUE_READERS[xsd_type]
    if xsd_type is XsdType.STRING:
        assert read is None  # strings are taken as they are
        return
    for text in _READER_TEXTS:
        try:
            expected = VALUE_PARSERS[xsd_type](text)
        except ValueError:
            expected = text
        got = read(text)
        assert (type(got), got) == (type(expected), expected), text
