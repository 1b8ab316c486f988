"""CWMP value types and their exact text forms.

TR-069 carries every parameter value as text tagged with an ``xsi:type``. This module converts between that text
and Python values, strictly on output (we must never emit something a schema-validating CPE rejects) and leniently
on input (real stacks send ``1``/``true``/``TRUE``, dateTimes without zone or fraction, and worse).
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from datetime import datetime, timedelta, timezone
from typing import Callable

__all__ = [
    "XsdType",
    "UNKNOWN_TIME",
    "CwmpValue",
    "parse_value",
    "VALUE_PARSERS",
    "VALUE_READERS",
    "format_value",
    "VALUE_FORMATTERS",
    "parse_datetime",
    "format_datetime",
    "parse_bool",
    "ValueRangeError",
]


class XsdType(str, enum.Enum):
    """The TR-069 parameter value types (TR-106 section 3.2), named as they appear in ``xsi:type``."""

    STRING = "string"
    INT = "int"
    UNSIGNED_INT = "unsignedInt"
    LONG = "long"
    UNSIGNED_LONG = "unsignedLong"
    BOOLEAN = "boolean"
    DATETIME = "dateTime"
    BASE64 = "base64"
    HEXBINARY = "hexBinary"

    @property
    def wire_name(self) -> str:
        """The XML Schema type to put in ``xsi:type``. TR-069 calls it "base64", but only ``base64Binary`` is an XML
        Schema type; a validating CPE rejects ``xsd:base64``."""
        return "base64Binary" if self is XsdType.BASE64 else self.value

    @classmethod
    def from_wire(cls, text: str | None) -> "XsdType":
        """Map an ``xsi:type`` attribute (any prefix, any case of the local part) to a type; unknown means string.

        Devices send ``xsd:string``, ``string``, ``soap-enc:string``, ``xsd:UnsignedInt`` and ``anySimpleType``.
        """
        if not text:
            return cls.STRING
        local = text.rpartition(":")[2]
        found = _WIRE_NAMES.get(local) or _WIRE_NAMES.get(local.lower())
        return found or cls.STRING


_WIRE_NAMES: dict[str, XsdType] = {t.value: t for t in XsdType}
_WIRE_NAMES.update({t.value.lower(): t for t in XsdType})
_WIRE_NAMES["base64binary"] = XsdType.BASE64

# A parameter value as Python sees it. str is also used for any value a device sent that does not fit its declared
# type: we keep the device's text rather than lose it.
CwmpValue = str | int | bool | datetime | bytes

# TR-069 uses 0001-01-01T00:00:00Z for "unknown time".
UNKNOWN_TIME = datetime(1, 1, 1, tzinfo=timezone.utc)

_INT_RANGES: dict[XsdType, tuple[int, int]] = {
    XsdType.INT: (-(2**31), 2**31 - 1),
    XsdType.UNSIGNED_INT: (0, 2**32 - 1),
    XsdType.LONG: (-(2**63), 2**63 - 1),
    XsdType.UNSIGNED_LONG: (0, 2**64 - 1),
}


class ValueRangeError(ValueError):
    """A value that cannot be represented in its declared CWMP type."""


_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def parse_bool(text: str) -> bool:
    found = _BOOLEANS.get(text)
    if found is None:
        found = _BOOLEANS.get(text.strip().lower())
        if found is None:
            raise ValueError(f"not a boolean: {text!r}")
    return found


_DATETIME_RE = re.compile(
    r"^\s*(-?\d{4,})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?\s*(Z|z|[+-]\d{2}:?\d{2})?\s*$"
)


def parse_datetime(text: str) -> datetime:
    """Parse an xsd:dateTime as devices send it: with or without fraction and zone. No zone gives a naive datetime
    (TR-069: local time of the device, or time since boot for years before 1000)."""
    # The shapes nearly every device sends — "YYYY-MM-DDTHH:MM:SS" then "Z", "±HH:MM" or nothing — go through the
    # C parser (ten times faster); anything else, and any text it refuses, takes the general path below.
    # (Shape pinned to the xsd form: fromisoformat alone would also take ISO week dates such as 2026-W48-5T…)
    if (
        len(text) in (19, 20, 25)
        and text[4] == text[7] == "-"
        and text[10] == "T"
        and text[13] == text[16] == ":"
        and (len(text) != 20 or text[19] == "Z")
    ):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    match = _DATETIME_RE.match(text)
    if match is None:
        raise ValueError(f"not a dateTime: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction + "000000")[:6]) if fraction else 0
    tz = None
    if zone:
        if zone in ("Z", "z"):
            tz = timezone.utc
        else:
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    second_int = int(second)
    leap = second_int == 60  # a leap second is valid xsd; Python cannot hold it
    value = datetime(int(year), int(month), int(day), int(hour), int(minute), 59 if leap else second_int, micro, tz)
    if not leap:
        return value
    try:
        return value + timedelta(seconds=1)
    except OverflowError:  # 9999-12-31T23:59:60 has no successor; callers expect ValueError for bad text
        raise ValueError(f"not a representable dateTime: {text!r}") from None


def format_datetime(value: datetime) -> str:
    """The canonical form we emit: seconds always, a fraction only when non-zero, ``Z`` for UTC."""
    # What nearly every value is — whole seconds, UTC or a whole-minute offset or none — is what the C isoformat()
    # writes already, but for "Z"; the rest takes the general path.
    if not value.microsecond:
        offset = value.utcoffset()
        if offset is None:
            return value.isoformat()
        if not offset:
            return value.isoformat()[:-6] + "Z"
        if not offset.seconds % 60 and not offset.microseconds:
            return value.isoformat()
    return _format_datetime_general(value)


def _format_datetime_general(value: datetime) -> str:
    text = f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset()
    if offset is None:
        return text
    if offset == timedelta(0):
        return text + "Z"
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    return f"{text}{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"


def _int_parser(xsd_type: XsdType) -> Callable[[str], int]:
    low, high = _INT_RANGES[xsd_type]

    def parse_int(text: str) -> int:
        number = int(text)  # int() ignores surrounding whitespace itself
        if not low <= number <= high:
            raise ValueRangeError(f"{number} outside {xsd_type.value}")
        return number

    return parse_int


def _parse_base64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from None


def _parse_hex_binary(text: str) -> bytes:
    return bytes.fromhex(text.strip())


# One parser per type, so a caller decoding many values looks its parser up once (the codec's hot path does).
VALUE_PARSERS: dict[XsdType, Callable[[str], CwmpValue]] = {
    XsdType.STRING: str,
    **{xsd_type: _int_parser(xsd_type) for xsd_type in _INT_RANGES},
    XsdType.BOOLEAN: parse_bool,
    XsdType.DATETIME: parse_datetime,
    XsdType.BASE64: _parse_base64,
    XsdType.HEXBINARY: _parse_hex_binary,
}


def _lenient_reader(parse: Callable[[str], CwmpValue]) -> Callable[[str], CwmpValue]:
    def read(text: str) -> CwmpValue:
        try:
            return parse(text)
        except ValueError:
            return text

    return read


# The readers behind a parameter Value received from a device: the typed value, or the device's own text when it does
# not fit its declared type (we keep what was sent rather than lose it). None for strings, which need no reading.
# They never raise, which keeps exception handling out of the hot loop of every Inform and GetParameterValuesResponse.
VALUE_READERS: dict[XsdType, Callable[[str], CwmpValue] | None] = {
    xsd_type: None if xsd_type is XsdType.STRING else _lenient_reader(parse)
    for xsd_type, parse in VALUE_PARSERS.items()
}


def parse_value(xsd_type: XsdType, text: str | None) -> CwmpValue:
    """Text from the wire to a Python value. Raises ValueError when the text does not fit the type; callers that
    must be lenient keep the raw text instead."""
    return VALUE_PARSERS[xsd_type](text or "")


def _int_formatter(xsd_type: XsdType) -> Callable[[CwmpValue], str]:
    low, high = _INT_RANGES[xsd_type]
    parse = VALUE_PARSERS[xsd_type]

    def format_int(value: CwmpValue) -> str:
        if isinstance(value, str):
            return str(parse(value))
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueRangeError(f"{value!r} is not an integer for {xsd_type.value}")
        if not low <= value <= high:
            raise ValueRangeError(f"{value} outside {xsd_type.value}")
        return str(value)

    return format_int


def _format_string(value: CwmpValue) -> str:
    if isinstance(value, str):
        return value
    raise ValueRangeError(f"{value!r} is not a string")


def _format_bool(value: CwmpValue) -> str:
    if isinstance(value, str):
        value = parse_bool(value)
    elif not isinstance(value, bool):
        raise ValueRangeError(f"{value!r} is not a boolean")
    return "true" if value else "false"


def _format_datetime_value(value: CwmpValue) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        raise ValueRangeError(f"{value!r} is not a datetime")
    return format_datetime(value)


def _bytes_formatter(encode: Callable[[bytes], str]) -> Callable[[CwmpValue], str]:
    def format_bytes(value: CwmpValue) -> str:
        if isinstance(value, str):
            return value
        if not isinstance(value, bytes):
            raise ValueRangeError(f"{value!r} is not bytes")
        return encode(value)

    return format_bytes


# One formatter per type, for the same reason as VALUE_PARSERS. A str is trusted as already being the wire form (a
# value kept verbatim from a device, or an operator's literal), except that it must still fit a numeric or boolean
# type.
VALUE_FORMATTERS: dict[XsdType, Callable[[CwmpValue], str]] = {
    XsdType.STRING: _format_string,
    **{xsd_type: _int_formatter(xsd_type) for xsd_type in _INT_RANGES},
    XsdType.BOOLEAN: _format_bool,
    XsdType.DATETIME: _format_datetime_value,
    XsdType.BASE64: _bytes_formatter(lambda data: base64.b64encode(data).decode("ascii")),
    XsdType.HEXBINARY: _bytes_formatter(bytes.hex),
}


def format_value(xsd_type: XsdType, value: CwmpValue) -> str:
    """A Python value to the exact text for its type (see VALUE_FORMATTERS). Raises ValueError when it does not
    fit."""
    return VALUE_FORMATTERS[xsd_type](value)
