"""Reproduce the evidence behind the "spyne" section of docs/decisions.md.

Run by hand (not by the test suite), from the repository root, with any Python 3.11+:

    python bench/spyne_evidence.py

For each interpreter it creates a throw-away venv in a temporary directory, installs ``spyne==2.14.0 lxml twisted``
with pip, and records:

1. ``import spyne``: success or the last traceback line, plus the root cause found in spyne's vendored ``six``;
2. ``import spyne.server.twisted`` with whatever Twisted pip installed;
3. where spyne imports: an Inform envelope serialized by spyne's Soap11 output in three configurations (plain
   spyne; every member customized with ``sub_ns=""``; that plus hand-written arrayType / xsi:type attributes), each
   checked for namespace-qualified children, ``soap-enc:arrayType`` and ``xsi:type`` on ``Value`` and validated
   against the official ``cwmp-1-4.xsd`` offline (a hand-written Inform is validated first, so a validator fault
   cannot pass for a spyne fault); what spyne's ``element_form_default`` flag changes; whether spyne's input side
   parses that hand-written Inform; where spyne mentions ``arrayType`` at all.

Every step records its own failure and the script carries on; the temporary venvs are always removed. The report is
printed as Markdown. The probes run inside each venv by re-invoking this file with ``--probe``, so this file imports
only the standard library at module level.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

DEFAULT_PYTHONS = (
    "/root/.pyenv/versions/3.11.7/bin/python3",
    "/root/.pyenv/versions/3.12.1/bin/python3",
    "/root/.pyenv/versions/3.13.0/bin/python3",
)
PACKAGES = ("spyne==2.14.0", "lxml", "twisted")
DEFAULT_REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"

PIP_TIMEOUT_S = 900
PROBE_TIMEOUT_S = 180

NS_CWMP = "urn:dslforum-org:cwmp-1-2"
NS_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NS_SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"

Result = dict[str, Any]


# --------------------------------------------------------------------------------------------------------------------
# Offline validation against the official CWMP schema (runs inside a venv that has lxml).
# --------------------------------------------------------------------------------------------------------------------

# Imports and includes in the CWMP schemas are http URLs; map each to its local copy and refuse anything else, so a
# validation can never reach the network.
def _schema_locations(reference: Path) -> dict[str, Path]:
    locations = {
        "http://schemas.xmlsoap.org/soap/envelope/": reference / "soap" / "soap-envelope-1-1.xsd",
        "http://schemas.xmlsoap.org/soap/encoding/": reference / "soap" / "soap-encoding-1-1.xsd",
    }
    for minor in range(5):
        locations[f"http://www.broadband-forum.org/cwmp/cwmp-1-{minor}.xsd"] = reference / "bbf" / f"cwmp-1-{minor}.xsd"
    return locations


_WRAPPER_SCHEMA = b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:import namespace="http://schemas.xmlsoap.org/soap/envelope/"
             schemaLocation="http://schemas.xmlsoap.org/soap/envelope/"/>
  <xs:import namespace="urn:dslforum-org:cwmp-1-2"
             schemaLocation="http://www.broadband-forum.org/cwmp/cwmp-1-4.xsd"/>
</xs:schema>"""


def load_cwmp_schema(reference: Path) -> Any:
    from lxml import etree

    locations = _schema_locations(reference)

    class OfflineResolver(etree.Resolver):
        def resolve(self, url: str, pubid: str, context: Any) -> Any:
            if url in locations:
                return self.resolve_filename(str(locations[url]), context)
            if url.startswith(("http:", "https:")):
                raise ValueError(f"schema location {url!r} has no local copy; refusing to fetch it")
            return None

    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(OfflineResolver())
    return etree.XMLSchema(etree.fromstring(_WRAPPER_SCHEMA, parser))


def validation_errors(schema: Any, envelope: bytes) -> list[str]:
    from lxml import etree

    if schema.validate(etree.fromstring(envelope)):
        return []
    return [f"{error.type_name}: {error.message}" for error in schema.error_log]


# A hand-written Inform as the CWMP schema wants it: the positive control for the validator.
REFERENCE_INFORM = b"""<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:soap-enc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="urn:dslforum-org:cwmp-1-2">
  <soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">1</cwmp:ID></soap-env:Header>
  <soap-env:Body>
    <cwmp:Inform>
      <DeviceId><Manufacturer>Grandstream</Manufacturer><OUI>000B82</OUI><ProductClass>WP820</ProductClass>
        <SerialNumber>1</SerialNumber></DeviceId>
      <Event soap-enc:arrayType="cwmp:EventStruct[1]">
        <EventStruct><EventCode>1 BOOT</EventCode><CommandKey></CommandKey></EventStruct></Event>
      <MaxEnvelopes>1</MaxEnvelopes><CurrentTime>2026-11-27T00:00:00Z</CurrentTime><RetryCount>0</RetryCount>
      <ParameterList soap-enc:arrayType="cwmp:ParameterValueStruct[1]">
        <ParameterValueStruct><Name>Device.DeviceInfo.SoftwareVersion</Name>
          <Value xsi:type="xsd:string">1.0.3.1</Value></ParameterValueStruct></ParameterList>
    </cwmp:Inform>
  </soap-env:Body>
</soap-env:Envelope>"""


def describe_envelope(envelope: bytes, schema: Any) -> Result:
    """What matters to a CWMP peer about one serialized Inform envelope."""
    from lxml import etree

    root = etree.fromstring(envelope)
    rpc = root.find(f"{{{NS_SOAP_ENV}}}Body")[0]
    descendants = list(rpc.iterdescendants(tag=etree.Element))
    qualified = [etree.QName(element).localname for element in descendants if etree.QName(element).namespace]
    arrays = [element for element in rpc if etree.QName(element).localname in ("Event", "ParameterList")]
    values = [element for element in descendants if etree.QName(element).localname == "Value"]
    return {
        "rpc_element": f"{rpc.prefix}:{etree.QName(rpc).localname}",
        "children": len(descendants),
        "qualified_children": len(qualified),
        "first_qualified": qualified[:3],
        "arrayType_on_arrays": [element.get(f"{{{NS_SOAP_ENC}}}arrayType") for element in arrays],
        "xsi_type_on_Value": [element.get(f"{{{NS_XSI}}}type") for element in values],
        "namespace_declarations_on_Envelope": len(root.nsmap),
        "xml_declaration": envelope.lstrip().startswith(b"<?xml"),
        "schema_errors": validation_errors(schema, envelope),
        "envelope": envelope.decode("utf-8"),
    }


# --------------------------------------------------------------------------------------------------------------------
# spyne probes (run inside a venv where ``import spyne`` works).
# --------------------------------------------------------------------------------------------------------------------

def build_inform_app(*, unqualified: bool, hand_encoded: bool) -> tuple[Any, tuple[Any, ...]]:
    """A spyne Application whose ``Inform`` method mirrors the CWMP Inform, and the arguments of one Inform call.

    ``unqualified`` customizes every member with ``sub_ns=""``: spyne has no element-form switch for its serializer,
    and an empty sub-namespace is the only lever that yields ``{}Name`` (no namespace) from its tag builder.
    ``hand_encoded`` replaces spyne's ``Array`` with wrapper classes that carry ``soap-enc:arrayType`` as a plain
    attribute, and ``Value`` with a class that carries ``xsi:type`` as a plain attribute, both filled in by the caller;
    spyne itself writes neither.
    """
    from datetime import datetime, timezone

    from spyne import (
        Application,
        Array,
        ComplexModel,
        DateTime,
        ServiceBase,
        Unicode,
        UnsignedInteger,
        XmlAttribute,
        XmlData,
        rpc,
    )
    from spyne.protocol.soap import Soap11

    def member(spyne_type: Any) -> Any:
        return spyne_type.customize(sub_ns="") if unqualified else spyne_type

    def text(max_len: int | None = None) -> Any:
        return member(Unicode(max_len=max_len) if max_len else Unicode)

    class DeviceIdStruct(ComplexModel):
        __namespace__ = NS_CWMP
        _type_info = [("Manufacturer", text(64)), ("OUI", text(6)), ("ProductClass", text(64)),
                      ("SerialNumber", text(64))]

    class EventStruct(ComplexModel):
        __namespace__ = NS_CWMP
        _type_info = [("EventCode", text(64)), ("CommandKey", text(32))]

    class TypedValue(ComplexModel):
        __namespace__ = NS_CWMP
        _type_info = [("type", XmlAttribute(Unicode, ns=NS_XSI)), ("text", XmlData(Unicode))]

    class ParameterValueStruct(ComplexModel):
        __namespace__ = NS_CWMP
        _type_info = [("Name", text(256)), ("Value", member(TypedValue) if hand_encoded else text())]

    class EventList(ComplexModel):
        __namespace__ = NS_CWMP
        _type_info = [("arrayType", XmlAttribute(Unicode, ns=NS_SOAP_ENC)),
                      ("EventStruct", member(EventStruct).customize(max_occurs="unbounded"))]

    class ParameterValueList(ComplexModel):
        __namespace__ = NS_CWMP
        _type_info = [("arrayType", XmlAttribute(Unicode, ns=NS_SOAP_ENC)),
                      ("ParameterValueStruct", member(ParameterValueStruct).customize(max_occurs="unbounded"))]

    events = [EventStruct(EventCode="1 BOOT", CommandKey="")]
    if hand_encoded:
        # The prefixes are spyne's own ("tns" is hard-coded for the target namespace, "xs" for XML Schema); "xs"
        # is declared on the envelope only because cleanup_namespaces is off below.
        parameters = [ParameterValueStruct(Name="Device.DeviceInfo.SoftwareVersion",
                                           Value=TypedValue(type="xs:string", text="1.0.3.1"))]
        event_type, parameter_list_type = member(EventList), member(ParameterValueList)
        event_arg = EventList(arrayType=f"tns:EventStruct[{len(events)}]", EventStruct=events)
        parameter_arg = ParameterValueList(arrayType=f"tns:ParameterValueStruct[{len(parameters)}]",
                                           ParameterValueStruct=parameters)
    else:
        parameters = [ParameterValueStruct(Name="Device.DeviceInfo.SoftwareVersion", Value="1.0.3.1")]
        event_type, parameter_list_type = member(Array(EventStruct)), member(Array(ParameterValueStruct))
        event_arg, parameter_arg = events, parameters

    class Cwmp(ServiceBase):
        @rpc(member(DeviceIdStruct), event_type, member(UnsignedInteger), member(DateTime), member(UnsignedInteger),
             parameter_list_type, _in_message_name="Inform")
        def Inform(ctx, DeviceId, Event, MaxEnvelopes, CurrentTime, RetryCount, ParameterList):  # noqa: N802,N803
            """Declaration only: spyne derives the request element from this signature."""

    # polymorphic=True is spyne's only mechanism that writes xsi:type; it is on to show it does not reach Value.
    out_protocol = Soap11(polymorphic=True, cleanup_namespaces=not hand_encoded)
    app = Application([Cwmp], tns=NS_CWMP, in_protocol=Soap11(), out_protocol=out_protocol)
    device_id = DeviceIdStruct(Manufacturer="Grandstream", OUI="000B82", ProductClass="WP820", SerialNumber="1")
    args = (device_id, event_arg, 1, datetime(2026, 11, 27, tzinfo=timezone.utc), 0, parameter_arg)
    return app, args


def serialize_request(app: Any, method: str, args: tuple[Any, ...]) -> bytes:
    """Serialize a call as spyne's clients do, without a transport: a CWMP Inform is a SOAP request."""
    from spyne.client._base import RemoteProcedureBase

    procedure = RemoteProcedureBase("http://127.0.0.1/", app, method)
    (ctx,) = procedure.contexts
    procedure.get_out_object(ctx, args, {})
    procedure.get_out_string(ctx)
    return b"".join(ctx.out_string)


def parse_reference_inform() -> str:
    """Deserialize the hand-written (schema-valid, unqualified) Inform with the plain spyne model, as a server would."""
    from spyne import MethodContext
    from spyne.server import ServerBase

    app, _ = build_inform_app(unqualified=False, hand_encoded=False)
    server = ServerBase(app)
    initial = MethodContext(server, MethodContext.SERVER)
    initial.in_string = [REFERENCE_INFORM]
    (ctx,) = server.generate_contexts(initial)
    if ctx.in_error is None:
        server.get_in_object(ctx)
    return repr(ctx.in_object) if ctx.in_error is None else f"in_error: {ctx.in_error!r}"


def element_form_default_reach() -> Result:
    """spyne's one element-form flag belongs to its XSD generator; show what it changes and what it does not."""
    from lxml import etree
    from spyne.interface.xml_schema import XmlSchema

    app, args = build_inform_app(unqualified=False, hand_encoded=False)
    generator = XmlSchema(app.interface, element_form_default="unqualified")
    generator.build_interface_document()
    generated = generator.get_interface_document()["tns"]
    envelope = etree.fromstring(serialize_request(app, "Inform", args))
    rpc = envelope.find(f"{{{NS_SOAP_ENV}}}Body")[0]
    return {
        "generated_xsd_elementFormDefault": generated.get("elementFormDefault"),
        "serialized_DeviceId_tag": rpc[0].tag,
    }


def vendored_six_facts() -> Result:
    """Why ``import spyne`` fails on 3.12+, read from the installed files without importing spyne."""
    import importlib.util

    spec = importlib.util.find_spec("spyne")
    six_source = (Path(spec.submodule_search_locations[0]) / "util" / "six.py").read_text(encoding="utf-8")
    version = re.search(r'^__version__ = "([^"]+)"', six_source, re.MULTILINE)
    return {
        "vendored_six_version": version.group(1) if version else "unknown",
        "meta_path_importer_defines_find_spec": "def find_spec" in six_source,
        "meta_path_importer_defines_find_module": "def find_module" in six_source,
    }


def spyne_source_mentions(needle: str) -> list[str]:
    """Non-test spyne modules containing ``needle``: where spyne could possibly write a given attribute."""
    import importlib.util

    root = Path(importlib.util.find_spec("spyne").submodule_search_locations[0])
    return sorted(
        str(path.relative_to(root.parent))
        for path in root.rglob("*.py")
        if "test" not in path.relative_to(root).parts and needle in path.read_text(encoding="utf-8")
    )


def _guarded(step: Any) -> Result:
    try:
        return {"ok": True, "result": step()}
    except Exception as error:  # every failure is evidence: keep it and carry on
        return {"ok": False, "error": f"{type(error).__name__}: {error}",
                "traceback_tail": traceback.format_exc().strip().splitlines()[-3:]}


def probe_codec(reference: Path) -> Result:
    schema = load_cwmp_schema(reference)
    variants = {
        "default": dict(unqualified=False, hand_encoded=False),
        "sub_ns_empty": dict(unqualified=True, hand_encoded=False),
        "sub_ns_empty_plus_hand_encoded": dict(unqualified=True, hand_encoded=True),
    }

    def serialized(flags: dict[str, bool]) -> Any:
        def step() -> Result:
            app, args = build_inform_app(**flags)
            return describe_envelope(serialize_request(app, "Inform", args), schema)
        return step

    return {
        "validator_control_reference_inform_errors": validation_errors(schema, REFERENCE_INFORM),
        "variants": {name: _guarded(serialized(flags)) for name, flags in variants.items()},
        "element_form_default": _guarded(element_form_default_reach),
        "parse_reference_inform": _guarded(parse_reference_inform),
        "modules_mentioning_arrayType": _guarded(lambda: spyne_source_mentions("arrayType")),
    }


def probe_facts() -> Result:
    import importlib.metadata
    import importlib.util
    import platform

    versions = {}
    for distribution in ("spyne", "lxml", "twisted"):
        try:
            versions[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[distribution] = None
    twisted_constants = _guarded(lambda: importlib.util.find_spec("twisted.python.constants") is not None)
    return {
        "python": platform.python_version(),
        "installed": versions,
        "six": _guarded(vendored_six_facts),
        "twisted_python_constants_exists": twisted_constants,
    }


# --------------------------------------------------------------------------------------------------------------------
# Orchestration (runs in the interpreter that started the script).
# --------------------------------------------------------------------------------------------------------------------

def _run(command: list[str], timeout_s: float) -> subprocess.CompletedProcess[str] | str:
    """Run a command; a timeout or a missing executable comes back as a message rather than an exception."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{type(error).__name__}: {error}"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _innermost_frame(stderr: str) -> str | None:
    """The deepest ``File "...", line N`` of a traceback: the line of code that raised."""
    frames = [line.strip() for line in stderr.splitlines() if line.strip().startswith('File "')]
    # The temporary venv path means nothing once the venv is gone; keep the path inside site-packages.
    return re.sub(r'File ".*/site-packages/', 'File "', frames[-1]) if frames else None


def _step(command: list[str], timeout_s: float) -> Result:
    completed = _run(command, timeout_s)
    if isinstance(completed, str):
        return {"ok": False, "error": completed}
    if completed.returncode != 0:
        return {"ok": False, "error": _last_line(completed.stderr) or f"exit status {completed.returncode}",
                "raised_at": _innermost_frame(completed.stderr)}
    return {"ok": True, "stdout": completed.stdout}


def _probe(venv_python: str, name: str, reference: Path) -> Result:
    step = _step([venv_python, str(Path(__file__).resolve()), "--probe", name, "--reference", str(reference)],
                 PROBE_TIMEOUT_S)
    if not step["ok"]:
        return step
    try:
        return {"ok": True, "result": json.loads(step["stdout"])}
    except json.JSONDecodeError as error:
        return {"ok": False, "error": f"probe printed no JSON ({error}): {step['stdout'][:200]!r}"}


# The root cause behind the six failure, shown without spyne: a meta-path finder that only has find_module(), like
# the one in six 1.14.0, is still consulted by 3.11 and ignored from 3.12 on.
FIND_MODULE_ONLY_FINDER = """
import sys, types, warnings
warnings.simplefilter("ignore")
class FindModuleOnly:
    def find_module(self, name, path=None):
        return self if name == "find_module_only_demo" else None
    def load_module(self, name):
        sys.modules[name] = types.ModuleType(name)
        return sys.modules[name]
sys.meta_path.append(FindModuleOnly())
import find_module_only_demo
"""


def _import(venv_python: str, module: str) -> Result:
    step = _step([venv_python, "-c", f"import {module}"], PROBE_TIMEOUT_S)
    return {"ok": True} if step["ok"] else step


def measure(python: str, venv: Path, reference: Path) -> Result:
    """All evidence for one interpreter; a failed step is recorded and the later steps that need it are skipped."""
    record: Result = {"interpreter": python}
    created = _step([python, "-m", "venv", str(venv)], PROBE_TIMEOUT_S)
    record["venv"] = created
    if not created["ok"]:
        return record
    venv_python = str(venv / "bin" / "python")
    installed = _step([venv_python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *PACKAGES],
                      PIP_TIMEOUT_S)
    installed.pop("stdout", None)
    record["pip_install"] = installed
    if not installed["ok"]:
        return record
    record["facts"] = _probe(venv_python, "facts", reference)
    record["find_module_only_finder"] = _step([venv_python, "-c", FIND_MODULE_ONLY_FINDER], PROBE_TIMEOUT_S)
    record["import_spyne"] = _import(venv_python, "spyne")
    record["import_spyne_server_twisted"] = _import(venv_python, "spyne.server.twisted")
    if record["import_spyne"]["ok"]:
        record["codec"] = _probe(venv_python, "codec", reference)
    return record


# --------------------------------------------------------------------------------------------------------------------
# Report.
# --------------------------------------------------------------------------------------------------------------------

def _outcome(step: Result | None) -> str:
    if step is None:
        return "not run"
    return "ok" if step["ok"] else f"FAILS: `{step['error']}`"


def _variant_summary(variant: Result) -> str:
    if not variant["ok"]:
        return f"serialization FAILS: `{variant['error']}`"
    found = variant["result"]
    errors = found["schema_errors"]
    return (f"RPC element `{found['rpc_element']}`; {found['qualified_children']} of {found['children']} children "
            f"qualified (first: {found['first_qualified']}); arrayType on Event/ParameterList: "
            f"{found['arrayType_on_arrays']}; xsi:type on Value: {found['xsi_type_on_Value']}; "
            f"{found['namespace_declarations_on_Envelope']} namespace declarations on Envelope; "
            + ("**schema-valid**" if not errors else f"schema: `{errors[0]}`"))


def render(records: list[Result]) -> str:
    lines = ["# spyne 2.14.0 evidence", "",
             "| Python | pip install | Twisted | `import spyne` | `import spyne.server.twisted` |",
             "|---|---|---|---|---|"]
    for record in records:
        facts = record.get("facts", {})
        installed = facts.get("result", {}).get("installed", {}) if facts.get("ok") else {}
        version = facts["result"]["python"] if facts.get("ok") else record["interpreter"]
        pip_cell = _outcome(record.get("pip_install")) if record["venv"]["ok"] else _outcome(record["venv"])
        imports = f"{_outcome(record.get('import_spyne'))} | {_outcome(record.get('import_spyne_server_twisted'))}"
        lines.append(f"| {version} | {pip_cell} | {installed.get('twisted', '?')} | {imports} |")
    for record in records:
        facts = record.get("facts")
        if facts and not facts["ok"]:
            lines += ["", f"## {record['interpreter']}", f"- facts probe {_outcome(facts)}"]
        if facts and facts["ok"]:
            result = facts["result"]
            lines += ["", f"## Python {result['python']}"]
            lines.append(f"- installed: {result['installed']}")
            six, constants = result["six"], result["twisted_python_constants_exists"]
            lines.append(f"- vendored six: {six['result'] if six['ok'] else _outcome(six)}")
            constants_exist = constants["result"] if constants["ok"] else _outcome(constants)
            lines.append(f"- twisted.python.constants exists: {constants_exist}")
            lines.append(f"- a meta-path finder with only find_module() is used: "
                         f"{_outcome(record['find_module_only_finder'])}")
            for check in ("import_spyne", "import_spyne_server_twisted"):
                if not record[check]["ok"]:
                    lines.append(f"- `{check}` raised at: {record[check].get('raised_at')}")
        codec = record.get("codec")
        if codec is None:
            continue
        if not codec["ok"]:
            lines.append(f"- codec probe FAILS: `{codec['error']}`")
            continue
        result = codec["result"]
        control = result["validator_control_reference_inform_errors"]
        lines.append(f"- validator control (hand-written Inform): {'valid' if not control else control}")
        for name, variant in result["variants"].items():
            lines.append(f"- Soap11 Inform, `{name}`: {_variant_summary(variant)}")
        form = result["element_form_default"]
        lines.append(f"- `XmlSchema(element_form_default='unqualified')`: "
                     f"{form['result'] if form['ok'] else _outcome(form)}")
        parsed = result["parse_reference_inform"]
        lines.append(f"- plain model parsing the hand-written Inform: "
                     f"`{parsed['result'] if parsed['ok'] else _outcome(parsed)}`")
        mentions = result["modules_mentioning_arrayType"]
        lines.append(f"- non-test spyne modules mentioning `arrayType`: "
                     f"{mentions['result'] if mentions['ok'] else _outcome(mentions)}")
        for name, variant in result["variants"].items():
            if variant["ok"]:
                lines += ["", f"`{name}` envelope:", "", "```xml", variant["result"]["envelope"].strip(), "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", help="interpreter to measure (repeatable)")
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="the shared reference folder")
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    parser.add_argument("--probe", choices=("facts", "codec"), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)

    if options.probe == "facts":
        print(json.dumps(probe_facts()))
        return 0
    if options.probe == "codec":
        print(json.dumps(probe_codec(options.reference.resolve())))
        return 0

    reference = options.reference.resolve()
    with tempfile.TemporaryDirectory(prefix="spyne-evidence-") as workdir:
        records = []
        for index, python in enumerate(options.python or DEFAULT_PYTHONS):
            print(f"measuring {python} ...", file=sys.stderr, flush=True)
            records.append(measure(python, Path(workdir) / f"venv-{index}", reference))
    if options.json:
        options.json.write_text(json.dumps(records, indent=2), encoding="utf-8")
    print(render(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
