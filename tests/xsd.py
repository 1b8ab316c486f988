"""Offline validation of whole CWMP envelopes against the official Broadband Forum schemas.

Follows ../shared/reference/README.md: a resolver maps the SOAP and CWMP schema URLs to the local files and refuses
any other URL, and a small wrapper schema imports the envelope schema plus one CWMP schema.
"""

from __future__ import annotations

import functools

from lxml import etree

from tests.reference import REFERENCE

URL_MAP = {
    "http://schemas.xmlsoap.org/soap/envelope/": REFERENCE / "soap" / "soap-envelope-1-1.xsd",
    "http://schemas.xmlsoap.org/soap/encoding/": REFERENCE / "soap" / "soap-encoding-1-1.xsd",
    **{
        f"http://www.broadband-forum.org/cwmp/cwmp-1-{n}.xsd": REFERENCE / "bbf" / f"cwmp-1-{n}.xsd"
        for n in range(5)
    },
}

# Which schema file validates each namespace: 1.2, 1.3 and 1.4 share the cwmp-1-2 namespace; cwmp-1-4.xsd covers all.
SCHEMA_FOR_NAMESPACE = {
    "urn:dslforum-org:cwmp-1-0": "cwmp-1-0.xsd",
    "urn:dslforum-org:cwmp-1-1": "cwmp-1-1.xsd",
    "urn:dslforum-org:cwmp-1-2": "cwmp-1-4.xsd",
}


class _OfflineResolver(etree.Resolver):
    def resolve(self, url, public_id, context):
        path = URL_MAP.get(url)
        if path is None:
            for known, candidate in URL_MAP.items():
                if url.endswith(candidate.name) and url.startswith("http://www.broadband-forum.org/"):
                    path = candidate
        if path is None:
            raise ValueError(f"refusing to fetch {url}")
        return self.resolve_filename(str(path), context)


@functools.cache
def schema_for(namespace: str) -> etree.XMLSchema:
    cwmp_file = SCHEMA_FOR_NAMESPACE[namespace]
    wrapper = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:wrapper">
      <xs:import namespace="http://schemas.xmlsoap.org/soap/envelope/"
                 schemaLocation="http://schemas.xmlsoap.org/soap/envelope/"/>
      <xs:import namespace="{namespace}" schemaLocation="http://www.broadband-forum.org/cwmp/{cwmp_file}"/>
    </xs:schema>"""
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_OfflineResolver())
    doc = etree.fromstring(wrapper.encode(), parser, base_url=str(REFERENCE / "wrapper.xsd"))
    return etree.XMLSchema(etree.ElementTree(doc))


def validation_errors(xml: bytes, namespace: str) -> list[str]:
    schema = schema_for(namespace)
    doc = etree.fromstring(xml)
    if schema.validate(doc):
        return []
    return [f"{e.line}: {e.message}" for e in schema.error_log]
