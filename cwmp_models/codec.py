"""The CWMP SOAP codec: ``parse(bytes) -> Envelope`` and ``serialize(Envelope) -> bytes``.

Two rules shape it:

* **Strict out.** What we emit is exactly what the official schemas require (FIELD-NOTES "Versions and XML shape"):
  only the RPC element and header elements are namespace-qualified, always with the ``cwmp:`` prefix; every array
  carries ``soap-enc:arrayType="…[N]"``; every ``Value`` carries ``xsi:type``; ``cwmp:ID`` has
  ``mustUnderstand="1"``; schema length limits are enforced; no XML declaration unless asked for.
* **Lenient in, but never unsafe.** Any prefixes, 1999 or 2001 xsi, wrong or missing array counts, values without
  ``xsi:type``, odd booleans and dateTimes, unknown extra elements, qualified children — all accepted. Hostile XML
  (DTDs, entities, absurd depth or size, broken encodings) is refused with one typed error, :class:`CwmpParseError`.

Both directions are driven by the ``FIELDS`` tables of :mod:`cwmp_models.messages`, compiled once at import into
per-class plans, so parsing walks each element's children exactly once (FIELD-NOTES: ~3x faster than ``find()``).
"""

from __future__ import annotations

import re
from datetime import datetime
from itertools import chain
from typing import Any, Callable

from lxml import etree

from . import messages as m
from .envelope import (
    CWMP_NAMESPACES,
    NS_CWMP_1_2,
    NS_SOAP_ENC,
    NS_SOAP_ENV,
    NS_XSD,
    NS_XSI,
    NS_XSI_1999,
    Envelope,
    schema_defines,
)
from .schema import BOOL, DATETIME, INT, STR, UINT, ArrayKind, ChoiceKind, Field, Kind, RepeatedKind, StructKind
from .types import (
    UNKNOWN_TIME,
    VALUE_FORMATTERS,
    VALUE_READERS,
    XsdType,
    format_datetime,
    format_value,
    parse_bool,
    parse_datetime,
)

__all__ = [
    "CwmpError",
    "CwmpParseError",
    "CwmpSerializeError",
    "CwmpProtocolError",
    "parse",
    "serialize",
    "check_reply",
    "DEFAULT_MAX_SIZE",
]

DEFAULT_MAX_SIZE = 1 << 20


class CwmpError(Exception):
    """Base of the codec's errors. ``reason`` is short, safe to log and to show a device."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CwmpParseError(CwmpError):
    """Input that is not an acceptable CWMP envelope (malformed, hostile, or not CWMP)."""


class CwmpSerializeError(CwmpError, ValueError):
    """A message that cannot be emitted as schema-valid CWMP (a length limit, a bad value, an RPC unknown to the
    namespace)."""


class CwmpProtocolError(CwmpError):
    """A well-formed envelope that does not fit the exchange (e.g. a response to nothing, a wrong ID)."""


# --------------------------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------------------------

_ENVELOPE = f"{{{NS_SOAP_ENV}}}Envelope"
_HEADER = f"{{{NS_SOAP_ENV}}}Header"
_BODY = f"{{{NS_SOAP_ENV}}}Body"
_XSI_TYPE = f"{{{NS_XSI}}}type"
_XSI_TYPE_1999 = f"{{{NS_XSI_1999}}}type"
_SOAP_ENC_ARRAY_TYPE = f"{{{NS_SOAP_ENC}}}arrayType"


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_pis=False,  # kept so that parse() can refuse them: SOAP 1.1 forbids processing instructions
        remove_comments=True,
        collect_ids=False,
    )


# lxml parsers are reusable but not thread-safe; the reactor is single-threaded and tests that use threads create
# their own through parse(..., parser=...).
_PARSER = _new_parser()


def _local(tag: Any) -> str | None:
    if not isinstance(tag, str):  # comments and processing instructions have a function as tag
        return None
    if tag[0] == "{":
        return tag[tag.index("}") + 1 :]
    return tag


def _text(element: etree._Element) -> str:
    return element.text or ""


def _decode_int(element: etree._Element) -> int:
    try:
        return int(element.text)  # int() ignores surrounding whitespace itself
    except (TypeError, ValueError):  # TypeError: no text at all
        raise CwmpParseError(f"{_local(element.tag)}: not an integer") from None


def _decode_bool(element: etree._Element) -> bool:
    try:
        return parse_bool(_text(element))
    except ValueError:
        raise CwmpParseError(f"{_local(element.tag)}: not a boolean") from None


def _decode_datetime(element: etree._Element) -> datetime:
    # Real stacks occasionally send garbage here (CurrentTime "0", empty StartTime); the field is informational for
    # the ACS, so the unknown-time value is the honest reading rather than rejecting the whole message.
    try:
        return parse_datetime(_text(element))
    except ValueError:
        return UNKNOWN_TIME


_PVS = m.ParameterValueStruct
_STRING = XsdType.STRING

# xsi:type spellings seen so far, each mapped once to its type and value reader (None for strings, which need none):
# XsdType.from_wire is too slow to run for every value. Bounded, since the spellings come from devices.
_DECLARED_TYPES: dict[str, tuple[XsdType, Callable[[str], Any] | None]] = {}
_DECLARED_TYPES_MAX = 64


def _declared_type(declared: str | None) -> tuple[XsdType, Callable[[str], Any] | None]:
    found = _DECLARED_TYPES.get(declared)
    if found is None:
        value_type = XsdType.from_wire(declared)
        found = (value_type, VALUE_READERS[value_type])
        # A missing type is never cached: the list decoder's single lookup relies on it to send such a Value (perhaps
        # typed with 1999 xsi) to the general reader.
        if declared and len(_DECLARED_TYPES) < _DECLARED_TYPES_MAX:
            _DECLARED_TYPES[declared] = found
    return found


def _decode_parameter_value(element: etree._Element) -> m.ParameterValueStruct:
    """Any ParameterValueStruct, however it is written (see _decode_parameter_value_list for the usual shape)."""
    name = ""
    value_element = None
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag[0] == "{":
            tag = tag[tag.index("}") + 1 :]
        if tag == "Name":
            name = child.text or ""
        elif tag == "Value":
            value_element = child
    if value_element is None:
        return m.ParameterValueStruct(name, "", XsdType.STRING)
    declared = value_element.get(_XSI_TYPE) or value_element.get(_XSI_TYPE_1999) or value_element.get("type")
    value_type, read = _declared_type(declared)
    text = value_element.text or ""
    return _PVS(name, text if read is None else read(text), value_type)


def _decode_parameter_value_list(element: etree._Element) -> list[m.ParameterValueStruct]:
    # The hot path of every Inform and GetParameterValuesResponse, hence written out by hand. lxml walks the
    # unqualified Name and Value elements in C, in document order, taken two by two; in the usual shape they
    # alternate, one pair per ParameterValueStruct, each Value typed with 2001 xsi. Anything else
    # (qualified or extra children, 1999 xsi, no type, a missing element) is detected — by a tag out of turn or a pair
    # count that differs from the number of items — and the whole list goes through the general reader instead. The
    # arrayType count is ignored, as for every array.
    result: list[m.ParameterValueStruct] = []
    append = result.append
    declared_types = _DECLARED_TYPES
    pairs = element.iterdescendants("Name", "Value")
    for name_element in pairs:
        value_element = next(pairs, None)
        # Only Name and Value elements are walked, so pairs that each start with a Name and the pair count checked at
        # the end prove the alternation; a second tag check per pair would prove nothing more.
        if value_element is None or name_element.tag != "Name":
            return _decode_parameter_value_list_slowly(element)
        declared = value_element.get(_XSI_TYPE)
        entry = declared_types.get(declared)
        if entry is None:
            if not declared:
                return _decode_parameter_value_list_slowly(element)
            entry = _declared_type(declared)
        value_type, read = entry
        text = value_element.text or ""
        append(_PVS(name_element.text or "", text if read is None else read(text), value_type))
    if len(result) != len(element):
        return _decode_parameter_value_list_slowly(element)
    return result


def _decode_parameter_value_list_slowly(element: etree._Element) -> list[m.ParameterValueStruct]:
    return [_decode_parameter_value(item) for item in element if isinstance(item.tag, str)]


Decoder = Callable[[etree._Element], Any]


def _array_decoder(kind: ArrayKind) -> Decoder:
    item = _decoder(kind.item)
    max_items = kind.max_items

    def decode(element: etree._Element) -> list:
        # The arrayType count is ignored: devices pad it, get it wrong or leave it out. The children are the truth.
        items = [item(child) for child in element if isinstance(child.tag, str)]
        if max_items is not None and len(items) > max_items:
            raise CwmpParseError(f"{_local(element.tag)}: more than {max_items} items")
        return items

    return decode


def _choice_decoder(kind: ChoiceKind) -> Decoder:
    by_name = {name: _struct_decoder(cls) for name, cls in kind.choices}

    def decode(element: etree._Element) -> Any:
        declared = (element.get(_XSI_TYPE) or element.get(_XSI_TYPE_1999) or "").rpartition(":")[2]
        decoder = by_name.get(declared)
        if decoder is None:
            raise CwmpParseError(f"{_local(element.tag)}: unknown xsi:type {_excerpt(declared) or '(none)'}")
        return decoder(element)

    return decode


def _decoder(kind: Kind) -> Decoder:
    if kind is STR:
        return _text
    if kind is INT or kind is UINT:
        return _decode_int
    if kind is BOOL:
        return _decode_bool
    if kind is DATETIME:
        return _decode_datetime
    if isinstance(kind, StructKind):
        if kind.cls is m.ParameterValueStruct:
            return _decode_parameter_value
        return _struct_decoder(kind.cls)
    if isinstance(kind, ArrayKind):
        if kind == m.PARAMETER_VALUE_LIST:
            return _decode_parameter_value_list
        return _array_decoder(kind)
    if isinstance(kind, ChoiceKind):
        return _choice_decoder(kind)
    raise AssertionError(f"no decoder for {kind!r}")


_STRUCT_DECODERS: dict[type, Decoder] = {}


def _struct_decoder(cls: type) -> Decoder:
    if cls in _STRUCT_DECODERS:
        return _STRUCT_DECODERS[cls]
    plan: dict[str, tuple[str, Decoder, bool]] = {}
    repeated_attrs = []
    for spec in cls.FIELDS:
        repeated = isinstance(spec.kind, RepeatedKind)
        inner = spec.kind.item if repeated else spec.kind
        plan[spec.tag] = (spec.attr, _decoder(inner), repeated)
        if repeated:
            repeated_attrs.append(spec.attr)
    name = getattr(cls, "NAME", cls.__name__)

    def decode(element: etree._Element) -> Any:
        values: dict[str, Any] = {attr: [] for attr in repeated_attrs} if repeated_attrs else {}
        for child in element[:]:  # a slice is built in C: cheaper than iterating the element
            tag = child.tag
            entry = plan.get(tag)  # children are unqualified, as the schema says, nearly always
            if entry is None:
                if not isinstance(tag, str) or tag[0] != "{":
                    continue  # unknown extra elements are tolerated
                entry = plan.get(tag[tag.index("}") + 1 :])
                if entry is None:
                    continue
            attr, decoder, repeated = entry
            if repeated:
                values[attr].append(decoder(child))
            else:
                values[attr] = decoder(child)
        try:
            return cls(**values)
        except TypeError:
            missing = [spec.tag for spec in cls.FIELDS if spec.attr not in values]
            raise CwmpParseError(f"{name}: missing {', '.join(missing) or 'fields'}") from None

    _STRUCT_DECODERS[cls] = decode
    return decode


_MESSAGE_DECODERS: dict[str, Decoder] = {
    cls.NAME: _struct_decoder(cls) for cls in m.ALL_MESSAGES if cls is not m.Fault
}


def _decode_soap_fault(element: etree._Element) -> tuple[m.Fault, str | None]:
    """The Fault, and the CWMP namespace of its detail (a fault answering a request carries no other sign of the
    device's namespace when the ID header is absent)."""
    faultstring = ""
    cwmp_fault = None
    for child in element:
        tag = _local(child.tag)
        if tag == "faultstring":
            faultstring = _text(child)
        elif tag == "detail":
            for entry in child:
                if _local(entry.tag) == "Fault":
                    cwmp_fault = entry
    if cwmp_fault is None:
        # A bare SOAP fault has no CWMP code; 0 marks "no code given" and keeps the SOAP text for the record.
        return m.Fault(0, faultstring), None
    namespace = _namespace_of(cwmp_fault.tag)
    return _FAULT_DECODER(cwmp_fault), namespace if namespace in CWMP_NAMESPACES else None


_FAULT_DECODER = _struct_decoder(m.Fault)


def _decode_obsolete_bool(element: etree._Element) -> bool | None:
    # NoMoreRequests is obsolete (FIELD-NOTES: tolerate, ignore): a value we cannot read is dropped, not fatal.
    try:
        return parse_bool(_text(element))
    except ValueError:
        return None


_HEADER_FIELDS: dict[str, tuple[str, Decoder]] = {
    "ID": ("id", _text),
    "HoldRequests": ("hold_requests", _decode_bool),
    "SessionTimeout": ("session_timeout", _decode_int),
    "SupportedCWMPVersions": ("supported_cwmp_versions", _text),
    "UseCWMPVersion": ("use_cwmp_version", _text),
    "NoMoreRequests": ("no_more_requests", _decode_obsolete_bool),
}

# The XML declaration and the encoding it names. CWMP is UTF-8 in practice; US-ASCII and ISO-8859-1 are accepted
# because, like UTF-8, they write markup as plain ASCII bytes, which the byte-level checks in parse() rely on.
_DECLARATION = re.compile(rb"(?:\xef\xbb\xbf)?<\?xml\s[^>]*>")
_DECLARED_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
_ACCEPTED_ENCODINGS = {b"utf-8", b"utf8", b"us-ascii", b"ascii", b"iso-8859-1", b"iso8859-1", b"latin1", b"latin-1"}


def _namespace_of(tag: str) -> str | None:
    if tag[0] == "{":
        return tag[1 : tag.index("}")]
    return None


def parse(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE, parser: etree.XMLParser | None = None) -> Envelope:
    """Parse one CWMP envelope. Raises :class:`CwmpParseError` with a short reason for anything unacceptable."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CwmpParseError("input is not bytes")
    if len(data) > max_size:
        raise CwmpParseError(f"envelope larger than {max_size} bytes")
    data = bytes(data)
    if not data.strip():
        raise CwmpParseError("empty document")
    # UTF-16 and UTF-32 put NUL bytes between ASCII characters (and no XML may hold a NUL): refusing them, and any
    # declared encoding that does not write markup as ASCII, keeps the byte-level checks below sound.
    if b"\x00" in data:
        raise CwmpParseError("NUL bytes: not UTF-8 (UTF-16 and UTF-32 are not accepted)")
    declaration = _DECLARATION.match(data)
    if declaration is not None:
        encoding = _DECLARED_ENCODING.search(declaration.group())
        if encoding is not None and encoding.group(1).lower() not in _ACCEPTED_ENCODINGS:
            named = _excerpt(encoding.group(1).decode("ascii", "replace"))
            raise CwmpParseError(f"encoding {named!r} is not accepted; send UTF-8")
    # SOAP forbids DTDs; refusing before parsing also means no entity, however nested, is ever looked at.
    # Entities can only be declared inside a DOCTYPE, and "<!doctype" is not XML at all, so one marker is enough.
    # Most envelopes hold no "!" at all (it opens every DOCTYPE, comment and CDATA section), and looking for one byte
    # is several times cheaper than looking for nine.
    may_declare = b"!" in data
    if may_declare and b"<!DOCTYPE" in data:
        raise CwmpParseError("DOCTYPE or ENTITY declarations are not allowed")
    try:
        root = etree.fromstring(data, parser or _PARSER)
    except etree.XMLSyntaxError as exc:
        raise CwmpParseError(f"malformed XML: {_short(exc)}") from None
    except (ValueError, etree.LxmlError) as exc:
        raise CwmpParseError(f"unreadable XML: {_short(exc)}") from None
    if may_declare and root.getroottree().docinfo.doctype:
        raise CwmpParseError("DOCTYPE declarations are not allowed")
    # SOAP 1.1 forbids processing instructions too. Every one starts with "<?"; past the XML declaration most
    # envelopes hold no "?" at all, and when one does (a URL's query), the tree is walked for them in C, which is
    # cheaper than scanning the bytes for the two-byte marker.
    if data.find(b"?", declaration.end() if declaration else 0) >= 0 and _holds_processing_instruction(root):
        raise CwmpParseError("processing instructions are not allowed")
    if root.tag != _ENVELOPE:
        raise CwmpParseError(f"root element is {_excerpt(_local(root.tag) or '')!r}, not a SOAP 1.1 Envelope")

    header = body = None
    for child in root:
        tag = child.tag
        if tag == _HEADER:
            header = child
        elif tag == _BODY:
            body = child
    if body is None:
        raise CwmpParseError("envelope has no Body")

    envelope = Envelope(None)
    namespace = None
    if header is not None:
        for child in header:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            entry = _HEADER_FIELDS.get(_local(tag))
            if entry is None:
                continue
            attr, decoder = entry
            setattr(envelope, attr, decoder(child))
            child_ns = _namespace_of(tag)
            if child_ns in CWMP_NAMESPACES:
                namespace = child_ns

    entries = [child for child in body if isinstance(child.tag, str)]
    if len(entries) > 1:
        raise CwmpParseError(f"Body holds {len(entries)} elements; CWMP allows one")
    if entries:
        element = entries[0]
        name = _local(element.tag)
        element_ns = _namespace_of(element.tag)
        if name == "Fault" and element_ns == NS_SOAP_ENV:
            envelope.body, fault_namespace = _decode_soap_fault(element)
            namespace = namespace or fault_namespace
        else:
            decoder = _MESSAGE_DECODERS.get(name)
            if decoder is None:
                raise CwmpParseError(f"unknown CWMP method {_excerpt(name)!r}")
            if element_ns is not None and element_ns not in CWMP_NAMESPACES:
                raise CwmpParseError(f"{name} is in unknown namespace {_excerpt(element_ns)!r}")
            envelope.body = decoder(element)
            namespace = element_ns or namespace
    envelope.namespace = namespace or NS_CWMP_1_2
    return envelope


def _holds_processing_instruction(root: etree._Element) -> bool:
    found = chain(root.itersiblings(etree.PI, preceding=True), root.itersiblings(etree.PI), root.iter(etree.PI))
    return next(found, None) is not None


def _excerpt(text: str, limit: int = 40) -> str:
    """At most ``limit`` characters of device-supplied text for an error reason: enough to recognise, never a dump."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


_LONG_WORD = re.compile(r"\S{41,}")


def _short(exc: Exception) -> str:
    # libxml2's messages quote names from the input ("tag mismatch: <name> line 1 and ..."): keep their shape, but
    # never more than an excerpt of any one of them.
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return _LONG_WORD.sub(lambda word: _excerpt(word.group()), text)[:160]


# --------------------------------------------------------------------------------------------------------------------
# Serializing
# --------------------------------------------------------------------------------------------------------------------

# XML 1.0 cannot carry these at all, escaped or not.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
# Both checks in one pattern, so text needing no care (nearly all of it) costs one search.
_NEEDS_CARE = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _escape(text: str, where: str) -> str:
    if not _NEEDS_CARE.search(text):
        return text
    if _XML_FORBIDDEN.search(text):
        raise CwmpSerializeError(f"{where}: contains a character XML cannot carry")
    return text.translate(_ESCAPES)


Encoder = Callable[[Any, str, list], None]


def _check_len(text: str, limit: int | None, where: str) -> None:
    if limit is not None and len(text) > limit:
        raise CwmpSerializeError(f"{where}: longer than {limit} characters")


def _scalar_encoder(kind: Kind, max_len: int | None) -> Encoder:
    if kind is STR:

        def encode_str(value: Any, tag: str, out: list) -> None:
            if not isinstance(value, str):
                raise CwmpSerializeError(f"{tag}: expected a string, got {type(value).__name__}")
            if max_len is not None and len(value) > max_len:
                raise CwmpSerializeError(f"{tag}: longer than {max_len} characters")
            out.append(f"<{tag}>{_escape(value, tag)}</{tag}>")

        return encode_str
    xsd = {INT: XsdType.INT, UINT: XsdType.UNSIGNED_INT, BOOL: XsdType.BOOLEAN}.get(kind)
    if xsd is not None:
        formatter = VALUE_FORMATTERS[xsd]

        def encode_number(value: Any, tag: str, out: list) -> None:
            try:
                text = formatter(value)
            except ValueError as exc:
                raise CwmpSerializeError(f"{tag}: {exc}") from None
            out.append(f"<{tag}>{text}</{tag}>")

        return encode_number
    if kind is DATETIME:

        def encode_datetime(value: Any, tag: str, out: list) -> None:
            if not isinstance(value, datetime):
                raise CwmpSerializeError(f"{tag}: expected a datetime")
            out.append(f"<{tag}>{format_datetime(value)}</{tag}>")

        return encode_datetime
    raise AssertionError(kind)


_VALUE_START = {value_type: f'<Value xsi:type="xsd:{value_type.wire_name}">' for value_type in XsdType}


def _encode_parameter_value_list(values: Any, tag: str, out: list) -> None:
    # The hot path of every SetParameterValues (and of the simulator's Informs and GetParameterValuesResponses),
    # hence written out by hand. Names and texts are checked for characters needing care in one pass over all of
    # them; only when one is found is each escaped (or refused) on its own.
    items = list(values or ())
    body: list[str] = []
    content: list[str] = []
    for item in items:
        if not isinstance(item, _PVS):
            raise CwmpSerializeError(f"{tag}: expected ParameterValueStruct, got {type(item).__name__}")
        name = item.name
        value = item.value
        value_type = item.type
        start = _VALUE_START.get(value_type)
        if start is None:
            raise CwmpSerializeError(f"Value of {_excerpt(name)}: type is not an XsdType")
        if value_type is _STRING and value.__class__ is str:
            text = value
        else:
            try:
                text = VALUE_FORMATTERS[value_type](value)
            except ValueError:
                # The value itself stays out of the message: it may be a secret.
                raise CwmpSerializeError(f"Value of {_excerpt(name)}: not a valid {value_type.value}") from None
        if len(name) > 256:
            raise CwmpSerializeError("ParameterValueStruct Name: longer than 256 characters")
        content.append(name)
        content.append(text)
        body.append(f"<ParameterValueStruct><Name>{name}</Name>{start}{text}</Value></ParameterValueStruct>")
    if _NEEDS_CARE.search("".join(content)):
        body = [
            f"<ParameterValueStruct><Name>{_escape(item.name, 'Name')}</Name>{_VALUE_START[item.type]}"
            f"{_escape(text, _excerpt(item.name))}</Value></ParameterValueStruct>"
            for item, text in zip(items, content[1::2])
        ]
    out.append(f'<{tag} soap-enc:arrayType="cwmp:ParameterValueStruct[{len(items)}]">')
    out.extend(body)
    out.append(f"</{tag}>")


def _struct_encoder(cls: type) -> Encoder:
    plan = [(spec.attr, spec.tag, _field_encoder(spec), spec.optional) for spec in cls.FIELDS]

    def encode_struct(value: Any, tag: str, out: list, type_attr: str = "") -> None:
        if not isinstance(value, cls):
            raise CwmpSerializeError(f"{tag}: expected {cls.__name__}, got {type(value).__name__}")
        out.append(f"<{tag}{type_attr}>")
        for attr, child_tag, encoder, optional in plan:
            child = getattr(value, attr)
            if child is None and optional:
                continue
            encoder(child, child_tag, out)
        out.append(f"</{tag}>")

    return encode_struct


def _field_encoder(spec: Field) -> Encoder:
    kind = spec.kind
    if isinstance(kind, RepeatedKind):
        item = _kind_encoder(kind.item, spec.max_len)

        def encode_repeated(values: Any, tag: str, out: list) -> None:
            for value in values or ():
                item(value, tag, out)

        return encode_repeated
    return _kind_encoder(kind, spec.max_len)


def _kind_encoder(kind: Kind, max_len: int | None) -> Encoder:
    if isinstance(kind, StructKind):
        return _struct_encoder(kind.cls)
    if isinstance(kind, ArrayKind):
        if kind == m.PARAMETER_VALUE_LIST:
            return _encode_parameter_value_list
        return _array_encoder(kind)
    if isinstance(kind, ChoiceKind):
        return _choice_encoder(kind)
    return _scalar_encoder(kind, max_len)


def _array_encoder(kind: ArrayKind) -> Encoder:
    item = _kind_encoder(kind.item, kind.item_max_len)
    item_tag = kind.item_tag
    array_type = kind.array_type
    max_items = kind.max_items

    def encode_array(values: Any, tag: str, out: list) -> None:
        values = list(values or ())
        if max_items is not None and len(values) > max_items:
            raise CwmpSerializeError(f"{tag}: more than {max_items} items")
        out.append(f'<{tag} soap-enc:arrayType="{array_type}[{len(values)}]">')
        for value in values:
            item(value, item_tag, out)
        out.append(f"</{tag}>")

    return encode_array


def _choice_encoder(kind: ChoiceKind) -> Encoder:
    by_class = {cls: (name, _struct_encoder(cls)) for name, cls in kind.choices}

    def encode_choice(value: Any, tag: str, out: list) -> None:
        entry = by_class.get(type(value))
        if entry is None:
            raise CwmpSerializeError(f"{tag}: {type(value).__name__} is not an allowed operation")
        name, encoder = entry
        encoder(value, tag, out, f' xsi:type="cwmp:{name}"')

    return encode_choice


_MESSAGE_ENCODERS: dict[type, Encoder] = {cls: _struct_encoder(cls) for cls in m.ALL_MESSAGES}


def _encode_body(message: m.Message, out: list) -> None:
    if isinstance(message, m.Fault):
        code = message.fault_code
        if not (8000 <= code <= 8899 or 9000 <= code <= 9899):
            raise CwmpSerializeError(f"Fault: code {code} is outside 8000-8899 / 9000-9899")
        out.append(
            f"<soap-env:Fault><faultcode>{message.soap_fault_code}</faultcode>"
            "<faultstring>CWMP fault</faultstring><detail>"
        )
        _MESSAGE_ENCODERS[m.Fault](message, "cwmp:Fault", out)
        out.append("</detail></soap-env:Fault>")
        return
    encoder = _MESSAGE_ENCODERS.get(type(message))
    if encoder is None:
        raise CwmpSerializeError(f"{type(message).__name__} is not a CWMP message")
    encoder(message, f"cwmp:{message.NAME}", out)


def _encode_header(envelope: Envelope, out: list) -> None:
    parts = []
    if envelope.id is not None:
        _check_len(envelope.id, 256, "ID")  # not limited by the schema; a bound keeps a device's garbage out
        parts.append(f'<cwmp:ID soap-env:mustUnderstand="1">{_escape(envelope.id, "ID")}</cwmp:ID>')
    if envelope.hold_requests is not None:
        parts.append(
            f'<cwmp:HoldRequests soap-env:mustUnderstand="1">{"true" if envelope.hold_requests else "false"}'
            "</cwmp:HoldRequests>"
        )
    if envelope.session_timeout is not None:
        try:
            text = format_value(XsdType.UNSIGNED_INT, envelope.session_timeout)
        except ValueError as exc:
            raise CwmpSerializeError(f"SessionTimeout: {exc}") from None
        parts.append(f"<cwmp:SessionTimeout>{text}</cwmp:SessionTimeout>")
    if envelope.supported_cwmp_versions is not None:
        text = _escape(envelope.supported_cwmp_versions, "SupportedCWMPVersions")
        parts.append(f'<cwmp:SupportedCWMPVersions soap-env:mustUnderstand="0">{text}</cwmp:SupportedCWMPVersions>')
    if envelope.use_cwmp_version is not None:
        text = _escape(envelope.use_cwmp_version, "UseCWMPVersion")
        parts.append(f'<cwmp:UseCWMPVersion soap-env:mustUnderstand="1">{text}</cwmp:UseCWMPVersion>')
    if envelope.no_more_requests is not None:
        parts.append(f"<cwmp:NoMoreRequests>{'1' if envelope.no_more_requests else '0'}</cwmp:NoMoreRequests>")
    if parts:
        out.append("<soap-env:Header>")
        out.extend(parts)
        out.append("</soap-env:Header>")


_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def serialize(envelope: Envelope, *, xml_declaration: bool = False) -> bytes:
    """Emit ``envelope`` exactly as the CWMP schema of its namespace requires. Raises :class:`CwmpSerializeError`."""
    namespace = envelope.namespace
    if namespace not in CWMP_NAMESPACES:
        raise CwmpSerializeError(f"unknown CWMP namespace {namespace!r}")
    body = envelope.body
    if body is not None and not isinstance(body, m.Fault) and not schema_defines(namespace, type(body)):
        raise CwmpSerializeError(f"{body.NAME} does not exist in namespace {namespace}")
    out: list[str] = [_XML_DECLARATION] if xml_declaration else []
    out.append(
        f'<soap-env:Envelope xmlns:soap-env="{NS_SOAP_ENV}" xmlns:soap-enc="{NS_SOAP_ENC}" '
        f'xmlns:xsd="{NS_XSD}" xmlns:xsi="{NS_XSI}" xmlns:cwmp="{namespace}">'
    )
    _encode_header(envelope, out)
    if body is None:
        out.append("<soap-env:Body/>")
    else:
        out.append("<soap-env:Body>")
        _encode_body(body, out)
        out.append("</soap-env:Body>")
    out.append("</soap-env:Envelope>")
    return "".join(out).encode("utf-8")


# --------------------------------------------------------------------------------------------------------------------
# Matching a reply to the request it answers
# --------------------------------------------------------------------------------------------------------------------


def check_reply(reply: Envelope, outstanding: tuple[str, type[m.Message]] | None) -> m.Message:
    """Check that ``reply`` answers the request we have outstanding (its ``cwmp:ID`` and request class).

    Returns the response message (or the Fault). Raises :class:`CwmpProtocolError` for a response or fault that
    answers nothing, a wrong ID, or a response of the wrong kind.
    """
    body = reply.body
    if body is None:
        raise CwmpProtocolError("empty envelope where a response was expected")
    is_answer = isinstance(body, m.Fault) or body.is_response
    if outstanding is None:
        if is_answer:
            raise CwmpProtocolError(f"{body.NAME} answers no outstanding request")
        raise CwmpProtocolError(f"unexpected {body.NAME}")
    request_id, request_cls = outstanding
    if reply.id is not None and reply.id != request_id:
        raise CwmpProtocolError(
            f"reply ID {_excerpt(reply.id)!r} does not match request ID {_excerpt(request_id)!r}"
        )
    if isinstance(body, m.Fault):
        return body
    if request_cls.RESPONSE is not type(body):
        raise CwmpProtocolError(f"{body.NAME} does not answer {request_cls.NAME}")
    return body
