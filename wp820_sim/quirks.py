"""Quirk switches: make one simulated phone speak like another real CWMP stack, for interop tests.

The default :class:`Quirks` is a well-behaved CWMP 1.2 phone: cookies kept, Digest authentication, the project
codec's schema-exact output without an XML declaration. Each switch reproduces one behaviour from FIELD-NOTES
("What real CPE stacks send"). Switches come in two kinds:

* **Output shape**, applied here by :func:`serialize_for` on top of :func:`cwmp_models.codec.serialize`:
  ``soap_env_prefix`` (``SOAP-ENV``/``SOAP-ENC`` prefixes with the 1999 ``xsi``/``xsd`` namespaces, as old gSOAP
  stacks write), ``padded_array_counts`` (``[0003]`` instead of ``[3]``), ``xml_declaration`` (start with
  ``<?xml ...?>``), ``cwmp_version`` (namespace and headers: 1.0 and 1.1 have their own namespaces, 1.2-1.4 share
  ``cwmp-1-2``; 1.4 announces ``SupportedCWMPVersions`` in its Inform) and ``versioned_namespace`` (1.3/1.4 sent in the
  non-standard ``cwmp-1-3``/``cwmp-1-4`` namespaces some stacks use). The result always parses with our own codec.
* **Behaviour**, read by the network layer: ``no_cookies`` (never return cookies), ``basic_only`` (answer a Digest
  challenge with Basic only), ``reuse_digest_nonce`` (one nonce with ``nc=00000001`` on every request) and
  ``reject_xml_declaration`` (refuse an ACS message that starts with an XML declaration; :meth:`Quirks.refusal`
  decides). ``config_kdf`` is the key derivation the phone's firmware uses for encrypted configuration files
  (:mod:`cwmp_models.gsconfig`), which Grandstream does not document.

``Quirks.parse("no_cookies,basic_only,cwmp=1.0,kdf=sha256")`` builds one from the CLI's text; :meth:`Quirks.spec`
gives that text back.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from cwmp_models import codec
from cwmp_models.envelope import (
    NS_CWMP_1_0,
    NS_CWMP_1_1,
    NS_CWMP_1_2,
    NS_CWMP_1_3,
    NS_CWMP_1_4,
    NS_XSD,
    NS_XSD_1999,
    NS_XSI,
    NS_XSI_1999,
    PROTOCOL_VERSIONS,
    Envelope,
)
from cwmp_models.gsconfig import KDFS, Kdf
from cwmp_models.messages import Inform

__all__ = ["Quirks", "QuirkError", "serialize_for"]

_FLAGS = (
    "no_cookies",
    "reject_xml_declaration",
    "basic_only",
    "reuse_digest_nonce",
    "soap_env_prefix",
    "padded_array_counts",
    "xml_declaration",
    "versioned_namespace",
)
_NAMESPACES = {
    "1.0": NS_CWMP_1_0,
    "1.1": NS_CWMP_1_1,
    "1.2": NS_CWMP_1_2,
    "1.3": NS_CWMP_1_2,
    "1.4": NS_CWMP_1_2,
}
_VERSIONED_NAMESPACES = {"1.3": NS_CWMP_1_3, "1.4": NS_CWMP_1_4}
_PADDED_WIDTH = 4
# The prefix in element and attribute names ("soap-env:Body") and in its declaration ("xmlns:soap-env=").
_SOAP_PREFIX = re.compile(r"\b(soap-env|soap-enc)(?=[:=])")
_ARRAY_COUNT = re.compile(r'(arrayType="[^"\[]*\[)(\d+)(\]")')


class QuirkError(ValueError):
    """A quirk specification that names an unknown switch or an unsupported value."""


@dataclass(frozen=True, slots=True)
class Quirks:
    no_cookies: bool = False
    reject_xml_declaration: bool = False
    basic_only: bool = False
    reuse_digest_nonce: bool = False
    soap_env_prefix: bool = False
    padded_array_counts: bool = False
    xml_declaration: bool = False
    versioned_namespace: bool = False
    cwmp_version: str = "1.2"
    config_kdf: Kdf = "md5"

    def __post_init__(self) -> None:
        if self.cwmp_version not in PROTOCOL_VERSIONS:
            raise QuirkError(f"cwmp version {self.cwmp_version!r} is not one of {', '.join(PROTOCOL_VERSIONS)}")
        if self.config_kdf not in KDFS:
            raise QuirkError(f"config kdf {self.config_kdf!r} is not one of {', '.join(KDFS)}")

    @classmethod
    def parse(cls, spec: str) -> "Quirks":
        """``"no_cookies,basic_only,cwmp=1.0,kdf=sha256"``: switch names turn a behaviour on; ``cwmp=`` and ``kdf=``
        choose values. Empty items are ignored, so ``""`` is the default phone."""
        values: dict[str, object] = {}
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            name, equals, value = item.partition("=")
            name = name.strip().replace("-", "_")
            if equals:
                option = {"cwmp": "cwmp_version", "kdf": "config_kdf"}.get(name)
                if option is None:
                    raise QuirkError(f"unknown quirk option {name!r} (expected cwmp= or kdf=)")
                values[option] = value.strip()
            elif name in _FLAGS:
                values[name] = True
            else:
                raise QuirkError(f"unknown quirk {name!r} (known: {', '.join(_FLAGS)}, cwmp=, kdf=)")
        return cls(**values)  # type: ignore[arg-type]

    def spec(self) -> str:
        """The canonical text :meth:`parse` reads back to an equal value."""
        default = Quirks()
        parts = [name for name in _FLAGS if getattr(self, name)]
        if self.cwmp_version != default.cwmp_version:
            parts.append(f"cwmp={self.cwmp_version}")
        if self.config_kdf != default.config_kdf:
            parts.append(f"kdf={self.config_kdf}")
        return ",".join(parts)

    @property
    def namespace(self) -> str:
        """The CWMP namespace this phone writes (and the schema generation whose RPCs it knows)."""
        if self.versioned_namespace and self.cwmp_version in _VERSIONED_NAMESPACES:
            return _VERSIONED_NAMESPACES[self.cwmp_version]
        return _NAMESPACES[self.cwmp_version]

    @property
    def supported_versions(self) -> str | None:
        """The ``SupportedCWMPVersions`` header of the Inform: CWMP 1.4 only (TR-069 A.3.2.2)."""
        if self.cwmp_version != "1.4":
            return None
        return ",".join(PROTOCOL_VERSIONS)

    def refusal(self, body: bytes) -> str | None:
        """Why this phone refuses an ACS message before parsing it, or None when it takes it."""
        if self.reject_xml_declaration and body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<?xml"):
            return "message starts with an XML declaration"
        return None


def serialize_for(quirks: Quirks, envelope: Envelope) -> bytes:
    """The bytes this phone sends for ``envelope``: the codec's output in the phone's namespace, with the phone's
    output quirks applied. An Inform from a CWMP 1.4 phone carries ``SupportedCWMPVersions``.

    Raises :class:`cwmp_models.codec.CwmpSerializeError` for a message the phone's namespace does not define.
    """
    changes: dict[str, object] = {"namespace": quirks.namespace}
    if isinstance(envelope.body, Inform) and envelope.supported_cwmp_versions is None:
        changes["supported_cwmp_versions"] = quirks.supported_versions
    data = codec.serialize(dataclasses.replace(envelope, **changes), xml_declaration=quirks.xml_declaration)
    if not (quirks.soap_env_prefix or quirks.padded_array_counts):
        return data
    return _rewrite_tags(data.decode("utf-8"), quirks).encode("utf-8")


def _rewrite_tags(xml: str, quirks: Quirks) -> str:
    # The codec escapes every "<" and ">" in text, and none of its attribute values contains either, so splitting at
    # "<" and stopping at the next ">" visits exactly the markup: text content is never touched.
    head, *pieces = xml.split("<")
    out = [head]
    for piece in pieces:
        tag, close, text = piece.partition(">")
        if quirks.soap_env_prefix:
            tag = _SOAP_PREFIX.sub(lambda m: m.group(1).upper(), tag)
            tag = tag.replace(f'"{NS_XSI}"', f'"{NS_XSI_1999}"').replace(f'"{NS_XSD}"', f'"{NS_XSD_1999}"')
        if quirks.padded_array_counts:
            tag = _ARRAY_COUNT.sub(lambda m: m.group(1) + m.group(2).zfill(_PADDED_WIDTH) + m.group(3), tag)
        out.append("<" + tag + close + text)
    return "".join(out)
