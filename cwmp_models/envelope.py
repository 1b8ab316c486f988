"""The SOAP envelope of one CWMP message: header fields, one body message, and the protocol version in use."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .messages import Message

NS_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NS_SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"
NS_XSD = "http://www.w3.org/2001/XMLSchema"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_XSI_1999 = "http://www.w3.org/1999/XMLSchema-instance"
NS_XSD_1999 = "http://www.w3.org/1999/XMLSchema"

NS_CWMP_1_0 = "urn:dslforum-org:cwmp-1-0"
NS_CWMP_1_1 = "urn:dslforum-org:cwmp-1-1"
NS_CWMP_1_2 = "urn:dslforum-org:cwmp-1-2"
# Not standard, but sent by some stacks for 1.3 / 1.4. We accept them and answer in them (the device evidently
# parses what it sends), while schema work treats them as 1-2.
NS_CWMP_1_3 = "urn:dslforum-org:cwmp-1-3"
NS_CWMP_1_4 = "urn:dslforum-org:cwmp-1-4"

CWMP_NAMESPACES = (NS_CWMP_1_0, NS_CWMP_1_1, NS_CWMP_1_2, NS_CWMP_1_3, NS_CWMP_1_4)

# Which schema generation a namespace belongs to (used for "which RPCs exist in this namespace").
SCHEMA_OF_NAMESPACE = {
    NS_CWMP_1_0: "1-0",
    NS_CWMP_1_1: "1-1",
    NS_CWMP_1_2: "1-2",
    NS_CWMP_1_3: "1-2",
    NS_CWMP_1_4: "1-2",
}
_SCHEMA_ORDER = {"1-0": 0, "1-1": 1, "1-2": 2}

PROTOCOL_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4")


def schema_defines(namespace: str, message_cls: type[Message]) -> bool:
    """Whether the CWMP schema of ``namespace`` has an element for this message (e.g. ChangeDUState needs 1-2)."""
    return _SCHEMA_ORDER[SCHEMA_OF_NAMESPACE[namespace]] >= _SCHEMA_ORDER[message_cls.SINCE]


def namespace_for_version(version: str) -> str:
    return {"1.0": NS_CWMP_1_0, "1.1": NS_CWMP_1_1}.get(version, NS_CWMP_1_2)


@dataclass(slots=True)
class Envelope:
    """One CWMP SOAP envelope. ``body`` is None for an empty envelope (an empty body element)."""

    body: Message | None
    id: str | None = None
    hold_requests: bool | None = None
    session_timeout: int | None = None
    supported_cwmp_versions: str | None = None
    use_cwmp_version: str | None = None
    no_more_requests: bool | None = None
    namespace: str = NS_CWMP_1_2

    @property
    def protocol_version(self) -> str:
        """The CWMP protocol version this envelope shows, from its namespace and the header elements it carries.

        1.2, 1.3 and 1.4 share a namespace; 1.3 added SessionTimeout and 1.4 SupportedCWMPVersions/UseCWMPVersion.
        An explicit version list or choice wins over inference.
        """
        # A header holding no readable version says nothing; the namespace and the other headers still do.
        for declared in (self.use_cwmp_version, self.supported_cwmp_versions):
            version = highest_version(declared or "")
            if version is not None:
                return version
        if self.namespace == NS_CWMP_1_0:
            return "1.0"
        if self.namespace == NS_CWMP_1_1:
            return "1.1"
        if self.namespace == NS_CWMP_1_4:
            return "1.4"
        if self.namespace == NS_CWMP_1_3 or self.session_timeout is not None:
            return "1.3"
        return "1.2"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


_VERSION_SEPARATORS = re.compile(r"[\s,;]+")


def parse_version_list(text: str) -> list[str]:
    """``SupportedCWMPVersions`` is a comma-separated list such as ``1.0,1.1,1.2,1.3,1.4``. Tolerate spaces (or
    semicolons) as separators and leading zeros; drop any entry that is not dotted ASCII digits."""
    versions = []
    for part in _VERSION_SEPARATORS.split(text):
        pieces = part.split(".")
        if part.isascii() and all(piece.isdigit() for piece in pieces):
            versions.append(".".join(str(int(piece)) for piece in pieces))
    return versions


def highest_version(text: str) -> str | None:
    """The highest version in a version list, or None when it holds none."""
    versions = parse_version_list(text)
    return max(versions, key=_version_key) if versions else None


def negotiate_version(supported_by_cpe: str, supported_by_acs: tuple[str, ...] = PROTOCOL_VERSIONS) -> str | None:
    """The version the ACS must put in ``UseCWMPVersion``: the highest both sides support (TR-069 A.3.2.2).
    None when there is no common version (the ACS then answers fault 8006)."""
    common = set(parse_version_list(supported_by_cpe)) & set(supported_by_acs)
    return max(common, key=_version_key) if common else None
